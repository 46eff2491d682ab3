//! A registered model: its facts, tags, aliases and versions, paged.

use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use tarn_mlflow::{ModelVersionRow, RegisteredModelRow};
use tarn_store::User;
use tarn_ui::components::{Pager, badge, empty, facts, time};
use tarn_ui::layout::Section;

use super::{aliases, model_url, readable, run_link, uc_name, version_url};
use crate::AppState;
use crate::ui::{PageResult, Paging, Viewer};

pub(super) async fn page(
    viewer: Viewer,
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(paging): Query<Paging>,
) -> PageResult {
    let model = readable(&s, &viewer.user, &name)?;
    let limit = paging.limit();
    let total = s.store.count_model_versions(&model.name)?;
    let versions = s.store.model_versions_page(&model.name, paging.offset, limit)?;
    let base = model_url(&model.name);
    let pager = Pager {
        base: &base,
        offset: paging.offset,
        limit,
        shown: versions.len() as u64,
        has_more: paging.offset + (versions.len() as u64) < total,
        total: Some(total),
    };
    let body = html! {
        (summary(&model))
        h2 { "Aliases" }
        @if model.aliases.is_empty() { (empty("No aliases.")) } @else {
            table.list.aliases {
                thead { tr { th { "Alias" } th { "Version" } } }
                tbody {
                    @for (alias, version) in &model.aliases {
                        tr data-alias=(alias) { td { "@" (alias) } td { a href=(version_url(&model.name, version)) { "Version " (version) } } }
                    }
                }
            }
        }
        @if !model.tags.is_empty() {
            h2 { "Tags" }
            (tags(&model.tags))
        }
        h2 { "Versions" }
        @if versions.is_empty() { (empty("No versions.")) } @else {
            (versions_table(&s, &viewer.user, &versions))
            (pager.render())
        }
    };
    Ok(viewer.page(&model.name, Section::Models, &[("Models", "/ml/models")], body))
}

fn summary(m: &RegisteredModelRow) -> Markup {
    let registry = match uc_name(&m.name) {
        Some(full) => {
            html! { "Unity Catalog · schema " a href={ "/explore/data/" (full.parts[0]) "/" (full.parts[1]) } { (full.parent()) } }
        }
        None => html! { "Workspace model registry" },
    };
    facts(&[
        ("Registry", registry),
        ("Owner", html! { (m.creator) }),
        ("Created", time(m.creation_time)),
        ("Last modified", time(m.last_updated_time)),
        ("Description", html! { @if m.description.is_empty() { span.dim { "–" } } @else { (m.description) } }),
        ("Aliases", aliases(&m.name, &m.aliases)),
    ])
}

pub(super) fn tags(tags: &[(String, String)]) -> Markup {
    html! {
        table.list.tags {
            thead { tr { th { "Key" } th { "Value" } } }
            tbody { @for (k, v) in tags { tr { td { (k) } td { (v) } } } }
        }
    }
}

fn versions_table(s: &AppState, user: &User, versions: &[ModelVersionRow]) -> Markup {
    html! {
        table.list.versions {
            thead { tr { th { "Version" } th { "Stage" } th { "Status" } th { "Aliases" } th { "Created" } th { "Source run" } } }
            tbody {
                @for v in versions {
                    tr data-version=(v.version) {
                        td { a href=(version_url(&v.name, v.version)) { "Version " (v.version) } }
                        td { (badge(&v.current_stage)) }
                        td { (badge(&v.status)) }
                        td { @for a in &v.aliases { span.alias { "@" (a) } " " } }
                        td { (time(v.creation_time)) }
                        td { (run_link(s, user, v)) }
                    }
                }
            }
        }
    }
}
