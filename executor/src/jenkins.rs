//! A client of Jenkins' Remote Access API: just what a run of a Jenkins job needs.
//!
//! Follows Jenkins' documented behaviour: a CSRF crumb from `crumbIssuer/api/json` (sent with
//! the session cookie it came with; a 404 means the server issues none), the build triggered by a
//! `POST` to `job/<name>/buildWithParameters` (or `build` without parameters) answered `201` with
//! the queue item in `Location`, the queue item's `executable` once a build started, the console
//! from `logText/progressiveText?start=<offset>` (`X-Text-Size` is the next offset, `X-More-Data`
//! says more is coming; read in bounded pieces, [`ConsoleCursor`]), the result from the build's `api/json`, the test report from
//! `testReport/api/json`, and `stop` / `queue/cancelItem` to cancel. The API token is sent only
//! to the server's own origin ([`JenkinsClient`]).

mod api;
mod client;
mod console;

pub use api::{BuildState, QueueState, TestReport};
pub use client::{Found, JenkinsClient, JenkinsError, JenkinsErrorKind};
pub use console::{CONSOLE_PIECE, ConsoleCursor};
