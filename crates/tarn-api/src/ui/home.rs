//! The home page: what is running now, recent failures, today's cost.

use axum::Router;
use axum::routing::get;
use maud::html;
use tarn_ui::layout::Section;

use super::{PageResult, Viewer};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/", get(home))
}

async fn home(viewer: Viewer) -> PageResult {
    Ok(viewer.page("Home", Section::Home, &[], html! { p { "Welcome to tarn." } }))
}
