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
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

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
        self.root.join(digest(std::iter::once(self.python.as_str()).chain(sorted)))
    }

    pub fn is_ready(&self, requirements: &[&str]) -> bool {
        self.location(requirements).join(READY_MARKER).is_file()
    }

    /// The environment for `requirements`, built first if it is missing.
    pub fn ensure(&self, requirements: &[&str], progress: &dyn Progress) -> Result<PythonEnv, EnvError> {
        let dir = self.location(requirements);
        self.ensure_at(&dir, progress, |env| {
            self.create_venv(env, progress)?;
            let count = requirements.len();
            progress.step(&format!("installing {count} packages with {}", self.installer()));
            let args: Vec<String> = requirements.iter().map(|r| r.to_string()).collect();
            self.install(env, &args, progress)?;
            fs::write(env.dir.join("requirements.txt"), requirements.join("\n") + "\n")
                .map_err(io("writing requirements.txt"))
        })
    }

    /// An environment holding everything `base` holds, then each step of
    /// `steps` installed over it in order (a step is installer arguments: a
    /// requirement, a wheel path, `-r FILE`, `--index-url URL PKG`). A step
    /// that fails is recorded with the installer's message and changes
    /// nothing; later steps still run. Cached by `base` and the steps, so
    /// equal sets share one environment. A base package a step needs in
    /// another version is replaced in the overlay, not in `base`.
    pub fn ensure_overlay(
        &self,
        base: &PythonEnv,
        steps: &[Vec<String>],
        progress: &dyn Progress,
    ) -> Result<Overlay, EnvError> {
        if steps.is_empty() {
            return Ok(Overlay { env: base.clone(), outcomes: Vec::new() });
        }
        let dir = self.overlay_dir(base, steps);
        let env = self.ensure_at(&dir, progress, |env| {
            self.create_venv(env, progress)?;
            progress.step(&format!("copying the {} base packages", base.dir.display()));
            let freeze = base.freeze(self.uv.as_deref())?;
            self.install(env, &["-r".to_string(), freeze.to_string_lossy().to_string()], progress)?;
            let mut outcomes = Vec::new();
            for step in steps {
                progress.step(&format!("installing {}", step.join(" ")));
                let outcome = match self.install(env, step, progress) {
                    Ok(log) => StepOutcome { step: step.clone(), error: None, log },
                    Err(e) => StepOutcome { step: step.clone(), error: Some(e.to_string()), log: String::new() },
                };
                outcomes.push(outcome);
            }
            write_outcomes(&env.dir, &outcomes)
        })?;
        let outcomes = read_outcomes(&env.dir)?;
        Ok(Overlay { env, outcomes })
    }

    /// The overlay of `steps` over `base` if it is built already.
    pub fn built_overlay(&self, base: &PythonEnv, steps: &[Vec<String>]) -> Option<Overlay> {
        if steps.is_empty() {
            return Some(Overlay { env: base.clone(), outcomes: Vec::new() });
        }
        let dir = self.overlay_dir(base, steps);
        if !dir.join(READY_MARKER).is_file() {
            return None;
        }
        let outcomes = read_outcomes(&dir).ok()?;
        Some(Overlay { env: PythonEnv { dir }, outcomes })
    }

    fn overlay_dir(&self, base: &PythonEnv, steps: &[Vec<String>]) -> PathBuf {
        let key = std::iter::once(base.dir.to_string_lossy().to_string())
            .chain(steps.iter().map(|step| step.join("\u{1f}")))
            .collect::<Vec<_>>();
        self.root.join(format!("overlay-{}", digest(key.iter().map(String::as_str))))
    }

    /// Builds at `dir` under a file lock unless it is ready; `build` fills a
    /// fresh directory and the ready marker is written after it succeeds.
    fn ensure_at(
        &self,
        dir: &Path,
        progress: &dyn Progress,
        build: impl FnOnce(&PythonEnv) -> Result<(), EnvError>,
    ) -> Result<PythonEnv, EnvError> {
        let env = PythonEnv { dir: dir.to_path_buf() };
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
            fs::remove_dir_all(dir).map_err(io(format!("removing partial {}", dir.display())))?;
        }
        build(&env)?;
        fs::write(dir.join(READY_MARKER), b"").map_err(io("writing the ready marker"))?;
        progress.step(&format!("environment ready at {}", dir.display()));
        Ok(env)
    }

    fn create_venv(&self, env: &PythonEnv, progress: &dyn Progress) -> Result<(), EnvError> {
        let dir = env.dir.to_string_lossy().to_string();
        progress.step(&format!("creating a virtual environment in {dir}"));
        match &self.uv {
            Some(uv) => {
                run(Command::new(uv).args(["venv", "--quiet", "--python", &self.python, &dir]), "uv venv", None)
            }
            None => run(Command::new(&self.python).args(["-m", "venv", &dir]), "python -m venv", None),
        }
        .map(drop)
    }

    /// Installs `args` into `env`; returns the installer's report (what it
    /// resolved, downloaded, installed), each line also sent to `progress`.
    fn install(&self, env: &PythonEnv, args: &[String], progress: &dyn Progress) -> Result<String, EnvError> {
        let python = env.python().to_string_lossy().to_string();
        match &self.uv {
            Some(uv) => run(
                Command::new(uv).args(["pip", "install", "--python", &python]).args(args),
                "uv pip install",
                Some(progress),
            ),
            None => run(
                Command::new(&python).args(["-m", "pip", "install", "--disable-pip-version-check"]).args(args),
                "pip install",
                Some(progress),
            ),
        }
    }
}

/// What one step of an overlay did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StepOutcome {
    pub step: Vec<String>,
    /// The installer's message when the step failed.
    pub error: Option<String>,
    /// The installer's report when it succeeded.
    pub log: String,
}

/// An environment over a base, with what each of its steps did.
#[derive(Debug, Clone)]
pub struct Overlay {
    pub env: PythonEnv,
    pub outcomes: Vec<StepOutcome>,
}

impl Overlay {
    /// The first step that failed, if one did.
    pub fn failure(&self) -> Option<&StepOutcome> {
        self.outcomes.iter().find(|o| o.error.is_some())
    }
}

const OUTCOMES: &str = "tarn-steps.json";

fn write_outcomes(dir: &Path, outcomes: &[StepOutcome]) -> Result<(), EnvError> {
    let text = serde_json::to_string_pretty(outcomes)
        .map_err(|e| EnvError::Step { step: "recording the install steps".into(), detail: e.to_string() })?;
    fs::write(dir.join(OUTCOMES), text).map_err(io("writing the install steps"))
}

fn read_outcomes(dir: &Path) -> Result<Vec<StepOutcome>, EnvError> {
    let text = fs::read_to_string(dir.join(OUTCOMES)).map_err(io("reading the install steps"))?;
    serde_json::from_str(&text)
        .map_err(|e| EnvError::Step { step: "reading the install steps".into(), detail: e.to_string() })
}

/// A short hex digest of `parts`, one per line.
fn digest<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part.as_bytes());
    }
    hasher.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl PythonEnv {
    /// The exact versions installed, as a requirements file (written the
    /// first time it is asked for), which overlays start from.
    pub fn freeze(&self, uv: Option<&Path>) -> Result<PathBuf, EnvError> {
        let path = self.dir.join("tarn-freeze.txt");
        if path.is_file() {
            return Ok(path);
        }
        let python = self.python().to_string_lossy().to_string();
        let out = match uv {
            Some(uv) => Command::new(uv).args(["pip", "freeze", "--python", &python]).output(),
            None => Command::new(&python).args(["-m", "pip", "freeze", "--disable-pip-version-check"]).output(),
        }
        .map_err(io("running pip freeze"))?;
        if !out.status.success() {
            let detail = String::from_utf8_lossy(&out.stderr).to_string();
            return Err(EnvError::Step { step: "pip freeze".into(), detail });
        }
        let staged = self.dir.join("tarn-freeze.txt.partial");
        fs::write(&staged, &out.stdout).map_err(io("writing the freeze"))?;
        fs::rename(&staged, &path).map_err(io("writing the freeze"))?;
        Ok(path)
    }
}

/// Runs an installer step; with `progress`, each line it reports is passed
/// on as it comes and the report is returned.
fn run(cmd: &mut Command, step: &str, progress: Option<&dyn Progress>) -> Result<String, EnvError> {
    use std::io::{BufRead, BufReader};
    // uv may otherwise try to download an interpreter, which cannot work offline.
    // tarn's own RUST_LOG would turn on uv's debug lines (uv is Rust too).
    cmd.env("UV_PYTHON_DOWNLOADS", "never")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(io(format!("running {step}")))?;
    // pip reports on stdout, uv on stderr: read stdout on a thread.
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            let _ = std::io::Read::read_to_string(&mut out, &mut text);
        }
        text
    });
    let mut report = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(progress) = progress {
                progress.step(line.trim_end());
            }
            report.push_str(&line);
            report.push('\n');
        }
    }
    let status = child.wait().map_err(io(format!("waiting for {step}")))?;
    let stdout = reader.join().unwrap_or_default();
    if let Some(progress) = progress {
        stdout.lines().for_each(|l| progress.step(l));
    }
    report.push_str(&stdout);
    if status.success() {
        return Ok(report);
    }
    let detail = crate::process::last_lines(&report, 20);
    Err(EnvError::Step { step: step.to_string(), detail: format!("{detail} ({status})") })
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
