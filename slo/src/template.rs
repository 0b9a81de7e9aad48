//! `protocol = "template"`: any JSON-over-SSE chat API, described in the
//! scenario file without code. A request body template with placeholders,
//! and rules that map each SSE event (by its name and/or a field's value)
//! to a token, an audio chunk, the end, an error or nothing, with paths
//! into the event's JSON. Checked when the file is loaded.

use crate::format::clip;
use crate::record::ServerFigures;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `[template]` table.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// `POST` (the default) or `PUT`.
    #[serde(default = "post")]
    pub method: String,
    /// The request path, e.g. `/api/chat/stream`.
    pub path: String,
    /// The JSON request body with placeholders: `{{prompt}}`,
    /// `{{client_id}}`, `{{chatbot_id}}` (JSON-escaped, to be put inside
    /// quotes), `{{seq}}` (a number) and `{{audio}}` (true or false).
    pub body: String,
    /// The rules, tried in order; the first that matches an event says
    /// what it is. An event no rule matches is ignored.
    #[serde(rename = "event")]
    pub events: Vec<Rule>,
    /// The target's error types (the value at an error rule's `type`)
    /// and the outcome each counts as: openai, tts, network, validation
    /// or other. A type not listed counts as `other`.
    #[serde(default)]
    pub error_types: std::collections::BTreeMap<String, String>,
}

fn post() -> String {
    "POST".into()
}

/// One rule: when it matches, and what the event is.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The SSE event name (`event:`; `message` when the event has none).
    pub name: Option<String>,
    /// A path into the event's JSON and the value it must hold, e.g.
    /// `when = { path = "type", equals = "token" }`.
    pub when: Option<When>,
    /// token, audio, done, error or ignore.
    pub kind: Kind,
    /// Token: the path of its text (an empty text is not a first token);
    /// error: the path of its message.
    pub text: Option<String>,
    /// Audio: the path of its duration in ms.
    pub duration_ms: Option<String>,
    /// Error: the path of its type (see `error_types`).
    #[serde(rename = "type")]
    pub error_type: Option<String>,
    /// Done: an event whose data is exactly this text (e.g. `[DONE]`), not
    /// JSON.
    pub data: Option<String>,
    /// Done: where the server's own figures of the request are, when it
    /// reports them (paths into the event's JSON).
    pub figures: Option<FigurePaths>,
}

/// Paths of the server's figures in a done event (as docs/protocol.md's `done`
/// carries them).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FigurePaths {
    pub first_token_ms: Option<String>,
    pub first_audio_ms: Option<String>,
    pub duration_ms: Option<String>,
    /// The server's count of output tokens (words).
    pub word_count: Option<String>,
    /// `hit` or `miss`.
    pub kb_cache: Option<String>,
    pub tts_cache_hits: Option<String>,
    pub tts_cache_misses: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub path: String,
    pub equals: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Token,
    Audio,
    Done,
    Error,
    Ignore,
}

/// What an event is, by the rules.
#[derive(Clone, Debug, PartialEq)]
pub enum Meaning {
    Token {
        text: String,
    },
    Audio {
        duration_ms: u64,
    },
    Done(ServerFigures),
    /// The target's error type (as it wrote it) and message.
    Error {
        error_type: Option<String>,
        message: String,
    },
    Ignore,
}

/// The values of one request.
pub struct Values<'a> {
    pub prompt: &'a str,
    pub client_id: &'a str,
    pub chatbot_id: &'a str,
    pub seq: u64,
    pub audio: bool,
}

const PLACEHOLDERS: [&str; 5] = ["prompt", "client_id", "chatbot_id", "seq", "audio"];
const OUTCOMES: [&str; 5] = ["openai", "tts", "network", "validation", "other"];

/// A problem of a template: the dotted key and what is wrong.
pub type Problem = (String, String);

impl Template {
    /// Checks the whole template; the error names the key.
    pub fn check(&self) -> Result<(), Problem> {
        let m = self.method.to_ascii_uppercase();
        if m != "POST" && m != "PUT" {
            return Err((
                "template.method".into(),
                format!("POST or PUT, got {:?}", self.method),
            ));
        }
        if !self.path.starts_with('/') {
            return Err((
                "template.path".into(),
                format!("a path starting with /, got {:?}", self.path),
            ));
        }
        let sample = self
            .render(&Values {
                prompt: "a \"quoted\"\nline",
                client_id: "c",
                chatbot_id: "b",
                seq: 1,
                audio: true,
            })
            .map_err(|e| ("template.body".to_owned(), e))?;
        serde_json::from_slice::<Value>(&sample).map_err(|e| {
            (
                "template.body".to_owned(),
                format!(
                    "with its placeholders filled in, not JSON ({e}); string placeholders go inside quotes: \"{{{{prompt}}}}\""
                ),
            )
        })?;
        if self.events.is_empty() {
            return Err((
                "template.event".into(),
                "at least one [[template.event]] rule".into(),
            ));
        }
        if !self.events.iter().any(|r| r.kind == Kind::Done) {
            return Err((
                "template.event".into(),
                "a rule with kind = \"done\": without it no stream can succeed".into(),
            ));
        }
        for (i, r) in self.events.iter().enumerate() {
            r.check(&|k: &str| format!("template.event[{}].{k}", i + 1))?;
        }
        for (k, v) in &self.error_types {
            if !OUTCOMES.contains(&v.as_str()) {
                return Err((
                    format!("template.error_types.{k}"),
                    format!("one of {}, got {v:?}", OUTCOMES.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// The request body for `v`.
    pub fn render(&self, v: &Values) -> Result<Vec<u8>, String> {
        let mut out = String::with_capacity(self.body.len() + v.prompt.len());
        let mut rest = self.body.as_str();
        while let Some(i) = rest.find("{{") {
            out.push_str(&rest[..i]);
            let tail = &rest[i + 2..];
            let end = tail.find("}}").ok_or("a `{{` without its closing `}}`")?;
            let name = tail[..end].trim();
            match name {
                "prompt" => escape_into(&mut out, v.prompt),
                "client_id" => escape_into(&mut out, v.client_id),
                "chatbot_id" => escape_into(&mut out, v.chatbot_id),
                "seq" => out.push_str(&v.seq.to_string()),
                "audio" => out.push_str(if v.audio { "true" } else { "false" }),
                other => {
                    return Err(format!(
                        "unknown placeholder {{{{{other}}}}}; the placeholders are {}",
                        PLACEHOLDERS.map(|p| format!("{{{{{p}}}}}")).join(", ")
                    ));
                }
            }
            rest = &tail[end + 2..];
        }
        out.push_str(rest);
        Ok(out.into_bytes())
    }

    /// What one SSE event is. An error: the event matched a rule but its
    /// JSON lacks what the rule points at.
    pub fn meaning(&self, name: &str, data: &str) -> Result<Meaning, String> {
        // Parsed once, when a rule first looks into it.
        let json: std::cell::OnceCell<Option<Value>> = std::cell::OnceCell::new();
        let parsed = || -> Option<&Value> {
            json.get_or_init(|| serde_json::from_str(data).ok())
                .as_ref()
        };
        for r in &self.events {
            if r.name.as_deref().is_some_and(|n| n != name) {
                continue;
            }
            if let Some(d) = &r.data {
                if data.trim() == d {
                    return Ok(Meaning::Done(ServerFigures::default()));
                }
                continue;
            }
            if let Some(w) = &r.when
                && parsed()
                    .and_then(|v| at(v, &w.path))
                    .is_none_or(|v| *v != w.equals)
            {
                continue;
            }
            let need_json = || {
                parsed().ok_or_else(|| {
                    format!("a `{name}` event whose data is not JSON: {}", clip(data))
                })
            };
            return Ok(match r.kind {
                Kind::Ignore => Meaning::Ignore,
                Kind::Done => Meaning::Done(match &r.figures {
                    None => ServerFigures::default(),
                    Some(f) => {
                        let v = parsed();
                        let get = |p: &Option<String>| {
                            p.as_deref().and_then(|p| v.and_then(|v| at(v, p)))
                        };
                        let n = |p: &Option<String>| get(p).and_then(Value::as_u64);
                        ServerFigures {
                            first_token_ms: n(&f.first_token_ms),
                            first_audio_ms: n(&f.first_audio_ms),
                            duration_ms: n(&f.duration_ms),
                            word_count: n(&f.word_count),
                            kb_cache: get(&f.kb_cache).and_then(Value::as_str).map(str::to_owned),
                            tts_cache_hits: n(&f.tts_cache_hits),
                            tts_cache_misses: n(&f.tts_cache_misses),
                            input_tokens: None,
                        }
                    }
                }),
                Kind::Token => Meaning::Token {
                    text: match &r.text {
                        None => String::new(),
                        Some(p) => {
                            let v = need_json()?;
                            at(v, p)
                                .and_then(Value::as_str)
                                .ok_or_else(|| {
                                    format!(
                                        "a `{name}` event without a text at \"{p}\": {}",
                                        clip(data)
                                    )
                                })?
                                .to_owned()
                        }
                    },
                },
                Kind::Audio => {
                    let p = r.duration_ms.as_deref().unwrap_or_default();
                    let v = need_json()?;
                    Meaning::Audio {
                        duration_ms: at(v, p).and_then(Value::as_u64).ok_or_else(|| {
                            format!(
                                "a `{name}` event without a duration (ms) at \"{p}\": {}",
                                clip(data)
                            )
                        })?,
                    }
                }
                Kind::Error => {
                    let v = parsed();
                    let field = |p: &Option<String>| {
                        p.as_deref()
                            .and_then(|p| v.and_then(|v| at(v, p)))
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    };
                    Meaning::Error {
                        error_type: field(&r.error_type),
                        message: field(&r.text).unwrap_or_else(|| clip(data)),
                    }
                }
            });
        }
        Ok(Meaning::Ignore)
    }

    /// The outcome a target's error type counts as (`other` when not
    /// listed).
    pub fn outcome_of(&self, error_type: Option<&str>) -> &str {
        error_type
            .and_then(|t| self.error_types.get(t))
            .map_or("other", String::as_str)
    }
}

impl Rule {
    /// One `[[template.event]]` rule's paths and the keys its kind
    /// allows; `key` names a key of this rule in an error.
    fn check(&self, key: &dyn Fn(&str) -> String) -> Result<(), Problem> {
        let r = self;
        if r.name.is_none() && r.when.is_none() && r.data.is_none() {
            return Err((
                key("name"),
                "a rule needs name, when or data (else it matches every event)".into(),
            ));
        }
        for (k, path) in [
            ("text", &r.text),
            ("duration_ms", &r.duration_ms),
            ("type", &r.error_type),
        ] {
            if let Some(p) = path {
                check_path(p).map_err(|e| (key(k), e))?;
            }
        }
        if let Some(w) = &r.when {
            check_path(&w.path).map_err(|e| (key("when.path"), e))?;
        }
        let only = |set: bool, k: &str, kinds: &str| {
            if set {
                Err((key(k), format!("only with kind = {kinds}")))
            } else {
                Ok(())
            }
        };
        only(
            r.text.is_some() && !matches!(r.kind, Kind::Token | Kind::Error),
            "text",
            "\"token\" or \"error\"",
        )?;
        only(
            r.duration_ms.is_some() && r.kind != Kind::Audio,
            "duration_ms",
            "\"audio\"",
        )?;
        only(
            r.error_type.is_some() && r.kind != Kind::Error,
            "type",
            "\"error\"",
        )?;
        only(r.data.is_some() && r.kind != Kind::Done, "data", "\"done\"")?;
        only(
            r.figures.is_some() && r.kind != Kind::Done,
            "figures",
            "\"done\"",
        )?;
        if let Some(f) = &r.figures {
            for p in [
                &f.first_token_ms,
                &f.first_audio_ms,
                &f.duration_ms,
                &f.word_count,
                &f.kb_cache,
                &f.tts_cache_hits,
                &f.tts_cache_misses,
            ]
            .into_iter()
            .flatten()
            {
                check_path(p).map_err(|e| (key("figures"), e))?;
            }
        }
        if r.kind == Kind::Audio && r.duration_ms.is_none() {
            return Err((
                key("duration_ms"),
                "an audio rule needs the path of the chunk's duration in ms".into(),
            ));
        }
        Ok(())
    }
}

/// A dotted path with numeric indexes into arrays: `choices.0.delta.content`.
fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() || p.split('.').any(str::is_empty) {
        return Err(format!(
            "a dotted path into the event's JSON (e.g. \"choices.0.delta.content\"), got {p:?}"
        ));
    }
    Ok(())
}

/// The value at a dotted path.
pub fn at<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, seg| match v {
        Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
        _ => v.get(seg),
    })
}

/// `s` JSON-escaped, without the quotes.
fn escape_into(out: &mut String, s: &str) {
    let quoted = serde_json::to_string(s).expect("a string serializes");
    out.push_str(&quoted[1..quoted.len() - 1]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> Template {
        toml::from_str(
            r#"
path = "/chat"
body = '{"q": "{{prompt}}", "id": "{{client_id}}", "n": {{seq}}, "audio": {{audio}}}'
error_types = { llm = "openai" }
[[event]]
name = "message"
data = "[END]"
kind = "done"
[[event]]
when = { path = "type", equals = "delta" }
kind = "token"
text = "choices.0.text"
[[event]]
name = "speech"
kind = "audio"
duration_ms = "ms"
[[event]]
name = "failure"
kind = "error"
type = "kind"
text = "why"
"#,
        )
        .unwrap()
    }

    #[test]
    fn a_body_is_rendered_with_its_values_escaped() {
        let t = template();
        t.check().unwrap();
        let body = t
            .render(&Values {
                prompt: "Say \"hi\"\nthen {{seq}}",
                client_id: "c-1",
                chatbot_id: "b",
                seq: 7,
                audio: false,
            })
            .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["q"], "Say \"hi\"\nthen {{seq}}",
            "a value is never expanded"
        );
        assert_eq!(v["n"], 7);
        assert_eq!(v["audio"], false);
    }

    #[test]
    fn events_are_mapped_by_name_and_field() {
        let t = template();
        assert_eq!(
            t.meaning("message", r#"{"type":"delta","choices":[{"text":"Hi"}]}"#)
                .unwrap(),
            Meaning::Token { text: "Hi".into() }
        );
        assert_eq!(
            t.meaning("message", "[END]").unwrap(),
            Meaning::Done(ServerFigures::default())
        );
        assert_eq!(
            t.meaning("message", r#"{"type":"other"}"#).unwrap(),
            Meaning::Ignore
        );
        assert_eq!(
            t.meaning("speech", r#"{"ms": 1840}"#).unwrap(),
            Meaning::Audio { duration_ms: 1840 }
        );
        assert!(
            t.meaning("speech", r#"{"dur": 1}"#)
                .unwrap_err()
                .contains("\"ms\"")
        );
        let e = t
            .meaning("failure", r#"{"kind":"llm","why":"boom"}"#)
            .unwrap();
        assert_eq!(
            e,
            Meaning::Error {
                error_type: Some("llm".into()),
                message: "boom".into()
            }
        );
        assert_eq!(t.outcome_of(Some("llm")), "openai");
        assert_eq!(t.outcome_of(Some("disk")), "other");
    }

    #[test]
    fn a_broken_template_names_the_key() {
        let mut t = template();
        t.body = r#"{"q": {{prompt}}}"#.into();
        assert_eq!(t.check().unwrap_err().0, "template.body");
        let mut t = template();
        t.body = r#"{"q": "{{question}}"}"#.into();
        assert!(
            t.check()
                .unwrap_err()
                .1
                .contains("unknown placeholder {{question}}")
        );
        let mut t = template();
        t.events[2].duration_ms = None;
        assert_eq!(t.check().unwrap_err().0, "template.event[3].duration_ms");
        let mut t = template();
        t.events.remove(0);
        assert!(t.check().unwrap_err().1.contains("kind = \"done\""));
        let mut t = template();
        t.error_types.insert("x".into(), "boom".into());
        assert_eq!(t.check().unwrap_err().0, "template.error_types.x");
    }
}
