//! Notification destinations (`/api/2.0/notification-destinations`):
//! generic webhooks, Slack and Microsoft Teams incoming webhooks, and email
//! lists. A webhook's URL and credentials are input-only: reads answer
//! `url_set`, `username_set`, `password_set`.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tarn_core::time::now_ms;
use tarn_store::{DestinationRow, Store};

use crate::error::{JobsError, Result, invalid};

#[derive(Clone)]
pub struct Destinations {
    store: Arc<Store>,
}

fn not_found(id: &str) -> JobsError {
    JobsError::NotFound(format!("Notification destination {id} does not exist."))
}

/// Destinations that take a POST to a URL: config key, destination type.
/// Chat ones (all but the generic webhook) get a line of text.
pub(super) const URL_KINDS: &[(&str, &str)] =
    &[("generic_webhook", "WEBHOOK"), ("slack", "SLACK"), ("microsoft_teams", "MICROSOFT_TEAMS")];

/// The destination type a config makes, once checked.
fn kind_of(config: &Value) -> Result<&'static str> {
    let Some(map) = config.as_object().filter(|m| m.len() == 1) else {
        return Err(invalid(
            "config must name exactly one destination kind (generic_webhook, slack, microsoft_teams or email)",
        ));
    };
    let url_kind = |kind: &str| URL_KINDS.iter().find(|(k, _)| *k == kind);
    match map.iter().next() {
        Some((kind, spec)) if let Some((_, destination_type)) = url_kind(kind) => {
            let url = spec.get("url").and_then(Value::as_str).unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(format!("{kind}.url must be an http or https URL")));
            }
            Ok(destination_type)
        }
        Some((kind, spec)) if kind == "email" => {
            let addresses = spec.get("addresses").and_then(Value::as_array).filter(|a| !a.is_empty());
            let valid = addresses.is_some_and(|a| a.iter().all(|x| x.as_str().is_some_and(|s| s.contains('@'))));
            if !valid {
                return Err(invalid("email.addresses must list at least one email address"));
            }
            Ok("EMAIL")
        }
        Some((kind, _)) => Err(JobsError::NotImplemented(format!(
            "tarn sends notifications to generic webhooks, Slack, Microsoft Teams and email; '{kind}' destinations \
             are not supported"
        ))),
        None => Err(invalid("config is empty")),
    }
}

impl Destinations {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    pub fn create(&self, user: &str, display_name: &str, config: Value) -> Result<Value> {
        if display_name.trim().is_empty() {
            return Err(invalid("display_name is required"));
        }
        let row = DestinationRow {
            id: uuid::Uuid::new_v4().to_string(),
            display_name: display_name.to_string(),
            destination_type: kind_of(&config)?.to_string(),
            config,
            created_by: user.to_string(),
            created_time: now_ms(),
        };
        self.store.put_destination(&row)?;
        Ok(shown(&row))
    }

    pub fn row(&self, id: &str) -> Result<DestinationRow> {
        self.store.get_destination(id)?.ok_or_else(|| not_found(id))
    }

    pub fn get(&self, id: &str) -> Result<Value> {
        Ok(shown(&self.row(id)?))
    }

    pub fn list(&self) -> Result<Vec<Value>> {
        let rows = self.store.list_destinations()?;
        Ok(rows
            .iter()
            .map(|r| json!({"id": r.id, "display_name": r.display_name, "destination_type": r.destination_type}))
            .collect())
    }

    /// Changes the name and, when given, the config (fields left out of a
    /// webhook config keep their values).
    pub fn update(&self, id: &str, display_name: Option<&str>, config: Option<Value>) -> Result<Value> {
        let mut row = self.row(id)?;
        if let Some(name) = display_name.filter(|n| !n.trim().is_empty()) {
            row.display_name = name.to_string();
        }
        if let Some(config) = config {
            let merged = merge_config(&row.config, config);
            let kind = kind_of(&merged)?;
            if kind != row.destination_type {
                return Err(invalid(format!("A {} destination cannot become {kind}", row.destination_type)));
            }
            row.config = merged;
        }
        self.store.put_destination(&row)?;
        Ok(shown(&row))
    }

    pub fn delete(&self, id: &str) -> Result<()> {
        if !self.store.delete_destination(id)? {
            return Err(not_found(id));
        }
        Ok(())
    }
}

fn merge_config(old: &Value, new: Value) -> Value {
    let (Some(old_map), Value::Object(new_map)) = (old.as_object(), &new) else { return new };
    let mut out = old_map.clone();
    for (kind, spec) in new_map {
        match (out.get_mut(kind), spec) {
            (Some(Value::Object(existing)), Value::Object(fields)) => {
                existing.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            _ => {
                out.insert(kind.clone(), spec.clone());
            }
        }
    }
    Value::Object(out)
}

/// A destination as the API shows it, secrets left out.
fn shown(row: &DestinationRow) -> Value {
    let mut config = Map::new();
    for (kind, _) in URL_KINDS {
        let Some(hook) = row.config.get(*kind) else { continue };
        let set = |f: &str| hook.get(f).and_then(Value::as_str).is_some_and(|s| !s.is_empty());
        let shown = match *kind {
            "generic_webhook" => {
                json!({"url_set": set("url"), "username_set": set("username"), "password_set": set("password")})
            }
            _ => json!({"url_set": set("url")}),
        };
        config.insert(kind.to_string(), shown);
    }
    if let Some(email) = row.config.get("email") {
        config.insert("email".into(), email.clone());
    }
    json!({
        "id": row.id,
        "display_name": row.display_name,
        "destination_type": row.destination_type,
        "config": config,
    })
}
