//! `runledger audit verify`: recompute the log's hash chain and compare it with its seals. Exits
//! 0 when the log is intact, 1 (naming the first bad position) when it is not.

use clap::{Args, ValueEnum};
use runledger_store::{EventStore, Problem, VerifyReport};
use serde::Serialize;

/// Arguments of `runledger audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// `text`: one sentence; `json`: the report's fields.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    format: VerifyFormat,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum VerifyFormat {
    /// A sentence for people.
    Text,
    /// One JSON object.
    Json,
}

/// Verifies the log, prints the report, and fails when a problem was found.
pub async fn verify(store: &EventStore, args: &VerifyArgs) -> anyhow::Result<()> {
    let report = store.verify().await?;
    match args.format {
        VerifyFormat::Text => println!("{report}"),
        VerifyFormat::Json => println!("{}", serde_json::to_string(&ReportView::new(&report))?),
    }
    match report.first_problem {
        None => Ok(()),
        Some((position, problem)) => {
            anyhow::bail!("the event log fails verification at position {position}: {problem}")
        }
    }
}

/// The report as JSON.
#[derive(Debug, Serialize)]
struct ReportView {
    intact: bool,
    checked: i64,
    sealed_through: i64,
    sealed_hash: String,
    unsealed: i64,
    head: i64,
    first_problem: Option<ProblemView>,
}

#[derive(Debug, Serialize)]
struct ProblemView {
    position: i64,
    problem: &'static str,
    message: String,
}

impl ReportView {
    fn new(report: &VerifyReport) -> Self {
        Self {
            intact: report.is_intact(),
            checked: report.checked,
            sealed_through: report.sealed_through,
            sealed_hash: report.sealed_hash_hex(),
            unsealed: report.unsealed,
            head: report.head,
            first_problem: report.first_problem.map(|(position, problem)| ProblemView {
                position,
                problem: code(problem),
                message: problem.to_string(),
            }),
        }
    }
}

/// A stable, machine-readable name for each problem.
fn code(problem: Problem) -> &'static str {
    match problem {
        Problem::Altered => "altered",
        Problem::Reordered => "reordered",
        Problem::Missing => "missing",
        Problem::SealMissing => "seal_missing",
        Problem::BeyondHead => "beyond_head",
    }
}
