//! The API document states what each command route takes.

use serde_json::Value;

/// The document as JSON, as `GET /api/v1/openapi.json` serves it.
fn document() -> Value {
    super::document().clone()
}

/// The request body schema of `method path`, with a `$ref` to a component followed.
fn request_schema<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let body = &doc["paths"][path][method]["requestBody"];
    resolve(doc, &body["content"]["application/json"]["schema"])
}

/// `schema`, or the component it refers to; of an optional value (`oneOf` it and null), the
/// value's.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(first) = schema["oneOf"].get(0) {
        return resolve(doc, first);
    }
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &doc["components"]["schemas"][name]
        }
        None => schema,
    }
}

fn required(schema: &Value) -> Vec<&str> {
    let mut fields: Vec<&str> = schema["required"]
        .as_array()
        .map(|fields| fields.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    fields.sort_unstable();
    fields
}

#[test]
fn the_creating_routes_state_their_required_fields() {
    let doc = document();
    for (path, fields) in [
        ("/api/v1/runs", vec!["test_case_id"]),
        ("/api/v1/groups", vec!["test_case_id"]),
        ("/api/v1/machines", vec!["host", "name", "username"]),
        ("/api/v1/venvs", vec!["machine_id", "name"]),
        ("/api/v1/test-cases", vec!["name"]),
        ("/api/v1/users", vec!["password", "role", "username"]),
    ] {
        let schema = request_schema(&doc, path, "post");
        assert_eq!(required(schema), fields, "POST {path}: {schema}");
        assert_eq!(
            schema["additionalProperties"], false,
            "POST {path}: {schema}"
        );
    }
}

#[test]
fn validated_fields_state_their_bounds() {
    let doc = document();
    let machine = request_schema(&doc, "/api/v1/machines", "post");
    let port = resolve(&doc, &machine["properties"]["port"]);
    assert_eq!(port["maximum"].as_f64(), Some(65_535.0), "{machine}");
    let name = resolve(&doc, &machine["properties"]["name"]);
    assert_eq!(name["maxLength"], 200, "{name}");
    let password = resolve(&doc, &machine["properties"]["password"]);
    assert_eq!(password["format"], "password", "{password}");
    let user = request_schema(&doc, "/api/v1/users", "post");
    let username = resolve(&doc, &user["properties"]["username"]);
    assert!(username["pattern"].is_string(), "{username}");
    assert_eq!(user["properties"]["password"]["maxLength"], 1024, "{user}");
    let test_case = request_schema(&doc, "/api/v1/test-cases", "post");
    let retries = &test_case["properties"]["retries"];
    assert_eq!(retries["maximum"].as_f64(), Some(10.0), "{test_case}");
}

#[test]
fn the_other_command_routes_have_typed_bodies() {
    let doc = document();
    let update = request_schema(&doc, "/api/v1/machines/{machine_id}", "patch");
    assert_eq!(required(update), Vec::<&str>::new(), "{update}");
    assert!(update["properties"]["labels"].is_object(), "{update}");
    let password = request_schema(&doc, "/api/v1/users/{username}/password", "put");
    assert_eq!(required(password), vec!["password"], "{password}");
    assert_eq!(
        password["properties"]["password"]["minLength"], 8,
        "{password}"
    );
    let cancel = request_schema(&doc, "/api/v1/runs/{run_id}/cancel", "post");
    assert!(cancel["properties"]["reason"].is_object(), "{cancel}");
}

#[test]
#[ignore = "prints the document, for a look"]
fn print_the_document() {
    let text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    println!("{text}");
}

/// Every `$ref` in `value`.
fn references<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                found.push(reference);
            }
            map.values().for_each(|inner| references(inner, found));
        }
        Value::Array(items) => items.iter().for_each(|inner| references(inner, found)),
        _ => {}
    }
}

#[test]
fn every_reference_names_a_component() {
    let doc = document();
    let mut found = Vec::new();
    references(&doc, &mut found);
    assert!(!found.is_empty());
    for reference in found {
        let name = reference.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{reference} is not in the document"
        );
    }
}
