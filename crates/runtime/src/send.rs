//! `runledger send`: publish one command through JetStream and print its outcome.

use crate::cli::SendArgs;
use crate::settings::Settings;
use anyhow::Context;
use async_nats::jetstream::message::PublishMessage;
use futures::StreamExt;
use runledger_types::{CommandEnvelope, CommandId, Outcome};

/// Publishes, waits for the outcome, prints it as JSON; fails when the command was rejected.
pub async fn send(settings: &Settings, args: &SendArgs) -> anyhow::Result<()> {
    let names = settings.names()?;
    let payload: serde_json::Value =
        serde_json::from_str(&args.payload).context("the payload is not valid JSON")?;
    let envelope = CommandEnvelope {
        command_id: CommandId::new(),
        command_type: args.command_type.clone(),
        actor: args.actor.clone(),
        correlation_id: None,
        causation_id: None,
        payload,
    };
    let client = runledger_bus::connect(&settings.nats_url, "runledger-cli").await?;
    let mut outcomes = client
        .subscribe(names.outcome_subject(envelope.command_id))
        .await
        .context("subscribing to the outcome")?;
    client.flush().await.context("flushing the subscription")?;
    let js = runledger_bus::jetstream(client);
    let message = PublishMessage::build()
        .payload(serde_json::to_vec(&envelope)?.into())
        .message_id(envelope.command_id.to_string());
    js.send_publish(names.command_subject(&args.command_type), message)
        .await
        .context("publishing the command")?
        .await
        .context("JetStream did not store the command (is a handler's stream there?)")?;
    let reply = tokio::time::timeout(args.timeout, outcomes.next())
        .await
        .context("no outcome in time: is `runledger serve --components handler` running?")?
        .context("outcome subscription closed")?;
    let outcome: Outcome = serde_json::from_slice(&reply.payload).context("malformed outcome")?;
    println!("{}", serde_json::to_string_pretty(&outcome)?);
    if !outcome.accepted {
        anyhow::bail!("command rejected");
    }
    Ok(())
}
