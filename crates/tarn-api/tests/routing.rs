//! Routing and the wire error shape, through the router without a socket.
//! Cluster behaviour with real engines is tested in `tests/python`.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tarn_api::{AppState, router};
use tarn_catalog::Catalog;
use tarn_compute::context::{ContextConfig, Contexts};
use tarn_compute::env::Environments;
use tarn_compute::node_types::Host;
use tarn_compute::{CatalogDirectory, ClusterManager, ComputeConfig};
use tarn_store::Store;
use tower::ServiceExt;

mod views;

struct Fixture {
    app: axum::Router,
    token: String,
    store: Arc<Store>,
    home: TempHome,
}

struct TempHome(std::path::PathBuf);

struct NoCatalogs;

impl CatalogDirectory for NoCatalogs {
    fn catalog_names(&self) -> Vec<String> {
        vec![]
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixture(name: &str) -> Fixture {
    let home = std::env::temp_dir().join(format!("tarn-api-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let store = Arc::new(Store::open_in_memory().unwrap());
    let user = store.ensure_admin("admin", "Admin", 0).unwrap();
    let (token, _) = store.create_token(&user, "test", None, 0).unwrap();
    let config = ComputeConfig {
        home: home.clone(),
        minute: Duration::from_secs(60),
        engine_start_timeout: Duration::from_secs(5),
        host: Host { cores: 2, memory_mb: 2048 },
        api_url: "http://127.0.0.1:9".into(),
        gateway_port: 0,
        runtime: Default::default(),
        default_backend: Default::default(),
        spark: Default::default(),
        sail_kubernetes: None,
        storage_env: Default::default(),
    };
    let envs = Environments::new(home.join("envs"), "python3".into());
    let catalog = Catalog::new(store.clone(), home.join("lake"));
    catalog.bootstrap("admin").unwrap();
    let library_files: Arc<dyn tarn_compute::libraries::LibraryFiles> = Arc::new(
        tarn_compute::libraries::CopiedFiles::new(home.join("libraries"), Box::new(|p: &str| Err(format!("{p}: no")))),
    );
    let clusters =
        ClusterManager::new(store.clone(), envs.clone(), config, Arc::new(NoCatalogs), library_files.clone()).unwrap();
    let secrets = Arc::new(tarn_identity::Secrets::new(
        store.clone(),
        Arc::new(tarn_identity::SealingKey::load(&home, None).unwrap()),
    ));
    let contexts = Contexts::new(
        clusters.clone(),
        store.clone(),
        envs,
        library_files.clone(),
        secrets.clone(),
        ContextConfig {
            home: home.clone(),
            api_url: "http://127.0.0.1:9".into(),
            warm_workers: 0,
            command_timeout: Duration::from_secs(5),
            serverless_memory_mb: 256,
            serverless_idle: Duration::from_secs(60),
            serverless_start_timeout: Duration::from_secs(5),
            output_limit: 1024,
            row_limit: 10,
        },
    )
    .unwrap();
    let files =
        tarn_files::Files::open(&home, &tarn_storage::Storage::local(), store.clone(), catalog.clone()).unwrap();
    let warehouse = tarn_sql::Warehouse::open(&store, clusters.clone(), Duration::from_secs(5)).unwrap();
    let statements =
        tarn_sql::Statements::new(warehouse, tarn_lake::Lake::new(catalog.clone(), "admin"), None, None, None);
    let artifacts = tarn_mlflow::Artifacts::open_dir(&home.join("artifacts")).unwrap();
    let jobs = tarn_jobs::Jobs::new(store.clone(), std::sync::Arc::new(|_: &str| false));
    let engines = tarn_jobs::Engines {
        contexts: contexts.clone(),
        clusters: clusters.clone(),
        files: files.clone(),
        statements: statements.clone(),
        cluster_start_timeout: Duration::from_secs(5),
        library_files,
        pool: tarn_jobs::tasks::ContextPool::new(2),
        sql_objects: None,
        secrets: Some(secrets.clone()),
        sources: None,
        dbt: None,
        replies: home.join("runtime").join("replies"),
    };
    let runs_config = tarn_jobs::RunsConfig {
        home: home.clone(),
        storage: Default::default(),
        max_parallel_tasks: 2,
        workspace_id: "1234".into(),
        workspace_url: "http://127.0.0.1:9".into(),
        cost_per_core_hour: 0.1,
    };
    let destinations = tarn_jobs::Destinations::new(store.clone());
    let render: tarn_jobs::RenderRun = Arc::new(tarn_api::render_run);
    let notifier =
        tarn_jobs::Notifier::new(destinations.clone(), tarn_jobs::SmtpConfig::default(), "1234".into(), render);
    let pipelines = tarn_pipelines::Pipelines::new(
        store.clone(),
        catalog.clone(),
        files.clone(),
        clusters.clone(),
        contexts.clone(),
        tarn_pipelines::PipelinesConfig {
            tables_dir: tarn_pipelines::table_dir::TableDir::Local(home.join("lake").join("pipelines")),
            cluster_start_timeout: Duration::from_secs(5),
            development_keep_mins: 1,
            access: None,
        },
    );
    let tracking = tarn_mlflow::Tracking::open(store.clone()).unwrap();
    let models = tarn_serving::Registry { tracking: tracking.clone(), artifacts: artifacts.clone() };
    let serving_ctx = tarn_serving::EntityContext {
        dir: home.join("serving"),
        script: home.join("serving").join("worker.py"),
        models: Arc::new(models),
        secrets: secrets.clone(),
        envs: Environments::new(home.join("envs"), "python3".into()),
        cores: 1,
        load_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    };
    let timing =
        tarn_serving::Timing { idle_timeout: Duration::from_secs(60), inference_flush: Duration::from_secs(1) };
    let serving = tarn_serving::Endpoints::new(store.clone(), catalog.clone(), serving_ctx, timing).unwrap();
    let monitors = tarn_monitor::Monitors::new(store.clone(), catalog.clone(), home.join("monitors"), None);
    let alerts = tarn_alerts::Alerts::new(store.clone(), statements.clone(), notifier.clone(), "1234".into());
    let catalog_for_thrift = catalog.clone();
    let state = AppState {
        alerts,
        pipelines,
        serving,
        monitors,
        runs: tarn_jobs::Runs::new(store.clone(), jobs.clone(), Arc::new(engines), notifier, runs_config),
        destinations,
        jobs,
        tracking,
        uploads: tarn_mlflow::Uploads::open(&home.join("artifact-uploads"), artifacts.clone()).unwrap(),
        artifacts,
        mlflow_anonymous: None,
        audit: tarn_api::AuditLog::start(store.clone()),
        secrets,
        store: store.clone(),
        clusters,
        contexts,
        catalog,
        repos: tarn_repos::Repos::new(
            store.clone(),
            files.clone(),
            Arc::new(tarn_identity::SealingKey::load(&home, None).unwrap()),
            &home,
            Duration::from_secs(30),
        )
        .unwrap(),
        files,
        thrift: tarn_thrift::ThriftService::new(statements.sessions().clone(), catalog_for_thrift),
        statements,
        workspace_id: "1234".into(),
        usage_memo: Default::default(),
    };
    let app = router(state);
    Fixture { app, token, store, home: TempHome(home) }
}

const SERVE_MISSING_MODEL: &str =
    r#"{"name": "e", "config": {"served_entities": [{"entity_name": "m", "entity_version": "1"}]}}"#;

async fn check(f: &Fixture, method: &str, path: &str, auth: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(token) = auth {
        req = req.header("Authorization", format!("Bearer {token}"));
    }
    let resp = f.app.clone().oneshot(req.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn errors_have_the_databricks_shape() {
    let f = fixture("errors");
    let t = Some(f.token.as_str());
    // (method, path, token, body, status, error_code)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, u16, &'a str);
    let cases: &[Case] = &[
        ("GET", "/api/2.1/clusters/list", None, "", 401, "UNAUTHENTICATED"),
        ("GET", "/api/2.1/clusters/list", Some("dapinope"), "", 401, "UNAUTHENTICATED"),
        ("GET", "/nothing/here", t, "", 404, "ENDPOINT_NOT_FOUND"),
        ("POST", "/api/2.1/clusters/create", t, "{oops", 400, "MALFORMED_REQUEST"),
        ("POST", "/api/2.1/clusters/create", t, r#"{"num_workers": 1}"#, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "/api/2.0/clusters/start", t, r#"{"cluster_id": "x"}"#, 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/api/2.1/clusters/get", t, "", 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "/api/2.0/token/delete", t, r#"{"token_id": "x"}"#, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/api/2.1/clusters/update", t, "{}", 501, "NOT_IMPLEMENTED"),
        ("GET", "/api/2.1/unity-catalog/tables/main.default.nope", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", "/api/2.1/unity-catalog/schemas", t, "", 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "/api/2.1/unity-catalog/catalogs", t, r#"{"name": "main"}"#, 409, "RESOURCE_ALREADY_EXISTS"),
        ("DELETE", "/api/2.1/unity-catalog/catalogs/main", t, "", 400, "INVALID_STATE"),
        (
            "POST",
            "/api/2.1/unity-catalog/schemas",
            t,
            r#"{"catalog_name": "main", "name": "a/b"}"#,
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("GET", "/api/2.0/fs/files/Volumes/main/default/nope/x", t, "", 404, "NOT_FOUND"),
        ("PUT", "/api/2.0/fs/files/tmp/x", t, "x", 400, "INVALID_PARAMETER_VALUE"),
        ("PUT", "/api/2.0/fs/files/Volumes/main/default/v/%2E%2E/x", t, "x", 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "/api/2.0/fs/create-download-url?path=/x", t, "", 404, "ENDPOINT_NOT_FOUND"),
        ("GET", "/api/2.0/dbfs/get-status?path=/nope", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/api/2.0/dbfs/close", t, r#"{"handle": 7}"#, 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/api/2.0/dbfs/put", t, r#"{"path": "/a/../../b", "contents": ""}"#, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "/api/2.0/dbfs/add-block", t, r#"{"handle": 7, "data": "%%"}"#, 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/api/2.0/dbfs/read?path=/x&length=-1", t, "", 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/api/2.0/workspace/get-status?path=/nope", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/api/2.0/workspace/delete", t, r#"{"path": "/Users"}"#, 400, "DIRECTORY_NOT_EMPTY"),
        ("GET", "/api/2.0/workspace/export?path=/Users&format=DBC", t, "", 501, "NOT_IMPLEMENTED"),
        ("GET", "/api/2.0/workspace/export?path=/Users&format=NOPE", t, "", 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/api/2.0/preview/scim/v2/Users", None, "", 401, "UNAUTHENTICATED"),
        ("GET", "/api/2.0/secrets/scopes/list", None, "", 401, "UNAUTHENTICATED"),
        ("GET", "/api/2.0/secrets/get?scope=s&key=k", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/api/2.0/secrets/put", t, r#"{"scope": "s", "key": "k"}"#, 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/api/2.0/token-management/tokens", None, "", 401, "UNAUTHENTICATED"),
        ("GET", "/api/2.0/token-management/tokens/nope", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", "/api/2.0/permissions/jobs/1", None, "", 401, "UNAUTHENTICATED"),
        ("GET", "/api/2.0/permissions/gizmos/1", t, "", 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/api/2.0/permissions/repos/1", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", "/api/2.0/repos/1", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/api/2.0/repos", t, r#"{"url": "/x.git", "provider": "svn"}"#, 400, "INVALID_PARAMETER_VALUE"),
        ("GET", "/api/2.0/git-credentials/9", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/serving-endpoints/nope/invocations", None, "{}", 401, "UNAUTHENTICATED"),
        ("POST", "/serving-endpoints/nope/invocations", t, "{}", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", "/api/2.0/serving-endpoints/nope", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("POST", "/api/2.0/serving-endpoints", t, r#"{"name": "a b", "config": {}}"#, 400, "INVALID_PARAMETER_VALUE"),
        ("POST", "/api/2.0/serving-endpoints", t, SERVE_MISSING_MODEL, 400, "INVALID_PARAMETER_VALUE"),
        ("PUT", "/api/2.0/serving-endpoints/e/rate-limits", t, "{}", 501, "NOT_IMPLEMENTED"),
        ("GET", "/api/2.1/unity-catalog/tables/main.default.t/monitor", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        ("GET", "/api/2.1/unity-catalog/tables/main.default.t/monitor/report", None, "", 401, "UNAUTHENTICATED"),
        ("GET", "/api/2.1/unity-catalog/tables/main.default.t/monitor/report", t, "", 404, "RESOURCE_DOES_NOT_EXIST"),
        (
            "POST",
            "/api/2.1/unity-catalog/tables/main.default.t/monitor",
            t,
            r#"{"snapshot": {}}"#,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
    ];
    for (method, path, auth, body, status, code) in cases {
        let (got_status, got) = check(&f, method, path, *auth, body).await;
        assert_eq!((got_status.as_u16(), got["error_code"].as_str()), (*status, Some(*code)), "{method} {path}: {got}");
        assert!(got["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
}

#[tokio::test]
async fn a_monitor_report_waits_for_a_successful_refresh() {
    let f = fixture("report");
    let table = "main.default.t";
    // The monitored table, made as an engine makes a managed one: staged, then created at its location.
    let staging = r#"{"catalog_name": "main", "schema_name": "default", "name": "t"}"#;
    let (_, staged) = check(&f, "POST", "/api/2.1/unity-catalog/staging-tables", Some(&f.token), staging).await;
    let create = json!({"catalog_name": "main", "schema_name": "default", "name": "t", "table_type": "MANAGED",
        "data_source_format": "DELTA", "storage_location": staged["staging_location"],
        "columns": [{"name": "x", "type_name": "LONG"}]});
    let (status, created) =
        check(&f, "POST", "/api/2.1/unity-catalog/tables", Some(&f.token), &create.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{created} (staged {staged})");
    let row = tarn_store::MonitorRow { table_name: table.into(), info: json!({"snapshot": {}}), created_time: 1 };
    assert!(f.store.insert_monitor(&row).unwrap());
    f.store.insert_refresh(table, "MANUAL", 1).unwrap();
    let path = format!("/api/2.1/unity-catalog/tables/{table}/monitor/report");
    let (status, error) = check(&f, "GET", &path, Some(&f.token), "").await;
    assert_eq!((status, error["error_code"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_STATE")));
    assert!(error["message"].as_str().is_some_and(|m| m.contains("no successful refresh")), "{error}");
}

#[tokio::test]
async fn files_errors_carry_the_reason_clients_test_for() {
    let f = fixture("files");
    let t = Some(f.token.as_str());
    let volume = r#"{"catalog_name": "main", "schema_name": "default", "name": "v"}"#;
    assert_eq!(check(&f, "POST", "/api/2.1/unity-catalog/volumes", t, volume).await.0, StatusCode::OK);
    let file = "/api/2.0/fs/files/Volumes/main/default/v/dir/a.txt";
    assert_eq!(check(&f, "PUT", file, t, "abc").await.0, StatusCode::NO_CONTENT);
    assert_eq!(check(&f, "PUT", &format!("{file}?overwrite=false"), t, "x").await.0, StatusCode::CONFLICT);
    let (status, error) = check(&f, "DELETE", "/api/2.0/fs/directories/Volumes/main/default/v/dir", t, "").await;
    assert_eq!((status, error["error_code"].as_str()), (StatusCode::BAD_REQUEST, Some("INVALID_PARAMETER_VALUE")));
    assert_eq!(error["details"][0]["reason"], "FILES_API_DIRECTORY_IS_NOT_EMPTY");
    assert_eq!(error["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    let (status, listing) = check(&f, "GET", "/api/2.0/fs/directories/Volumes/main/default/v/dir", t, "").await;
    assert_eq!((status, &listing["contents"][0]["file_size"]), (StatusCode::OK, &json!(3)));
}

#[tokio::test]
async fn public_routes_and_identity() {
    let f = fixture("public");
    assert_eq!(check(&f, "GET", "/health", None, "").await, (StatusCode::OK, json!({"status": "ok"})));
    let (status, meta) = check(&f, "GET", "/.well-known/databricks-config", None, "").await;
    assert_eq!((status, meta["workspace_id"].as_str()), (StatusCode::OK, Some("1234")));
    let (status, me) = check(&f, "GET", "/api/2.0/preview/scim/v2/Me", Some(&f.token), "").await;
    assert_eq!((status, me["userName"].as_str()), (StatusCode::OK, Some("admin")));
    let (_, versions) = check(&f, "GET", "/api/2.0/clusters/spark-versions", Some(&f.token), "").await;
    assert!(versions["versions"].as_array().is_some_and(|v| !v.is_empty()));
}

#[tokio::test]
async fn authenticated_calls_are_audited() {
    let f = fixture("audit");
    let t = Some(f.token.as_str());
    check(&f, "GET", "/api/2.1/clusters/list", t, "").await;
    check(&f, "GET", "/api/2.1/unity-catalog/tables/main.default.nope", t, "").await;
    check(&f, "GET", "/api/2.1/clusters/list", None, "").await;
    let events: Vec<_> = f.store.audit_events_after(0).unwrap().into_iter().map(|(_, e)| e).collect();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.user_name.as_str(), e.service_name.as_str(), e.action_name.as_str(), e.status_code))
        .collect();
    assert_eq!(seen, [("admin", "clusters", "list", 200), ("admin", "unity-catalog", "tables", 404)]);
    assert_eq!(events[1].request_path, "/api/2.1/unity-catalog/tables/main.default.nope");
}

#[tokio::test]
async fn listings_page_in_each_familys_shape() {
    let f = fixture("paging");
    let t = Some(f.token.as_str());
    for name in ["a", "b", "c"] {
        let body = format!(r#"{{"catalog_name": "main", "name": "{name}"}}"#);
        assert_eq!(check(&f, "POST", "/api/2.1/unity-catalog/schemas", t, &body).await.0, StatusCode::OK);
    }
    let schemas = |query: &str| format!("/api/2.1/unity-catalog/schemas?catalog_name=main&{query}");
    let (_, first) = check(&f, "GET", &schemas("max_results=2"), t, "").await;
    let names =
        |page: &Value| page["schemas"].as_array().unwrap().iter().map(|s| s["name"].clone()).collect::<Vec<_>>();
    assert_eq!((names(&first).len(), first["next_page_token"].as_str()), (2, Some("o2")));
    let (_, rest) = check(&f, "GET", &schemas("max_results=2&page_token=o2"), t, "").await;
    assert_eq!((names(&rest).len(), rest.get("next_page_token")), (2, None), "{rest}");
    // (path, expected answer) for empty listings: each family's own shape.
    let empty: &[(&str, Value)] = &[
        ("/api/2.1/clusters/list", json!({"clusters": []})),
        ("/api/2.1/jobs/list", json!({"has_more": false})),
        ("/api/2.1/jobs/runs/list?offset=3", json!({"has_more": false})),
        ("/api/2.1/clusters/list?filter_by.cluster_sources=JOB", json!({"clusters": []})),
    ];
    for (path, expected) in empty {
        assert_eq!(check(&f, "GET", path, t, "").await, (StatusCode::OK, expected.clone()), "{path}");
    }
    // (path, message): bad page tokens and sizes, as each family words them.
    let refused = [
        ("/api/2.1/clusters/list?page_token=nope", "Invalid page token: nope"),
        ("/api/2.1/clusters/list?page_size=-1", "page_size must be >= 0, got -1"),
        ("/api/2.1/jobs/list?page_token=o", "Invalid page token: o"),
        ("/api/2.1/jobs/list?limit=ten", "limit must be an integer, got ten"),
        ("/api/2.1/jobs/runs/list?offset=x", "offset must be an integer, got x"),
        ("/api/2.1/unity-catalog/catalogs?max_results=-1", "max_results must be >= 0, got -1"),
        ("/api/2.1/unity-catalog/catalogs?page_token=7", "Invalid page token: 7"),
        ("/api/2.0/fs/directories/Volumes/main/default/v?page_size=x", "page_size must be a positive number"),
        ("/api/2.0/mlflow/metrics/get-history?run_id=r&metric_key=m&page_token=z", "Invalid page token: z"),
    ];
    for (path, message) in refused {
        let (status, error) = check(&f, "GET", path, t, "").await;
        assert_eq!((status, error["message"].as_str()), (StatusCode::BAD_REQUEST, Some(message)), "{path}");
    }
}

#[tokio::test]
async fn boolean_parameters_follow_one_rule() {
    let f = fixture("flags");
    let t = Some(f.token.as_str());
    // `true`/`false` in any case; anything else is as if not sent.
    let both = "/api/2.1/jobs/runs/list?active_only=TRUE&completed_only=true";
    let (status, error) = check(&f, "GET", both, t, "").await;
    assert_eq!(
        (status, error["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("active_only and completed_only cannot both be true"))
    );
    for path in [
        "/api/2.1/jobs/runs/list?active_only=yes&completed_only=true",
        "/api/2.1/jobs/runs/list?active_only=False&completed_only=true",
        "/api/2.1/clusters/list?filter_by.is_pinned=maybe",
        "/api/2.1/clusters/list?filter_by.is_pinned=True",
    ] {
        assert_eq!(check(&f, "GET", path, t, "").await.0, StatusCode::OK, "{path}");
    }
}

/// Log lines written while a test runs on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn internal_errors_answer_an_id_and_log_the_cause() {
    let f = fixture("internal");
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let _logging = tracing::subscriber::set_default(subscriber);
    // Managed volumes get a directory under lake/volumes; a file there fails it.
    std::fs::create_dir_all(f.home.0.join("lake")).unwrap();
    std::fs::write(f.home.0.join("lake").join("volumes"), "").unwrap();
    let volume = r#"{"catalog_name": "main", "schema_name": "default", "name": "v"}"#;
    let (status, error) = check(&f, "POST", "/api/2.1/unity-catalog/volumes", Some(&f.token), volume).await;
    assert_eq!((status, error["error_code"].as_str()), (StatusCode::INTERNAL_SERVER_ERROR, Some("INTERNAL_ERROR")));
    let message = error["message"].as_str().unwrap();
    let id = message.strip_prefix("Internal error (error id: ").and_then(|m| m.strip_suffix(')')).unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{message}");
    let logged = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let line = logged.lines().find(|l| l.contains(id)).unwrap_or_else(|| panic!("no log line with {id}: {logged}"));
    assert!(line.contains("ERROR") && line.contains("lake/volumes"), "{line}");
}

/// Every router but the public one sits behind one auth layer; one route
/// of each, and an unknown path, refuse a call without a live token.
#[tokio::test]
async fn every_router_refuses_without_a_live_token() {
    let f = fixture("auth");
    let user = f.store.ensure_user("someone", "Someone", 0).unwrap();
    let (expired, _) = f.store.create_token(&user, "short", Some(1), 0).unwrap();
    let (revoked, row) = f.store.create_token(&user, "gone", None, 0).unwrap();
    assert!(f.store.revoke_token(&row.token_id).unwrap());
    let one_of_each = [
        ("GET", "/api/2.0/token/list"),
        ("GET", "/api/2.0/token-management/tokens"),
        ("GET", "/api/2.0/preview/scim/v2/Me"),
        ("GET", "/api/2.0/preview/scim/v2/Groups"),
        ("GET", "/api/2.0/secrets/scopes/list"),
        ("GET", "/api/2.0/permissions/jobs/1"),
        ("GET", "/api/2.1/clusters/list"),
        ("GET", "/api/2.0/libraries/all-cluster-statuses"),
        ("POST", "/api/1.2/contexts/create"),
        ("GET", "/api/2.0/mlflow/experiments/search"),
        ("GET", "/api/2.2/jobs/list"),
        ("GET", "/api/2.2/jobs/runs/list"),
        ("GET", "/api/2.0/pipelines"),
        ("GET", "/api/2.0/serving-endpoints"),
        ("POST", "/serving-endpoints/e/invocations"),
        ("GET", "/api/2.1/unity-catalog/tables/main.default.t/monitor"),
        ("GET", "/api/2.0/sql/alerts"),
        ("GET", "/api/2.0/notification-destinations"),
        ("GET", "/api/2.1/unity-catalog/catalogs"),
        ("GET", "/api/2.0/fs/directories/Volumes/main/default/v"),
        ("GET", "/api/2.0/dbfs/list?path=/"),
        ("GET", "/api/2.0/workspace/list?path=/"),
        ("GET", "/api/2.0/sql/warehouses"),
        ("GET", "/no/such/route"),
    ];
    for (method, path) in one_of_each {
        for token in [None, Some("dapinope"), Some(expired.as_str()), Some(revoked.as_str())] {
            let (status, body) = check(&f, method, path, token, "").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} with {token:?}: {body}");
            assert_eq!(body["error_code"], "UNAUTHENTICATED", "{method} {path}");
        }
    }
    for path in ["/health", "/.well-known/databricks-config"] {
        assert_eq!(check(&f, "GET", path, None, "").await.0, StatusCode::OK, "{path}");
    }
}
