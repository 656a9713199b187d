//! The projector component. Its behaviour arrives with issue #3; until then the component
//! starts, says so, and idles until shutdown, so `runledger serve` can already name it.
#![deny(missing_docs)]

use tokio_util::sync::CancellationToken;

/// Runs the projector until `shutdown` is cancelled.
pub async fn run(shutdown: CancellationToken) {
    tracing::warn!(
        component = "projector",
        "component not built yet (issue #3); idling"
    );
    shutdown.cancelled().await;
}
