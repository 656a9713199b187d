//! Tests of the local transport: real `sh` child processes and temporary directories.

use std::time::{Duration, Instant};

use super::*;

/// A fresh home directory under the system temp dir, removed on drop.
struct TempHome(PathBuf);

impl TempHome {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("rl-local-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        TempHome(dir)
    }

    fn machine(&self) -> LocalMachine {
        LocalMachine::with_home(self.0.clone())
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `script`, returning its output chunks in arrival order and how it ended.
async fn run(machine: &LocalMachine, script: &str) -> (Vec<Output>, RemoteExit) {
    let (sink, mut source) = mpsc::channel(1024);
    let exit = machine
        .exec(script, &sink, &CancellationToken::new())
        .await
        .unwrap();
    drop(sink);
    let mut chunks = Vec::new();
    while let Some(chunk) = source.recv().await {
        chunks.push(chunk);
    }
    (chunks, exit)
}

/// Runs `script`, expecting success, and returns its stdout (which may come in several chunks).
async fn stdout_of(machine: &LocalMachine, script: &str) -> String {
    let (chunks, exit) = run(machine, script).await;
    assert_eq!(exit, RemoteExit::Code(0), "{script}: {chunks:?}");
    chunks
        .iter()
        .map(|chunk| match chunk {
            Output::Stdout(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Output::Stderr(bytes) => panic!("stderr: {bytes:?}"),
        })
        .collect()
}

#[tokio::test]
async fn exec_streams_stdout_and_stderr_in_order_and_returns_the_exit_code() {
    let home = TempHome::new();
    // The pauses make the order across the two pipes observable.
    let script = "printf 'a\\n'; sleep 0.2; printf 'b\\n' >&2; sleep 0.2; printf 'c\\n'; exit 3";
    let (chunks, exit) = run(&home.machine(), script).await;
    let expected = [
        Output::Stdout("a\n".into()),
        Output::Stderr("b\n".into()),
        Output::Stdout("c\n".into()),
    ];
    assert_eq!(chunks, expected);
    assert_eq!(exit, RemoteExit::Code(3));
}

#[tokio::test]
async fn exec_runs_in_home_with_home_set() {
    let home = TempHome::new();
    let text = stdout_of(&home.machine(), "pwd; echo ~; echo \"$HOME\"").await;
    let dir = home.0.display();
    assert_eq!(text, format!("{dir}\n{dir}\n{dir}\n"));
}

#[tokio::test]
async fn a_killed_command_reports_its_signal() {
    let home = TempHome::new();
    let (_, exit) = run(&home.machine(), "kill -TERM $$").await;
    let expected = RemoteExit::Signal {
        name: "TERM".into(),
        core_dumped: false,
    };
    assert_eq!(exit, expected);
}

#[tokio::test]
async fn cancel_returns_promptly_and_kills_and_reaps_the_child() {
    let home = TempHome::new();
    let machine = home.machine();
    let (sink, mut source) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let task = {
        let cancel = cancel.clone();
        tokio::spawn(async move { machine.exec("echo $$; exec sleep 30", &sink, &cancel).await })
    };
    let Some(Output::Stdout(first)) = source.recv().await else {
        panic!("expected the pid on stdout");
    };
    let pid: u32 = String::from_utf8_lossy(&first).trim().parse().unwrap();
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists());

    let started = Instant::now();
    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(result, Err(LocalError::Cancelled)), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Reaped, not a zombie: the pid is gone from /proc.
    assert!(!proc_dir.exists(), "{pid} survived the cancel");
}

#[tokio::test]
async fn upload_and_download_round_trip() {
    let home = TempHome::new();
    let machine = home.machine();
    let absolute = home.0.join("abs/dir/x.txt").display().to_string();
    let files = [
        ("runs/1/sub/a.txt".to_owned(), b"hello\n".to_vec()),
        ("~/tilde/b.txt".to_owned(), b"world\n".to_vec()),
        (absolute.clone(), b"abs\n".to_vec()),
    ];
    machine.upload(&files).await.unwrap();
    let text = stdout_of(&machine, "cat runs/1/sub/a.txt ~/tilde/b.txt abs/dir/x.txt").await;
    assert_eq!(text, "hello\nworld\nabs\n");

    for (path, contents) in &files {
        let fetched = machine.download(path, 6).await.unwrap();
        assert_eq!(fetched.as_ref(), Some(contents));
    }
    assert!(
        machine
            .download("runs/1/nope.xml", 6)
            .await
            .unwrap()
            .is_none()
    );
    let error = machine.download("runs/1/sub/a.txt", 5).await.unwrap_err();
    assert!(
        matches!(
            error,
            LocalError::TooLarge {
                size: 6,
                max_bytes: 5,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn paths_resolve_against_home() {
    let machine = LocalMachine::with_home(PathBuf::from("/home/u"));
    assert_eq!(machine.resolve("a/b"), Path::new("/home/u/a/b"));
    assert_eq!(machine.resolve("~"), Path::new("/home/u"));
    assert_eq!(machine.resolve("~/x"), Path::new("/home/u/x"));
    assert_eq!(machine.resolve("/etc/x"), Path::new("/etc/x"));
    assert_eq!(machine.resolve("~other/x"), Path::new("/home/u/~other/x"));
}

/// A child sees `PATH` and its `HOME`, never the executor's other variables (cargo gives this
/// test process `CARGO_MANIFEST_DIR`, as an operator gives an executor its secrets).
#[tokio::test]
async fn a_child_does_not_inherit_the_executors_environment() {
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let home = TempHome::new();
    let (chunks, exit) = run(&home.machine(), "env").await;
    assert_eq!(exit, RemoteExit::Code(0));
    let text: String = chunks
        .iter()
        .filter_map(|chunk| match chunk {
            Output::Stdout(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            Output::Stderr(_) => None,
        })
        .collect();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert!(names.contains(&"PATH"), "{text}");
    assert!(
        text.contains(&format!("HOME={}", home.0.display())),
        "{text}"
    );
    assert!(
        !names.iter().any(|name| name.starts_with("CARGO")),
        "{text}"
    );
}
