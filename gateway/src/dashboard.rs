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
