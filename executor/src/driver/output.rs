//! A run's output: the marker line taken out, the rest chunked and reported in order,
//! pipelined (see [`OutputSender`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use runledger_types::RejectionCode;
use runledger_types::command::{OutputStream, ReportRunOutput};
use runledger_types::ids::RunId;
use tokio::sync::{mpsc, watch};

use super::{PendingReport, Reporter};
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
/// `report_run_output`, published in `seq` order with up to [`WINDOW`] awaiting outcomes.
pub(super) async fn pump<R: Reporter>(
    run_id: RunId,
    (after_seq, max_bytes): (u64, u64),
    mut source: mpsc::Receiver<Output>,
    reporter: &R,
    marker: watch::Sender<Option<ProcessHandle>>,
) -> Pumped {
    let mut chunker = Chunker::default().after(after_seq).with_limit(max_bytes);
    let mut first_line: Option<BytesMut> = Some(BytesMut::new());
    let mut pumped = Pumped::default();
    let mut sender = OutputSender::new(run_id, reporter);
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
        sender.push(chunks).await;
    }
    // Output ended before a full first line: what was held back is output after all.
    let mut chunks = match first_line.take() {
        Some(held) if !held.is_empty() => chunker.push(OutputStream::Stdout, &held, Instant::now()),
        _ => Vec::new(),
    };
    chunks.extend(chunker.finish(Instant::now()));
    sender.push(chunks).await;
    pumped.failed_reports = sender.drain().await;
    pumped.last_seq = chunker.last_seq();
    if chunker.dropped() > 0 {
        tracing::warn!(
            dropped = chunker.dropped(),
            limit = max_bytes,
            "output past the run's limit dropped"
        );
    }
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

/// Most output chunks published and still waiting for their outcomes: enough for the handler to
/// group many chunks into one transaction, few enough to bound the memory they hold (64 KiB
/// each).
const WINDOW: usize = 64;

/// How many more times a chunk is sent on its own while handlers refuse it as `output_gap`, and
/// the first pause between sends (doubling: about 6 s in all). Its predecessors have their
/// outcomes by then, so the refusal is a handler that has not seen them yet; dropping the chunk
/// instead would make every later chunk a gap too, and the run's output would stop there.
const GAP_RESENDS: u32 = 5;
const GAP_PAUSE: Duration = Duration::from_millis(200);

/// Reports a run's chunks in `seq` order, pipelined: each is published behind the previous one
/// and its outcome awaited later. A chunk refused with `output_gap` (a handler saw it before its
/// predecessor: several handlers share the work) is sent again once every earlier chunk has
/// its outcome; a chunk that cannot be published is sent on its own after them.
struct OutputSender<'a, R> {
    run_id: RunId,
    reporter: &'a R,
    in_flight: VecDeque<(ReportRunOutput, PendingReport)>,
    failed: u64,
}

impl<'a, R: Reporter> OutputSender<'a, R> {
    fn new(run_id: RunId, reporter: &'a R) -> Self {
        Self {
            run_id,
            reporter,
            in_flight: VecDeque::new(),
            failed: 0,
        }
    }

    async fn push(&mut self, chunks: Vec<Chunk>) {
        for chunk in chunks {
            let report = ReportRunOutput {
                run_id: self.run_id,
                seq: chunk.seq,
                stream: chunk.stream,
                text: chunk.text,
            };
            while self.in_flight.len() >= WINDOW {
                self.settle_one().await;
            }
            let published = self.reporter.send_report_in_order(&report).await;
            match published {
                Ok(pending) => self.in_flight.push_back((report, pending)),
                Err(error) => {
                    tracing::warn!(seq = report.seq, %error, "report_run_output not published; sending it alone");
                    self.drain().await;
                    self.report_alone(&report).await;
                }
            }
        }
    }

    async fn settle_one(&mut self) {
        let Some((report, pending)) = self.in_flight.pop_front() else {
            return;
        };
        let seq = report.seq;
        match pending.await {
            Ok(()) => {}
            Err(error) if error.rejection == Some(RejectionCode::OutputGap) => {
                tracing::debug!(
                    seq,
                    "chunk handled before its predecessor; sending it again"
                );
                self.report_alone(&report).await;
            }
            Err(error) => {
                self.failed += 1;
                tracing::warn!(seq, %error, "report_run_output failed");
            }
        }
    }

    async fn report_alone(&mut self, report: &ReportRunOutput) {
        let (seq, mut pause) = (report.seq, GAP_PAUSE);
        for resend in 0..=GAP_RESENDS {
            match self.reporter.send_report(report).await {
                Ok(()) => return,
                Err(error)
                    if error.rejection == Some(RejectionCode::OutputGap)
                        && resend < GAP_RESENDS =>
                {
                    tracing::info!(seq, %error, "chunk refused as a gap again; sending it once more");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) => {
                    self.failed += 1;
                    tracing::warn!(seq, %error, "report_run_output failed");
                    return;
                }
            }
        }
    }

    /// Waits for every chunk's outcome; returns how many were not recorded.
    async fn drain(&mut self) -> u64 {
        while !self.in_flight.is_empty() {
            self.settle_one().await;
        }
        self.failed
    }
}
