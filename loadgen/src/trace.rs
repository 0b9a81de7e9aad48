//! Traces replayed (`[load] model = "trace"`): the public formats read
//! row by row, each row a request at its time with its lengths; then the
//! window a run replays, on the run's clock.

use slo::scenario::{TraceFormat, TraceLoad};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// One request of a trace.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    /// Seconds from the trace's first row.
    pub at_s: f64,
    /// The prompt's and the answer's tokens (at least 1 each: a row of 0
    /// is sent as 1).
    pub input: u32,
    pub output: u32,
    /// Mooncake's blocks: rows with the same id share that block of their
    /// prompts.
    pub hash_ids: Vec<u64>,
    /// Its line in the file (from 1), for messages.
    pub line: usize,
}

/// The rows of a run: each with its offset on the run's clock.
pub type Replay = Vec<(f64, Arc<TraceRow>)>;

/// The format of `path` when the scenario does not say: Mooncake for
/// `.jsonl`; for `.csv`, Azure's when its header starts `TIMESTAMP`, else
/// ours.
fn format_of(path: &Path, text: &str) -> Result<TraceFormat, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("jsonl") => Ok(TraceFormat::Mooncake),
        Some("csv") if text.trim_start().starts_with("TIMESTAMP") => Ok(TraceFormat::Azure),
        Some("csv") => Ok(TraceFormat::Csv),
        _ => Err(format!(
            "{}: load.format: not known from the file's name: say format = \"mooncake\", \"azure\" or \"csv\"",
            path.display()
        )),
    }
}

/// Every row of the trace file, in time order, its times from the first.
pub fn read(path: &Path, format: Option<TraceFormat>) -> Result<Vec<TraceRow>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: load.trace: cannot read it: {e}", path.display()))?;
    let format = match format {
        Some(f) => f,
        None => format_of(path, &text)?,
    };
    let at = |line: usize, what: String| format!("{}:{line}: {what}", path.display());
    let mut rows = match format {
        TraceFormat::Mooncake => mooncake(&text).map_err(|(l, w)| at(l, w))?,
        TraceFormat::Azure | TraceFormat::Csv => {
            csv_rows(&text, format).map_err(|(l, w)| at(l, w))?
        }
    };
    if rows.is_empty() {
        return Err(format!("{}: load.trace: no rows", path.display()));
    }
    rows.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let first = rows[0].at_s;
    for r in &mut rows {
        r.at_s -= first;
    }
    Ok(rows)
}

/// A length of a row: a whole number of 0 or more, sent as at least 1.
fn length(v: Option<f64>, name: &str) -> Result<u32, String> {
    match v {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(slo::workload::MAX_TOKENS) => {
            Ok((n as u32).max(1))
        }
        Some(n) => Err(format!("{name}: a whole number of tokens, got {n}")),
        None => Err(format!("{name}: missing")),
    }
}

fn mooncake(text: &str) -> Result<Vec<TraceRow>, (usize, String)> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| (n, format!("not a JSON object ({e})")))?;
        let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        let timestamp = num("timestamp")
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or((
                n,
                "timestamp: milliseconds from the trace's start, missing".to_owned(),
            ))?;
        let hash_ids = match v.get("hash_ids") {
            None => Vec::new(),
            Some(ids) => ids
                .as_array()
                .and_then(|a| a.iter().map(serde_json::Value::as_u64).collect())
                .ok_or((n, "hash_ids: a list of whole numbers".to_owned()))?,
        };
        rows.push(TraceRow {
            at_s: timestamp / 1000.0,
            input: length(num("input_length"), "input_length").map_err(|w| (n, w))?,
            output: length(num("output_length"), "output_length").map_err(|w| (n, w))?,
            hash_ids,
            line: n,
        });
    }
    Ok(rows)
}

/// Azure's CSV (`TIMESTAMP` a date and time) or ours (`time_s`).
fn csv_rows(text: &str, format: TraceFormat) -> Result<Vec<TraceRow>, (usize, String)> {
    let (time, input, output) = match format {
        TraceFormat::Azure => ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
        _ => ("time_s", "input_tokens", "output_tokens"),
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| (1, format!("not a CSV header: {e}")))?
        .clone();
    let column = |name: &str| {
        header.iter().position(|h| h == name).ok_or((
            1,
            format!(
                "no column {name:?}; the header is {:?} (expected {time}, {input}, {output})",
                header.iter().collect::<Vec<_>>().join(",")
            ),
        ))
    };
    let (t, i, o) = (column(time)?, column(input)?, column(output)?);
    let mut rows = Vec::new();
    for (k, record) in reader.records().enumerate() {
        let n = k + 2;
        let record = record.map_err(|e| (n, format!("not a CSV row: {e}")))?;
        let field = |c: usize| record.get(c).unwrap_or("");
        let at_s = match format {
            TraceFormat::Azure => {
                let stamp = field(t);
                humantime::parse_rfc3339_weak(stamp)
                    .ok()
                    .and_then(|s| s.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs_f64())
                    .ok_or((
                        n,
                        format!("{time}: a date and time like 2023-11-16 18:15:46.6805900, got {stamp:?}"),
                    ))?
            }
            _ => field(t)
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or((
                    n,
                    format!("{time}: seconds from the trace's start, got {:?}", field(t)),
                ))?,
        };
        let tokens = |c: usize, name: &str| match field(c) {
            "" => length(None, name),
            f => f
                .parse::<f64>()
                .map_err(|_| format!("{name}: a whole number of tokens, got {f:?}"))
                .and_then(|v| length(Some(v), name)),
        };
        rows.push(TraceRow {
            at_s,
            input: tokens(i, input).map_err(|w| (n, w))?,
            output: tokens(o, output).map_err(|w| (n, w))?,
            hash_ids: Vec::new(),
            line: n,
        });
    }
    Ok(rows)
}

/// The rows a run replays: from `start` in the trace, for `duration` of
/// the run at `speedup` trace seconds a run second, each at its offset
/// on the run's clock.
pub fn window(rows: &[TraceRow], t: &TraceLoad, duration: Duration) -> Replay {
    let start = t.start.unwrap_or_default().as_secs_f64();
    let end = start + duration.as_secs_f64() * t.speedup();
    rows.iter()
        .filter(|r| r.at_s >= start && r.at_s < end)
        .map(|r| ((r.at_s - start) / t.speedup(), Arc::new(r.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file of its own (tests run side by side in one process).
    fn file(name: &str, text: &str) -> std::path::PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("loadgen-trace-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn the_three_formats_are_read_in_time_order() {
        let m = read(
            &file(
                "m.jsonl",
                "{\"timestamp\": 1500, \"input_length\": 700, \"output_length\": 20, \"hash_ids\": [1, 2]}\n\n{\"timestamp\": 500, \"input_length\": 10, \"output_length\": 0}\n",
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            m.iter()
                .map(|r| (r.at_s, r.input, r.output, r.line))
                .collect::<Vec<_>>(),
            [(0.0, 10, 1, 3), (1.0, 700, 20, 1)]
        );
        assert_eq!(m[1].hash_ids, [1, 2]);
        let a = read(
            &file(
                "a.csv",
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:50.1805900,396,109\n",
            ),
            None,
        )
        .unwrap();
        assert_eq!(a.len(), 2);
        assert!((a[1].at_s - 3.5).abs() < 1e-6, "{}", a[1].at_s);
        assert_eq!((a[1].input, a[1].output), (396, 109));
        let c = read(
            &file(
                "c.csv",
                "time_s,input_tokens,output_tokens\n0.25,100,50\n0,80,40\n",
            ),
            None,
        )
        .unwrap();
        assert_eq!(c.iter().map(|r| r.at_s).collect::<Vec<_>>(), [0.0, 0.25]);
    }

    #[test]
    fn a_bad_row_names_the_file_and_line() {
        for (name, text, says) in [
            (
                "m.jsonl",
                "{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 1}\n{\"timestamp\": 9}\n",
                "m.jsonl:2: input_length: missing",
            ),
            ("m.jsonl", "nope\n", "m.jsonl:1: not a JSON object"),
            (
                "m.jsonl",
                "{\"timestamp\": 0, \"input_length\": 2.5, \"output_length\": 1}\n",
                "input_length: a whole number of tokens, got 2.5",
            ),
            (
                "a.csv",
                "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,1,1\n",
                "a.csv:2: TIMESTAMP: a date and time",
            ),
            (
                "c.csv",
                "time,in,out\n0,1,1\n",
                "c.csv:1: no column \"time_s\"",
            ),
            (
                "c.csv",
                "time_s,input_tokens,output_tokens\n-1,1,1\n",
                "c.csv:2: time_s: seconds",
            ),
            (
                "t.txt",
                "0,1,1\n",
                "load.format: not known from the file's name",
            ),
            (
                "e.csv",
                "time_s,input_tokens,output_tokens\n",
                "load.trace: no rows",
            ),
        ] {
            let e = read(&file(name, text), None).unwrap_err();
            assert!(e.contains(says), "{name}: {e}");
        }
    }

    #[test]
    fn a_window_at_a_speedup_is_on_the_runs_clock() {
        let rows: Vec<TraceRow> = (0..10)
            .map(|i| TraceRow {
                at_s: f64::from(i),
                input: 1,
                output: 1,
                hash_ids: Vec::new(),
                line: i as usize + 1,
            })
            .collect();
        let t = TraceLoad {
            file: "t.csv".into(),
            format: None,
            speedup: Some(2.0),
            start: Some(Duration::from_secs(3)),
            max_users: None,
            max_lateness: None,
        };
        let w = window(&rows, &t, Duration::from_secs(2));
        assert_eq!(
            w.iter().map(|(at, r)| (*at, r.line)).collect::<Vec<_>>(),
            [(0.0, 4), (0.5, 5), (1.0, 6), (1.5, 7)]
        );
    }
}
