//! The executor component. Its behaviour arrives with issue #4; until then the component
//! starts, says so, and idles until shutdown, so `runledger serve` can already name it.
#![deny(missing_docs)]

use tokio_util::sync::CancellationToken;

/// Runs the executor until `shutdown` is cancelled.
pub async fn run(shutdown: CancellationToken) {
    tracing::warn!(
        component = "executor",
        "component not built yet (issue #4); idling"
    );
    shutdown.cancelled().await;
}
