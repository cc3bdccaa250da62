//! Server-sent events: an incremental parser that accepts arbitrary chunk boundaries
//! (a line or an event may be split anywhere, even inside `\r\n`) and a writer for the
//! events OpenAI streams use: `data:` only (chat), or named by `event:` (the Responses
//! API).

use bytes::{Bytes, BytesMut};

/// The `data` payload that ends every OpenAI stream.
pub const DONE: &str = "[DONE]";

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field, when present.
    pub event: Option<String>,
    /// All `data:` lines of the event joined with `\n`.
    pub data: String,
    pub id: Option<String>,
}

impl Event {
    /// An unnamed event with this data.
    pub fn data(data: String) -> Event {
        Event {
            data,
            ..Event::default()
        }
    }

    pub fn is_done(&self) -> bool {
        self.data == DONE
    }

    /// The event's bytes: its `event:` and `id:` fields when it has them, then one `data:`
    /// line per line of its data.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.data.len() + 16);
        for (field, value) in [("event", &self.event), ("id", &self.id)] {
            if let Some(v) = value {
                out.extend_from_slice(field.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b"\n");
            }
        }
        for line in self.data.split('\n') {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\n");
        }
        out.extend_from_slice(b"\n");
        out.freeze()
    }
}

/// Error raised when a single event grows past the parser's bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("server-sent event larger than {0} bytes")]
pub struct EventTooLarge(pub usize);

/// Incremental SSE parser (WHATWG `text/event-stream` rules, minus `retry`).
#[derive(Debug)]
pub struct Parser {
    buf: BytesMut,
    /// Bytes of `buf` already scanned for a line end.
    scanned: usize,
    pending: Event,
    has_data: bool,
    /// The previous chunk ended with `\r`; a leading `\n` of the next one belongs to it.
    skip_lf: bool,
    max_event_bytes: usize,
    event_bytes: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new(16 * 1024 * 1024)
    }
}

impl Parser {
    pub fn new(max_event_bytes: usize) -> Self {
        Parser {
            buf: BytesMut::new(),
            scanned: 0,
            pending: Event::default(),
            has_data: false,
            skip_lf: false,
            max_event_bytes,
            event_bytes: 0,
        }
    }

    /// Feeds one chunk and appends every event it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), EventTooLarge> {
        let mut chunk = chunk;
        if self.skip_lf && !chunk.is_empty() {
            self.skip_lf = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        self.buf.extend_from_slice(chunk);
        loop {
            let unscanned = self.buf.get(self.scanned..).unwrap_or_default();
            let Some(pos) = memchr::memchr2(b'\n', b'\r', unscanned) else {
                self.scanned = self.buf.len();
                break;
            };
            let end = self.scanned + pos;
            let mut next = end + 1;
            if self.buf.get(end) == Some(&b'\r') {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let line = self.buf.split_to(next);
            self.scanned = 0;
            self.event_bytes += line.len();
            self.line(line.get(..end).unwrap_or_default(), out);
        }
        if self.event_bytes + self.buf.len() > self.max_event_bytes {
            return Err(EventTooLarge(self.max_event_bytes));
        }
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                out.push(std::mem::take(&mut self.pending));
            } else {
                self.pending = Event::default();
            }
            self.has_data = false;
            self.event_bytes = 0;
            return;
        }
        if line.starts_with(b":") {
            return; // comment / keep-alive
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(i) => {
                let (field, rest) = line.split_at(i);
                let v = rest.get(1..).unwrap_or_default();
                (field, v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => {
                if self.has_data {
                    self.pending.data.push('\n');
                }
                self.pending.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.pending.event = Some(value.into_owned()),
            b"id" => self.pending.id = Some(value.into_owned()),
            _ => {}
        }
    }
}

/// Encodes one `data:` event. `payload` must not contain newlines (JSON from serde never does).
pub fn data_event(payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\n\n");
    out.freeze()
}

/// The terminating `data: [DONE]` event.
pub fn done_event() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::default();
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn parses_openai_stream() {
        let s = b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\ndata: [DONE]\n\n";
        let ev = parse_all(&[s]);
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0].data, "{\"a\":1}");
        assert!(ev[2].is_done());
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let s: &[u8] =
            b"event: x\r\ndata: one\r\ndata: two\r\n\r\n: ping\n\ndata:three\r\rdata: [DONE]\n\n";
        let whole = parse_all(&[s]);
        assert_eq!(whole.len(), 3);
        assert_eq!(whole[0].event.as_deref(), Some("x"));
        assert_eq!(whole[0].data, "one\ntwo");
        assert_eq!(whole[1].data, "three");
        for i in 0..s.len() {
            for j in i..s.len() {
                let got = parse_all(&[&s[..i], &s[i..j], &s[j..]]);
                assert_eq!(got, whole, "split at {i},{j}");
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let s = b"data: {\"x\":\"\xc3\xa9\"}\n\ndata: [DONE]\n\n";
        let chunks: Vec<&[u8]> = s.chunks(1).collect();
        let ev = parse_all(&chunks);
        assert_eq!(ev[0].data, "{\"x\":\"\u{e9}\"}");
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn oversized_event_is_refused() {
        let mut p = Parser::new(64);
        let mut out = Vec::new();
        assert!(p.feed(&[b'a'; 100], &mut out).is_err());
    }

    #[test]
    fn named_and_multi_line_events_round_trip() {
        let event = Event {
            event: Some("response.output_text.delta".into()),
            data: "{\"a\":1}\nsecond line".into(),
            id: Some("7".into()),
        };
        assert_eq!(parse_all(&[&event.encode()]), vec![event.clone()]);
        assert_eq!(
            Event::data("x".into()).encode(),
            Bytes::from_static(b"data: x\n\n")
        );
    }

    #[test]
    fn writer_round_trips() {
        let mut bytes = data_event(br#"{"k":"v"}"#).to_vec();
        bytes.extend_from_slice(&done_event());
        let ev = parse_all(&[&bytes]);
        assert_eq!(ev[0].data, r#"{"k":"v"}"#);
        assert!(ev[1].is_done());
    }
}
