//! The three kinds of Databricks SQL object tarn keeps: saved queries
//! (`/api/2.0/sql/queries`), alerts on them (`/api/2.0/sql/alerts`) and
//! self-contained scheduled alerts (`/api/2.0/alerts`, "alerts v2"). Each
//! kind names the fields a client may set; the server's own fields (id,
//! owner, times, states) are added when an object is shown.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use tarn_jobs::schedule::QuartzSchedule;
use tarn_store::{AlertStateRow, SqlObjectRow};

use crate::condition::{self, Condition, Threshold};
use crate::error::{AlertError, Result, invalid};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Query,
    Alert,
    AlertV2,
}

impl Kind {
    pub fn key(self) -> &'static str {
        match self {
            Kind::Query => "query",
            Kind::Alert => "alert",
            Kind::AlertV2 => "alert_v2",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Kind::Query => "Query",
            Kind::Alert | Kind::AlertV2 => "Alert",
        }
    }

    /// What deleting leaves: queries and alerts go to the trash; v2 alerts
    /// are DELETED.
    pub fn retired_state(self) -> &'static str {
        match self {
            Kind::Query | Kind::Alert => "TRASHED",
            Kind::AlertV2 => "DELETED",
        }
    }

    /// The fields a client sets.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::Query => &[
                "display_name",
                "query_text",
                "warehouse_id",
                "catalog",
                "schema",
                "description",
                "parent_path",
                "tags",
                "parameters",
                "apply_auto_limit",
                "run_as_mode",
            ],
            Kind::Alert => &[
                "display_name",
                "query_id",
                "condition",
                "custom_body",
                "custom_subject",
                "notify_on_ok",
                "seconds_to_retrigger",
                "parent_path",
            ],
            Kind::AlertV2 => &[
                "display_name",
                "query_text",
                "warehouse_id",
                "evaluation",
                "schedule",
                "custom_summary",
                "custom_description",
                "parent_path",
                "parameters",
                "run_as_user_name",
                "run_as",
            ],
        }
    }

    pub fn not_found(self, id: &str) -> AlertError {
        AlertError::NotFound(format!("{} {id} does not exist.", self.noun()))
    }
}

/// The client's fields of `body`, others dropped.
pub fn settable(kind: Kind, body: &Value) -> Map<String, Value> {
    let fields = kind.fields();
    body.as_object()
        .map(|m| m.iter().filter(|(k, v)| fields.contains(&k.as_str()) && !v.is_null()))
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Applies an update: the fields `update_mask` names (comma-separated, `*`
/// for all) are taken from `patch`, a named field absent from it cleared.
pub fn masked(kind: Kind, stored: &Value, patch: &Value, update_mask: &str) -> Result<Map<String, Value>> {
    let mut merged = settable(kind, stored);
    let named: Vec<&str> = update_mask.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    if named.is_empty() {
        return Err(invalid("update_mask is required: the comma-separated fields to update, or '*'"));
    }
    let fields: Vec<&str> = if named == ["*"] { kind.fields().to_vec() } else { named };
    for field in fields {
        if !kind.fields().contains(&field) {
            return Err(invalid(format!("update_mask names '{field}', which cannot be updated")));
        }
        match patch.get(field).filter(|v| !v.is_null()) {
            Some(v) => merged.insert(field.to_string(), v.clone()),
            None => merged.remove(field),
        };
    }
    Ok(merged)
}

fn required<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid(format!("{name} is required")))
}

/// Checks the fields of a query or an alert by themselves; what they
/// reference (a query, a warehouse, destinations) `Alerts` checks.
pub fn check(kind: Kind, fields: &Map<String, Value>) -> Result<()> {
    required(fields, "display_name")?;
    match kind {
        Kind::Query => {
            required(fields, "query_text")?;
        }
        Kind::Alert => {
            required(fields, "query_id")?;
            alert_condition(fields)?;
            if fields.get("seconds_to_retrigger").is_some_and(|s| s.as_i64().is_none_or(|s| s < 0)) {
                return Err(invalid("seconds_to_retrigger must be a non-negative number of seconds"));
            }
        }
        Kind::AlertV2 => {
            required(fields, "query_text")?;
            alert_v2_condition(fields)?;
            schedule(fields)?;
        }
    }
    Ok(())
}

/// A v1 alert's `condition`.
pub fn alert_condition(fields: &Map<String, Value>) -> Result<Condition> {
    let c = fields.get("condition").ok_or_else(|| invalid("condition is required"))?;
    let column = c.pointer("/operand/column").ok_or_else(|| invalid("condition.operand.column is required"))?;
    let mut operand = condition::operand(column, "condition.operand.column")?;
    // v1 alerts compare the first row's value; they have no aggregations.
    operand.aggregation = None;
    let op = condition::op(c.get("op").and_then(Value::as_str), "condition.op")?;
    let threshold = match c.pointer("/threshold/value") {
        Some(v) => condition::threshold_value(v, "condition.threshold.value")?,
        None => Threshold::None,
    };
    let empty_result_state = condition::empty_result_state(c.get("empty_result_state").and_then(Value::as_str))?;
    Condition { operand, op, threshold, empty_result_state }.checked()
}

/// A v2 alert's `evaluation`.
pub fn alert_v2_condition(fields: &Map<String, Value>) -> Result<Condition> {
    let e = fields.get("evaluation").ok_or_else(|| invalid("evaluation is required"))?;
    let source = e.get("source").ok_or_else(|| invalid("evaluation.source is required"))?;
    let operand = condition::operand(source, "evaluation.source")?;
    let op = condition::op(e.get("comparison_operator").and_then(Value::as_str), "evaluation.comparison_operator")?;
    let threshold = match (e.pointer("/threshold/value"), e.pointer("/threshold/column")) {
        (Some(v), _) => condition::threshold_value(v, "evaluation.threshold.value")?,
        (None, Some(c)) => Threshold::Column(condition::operand(c, "evaluation.threshold.column")?),
        (None, None) => Threshold::None,
    };
    let empty_result_state = condition::empty_result_state(e.get("empty_result_state").and_then(Value::as_str))?;
    Condition { operand, op, threshold, empty_result_state }.checked()
}

/// A v2 alert's schedule.
pub fn schedule(fields: &Map<String, Value>) -> Result<QuartzSchedule> {
    let s = fields.get("schedule").ok_or_else(|| invalid("schedule is required"))?;
    let text = |key: &str| s.get(key).and_then(Value::as_str);
    QuartzSchedule::parse(text("quartz_cron_schedule").unwrap_or_default(), text("timezone_id"), text("pause_status"))
        .map_err(|e| invalid(e.to_string()))
}

pub fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An object as the API shows it, with its last evaluation for alerts.
pub fn view(kind: Kind, row: &SqlObjectRow, state: Option<&AlertStateRow>) -> Value {
    let mut out = settable(kind, &row.info);
    out.insert("id".into(), json!(row.id));
    out.insert("owner_user_name".into(), json!(row.owner));
    out.insert("lifecycle_state".into(), json!(row.lifecycle_state));
    out.insert("create_time".into(), json!(rfc3339(row.create_time_ms)));
    out.insert("update_time".into(), json!(rfc3339(row.update_time_ms)));
    if kind == Kind::Query {
        out.insert("last_modifier_user_name".into(), json!(row.owner));
    }
    let Some(state) = state else { return Value::Object(out) };
    match kind {
        Kind::Alert => {
            out.insert("state".into(), json!(state.state));
            if let Some(t) = state.trigger_time_ms {
                out.insert("trigger_time".into(), json!(rfc3339(t)));
            }
        }
        Kind::AlertV2 => {
            let evaluation = out.entry("evaluation").or_insert_with(|| json!({}));
            evaluation["state"] = json!(state.state);
            if let Some(t) = state.last_evaluated_ms {
                evaluation["last_evaluated_at"] = json!(rfc3339(t));
            }
            if let Some(user) = row.info.get("run_as_user_name").and_then(Value::as_str) {
                out.insert("effective_run_as".into(), json!({"user_name": user}));
            }
        }
        Kind::Query => {}
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_masks_take_named_fields_and_refuse_others() {
        let stored = json!({"display_name": "a", "query_text": "SELECT 1", "description": "d"});
        let patch = json!({"query_text": "SELECT 2"});
        let merged = masked(Kind::Query, &stored, &patch, "query_text, description").unwrap();
        assert_eq!(merged["query_text"], "SELECT 2");
        assert!(!merged.contains_key("description"));
        assert_eq!(merged["display_name"], "a");
        assert!(masked(Kind::Query, &stored, &patch, "id").is_err());
        assert!(masked(Kind::Query, &stored, &patch, "").is_err());
    }

    #[test]
    fn alerts_are_checked_at_create() {
        let alert = |condition: Value| {
            settable(Kind::Alert, &json!({"display_name": "a", "query_id": "q", "condition": condition}))
        };
        let good = json!({"op": "GREATER_THAN", "operand": {"column": {"name": "x"}}, "threshold": {"value": {"double_value": 1}}});
        assert!(check(Kind::Alert, &alert(good)).is_ok());
        let no_threshold = json!({"op": "GREATER_THAN", "operand": {"column": {"name": "x"}}});
        assert!(check(Kind::Alert, &alert(no_threshold)).is_err());
        let v2 = settable(
            Kind::AlertV2,
            &json!({"display_name": "a", "query_text": "SELECT 1 AS x",
                    "evaluation": {"source": {"name": "x"}, "comparison_operator": "IS_NULL"},
                    "schedule": {"quartz_cron_schedule": "0 0 * * * ?", "timezone_id": "Mars/Olympus"}}),
        );
        assert!(check(Kind::AlertV2, &v2).unwrap_err().to_string().contains("timezone_id"));
    }
}
