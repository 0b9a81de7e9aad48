//! The figures' formats: the guide's, which the server writes too
//! ([`wire::format`]), and the evidence's.

pub use wire::format::*;

/// A 95 % interval: `[498–541]`; an unbounded side shows as `…`.
pub fn interval(i: &crate::evidence::Interval) -> String {
    format!(
        "[{}–{}]",
        i.lo.map_or("…".to_owned(), num),
        i.hi.map_or("…".to_owned(), num)
    )
}
