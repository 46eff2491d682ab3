//! Multipart uploads to the proxied artifact store, as the client does them
//! against a cloud store: it asks for an upload and a URL per part, PUTs
//! each part to its URL, then completes (the parts joined into the artifact
//! in one staged write) or aborts. The upload id is the part URLs'
//! capability, as a presigned URL's signature is, so it is long and random.
//!
//! Parts wait under their own directory, outside the artifact root, so a
//! listing never shows an unfinished upload.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tarn_files::Overwrite;

use crate::{Artifacts, MlflowError, Result};

/// S3's bound, which the client's part count never reaches for sane chunks.
const MAX_PARTS: i64 = 10_000;
const TARGET_FILE: &str = "target";

#[derive(Clone)]
pub struct Uploads {
    dir: PathBuf,
    artifacts: Artifacts,
}

/// A part being written; `finish` makes it visible to `complete`.
pub struct PartWriter {
    file: std::fs::File,
    staging: PathBuf,
    path: PathBuf,
    hash: Sha256,
}

fn hex(hash: Sha256) -> String {
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn io(what: &str, e: std::io::Error) -> MlflowError {
    MlflowError::Io(format!("{what}: {e}"))
}

/// The artifact an upload writes: `file_name`'s last component under `dir`.
fn target_path(dir: &str, file_name: &str) -> Result<String> {
    let name = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    if name.is_empty() || name == ".." || name == "." {
        return Err(MlflowError::InvalidParameter(format!("Invalid file name for the upload: '{file_name}'")));
    }
    let dir = dir.trim_matches('/');
    Ok(if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") })
}

impl PartWriter {
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        self.file.write_all(bytes).map_err(|e| io("writing an upload part", e))
    }

    /// Keeps the part and answers its ETag (the SHA-256 of its bytes).
    pub fn finish(self) -> Result<String> {
        self.file.sync_data().map_err(|e| io("writing an upload part", e))?;
        std::fs::rename(&self.staging, &self.path).map_err(|e| io("keeping an upload part", e))?;
        Ok(hex(self.hash.clone()))
    }
}

impl Drop for PartWriter {
    fn drop(&mut self) {
        // A part cut short leaves nothing; a finished one was renamed away.
        let _ = std::fs::remove_file(&self.staging);
    }
}

impl Uploads {
    pub fn open(dir: &Path, artifacts: Artifacts) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io(&format!("creating {}", dir.display()), e))?;
        Ok(Self { dir: dir.to_path_buf(), artifacts })
    }

    /// Starts an upload of `file_name` into the artifact directory `dir`;
    /// answers its id.
    pub fn create(&self, dir: &str, file_name: &str, num_parts: i64) -> Result<String> {
        if !(1..=MAX_PARTS).contains(&num_parts) {
            return Err(MlflowError::InvalidParameter(format!(
                "num_parts must be between 1 and {MAX_PARTS}, got {num_parts}"
            )));
        }
        let target = target_path(dir, file_name)?;
        self.artifacts.location(&target)?;
        let id = tarn_core::id::random_hex(24);
        let upload = self.dir.join(&id);
        std::fs::create_dir(&upload).map_err(|e| io("starting an upload", e))?;
        std::fs::write(upload.join(TARGET_FILE), &target).map_err(|e| io("starting an upload", e))?;
        Ok(id)
    }

    /// The directory of a live upload; ids are hex, so never a path.
    fn upload(&self, upload_id: &str) -> Result<PathBuf> {
        let missing = || MlflowError::NotFound(format!("Upload '{upload_id}' does not exist"));
        if upload_id.is_empty() || !upload_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(missing());
        }
        let dir = self.dir.join(upload_id);
        if !dir.join(TARGET_FILE).is_file() {
            return Err(missing());
        }
        Ok(dir)
    }

    /// The upload's directory once `dir`/`file_name` names its artifact.
    fn matching(&self, upload_id: &str, dir: &str, file_name: &str) -> Result<PathBuf> {
        let upload = self.upload(upload_id)?;
        let target = std::fs::read_to_string(upload.join(TARGET_FILE)).map_err(|e| io("reading an upload", e))?;
        let asked = target_path(dir, file_name)?;
        if target != asked {
            return Err(MlflowError::InvalidParameter(format!(
                "Upload '{upload_id}' writes '{target}', not '{asked}'"
            )));
        }
        Ok(upload)
    }

    pub fn begin_part(&self, upload_id: &str, part_number: i64) -> Result<PartWriter> {
        if !(1..=MAX_PARTS).contains(&part_number) {
            return Err(MlflowError::InvalidParameter(format!("Invalid part number {part_number}")));
        }
        let upload = self.upload(upload_id)?;
        let staging = upload.join(format!("{part_number}.partial-{}", tarn_core::id::random_hex(4)));
        let file = std::fs::File::create(&staging).map_err(|e| io("writing an upload part", e))?;
        Ok(PartWriter { file, staging, path: upload.join(format!("{part_number}.part")), hash: Sha256::new() })
    }

    /// Joins the parts, in part-number order, into the artifact. Each part
    /// must be there with the ETag its upload answered.
    pub fn complete(&self, upload_id: &str, dir: &str, file_name: &str, parts: &[(i64, String)]) -> Result<()> {
        let upload = self.matching(upload_id, dir, file_name)?;
        if parts.is_empty() {
            return Err(MlflowError::InvalidParameter("A multipart upload needs at least one part".into()));
        }
        let mut parts = parts.to_vec();
        parts.sort_by_key(|(n, _)| *n);
        let mut staged =
            self.artifacts.location(&target_path(dir, file_name)?)?.create_file().map_err(crate::files_error)?;
        let mut buffer = vec![0; 1 << 20];
        for (number, etag) in &parts {
            let mut part = std::fs::File::open(upload.join(format!("{number}.part")))
                .map_err(|_| MlflowError::InvalidParameter(format!("Part {number} was not uploaded")))?;
            let mut hash = Sha256::new();
            loop {
                let n = part.read(&mut buffer).map_err(|e| io("reading an upload part", e))?;
                if n == 0 {
                    break;
                }
                hash.update(&buffer[..n]);
                staged.write(&buffer[..n]).map_err(crate::files_error)?;
            }
            if !etag.is_empty() && etag.trim_matches('"') != hex(hash) {
                return Err(MlflowError::InvalidParameter(format!("Part {number} does not match its ETag")));
            }
        }
        staged.commit(Overwrite::Allow).map_err(crate::files_error)?;
        std::fs::remove_dir_all(&upload).map_err(|e| io("clearing a finished upload", e))
    }

    pub fn abort(&self, upload_id: &str, dir: &str, file_name: &str) -> Result<()> {
        let upload = self.matching(upload_id, dir, file_name)?;
        std::fs::remove_dir_all(&upload).map_err(|e| io("clearing an aborted upload", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_join_in_order_and_nothing_shows_before_completion() {
        let home = std::env::temp_dir().join(format!("tarn-mpu-{}", tarn_core::id::random_hex(6)));
        let artifacts = Artifacts::open_dir(&home.join("artifacts")).unwrap();
        let uploads = Uploads::open(&home.join("uploads"), artifacts.clone()).unwrap();
        let id = uploads.create("1/run/artifacts", "/tmp/local/big.bin", 2).unwrap();
        let mut etags = Vec::new();
        for (n, bytes) in [(2, b"world".as_slice()), (1, b"hello ".as_slice())] {
            let mut part = uploads.begin_part(&id, n).unwrap();
            part.write(bytes).unwrap();
            etags.push((n, part.finish().unwrap()));
        }
        assert!(artifacts.list("1/run/artifacts").unwrap().is_empty());
        let wrong = uploads.complete(&id, "1/run/artifacts", "other.bin", &etags);
        assert!(matches!(wrong, Err(MlflowError::InvalidParameter(_))));
        uploads.complete(&id, "1/run/artifacts", "big.bin", &etags).unwrap();
        let (mut file, _) = artifacts.location("1/run/artifacts/big.bin").unwrap().open_file().unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        assert_eq!(text, "hello world");
        assert!(matches!(uploads.begin_part(&id, 1), Err(MlflowError::NotFound(_))));
        assert!(matches!(uploads.begin_part("../x", 1), Err(MlflowError::NotFound(_))));
        assert!(matches!(uploads.create("../../etc", "passwd", 1), Err(MlflowError::InvalidParameter(_))));
        std::fs::remove_dir_all(home).unwrap();
    }
}
