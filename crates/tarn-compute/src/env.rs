//! Managed Python environments: a virtual environment per requirement set,
//! under a root directory, named by a hash of the interpreter and the
//! requirements, so equal sets share one environment. Built with `uv` when it
//! is on `PATH` (or named by `TARN_UV`), else with `python3 -m venv` and pip.
//!
//! Creation is blocking work (it runs installers); async callers run it on the
//! blocking pool. A file lock per environment keeps two tarn processes from
//! building the same one at once; a marker file written last says it is whole.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

/// What every cluster engine and Python worker runs on.
/// pandas stays below 3 while PySpark 4.2 does not support it.
pub const BASE_RUNTIME: &[&str] = &["pysail==0.7.2", "pyspark-client==4.2.0", "pandas<3", "pyarrow"];

const READY_MARKER: &str = ".tarn-ready";

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{step} failed: {detail}")]
    Step { step: String, detail: String },
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EnvError {
    let context = context.into();
    move |source| EnvError::Io { context, source }
}

/// Receives a line per step of a long build, for a progress display.
pub trait Progress: Send + Sync {
    fn step(&self, message: &str);
}

impl<F: Fn(&str) + Send + Sync> Progress for F {
    fn step(&self, message: &str) {
        self(message)
    }
}

/// A ready environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    pub dir: PathBuf,
}

impl PythonEnv {
    pub fn python(&self) -> PathBuf {
        self.dir.join("bin").join("python")
    }
}

#[derive(Debug, Clone)]
pub struct Environments {
    root: PathBuf,
    python: String,
    uv: Option<PathBuf>,
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

impl Environments {
    /// `python` is the base interpreter new environments are made from.
    pub fn new(root: PathBuf, python: String) -> Self {
        let uv = std::env::var_os("TARN_UV").map(PathBuf::from).or_else(|| find_on_path("uv"));
        Self { root, python, uv }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn installer(&self) -> &'static str {
        if self.uv.is_some() { "uv" } else { "pip" }
    }

    /// Where the environment for `requirements` lives, built or not.
    pub fn location(&self, requirements: &[&str]) -> PathBuf {
        let mut sorted: Vec<&str> = requirements.to_vec();
        sorted.sort_unstable();
        let mut hasher = Sha256::new();
        hasher.update(self.python.as_bytes());
        for r in sorted {
            hasher.update(b"\n");
            hasher.update(r.as_bytes());
        }
        let digest: String = hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect();
        self.root.join(digest)
    }

    pub fn is_ready(&self, requirements: &[&str]) -> bool {
        self.location(requirements).join(READY_MARKER).is_file()
    }

    /// The environment for `requirements`, built first if it is missing.
    pub fn ensure(&self, requirements: &[&str], progress: &dyn Progress) -> Result<PythonEnv, EnvError> {
        let dir = self.location(requirements);
        let env = PythonEnv { dir: dir.clone() };
        if dir.join(READY_MARKER).is_file() {
            return Ok(env);
        }
        fs::create_dir_all(&self.root).map_err(io(format!("creating {}", self.root.display())))?;
        let lock_path = dir.with_extension("lock");
        let lock = File::create(&lock_path).map_err(io(format!("creating {}", lock_path.display())))?;
        progress.step("waiting for another build of this environment");
        lock.lock().map_err(io("locking the environment"))?;
        if dir.join(READY_MARKER).is_file() {
            return Ok(env);
        }
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(format!("removing partial {}", dir.display())))?;
        }
        self.build(&env, requirements, progress)?;
        fs::write(dir.join("requirements.txt"), requirements.join("\n") + "\n")
            .map_err(io("writing requirements.txt"))?;
        fs::write(dir.join(READY_MARKER), b"").map_err(io("writing the ready marker"))?;
        progress.step(&format!("environment ready at {}", dir.display()));
        Ok(env)
    }

    fn build(&self, env: &PythonEnv, requirements: &[&str], progress: &dyn Progress) -> Result<(), EnvError> {
        let dir = env.dir.to_string_lossy().to_string();
        let python = env.python().to_string_lossy().to_string();
        let count = requirements.len();
        match &self.uv {
            Some(uv) => {
                progress.step(&format!("[1/2] creating virtual environment with uv in {dir}"));
                run(Command::new(uv).args(["venv", "--quiet", "--python", &self.python, &dir]), "uv venv")?;
                progress.step(&format!("[2/2] installing {count} packages with uv: {}", requirements.join(" ")));
                run(
                    Command::new(uv).args(["pip", "install", "--quiet", "--python", &python]).args(requirements),
                    "uv pip install",
                )
            }
            None => {
                progress.step(&format!("[1/2] creating virtual environment with {} -m venv in {dir}", self.python));
                run(Command::new(&self.python).args(["-m", "venv", &dir]), "python -m venv")?;
                progress.step(&format!(
                    "[2/2] installing {count} packages with pip (minutes; install uv for seconds): {}",
                    requirements.join(" ")
                ));
                run(
                    Command::new(&python)
                        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                        .args(requirements),
                    "pip install",
                )
            }
        }
    }
}

fn run(cmd: &mut Command, step: &str) -> Result<(), EnvError> {
    // uv may otherwise try to download an interpreter, which cannot work offline.
    cmd.env("UV_PYTHON_DOWNLOADS", "never");
    let out = cmd.output().map_err(io(format!("running {step}")))?;
    if out.status.success() {
        return Ok(());
    }
    let detail = crate::process::last_lines(&String::from_utf8_lossy(&out.stderr), 20);
    Err(EnvError::Step { step: step.to_string(), detail: format!("{detail} ({})", out.status) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_is_keyed_by_requirement_set() {
        let envs = Environments::new(PathBuf::from("/tmp/envs"), "python3".into());
        assert_eq!(envs.location(&["a", "b"]), envs.location(&["b", "a"]));
        assert_ne!(envs.location(&["a"]), envs.location(&["a", "b"]));
        let other = Environments::new(PathBuf::from("/tmp/envs"), "/usr/bin/python3.12".into());
        assert_ne!(envs.location(&["a"]), other.location(&["a"]));
    }

    #[test]
    fn a_failed_build_reports_the_step_and_leaves_no_ready_env() {
        let root = std::env::temp_dir().join(format!("tarn-env-test-{}", std::process::id()));
        let envs = Environments { root: root.clone(), python: "/nonexistent/python3".into(), uv: None };
        let err = envs.ensure(&["x"], &|_: &str| {}).unwrap_err();
        assert!(err.to_string().contains("python -m venv"), "{err}");
        assert!(!envs.is_ready(&["x"]));
        let _ = fs::remove_dir_all(root);
    }
}
