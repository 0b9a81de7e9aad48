//! The client's per-event hot paths: SSE parsing and histogram recording.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use slo::histogram::LatencyHistogram;
use slo::sse::SseParser;
use std::hint::black_box;

/// A realistic answer stream: start, 120 tokens, done; as the server sends it.
fn stream() -> Vec<u8> {
    let mut s = String::from(
        "event: start\ndata: {\"clientId\":\"chat-1-abc\",\"chatbotId\":\"60f7b3b3e6b6f40015e6b6f4\",\"streaming\":true}\n\n",
    );
    for i in 0..120 {
        s.push_str(&format!(
            "event: token\ndata: {{\"text\":\"word{i} \"}}\n\n"
        ));
    }
    s.push_str("event: done\ndata: {\"wordCount\":120,\"firstTokenLatency\":420,\"firstAudioLatency\":null,\"duration\":2650,\"kbCache\":\"hit\",\"ttsCacheHits\":0,\"ttsCacheMisses\":0}\n\n");
    s.into_bytes()
}

fn sse(c: &mut Criterion) {
    let body = stream();
    let mut g = c.benchmark_group("sse_parse");
    g.throughput(Throughput::Elements(122));
    for read in [64usize, 1460, 16384] {
        g.bench_function(format!("reads_of_{read}_bytes"), |b| {
            let mut p = SseParser::new();
            b.iter(|| {
                let mut events = 0u32;
                for chunk in body.chunks(read) {
                    p.feed(black_box(chunk), &mut |e| {
                        events += black_box(e.data.len()) as u32 & 1;
                    });
                }
                events
            })
        });
    }
    g.finish();
}

fn histogram(c: &mut Criterion) {
    let mut h = LatencyHistogram::new();
    let mut v = 1u64;
    c.bench_function("histogram_record", |b| {
        b.iter(|| {
            v = v
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            h.record_us(black_box(v % 10_000_000));
        })
    });
}

criterion_group!(benches, sse, histogram);
criterion_main!(benches);
