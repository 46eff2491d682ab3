//! DBFS: paths `dbfs:/a/b` or `/a/b` under `$TARN_HOME/dbfs`, and
//! `/Volumes/...` paths in their volumes; streaming writes through handles.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::confine::segments;
use crate::staged::{Overwrite, Staged};
use crate::tree::{Location, Tree};
use crate::volumes::Volumes;
use crate::{FilesError, Limit, Result};

/// The most one `add-block` or `put` may carry (Databricks: 1 MB).
pub const MAX_BLOCK: usize = 1 << 20;
/// The most one `read` may return.
pub const MAX_READ: u64 = 1 << 20;
/// What a `read` without `length` returns at most.
pub const DEFAULT_READ: u64 = 512 << 10;
/// Open streams at once; `create` beyond this is refused.
pub const MAX_STREAMS: usize = 256;
/// A stream nobody wrote to for this long is abandoned (as on Databricks).
const STREAM_IDLE: Duration = Duration::from_secs(600);

struct Stream {
    staged: Staged,
    overwrite: Overwrite,
    touched: Instant,
}

/// The DBFS tree and its open streams.
pub struct Dbfs {
    root: Tree,
    volumes: Volumes,
    streams: Mutex<HashMap<i64, Stream>>,
}

/// Refuses a payload over [`MAX_BLOCK`].
pub fn check_block(len: usize) -> Result<()> {
    if len > MAX_BLOCK {
        return Err(FilesError::TooLarge { limit: Limit::Block, size: len as u64, max: MAX_BLOCK as u64 });
    }
    Ok(())
}

impl Dbfs {
    pub fn new(root: Tree, volumes: Volumes) -> Dbfs {
        Dbfs { root, volumes, streams: Mutex::new(HashMap::new()) }
    }

    fn streams(&self) -> MutexGuard<'_, HashMap<i64, Stream>> {
        // A panic mid-write leaves at worst a stream whose staging file is
        // incomplete; it is never committed unless closed, so go on.
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where an absolute DBFS path is.
    pub fn locate(&self, path: &str) -> Result<Location> {
        let bare = path.strip_prefix("dbfs:").unwrap_or(path);
        if !bare.starts_with('/') {
            return Err(FilesError::InvalidPath { path: path.to_string(), reason: "DBFS paths are absolute" });
        }
        if segments(bare, path)?.first() == Some(&"Volumes") {
            return self.volumes.locate(bare);
        }
        Location::new(self.root.clone(), bare, bare)
    }

    /// Opens a stream that writes `path` when closed; returns its handle.
    pub fn create(&self, path: &str, overwrite: bool) -> Result<i64> {
        let location = self.locate(path)?;
        if !overwrite && location.stat().is_ok() {
            return Err(FilesError::AlreadyExists { path: location.shown().to_string() });
        }
        let staged = location.create_file()?;
        let mut streams = self.streams();
        streams.retain(|_, s| s.touched.elapsed() < STREAM_IDLE);
        if streams.len() >= MAX_STREAMS {
            return Err(FilesError::TooManyStreams(MAX_STREAMS));
        }
        let mut rng = rand::rng();
        let handle = loop {
            // Below 2^53, so JSON clients that read numbers as doubles keep it exact.
            let candidate = rng.random_range(1..(1_i64 << 53));
            if !streams.contains_key(&candidate) {
                break candidate;
            }
        };
        let stream = Stream { staged, overwrite: Overwrite::from_flag(overwrite), touched: Instant::now() };
        streams.insert(handle, stream);
        Ok(handle)
    }

    pub fn add_block(&self, handle: i64, data: &[u8]) -> Result<()> {
        check_block(data.len())?;
        let mut streams = self.streams();
        let stream = streams.get_mut(&handle).ok_or(FilesError::UnknownHandle(handle))?;
        stream.touched = Instant::now();
        stream.staged.write(data)
    }

    /// Closes the stream: its file takes its name now.
    pub fn close(&self, handle: i64) -> Result<()> {
        let stream = self.streams().remove(&handle).ok_or(FilesError::UnknownHandle(handle))?;
        stream.staged.commit(stream.overwrite).map(drop)
    }

    /// Writes a whole file at once (callers check [`check_block`] where the
    /// API limits the payload).
    pub fn put(&self, path: &str, data: &[u8], overwrite: bool) -> Result<()> {
        let location = self.locate(path)?;
        let mut staged = location.create_file()?;
        staged.write(data)?;
        staged.commit(Overwrite::from_flag(overwrite)).map(drop)
    }

    /// Up to `length` bytes (default [`DEFAULT_READ`], at most [`MAX_READ`])
    /// from `offset`.
    pub fn read(&self, path: &str, offset: i64, length: Option<i64>) -> Result<Vec<u8>> {
        let length = length.unwrap_or(DEFAULT_READ as i64);
        let (Ok(offset), Ok(length)) = (u64::try_from(offset), u64::try_from(length)) else {
            return Err(FilesError::InvalidArgument("offset and length must not be negative".into()));
        };
        if length > MAX_READ {
            return Err(FilesError::TooLarge { limit: Limit::Read, size: length, max: MAX_READ });
        }
        self.locate(path)?.read_range(offset, length)
    }

    /// The whole file, for tarn's own readers (a job's Python file, a
    /// wheel, a pipeline's source): the DBFS API's read length limit is
    /// for clients, who page.
    pub fn read_all(&self, path: &str) -> Result<Vec<u8>> {
        self.locate(path)?.read_range(0, u64::MAX)
    }

    /// Moves a file or directory; the destination must not exist.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.locate(from)?.rename(&self.locate(to)?)
    }

    /// Deletes a file, or a directory (its content only with `recursive`).
    /// A path with nothing there is fine.
    pub fn delete(&self, path: &str, recursive: bool) -> Result<()> {
        self.locate(path)?.delete(recursive).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TempDir;
    use std::sync::Arc;
    use tarn_catalog::Catalog;

    fn dbfs(tmp: &TempDir) -> Dbfs {
        let catalog = Catalog::new(Arc::new(tarn_store::Store::open_in_memory().unwrap()), tmp.0.join("lake"));
        Dbfs::new(crate::Root::open(&tmp.0.join("dbfs")).unwrap().into(), Volumes::new(catalog))
    }

    #[test]
    fn streams_write_only_when_closed() {
        let tmp = TempDir::new("dbfs");
        let fs = dbfs(&tmp);
        fs.put("dbfs:/data/a.bin", b"old", true).unwrap();
        let handle = fs.create("/data/a.bin", true).unwrap();
        fs.add_block(handle, &[7; MAX_BLOCK]).unwrap();
        fs.add_block(handle, b"tail").unwrap();
        assert_eq!(fs.read("/data/a.bin", 0, None).unwrap(), b"old");
        assert!(matches!(fs.add_block(handle, &[0; MAX_BLOCK + 1]), Err(FilesError::TooLarge { .. })));
        fs.close(handle).unwrap();
        assert!(matches!(fs.close(handle), Err(FilesError::UnknownHandle(_))));
        let tail = fs.read("/data/a.bin", MAX_BLOCK as i64, Some(100)).unwrap();
        assert_eq!(tail, b"tail");
        assert!(matches!(fs.create("/data/a.bin", false), Err(FilesError::AlreadyExists { .. })));
        assert!(matches!(fs.read("/data/a.bin", 0, Some(2 << 20)), Err(FilesError::TooLarge { .. })));
        assert!(matches!(fs.read("/data", 0, None), Err(FilesError::IsADirectory { .. })));
        assert!(matches!(fs.locate("data/a.bin"), Err(FilesError::InvalidPath { .. })));
        assert!(matches!(fs.delete("/data", false), Err(FilesError::DirectoryNotEmpty { .. })));
        fs.rename("/data", "/moved/data").unwrap();
        assert_eq!(fs.locate("/moved/data/a.bin").unwrap().stat().unwrap().size, MAX_BLOCK as u64 + 4);
        fs.delete("/moved", true).unwrap();
        fs.delete("/moved", true).unwrap();
    }

    #[test]
    fn tarns_own_readers_get_the_whole_file() {
        let tmp = TempDir::new("dbfs-all");
        let fs = dbfs(&tmp);
        let big = vec![7u8; (DEFAULT_READ as usize) * 3];
        fs.put("dbfs:/big.bin", &big, false).unwrap();
        assert_eq!(fs.read("dbfs:/big.bin", 0, None).unwrap().len(), DEFAULT_READ as usize);
        assert_eq!(fs.read_all("dbfs:/big.bin").unwrap(), big);
    }
}
