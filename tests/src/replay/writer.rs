//! Numbers events as the store would and encodes them as `COPY ... FROM STDIN` text rows.

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use runledger_types::Event;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use uuid::Uuid;

/// The statement [`LogWriter`]'s rows are meant for (text format, the column order it writes).
pub const COPY_EVENTS: &str = "COPY events (position, event_id, stream_id, stream_version, type, \
    schema_version, recorded_at, actor, command_id, correlation_id, causation_id, data) FROM STDIN";

/// Time between two consecutive events' `recorded_at`.
const SPACING_MS: i64 = 2;

/// The envelope fields one command gives all the events it decided.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// The command id.
    pub id: Uuid,
    /// Who sent it.
    pub actor: &'a str,
    /// Ties the command to others of the same run.
    pub correlation_id: Option<Uuid>,
    /// The event it reacts to (executor reports).
    pub causation_id: Option<Uuid>,
}

impl<'a> Command<'a> {
    /// A fresh command of `actor` with no correlation or causation.
    pub fn new(actor: &'a str) -> Self {
        Self {
            id: Uuid::now_v7(),
            actor,
            correlation_id: None,
            causation_id: None,
        }
    }
}

/// Assigns positions (1, 2, ...), per-stream versions and `recorded_at`, and buffers the rows.
#[derive(Debug)]
pub struct LogWriter {
    position: i64,
    versions: HashMap<String, i64>,
    start: DateTime<Utc>,
    buffer: Vec<u8>,
    counts: BTreeMap<&'static str, u64>,
}

impl LogWriter {
    /// A writer whose `events` events end about now.
    pub fn new(events: i64) -> Self {
        Self {
            position: 0,
            versions: HashMap::new(),
            start: Utc::now() - TimeDelta::milliseconds(SPACING_MS * events),
            buffer: Vec::with_capacity(8 << 20),
            counts: BTreeMap::new(),
        }
    }

    /// The position of the last event written.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// How many events of each type were written.
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// How many events of `event_type` were written.
    pub fn count(&self, event_type: &str) -> u64 {
        self.counts.get(event_type).copied().unwrap_or(0)
    }

    /// Bytes buffered and not yet taken.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes the buffered rows.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::replace(&mut self.buffer, Vec::with_capacity(8 << 20))
    }

    /// Drops the version counter of a stream that gets no more events (a finished run).
    pub fn close_stream(&mut self, stream_id: &str) {
        self.versions.remove(stream_id);
    }

    /// Appends `event` as decided by `command`; returns its event id.
    pub fn append(&mut self, command: &Command<'_>, event: &Event) -> anyhow::Result<Uuid> {
        self.position += 1;
        let stream = event.stream_id();
        let version = self.versions.entry(stream.as_str().to_owned()).or_insert(0);
        *version += 1;
        let version = *version;
        let data = event
            .data_json()
            .with_context(|| format!("serialising {}", event.event_type()))?;
        let event_id = Uuid::now_v7();
        let recorded_at = self.start + TimeDelta::milliseconds(SPACING_MS * self.position);
        *self.counts.entry(event.event_type()).or_insert(0) += 1;
        let buffer = &mut self.buffer;
        write!(buffer, "{}\t{event_id}\t", self.position)?;
        escape_into(buffer, stream.as_str());
        write!(
            buffer,
            "\t{version}\t{}\t{}\t{}\t",
            event.event_type(),
            runledger_types::event::CURRENT_SCHEMA_VERSION,
            recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true)
        )?;
        escape_into(buffer, command.actor);
        write!(buffer, "\t{}\t", command.id)?;
        optional_uuid(buffer, command.correlation_id)?;
        buffer.push(b'\t');
        optional_uuid(buffer, command.causation_id)?;
        buffer.push(b'\t');
        escape_into(buffer, data.get());
        buffer.push(b'\n');
        Ok(event_id)
    }
}

fn optional_uuid(buffer: &mut Vec<u8>, id: Option<Uuid>) -> std::io::Result<()> {
    match id {
        Some(id) => write!(buffer, "{id}"),
        None => {
            buffer.extend_from_slice(b"\\N");
            Ok(())
        }
    }
}

/// Writes `text` as a COPY text-format field: backslash, newline, carriage return and tab are
/// escaped (JSON escapes its own control characters, but its backslashes must be doubled).
fn escape_into(buffer: &mut Vec<u8>, text: &str) {
    for &byte in text.as_bytes() {
        match byte {
            b'\\' => buffer.extend_from_slice(b"\\\\"),
            b'\n' => buffer.extend_from_slice(b"\\n"),
            b'\r' => buffer.extend_from_slice(b"\\r"),
            b'\t' => buffer.extend_from_slice(b"\\t"),
            other => buffer.push(other),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::replay::{Sim, SimSettings};

    fn unescape(field: &str) -> String {
        let mut out = String::new();
        let mut chars = field.chars();
        while let Some(c) = chars.next() {
            out.push(match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some('r') => '\r',
                    other => other.unwrap_or('\\'),
                },
                (c, false) => c,
            });
        }
        out
    }

    #[test]
    fn generated_rows_are_numbered_per_stream_and_decode_as_events() {
        let settings = SimSettings {
            machines: 10,
            test_cases: 3,
            in_flight: 20,
            executors: 2,
            seed: 3,
        };
        let mut sim = Sim::new(settings).unwrap();
        let mut log = LogWriter::new(5_000);
        sim.setup(&mut log).unwrap();
        while log.position() < 5_000 {
            let room = 5_000 - log.position();
            sim.step(&mut log, room).unwrap();
        }
        let text = String::from_utf8(log.take()).unwrap();
        let mut versions: HashMap<String, i64> = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 12, "{line}");
            assert_eq!(fields[0].parse::<usize>().unwrap(), index + 1);
            let version = versions.entry(unescape(fields[2])).or_insert(0);
            *version += 1;
            assert_eq!(fields[3].parse::<i64>().unwrap(), *version, "{line}");
            let event = Event::from_raw_parts(fields[4], &unescape(fields[11]));
            assert!(event.is_ok(), "{line}: {event:?}");
        }
        assert_eq!(text.lines().count(), 5_000);
        assert!(log.count("run_queued") > 0 && log.count("run_output") > 1_000);
    }

    #[test]
    fn fields_are_escaped_for_copy_text_format() {
        let mut buffer = Vec::new();
        escape_into(&mut buffer, "a\\b\nc\td\re");
        assert_eq!(buffer, b"a\\\\b\\nc\\td\\re");
    }
}
