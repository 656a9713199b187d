//! `runledger bus reset` and `runledger bus status`: what a prefix's streams hold, and deleting
//! them (the way out when they hold another log's events and this prefix is to be reused).

use crate::claim::{StreamKind, StreamState, observe};
use crate::names::BusNames;
use crate::setup::BusError;
use async_nats::jetstream;

/// Every stream of the prefix as it is now, with its name (`None`: missing).
pub async fn prefix_streams(
    js: &jetstream::Context,
    names: &BusNames,
) -> Result<Vec<(String, Option<StreamState>)>, BusError> {
    let mut streams = Vec::new();
    for kind in [StreamKind::Commands, StreamKind::Events] {
        let name = kind.stream_name(names);
        let state = observe(js, &name).await?;
        streams.push((name, state));
    }
    Ok(streams)
}

/// Deletes the prefix's streams (with their consumers); returns the names of those deleted.
pub async fn delete_streams(
    js: &jetstream::Context,
    names: &BusNames,
) -> Result<Vec<String>, BusError> {
    let mut deleted = Vec::new();
    for (name, state) in prefix_streams(js, names).await? {
        if state.is_none() {
            continue;
        }
        js.delete_stream(&name)
            .await
            .map_err(|err| BusError::js("delete stream")(err.into()))?;
        deleted.push(name);
    }
    Ok(deleted)
}
