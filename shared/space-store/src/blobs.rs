//! Blobs: bytes under a key, beside the item store. S3 in AWS, files in the data folder
//! locally, memory in tests. Like the item store it knows no domain: keys are opaque
//! `/`-separated paths the caller builds.
//!
//! S3 can hand a client a presigned URL so large uploads and downloads bypass the API;
//! the other backends cannot, and say so (`None`), and the caller serves the bytes itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::dynamodb::{service_error, unexpected_service_error};
use crate::error::StoreError;

/// What is known about a stored blob without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    pub size: u64,
}

/// A request a client can make directly against the blob backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    /// Headers the client must send with it, exactly.
    pub headers: Vec<(String, String)>,
}

/// How a presigned download answers: the type and disposition the client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadHeaders {
    pub content_type: String,
    pub content_disposition: String,
}

/// Where blobs go.
#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` at `key`, replacing what was there.
    async fn put(&self, key: &str, content_type: &str, bytes: Bytes) -> Result<(), StoreError>;

    /// The whole blob, or `None` when there is none.
    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError>;

    /// The first `length` bytes (fewer if the blob is shorter), for sniffing a file that
    /// arrived by a presigned upload without reading all of it.
    async fn read_prefix(&self, key: &str, length: usize) -> Result<Option<Bytes>, StoreError>;

    /// Size of the blob, or `None` when there is none.
    async fn info(&self, key: &str) -> Result<Option<BlobInfo>, StoreError>;

    /// Removes the blob; removing nothing is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;

    /// Removes up to `limit` of the blobs under `folder/` (every stored version of each,
    /// where the backend keeps versions) and says how many it removed: none means the folder
    /// is empty. A removal in bounded steps that may stop anywhere and start again.
    async fn delete_folder(&self, folder: &str, limit: usize) -> Result<usize, StoreError>;

    /// A URL the client can `PUT` the bytes to, when the backend gives out such URLs.
    async fn presign_put(
        &self,
        _key: &str,
        _content_type: &str,
        _expires_in: Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        Ok(None)
    }

    /// A URL the client can `GET` the bytes from, when the backend gives out such URLs.
    async fn presign_get(
        &self,
        _key: &str,
        _headers: &DownloadHeaders,
        _expires_in: Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        Ok(None)
    }
}

/// Keys are paths of `[A-Za-z0-9_.-]` segments; none is empty, `.` or `..`, so a key can
/// name a file under the root and nothing outside it.
fn check_key(key: &str) -> Result<(), StoreError> {
    let valid = !key.is_empty()
        && key.len() <= 512
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    if valid {
        Ok(())
    } else {
        Err(StoreError::Rejected(format!("`{key}` is not a valid blob key")))
    }
}

/// Blobs as files under a folder, written through a temporary file and a rename.
#[derive(Debug, Clone)]
pub struct FileBlobStore {
    root: Arc<PathBuf>,
}

impl FileBlobStore {
    pub fn new(root: impl AsRef<Path>) -> FileBlobStore {
        FileBlobStore {
            root: Arc::new(root.as_ref().to_path_buf()),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

fn io_error(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Internal(format!("{}: {error}", path.display()))
}

fn blocking_error(error: tokio::task::JoinError) -> StoreError {
    StoreError::Internal(error.to_string())
}

#[async_trait]
impl BlobStore for FileBlobStore {
    async fn put(&self, key: &str, _content_type: &str, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .map_err(blocking_error)?
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    async fn read_prefix(&self, key: &str, length: usize) -> Result<Option<Bytes>, StoreError> {
        use std::io::Read as _;
        let path = self.path(key)?;
        tokio::task::spawn_blocking(move || {
            let file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_error(&path, e)),
            };
            let mut prefix = Vec::with_capacity(length.min(1 << 20));
            file.take(length as u64)
                .read_to_end(&mut prefix)
                .map_err(|e| io_error(&path, e))?;
            Ok(Some(Bytes::from(prefix)))
        })
        .await
        .map_err(blocking_error)?
    }

    async fn info(&self, key: &str) -> Result<Option<BlobInfo>, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::metadata(&path).await {
            Ok(meta) => Ok(Some(BlobInfo { size: meta.len() })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    async fn delete_folder(&self, folder: &str, limit: usize) -> Result<usize, StoreError> {
        let path = self.path(folder)?;
        tokio::task::spawn_blocking(move || delete_files(&path, limit.max(1)))
            .await
            .map_err(blocking_error)?
    }
}

/// Removes up to `limit` files under `folder`; once none is left, the folder too.
fn delete_files(folder: &Path, limit: usize) -> Result<usize, StoreError> {
    let mut files = Vec::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(current) = folders.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(&current, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&current, e))?;
            let kind = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
            if kind.is_dir() {
                folders.push(entry.path());
            } else if files.len() < limit {
                files.push(entry.path());
            }
        }
    }
    for file in &files {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(file, e)),
        }
    }
    if files.len() < limit {
        match std::fs::remove_dir_all(folder) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(folder, e)),
        }
    }
    Ok(files.len())
}

/// A crash leaves the old file or the new one, never half of one. The temporary file is
/// unique per write, so concurrent writers of one key never share one.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write as _;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let folder = path
        .parent()
        .ok_or_else(|| StoreError::Internal("blob path has no folder".into()))?;
    std::fs::create_dir_all(folder).map_err(|e| io_error(folder, e))?;
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("blob");
    let temporary = folder.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&temporary, path));
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        io_error(path, e)
    })
}

/// Blobs in memory, for tests and `spacectl serve --store memory`.
#[derive(Debug, Default, Clone)]
pub struct MemoryBlobStore {
    blobs: Arc<Mutex<BTreeMap<String, Bytes>>>,
}

impl MemoryBlobStore {
    fn blobs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Bytes>> {
        self.blobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, _content_type: &str, bytes: Bytes) -> Result<(), StoreError> {
        check_key(key)?;
        self.blobs().insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self.blobs().get(key).cloned())
    }

    async fn read_prefix(&self, key: &str, length: usize) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .blobs()
            .get(key)
            .map(|bytes| bytes.slice(..length.min(bytes.len()))))
    }

    async fn info(&self, key: &str) -> Result<Option<BlobInfo>, StoreError> {
        Ok(self.blobs().get(key).map(|bytes| BlobInfo {
            size: bytes.len() as u64,
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.blobs().remove(key);
        Ok(())
    }

    async fn delete_folder(&self, folder: &str, limit: usize) -> Result<usize, StoreError> {
        check_key(folder)?;
        let prefix = format!("{folder}/");
        let mut blobs = self.blobs();
        let doomed: Vec<String> = blobs
            .range(prefix.clone()..)
            .map(|(key, _)| key)
            .take_while(|key| key.starts_with(&prefix))
            .take(limit.max(1))
            .cloned()
            .collect();
        for key in &doomed {
            blobs.remove(key);
        }
        Ok(doomed.len())
    }
}

/// S3's limit on the keys of one DeleteObjects (and the most one listing returns).
const S3_DELETE_BATCH: usize = 1000;

/// Blobs as objects of one S3 bucket. Uploads and downloads of any size can go straight
/// to S3 through presigned URLs.
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    client: aws_sdk_s3::Client,
    bucket: Arc<str>,
}

impl S3BlobStore {
    /// A store on `bucket` with the SDK configuration given. With a custom endpoint
    /// (`AWS_ENDPOINT_URL`, e.g. a local S3 stand-in) it addresses buckets by path, since
    /// a bucket name cannot be a subdomain of an IP address.
    pub fn new(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> S3BlobStore {
        let s3_config = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(config.endpoint_url().is_some())
            .build();
        S3BlobStore {
            client: aws_sdk_s3::Client::from_conf(s3_config),
            bucket: Arc::from(bucket.into()),
        }
    }

    /// A store with the SDK's standard configuration (environment, profile, role).
    pub async fn from_env(bucket: impl Into<String>) -> S3BlobStore {
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        S3BlobStore::new(&config, bucket)
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists. For local servers and tests; in AWS the
    /// infrastructure code owns the bucket.
    pub async fn create_bucket(&self) -> Result<(), StoreError> {
        match self.client.create_bucket().bucket(self.bucket.as_ref()).send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("CreateBucket", error)?;
                if error.is_bucket_already_owned_by_you() || error.is_bucket_already_exists() {
                    Ok(())
                } else {
                    Err(unexpected_service_error("CreateBucket", &error))
                }
            }
        }
    }

    async fn get_object(&self, key: &str, range: Option<String>) -> Result<Option<Bytes>, StoreError> {
        check_key(key)?;
        let response = self
            .client
            .get_object()
            .bucket(self.bucket.as_ref())
            .key(key)
            .set_range(range)
            .send()
            .await;
        let output = match response {
            Ok(output) => output,
            Err(error) => {
                let error = service_error("GetObject", error)?;
                return if error.is_no_such_key() {
                    Ok(None)
                } else {
                    Err(unexpected_service_error("GetObject", &error))
                };
            }
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|e| StoreError::unavailable(format!("GetObject body: {e}")))?;
        Ok(Some(body.into_bytes()))
    }
}

fn presigning(expires_in: Duration) -> Result<aws_sdk_s3::presigning::PresigningConfig, StoreError> {
    aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in)
        .map_err(|e| StoreError::Rejected(format!("presigned URL lifetime: {e}")))
}

fn presigned(request: &aws_sdk_s3::presigning::PresignedRequest) -> PresignedRequest {
    PresignedRequest {
        method: request.method().to_owned(),
        url: request.uri().to_owned(),
        headers: request
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect(),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, content_type: &str, bytes: Bytes) -> Result<(), StoreError> {
        check_key(key)?;
        let response = self
            .client
            .put_object()
            .bucket(self.bucket.as_ref())
            .key(key)
            .content_type(content_type)
            .body(bytes.into())
            .send()
            .await;
        match response {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("PutObject", error)?;
                Err(unexpected_service_error("PutObject", &error))
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        self.get_object(key, None).await
    }

    async fn read_prefix(&self, key: &str, length: usize) -> Result<Option<Bytes>, StoreError> {
        // S3 refuses a range on an empty object; an empty blob's prefix is itself.
        match self.info(key).await? {
            None => Ok(None),
            Some(BlobInfo { size: 0 }) => Ok(Some(Bytes::new())),
            Some(_) if length == 0 => Ok(Some(Bytes::new())),
            Some(_) => {
                let range = format!("bytes=0-{}", length - 1);
                let bytes = self.get_object(key, Some(range)).await?;
                Ok(bytes.map(|b| b.slice(..length.min(b.len()))))
            }
        }
    }

    async fn info(&self, key: &str) -> Result<Option<BlobInfo>, StoreError> {
        check_key(key)?;
        let response = self
            .client
            .head_object()
            .bucket(self.bucket.as_ref())
            .key(key)
            .send()
            .await;
        match response {
            Ok(output) => Ok(Some(BlobInfo {
                size: output.content_length().unwrap_or(0).max(0) as u64,
            })),
            Err(error) => {
                let error = service_error("HeadObject", error)?;
                if error.is_not_found() {
                    Ok(None)
                } else {
                    Err(unexpected_service_error("HeadObject", &error))
                }
            }
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        let response = self
            .client
            .delete_object()
            .bucket(self.bucket.as_ref())
            .key(key)
            .send()
            .await;
        match response {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("DeleteObject", error)?;
                Err(unexpected_service_error("DeleteObject", &error))
            }
        }
    }

    /// Lists the folder's object versions and delete markers (a versioned bucket keeps a
    /// deleted object's bytes as a noncurrent version) and deletes each by version id.
    async fn delete_folder(&self, folder: &str, limit: usize) -> Result<usize, StoreError> {
        use aws_sdk_s3::types::{Delete, ObjectIdentifier};

        check_key(folder)?;
        let listed = self
            .client
            .list_object_versions()
            .bucket(self.bucket.as_ref())
            .prefix(format!("{folder}/"))
            .max_keys(i32::try_from(limit.clamp(1, S3_DELETE_BATCH)).unwrap_or(1000))
            .send()
            .await;
        let listed = match listed {
            Ok(output) => output,
            Err(error) => {
                let error = service_error("ListObjectVersions", error)?;
                return Err(unexpected_service_error("ListObjectVersions", &error));
            }
        };
        let versions = listed
            .versions()
            .iter()
            .map(|version| (version.key(), version.version_id()))
            .chain(
                listed
                    .delete_markers()
                    .iter()
                    .map(|marker| (marker.key(), marker.version_id())),
            );
        let mut objects = Vec::new();
        for (key, version) in versions {
            let Some(key) = key else { continue };
            let object = ObjectIdentifier::builder()
                .key(key)
                .set_version_id(version.map(str::to_owned))
                .build()
                .map_err(|e| StoreError::Internal(format!("building DeleteObjects: {e}")))?;
            objects.push(object);
        }
        if objects.is_empty() {
            return Ok(0);
        }
        let count = objects.len();
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| StoreError::Internal(format!("building DeleteObjects: {e}")))?;
        let deleted = self
            .client
            .delete_objects()
            .bucket(self.bucket.as_ref())
            .delete(delete)
            .send()
            .await;
        match deleted {
            Ok(output) => match output.errors().first() {
                None => Ok(count),
                Some(failed) => Err(StoreError::unavailable(format!(
                    "DeleteObjects refused {} of {count} under {folder}/: {} {}",
                    output.errors().len(),
                    failed.code().unwrap_or_default(),
                    failed.message().unwrap_or_default()
                ))),
            },
            Err(error) => {
                let error = service_error("DeleteObjects", error)?;
                Err(unexpected_service_error("DeleteObjects", &error))
            }
        }
    }

    async fn presign_put(
        &self,
        key: &str,
        content_type: &str,
        expires_in: Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        check_key(key)?;
        let request = self
            .client
            .put_object()
            .bucket(self.bucket.as_ref())
            .key(key)
            .content_type(content_type)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| StoreError::Internal(format!("presigning PutObject: {e}")))?;
        Ok(Some(presigned(&request)))
    }

    async fn presign_get(
        &self,
        key: &str,
        headers: &DownloadHeaders,
        expires_in: Duration,
    ) -> Result<Option<PresignedRequest>, StoreError> {
        check_key(key)?;
        let request = self
            .client
            .get_object()
            .bucket(self.bucket.as_ref())
            .key(key)
            .response_content_type(&headers.content_type)
            .response_content_disposition(&headers.content_disposition)
            .presigned(presigning(expires_in)?)
            .await
            .map_err(|e| StoreError::Internal(format!("presigning GetObject: {e}")))?;
        Ok(Some(presigned(&request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn round_trip(store: &dyn BlobStore) {
        let key = "spc_1/media/med_1";
        assert_eq!(store.get(key).await.unwrap(), None);
        assert_eq!(store.info(key).await.unwrap(), None);
        store
            .put(key, "text/plain", Bytes::from_static(b"hello world"))
            .await
            .unwrap();
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some(&b"hello world"[..]));
        assert_eq!(store.read_prefix(key, 5).await.unwrap().as_deref(), Some(&b"hello"[..]));
        assert_eq!(
            store.read_prefix(key, 500).await.unwrap().as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(store.info(key).await.unwrap(), Some(BlobInfo { size: 11 }));
        store.put(key, "text/plain", Bytes::from_static(b"bye")).await.unwrap();
        assert_eq!(store.get(key).await.unwrap().as_deref(), Some(&b"bye"[..]));
        store.delete(key).await.unwrap();
        store.delete(key).await.unwrap();
        assert_eq!(store.get(key).await.unwrap(), None);

        // A folder empties in steps; its neighbours stay.
        for n in 0..5 {
            let key = format!("spc_1/media/sub/med_{n}");
            store.put(&key, "text/plain", Bytes::from_static(b"x")).await.unwrap();
        }
        store
            .put("spc_1/media/med_top", "text/plain", Bytes::from_static(b"x"))
            .await
            .unwrap();
        store
            .put("spc_10/media/med_1", "text/plain", Bytes::from_static(b"y"))
            .await
            .unwrap();
        assert_eq!(store.delete_folder("spc_1", 4).await.unwrap(), 4);
        assert_eq!(store.delete_folder("spc_1", 4).await.unwrap(), 2);
        assert_eq!(store.delete_folder("spc_1", 4).await.unwrap(), 0);
        assert_eq!(store.get("spc_1/media/med_top").await.unwrap(), None);
        assert_eq!(
            store.get("spc_10/media/med_1").await.unwrap().as_deref(),
            Some(&b"y"[..])
        );
        store.delete("spc_10/media/med_1").await.unwrap();
        for bad in ["", "../x", "a//b", "a/./b", "/abs", "a\\b", "a b"] {
            assert!(
                store.put(bad, "text/plain", Bytes::new()).await.is_err(),
                "{bad:?} accepted"
            );
        }
    }

    #[tokio::test]
    async fn memory_round_trip() {
        round_trip(&MemoryBlobStore::default()).await;
    }

    #[tokio::test]
    async fn file_round_trip() {
        let folder = tempfile::tempdir().unwrap();
        let store = FileBlobStore::new(folder.path());
        round_trip(&store).await;
        assert!(
            store
                .presign_put("a", "text/plain", Duration::from_secs(60))
                .await
                .unwrap()
                .is_none()
        );
    }

    /// Against S3 (moto) when `scripts/with-moto.sh` provides an endpoint.
    #[tokio::test]
    async fn s3_round_trip() {
        if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
            eprintln!("skipped: no AWS_ENDPOINT_URL (run through scripts/with-moto.sh)");
            return;
        }
        let bucket = format!("blob-test-{}", std::process::id());
        let store = S3BlobStore::from_env(bucket).await;
        store.create_bucket().await.unwrap();
        store.create_bucket().await.unwrap();
        round_trip(&store).await;
        let put = store
            .presign_put("k", "image/png", Duration::from_secs(60))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(put.method, "PUT");
        assert!(put.url.contains("/k?"), "{}", put.url);
    }
}
