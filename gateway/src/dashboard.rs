//! The dashboard: one page and its script and styles, compiled into the binary (no build step),
//! served at `/`. It runs on the JSON API with the session cookie, and follows runs live with
//! Server-Sent Events.

use axum::http::header;
use axum::response::IntoResponse;

/// `GET /`
pub async fn index() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("dashboard/index.html"),
    )
}

/// `GET /assets/app.js`
pub async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("dashboard/app.js"),
    )
}

/// `GET /assets/app.css`
pub async fn styles() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("dashboard/app.css"),
    )
}

/// `GET /assets/docs.js`: the API docs page's script.
pub async fn docs_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("dashboard/docs.js"),
    )
}

/// `GET /assets/insights.js`: the tests, test, test case and comparison pages.
pub async fn insights_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("dashboard/insights.js"),
    )
}

/// `GET /assets/groups.js`: the run groups pages. `#groups` lists groups (status filter, a
/// "More" button over `next_cursor`); `#group/<id>` shows one group: its status, kind, test case,
/// wall time against the ideal and predicted makespans, the merged summary, a Cancel button while
/// it runs and a link to the merged JUnit report; a timeline (an SVG Gantt chart, one row per
/// member: waiting from queued to assigned, then running to its end, coloured by status, with a
/// dashed mark where its predicted time ends); for a matrix, a grid of its combinations, each
/// cell its member's status and a link to its run; and every member's tests in one table, failed
/// first. The page follows the live events and refetches the group as its members move.
pub async fn groups_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("dashboard/groups.js"),
    )
}

/// `GET /assets/uplot.js`: uPlot 1.6.32, the charts' library (MIT; `dashboard/vendor/uplot`).
pub async fn uplot_script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("dashboard/vendor/uplot/uPlot.iife.min.js"),
    )
}

/// `GET /assets/uplot.css`
pub async fn uplot_styles() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("dashboard/vendor/uplot/uPlot.min.css"),
    )
}
