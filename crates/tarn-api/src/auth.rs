//! Bearer-token auth for every route but the public ones, and the audit
//! log of every authenticated call (read later as `system.access.audit`).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tarn_core::ApiError;
use tarn_core::time::now_ms;
use tarn_store::{AuditEvent, User};

use crate::AppState;
use crate::error::ApiFailure;

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller(pub User);

pub(crate) async fn require_token(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match authenticate(&state, &req) {
        Ok(user) => {
            let (method, path) = (req.method().to_string(), req.uri().path().to_string());
            let started = now_ms();
            let user_name = user.user_name.clone();
            req.extensions_mut().insert(Caller(user));
            let response = next.run(req).await;
            let (service_name, action_name) = service_and_action(&path);
            let event = AuditEvent {
                event_time: started,
                user_name,
                service_name,
                action_name,
                method,
                request_path: path,
                status_code: i64::from(response.status().as_u16()),
                duration_ms: now_ms() - started,
            };
            // A model's invocations are the data plane: their record is the
            // inference table, and a request should not wait on a metadata
            // write (the row is still written, with the next batch).
            let wait = !event.request_path.ends_with("/invocations");
            state.audit.record(event, wait).await;
            response
        }
        Err(e) => e.into_response(),
    }
}

fn authenticate(state: &AppState, req: &Request) -> Result<User, ApiFailure> {
    let header = req.headers().get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if header.is_none()
        && let Some(user) = &state.mlflow_anonymous
        && crate::routes::mlflow::PREFIXES.iter().any(|p| req.uri().path().starts_with(p))
    {
        return Ok(user.clone());
    }
    let Some(secret) = header.and_then(token).filter(|s| !s.is_empty()) else {
        return Err(ApiFailure(ApiError::unauthenticated(
            "Missing credentials: send a personal access token as 'Authorization: Bearer <token>'",
        )));
    };
    Ok(state.store.authenticate(&secret, now_ms())?)
}

/// The token of `Bearer <token>`, or of `Basic base64("token:<token>")`, the
/// form SQL drivers send.
fn token(header: &str) -> Option<String> {
    if let Some(bearer) = header.strip_prefix("Bearer ") {
        return Some(bearer.trim().to_string());
    }
    use base64::Engine as _;
    let encoded = header.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.strip_prefix("token:").map(str::to_string)
}

/// The audit log's writer. A call is answered once its row is written (so
/// `system.access.audit` read after a call shows it), but for a model's
/// invocations, which do not wait; rows of calls arriving together are
/// written in one transaction.
#[derive(Clone)]
pub struct AuditLog {
    events: tokio::sync::mpsc::UnboundedSender<(AuditEvent, tokio::sync::oneshot::Sender<()>)>,
}

impl AuditLog {
    /// Starts the writer task (on the current tokio runtime).
    pub fn start(store: std::sync::Arc<tarn_store::Store>) -> Self {
        let (events, mut receiver) = tokio::sync::mpsc::unbounded_channel::<(AuditEvent, _)>();
        tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while let Ok(more) = receiver.try_recv() {
                    batch.push(more);
                }
                let (rows, waiting): (Vec<AuditEvent>, Vec<tokio::sync::oneshot::Sender<()>>) =
                    batch.into_iter().unzip();
                let store = store.clone();
                // A lost audit row is logged, not a caller's failure.
                match tokio::task::spawn_blocking(move || store.record_audits(&rows)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "writing the audit log"),
                    Err(e) => tracing::warn!(error = %e, "writing the audit log"),
                }
                for done in waiting {
                    let _ = done.send(());
                }
            }
        });
        Self { events }
    }

    /// Queues the event's row; with `wait`, returns once it is written.
    async fn record(&self, event: AuditEvent, wait: bool) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.events.send((event, done)).is_err() {
            tracing::warn!("the audit log writer has stopped; an audit row is lost");
            return;
        }
        if wait {
            let _ = written.await;
        }
    }
}

/// `/api/2.0/clusters/create` is service `clusters`, action `create`; the
/// version and any object names in the path are not part of either.
fn service_and_action(path: &str) -> (String, String) {
    let mut segments = path.trim_start_matches('/').split('/').filter(|s| !s.is_empty());
    let _api = segments.next();
    let _version = segments.next();
    let mut service = segments.next().unwrap_or_default();
    // `/api/2.0/preview/scim/v2/Users`: the service is scim, the action its resource.
    if service == "preview" {
        service = segments.next().unwrap_or_default();
        if service == "scim" {
            segments.next();
        }
    }
    let action = segments.next().unwrap_or_default().to_string();
    (service.to_string(), action)
}

#[cfg(test)]
mod tests {
    use super::token;

    #[test]
    fn tokens_from_bearer_and_basic_headers() {
        assert_eq!(token("Bearer dapi123 ").as_deref(), Some("dapi123"));
        // base64("token:dapi123")
        assert_eq!(token("Basic dG9rZW46ZGFwaTEyMw==").as_deref(), Some("dapi123"));
        // base64("user:pass") names no token.
        assert_eq!(token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(token("Basic !!"), None);
        assert_eq!(token("Digest x"), None);
    }

    #[test]
    fn service_and_action_come_from_the_path() {
        assert_eq!(super::service_and_action("/api/2.0/clusters/create"), ("clusters".into(), "create".into()));
        assert_eq!(
            super::service_and_action("/api/2.1/unity-catalog/tables/main.s.t"),
            ("unity-catalog".into(), "tables".into())
        );
        assert_eq!(super::service_and_action("/api/2.0/x"), ("x".into(), String::new()));
        assert_eq!(super::service_and_action("/api/2.0/preview/scim/v2/Me"), ("scim".into(), "Me".into()));
    }
}
