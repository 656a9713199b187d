//! Executors' liveness lives in a NATS key-value bucket, not in the log: beats move a key's
//! revision and append nothing; the lease watch reads that revision.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_bus::{Beat, Liveness};
use runledger_test_support::TestNats;
use runledger_types::RunId;
use uuid::Uuid;

#[tokio::test]
async fn beats_move_an_executors_revision_and_nothing_else() {
    let nats = TestNats::create().await;
    let js = nats.jetstream();
    let liveness = Liveness::open(&js, &nats.names)
        .await
        .expect("bucket created");
    assert_eq!(liveness.revision("host.a-1").await.expect("read"), 0);
    let beat = Beat {
        executor: "host.a-1".into(),
        run_ids: vec![RunId(Uuid::now_v7())],
    };
    let first = liveness.beat(&beat).await.expect("beat");
    assert!(first > 0);
    assert_eq!(liveness.revision("host.a-1").await.expect("read"), first);
    assert_eq!(
        liveness.revision("host=2Ea-1").await.expect("read"),
        0,
        "another name's key is its own"
    );
    let reopened = Liveness::open(&js, &nats.names)
        .await
        .expect("bucket opened");
    let second = reopened.beat(&beat).await.expect("beat");
    assert!(second > first);
    assert_eq!(liveness.revision("host.a-1").await.expect("read"), second);
}

/// The log head, read straight from the log.
async fn log_head(lab: &runledger_test_support::TestLab) -> i64 {
    lab.store
        .read_after(0, 100_000)
        .await
        .expect("read the log")
        .last()
        .map_or(0, |event| event.position)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idle_lab_of_ten_executors_appends_nothing() {
    let lab = runledger_test_support::TestLab::create().await;
    let handler = lab.start_handler().await;
    let client = lab.client();
    client.register_admin("ada").await;
    let head = log_head(&lab).await;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut executors = Vec::new();
    for index in 0..10 {
        let name = format!("idle-{index}");
        let mut settings = runledger_executor::ExecutorSettings::new(
            name,
            lab.nats.names.clone(),
            lab.keyring.clone(),
        );
        // Twenty beats a second each: an hour of 5 s beats is 720, here in under 4 s.
        settings.heartbeat_every = std::time::Duration::from_millis(50);
        let run = runledger_executor::run(lab.nats.client.clone(), settings, shutdown.clone());
        executors.push(tokio::spawn(run));
    }
    let liveness = Liveness::open(&lab.nats.jetstream(), &lab.nats.names)
        .await
        .expect("bucket opened");
    // Every executor beats, and the bucket takes 200 beats: 17 minutes of one executor's.
    let js = lab.nats.jetstream();
    let bucket = format!("KV_{}", lab.nats.names.liveness_bucket());
    runledger_test_support::eventually(
        std::time::Duration::from_secs(60),
        "every executor to beat, 200 beats in all",
        || async {
            for index in 0..10 {
                let revision = liveness.revision(&format!("idle-{index}")).await.ok()?;
                (revision > 0).then_some(())?;
            }
            let mut stream = js.get_stream(bucket.as_str()).await.ok()?;
            let beats = stream.info().await.ok()?.state.last_sequence;
            (beats >= 200).then_some(())
        },
    )
    .await;
    assert_eq!(
        log_head(&lab).await,
        head,
        "beats appended events to the log"
    );
    shutdown.cancel();
    for executor in executors {
        let stopped = tokio::time::timeout(std::time::Duration::from_secs(30), executor).await;
        assert!(
            matches!(stopped, Ok(Ok(Ok(())))),
            "executor stopped cleanly"
        );
    }
    handler.stop().await;
    lab.cleanup().await;
}
