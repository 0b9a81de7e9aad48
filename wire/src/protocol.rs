//! The chat streaming protocol, v1 (`docs/protocol.md`): the JSON payloads
//! of the stream events and of the non-stream answers, field for field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Path of the streaming chat endpoint.
pub const CHAT_PATH: &str = "/api/chat/stream";

/// The largest request body a server accepts (docs/protocol.md 1.3, 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The only audio format of v1: 16-bit little-endian PCM at 16 kHz, so one
/// millisecond of audio is 32 bytes.
pub const AUDIO_FORMAT: &str = "pcm_s16le_16000";
pub const AUDIO_BYTES_PER_MS: u64 = 32;

/// The chat request's body (docs/protocol.md 1). Fields in the order they have
/// always been written on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChatRequest {
    /// Synthesize speech (`audio` events); true when left out.
    pub audio: bool,
    /// Exactly [`CHATBOT_ID_LEN`] lowercase hex characters.
    pub chatbot_id: String,
    /// 1 to [`MAX_CLIENT_ID_CHARS`] of `A-Z a-z 0-9 . _ -`; the server
    /// makes one up when it is null.
    pub client_id: Option<String>,
    /// 1 to [`MAX_MESSAGE_CHARS`] characters after trimming.
    pub message: String,
}

/// The request's limits, which the server enforces and scenario files are
/// checked against.
pub const CHATBOT_ID_LEN: usize = 24;
pub const MAX_MESSAGE_CHARS: usize = 4000;
pub const MAX_CLIENT_ID_CHARS: usize = 128;

/// Whether `id` is a chatbot id: [`CHATBOT_ID_LEN`] lowercase hex characters.
pub fn is_chatbot_id(id: &str) -> bool {
    id.len() == CHATBOT_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl ChatRequest {
    /// A body checked rule by rule (docs/protocol.md 1): each broken rule is an
    /// error that names the field and what it must be (the server's 400).
    /// The message comes back trimmed.
    pub fn parse(body: &[u8]) -> Result<ChatRequest, String> {
        if let Err(e) = std::str::from_utf8(body) {
            return Err(format!(
                "the body is not UTF-8 (invalid byte at offset {}); send JSON encoded in UTF-8",
                e.valid_up_to()
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            format!(
                "the body is not valid JSON ({e}); send a JSON object with chatbotId and message"
            )
        })?;
        let obj = value.as_object().ok_or_else(|| {
            format!(
                "the body must be a JSON object with chatbotId and message, got {}",
                json_kind(&value)
            )
        })?;

        let chatbot_id = match obj.get("chatbotId") {
            None | Some(Value::Null) => {
                return Err("chatbotId is required: exactly 24 lowercase hex characters".into());
            }
            Some(Value::String(s)) => s,
            Some(v) => {
                return Err(format!(
                    "chatbotId must be a string of 24 lowercase hex characters, got {}",
                    json_kind(v)
                ));
            }
        };
        if chatbot_id.len() != 24
            || !chatbot_id
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "chatbotId must be exactly 24 lowercase hex characters (0-9, a-f), got {:?} ({} characters)",
                truncate(chatbot_id),
                chatbot_id.chars().count()
            ));
        }

        let message = match obj.get("message") {
            None | Some(Value::Null) => {
                return Err(format!(
                    "message is required: 1 to {MAX_MESSAGE_CHARS} characters"
                ));
            }
            Some(Value::String(s)) => s.trim(),
            Some(v) => return Err(format!("message must be a string, got {}", json_kind(v))),
        };
        let chars = message.chars().count();
        if chars == 0 {
            return Err(format!(
                "message is empty after trimming white space; send 1 to {MAX_MESSAGE_CHARS} characters"
            ));
        }
        if chars > MAX_MESSAGE_CHARS {
            return Err(format!(
                "message is {chars} characters after trimming; the most is {MAX_MESSAGE_CHARS}"
            ));
        }

        let client_id = match obj.get("clientId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n == 0 || n > MAX_CLIENT_ID_CHARS {
                    return Err(format!(
                        "clientId must be 1 to {MAX_CLIENT_ID_CHARS} characters, got {n}"
                    ));
                }
                if let Some(bad) = s
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                {
                    return Err(format!(
                        "clientId may hold only A-Z, a-z, 0-9, '.', '_' and '-'; found {bad:?} in {:?}",
                        truncate(s)
                    ));
                }
                Some(s.clone())
            }
            Some(v) => return Err(format!("clientId must be a string, got {}", json_kind(v))),
        };

        let audio = match obj.get("audio") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(v) => return Err(format!("audio must be true or false, got {}", json_kind(v))),
        };

        Ok(ChatRequest {
            chatbot_id: chatbot_id.clone(),
            message: message.to_owned(),
            client_id,
            audio,
        })
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn truncate(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_owned()
    }
}

/// The `start` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub client_id: String,
    pub chatbot_id: String,
    pub streaming: bool,
}

/// A `token` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    pub text: String,
}

/// An `audio` event: one synthesized sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audio {
    pub seq: u32,
    pub text: String,
    pub format: String,
    pub duration_ms: u64,
    pub cached: bool,
    /// Base64 of the PCM samples.
    pub data: String,
}

impl Audio {
    /// Writes the event's JSON to `out`. The serializer runs here, not in
    /// the caller's crate, so the ~200 KB of base64 a chunk carries is
    /// scanned by code compiled with wire's opt-level, which the workspace
    /// sets even for the test build (unoptimized, this scan was the
    /// largest part of a loaded test's CPU).
    #[inline(never)]
    pub fn write_json(&self, out: &mut dyn std::io::Write) -> serde_json::Result<()> {
        serde_json::to_writer(out, self)
    }

    /// The `durationMs` of an `audio` event's JSON, without copying the
    /// samples (compiled here for the same reason as `write_json`).
    #[inline(never)]
    pub fn duration_ms_of(json: &str) -> serde_json::Result<u64> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Head {
            duration_ms: u64,
        }
        serde_json::from_str::<Head>(json).map(|h| h.duration_ms)
    }
}

/// The `done` event, also the `metrics` of a non-stream answer. Latencies
/// are the server's own, in ms, from the moment the request arrived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub word_count: u64,
    pub first_token_latency: u64,
    pub first_audio_latency: Option<u64>,
    pub duration: u64,
    pub kb_cache: CacheOutcome,
    pub tts_cache_hits: u64,
    pub tts_cache_misses: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheOutcome {
    Hit,
    Miss,
}

/// The `error` event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StreamError {
    #[serde(rename = "type")]
    pub kind: ErrorKind,
    pub message: String,
}

/// The guide's error breakdown. `openai`, `tts`, `network` and `other` can
/// end a stream; `validation` is a rejected request (400, 413, 415).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Openai,
    Tts,
    Network,
    Validation,
    Other,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::Openai,
        ErrorKind::Tts,
        ErrorKind::Network,
        ErrorKind::Validation,
        ErrorKind::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Openai => "openai",
            ErrorKind::Tts => "tts",
            ErrorKind::Network => "network",
            ErrorKind::Validation => "validation",
            ErrorKind::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The `type` of a non-stream error body: the stream kinds plus
/// `overloaded` (503) and the admin and routing refusals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyErrorKind {
    Validation,
    Overloaded,
    Unauthorized,
    Forbidden,
    NotFound,
    Openai,
    Tts,
    Network,
    Other,
}

/// The body of every answer that is not a stream and not a success:
/// `{"success": false, "error": {"type": ..., "message": ...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub success: bool,
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(rename = "type")]
    pub kind: BodyErrorKind,
    pub message: String,
}

impl ErrorBody {
    pub fn new(kind: BodyErrorKind, message: impl Into<String>) -> Self {
        Self {
            success: false,
            error: ErrorDetail {
                kind,
                message: message.into(),
            },
        }
    }
}

/// The 200 JSON answer given when streaming is rolled out to 0 % for the
/// client (docs/protocol.md 1.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonStreamAnswer {
    pub success: bool,
    pub streaming: bool,
    pub client_id: String,
    pub text: String,
    pub audio: Vec<Audio>,
    pub metrics: Done,
}

/// FNV-1a, 64 bit, over the UTF-8 bytes of `s`.
pub fn fnv1a64(s: &str) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    s.bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// The rollout bucket of a client, 0..100 (docs/protocol.md 3): the client
/// streams when its bucket is below the rollout percentage.
pub fn rollout_bucket(client_id: &str) -> u8 {
    (fnv1a64(client_id) % 100) as u8
}

/// Whether a client streams at rollout percentage `percentage`.
pub fn streams_at(client_id: &str, percentage: u8) -> bool {
    rollout_bucket(client_id) < percentage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_request_with_defaults() {
        let r = ChatRequest::parse(
            br#"{"chatbotId":"60f7b3b3e6b6f40015e6b6f4","message":"  Hi  ","extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.message, "Hi");
        assert_eq!(r.client_id, None);
        assert!(r.audio);
    }

    #[test]
    fn fnv1a64_known_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn rollout_edges() {
        let id = "chat-1760185530974-abc123";
        assert!(!streams_at(id, 0));
        assert!(streams_at(id, 100));
        let b = rollout_bucket(id);
        assert!(streams_at(id, b + 1));
        assert!(!streams_at(id, b));
    }

    #[test]
    fn done_serializes_with_protocol_keys() {
        let done = Done {
            word_count: 145,
            first_token_latency: 420,
            first_audio_latency: None,
            duration: 2650,
            kb_cache: CacheOutcome::Hit,
            tts_cache_hits: 2,
            tts_cache_misses: 1,
        };
        let v = serde_json::to_value(&done).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"wordCount": 145, "firstTokenLatency": 420,
                "firstAudioLatency": null, "duration": 2650, "kbCache": "hit",
                "ttsCacheHits": 2, "ttsCacheMisses": 1})
        );
    }
}
