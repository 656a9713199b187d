//! A run's output: the marker line taken out, the rest chunked and reported in order.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use runledger_types::command::OutputStream;
use runledger_types::ids::RunId;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::Reporter;
use crate::chunker::{Chunk, Chunker};
use crate::render::{ProcessHandle, parse_marker};
use crate::ssh::Output;

/// Longest first stdout line searched for the marker; past it, the output is passed on as is.
const MAX_MARKER_LINE: usize = 256;

/// What the output pump saw, for the run's end.
#[derive(Debug, Default)]
pub(super) struct Pumped {
    /// Chunks whose `report_run_output` failed (logged; the run goes on).
    pub failed_reports: u64,
    /// The last `seq` emitted.
    pub last_seq: u64,
}

/// Reads `source` until it closes: the first stdout line goes to `marker` when it is one, the
/// rest through a [`Chunker`] (flushed on its deadline even without new bytes) to `reporter` as
/// `report_run_output`, awaited one by one so `seq` order is kept.
pub(super) async fn pump<R: Reporter>(
    run_id: RunId,
    after_seq: u64,
    mut source: mpsc::Receiver<Output>,
    reporter: &R,
    marker: watch::Sender<Option<ProcessHandle>>,
) -> Pumped {
    let mut chunker = Chunker::default().after(after_seq);
    let mut first_line: Option<BytesMut> = Some(BytesMut::new());
    let mut pumped = Pumped::default();
    loop {
        let deadline = chunker.deadline().map(tokio::time::Instant::from_std);
        let chunks = tokio::select! {
            output = source.recv() => match output {
                None => break,
                Some(Output::Stderr(bytes)) => {
                    chunker.push(OutputStream::Stderr, &bytes, Instant::now())
                }
                Some(Output::Stdout(bytes)) => match take_marker(&mut first_line, bytes, &marker) {
                    Some(rest) => chunker.push(OutputStream::Stdout, &rest, Instant::now()),
                    None => Vec::new(),
                },
            },
            () = sleep_until(deadline), if deadline.is_some() => {
                chunker.poll(Instant::now()).into_iter().collect()
            }
        };
        send(run_id, reporter, chunks, &mut pumped).await;
    }
    // Output ended before a full first line: what was held back is output after all.
    let mut chunks = match first_line.take() {
        Some(held) if !held.is_empty() => chunker.push(OutputStream::Stdout, &held, Instant::now()),
        _ => Vec::new(),
    };
    chunks.extend(chunker.finish(Instant::now()));
    send(run_id, reporter, chunks, &mut pumped).await;
    pumped.last_seq = chunker.last_seq();
    pumped
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// While the first stdout line is incomplete, holds bytes back; once complete, publishes the
/// marker (when the line is one) and returns the bytes that are output.
fn take_marker(
    first_line: &mut Option<BytesMut>,
    bytes: Bytes,
    marker: &watch::Sender<Option<ProcessHandle>>,
) -> Option<Bytes> {
    let Some(held) = first_line.as_mut() else {
        return Some(bytes);
    };
    held.extend_from_slice(&bytes);
    let Some(end) = held.iter().position(|b| *b == b'\n') else {
        if held.len() > MAX_MARKER_LINE {
            return first_line.take().map(BytesMut::freeze);
        }
        return None;
    };
    let mut all = first_line.take()?.freeze();
    let line = all.split_to(end + 1);
    match std::str::from_utf8(&line).ok().and_then(parse_marker) {
        Some(handle) => {
            tracing::debug!(?handle, "run process started");
            let _ = marker.send(Some(handle));
            Some(all)
        }
        None => {
            tracing::warn!("the run's first stdout line is not a process marker");
            let mut whole = BytesMut::from(&line[..]);
            whole.extend_from_slice(&all);
            Some(whole.freeze())
        }
    }
}

async fn send<R: Reporter>(run_id: RunId, reporter: &R, chunks: Vec<Chunk>, pumped: &mut Pumped) {
    for chunk in chunks {
        let payload = json!({
            "run_id": run_id,
            "seq": chunk.seq,
            "stream": chunk.stream,
            "text": chunk.text,
        });
        if let Err(error) = reporter.report("report_run_output", payload).await {
            pumped.failed_reports += 1;
            tracing::warn!(seq = chunk.seq, %error, "report_run_output failed");
        }
    }
}
