//! Executor benchmarks, against a real OpenSSH `sshd` on loopback, a handler in this
//! process and the executor as its own process (`runledger serve --components executor`):
//!
//! - `dispatch`: runs of `date +%s%N`, one at a time on a warm machine; the latency from
//!   publishing `start_run` to the remote process starting (the time it prints), p50/p99.
//!   Baseline: a bare russh exec round trip (`true`) on the same sshd.
//! - `throughput`: runs of `echo ok` over 20 venvs, all published at once: runs/s from the first
//!   publish to the last `run_finished`.
//! - `output`: one run printing 200 MB: MB/s from publishing `start_run` to `run_finished`.
//!   Baseline: `cat` of a 200 MB file through a russh exec channel.
//! - `rss`: 200 concurrent `sleep 5` runs over 200 venvs: the executor's peak RSS.
//!
//! The venvs are real (`python3 -m venv`), created through provisioning, but without pip (the
//! machine's `python` is a wrapper adding `--without-pip`): creating pip 200 times measures pip,
//! not the executor.
//!
//! Needs root and Debian's openssh-server (`source scripts/services.sh && ensure_sshd`). Run:
//! `cargo build --release --bin runledger && cargo run --release -p runledger-tests --bin bench-executor`
//! Prints one JSON line per benchmark (`{"bench":"dispatch",...}`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use futures::StreamExt;
use runledger_executor::ssh::{AcceptFirstKey, Output, SshAuth, SshOptions, SshTarget, connect};
use runledger_test_support::{CommandClient, RunningHandler, TestLab, TestSshd, eventually};
use runledger_tests::http_load::percentile;
use runledger_tests::peak_rss_kib;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Parser)]
struct Args {
    /// Which benchmarks: dispatch, throughput, output, rss (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "dispatch,throughput,output,rss"
    )]
    only: Vec<String>,
    /// Runs timed by `dispatch` (after 20 warm-up runs).
    #[arg(long, default_value_t = 500)]
    dispatch_runs: usize,
    /// Runs of `throughput`.
    #[arg(long, default_value_t = 2000)]
    throughput_runs: usize,
    /// Venvs of `throughput`.
    #[arg(long, default_value_t = 20)]
    throughput_venvs: usize,
    /// Bytes printed by the `output` run.
    #[arg(long, default_value_t = 200_000_000)]
    output_bytes: u64,
    /// Concurrent `sleep 5` runs of `rss`.
    #[arg(long, default_value_t = 200)]
    rss_runs: usize,
    /// The runledger binary.
    #[arg(long, default_value = "target/release/runledger")]
    runledger: String,
}

const ADMIN: &str = "admin";
const WAIT: Duration = Duration::from_secs(600);

/// One benchmark's world: a test lab, the sshd machine, a handler, an executor process.
struct Bench {
    lab: TestLab,
    client: CommandClient,
    sshd: TestSshd,
    handler: RunningHandler,
    executor: Child,
    machine_id: Uuid,
    finished: mpsc::UnboundedReceiver<Finished>,
}

/// A `run_finished` seen on the events stream.
struct Finished {
    run_id: Uuid,
    status: String,
    at: Instant,
}

/// The wrapper the machine's venvs are created with: `python3 -m venv --without-pip`.
fn fast_python() -> String {
    let dir = std::path::Path::new("/tmp/runledger-bench");
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("python-without-pip");
    let script = "#!/bin/sh\n\
        if [ \"$1\" = -m ] && [ \"$2\" = venv ]; then shift 2; exec /usr/bin/python3 -m venv --without-pip \"$@\"; fi\n\
        exec /usr/bin/python3 \"$@\"\n";
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

fn executor_process(args: &Args, lab: &TestLab, max_runs: usize) -> Child {
    use base64::Engine as _;
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    Command::new(&args.runledger)
        .args(["serve", "--components", "executor"])
        .env("NATS_URL", &lab.nats.url)
        .env("RUNLEDGER_NATS_PREFIX", lab.nats.names.prefix())
        .env("RUNLEDGER_SECRET_KEY", key)
        .env("RUNLEDGER_EXECUTOR_NAME", "bench")
        .env("RUNLEDGER_EXECUTOR_MAX_RUNS", max_runs.to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start the executor (build it: cargo build --release --bin runledger)")
}

/// Forwards every `run_finished` on the events stream.
async fn watch_finished(lab: &TestLab) -> mpsc::UnboundedReceiver<Finished> {
    let subject = lab.nats.names.event_subject("run", "run_finished");
    let mut subscriber = lab.nats.client.subscribe(subject).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = subscriber.next().await {
            let at = Instant::now();
            let event: Value = serde_json::from_slice(&message.payload).unwrap();
            let run_id = event["data"]["run_id"].as_str().unwrap().parse().unwrap();
            let status = event["data"]["status"].as_str().unwrap_or("").to_owned();
            if tx.send(Finished { run_id, status, at }).is_err() {
                return;
            }
        }
    });
    rx
}

impl Bench {
    async fn start(args: &Args, venvs: usize, max_runs: usize) -> Bench {
        let lab = TestLab::create().await;
        let handler = lab.start_handler().await;
        let sshd = TestSshd::start();
        let client = lab.client();
        let finished = watch_finished(&lab).await;
        let user = json!({"username": ADMIN, "role": "admin", "password": "admin-password"});
        accepted(client.send("register_user", "bootstrap", user).await);
        let machine_id = Uuid::now_v7();
        let machine = json!({"machine_id": machine_id, "name": "bench-sshd", "host": sshd.host,
                             "port": sshd.port, "username": sshd.username,
                             "password": sshd.password});
        accepted(client.send("register_machine", ADMIN, machine).await);
        let executor = executor_process(args, &lab, max_runs);
        let python = fast_python();
        for n in 0..venvs {
            let venv_id = Uuid::now_v7();
            let venv = json!({"venv_id": venv_id, "machine_id": machine_id,
                              "name": format!("bench-{n}-{}", &venv_id.simple().to_string()[20..]),
                              "python": python});
            accepted(client.send("add_venv", ADMIN, venv).await);
        }
        let store = lab.store.clone();
        eventually(WAIT, "every venv provisioned", || async {
            let log = store.read_after(0, 1_000_000).await.unwrap();
            let failed = log
                .iter()
                .find(|e| e.event_type == "venv_provisioning_failed");
            assert!(failed.is_none(), "provisioning failed: {failed:?}");
            let done = log
                .iter()
                .filter(|e| e.event_type == "venv_provisioned")
                .count();
            (done == venvs).then_some(())
        })
        .await;
        Bench {
            lab,
            client,
            sshd,
            handler,
            executor,
            machine_id,
            finished,
        }
    }

    async fn define(&self, command: &str) -> Uuid {
        let test_case_id = Uuid::now_v7();
        let payload = json!({"test_case_id": test_case_id, "name": format!("tc-{test_case_id}"),
                             "command": command, "timeout_s": 600});
        accepted(self.client.send("define_test_case", ADMIN, payload).await);
        test_case_id
    }

    fn start_run(&self, test_case_id: Uuid) -> (Uuid, Value) {
        let run_id = Uuid::now_v7();
        let payload =
            json!({"run_id": run_id, "test_case_id": test_case_id, "machine_id": self.machine_id});
        (run_id, payload)
    }

    /// Waits for `count` runs to finish; returns them by run id.
    async fn wait_finished(&mut self, count: usize) -> HashMap<Uuid, Finished> {
        let mut seen = HashMap::new();
        while seen.len() < count {
            let finished = tokio::time::timeout(WAIT, self.finished.recv())
                .await
                .expect("runs finish")
                .expect("watching run_finished");
            seen.insert(finished.run_id, finished);
        }
        seen
    }

    fn ssh_target(&self) -> SshTarget {
        SshTarget {
            host: self.sshd.host.clone(),
            port: self.sshd.port,
            username: self.sshd.username.clone(),
            auth: SshAuth::Password(self.sshd.password.clone()),
            pinned_host_key: None,
        }
    }

    fn executor_rss_kib(&self) -> u64 {
        let pid = self.executor.id().expect("executor running").to_string();
        peak_rss_kib(&pid).unwrap_or(0)
    }

    async fn stop(mut self) {
        let _ = self.executor.start_kill();
        let _ = self.executor.wait().await;
        self.handler.stop().await;
        drop(self.sshd);
        self.lab.cleanup().await;
    }
}

fn accepted(outcome: runledger_types::Outcome) {
    assert!(outcome.accepted, "expected acceptance, got {outcome:?}");
}

fn sorted(mut values: Vec<f64>) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    values
}

fn unix_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The first `run_output` text of `run_id` in the log.
async fn first_output(lab: &TestLab, run_id: Uuid) -> String {
    let text: Option<String> = sqlx::query_scalar(
        "SELECT data->>'text' FROM events WHERE type = 'run_output' AND data->>'run_id' = $1 \
         ORDER BY position LIMIT 1",
    )
    .bind(run_id.to_string())
    .fetch_optional(&lab.db.pool)
    .await
    .unwrap();
    text.unwrap_or_default()
}

async fn dispatch(args: &Args) -> Value {
    let mut bench = Bench::start(args, 1, 16).await;
    let test_case = bench.define("date +%s%N").await;
    let mut latencies = Vec::new();
    for n in 0..(20 + args.dispatch_runs) {
        let (run_id, payload) = bench.start_run(test_case);
        let published = unix_nanos();
        accepted(bench.client.send("start_run", ADMIN, payload).await);
        let done = bench.wait_finished(1).await;
        assert_eq!(done[&run_id].status, "passed");
        if n < 20 {
            continue;
        }
        let started: u128 = first_output(&bench.lab, run_id)
            .await
            .trim()
            .parse()
            .expect("date +%s%N");
        latencies.push(started.saturating_sub(published) as f64 / 1e6);
    }
    let latencies = sorted(latencies);
    // Baseline: a bare russh exec of `true` on a warm connection, as many times.
    let (connection, _) = connect(&bench.ssh_target(), &SshOptions::default(), &AcceptFirstKey)
        .await
        .unwrap();
    let mut baseline = Vec::new();
    for n in 0..(20 + args.dispatch_runs) {
        let (sink, mut source) = mpsc::channel(16);
        let drain = tokio::spawn(async move { while source.recv().await.is_some() {} });
        let start = Instant::now();
        connection.exec("true", &sink).await.unwrap();
        let elapsed = start.elapsed().as_secs_f64() * 1e3;
        drop(sink);
        drain.await.unwrap();
        if n >= 20 {
            baseline.push(elapsed);
        }
    }
    let baseline = sorted(baseline);
    bench.stop().await;
    json!({
        "bench": "dispatch",
        "runs": latencies.len(),
        "p50_ms": percentile(&latencies, 50.0),
        "p99_ms": percentile(&latencies, 99.0),
        "baseline_exec_p50_ms": percentile(&baseline, 50.0),
        "baseline_exec_p99_ms": percentile(&baseline, 99.0),
        "target": {"p50_ms": 15, "p99_ms": 50},
    })
}

async fn throughput(args: &Args) -> Value {
    let venvs = args.throughput_venvs;
    let mut bench = Bench::start(args, venvs, venvs).await;
    let test_case = bench.define("echo ok").await;
    let runs: Vec<(Uuid, Value)> = (0..args.throughput_runs)
        .map(|_| bench.start_run(test_case))
        .collect();
    let start = Instant::now();
    let client = bench.client.clone();
    let publishing = tokio::spawn(async move {
        futures::stream::iter(runs)
            .map(|(_, payload)| {
                let client = client.clone();
                async move { accepted(client.send("start_run", ADMIN, payload).await) }
            })
            .buffer_unordered(64)
            .collect::<Vec<()>>()
            .await;
    });
    let done = bench.wait_finished(args.throughput_runs).await;
    publishing.await.unwrap();
    let last = done.values().map(|f| f.at).max().unwrap_or(start);
    let elapsed = last.duration_since(start).as_secs_f64();
    let passed = done.values().filter(|f| f.status == "passed").count();
    let rss = bench.executor_rss_kib();
    let baseline_execs_per_s = bare_execs_per_s(&bench, args.throughput_runs, venvs).await;
    bench.stop().await;
    let runs_per_s = args.throughput_runs as f64 / elapsed;
    json!({
        "bench": "throughput",
        "runs": args.throughput_runs,
        "venvs": venvs,
        "passed": passed,
        "seconds": elapsed,
        "runs_per_s": runs_per_s,
        "baseline_exec_per_s": baseline_execs_per_s,
        "ratio": runs_per_s / baseline_execs_per_s,
        "executor_peak_rss_mib": rss as f64 / 1024.0,
        "target": {"runs_per_s": 300},
    })
}

/// Baseline for `throughput`: `count` bare russh execs of `echo ok` on the same sshd, `parallel`
/// at a time over as many connections as the executor's pool would open (four channels each),
/// with nothing recorded: what the machine's sshd and shells allow at all.
async fn bare_execs_per_s(bench: &Bench, count: usize, parallel: usize) -> f64 {
    let mut connections = Vec::new();
    for _ in 0..parallel.div_ceil(4) {
        let (connection, _) = connect(&bench.ssh_target(), &SshOptions::default(), &AcceptFirstKey)
            .await
            .unwrap();
        connections.push(std::sync::Arc::new(connection));
    }
    let start = Instant::now();
    futures::stream::iter(0..count)
        .map(|n| {
            let connection = connections[n % connections.len()].clone();
            async move {
                let (sink, mut source) = mpsc::channel(16);
                let drain = tokio::spawn(async move { while source.recv().await.is_some() {} });
                let status = connection.exec("echo ok", &sink).await.unwrap();
                drop(sink);
                drain.await.unwrap();
                status
            }
        })
        .buffer_unordered(parallel)
        .collect::<Vec<_>>()
        .await;
    count as f64 / start.elapsed().as_secs_f64()
}

async fn output(args: &Args) -> Value {
    let mut bench = Bench::start(args, 1, 16).await;
    let bytes = args.output_bytes;
    let line = "runledger output benchmark 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ";
    let test_case = bench
        .define(&format!("yes '{line}' | head -c {bytes}"))
        .await;
    let (run_id, payload) = bench.start_run(test_case);
    let start = Instant::now();
    accepted(bench.client.send("start_run", ADMIN, payload).await);
    let done = bench.wait_finished(1).await;
    let elapsed = done[&run_id].at.duration_since(start).as_secs_f64();
    assert_eq!(done[&run_id].status, "passed");
    let logged: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(octet_length(data->>'text')), 0)::bigint FROM events \
         WHERE type = 'run_output' AND data->>'run_id' = $1",
    )
    .bind(run_id.to_string())
    .fetch_one(&bench.lab.db.pool)
    .await
    .unwrap();
    assert_eq!(logged as u64, bytes, "every byte is in the log");
    let rss = bench.executor_rss_kib();

    // Baseline: the same bytes from a file, through a russh exec channel.
    let file = "/tmp/runledger-bench/output.txt";
    let status = std::process::Command::new("sh")
        .args([
            "-c",
            &format!("yes '{line}' | head -c {bytes} > {file} && chmod 644 {file}"),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let (connection, _) = connect(&bench.ssh_target(), &SshOptions::default(), &AcceptFirstKey)
        .await
        .unwrap();
    let (sink, mut source) = mpsc::channel(64);
    let counter = tokio::spawn(async move {
        let mut total = 0u64;
        while let Some(chunk) = source.recv().await {
            if let Output::Stdout(data) = chunk {
                total += data.len() as u64;
            }
        }
        total
    });
    let baseline_start = Instant::now();
    connection
        .exec(&format!("cat {file}"), &sink)
        .await
        .unwrap();
    drop(sink);
    let received = counter.await.unwrap();
    let baseline_elapsed = baseline_start.elapsed().as_secs_f64();
    assert_eq!(received, bytes);
    let _ = std::fs::remove_file(file);
    bench.stop().await;
    let mb = bytes as f64 / 1e6;
    let mb_per_s = mb / elapsed;
    let baseline_mb_per_s = mb / baseline_elapsed;
    json!({
        "bench": "output",
        "bytes": bytes,
        "seconds": elapsed,
        "mb_per_s": mb_per_s,
        "baseline_ssh_cat_mb_per_s": baseline_mb_per_s,
        "ratio": mb_per_s / baseline_mb_per_s,
        "executor_peak_rss_mib": rss as f64 / 1024.0,
        "target": {"ratio": 0.5},
    })
}

async fn rss(args: &Args) -> Value {
    let runs = args.rss_runs;
    let mut bench = Bench::start(args, runs, runs).await;
    let idle = bench.executor_rss_kib();
    let test_case = bench.define("sleep 5").await;
    let start = Instant::now();
    let client = bench.client.clone();
    let payloads: Vec<Value> = (0..runs).map(|_| bench.start_run(test_case).1).collect();
    futures::stream::iter(payloads)
        .map(|payload| {
            let client = client.clone();
            async move { accepted(client.send("start_run", ADMIN, payload).await) }
        })
        .buffer_unordered(64)
        .collect::<Vec<()>>()
        .await;
    let done = bench.wait_finished(runs).await;
    let elapsed = start.elapsed().as_secs_f64();
    let passed = done.values().filter(|f| f.status == "passed").count();
    let peak = bench.executor_rss_kib();
    bench.stop().await;
    json!({
        "bench": "rss",
        "concurrent_runs": runs,
        "passed": passed,
        "seconds": elapsed,
        "executor_peak_rss_mib": peak as f64 / 1024.0,
        "executor_rss_after_provisioning_mib": idle as f64 / 1024.0,
        "target": {"executor_peak_rss_mib": 256},
    })
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    for name in &args.only {
        let result = match name.as_str() {
            "dispatch" => dispatch(&args).await,
            "throughput" => throughput(&args).await,
            "output" => output(&args).await,
            "rss" => rss(&args).await,
            other => panic!("unknown benchmark {other}: dispatch, throughput, output or rss"),
        };
        println!("{result}");
    }
}
