//! Keyset cursors: where a page of a sorted listing ends, as the last row's sort value and id,
//! given to clients as opaque URL-safe text. The run history and the tests list page with them.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A cursor the caller got wrong; the messages are the API's.
#[derive(Debug, thiserror::Error)]
pub enum CursorError {
    /// Not one this API gave out.
    #[error("cursor: not a cursor this API gave out")]
    NotACursor,
    /// It belongs to another sort.
    #[error("cursor: it belongs to sort={cursor}, not sort={sort}")]
    OtherSort {
        /// The cursor's sort.
        cursor: String,
        /// The request's sort.
        sort: String,
    },
    /// Its value does not fit its sort.
    #[error("cursor: malformed value")]
    Malformed,
}

/// Where a page ends: the last row's sort value and id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cursor {
    /// The sort it belongs to (`-queued_at`, `name`, ...).
    pub(crate) sort: String,
    /// The last row's sort value (a time, a number, a text, or null).
    pub(crate) value: Value,
    /// The last row's id (cursors of the run history once called it `run_id`).
    #[serde(alias = "run_id")]
    pub(crate) id: Uuid,
}

impl Cursor {
    pub(crate) fn encode(&self) -> String {
        // A struct of a string, a JSON value and a uuid always serialises.
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    /// The cursor `raw`, which must belong to the sort labelled `sort`.
    pub(crate) fn decode(raw: &str, sort: &str) -> Result<Self, CursorError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| CursorError::NotACursor)?;
        let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::NotACursor)?;
        if cursor.sort != sort {
            return Err(CursorError::OtherSort {
                cursor: cursor.sort,
                sort: sort.to_owned(),
            });
        }
        Ok(cursor)
    }
}

/// Cuts `rows`, read with one row more than `limit`, to the page, and gives the cursor of the
/// next page, made by `cursor_of` from the page's last row; `None` on the last page.
pub(crate) fn page_end<R>(
    rows: &mut Vec<R>,
    limit: i64,
    cursor_of: impl FnOnce(&R) -> Cursor,
) -> Option<String> {
    if rows.len() as i64 <= limit {
        return None;
    }
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    rows.last().map(|last| cursor_of(last).encode())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_belong_to_their_sort() {
        let cursor = Cursor {
            sort: "duration".into(),
            value: serde_json::json!(42),
            id: Uuid::nil(),
        };
        let encoded = cursor.encode();
        assert_eq!(Cursor::decode(&encoded, "duration").ok(), Some(cursor));
        assert!(Cursor::decode(&encoded, "-duration").is_err());
        assert!(Cursor::decode("not-a-cursor", "duration").is_err());
    }

    #[test]
    fn cursors_of_the_run_history_given_out_before_still_decode() {
        let old = serde_json::json!({"sort": "-queued_at", "value": null, "run_id": Uuid::nil()});
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(old.to_string());
        assert_eq!(Cursor::decode(&raw, "-queued_at").unwrap().id, Uuid::nil());
    }
}
