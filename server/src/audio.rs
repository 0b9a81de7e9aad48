//! Synthetic speech: PCM samples of a quiet tone, sized to the chunk's
//! duration (32 bytes per millisecond at 16 kHz, 16 bit), base64-encoded.
//! The encoding of the longest chunk is built once; a chunk is a prefix of
//! it, so no audio event encodes its samples again.

use slo::protocol::{AUDIO_BYTES_PER_MS, fnv1a64};
use std::sync::OnceLock;

/// The longest chunk: one minute.
pub const MAX_CHUNK_MS: u64 = 60_000;
/// The tone repeats every 24 samples (48 bytes, a multiple of 3, so the
/// base64 text repeats too).
const PERIOD_BYTES: usize = 48;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

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
    encode_into(&tail, &mut out);
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
        let mut out = String::with_capacity(bytes.div_ceil(3) * 4);
        encode_into(&raw, &mut out);
        out
    })
}

/// Standard base64 with padding.
fn encode_into(raw: &[u8], out: &mut String) {
    for group in raw.chunks(3) {
        let b = [
            group[0],
            *group.get(1).unwrap_or(&0),
            *group.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(s: &str) -> Vec<u8> {
        let val = |c: u8| ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        let mut out = Vec::new();
        for q in s.as_bytes().chunks(4) {
            let pad = q.iter().filter(|&&c| c == b'=').count();
            let n = q
                .iter()
                .map(|&c| if c == b'=' { 0 } else { val(c) })
                .fold(0u32, |acc, v| (acc << 6) | v);
            let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
            out.extend_from_slice(&bytes[..3 - pad]);
        }
        out
    }

    #[test]
    fn known_base64_vectors() {
        for (raw, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut s = String::new();
            encode_into(raw.as_bytes(), &mut s);
            assert_eq!(s, b64);
        }
    }

    #[test]
    fn audio_is_sized_to_its_duration() {
        for ms in [1, 2, 3, 7, 1840, 4999] {
            let data = decode(&pcm_base64(ms));
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
