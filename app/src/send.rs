//! `runledger send`: publish one command through JetStream and print its outcome.

use crate::cli::SendArgs;
use crate::settings::Settings;
use anyhow::Context;
use runledger_bus::{CommandSender, Origin};
use runledger_types::CommandId;

/// Publishes, waits for the outcome, prints it as JSON; fails when the command was rejected.
pub async fn send(settings: &Settings, args: &SendArgs) -> anyhow::Result<()> {
    let payload: serde_json::Value =
        serde_json::from_str(&args.payload).context("the payload is not valid JSON")?;
    let sender = command_sender(settings, args.timeout).await?;
    let outcome = sender
        .send_raw(
            CommandId::new(),
            &Origin::actor(args.actor.as_str()),
            &args.command_type,
            payload,
        )
        .await
        .context("no outcome: is `runledger serve --components handler` running?")?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    if !outcome.accepted {
        anyhow::bail!("command rejected");
    }
    Ok(())
}

/// A command sender on a fresh NATS connection, waiting `timeout` for each outcome.
pub async fn command_sender(
    settings: &Settings,
    timeout: std::time::Duration,
) -> anyhow::Result<CommandSender> {
    let client = settings.nats("runledger-cli").await?;
    Ok(CommandSender::new(client, settings.names()?, timeout, 1))
}

/// Sends `command` as `actor` and waits for its outcome; fails, naming the code and reason,
/// when it is rejected.
pub async fn send_accepted<C: runledger_types::command::CommandPayload>(
    settings: &Settings,
    actor: &str,
    command: &C,
) -> anyhow::Result<()> {
    let sender = command_sender(settings, std::time::Duration::from_secs(10)).await?;
    let outcome = sender
        .send(CommandId::new(), actor, command)
        .await
        .context("no outcome: is `runledger serve --components handler` running?")?;
    if let Some(error) = outcome.error {
        anyhow::bail!(
            "{} rejected: {}: {}",
            C::TYPE.as_str(),
            error.code,
            error.message
        );
    }
    Ok(())
}
