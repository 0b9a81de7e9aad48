//! A drill judged: the timeline's events as they happened, the guide's
//! alerts as they fired, and from both the time to detect each incident,
//! the time to recover after its mitigation, what went wrong (an expected
//! alert that never fired, an alert nothing called for, an incident not
//! recovered by the end), and an incident report in the guide's format.

use crate::aggregate::{DrillFigures, Second};
use crate::alerts::eval::AlertRecord;
use crate::monitoring::thresholds::{ERROR_RATE_FAIL, ERROR_RATE_WARN, FIRST_TOKEN_P95_WARN_MS};
use crate::scenario::Recover;
use crate::severity::Severity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A timeline event as it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EventRecord {
    /// When it was applied, in seconds on the CSV's time base (from the
    /// first request).
    pub at_s: f64,
    pub name: String,
    /// What it did.
    pub action: String,
    /// Whether the target took it (an HTTP 2xx, a command's exit 0).
    pub ok: bool,
    /// The answer, the command's exit status, or why it failed.
    pub detail: String,
    /// The alerts it must set off (a drill's incident).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expect: Vec<String>,
    /// The incident it mitigates, and what recovered means.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigates: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<Recover>,
}

impl EventRecord {
    /// The record of `e` applied at `at_s`.
    pub fn of(e: &crate::scenario::TimelineEvent, at_s: f64, ok: bool, detail: String) -> Self {
        EventRecord {
            at_s,
            name: e.name(),
            action: e.describe(),
            ok,
            detail,
            expect: e.expect.clone(),
            mitigates: e.mitigates.clone(),
            recover: e.mitigates.as_ref().map(|_| e.recover.unwrap_or_default()),
        }
    }
}

/// The guide's alerts during the run: the built-in evaluation's, and a
/// Prometheus's when one was named.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertsSection {
    /// Whose alerts judge the drill: `builtin` or `prometheus`.
    pub judged_by: String,
    /// Evaluation interval and the factor on the rules' windows and `for`.
    pub interval_s: f64,
    pub scale: f64,
    /// Evaluations made on a successful read of the target's `/metrics`
    /// (with the guide's metrics in it).
    pub evaluations: u64,
    /// Successful reads of Prometheus's alerts.
    #[serde(default)]
    pub prometheus_reads: u64,
    pub builtin: Vec<AlertRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<Vec<AlertRecord>>,
    /// What could not be read (the target's `/metrics`, Prometheus), each
    /// once with how often.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl AlertsSection {
    /// Every alert recorded, the built-in evaluation's first.
    pub fn all(&self) -> Vec<&AlertRecord> {
        self.builtin
            .iter()
            .chain(self.prometheus.iter().flatten())
            .collect()
    }

    /// How the rules were evaluated, in a sentence.
    pub fn describe(&self) -> String {
        format!(
            "The guide's alert rules, evaluated every {} s, windows and `for` at {}× the guide's; {} judged the drill.{}",
            crate::format::num(self.interval_s),
            self.scale,
            self.judged_by,
            if self.problems.is_empty() {
                String::new()
            } else {
                format!(" Not read: {}.", self.problems.join("; "))
            }
        )
    }

    /// Why the alerts that judge the drill cannot be trusted: never read.
    pub fn unread(&self) -> Option<String> {
        let (n, what) = if self.judged_by == "prometheus" {
            (self.prometheus_reads, "Prometheus's alerts were never read")
        } else {
            (
                self.evaluations,
                "the guide's alert rules were never evaluated: the target's metrics could not be read",
            )
        };
        (n == 0).then(|| {
            format!(
                "{what} ({})",
                if self.problems.is_empty() {
                    "no evaluation in the run".to_owned()
                } else {
                    self.problems.join("; ")
                }
            )
        })
    }

    /// The alerts that judge the drill.
    pub fn judged(&self) -> &[AlertRecord] {
        match (&self.prometheus, self.judged_by.as_str()) {
            (Some(p), "prometheus") => p,
            _ => &self.builtin,
        }
    }
}

/// One incident of a drill, in the guide's incident-report format.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Incident {
    /// The event that started it.
    pub name: String,
    pub start_s: f64,
    /// When the first expected alert fired.
    pub detected_s: Option<f64>,
    /// The mitigation, when one was applied.
    pub mitigation: Option<String>,
    pub mitigated_s: Option<f64>,
    /// When it was over (recovered); `None`: not by the end of the run.
    pub end_s: Option<f64>,
    pub severity: Severity,
    /// Requests that ended within the incident, and how many failed.
    pub requests: u64,
    pub failed: u64,
    /// Percent of them.
    pub error_rate: f64,
    /// The alerts that fired during it.
    pub alerts: Vec<String>,
}

impl Incident {
    /// The guide's incident report ("Step 4: Document Incident"), field
    /// by field; `root_cause` and `resolution` are the actions of the
    /// events that started and mitigated it.
    pub fn fields(
        &self,
        root_cause: &str,
        resolution: Option<&str>,
    ) -> Vec<(&'static str, String)> {
        let s = |t: f64| format!("{} s", crate::format::num(t));
        let after = |t: Option<f64>| {
            t.map_or("never".to_owned(), |t| {
                format!("{} ({} after the start)", s(t), s(t - self.start_s))
            })
        };
        vec![
            ("Start time", s(self.start_s)),
            ("Detected", after(self.detected_s)),
            (
                "Mitigated",
                match (&self.mitigation, self.mitigated_s) {
                    (Some(m), Some(t)) => format!("{} by {m}", after(Some(t))),
                    _ => "no mitigation in the timeline".to_owned(),
                },
            ),
            (
                "End time",
                self.end_s
                    .map_or("not recovered by the end of the run".to_owned(), |t| {
                        after(Some(t))
                    }),
            ),
            ("Severity", format!("{:?}", self.severity)),
            (
                "Impact",
                format!(
                    "{} of {} requests failed ({} %) over {}",
                    self.failed,
                    self.requests,
                    crate::format::num(self.error_rate),
                    self.end_s
                        .map_or("the rest of the run".to_owned(), |e| s(e - self.start_s))
                ),
            ),
            (
                "Alerts",
                if self.alerts.is_empty() {
                    "none fired".to_owned()
                } else {
                    self.alerts.join(", ")
                },
            ),
            ("Root cause", root_cause.to_owned()),
            (
                "Resolution",
                resolution.unwrap_or("none in the timeline").to_owned(),
            ),
        ]
    }
}

/// The incidents of a report with their guide fields, the actions of their
/// events filled in.
pub fn incident_reports<'a>(
    incidents: &'a [Incident],
    events: &[EventRecord],
) -> Vec<(&'a Incident, Vec<(&'static str, String)>)> {
    let action = |name: &str| {
        events
            .iter()
            .find(|e| e.name == name)
            .map(|e| e.action.clone())
    };
    incidents
        .iter()
        .map(|i| {
            let cause = action(&i.name).unwrap_or_default();
            let fix = i.mitigation.as_deref().and_then(action);
            (i, i.fields(&cause, fix.as_deref()))
        })
        .collect()
}

/// An alert's times in words: pending from, fired, resolved.
pub fn alert_row(a: &AlertRecord) -> [String; 7] {
    let t = |v: f64| crate::format::num(v);
    [
        a.name.clone(),
        a.severity.clone(),
        a.source.as_str().to_owned(),
        t(a.active_at_s),
        t(a.firing_at_s),
        a.resolved_at_s.map_or("still firing".to_owned(), t),
        a.value.map_or("—".to_owned(), |v| {
            let s = format!("{v:.3}");
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        }),
    ]
}

/// The header of [`alert_row`]'s columns.
pub const ALERT_COLUMNS: [&str; 7] = [
    "alert",
    "severity",
    "source",
    "pending from (s)",
    "fired (s)",
    "resolved (s)",
    "value",
];

/// A drill's judgment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Judgment {
    pub figures: BTreeMap<String, DrillFigures>,
    pub incidents: Vec<Incident>,
    /// Each fails the run.
    pub problems: Vec<String>,
}

/// How long a figure must stay back under its threshold to count as
/// recovered, when the run ends soon after (seconds).
pub const RECOVERED_FOR_S: u64 = 2;

/// Judges the drill of `events` on `alerts` and the per-second `series`
/// of a run that ended at `end_s`. No event expecting an alert and no
/// alert: nothing to judge.
pub fn judge(
    events: &[EventRecord],
    alerts: &[AlertRecord],
    series: &[Second],
    end_s: f64,
) -> Judgment {
    let mut j = Judgment::default();
    let family = |name: &str| crate::alerts::eval::family_of(name).unwrap_or("");
    // Every alert some event called for, by family, from that event on.
    for a in alerts {
        let called = events
            .iter()
            .any(|e| e.at_s <= a.firing_at_s && e.expect.iter().any(|x| family(x) == a.family));
        if !called {
            j.problems.push(format!(
                "alert {} fired at {} s ({}, from {} s) with nothing in the timeline calling for it",
                a.name,
                crate::format::num(a.firing_at_s),
                a.severity,
                crate::format::num(a.active_at_s)
            ));
        }
    }
    let incidents: Vec<&EventRecord> = events.iter().filter(|e| !e.expect.is_empty()).collect();
    for (k, e) in incidents.iter().enumerate() {
        let families: Vec<&str> = e.expect.iter().map(|x| family(x)).collect();
        // Alerts of this incident: its families, fired from it on, before
        // the next incident of the same families.
        let until = incidents[k + 1..]
            .iter()
            .find(|o| o.expect.iter().any(|x| families.contains(&family(x))))
            .map_or(f64::INFINITY, |o| o.at_s);
        let own: Vec<&AlertRecord> = alerts
            .iter()
            .filter(|a| {
                a.firing_at_s >= e.at_s
                    && a.firing_at_s < until
                    && families.contains(&a.family.as_str())
            })
            .collect();
        for x in &e.expect {
            if !own.iter().any(|a| &a.name == x) {
                j.problems.push(format!(
                    "alert {x} never fired after {} (at {} s): the drill expected it",
                    e.name,
                    crate::format::num(e.at_s)
                ));
            }
        }
        let detected = own
            .iter()
            .filter(|a| e.expect.contains(&a.name))
            .map(|a| a.firing_at_s)
            .min_by(f64::total_cmp);
        j.figures.entry(e.name.clone()).or_default().detect_s =
            detected.map(|t| round3(t - e.at_s));
        // Its mitigation, and when it was over.
        let fix = events
            .iter()
            .find(|m| m.mitigates.as_deref() == Some(e.name.as_str()));
        let end = fix.and_then(|m| {
            let back = recovered_at(m, &own, series, end_s);
            j.figures.entry(m.name.clone()).or_default().recover_s =
                back.map(|t| round3(t - m.at_s));
            if back.is_none() {
                j.problems.push(not_recovered(e, m));
            }
            back
        });
        let last = end.unwrap_or(end_s);
        let inside: Vec<&Second> = series
            .iter()
            .filter(|s| s.t as f64 + 1.0 > e.at_s && (s.t as f64) < last)
            .collect();
        let requests: u64 = inside.iter().map(|s| s.completed).sum();
        let failed: u64 = inside.iter().map(|s| s.errors).sum();
        let error_rate = if requests > 0 {
            failed as f64 * 100.0 / requests as f64
        } else {
            0.0
        };
        j.incidents.push(Incident {
            name: e.name.clone(),
            start_s: round3(e.at_s),
            detected_s: detected.map(round3),
            mitigation: fix.map(|m| m.name.clone()),
            mitigated_s: fix.map(|m| round3(m.at_s)),
            end_s: end.map(round3),
            severity: incident_severity(error_rate, &own),
            requests,
            failed,
            error_rate: round3(error_rate),
            alerts: own.iter().map(|a| a.name.clone()).collect(),
        });
    }
    j
}

/// When the incident `m` mitigates was over, by `m`'s recovery rule:
/// its alerts all resolved, or the error rate or first-token p95 back
/// under the guide's warning line.
fn recovered_at(
    m: &EventRecord,
    own: &[&AlertRecord],
    series: &[Second],
    end_s: f64,
) -> Option<f64> {
    match m.recover.unwrap_or_default() {
        Recover::Alerts => {
            if own.iter().all(|a| a.resolved_at_s.is_some()) {
                own.iter()
                    .filter_map(|a| a.resolved_at_s)
                    .max_by(f64::total_cmp)
                    .map(|t| t.max(m.at_s))
            } else {
                None
            }
        }
        Recover::ErrorRate => back_under(series, m.at_s, end_s, |s| {
            (s.completed > 0)
                .then(|| s.errors as f64 * 100.0 / s.completed as f64 <= ERROR_RATE_WARN)
        }),
        Recover::FirstTokenP95 => back_under(series, m.at_s, end_s, |s| {
            s.p95_first_token_ms
                .map(|p| p <= FIRST_TOKEN_P95_WARN_MS as f64)
        }),
    }
}

/// The problem of an incident `e` that its mitigation `m` did not end.
fn not_recovered(e: &EventRecord, m: &EventRecord) -> String {
    format!(
        "{} did not recover after {} (at {} s): {} not back under its threshold by the end of the run",
        e.name,
        m.name,
        crate::format::num(m.at_s),
        match m.recover.unwrap_or_default() {
            Recover::Alerts => "its alerts were".to_owned(),
            Recover::ErrorRate => format!("the error rate ({ERROR_RATE_WARN} %) was"),
            Recover::FirstTokenP95 => format!("p95 first token ({FIRST_TOKEN_P95_WARN_MS} ms) was"),
        }
    )
}

/// The guide's severity of an incident: by its error rate (P1 over 10 %,
/// P2 over 5 %, P3 over 2 %), else P2 when a critical alert fired, P3 when
/// a warning did, P4 otherwise.
fn incident_severity(error_rate: f64, alerts: &[&AlertRecord]) -> Severity {
    if error_rate > 2.0 * ERROR_RATE_FAIL {
        Severity::P1
    } else if error_rate > ERROR_RATE_FAIL
        || alerts
            .iter()
            .any(|a| a.severity == crate::alerts::AlertSeverity::Critical.as_str())
    {
        Severity::P2
    } else if error_rate > ERROR_RATE_WARN || !alerts.is_empty() {
        Severity::P3
    } else {
        Severity::P4
    }
}

/// The start of the first second from `from` on after which `ok` holds in
/// every second with data until the end of the run, for at least
/// [`RECOVERED_FOR_S`] seconds with data; `None` if it never does.
fn back_under(
    series: &[Second],
    from: f64,
    end_s: f64,
    ok: impl Fn(&Second) -> Option<bool>,
) -> Option<f64> {
    let after: Vec<(u64, bool)> = series
        .iter()
        .filter(|s| s.t as f64 >= from.floor() && (s.t as f64) < end_s)
        .filter_map(|s| ok(s).map(|b| (s.t, b)))
        .collect();
    let bad_last = after.iter().rposition(|(_, b)| !b);
    let good = &after[bad_last.map_or(0, |i| i + 1)..];
    if good.len() < RECOVERED_FOR_S as usize {
        return None;
    }
    Some((good[0].0 as f64).max(from))
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: f64, name: &str, expect: &[&str], mitigates: Option<&str>) -> EventRecord {
        EventRecord {
            at_s: at,
            name: name.into(),
            action: "x".into(),
            ok: true,
            detail: String::new(),
            expect: expect.iter().map(|s| (*s).to_owned()).collect(),
            mitigates: mitigates.map(str::to_owned),
            recover: mitigates.map(|_| Recover::ErrorRate),
        }
    }

    fn alert(name: &str, at: f64, fired: f64, resolved: Option<f64>) -> AlertRecord {
        AlertRecord {
            name: name.into(),
            severity: if name.ends_with("Critical") {
                "critical"
            } else {
                "warning"
            }
            .into(),
            family: crate::alerts::eval::family_of(name).unwrap().into(),
            source: crate::alerts::eval::AlertSource::Builtin,
            active_at_s: at,
            firing_at_s: fired,
            resolved_at_s: resolved,
            value: Some(0.1),
        }
    }

    /// Seconds 0..n: 10 requests each, `bad` of them failing from `from`
    /// to `to`.
    fn series(n: u64, (from, to): (u64, u64), bad: u64) -> Vec<Second> {
        (0..n)
            .map(|t| {
                let mut s = Second::empty(t);
                s.completed = 10;
                s.errors = if (from..to).contains(&t) { bad } else { 0 };
                s
            })
            .collect()
    }

    #[test]
    fn detection_recovery_and_the_incident_report() {
        let events = [
            event(5.2, "spike", &["ChatbotErrorRateCritical"], None),
            event(12.0, "rollout-0", &[], Some("spike")),
        ];
        let alerts = [
            alert("ChatbotErrorRateCritical", 6.0, 9.0, Some(24.0)),
            alert("ChatbotSuccessRateCritical", 6.0, 9.0, Some(24.0)),
        ];
        let j = judge(&events, &alerts, &series(30, (5, 13), 3), 30.0);
        assert!(j.problems.is_empty(), "{:?}", j.problems);
        assert_eq!(j.figures["spike"].detect_s, Some(3.8));
        // Errors last until second 12 (its bucket [12, 13)): clean from 13.
        assert_eq!(j.figures["rollout-0"].recover_s, Some(1.0));
        let i = &j.incidents[0];
        assert_eq!(
            (i.start_s, i.detected_s, i.end_s),
            (5.2, Some(9.0), Some(13.0))
        );
        // Seconds 5..12: 8 × 10 requests, 8 × 3 failed: 30 %, P1.
        assert_eq!((i.requests, i.failed, i.severity), (80, 24, Severity::P1));
        assert_eq!(i.alerts.len(), 2);
    }

    #[test]
    fn a_missing_alert_an_uncalled_alert_and_no_recovery_each_fail() {
        let events = [
            event(5.0, "spike", &["ChatbotErrorRateCritical"], None),
            event(12.0, "rollout-0", &[], Some("spike")),
        ];
        // The expected alert never fired; a latency alert nobody called for did.
        let alerts = [alert("ChatbotFirstTokenLatencyHigh", 2.0, 4.0, None)];
        // Errors until the end: no recovery.
        let j = judge(&events, &alerts, &series(20, (5, 20), 3), 20.0);
        assert_eq!(j.figures["spike"].detect_s, None);
        assert_eq!(j.figures["rollout-0"].recover_s, None);
        let all = j.problems.join("\n");
        assert!(
            all.contains("alert ChatbotErrorRateCritical never fired after spike"),
            "{all}"
        );
        assert!(
            all.contains("alert ChatbotFirstTokenLatencyHigh fired at 4 s"),
            "{all}"
        );
        assert!(
            all.contains("spike did not recover after rollout-0"),
            "{all}"
        );
        assert_eq!(j.problems.len(), 3);
        // A warning of the same family as the expected critical is called for.
        let warn = [
            alert("ChatbotErrorRateHigh", 6.0, 8.0, Some(9.0)),
            alert("ChatbotErrorRateCritical", 8.0, 10.0, Some(20.0)),
        ];
        let j = judge(&events, &warn, &series(30, (5, 12), 3), 30.0);
        assert!(j.problems.is_empty(), "{:?}", j.problems);
        assert_eq!(j.figures["spike"].detect_s, Some(5.0));
    }
}
