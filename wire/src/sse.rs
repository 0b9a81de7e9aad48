//! A streaming Server-Sent Events parser that follows the WHATWG
//! EventSource algorithm: LF, CRLF and CR line ends (a CRLF may be split
//! across reads), a leading UTF-8 BOM, comments, multi-line `data`, a field
//! without a colon, one optional space after the colon, `id` and `retry`.
//!
//! Feed it the body as it arrives, in reads of any size; it calls back once
//! per dispatched event with views into its own buffers, so parsing
//! allocates nothing per event once the buffers have grown.

/// One dispatched event, borrowed from the parser.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The `event` field, or `message` when the event had none.
    pub event: &'a str,
    /// The `data` lines joined with `\n`.
    pub data: &'a str,
    /// The last event ID seen so far.
    pub id: &'a str,
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// An incomplete line carried over from the previous read.
    line: Vec<u8>,
    data: String,
    event: String,
    id: String,
    retry: Option<u64>,
    /// The last read ended with CR: an LF that starts the next read
    /// belongs to the same line end.
    cr_pending: bool,
    bom_done: bool,
    comments: u64,
    /// Bytes seen since the last dispatch that are not a blank line.
    pending: bool,
    /// The most bytes one line or one event's data may hold (0: no cap).
    max_bytes: usize,
    /// A line or an event went past `max_bytes`: nothing more is parsed.
    overflowed: bool,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where the first line end (LF or CR) of `bytes` is. Not generic and
/// never inlined, so its loop is compiled with wire's own opt-level, which
/// the workspace sets even for the test build: an audio event's line is
/// ~200 KB, and the unoptimized loop was most of a loaded test's CPU.
#[inline(never)]
fn line_end(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n' || b == b'\r')
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// A parser that stops when a line or an event's data exceeds
    /// `max_bytes`, so a target cannot make it hold unbounded memory.
    pub fn with_limit(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            ..Self::default()
        }
    }

    /// True once a line or an event went past the cap; the rest of the
    /// body is ignored.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    fn over(&self, len: usize) -> bool {
        self.max_bytes > 0 && len > self.max_bytes
    }

    /// Parses one read of the body, calling `on_event` for each event it
    /// completes.
    pub fn feed(&mut self, bytes: &[u8], on_event: &mut impl FnMut(SseEvent<'_>)) {
        if self.overflowed {
            return;
        }
        if !self.bom_done {
            // The BOM itself may arrive split across reads.
            self.line.extend_from_slice(bytes);
            if self.line.len() < BOM.len() && BOM.starts_with(&self.line) {
                return;
            }
            self.bom_done = true;
            let mut first = std::mem::take(&mut self.line);
            let skip = if first.starts_with(BOM) { BOM.len() } else { 0 };
            self.lines(&first[skip..], on_event);
            first.clear();
            if self.line.is_empty() {
                self.line = first; // keep the capacity
            }
            return;
        }
        self.lines(bytes, on_event);
    }

    fn lines(&mut self, bytes: &[u8], on_event: &mut impl FnMut(SseEvent<'_>)) {
        let mut start = 0;
        if self.cr_pending {
            self.cr_pending = false;
            if bytes.first() == Some(&b'\n') {
                start = 1;
            }
        }
        while let Some(offset) = line_end(&bytes[start..]) {
            let end = start + offset;
            if self.overflowed || self.over(self.line.len() + offset) {
                self.overflowed = true;
                return;
            }
            if self.line.is_empty() {
                self.line_done(&bytes[start..end], on_event);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[start..end]);
                self.line_done(&line, on_event);
                line.clear();
                self.line = line;
            }
            start = end + 1;
            if bytes[end] == b'\r' {
                match bytes.get(end + 1) {
                    Some(b'\n') => start += 1,
                    Some(_) => {}
                    None => self.cr_pending = true,
                }
            }
        }
        if self.overflowed || self.over(self.line.len() + bytes.len() - start) {
            self.overflowed = true;
            return;
        }
        self.line.extend_from_slice(&bytes[start..]);
        if !self.line.is_empty() {
            self.pending = true;
        }
    }

    fn line_done(&mut self, line: &[u8], on_event: &mut impl FnMut(SseEvent<'_>)) {
        if line.is_empty() {
            self.dispatch(on_event);
        } else {
            self.field(line);
        }
    }

    /// One non-blank line: a comment or a field. Not generic, so it is
    /// compiled where wire is, optimized even in the test build (see
    /// `line_end`).
    #[inline(never)]
    fn field(&mut self, line: &[u8]) {
        if line[0] == b':' {
            self.comments += 1;
            return;
        }
        self.pending = true;
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let v = &line[colon + 1..];
                (&line[..colon], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"event" => {
                self.event.clear();
                self.event.push_str(&String::from_utf8_lossy(value));
            }
            b"data" => {
                if self.over(self.data.len() + value.len()) {
                    self.overflowed = true;
                    return;
                }
                // Valid UTF-8 (the usual case) is checked by std's own
                // optimized validation and copied once.
                match std::str::from_utf8(value) {
                    Ok(text) => self.data.push_str(text),
                    Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
                }
                self.data.push('\n');
            }
            b"id" if !value.contains(&0) => {
                self.id.clear();
                self.id.push_str(&String::from_utf8_lossy(value));
            }
            b"retry" if !value.is_empty() && value.iter().all(u8::is_ascii_digit) => {
                self.retry = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
            }
            _ => {}
        }
    }

    fn dispatch(&mut self, on_event: &mut impl FnMut(SseEvent<'_>)) {
        self.pending = false;
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        self.data.pop(); // the last "\n"
        let event = if self.event.is_empty() {
            "message"
        } else {
            &self.event
        };
        on_event(SseEvent {
            event,
            data: &self.data,
            id: &self.id,
        });
        self.data.clear();
        self.event.clear();
    }

    /// Comment lines seen (keep-alives).
    pub fn comments(&self) -> u64 {
        self.comments
    }

    /// The last `retry` field, in ms.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// At the end of the body: true when an event had begun and was never
    /// dispatched (the stream was cut mid-event). Its data is discarded,
    /// as the algorithm says.
    pub fn has_partial_event(&self) -> bool {
        self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Eq)]
    struct Owned {
        event: String,
        data: String,
        id: String,
    }

    fn parse_in(chunks: &[&[u8]]) -> (Vec<Owned>, SseParser) {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut |e| {
                out.push(Owned {
                    event: e.event.into(),
                    data: e.data.into(),
                    id: e.id.into(),
                })
            });
        }
        (out, p)
    }

    fn ev(event: &str, data: &str, id: &str) -> Owned {
        Owned {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    const STREAM: &[u8] = b"\xEF\xBB\xBF: keep-alive\r\nevent: start\r\ndata: {\"a\":1}\r\n\r\nevent:token\ndata:{\"text\":\"Our \"}\n\nid: 7\rdata: line one\rdata\rdata:  two\r\rretry: 3000\nevent: done\ndata: {}\n\n";

    fn expected() -> Vec<Owned> {
        vec![
            ev("start", "{\"a\":1}", ""),
            ev("token", "{\"text\":\"Our \"}", ""),
            ev("message", "line one\n\n two", "7"),
            ev("done", "{}", "7"),
        ]
    }

    #[test]
    fn all_line_ends_comments_multiline_and_bare_fields() {
        let (events, p) = parse_in(&[STREAM]);
        assert_eq!(events, expected());
        assert_eq!(p.comments(), 1);
        assert_eq!(p.retry(), Some(3000));
        assert!(!p.has_partial_event());
    }

    #[test]
    fn the_same_events_at_every_split() {
        for i in 0..=STREAM.len() {
            let (events, _) = parse_in(&[&STREAM[..i], &STREAM[i..]]);
            assert_eq!(events, expected(), "split at byte {i}");
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_in(&bytes).0, expected(), "one byte per read");
    }

    #[test]
    fn blank_data_and_no_data() {
        // "data" with an empty value dispatches an empty string; an event
        // with no data line dispatches nothing and resets the type.
        let (events, _) = parse_in(&[b"data\n\nevent: x\n\ndata: y\n\n"]);
        assert_eq!(events, vec![ev("message", "", ""), ev("message", "y", "")]);
    }

    #[test]
    fn a_cut_event_is_discarded_and_reported() {
        let (events, p) =
            parse_in(&[b"event: token\ndata: {\"text\":\"x\"}\n\nevent: done\ndata: {"]);
        assert_eq!(events.len(), 1);
        assert!(p.has_partial_event());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let (events, _) = parse_in(&[b"data: a\xFFb\n\n"]);
        assert_eq!(events[0].data, "a\u{FFFD}b");
    }

    #[test]
    fn a_line_or_an_event_past_the_cap_stops_the_parser() {
        let mut p = SseParser::with_limit(16);
        let mut n = 0;
        p.feed(b"data: short\n\n", &mut |_| n += 1);
        assert_eq!((n, p.overflowed()), (1, false));
        // A line that never ends, fed in small reads.
        for _ in 0..10 {
            p.feed(b"data: xxxx", &mut |_| n += 1);
        }
        assert!(p.overflowed());
        p.feed(b"\n\ndata: late\n\n", &mut |_| n += 1);
        assert_eq!(n, 1, "nothing is parsed after the overflow");
        // Many short data lines that add up past the cap.
        let mut p = SseParser::with_limit(16);
        p.feed(
            b"data: 1234567\ndata: 1234567\ndata: 1234567\n",
            &mut |_| n += 1,
        );
        assert!(p.overflowed());
    }
}
