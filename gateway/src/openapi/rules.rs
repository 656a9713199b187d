//! Rules of a request body that span several fields, which the derived schemas cannot state:
//! added to the served document as JSON Schema `anyOf`/`oneOf`/`not` next to the fields, so that
//! a body the document allows is one the handler takes.

use runledger_types::command::MAX_SELECTED_TESTS;
use runledger_types::values::{PROTECTED_ENV_NAMES, PROTECTED_ENV_PREFIXES};
use serde_json::{Value, json};

/// Adds the cross-field rules to the document's component schemas.
pub(crate) fn add_cross_field_rules(document: &mut Value) {
    // Sets (labels, env_overridable) take a name twice as once: no `uniqueItems`.
    drop_unique_items(document);
    let schemas = &mut document["components"]["schemas"];
    // The path names the machine an update changes, and the test a quarantine is of: the body
    // does not.
    for (request, id) in [
        ("UpdateMachineRequest", "machine_id"),
        ("QuarantineTestRequest", "test_id"),
    ] {
        if let Some(properties) = schemas
            .pointer_mut(&format!("/{request}/properties"))
            .and_then(Value::as_object_mut)
        {
            properties.remove(id);
        }
    }
    // A private key is PEM-armoured, as OpenSSH writes it.
    for request in ["RegisterMachineRequest", "UpdateMachineRequest"] {
        if let Some(key) =
            schemas.pointer_mut(&format!("/{request}/properties/private_key/oneOf/0"))
        {
            let secret = key.take();
            *key = json!({"allOf": [secret, {"pattern": PRIVATE_KEY}]});
        }
    }
    // A host is an IP address, a DNS name, or `local`.
    if let Some(host) = schemas.get_mut("Host").and_then(Value::as_object_mut) {
        host.insert(
            "anyOf".to_owned(),
            json!([{"format": "ipv4"}, {"format": "ipv6"}, {"pattern": DNS_NAME}]),
        );
    }
    // A machine needs a password or a private key, unless it is the executors' own host.
    set(
        schemas,
        "RegisterMachineRequest",
        "anyOf",
        json!([
            {"required": ["password"], "properties": {"password": {"type": "string"}}},
            {"required": ["private_key"], "properties": {"private_key": {"type": "string"}}},
            {"required": ["host"], "properties": {"host": {"const": "local"}}},
        ]),
    );
    // A test case runs a command, or a Jenkins job that takes no files, env or JUnit path.
    set(
        schemas,
        "DefineTestCaseRequest",
        "oneOf",
        json!([
            {"required": ["command"],
             "properties": {"command": {"type": "string"}, "jenkins": {"type": "null"}}},
            {"required": ["jenkins"],
             "properties": {"jenkins": {"type": "object"}, "command": {"type": "null"},
                            "files": {"maxItems": 0}, "env": {"maxProperties": 0},
                            "junit_xml": {"type": "null"}}},
        ]),
    );
    // Names that change which loader, shell or interpreter code runs are never overridable.
    if let Some(items) = schemas
        .get_mut("DefineTestCaseRequest")
        .and_then(|schema| schema.pointer_mut("/properties/env_overridable/items"))
    {
        let name = items.take();
        *items = json!({"allOf": [name, {"not": {"pattern": protected_names_pattern()}}]});
    }
    // A selection of tests: `only` or `tests`, not both; `only` reruns a run's failures, so it
    // needs `rerun_of`; at most MAX_SELECTED_TESTS tests.
    let both = json!({"not": {"required": ["only", "tests"]}});
    let only_needs_rerun_of = json!({"anyOf": [
        {"not": {"required": ["only"]}},
        {"required": ["rerun_of"], "properties": {"rerun_of": {"type": "string"}}},
    ]});
    set(
        schemas,
        "StartRunRequest",
        "allOf",
        json!([both, only_needs_rerun_of]),
    );
    set(
        schemas,
        "RerunBody",
        "not",
        json!({"required": ["only", "tests"]}),
    );
    for request in ["StartRunRequest", "RerunBody"] {
        if let Some(tests) = schemas
            .pointer_mut(&format!("/{request}/properties/tests"))
            .and_then(Value::as_object_mut)
        {
            tests.insert("maxItems".to_owned(), json!(MAX_SELECTED_TESTS));
        }
    }
    // A group is `shards` or a `matrix` with at least one dimension, not both.
    let dimension = |name: &str| json!({"required": [name], "properties": {name: {"minItems": 1}}});
    set(
        schemas,
        "StartGroupRequest",
        "oneOf",
        json!([
            {"required": ["shards"],
             "properties": {"shards": {"type": "integer"}, "matrix": {"type": "null"}}},
            {"required": ["matrix"],
             "properties": {"shards": {"type": "null"},
                            "matrix": {"type": "object", "anyOf": [
                                dimension("labels"), dimension("python"), dimension("env")]}}},
        ]),
    );
    // A file has its content as text or as base64, not both.
    set(
        schemas,
        "TestFile",
        "oneOf",
        json!([
            {"required": ["content"],
             "properties": {"content": {"type": "string"}, "content_base64": {"type": "null"}}},
            {"required": ["content_base64"],
             "properties": {"content_base64": {"type": "string"}, "content": {"type": "null"}}},
        ]),
    );
}

/// A DNS name as the handler takes it: dot-separated labels of 1–63 letters, digits and `-`
/// (not first or last) and an optional final dot (the schema's `maxLength` bounds the whole).
const DNS_NAME: &str = r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$";

/// A private key as the handler takes it: `-----BEGIN …PRIVATE KEY-----` after any blank.
const PRIVATE_KEY: &str = r"^\s*-----BEGIN [\s\S]*PRIVATE KEY-----";

/// Removes every `uniqueItems` of the document.
fn drop_unique_items(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("uniqueItems");
            map.values_mut().for_each(drop_unique_items);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_unique_items),
        _ => {}
    }
}

/// Sets `keyword` of the component `name`, if the document has it.
fn set(schemas: &mut Value, name: &str, keyword: &str, rule: Value) {
    if let Some(schema) = schemas.get_mut(name).and_then(Value::as_object_mut) {
        schema.insert(keyword.to_owned(), rule);
    }
}

/// A pattern matching the protected environment variable names, in any case (JSON Schema
/// patterns have no flags: each letter is a class of both cases).
fn protected_names_pattern() -> String {
    let any_case = |word: &str| -> String {
        word.chars()
            .map(|c| {
                if c.is_ascii_alphabetic() {
                    format!("[{}{}]", c.to_ascii_uppercase(), c.to_ascii_lowercase())
                } else {
                    c.to_string()
                }
            })
            .collect()
    };
    let names = PROTECTED_ENV_NAMES.iter().map(|name| any_case(name));
    let prefixes = PROTECTED_ENV_PREFIXES
        .iter()
        .map(|prefix| format!("{}.*", any_case(prefix)));
    format!(
        "^({})$",
        names.chain(prefixes).collect::<Vec<_>>().join("|")
    )
}

#[cfg(test)]
mod tests {
    use super::protected_names_pattern;

    #[test]
    fn the_protected_pattern_names_each_name_and_prefix_in_any_case() {
        let pattern = protected_names_pattern();
        assert!(pattern.starts_with("^([Pp][Aa][Tt][Hh]|"));
        assert!(pattern.contains("|[Ll][Dd]_.*|"));
        assert!(pattern.ends_with(")$"));
    }
}
