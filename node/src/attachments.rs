//! Attachments of on-site records: photos, drawn signatures and documents. `POST
//! /api/v1/attachments` takes one file as the request body (any node: it stores the file and
//! sends it to the other members, answering once a majority hold it; or, with
//! `[attachment_store]`, puts it in the object store every member reads), judges its type by its
//! first bytes (JPEG, PNG or PDF only; the declared type is not trusted), and answers its
//! SHA-256, which the on-site record then names (`ledger::site_record`). `GET
//! /api/v1/tasks/{id}/attachments/{sha256}` serves a file a record of that task names, to those
//! who can see the task; a node that lacks it fetches it from a member and checks its hash.
//!
//! Nothing of the file enters the Raft log. A file no record names yet is served to nobody.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::api::site_record::HeldFile;
use crate::api::ApiError;
use crate::kept_files::object_shelf::ObjectShelfError;
use crate::kept_files::{replication, Shelf};
use crate::routes::request::parse_task_id;
use crate::state::AppState;
use ledger::campaign::is_hex_sha256;
use ledger::site_record::ATTACHMENTS_PER_RECORD_MAX;

/// The largest attachment: a phone's photo is 2–5 MB, a scanned document a few more.
pub const ATTACHMENT_BYTES_MAX: usize = 10 * 1024 * 1024;
/// The most pixels an uploaded PNG may have (a 12-megapixel phone photo; a drawn signature is
/// far smaller), and the most a printed document decodes.
pub const PNG_PIXELS_MAX: u64 = 12_000_000;
/// The first bytes that tell the types apart.
const SNIFF_BYTES: usize = 8;
/// A kept file never changes under its name: a client may keep it as long as it likes.
const IMMUTABLE: &str = "private, max-age=31536000, immutable";

/// The media type of `bytes` by their first bytes, if it is one an attachment may be.
pub fn media_type_of(bytes: &[u8]) -> Option<&'static str> {
    const JPEG: &[u8] = &[0xFF, 0xD8, 0xFF];
    const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    const PDF: &[u8] = b"%PDF-";
    if bytes.starts_with(JPEG) {
        Some("image/jpeg")
    } else if bytes.starts_with(PNG) {
        Some("image/png")
    } else if bytes.starts_with(PDF) {
        Some("application/pdf")
    } else {
        None
    }
}

/// A PNG's width and height from its header (the IHDR chunk, which the format puts first),
/// without decoding anything.
pub fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let header = bytes.get(8..24)?;
    if &header[4..8] != b"IHDR" {
        return None;
    }
    let number = |at: usize| header.get(at..at + 4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes);
    Some((number(8)?, number(12)?))
}

/// The attachments of `names` that are kept where the group keeps attachments, with their
/// media type and size: on this node's disk (fetched from a member first when this node lacks
/// one: the upload put it on a majority, not always on the node that now leads), or in the
/// object store. A record names only files found here (`api::site_record`). Names that are no
/// SHA-256, and files that are not kept, are left out.
pub async fn held_files<'n>(
    state: &AppState,
    names: impl IntoIterator<Item = &'n str>,
) -> Result<BTreeMap<String, HeldFile>, ApiError> {
    let names: BTreeSet<&str> = names.into_iter().filter(|name| is_hex_sha256(name)).collect();
    let lookups = names.into_iter().take(ATTACHMENTS_PER_RECORD_MAX).map(|sha256| async move {
        let head = match &state.kept_files.attachment_objects {
            Some(objects) => objects.head(sha256, SNIFF_BYTES).await.map_err(store_error)?,
            None => {
                let store = state.kept_files.attachments.clone();
                let name = sha256.to_owned();
                let read = move || store.head(&name, SNIFF_BYTES);
                let mut head = tokio::task::spawn_blocking(read.clone()).await.map_err(internal)?.map_err(internal)?;
                if head.is_none() && replication::obtain(state, Shelf::Attachments, sha256).await.is_ok() {
                    head = tokio::task::spawn_blocking(read).await.map_err(internal)?.map_err(internal)?;
                }
                head
            }
        };
        let typed =
            head.and_then(|(bytes, start)| media_type_of(&start).map(|media_type| HeldFile { media_type, bytes }));
        Ok::<_, ApiError>(typed.map(|file| (sha256.to_owned(), file)))
    });
    // A record names a handful of files: looked up at once, not one after another.
    let found = futures_util::future::join_all(lookups).await;
    found.into_iter().filter_map(Result::transpose).collect()
}

/// Keeps an uploaded file where the group keeps attachments: on a majority of the members, or
/// in the object store.
async fn keep(state: &AppState, sha256: &str, bytes: Bytes) -> Result<(), ApiError> {
    match &state.kept_files.attachment_objects {
        Some(objects) => objects.put(sha256, bytes).await.map_err(store_error),
        None => {
            replication::keep_on_majority(state, Shelf::Attachments, sha256, bytes, "attachment_not_replicated").await
        }
    }
}

/// A kept attachment's bytes, checked against its hash, from wherever the group keeps them.
pub async fn obtain(state: &AppState, sha256: &str) -> Result<Vec<u8>, ApiError> {
    match &state.kept_files.attachment_objects {
        Some(objects) => objects.get(sha256).await.map_err(store_error)?.ok_or_else(|| ApiError::Unavailable {
            code: "attachment_unavailable",
            message: format!("the attachment store holds no attachment {sha256}"),
        }),
        None => replication::obtain(state, Shelf::Attachments, sha256).await,
    }
}

fn store_error(error: ObjectShelfError) -> ApiError {
    match error {
        ObjectShelfError::Damaged(sha256) => ApiError::Unavailable {
            code: "attachment_damaged",
            message: format!("the stored attachment {sha256} does not match its SHA-256; it is not served as evidence"),
        },
        ObjectShelfError::Store(e) => ApiError::Unavailable {
            code: "attachment_store_unavailable",
            message: format!("the attachment store: {e}"),
        },
    }
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("reading an attachment: {error}"))
}

/// What an upload answers.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct AttachmentJson {
    pub sha256: String,
    pub media_type: String,
    pub bytes: u64,
}

/// `POST /api/v1/attachments`.
pub async fn upload(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?;
        if user.actor.role == ledger::Role::Leadership {
            return Err(ApiError::Forbidden("leadership reads; attachments come from those who inspect".into()));
        }
        let bytes = axum::body::to_bytes(body, ATTACHMENT_BYTES_MAX).await.map_err(|_| {
            ApiError::TooLarge(format!("an attachment has at most {} MiB", ATTACHMENT_BYTES_MAX / (1024 * 1024)))
        })?;
        if bytes.is_empty() {
            return Err(ApiError::Invalid { code: "empty_attachment", message: "the body holds no file".into() });
        }
        let media_type = media_type_of(&bytes).ok_or_else(|| {
            ApiError::UnsupportedMediaType(
                "an attachment is a JPEG or PNG image or a PDF, judged by its content".into(),
            )
        })?;
        if media_type == "image/png" {
            // Decoded whole wherever it is drawn: its header must be readable and its size a
            // picture's, not a claim of a million pixels square in a hundred bytes.
            let pixels = png_dimensions(&bytes).map(|(width, height)| u64::from(width) * u64::from(height));
            if pixels.is_none_or(|pixels| pixels > PNG_PIXELS_MAX) {
                return Err(ApiError::Invalid {
                    code: "image_too_large",
                    message: format!("a PNG has a readable header and at most {PNG_PIXELS_MAX} pixels"),
                });
            }
        }
        let sha256 = draw::directory::sha256_hex(&bytes);
        let size = bytes.len() as u64;
        keep(&state, &sha256, bytes).await?;
        Ok::<_, ApiError>((
            StatusCode::CREATED,
            Json(AttachmentJson { sha256, media_type: media_type.to_owned(), bytes: size }),
        ))
    };
    answer.await.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

/// `GET /api/v1/tasks/{id}/attachments/{sha256}`.
pub async fn download(
    State(state): State<AppState>,
    Path((id, sha256)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        let user = state.users.authenticate(&headers)?;
        let id = parse_task_id(&id)?;
        let media_type = {
            let task = crate::routes::tasks::visible_task(&state, &user.actor, id)?;
            let named = task.field_work.site_records.iter().flat_map(|record| &record.record.attachments);
            let found = named.into_iter().find(|attachment| attachment.sha256 == sha256);
            found
                .map(|attachment| attachment.media_type.clone())
                .ok_or_else(|| ApiError::NotFound(format!("no record of task {id} names the attachment {sha256}")))?
        };
        let bytes = obtain(&state, &sha256).await?;
        Ok::<_, ApiError>((
            [
                (header::CONTENT_TYPE, media_type),
                (header::CACHE_CONTROL, IMMUTABLE.to_owned()),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
            ],
            bytes,
        ))
    };
    answer.await.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_type_is_judged_by_the_first_bytes() {
        assert_eq!(media_type_of(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10]), Some("image/jpeg"));
        assert_eq!(media_type_of(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some("image/png"));
        assert_eq!(media_type_of(b"%PDF-1.7\n"), Some("application/pdf"));
        let header = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\x02\x58\0\0\0\xc8\x08\x06\0\0\0";
        assert_eq!(png_dimensions(header), Some((600, 200)));
        assert_eq!(png_dimensions(&header[..20]), None, "a cut header");
        assert_eq!(png_dimensions(b"\x89PNG\r\n\x1a\n\0\0\0\rIDAT\0\0\0\x01\0\0\0\x01"), None);
        for refused in [&b"GIF89a"[..], b"<svg xmlns=", b"<html>", b"\x89PNG", b"", b"%PDF"] {
            assert_eq!(media_type_of(refused), None, "{refused:?}");
        }
    }
}
