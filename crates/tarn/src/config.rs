//! Configuration from the command line and the environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tarn_compute::env::Environments;

#[derive(Debug, Clone)]
pub struct Config {
    pub home: PathBuf,
    /// Root of the managed Python environments (`TARN_ENV_DIR`, default
    /// `$TARN_HOME/envs`); several homes may share one.
    pub env_dir: PathBuf,
    /// The interpreter environments are made from (`TARN_PYTHON`).
    pub python: String,
    /// Length of an autotermination "minute". Tests shorten it with
    /// `TARN_TEST_MINUTE_MS`; nothing else should.
    pub minute: Duration,
    pub engine_start_timeout: Duration,
    /// A command running longer is interrupted (`TARN_COMMAND_TIMEOUT_SECONDS`).
    pub command_timeout: Duration,
    /// Memory a serverless context's commands may take (`TARN_SERVERLESS_MEMORY_MB`).
    pub serverless_memory_mb: u64,
    /// A serverless context idle this long is destroyed (`TARN_SERVERLESS_IDLE_SECONDS`).
    pub serverless_idle: Duration,
    /// Python workers kept ready for new contexts (`TARN_WARM_WORKERS`).
    pub warm_workers: usize,
    /// Job task attempts running at once, over all runs (`TARN_JOB_PARALLEL_TASKS`).
    pub job_parallel_tasks: usize,
    /// Whether a job task's worker, reset, serves the next task on the same
    /// compute (`TARN_JOB_REUSE_WORKERS`, default true).
    pub job_reuse_workers: bool,
    /// Where job notification email goes (`TARN_SMTP_HOST`, `TARN_SMTP_PORT`,
    /// `TARN_SMTP_FROM`, `TARN_SMTP_USERNAME`, `TARN_SMTP_PASSWORD`).
    pub smtp: tarn_jobs::SmtpConfig,
    /// What runtimes hold here: `TARN_ML_DEEP_LEARNING=false` leaves the
    /// deep-learning frameworks out of ML runtimes (default true).
    pub runtime: tarn_compute::runtime::RuntimeOptions,
    /// Model serving: a scale-to-zero entity idle this long stops its workers
    /// (`TARN_SERVING_IDLE_SECONDS`, default 30 minutes); a request waits at
    /// most `TARN_SERVING_REQUEST_TIMEOUT_SECONDS` (default 60, as MLflow's
    /// scoring server); a model loads within `TARN_SERVING_LOAD_TIMEOUT_SECONDS`.
    pub serving_idle: Duration,
    pub serving_request_timeout: Duration,
    pub serving_load_timeout: Duration,
    /// The longest an inference table record waits to be committed
    /// (`TARN_INFERENCE_FLUSH_MS`, default 5000).
    pub inference_flush: Duration,
    /// The estimated cost of a core-hour, for job runs' usage (`TARN_COST_PER_CORE_HOUR`, default 0.10).
    pub cost_per_core_hour: f64,
    /// Whether this serve may run beside others on the same metadata
    /// (`TARN_REPLICA=true`): while another holds the schedulers lease it
    /// serves as a standby replica instead of being refused.
    pub replica: bool,
    /// The compute backend of clusters without a `tarn_backend` tag
    /// (`TARN_DEFAULT_BACKEND`: `sail`, the default, `sail-cluster` or `spark`).
    pub default_backend: String,
    /// The `spark` backend's master (`TARN_SPARK_MASTER`) and distribution
    /// (`TARN_SPARK_HOME`).
    pub spark: tarn_compute::spark::SparkConfig,
    /// Kubernetes for `sail-cluster` workers, when `TARN_SAIL_K8S_IMAGE`
    /// names their image (`TARN_SAIL_K8S_NAMESPACE`, `TARN_SAIL_K8S_KUBECONFIG`,
    /// `TARN_SAIL_K8S_DRIVER_HOST`, `TARN_SAIL_K8S_SERVICE_ACCOUNT`).
    pub sail_kubernetes: Option<tarn_compute::backend::SailKubernetes>,
    /// The metadata store: `TARN_DATABASE_URL=postgres://user:password@host/db`
    /// for PostgreSQL; unset, SQLite in `$TARN_HOME/metadata.db`.
    pub database: Database,
    /// Where tables, volumes, DBFS and MLflow artifacts live:
    /// `TARN_STORAGE_ROOT=s3://bucket/prefix` (credentials and endpoint from
    /// the `AWS_*` variables); unset, under `$TARN_HOME`.
    pub storage_root: Option<String>,
}

/// Where the metadata lives. The URL may hold a password, so it never
/// prints.
#[derive(Clone)]
pub enum Database {
    Sqlite,
    /// The URL, and how many connections serve reads beside the one that
    /// writes (`TARN_DATABASE_READERS`, default 4).
    Postgres(String, usize),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Database::Sqlite => "Sqlite",
            Database::Postgres(..) => "Postgres(..)",
        })
    }
}

impl Database {
    fn from_env() -> Self {
        match std::env::var("TARN_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
            Some(url) => Database::Postgres(url, usize::try_from(env_u64("TARN_DATABASE_READERS", 4)).unwrap_or(4)),
            None => Database::Sqlite,
        }
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    std::env::current_dir().map(|cwd| cwd.join(&path)).unwrap_or(path)
}

/// `python3` resolved through `PATH`, so an environment's hash names the
/// interpreter it was made from.
fn resolve_python(name: &str) -> String {
    if Path::new(name).components().count() > 1 {
        return name.to_string();
    }
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.is_file()))
        .map(|p| p.to_string_lossy().to_string())
        .unwrap_or_else(|| name.to_string())
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| default.to_string())
}

fn sail_kubernetes() -> Option<tarn_compute::backend::SailKubernetes> {
    let image = std::env::var("TARN_SAIL_K8S_IMAGE").ok().filter(|i| !i.is_empty())?;
    Some(tarn_compute::backend::SailKubernetes {
        image,
        namespace: env_or("TARN_SAIL_K8S_NAMESPACE", "default"),
        kubeconfig: std::env::var_os("TARN_SAIL_K8S_KUBECONFIG").filter(|p| !p.is_empty()).map(PathBuf::from),
        driver_host: env_or("TARN_SAIL_K8S_DRIVER_HOST", "127.0.0.1"),
        service_account: env_or("TARN_SAIL_K8S_SERVICE_ACCOUNT", "default"),
    })
}

impl Config {
    pub fn from_env(home: PathBuf) -> Self {
        let home = absolute(home);
        let env_dir =
            std::env::var_os("TARN_ENV_DIR").map(PathBuf::from).map(absolute).unwrap_or_else(|| home.join("envs"));
        let python = resolve_python(&std::env::var("TARN_PYTHON").unwrap_or_else(|_| "python3".into()));
        let minute_ms = env_u64("TARN_TEST_MINUTE_MS", 60_000);
        Self {
            home,
            env_dir,
            python,
            minute: Duration::from_millis(minute_ms),
            engine_start_timeout: Duration::from_secs(120),
            command_timeout: Duration::from_secs(env_u64("TARN_COMMAND_TIMEOUT_SECONDS", 2 * 3600)),
            serverless_memory_mb: env_u64("TARN_SERVERLESS_MEMORY_MB", 4096),
            serverless_idle: Duration::from_secs(env_u64("TARN_SERVERLESS_IDLE_SECONDS", 30 * 60)),
            warm_workers: usize::try_from(env_u64("TARN_WARM_WORKERS", 1)).unwrap_or(1),
            job_parallel_tasks: usize::try_from(env_u64("TARN_JOB_PARALLEL_TASKS", 8)).unwrap_or(8),
            job_reuse_workers: std::env::var("TARN_JOB_REUSE_WORKERS").map_or(true, |v| v != "false" && v != "0"),
            replica: std::env::var("TARN_REPLICA").is_ok_and(|v| v == "true" || v == "1"),
            runtime: tarn_compute::runtime::RuntimeOptions {
                deep_learning: std::env::var("TARN_ML_DEEP_LEARNING").map_or(true, |v| v != "false" && v != "0"),
            },
            serving_idle: Duration::from_secs(env_u64("TARN_SERVING_IDLE_SECONDS", 30 * 60)),
            serving_request_timeout: Duration::from_secs(env_u64("TARN_SERVING_REQUEST_TIMEOUT_SECONDS", 60)),
            serving_load_timeout: Duration::from_secs(env_u64("TARN_SERVING_LOAD_TIMEOUT_SECONDS", 600)),
            inference_flush: Duration::from_millis(env_u64("TARN_INFERENCE_FLUSH_MS", 5000)),
            cost_per_core_hour: std::env::var("TARN_COST_PER_CORE_HOUR")
                .ok()
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|r| r.is_finite() && *r >= 0.0)
                .unwrap_or(0.10),
            default_backend: std::env::var("TARN_DEFAULT_BACKEND").unwrap_or_else(|_| "sail".into()),
            spark: tarn_compute::spark::SparkConfig {
                master: std::env::var("TARN_SPARK_MASTER").ok().filter(|m| !m.is_empty()),
                home: std::env::var_os("TARN_SPARK_HOME").filter(|h| !h.is_empty()).map(PathBuf::from).map(absolute),
            },
            sail_kubernetes: sail_kubernetes(),
            database: Database::from_env(),
            storage_root: std::env::var("TARN_STORAGE_ROOT").ok().filter(|r| !r.trim().is_empty()),
            smtp: tarn_jobs::SmtpConfig {
                host: std::env::var("TARN_SMTP_HOST").ok().filter(|h| !h.is_empty()),
                port: u16::try_from(env_u64("TARN_SMTP_PORT", 25)).unwrap_or(25),
                from: std::env::var("TARN_SMTP_FROM").unwrap_or_else(|_| "tarn <tarn@localhost>".into()),
                username: std::env::var("TARN_SMTP_USERNAME").ok(),
                password: std::env::var("TARN_SMTP_PASSWORD").ok(),
            },
        }
    }

    /// Whether MLflow calls without a token are served (as the admin), as a
    /// local `mlflow server` serves them: by default only on loopback;
    /// `TARN_MLFLOW_ANONYMOUS=true|false` decides otherwise.
    pub fn mlflow_anonymous(&self, loopback: bool) -> bool {
        match std::env::var("TARN_MLFLOW_ANONYMOUS").ok().as_deref() {
            Some("true" | "1") => true,
            Some("false" | "0") => false,
            _ => loopback,
        }
    }

    pub fn environments(&self) -> Environments {
        Environments::new(self.env_dir.clone(), self.python.clone())
    }

    pub fn store_path(&self) -> PathBuf {
        self.home.join("metadata.db")
    }

    pub fn open_store(&self) -> Result<tarn_store::Store, String> {
        std::fs::create_dir_all(&self.home).map_err(|e| format!("creating {}: {e}", self.home.display()))?;
        match &self.database {
            Database::Sqlite => tarn_store::Store::open(&self.store_path()).map_err(|e| e.to_string()),
            Database::Postgres(url, readers) => tarn_store::Store::connect(url, *readers).map_err(|e| e.to_string()),
        }
    }
}

/// `tarn serve`'s TLS options (docs/tls.md): HTTPS and Spark Connect over
/// TLS on the same ports as plain HTTP and Spark Connect.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Accept TLS on the API and Spark Connect ports (plain connections
    /// too); without --tls-cert, a self-signed certificate for localhost is
    /// made once and kept in $TARN_HOME/tls.
    #[arg(long, env = "TARN_TLS")]
    pub tls: bool,
    /// The certificate chain to serve, PEM (implies --tls).
    #[arg(long, env = "TARN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key, PEM.
    #[arg(long, env = "TARN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn enabled(&self) -> bool {
        self.tls || self.tls_cert.is_some()
    }
}
