//! Output batching: raw stdout/stderr bytes in, `report_run_output`-ready chunks out.
//!
//! Bytes are pushed in arrival order. The pending chunk is emitted when it reaches
//! [`MAX_CHUNK_BYTES`] of text, when [`MAX_CHUNK_AGE`] has passed since its first byte, when the
//! stream switches (so stdout/stderr interleaving is kept), and at [`Chunker::finish`]. Chunks are
//! numbered by `seq` from 1.
//!
//! Bytes are decoded as UTF-8 per stream: an incomplete multi-byte character at the end of a push
//! is carried to that stream's next push (never split across chunks), invalid bytes become
//! U+FFFD, and so do NUL characters (Postgres's jsonb cannot hold them).
//!
//! A run may record at most its limit of output text ([`Chunker::with_limit`]): past it the
//! chunker emits one stderr chunk saying so and drops the rest, counting it; [`Chunker::finish`]
//! then emits a last stderr chunk with the count. Both notes are recorded like any output, so
//! the truncation is in the audit history; the run itself goes on.
//!
//! The clock is injected: every call takes `now`, so tests are deterministic. The caller wakes at
//! [`Chunker::deadline`] and calls [`Chunker::poll`] to flush a chunk that has aged out.

use runledger_types::command::OutputStream;
pub use runledger_types::command::first_seq_of_attempt;
use std::time::{Duration, Instant};

/// Largest chunk text, in bytes.
pub const MAX_CHUNK_BYTES: usize = 64 * 1024;
/// Longest time a byte waits in a pending chunk.
pub const MAX_CHUNK_AGE: Duration = Duration::from_millis(100);

/// One `report_run_output` payload (without the run id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// From 1, increasing by one per chunk.
    pub seq: u64,
    /// stdout or stderr.
    pub stream: OutputStream,
    /// Valid UTF-8 without NUL.
    pub text: String,
}

#[derive(Debug)]
struct Pending {
    stream: OutputStream,
    text: String,
    since: Instant,
}

/// Batches output into chunks; see the module documentation.
#[derive(Debug)]
pub struct Chunker {
    max_bytes: usize,
    max_age: Duration,
    last_seq: u64,
    pending: Option<Pending>,
    /// Incomplete UTF-8 tails, `[stdout, stderr]`.
    tails: [Vec<u8>; 2],
    /// Most bytes of output text kept (the notes about dropping come on top).
    limit: u64,
    /// Bytes of output text kept so far.
    kept: u64,
    /// Bytes of output text dropped past `limit`.
    dropped: u64,
}

impl Default for Chunker {
    fn default() -> Self {
        Self::new(MAX_CHUNK_BYTES, MAX_CHUNK_AGE)
    }
}

impl Chunker {
    /// A chunker with the given limits (`max_bytes` is raised to at least 4, one character).
    pub fn new(max_bytes: usize, max_age: Duration) -> Self {
        Self {
            max_bytes: max_bytes.max(4),
            max_age,
            last_seq: 0,
            pending: None,
            tails: [Vec::new(), Vec::new()],
            limit: u64::MAX,
            kept: 0,
            dropped: 0,
        }
    }

    /// Keeps at most `limit` bytes of output text; the rest is dropped and counted.
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// Bytes of output dropped past the limit so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Numbers the chunks after `last_seq` (a retried run's attempt continues its output's
    /// numbering: see [`first_seq_of_attempt`]).
    pub fn after(mut self, last_seq: u64) -> Self {
        self.last_seq = last_seq;
        self
    }

    /// Adds bytes read from `stream` at `now`; returns the chunks that became complete.
    pub fn push(&mut self, stream: OutputStream, bytes: &[u8], now: Instant) -> Vec<Chunk> {
        let mut out: Vec<Chunk> = self.poll(now).into_iter().collect();
        let text = decode(&mut self.tails[index(stream)], bytes);
        self.append(stream, &text, now, &mut out);
        out
    }

    /// Emits the pending chunk if it is [`MAX_CHUNK_AGE`] old at `now`.
    pub fn poll(&mut self, now: Instant) -> Option<Chunk> {
        let due = self.deadline().is_some_and(|deadline| now >= deadline);
        if due { self.flush() } else { None }
    }

    /// When the pending chunk must be emitted, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.pending.as_ref().map(|p| p.since + self.max_age)
    }

    /// Ends the output: incomplete characters become U+FFFD; returns the last chunks.
    pub fn finish(&mut self, now: Instant) -> Vec<Chunk> {
        let mut out = Vec::new();
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            let tail = std::mem::take(&mut self.tails[index(stream)]);
            if !tail.is_empty() {
                let text = clean(String::from_utf8_lossy(&tail).into_owned());
                self.append(stream, &text, now, &mut out);
            }
        }
        if self.dropped > 0 {
            let note = format!(
                "\n[runledger] {} bytes of output were dropped: this run records at most {} bytes\n",
                self.dropped, self.limit
            );
            self.note(&note, now, &mut out);
        }
        out.extend(self.flush());
        out
    }

    /// Appends runledger's own `note` on stderr, outside the limit.
    fn note(&mut self, note: &str, now: Instant, out: &mut Vec<Chunk>) {
        self.append_unlimited(OutputStream::Stderr, note, now, out);
    }

    /// The `seq` of the last emitted chunk (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Appends what the limit leaves room for; at the first byte past it, the note that output
    /// is dropped from here on.
    fn append(&mut self, stream: OutputStream, text: &str, now: Instant, out: &mut Vec<Chunk>) {
        if self.dropped > 0 {
            self.dropped += text.len() as u64;
            return;
        }
        let room = self.limit.saturating_sub(self.kept);
        if (text.len() as u64) <= room {
            self.kept += text.len() as u64;
            return self.append_unlimited(stream, text, now, out);
        }
        let cut = floor_char_boundary(text, usize::try_from(room).unwrap_or(usize::MAX));
        let first_drop = self.dropped == 0;
        self.kept += cut as u64;
        self.dropped += (text.len() - cut) as u64;
        self.append_unlimited(stream, &text[..cut], now, out);
        if first_drop {
            let note = format!(
                "\n[runledger] output limit reached: this run records at most {} bytes of output; \
                 the rest is dropped (the run goes on)\n",
                self.limit
            );
            self.note(&note, now, out);
        }
    }

    fn append_unlimited(
        &mut self,
        stream: OutputStream,
        mut text: &str,
        now: Instant,
        out: &mut Vec<Chunk>,
    ) {
        if self.pending.as_ref().is_some_and(|p| p.stream != stream) {
            out.extend(self.flush());
        }
        while !text.is_empty() {
            let pending = self.pending.get_or_insert_with(|| Pending {
                stream,
                text: String::new(),
                since: now,
            });
            let room = self.max_bytes - pending.text.len();
            let cut = floor_char_boundary(text, room);
            pending.text.push_str(&text[..cut]);
            text = &text[cut..];
            if pending.text.len() + next_char_len(text).max(1) > self.max_bytes {
                out.extend(self.flush());
            }
        }
    }

    fn flush(&mut self) -> Option<Chunk> {
        let pending = self.pending.take().filter(|p| !p.text.is_empty())?;
        self.last_seq += 1;
        Some(Chunk {
            seq: self.last_seq,
            stream: pending.stream,
            text: pending.text,
        })
    }
}

fn index(stream: OutputStream) -> usize {
    match stream {
        OutputStream::Stdout => 0,
        OutputStream::Stderr => 1,
    }
}

/// Decodes `tail ++ bytes`, leaving an incomplete trailing character in `tail`.
fn decode(tail: &mut Vec<u8>, bytes: &[u8]) -> String {
    tail.extend_from_slice(bytes);
    let mut text = String::with_capacity(tail.len());
    let mut rest: &[u8] = tail;
    loop {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                text.push_str(valid);
                rest = &[];
                break;
            }
            Err(e) => {
                let (valid, after) = rest.split_at(e.valid_up_to());
                text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                let Some(bad) = e.error_len() else {
                    rest = after; // incomplete character: carry it
                    break;
                };
                text.push('\u{FFFD}');
                rest = &after[bad..];
            }
        }
    }
    *tail = rest.to_vec();
    clean(text)
}

fn clean(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}")
    } else {
        text
    }
}

fn floor_char_boundary(text: &str, max: usize) -> usize {
    if max >= text.len() {
        return text.len();
    }
    (0..=max)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

fn next_char_len(text: &str) -> usize {
    text.chars().next().map_or(0, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutputStream::{Stderr, Stdout};

    fn texts(chunks: &[Chunk]) -> Vec<(u64, OutputStream, &str)> {
        chunks
            .iter()
            .map(|c| (c.seq, c.stream, c.text.as_str()))
            .collect()
    }

    #[test]
    fn small_output_waits_for_age_then_flushes() {
        let t0 = Instant::now();
        let mut c = Chunker::default();
        assert!(c.push(Stdout, b"hello ", t0).is_empty());
        assert!(
            c.push(Stdout, b"world", t0 + Duration::from_millis(50))
                .is_empty()
        );
        assert_eq!(c.deadline(), Some(t0 + MAX_CHUNK_AGE));
        assert_eq!(c.poll(t0 + Duration::from_millis(99)), None);
        let chunk = c.poll(t0 + MAX_CHUNK_AGE).unwrap();
        assert_eq!((chunk.seq, chunk.text.as_str()), (1, "hello world"));
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn an_aged_chunk_is_emitted_before_new_bytes() {
        let t0 = Instant::now();
        let mut c = Chunker::default();
        c.push(Stdout, b"a", t0);
        let out = c.push(Stdout, b"b", t0 + Duration::from_millis(150));
        assert_eq!(texts(&out), [(1, Stdout, "a")]);
        assert_eq!(texts(&c.finish(t0)), [(2, Stdout, "b")]);
    }

    #[test]
    fn stream_switch_keeps_order() {
        let t0 = Instant::now();
        let mut c = Chunker::default();
        let mut out = c.push(Stdout, b"out1", t0);
        out.extend(c.push(Stderr, b"err1", t0));
        out.extend(c.push(Stdout, b"out2", t0));
        out.extend(c.finish(t0));
        assert_eq!(
            texts(&out),
            [
                (1, Stdout, "out1"),
                (2, Stderr, "err1"),
                (3, Stdout, "out2")
            ]
        );
    }

    #[test]
    fn size_limit_splits_without_breaking_characters() {
        let t0 = Instant::now();
        let mut c = Chunker::new(8, MAX_CHUNK_AGE);
        let mut out = c.push(Stdout, "aaaaaaaéé".as_bytes(), t0); // 7 + 2 + 2 bytes
        out.extend(c.finish(t0));
        assert_eq!(texts(&out), [(1, Stdout, "aaaaaaa"), (2, Stdout, "éé")]);
        let full = Chunker::default().push(Stdout, &vec![b'x'; MAX_CHUNK_BYTES * 2 + 1], t0);
        assert_eq!(full.len(), 2);
        assert!(full.iter().all(|c| c.text.len() == MAX_CHUNK_BYTES));
    }

    #[test]
    fn multibyte_character_split_across_pushes_is_carried() {
        let t0 = Instant::now();
        let mut c = Chunker::default();
        let snow = "☃".as_bytes(); // 3 bytes
        let mut out = c.push(Stdout, &[b'a', snow[0]], t0);
        out.extend(c.push(Stderr, b"e", t0)); // switch: "a" is emitted, the partial snowman waits
        out.extend(c.push(Stdout, &snow[1..], t0));
        out.extend(c.finish(t0));
        assert_eq!(
            texts(&out),
            [(1, Stdout, "a"), (2, Stderr, "e"), (3, Stdout, "☃")]
        );
    }

    #[test]
    fn invalid_utf8_nul_and_truncated_tail_become_replacement_characters() {
        let t0 = Instant::now();
        let mut c = Chunker::default();
        c.push(Stdout, b"a\xffb\0c\xe2\x98", t0);
        let out = c.finish(t0);
        assert_eq!(texts(&out), [(1, Stdout, "a\u{FFFD}b\u{FFFD}c\u{FFFD}")]);
        assert_eq!(c.last_seq(), 1);
    }

    #[test]
    fn empty_input_emits_nothing() {
        let t0 = Instant::now();
        let mut c = Chunker::default();
        assert!(c.push(Stdout, b"", t0).is_empty());
        assert!(c.finish(t0).is_empty());
        assert_eq!(c.last_seq(), 0);
    }

    #[test]
    fn output_past_the_limit_is_dropped_with_a_note_and_a_count() {
        let t0 = Instant::now();
        let mut c = Chunker::new(1024, MAX_CHUNK_AGE).with_limit(10);
        let mut chunks = c.push(Stdout, b"0123456", t0);
        chunks.extend(c.push(Stdout, b"789abcdef", t0));
        chunks.extend(c.push(Stderr, b"more", t0));
        chunks.extend(c.push(Stdout, b"x", t0));
        chunks.extend(c.finish(t0));
        let texts = texts(&chunks);
        assert_eq!(texts[0], (1, Stdout, "0123456789"));
        assert_eq!(texts[1].1, Stderr);
        assert!(texts[1].2.contains("output limit reached"), "{texts:?}");
        assert_eq!(c.dropped(), 6 + 4 + 1);
        let all: String = chunks.iter().map(|c| c.text.as_str()).collect();
        assert!(all.contains("11 bytes of output were dropped"), "{all}");
        assert!(!all.contains("more"), "{all}");
    }

    #[test]
    fn the_limit_never_splits_a_character() {
        let t0 = Instant::now();
        let mut c = Chunker::default().with_limit(4);
        let mut chunks = c.push(Stdout, "abcé".as_bytes(), t0);
        chunks.extend(c.finish(t0));
        assert_eq!(chunks[0].text, "abc");
        assert_eq!(c.dropped(), 2);
    }
}
