//! The monitoring guide's string formats for figures, in one place.

/// A ratio as the guide writes it: `part / whole` as a percentage with
/// `decimals` digits and a `%` sign. `whole == 0` is `empty` (the caller
/// says what a ratio of nothing means: 100 % success, 0 % errors).
pub fn percent(part: u64, whole: u64, decimals: usize, empty: f64) -> String {
    format!("{:.*}%", decimals, ratio_percent(part, whole, empty))
}

/// `part / whole * 100`, or `empty` when `whole` is zero.
pub fn ratio_percent(part: u64, whole: u64, empty: f64) -> f64 {
    if whole == 0 {
        empty
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

/// The number of a percentage as the guide writes it (`"45.2%"` is 45.2).
pub fn percent_value(s: &str) -> Option<f64> {
    s.trim().trim_end_matches('%').trim().parse().ok()
}

/// Uptime as the guide writes it: `5d 12h 30m`; under an hour `42m 5s`.
pub fn uptime(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    if d > 0 {
        format!("{d}d {h}h {m}m")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m {s}s")
    }
}

/// Numbers as reports print them: no more than one decimal, none for
/// large values.
/// `s` cut to its first 120 bytes (on a character boundary) with `…`, for
/// quoting a peer's answer in a message.
pub fn clip(s: &str) -> String {
    let mut end = s.len().min(120);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end < s.len() {
        format!("{}…", &s[..end])
    } else {
        s.to_owned()
    }
}

pub fn num(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A figure that may be absent: "—" when it was not measured.
pub fn opt(v: Option<f64>) -> String {
    v.map_or("—".to_owned(), num)
}

/// Microseconds as milliseconds, exactly (the harness counts in µs and
/// reports in ms).
pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Milliseconds as whole microseconds, rounded.
pub fn ms_to_us(ms: f64) -> u64 {
    (ms * 1000.0).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_matches_the_guide() {
        assert_eq!(percent(15192, 15234, 2, 100.0), "99.72%");
        assert_eq!(percent(9876, 9876 + 5234, 1, 0.0), "65.4%");
        assert_eq!(percent(0, 0, 1, 0.0), "0.0%");
        assert_eq!(percent(0, 0, 2, 100.0), "100.00%");
    }

    #[test]
    fn micro_and_milliseconds() {
        assert_eq!(us_to_ms(1_234_567), 1234.567);
        assert_eq!(ms_to_us(1234.5678), 1_234_568);
        assert_eq!(ms_to_us(us_to_ms(42)), 42);
    }

    #[test]
    fn uptime_matches_the_guide() {
        assert_eq!(uptime(5 * 86_400 + 12 * 3_600 + 30 * 60 + 59), "5d 12h 30m");
        assert_eq!(uptime(3_600 + 60), "1h 1m");
        assert_eq!(uptime(125), "2m 5s");
    }
}
