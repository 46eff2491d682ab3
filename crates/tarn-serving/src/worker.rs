//! One model worker process (`python/tarn/serving.py`) and the framed
//! conversation with it: a JSON header line and a body each way, many
//! requests in flight, matched to their replies by id. The worker ends when
//! its stdin closes, so dropping a [`ModelWorker`] stops it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::oneshot;

/// The worker, shipped inside the binary.
pub const SCRIPT: &str = include_str!("../../../python/tarn/serving.py");

/// A worker's answer to one request, as MLflow's scoring server gives it.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub mimetype: String,
    pub body: Bytes,
}

/// What the worker is asked.
#[derive(Debug, Clone, Copy)]
pub enum Ask {
    Invoke,
    /// Answered once the model is loaded, without a prediction.
    Ping,
}

/// The callers waiting for replies, and whether the worker has gone.
#[derive(Default)]
struct Waiting {
    callers: Mutex<HashMap<u64, oneshot::Sender<Reply>>>,
    gone: AtomicBool,
}

pub struct ModelWorker {
    pub pid: u32,
    /// Whether the worker joins concurrent requests into one `predict`.
    pub batching: bool,
    stdin: tokio::sync::Mutex<ChildStdin>,
    waiting: Arc<Waiting>,
    next_id: AtomicU64,
    _child: Child,
}

/// How a worker is started.
pub struct Launch<'a> {
    pub python: &'a Path,
    pub script: &'a Path,
    pub model_dir: &'a Path,
    pub environment_vars: &'a BTreeMap<String, String>,
    pub log_file: PathBuf,
    pub load_timeout: Duration,
}

/// Variables of tarn's own a worker must not inherit (`AWS_`: tarn's storage
/// credentials; an endpoint that needs its own sets them in its config).
const SCRUBBED_ENV_PREFIXES: &[&str] = &["DATABRICKS_", "MLFLOW_", "TARN_", "SPARK_REMOTE", "AWS_"];

impl ModelWorker {
    /// Starts a worker and waits until it has loaded the model.
    pub async fn spawn(launch: Launch<'_>) -> Result<Self, String> {
        let log = open_log(&launch.log_file)?;
        let mut cmd = Command::new(launch.python);
        cmd.arg("-u")
            .arg(launch.script)
            .arg(launch.model_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .env("MALLOC_ARENA_MAX", "2")
            .kill_on_drop(true);
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if SCRUBBED_ENV_PREFIXES.iter().any(|p| key.starts_with(p)) {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.envs(launch.environment_vars);
        let mut child = cmd.spawn().map_err(|e| format!("starting {}: {e}", launch.python.display()))?;
        let pid = child.id().ok_or("the model worker exited at once")?;
        let stdin = child.stdin.take().ok_or("worker stdin is not captured")?;
        let stdout = child.stdout.take().ok_or("worker stdout is not captured")?;
        let mut stdout = BufReader::new(stdout);
        let hello = tokio::time::timeout(launch.load_timeout, read_line(&mut stdout)).await;
        let hello = match hello {
            Err(_) => return Err(format!("the model did not load within {}s", launch.load_timeout.as_secs())),
            Ok(None) => {
                return Err(format!("the model worker exited while loading the model{}", log_tail(&launch.log_file)));
            }
            Ok(Some(hello)) => hello,
        };
        if hello["ready"] != json!(true) {
            let error = hello["error"].as_str().unwrap_or("unknown error");
            return Err(format!("loading the model failed: {error}{}", log_tail(&launch.log_file)));
        }
        let waiting = Arc::new(Waiting::default());
        tokio::spawn(read_replies(stdout, waiting.clone()));
        Ok(Self {
            pid,
            batching: hello["batching"] == json!(true),
            stdin: tokio::sync::Mutex::new(stdin),
            waiting,
            next_id: AtomicU64::new(1),
            _child: child,
        })
    }

    /// Sends one request and waits for its reply; `None` if the worker is gone.
    pub async fn call(&self, ask: Ask, content_type: &str, body: &[u8], deadline: SystemTime) -> Option<Reply> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.callers.lock().ok()?.insert(id, tx);
        if !self.is_alive() {
            return None;
        }
        let deadline = deadline.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let kind = match ask {
            Ask::Invoke => "invoke",
            Ask::Ping => "ping",
        };
        let header =
            json!({"id": id, "kind": kind, "content_type": content_type, "deadline": deadline, "len": body.len()});
        let mut frame = header.to_string().into_bytes();
        frame.push(b'\n');
        frame.extend_from_slice(body);
        let written = {
            let mut stdin = self.stdin.lock().await;
            stdin.write_all(&frame).await.is_ok() && stdin.flush().await.is_ok()
        };
        if !written {
            self.waiting.callers.lock().ok()?.remove(&id);
            return None;
        }
        rx.await.ok()
    }

    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.waiting.callers.lock().map_or(usize::MAX, |callers| callers.len())
    }

    /// Whether the process still reads requests.
    pub fn is_alive(&self) -> bool {
        !self.waiting.gone.load(Ordering::Relaxed)
    }
}

async fn read_line(stdout: &mut BufReader<ChildStdout>) -> Option<Value> {
    let mut line = String::new();
    match stdout.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => serde_json::from_str(&line).ok(),
    }
}

/// Hands each reply to its caller until the worker's stdout ends; then
/// every caller still waiting learns the worker is gone.
async fn read_replies(mut stdout: BufReader<ChildStdout>, waiting: Arc<Waiting>) {
    while let Some(header) = read_line(&mut stdout).await {
        let len = header["len"].as_u64().unwrap_or(0) as usize;
        let mut body = vec![0u8; len];
        if stdout.read_exact(&mut body).await.is_err() {
            break;
        }
        let reply = Reply {
            status: header["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(500),
            mimetype: header["mimetype"].as_str().unwrap_or("application/json").to_string(),
            body: Bytes::from(body),
        };
        let id = header["id"].as_u64().unwrap_or(0);
        let sender = waiting.callers.lock().ok().and_then(|mut w| w.remove(&id));
        if let Some(sender) = sender {
            let _ = sender.send(reply);
        }
    }
    waiting.gone.store(true, Ordering::Relaxed);
    if let Ok(mut callers) = waiting.callers.lock() {
        callers.clear();
    }
}

fn open_log(path: &Path) -> Result<std::fs::File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("opening {}: {e}", path.display()))
}

/// The end of a worker's log, to quote in an error.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n");
    if tail.is_empty() { String::new() } else { format!("\n{tail}") }
}
