//! What a latency objective's reason says about where the time went:
//! the phases before the first token, from the client's own connection
//! (`report.json` `phases_ms`, see [`crate::aggregate::PhaseFigures`]).
//! Percentiles of phases do not add up to the percentile of their sum,
//! so each is given as itself, at the objective's own percentile; between
//! two reports (`compare`), each phase's move at that percentile.

use crate::aggregate::{LatencyFigures, PhaseFigures};
use crate::evidence::Percentile;
use crate::format::num;

/// For an objective on a first-token or first-audio percentile (from the
/// send or the schedule): the time before the response head (and of it,
/// after the body was written: the target's queue and its work) and after
/// it, at the objective's percentile, and the new connections' phases.
/// `None` for any other metric, or a run that recorded no phases.
pub fn split(metric: &str, phases: &PhaseFigures) -> Option<String> {
    let (name, stat, p) = phased(metric)?;
    if phases.head.count == 0 {
        return None;
    }
    let at = |f: &LatencyFigures| f.percentile(p).map_or("—".to_owned(), num);
    let mut said = format!(
        "where the time went ({stat}s, ms): the response head {} after the request was written (the target's queue and work before it answered), written {} after the send",
        at(&phases.head),
        at(&phases.written),
    );
    if name == "first_token" {
        said.push_str(&format!(
            ", the first token {} after the head",
            at(&phases.after_head)
        ));
    }
    if phases.new_connections > 0 {
        said.push_str(&format!(
            "; {} new connections: DNS {}, connect {}, TLS {}",
            phases.new_connections,
            at(&phases.dns),
            at(&phases.connect),
            at(&phases.tls)
        ));
    }
    Some(said)
}

/// A client latency percentile the phases can split: its latency's name
/// (`first_token`, `first_audio`, `complete`), its statistic's name and
/// percentile; `None` for any other metric.
fn phased(metric: &str) -> Option<(&str, &str, Percentile)> {
    let parts: Vec<&str> = metric.split('.').collect();
    let (name, stat) = match parts.as_slice() {
        [table, name, stat] | [table, name, "corrected", stat]
            if *table == "latency_ms" || *table == "scheduled_latency_ms" =>
        {
            (*name, *stat)
        }
        _ => return None,
    };
    let p = Percentile::named(stat)?;
    matches!(name, "first_token" | "first_audio" | "complete").then_some((name, stat, p))
}

/// For a regressed first-token, first-audio or complete percentile of
/// `compare`: how much each phase moved between the two reports, at the
/// objective's percentile ("first token p95 +300 ms: +280 before the
/// response head (the target's queue and work), +20 after it").
/// `None` for any other metric, or when either report kept no phases.
pub fn moved(
    metric: &str,
    baseline: &serde_json::Value,
    current: &serde_json::Value,
) -> Option<String> {
    let (name, stat, _) = phased(metric)?;
    let at = |doc: &serde_json::Value, path: &str| {
        crate::objective::lookup(doc, &format!("phases_ms.{path}.{stat}"))
    };
    let delta = |path: &str| Some(at(current, path)? - at(baseline, path)?);
    let whole =
        crate::objective::lookup(current, metric)? - crate::objective::lookup(baseline, metric)?;
    let signed = |v: f64| format!("{}{}", if v >= 0.0 { "+" } else { "" }, num(v));
    let mut said = format!(
        "{} {stat} {} ms: {} before the response head (after the request was written: the target's queue and work)",
        name.replace('_', " "),
        signed(whole),
        signed(delta("head")?)
    );
    if name == "first_token" {
        said.push_str(&format!(", {} after it", signed(delta("after_head")?)));
    }
    if let Some(c) = delta("connect").filter(|c| c.abs() >= 1.0) {
        said.push_str(&format!(", connecting {}", signed(c)));
    }
    Some(said)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::PhaseHistograms;
    use crate::record::RequestRecord;

    fn record(written: u64, head: u64, first: u64, connect: Option<u64>) -> RequestRecord {
        RequestRecord {
            written_us: Some(written),
            headers_us: Some(head),
            first_token_us: Some(first),
            connect_us: connect,
            tls_us: connect.map(|c| c * 3),
            ..RequestRecord::default()
        }
    }

    #[test]
    fn a_slow_head_is_put_before_the_head() {
        let mut h = PhaseHistograms::default();
        // 100 requests: written after 1 ms, the head 1,200 ms after that,
        // the first token 20 ms after the head; the first 10 connected.
        for i in 0..100u64 {
            let connect = (i < 10).then_some(500);
            h.add(&record(1_000, 1_201_000, 1_221_000, connect));
        }
        let f = h.figures();
        assert_eq!(f.new_connections, 10);
        assert_eq!(f.head.count, 100);
        let said = split("scheduled_latency_ms.first_token.p95", &f).unwrap();
        assert!(said.contains("the response head 1200"), "{said}");
        assert!(said.contains("the first token 20"), "{said}");
        assert!(
            said.contains("10 new connections") && said.contains("TLS 1.5"),
            "{said}"
        );
        // Not a latency before the first token: nothing to say.
        assert_eq!(split("latency_ms.inter_token.p95", &f), None);
        assert_eq!(split("requests.success_rate", &f), None);
        assert_eq!(
            split("latency_ms.first_token.p95", &PhaseFigures::default()),
            None
        );
    }

    #[test]
    fn a_regression_is_split_by_where_the_time_was_added() {
        let doc = |ft: f64, head: f64, after: f64| {
            serde_json::json!({
                "latency_ms": {"first_token": {"p95": ft}},
                "phases_ms": {"head": {"p95": head}, "after_head": {"p95": after},
                              "connect": {"p95": 0.2}},
            })
        };
        let said = moved(
            "latency_ms.first_token.p95",
            &doc(500.0, 450.0, 50.0),
            &doc(800.0, 730.0, 70.0),
        )
        .unwrap();
        assert!(
            said.starts_with("first token p95 +300 ms: +280 before the response head"),
            "{said}"
        );
        assert!(
            said.contains("+20 after it") && !said.contains("connecting"),
            "{said}"
        );
        // A report without phases (written before they were kept): nothing.
        let old = serde_json::json!({"latency_ms": {"first_token": {"p95": 500.0}}});
        assert_eq!(
            moved("latency_ms.first_token.p95", &old, &doc(800.0, 730.0, 70.0)),
            None
        );
        assert_eq!(moved("requests.success_rate", &old, &old), None);
    }

    #[test]
    fn a_request_without_a_head_has_no_phases_after_it() {
        let mut h = PhaseHistograms::default();
        h.add(&RequestRecord {
            connect_us: Some(300),
            ..RequestRecord::default()
        });
        assert_eq!(h.figures().head.count, 0);
        assert_eq!(h.figures().new_connections, 0);
    }
}
