//! SQL that tarn answers itself: the gateway hands each SQL text of an
//! `ExecutePlan` to a [`SqlInterceptor`]; when it takes the statement, the
//! statement is replaced by a local relation holding its result, which the
//! engine then serves like any other (so `spark.sql(...)` keeps its usual
//! lazy DataFrame and operation handling).
//!
//! The pass of the pipeline that comes second: after the paths pass, so
//! the interceptor sees the names engines use; a statement it answers is
//! settled.

use std::future::Future;
use std::pin::Pin;

use spark_connect_proto::{ExecutePlanRequest, LocalRelation, Relation, command, plan, relation};

use super::{Outcome, PassContext};
use crate::GatewayError;

/// A statement tarn ran and that failed, as a Spark client should see it.
#[derive(Debug, Clone)]
pub struct SqlFailure {
    /// The JVM exception class clients map to their exception types.
    pub exception_class: &'static str,
    pub message: String,
}

pub type Intercepted<'a> = Pin<Box<dyn Future<Output = Option<Result<Vec<u8>, SqlFailure>>> + Send + 'a>>;

/// What the gateway asks before the engine sees a SQL text.
pub trait SqlInterceptor: Send + Sync + 'static {
    /// `None` when the engine should run `sql`; else the result as an Arrow
    /// IPC stream, or the failure to give the client.
    fn intercept<'a>(&'a self, sql: &'a str) -> Intercepted<'a>;

    /// Brings tarn's system tables up to date before an engine reads one by
    /// name, without SQL text to intercept (`spark.table("system...")`).
    fn refresh_system_tables(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// The SQL relation of a `spark.sql(...)` command or of a root `Sql` plan.
pub(crate) fn sql_relation(request: &mut ExecutePlanRequest) -> Option<&mut Relation> {
    match request.plan.as_mut()?.op_type.as_mut()? {
        plan::OpType::Root(relation) => Some(relation),
        plan::OpType::Command(c) => match c.command_type.as_mut()? {
            command::CommandType::SqlCommand(sql) => {
                #[allow(deprecated)]
                if sql.input.is_none() && !sql.sql.is_empty() {
                    sql.input = Some(Relation {
                        common: None,
                        rel_type: Some(relation::RelType::Sql(spark_connect_proto::Sql {
                            query: std::mem::take(&mut sql.sql),
                            args: std::mem::take(&mut sql.args),
                            pos_args: std::mem::take(&mut sql.pos_args),
                            named_arguments: std::mem::take(&mut sql.named_arguments),
                            pos_arguments: std::mem::take(&mut sql.pos_arguments),
                        })),
                    });
                }
                sql.input.as_mut()
            }
            _ => None,
        },
        _ => None,
    }
}

/// Gives the request's SQL to `interceptor`; true when the request changed.
async fn rewrite(interceptor: &dyn SqlInterceptor, request: &mut ExecutePlanRequest) -> Result<bool, SqlFailure> {
    let Some(relation) = sql_relation(request) else { return Ok(false) };
    let Some(relation::RelType::Sql(sql)) = relation.rel_type.as_ref() else { return Ok(false) };
    let Some(result) = interceptor.intercept(&sql.query).await else { return Ok(false) };
    let data = result?;
    relation.rel_type = Some(relation::RelType::LocalRelation(LocalRelation { data: Some(data.into()), schema: None }));
    Ok(true)
}

/// The SQL pass: brings tarn's system tables up to date when the paths
/// pass saw one read by name, then gives the request's SQL text to the
/// interceptor. A statement it took is settled; its failure is the client's.
pub(crate) async fn pass(request: &mut ExecutePlanRequest, cx: &mut PassContext<'_>) -> Result<Outcome, GatewayError> {
    let Some(interceptor) = cx.hooks.sql.as_deref() else { return Ok(Outcome::Unchanged) };
    if cx.reads_system_tables {
        interceptor.refresh_system_tables().await;
    }
    match rewrite(interceptor, request).await {
        Ok(true) => Ok(Outcome::Settled),
        Ok(false) => Ok(Outcome::Unchanged),
        Err(failure) => Err(GatewayError::Statement(failure)),
    }
}
