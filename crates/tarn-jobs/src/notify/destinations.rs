//! Notification destinations (`/api/2.0/notification-destinations`):
//! generic webhooks, Slack and Microsoft Teams incoming webhooks, and email
//! lists, checked and kept; read back typed as [`Destination`]s. A
//! webhook's URL and credentials are [`Secret`]s: input-only, their
//! values reach only the notifier (tarn-api shows whether each is set).

use std::sync::Arc;

use serde_json::Value;
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

/// A notification destination as kept.
#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub display_name: String,
    pub config: DestinationConfig,
}

#[derive(Debug, Clone)]
pub enum DestinationConfig {
    /// A URL to POST to, with basic-auth credentials if given.
    Webhook {
        kind: WebhookKind,
        url: Option<Secret>,
        username: Option<Secret>,
        password: Option<Secret>,
    },
    Email {
        addresses: Vec<String>,
    },
}

/// Destinations that take a POST to a URL. Chat ones (all but the generic
/// webhook) get a line of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    Generic,
    Slack,
    MicrosoftTeams,
}

impl WebhookKind {
    const ALL: [WebhookKind; 3] = [WebhookKind::Generic, WebhookKind::Slack, WebhookKind::MicrosoftTeams];

    /// Its key in a destination's `config`.
    pub fn config_key(self) -> &'static str {
        match self {
            WebhookKind::Generic => "generic_webhook",
            WebhookKind::Slack => "slack",
            WebhookKind::MicrosoftTeams => "microsoft_teams",
        }
    }

    pub fn destination_type(self) -> &'static str {
        match self {
            WebhookKind::Generic => "WEBHOOK",
            WebhookKind::Slack => "SLACK",
            WebhookKind::MicrosoftTeams => "MICROSOFT_TEAMS",
        }
    }
}

/// A value only the notifier reads (a webhook's URL, user or password);
/// it is never printed.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Whether a non-empty value was given.
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Destination {
    /// WEBHOOK, SLACK, MICROSOFT_TEAMS or EMAIL.
    pub fn destination_type(&self) -> &'static str {
        match &self.config {
            DestinationConfig::Webhook { kind, .. } => kind.destination_type(),
            DestinationConfig::Email { .. } => "EMAIL",
        }
    }

    /// Reads a stored destination (its config was checked when stored).
    fn of(row: DestinationRow) -> Self {
        let kind = WebhookKind::ALL.into_iter().find(|k| row.config.get(k.config_key()).is_some());
        let config = match kind {
            Some(kind) => {
                let hook = &row.config[kind.config_key()];
                let secret = |f: &str| hook.get(f).and_then(Value::as_str).map(|s| Secret(s.to_string()));
                DestinationConfig::Webhook {
                    kind,
                    url: secret("url"),
                    username: secret("username"),
                    password: secret("password"),
                }
            }
            None => {
                let listed = row.config.pointer("/email/addresses").and_then(Value::as_array);
                let addresses = listed.into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect();
                DestinationConfig::Email { addresses }
            }
        };
        Destination { id: row.id, display_name: row.display_name, config }
    }
}

/// The destination type a config makes, once checked.
fn kind_of(config: &Value) -> Result<&'static str> {
    let Some(map) = config.as_object().filter(|m| m.len() == 1) else {
        return Err(invalid(
            "config must name exactly one destination kind (generic_webhook, slack, microsoft_teams or email)",
        ));
    };
    let url_kind = |kind: &str| WebhookKind::ALL.into_iter().find(|k| k.config_key() == kind);
    match map.iter().next() {
        Some((kind, spec)) if let Some(url_kind) = url_kind(kind) => {
            let url = spec.get("url").and_then(Value::as_str).unwrap_or_default();
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(format!("{kind}.url must be an http or https URL")));
            }
            Ok(url_kind.destination_type())
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

    pub fn create(&self, user: &str, display_name: &str, config: Value) -> Result<Destination> {
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
        Ok(Destination::of(row))
    }

    fn row(&self, id: &str) -> Result<DestinationRow> {
        self.store.get_destination(id)?.ok_or_else(|| not_found(id))
    }

    pub fn get(&self, id: &str) -> Result<Destination> {
        Ok(Destination::of(self.row(id)?))
    }

    pub fn list(&self) -> Result<Vec<Destination>> {
        Ok(self.store.list_destinations()?.into_iter().map(Destination::of).collect())
    }

    /// Changes the name and, when given, the config (fields left out of a
    /// webhook config keep their values).
    pub fn update(&self, id: &str, display_name: Option<&str>, config: Option<Value>) -> Result<Destination> {
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
        Ok(Destination::of(row))
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
