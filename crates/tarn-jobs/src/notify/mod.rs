//! Run notifications: on start, success, failure and a duration threshold
//! exceeded, to the email addresses (SMTP through `lettre`) and webhook
//! destinations (an HTTP POST of the run's JSON) a job or one of its tasks
//! names. Delivery runs in the
//! background with retries; a failure to notify is logged, never fails the
//! run, and never logs a destination's URL or credentials.

mod destinations;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};
use tarn_store::DestinationRow;

pub use destinations::Destinations;

/// Where email goes out.
#[derive(Clone, Default)]
pub struct SmtpConfig {
    pub host: Option<String>,
    pub port: u16,
    pub from: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    Success,
    Failure,
    DurationWarning,
}

impl Event {
    /// The settings key that lists its recipients.
    fn key(self) -> &'static str {
        match self {
            Event::Start => "on_start",
            Event::Success => "on_success",
            Event::Failure => "on_failure",
            Event::DurationWarning => "on_duration_warning_threshold_exceeded",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Event::Start => "Run started",
            Event::Success => "Run succeeded",
            Event::Failure => "Run failed",
            Event::DurationWarning => "Run exceeded its duration threshold",
        }
    }
}

/// What a notification is about: a job run, or a task run of it.
#[derive(Debug, Clone, Default)]
pub struct About {
    pub job_id: Option<i64>,
    pub job_name: String,
    pub task_key: Option<String>,
}

impl About {
    fn name(&self) -> String {
        match &self.task_key {
            Some(key) => format!("{} / {key}", self.job_name),
            None => self.job_name.clone(),
        }
    }
}

/// Delivery attempts per recipient, and the wait before the second.
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    destinations: Destinations,
    smtp: SmtpConfig,
    http: reqwest::Client,
    workspace_id: String,
}

impl Notifier {
    pub fn new(destinations: Destinations, smtp: SmtpConfig, workspace_id: String) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { inner: Arc::new(Inner { destinations, smtp, http, workspace_id }) }
    }

    pub fn destinations(&self) -> &Destinations {
        &self.inner.destinations
    }

    /// Sends `event` for a run or task run (its `runs/get` JSON, which `run`
    /// builds only when someone is to be told) to whom the job's or task's
    /// `settings` name, in the background.
    pub fn run_event(&self, settings: &Value, about: About, event: Event, run: impl FnOnce() -> Option<Value>) {
        let addresses: Vec<String> =
            list(settings, "email_notifications", event).filter_map(|v| v.as_str().map(str::to_string)).collect();
        let hooks: Vec<String> = list(settings, "webhook_notifications", event)
            .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        if addresses.is_empty() && hooks.is_empty() {
            return;
        }
        let Some(run) = run() else { return };
        let notifier = self.clone();
        tokio::spawn(async move {
            let mut emails = addresses;
            for id in hooks {
                match notifier.inner.destinations.row(&id) {
                    Ok(row) if row.destination_type == "EMAIL" => emails.extend(addresses_of(&row)),
                    Ok(row) => notifier.post(&row, event, &about, &run).await,
                    Err(e) => {
                        tracing::warn!(destination = id, error = %e, "a job names a missing notification destination")
                    }
                }
            }
            if !emails.is_empty() {
                notifier.email(&emails, event, &about, &run).await;
            }
        });
    }

    /// POSTs the event to a URL destination: the run's JSON to a generic
    /// webhook, a summary as `{"text"}` to Slack or Microsoft Teams.
    async fn post(&self, row: &DestinationRow, event: Event, about: &About, run: &Value) {
        let Some((kind, _)) = destinations::URL_KINDS.iter().find(|(_, t)| *t == row.destination_type) else { return };
        let hook = row.config.get(*kind).cloned().unwrap_or(Value::Null);
        let Some(url) = hook.get("url").and_then(Value::as_str) else { return };
        let payload = match *kind {
            "generic_webhook" => {
                let mut payload = json!({
                    "event_type": format!("jobs.{}", event.key()),
                    "workspace_id": self.inner.workspace_id,
                    "job": {"job_id": about.job_id, "name": about.job_name},
                    "run": run,
                });
                if let Some(key) = &about.task_key {
                    payload["task"] = json!({"task_key": key});
                }
                payload
            }
            _ => json!({"text": summary(event, &about.name(), run)}),
        };
        for attempt in 1..=ATTEMPTS {
            let mut request = self.inner.http.post(url).json(&payload);
            if let Some(user) = hook.get("username").and_then(Value::as_str) {
                request = request.basic_auth(user, hook.get("password").and_then(Value::as_str));
            }
            match request.send().await.map(|r| r.error_for_status()) {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(destination = row.display_name, attempt, status = ?e.status(), "a webhook refused a job notification")
                }
                Err(e) => {
                    tracing::warn!(destination = row.display_name, attempt, error = %e.without_url(), "a job notification webhook failed")
                }
            }
            tokio::time::sleep(BACKOFF * attempt).await;
        }
    }

    async fn email(&self, addresses: &[String], event: Event, about: &About, run: &Value) {
        let smtp = &self.inner.smtp;
        let Some(host) = &smtp.host else {
            tracing::warn!("email notifications are configured but TARN_SMTP_HOST is not set; none sent");
            return;
        };
        let message = match compose(&smtp.from, addresses, event, &about.name(), run) {
            Ok(m) => m,
            Err(e) => return tracing::warn!(error = %e, "composing a job notification email"),
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()).port(smtp.port);
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let transport = transport.build();
        for attempt in 1..=ATTEMPTS {
            match transport.send(message.clone()).await {
                Ok(_) => return,
                Err(e) => tracing::warn!(attempt, error = %e, "sending a job notification email"),
            }
            tokio::time::sleep(BACKOFF * attempt).await;
        }
    }
}

fn list<'a>(settings: &'a Value, field: &str, event: Event) -> impl Iterator<Item = &'a Value> {
    settings.get(field).and_then(|n| n.get(event.key())).and_then(Value::as_array).into_iter().flatten()
}

fn addresses_of(row: &DestinationRow) -> Vec<String> {
    let listed = row.config.pointer("/email/addresses").and_then(Value::as_array);
    listed.into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
}

/// The event in words: what happened, the run's state and message, its
/// tasks' states and its page.
fn summary(event: Event, job_name: &str, run: &Value) -> String {
    let run_id = run.get("run_id").and_then(Value::as_i64).unwrap_or_default();
    let state = run.pointer("/state/result_state").or(run.pointer("/state/life_cycle_state"));
    let message = run.pointer("/state/state_message").and_then(Value::as_str).unwrap_or_default();
    let mut body = format!(
        "{}: {job_name}, run {run_id}\nState: {}\n{message}\n",
        event.title(),
        state.and_then(Value::as_str).unwrap_or("-")
    );
    let tasks = run.get("tasks").and_then(Value::as_array).filter(|t| !t.is_empty());
    if tasks.is_some() {
        body.push_str("\nTasks:\n");
    }
    for task in tasks.into_iter().flatten() {
        let key = task.get("task_key").and_then(Value::as_str).unwrap_or_default();
        let state = task.pointer("/state/result_state").or(task.pointer("/state/life_cycle_state"));
        body.push_str(&format!("  {key}: {}\n", state.and_then(Value::as_str).unwrap_or("-")));
    }
    if let Some(url) = run.get("run_page_url").and_then(Value::as_str) {
        body.push_str(&format!("\n{url}\n"));
    }
    body
}

fn compose(from: &str, to: &[String], event: Event, job_name: &str, run: &Value) -> Result<Message, String> {
    let run_id = run.get("run_id").and_then(Value::as_i64).unwrap_or_default();
    let body = summary(event, job_name, run);
    let from: Mailbox = from.parse().map_err(|e| format!("TARN_SMTP_FROM '{from}': {e}"))?;
    let mut builder =
        Message::builder().from(from).subject(format!("[tarn] {}: {job_name} (run {run_id})", event.title()));
    for address in to {
        builder = builder.to(address.parse().map_err(|e| format!("address '{address}': {e}"))?);
    }
    builder.body(body).map_err(|e| e.to_string())
}
