//! The JSON Jenkins answers with, and what runledger makes of it.

use runledger_types::TestSummary;
use runledger_types::command::{TestOutcome, TestResult};
use serde::Deserialize;

/// A queue item (`queue/item/<id>/api/json`): waiting, left for a build, or cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueState {
    /// Still waiting; `why` is Jenkins' own explanation.
    Waiting {
        /// e.g. "Waiting for next available executor".
        why: Option<String>,
    },
    /// A build started from it.
    Started {
        /// The build number.
        number: u64,
        /// The build's URL.
        url: String,
    },
    /// It was cancelled before a build started.
    Cancelled,
}

#[derive(Deserialize)]
pub(super) struct QueueItemJson {
    #[serde(default)]
    cancelled: bool,
    #[serde(default)]
    why: Option<String>,
    #[serde(default)]
    executable: Option<ExecutableJson>,
}

#[derive(Deserialize)]
struct ExecutableJson {
    number: u64,
    url: String,
}

impl From<QueueItemJson> for QueueState {
    fn from(item: QueueItemJson) -> Self {
        match item.executable {
            Some(build) => Self::Started {
                number: build.number,
                url: build.url,
            },
            None if item.cancelled => Self::Cancelled,
            None => Self::Waiting { why: item.why },
        }
    }
}

/// A build (`<build>/api/json`): still running, or its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildState {
    /// Still building.
    Building,
    /// Done with this result: `SUCCESS`, `UNSTABLE`, `FAILURE`, `ABORTED`, `NOT_BUILT`.
    Done(String),
}

#[derive(Deserialize)]
pub(super) struct BuildJson {
    #[serde(default)]
    building: bool,
    #[serde(default)]
    result: Option<String>,
}

impl From<BuildJson> for BuildState {
    fn from(build: BuildJson) -> Self {
        match (build.building, build.result) {
            (false, Some(result)) => Self::Done(result),
            _ => Self::Building,
        }
    }
}

/// A build's test report, as runledger records it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestReport {
    /// The counts.
    pub summary: TestSummary,
    /// One result per test case.
    pub tests: Vec<TestResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TestReportJson {
    #[serde(default)]
    suites: Vec<SuiteJson>,
}

#[derive(Deserialize)]
struct SuiteJson {
    #[serde(default)]
    cases: Vec<CaseJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CaseJson {
    #[serde(default)]
    class_name: String,
    name: String,
    /// `PASSED`, `FIXED`, `FAILED`, `REGRESSION`, `SKIPPED`.
    status: String,
    /// Seconds.
    #[serde(default)]
    duration: f64,
    #[serde(default)]
    error_details: Option<String>,
    #[serde(default)]
    skipped_message: Option<String>,
}

impl From<TestReportJson> for TestReport {
    fn from(report: TestReportJson) -> Self {
        let mut summary = TestSummary::default();
        let mut tests = Vec::new();
        for case in report.suites.into_iter().flat_map(|suite| suite.cases) {
            let status = match case.status.as_str() {
                "PASSED" | "FIXED" => TestOutcome::Passed,
                "SKIPPED" => TestOutcome::Skipped,
                _ => TestOutcome::Failed,
            };
            match status {
                TestOutcome::Passed => summary.passed += 1,
                TestOutcome::Skipped => summary.skipped += 1,
                TestOutcome::Failed => summary.failed += 1,
                TestOutcome::Error => summary.errors += 1,
            }
            let message = match status {
                TestOutcome::Skipped => case.skipped_message,
                _ => case.error_details,
            };
            tests.push(TestResult {
                name: case.name,
                classname: case.class_name,
                status,
                duration_ms: (case.duration.max(0.0) * 1000.0).round() as u64,
                message,
            });
        }
        Self { summary, tests }
    }
}

/// `builds[number,url,actions[parameters[name,value]]]` of a job, and `items[...]` of the queue:
/// enough to find what was triggered for a run.
#[derive(Deserialize)]
pub(super) struct JobBuildsJson {
    #[serde(default)]
    pub(super) builds: Vec<FoundJson>,
}

#[derive(Deserialize)]
pub(super) struct QueueJson {
    #[serde(default)]
    pub(super) items: Vec<FoundJson>,
}

/// A build or queue item with its parameters.
#[derive(Deserialize)]
pub(super) struct FoundJson {
    #[serde(default)]
    pub(super) number: Option<u64>,
    #[serde(default)]
    pub(super) id: Option<u64>,
    #[serde(default)]
    pub(super) url: Option<String>,
    #[serde(default)]
    actions: Vec<Option<ActionJson>>,
}

#[derive(Deserialize)]
struct ActionJson {
    #[serde(default)]
    parameters: Vec<ParameterJson>,
}

#[derive(Deserialize)]
struct ParameterJson {
    name: String,
    #[serde(default)]
    value: serde_json::Value,
}

impl FoundJson {
    /// True when the build or item carries parameter `name` = `value`.
    pub(super) fn has_parameter(&self, name: &str, value: &str) -> bool {
        self.actions
            .iter()
            .flatten()
            .flat_map(|action| &action.parameters)
            .any(|p| p.name == name && p.value.as_str() == Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_item_is_waiting_started_or_cancelled() {
        let parse = |text: &str| -> QueueState {
            serde_json::from_str::<QueueItemJson>(text)
                .map(QueueState::from)
                .unwrap_or_else(|err| panic!("{text}: {err}"))
        };
        assert_eq!(
            parse(
                r#"{"_class":"hudson.model.Queue$WaitingItem","id":7,"why":"In the quiet period"}"#
            ),
            QueueState::Waiting {
                why: Some("In the quiet period".into())
            }
        );
        assert_eq!(
            parse(
                r#"{"_class":"hudson.model.Queue$LeftItem","cancelled":false,"executable":{"number":17,"url":"http://j/job/a/17/"}}"#
            ),
            QueueState::Started {
                number: 17,
                url: "http://j/job/a/17/".into()
            }
        );
        assert_eq!(
            parse(r#"{"_class":"hudson.model.Queue$LeftItem","cancelled":true,"executable":null}"#),
            QueueState::Cancelled
        );
    }

    #[test]
    fn a_build_is_running_until_it_has_a_result() {
        let parse = |text: &str| -> BuildState {
            serde_json::from_str::<BuildJson>(text)
                .map(BuildState::from)
                .unwrap_or_else(|err| panic!("{err}"))
        };
        assert_eq!(
            parse(r#"{"building":true,"result":null}"#),
            BuildState::Building
        );
        assert_eq!(
            parse(r#"{"building":false,"result":"UNSTABLE"}"#),
            BuildState::Done("UNSTABLE".into())
        );
    }

    #[test]
    fn a_test_report_becomes_a_summary_and_results() {
        let json = r#"{"_class":"hudson.tasks.junit.TestResult","passCount":2,"failCount":1,"skipCount":1,
            "suites":[{"cases":[
              {"className":"t.A","name":"ok","status":"PASSED","duration":0.25},
              {"className":"t.A","name":"fixed","status":"FIXED","duration":0},
              {"className":"t.B","name":"bad","status":"REGRESSION","duration":1.5,"errorDetails":"assert 1 == 2"},
              {"className":"t.B","name":"later","status":"SKIPPED","duration":0,"skippedMessage":"not today"}]}]}"#;
        let report: TestReport = serde_json::from_str::<TestReportJson>(json)
            .map(TestReport::from)
            .expect("a report");
        assert_eq!(
            report.summary,
            TestSummary {
                passed: 2,
                failed: 1,
                skipped: 1,
                errors: 0,
                quarantined_failed: 0,
            }
        );
        assert_eq!(report.tests[2].duration_ms, 1500);
        assert_eq!(report.tests[2].message.as_deref(), Some("assert 1 == 2"));
        assert_eq!(report.tests[3].message.as_deref(), Some("not today"));
    }

    #[test]
    fn builds_are_found_by_parameter() {
        let json = r#"{"builds":[
            {"number":3,"url":"u3","actions":[{},{"parameters":[{"name":"RUNLEDGER_RUN_ID","value":"abc"}]}]},
            {"number":2,"url":"u2","actions":[null,{"parameters":[{"name":"RUNLEDGER_RUN_ID","value":"xyz"}]}]}]}"#;
        let builds: JobBuildsJson = serde_json::from_str(json).expect("builds");
        let found: Vec<_> = builds
            .builds
            .iter()
            .filter(|b| b.has_parameter("RUNLEDGER_RUN_ID", "xyz"))
            .filter_map(|b| b.number)
            .collect();
        assert_eq!(found, vec![2]);
    }
}
