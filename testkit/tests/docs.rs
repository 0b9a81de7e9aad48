//! The project's documents: the manual (`docs/`, an mdBook) builds, every
//! link in it and in the root's documents resolves (a file of the
//! repository and, with `#`, one of its headings), no link leaves the
//! repository except to a public `https://` page, every page is in the
//! book's table of contents, and the README stays a front page. The
//! snippets are read by the binary in `loadgen`'s test `docs`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    testkit::root()
}

/// The Markdown files whose links are checked: the root's documents,
/// `scenarios/README.md` and every page of the manual.
fn documents() -> Vec<PathBuf> {
    let r = root();
    let mut out: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "BENCHMARKS.md"]
        .iter()
        .map(|f| r.join(f))
        .chain([r.join("scenarios/README.md")])
        .collect();
    out.extend(pages());
    out
}

/// Every `.md` page in `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .expect("docs/ is there")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    out.sort();
    out
}

/// A file's lines outside fenced code blocks, with their numbers, inline
/// code spans blanked (a link in a code span is not a link).
fn prose(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut kept = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
                kept.push(' ');
            } else {
                kept.push(if in_code { ' ' } else { c });
            }
        }
        out.push((i + 1, kept));
    }
    out
}

/// The targets of a line's inline links `[text](target "title")` and of a
/// reference definition `[label]: target`.
fn links(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("](") {
        let after = &rest[i + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split_whitespace().next().unwrap_or("");
        out.push(target.trim_matches(['<', '>']).to_owned());
        rest = &after[end..];
    }
    let t = line.trim_start();
    if t.starts_with('[')
        && let Some(i) = t.find("]: ")
    {
        out.push(
            t[i + 3..]
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_owned(),
        );
    }
    out
}

/// A heading's anchor as GitHub and mdBook make it: lower case, letters,
/// digits, `-` and `_` kept, white space made `-`, the rest dropped.
fn slug(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The anchors of a Markdown file's headings (a repeated heading's later
/// ones get `-1`, `-2`, ... as both renderers do).
fn anchors(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        // A link in a heading shows its text; code shows its content.
        let shown: String = {
            let mut s = String::new();
            let mut skipping = false;
            let mut chars = title.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    ']' if chars.peek() == Some(&'(') => skipping = true,
                    ')' if skipping => skipping = false,
                    '[' | '`' => {}
                    _ if skipping => {}
                    _ => s.push(c),
                }
            }
            s
        };
        let base = slug(shown.trim());
        let mut a = base.clone();
        let mut n = 0;
        while out.contains(&a) {
            n += 1;
            a = format!("{base}-{n}");
        }
        out.insert(a);
    }
    out
}

/// Why `target`, linked from `file`, does not resolve; `None` when it does.
fn broken(file: &Path, target: &str) -> Option<String> {
    if target.starts_with("https://") {
        return None;
    }
    if target.starts_with("http://") || target.starts_with("mailto:") || target.contains("://") {
        return Some("only public https:// pages may be linked outside the repository".into());
    }
    let (path, fragment) = match target.split_once('#') {
        Some((p, f)) => (p, Some(f)),
        None => (target, None),
    };
    let dest = if path.is_empty() {
        file.to_path_buf()
    } else {
        file.parent().unwrap().join(path)
    };
    let Ok(dest) = dest.canonicalize() else {
        return Some(format!("{} does not exist", dest.display()));
    };
    let root = root().canonicalize().unwrap();
    if !dest.starts_with(&root) {
        return Some("it leaves the repository (a clone has only what is in it)".into());
    }
    // The manual's pages link within the manual: the built book has
    // nothing else.
    let docs = root.join("docs");
    if file.starts_with(&docs) && !dest.starts_with(&docs) {
        return Some(
            "a page of the manual links outside docs/ (the built book has only docs/): name the file as code instead"
                .into(),
        );
    }
    if let Some(f) = fragment {
        let text = std::fs::read_to_string(&dest).ok()?;
        if !anchors(&text).contains(f) {
            return Some(format!("{} has no heading #{f}", dest.display()));
        }
    }
    None
}

#[test]
fn every_link_resolves_inside_the_repository() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in documents() {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (n, line) in prose(&text) {
            for target in links(&line) {
                checked += 1;
                if let Some(why) = broken(&file, &target) {
                    problems.push(format!("{}:{n}: ({target}): {why}", file.display()));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    // The manual is linked from the README and links within itself.
    assert!(
        checked >= 40,
        "only {checked} links found: is the parser reading them?"
    );
}

#[test]
fn the_link_checker_finds_what_is_broken() {
    let readme = root().join("README.md");
    let docs = root().join("docs/slo.md");
    assert_eq!(broken(&readme, "docs/slo.md"), None);
    assert_eq!(broken(&docs, "protocol.md#3-rollout"), None);
    for (file, bad) in [
        (&readme, "docs/nothing.md"),
        (&readme, concat!("../", "shared/PROTOCOL.md")),
        (&docs, "protocol.md#no-such-heading"),
        (&docs, "../BENCHMARKS.md"),
        (&docs, "http://127.0.0.1:5000/dashboard"),
    ] {
        assert!(broken(file, bad).is_some(), "{bad} should be broken");
    }
    assert_eq!(
        links("see [a](x.md#y) and [b](<z.md> \"t\")"),
        ["x.md#y", "z.md"]
    );
    let a = anchors("# A: `b = \"c\"`\n## Two words\n## Two words\n```\n# not\n```\n");
    let want: BTreeSet<String> = ["a-b--c", "two-words", "two-words-1"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    assert_eq!(a, want);
}

#[test]
fn every_page_is_in_the_table_of_contents() {
    let summary = std::fs::read_to_string(root().join("docs/SUMMARY.md")).unwrap();
    let listed: BTreeSet<String> = prose(&summary).iter().flat_map(|(_, l)| links(l)).collect();
    for page in pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        if name != "SUMMARY.md" {
            assert!(
                listed.contains(&name),
                "docs/{name} is not in docs/SUMMARY.md"
            );
        }
    }
}

#[test]
fn the_readme_is_a_front_page() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = text.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines: move the detail to the manual (docs/)"
    );
    // Nothing in the repository points at files a clone does not have.
    let mut stack = vec![root()];
    let mut found = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !name.starts_with('.') && name != "target" && name != "runs" {
                    stack.push(p);
                }
            } else if let Ok(text) = std::fs::read_to_string(&p)
                && text.contains(concat!("../", "shared/"))
            {
                found.push(p.display().to_string());
            }
        }
    }
    assert!(found.is_empty(), "links out of the repository in {found:?}");
}

/// Every relative `href` of the built book's pages: the file is in the
/// book and, with `#`, has that `id`.
fn check_book(dir: &Path) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|e| e != "html") {
                continue;
            }
            let html = std::fs::read_to_string(&p).unwrap();
            for part in html.split("href=\"").skip(1) {
                let href = &part[..part.find('"').unwrap_or(0)];
                if href.contains("://") || href.starts_with("mailto:") || href.is_empty() {
                    continue;
                }
                checked += 1;
                let (file, id) = href.split_once('#').unwrap_or((href, ""));
                let dest = if file.is_empty() {
                    p.clone()
                } else {
                    p.parent().unwrap().join(file)
                };
                let Ok(text) = std::fs::read_to_string(&dest) else {
                    if !dest.is_file() && !dest.is_dir() {
                        problems.push(format!("{}: {href}: no such file", p.display()));
                    }
                    continue;
                };
                if !id.is_empty() && !text.contains(&format!("id=\"{id}\"")) {
                    problems.push(format!("{}: {href}: no id {id:?}", p.display()));
                }
            }
        }
    }
    (checked, problems)
}

#[test]
fn the_manual_builds_and_its_links_resolve() {
    let out = std::env::temp_dir().join(format!("chatload-book-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    // What `mdbook build docs` does, by mdBook's own library.
    let mut book = mdbook_driver::MDBook::load(root().join("docs"))
        .unwrap_or_else(|e| panic!("docs/book.toml or docs/SUMMARY.md: {e:#}"));
    book.config.build.build_dir = out.clone();
    book.build()
        .unwrap_or_else(|e| panic!("the manual does not build: {e:#}"));
    for page in pages() {
        let name = page.file_stem().unwrap().to_string_lossy().into_owned();
        if name != "SUMMARY" {
            assert!(
                out.join(format!("{name}.html")).is_file(),
                "the book has no {name}.html"
            );
        }
    }
    let (checked, problems) = check_book(&out);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked > 100, "only {checked} links in the built book");
    let _ = std::fs::remove_dir_all(&out);
}
