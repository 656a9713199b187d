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
    /// Chunks not recorded (logged; the run goes on).
    pub unrecorded: u64,
    /// Where the recorded output stops short, if it does: the run then ends `error`
    /// (`output_lost`).
    pub lost: Option<LostOutput>,
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
    pumped.lost = sender.drain().await;
    pumped.unrecorded = sender.unrecorded;
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

/// How long a chunk is sent again on its own while it cannot be recorded: refused as
/// `output_gap` (a handler that has not yet seen its predecessors: several handlers share the
/// work), or without an outcome (NATS is down or restarting). Pauses start at [`FIRST_PAUSE`]
/// and double up to [`LONGEST_PAUSE`]. Giving a chunk up makes every later chunk a gap, so the
/// output stops there ([`LostOutput`]): it is worth waiting for.
const PATIENCE: Duration = Duration::from_secs(90);
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const LONGEST_PAUSE: Duration = Duration::from_secs(5);

/// Output that could not be recorded: from `first_seq` on, the run's output in the log stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LostOutput {
    /// The first chunk that was not recorded.
    pub first_seq: u64,
    /// Why it was not.
    pub reason: String,
}

impl LostOutput {
    /// The run's end for lost output: an infrastructure error (the test may well have passed,
    /// but the lab's record of it is incomplete), retried like any other.
    pub(super) fn infra_error(&self) -> crate::classify::InfraError {
        crate::classify::InfraError {
            code: crate::classify::ErrorCode::OutputLost,
            detail: format!(
                "the run's output from chunk {} on could not be recorded: {}",
                self.first_seq, self.reason
            ),
        }
    }
}

/// Reports a run's chunks in `seq` order, pipelined: each is published behind the previous one
/// and its outcome awaited later. A chunk refused with `output_gap`, or that cannot be
/// published, is sent again on its own once every earlier chunk has its outcome, for up to
/// [`PATIENCE`]. A chunk given up on (or refused otherwise) ends the sending: the chunks after it
/// would be gaps.
struct OutputSender<'a, R> {
    run_id: RunId,
    reporter: &'a R,
    in_flight: VecDeque<(ReportRunOutput, PendingReport)>,
    lost: Option<LostOutput>,
    /// Chunks not recorded (the lost one and every one after it).
    unrecorded: u64,
}

impl<'a, R: Reporter> OutputSender<'a, R> {
    fn new(run_id: RunId, reporter: &'a R) -> Self {
        Self {
            run_id,
            reporter,
            in_flight: VecDeque::new(),
            lost: None,
            unrecorded: 0,
        }
    }

    async fn push(&mut self, chunks: Vec<Chunk>) {
        for chunk in chunks {
            if self.lost.is_some() {
                self.unrecorded += 1;
                continue;
            }
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
                    if self.lost.is_none() {
                        self.report_alone(&report).await;
                    } else {
                        self.unrecorded += 1;
                    }
                }
            }
        }
    }

    async fn settle_one(&mut self) {
        let Some((report, pending)) = self.in_flight.pop_front() else {
            return;
        };
        let outcome = pending.await;
        if self.lost.is_some() {
            // Published behind a lost chunk: refused as a gap, or recorded after a gap.
            self.unrecorded += 1;
            return;
        }
        match outcome {
            Ok(()) => {}
            Err(error) if worth_sending_again(&error) => {
                tracing::debug!(seq = report.seq, %error, "chunk not recorded; sending it again");
                self.report_alone(&report).await;
            }
            Err(error) => self.give_up(&report, error.to_string()),
        }
    }

    /// Sends `report` on its own until it is recorded, refused for good, or [`PATIENCE`] runs
    /// out.
    async fn report_alone(&mut self, report: &ReportRunOutput) {
        let (seq, began, mut pause) = (report.seq, tokio::time::Instant::now(), FIRST_PAUSE);
        loop {
            match self.reporter.send_report(report).await {
                Ok(()) => return,
                Err(error) if worth_sending_again(&error) && began.elapsed() < PATIENCE => {
                    tracing::info!(seq, %error, "chunk not recorded yet; sending it once more");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(LONGEST_PAUSE);
                }
                Err(error) => return self.give_up(report, error.to_string()),
            }
        }
    }

    fn give_up(&mut self, report: &ReportRunOutput, reason: String) {
        tracing::warn!(seq = report.seq, %reason, "report_run_output failed; the rest of the output is not sent");
        self.unrecorded += 1;
        self.lost = Some(LostOutput {
            first_seq: report.seq,
            reason,
        });
    }

    /// Waits for every chunk's outcome; returns the output lost, if any.
    async fn drain(&mut self) -> Option<LostOutput> {
        while !self.in_flight.is_empty() {
            self.settle_one().await;
        }
        self.lost.clone()
    }
}

/// A chunk refused as a gap (its predecessors are not yet visible to the handler that judged
/// it), or that got no answer at all (NATS), may be recorded if sent again; any other refusal
/// (the run has ended, say) is final.
fn worth_sending_again(error: &super::ReportError) -> bool {
    match error.rejection {
        Some(code) => code == RejectionCode::OutputGap,
        None => true,
    }
}
