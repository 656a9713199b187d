//! `runledger tests quarantine|release`: while a test is quarantined its failures are recorded
//! and shown but do not fail runs. Sent over NATS like any caller's commands; who and why are
//! in the log.

use crate::send::send_accepted;
use crate::settings::Settings;
use anyhow::Context;
use clap::Args;
use runledger_types::command::{QuarantineTest, ReleaseTest};
use runledger_types::values::Reason;
use runledger_types::{TestCaseId, TestId};
use uuid::Uuid;

/// `runledger tests quarantine`
#[derive(Debug, Args)]
pub struct QuarantineArgs {
    /// The test (`runledger tests list` prints its id).
    pub test_id: Uuid,
    /// Why, for the log and for those who see its failures excused (1 to 1000 characters).
    #[arg(long)]
    pub reason: String,
    /// When the quarantine ends by itself (RFC 3339, in the future); without it, it lasts
    /// until `runledger tests release`.
    #[arg(long)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// The test case whose runs report the test, for readers of the log.
    #[arg(long = "test-case")]
    pub test_case: Option<Uuid>,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
}

/// `runledger tests release`
#[derive(Debug, Args)]
pub struct ReleaseArgs {
    /// The quarantined test.
    pub test_id: Uuid,
    /// Who asks.
    #[arg(long, env = "RUNLEDGER_ACTOR", default_value = "cli")]
    pub actor: String,
}

/// Sends `quarantine_test`.
pub async fn quarantine(settings: &Settings, args: QuarantineArgs) -> anyhow::Result<()> {
    let command = QuarantineTest {
        test_id: TestId(args.test_id),
        reason: Reason::parse(args.reason).context("--reason")?,
        until: args.until,
        test_case_id: args.test_case.map(TestCaseId),
    };
    send_accepted(settings, &args.actor, &command).await?;
    eprintln!("test {} quarantined", args.test_id);
    Ok(())
}

/// Sends `release_test`.
pub async fn release(settings: &Settings, args: ReleaseArgs) -> anyhow::Result<()> {
    let command = ReleaseTest {
        test_id: TestId(args.test_id),
    };
    send_accepted(settings, &args.actor, &command).await?;
    eprintln!("test {} released", args.test_id);
    Ok(())
}
