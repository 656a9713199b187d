//! JUnit XML reports (as written by pytest's `--junitxml`) into the vocabulary's `TestSummary`
//! and `TestResult`s, read with `quick-xml`'s streaming reader.
//!
//! Counts come from the `<testcase>` elements themselves (in every suite, nested ones included),
//! not from the suites' attributes, which tools fill inconsistently. A test case with a
//! `<failure>` is `failed`, with an `<error>` is `error`, with a `<skipped>` is `skipped`,
//! otherwise `passed`; with several (pytest adds an `<error>` when teardown fails after the test
//! did), the first in that order wins. Missing or unparsable attributes become empty names and
//! zero durations. The message is the outcome element's `message` attribute, or its text (with
//! CDATA sections) when the attribute is empty: unescaped, trimmed of leading and trailing
//! whitespace, inner whitespace (a traceback's indentation) kept exactly. Comments, processing
//! instructions and the DOCTYPE are ignored; entities it declares are not expanded, so using one
//! is an error, like any other undefined entity.
//!
//! The result is bounded: texts are cut at [`MAX_NAME_BYTES`] / [`MAX_MESSAGE_BYTES`] (on a
//! character boundary, marked with `…`), and the list keeps at most [`MAX_TESTS`] entries
//! (`truncated` then says so); the summary still counts every test. Results too many for one
//! NATS message are reported in parts (see the driver's `report_run_tests`). Malformed XML is a [`JunitError`], never a panic.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use runledger_types::command::{TestOutcome, TestResult};
use runledger_types::values::TestSummary;

/// Largest report read, in bytes; a bigger file is refused before parsing.
pub const MAX_REPORT_BYTES: usize = 32 * 1024 * 1024;
/// Most per-test results kept: a suite of 100,000 tests keeps all of them (sent in parts).
pub const MAX_TESTS: usize = 100_000;
/// Longest kept test or class name, in bytes.
pub const MAX_NAME_BYTES: usize = 512;
/// Longest kept failure message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024;

/// A parsed report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JunitReport {
    /// Counts over every test case.
    pub summary: TestSummary,
    /// Per-test results in document order, at most [`MAX_TESTS`].
    pub tests: Vec<TestResult>,
    /// True when tests were left out of `tests`.
    pub truncated: bool,
}

/// Why a report could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JunitError {
    /// Larger than [`MAX_REPORT_BYTES`].
    #[error("JUnit report is {0} bytes, more than the {MAX_REPORT_BYTES} allowed")]
    TooLarge(usize),
    /// Not well-formed XML, or not a JUnit report.
    #[error("JUnit report is malformed: {0}")]
    Malformed(String),
}

/// Parses a JUnit XML document.
pub fn parse(xml: &[u8]) -> Result<JunitReport, JunitError> {
    if xml.len() > MAX_REPORT_BYTES {
        return Err(JunitError::TooLarge(xml.len()));
    }
    if !xml.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(malformed("the document is empty"));
    }
    let mut reader = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut parser = Parser::default();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| malformed(format!("{e} (at byte {})", reader.error_position())))?;
        if !parser.event(event)? {
            return Ok(parser.report);
        }
        buf.clear();
    }
}

/// The state of one pass over the document.
#[derive(Default)]
struct Parser {
    report: JunitReport,
    /// How many elements are open.
    depth: usize,
    seen_root: bool,
    /// From the XML declaration: it decides how line ends are normalised.
    version: XmlVersion,
    /// The open `<testcase>`, if any.
    case: Option<Case>,
}

/// A `<testcase>` being read.
struct Case {
    /// Its depth (0 for the root element).
    depth: usize,
    /// All but the message.
    result: TestResult,
    message: Message,
    /// Depth of the outcome element while its text is being read.
    reading: Option<usize>,
}

impl Parser {
    /// Takes in one event; false at the end of the document.
    fn event(&mut self, event: Event<'_>) -> Result<bool, JunitError> {
        match event {
            Event::Start(element) => {
                self.open(&element)?;
                self.depth += 1;
            }
            Event::Empty(element) => {
                self.open(&element)?;
                self.close(self.depth);
            }
            Event::End(_) => {
                self.depth = self.depth.saturating_sub(1);
                self.close(self.depth);
            }
            Event::Text(text) => self.text(&text.xml_content(self.version))?,
            Event::CData(cdata) => self.text(&cdata.xml_content(self.version))?,
            Event::GeneralRef(reference) => {
                let character = reference.resolve_char_ref().map_err(malformed)?;
                let mut utf8 = [0; 4];
                let resolved = match character {
                    Some(c) => c.encode_utf8(&mut utf8),
                    None => resolve_predefined_entity(&reference)
                        .ok_or_else(|| malformed(format!("undefined entity &{};", &*reference)))?,
                };
                self.text(resolved)?;
            }
            Event::Decl(decl) => self.version = decl.xml_version().map_err(malformed)?,
            Event::Comment(_) | Event::PI(_) | Event::DocType(_) => {}
            Event::Eof if self.depth > 0 => return Err(malformed("an element is not closed")),
            Event::Eof if !self.seen_root => return Err(malformed("there is no root element")),
            Event::Eof => return Ok(false),
        }
        Ok(true)
    }

    /// An element opens at `self.depth`.
    fn open(&mut self, element: &BytesStart<'_>) -> Result<(), JunitError> {
        let local = element.local_name();
        let name = local.as_ref();
        if self.depth == 0 {
            if self.seen_root {
                return Err(malformed("there is more than one root element"));
            }
            if !matches!(name, "testsuites" | "testsuite") {
                return Err(malformed(format!(
                    "the root element is <{name}>, not <testsuites> or <testsuite>"
                )));
            }
            self.seen_root = true;
        }
        let [case_name, classname, time, message] = attributes(element, self.version)?;
        match &mut self.case {
            None if name == "testcase" => {
                let result = TestResult {
                    name: truncate(&case_name, MAX_NAME_BYTES),
                    classname: truncate(&classname, MAX_NAME_BYTES),
                    status: TestOutcome::Passed,
                    duration_ms: time.trim().parse().map_or(0, duration_ms),
                    message: None,
                };
                self.case = Some(Case {
                    depth: self.depth,
                    result,
                    message: Message::default(),
                    reading: None,
                });
            }
            Some(case) if self.depth == case.depth + 1 => {
                let status = match name {
                    "failure" => TestOutcome::Failed,
                    "error" => TestOutcome::Error,
                    "skipped" => TestOutcome::Skipped,
                    _ => return Ok(()),
                };
                if rank(status) > rank(case.result.status) {
                    case.result.status = status;
                    case.message = Message {
                        attribute: message,
                        text: String::new(),
                    };
                    case.reading = Some(self.depth);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The element at `depth` closed.
    fn close(&mut self, depth: usize) {
        let Some(case) = &mut self.case else { return };
        if case.reading == Some(depth) {
            case.reading = None;
        }
        if case.depth == depth
            && let Some(case) = self.case.take()
        {
            self.add(case);
        }
    }

    /// Character data (already unescaped) at `self.depth`.
    fn text(&mut self, text: &str) -> Result<(), JunitError> {
        if self.depth == 0 && !text.trim().is_empty() {
            return Err(malformed("there is text outside the root element"));
        }
        if let Some(case) = &mut self.case
            && case.reading.is_some()
        {
            case.message.text.push_str(text);
        }
        Ok(())
    }

    fn add(&mut self, case: Case) {
        let mut result = case.result;
        let summary = &mut self.report.summary;
        let counter = match result.status {
            TestOutcome::Passed => &mut summary.passed,
            TestOutcome::Failed => &mut summary.failed,
            TestOutcome::Skipped => &mut summary.skipped,
            TestOutcome::Error => &mut summary.errors,
        };
        *counter = counter.saturating_add(1);
        if self.report.tests.len() >= MAX_TESTS {
            self.report.truncated = true;
            return;
        }
        result.message = case.message.finish();
        self.report.tests.push(result);
    }
}

/// An outcome element's `message` attribute and text. The text is held whole until the case
/// ends: like every string here it is bounded by [`MAX_REPORT_BYTES`].
#[derive(Default)]
struct Message {
    attribute: String,
    text: String,
}

impl Message {
    /// The trimmed attribute, or the trimmed text when that is empty, cut; none when empty.
    fn finish(self) -> Option<String> {
        let attribute = self.attribute.trim();
        let chosen = if attribute.is_empty() {
            self.text.trim()
        } else {
            attribute
        };
        (!chosen.is_empty()).then(|| truncate(chosen, MAX_MESSAGE_BYTES))
    }
}

/// The unescaped `name`, `classname`, `time` and `message` attributes (empty when missing), after
/// checking that every attribute is well-formed.
fn attributes(element: &BytesStart<'_>, version: XmlVersion) -> Result<[String; 4], JunitError> {
    const KEYS: [&str; 4] = ["name", "classname", "time", "message"];
    let mut values: [String; 4] = Default::default();
    for attribute in element.attributes() {
        let attribute = attribute.map_err(malformed)?;
        let key = attribute.key.local_name();
        if let Some(i) = KEYS.iter().position(|k| *k == key.as_ref()) {
            values[i] = attribute
                .normalized_value(version)
                .map_err(malformed)?
                .into_owned();
        }
    }
    Ok(values)
}

/// Which outcome wins when a case has several: the later in this list.
fn rank(status: TestOutcome) -> Option<usize> {
    use TestOutcome::{Error, Failed, Passed, Skipped};
    [Passed, Skipped, Error, Failed]
        .iter()
        .position(|p| *p == status)
}

fn malformed(why: impl ToString) -> JunitError {
    JunitError::Malformed(why.to_string())
}

fn duration_ms(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 {
        (seconds * 1000.0).round() as u64 // `as` saturates for huge values
    } else {
        0
    }
}

/// At most `max` bytes: cut on a character boundary, ending with `…` when cut.
fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let limit = max.saturating_sub('…'.len_utf8());
    let cut = (0..=limit)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}…", &text[..cut])
}

#[cfg(test)]
mod tests;
