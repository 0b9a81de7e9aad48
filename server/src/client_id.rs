//! What the server adds to a chat request: a client id when it has none.
//! The request's rules are `wire::protocol::ChatRequest::parse`.

use rand::Rng;

/// `chat-<unix ms>-<6 base36>`, for a request without a clientId.
pub fn generate_client_id(rng: &mut impl Rng) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let suffix: String = (0..6)
        .map(|_| DIGITS[rng.random_range(0..DIGITS.len())] as char)
        .collect();
    format!("chat-{ms}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_client_ids_keep_the_format() {
        let id = generate_client_id(&mut rand::rng());
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
