//! The SQL editor (`/sql/editor`): a statement run on the warehouse through
//! the Statement Execution path, as `/api/2.0/sql/statements` runs it for
//! the viewer, its result (or the engine's error) swapped in below the
//! editor. Also the result table and the statement runner the catalog's
//! Sample data tab uses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Html;
use axum::routing::{get, post};
use maud::{Markup, html};
use tarn_sql::result::ResultSet;
use tarn_sql::statements::{OnWaitTimeout, StatementRequest, StatementState};
use tarn_store::User;
use tarn_ui::components::{badge, duration, empty, error};
use tarn_ui::layout::Section;

use super::{Action, PageResult, Viewer};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::{require, visible};

/// The most rows the editor shows.
const EDITOR_ROWS: usize = 1000;
/// How long a page waits for a statement before cancelling it.
const PATIENCE: Duration = Duration::from_secs(300);

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/sql/editor", get(editor)).route("/sql/editor/run", post(run))
}

/// How a statement ended.
pub(super) enum Outcome {
    Rows(Arc<ResultSet>),
    Failed(String),
    Canceled,
}

/// Runs `statement` on warehouse `warehouse_id` as `user` (who needs
/// CAN_USE on it, as on the API), at most `rows` rows back, waiting up to
/// [`PATIENCE`] (then cancelling it).
pub(super) async fn run_statement(
    s: &AppState,
    user: &User,
    warehouse_id: &str,
    statement: &str,
    rows: usize,
) -> Result<Outcome, ApiFailure> {
    require(s, user, "warehouses", warehouse_id, "CAN_USE")?;
    let request = StatementRequest {
        statement: statement.to_string(),
        warehouse_id: warehouse_id.to_string(),
        catalog: None,
        schema: None,
        parameters: Vec::new(),
        row_limit: Some(rows),
        byte_limit: None,
        wait_timeout: Duration::from_secs(50),
        on_wait_timeout: OnWaitTimeout::Continue,
        session_id: None,
        user: user.user_name.clone(),
    };
    let deadline = Instant::now() + PATIENCE;
    let mut snapshot = s.statements.execute(request).await?;
    while matches!(snapshot.state, StatementState::Pending | StatementState::Running) {
        if Instant::now() > deadline {
            s.statements.cancel(&snapshot.id).await?;
            return Ok(Outcome::Failed(format!(
                "The statement ran longer than {} and was cancelled.",
                duration(300_000)
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        snapshot = s.statements.get(&snapshot.id)?;
    }
    Ok(match (snapshot.state, snapshot.result, snapshot.error) {
        (StatementState::Succeeded, Some(result), _) => Outcome::Rows(result),
        (StatementState::Canceled, ..) => Outcome::Canceled,
        (_, _, Some(e)) => Outcome::Failed(e.message),
        (state, ..) => Outcome::Failed(format!("The statement ended {} without a result.", state.as_str())),
    })
}

/// A result as a table: its columns with their types, at most `max` rows.
pub(super) fn result_table(result: &ResultSet, max: usize) -> Markup {
    let rows = result.chunks.iter().flat_map(|c| c.rows.iter()).take(max);
    html! {
        div.scroll {
            table.list.result {
                thead { tr { @for c in &result.columns { th title=(c.type_text) { (c.name) } } } }
                tbody {
                    @for row in rows {
                        tr { @for cell in row {
                            @match cell { Some(v) => td { (v) }, None => td.dim { "NULL" } }
                        } }
                    }
                }
            }
        }
    }
}

/// The warehouses the viewer may see: (id, name, state).
fn warehouses(s: &AppState, user: &User) -> Result<Vec<(String, String, String)>, ApiFailure> {
    let warehouse = s.statements.warehouse();
    if !visible(s, user, "warehouses", warehouse.id())? {
        return Ok(Vec::new());
    }
    let status = warehouse.status(warehouse.id())?;
    Ok(vec![(status.id, status.name, status.state.as_str().to_string())])
}

#[derive(Debug, serde::Deserialize)]
struct Prefill {
    statement: Option<String>,
}

async fn editor(State(s): State<AppState>, viewer: Viewer, Query(q): Query<Prefill>) -> PageResult {
    let warehouses = warehouses(&s, &viewer.user)?;
    let statement = q.statement.unwrap_or_default();
    let body = html! {
        @if warehouses.is_empty() {
            (empty("You may not use any SQL warehouse."))
        } @else {
            form #editor hx-post="/sql/editor/run" hx-target="#result" hx-swap="innerHTML"
                hx-indicator="#running" hx-disabled-elt="find button" {
                textarea.code name="statement" rows="10" spellcheck="false" placeholder="SELECT ..." { (statement) }
                div.toolbar {
                    label for="warehouse" { "Warehouse" }
                    select #warehouse name="warehouse_id" {
                        @for (id, name, state) in &warehouses { option value=(id) { (name) " (" (state) ")" } }
                    }
                    button.primary #run type="submit" { "Run" }
                    span #running .htmx-indicator .dim { "Running…" }
                }
            }
            div #result {}
        }
    };
    Ok(viewer.page("SQL editor", Section::Sql, &[("SQL", "")], body))
}

/// Runs the form's statement and answers the result region (an error is
/// shown in it, not as a failed request, so htmx swaps it in).
async fn run(State(s): State<AppState>, viewer: Viewer, _: Action, body: Bytes) -> Result<Html<String>, ApiFailure> {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string());
    let statement = field("statement").unwrap_or_default();
    let warehouse = field("warehouse_id").unwrap_or_else(|| s.statements.warehouse().id().to_string());
    if statement.is_empty() {
        return Ok(Html(error("Type a statement to run.").into_string()));
    }
    let started = Instant::now();
    let outcome = run_statement(&s, &viewer.user, &warehouse, &statement, EDITOR_ROWS).await;
    let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let markup = match outcome {
        Ok(Outcome::Rows(result)) => html! {
            p.summary {
                (badge("SUCCEEDED")) " "
                span #row-count { (result.total_rows) " " (if result.total_rows == 1 { "row" } else { "rows" }) }
                @if result.truncated { " (the first " (EDITOR_ROWS) ")" }
                " in " span #elapsed { (duration(elapsed)) }
            }
            (result_table(&result, EDITOR_ROWS))
        },
        Ok(Outcome::Failed(message)) => html! {
            p.summary { (badge("FAILED")) " after " (duration(elapsed)) }
            pre.error role="alert" { (message) }
        },
        Ok(Outcome::Canceled) => html! { p.summary { (badge("CANCELED")) } },
        Err(failure) => {
            let (_, _, message, _) = failure.for_client();
            error(&message)
        }
    };
    Ok(Html(markup.into_string()))
}
