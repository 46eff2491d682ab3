//! A volume's page (`/explore/data/volumes/{catalog}/{schema}/{volume}`,
//! `?path=` for a directory in it): its facts and its files with size and
//! modification time, each downloadable through the Files API's reader
//! with the Files API's check (READ_VOLUME).

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use tarn_catalog::{Action, Kind};
use tarn_files::{Entry, Location};
use tarn_store::User;
use tarn_ui::components::{Pager, empty, error, time};

use super::{page, principal, segment, summary, text};
use crate::AppState;
use crate::error::{ApiFailure, Surface, files_failure};
use crate::ui::encode as query;
use crate::ui::{PageResult, Paging, Viewer};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/explore/data/volumes/{catalog}/{schema}/{volume}", get(volume))
        .route("/explore/data/volumes/{catalog}/{schema}/{volume}/download", get(download))
}

/// The page of a volume.
pub(super) fn href(catalog: &str, schema: &str, volume: &str) -> String {
    format!("/explore/data/volumes/{}/{}/{}", segment(catalog), segment(schema), segment(volume))
}

#[derive(Debug, serde::Deserialize)]
struct Where {
    path: Option<String>,
}

/// `path` inside the volume, without leading or trailing slashes.
fn inner(path: Option<&str>) -> &str {
    path.unwrap_or_default().trim_matches('/')
}

/// A path in the volume as the Files API names it, located for `user` as
/// the Files API locates it (READ_VOLUME unless an admin).
fn locate(s: &AppState, user: &User, volume: [&str; 3], path: &str) -> Result<Location, ApiFailure> {
    let [catalog, schema, name] = volume;
    let full = if path.is_empty() {
        format!("/Volumes/{catalog}/{schema}/{name}")
    } else {
        format!("/Volumes/{catalog}/{schema}/{name}/{path}")
    };
    let location = s.files.volumes().locate(&full).map_err(|e| files_failure(Surface::Files, e))?;
    if !user.admin {
        s.catalog.authorize_volume_file(&principal(s, user)?, &full, false)?;
    }
    Ok(location)
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{value:.1} {}", UNITS[unit]) }
}

fn listing(here: &str, dir: &str, entries: &[Entry], pager: &Pager<'_>) -> Markup {
    let child = |name: &str| if dir.is_empty() { name.to_string() } else { format!("{dir}/{name}") };
    html! {
        @if entries.is_empty() && pager.offset == 0 {
            (empty("This directory is empty."))
        } @else {
            table.list.files {
                thead { tr { th { "Name" } th.num { "Size" } th { "Modified" } th {} } }
                tbody {
                    @for e in entries {
                        tr data-name=(e.name) {
                            @if e.is_dir {
                                td { a href=(format!("{here}?path={}", query(&child(&e.name)))) { (e.name) "/" } }
                                td.num { span.dim { "–" } }
                                td { (time(e.modified_ms)) }
                                td {}
                            } @else {
                                td { (e.name) }
                                td.num { (size(e.size)) }
                                td { (time(e.modified_ms)) }
                                td { a.download href=(format!("{here}/download?path={}", query(&child(&e.name)))) download { "Download" } }
                            }
                        }
                    }
                }
            }
            (pager.render())
        }
    }
}

/// The crumbs of a directory in the volume: the volume, then each parent.
fn path_crumbs(here: &str, volume: &str, dir: &str) -> Markup {
    let parts: Vec<&str> = dir.split('/').filter(|p| !p.is_empty()).collect();
    html! {
        p.path {
            a href=(here) { (volume) }
            @for (i, part) in parts.iter().enumerate() {
                " / "
                a href=(format!("{here}?path={}", query(&parts[..=i].join("/")))) { (part) }
            }
        }
    }
}

async fn volume(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((catalog, schema, name)): Path<(String, String, String)>,
    Query(at): Query<Where>,
    Query(paging): Query<Paging>,
) -> PageResult {
    let full = format!("{catalog}.{schema}.{name}");
    s.catalog.authorize(&principal(&s, &viewer.user)?, Kind::Volume, &full, Action::Browse)?;
    let info = s.catalog.get(Kind::Volume, &full)?;
    let dir = inner(at.path.as_deref());
    let here = href(&catalog, &schema, &name);
    let base = if dir.is_empty() { here.clone() } else { format!("{here}?path={}", query(dir)) };
    let files = match locate(&s, &viewer.user, [&catalog, &schema, &name], dir)
        .and_then(|l| l.list().map_err(|e| files_failure(Surface::Files, e)))
    {
        Ok(entries) => {
            let (start, limit) = (usize::try_from(paging.offset).unwrap_or(usize::MAX), paging.limit() as usize);
            let shown: Vec<Entry> = entries.iter().skip(start).take(limit).cloned().collect();
            let more = entries.len() > start.saturating_add(limit);
            let pager = Pager {
                base: &base,
                offset: paging.offset,
                limit: paging.limit(),
                shown: shown.len() as u64,
                has_more: more,
                total: Some(entries.len() as u64),
            };
            listing(&here, dir, &shown, &pager)
        }
        Err(failure) => error(&failure.for_client().2),
    };
    let body = html! {
        (summary(&info, vec![
            ("Type", html! { (text(&info, "volume_type")) }),
            ("Path", html! { code { "/Volumes/" (catalog) "/" (schema) "/" (name) } }),
            ("Storage location", html! { code { (text(&info, "storage_location")) } }),
        ]))
        h2 { "Files" }
        (path_crumbs(&here, &name, dir))
        (files)
    };
    Ok(page(&viewer, &[&catalog, &schema, &name], body))
}

/// A file's bytes, as `GET /api/2.0/fs/files/Volumes/...` serves them.
async fn download(
    State(s): State<AppState>,
    viewer: Viewer,
    Path((catalog, schema, name)): Path<(String, String, String)>,
    Query(at): Query<Where>,
    headers: HeaderMap,
) -> Result<Response, ApiFailure> {
    let location = locate(&s, &viewer.user, [&catalog, &schema, &name], inner(at.path.as_deref()))?;
    crate::routes::files::serve_file(&location, &headers).await
}
