//! The deployment files: they refer only to metrics runledger emits (every `runledger_*` series
//! named by the Prometheus alerts and the Grafana dashboard appears in the metrics table of
//! docs/api.md, which the gateway's metrics test checks against a real scrape); the Kubernetes
//! manifests pass the Kubernetes API's schemas (`kubernetes-validate`, strict); the Compose file
//! passes the Compose Specification's schema and cross-checks (deploy/schemas/check_compose.py).
//! The Python tools come from scripts/test.sh (`ensure_python_tools` in scripts/services.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Kubernetes version the manifests are checked against.
const KUBERNETES_VERSION: &str = "1.33.0";

fn series_in(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("runledger_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let name = name.strip_suffix("_bucket").unwrap_or(name);
        found.insert(name.to_owned());
        rest = &tail[end..];
    }
    found
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
}

#[test]
fn alerts_and_dashboards_use_emitted_series() {
    let docs = read("docs/api.md");
    let metrics_section = &docs[docs.find("## Metrics").expect("a metrics section")..];
    let emitted = series_in(metrics_section);
    assert!(emitted.contains("runledger_commands_total"), "{emitted:?}");
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/runledger.json",
    ] {
        let used = series_in(&read(file));
        assert!(!used.is_empty(), "{file} names no series");
        let unknown: Vec<_> = used.difference(&emitted).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses series nothing emits: {unknown:?}"
        );
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/runledger.json")).expect("valid JSON");
    assert!(
        dashboard["panels"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
    );
}

/// Runs `command`, failing the test (not skipping it) when the program is not installed.
fn run(command: &mut Command) -> Output {
    match command.current_dir(root()).output() {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "{:?} is not installed: run scripts/test.sh, which installs the deployment checks' tools",
            command.get_program()
        ),
        Err(err) => panic!("{command:?}: {err}"),
    }
}

fn show(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Fails the test unless python3 can import `module` (from the PyPI package `package`).
fn require_python_module(module: &str, package: &str) {
    let output = run(Command::new("python3").args(["-c", &format!("import {module}")]));
    assert!(
        output.status.success(),
        "the Python package {package} is missing: run scripts/test.sh (ensure_python_tools in \
         scripts/services.sh installs it)\n{}",
        show(&output)
    );
}

/// `kubernetes-validate --strict` (unknown fields are errors too) over `files`.
fn kubernetes_validate(files: &[PathBuf]) -> Output {
    run(Command::new("python3")
        .args(["-m", "kubernetes_validate", "--strict", "--quiet"])
        .args(["--kubernetes-version", KUBERNETES_VERSION])
        .args(files))
}

/// The `resources:` list of a kustomization.yaml (one `- file` per line).
fn kustomization_resources(text: &str) -> BTreeSet<String> {
    let mut resources = BTreeSet::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("resources:") {
            inside = true;
        } else if inside {
            match line.trim_start().strip_prefix("- ") {
                Some(item) if line.starts_with(' ') => {
                    resources.insert(item.trim().to_owned());
                }
                _ if line.trim().is_empty() || line.trim_start().starts_with('#') => {}
                _ => inside = false,
            }
        }
    }
    resources
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deploy");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn kubernetes_manifests_pass_the_schema_check() {
    require_python_module("kubernetes_validate", "kubernetes-validate");
    let dir = root().join("deploy/kubernetes");
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .filter(|path| !path.ends_with("kustomization.yaml"))
        .collect();
    manifests.sort();
    assert!(manifests.len() >= 5, "{manifests:?}");

    // `kubectl apply -k` applies every manifest but the templates (the Secret is made by hand).
    let listed = kustomization_resources(&read("deploy/kubernetes/kustomization.yaml"));
    let expected: BTreeSet<String> = manifests
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".template.yaml"))
        .collect();
    assert_eq!(listed, expected, "kustomization.yaml resources");

    let output = kubernetes_validate(&manifests);
    assert!(
        output.status.success(),
        "the manifests do not validate against Kubernetes {KUBERNETES_VERSION}\n{}",
        show(&output)
    );

    // The check can fail: a misspelt field is refused.
    let broken = scratch("broken-handler.yaml");
    let handler = read("deploy/kubernetes/handler.yaml");
    assert!(handler.contains("  replicas: 2\n"));
    std::fs::write(
        &broken,
        handler.replacen("  replicas: 2\n", "  replica: 2\n", 1),
    )
    .unwrap();
    let output = kubernetes_validate(std::slice::from_ref(&broken));
    assert!(
        !output.status.success() && String::from_utf8_lossy(&output.stdout).contains("replica"),
        "a misspelt field passed\n{}",
        show(&output)
    );

    // What `kubectl apply -k` would send, where kubectl is at hand (it is not installed by
    // scripts/test.sh; the files were checked one by one above either way).
    match Command::new("kubectl")
        .args(["kustomize", "deploy/kubernetes"])
        .current_dir(root())
        .output()
    {
        Ok(output) => {
            assert!(
                output.status.success(),
                "kubectl kustomize\n{}",
                show(&output)
            );
            let built = scratch("kustomized.yaml");
            std::fs::write(&built, &output.stdout).unwrap();
            let objects = String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|line| line.starts_with("kind: "))
                .count();
            assert!(objects > manifests.len(), "{objects} objects");
            let output = kubernetes_validate(&[built]);
            assert!(
                output.status.success(),
                "the kustomized output does not validate\n{}",
                show(&output)
            );
        }
        Err(err) if err.kind() == ErrorKind::NotFound => {
            eprintln!("kubectl is not installed: the kustomization was not built");
        }
        Err(err) => panic!("kubectl kustomize: {err}"),
    }
}

fn check_compose(file: &Path) -> Output {
    run(Command::new("python3")
        .arg("deploy/schemas/check_compose.py")
        .arg(file))
}

#[test]
fn compose_file_matches_the_compose_spec() {
    require_python_module("yaml", "PyYAML");
    require_python_module("jsonschema", "jsonschema");
    let output = check_compose(Path::new("deploy/compose.yaml"));
    assert!(
        output.status.success(),
        "deploy/compose.yaml does not pass the Compose checks\n{}",
        show(&output)
    );

    // The check can fail: a value of the wrong type, and a dependency on no service.
    let compose = read("deploy/compose.yaml");
    let broken_text = compose
        .replacen("restart: unless-stopped", "restart: 3", 1)
        .replacen(
            "    nats:\n      condition",
            "    natz:\n      condition",
            1,
        );
    assert_ne!(broken_text, compose);
    let broken = scratch("broken-compose.yaml");
    std::fs::write(&broken, broken_text).unwrap();
    let output = check_compose(&broken);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success()
            && stdout.contains("schema: services/handler/restart")
            && stdout.contains("depends_on: no service 'natz'"),
        "a broken Compose file passed\n{}",
        show(&output)
    );
}
