//! Attachments in an S3-compatible object store (`[attachment_store]`), for a province whose
//! photos outgrow the nodes' disks. Every member of the group names the same store, so a file
//! is where every member can read it once its PUT answered (S3 answers a PUT only when the
//! object is durably stored), which is what the members' majority gives without a store.
//!
//! **Invariant:** what this shelf hands out has the SHA-256 it is named by: every read is
//! hashed, and an object that does not match (damaged, or replaced by someone with write access
//! to the bucket) is refused, never served as evidence.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use ledger::campaign::is_hex_sha256;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStoreExt, PutPayload, RetryConfig};

/// A request to the store that takes longer has failed (a 10 MiB photo on a LAN takes well
/// under a second).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Retries of a failed request (5xx, a dropped connection), within `RETRY_WITHIN`.
const RETRIES_MAX: usize = 3;
const RETRY_WITHIN: Duration = Duration::from_secs(30);
/// No node stores a larger object (`crate::attachments::ATTACHMENT_BYTES_MAX`).
const BYTES_MAX: u64 = crate::attachments::ATTACHMENT_BYTES_MAX as u64;

/// Why the store did not answer with the file.
#[derive(Debug, thiserror::Error)]
pub enum ObjectShelfError {
    #[error("the attachment store: {0}")]
    Store(#[from] object_store::Error),
    #[error("the stored object {0} is not the file of that SHA-256 (another hash, or larger than any upload)")]
    Damaged(String),
}

#[derive(Clone)]
pub struct ObjectShelf {
    store: Arc<AmazonS3>,
    prefix: String,
    description: String,
}

impl ObjectShelf {
    /// The store of `config` (its secret key read from its file).
    pub fn open(config: &config::AttachmentStoreConfig) -> anyhow::Result<ObjectShelf> {
        use anyhow::Context;
        let secret = std::fs::read_to_string(&config.secret_access_key_file)
            .with_context(|| format!("reading {}", config.secret_access_key_file.display()))?;
        let retry = RetryConfig { max_retries: RETRIES_MAX, retry_timeout: RETRY_WITHIN, ..RetryConfig::default() };
        let client = ClientOptions::new()
            .with_timeout(REQUEST_TIMEOUT)
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_allow_http(config.endpoint.starts_with("http://"));
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(secret.trim())
            // Path-style addressing (`endpoint/bucket/key`): what every S3-compatible server
            // takes, without a DNS name per bucket.
            .with_virtual_hosted_style_request(false)
            .with_client_options(client)
            .with_retry(retry)
            .build()
            .context("the attachment store's settings")?;
        let description = format!("{}/{}/{}", config.endpoint, config.bucket, config.prefix);
        Ok(ObjectShelf { store: Arc::new(store), prefix: config.prefix.clone(), description })
    }

    /// Where the shelf keeps its files, for logs.
    pub fn describe(&self) -> &str {
        &self.description
    }

    fn path(&self, sha256: &str) -> Option<ObjectPath> {
        is_hex_sha256(sha256).then(|| ObjectPath::from(format!("{}/{sha256}", self.prefix)))
    }

    /// Stores `bytes` under `sha256`, which the caller computed from them.
    pub async fn put(&self, sha256: &str, bytes: Bytes) -> Result<(), ObjectShelfError> {
        debug_assert_eq!(draw::directory::sha256_hex(&bytes), sha256, "a file is stored under its own hash");
        let Some(path) = self.path(sha256) else { return Err(ObjectShelfError::Damaged(sha256.to_owned())) };
        self.store.put(&path, PutPayload::from_bytes(bytes)).await?;
        Ok(())
    }

    /// The file, checked against its name; `None` when the store has no such object.
    pub async fn get(&self, sha256: &str) -> Result<Option<Vec<u8>>, ObjectShelfError> {
        let Some(path) = self.path(sha256) else { return Ok(None) };
        let bytes = match self.store.get(&path).await {
            // An object larger than any upload was not put there by a node: not read at all.
            Ok(found) if found.meta.size > BYTES_MAX => return Err(ObjectShelfError::Damaged(sha256.to_owned())),
            Ok(found) => found.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if draw::directory::sha256_hex(&bytes) != sha256 {
            return Err(ObjectShelfError::Damaged(sha256.to_owned()));
        }
        Ok(Some(bytes.to_vec()))
    }

    /// The size of a stored file and its first `first` bytes (what its type is judged by).
    pub async fn head(&self, sha256: &str, first: usize) -> Result<Option<(u64, Vec<u8>)>, ObjectShelfError> {
        let Some(path) = self.path(sha256) else { return Ok(None) };
        let meta = match self.store.head(&path).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if meta.size > BYTES_MAX {
            return Err(ObjectShelfError::Damaged(sha256.to_owned()));
        }
        if meta.size == 0 {
            return Ok(Some((0, Vec::new())));
        }
        let start = self.store.get_range(&path, 0..meta.size.min(first as u64)).await?;
        Ok(Some((meta.size, start.to_vec())))
    }
}
