//! The executor's feed against a real NATS server: the view follows the events stream in order,
//! and work items are shared by executors and redelivered when not acked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_nats::jetstream::{self, message::PublishMessage};
use runledger_bus::{Decision, LOG_HEADER, StreamClaim, StreamKind};
use runledger_executor::feed::{
    FeedError, WorkConfig, WorkItem, WorkKind, WorkQueue, follow_events, shared_view,
    work_consumers,
};
use runledger_test_support::TestNats;
use runledger_types::event::{
    MachineRegistered, RunAssigned, RunRequested, TestCaseDefined, VenvAdded,
};
use runledger_types::{
    Actor, CommandId, Event, EventId, EventRecord, Host, Line, LogId, MachineId, MachineName, Os,
    Port, RemotePath, RemoteUser, RunId, StreamId, TestCaseId, Text, VenvId, VenvName,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Publishes events the way the relay does, at positions 1, 2, …, for the log that claimed the
/// stream.
struct Relay {
    js: jetstream::Context,
    names: runledger_bus::BusNames,
    position: i64,
    claim: StreamClaim,
    /// The log named in the `Runledger-Log` header (`None`: no header).
    header: Option<LogId>,
}

impl Relay {
    async fn new(nats: &TestNats) -> Self {
        let js = nats.jetstream();
        runledger_bus::ensure_streams(&js, &nats.names)
            .await
            .expect("streams");
        let claim = StreamClaim::new(LogId::new());
        runledger_bus::claim::apply(&js, &nats.names, StreamKind::Events, Decision::Adopt(claim))
            .await
            .expect("claim")
            .expect("adopted");
        Self {
            js,
            names: nats.names.clone(),
            position: 0,
            claim,
            header: Some(claim.log),
        }
    }

    async fn publish(&mut self, event: Event) -> i64 {
        self.position += 1;
        let stream_id = event.stream_id();
        let record = EventRecord {
            event_id: EventId::new(),
            position: self.position,
            stream_id: stream_id.clone(),
            stream_version: 1,
            event_type: event.event_type().to_owned(),
            schema_version: 1,
            recorded_at: chrono::Utc::now(),
            actor: "admin".into(),
            command_id: CommandId::new(),
            correlation_id: None,
            causation_id: None,
            data: event.data_json().expect("data"),
        };
        let subject = self
            .names
            .event_subject(stream_id.stream_type(), event.event_type());
        let mut message = PublishMessage::build()
            .payload(serde_json::to_vec(&record).expect("json").into())
            .message_id(record.event_id.to_string());
        if let Some(log) = self.header {
            message = message.header(LOG_HEADER, log.to_string());
        }
        let ack = self
            .js
            .send_publish(subject, message)
            .await
            .expect("publish")
            .await
            .expect("ack");
        assert_eq!(
            ack.sequence,
            u64::try_from(self.position).expect("positive")
        );
        self.position
    }
}

fn assigned(run_id: RunId, venv_id: VenvId, machine_id: MachineId) -> Event {
    Event::RunAssigned(RunAssigned {
        run_id,
        venv_id: Some(venv_id),
        machine_id: Some(machine_id),
        attempt: 1,
    })
}

async fn lab_events(relay: &mut Relay) -> RunId {
    let (machine_id, venv_id) = (MachineId::new(), VenvId::new());
    let (test_case_id, run_id) = (TestCaseId::new(), RunId::new());
    let events = [
        Event::MachineRegistered(MachineRegistered {
            machine_id,
            name: MachineName::parse("box").expect("name"),
            host: Host::parse("local").expect("host"),
            port: Port::SSH,
            os: Os::Linux,
            username: RemoteUser::parse("lab").expect("user"),
            owner: Actor::parse("admin").expect("actor"),
            password: None,
            private_key: None,
            host_key: None,
            labels: BTreeSet::new(),
        }),
        Event::VenvAdded(VenvAdded {
            venv_id,
            machine_id,
            name: VenvName::parse("py3").expect("venv"),
            path: RemotePath::parse("~/.runledger/venvs/py3").expect("path"),
            python: Line::parse("python3").expect("python"),
            requirements: Vec::new(),
        }),
        Event::TestCaseDefined(TestCaseDefined {
            test_case_id,
            name: MachineName::parse("suite").expect("name"),
            description: String::new(),
            command: Some(Text::parse("true").expect("command")),
            jenkins: None,
            files: Vec::new(),
            env: BTreeMap::new(),
            env_overridable: Default::default(),
            timeout_s: 60,
            junit_xml: None,
            retries: 0,
            max_output_bytes: 1 << 20,
        }),
        Event::RunRequested(RunRequested {
            run_id,
            test_case_id,
            user: Actor::parse("admin").expect("actor"),
            machine_id: None,
            labels: BTreeSet::new(),
            venv_id: None,
            env: BTreeMap::new(),
            rerun_of: None,
            tests: Vec::new(),
            python: None,
            group: None,
        }),
        assigned(run_id, venv_id, machine_id),
    ];
    for event in events {
        relay.publish(event).await;
    }
    run_id
}

async fn next(queue: &WorkQueue) -> Option<WorkItem> {
    next_within(queue, Duration::from_secs(3)).await
}

async fn next_within(queue: &WorkQueue, wait: Duration) -> Option<WorkItem> {
    let shutdown = CancellationToken::new();
    tokio::time::timeout(wait, queue.next(&shutdown))
        .await
        .ok()
        .map(|item| item.expect("pull").expect("not shut down"))
}

#[tokio::test]
async fn the_view_follows_the_log_and_work_waits_for_it() {
    let nats = TestNats::create().await;
    let mut relay = Relay::new(&nats).await;
    let run_id = lab_events(&mut relay).await;
    let js = nats.jetstream();
    let (writer, view) = shared_view();
    let shutdown = CancellationToken::new();
    let claim = relay.claim;
    let follower = tokio::spawn({
        let (js, names, shutdown) = (js.clone(), nats.names.clone(), shutdown.clone());
        async move { follow_events(&js, &names, claim, writer, shutdown).await }
    });
    let work = work_consumers(&js, &nats.names, relay.claim, WorkConfig::default())
        .await
        .expect("consumers");
    let item = tokio::time::timeout(
        Duration::from_secs(5),
        work.runs.next_ready(&view, &shutdown),
    )
    .await
    .expect("in time")
    .expect("pulls")
    .expect("an item");
    assert_eq!(item.position, 5);
    assert!(view.position() >= 5);
    let run = view.read(|lab| lab.resolve_run(run_id)).expect("resolves");
    assert_eq!(run.assignment.position, 5);
    assert!(run.machine.host.is_local());
    item.ack().await.expect("ack");
    let venv = next(&work.venvs).await.expect("the venv_added item");
    assert_eq!((venv.position, venv.event.event_type()), (2, "venv_added"));
    venv.ack().await.expect("ack");
    // Events published later reach the running view, in order.
    let later = lab_events(&mut relay).await;
    tokio::time::timeout(Duration::from_secs(5), view.wait_for(10))
        .await
        .expect("in time")
        .expect("follower alive");
    assert!(view.read(|lab| lab.resolve_run(later)).is_ok());
    assert_eq!(view.position(), 10);
    shutdown.cancel();
    follower.await.expect("joins").expect("stops cleanly");
    nats.cleanup().await;
}

#[tokio::test]
async fn two_executors_share_run_assignments_each_delivered_once() {
    let nats = TestNats::create().await;
    let mut relay = Relay::new(&nats).await;
    let mut published = HashSet::new();
    for _ in 0..20 {
        let event = assigned(RunId::new(), VenvId::new(), MachineId::new());
        published.insert(relay.publish(event).await);
    }
    let config = WorkConfig {
        pull_expires: Duration::from_millis(500),
        ..WorkConfig::default()
    };
    let stream = nats
        .jetstream()
        .get_stream(nats.names.events_stream())
        .await
        .expect("stream");
    let claim = relay.claim;
    let executor = |stream, names, config| async move {
        let queue = WorkQueue::open(&stream, &names, WorkKind::Run, claim, config)
            .await
            .expect("consumer");
        let mut got = Vec::new();
        while let Some(item) = next(&queue).await {
            item.ack().await.expect("ack");
            got.push(item.position);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        got
    };
    let names = nats.names.clone();
    let (a, b) = tokio::join!(
        executor(stream.clone(), names.clone(), config),
        executor(stream, names, config)
    );
    let all: HashSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(a.len() + b.len(), 20, "each item is delivered exactly once");
    assert_eq!(all, published);
    assert!(
        !a.is_empty() && !b.is_empty(),
        "both executors got work: {a:?} {b:?}"
    );
    nats.cleanup().await;
}

#[tokio::test]
async fn an_unacked_item_is_delivered_again_after_ack_wait() {
    let nats = TestNats::create().await;
    let mut relay = Relay::new(&nats).await;
    let position = relay
        .publish(assigned(RunId::new(), VenvId::new(), MachineId::new()))
        .await;
    let config = WorkConfig {
        ack_wait: Duration::from_secs(1),
        pull_expires: Duration::from_millis(500),
        ..WorkConfig::default()
    };
    let work = work_consumers(&nats.jetstream(), &nats.names, relay.claim, config)
        .await
        .expect("consumers");
    let first = next(&work.runs).await.expect("delivered");
    assert_eq!((first.position, first.deliveries), (position, 1));
    drop(first); // the executor died holding it
    // A redelivery that lands on a pull request just as it expires is lost and counted; it
    // comes again one ack_wait later (so on a loaded machine the count may pass 2).
    let again = next_within(&work.runs, Duration::from_secs(10))
        .await
        .expect("delivered again");
    assert_eq!(again.position, position);
    assert!(again.deliveries >= 2, "{}", again.deliveries);
    again.ack().await.expect("ack");
    assert!(next(&work.runs).await.is_none(), "acked work stays done");
    nats.cleanup().await;
}

/// Anyone able to publish on an events subject could put a message on the events stream; the
/// relay publishes each event at the stream sequence equal to its position, so a message whose
/// claimed position differs is neither folded into the view nor handed out as work.
#[tokio::test]
async fn an_event_the_relay_did_not_publish_is_ignored() {
    let nats = TestNats::create().await;
    let mut relay = Relay::new(&nats).await;
    let genuine = lab_events(&mut relay).await;
    // A forged run_assigned, claiming a later position, lands at the next sequence.
    let js = nats.jetstream();
    let forged_run = RunId::new();
    let mut forged = EventRecord {
        event_id: EventId::new(),
        position: relay.position + 5,
        stream_id: StreamId::run(forged_run),
        stream_version: 2,
        event_type: "run_assigned".into(),
        schema_version: 1,
        recorded_at: chrono::Utc::now(),
        actor: "admin".into(),
        command_id: CommandId::new(),
        correlation_id: None,
        causation_id: None,
        data: serde_json::json!({"run_id": forged_run, "attempt": 1}),
    };
    forged.data["venv_id"] = serde_json::json!(VenvId::new());
    let subject = nats.names.event_subject("run", "run_assigned");
    let message = PublishMessage::build()
        .payload(serde_json::to_vec(&forged).expect("json").into())
        .message_id(forged.event_id.to_string());
    js.send_publish(subject, message)
        .await
        .expect("publish")
        .await
        .expect("ack");
    relay.position += 1;
    let after = lab_events(&mut relay).await;

    let (writer, view) = shared_view();
    let shutdown = CancellationToken::new();
    let claim = relay.claim;
    let follower = tokio::spawn({
        let (js, names, shutdown) = (js.clone(), nats.names.clone(), shutdown.clone());
        async move { follow_events(&js, &names, claim, writer, shutdown).await }
    });
    let last = relay.position;
    tokio::time::timeout(Duration::from_secs(5), view.wait_for(last))
        .await
        .expect("in time")
        .expect("follower alive");
    assert!(view.read(|lab| lab.resolve_run(genuine)).is_ok());
    assert!(view.read(|lab| lab.resolve_run(after)).is_ok());
    assert!(view.read(|lab| lab.run(forged_run).is_none()));
    let work = work_consumers(&js, &nats.names, relay.claim, WorkConfig::default())
        .await
        .expect("consumers");
    let mut handed_out = Vec::new();
    while let Some(item) = next_within(&work.runs, Duration::from_secs(2)).await {
        handed_out.push(item.position);
        item.ack().await.expect("ack");
    }
    assert_eq!(handed_out, [5, last], "only the genuine run_assigned items");
    shutdown.cancel();
    follower.await.expect("joins").expect("stops cleanly");
    nats.cleanup().await;
}

/// A stream claimed by one log may hold messages of another (published by a relay of another
/// log, or by anyone): an event naming another log, or naming none, is neither folded into the
/// view nor handed out as work, even at the right sequence.
#[tokio::test]
async fn an_event_of_another_log_is_never_acted_on() {
    let nats = TestNats::create().await;
    let mut relay = Relay::new(&nats).await;
    let genuine = lab_events(&mut relay).await;
    relay.header = Some(LogId::new());
    let foreign = lab_events(&mut relay).await;
    relay.header = None;
    let unmarked = lab_events(&mut relay).await;
    relay.header = Some(relay.claim.log);
    let after = lab_events(&mut relay).await;

    let js = nats.jetstream();
    let (writer, view) = shared_view();
    let shutdown = CancellationToken::new();
    let claim = relay.claim;
    let follower = tokio::spawn({
        let (js, names, shutdown) = (js.clone(), nats.names.clone(), shutdown.clone());
        async move { follow_events(&js, &names, claim, writer, shutdown).await }
    });
    tokio::time::timeout(Duration::from_secs(5), view.wait_for(relay.position))
        .await
        .expect("in time")
        .expect("follower alive");
    assert!(view.read(|lab| lab.resolve_run(genuine)).is_ok());
    assert!(view.read(|lab| lab.resolve_run(after)).is_ok());
    assert!(view.read(|lab| lab.run(foreign).is_none()));
    assert!(view.read(|lab| lab.run(unmarked).is_none()));
    let work = work_consumers(&js, &nats.names, claim, WorkConfig::default())
        .await
        .expect("consumers");
    let mut handed_out = Vec::new();
    while let Some(item) = next_within(&work.runs, Duration::from_secs(2)).await {
        handed_out.push(item.position);
        item.ack().await.expect("ack");
    }
    assert_eq!(handed_out, [5, 20], "only this log's run_assigned items");
    shutdown.cancel();
    follower.await.expect("joins").expect("stops cleanly");
    nats.cleanup().await;
}

/// The stream is reset and claimed by another log while an executor follows it: the follower
/// stops, naming both logs, rather than fold the new log's events into the old log's view.
#[tokio::test]
async fn the_follower_stops_when_another_log_takes_the_stream() {
    let nats = TestNats::create().await;
    let mut relay = Relay::new(&nats).await;
    lab_events(&mut relay).await;
    let js = nats.jetstream();
    let (writer, view) = shared_view();
    let shutdown = CancellationToken::new();
    let old = relay.claim;
    let follower = tokio::spawn({
        let (js, names, shutdown) = (js.clone(), nats.names.clone(), shutdown.clone());
        async move { follow_events(&js, &names, old, writer, shutdown).await }
    });
    tokio::time::timeout(Duration::from_secs(5), view.wait_for(5))
        .await
        .expect("in time")
        .expect("follower alive");

    js.delete_stream(nats.names.events_stream())
        .await
        .expect("reset");
    let mut other = Relay::new(&nats).await;
    let mut new_runs = Vec::new();
    for _ in 0..3 {
        new_runs.push(lab_events(&mut other).await);
    }
    let stopped = tokio::time::timeout(Duration::from_secs(15), follower)
        .await
        .expect("the follower stops")
        .expect("joins");
    match stopped {
        Err(FeedError::LogChanged { was, now, .. }) => {
            assert_eq!((was, now), (old.log, other.claim.log));
        }
        other => panic!("not stopped for the new log: {other:?}"),
    }
    for run in new_runs {
        assert!(
            view.read(|lab| lab.run(run).is_none()),
            "nothing of the new log folded"
        );
    }
    nats.cleanup().await;
}
