//! One evaluation of an alert: its query runs on the warehouse, the
//! condition reads the result, the new state is stored, and subscribers are
//! told when the alert fires (a move to TRIGGERED, or still TRIGGERED once
//! its retrigger interval has passed) or, with `notify_on_ok`, when it
//! comes back to OK. Custom subjects and bodies take Databricks' template
//! variables (`{{ALERT_NAME}}`, `{{ALERT_STATUS}}`, ...).

use std::time::Duration;

use serde_json::{Map, Value, json};
use tarn_core::time::now_ms;
use tarn_sql::statements::{OnWaitTimeout, StatementRequest};
use tarn_store::{AlertStateRow, SqlObjectRow};

use crate::condition::{Condition, Finding, State};
use crate::objects::{self, Kind};
use crate::{AlertError, Alerts};

/// Whom an alert tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    Destination(String),
    Email(String),
}

impl Subscription {
    /// `{destination_id}` or `{user_name | user_email}`.
    pub fn parse(v: &Value) -> Option<Self> {
        if let Some(id) = v.get("destination_id").and_then(Value::as_str) {
            return Some(Self::Destination(id.to_string()));
        }
        let email = v.get("user_email").or_else(|| v.get("user_name")).and_then(Value::as_str);
        email.map(|e| Self::Email(e.to_string()))
    }
}

/// A v2 alert's `evaluation.notification.subscriptions`.
pub fn v2_subscriptions(evaluation: &Value) -> Vec<Subscription> {
    let list = evaluation.pointer("/notification/subscriptions").and_then(Value::as_array);
    list.into_iter().flatten().filter_map(Subscription::parse).collect()
}

/// An alert's definition, as one evaluation needs it.
struct Definition {
    name: String,
    condition: Condition,
    query_text: String,
    warehouse_id: Option<String>,
    notify_on_ok: bool,
    retrigger_seconds: i64,
    custom_subject: Option<String>,
    custom_body: Option<String>,
}

fn text(info: &Value, pointer: &str) -> Option<String> {
    info.pointer(pointer).and_then(Value::as_str).map(str::to_string)
}

impl Alerts {
    /// Evaluates an alert now and tells `subscriptions` (with a v2 alert's
    /// own) if it fires; its new state, or why it could not be evaluated.
    pub async fn evaluate(
        &self,
        kind: Kind,
        id: &str,
        subscriptions: Vec<Subscription>,
        user: &str,
    ) -> Result<State, AlertError> {
        let row = self.active(kind, id)?;
        let definition = self.definition(kind, &row)?;
        let previous = self.inner.store.alert_state(id)?;
        let found = self.run_query(&definition, user).await.and_then(|result| definition.condition.evaluate(&result));
        let now = now_ms();
        let finding = match found {
            Ok(finding) => finding,
            Err(error) => {
                // v1 alerts show a failed evaluation as UNKNOWN, v2 as ERROR.
                let state = if kind == Kind::AlertV2 { State::Error } else { State::Unknown };
                let failed = AlertStateRow {
                    state: state.as_str().into(),
                    trigger_time_ms: previous.trigger_time_ms,
                    last_evaluated_ms: Some(now),
                    error: Some(error.clone()),
                };
                if self.inner.store.record_alert_evaluation(id, &previous, &failed)? {
                    tracing::warn!(alert = id, %error, "an alert's evaluation failed");
                }
                return Ok(state);
            }
        };
        let was = State::parse(&previous.state).unwrap_or(State::Unknown);
        let retrigger_due = definition.retrigger_seconds > 0
            && previous.trigger_time_ms.is_some_and(|t| now - t >= definition.retrigger_seconds * 1000);
        let fires = finding.state == State::Triggered && (was != State::Triggered || retrigger_due);
        let recovers = finding.state == State::Ok && was == State::Triggered && definition.notify_on_ok;
        let stored = AlertStateRow {
            state: finding.state.as_str().into(),
            trigger_time_ms: if fires { Some(now) } else { previous.trigger_time_ms },
            last_evaluated_ms: Some(now),
            error: None,
        };
        if !self.inner.store.record_alert_evaluation(id, &previous, &stored)? {
            // Another evaluation landed since this one read the state: it
            // decided whether to notify, this one must not decide again.
            tracing::debug!(alert = id, "an evaluation that overlapped another one is dropped");
            return Ok(State::parse(&self.inner.store.alert_state(id)?.state).unwrap_or(State::Unknown));
        }
        if fires || recovers {
            let mut to = subscriptions;
            if kind == Kind::AlertV2 {
                to.extend(row.info.get("evaluation").map(v2_subscriptions).unwrap_or_default());
            }
            let shown = objects::view(kind, &row, Some(&stored));
            self.notify(&definition, &finding, shown, to);
        }
        Ok(finding.state)
    }

    fn definition(&self, kind: Kind, row: &SqlObjectRow) -> Result<Definition, AlertError> {
        let info = &row.info;
        let fields: Map<String, Value> = objects::settable(kind, info);
        let name = text(info, "/display_name").unwrap_or_default();
        let definition = match kind {
            Kind::Query => return Err(AlertError::InvalidParameter(format!("{} is a query, not an alert", row.id))),
            Kind::Alert => {
                let query_id = text(info, "/query_id").unwrap_or_default();
                let (query_text, warehouse_id) = self.query_text(&query_id)?;
                Definition {
                    name,
                    condition: objects::alert_condition(&fields)?,
                    query_text,
                    warehouse_id,
                    notify_on_ok: info.get("notify_on_ok").and_then(Value::as_bool).unwrap_or(false),
                    retrigger_seconds: info.get("seconds_to_retrigger").and_then(Value::as_i64).unwrap_or(0),
                    custom_subject: text(info, "/custom_subject"),
                    custom_body: text(info, "/custom_body"),
                }
            }
            Kind::AlertV2 => Definition {
                name,
                condition: objects::alert_v2_condition(&fields)?,
                query_text: text(info, "/query_text").unwrap_or_default(),
                warehouse_id: text(info, "/warehouse_id"),
                notify_on_ok: info
                    .pointer("/evaluation/notification/notify_on_ok")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                retrigger_seconds: info
                    .pointer("/evaluation/notification/retrigger_seconds")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                custom_subject: text(info, "/custom_summary"),
                custom_body: text(info, "/custom_description"),
            },
        };
        Ok(definition)
    }

    async fn run_query(
        &self,
        definition: &Definition,
        user: &str,
    ) -> Result<std::sync::Arc<tarn_sql::result::ResultSet>, String> {
        let statements = &self.inner.statements;
        let warehouse_id = definition.warehouse_id.clone().unwrap_or_else(|| statements.warehouse().id().to_string());
        let request = StatementRequest {
            statement: definition.query_text.clone(),
            warehouse_id,
            catalog: None,
            schema: None,
            parameters: Vec::new(),
            row_limit: Some(10_000),
            byte_limit: None,
            wait_timeout: Duration::from_secs(50),
            on_wait_timeout: OnWaitTimeout::Continue,
            session_id: None,
            user: user.to_string(),
        };
        statements.run_to_end(request).await
    }

    fn notify(&self, definition: &Definition, finding: &Finding, alert: Value, to: Vec<Subscription>) {
        let status = finding.state.as_str();
        let value = finding.value.clone().unwrap_or_else(|| "null".into());
        let fill = |template: &str| {
            [
                ("{{ALERT_NAME}}", definition.name.as_str()),
                ("{{ALERT_STATUS}}", status),
                ("{{ALERT_CONDITION}}", &definition.condition.describe()),
                ("{{ALERT_COLUMN}}", &definition.condition.operand.column),
                ("{{QUERY_RESULT_VALUE}}", &value),
            ]
            .iter()
            .fold(template.to_string(), |t, (k, v)| t.replace(k, v))
        };
        let subject = definition
            .custom_subject
            .as_deref()
            .map(fill)
            .unwrap_or_else(|| format!("[tarn] Alert \"{}\" changed status to {status}", definition.name));
        let text = definition.custom_body.as_deref().map(fill).unwrap_or_else(|| {
            format!("Alert \"{}\" is {status}: {} (value {value}).", definition.name, definition.condition.describe())
        });
        let mut payload = self.workspace_payload();
        payload["event_type"] = json!(format!("alert.{}", status.to_lowercase()));
        payload["alert"] = alert;
        payload["query_result_value"] = json!(finding.value);
        payload["condition"] = json!(definition.condition.describe());
        let (mut destination_ids, mut emails) = (Vec::new(), Vec::new());
        for s in to {
            match s {
                Subscription::Destination(id) => destination_ids.push(id),
                Subscription::Email(e) => emails.push(e),
            }
        }
        self.inner.notifier.notice(tarn_jobs::Notice { subject, text, payload, destination_ids, emails });
    }
}
