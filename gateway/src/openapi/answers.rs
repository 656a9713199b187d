//! The answers every route of a kind can give, added to the document in one place so that no
//! route's annotation can forget one: the API's own checks (token, body, parameters, freshness)
//! and a command's refusals answer the same way on every route that has them.
//!
//! A route's own annotation still says what is particular to it; an answer it already documents
//! is left as it wrote it.

use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};

/// Adds the answers each operation can give by its shape; see [`answers_of`].
pub(crate) struct CommonAnswers;

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            if !path.starts_with("/api/") {
                continue;
            }
            let operations = [
                (&mut item.get, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ];
            for (operation, writes) in operations {
                if let Some(operation) = operation.as_mut() {
                    add(operation, &answers_of(operation, writes));
                }
            }
        }
    }
}

/// What an operation looks like, as far as its common answers go.
struct Shape {
    authenticated: bool,
    has_body: bool,
    path_ids: bool,
    waits_for_position: bool,
    sends_command: bool,
}

fn shape(operation: &Operation, writes: bool) -> Shape {
    let parameters = operation
        .parameters
        .iter()
        .flatten()
        .filter_map(|p| match p {
            RefOr::T(parameter) => Some(parameter),
            RefOr::Ref(_) => None,
        });
    let (mut path_ids, mut waits_for_position) = (false, false);
    for parameter in parameters {
        path_ids |= parameter.parameter_in == ParameterIn::Path;
        waits_for_position |= parameter.name == "min_position";
    }
    Shape {
        // `security(())` on a route (logging in, health) opts out of the bearer token.
        authenticated: operation
            .security
            .as_ref()
            .is_none_or(|requirements| requirements.iter().all(|r| *r != Default::default())),
        has_body: operation.request_body.is_some(),
        path_ids,
        waits_for_position,
        sends_command: writes && operation.responses.responses.contains_key("202"),
    }
}

/// The common answers of `operation`: (status, description).
fn answers_of(operation: &Operation, writes: bool) -> Vec<(&'static str, &'static str)> {
    let shape = shape(operation, writes);
    let mut answers = vec![
        (
            "400",
            "`bad_request`: a parameter or the body is not what the route takes",
        ),
        (
            "503",
            "`unavailable` or `read_models_unavailable`: Postgres, NATS or the handler did not answer, or the read models are not built yet",
        ),
    ];
    if shape.authenticated {
        answers.push(("401", "`unauthorized`: no valid token or session cookie"));
    }
    if shape.has_body {
        answers.push((
            "413",
            "`payload_too_large`: the body is over the 4 MiB limit",
        ));
        answers.push((
            "415",
            "`unsupported_media_type`: the body is not sent as `application/json`",
        ));
    }
    if shape.path_ids {
        answers.push(("404", "`not_found` or `unknown_*`: nothing has that id"));
    }
    if shape.waits_for_position {
        answers.push((
            "409",
            "`beyond_log_head`: `min_position` is beyond the log's head (no command was answered with it)",
        ));
    }
    if shape.sends_command {
        answers.push((
            "403",
            "`forbidden`: the caller's role may not send this command",
        ));
        answers.push((
            "404",
            "`unknown_*`: the command names something that does not exist",
        ));
        answers.push((
            "409",
            "`*_exists`, `run_finished`, `cancel_already_requested`, `venv_in_use`, `user_disabled`, …: the lab's state refuses the command",
        ));
        answers.push((
            "422",
            "`invalid_payload` and the other refusals of docs/commands.md",
        ));
        answers.push((
            "429",
            "`too_many_queued_runs`: the caller has the most runs waiting that one caller may have",
        ));
    }
    answers
}

/// Adds each answer `operation` does not document yet; two common answers with one status (a
/// path id's 404 and a command's `unknown_*`) are one answer with both descriptions.
fn add(operation: &mut Operation, answers: &[(&'static str, &'static str)]) {
    let mut by_status: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (status, description) in answers {
        by_status.entry(status).or_default().push(description);
    }
    for (status, descriptions) in by_status {
        if operation.responses.responses.contains_key(status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(descriptions.join("; or "))
            .content(
                "application/json",
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            )
            .build();
        operation
            .responses
            .responses
            .insert(status.to_owned(), RefOr::T(response));
    }
}
