//! The chat request's rules (PROTOCOL.md 1): each broken rule is a 400 whose
//! message names the field and what it must be.

use rand::Rng;
use serde_json::Value;

/// A request that keeps every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatInput {
    pub chatbot_id: String,
    /// Trimmed.
    pub message: String,
    pub client_id: Option<String>,
    pub audio: bool,
}

pub const MAX_MESSAGE_CHARS: usize = 4000;
pub const MAX_CLIENT_ID_CHARS: usize = 128;

pub fn parse(body: &[u8]) -> Result<ChatInput, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("the body is not valid JSON ({e}); send a JSON object with chatbotId and message")
    })?;
    let obj = value.as_object().ok_or_else(|| {
        format!(
            "the body must be a JSON object with chatbotId and message, got {}",
            kind(&value)
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
                kind(v)
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
        None | Some(Value::Null) => return Err("message is required: 1 to 4000 characters".into()),
        Some(Value::String(s)) => s.trim(),
        Some(v) => return Err(format!("message must be a string, got {}", kind(v))),
    };
    let chars = message.chars().count();
    if chars == 0 {
        return Err(
            "message is empty after trimming white space; send 1 to 4000 characters".into(),
        );
    }
    if chars > MAX_MESSAGE_CHARS {
        return Err(format!(
            "message is {chars} characters after trimming; the most is 4000"
        ));
    }

    let client_id = match obj.get("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n == 0 || n > MAX_CLIENT_ID_CHARS {
                return Err(format!("clientId must be 1 to 128 characters, got {n}"));
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
        Some(v) => return Err(format!("clientId must be a string, got {}", kind(v))),
    };

    let audio = match obj.get("audio") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(format!("audio must be true or false, got {}", kind(v))),
    };

    Ok(ChatInput {
        chatbot_id: chatbot_id.clone(),
        message: message.to_owned(),
        client_id,
        audio,
    })
}

/// `chat-<unix ms>-<6 base36>`, for a request without a clientId.
pub fn generate_client_id(rng: &mut impl Rng) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let suffix: String = (0..6)
        .map(|_| DIGITS[rng.gen_range(0..DIGITS.len())] as char)
        .collect();
    format!("chat-{ms}-{suffix}")
}

fn kind(v: &Value) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_request_with_defaults() {
        let r = parse(br#"{"chatbotId":"60f7b3b3e6b6f40015e6b6f4","message":"  Hi  ","extra":1}"#)
            .unwrap();
        assert_eq!(r.message, "Hi");
        assert_eq!(r.client_id, None);
        assert!(r.audio);
    }

    #[test]
    fn generated_client_ids_keep_the_format() {
        let id = generate_client_id(&mut rand::thread_rng());
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "chat");
        assert!(parts[1].parse::<u64>().unwrap() > 1_700_000_000_000);
        assert_eq!(parts[2].len(), 6);
        assert!(
            parts[2]
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
    }
}
