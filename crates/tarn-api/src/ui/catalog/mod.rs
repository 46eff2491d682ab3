//! The Catalog Explorer (`/explore/data/...`): catalogs, a catalog's
//! schemas, a schema's tables, volumes and registered models, a table's
//! tabs (`table`) and a volume's files (`volume`). Each list holds only
//! what Unity Catalog lets the viewer see (as the UC routes filter their
//! lists), paged in the store.

mod table;
mod volume;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use maud::{Markup, html};
use serde_json::Value;
use tarn_catalog::{Action, Kind, Principal};
use tarn_store::User;
use tarn_ui::components::{Pager, empty, facts, shorten, tabs, time};
use tarn_ui::layout::Section;

use super::segment;
use super::{PageResult, Paging, Viewer};
use crate::AppState;
use crate::error::ApiFailure;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/explore/data", get(catalogs))
        .route("/explore/data/{catalog}", get(catalog))
        .route("/explore/data/{catalog}/{schema}", get(schema))
        .merge(table::router())
        .merge(volume::router())
}

/// The viewer as grants name it.
fn principal(s: &AppState, user: &User) -> Result<Principal, ApiFailure> {
    crate::routes::unity_catalog::principal(s, user)
}

/// A text field of an object's info ("" when absent).
fn text<'a>(info: &'a Value, key: &str) -> &'a str {
    info.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The explorer's path of a catalog, schema or table from its name parts.
pub(super) fn href(parts: &[&str]) -> String {
    parts.iter().fold(String::from("/explore/data"), |path, p| format!("{path}/{}", segment(p)))
}

/// The explorer's page of a table (or schema, catalog) by its full name.
pub(in crate::ui) fn table_href(full_name: &str) -> String {
    href(&full_name.split('.').collect::<Vec<_>>())
}

/// The crumbs above an object's page: the explorer, then its containers.
fn crumbs(parts: &[&str]) -> Vec<(String, String)> {
    let mut out = vec![("Catalog".to_string(), "/explore/data".to_string())];
    for depth in 1..parts.len() {
        out.push((parts[depth - 1].to_string(), href(&parts[..depth])));
    }
    out
}

/// The page of an object (`parts` its name parts), in the shell.
fn page(viewer: &Viewer, parts: &[&str], body: Markup) -> axum::response::Html<String> {
    let crumbs = crumbs(parts);
    let crumbs: Vec<(&str, &str)> = crumbs.iter().map(|(l, h)| (l.as_str(), h.as_str())).collect();
    let title = parts.last().copied().unwrap_or("Catalog");
    viewer.page(title, Section::Catalog, &crumbs, body)
}

/// A comment, or a dash.
fn comment(info: &Value) -> Markup {
    match text(info, "comment") {
        "" => html! { span.dim { "–" } },
        c => html! { (shorten(c, 120)) },
    }
}

/// A paged list of objects: name (linked), comment, owner, created.
fn object_list(items: &[Value], link: impl Fn(&Value) -> String, pager: &Pager<'_>, none: &str) -> Markup {
    html! {
        @if items.is_empty() && pager.offset == 0 {
            (empty(none))
        } @else {
            table.list.objects {
                thead { tr { th { "Name" } th { "Comment" } th { "Owner" } th { "Created" } } }
                tbody {
                    @for info in items {
                        tr data-name=(text(info, "name")) {
                            td { a href=(link(info)) { (text(info, "name")) } }
                            td { (comment(info)) }
                            td { (text(info, "owner")) }
                            td { (time(info.get("created_at").and_then(Value::as_i64).unwrap_or(0))) }
                        }
                    }
                }
            }
            (pager.render())
        }
    }
}

/// One page of the children of `kind` under `parent` the viewer sees.
fn children(
    s: &AppState,
    p: &Principal,
    kind: Kind,
    parent: &[&str],
    paging: &Paging,
) -> Result<(Vec<Value>, bool), ApiFailure> {
    Ok(s.catalog.list_visible(p, kind, parent, paging.offset, paging.limit())?)
}

fn pager<'a>(base: &'a str, paging: &Paging, shown: usize, has_more: bool) -> Pager<'a> {
    Pager { base, offset: paging.offset, limit: paging.limit(), shown: shown as u64, has_more, total: None }
}

async fn catalogs(State(s): State<AppState>, viewer: Viewer, Query(paging): Query<Paging>) -> PageResult {
    let p = principal(&s, &viewer.user)?;
    let (items, more) = children(&s, &p, Kind::Catalog, &[], &paging)?;
    let pager = pager("/explore/data", &paging, items.len(), more);
    let body = html! {
        h2 { "Catalogs" }
        (object_list(&items, |c| href(&[text(c, "name")]), &pager, "No catalogs you may see."))
    };
    Ok(viewer.page("Catalog", Section::Catalog, &[], body))
}

/// Who owns an object, what it says of itself, and when it was made, after
/// `first` (facts of its kind).
fn summary(info: &Value, first: Vec<(&str, Markup)>) -> Markup {
    let created = info.get("created_at").and_then(Value::as_i64).unwrap_or(0);
    let mut rows = first;
    rows.extend([
        ("Owner", html! { (text(info, "owner")) }),
        ("Comment", comment(info)),
        ("Created", html! { (time(created)) " by " (text(info, "created_by")) }),
        ("Updated", time(info.get("updated_at").and_then(Value::as_i64).unwrap_or(0))),
    ]);
    facts(&rows)
}

async fn catalog(
    State(s): State<AppState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(paging): Query<Paging>,
) -> PageResult {
    let p = principal(&s, &viewer.user)?;
    s.catalog.authorize(&p, Kind::Catalog, &name, Action::Browse)?;
    let info = s.catalog.get(Kind::Catalog, &name)?;
    let (items, more) = children(&s, &p, Kind::Schema, &[&name], &paging)?;
    let base = href(&[&name]);
    let pager = pager(&base, &paging, items.len(), more);
    let body = html! {
        (summary(&info, Vec::new()))
        h2 { "Schemas" }
        (object_list(&items, |i| href(&[&name, text(i, "name")]), &pager, "No schemas you may see."))
    };
    Ok(page(&viewer, &[&name], body))
}

#[derive(Debug, serde::Deserialize)]
struct SchemaTab {
    tab: Option<String>,
}

async fn schema(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((catalog, schema)): Path<(String, String)>,
    Query(paging): Query<Paging>,
    Query(tab): Query<SchemaTab>,
) -> PageResult {
    let p = principal(&s, &viewer.user)?;
    let full = format!("{catalog}.{schema}");
    s.catalog.authorize(&p, Kind::Schema, &full, Action::Browse)?;
    let info = s.catalog.get(Kind::Schema, &full)?;
    let here = href(&[&catalog, &schema]);
    let active = tab.tab.as_deref().filter(|t| matches!(*t, "volumes" | "models")).unwrap_or("tables");
    let links: Vec<(String, &str, bool)> = [("tables", "Tables"), ("volumes", "Volumes"), ("models", "Models")]
        .iter()
        .map(|(key, label)| (format!("{here}?tab={key}"), *label, *key == active))
        .collect();
    let base = format!("{here}?tab={active}");
    let list = match active {
        "models" => models(&s, &p, &full, &base, &paging)?,
        kind => {
            let kind = if kind == "volumes" { Kind::Volume } else { Kind::Table };
            let (items, more) = children(&s, &p, kind, &[&catalog, &schema], &paging)?;
            let pager = pager(&base, &paging, items.len(), more);
            match kind {
                Kind::Volume => {
                    let link = |v: &Value| volume::href(&catalog, &schema, text(v, "name"));
                    object_list(&items, link, &pager, "No volumes you may see in this schema.")
                }
                _ => {
                    let link = |t: &Value| href(&[&catalog, &schema, text(t, "name")]);
                    object_list(&items, link, &pager, "No tables you may see in this schema.")
                }
            }
        }
    };
    let links: Vec<(&str, &str, bool)> = links.iter().map(|(h, l, a)| (*l, h.as_str(), *a)).collect();
    let body = html! {
        (summary(&info, Vec::new()))
        (tabs(&links))
        (list)
    };
    Ok(page(&viewer, &[&catalog, &schema], body))
}

/// The schema's registered models (which the MLflow registry holds under
/// their three-part names), for a viewer who may use the schema, as the
/// UC models list shows them; only the page's models are read.
fn models(s: &AppState, p: &Principal, schema: &str, base: &str, paging: &Paging) -> Result<Markup, ApiFailure> {
    if s.catalog.authorize(p, Kind::Schema, schema, Action::Use).is_err() {
        return Ok(empty("You may not use this schema, so its models are not shown."));
    }
    let prefix = format!("{schema}.");
    let names: Vec<String> =
        s.store.list_registered_model_names()?.into_iter().filter(|n| n.starts_with(&prefix)).collect();
    let (start, limit) = (usize::try_from(paging.offset).unwrap_or(usize::MAX), paging.limit() as usize);
    let shown =
        names.iter().skip(start).take(limit).map(|n| s.tracking.registered_model(n)).collect::<Result<Vec<_>, _>>()?;
    let more = names.len() > start.saturating_add(limit);
    let pager = Pager {
        base,
        offset: paging.offset,
        limit: paging.limit(),
        shown: shown.len() as u64,
        has_more: more,
        total: Some(names.len() as u64),
    };
    Ok(html! {
        @if names.is_empty() {
            (empty("No registered models in this schema."))
        } @else {
            table.list.objects {
                thead { tr { th { "Name" } th { "Description" } th { "Owner" } th { "Updated" } } }
                tbody {
                    @for m in &shown {
                        @let name = m.name.rsplit('.').next().unwrap_or(&m.name);
                        tr data-name=(name) {
                            td { a href=(format!("/ml/models/{}", segment(&m.name))) { (name) } }
                            td { (shorten(&m.description, 120)) }
                            td { (m.creator) }
                            td { (time(m.last_updated_time)) }
                        }
                    }
                }
            }
            (pager.render())
        }
    })
}
