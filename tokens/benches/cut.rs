//! The load generator's token work per request: a prompt cut to an exact
//! length from the corpus (the prepare thread), and a text counted (the
//! answer, on the send path). With an OpenAI encoding and with a Hugging
//! Face tokenizer.json trained here (`ci/tokenizer.py`), on the built-in
//! corpus the load generator cuts from.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use tokens::{Corpus, Tokenizer};

fn cut_and_count(c: &mut Criterion) {
    let text = server::corpus::prose(30_000);
    let dir = std::env::temp_dir().join(format!("tokens-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trained = testkit::trained_tokenizer(&dir, &text);
    for (name, spec) in [
        ("cl100k_base", "cl100k_base".to_owned()),
        ("hf_bpe", trained.display().to_string()),
    ] {
        let tokenizer = Arc::new(Tokenizer::load(&spec).unwrap());
        let corpus = Corpus::new(Arc::clone(&tokenizer), &text);
        let mut at = 0usize;
        c.bench_function(&format!("{name}/cut_256"), |b| {
            b.iter(|| {
                // A new place each time, as the prompts are drawn.
                at = (at + 7919) % corpus.len();
                corpus.cut(black_box(at), 256).unwrap()
            })
        });
        let prompt = corpus.cut(1000, 256).unwrap();
        c.bench_function(&format!("{name}/count_256"), |b| {
            b.iter(|| tokenizer.count(black_box(&prompt)))
        });
        let answer = corpus.cut(5000, 30).unwrap();
        c.bench_function(&format!("{name}/count_30"), |b| {
            b.iter(|| tokenizer.count(black_box(&answer)))
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, cut_and_count);
criterion_main!(benches);
