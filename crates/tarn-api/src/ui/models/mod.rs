//! The model registry's pages: registered models (the workspace registry's
//! names and Unity Catalog's `catalog.schema.model` names, which are the
//! same registry) at `/ml/models`, a model at `/ml/models/{name}` and a
//! version at `/ml/models/{name}/versions/{v}`, with its lineage to the
//! run that logged it and the endpoints serving it.
//!
//! Who sees a model is decided as the API decides it: a Unity Catalog
//! model needs its schema's usage (`routes/unity_catalog/models.rs`), a
//! workspace model CAN_READ (`routes/mlflow/guard.rs`).

mod model;
mod version;

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use tarn_catalog::{Action, FullName, Kind};
use tarn_mlflow::{ModelVersionRow, RegisteredModelRow};
use tarn_store::User;
use tarn_ui::components::{Pager, badge, empty, time};
use tarn_ui::layout::Section;

use super::segment;
use super::{PageResult, Paging, Viewer};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permission_objects::{experiment as experiment_object, registered_model};
use crate::routes::permissions::permissions;
use crate::routes::unity_catalog::principal;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/ml/models", get(list))
        .route("/ml/models/{name}", get(model::page))
        .route("/ml/models/{name}/versions/{version}", get(version::page))
}

pub(crate) fn model_url(name: &str) -> String {
    format!("/ml/models/{}", segment(name))
}

pub(crate) fn version_url(name: &str, version: impl std::fmt::Display) -> String {
    format!("/ml/models/{}/versions/{version}", segment(name))
}

/// The Unity Catalog name of a registry name that is one (`c.s.m`,
/// lower case as the catalog keeps names).
fn uc_name(name: &str) -> Option<FullName> {
    let parts: Vec<&str> = name.split('.').collect();
    let full = FullName::from_parts(&parts).ok().filter(|_| parts.len() == 3)?;
    (full.full() == name).then_some(full)
}

/// Answers whether a viewer may read models, remembering each schema's answer.
struct Readers<'a> {
    s: &'a AppState,
    user: &'a User,
    schemas: HashMap<String, bool>,
}

impl<'a> Readers<'a> {
    fn new(s: &'a AppState, user: &'a User) -> Self {
        Self { s, user, schemas: HashMap::new() }
    }

    fn uses_schema(&mut self, schema: String) -> bool {
        let (s, user) = (self.s, self.user);
        *self.schemas.entry(schema).or_insert_with_key(|schema| {
            principal(s, user).is_ok_and(|p| s.catalog.authorize(&p, Kind::Schema, schema, Action::Use).is_ok())
        })
    }

    /// Whether the viewer may read the model called `name`.
    fn reads(&mut self, name: &str) -> bool {
        if self.user.admin {
            return true;
        }
        match uc_name(name) {
            Some(full) => self.uses_schema(full.parent()),
            None => self.s.tracking.registered_model(name).is_ok_and(|m| {
                registered_model(&m)
                    .is_ok_and(|o| permissions(self.s).allows(self.user, &o, "CAN_READ").unwrap_or(false))
            }),
        }
    }
}

/// The model, once the viewer may read it (refused as the API refuses).
pub(super) fn readable(s: &AppState, user: &User, name: &str) -> Result<RegisteredModelRow, ApiFailure> {
    if !user.admin {
        match uc_name(name) {
            Some(full) => s.catalog.authorize(&principal(s, user)?, Kind::Schema, &full.parent(), Action::Use)?,
            None => {
                let object = registered_model(&s.tracking.registered_model(name)?)?;
                permissions(s).check(user, &object, "CAN_READ")?;
            }
        }
    }
    Ok(s.tracking.registered_model(name)?)
}

/// Whether the viewer may read experiment `id` (its runs' metrics and params).
pub(super) fn reads_experiment(s: &AppState, user: &User, id: i64) -> bool {
    user.admin
        || s.tracking.experiment(&id.to_string()).is_ok_and(|e| {
            experiment_object(&e).is_ok_and(|o| permissions(s).allows(user, &o, "CAN_READ").unwrap_or(false))
        })
}

/// The logged model a version was registered from: its `model_id`, or the
/// `models:/m-...` source MLflow 3 registers.
pub(super) fn logged_model_id(v: &ModelVersionRow) -> Option<&str> {
    let from_source = v.source.strip_prefix("models:/").filter(|id| id.starts_with("m-"));
    v.model_id.as_deref().or(from_source).map(|id| id.trim_end_matches('/'))
}

/// The run a version came from: its own `run_id`, else the run that
/// logged its logged model.
pub(super) fn source_run_id(s: &AppState, v: &ModelVersionRow) -> Option<String> {
    v.run_id.clone().or_else(|| s.tracking.logged_model(logged_model_id(v)?, true).ok()?.source_run_id)
}

/// A link to the run a version came from, where the run still exists
/// (named by its id for a viewer who may not read its experiment).
pub(super) fn run_link(s: &AppState, user: &User, v: &ModelVersionRow) -> Markup {
    let Some(run_id) = source_run_id(s, v) else { return html! { span.dim { "–" } } };
    let run_id = run_id.as_str();
    match s.tracking.run(run_id) {
        Ok(run) => html! {
            a.run href={ "/ml/experiments/" (run.experiment_id) "/runs/" (run.run_uuid) } {
                @if run.name.is_empty() || !reads_experiment(s, user, run.experiment_id) { (run_id) } @else { (run.name) }
            }
        },
        Err(_) => html! { span.dim title="the run no longer exists" { (run_id) } },
    }
}

/// `alias → version` links.
pub(super) fn aliases(name: &str, aliases: &[(String, i64)]) -> Markup {
    html! {
        @for (alias, version) in aliases {
            span.alias { "@" (alias) " → " a href=(version_url(name, version)) { "v" (version) } } " "
        }
    }
}

#[derive(Debug, Deserialize)]
struct Filter {
    #[serde(default)]
    name: String,
}

/// Registered models the viewer may read, by name, paged.
async fn list(
    viewer: Viewer,
    State(s): State<AppState>,
    Query(paging): Query<Paging>,
    Query(f): Query<Filter>,
) -> PageResult {
    let limit = paging.limit();
    let needle = f.name.trim().to_lowercase();
    let mut readers = Readers::new(&s, &viewer.user);
    // Names alone are cheap to list; rows are read for the page only.
    let mut names = s
        .store
        .list_registered_model_names()?
        .into_iter()
        .filter(|n| needle.is_empty() || n.to_lowercase().contains(&needle))
        .filter(|n| readers.reads(n))
        .skip(usize::try_from(paging.offset).unwrap_or(usize::MAX));
    let page: Vec<String> = names.by_ref().take(usize::try_from(limit).unwrap_or(50)).collect();
    let has_more = names.next().is_some();
    let models = page.iter().map(|n| s.tracking.registered_model(n)).collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    for m in &models {
        rows.push((m, s.tracking.latest_versions(&m.name, &[])?));
    }
    let base = match needle.is_empty() {
        true => "/ml/models".to_string(),
        false => format!("/ml/models?name={}", crate::ui::encode(&f.name)),
    };
    let pager = Pager { base: &base, offset: paging.offset, limit, shown: models.len() as u64, has_more, total: None };
    let body = html! {
        form.toolbar method="get" action="/ml/models" {
            input type="search" name="name" value=(f.name) placeholder="Filter by name";
            button type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            (empty("No registered models."))
        } @else {
            (models_table(&rows))
            (pager.render())
        }
    };
    Ok(viewer.page("Models", Section::Models, &[], body))
}

fn models_table(rows: &[(&RegisteredModelRow, Vec<ModelVersionRow>)]) -> Markup {
    html! {
        table.list.models {
            thead { tr { th { "Name" } th { "Registry" } th { "Latest versions" } th { "Aliases" } th { "Owner" } th { "Last modified" } } }
            tbody {
                @for (m, latest) in rows {
                    tr data-model=(m.name) {
                        td { a href=(model_url(&m.name)) { (m.name) } }
                        td { @if uc_name(&m.name).is_some() { "Unity Catalog" } @else { "Workspace" } }
                        td.latest {
                            @for v in latest {
                                a href=(version_url(&m.name, v.version)) { "v" (v.version) }
                                " " @if v.current_stage != "None" { (badge(&v.current_stage)) " " }
                            }
                        }
                        td { (aliases(&m.name, &m.aliases)) }
                        td { (m.creator) }
                        td { (time(m.last_updated_time)) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_registry_name_makes_a_link_that_routes_back() {
        assert_eq!(model_url("main.default.churn"), "/ml/models/main.default.churn");
        assert_eq!(version_url("a b/c?", 2), "/ml/models/a%20b%2Fc%3F/versions/2");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn only_lower_case_three_part_names_are_unity_catalog_models() {
        assert!(uc_name("main.default.churn").is_some());
        assert!(uc_name("churn").is_none());
        assert!(uc_name("a.b").is_none());
        assert!(uc_name("Main.default.churn").is_none());
    }
}
