//! A table's page (`/explore/data/{catalog}/{schema}/{table}?tab=`):
//! Overview (columns and the table's facts), Sample data (its first rows,
//! read through the Statement Execution path as the viewer, loaded into the
//! page once they arrive), History (`DESCRIBE HISTORY`), Permissions (the
//! grants on it) and Quality (its monitor, when it has one).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Html;
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;
use tarn_catalog::{Action, Kind};
use tarn_ui::components::{empty, error, shorten, tabs};

use super::{href, page, principal, summary, text};
use crate::AppState;
use crate::error::ApiFailure;
use crate::ui::sql::{Outcome, result_table, run_statement};
use crate::ui::{PageResult, Viewer};

/// Rows the Sample data tab shows.
const SAMPLE_ROWS: usize = 50;
/// Versions the History tab shows, newest first.
const HISTORY_ROWS: usize = 100;
/// The History tab's columns, as `DESCRIBE HISTORY` names them.
const HISTORY_COLUMNS: [(&str, &str); 5] = [
    ("version", "Version"),
    ("timestamp", "Timestamp"),
    ("operation", "Operation"),
    ("operationParameters", "Parameters"),
    ("userName", "User"),
];

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/explore/data/{catalog}/{schema}/{table}", get(table))
        .route("/explore/data/{catalog}/{schema}/{table}/sample", get(sample))
}

#[derive(Debug, serde::Deserialize)]
struct Tab {
    tab: Option<String>,
}

const TABS: [(&str, &str); 5] = [
    ("overview", "Overview"),
    ("sample", "Sample data"),
    ("history", "History"),
    ("permissions", "Permissions"),
    ("quality", "Quality"),
];

/// A table's name as SQL reads it, each part quoted.
async fn table(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((catalog, schema, name)): Path<(String, String, String)>,
    Query(tab): Query<Tab>,
) -> PageResult {
    let full = format!("{catalog}.{schema}.{name}");
    s.catalog.authorize(&principal(&s, &viewer.user)?, Kind::Table, &full, Action::Browse)?;
    let info = s.catalog.get(Kind::Table, &full)?;
    let here = href(&[&catalog, &schema, &name]);
    let active = tab.tab.as_deref().filter(|t| TABS.iter().any(|(k, _)| k == t)).unwrap_or("overview");
    let links: Vec<(String, &str, bool)> =
        TABS.iter().map(|(key, label)| (format!("{here}?tab={key}"), *label, *key == active)).collect();
    let links: Vec<(&str, &str, bool)> = links.iter().map(|(h, l, a)| (*l, h.as_str(), *a)).collect();
    let parts = [catalog.as_str(), schema.as_str(), name.as_str()];
    let content = match active {
        "sample" => html! {
            div #sample hx-get=(format!("{here}/sample")) hx-trigger="load" hx-swap="innerHTML" {
                p.dim { "Reading the first " (SAMPLE_ROWS) " rows…" }
            }
        },
        "history" => history(&s, &viewer, &parts).await?,
        "permissions" => permissions(&s, &full)?,
        "quality" => quality(&s, &full)?,
        _ => overview(&info),
    };
    let query = format!("SELECT * FROM {} LIMIT 100", tarn_sqltext::quote_name(&parts));
    let editor = format!("/sql/editor?statement={}", crate::ui::encode(&query));
    let body = html! {
        @if !text(&info, "comment").is_empty() { p.comment { (text(&info, "comment")) } }
        div.toolbar { a.button href=(editor) { "Query in SQL editor" } }
        (tabs(&links))
        div.tab { (content) }
    };
    Ok(page(&viewer, &parts, body))
}

fn overview(info: &Value) -> Markup {
    let columns = info.get("columns").and_then(Value::as_array).cloned().unwrap_or_default();
    let properties = info.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    html! {
        h2 { "Columns" }
        @if columns.is_empty() {
            (empty("The catalog holds no columns for this table yet."))
        } @else {
            table.list.columns {
                thead { tr { th { "Column" } th { "Type" } th { "Nullable" } th { "Comment" } } }
                tbody {
                    @for c in &columns {
                        tr data-column=(text(c, "name")) {
                            td { (text(c, "name")) }
                            td { code { (text(c, "type_text")) } }
                            td { (if c.get("nullable").and_then(Value::as_bool).unwrap_or(true) { "yes" } else { "no" }) }
                            td { (text(c, "comment")) }
                        }
                    }
                }
            }
        }
        h2 { "Details" }
        (summary(info, vec![
            ("Type", html! { (text(info, "table_type")) }),
            ("Format", html! { (text(info, "data_source_format")) }),
            ("Storage location", html! { code { (text(info, "storage_location")) } }),
        ]))
        @if !properties.is_empty() {
            h2 { "Properties" }
            table.list.properties {
                tbody {
                    @for (k, v) in &properties {
                        tr { td { code { (k) } } td { (v.as_str().map_or_else(|| v.to_string(), str::to_string)) } }
                    }
                }
            }
        }
    }
}

/// The first rows, as a fragment the Sample data tab loads.
async fn sample(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((catalog, schema, name)): Path<(String, String, String)>,
) -> Result<Html<String>, ApiFailure> {
    let full = format!("{catalog}.{schema}.{name}");
    s.catalog.authorize(&principal(&s, &viewer.user)?, Kind::Table, &full, Action::Browse)?;
    let statement =
        format!("SELECT * FROM {} LIMIT {SAMPLE_ROWS}", tarn_sqltext::quote_name(&[&catalog, &schema, &name]));
    let warehouse = s.statements.warehouse().id().to_string();
    let markup = match run_statement(&s, &viewer.user, &warehouse, &statement, SAMPLE_ROWS).await {
        Ok(Outcome::Rows(result)) if result.total_rows == 0 => empty("The table has no rows."),
        Ok(Outcome::Rows(result)) => html! {
            p.dim { "The first " (result.total_rows.min(SAMPLE_ROWS)) " rows." }
            (result_table(&result, SAMPLE_ROWS))
        },
        Ok(Outcome::Failed(message)) => error(&message),
        Ok(Outcome::Canceled) => error("Reading the rows was cancelled."),
        Err(failure) => error(&failure.for_client().2),
    };
    Ok(Html(markup.into_string()))
}

/// One `DESCRIBE HISTORY` cell as the tab shows it: a map (the
/// parameters) as one shortened `key: value` line each, whole on hover.
fn history_cell(value: Option<&String>) -> Markup {
    let Some(v) = value else { return html! { span.dim { "–" } } };
    match serde_json::from_str::<serde_json::Map<String, Value>>(v) {
        Ok(map) => html! {
            @for (k, v) in &map {
                @let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                div.param title=(v) { code { (k) } ": " (shorten(&v, 60)) }
            }
        },
        Err(_) => html! { (v) },
    }
}

async fn history(s: &AppState, viewer: &Viewer, parts: &[&str]) -> Result<Markup, ApiFailure> {
    let statement = format!("DESCRIBE HISTORY {}", tarn_sqltext::quote_name(parts));
    let warehouse = s.statements.warehouse().id().to_string();
    let result = match run_statement(s, &viewer.user, &warehouse, &statement, HISTORY_ROWS).await? {
        Outcome::Rows(result) => result,
        Outcome::Failed(message) => return Ok(error(&message)),
        Outcome::Canceled => return Ok(error("Reading the history was cancelled.")),
    };
    let index = |name: &str| result.columns.iter().position(|c| c.name == name);
    let shown: Vec<(&str, Option<usize>)> = HISTORY_COLUMNS.iter().map(|(key, label)| (*label, index(key))).collect();
    let rows = result.chunks.iter().flat_map(|c| c.rows.iter());
    Ok(html! {
        @if result.truncated { p.dim { "The latest " (HISTORY_ROWS) " versions." } }
        table.list.history {
            thead { tr { @for (label, _) in &shown { th { (label) } } } }
            tbody {
                @for row in rows {
                    tr {
                        @for (_, at) in &shown {
                            td { (history_cell(at.and_then(|i| row.get(i)).and_then(Option::as_ref))) }
                        }
                    }
                }
            }
        }
    })
}

fn permissions(s: &AppState, full: &str) -> Result<Markup, ApiFailure> {
    let grants = s.catalog.grants(Kind::Table, full, None)?;
    Ok(html! {
        p.dim { "Privileges granted on this table; those granted on its schema and catalog apply too." }
        @if grants.is_empty() {
            (empty("Nothing is granted on this table itself."))
        } @else {
            table.list.grants {
                thead { tr { th { "Principal" } th { "Privileges" } } }
                tbody {
                    @for (principal, privileges) in &grants {
                        tr { td { (principal) } td { (privileges.join(", ")) } }
                    }
                }
            }
        }
    })
}

fn quality(s: &AppState, full: &str) -> Result<Markup, ApiFailure> {
    Ok(match s.monitors.get(full) {
        Ok(_) => html! {
            p { "This table has a quality monitor: " a href=(format!("/monitors/{full}")) { "its metrics and drift" } "." }
        },
        Err(tarn_monitor::MonitorError::NotFound(_)) => empty("This table has no quality monitor."),
        Err(e) => return Err(e.into()),
    })
}
