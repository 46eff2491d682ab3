//! Work tarn itself runs on an engine, as a Spark Connect client: SQL
//! statements for the statement API, and pipeline flows' relations.
//!
//! Results come back as the Arrow IPC streams the engine sent; decoding them
//! is the caller's business, so this crate stays free of Arrow.

use bytes::Bytes;
use futures_util::StreamExt;
use spark_connect_proto::spark_connect_service_client::SparkConnectServiceClient;
use spark_connect_proto::{
    Catalog, Command, ExecutePlanRequest, ExecutePlanResponse, InterruptRequest, Limit, Plan, Relation,
    ReleaseSessionRequest, SetCurrentCatalog, SetCurrentDatabase, Sql, SqlCommand, UserContext, catalog, command,
    execute_plan_response, interrupt_request, plan, relation,
};
use tonic::transport::Channel;

use crate::passes::{SessionEngine, ctas};
use crate::rpc_status::ErrorInfo;
use crate::views::{Prepared, Rewrite, Scope, ViewCatalog};

/// A failure the engine reported, with Spark's error class and SQLSTATE
/// when it sent them.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    pub message: String,
    pub error_class: Option<String>,
    pub sql_state: Option<String>,
    /// The engine could not be reached (rather than refusing the work).
    pub unreachable: bool,
}

impl EngineError {
    fn unreachable(message: String) -> Self {
        Self { message, error_class: None, sql_state: None, unreachable: true }
    }

    /// A failure without Spark's error details.
    fn plain(message: impl Into<String>) -> Self {
        Self { message: message.into(), error_class: None, sql_state: None, unreachable: false }
    }

    fn from_status(status: &tonic::Status) -> Self {
        if matches!(status.code(), tonic::Code::Unavailable | tonic::Code::Unknown) && status.message().is_empty() {
            return Self::unreachable(format!("engine unreachable: {status}"));
        }
        let info = ErrorInfo::from_status_details(status.details());
        let meta = |key: &str| info.as_ref().and_then(|i| i.metadata.get(key)).filter(|v| !v.is_empty()).cloned();
        Self {
            message: status.message().to_string(),
            error_class: meta("errorClass"),
            sql_state: meta("sqlState"),
            unreachable: status.code() == tonic::Code::Unavailable,
        }
    }
}

/// One Spark session on one engine.
pub struct EngineSession {
    port: u16,
    client: SparkConnectServiceClient<Channel>,
    session_id: String,
    user: String,
}

impl EngineSession {
    pub async fn open(port: u16, user: &str) -> Result<Self, EngineError> {
        let client = tarn_compute::engine::client(port).await.map_err(EngineError::unreachable)?;
        Ok(Self { port, client, session_id: uuid::Uuid::new_v4().to_string(), user: user.to_string() })
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// `USE CATALOG` / `USE SCHEMA` for the rest of the session.
    pub async fn use_namespace(&mut self, catalog: Option<&str>, schema: Option<&str>) -> Result<(), EngineError> {
        if let Some(name) = catalog {
            let set = catalog::CatType::SetCurrentCatalog(SetCurrentCatalog { catalog_name: name.to_string() });
            self.execute(root(relation::RelType::Catalog(Catalog { cat_type: Some(set) }))).await?;
        }
        if let Some(name) = schema {
            let set = catalog::CatType::SetCurrentDatabase(SetCurrentDatabase { db_name: name.to_string() });
            self.execute(root(relation::RelType::Catalog(Catalog { cat_type: Some(set) }))).await?;
        }
        Ok(())
    }

    /// Runs `sql` as `spark.sql(...)` does: commands run at once, queries are
    /// then collected, at most `limit` rows of them. Returns the Arrow IPC
    /// streams of the result. A Delta CTAS is split as the gateway splits it.
    pub async fn sql(&mut self, sql: &str, limit: Option<usize>) -> Result<Vec<Bytes>, EngineError> {
        let ctas = ctas::split(&self.calls(), sql).await.map_err(|e| EngineError::plain(e.to_string()))?;
        let sql = ctas.as_deref().unwrap_or(sql);
        let input = Relation {
            common: None,
            rel_type: Some(relation::RelType::Sql(Sql { query: sql.to_string(), ..Default::default() })),
        };
        let command = Command {
            command_type: Some(command::CommandType::SqlCommand(SqlCommand {
                input: Some(input),
                ..Default::default()
            })),
        };
        let responses = self.execute(Plan { op_type: Some(plan::OpType::Command(command)) }).await?;
        let relation = responses
            .into_iter()
            .find_map(|r| match r.response_type {
                Some(execute_plan_response::ResponseType::SqlCommandResult(result)) => result.relation,
                _ => None,
            })
            .ok_or_else(|| EngineError::plain("the engine sent no result for the SQL command"))?;
        let relation = match limit {
            Some(n) => Relation {
                common: None,
                rel_type: Some(relation::RelType::Limit(Box::new(Limit {
                    input: Some(Box::new(relation)),
                    limit: i32::try_from(n).unwrap_or(i32::MAX),
                }))),
            },
            None => relation,
        };
        self.collect(relation).await
    }

    /// `sql` with the views it reads in their place, or the answer to a view
    /// statement ([`crate::views`]): the view's query analysed in this session.
    pub async fn views(
        &mut self,
        views: &dyn ViewCatalog,
        sql: &str,
        namespace: &[String],
        rewrite: Rewrite<'_>,
    ) -> Result<Prepared, EngineError> {
        let scope = Scope { views, namespace, user: &self.user, rewrite };
        crate::views::prepare(&self.calls(), scope, sql).await.map_err(|f| {
            let sql_state = f.message.rsplit_once("SQLSTATE: ").map(|(_, state)| state.trim().to_string());
            EngineError { sql_state, ..EngineError::plain(f.message) }
        })
    }

    /// This session as the passes' engine calls (a schema asked for, a
    /// command run), over the same connection.
    fn calls(&self) -> SessionEngine {
        SessionEngine::connected(self.port, self.client.clone(), self.session_id.clone(), Some(self.user_context()))
    }

    /// Runs a Spark Connect command (a temporary view, a conf) in the session.
    pub async fn run_command(&mut self, command: Command) -> Result<(), EngineError> {
        self.execute(Plan { op_type: Some(plan::OpType::Command(command)) }).await.map(drop)
    }

    /// Collects a relation's rows: the Arrow IPC streams the engine sent.
    pub async fn collect(&mut self, relation: Relation) -> Result<Vec<Bytes>, EngineError> {
        let responses = self.execute(Plan { op_type: Some(plan::OpType::Root(relation)) }).await?;
        Ok(responses
            .into_iter()
            .filter_map(|r| match r.response_type {
                Some(execute_plan_response::ResponseType::ArrowBatch(batch)) => Some(batch.data),
                _ => None,
            })
            .collect())
    }

    async fn execute(&mut self, plan: Plan) -> Result<Vec<ExecutePlanResponse>, EngineError> {
        let request = ExecutePlanRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user_context()),
            plan: Some(plan),
            client_type: Some("tarn".into()),
            ..Default::default()
        };
        let mut stream =
            self.client.execute_plan(request).await.map_err(|s| EngineError::from_status(&s))?.into_inner();
        let mut responses = Vec::new();
        while let Some(item) = stream.next().await {
            responses.push(item.map_err(|s| EngineError::from_status(&s))?);
        }
        Ok(responses)
    }

    fn user_context(&self) -> UserContext {
        UserContext { user_id: self.user.clone(), user_name: self.user.clone(), ..Default::default() }
    }

    /// Ends the session on the engine, which otherwise keeps its state
    /// until its own idle timeout.
    pub async fn release(mut self) -> Result<(), EngineError> {
        let request = ReleaseSessionRequest {
            session_id: self.session_id.clone(),
            user_context: Some(self.user_context()),
            client_type: Some("tarn".into()),
            ..Default::default()
        };
        self.client.release_session(request).await.map_err(|s| EngineError::from_status(&s))?;
        Ok(())
    }
}

/// Asks the engine to stop everything running in `session_id`.
pub async fn interrupt(port: u16, session_id: &str, user: &str) -> Result<(), EngineError> {
    let mut client = tarn_compute::engine::client(port).await.map_err(EngineError::unreachable)?;
    let request = InterruptRequest {
        session_id: session_id.to_string(),
        user_context: Some(UserContext { user_id: user.into(), user_name: user.into(), ..Default::default() }),
        client_type: Some("tarn".into()),
        interrupt_type: interrupt_request::InterruptType::All.into(),
        ..Default::default()
    };
    client.interrupt(request).await.map_err(|s| EngineError::from_status(&s))?;
    Ok(())
}

fn root(rel_type: relation::RelType) -> Plan {
    Plan { op_type: Some(plan::OpType::Root(Relation { common: None, rel_type: Some(rel_type) })) }
}
