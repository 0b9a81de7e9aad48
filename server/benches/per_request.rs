//! The server's per-request work outside the sleeps: building the answer
//! and encoding a sentence of synthetic audio.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn per_request(c: &mut Criterion) {
    let mut n = 0u64;
    c.bench_function("corpus_answer", |b| {
        b.iter(|| {
            n += 1;
            server::corpus::answer(
                black_box("60f7b3b3e6b6f40015e6b6f4"),
                &format!("question {n}"),
            )
        })
    });
    // A 4.6 s sentence: 147 KB of PCM, 196 KB of base64.
    c.bench_function("audio_base64_4600ms", |b| {
        b.iter(|| server::audio::pcm_base64(black_box(4600)))
    });
}

criterion_group!(benches, per_request);
criterion_main!(benches);
