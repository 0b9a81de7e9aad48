//! Reading a scenario's `[dataset]`: prompts (or conversations) from a
//! plain text, JSONL or CSV file. Every problem names the file, the line
//! and the field.

use slo::scenario::{Dataset, DatasetFormat, FileError};
use std::path::Path;

/// One conversation: its user turns, in order (one for a plain prompt).
pub type Conversation = Vec<String>;

/// One row's value at the dataset's field, as the file holds it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    /// A JSON number (a CSV cell is always text).
    Number(f64),
}

/// The dataset's conversations, read and checked: prompts of 1 to
/// `max_chars` characters (the protocol's limit). `file` is the dataset's
/// path as the user should see it.
pub fn load(ds: &Dataset, file: &Path, max_chars: usize) -> Result<Vec<Conversation>, FileError> {
    let fail = failure(file);
    let prompt = |s: &str, what: &str| {
        let n = s.chars().count();
        if s.trim().is_empty() || n > max_chars {
            return Err(format!(
                "{what}: a prompt of 1 to {max_chars} characters, got {n}"
            ));
        }
        Ok(s.to_owned())
    };
    let mut out = Vec::new();
    match &ds.turns_field {
        Some(key) => {
            for (i, line) in read(file)?.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let at = |m: String| fail(Some(i + 1), m);
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| at(format!("not a JSON object ({e})")))?;
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
        }
        None => {
            let what = where_in(ds);
            for (line, cell) in cells(ds, file)? {
                let Cell::Text(s) = cell else {
                    return Err(fail(
                        line,
                        format!(
                            "dataset.field: no string at {what} (set dataset.field to the prompt's key)"
                        ),
                    ));
                };
                out.push(vec![prompt(&s, &what).map_err(|m| fail(line, m))?]);
            }
        }
    }
    if out.is_empty() {
        return Err(fail(None, "the dataset holds no prompt".into()));
    }
    Ok(out)
}

/// How a row's field is named in messages.
fn where_in(ds: &Dataset) -> String {
    match ds.format() {
        Some(DatasetFormat::Text) => "the line".to_owned(),
        Some(DatasetFormat::Csv) => format!("column \"{}\"", ds.field()),
        _ => format!("\"{}\"", ds.field()),
    }
}

/// An error naming the file (and the line, when there is one).
pub fn failure(file: &Path) -> impl Fn(Option<usize>, String) -> FileError {
    let name = file.display().to_string();
    move |line, message| FileError {
        file: name.clone(),
        line,
        message,
    }
}

fn read(file: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(file)
        .map_err(|e| failure(file)(None, format!("cannot read the dataset (dataset.file): {e}")))
}

/// Each row's value at the dataset's field, with its line: a text file's
/// non-blank lines (trimmed), a JSONL line's string or number at `field`,
/// a CSV row's cell in the column `field`.
pub fn cells(ds: &Dataset, file: &Path) -> Result<Vec<(Option<usize>, Cell)>, FileError> {
    let fail = failure(file);
    let text = read(file)?;
    let format = ds
        .format()
        .ok_or_else(|| fail(None, "dataset.format: text, jsonl or csv".into()))?;
    let mut out = Vec::new();
    match format {
        DatasetFormat::Text => {
            for (i, line) in text.lines().enumerate() {
                if !line.trim().is_empty() {
                    out.push((Some(i + 1), Cell::Text(line.trim().to_owned())));
                }
            }
        }
        DatasetFormat::Jsonl => {
            let key = ds.field();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let at = |m: String| fail(Some(i + 1), m);
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| at(format!("not a JSON object ({e})")))?;
                let cell = match v.get(key) {
                    Some(serde_json::Value::String(s)) => Cell::Text(s.clone()),
                    Some(serde_json::Value::Number(n)) => {
                        Cell::Number(n.as_f64().unwrap_or(f64::NAN))
                    }
                    _ => {
                        return Err(at(format!(
                            "dataset.field: no string or number at \"{key}\" (set the field to the key that holds it)"
                        )));
                    }
                };
                out.push((Some(i + 1), cell));
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
                out.push((line, Cell::Text(row.get(col).unwrap_or("").to_owned())));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slo::protocol::MAX_MESSAGE_CHARS;
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
            load(&ds(&t, None, None), &t, MAX_MESSAGE_CHARS).unwrap(),
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
        let got = load(&ds(&j, Some("q"), None), &j, MAX_MESSAGE_CHARS).unwrap();
        assert_eq!(got[0], vec!["Hi, \"you\"?".to_owned()]);
        assert_eq!(got[1], vec!["Line\nbreak".to_owned()]);
        let c = write(&dir, "a.csv", "id,prompt\n1,\"Hello, there\"\n2,Bye\n");
        assert_eq!(
            load(&ds(&c, None, None), &c, MAX_MESSAGE_CHARS).unwrap(),
            vec![vec!["Hello, there".to_owned()], vec!["Bye".to_owned()]]
        );
        let m = write(
            &dir,
            "m.jsonl",
            "{\"turns\": [\"Hi\", \"And tomorrow?\"]}\n",
        );
        assert_eq!(
            load(&ds(&m, None, Some("turns")), &m, MAX_MESSAGE_CHARS).unwrap(),
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
        let e = load(&ds(&j, None, None), &j, MAX_MESSAGE_CHARS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.jsonl:2:") && e.contains("\"prompt\""), "{e}");
        let c = write(&dir, "b.csv", "id,question\n1,x\n");
        let e = load(&ds(&c, None, None), &c, MAX_MESSAGE_CHARS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.csv:1:") && e.contains("id, question"), "{e}");
        let t = write(
            &dir,
            "b.txt",
            &format!("ok\n{}\n", "x".repeat(MAX_MESSAGE_CHARS + 1)),
        );
        let e = load(&ds(&t, None, None), &t, MAX_MESSAGE_CHARS)
            .unwrap_err()
            .to_string();
        assert!(e.contains("b.txt:2:"), "{e}");
        // The limit is the protocol's: an OpenAI target takes it.
        let long = load(&ds(&t, None, None), &t, slo::openai::MAX_PROMPT_CHARS).unwrap();
        assert_eq!(long[1][0].chars().count(), MAX_MESSAGE_CHARS + 1);
        let missing = Path::new("/nonexistent/p.txt");
        let e = load(&ds(missing, None, None), missing, MAX_MESSAGE_CHARS)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/nonexistent/p.txt") && e.contains("dataset.file"),
            "{e}"
        );
    }
}
