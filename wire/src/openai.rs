//! The OpenAI chat completions wire format, as the reference server speaks
//! it (`POST /v1/chat/completions`, `GET /v1/models`): the request with
//! its rules, the streamed chunks ending with `data: [DONE]`, the one-JSON
//! answer, usage, error bodies and the model list.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const CHAT_COMPLETIONS_PATH: &str = "/v1/chat/completions";
pub const MODELS_PATH: &str = "/v1/models";
/// The `data:` of the last event of a stream.
pub const DONE: &str = "[DONE]";
/// The longest last message the reference server takes, in characters:
/// about 128,000 tokens of English, a large model's context.
pub const MAX_PROMPT_CHARS: usize = 512_000;

/// A chat completion request. Fields the server does not use are kept in
/// `extra` (and ignored), as OpenAI-compatible servers do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Generate at least this many tokens before stopping (vLLM's and
    /// SGLang's sampling extension): with `max_tokens`, an exact length.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tokens: Option<u32>,
    /// Generate past the end-of-sequence token, up to `max_tokens` (vLLM's
    /// sampling extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_eos: Option<bool>,
    /// The end user; the reference server takes it as the client id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Message {
    pub role: String,
    /// The text. A request may also send a list of content parts, as the
    /// OpenAI API takes (GuideLLM sends `[{"type": "text", "text": ...}]`):
    /// the text parts are read, joined; written back, it is a string.
    #[serde(deserialize_with = "content_text")]
    #[schemars(with = "Content")]
    pub content: String,
}

/// `content` as a request may send it.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // read through `content_text`; the schema shows it
enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

#[derive(Deserialize, JsonSchema)]
struct ContentPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

fn content_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use serde::de::Error;
    match Content::deserialize(d)? {
        Content::Text(text) => Ok(text),
        Content::Parts(parts) => parts
            .into_iter()
            .map(|p| match (p.kind.as_str(), p.text) {
                ("text", Some(text)) => Ok(text),
                ("text", None) => Err(D::Error::custom("a \"text\" content part without its text")),
                (kind, _) => Err(D::Error::custom(format!(
                    "a content part of type {kind:?}: the reference server reads text parts only"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|texts| texts.concat()),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// A request that breaks a rule: what to say and which parameter.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    pub message: String,
    pub param: Option<String>,
}

impl ChatCompletionRequest {
    /// A body checked rule by rule; the error names the parameter.
    pub fn parse(body: &[u8]) -> Result<ChatCompletionRequest, InvalidRequest> {
        let invalid = |message: String, param: &str| InvalidRequest {
            message,
            param: Some(param.to_owned()),
        };
        let r: ChatCompletionRequest = serde_json::from_slice(body).map_err(|e| InvalidRequest {
            message: format!(
                "the body is not a chat completion request ({e}); send {{\"model\": ..., \"messages\": [{{\"role\": \"user\", \"content\": ...}}]}}"
            ),
            param: None,
        })?;
        if r.model.trim().is_empty() {
            return Err(invalid("model must not be empty".into(), "model"));
        }
        let Some(last) = r.messages.last() else {
            return Err(invalid(
                "messages must hold at least one message".into(),
                "messages",
            ));
        };
        if last.role != "user" {
            return Err(invalid(
                format!(
                    "the last message must be the user's, got role {:?}",
                    last.role
                ),
                "messages",
            ));
        }
        let chars = last.content.trim().chars().count();
        if chars == 0 || chars > MAX_PROMPT_CHARS {
            return Err(invalid(
                format!(
                    "the last message must be 1 to {MAX_PROMPT_CHARS} characters after trimming, got {chars}"
                ),
                "messages",
            ));
        }
        if r.max_limit() == Some(0) {
            return Err(invalid(
                "max_tokens must be at least 1".into(),
                "max_tokens",
            ));
        }
        if let (Some(least), Some(most)) = (r.min_tokens, r.max_limit())
            && least > most
        {
            return Err(invalid(
                format!("min_tokens ({least}) must not be more than max_tokens ({most})"),
                "min_tokens",
            ));
        }
        Ok(r)
    }

    /// The most tokens to generate (`max_completion_tokens` over `max_tokens`).
    pub fn max_limit(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// The fewest tokens to generate: `min_tokens`, or every one up to
    /// the limit with `ignore_eos`.
    pub fn min_limit(&self) -> Option<u32> {
        match (self.ignore_eos, self.max_limit()) {
            (Some(true), Some(most)) => Some(most),
            _ => self.min_tokens,
        }
    }

    /// The question: the last user message, trimmed.
    pub fn question(&self) -> &str {
        self.messages.last().map_or("", |m| m.content.trim())
    }

    /// Prompt tokens, counted as words of every message.
    pub fn prompt_tokens(&self) -> u64 {
        self.messages
            .iter()
            .map(|m| m.content.split_whitespace().count() as u64)
            .sum()
    }
}

/// One streamed chunk (`object: "chat.completion.chunk"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub finish_reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// A reasoning model's thinking (vLLM, DeepSeek: `reasoning_content`;
    /// newer servers: `reasoning`): not the answer's content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
}

impl Usage {
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// The non-streamed answer (`object: "chat.completion"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCompletion {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Choice {
    pub index: u32,
    pub message: Message,
    pub finish_reason: String,
}

/// An error body, and an in-stream error chunk: `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorResponse {
    pub error: ApiError,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApiError {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub param: Option<String>,
    pub code: Option<String>,
}

impl ErrorResponse {
    pub fn new(kind: &str, code: Option<&str>, message: impl Into<String>) -> ErrorResponse {
        ErrorResponse {
            error: ApiError {
                message: message.into(),
                kind: kind.to_owned(),
                param: None,
                code: code.map(str::to_owned),
            },
        }
    }
}

/// `GET /v1/models`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelList {
    pub object: String,
    pub data: Vec<ModelEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelEntry {
    pub id: String,
    pub object: String,
    pub created: u64,
    pub owned_by: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_a_string_or_its_text_parts() {
        let r = ChatCompletionRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"Hello, "},{"type":"text","text":"there"}]}]}"#,
        )
        .unwrap();
        assert_eq!(r.messages[0].content, "Hello, there");
        let back = serde_json::to_value(&r.messages[0]).unwrap();
        assert_eq!(back["content"], "Hello, there", "written back as a string");
        for (body, says) in [
            (
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#,
                "a content part of type \"image_url\": the reference server reads text parts only",
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":7}]}"#,
                "did not match any variant",
            ),
        ] {
            let e = ChatCompletionRequest::parse(body.as_bytes()).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn a_request_names_the_parameter_it_breaks() {
        let ok = ChatCompletionRequest::parse(
            br#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":" Hi there "}],"stream":true,"stream_options":{"include_usage":true},"max_tokens":5,"seed":7}"#,
        )
        .unwrap();
        assert_eq!(ok.question(), "Hi there");
        assert_eq!(ok.prompt_tokens(), 4);
        assert_eq!(ok.max_limit(), Some(5));
        assert!(ok.stream_options.unwrap().include_usage);
        assert_eq!(ok.extra["seed"], 7, "unknown fields are kept");
        assert_eq!(ok.min_limit(), None);
        // vLLM's extensions: at least min_tokens, or all with ignore_eos.
        let exact = |extra: &str| {
            ChatCompletionRequest::parse(
                format!(
                    r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"max_tokens":9{extra}}}"#
                )
                .as_bytes(),
            )
        };
        assert_eq!(exact(r#","min_tokens":4"#).unwrap().min_limit(), Some(4));
        assert_eq!(exact(r#","ignore_eos":true"#).unwrap().min_limit(), Some(9));
        assert_eq!(
            exact(r#","min_tokens":10"#).unwrap_err().param.as_deref(),
            Some("min_tokens")
        );
        // A long prompt, as an engine takes (chat-v1's 4,000 characters
        // are that protocol's rule, not this one's).
        let long = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"{}"}}]}}"#,
            "word ".repeat(4000)
        );
        assert!(ChatCompletionRequest::parse(long.as_bytes()).is_ok());
        for (body, param) in [
            (r#"{"model":"m","messages":[]}"#, Some("messages")),
            (
                r#"{"model":"m","messages":[{"role":"assistant","content":"x"}]}"#,
                Some("messages"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"  "}]}"#,
                Some("messages"),
            ),
            (
                r#"{"model":"","messages":[{"role":"user","content":"x"}]}"#,
                Some("model"),
            ),
            (
                r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
                Some("max_tokens"),
            ),
            (r#"{"messages":[]}"#, None),
        ] {
            let e = ChatCompletionRequest::parse(body.as_bytes()).unwrap_err();
            assert_eq!(e.param.as_deref(), param, "{body}: {e}");
        }
    }

    #[test]
    fn chunks_leave_out_what_they_do_not_carry() {
        let chunk = ChatCompletionChunk {
            id: "c".into(),
            object: "chat.completion.chunk".into(),
            created: 1,
            model: "m".into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta {
                    role: None,
                    content: Some("Hi".into()),
                    ..Delta::default()
                },
                finish_reason: None,
            }],
            usage: None,
        };
        let v = serde_json::to_value(&chunk).unwrap();
        assert_eq!(
            v["choices"][0]["delta"],
            serde_json::json!({"content": "Hi"})
        );
        assert_eq!(v["choices"][0]["finish_reason"], Value::Null);
        assert!(v.get("usage").is_none());
        assert_eq!(Usage::new(3, 4).total_tokens, 7);
    }
}
