//! Kept files as streams: a request's body received into a staging file (hashed on the way, never
//! whole in memory), and a kept file sent as a body. A province's entity directory is
//! gigabytes; these are the only ways a kept file moves.

use axum::body::Body;
use futures_util::StreamExt;

use super::store::{ContentStore, Staging};
use crate::api::ApiError;

/// Bytes gathered before they are written: one write per megabyte, not per network frame.
const WRITE_CHUNK_BYTES: usize = 1024 * 1024;

/// Receives `body` into a staging file of `store`, at most `bytes_max` bytes; a body that
/// stalls for `config::limits::TRANSFER_IDLE_TIMEOUT` is given up. What is received is the
/// caller's to check and keep (`Staging::keep`); dropped, it leaves nothing.
pub async fn receive(store: &ContentStore, body: Body, bytes_max: u64, what: &str) -> Result<Staging, ApiError> {
    let store = store.clone();
    let mut staging = tokio::task::spawn_blocking(move || store.staging())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(format!("staging the {what}: {e}")))?;
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_CHUNK_BYTES);
    loop {
        let next = tokio::time::timeout(config::limits::TRANSFER_IDLE_TIMEOUT, stream.next()).await.map_err(|_| {
            ApiError::Invalid {
                code: "transfer_stalled",
                message: format!(
                    "no byte of the {what} arrived for {} s; nothing was kept",
                    config::limits::TRANSFER_IDLE_TIMEOUT.as_secs()
                ),
            }
        })?;
        let chunk = match next {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(error)) => {
                return Err(ApiError::Invalid {
                    code: "transfer_broken",
                    message: format!("the {what} broke off ({error}); nothing was kept"),
                })
            }
        };
        if staging.bytes() + (pending.len() + chunk.len()) as u64 > bytes_max {
            return Err(ApiError::TooLarge(format!("a {what} has at most {bytes_max} bytes")));
        }
        pending.extend_from_slice(&chunk);
        if pending.len() >= WRITE_CHUNK_BYTES {
            let full = std::mem::replace(&mut pending, Vec::with_capacity(WRITE_CHUNK_BYTES));
            staging = write(staging, full, what).await?;
        }
    }
    write(staging, pending, what).await
}

/// Writes `chunk` on the blocking pool (a node may run on one thread, where nothing may block).
async fn write(mut staging: Staging, chunk: Vec<u8>, what: &str) -> Result<Staging, ApiError> {
    let written = tokio::task::spawn_blocking(move || staging.write(&chunk).map(|()| staging))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    written.map_err(|e| ApiError::Internal(format!("writing the {what}: {e}")))
}

/// A kept file's bytes as a stream, read as the connection takes them.
pub fn stream_of(file: std::fs::File) -> impl futures_util::Stream<Item = std::io::Result<axum::body::Bytes>> {
    tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), WRITE_CHUNK_BYTES)
}
