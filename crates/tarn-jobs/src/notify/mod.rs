//! Notifications: a job run's start, success, failure and duration
//! threshold exceeded, to the email addresses (SMTP through `lettre`) and
//! webhook destinations a job or one of its tasks names; and any other
//! [`Notice`] (an alert firing) to the destinations it names. A generic webhook gets an
//! HTTP POST of the run's JSON, made by the [`RenderRun`] the `Notifier` is
//! given (tarn-api's run view, wired by `tarn serve`); Slack, Teams and
//! email get a summary in words. Delivery runs in the background with
//! retries; a failure to notify is logged, never fails the run, and never
//! logs a destination's URL or credentials.

mod destinations;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{Value, json};

pub use destinations::{Destination, DestinationConfig, Destinations, Secret, WebhookKind};

use crate::runs::RunOrTask;

/// Makes a run's (or task run's) JSON as `runs/get` shows it, for generic
/// webhooks.
pub type RenderRun = Arc<dyn Fn(&RunOrTask) -> Value + Send + Sync>;

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

/// What to tell whom: a job run's event, an alert's state change, a
/// monitor refresh's failure.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    /// An email's subject.
    pub subject: String,
    /// The notice in words, for email, Slack and Teams.
    pub text: String,
    /// What a generic webhook is posted.
    pub payload: Value,
    /// Notification destinations by id; an email destination's addresses
    /// join `emails`.
    pub destination_ids: Vec<String>,
    pub emails: Vec<String>,
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
    render: RenderRun,
}

impl Notifier {
    /// `render` makes the run JSON a generic webhook is posted.
    pub fn new(destinations: Destinations, smtp: SmtpConfig, workspace_id: String, render: RenderRun) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
        Self { inner: Arc::new(Inner { destinations, smtp, http, workspace_id, render }) }
    }

    pub fn destinations(&self) -> &Destinations {
        &self.inner.destinations
    }

    /// Sends `event` for a run or task run (read by `run` only when someone
    /// is to be told) to whom the job's or task's `settings` name, in the
    /// background.
    pub fn run_event(&self, settings: &Value, about: About, event: Event, run: impl FnOnce() -> Option<RunOrTask>) {
        let emails: Vec<String> =
            list(settings, "email_notifications", event).filter_map(|v| v.as_str().map(str::to_string)).collect();
        let destination_ids: Vec<String> = list(settings, "webhook_notifications", event)
            .filter_map(|v| v.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        if emails.is_empty() && destination_ids.is_empty() {
            return;
        }
        let Some(run) = run() else { return };
        let mut payload = json!({
            "event_type": format!("jobs.{}", event.key()),
            "workspace_id": self.inner.workspace_id,
            "job": {"job_id": about.job_id, "name": about.job_name},
            "run": (self.inner.render)(&run),
        });
        if let Some(key) = &about.task_key {
            payload["task"] = json!({"task_key": key});
        }
        self.notice(Notice {
            subject: format!("[tarn] {}: {} (run {})", event.title(), about.name(), run.row().run_id),
            text: summary(event, &about.name(), &run),
            payload,
            destination_ids,
            emails,
        });
    }

    /// Sends a notice to its destinations and addresses, in the background.
    pub fn notice(&self, notice: Notice) {
        if notice.emails.is_empty() && notice.destination_ids.is_empty() {
            return;
        }
        let notifier = self.clone();
        tokio::spawn(async move {
            let mut emails = notice.emails.clone();
            for id in &notice.destination_ids {
                match notifier.inner.destinations.get(id) {
                    Ok(Destination { config: DestinationConfig::Email { addresses }, .. }) => emails.extend(addresses),
                    Ok(destination) => notifier.post(&destination, &notice).await,
                    Err(e) => {
                        tracing::warn!(destination = id, error = %e, "a notification names a missing destination")
                    }
                }
            }
            if !emails.is_empty() {
                notifier.email(&emails, &notice).await;
            }
        });
    }

    /// POSTs a notice to a URL destination: its payload to a generic
    /// webhook, its text as `{"text"}` to Slack or Microsoft Teams.
    async fn post(&self, destination: &Destination, notice: &Notice) {
        let DestinationConfig::Webhook { kind, url: Some(url), username, password } = &destination.config else {
            return;
        };
        let text_payload;
        let payload = match kind {
            WebhookKind::Generic => &notice.payload,
            WebhookKind::Slack | WebhookKind::MicrosoftTeams => {
                text_payload = json!({"text": notice.text});
                &text_payload
            }
        };
        for attempt in 1..=ATTEMPTS {
            let mut request = self.inner.http.post(url.expose()).json(payload);
            if let Some(user) = username {
                request = request.basic_auth(user.expose(), password.as_ref().map(Secret::expose));
            }
            match request.send().await.map(|r| r.error_for_status()) {
                Ok(Ok(_)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(destination = destination.display_name, attempt, status = ?e.status(), "a webhook refused a notification")
                }
                Err(e) => {
                    tracing::warn!(destination = destination.display_name, attempt, error = %e.without_url(), "a notification webhook failed")
                }
            }
            tokio::time::sleep(BACKOFF * attempt).await;
        }
    }

    async fn email(&self, addresses: &[String], notice: &Notice) {
        let smtp = &self.inner.smtp;
        let Some(host) = &smtp.host else {
            tracing::warn!("email notifications are configured but TARN_SMTP_HOST is not set; none sent");
            return;
        };
        let message = match compose(&smtp.from, addresses, &notice.subject, &notice.text) {
            Ok(m) => m,
            Err(e) => return tracing::warn!(error = %e, "composing a notification email"),
        };
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str()).port(smtp.port);
        if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
            transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
        }
        let transport = transport.build();
        for attempt in 1..=ATTEMPTS {
            match transport.send(message.clone()).await {
                Ok(_) => return,
                Err(e) => tracing::warn!(attempt, error = %e, "sending a notification email"),
            }
            tokio::time::sleep(BACKOFF * attempt).await;
        }
    }
}

fn list<'a>(settings: &'a Value, field: &str, event: Event) -> impl Iterator<Item = &'a Value> {
    settings.get(field).and_then(|n| n.get(event.key())).and_then(Value::as_array).into_iter().flatten()
}

/// The event in words: what happened, the run's state and message, its
/// tasks' states and its page.
fn summary(event: Event, job_name: &str, run: &RunOrTask) -> String {
    let (row, state, page_url, tasks) = match run {
        RunOrTask::Run(r) => (&r.row, &r.state, &r.page_url, r.tasks.as_deref().unwrap_or_default()),
        RunOrTask::Task(t) => (&t.row, &t.state, &t.page_url, &[][..]),
    };
    let mut body =
        format!("{}: {job_name}, run {}\nState: {}\n{}\n", event.title(), row.run_id, state.name(), state.message);
    if !tasks.is_empty() {
        body.push_str("\nTasks:\n");
    }
    for task in tasks {
        let key = task.row.task_key.as_deref().unwrap_or_default();
        body.push_str(&format!("  {key}: {}\n", task.state.name()));
    }
    body.push_str(&format!("\n{page_url}\n"));
    body
}

fn compose(from: &str, to: &[String], subject: &str, body: &str) -> Result<Message, String> {
    let from: Mailbox = from.parse().map_err(|e| format!("TARN_SMTP_FROM '{from}': {e}"))?;
    let mut builder = Message::builder().from(from).subject(subject);
    for address in to {
        builder = builder.to(address.parse().map_err(|e| format!("address '{address}': {e}"))?);
    }
    builder.body(body.to_string()).map_err(|e| e.to_string())
}
