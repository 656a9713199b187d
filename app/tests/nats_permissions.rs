//! The shipped NATS identities and subject permissions (deploy/nats/authorization.conf) on a
//! real nats-server: the handler, an executor and a caller, each as its own user, take a run
//! from `start_run` to `run_finished`; a caller's forged executor report and forged event, and
//! an executor's forged event, are refused by the server and change nothing; so is a caller's
//! forged liveness beat.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use runledger_bus::NatsAuth;
use runledger_test_support::{TestDb, TestNatsServer, eventually};
use serde_json::json;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(60);
const AUTHORIZATION: &str = include_str!("../../deploy/nats/authorization.conf");
const USERS: [(&str, &str); 4] = [
    ("handler", "RUNLEDGER_NATS_HANDLER_PASSWORD"),
    ("executor", "RUNLEDGER_NATS_EXECUTOR_PASSWORD"),
    ("gateway", "RUNLEDGER_NATS_GATEWAY_PASSWORD"),
    ("caller", "RUNLEDGER_NATS_CALLER_PASSWORD"),
];

fn password(user: &str) -> String {
    format!("{user}-secret-pw")
}

struct Lab {
    db: TestDb,
    nats: TestNatsServer,
    home: PathBuf,
}

impl Lab {
    async fn start() -> Self {
        let env: Vec<(&str, String)> = USERS
            .iter()
            .map(|(user, variable)| (*variable, password(user)))
            .collect();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let nats = TestNatsServer::start_tls(
            "include \"authorization.conf\"",
            &[("authorization.conf", AUTHORIZATION)],
            &env,
        );
        let home = std::env::temp_dir().join(format!("rl-perm-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&home).unwrap();
        Lab {
            db: TestDb::create().await,
            nats,
            home,
        }
    }

    /// `runledger` as NATS user `user`, with the default subject prefix.
    fn runledger(&self, user: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_runledger"));
        command
            .env("DATABASE_URL", &self.db.url)
            .env("NATS_URL", &self.nats.url)
            .env("NATS_CA", self.nats.ca())
            .env("NATS_USER", user)
            .env("NATS_PASSWORD", password(user))
            .env_remove("RUNLEDGER_NATS_PREFIX")
            .env(
                "RUNLEDGER_SECRET_KEY",
                "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
            )
            .env("RUNLEDGER_EXECUTOR_ALLOW_LOCAL", "true")
            .env("HOME", &self.home)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    fn serve(&self, user: &str, component: &str) -> Child {
        self.runledger(user)
            .args(["serve", "--components", component])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.home.join(format!("{component}.log"))).unwrap())
            .spawn()
            .unwrap()
    }

    /// Sends a command as the caller; its outcome.
    async fn send(
        &self,
        actor: &str,
        command_type: &str,
        payload: serde_json::Value,
    ) -> serde_json::Value {
        let output = self
            .runledger("caller")
            .args([
                "send",
                "--actor",
                actor,
                command_type,
                &payload.to_string(),
                "--timeout",
                "5s",
            ])
            .output()
            .await
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null)
    }

    async fn events_of(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE type = $1")
            .bind(event_type)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn client(&self, user: &str) -> async_nats::Client {
        let auth = NatsAuth {
            user: Some(user.to_owned()),
            password: Some(password(user)),
            ca_file: Some(self.nats.ca()),
            ..NatsAuth::default()
        };
        runledger_bus::connect_with(&self.nats.url, "attacker", &auth)
            .await
            .unwrap()
    }
}

async fn accepted(lab: &Lab, actor: &str, command_type: &str, payload: serde_json::Value) {
    let outcome = eventually(WAIT, command_type, || async {
        let outcome = lab.send(actor, command_type, payload.clone()).await;
        (outcome["accepted"] == true).then_some(outcome)
    })
    .await;
    assert_eq!(outcome["accepted"], true);
}

#[tokio::test]
async fn each_component_holds_only_its_own_powers_on_nats() {
    let lab = Lab::start().await;
    let mut handler = lab.serve("handler", "handler");
    let admin = json!({"username": "ada", "role": "admin", "password": "ada-password"});
    accepted(&lab, "bootstrap", "register_user", admin).await;
    // Only the handler may create the streams: the executor starts once they exist.
    let mut executor = lab.serve("executor", "executor");
    let machine_id = Uuid::now_v7();
    let machine =
        json!({"machine_id": machine_id, "name": "here", "host": "local", "username": "r"});
    accepted(&lab, "ada", "register_machine", machine).await;
    let venv = json!({"venv_id": Uuid::now_v7(), "machine_id": machine_id, "name": "perm",
                      "python": "/usr/bin/python3"});
    accepted(&lab, "ada", "add_venv", venv).await;
    let test_case_id = Uuid::now_v7();
    let test_case = json!({"test_case_id": test_case_id, "name": "hello", "command": "echo hi"});
    accepted(&lab, "ada", "define_test_case", test_case).await;
    let run = json!({"run_id": Uuid::now_v7(), "test_case_id": test_case_id});
    accepted(&lab, "ada", "start_run", run).await;
    eventually(WAIT, "the executor to finish the run", || async {
        (lab.events_of("run_finished").await == 1).then_some(())
    })
    .await;

    // A caller may not send an executor report, nor publish an event; an executor may not
    // publish an event either. The server refuses each publish.
    let forged_id = Uuid::now_v7();
    let report = json!({"command_id": forged_id, "type": "report_venv_provisioning_failed",
                        "actor": "executor:evil", "payload": {"venv_id": Uuid::now_v7(), "reason": "x"}});
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&lab.db.pool)
        .await
        .unwrap();
    let event = json!({"event_id": Uuid::now_v7(), "position": head + 1, "type": "run_finished",
                       "stream_id": format!("run-{}", Uuid::now_v7()), "data": {}});
    for user in ["caller", "executor"] {
        let client = lab.client(user).await;
        if user == "caller" {
            let body = serde_json::to_vec(&report).unwrap();
            client
                .publish(
                    "runledger.commands.report_venv_provisioning_failed",
                    body.into(),
                )
                .await
                .unwrap();
        }
        let body = serde_json::to_vec(&event).unwrap();
        client
            .publish("runledger.events.run.run_finished", body.into())
            .await
            .unwrap();
        client.flush().await.unwrap();
    }
    // What the handler would have recorded (every command is, accepted or not), had a forged
    // report reached it; and the events stream still ends at the log's head.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let recorded: i64 = sqlx::query_scalar("SELECT count(*) FROM commands WHERE command_id = $1")
        .bind(forged_id)
        .fetch_one(&lab.db.pool)
        .await
        .unwrap();
    assert_eq!(
        recorded, 0,
        "a caller's forged report was refused by the server"
    );
    let js = runledger_bus::jetstream(lab.client("handler").await);
    let mut stream = js.get_stream("RUNLEDGER_EVENTS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&lab.db.pool)
        .await
        .unwrap();
    assert_eq!(
        last,
        u64::try_from(head).unwrap(),
        "no forged event on the stream"
    );

    // Liveness beats: the executor's reach the bucket, a caller's forged one does not (it would
    // keep a lost executor's lease alive).
    let caller = lab.client("caller").await;
    caller
        .publish("$KV.RUNLEDGER_EXECUTORS.evil", "{}".into())
        .await
        .unwrap();
    caller.flush().await.unwrap();
    let liveness = runledger_bus::Liveness::open(&js, &runledger_bus::BusNames::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        liveness.revision("evil").await.unwrap(),
        0,
        "a caller's beat was refused"
    );
    let mut beats = js.get_stream("KV_RUNLEDGER_EXECUTORS").await.unwrap();
    assert!(
        beats.info().await.unwrap().state.messages >= 1,
        "the executor's beats are in the bucket"
    );

    for child in [&mut handler, &mut executor] {
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }
    let _ = std::fs::remove_dir_all(&lab.home);
    lab.db.cleanup().await;
}
