//! A real `tokenizer.json`, trained and saved by Hugging Face's own
//! `tokenizers` (PyPI, installed by ci/install.sh): read by this crate, it
//! counts every text as the library that wrote it does, and cuts of an
//! exact length hold with it too.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tokens::{Corpus, Tokenizer};

const TEXT: &str = "Opening hours are nine to five on weekdays. The reading room \
    closes at noon on Saturdays, and the archive by appointment only. A library \
    card is free for residents; visitors pay five euros a year. Overdue books cost \
    twenty cents a day, up to the price of the book. ";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/tokenizer.py")
}

fn python_counts(model: &Path, texts: &[&str]) -> Vec<usize> {
    let mut child = Command::new("python3")
        .arg(script())
        .args(["count", model.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), texts).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn a_hugging_face_tokenizer_counts_as_its_library_does() {
    let dir = std::env::temp_dir().join(format!("tokens-hf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = testkit::trained_tokenizer(&dir, &TEXT.repeat(30));
    // The folder, as a model's files are laid out, or the file itself.
    let t = std::sync::Arc::new(Tokenizer::load(model.to_str().unwrap()).unwrap());
    let same = Tokenizer::load(model.join("tokenizer.json").to_str().unwrap()).unwrap();
    assert!(t.name().ends_with("tokenizer.json"), "{}", t.name());

    let corpus = Corpus::new(std::sync::Arc::clone(&t), &TEXT.repeat(20));
    let cuts: Vec<String> = [1, 9, 64, 500]
        .iter()
        .map(|&n| corpus.cut(n * 3, n).unwrap())
        .collect();
    let mut texts = vec![
        "Opening hours are nine to five.",
        "Words it never saw: quetzalcoatl, fjord, 1234567.",
        "",
        "Grüße aus Köln",
    ];
    texts.extend(cuts.iter().map(String::as_str));
    let ours: Vec<usize> = texts.iter().map(|s| t.count(s)).collect();
    assert_eq!(ours, python_counts(&model, &texts));
    assert_eq!(ours[4..], [1, 9, 64, 500], "the cuts are exact");
    assert_eq!(same.count(texts[1]), ours[1]);
    // More tokens than an OpenAI encoding for unseen words: a vocabulary
    // of 2,000 learnt from one paragraph.
    let cl = Tokenizer::load("cl100k_base").unwrap();
    assert!(
        ours[1] > cl.count(texts[1]),
        "{} vs {}",
        ours[1],
        cl.count(texts[1])
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
