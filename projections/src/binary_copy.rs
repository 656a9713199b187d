//! Rows in Postgres' binary `COPY` format, for the rows a rebuild writes most of (a test's
//! history in chunks, reports): numbers, uuids and arrays go over as bytes Postgres copies,
//! where the text format would have it parse every element of every array.
//!
//! The format (Postgres docs, "COPY", Binary Format): a signature and header, then per row a
//! field count and each field as a length (-1 for null) and its bytes in the type's `send`
//! form; an array is its dimensions, a null flag, the element type's oid, each dimension's
//! length and lower bound, then its elements as fields.

use crate::copy::copy_sql;
use crate::error::ProjectionError;
use chrono::{DateTime, Utc};
use runledger_readmodel::Table;
use sqlx::PgConnection;
use uuid::Uuid;

/// Oids of the element types the arrays here hold.
const INT8: u32 = 20;
const INT4: u32 = 23;
const TEXT: u32 = 25;

/// Microseconds from the Unix epoch to Postgres' (2000-01-01).
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Bytes per piece sent: pieces keep allocations moderate however many rows there are.
const SEND_AT: usize = 1 << 20;

/// Rows being encoded; [`BinaryCopy::row`] starts each, then one call per field in table order.
#[derive(Debug)]
pub(crate) struct BinaryCopy {
    buf: Vec<u8>,
    /// Full pieces of about [`SEND_AT`] bytes, sent one by one.
    pieces: Vec<Vec<u8>>,
    rows: usize,
}

impl BinaryCopy {
    /// An encoder that has written the header.
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(SEND_AT + SEND_AT / 4);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self {
            buf,
            pieces: Vec::new(),
            rows: 0,
        }
    }

    /// Starts a row of `fields` fields.
    pub fn row(&mut self, fields: i16) {
        if self.buf.len() >= SEND_AT {
            let full = std::mem::replace(&mut self.buf, Vec::with_capacity(SEND_AT + SEND_AT / 4));
            self.pieces.push(full);
        }
        self.rows += 1;
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    /// A `bigint`.
    pub fn int8(&mut self, value: i64) {
        self.field(&value.to_be_bytes());
    }

    /// An `integer`.
    pub fn int4(&mut self, value: i32) {
        self.field(&value.to_be_bytes());
    }

    /// A `uuid`, or null.
    pub fn uuid(&mut self, value: Option<Uuid>) {
        match value {
            Some(value) => self.field(value.as_bytes()),
            None => self.null(),
        }
    }

    /// A `timestamptz`.
    pub fn timestamptz(&mut self, value: DateTime<Utc>) {
        self.int8(value.timestamp_micros() - POSTGRES_EPOCH_MICROS);
    }

    /// A `bigint[]` of `items`.
    pub fn int8_array(&mut self, items: impl ExactSizeIterator<Item = i64>) {
        self.array(INT8, items.len(), false, |buf| {
            for item in items {
                push_field(buf, &item.to_be_bytes());
            }
        });
    }

    /// An `integer[]` of `items`.
    pub fn int4_array(&mut self, items: impl ExactSizeIterator<Item = i32>) {
        self.array(INT4, items.len(), false, |buf| {
            for item in items {
                push_field(buf, &item.to_be_bytes());
            }
        });
    }

    /// A `text[]` of `items`, where `None` is a null element.
    pub fn text_array<'a, I>(&mut self, items: I)
    where
        I: ExactSizeIterator<Item = Option<&'a str>> + Clone,
    {
        let has_null = items.clone().any(|item| item.is_none());
        self.array(TEXT, items.len(), has_null, |buf| {
            for item in items {
                match item {
                    Some(text) => push_field(buf, text.as_bytes()),
                    None => buf.extend_from_slice(&(-1i32).to_be_bytes()),
                }
            }
        });
    }

    /// True when no row was started.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes encoded so far.
    pub fn len(&self) -> usize {
        self.pieces.iter().map(Vec::len).sum::<usize>() + self.buf.len()
    }

    /// The pieces to send, the trailer written; none when no row was.
    fn finish(mut self) -> Vec<Vec<u8>> {
        if self.rows == 0 {
            return Vec::new();
        }
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.pieces.push(self.buf);
        self.pieces
    }

    fn field(&mut self, bytes: &[u8]) {
        push_field(&mut self.buf, bytes);
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    /// An array field of `len` elements of type `oid`, which `elements` writes.
    fn array(&mut self, oid: u32, len: usize, has_null: bool, elements: impl FnOnce(&mut Vec<u8>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0i32.to_be_bytes()); // the field's length, set below
        let dimensions: i32 = if len == 0 { 0 } else { 1 };
        self.buf.extend_from_slice(&dimensions.to_be_bytes());
        self.buf
            .extend_from_slice(&i32::from(has_null).to_be_bytes());
        self.buf.extend_from_slice(&oid.to_be_bytes());
        if len > 0 {
            let len = i32::try_from(len).unwrap_or(i32::MAX);
            self.buf.extend_from_slice(&len.to_be_bytes());
            self.buf.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        }
        elements(&mut self.buf);
        let field_len = self.buf.len() - start - 4;
        let field_len = i32::try_from(field_len).unwrap_or(i32::MAX);
        self.buf[start..start + 4].copy_from_slice(&field_len.to_be_bytes());
    }
}

fn push_field(buf: &mut Vec<u8>, bytes: &[u8]) {
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
}

/// Rows encoded for one table, ready to be written.
#[derive(Debug)]
pub struct BulkRows {
    /// The table, in the schema of the fold that encoded them.
    pub table: &'static Table,
    pub(crate) rows: BinaryCopy,
}

/// `COPY`s the rows `rows` holds into `table` (their encoder wrote them in its column order).
pub(crate) async fn copy_binary(
    connection: &mut PgConnection,
    table: &Table,
    schema: &str,
    rows: BinaryCopy,
) -> Result<(), ProjectionError> {
    let pieces = rows.finish();
    if pieces.is_empty() {
        return Ok(());
    }
    let sql = format!("{} (FORMAT binary)", copy_sql(table, schema));
    let mut copy = connection.copy_in_raw(&sql).await?;
    for piece in pieces {
        copy.send(piece).await?;
    }
    copy.finish().await?;
    Ok(())
}
