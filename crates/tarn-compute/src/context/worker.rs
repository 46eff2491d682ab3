//! One Python worker process (`python/tarn/kernel.py`) and the JSON-lines
//! conversation with it: a request line on its stdin, one reply line on its
//! stdout. The worker stops when its stdin closes; SIGINT interrupts the
//! command it runs.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::ComputeError;
use crate::process;

/// The worker, its `dbutils`, and the pipeline analysis with its `dlt`
/// module, shipped inside the binary.
pub const KERNEL: &str = include_str!("../../../../python/tarn/kernel.py");
pub const DBUTILS: &str = include_str!("../../../../python/tarn/dbutils.py");
pub const PIPELINE: &str = include_str!("../../../../python/tarn/pipeline.py");
pub const DLT: &str = include_str!("../../../../python/tarn/dlt.py");

/// Environment variables a worker must not inherit: the context sets its own
/// workspace, token and Spark endpoint, and tarn's storage credentials would
/// let user code read the whole bucket past the catalog's grants.
pub(crate) const SCRUBBED_ENV_PREFIXES: &[&str] = &["DATABRICKS_", "SPARK_REMOTE", "MLFLOW_", "AWS_"];

/// How a worker ended, in words for a command's error.
#[derive(Debug, Clone)]
pub struct WorkerExit(pub String);

pub struct Worker {
    pub pid: u32,
    pub log_file: PathBuf,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    /// Starts a worker and waits until it has imported what commands need.
    pub async fn spawn(python: &Path, kernel: &Path, log_file: PathBuf) -> Result<Self, ComputeError> {
        if let Some(dir) = log_file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| worker_error(format!("creating {}: {e}", dir.display())))?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_file)
            .map_err(|e| worker_error(format!("opening {}: {e}", log_file.display())))?;
        let mut cmd = Command::new(python);
        cmd.arg("-u")
            .arg(kernel)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .env("MALLOC_ARENA_MAX", "2")
            .kill_on_drop(true);
        process::scrub_env(&mut cmd, SCRUBBED_ENV_PREFIXES);
        let mut child = cmd.spawn().map_err(|e| worker_error(format!("starting {}: {e}", python.display())))?;
        let pid = child.id().ok_or_else(|| worker_error("the Python worker exited at once".into()))?;
        let stdin = child.stdin.take().ok_or_else(|| worker_error("worker stdin is not captured".into()))?;
        let stdout = child.stdout.take().ok_or_else(|| worker_error("worker stdout is not captured".into()))?;
        let mut worker = Self { pid, log_file, child, stdin, stdout: BufReader::new(stdout).lines() };
        match worker.read().await {
            Ok(ready) if ready.get("ready").and_then(Value::as_bool) == Some(true) => Ok(worker),
            Ok(other) => Err(worker.failed(&format!("unexpected first line {other}"))),
            Err(exit) => Err(worker.failed(&exit.0)),
        }
    }

    fn failed(&self, what: &str) -> ComputeError {
        let tail = process::last_lines(&std::fs::read_to_string(&self.log_file).unwrap_or_default(), 15);
        worker_error(format!("the Python worker did not start: {what}; log ({}):\n{tail}", self.log_file.display()))
    }

    /// Sends one request and reads its reply.
    pub async fn request(&mut self, request: &Value) -> Result<Value, WorkerExit> {
        let mut line = request.to_string();
        line.push('\n');
        if self.stdin.write_all(line.as_bytes()).await.is_err() || self.stdin.flush().await.is_err() {
            return Err(self.exit().await);
        }
        self.read().await
    }

    async fn read(&mut self) -> Result<Value, WorkerExit> {
        match self.stdout.next_line().await {
            Ok(Some(line)) => serde_json::from_str(&line)
                .map_err(|e| WorkerExit(format!("the Python worker answered something unreadable: {e}"))),
            Ok(None) | Err(_) => Err(self.exit().await),
        }
    }

    /// Waits for the process to end and says how it ended.
    async fn exit(&mut self) -> WorkerExit {
        match self.child.wait().await {
            Ok(status) => WorkerExit(describe_exit(status)),
            Err(e) => WorkerExit(format!("the Python worker is gone ({e})")),
        }
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(libc::SIGKILL) => {
            "the Python worker was killed (SIGKILL: stopped from outside, or out of memory)".to_string()
        }
        Some(sig) => format!("the Python worker was killed by signal {sig}"),
        None => format!("the Python worker exited ({status})"),
    }
}

fn worker_error(message: String) -> ComputeError {
    ComputeError::Engine(message)
}
