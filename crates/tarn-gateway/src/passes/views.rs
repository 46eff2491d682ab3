//! The views pass ([`crate::views`]): a view statement is answered and
//! settled; every relation that reads a view, by name or in SQL text, gets
//! the view's query in its place. After the paths pass, so the user's text
//! is already fit for the engine; the views' queries are made so here.

use std::borrow::Cow;

use spark_connect_proto::{ExecutePlanRequest, LocalRelation, Relation, command, plan, relation};

use super::paths::rewrite_sql_text;
use super::{Outcome, PassContext, sql::sql_relation};
use crate::GatewayError;
use crate::views::{Scope, answer, expand_reads};

pub(crate) async fn pass(request: &mut ExecutePlanRequest, cx: &mut PassContext<'_>) -> Result<Outcome, GatewayError> {
    let Some(views) = cx.hooks.views.clone() else { return Ok(Outcome::Unchanged) };
    let paths = cx.hooks.paths.clone();
    let rewrite = move |text: &str| match paths.as_deref() {
        Some(resolver) => rewrite_sql_text(text, resolver).map(Cow::into_owned),
        None => Ok(text.to_string()),
    };
    let user = cx.user.map_or("", |u| u.user_name.as_str());
    let scope = Scope { views: views.as_ref(), namespace: &cx.namespace, user, rewrite: &rewrite };
    if let Some(relation) = sql_relation(request)
        && let Some(relation::RelType::Sql(sql)) = relation.rel_type.as_ref()
        && let Some(answered) = answer(cx.engine, scope, &sql.query).await
    {
        let data = answered.map_err(GatewayError::Statement)?;
        relation.rel_type =
            Some(relation::RelType::LocalRelation(LocalRelation { data: Some(data.into()), schema: None }));
        return Ok(Outcome::Settled);
    }
    let changed = match plan_relation(request) {
        Some(relation) => expand_reads(views.as_ref(), relation, &cx.namespace, &rewrite),
        None => Ok(false),
    };
    Ok(if changed.map_err(GatewayError::Statement)? { Outcome::Changed } else { Outcome::Unchanged })
}

/// The relation a plan computes: its root, or what its command runs on.
fn plan_relation(request: &mut ExecutePlanRequest) -> Option<&mut Relation> {
    match request.plan.as_mut()?.op_type.as_mut()? {
        plan::OpType::Root(relation) => Some(relation),
        plan::OpType::Command(c) => match c.command_type.as_mut()? {
            command::CommandType::SqlCommand(sql) => sql.input.as_mut(),
            command::CommandType::WriteOperation(write) => write.input.as_mut(),
            command::CommandType::WriteOperationV2(write) => write.input.as_mut(),
            command::CommandType::CreateDataframeView(view) => view.input.as_mut(),
            _ => None,
        },
        _ => None,
    }
}
