//! Upstream stream framing: SSE and NDJSON decoded line by line, translated chunk by chunk, never buffered whole.
//!
//! A stream that ends before its terminal marker (`[DONE]`, a final DashScope event, Ollama `done:true`) yields a
//! `malformed` error, so a cut upstream can never look like a finished answer.

use std::collections::VecDeque;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::error::{ErrorClass, ProviderError};
use crate::canonical::ChatChunk;

/// Canonical chunks from one upstream attempt.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, ProviderError>> + Send>>;

/// How the upstream frames its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// `text/event-stream`.
    Sse,
    /// One JSON object per line.
    Ndjson,
}

/// One decoded upstream event: an SSE event (name + joined data) or an NDJSON line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Event {
    /// SSE `event:` name.
    pub(crate) name: Option<String>,
    /// SSE data or the NDJSON line.
    pub(crate) data: String,
}

/// What a translator made of one event.
#[derive(Debug, Default)]
pub(crate) struct Step {
    /// Chunks to emit.
    pub(crate) chunks: Vec<ChatChunk>,
    /// The terminal marker was seen.
    pub(crate) done: bool,
}

/// Per-provider stream translation.
pub(crate) trait Translator: Send + 'static {
    /// Translates one event.
    fn on_event(&mut self, event: Event) -> Result<Step, ProviderError>;

    /// The body ended without the terminal marker: a cut stream.
    fn on_eof(&mut self) -> ProviderError {
        ProviderError::new(
            ErrorClass::Malformed,
            "upstream stream ended before its final event",
        )
    }
}

const MAX_LINE: usize = 1024 * 1024;

/// Incremental line splitter with SSE event assembly.
#[derive(Debug)]
pub(crate) struct Decoder {
    framing: Framing,
    buf: Vec<u8>,
    event: Event,
    has_data: bool,
}

impl Decoder {
    /// A decoder for one framing.
    pub(crate) fn new(framing: Framing) -> Decoder {
        Decoder {
            framing,
            buf: Vec::new(),
            event: Event::default(),
            has_data: false,
        }
    }

    /// Feeds bytes; returns the events completed by them.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, ProviderError> {
        let mut out = Vec::new();
        // Walk the complete lines in place, then keep only the unfinished tail. Without a tail from before,
        // the lines are read from `bytes` itself and only the new tail is copied; the buffer keeps its
        // capacity either way.
        let result = if self.buf.is_empty() {
            let (rest, result) = self.lines(bytes, &mut out);
            self.buf.extend_from_slice(&bytes[rest..]);
            result
        } else {
            self.buf.extend_from_slice(bytes);
            let mut buf = std::mem::take(&mut self.buf);
            let (rest, result) = self.lines(&buf, &mut out);
            buf.drain(..rest);
            self.buf = buf;
            result
        };
        result?;
        if self.buf.len() > MAX_LINE {
            return Err(ProviderError::new(
                ErrorClass::Malformed,
                "upstream stream line too long",
            ));
        }
        Ok(out)
    }

    /// Reads the complete lines of `buf`: where its unfinished tail starts (past the failing line on an error),
    /// and the first error.
    fn lines(&mut self, buf: &[u8], out: &mut Vec<Event>) -> (usize, Result<(), ProviderError>) {
        let mut start = 0;
        while let Some(rel) = memchr::memchr(b'\n', &buf[start..]) {
            let end = start + rel;
            let result = self.line(&buf[start..end], out);
            start = end + 1;
            if result.is_err() {
                return (start, result);
            }
        }
        (start, Ok(()))
    }

    /// End of body: flushes a last unterminated line and event.
    pub(crate) fn finish(&mut self) -> Result<Vec<Event>, ProviderError> {
        let mut out = Vec::new();
        let rest = std::mem::take(&mut self.buf);
        if !rest.is_empty() {
            self.line(&rest, &mut out)?;
        }
        self.line(b"", &mut out)?;
        Ok(out)
    }

    fn line(&mut self, raw: &[u8], out: &mut Vec<Event>) -> Result<(), ProviderError> {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw)
            .map_err(|_| ProviderError::new(ErrorClass::Malformed, "upstream stream is not UTF-8"))?;
        match self.framing {
            Framing::Ndjson => {
                if !line.trim().is_empty() {
                    out.push(Event {
                        name: None,
                        data: line.to_string(),
                    });
                }
            }
            Framing::Sse => {
                if line.is_empty() {
                    if self.has_data {
                        out.push(std::mem::take(&mut self.event));
                    }
                    self.event = Event::default();
                    self.has_data = false;
                } else if let Some(v) = field(line, "data") {
                    if self.has_data {
                        self.event.data.push('\n');
                    }
                    self.event.data.push_str(v);
                    self.has_data = true;
                } else if let Some(v) = field(line, "event") {
                    self.event.name = Some(v.to_string());
                }
                // `id:`, `retry:` and `:comment` lines (DashScope's `:HTTP_STATUS/200`) carry nothing we need.
            }
        }
        Ok(())
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

struct State<T> {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>,
    decoder: Decoder,
    translator: T,
    pending: VecDeque<Result<ChatChunk, ProviderError>>,
    finished: bool,
}

impl<T: Translator> State<T> {
    fn feed(&mut self, events: Result<Vec<Event>, ProviderError>) {
        let events = match events {
            Ok(e) => e,
            Err(e) => return self.fail(e),
        };
        for event in events {
            if self.finished {
                return;
            }
            match self.translator.on_event(event) {
                Ok(step) => {
                    self.pending.extend(step.chunks.into_iter().map(Ok));
                    self.finished = step.done;
                }
                Err(e) => self.fail(e),
            }
        }
    }

    fn fail(&mut self, e: ProviderError) {
        self.pending.push_back(Err(e));
        self.finished = true;
    }
}

/// Turns an upstream body into canonical chunks.
pub(crate) fn drive<T: Translator>(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    framing: Framing,
    translator: T,
) -> ChunkStream {
    let state = State {
        body: Box::pin(body),
        decoder: Decoder::new(framing),
        translator,
        pending: VecDeque::new(),
        finished: false,
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(item) = st.pending.pop_front() {
                return Some((item, st));
            }
            if st.finished {
                return None;
            }
            match st.body.next().await {
                Some(Ok(bytes)) => {
                    let events = st.decoder.push(&bytes);
                    st.feed(events);
                }
                Some(Err(e)) => {
                    let mut err = ProviderError::from_reqwest(&e);
                    if err.class == ErrorClass::Connect {
                        err.message = format!("upstream stream broke: {}", err.message);
                    }
                    st.fail(err);
                }
                None => {
                    let events = st.decoder.finish();
                    st.feed(events);
                    if !st.finished {
                        let err = st.translator.on_eof();
                        st.fail(err);
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_split_across_pushes_and_crlf() {
        let mut d = Decoder::new(Framing::Sse);
        assert!(d.push(b"data: {\"a\"").unwrap().is_empty());
        let ev = d
            .push(b":1}\r\n\r\nid:2\nevent:result\n:HTTP_STATUS/200\ndata:{\"b\":2}\n\n")
            .unwrap();
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].data, "{\"a\":1}");
        assert_eq!(ev[1].name.as_deref(), Some("result"));
        assert_eq!(ev[1].data, "{\"b\":2}");
    }

    #[test]
    fn sse_last_event_without_blank_line_is_flushed() {
        let mut d = Decoder::new(Framing::Sse);
        assert!(d.push(b"data: [DONE]").unwrap().is_empty());
        assert_eq!(d.finish().unwrap()[0].data, "[DONE]");
    }

    #[test]
    fn ndjson_lines() {
        let mut d = Decoder::new(Framing::Ndjson);
        let ev = d.push(b"{\"x\":1}\n\n{\"y\"").unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(d.finish().unwrap()[0].data, "{\"y\"");
    }

    /// What pushing `pieces` one by one, then the end, yields: each event's name and data, and any error's
    /// message, in order.
    fn decode(framing: Framing, pieces: &[&[u8]]) -> Vec<Result<(Option<String>, String), String>> {
        let mut d = Decoder::new(framing);
        let mut out = Vec::new();
        let mut take = |r: Result<Vec<Event>, ProviderError>| match r {
            Ok(evs) => out.extend(evs.into_iter().map(|e| Ok((e.name, e.data)))),
            Err(e) => out.push(Err(e.message)),
        };
        for p in pieces {
            take(d.push(p));
        }
        take(d.finish());
        out
    }

    proptest::proptest! {
        /// However the bytes are cut into reads, the events are those of one read of them all.
        #[test]
        fn any_cut_of_the_bytes_gives_the_same_events(
            lines in proptest::collection::vec(
                proptest::sample::select(vec![
                    "data: {\"a\":1}", "data:[DONE]", "event: result", ": comment", "", "", "id: 7",
                    "data: x\r", "data: é✓", "{\"y\":2}",
                ]),
                0..16,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..6),
            ndjson in proptest::bool::ANY,
        ) {
            let text = lines.join("\n");
            let bytes = text.as_bytes();
            let mut at: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            at.sort_unstable();
            let mut pieces = Vec::new();
            let mut from = 0;
            for c in at.into_iter().chain([bytes.len()]) {
                pieces.push(&bytes[from..c]);
                from = c;
            }
            let framing = if ndjson { Framing::Ndjson } else { Framing::Sse };
            proptest::prop_assert_eq!(decode(framing, &pieces), decode(framing, &[bytes]));
        }
    }

    #[test]
    fn invalid_utf8_is_malformed() {
        let mut d = Decoder::new(Framing::Ndjson);
        assert_eq!(d.push(b"\xff\xfe\n").unwrap_err().class, ErrorClass::Malformed);
    }
}
