//! Cluster libraries as the Libraries API names them (`pypi`, `whl`,
//! `requirements`, and the kinds this backend cannot install: `jar`,
//! `maven`, `egg`, `cran`), their statuses, and the installer step each
//! becomes in the cluster's overlay environment.

use std::path::PathBuf;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Copies a library file a user names (a volume, DBFS or workspace path) to
/// a local file the installer can read, checked as that user's read;
/// implemented over the file trees by the wiring.
pub trait LibraryFiles: Send + Sync {
    fn local_copy(&self, path: &str) -> Result<String, String>;
}

/// Reads a volume, DBFS or workspace file with the file trees' own checks.
pub type ReadFile = dyn Fn(&str) -> Result<Vec<u8>, String> + Send + Sync;

/// [`LibraryFiles`] that copies each file once, by content, under `dir`
/// (`<digest>/<name>`), so an unchanged file keeps its path and the
/// environments built from it stay cached.
pub struct CopiedFiles {
    read: Box<ReadFile>,
    dir: PathBuf,
}

impl CopiedFiles {
    pub fn new(dir: PathBuf, read: Box<ReadFile>) -> Self {
        Self { read, dir }
    }
}

impl LibraryFiles for CopiedFiles {
    fn local_copy(&self, path: &str) -> Result<String, String> {
        if !is_remote_path(path) {
            return Err(format!("{path} is not in a volume, DBFS or the workspace"));
        }
        let remote = match path.strip_prefix("/dbfs/") {
            Some(rest) => format!("dbfs:/{rest}"),
            None => path.to_string(),
        };
        let bytes = (self.read)(&remote)?;
        let digest: String = Sha256::digest(&bytes).iter().take(8).map(|b| format!("{b:02x}")).collect();
        let name = path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("library");
        let dir = self.dir.join(digest);
        let local = dir.join(name);
        if !local.is_file() {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            // Two tasks may copy the same file at once: each stages its own.
            let staged = dir.join(format!(".{name}.{}.partial", uuid::Uuid::new_v4().simple()));
            std::fs::write(&staged, &bytes).map_err(|e| format!("{}: {e}", staged.display()))?;
            std::fs::rename(&staged, &local).map_err(|e| format!("{}: {e}", local.display()))?;
        }
        Ok(local.to_string_lossy().into_owned())
    }
}

/// Where library files may come from; anything else is the host's own
/// filesystem, which no client may name.
const REMOTE_PREFIXES: &[&str] = &["/Volumes/", "dbfs:/", "/dbfs/", "/Workspace/", "/Users/", "/Repos/", "/Shared/"];

pub fn is_remote_path(path: &str) -> bool {
    REMOTE_PREFIXES.iter().any(|p| path.starts_with(p))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Library {
    Pypi {
        package: String,
        repo: Option<String>,
    },
    Whl(String),
    Requirements(String),
    /// A kind tarn has no installer for (no JVM, no R): shown as FAILED.
    Unsupported {
        kind: String,
        value: Value,
    },
}

/// Installation status, as `libraries/cluster-status` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LibraryStatus {
    Pending,
    Resolving,
    Installing,
    Installed,
    Failed,
    UninstallOnRestart,
}

impl LibraryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Resolving => "RESOLVING",
            Self::Installing => "INSTALLING",
            Self::Installed => "INSTALLED",
            Self::Failed => "FAILED",
            Self::UninstallOnRestart => "UNINSTALL_ON_RESTART",
        }
    }
}

/// A library's status with the messages that explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibraryState {
    pub status: LibraryStatus,
    pub messages: Vec<String>,
}

impl LibraryState {
    pub fn new(status: LibraryStatus) -> Self {
        Self { status, messages: Vec::new() }
    }

    pub fn failed(message: String) -> Self {
        Self { status: LibraryStatus::Failed, messages: vec![message] }
    }
}

/// One library of a cluster and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterLibrary {
    pub library: Value,
    pub state: LibraryState,
}

fn text(v: &Value, field: &str) -> Result<String, String> {
    match v.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
        _ => Err(format!("Library field {field} must be a non-empty string, got {v}")),
    }
}

impl Library {
    /// Reads a library object; exactly one kind must be named.
    pub fn parse(value: &Value) -> Result<Self, String> {
        let fields = value.as_object().ok_or_else(|| format!("A library must be an object, got {value}"))?;
        let kinds: Vec<&String> = fields.keys().collect();
        let [kind] = kinds.as_slice() else {
            return Err(format!(
                "A library names exactly one of pypi, whl, requirements, jar, maven, egg, cran: {value}"
            ));
        };
        let inner = &fields[kind.as_str()];
        let library = match kind.as_str() {
            "pypi" => Self::Pypi {
                package: text(inner, "package")?,
                repo: inner.get("repo").and_then(Value::as_str).filter(|r| !r.is_empty()).map(str::to_string),
            },
            "whl" | "requirements" => {
                let path = inner.as_str().map(str::trim).filter(|p| !p.is_empty());
                let path = path.ok_or_else(|| format!("Library field {kind} must be a non-empty path"))?;
                if !is_remote_path(path) {
                    return Err(format!(
                        "Library path {path} is not in a volume, DBFS or the workspace \
                         (/Volumes/..., dbfs:/..., /Workspace/...)"
                    ));
                }
                if kind.as_str() == "whl" && !path.ends_with(".whl") {
                    return Err(format!("Library path {path} is not a wheel (.whl)"));
                }
                if kind.as_str() == "whl" { Self::Whl(path.to_string()) } else { Self::Requirements(path.to_string()) }
            }
            "jar" | "maven" | "egg" | "cran" => Self::Unsupported { kind: kind.to_string(), value: value.clone() },
            other => return Err(format!("Unknown library type {other}")),
        };
        Ok(library)
    }

    /// The library as the API shows it.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Pypi { package, repo: None } => json!({"pypi": {"package": package}}),
            Self::Pypi { package, repo: Some(repo) } => json!({"pypi": {"package": package, "repo": repo}}),
            Self::Whl(path) => json!({"whl": path}),
            Self::Requirements(path) => json!({"requirements": path}),
            Self::Unsupported { value, .. } => value.clone(),
        }
    }

    /// Its identity: two requests for the same library have the same key.
    pub fn key(&self) -> String {
        self.to_json().to_string()
    }

    /// The installer arguments that install it (files copied locally
    /// through `files`), or why it cannot be installed here.
    pub fn step(&self, files: &dyn LibraryFiles) -> Result<Vec<String>, String> {
        match self {
            Self::Pypi { package, repo: None } => Ok(vec![package.clone()]),
            Self::Pypi { package, repo: Some(repo) } => Ok(vec!["--index-url".into(), repo.clone(), package.clone()]),
            Self::Whl(path) => Ok(vec![files.local_copy(path)?]),
            Self::Requirements(path) => Ok(vec!["-r".into(), files.local_copy(path)?]),
            Self::Unsupported { kind, .. } => Err(format!(
                "{kind} libraries cannot be installed: tarn's engine (Sail) has no JVM and no R; \
                 install Python libraries (pypi, whl, requirements)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoFiles;
    impl LibraryFiles for NoFiles {
        fn local_copy(&self, path: &str) -> Result<String, String> {
            Ok(format!("/local{path}"))
        }
    }

    #[test]
    fn libraries_parse_to_steps_and_keep_their_wire_shape() {
        let cases = [
            (json!({"pypi": {"package": "simplejson==3.8.0"}}), Ok(vec!["simplejson==3.8.0".to_string()])),
            (
                json!({"pypi": {"package": "x", "repo": "https://pypi.example/simple"}}),
                Ok(vec!["--index-url".into(), "https://pypi.example/simple".into(), "x".into()]),
            ),
            (
                json!({"whl": "/Volumes/m/d/v/a-1-py3-none-any.whl"}),
                Ok(vec!["/local/Volumes/m/d/v/a-1-py3-none-any.whl".into()]),
            ),
            (json!({"requirements": "/Workspace/r.txt"}), Ok(vec!["-r".into(), "/local/Workspace/r.txt".into()])),
        ];
        for (value, step) in cases {
            let library = Library::parse(&value).unwrap();
            assert_eq!(library.to_json(), value);
            assert_eq!(library.step(&NoFiles), step);
        }
        let jar = Library::parse(&json!({"jar": "dbfs:/a.jar"})).unwrap();
        assert!(jar.step(&NoFiles).unwrap_err().contains("no JVM"));
    }

    #[test]
    fn files_are_copied_once_by_content() {
        let dir = std::env::temp_dir().join(format!("tarn-libs-{}", std::process::id()));
        let files = CopiedFiles::new(
            dir.clone(),
            Box::new(|p: &str| if p.starts_with("dbfs:/") { Ok(b"wheel".to_vec()) } else { Err(format!("{p}: no")) }),
        );
        let a = files.local_copy("/dbfs/w/a-1-py3-none-any.whl").unwrap();
        assert_eq!(files.local_copy("dbfs:/w/a-1-py3-none-any.whl").unwrap(), a, "same content, same copy");
        assert_eq!(std::fs::read(&a).unwrap(), b"wheel");
        assert!(files.local_copy("/Volumes/m/d/v/x.whl").unwrap_err().contains("no"));
        assert!(files.local_copy("/etc/passwd").is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn tasks_copying_one_file_at_once_all_get_it() {
        for round in 0..20 {
            let dir = std::env::temp_dir().join(format!("tarn-libs-race-{}-{round}", std::process::id()));
            // Every copier reads before any writes, as tasks starting together do.
            let together = std::sync::Arc::new(std::sync::Barrier::new(4));
            let read = move |_: &str| {
                together.wait();
                Ok(b"wheel".to_vec())
            };
            let files = std::sync::Arc::new(CopiedFiles::new(dir.clone(), Box::new(read)));
            let copies: Vec<_> = (0..4)
                .map(|_| {
                    let files = files.clone();
                    std::thread::spawn(move || files.local_copy("/Volumes/m/d/v/w-1-py3-none-any.whl"))
                })
                .collect();
            for copy in copies {
                let local = copy.join().map_err(|_| "a copier panicked").and_then(|r| r.map_err(|_| "a copy failed"));
                assert_eq!(std::fs::read(local.unwrap()).unwrap(), b"wheel");
            }
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    #[test]
    fn bad_libraries_are_refused() {
        for bad in [
            json!({}),
            json!({"pypi": {"package": ""}}),
            json!({"pypi": {"package": "a"}, "whl": "/Volumes/a.whl"}),
            json!({"whl": "/etc/passwd.whl"}),
            json!({"whl": "/tmp/x.whl"}),
            json!({"whl": "/Volumes/m/d/v/not-a-wheel.txt"}),
            json!({"requirements": "relative.txt"}),
            json!({"nuget": "x"}),
        ] {
            assert!(Library::parse(&bad).is_err(), "{bad}");
        }
    }
}
