//! The first pass: the caller's access. A `GRANT`, `REVOKE` or `SHOW
//! GRANTS` is answered here (a local relation holding its result, as the
//! SQL pass answers); anything else is refused unless the session's
//! principal may reach every table, schema and path the request names
//! ([`crate::access`]). A `USE` is noted so later names resolve where the
//! session now is.

use spark_connect_proto::{ExecutePlanRequest, LocalRelation, relation};

use super::sql::{SqlFailure, sql_relation};
use super::{Outcome, PassContext};
use crate::GatewayError;
use crate::access::{grant_statement, of_plan};

pub(crate) fn pass(request: &mut ExecutePlanRequest, cx: &mut PassContext<'_>) -> Result<Outcome, GatewayError> {
    let (Some(control), Some(user)) = (cx.hooks.access.as_deref(), cx.user) else { return Ok(Outcome::Unchanged) };
    if let Some(relation) = sql_relation(request)
        && let Some(relation::RelType::Sql(sql)) = relation.rel_type.as_ref()
        && let Some(statement) = grant_statement(&sql.query)
    {
        let statement = statement.map_err(|message| {
            GatewayError::Statement(SqlFailure {
                exception_class: "org.apache.spark.sql.catalyst.parser.ParseException",
                message: format!("[PARSE_SYNTAX_ERROR] {message}"),
            })
        })?;
        let data = control.grant(&user.user_name, &statement, &cx.namespace).map_err(GatewayError::Statement)?;
        relation.rel_type =
            Some(relation::RelType::LocalRelation(LocalRelation { data: Some(data.into()), schema: None }));
        return Ok(Outcome::Settled);
    }
    let access = of_plan(request);
    if !access.is_empty() {
        control.check(&user.user_name, &access, &cx.namespace).map_err(GatewayError::PermissionDenied)?;
    }
    if let Some(to) = access.namespace {
        cx.namespace = match to.as_slice() {
            [schema] => vec![cx.namespace.first().cloned().unwrap_or_default(), schema.clone()],
            _ => to,
        };
    }
    Ok(Outcome::Unchanged)
}
