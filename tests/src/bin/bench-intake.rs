//! `intake` benchmark: 100,000 `start_run` commands from 4 concurrent JetStream
//! publishers into a handler running as its own process (`runledger serve --components handler`),
//! timed from the first publish to the last outcome; in the same run, the baseline: raw batched
//! INSERTs of as many event-shaped rows (100 per statement, 4 connections) into a scratch table.
//!
//! With `--with-projector`, a projector runs too (`runledger serve --components projector`, its
//! own process like the handler) and the projection lag is sampled every 100 ms from the first
//! publish to the last outcome: the age of the oldest committed event the read models
//! do not include yet, reported as p50/p99/max.
//!
//! Run: `cargo build --release --bin runledger && cargo run --release -p runledger-tests --bin bench-intake`
//! Prints a final JSON line `{"bench":"intake",...}`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Context;
use async_nats::jetstream::message::PublishMessage;
use clap::Parser;
use futures::StreamExt;
use runledger_test_support::{CommandClient, TestDb, TestNats};
use runledger_tests::lag::{self, LagSampler, LagSummary};
use runledger_tests::peak_rss_kib;
use serde_json::json;
use std::process::Stdio;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// start_run commands to publish.
    #[arg(long, default_value_t = 100_000)]
    commands: usize,
    /// Concurrent publishers.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Machines (each gets `venvs` venvs).
    #[arg(long, default_value_t = 100)]
    machines: usize,
    /// Venvs per machine.
    #[arg(long, default_value_t = 5)]
    venvs: usize,
    /// The runledger binary.
    #[arg(long, default_value = "target/release/runledger")]
    runledger: String,
    /// Also run a projector process and report the projection lag during the intake.
    #[arg(long)]
    with_projector: bool,
}

/// What the intake measured.
struct Intake {
    commands_per_s: f64,
    events_per_s: f64,
    handler_rss_kib: u64,
    projection: Option<Projection>,
}

/// The projector's lag during the intake (`--with-projector`).
struct Projection {
    lag: LagSummary,
    catch_up: Duration,
    rss_kib: u64,
}

/// How many actors the `start_run` commands come from.
const ACTORS: usize = 100;

/// Publish acks a publisher leaves unawaited at most.
const ACK_WINDOW: usize = 4096;

struct Lab {
    machines: Vec<Uuid>,
    test_cases: Vec<Uuid>,
}

async fn send_all(
    client: &CommandClient,
    commands: Vec<(&'static str, &'static str, serde_json::Value)>,
) {
    let futures = commands
        .into_iter()
        .map(|(kind, actor, payload)| async move { client.send(kind, actor, payload).await });
    let outcomes: Vec<_> = futures::stream::iter(futures)
        .buffer_unordered(64)
        .collect()
        .await;
    for outcome in outcomes {
        assert!(outcome.accepted, "setup command rejected: {outcome:?}");
    }
}

async fn register_lab(client: &CommandClient, args: &Args) -> Lab {
    send_all(
        client,
        vec![(
            "register_user",
            "bench",
            json!({"username": "admin", "role": "admin", "password": "bench-password"}),
        )],
    )
    .await;
    let machines: Vec<Uuid> = (0..args.machines).map(|_| Uuid::now_v7()).collect();
    let mut commands = Vec::new();
    for (index, machine) in machines.iter().enumerate() {
        commands.push(("register_machine", "admin", json!({"machine_id": machine, "name": format!("lab-{index:03}"),
            "host": format!("10.0.{}.{}", index / 250, index % 250 + 1), "os": if index % 10 == 0 { "windows" } else { "linux" },
            "username": "tester", "password": "machine-password", "labels": [format!("rack{}", index % 10), "pool"]})));
    }
    send_all(client, commands).await;
    let mut venvs = Vec::new();
    for machine in &machines {
        for index in 0..args.venvs {
            let venv = Uuid::now_v7();
            venvs.push(venv);
            let payload = json!({"venv_id": venv, "machine_id": machine, "name": format!("py{index}"), "requirements": ["pytest>=8", "requests"]});
            send_all(client, vec![("add_venv", "admin", payload)]).await;
        }
    }
    let provisioned = venvs
        .iter()
        .map(|v| {
            (
                "report_venv_provisioned",
                "executor:bench",
                json!({"venv_id": v}),
            )
        })
        .collect();
    send_all(client, provisioned).await;
    let test_cases: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    let defined = test_cases.iter().enumerate().map(|(i, id)| ("define_test_case", "admin", json!({"test_case_id": id,
        "name": format!("suite-{i}"), "command": "pytest -q --junitxml=report.xml tests/", "junit_xml": "report.xml",
        "env": {"PYTHONHASHSEED": "0"}, "env_overridable": ["BUILD_NUMBER"], "timeout_s": 900}))).collect();
    send_all(client, defined).await;
    Lab {
        machines,
        test_cases,
    }
}

fn start_run_body(lab: &Lab, index: usize) -> Vec<u8> {
    let machine = lab.machines[index % lab.machines.len()];
    let payload = if index.is_multiple_of(2) {
        json!({"run_id": Uuid::now_v7(), "test_case_id": lab.test_cases[index % lab.test_cases.len()],
               "machine_id": machine, "env": {"BUILD_NUMBER": index.to_string()}})
    } else {
        json!({"run_id": Uuid::now_v7(), "test_case_id": lab.test_cases[index % lab.test_cases.len()],
               "labels": [format!("rack{}", index % 10)], "env": {"BUILD_NUMBER": index.to_string()}})
    };
    let id = Uuid::now_v7();
    // One actor may have at most 1,000 runs queued (too_many_queued_runs): the runs come from
    // 100 CI jobs, 1,000 each.
    let actor = format!("jenkins-{}", index % ACTORS);
    serde_json::to_vec(
        &json!({"command_id": id, "type": "start_run", "actor": actor, "payload": payload}),
    )
    .unwrap()
}

/// Starts `runledger serve --components <component>` on the bench's database and namespace.
fn serve(
    args: &Args,
    db: &TestDb,
    nats: &TestNats,
    component: &str,
) -> anyhow::Result<tokio::process::Child> {
    tokio::process::Command::new(&args.runledger)
        .args(["serve", "--components", component])
        .env("DATABASE_URL", &db.url)
        .env("NATS_URL", &nats.url)
        .env("RUNLEDGER_NATS_PREFIX", nats.names.prefix())
        .env(
            "RUNLEDGER_SECRET_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        )
        .env(
            "RUST_LOG",
            std::env::var("BENCH_HANDLER_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .kill_on_drop(true)
        .stdout(Stdio::null())
        .stderr(match std::env::var_os("BENCH_HANDLER_LOG") {
            Some(_) => Stdio::inherit(),
            None => Stdio::null(),
        })
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with cargo build --release --bin runledger)",
                args.runledger
            )
        })
}

async fn intake(args: &Args, db: &TestDb, nats: &TestNats) -> anyhow::Result<Intake> {
    let mut handler = serve(args, db, nats, "handler")?;
    let mut projector = if args.with_projector {
        Some(serve(args, db, nats, "projector")?)
    } else {
        None
    };
    let client = CommandClient::new(nats);
    let lab = register_lab(&client, args).await;
    eprintln!(
        "lab registered: {} machines, {} venvs",
        args.machines,
        args.machines * args.venvs
    );

    let store = runledger_store::EventStore::new(db.pool.clone());
    if projector.is_some() {
        let waited = lag::wait_caught_up(&db.pool, Duration::from_secs(60)).await?;
        eprintln!("projector caught up with the lab after {waited:?} more");
    }
    let head_before = store.head().await?;
    let mut outcomes = nats
        .client
        .subscribe(format!("{}.outcomes.>", nats.names.prefix()))
        .await?;
    nats.client.flush().await?;
    let started = Instant::now();
    let sampler = projector
        .is_some()
        .then(|| LagSampler::start(db.pool.clone(), Duration::from_millis(100)));
    let per_publisher = args.commands / args.publishers;
    let mut publishers = Vec::new();
    for publisher in 0..args.publishers {
        let js = nats.jetstream();
        let subject = nats.names.command_subject("start_run");
        let bodies: Vec<Vec<u8>> = (0..per_publisher)
            .map(|i| start_run_body(&lab, publisher * per_publisher + i))
            .collect();
        publishers.push(tokio::spawn(async move {
            // A bounded window of unawaited acks: the context's in-flight permits come back
            // only as acks are awaited, so awaiting none would deadlock at the limit.
            let mut acks = std::collections::VecDeque::with_capacity(ACK_WINDOW);
            for body in bodies {
                let message = PublishMessage::build()
                    .payload(body.into())
                    .message_id(Uuid::now_v7().to_string());
                let ack = js
                    .send_publish(subject.clone(), message)
                    .await
                    .expect("publish");
                acks.push_back(ack);
                if acks.len() >= ACK_WINDOW {
                    acks.pop_front().expect("non-empty").await.expect("stored");
                }
            }
            for ack in acks {
                ack.await.expect("stored");
            }
            eprintln!("publisher {publisher} done after {:?}", started.elapsed());
        }));
    }
    let total = per_publisher * args.publishers;
    let mut received = 0;
    let mut rejected = 0;
    while received < total {
        let message = tokio::time::timeout(Duration::from_secs(60), outcomes.next())
            .await
            .context("outcomes stopped arriving")?
            .context("subscription closed")?;
        let outcome: runledger_types::Outcome = serde_json::from_slice(&message.payload)?;
        rejected += usize::from(!outcome.accepted);
        received += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let samples = match sampler {
        Some(sampler) => Some(sampler.stop().await?),
        None => None,
    };
    if let Some(samples) = &samples {
        let series: Vec<String> = samples
            .iter()
            .step_by(10)
            .map(|s| format!("{:.0}/{}", s.age_ms, s.behind))
            .collect();
        eprintln!("lag each second (ms / events behind): {}", series.join(" "));
    }
    for publisher in publishers {
        publisher.await?;
    }
    anyhow::ensure!(rejected == 0, "{rejected} start_runs were rejected");
    let appended = store.head().await? - head_before;
    let rss = peak_rss_kib(&handler.id().context("handler pid")?.to_string()).unwrap_or(0);
    let projection = match (&mut projector, samples) {
        (Some(process), Some(samples)) => {
            let catch_up = lag::wait_caught_up(&db.pool, Duration::from_secs(120)).await?;
            let rss_kib =
                peak_rss_kib(&process.id().context("projector pid")?.to_string()).unwrap_or(0);
            process.start_kill()?;
            process.wait().await?;
            Some(Projection {
                lag: LagSummary::of(&samples),
                catch_up,
                rss_kib,
            })
        }
        _ => None,
    };
    handler.start_kill()?;
    handler.wait().await?;
    Ok(Intake {
        commands_per_s: total as f64 / elapsed,
        events_per_s: appended as f64 / elapsed,
        handler_rss_kib: rss,
        projection,
    })
}

const SCRATCH: &str = "CREATE TABLE scratch_events (position bigint PRIMARY KEY, event_id uuid NOT NULL UNIQUE, \
    stream_id text NOT NULL, stream_version bigint NOT NULL, type text NOT NULL, schema_version integer NOT NULL, \
    recorded_at timestamptz NOT NULL, actor text NOT NULL, command_id uuid NOT NULL, correlation_id uuid, \
    causation_id uuid, data jsonb NOT NULL, UNIQUE (stream_id, stream_version))";

/// Raw batched INSERT of `rows` event-shaped rows, 100 per statement, over 4 connections.
async fn baseline(db: &TestDb, rows: usize) -> anyhow::Result<f64> {
    sqlx::query(SCRATCH).execute(&db.pool).await?;
    let data = json!({"run_id": Uuid::now_v7(), "test_case_id": Uuid::now_v7(), "user": "jenkins",
        "machine_id": Uuid::now_v7(), "env": {"BUILD_NUMBER": "12345"}})
    .to_string();
    let started = Instant::now();
    let mut workers = Vec::new();
    for worker in 0..4_i64 {
        let pool = db.pool.clone();
        let data = data.clone();
        let share = (rows / 4) as i64;
        workers.push(tokio::spawn(async move {
            let mut next = worker * share;
            let end = next + share;
            while next < end {
                let mut builder = sqlx::QueryBuilder::new("INSERT INTO scratch_events VALUES ");
                let mut separated = builder.separated(", ");
                for position in next..(next + 100).min(end) {
                    separated.push("(");
                    separated.push_bind_unseparated(position + 1);
                    separated.push_unseparated(", ");
                    separated.push_bind_unseparated(Uuid::now_v7());
                    separated.push_unseparated(", ");
                    separated.push_bind_unseparated(format!("run-{}", Uuid::now_v7()));
                    separated.push_unseparated(", 1, 'run_requested', 1, now(), 'jenkins', ");
                    separated.push_bind_unseparated(Uuid::now_v7());
                    separated.push_unseparated(", NULL, NULL, ");
                    separated.push_bind_unseparated(data.clone());
                    separated.push_unseparated("::jsonb)");
                }
                builder
                    .build()
                    .execute(&pool)
                    .await
                    .expect("baseline insert");
                next += 100;
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    Ok(rows as f64 / started.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = TestDb::create().await;
    let nats = TestNats::create().await;
    runledger_bus::ensure_streams(&nats.jetstream(), &nats.names).await?;
    let Intake {
        commands_per_s,
        events_per_s,
        handler_rss_kib: rss_kib,
        projection,
    } = intake(&args, &db, &nats).await?;
    let baseline_rows_per_s = baseline(&db, args.commands).await?;
    let mut result = json!({
        "bench": "intake",
        "commands": args.commands,
        "commands_per_s": commands_per_s.round(),
        "events_per_s": events_per_s.round(),
        "baseline_rows_per_s": baseline_rows_per_s.round(),
        "ratio": ((commands_per_s / baseline_rows_per_s) * 1000.0).round() / 1000.0,
        "handler_peak_rss_mib": rss_kib / 1024,
    });
    if let (Some(p), Some(fields)) = (projection, result.as_object_mut()) {
        eprintln!(
            "projection lag over {} samples: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} events behind at most); caught up {:?} after the last outcome",
            p.lag.samples, p.lag.p50_ms, p.lag.p99_ms, p.lag.max_ms, p.lag.max_behind, p.catch_up
        );
        for (key, value) in [
            ("projection_lag_p50_ms", json!(p.lag.p50_ms.round())),
            ("projection_lag_p99_ms", json!(p.lag.p99_ms.round())),
            ("projection_lag_max_ms", json!(p.lag.max_ms.round())),
            ("projection_lag_samples", json!(p.lag.samples)),
            ("projection_max_events_behind", json!(p.lag.max_behind)),
            (
                "projection_catch_up_ms",
                json!(p.catch_up.as_millis() as u64),
            ),
            ("projector_peak_rss_mib", json!(p.rss_kib / 1024)),
        ] {
            fields.insert(key.to_owned(), value);
        }
    }
    nats.cleanup().await;
    db.cleanup().await;
    println!("{result}");
    Ok(())
}
