//! Which dotted metric paths an objective (or a `compare --tolerance`) may
//! name. The catalogue is derived from the JSON Schemas of the types the
//! figures are serialized from ([`Figures`] for the client,
//! [`ServerView`] for the server), so a new figure is judgeable the day it
//! exists and a misspelt path is caught when the file is loaded, not read
//! as "no data" after the run.

use crate::aggregate::Figures;
use crate::server_view::ServerView;
use serde::{Deserialize, Serialize};

/// Where a figure comes from: the load generator's own measurements, the
/// target's monitoring endpoints (report.json's `server`), or an
/// endpoint the scenario scrapes (`[[scrape]]`, report.json's `engine`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    #[default]
    Client,
    Server,
    Engine,
}
use serde_json::Value;
use std::sync::OnceLock;

/// A path segment that stands for any key of a map (e.g. `errors.*`).
pub const ANY_KEY: &str = "*";

/// Every numeric leaf path of a source's document; map keys are [`ANY_KEY`].
pub fn catalogue(source: Source) -> &'static [String] {
    static CLIENT: OnceLock<Vec<String>> = OnceLock::new();
    static SERVER: OnceLock<Vec<String>> = OnceLock::new();
    match source {
        Source::Client => CLIENT.get_or_init(|| {
            leaves(&serde_json::to_value(schemars::schema_for!(Figures)).expect("schema"))
        }),
        Source::Server => SERVER.get_or_init(|| {
            leaves(&serde_json::to_value(schemars::schema_for!(ServerView)).expect("schema"))
        }),
        // Its paths depend on the scenario's scrapes: see `check`.
        Source::Engine => &[],
    }
}

/// Ok when `path` names a numeric figure of `source`; otherwise the
/// message to show, with the nearest valid path.
pub fn check(source: Source, path: &str) -> Result<(), String> {
    if source == Source::Engine {
        // The series are the scenario's: checked with it
        // (`engine::check_path`); here, the path's shape and figure.
        return crate::engine::check_shape(path);
    }
    let known = catalogue(source);
    if known.iter().any(|k| matches(k, path)) {
        return Ok(());
    }
    let nearest = known
        .iter()
        .min_by_key(|k| distance(k, path))
        .map(String::as_str)
        .unwrap_or("");
    let side = match source {
        Source::Client => "the client's figures (report.json)",
        Source::Server => "the server's view (report.json `server`)",
        Source::Engine => unreachable!("checked above"),
    };
    Err(format!(
        "{path:?} is not a number in {side}; did you mean {nearest:?}? (every path: `loadgen paths`)"
    ))
}

fn matches(pattern: &str, path: &str) -> bool {
    let (p, q): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), path.split('.').collect());
    p.len() == q.len()
        && p.iter()
            .zip(&q)
            .all(|(a, b)| (*a == ANY_KEY && !b.is_empty()) || a == b)
}

/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn leaves(root: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(root, root, &mut Vec::new(), &mut Vec::new(), &mut out);
    out.sort();
    out.dedup();
    out
}

fn walk<'a>(
    root: &'a Value,
    node: &'a Value,
    path: &mut Vec<String>,
    refs: &mut Vec<&'a str>,
    out: &mut Vec<String>,
) {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        // A type may hold itself once (`latency_ms.x.corrected.p95`), not more.
        if refs.iter().filter(|x| **x == r).count() >= 2 {
            return;
        }
        let name = r.rsplit('/').next().unwrap_or(r);
        let Some(target) = root
            .get("$defs")
            .and_then(|d| d.get(name))
            .or_else(|| root.get("definitions").and_then(|d| d.get(name)))
        else {
            return;
        };
        refs.push(r);
        walk(root, target, path, refs, out);
        refs.pop();
        return;
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(alts) = node.get(key).and_then(Value::as_array) {
            for alt in alts {
                walk(root, alt, path, refs, out);
            }
        }
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            path.push(k.clone());
            walk(root, v, path, refs, out);
            path.pop();
        }
    }
    if let Some(extra) = node.get("additionalProperties").filter(|v| v.is_object()) {
        path.push(ANY_KEY.to_owned());
        walk(root, extra, path, refs, out);
        path.pop();
    }
    let types: Vec<&str> = match node.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !path.is_empty() && types.iter().any(|t| *t == "number" || *t == "integer") {
        out.push(path.join("."));
    }
}

/// The latencies the interval log holds, by their figure names.
const LOGGED: [&str; 4] = ["first_token", "first_audio", "complete", "inter_token"];

/// What a windowed objective (see `crate::windows`) reads: the interval log's tag and the
/// percentile. `latency_ms.first_token.p95` reads `first_token`;
/// `scheduled_latency_ms.X.pNN` and `latency_ms.X.corrected.pNN` read
/// `X_corrected` (inter-token gaps have no corrected form).
pub fn interval_log_tag(metric: &str) -> Result<(String, crate::evidence::Percentile), String> {
    let parts: Vec<&str> = metric.split('.').collect();
    let p = parts
        .last()
        .and_then(|s| crate::evidence::Percentile::named(s));
    let (name, corrected) = match parts.as_slice() {
        ["latency_ms", name, _] => (*name, false),
        ["latency_ms", name, "corrected", _] | ["scheduled_latency_ms", name, _] => (*name, true),
        _ => ("", false),
    };
    match p {
        Some(p) if LOGGED.contains(&name) && !(corrected && name == "inter_token") => {
            let tag = if corrected {
                format!("{name}_corrected")
            } else {
                name.to_owned()
            };
            Ok((tag, p))
        }
        _ => Err(format!(
            "a window judges a latency percentile of the interval log, as \"latency_ms.first_token.p95\" or \"scheduled_latency_ms.complete.p99\" ({} and their p50, p90, p95, p99), not {metric:?}",
            LOGGED.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_holds_every_judged_figure() {
        let client = catalogue(Source::Client);
        for p in [
            "latency_ms.first_token.p95",
            "latency_ms.first_audio.corrected.p99",
            "scheduled_latency_ms.complete.p95",
            "requests.success_rate",
            "requests.dropped",
            "goodput",
            "cache.kb_hit_rate",
            "audio.stall_ms.p95",
        ] {
            assert!(check(Source::Client, p).is_ok(), "{p}: {client:#?}");
        }
        assert!(check(Source::Client, "errors.openai").is_ok());
        assert!(
            check(
                Source::Client,
                "latency_ms.first_token.corrected.corrected.p95"
            )
            .is_err()
        );
        for p in [
            "delta.kb_hit_rate",
            "latency_after.firstToken.p95",
            "system.memory.usage",
            "max_active_streams",
            "health_degraded_samples",
            "prefix_cache.hit_rate",
        ] {
            assert!(check(Source::Server, p).is_ok(), "{p}");
        }
        // Non-numeric and structural paths are not figures.
        assert!(check(Source::Client, "latency_ms.first_token").is_err());
        assert!(check(Source::Server, "available").is_err());
    }

    #[test]
    fn a_typo_is_named_with_the_nearest_path() {
        let e = check(Source::Client, "latency_ms.first_tokn.p95").unwrap_err();
        assert!(
            e.contains("did you mean \"latency_ms.first_token.p95\""),
            "{e}"
        );
        let e = check(Source::Server, "delta.kb_hitrate").unwrap_err();
        assert!(e.contains("\"delta.kb_hit_rate\""), "{e}");
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
