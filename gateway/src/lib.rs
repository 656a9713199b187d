//! The gateway component. Its behaviour arrives with issue #5; until then the component
//! starts, says so, and idles until shutdown, so `runledger serve` can already name it.
#![deny(missing_docs)]

use tokio_util::sync::CancellationToken;

/// Runs the gateway until `shutdown` is cancelled.
pub async fn run(shutdown: CancellationToken) {
    tracing::warn!(
        component = "gateway",
        "component not built yet (issue #5); idling"
    );
    shutdown.cancelled().await;
}
