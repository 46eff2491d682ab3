//! Databricks SQL's saved queries and alerts, as `databricks-sdk`'s
//! `w.queries`, `w.alerts` and `w.alerts_v2` call them. An alert runs a
//! query on the warehouse, compares a result column with a threshold
//! ([`condition`]) and, when its state moves to TRIGGERED (or back to OK,
//! if asked), tells the notification destinations and addresses it names
//! ([`evaluate`]). A v1 alert is evaluated by a job's `sql_task.alert`,
//! whose subscriptions say whom to tell; a v2 alert carries its own quartz
//! schedule and subscriptions, which [`scheduler`] fires.
//!
//! Invariants: an alert's state is the outcome of its last evaluation, never
//! assumed (UNKNOWN until it has run), written fenced on the evaluation it
//! followed, so of two overlapping evaluations only one lands and notifies;
//! a failed evaluation never fires; the objects' wire JSON is built in
//! [`objects`] only.

pub mod condition;
pub mod error;
pub mod evaluate;
pub mod objects;
pub mod scheduler;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::{SqlObjectRow, Store};

pub use condition::State;
pub use error::{AlertError, Result};
pub use evaluate::Subscription;
pub use objects::Kind;

/// A job's `sql_task.query` and `sql_task.alert` reach saved queries and alerts here.
impl tarn_jobs::SqlObjects for Alerts {
    fn query(&self, query_id: &str) -> std::result::Result<(String, Option<String>), String> {
        self.query_text(query_id).map_err(|e| e.to_string())
    }

    fn evaluate_alert<'a>(
        &'a self,
        alert_id: &'a str,
        subscriptions: &'a [Value],
        user: &'a str,
    ) -> tarn_jobs::tasks::BoxFuture<'a, std::result::Result<String, String>> {
        let to: Vec<Subscription> = subscriptions.iter().filter_map(Subscription::parse).collect();
        Box::pin(async move {
            self.check_subscriptions(&to).map_err(|e| e.to_string())?;
            let state = self.evaluate(Kind::Alert, alert_id, to, user).await.map_err(|e| e.to_string())?;
            Ok(state.as_str().to_string())
        })
    }
}

/// Most objects one list page holds.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

#[derive(Clone)]
pub struct Alerts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    statements: tarn_sql::Statements,
    notifier: tarn_jobs::Notifier,
    workspace_id: String,
    /// Alerts being evaluated now, so a schedule never overlaps itself.
    evaluating: Mutex<HashSet<String>>,
}

/// A list page.
pub struct Page {
    pub objects: Vec<Value>,
    pub next_page_token: Option<String>,
}

impl Alerts {
    pub fn new(
        store: Arc<Store>,
        statements: tarn_sql::Statements,
        notifier: tarn_jobs::Notifier,
        workspace_id: String,
    ) -> Self {
        let evaluating = Mutex::new(HashSet::new());
        Self { inner: Arc::new(Inner { store, statements, notifier, workspace_id, evaluating }) }
    }

    /// Creates a query or an alert from the client's fields.
    pub fn create(&self, kind: Kind, body: &Value, owner: &str) -> Result<Value> {
        let fields = objects::settable(kind, body);
        objects::check(kind, &fields)?;
        self.check_references(kind, &fields)?;
        let now = now_ms();
        let row = SqlObjectRow {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.key().into(),
            info: Value::Object(fields),
            owner: owner.to_string(),
            lifecycle_state: "ACTIVE".into(),
            create_time_ms: now,
            update_time_ms: now,
        };
        self.inner.store.insert_sql_object(&row)?;
        self.show(kind, &row)
    }

    /// An object, trashed ones included (as Databricks shows them).
    pub fn get(&self, kind: Kind, id: &str) -> Result<Value> {
        let row = self.row(kind, id)?;
        self.show(kind, &row)
    }

    pub fn list(&self, kind: Kind, page_size: Option<usize>, page_token: Option<&str>) -> Result<Page> {
        let limit = page_size.filter(|n| *n > 0).unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let rows = self.inner.store.list_sql_objects(kind.key(), page_token.unwrap_or_default(), limit + 1)?;
        let more = rows.len() > limit;
        let objects = rows.iter().take(limit).map(|r| self.show(kind, r)).collect::<Result<Vec<_>>>()?;
        let next_page_token = more.then(|| rows[limit - 1].id.clone());
        Ok(Page { objects, next_page_token })
    }

    /// Updates the fields `update_mask` names.
    pub fn update(&self, kind: Kind, id: &str, patch: &Value, update_mask: &str, user: &str) -> Result<Value> {
        let row = self.active(kind, id)?;
        let fields = objects::masked(kind, &row.info, patch, update_mask)?;
        objects::check(kind, &fields)?;
        self.check_references(kind, &fields)?;
        // Ownership moves with issue 19's identities; `owner_user_name` in a mask is refused.
        if !self.inner.store.update_sql_object(kind.key(), id, &Value::Object(fields), &row.owner, now_ms())? {
            return Err(kind.not_found(id));
        }
        tracing::debug!(kind = kind.key(), id, user, "updated");
        self.get(kind, id)
    }

    /// Moves an object to the trash (v2 alerts: DELETED), or with `purge`
    /// removes it.
    pub fn delete(&self, kind: Kind, id: &str, purge: bool) -> Result<()> {
        let done = match purge {
            true => self.inner.store.purge_sql_object(kind.key(), id)?,
            false => self.inner.store.retire_sql_object(kind.key(), id, kind.retired_state(), now_ms())?,
        };
        if !done {
            return Err(kind.not_found(id));
        }
        Ok(())
    }

    fn row(&self, kind: Kind, id: &str) -> Result<SqlObjectRow> {
        self.inner.store.get_sql_object(kind.key(), id)?.ok_or_else(|| kind.not_found(id))
    }

    fn active(&self, kind: Kind, id: &str) -> Result<SqlObjectRow> {
        Some(self.row(kind, id)?).filter(|r| r.lifecycle_state == "ACTIVE").ok_or_else(|| kind.not_found(id))
    }

    fn show(&self, kind: Kind, row: &SqlObjectRow) -> Result<Value> {
        let state = match kind {
            Kind::Query => None,
            Kind::Alert | Kind::AlertV2 => Some(self.inner.store.alert_state(&row.id)?),
        };
        Ok(objects::view(kind, row, state.as_ref()))
    }

    /// An alert's query must exist; a named warehouse and a v2 alert's
    /// destinations too.
    fn check_references(&self, kind: Kind, fields: &serde_json::Map<String, Value>) -> Result<()> {
        if let Some(id) = fields.get("warehouse_id").and_then(Value::as_str) {
            self.inner.statements.warehouse().status(id).map_err(|e| AlertError::NotFound(e.to_string()))?;
        }
        match kind {
            Kind::Query => Ok(()),
            Kind::Alert => {
                let query_id = fields.get("query_id").and_then(Value::as_str).unwrap_or_default();
                self.active(Kind::Query, query_id).map(|_| ())
            }
            Kind::AlertV2 => {
                let subscriptions = fields.get("evaluation").map(evaluate::v2_subscriptions).unwrap_or_default();
                self.check_subscriptions(&subscriptions)
            }
        }
    }

    /// Every destination a subscription names exists.
    pub fn check_subscriptions(&self, subscriptions: &[Subscription]) -> Result<()> {
        for s in subscriptions {
            if let Subscription::Destination(id) = s
                && self.inner.notifier.destinations().get(id).is_err()
            {
                return Err(error::invalid(format!("Notification destination {id} does not exist.")));
            }
        }
        Ok(())
    }

    /// A saved query's text and warehouse, for a job's `sql_task.query`.
    pub fn query_text(&self, query_id: &str) -> Result<(String, Option<String>)> {
        let row = self.active(Kind::Query, query_id)?;
        let text = row.info.get("query_text").and_then(Value::as_str).unwrap_or_default().to_string();
        let warehouse = row.info.get("warehouse_id").and_then(Value::as_str).map(str::to_string);
        Ok((text, warehouse))
    }

    fn workspace_payload(&self) -> Value {
        json!({"workspace_id": self.inner.workspace_id})
    }
}
