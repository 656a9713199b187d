//! A run group's shard of a pytest suite: the plugin and the plan a shard's pytest reads at
//! collection (docs/groups.md). The plugin keeps the shard's own tests, places every collected
//! test that no shard was given with the handler's rule, and deselects the rest, so tests
//! removed since the split are simply not there and tests added since run exactly once.

use runledger_domain::ShardSplit;
use runledger_types::pytest::node_id;
use serde_json::{Map, Value, json};

/// The plugin module's name: pytest loads it with `-p runledger_shard`.
pub const PLUGIN_MODULE: &str = "runledger_shard";
/// The plugin, written into the run's working directory as `runledger_shard.py`.
pub const PLUGIN: &str = include_str!("shard.py");
/// The plan's file name in the working directory, which `RUNLEDGER_SHARD_FILE` names.
pub const PLAN_FILE: &str = "runledger_shard.json";
/// The variable naming the plan file.
pub const PLAN_VARIABLE: &str = "RUNLEDGER_SHARD_FILE";

/// The plan of shard `index` of `split`: `{shard, assigned: {node id: shard}, predicted_ms,
/// unknown_ms}`.
pub fn plan(index: u32, split: &ShardSplit) -> String {
    let mut assigned = Map::new();
    for (shard, tests) in split.tests.iter().enumerate() {
        for test in tests {
            assigned.insert(node_id(test), json!(shard));
        }
    }
    json!({
        "shard": index,
        "assigned": Value::Object(assigned),
        "predicted_ms": split.predicted_ms,
        "unknown_ms": split.unknown_ms,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use runledger_types::command::SelectedTest;

    #[test]
    fn the_plan_names_every_shards_tests_by_node_id() {
        let test = |name: &str| SelectedTest {
            classname: "tests.test_app".into(),
            name: name.into(),
        };
        let split = ShardSplit {
            tests: vec![vec![test("test_a")], vec![test("test_b"), test("test_c")]],
            predicted_ms: vec![30, 20],
            unknown_ms: 10,
        };
        let plan: Value = serde_json::from_str(&plan(1, &split)).unwrap();
        assert_eq!(plan["shard"], 1);
        assert_eq!(plan["assigned"]["tests/test_app.py::test_a"], 0);
        assert_eq!(plan["assigned"]["tests/test_app.py::test_c"], 1);
        assert_eq!(plan["predicted_ms"], json!([30, 20]));
        assert_eq!(plan["unknown_ms"], 10);
    }
}
