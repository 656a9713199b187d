//! Group commit's intake side: after the first command, take every command that is already
//! waiting, up to a limit, so the busier the handler, the larger (and cheaper per command) its
//! transactions.

use async_nats::jetstream::Message;
use futures::{Stream, StreamExt};
use std::fmt::Display;
use std::time::Duration;
use tokio::time::Instant;

/// The rest of a group that starts with `first`: up to `max` messages in all, while the server
/// reports more pending and `linger` has not passed.
pub(crate) async fn gather_rest<S, E>(
    first: Message,
    messages: &mut S,
    max: usize,
    linger: Duration,
) -> Vec<Message>
where
    S: Stream<Item = Result<Message, E>> + Unpin,
    E: Display,
{
    let mut pending = pending_after(&first);
    let mut group = vec![first];
    let deadline = Instant::now() + linger;
    while group.len() < max && pending > 0 {
        match tokio::time::timeout_at(deadline, messages.next()).await {
            Ok(Some(Ok(message))) => {
                pending = pending_after(&message);
                group.push(message);
            }
            Ok(Some(Err(err))) => tracing::warn!(error = %err, "commands consumer hiccup"),
            Ok(None) | Err(_) => break,
        }
    }
    group
}

/// How many messages the server still holds for the consumer after this one.
fn pending_after(message: &Message) -> u64 {
    message.info().map_or(0, |info| info.pending)
}
