//! Path confinement: every path a client names is resolved under a root
//! directory and refused if it could lead anywhere else.
//!
//! A client path is split on `/`; empty segments are skipped, and `.`, `..`,
//! NUL bytes and tarn's own staging names are refused outright. The segments
//! are then joined under the root, and the deepest part of the result that
//! exists is canonicalized: if it lies outside the root (a symbolic link
//! pointing out), or cannot be canonicalized (a dangling link), the path is
//! refused. This runs before every operation, so a link planted later is
//! caught the next time it is crossed. (A link swapped in between the check
//! and the operation is not; tarn's trees are written only through tarn.)

use std::path::{Path, PathBuf};

use crate::staged::STAGING_PREFIX;
use crate::{FilesError, Result};

/// A directory that client paths are confined to. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// Canonical, so containment is a prefix test on canonical paths.
    dir: PathBuf,
}

impl Root {
    /// Creates `dir` if needed and confines paths to it.
    pub fn open(dir: &Path) -> Result<Root> {
        std::fs::create_dir_all(dir).map_err(|e| FilesError::io(format!("creating {}", dir.display()), e))?;
        let dir = dir.canonicalize().map_err(|e| FilesError::io(format!("resolving {}", dir.display()), e))?;
        Ok(Root { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The local path of `rel` (segments joined by `/`, as [`segments`]
    /// accepts them) under this root. `shown` names the path in errors.
    pub fn resolve(&self, rel: &str, shown: &str) -> Result<PathBuf> {
        let mut path = self.dir.clone();
        for segment in segments(rel, shown)? {
            path.push(segment);
        }
        self.check(&path, shown)?;
        Ok(path)
    }

    /// Refuses `path` unless its deepest existing ancestor (itself included)
    /// canonicalizes to somewhere under the root.
    fn check(&self, path: &Path, shown: &str) -> Result<()> {
        let mut existing = path;
        while std::fs::symlink_metadata(existing).is_err() {
            match existing.parent() {
                Some(parent) => existing = parent,
                None => return Err(FilesError::Escapes { path: shown.to_string() }),
            }
        }
        match existing.canonicalize() {
            Ok(real) if real.starts_with(&self.dir) => Ok(()),
            _ => Err(FilesError::Escapes { path: shown.to_string() }),
        }
    }
}

/// The segments of a relative client path. Empty segments (doubled or
/// trailing slashes) are skipped; `.`, `..`, NUL and names tarn uses for
/// its own staging files are refused. `shown` names the path in errors.
pub fn segments<'a>(rel: &'a str, shown: &str) -> Result<Vec<&'a str>> {
    let invalid = |reason| FilesError::InvalidPath { path: shown.to_string(), reason };
    if rel.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    let mut out = Vec::new();
    for segment in rel.split('/').filter(|s| !s.is_empty()) {
        match segment {
            "." | ".." => return Err(invalid("'.' and '..' segments are not allowed")),
            s if s.starts_with(STAGING_PREFIX) => {
                return Err(invalid("names starting with .tarn-staging- are reserved"));
            }
            crate::object::DIR_MARKER => return Err(invalid("the name .tarn-dir is reserved")),
            s => out.push(s),
        }
    }
    Ok(out)
}

/// `path` without leading or doubled slashes, after [`segments`] checked it.
pub fn normalize(path: &str, shown: &str) -> Result<String> {
    Ok(segments(path, shown)?.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdir::TempDir;

    fn refused(root: &Root, rel: &str) -> FilesError {
        root.resolve(rel, rel).expect_err(rel)
    }

    #[test]
    fn dot_dot_nul_and_staging_names_are_refused() {
        let tmp = TempDir::new("segments");
        let root = Root::open(&tmp.0.join("root")).unwrap();
        for rel in ["..", "a/../../etc", "a/./b", "a\0b", ".tarn-staging-x"] {
            assert!(matches!(refused(&root, rel), FilesError::InvalidPath { .. }), "{rel}");
        }
        assert_eq!(root.resolve("a//b/", "x").unwrap(), root.dir().join("a").join("b"));
        assert_eq!(root.resolve("", "x").unwrap(), root.dir());
    }

    #[test]
    fn absolute_paths_stay_under_the_root() {
        let tmp = TempDir::new("absolute");
        let root = Root::open(&tmp.0.join("root")).unwrap();
        // A leading slash is an empty segment, not an escape to the host's /.
        assert_eq!(root.resolve("/etc/passwd", "x").unwrap(), root.dir().join("etc").join("passwd"));
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let tmp = TempDir::new("symlinks");
        let root = Root::open(&tmp.0.join("root")).unwrap();
        let outside = tmp.0.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(&outside, root.dir().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.dir().join("secret-link")).unwrap();
        std::os::unix::fs::symlink(tmp.0.join("nowhere"), root.dir().join("dangling")).unwrap();
        for rel in ["out", "out/secret", "out/new/file", "secret-link", "dangling", "dangling/x"] {
            assert!(matches!(refused(&root, rel), FilesError::Escapes { .. }), "{rel}");
        }
        // A link that stays inside the root is followed.
        std::fs::create_dir_all(root.dir().join("real")).unwrap();
        std::os::unix::fs::symlink(root.dir().join("real"), root.dir().join("alias")).unwrap();
        assert!(root.resolve("alias/file", "x").is_ok());
    }
}
