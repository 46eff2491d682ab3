//! `tarn serve` and `tarn env sync`.

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tarn_api::AppState;
use tarn_catalog::Catalog;
use tarn_compute::context::{ContextConfig, Contexts};
use tarn_compute::libraries::{CopiedFiles, LibraryFiles};
use tarn_compute::node_types::Host;
use tarn_compute::runtime::{self, Runtime};
use tarn_compute::{CatalogDirectory, ClusterManager, ComputeConfig};
use tarn_files::Files;
use tarn_gateway::{Gateway, Hooks, PathResolver};

use crate::config::{Config, TlsArgs};
use crate::leader::{Leader, advertised};
use crate::lease::SchedulerLease;
use crate::token::{ADMIN_USER, bootstrap_admin};

/// How much longer than an engine start a statement waits for the warehouse
/// (the Python environment may be built first).
const WAREHOUSE_START_SLACK: Duration = Duration::from_secs(300);
/// How long one git command (a clone, a fetch) may take before it is stopped.
const GIT_TIMEOUT: Duration = Duration::from_secs(300);

/// The catalogs engines mount, read from the catalog at each engine start.
struct Catalogs(Catalog);

impl CatalogDirectory for Catalogs {
    fn catalog_names(&self) -> Vec<String> {
        self.0.catalog_names().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "listing catalogs for an engine; mounting main only");
            vec![tarn_catalog::DEFAULT_CATALOG.to_string()]
        })
    }
}

/// Volume paths in engine requests, resolved through the catalog, and
/// pipelines' event log tables under `$TARN_HOME/lake/pipelines`.
struct VolumePaths {
    files: Files,
    pipeline_tables: tarn_pipelines::table_dir::TableDir,
}

impl PathResolver for VolumePaths {
    fn event_log(&self, pipeline_id: &str) -> Result<String, String> {
        let dir = tarn_pipelines::event_table::event_log_dir(&self.pipeline_tables, pipeline_id)
            .filter(|dir| dir.has_log())
            .ok_or_else(|| format!("event_log('{pipeline_id}'): no pipeline with this id has run an update"))?;
        Ok(dir.engine_path())
    }

    fn resolve(&self, path: &str) -> Result<String, String> {
        let location = self.files.volumes().locate(path).map_err(|e| e.to_string())?;
        // A trailing slash means a directory to Spark readers; keep it.
        let slash = if path.ends_with('/') { "/" } else { "" };
        match location.local_path() {
            Ok(local) => Ok(format!("{}{slash}", local.display())),
            Err(_) => Ok(format!("{}{slash}", location.url().map_err(|e| e.to_string())?)),
        }
    }
}

/// Library files (wheels, requirements) read from volumes, DBFS and the
/// workspace through the file trees, copied under `$TARN_HOME/libraries`.
fn library_files(config: &Config, files: &Files) -> Arc<dyn LibraryFiles> {
    let files = files.clone();
    let read = move |path: &str| -> Result<Vec<u8>, String> {
        if path.starts_with("/Volumes/") || path.starts_with("dbfs:") {
            return files.dbfs().read_all(path).map_err(|e| format!("{path}: {e}"));
        }
        let exported = files.workspace().export(path, tarn_files::Format::Raw).map_err(|e| format!("{path}: {e}"))?;
        Ok(exported.content)
    };
    Arc::new(CopiedFiles::new(config.home.join("libraries"), Box::new(read)))
}

fn context_config(config: &Config, api: std::net::SocketAddr) -> ContextConfig {
    ContextConfig {
        home: config.home.clone(),
        api_url: format!("http://{api}"),
        warm_workers: config.warm_workers,
        command_timeout: config.command_timeout,
        serverless_memory_mb: config.serverless_memory_mb,
        serverless_idle: config.serverless_idle,
        serverless_start_timeout: config.engine_start_timeout + WAREHOUSE_START_SLACK,
        output_limit: 1 << 20,
        row_limit: 1000,
    }
}

/// Serving endpoints over the workspace registry (deployed again when this
/// serve leads).
fn serving_endpoints(
    config: &Config,
    store: Arc<tarn_store::Store>,
    catalog: &Catalog,
    tracking: &tarn_mlflow::Tracking,
    artifacts: &tarn_mlflow::Artifacts,
    secrets: Arc<tarn_identity::Secrets>,
) -> Result<tarn_serving::Endpoints, String> {
    let dir = config.home.join("serving");
    let models = tarn_serving::Registry { tracking: tracking.clone(), artifacts: artifacts.clone() };
    let ctx = tarn_serving::EntityContext {
        script: dir.join("tarn_serving_worker.py"),
        dir,
        models: Arc::new(models),
        secrets,
        envs: config.environments(),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_timeout: config.serving_load_timeout,
        request_timeout: config.serving_request_timeout,
    };
    let timing = tarn_serving::Timing { idle_timeout: config.serving_idle, inference_flush: config.inference_flush };
    let endpoints = tarn_serving::Endpoints::new(store, catalog.clone(), ctx, timing).map_err(|e| e.to_string())?;
    Ok(endpoints)
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())
}

pub fn run(config: Config, host: &str, port: u16, gateway_port: u16, tls: &TlsArgs) -> Result<(), String> {
    let listening = Listening::new(&config, tls)?;
    runtime()?.block_on(serve(config, host, port, gateway_port, listening))
}

/// How the API and the gateway accept connections: plain, or TLS besides
/// plain on the same ports (docs/tls.md).
struct Listening {
    api: tarn_tls::Acceptor,
    gateway: tarn_tls::Acceptor,
    /// The certificate served, for clients to trust; `None` without TLS.
    cert: Option<std::path::PathBuf>,
}

impl Listening {
    fn new(config: &Config, tls: &TlsArgs) -> Result<Self, String> {
        use tarn_tls::{ALPN_GRPC, ALPN_HTTP, Acceptor, Identity, Origin};
        if !tls.enabled() {
            return Ok(Self { api: Acceptor::plain(), gateway: Acceptor::plain(), cert: None });
        }
        let loaded = match (&tls.tls_cert, &tls.tls_key) {
            (Some(cert), Some(key)) => Identity::from_files(cert, key).map(|identity| (identity, Origin::Given)),
            _ => Identity::self_signed(&config.home.join("tls")),
        };
        let (identity, origin) = loaded.map_err(|e| format!("TLS: {e}"))?;
        let cert = identity.cert_path.display().to_string();
        match origin {
            Origin::Given => tracing::info!(cert, "TLS with the given certificate"),
            Origin::Reused => tracing::info!(cert, "TLS with the self-signed certificate made at an earlier start"),
            Origin::Generated { reason } => {
                tracing::info!(cert, reason, "TLS with a new self-signed certificate for localhost and 127.0.0.1")
            }
        }
        Ok(Self {
            api: Acceptor::tls(&identity, ALPN_HTTP).map_err(|e| format!("TLS: {e}"))?,
            gateway: Acceptor::tls(&identity, ALPN_GRPC).map_err(|e| format!("TLS: {e}"))?,
            cert: Some(identity.cert_path),
        })
    }

    /// The API's address as users reach it (engines and tasks keep plain
    /// `http://`, which the same port still answers).
    fn public_url(&self, addr: std::net::SocketAddr) -> String {
        match self.cert {
            Some(_) => format!("https://{addr}"),
            None => format!("http://{addr}"),
        }
    }

    /// Writes `server.json` (for `tarn` commands on this machine, which keep
    /// plain HTTP on loopback) and prints where tarn listens.
    fn announce(&self, config: &Config, addr: std::net::SocketAddr, gateway_port: u16) -> Result<(), String> {
        let server_file = config.home.join("server.json");
        let mut info = serde_json::json!({"url": format!("http://{addr}"), "spark_connect_port": gateway_port});
        if let Some(cert) = &self.cert {
            info["tls_url"] = serde_json::json!(self.public_url(addr));
            info["tls_cert"] = serde_json::json!(cert.display().to_string());
        }
        std::fs::write(&server_file, info.to_string())
            .map_err(|e| format!("writing {}: {e}", server_file.display()))?;
        let home = config.home.display();
        println!("tarn serving the Databricks API on {} (state in {home})", self.public_url(addr));
        match &self.cert {
            Some(cert) => {
                println!("  TLS certificate {} (clients trust it: docs/tls.md)", cert.display());
                println!("  plain http://{addr} answers on the same port, for engines and tasks");
                println!(
                    "Spark Connect gateway on sc://localhost:{gateway_port} (TLS: sc://127.0.0.1:{gateway_port}/;use_ssl=true)"
                );
            }
            None => println!("Spark Connect gateway on sc://localhost:{gateway_port}"),
        }
        Ok(())
    }
}

async fn bind(host: &str, port: u16) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), String> {
    let listener =
        tokio::net::TcpListener::bind((host, port)).await.map_err(|e| format!("binding {host}:{port}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    Ok((listener, addr))
}

async fn serve(config: Config, host: &str, port: u16, gateway_port: u16, listening: Listening) -> Result<(), String> {
    let store = Arc::new(config.open_store()?);
    // Engines are told where tarn listens, so bind before any can start.
    let (listener, addr) = bind(host, port).await?;
    let (gateway_listener, gateway_addr) = bind(host, gateway_port).await?;
    // Before anything treats what is in flight as a crashed tarn's leftovers.
    let lease = Arc::new(SchedulerLease::new(store.clone(), advertised(addr, gateway_addr)));
    let first = lease.try_take()?;
    if let Err(holder) = &first {
        if !config.replica {
            return Err(SchedulerLease::refusal(holder));
        }
        println!(
            "standby replica: {holder} holds the schedulers lease; this serve answers the API and takes over when it stops"
        );
    }
    let workspace_id = store
        .setting_or_init("workspace_id", || {
            format!(
                "{}",
                1_000_000_000_000_000u64 + u64::from_str_radix(&tarn_core::id::random_hex(6), 16).unwrap_or(0)
            )
        })
        .map_err(|e| e.to_string())?;
    if let Some(path) = bootstrap_admin(&config, &store)? {
        println!("admin token written to {} (mode 0600)", path.display());
    }
    let storage = tarn_storage::Storage::from_env(config.storage_root.as_deref(), &config.home.join("tmp/storage"))
        .map_err(|e| e.to_string())?;
    tarn_lake::storage::register(&storage);
    let catalog = Catalog::new(store.clone(), config.home.join("lake")).with_storage(storage.clone());
    catalog.bootstrap(ADMIN_USER).map_err(|e| e.to_string())?;
    let files = Files::open(&config.home, &storage, store.clone(), catalog.clone()).map_err(|e| e.to_string())?;
    let compute = ComputeConfig {
        home: config.home.clone(),
        minute: config.minute,
        engine_start_timeout: config.engine_start_timeout,
        host: Host::detect(),
        api_url: format!("http://{addr}"),
        gateway_port: gateway_addr.port(),
        runtime: config.runtime,
        default_backend: tarn_compute::backend::Backend::parse(&config.default_backend)
            .map_err(|e| format!("TARN_DEFAULT_BACKEND: {e}"))?,
        spark: config.spark.clone(),
        sail_kubernetes: config.sail_kubernetes.clone(),
        storage_env: tarn_compute::StorageEnv(storage.engine_env()),
    };
    let directory = Arc::new(Catalogs(catalog.clone()));
    let library_files = library_files(&config, &files);
    let clusters = ClusterManager::new(store.clone(), config.environments(), compute, directory, library_files.clone())
        .map_err(|e| e.to_string())?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let system = tarn_lake::SystemTables::new(
        catalog.clone(),
        store.clone(),
        config.home.join("lake"),
        &workspace_id,
        ADMIN_USER,
    );
    let lake = tarn_lake::Lake::new(catalog.clone(), ADMIN_USER).with_system_tables(system.clone());
    let warehouse =
        tarn_sql::Warehouse::open(&store, clusters.clone(), config.engine_start_timeout + WAREHOUSE_START_SLACK)
            .map_err(|e| e.to_string())?;
    let pipeline_tables = tarn_pipelines::table_dir::TableDir::base(
        &storage,
        config.home.join("lake").join("pipelines"),
        config.home.join("tmp").join("pipelines"),
    );
    let paths: Arc<dyn PathResolver> =
        Arc::new(VolumePaths { files: files.clone(), pipeline_tables: pipeline_tables.clone() });
    // Grants bind Spark Connect sessions and warehouse statements alike.
    let access: Arc<dyn tarn_gateway::AccessControl> =
        Arc::new(tarn_sql::CatalogAccess::new(catalog.clone(), store.clone(), config.home.join("lake")));
    let views: Arc<dyn tarn_gateway::ViewCatalog> =
        Arc::new(tarn_sql::CatalogViews::new(catalog.clone(), store.clone()));
    let statements = tarn_sql::Statements::new(
        warehouse,
        lake.clone(),
        Some(paths.clone()),
        Some(access.clone()),
        Some(views.clone()),
    );
    let sealing_key =
        Arc::new(tarn_identity::SealingKey::load(&config.home, std::env::var("TARN_SECRET_KEY").ok().as_deref())?);
    let secrets = Arc::new(tarn_identity::Secrets::new(store.clone(), sealing_key.clone()));
    let repos = tarn_repos::Repos::new(store.clone(), files.clone(), sealing_key, &config.home, GIT_TIMEOUT)
        .map_err(|e| e.to_string())?;
    let contexts = Contexts::new(
        clusters.clone(),
        store.clone(),
        config.environments(),
        library_files.clone(),
        secrets.clone(),
        context_config(&config, addr),
    )
    .map_err(|e| e.to_string())?;
    let context_reaper = contexts.start_background();
    let tracking = tarn_mlflow::Tracking::open(store.clone()).map_err(|e| e.to_string())?;
    let known_clusters = clusters.clone();
    let warehouse_id = statements.warehouse().id().to_string();
    let jobs = tarn_jobs::Jobs::new(store.clone(), Arc::new(move |id: &str| known_clusters.get(id).is_ok()))
        .with_warehouses(Arc::new(move |id: &str| id == warehouse_id));
    let destinations = tarn_jobs::Destinations::new(store.clone());
    // A generic webhook is posted the run as `runs/get` shows it.
    let render: tarn_jobs::RenderRun = Arc::new(tarn_api::render_run);
    let notifier = tarn_jobs::Notifier::new(destinations.clone(), config.smtp.clone(), workspace_id.clone(), render);
    // Saved queries and alerts; v2 alerts fire on their own schedules.
    let alerts = tarn_alerts::Alerts::new(store.clone(), statements.clone(), notifier.clone(), workspace_id.clone());
    let engines = tarn_jobs::Engines {
        contexts: contexts.clone(),
        clusters: clusters.clone(),
        files: files.clone(),
        statements: statements.clone(),
        cluster_start_timeout: config.engine_start_timeout + WAREHOUSE_START_SLACK,
        library_files,
        pool: tarn_jobs::tasks::ContextPool::new(if config.job_reuse_workers { config.job_parallel_tasks } else { 0 }),
        sql_objects: Some(Arc::new(alerts.clone())),
        secrets: Some(secrets.clone()),
        sources: Some(Arc::new(tarn_api::TaskSources::new(store.clone(), files.clone(), catalog.clone()))),
        dbt: Some(dbt_config(&config, addr, listening.cert.clone())),
        replies: config.home.join("runtime").join("replies"),
    };
    let runs_config = tarn_jobs::RunsConfig {
        home: config.home.clone(),
        storage: storage.clone(),
        max_parallel_tasks: config.job_parallel_tasks,
        workspace_id: workspace_id.clone(),
        workspace_url: listening.public_url(addr),
        cost_per_core_hour: config.cost_per_core_hour,
    };
    let pipelines = tarn_pipelines::Pipelines::new(
        store.clone(),
        catalog.clone(),
        files.clone(),
        clusters.clone(),
        contexts.clone(),
        tarn_pipelines::PipelinesConfig {
            tables_dir: pipeline_tables,
            cluster_start_timeout: config.engine_start_timeout + WAREHOUSE_START_SLACK,
            development_keep_mins: 120,
            access: Some(access.clone()),
        },
    );
    // Pipeline tasks start their updates through tarn-pipelines.
    let updates = Arc::new(crate::pipeline_tasks::JobUpdates(pipelines.clone()));
    let runs = tarn_jobs::Runs::new(store.clone(), jobs.clone(), Arc::new(engines), notifier.clone(), runs_config)
        .with_pipelines(updates)
        .with_git_sources(Arc::new(crate::git_sources::JobGitSources(repos.clone())));
    let hooks = Hooks {
        sql: Some(Arc::new(tarn_sql::LakeInterceptor::new(lake))),
        paths: Some(paths),
        graphs: Some(Arc::new(tarn_pipelines::Graphs::new(pipelines.clone()))),
        access: Some(access),
        views: Some(views),
    };
    let gateway = Gateway::new(clusters.clone(), store.clone(), hooks);
    let artifacts_tree = tarn_files::Tree::on(&storage, tarn_storage::area::ARTIFACTS, &config.home.join("artifacts"))
        .map_err(|e| e.to_string())?;
    let artifacts = tarn_mlflow::Artifacts::open(artifacts_tree, config.home.join("cache/models"));
    let uploads = tarn_mlflow::Uploads::open(&config.home.join("artifact-uploads"), artifacts.clone())
        .map_err(|e| e.to_string())?;
    let mlflow_anonymous = match config.mlflow_anonymous(addr.ip().is_loopback()) {
        true => Some(crate::token::admin_user(&store)?),
        false => None,
    };
    let serving = serving_endpoints(&config, store.clone(), &catalog, &tracking, &artifacts, secrets.clone())?;
    let monitors =
        tarn_monitor::Monitors::new(store.clone(), catalog.clone(), config.home.join("monitors"), Some(notifier));
    let thrift = tarn_thrift::ThriftService::new(statements.sessions().clone(), catalog.clone());
    let holder = crate::replica::Holder::new(store.clone());
    let stop_tx = Arc::new(stop_tx);
    let leader = Leader {
        home: config.home.clone(),
        clusters: clusters.clone(),
        system,
        alerts: alerts.clone(),
        pipelines: pipelines.clone(),
        runs: runs.clone(),
        files: files.clone(),
        serving: serving.clone(),
        monitors: monitors.clone(),
        lease: lease.clone(),
        holder: holder.clone(),
        stop: stop_tx.clone(),
        tasks: Default::default(),
    };
    let state = AppState {
        audit: tarn_api::AuditLog::start(store.clone()),
        secrets,
        store,
        clusters: clusters.clone(),
        contexts: contexts.clone(),
        jobs,
        runs,
        destinations,
        pipelines,
        serving,
        monitors,
        alerts,
        tracking,
        artifacts,
        uploads,
        mlflow_anonymous,
        catalog,
        files,
        repos,
        thrift,
        statements,
        workspace_id,
        usage_memo: Default::default(),
    };
    let app = tarn_api::replica::layer(tarn_api::router(state), holder.clone());
    let server_file = config.home.join("server.json");
    let gateway_serve = {
        let (acceptor, stop_rx) = (listening.gateway.clone(), stop_rx.clone());
        let holder = holder.clone();
        async move {
            let listener = crate::replica::forward_gateway(gateway_listener, holder).await;
            gateway.serve(listener, acceptor, stopped(stop_rx)).await;
        }
    };
    match first {
        Ok(epoch) => leader.lead(epoch).await?,
        Err(_) => {
            let leader = leader.clone();
            tokio::spawn(async move {
                let epoch = leader.lease.wait_for().await;
                println!("this replica took the schedulers lease");
                if let Err(e) = leader.lead(epoch).await {
                    tracing::error!(error = %e, "taking over as the schedulers lease holder; stopping");
                    let _ = leader.stop.send(true);
                }
            });
        }
    }
    let gateway_task = tokio::spawn(gateway_serve);
    listening.announce(&config, addr, gateway_addr.port())?;
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    tarn_api::serve(listener, app, listening.api.clone(), stopped(stop_rx)).await.map_err(|e| e.to_string())?;
    gateway_task.abort();
    let _ = gateway_task.await;
    leader.stop_tasks();
    leader.runs.stop_writing();
    if lease.lost() {
        // The new holder takes over the attempts in flight from their
        // workers: they are left to finish (exiting skips the destructors
        // that would kill them); only this process's engines are stopped.
        clusters.shutdown().await;
        remove_server_file(&server_file, addr);
        eprintln!("tarn stopped: another tarn serve took the schedulers lease");
        std::process::exit(3);
    }
    context_reaper.abort();
    contexts.shutdown();
    tracing::info!("stopping cluster engines");
    clusters.shutdown().await;
    remove_server_file(&server_file, addr);
    if holder.leading() {
        lease.release();
    }
    println!("tarn stopped");
    Ok(())
}

/// Removes `server.json` if it still names this serve (replicas sharing a
/// home each write it).
fn remove_server_file(path: &std::path::Path, addr: std::net::SocketAddr) {
    let ours = std::fs::read_to_string(path).is_ok_and(|text| text.contains(&format!("\"http://{addr}\"")));
    if ours {
        let _ = std::fs::remove_file(path);
    }
}

async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT; stop tarn with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
    tracing::info!("shutting down");
}

/// Builds the environment of runtime `key` (the default runtime when none
/// is named, every listed one with `all`), the installer's steps shown as
/// they come.
pub fn env_sync(config: &Config, key: Option<&str>, all: bool) -> Result<(), String> {
    let keys: Vec<String> = match (key, all) {
        (Some(key), _) => vec![key.to_string()],
        (None, true) => runtime::listed().into_iter().map(|(k, _)| k).collect(),
        (None, false) => vec![runtime::DEFAULT_KEY.to_string()],
    };
    let envs = config.environments();
    for key in keys {
        let runtime = Runtime::resolve(&key).map_err(|e| e.to_string())?;
        let requirements = runtime.requirements(config.runtime);
        let requirements: Vec<&str> = requirements.iter().map(String::as_str).collect();
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}").map_err(|e| e.to_string())?);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar.set_message(format!("{key}: {} packages with {}", requirements.len(), envs.installer()));
        let result = envs.ensure(&requirements, &|step: &str| {
            // One line per headline step; each package's line updates the spinner.
            if step.starts_with(' ') {
                bar.set_message(format!("{key}: {}", step.trim()));
            } else {
                bar.println(format!("  {step}"));
            }
        });
        bar.finish_and_clear();
        let env = result.map_err(|e| format!("{key}: {e}"))?;
        println!("{key} ready: {}", env.dir.display());
    }
    Ok(())
}

/// Where `dbt_task`s reach the warehouse: tarn's own address (loopback
/// when it listens on all addresses), and the certificate it serves HTTPS
/// with, which dbt's connector needs.
fn dbt_config(
    config: &Config,
    addr: std::net::SocketAddr,
    tls_ca_file: Option<std::path::PathBuf>,
) -> tarn_jobs::tasks::dbt::DbtConfig {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    tarn_jobs::tasks::dbt::DbtConfig {
        endpoint: tarn_jobs::tasks::dbt::Endpoint { host: ip.to_string(), port: addr.port(), tls_ca_file },
        scratch: config.home.join("jobs").join("dbt"),
    }
}
