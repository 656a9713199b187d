//! The deployment files refer only to metrics runledger emits: every `runledger_*` series named
//! by the Prometheus alerts and the Grafana dashboard appears in the metrics table of
//! docs/api.md (which the gateway's metrics test checks against a real scrape).

use std::collections::BTreeSet;
use std::path::Path;

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

fn read(path: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|err| panic!("{path}: {err}"))
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
