//! One `request` span per routed request, carrying what ties it to the rest of runledger's
//! traces: the route, the ids its path names (`run_id`, `venv_id`, `machine_id`, `username`),
//! the `command_id` of a command it sends (recorded by the route) and the answer's status.

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing::field::Empty;

/// The path parameters recorded on the span, as routes name them.
const PATH_IDS: [&str; 4] = ["run_id", "venv_id", "machine_id", "username"];

/// Runs the request inside its `request` span (a route layer: the route is known by then).
pub(crate) async fn in_request_span(
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.as_ref().map_or("", MatchedPath::as_str);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        run_id = Empty,
        venv_id = Empty,
        machine_id = Empty,
        username = Empty,
        command_id = Empty,
        status = Empty,
    );
    for (name, value) in path_ids(route, request.uri().path()) {
        span.record(name, value);
    }
    let response = next.run(request).instrument(span.clone()).await;
    span.record("status", response.status().as_u16());
    response
}

/// The ids `path` gives the parameters of `route` that [`PATH_IDS`] names.
fn path_ids<'a>(route: &str, path: &'a str) -> Vec<(&'static str, &'a str)> {
    route
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(template, value)| {
            let name = template.strip_prefix('{')?.strip_suffix('}')?;
            let known = PATH_IDS.into_iter().find(|known| *known == name)?;
            Some((known, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::path_ids;

    #[test]
    fn the_ids_of_a_path_are_named_by_its_route() {
        assert_eq!(
            path_ids("/api/v1/runs/{run_id}/log", "/api/v1/runs/0193-ab/log"),
            [("run_id", "0193-ab")]
        );
        assert_eq!(
            path_ids(
                "/api/v1/users/{username}/tokens",
                "/api/v1/users/ada/tokens"
            ),
            [("username", "ada")]
        );
        assert!(path_ids("/api/v1/runs", "/api/v1/runs").is_empty());
        assert!(path_ids("/api/v1/x/{other}", "/api/v1/x/1").is_empty());
    }
}
