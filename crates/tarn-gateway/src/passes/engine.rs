//! The cluster's engine as a pass sees it: the two calls a split statement
//! needs (a query's schema, a command run to completion), made in the
//! caller's Spark session so they see its temporary views and settings.
//! A trait so that the passes can be tested without an engine.

use std::future::Future;
use std::pin::Pin;

use spark_connect_proto::spark_connect_service_client::SparkConnectServiceClient;
use spark_connect_proto::{
    AnalyzePlanRequest, Command, DataType, ExecutePlanRequest, Plan, Relation, Sql, SqlCommand, UserContext,
    analyze_plan_request, analyze_plan_response, command, plan, relation,
};
use tokio::sync::OnceCell;
use tonic::transport::Channel;

use crate::EngineCallError;

pub(crate) type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineCallError>> + Send + 'a>>;

/// What a pass may ask of the engine.
pub(crate) trait EngineCalls: Send + Sync {
    /// The schema of `query` (`None` when the engine sent none).
    fn analyze_schema(&self, query: Relation) -> EngineFuture<'_, Option<DataType>>;

    /// Runs the SQL command `sql` and waits for it to finish.
    fn run_sql(&self, sql: String) -> EngineFuture<'_, ()>;
}

/// One Spark session on the engine at a port, reached with one client,
/// connected on the first call.
pub(crate) struct SessionEngine {
    port: u16,
    session_id: String,
    user_context: Option<UserContext>,
    client: OnceCell<SparkConnectServiceClient<Channel>>,
}

impl SessionEngine {
    pub fn new(port: u16, session_id: String, user_context: Option<UserContext>) -> Self {
        Self { port, session_id, user_context, client: OnceCell::new() }
    }

    /// The session over `client`, already connected to the engine at `port`.
    pub fn connected(
        port: u16,
        client: SparkConnectServiceClient<Channel>,
        session_id: String,
        user_context: Option<UserContext>,
    ) -> Self {
        Self { port, session_id, user_context, client: OnceCell::new_with(Some(client)) }
    }

    async fn client(&self) -> Result<SparkConnectServiceClient<Channel>, EngineCallError> {
        let connect = || async { tarn_compute::engine::client(self.port).await.map_err(EngineCallError::Unreachable) };
        Ok(self.client.get_or_try_init(connect).await?.clone())
    }
}

fn refused(status: tonic::Status) -> EngineCallError {
    EngineCallError::Refused(status.message().to_string())
}

impl EngineCalls for SessionEngine {
    fn analyze_schema(&self, query: Relation) -> EngineFuture<'_, Option<DataType>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let request = AnalyzePlanRequest {
                session_id: self.session_id.clone(),
                user_context: self.user_context.clone(),
                client_type: Some("tarn-gateway".into()),
                analyze: Some(analyze_plan_request::Analyze::Schema(analyze_plan_request::Schema {
                    plan: Some(Plan { op_type: Some(plan::OpType::Root(query)) }),
                })),
                ..Default::default()
            };
            let response = client.analyze_plan(request).await.map_err(refused)?.into_inner();
            Ok(match response.result {
                Some(analyze_plan_response::Result::Schema(s)) => s.schema,
                _ => None,
            })
        })
    }

    fn run_sql(&self, sql: String) -> EngineFuture<'_, ()> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let request = ExecutePlanRequest {
                session_id: self.session_id.clone(),
                user_context: self.user_context.clone(),
                operation_id: Some(uuid::Uuid::new_v4().to_string()),
                client_type: Some("tarn-gateway".into()),
                plan: Some(Plan {
                    op_type: Some(plan::OpType::Command(Command {
                        command_type: Some(command::CommandType::SqlCommand(SqlCommand {
                            input: Some(Relation {
                                rel_type: Some(relation::RelType::Sql(Sql { query: sql, ..Default::default() })),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })),
                    })),
                }),
                ..Default::default()
            };
            let mut stream = client.execute_plan(request).await.map_err(refused)?.into_inner();
            while stream.message().await.map_err(refused)?.is_some() {}
            Ok(())
        })
    }
}
