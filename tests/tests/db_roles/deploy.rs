//! The deployment files give each service its own role's URL and the executors none (the
//! schema checks themselves are in tests/tests/deploy.rs).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The YAML documents of `path` (relative to the repository), as JSON (PyYAML, which
/// scripts/test.sh installs for the Compose check, resolves the merge keys as Compose does).
fn yaml(path: &str) -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(root.join(path))
        .output()
        .expect("python3 (scripts/test.sh installs PyYAML)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn database_user(url: &str) -> &str {
    let authority = url.split("://").nth(1).unwrap().split('/').next().unwrap();
    authority
        .split('@')
        .next()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
}

#[test]
fn compose_connects_each_service_as_its_own_role() {
    let compose = yaml("deploy/compose.yaml").remove(0);
    let services = compose["services"].as_object().unwrap();
    for component in ["handler", "projector", "gateway"] {
        let url = services[component]["environment"]["DATABASE_URL"]
            .as_str()
            .unwrap();
        assert_eq!(database_user(url), format!("runledger_{component}"));
    }
    let owner = services["migrate"]["environment"]["DATABASE_URL"]
        .as_str()
        .unwrap();
    assert_eq!(database_user(owner), "runledger");
    assert_eq!(services["db-grant"]["command"][0], "db");
    assert_eq!(services["db-grant"]["command"][1], "grant");
    for (name, service) in services {
        if name.starts_with("executor") {
            let environment = service["environment"].to_string();
            assert!(
                !environment.contains("DATABASE_URL"),
                "{name}: {environment}"
            );
        }
    }
}

#[test]
fn kubernetes_mounts_only_each_components_own_url() {
    for component in ["handler", "projector", "gateway"] {
        let documents = yaml(&format!("deploy/kubernetes/{component}.yaml"));
        let pod = &documents[0]["spec"]["template"]["spec"];
        let volumes = pod["volumes"].to_string();
        assert!(volumes.contains("runledger-db"), "{component}: {volumes}");
        let keys: Vec<&str> = pod["volumes"][0]["secret"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["key"].as_str().unwrap())
            .collect();
        assert_eq!(keys, [format!("{component}-url")], "{component}");
        let env = pod["containers"][0]["env"].to_string();
        assert!(env.contains("DATABASE_URL_FILE"), "{component}: {env}");
        assert!(!env.contains("\"DATABASE_URL\""), "{component}: {env}");
    }
    let executor = serde_json::to_string(&yaml("deploy/kubernetes/executor.yaml")).unwrap();
    assert!(!executor.contains("DATABASE_URL"));
    assert!(!executor.contains("runledger-db"));
}
