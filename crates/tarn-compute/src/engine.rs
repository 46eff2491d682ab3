//! The engine process: one Spark Connect server per running cluster (Sail,
//! or Apache Spark through `spark-submit`), launched by a small Python
//! program from the cluster's Python environment.
//!
//! [`launch`] starts the process and returns only once the engine has
//! answered a Spark Connect request. [`Engine::supervise`] hands the process
//! to a task that reports an unexpected exit and performs an orderly stop.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use spark_connect_proto::spark_connect_service_client::SparkConnectServiceClient;
use spark_connect_proto::{ConfigRequest, UserContext, config_request};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::ComputeError;
use crate::backend::Backend;
use crate::process;

/// The launcher script, shipped inside the binary.
pub const LAUNCHER: &str = include_str!("../../../python/tarn/engine.py");

/// Environment variables that would redirect Sail's catalog away from what
/// tarn configures (Sail reads options from `UNITY_`, `UC_`, `DATABRICKS_`);
/// tarn sets the ones it means through [`EngineSpec::env`].
const SCRUBBED_ENV_PREFIXES: &[&str] = &["UNITY_", "UC_", "DATABRICKS_", "SAIL_", "SPARK_REMOTE"];

#[derive(Clone)]
pub struct EngineSpec {
    pub cluster_id: String,
    pub backend: Backend,
    pub parallelism: u32,
    pub python: PathBuf,
    pub launcher: PathBuf,
    pub log_file: PathBuf,
    pub start_timeout: Duration,
    /// Set in the engine's environment after the scrub (catalog wiring).
    pub env: Vec<(String, String)>,
}

/// Names the environment's keys only: its values hold the catalog token and,
/// with an object-store root, the storage credentials.
impl std::fmt::Debug for EngineSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let env: Vec<&str> = self.env.iter().map(|(key, _)| key.as_str()).collect();
        f.debug_struct("EngineSpec")
            .field("cluster_id", &self.cluster_id)
            .field("backend", &self.backend)
            .field("parallelism", &self.parallelism)
            .field("python", &self.python)
            .field("launcher", &self.launcher)
            .field("log_file", &self.log_file)
            .field("start_timeout", &self.start_timeout)
            .field("env", &env)
            .finish()
    }
}

/// A started engine that answered Spark Connect, not yet supervised.
pub struct Engine {
    pub backend: Backend,
    pub pid: u32,
    pub start_ticks: i64,
    pub port: u16,
    child: Child,
    /// What the launcher reports after the port (a Spark server's executors).
    reports: mpsc::UnboundedReceiver<Report>,
}

/// A line the launcher prints after its port: the executors a Spark server
/// holds changed (dynamic allocation added or released some).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct Report {
    pub workers: i64,
    pub previous: i64,
}

/// A supervised engine: stop it, or learn of its death through the callback
/// given to [`Engine::supervise`].
pub struct EngineHandle {
    pub backend: Backend,
    pub pid: u32,
    pub start_ticks: i64,
    pub port: u16,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EngineHandle {
    pub fn url(&self) -> String {
        format!("sc://127.0.0.1:{}", self.port)
    }

    /// Stops the engine and waits until the process is gone.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// Sail reserves the catalog name `system` for its own tables, so tarn's
/// `system` catalog is mounted under this name and statements naming
/// `system.compute` or `system.access` are rewritten to it (see
/// `tarn_gateway::rewrite_sql_text`).
pub const SYSTEM_CATALOG_MOUNT: &str = "tarn_system";

/// What an engine needs to resolve `catalog.schema.table` through tarn's
/// Unity Catalog API: each catalog mounted under its own name (`system` as
/// [`SYSTEM_CATALOG_MOUNT`], and `hive_metastore` as `main`), authenticated
/// with `token`.
pub fn catalog_env(api_url: &str, token: &str, catalogs: &[String]) -> Vec<(String, String)> {
    let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
    let uri = format!("{}/api/2.1/unity-catalog", api_url.trim_end_matches('/'));
    let mounts = catalogs
        .iter()
        .map(|c| if c == "system" { (SYSTEM_CATALOG_MOUNT, "system") } else { (c.as_str(), c.as_str()) })
        .chain(std::iter::once(("hive_metastore", "main")))
        .map(|(name, target)| {
            format!(
                "{{name={}, type=\"unity\", uri={}, default_catalog={}, token={}}}",
                quote(name),
                quote(&uri),
                quote(target),
                quote(token)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        ("SAIL_CATALOG__LIST".into(), format!("[{mounts}]")),
        ("SAIL_CATALOG__DEFAULT_CATALOG".into(), "main".into()),
        ("UNITY_ALLOW_HTTP_URL".into(), "true".into()),
    ]
}

fn log_tail(path: &PathBuf) -> String {
    process::last_lines(&std::fs::read_to_string(path).unwrap_or_default(), 15)
}

fn engine_error(spec: &EngineSpec, what: &str) -> ComputeError {
    let tail = log_tail(&spec.log_file);
    if tail.is_empty() {
        ComputeError::Engine(what.to_string())
    } else {
        ComputeError::Engine(format!("{what}; engine log ({}):\n{tail}", spec.log_file.display()))
    }
}

fn command(spec: &EngineSpec, log: &std::fs::File) -> Result<Command, ComputeError> {
    let stderr = log.try_clone().map_err(|e| ComputeError::Engine(format!("engine log: {e}")))?;
    // No PR_SET_PDEATHSIG: it fires when the spawning *thread* exits, and
    // tokio's threads come and go. The launcher stops when its stdin closes,
    // which the kernel does for us however tarn ends.
    let mut cmd = Command::new(&spec.python);
    cmd.arg("-u")
        .arg(&spec.launcher)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true);
    process::scrub_env(&mut cmd, SCRUBBED_ENV_PREFIXES);
    cmd.env("SAIL_EXECUTION__DEFAULT_PARALLELISM", spec.parallelism.to_string())
        .env("TARN_CLUSTER_ID", &spec.cluster_id)
        .env("TARN_ENGINE", spec.backend.as_str())
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(cmd)
}

/// Starts the engine and waits until it answers a Spark Connect request.
pub async fn launch(spec: &EngineSpec) -> Result<Engine, ComputeError> {
    if let Some(dir) = spec.log_file.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ComputeError::Engine(format!("creating {}: {e}", dir.display())))?;
    }
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&spec.log_file)
        .map_err(|e| ComputeError::Engine(format!("opening {}: {e}", spec.log_file.display())))?;
    let mut child = command(spec, &log)?
        .spawn()
        .map_err(|e| ComputeError::Engine(format!("starting {}: {e}", spec.python.display())))?;
    let pid = child.id().ok_or_else(|| ComputeError::Engine("engine exited at once".into()))?;
    let start_ticks = process::start_ticks(pid).unwrap_or(0);
    let (report, reports) = mpsc::unbounded_channel();
    let ready = tokio::time::timeout(spec.start_timeout, wait_ready(&mut child, log, report));
    match ready.await {
        Ok(Ok(port)) => Ok(Engine { backend: spec.backend, pid, start_ticks, port, child, reports }),
        Ok(Err(what)) => Err(engine_error(spec, &what)),
        Err(_) => Err(engine_error(
            spec,
            &format!("engine did not answer Spark Connect within {}s", spec.start_timeout.as_secs()),
        )),
    }
}

/// Reads the port the launcher prints, then probes until the engine answers.
/// Later stdout goes to `report` when it is a [`Report`], else to the engine log.
async fn wait_ready(
    child: &mut Child,
    log: std::fs::File,
    report: mpsc::UnboundedSender<Report>,
) -> Result<u16, String> {
    let stdout = child.stdout.take().ok_or("engine stdout is not captured")?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next_line().await.map_err(|e| format!("reading engine stdout: {e}"))?;
    let Some(first) = first else {
        let status = child.wait().await.map_err(|e| e.to_string())?;
        return Err(format!("engine exited before listening ({status})"));
    };
    let port = parse_port(&first).ok_or_else(|| format!("unexpected engine output: {first}"))?;
    let mut log = tokio::fs::File::from_std(log);
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            match serde_json::from_str::<Report>(&line) {
                Ok(reported) => {
                    let _ = report.send(reported);
                }
                Err(_) => {
                    let _ = log.write_all(format!("{line}\n").as_bytes()).await;
                }
            }
        }
    });
    loop {
        match probe(port).await {
            Ok(()) => return Ok(port),
            Err(e) => {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("engine exited while starting ({status}); last probe: {e}"));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn parse_port(line: &str) -> Option<u16> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    u16::try_from(value.get("port")?.as_u64()?).ok()
}

/// A Spark Connect client to the engine listening on `port`.
pub async fn client(port: u16) -> Result<SparkConnectServiceClient<tonic::transport::Channel>, String> {
    SparkConnectServiceClient::connect(format!("http://127.0.0.1:{port}")).await.map_err(|e| e.to_string())
}

/// One Spark Connect request (`Config` get-all) on a fresh session.
pub async fn probe(port: u16) -> Result<(), String> {
    let mut client = client(port).await?;
    let request = ConfigRequest {
        session_id: uuid::Uuid::new_v4().to_string(),
        user_context: Some(UserContext { user_id: "tarn".into(), user_name: "tarn".into(), ..Default::default() }),
        operation: Some(config_request::Operation {
            op_type: Some(config_request::operation::OpType::GetAll(config_request::GetAll { prefix: None })),
        }),
        client_type: Some("tarn-probe".into()),
        ..Default::default()
    };
    client.config(request).await.map_err(|e| e.message().to_string())?;
    Ok(())
}

impl Engine {
    /// Hands the process to a supervising task. `on_death` runs with a
    /// description when the process exits without being asked to;
    /// `on_report` with each [`Report`] until then.
    pub fn supervise(
        self,
        on_death: impl FnOnce(String) + Send + 'static,
        on_report: impl Fn(Report) + Send + 'static,
    ) -> EngineHandle {
        let (stop_tx, stop_rx) = oneshot::channel();
        let Engine { backend, pid, start_ticks, port, mut child, mut reports } = self;
        tokio::spawn(async move {
            while let Some(report) = reports.recv().await {
                on_report(report);
            }
        });
        // `Child::wait` closes stdin, which tells the launcher to stop: keep
        // it here until a stop is asked for.
        let mut stdin = child.stdin.take();
        let task = tokio::spawn(async move {
            tokio::select! {
                status = child.wait() => {
                    let what = match status {
                        Ok(s) => format!("engine process {pid} exited unexpectedly ({s})"),
                        Err(e) => format!("engine process {pid} could not be waited on: {e}"),
                    };
                    on_death(what);
                }
                _ = stop_rx => stop_child(&mut child, stdin.take(), pid).await,
            }
        });
        EngineHandle { backend, pid, start_ticks, port, stop: Some(stop_tx), task }
    }
}

/// Closes stdin (the launcher's signal to stop), then escalates to SIGTERM
/// and SIGKILL if the process lingers.
async fn stop_child(child: &mut Child, stdin: Option<tokio::process::ChildStdin>, pid: u32) {
    if let Some(mut stdin) = stdin {
        let _ = stdin.shutdown().await;
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait()).await.is_ok() {
        return;
    }
    process::terminate(pid);
    if tokio::time::timeout(Duration::from_secs(2), child.wait()).await.is_ok() {
        return;
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_names_the_environment_without_its_values() {
        let spec = super::EngineSpec {
            cluster_id: "c1".into(),
            backend: super::Backend::Sail,
            parallelism: 2,
            python: "/usr/bin/python3".into(),
            launcher: "engine.py".into(),
            log_file: "engine.log".into(),
            start_timeout: std::time::Duration::from_secs(5),
            env: super::catalog_env("http://127.0.0.1:9/", "dapi-secret", &["main".into()])
                .into_iter()
                .chain([("AWS_SECRET_ACCESS_KEY".to_string(), "s3-secret".to_string())])
                .collect(),
        };
        let shown = format!("{spec:?}");
        assert!(shown.contains("AWS_SECRET_ACCESS_KEY") && shown.contains("c1"), "{shown}");
        assert!(!shown.contains("dapi-secret") && !shown.contains("s3-secret"), "{shown}");
    }

    #[test]
    fn catalog_env_mounts_each_catalog() {
        let env = super::catalog_env("http://127.0.0.1:9/", "dapi1", &["main".into(), "sales".into(), "system".into()]);
        let list = &env[0].1;
        assert!(list.contains("{name=\"tarn_system\", type=\"unity\""), "{list}");
        assert!(list.contains("default_catalog=\"system\""), "{list}");
        assert!(list.starts_with("[{name=\"main\", type=\"unity\", uri=\"http://127.0.0.1:9/api/2.1/unity-catalog\""));
        assert!(list.contains("{name=\"sales\""));
        assert!(
            list.contains("{name=\"hive_metastore\"") && list.contains("default_catalog=\"main\", token=\"dapi1\"}]")
        );
    }

    #[test]
    fn port_line() {
        assert_eq!(super::parse_port(r#"{"port": 4242}"#), Some(4242));
        assert_eq!(super::parse_port("Traceback"), None);
    }
}
