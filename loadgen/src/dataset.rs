//! Reading a scenario's `[dataset]`: prompts (or conversations) from a
//! plain text, JSONL or CSV file. Every problem names the file, the line
//! and the field.

use slo::protocol::MAX_MESSAGE_CHARS;
use slo::scenario::{Dataset, DatasetFormat, FileError};
use std::path::Path;

/// One conversation: its user turns, in order (one for a plain prompt).
pub type Conversation = Vec<String>;

/// The dataset's conversations, read and checked. `file` is the
/// dataset's path as the user should see it.
pub fn load(ds: &Dataset, file: &Path) -> Result<Vec<Conversation>, FileError> {
    let name = file.display().to_string();
    let fail = |line: Option<usize>, message: String| FileError {
        file: name.clone(),
        line,
        message,
    };
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(None, format!("cannot read the dataset (dataset.file): {e}")))?;
    let format = ds
        .format()
        .ok_or_else(|| fail(None, "dataset.format: text, jsonl or csv".into()))?;
    let mut out = Vec::new();
    match format {
        DatasetFormat::Text => {
            for (i, line) in text.lines().enumerate() {
                if !line.trim().is_empty() {
                    out.push(vec![
                        prompt(line.trim(), "the line").map_err(|m| fail(Some(i + 1), m))?,
                    ]);
                }
            }
        }
        DatasetFormat::Jsonl => {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let at = |m: String| fail(Some(i + 1), m);
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| at(format!("not a JSON object ({e})")))?;
                match &ds.turns_field {
                    Some(key) => {
                        let turns = v.get(key).and_then(|t| t.as_array()).ok_or_else(|| {
                            at(format!(
                                "dataset.turns_field: no list of turns at \"{key}\" (e.g. {{\"{key}\": [\"Hi\", \"And then?\"]}})"
                            ))
                        })?;
                        if turns.is_empty() {
                            return Err(at(format!("\"{key}\" is an empty conversation")));
                        }
                        let mut c = Vec::with_capacity(turns.len());
                        for (n, t) in turns.iter().enumerate() {
                            let what = format!("turn {} of \"{key}\"", n + 1);
                            let s = t
                                .as_str()
                                .ok_or_else(|| at(format!("{what} is not a string")))?;
                            c.push(prompt(s, &what).map_err(at)?);
                        }
                        out.push(c);
                    }
                    None => {
                        let key = ds.field();
                        let s = v.get(key).and_then(|p| p.as_str()).ok_or_else(|| {
                            at(format!(
                                "dataset.field: no string at \"{key}\" (set dataset.field to the prompt's key)"
                            ))
                        })?;
                        out.push(vec![prompt(s, &format!("\"{key}\"")).map_err(at)?]);
                    }
                }
            }
        }
        DatasetFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .flexible(false)
                .from_reader(text.as_bytes());
            let key = ds.field();
            let headers = reader
                .headers()
                .map_err(|e| fail(Some(1), format!("not a CSV header line ({e})")))?
                .clone();
            let col = headers
                .iter()
                .position(|h| h.trim() == key)
                .ok_or_else(|| {
                    fail(
                        Some(1),
                        format!(
                            "dataset.field: no column \"{key}\" (the columns: {})",
                            headers.iter().collect::<Vec<_>>().join(", ")
                        ),
                    )
                })?;
            for row in reader.records() {
                let row = row.map_err(|e| {
                    fail(
                        e.position().map(|p| p.line() as usize),
                        format!("not a CSV row ({e})"),
                    )
                })?;
                let line = row.position().map(|p| p.line() as usize);
                let s = row.get(col).unwrap_or("");
                out.push(vec![
                    prompt(s, &format!("column \"{key}\"")).map_err(|m| fail(line, m))?,
                ]);
            }
        }
    }
    if out.is_empty() {
        return Err(fail(None, "the dataset holds no prompt".into()));
    }
    Ok(out)
}

/// A prompt as the protocols accept it.
fn prompt(s: &str, what: &str) -> Result<String, String> {
    let n = s.chars().count();
    if s.trim().is_empty() || n > MAX_MESSAGE_CHARS {
        return Err(format!(
            "{what}: a prompt of 1 to {MAX_MESSAGE_CHARS} characters, got {n}"
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slo::scenario::DatasetOrder;

    fn ds(file: &Path, field: Option<&str>, turns: Option<&str>) -> Dataset {
        Dataset {
            file: file.to_owned(),
            format: None,
            field: field.map(str::to_owned),
            turns_field: turns.map(str::to_owned),
            order: DatasetOrder::Sequential,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn three_formats_and_conversations() {
        let dir = testkit::Scratch::new("loadgen-dataset-a");
        let t = write(&dir, "a.txt", "What is up?\n\n  Opening hours?  \n");
        assert_eq!(
            load(&ds(&t, None, None), &t).unwrap(),
            vec![
                vec!["What is up?".to_owned()],
                vec!["Opening hours?".to_owned()]
            ]
        );
        let j = write(
            &dir,
            "a.jsonl",
            "{\"q\": \"Hi, \\\"you\\\"?\"}\n{\"q\": \"Line\\nbreak\"}\n",
        );
        let got = load(&ds(&j, Some("q"), None), &j).unwrap();
        assert_eq!(got[0], vec!["Hi, \"you\"?".to_owned()]);
        assert_eq!(got[1], vec!["Line\nbreak".to_owned()]);
        let c = write(&dir, "a.csv", "id,prompt\n1,\"Hello, there\"\n2,Bye\n");
        assert_eq!(
            load(&ds(&c, None, None), &c).unwrap(),
            vec![vec!["Hello, there".to_owned()], vec!["Bye".to_owned()]]
        );
        let m = write(
            &dir,
            "m.jsonl",
            "{\"turns\": [\"Hi\", \"And tomorrow?\"]}\n",
        );
        assert_eq!(
            load(&ds(&m, None, Some("turns")), &m).unwrap(),
            vec![vec!["Hi".to_owned(), "And tomorrow?".to_owned()]]
        );
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_field() {
        let dir = testkit::Scratch::new("loadgen-dataset-b");
        let j = write(
            &dir,
            "b.jsonl",
            "{\"prompt\": \"ok\"}\n{\"text\": \"no\"}\n",
        );
        let e = load(&ds(&j, None, None), &j).unwrap_err().to_string();
        assert!(e.contains("b.jsonl:2:") && e.contains("\"prompt\""), "{e}");
        let c = write(&dir, "b.csv", "id,question\n1,x\n");
        let e = load(&ds(&c, None, None), &c).unwrap_err().to_string();
        assert!(e.contains("b.csv:1:") && e.contains("id, question"), "{e}");
        let t = write(
            &dir,
            "b.txt",
            &format!("ok\n{}\n", "x".repeat(MAX_MESSAGE_CHARS + 1)),
        );
        let e = load(&ds(&t, None, None), &t).unwrap_err().to_string();
        assert!(e.contains("b.txt:2:"), "{e}");
        let missing = Path::new("/nonexistent/p.txt");
        let e = load(&ds(missing, None, None), missing)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/p.txt") && e.contains("dataset.file"),
            "{e}"
        );
    }
}
