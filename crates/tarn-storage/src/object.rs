//! An object-store root and the synchronous operations tarn's file trees
//! need on it. Keys are given relative to the root (`dbfs/tmp/a.csv`).

use std::io::Write;
use std::ops::Range;
use std::path::{Path as LocalPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::client::SpawnedReqwestConnector;
use object_store::path::Path;
use object_store::{
    Error, ListResult, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart,
};

use crate::StorageError;
use crate::bridge::Bridge;

/// Files up to this size go up in one PUT (atomic, and refused when the key
/// exists if asked); larger ones in 8 MiB parts.
const SINGLE_PUT: u64 = 8 * 1024 * 1024;
const PART: usize = 8 * 1024 * 1024;

pub type Result<T> = std::result::Result<T, Error>;

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

pub(crate) fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// An object-store root: its store client, the prefix every key starts
/// with, and what engines need to reach it.
pub struct ObjectRoot {
    scheme: &'static str,
    bucket: String,
    /// No slashes at either end; may be empty.
    prefix: String,
    store: Arc<dyn ObjectStore>,
    bridge: Bridge,
    engine_env: Vec<(String, String)>,
    scratch: PathBuf,
}

impl std::fmt::Debug for ObjectRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.engine_env.iter().map(|(key, _)| key.as_str()).collect();
        write!(f, "{} (credentials from {keys:?})", self.url(""))
    }
}

impl ObjectRoot {
    pub(crate) fn connect(
        bucket: String,
        prefix: String,
        aws: Vec<(String, String)>,
        scratch: PathBuf,
    ) -> std::result::Result<ObjectRoot, StorageError> {
        let bridge = Bridge::new().map_err(|e| StorageError::Client(format!("starting its runtime: {e}")))?;
        // The builder's Debug prints the secret key: it is never formatted.
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_http_connector(SpawnedReqwestConnector::new(bridge.handle()))
            .build()
            .map_err(|e| StorageError::Client(e.to_string()))?;
        let mut engine_env = aws;
        if !engine_env.iter().any(|(key, _)| key == "AWS_REGION" || key == "AWS_DEFAULT_REGION") {
            // object_store's default, said out loud for engines whose clients
            // insist on a region.
            engine_env.push(("AWS_REGION".into(), "us-east-1".into()));
        }
        Ok(ObjectRoot { scheme: "s3", bucket, prefix, store: Arc::new(store), bridge, engine_env, scratch })
    }

    pub(crate) fn in_memory(prefix: &str, scratch: PathBuf) -> std::result::Result<ObjectRoot, StorageError> {
        let bridge = Bridge::new().map_err(|e| StorageError::Client(format!("starting its runtime: {e}")))?;
        let store = Arc::new(object_store::memory::InMemory::new());
        let prefix = prefix.trim_matches('/').to_string();
        Ok(ObjectRoot {
            scheme: "memory",
            bucket: String::new(),
            prefix,
            store,
            bridge,
            engine_env: Vec::new(),
            scratch,
        })
    }

    /// The store client, for async code (delta-rs). Its requests run on
    /// the bridge's runtime whoever polls them.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    pub(crate) fn engine_env(&self) -> &[(String, String)] {
        &self.engine_env
    }

    /// A fresh local path for a spooled upload or a staged download.
    pub fn scratch_file(&self, kind: &str) -> PathBuf {
        crate::scratch_file(&self.scratch, kind)
    }

    /// The store's URL of `rel` (`s3://bucket/prefix/rel`); `""` is the root.
    pub fn url(&self, rel: &str) -> String {
        let key = self.key_text(rel);
        if key.is_empty() {
            format!("{}://{}", self.scheme, self.bucket)
        } else {
            format!("{}://{}/{key}", self.scheme, self.bucket)
        }
    }

    /// `url` back to a key relative to the root, if it is under the root.
    pub fn rel_of_url(&self, url: &str) -> Option<String> {
        let rest = url.strip_prefix(&format!("{}://{}", self.scheme, self.bucket))?;
        let key = rest.trim_matches('/');
        if self.prefix.is_empty() {
            return Some(key.to_string());
        }
        if key == self.prefix {
            return Some(String::new());
        }
        key.strip_prefix(&format!("{}/", self.prefix)).map(str::to_string)
    }

    fn key_text(&self, rel: &str) -> String {
        let rel = rel.trim_matches('/');
        match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rel}", self.prefix),
        }
    }

    /// The store's key of `rel`.
    pub fn key(&self, rel: &str) -> Path {
        Path::from(self.key_text(rel))
    }

    /// A key the store returned, relative to the root.
    pub fn rel_of_key(&self, key: &Path) -> Option<String> {
        let key = key.as_ref();
        if self.prefix.is_empty() {
            return Some(key.to_string());
        }
        key.strip_prefix(&format!("{}/", self.prefix)).map(str::to_string)
    }

    /// The last segment of a key the store returned.
    pub fn name_of(key: &Path) -> String {
        key.filename().unwrap_or_default().to_string()
    }

    fn wait<T: Send + 'static>(&self, future: impl Future<Output = Result<T>> + Send + 'static) -> Result<T> {
        self.bridge.wait(future).unwrap_or_else(|| {
            Err(Error::Generic { store: "tarn-storage", source: "the storage task ended without an answer".into() })
        })
    }

    /// The object at `rel`, or `None`.
    pub fn head(&self, rel: &str) -> Result<Option<ObjectMeta>> {
        let (store, key) = (self.store(), self.key(rel));
        match self.wait(async move { store.head(&key).await }) {
            Ok(meta) => Ok(Some(meta)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The objects and sub-prefixes directly under `rel`.
    pub fn list_dir(&self, rel: &str) -> Result<ListResult> {
        let (store, key) = (self.store(), self.key(rel));
        self.wait(async move { store.list_with_delimiter(Some(&key)).await })
    }

    /// Every object under `rel`, at any depth.
    pub fn list_all(&self, rel: &str) -> Result<Vec<ObjectMeta>> {
        let (store, key) = (self.store(), self.key(rel));
        self.wait(async move {
            let mut listed = store.list(Some(&key));
            let mut out = Vec::new();
            while let Some(meta) = listed.next().await {
                out.push(meta?);
            }
            Ok(out)
        })
    }

    /// The bytes of `range` of the object at `rel`.
    pub fn get_range(&self, rel: &str, range: Range<u64>) -> Result<Bytes> {
        let (store, key) = (self.store(), self.key(rel));
        self.wait(async move { store.get_range(&key, range).await })
    }

    /// The whole object at `rel`.
    pub fn get(&self, rel: &str) -> Result<Bytes> {
        let (store, key) = (self.store(), self.key(rel));
        self.wait(async move { store.get(&key).await?.bytes().await })
    }

    /// Copies the object at `rel` into a new file under the scratch
    /// directory, returning the file at its start (already unlinked, so it
    /// goes when closed) and the object's metadata.
    pub fn download(&self, rel: &str) -> Result<(std::fs::File, ObjectMeta)> {
        let (store, key) = (self.store(), self.key(rel));
        let path = crate::scratch_file(&self.scratch, "download");
        let scratch = self.scratch.clone();
        self.wait(async move {
            let local = |e: std::io::Error| Error::Generic { store: "tarn-storage", source: Box::new(e) };
            std::fs::create_dir_all(&scratch).map_err(local)?;
            let got = store.get(&key).await?;
            let meta = got.meta.clone();
            let mut file =
                std::fs::File::options().create_new(true).read(true).write(true).open(&path).map_err(local)?;
            // Unlinked at once: nothing is left behind whatever happens next.
            std::fs::remove_file(&path).map_err(local)?;
            let mut chunks = got.into_stream();
            while let Some(chunk) = chunks.next().await {
                file.write_all(&chunk?).map_err(local)?;
            }
            file.flush().map_err(local)?;
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).map_err(local)?;
            Ok((file, meta))
        })
    }

    /// Puts `bytes` at `rel`; with `create_only`, an existing object makes
    /// it fail with `AlreadyExists` (one conditional PUT).
    pub fn put(&self, rel: &str, bytes: Bytes, create_only: bool) -> Result<()> {
        let (store, key) = (self.store(), self.key(rel));
        let mode = if create_only { PutMode::Create } else { PutMode::Overwrite };
        self.wait(async move {
            store.put_opts(&key, PutPayload::from(bytes), PutOptions { mode, ..Default::default() }).await.map(|_| ())
        })
    }

    /// Uploads the local file `from` to `rel`. Large files go up in parts,
    /// so `create_only` is then checked before the upload, not atomically.
    pub fn upload(&self, rel: &str, from: &LocalPath, create_only: bool) -> Result<u64> {
        let local = |e: std::io::Error| Error::Generic { store: "tarn-storage", source: Box::new(e) };
        let size = std::fs::metadata(from).map_err(local)?.len();
        if size <= SINGLE_PUT {
            let bytes = std::fs::read(from).map_err(local)?;
            self.put(rel, Bytes::from(bytes), create_only)?;
            return Ok(size);
        }
        if create_only && let Some(meta) = self.head(rel)? {
            return Err(Error::AlreadyExists { path: meta.location.to_string(), source: "exists".into() });
        }
        let (store, key, from) = (self.store(), self.key(rel), from.to_path_buf());
        self.wait(async move {
            let mut file = tokio::fs::File::open(&from).await.map_err(local)?;
            let mut upload = WriteMultipart::new_with_chunk_size(store.put_multipart(&key).await?, PART);
            let mut buffer = vec![0; PART];
            loop {
                let read = tokio::io::AsyncReadExt::read(&mut file, &mut buffer).await.map_err(local)?;
                if read == 0 {
                    break;
                }
                upload.wait_for_capacity(4).await?;
                upload.write(&buffer[..read]);
            }
            upload.finish().await.map(|_| size)
        })
    }

    /// Deletes the object at `rel`; a missing object is not an error.
    pub fn delete(&self, rel: &str) -> Result<()> {
        let (store, key) = (self.store(), self.key(rel));
        self.wait(async move {
            match store.delete(&key).await {
                Err(Error::NotFound { .. }) => Ok(()),
                other => other,
            }
        })
    }

    /// Deletes every object under `rel`; returns how many.
    pub fn delete_prefix(&self, rel: &str) -> Result<usize> {
        let (store, key) = (self.store(), self.key(rel));
        self.wait(async move {
            let keys = store.list(Some(&key)).map(|meta| meta.map(|m| m.location)).boxed();
            let mut deleted = store.delete_stream(keys);
            let mut count = 0;
            while let Some(done) = deleted.next().await {
                match done {
                    Ok(_) => count += 1,
                    Err(Error::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(count)
        })
    }

    /// Copies the object at `from` to `to` (both relative to the root).
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        let (store, from, to) = (self.store(), self.key(from), self.key(to));
        self.wait(async move { store.copy(&from, &to).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> ObjectRoot {
        ObjectRoot::in_memory("/team/", std::env::temp_dir().join("tarn-storage-tests")).unwrap()
    }

    #[test]
    fn urls_and_keys_carry_the_prefix() {
        let root = root();
        assert_eq!(root.url("dbfs/a.csv"), "memory:///team/dbfs/a.csv");
        assert_eq!(root.key("dbfs/a.csv").as_ref(), "team/dbfs/a.csv");
        assert_eq!(root.rel_of_url("memory:///team/tables/1/"), Some("tables/1".into()));
        assert_eq!(root.rel_of_url("memory:///teams/x"), None);
    }

    #[test]
    fn objects_round_trip_through_the_bridge() {
        let root = root();
        root.put("dbfs/a.csv", Bytes::from_static(b"id\n1\n"), true).unwrap();
        let again = root.put("dbfs/a.csv", Bytes::from_static(b"v2"), true);
        assert!(matches!(again, Err(Error::AlreadyExists { .. })), "{again:?}");
        assert_eq!(root.get_range("dbfs/a.csv", 3..5).unwrap().as_ref(), b"1\n");
        let big = std::env::temp_dir().join(format!("tarn-storage-big-{}", std::process::id()));
        std::fs::write(&big, vec![7u8; 9 * 1024 * 1024 + 5]).unwrap();
        assert_eq!(root.upload("dbfs/dir/big.bin", &big, false).unwrap(), 9 * 1024 * 1024 + 5);
        let _ = std::fs::remove_file(&big);
        let listed = root.list_dir("dbfs").unwrap();
        assert_eq!(listed.objects.len(), 1);
        assert_eq!(ObjectRoot::name_of(&listed.common_prefixes[0]), "dir");
        let (mut file, meta) = root.download("dbfs/dir/big.bin").unwrap();
        assert_eq!(meta.size, 9 * 1024 * 1024 + 5);
        let mut read = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut read).unwrap();
        assert!(read.len() == 9 * 1024 * 1024 + 5 && read.iter().all(|b| *b == 7));
        assert_eq!(root.delete_prefix("dbfs").unwrap(), 2);
        assert!(root.head("dbfs/a.csv").unwrap().is_none());
    }

    #[test]
    fn works_from_inside_a_tokio_runtime() {
        let root = Arc::new(root());
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let inner = root.clone();
        runtime.block_on(async move { inner.put("x", Bytes::from_static(b"1"), false) }).unwrap();
        assert!(root.head("x").unwrap().is_some());
    }
}
