//! A run's artifacts on its page: directories browsed with `?path=`, a
//! chosen text file shown inline, an image drawn from the download route
//! (`/ml/experiments/{id}/runs/{run}/artifact?path=`), which streams a file
//! with its content type, and sandboxed where a browser could run it.

use std::io::Read;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderValue;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use tarn_files::Location;
use tarn_mlflow::{MlflowError, RunRow, files_error};
use tarn_ui::components::{empty, error};

use super::{api_message, enc, readable_run, run_href};
use crate::AppState;
use crate::body::QueryPairs;
use crate::error::ApiResult;
use crate::ui::{PageError, Viewer};

/// Text files shown inline, at most this large.
const INLINE_TEXT_BYTES: u64 = 1 << 20;
const TEXT: &[&str] = &["txt", "json", "yaml", "yml", "mlmodel", "csv", "py", "md", "log"];
const IMAGES: &[&str] = &["png", "jpg", "jpeg", "gif", "svg"];

/// A file name's extension, lower case (`MLmodel` counts as its own kind).
fn kind(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    match name.rsplit_once('.') {
        Some((_, ext)) => ext.to_ascii_lowercase(),
        None => name.to_ascii_lowercase(),
    }
}

/// The content type a file is served with; anything unknown downloads.
fn content_type(path: &str) -> &'static str {
    match kind(path).as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        k if TEXT.contains(&k) => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn artifact_href(run: &RunRow, path: &str) -> String {
    format!("{}/artifact?path={}", run_href(run.experiment_id, &run.run_uuid), enc(path))
}

fn browse_href(run: &RunRow, path: &str) -> String {
    format!("{}?path={}#artifacts", run_href(run.experiment_id, &run.run_uuid), enc(path))
}

/// The artifacts section: the directory `path` names (or the one holding
/// the file it names) and that file's preview.
pub(super) fn browser(s: &AppState, run: &RunRow, path: &str) -> ApiResult<Markup> {
    let path = path.trim_matches('/');
    if path.split('/').any(|p| p == "..") {
        return Err(MlflowError::InvalidParameter(format!("Invalid artifact path: '{path}'")).into());
    }
    let file = match s.artifacts.root_location(&run.artifact_uri, path) {
        Ok(location) if !path.is_empty() => location.stat().is_ok_and(|e| !e.is_dir).then_some(location),
        Ok(_) => None,
        Err(MlflowError::NotImplemented(m)) => return Ok(html! { section #artifacts { (empty(&m)) } }),
        Err(e) => return Err(e.into()),
    };
    let dir = if file.is_some() { path.rsplit_once('/').map_or("", |(d, _)| d) } else { path };
    let listing = match s.artifacts.list_root(&run.artifact_uri, Some(dir)) {
        Ok(files) => files,
        Err(e) => return Ok(html! { section #artifacts { (error(&api_message(e))) } }),
    };
    Ok(html! {
        section #artifacts {
            div.crumbs.artifact-path {
                a href=(browse_href(run, "")) { "artifacts" }
                @for (i, part) in dir.split('/').filter(|p| !p.is_empty()).enumerate() {
                    span.sep { "/" }
                    a href=(browse_href(run, &dir.split('/').take(i + 1).collect::<Vec<_>>().join("/"))) { (part) }
                }
            }
            @if listing.is_empty() { (empty("No artifacts here.")) } @else {
                table.list.artifacts {
                    thead { tr { th { "Name" } th.num { "Size" } } }
                    tbody {
                        @for f in &listing {
                            @let name = f.path.rsplit('/').next().unwrap_or(&f.path);
                            tr data-path=(f.path) class=[(f.path == path).then_some("active")] {
                                td { a href=(browse_href(run, &f.path)) { (name) @if f.is_dir { "/" } } }
                                td.num { @if !f.is_dir { (f.file_size) " B" } }
                            }
                        }
                    }
                }
            }
            @if let Some(location) = file { (preview(run, path, &location)) }
        }
    })
}

/// A file shown inline: text in a `pre`, an image drawn, else a link.
fn preview(run: &RunRow, path: &str, location: &Location) -> Markup {
    let href = artifact_href(run, path);
    let kind = kind(path);
    let text = TEXT.contains(&kind.as_str()).then(|| read_text(location)).flatten();
    html! {
        div.artifact-preview data-path=(path) {
            h3 { (path) " " a.dim href=(href) download { "download" } }
            @if IMAGES.contains(&kind.as_str()) {
                img.inline-image src=(href) alt=(path);
            } @else if let Some(text) = text {
                pre.artifact-text { (text) }
            } @else {
                p.dim { "No preview for this file." }
            }
        }
    }
}

/// A text file's content, if it is small enough to show.
fn read_text(location: &Location) -> Option<String> {
    let (file, entry) = location.open_file().ok()?;
    if entry.size > INLINE_TEXT_BYTES {
        return None;
    }
    let mut bytes = Vec::with_capacity(usize::try_from(entry.size).unwrap_or(0));
    file.take(INLINE_TEXT_BYTES).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// One artifact file streamed with its content type; SVG and HTML are
/// sandboxed (no scripts, no same origin) and nothing is sniffed.
pub(super) async fn download(
    viewer: Viewer,
    State(s): State<AppState>,
    Path((id, run_id)): Path<(String, String)>,
    q: QueryPairs,
) -> Result<Response, PageError> {
    let (_, run) = readable_run(&s, &viewer.user, &id, &run_id)?;
    let path = q.get("path").unwrap_or("").trim_matches('/');
    if path.is_empty() || path.split('/').any(|p| p == "..") {
        return Err(MlflowError::InvalidParameter(format!("Invalid artifact path: '{path}'")).into());
    }
    let location = s.artifacts.root_location(&run.artifact_uri, path)?;
    let (file, _) = location.open_file().map_err(files_error)?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let kind = content_type(path);
    let name = path.rsplit('/').next().unwrap_or(path).replace(['"', '\\'], "_");
    let mut response =
        ([(CONTENT_TYPE, kind), (X_CONTENT_TYPE_OPTIONS, "nosniff")], Body::from_stream(stream)).into_response();
    let headers = response.headers_mut();
    if kind.starts_with("image/svg") || kind.starts_with("text/html") {
        headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""));
    if let (true, Ok(v)) = (kind == "application/octet-stream", disposition) {
        headers.insert(CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_served_as_their_kind() {
        assert_eq!(content_type("plots/a.PNG"), "image/png");
        assert_eq!(content_type("model/MLmodel"), "text/plain; charset=utf-8");
        assert_eq!(content_type("x.svg"), "image/svg+xml");
        assert_eq!(content_type("report.html"), "text/html; charset=utf-8");
        assert_eq!(content_type("model.pkl"), "application/octet-stream");
        assert_eq!(super::super::segment("a b/c"), "a%20b%2Fc");
    }
}
