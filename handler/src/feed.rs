//! The events this process just committed, handed from the intake to the relay, so the leading
//! relay publishes them without reading them back from Postgres. Anything the feed does not hold
//! (events of other handler processes, or more than it keeps) the relay reads from the log.

use runledger_types::RawEventRecord;
use std::collections::VecDeque;
use tokio::sync::mpsc;

/// Most events the relay keeps waiting; past that it drops them and reads the log instead.
const CAPACITY: usize = 50_000;

/// The intake's end: send each committed batch, in commit order.
pub type FeedSender = mpsc::UnboundedSender<Vec<RawEventRecord>>;

/// The relay's end, with the events received but not yet published.
pub(crate) struct Feed {
    receiver: mpsc::UnboundedReceiver<Vec<RawEventRecord>>,
    buffer: VecDeque<RawEventRecord>,
}

impl Feed {
    /// A connected sender and feed.
    pub(crate) fn channel() -> (FeedSender, Self) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let feed = Self {
            receiver,
            buffer: VecDeque::new(),
        };
        (sender, feed)
    }

    fn push(&mut self, batch: Vec<RawEventRecord>) {
        self.buffer.extend(batch);
        if self.buffer.len() > CAPACITY {
            self.buffer.clear();
        }
    }

    /// Forgets everything received so far (while another process leads).
    pub(crate) fn clear(&mut self) {
        while let Ok(batch) = self.receiver.try_recv() {
            drop(batch);
        }
        self.buffer.clear();
    }

    /// Waits until the intake sends something (or its end is gone).
    pub(crate) async fn wait(&mut self) {
        match self.receiver.recv().await {
            Some(batch) => self.push(batch),
            None => std::future::pending().await,
        }
    }

    /// Whether the feed holds events that [`Feed::take_after`] did not hand on: they follow a
    /// position it does not hold, which only the log has.
    pub(crate) fn is_behind_a_gap(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// Up to `limit` events directly following `published`, if the feed holds them.
    pub(crate) fn take_after(&mut self, published: i64, limit: usize) -> Vec<RawEventRecord> {
        while let Ok(batch) = self.receiver.try_recv() {
            self.push(batch);
        }
        while self.buffer.front().is_some_and(|e| e.position <= published) {
            self.buffer.pop_front();
        }
        let mut taken = Vec::new();
        let mut next = published + 1;
        while taken.len() < limit && self.buffer.front().is_some_and(|e| e.position == next) {
            if let Some(event) = self.buffer.pop_front() {
                taken.push(event);
                next += 1;
            }
        }
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runledger_types::{CommandId, EventId};
    use serde_json::value::RawValue;

    fn event(position: i64) -> RawEventRecord {
        RawEventRecord {
            event_id: EventId::new(),
            position,
            stream_id: runledger_types::StreamId::executor("x"),
            stream_version: position,
            event_type: "executor_heartbeat".into(),
            schema_version: 1,
            recorded_at: chrono::Utc::now(),
            actor: "executor:x".into(),
            command_id: CommandId::new(),
            correlation_id: None,
            causation_id: None,
            data: RawValue::from_string("{}".into()).expect("json"),
        }
    }

    fn positions(events: &[RawEventRecord]) -> Vec<i64> {
        events.iter().map(|e| e.position).collect()
    }

    #[test]
    fn hands_on_only_what_directly_follows_the_published_position() {
        let (sender, mut feed) = Feed::channel();
        sender.send(vec![event(3), event(4)]).expect("open");
        sender.send(vec![event(5)]).expect("open");
        // Position 3 is not next after 1: another process committed 2, the relay must read it.
        assert!(feed.take_after(1, 10).is_empty());
        assert!(feed.is_behind_a_gap());
        assert_eq!(positions(&feed.take_after(2, 2)), [3, 4]);
        // A gap inside the feed (8 is someone else's) stops the run.
        sender
            .send(vec![event(6), event(7), event(9)])
            .expect("open");
        assert_eq!(positions(&feed.take_after(4, 10)), [5, 6, 7]);
        assert!(feed.take_after(7, 10).is_empty());
        assert_eq!(positions(&feed.take_after(8, 10)), [9]);
        assert!(!feed.is_behind_a_gap());
    }

    #[test]
    fn clearing_and_overflow_fall_back_to_the_log() {
        let (sender, mut feed) = Feed::channel();
        sender.send(vec![event(1)]).expect("open");
        feed.clear();
        assert!(feed.take_after(0, 10).is_empty());
        sender
            .send((1..=CAPACITY as i64 + 1).map(event).collect())
            .expect("open");
        assert!(
            feed.take_after(0, 10).is_empty(),
            "an overflowing feed is dropped"
        );
    }
}
