//! The report of `runledger audit verify --format json`: the hash chain check's result with a
//! stable, machine-readable name for each problem, so tools need not parse sentences.

use runledger_store::{Problem, VerifyReport};
use serde::Serialize;

/// A [`VerifyReport`] as JSON.
#[derive(Debug, Serialize)]
pub struct VerifyView {
    intact: bool,
    checked: i64,
    sealed_through: i64,
    sealed_hash: String,
    unsealed: i64,
    head: i64,
    first_problem: Option<ProblemView>,
}

/// The first bad position.
#[derive(Debug, Serialize)]
struct ProblemView {
    position: i64,
    problem: &'static str,
    message: String,
}

impl VerifyView {
    /// The view of `report`.
    pub fn new(report: &VerifyReport) -> Self {
        Self {
            intact: report.is_intact(),
            checked: report.checked,
            sealed_through: report.sealed_through,
            sealed_hash: report.sealed_hash_hex(),
            unsealed: report.unsealed,
            head: report.head,
            first_problem: report.first_problem.map(|(position, problem)| ProblemView {
                position,
                problem: problem_code(problem),
                message: problem.to_string(),
            }),
        }
    }
}

/// A stable, machine-readable name for each problem.
pub fn problem_code(problem: Problem) -> &'static str {
    match problem {
        Problem::Altered => "altered",
        Problem::Reordered => "reordered",
        Problem::Missing => "missing",
        Problem::SealMissing => "seal_missing",
        Problem::BeyondHead => "beyond_head",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use runledger_store::GENESIS;
    use serde_json::json;

    #[test]
    fn a_problem_is_named_by_its_code_position_and_message() {
        let report = VerifyReport {
            checked: 4,
            sealed_through: 4,
            sealed_hash: GENESIS,
            unsealed: 0,
            head: 6,
            first_problem: Some((5, Problem::SealMissing)),
        };
        let value = serde_json::to_value(VerifyView::new(&report)).unwrap();
        assert_eq!(value["intact"], false);
        assert_eq!(
            (value["checked"].clone(), value["head"].clone()),
            (json!(4), json!(6))
        );
        assert_eq!(value["sealed_hash"], report.sealed_hash_hex());
        assert_eq!(
            value["first_problem"],
            json!({
                "position": 5,
                "problem": "seal_missing",
                "message": Problem::SealMissing.to_string(),
            })
        );
    }

    #[test]
    fn an_intact_log_has_no_problem() {
        let report = VerifyReport {
            checked: 2,
            sealed_through: 1,
            sealed_hash: GENESIS,
            unsealed: 1,
            head: 2,
            first_problem: None,
        };
        let value = serde_json::to_value(VerifyView::new(&report)).unwrap();
        assert_eq!(value["intact"], true);
        assert_eq!(value["first_problem"], serde_json::Value::Null);
        assert_eq!(value.as_object().unwrap().len(), 7);
    }
}
