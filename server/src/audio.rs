//! Synthetic speech: PCM samples of a quiet tone, sized to the chunk's
//! duration (32 bytes per millisecond at 16 kHz, 16 bit), base64-encoded.
//! The encoding of the longest chunk is built once; a chunk is a prefix of
//! it, so no audio event encodes its samples again.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::sync::OnceLock;
use wire::protocol::{AUDIO_BYTES_PER_MS, fnv1a64};

/// The longest chunk: one minute.
pub const MAX_CHUNK_MS: u64 = 60_000;
/// The tone repeats every 24 samples (48 bytes, a multiple of 3, so the
/// base64 text repeats too).
const PERIOD_BYTES: usize = 48;

/// How long the spoken `sentence` lasts: 330 to 429 ms a word (the voice
/// speed varies by sentence) plus 150 ms of breath.
pub fn duration_ms(sentence: &str) -> u64 {
    let words = sentence.split_whitespace().count() as u64;
    let per_word = 330 + fnv1a64(sentence) % 100;
    (words * per_word + 150).min(MAX_CHUNK_MS)
}

/// Base64 of `duration_ms` of samples.
pub fn pcm_base64(duration_ms: u64) -> String {
    let bytes = (duration_ms.min(MAX_CHUNK_MS) * AUDIO_BYTES_PER_MS) as usize;
    let full_groups = bytes / 3;
    let mut out = String::with_capacity(bytes.div_ceil(3) * 4);
    out.push_str(&encoded()[..full_groups * 4]);
    let tail_start = full_groups * 3;
    let tail: Vec<u8> = (tail_start..bytes)
        .map(|i| pattern()[i % PERIOD_BYTES])
        .collect();
    STANDARD.encode_string(&tail, &mut out);
    out
}

fn pattern() -> &'static [u8; PERIOD_BYTES] {
    static P: OnceLock<[u8; PERIOD_BYTES]> = OnceLock::new();
    P.get_or_init(|| {
        let mut p = [0u8; PERIOD_BYTES];
        for (i, chunk) in p.chunks_exact_mut(2).enumerate() {
            let phase = i as f64 / (PERIOD_BYTES / 2) as f64 * std::f64::consts::TAU;
            let sample = (phase.sin() * 2000.0) as i16;
            chunk.copy_from_slice(&sample.to_le_bytes());
        }
        p
    })
}

fn encoded() -> &'static str {
    static E: OnceLock<String> = OnceLock::new();
    E.get_or_init(|| {
        let bytes = (MAX_CHUNK_MS * AUDIO_BYTES_PER_MS) as usize;
        let raw: Vec<u8> = (0..bytes).map(|i| pattern()[i % PERIOD_BYTES]).collect();
        STANDARD.encode(&raw)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_is_the_encoding_of_its_samples() {
        // Every length mod 3 (the padding) and the precomputed prefix.
        for ms in [0, 1, 2, 3, 7, 1840, 4999, MAX_CHUNK_MS] {
            let bytes = (ms * AUDIO_BYTES_PER_MS) as usize;
            let raw: Vec<u8> = (0..bytes).map(|i| pattern()[i % PERIOD_BYTES]).collect();
            assert_eq!(pcm_base64(ms), STANDARD.encode(&raw), "{ms} ms");
        }
        let tail = pcm_base64(1).len() - pcm_base64(0).len();
        assert_eq!(tail, 44, "32 bytes are 44 base64 characters with padding");
    }

    #[test]
    fn audio_is_sized_to_its_duration() {
        for ms in [1, 2, 3, 7, 1840, 4999] {
            let data = STANDARD.decode(pcm_base64(ms)).unwrap();
            assert_eq!(data.len() as u64, ms * AUDIO_BYTES_PER_MS, "{ms} ms");
            assert!(
                data.iter()
                    .zip(pattern().iter().cycle())
                    .all(|(a, b)| a == b)
            );
        }
        let d = duration_ms("Is there anything else I can help you with today?");
        assert!((10 * 330 + 150..=10 * 429 + 150).contains(&d), "{d}");
    }
}
