//! `runledger audit verify`: recompute the log's hash chain and compare it with its seals. Exits
//! 0 when the log is intact, 1 (naming the first bad position) when it is not.

use clap::{Args, ValueEnum};
use runledger_audit::VerifyView;
use runledger_store::EventStore;

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
        VerifyFormat::Json => println!("{}", serde_json::to_string(&VerifyView::new(&report))?),
    }
    match report.first_problem {
        None => Ok(()),
        Some((position, problem)) => {
            anyhow::bail!("the event log fails verification at position {position}: {problem}")
        }
    }
}
