//! The HTTP edge: axum routers per API family, bearer-token auth, and the
//! mapping of domain errors to the Databricks error JSON.
//!
//! `routes` has one module per family (clusters, libraries, commands, Unity
//! Catalog, files, DBFS, workspace, SQL, jobs, pipelines, serving endpoints,
//! quality monitors, notification destinations, MLflow, tokens); `auth` checks tokens and
//! writes the audit log; `body`
//! holds extractors whose rejections are Databricks errors (and the one rule
//! for boolean parameters); `paging` the `Page` extractor and `Paged`
//! answer; `error` is the one place domain errors become wire errors (an
//! internal error reaches the client only as an error id, its text logged
//! under that id).
//!
//! Handlers extract typed input, call the domain and convert. Wire shapes
//! (the JSON the official clients send and expect) are built here, the
//! Jobs API's run view included: [`render_run`] is also what `tarn serve`
//! gives the jobs `Notifier` for generic webhooks. Unknown routes answer
//! JSON 404 `ENDPOINT_NOT_FOUND`, never HTML.

mod auth;
mod body;
mod error;
mod paging;
pub mod replica;
mod routes;
mod ui;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tarn_compute::ClusterManager;
use tarn_store::Store;
use tokio::net::TcpListener;

pub use auth::{AuditLog, Caller};
pub use error::ApiFailure;
pub use routes::jobs::view::render_run;
pub use routes::permission_objects::TaskSources;
pub use ui::UsageMemo;

/// What every handler may reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub clusters: ClusterManager,
    pub contexts: tarn_compute::context::Contexts,
    pub jobs: tarn_jobs::Jobs,
    pub runs: tarn_jobs::Runs,
    pub destinations: tarn_jobs::Destinations,
    pub pipelines: tarn_pipelines::Pipelines,
    pub serving: tarn_serving::Endpoints,
    pub monitors: tarn_monitor::Monitors,
    pub alerts: tarn_alerts::Alerts,
    pub tracking: tarn_mlflow::Tracking,
    pub artifacts: tarn_mlflow::Artifacts,
    /// Multipart uploads into `artifacts`, their parts kept beside it.
    pub uploads: tarn_mlflow::Uploads,
    /// The user MLflow requests without a token act as, when anonymous
    /// access is on (`tarn serve` on loopback); `None` requires a token.
    pub mlflow_anonymous: Option<tarn_store::User>,
    pub audit: AuditLog,
    /// Secret scopes, with the workspace's sealing key.
    pub secrets: Arc<tarn_identity::Secrets>,
    pub catalog: tarn_catalog::Catalog,
    pub files: tarn_files::Files,
    /// Git folders and git credentials.
    pub repos: tarn_repos::Repos,
    pub statements: tarn_sql::Statements,
    /// The warehouse's Thrift endpoint: its sessions' operations.
    pub thrift: tarn_thrift::ThriftService,
    pub workspace_id: String,
    /// The usage records the web pages have read, kept between views.
    pub usage_memo: UsageMemo,
}

/// The whole API: public routes, then everything else behind auth.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .merge(routes::tokens::router())
        .merge(routes::scim::router())
        .merge(routes::legacy_groups::router())
        .merge(routes::secrets::router())
        .merge(routes::repos::router())
        .merge(routes::permissions::router())
        .merge(routes::clusters::router())
        .merge(routes::libraries::router())
        .merge(routes::commands::router())
        .merge(routes::mlflow::router())
        .merge(routes::jobs::router())
        .merge(routes::pipelines::router())
        .merge(routes::serving::router())
        .merge(routes::monitors::router())
        .merge(routes::alerts::router())
        .merge(routes::notification_destinations::router())
        .merge(routes::unity_catalog::router())
        .merge(routes::files::router())
        .merge(routes::dbfs::router())
        .merge(routes::workspace::router())
        .merge(routes::sql::router())
        .merge(routes::sql_sessions::router())
        .merge(routes::thrift::router())
        .fallback(routes::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .merge(routes::public::router())
        .merge(routes::mlflow::part_router())
        .merge(ui::router())
        .merge(protected)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `router` on an already bound listener until `shutdown` resolves,
/// HTTP/1.1 and HTTP/2, each connection through `acceptor` (TLS or plain,
/// [`tarn_tls`]); then waits for the requests in flight, as `axum::serve`'s
/// graceful shutdown does.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    acceptor: tarn_tls::Acceptor,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY");
        }
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        let (acceptor, watcher) = (acceptor.clone(), graceful.watcher());
        tokio::spawn(async move {
            let conn = match acceptor.accept(tcp).await {
                Ok(conn) => conn,
                Err(e) => return tracing::debug!(error = %e, "TLS handshake"),
            };
            let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(conn), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::trace!(error = %e, "serving a connection");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
