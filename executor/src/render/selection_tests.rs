//! Runs that select tests: `RUNLEDGER_TESTS` and the node ids appended to a pytest command, on
//! both shells, with names that would break careless quoting.

use super::*;
use std::path::PathBuf;

/// Names a shell would act on if quoting broke (harmless if it did: nothing is deleted).
const HOSTILE_NAMES: [&str; 5] = [
    "test_a['; exit 3; ']",
    "test_b[$(exit 3)]",
    "test_c[`exit 3`]",
    "test_d[\\'\"]",
    "test_é[ü ✓ $HOME]",
];

fn selected() -> Vec<SelectedTest> {
    let mut tests: Vec<SelectedTest> = HOSTILE_NAMES
        .iter()
        .map(|name| SelectedTest {
            classname: "tests.test_app.TestX".into(),
            name: (*name).into(),
        })
        .collect();
    tests.push(SelectedTest {
        classname: "tests.test_app".into(),
        name: "test_plain".into(),
    });
    tests
}

fn spec<'a>(
    command: &'a str,
    tests: &'a [SelectedTest],
    env: &'a BTreeMap<EnvName, String>,
) -> RunSpec<'a> {
    RunSpec {
        run_id: RunId(uuid::Uuid::from_u128(
            0x0193_a000_0000_7000_8000_0000_0000_0042,
        )),
        venv_path: "~/v",
        command,
        test_case_env: env,
        run_env: env,
        tests,
        shard_plugin: false,
    }
}

/// A scratch directory under the system's temporary one, new for each call.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("runledger-selection-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    dir
}

#[test]
fn linux_pytest_gets_the_node_ids_and_every_command_the_variable() {
    let tests = selected();
    let env = BTreeMap::new();
    let dir = scratch();
    // A stand-in for pytest: prints each argument and the variable, one per line.
    let fake = dir.join("bin/pytest");
    std::fs::write(
        &fake,
        "#!/bin/sh\nfor a in \"$@\"; do echo \"arg:$a\"; done\nprintf '%s\\n' \"$RUNLEDGER_TESTS\"\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let script = run(Os::Linux, &spec("pytest -q", &tests, &env)).unwrap();
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .env("HOME", &dir)
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", dir.join("bin").display()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut expected = vec!["arg:-q".to_owned()];
    expected.extend(
        HOSTILE_NAMES
            .iter()
            .map(|n| format!("arg:tests/test_app.py::TestX::{n}")),
    );
    expected.push("arg:tests/test_app.py::test_plain".into());
    expected.extend(tests.iter().map(ToString::to_string));
    let lines: Vec<&str> = stdout.lines().skip(1).collect(); // the marker line first
    assert_eq!(lines, expected, "{script}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn another_command_decides_from_the_variable_alone() {
    let tests = selected();
    let env = BTreeMap::new();
    let command = "make test";
    let script = run(Os::Linux, &spec(command, &tests, &env)).unwrap();
    assert!(script.ends_with("runledger-run 'make test'"), "{script}");
    let lines: Vec<String> = tests.iter().map(ToString::to_string).collect();
    let exported = format!("export RUNLEDGER_TESTS={}", posix::quote(&lines.join("\n")));
    assert!(script.contains(&exported), "{script}");
    assert!(
        script.contains(" RUNLEDGER_TESTS=\"$RUNLEDGER_TESTS\" "),
        "{script}"
    );
    let whole = run(Os::Linux, &spec(command, &[], &env)).unwrap();
    assert!(!whole.contains("RUNLEDGER_TESTS"), "{whole}");
}

#[test]
fn windows_quotes_node_ids_inside_the_invoked_expression() {
    let tests = selected();
    let env = BTreeMap::new();
    let script = run(Os::Windows, &spec("python -m pytest -q", &tests, &env)).unwrap();
    let ids: Vec<String> = tests
        .iter()
        .map(|t| powershell::quote(&pytest::node_id(t)))
        .collect();
    let command = format!("python -m pytest -q {}", ids.join(" "));
    assert!(
        script.contains(&format!(
            "Invoke-Expression {}\n",
            powershell::quote(&command)
        )),
        "{script}"
    );
    let lines: Vec<String> = tests.iter().map(ToString::to_string).collect();
    assert!(
        script.contains(&format!(
            "$env:RUNLEDGER_TESTS = {}\n",
            powershell::quote(&lines.join("\n"))
        )),
        "{script}"
    );
}

#[test]
fn a_selection_too_long_for_one_variable_is_refused() {
    let long = SelectedTest {
        classname: "c".repeat(1000),
        name: "n".into(),
    };
    let tests = vec![long; 200];
    let env = BTreeMap::new();
    assert!(matches!(
        run(Os::Linux, &spec("pytest", &tests, &env)),
        Err(RenderError::SelectionTooLong { count: 200, .. })
    ));
    let nul = [SelectedTest {
        classname: "c".into(),
        name: "a\0b".into(),
    }];
    assert!(matches!(
        run(Os::Windows, &spec("pytest", &nul, &env)),
        Err(RenderError::NulCharacter { .. })
    ));
}
