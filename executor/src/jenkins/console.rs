//! A build's console (`logText/progressiveText?start=<offset>`), read in bounded pieces.
//!
//! Jenkins answers a console read with everything from `start` to the end of the log, however
//! long (a first read of a build that wrote gigabytes, or a slow poll). The answer is therefore
//! never buffered whole: its body is read chunk by chunk and handed on in pieces of at most
//! [`CONSOLE_PIECE`] bytes, and the next read starts at the `X-Text-Size` the answer's headers
//! gave. A read broken off mid-body is read again from the same offset, and the bytes already
//! handed on are skipped ([`ConsoleCursor`]), so the run's output has neither gap nor repeat.
//! Only silence is bounded in time (30 s without a byte), not the whole answer.

use std::future::Future;

use bytes::{Bytes, BytesMut};

use super::client::{JenkinsClient, JenkinsError, checked, slash};

/// The most console bytes held and handed on at once.
pub const CONSOLE_PIECE: usize = 256 * 1024;

/// Where a build's console is read from next.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsoleCursor {
    /// The `start` of the next read (`X-Text-Size` of the last complete one).
    pub offset: u64,
    /// Body bytes of a read from `offset` that were handed on before it broke off.
    pub handed_on: u64,
}

impl JenkinsClient {
    /// Reads the console of the build at `build_url` from `cursor`, giving it to `hand_on` in
    /// pieces of at most [`CONSOLE_PIECE`] bytes; moves `cursor` past what was handed on. Returns
    /// whether more text may come (`X-More-Data: true`: the build still runs).
    pub async fn read_console<F, Fut>(
        &self,
        build_url: &str,
        cursor: &mut ConsoleCursor,
        mut hand_on: F,
    ) -> Result<bool, JenkinsError>
    where
        F: FnMut(Bytes) -> Fut,
        Fut: Future<Output = ()>,
    {
        const WHAT: &str = "console text";
        let url = self.url(
            &format!("{}logText/progressiveText", slash(build_url)),
            WHAT,
        )?;
        let request = self.authed(self.streaming.get(url));
        let response = request
            .query(&[("start", cursor.offset)])
            .send()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?;
        let mut response = checked(response, WHAT).await?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let more = header("X-More-Data").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let size = header("X-Text-Size").and_then(|v| v.parse::<u64>().ok());
        let mut skip = Skip::new(cursor.handed_on);
        let mut piece = BytesMut::new();
        let mut read: u64 = 0;
        // `cursor.handed_on` moves with every piece, so that a read broken off or dropped
        // mid-body is taken up where it stopped.
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|err| JenkinsError::transport(WHAT, &err))?
        {
            read += chunk.len() as u64;
            let mut fresh = skip.fresh(chunk);
            while !fresh.is_empty() {
                let room = CONSOLE_PIECE - piece.len();
                piece.extend_from_slice(&fresh.split_to(room.min(fresh.len())));
                if piece.len() == CONSOLE_PIECE {
                    hand_on(piece.split().freeze()).await;
                    let through = read - fresh.len() as u64;
                    cursor.handed_on = cursor.handed_on.max(through);
                }
            }
        }
        if !piece.is_empty() {
            hand_on(piece.split().freeze()).await;
        }
        *cursor = ConsoleCursor {
            offset: size.unwrap_or(cursor.offset + read.max(cursor.handed_on)),
            handed_on: 0,
        };
        Ok(more)
    }
}

/// Drops the first `left` bytes of a body: those an earlier, broken-off read handed on.
struct Skip {
    left: u64,
}

impl Skip {
    fn new(left: u64) -> Self {
        Self { left }
    }

    /// The part of `chunk` not handed on before.
    fn fresh(&mut self, mut chunk: Bytes) -> Bytes {
        let dropped = self.left.min(chunk.len() as u64);
        self.left -= dropped;
        chunk.split_off(usize::try_from(dropped).unwrap_or(chunk.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_drops_what_was_handed_on_across_chunks() {
        let mut skip = Skip::new(5);
        assert_eq!(skip.fresh(Bytes::from_static(b"abc")), Bytes::new());
        assert_eq!(skip.fresh(Bytes::from_static(b"defgh")), "fgh");
        assert_eq!(skip.fresh(Bytes::from_static(b"ij")), "ij");
    }
}
