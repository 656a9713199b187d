//! JUnit XML reports of runs and groups, as CI servers take them: a run is one `<testsuite>`, a
//! group is a `<testsuites>` with one suite per member. The gateway's and the CLI's reports are
//! the same text, made here.

use quick_xml::escape::escape;
use serde_json::Value;
use std::fmt::Write as _;

/// One run's results as one suite: `name` names it; `status` and `reason` are the run's end
/// (`run_finished`'s data); `tests` its per-test results (`name`, `classname`, `status`,
/// `duration_ms`, `message`).
#[derive(Debug, Clone, Copy)]
pub struct Suite<'a> {
    /// The suite's name.
    pub name: &'a str,
    /// The run's final status, if it ended.
    pub status: Option<&'a str>,
    /// Why it ended so, if said.
    pub reason: Option<&'a str>,
    /// Its per-test results.
    pub tests: &'a [Value],
}

/// A run's report: one `<testsuite>` after the XML declaration.
pub fn run_report(suite: Suite<'_>) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    push_suite(&mut xml, suite, "");
    xml
}

/// A group's report: `<testsuites name=…>` around one suite per member, with the totals.
pub fn group_report(name: &str, suites: &[Suite<'_>]) -> String {
    let totals = suites.iter().fold(Counts::default(), |sum, suite| {
        sum.add(Counts::of(suite.tests))
    });
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        xml,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" \
         time=\"{:.3}\">",
        escape(name),
        totals.tests,
        totals.failures,
        totals.errors,
        totals.skipped,
        totals.seconds
    );
    for suite in suites {
        push_suite(&mut xml, *suite, "  ");
    }
    xml.push_str("</testsuites>\n");
    xml
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    seconds: f64,
}

impl Counts {
    fn of(tests: &[Value]) -> Self {
        let count = |status: &str| tests.iter().filter(|t| t["status"] == status).count();
        Self {
            tests: tests.len(),
            failures: count("failed"),
            errors: count("error"),
            skipped: count("skipped"),
            seconds: tests.iter().map(seconds).sum(),
        }
    }

    fn add(self, other: Self) -> Self {
        Self {
            tests: self.tests + other.tests,
            failures: self.failures + other.failures,
            errors: self.errors + other.errors,
            skipped: self.skipped + other.skipped,
            seconds: self.seconds + other.seconds,
        }
    }
}

fn seconds(test: &Value) -> f64 {
    test["duration_ms"].as_f64().unwrap_or(0.0) / 1000.0
}

fn push_suite(xml: &mut String, suite: Suite<'_>, indent: &str) {
    let counts = Counts::of(suite.tests);
    let _ = writeln!(
        xml,
        "{indent}<testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" \
         time=\"{:.3}\">",
        escape(suite.name),
        counts.tests,
        counts.failures,
        counts.errors,
        counts.skipped,
        counts.seconds
    );
    for test in suite.tests {
        let name = escape(test["name"].as_str().unwrap_or(""));
        let class = escape(test["classname"].as_str().unwrap_or(""));
        let message = escape(test["message"].as_str().unwrap_or(""));
        let _ = write!(
            xml,
            "{indent}  <testcase name=\"{name}\" classname=\"{class}\" time=\"{:.3}\">",
            seconds(test)
        );
        match test["status"].as_str() {
            Some("failed") => {
                let _ = write!(xml, "<failure message=\"{message}\"/>");
            }
            Some("error") => {
                let _ = write!(xml, "<error message=\"{message}\"/>");
            }
            Some("skipped") => xml.push_str("<skipped/>"),
            _ => {}
        }
        xml.push_str("</testcase>\n");
    }
    if suite.tests.is_empty() && suite.status != Some("passed") {
        // No per-test results (no JUnit report, or the run never ran): the run is one test.
        let status = escape(suite.status.unwrap_or("unknown"));
        let reason = escape(suite.reason.unwrap_or(""));
        let _ = writeln!(
            xml,
            "{indent}  <testcase name=\"run\" classname=\"runledger\"><failure message=\"{status}: {reason}\"/></testcase>"
        );
    }
    let _ = writeln!(xml, "{indent}</testsuite>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_group_report_holds_every_member_suite_and_the_totals() {
        let one = [json!({"name": "a", "classname": "t", "status": "passed", "duration_ms": 1500})];
        let two = [
            json!({"name": "b<", "classname": "t", "status": "failed", "duration_ms": 500,
                   "message": "x & y"}),
            json!({"name": "c", "classname": "t", "status": "skipped", "duration_ms": 0}),
        ];
        let xml = group_report(
            "group g",
            &[
                Suite {
                    name: "shard 0",
                    status: Some("passed"),
                    reason: None,
                    tests: &one,
                },
                Suite {
                    name: "shard 1",
                    status: Some("failed"),
                    reason: None,
                    tests: &two,
                },
                Suite {
                    name: "shard 2",
                    status: Some("error"),
                    reason: Some("ssh"),
                    tests: &[],
                },
            ],
        );
        assert!(xml.contains(
            "<testsuites name=\"group g\" tests=\"3\" failures=\"1\" errors=\"0\" skipped=\"1\" time=\"2.000\">"
        ));
        assert!(xml.contains("name=\"b&lt;\""));
        assert!(xml.contains("<failure message=\"x &amp; y\"/>"));
        assert!(xml.contains("<failure message=\"error: ssh\"/>"));
        assert_eq!(xml.matches("<testsuite ").count(), 3);
    }
}
