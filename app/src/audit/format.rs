//! How `runledger audit` prints events: one JSON object a line (the contract's event fields,
//! for tools), or an aligned table (for people).

use clap::ValueEnum;
use runledger_types::EventRecord;
use serde_json::Value;
use std::io::{self, Write};

/// Output format of `runledger audit` and `runledger audit verify`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object a line.
    #[default]
    Json,
    /// Aligned columns with a short summary of each event's data.
    Table,
}

/// Summary width when the terminal's (`COLUMNS`) is unknown or too narrow.
const SUMMARY_WIDTH: usize = 60;
/// The narrowest summary worth printing.
const MIN_SUMMARY_WIDTH: usize = 20;
/// Widths of the columns before the summary, each followed by two spaces.
const WIDTHS: [usize; 5] = [8, 24, 16, 24, 40];

/// Writes events in one [`Format`].
#[derive(Debug)]
pub struct Renderer {
    format: Format,
    summary_width: usize,
}

impl Renderer {
    /// A renderer; a table's summary fills what `COLUMNS` leaves, or [`SUMMARY_WIDTH`].
    pub fn new(format: Format) -> Self {
        let fixed: usize = WIDTHS.iter().map(|width| width + 2).sum();
        let summary_width = std::env::var("COLUMNS")
            .ok()
            .and_then(|columns| columns.trim().parse::<usize>().ok())
            .map(|columns| columns.saturating_sub(fixed))
            .filter(|width| *width >= MIN_SUMMARY_WIDTH)
            .unwrap_or(SUMMARY_WIDTH);
        Self {
            format,
            summary_width,
        }
    }

    /// The table's header line (nothing for JSON).
    pub fn header(&self, out: &mut impl Write) -> io::Result<()> {
        match self.format {
            Format::Json => Ok(()),
            Format::Table => row(
                out,
                ["POSITION", "RECORDED_AT", "ACTOR", "TYPE", "STREAM_ID"],
                "DATA",
            ),
        }
    }

    /// One event.
    pub fn record(&self, out: &mut impl Write, record: &EventRecord) -> io::Result<()> {
        match self.format {
            Format::Json => {
                serde_json::to_writer(&mut *out, record).map_err(io::Error::from)?;
                out.write_all(b"\n")
            }
            Format::Table => {
                let position = record.position.to_string();
                let time = record
                    .recorded_at
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string();
                let summary = truncate(&summary(record), self.summary_width);
                let cells = [
                    position.as_str(),
                    &time,
                    &record.actor,
                    &record.event_type,
                    record.stream_id.as_str(),
                ];
                row(out, cells, &summary)
            }
        }
    }
}

/// Writes padded cells (the first right-aligned: it is a number) and the summary.
fn row(out: &mut impl Write, cells: [&str; 5], summary: &str) -> io::Result<()> {
    let [position, time, actor, kind, stream] = cells;
    let [w0, w1, w2, w3, w4] = WIDTHS;
    writeln!(
        out,
        "{position:>w0$}  {time:<w1$}  {actor:<w2$}  {kind:<w3$}  {stream:<w4$}  {summary}"
    )
}

/// `key=value` for each field of the data, leaving out nulls and the id the stream is named
/// after (`run_id` of a `run-…` event): `test_case_id=0193… user=ada`.
fn summary(record: &EventRecord) -> String {
    let own_key = record.stream_id.key();
    let Value::Object(fields) = &record.data else {
        return record.data.to_string();
    };
    let parts: Vec<String> = fields
        .iter()
        .filter(|(_, value)| !value.is_null())
        .filter(|(_, value)| value.as_str().is_none_or(|text| Some(text) != own_key))
        .map(|(key, value)| match key.as_str() {
            // Sealed credentials and password hashes say nothing to a reader of the table and
            // should not end up in terminals and tickets; the JSON output keeps the event whole.
            "password_hash" | "password" | "private_key" => format!("{key}=<hidden>"),
            _ => format!("{key}={}", compact(value)),
        })
        .collect();
    parts.join(" ")
}

/// A string as is when it is one plain word, else compact JSON (quoted, escaped).
fn compact(value: &Value) -> String {
    match value {
        Value::String(text)
            if !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            text.clone()
        }
        other => other.to_string(),
    }
}

/// At most `width` characters, ending in `…` when something was cut.
fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use runledger_types::{CommandId, EventId, StreamId};
    use serde_json::json;

    fn record(data: Value) -> EventRecord {
        EventRecord {
            event_id: EventId::new(),
            position: 42,
            stream_id: StreamId::from_stored("run-abc".into()),
            stream_version: 1,
            event_type: "run_output".into(),
            schema_version: 1,
            recorded_at: chrono::Utc::now(),
            actor: "executor:e1".into(),
            command_id: CommandId::new(),
            correlation_id: None,
            causation_id: None,
            data,
        }
    }

    #[test]
    fn summaries_skip_the_streams_own_id_and_quote_what_needs_it() {
        let data = json!({"run_id": "abc", "seq": 1, "text": "1 passed\n", "reason": null});
        assert_eq!(summary(&record(data)), r#"seq=1 text="1 passed\n""#);
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        let user = json!({"username": "ada", "password_hash": "$argon2id$v=19$secret"});
        assert_eq!(
            summary(&record(user)),
            "password_hash=<hidden> username=ada"
        );
    }

    #[test]
    fn json_lines_carry_exactly_the_contract_fields() {
        let mut out = Vec::new();
        let renderer = Renderer::new(Format::Json);
        renderer.record(&mut out, &record(json!({}))).unwrap();
        let line: serde_json::Map<String, Value> = serde_json::from_slice(&out).unwrap();
        let mut keys: Vec<&str> = line.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut expected = [
            "event_id",
            "position",
            "stream_id",
            "stream_version",
            "type",
            "schema_version",
            "recorded_at",
            "actor",
            "command_id",
            "correlation_id",
            "causation_id",
            "data",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert!(out.ends_with(b"}\n"));
    }
}
