//! One serving endpoint: its state, config (served entities and the
//! traffic split, drawn as a bar), the pending config while one deploys,
//! and the last hour of traffic from its inference table: requests and
//! latency per minute, status codes, the latest requests (their payloads
//! only for a viewer who may SELECT the table, as reading it would need).

use axum::extract::{Path, State};
use axum::response::{Html, Response};
use maud::{Markup, html};
use tarn_catalog::{Action, Kind};
use tarn_core::time::now_ms;
use tarn_serving::traffic::{self, Traffic};
use tarn_serving::{EndpointConfig, EndpointView, EntityState};
use tarn_store::{EndpointRow, User};
use tarn_ui::chart::{Chart, Series};
use tarn_ui::components::{self, empty, error, facts, live, shorten, time};
use tarn_ui::layout::Section;

use super::{config_update, deployment, endpoint_url, ready};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::require;
use crate::routes::unity_catalog::principal;
use crate::ui::catalog::table_href as table_url;
use crate::ui::models::version_url;
use crate::ui::{Action as HtmxAction, PageResult, Viewer, done};

/// How far back the traffic charts look.
const WINDOW_MS: i64 = 60 * 60 * 1000;
/// How many of the latest requests are listed.
const RECENT: usize = 10;
/// Colours of the traffic split's segments, in route order.
const COLOURS: &[&str] = &["#2f6fde", "#1f883d", "#bf8700", "#8250df", "#cf222e", "#0a7ea4"];

pub(super) async fn page(viewer: Viewer, State(s): State<AppState>, Path(name): Path<String>) -> PageResult {
    require(&s, &viewer.user, "serving-endpoints", &name, "CAN_VIEW")?;
    let view = s.serving.get(&name)?;
    let manages = require(&s, &viewer.user, "serving-endpoints", &name, "CAN_MANAGE").is_ok();
    let table = traffic::table_name(&view.row).ok().flatten();
    let traffic = traffic_markup(&s, &viewer.user, &view.row).await;
    let body = html! {
        @if manages {
            div.toolbar {
                (components::action(&format!("{}/delete", endpoint_url(&name)), "Delete",
                    Some("Delete this endpoint? Its workers stop once requests in flight end.")))
            }
        }
        (state(&view, table.as_deref()))
        @if let Some(config) = view.row.config.as_ref().and_then(|c| EndpointConfig::parse(c).ok()) {
            h2 { "Served entities" }
            (entities(&config, &view.config_states))
            h2 { "Traffic split" }
            (split(&config))
        }
        @if let Some(pending) = view.row.pending_config.as_ref().and_then(|c| EndpointConfig::parse(c).ok()) {
            h2 { "Pending config" }
            @if let Some(message) = view.row.update_message.as_deref() { (error(message)) }
            (entities(&pending, &view.pending_states))
            (split(&pending))
        }
        h2 { "Traffic, last hour" }
        (traffic)
    };
    Ok(viewer.page(&name, Section::Serving, &[("Serving", "/ml/endpoints")], body))
}

/// The traffic region alone, which reloads itself.
pub(super) async fn live_part(viewer: Viewer, State(s): State<AppState>, Path(name): Path<String>) -> PageResult {
    require(&s, &viewer.user, "serving-endpoints", &name, "CAN_VIEW")?;
    let view = s.serving.get(&name)?;
    Ok(Html(traffic_markup(&s, &viewer.user, &view.row).await.into_string()))
}

fn state(view: &EndpointView, table: Option<&str>) -> Markup {
    let row = &view.row;
    facts(&[
        ("State", ready(view)),
        ("Config update", config_update(&row.config_update)),
        ("Config version", html! { (row.config.as_ref().and_then(|c| c["config_version"].as_i64()).unwrap_or(0)) }),
        ("Creator", html! { (row.creator) }),
        ("Created", time(row.creation_timestamp)),
        ("Last modified", time(row.last_updated_timestamp)),
        (
            "Inference table",
            match table {
                Some(t) => html! { a href=(table_url(t)) { (t) } },
                None => html! { span.dim { "none" } },
            },
        ),
    ])
}

/// The last hour of traffic, reloaded every 10 seconds.
async fn traffic_markup(s: &AppState, user: &User, row: &EndpointRow) -> Markup {
    let table = traffic::table_name(row).ok().flatten();
    let payloads = table.as_deref().is_some_and(|t| may_select(s, user, t));
    let ask = traffic::Ask { since_ms: now_ms() - WINDOW_MS, recent: RECENT, payloads };
    let content = match traffic::read(&s.catalog, row, ask).await {
        Ok(Some(t)) => traffic_section(&t, payloads),
        Ok(None) => empty("This endpoint logs to no inference table, so its traffic is not recorded."),
        Err(e) => error(&e.to_string()),
    };
    live("endpoint-traffic", &format!("{}/live", endpoint_url(&row.name)), 10, true, content)
}

/// Whether the viewer may read the inference table's rows.
fn may_select(s: &AppState, user: &User, table: &str) -> bool {
    user.admin || principal(s, user).is_ok_and(|p| s.catalog.authorize(&p, Kind::Table, table, Action::Select).is_ok())
}

fn entities(config: &EndpointConfig, states: &std::collections::HashMap<String, EntityState>) -> Markup {
    html! {
        table.list.entities {
            thead { tr { th { "Served entity" } th { "Model" } th { "Version" } th { "Workload size" } th { "Scale to zero" } th { "State" } } }
            tbody {
                @for e in &config.served_entities {
                    tr data-entity=(e.name) {
                        td { (e.name) }
                        td { (e.entity_name) }
                        td { a href=(version_url(&e.entity_name, &e.entity_version)) { "v" (e.entity_version) } }
                        td { (e.workload_size.as_str()) }
                        td { @if e.scale_to_zero { "yes" } @else { "no" } }
                        td {
                            (deployment(states.get(&e.name)))
                            @if let Some(EntityState::Failed(message)) = states.get(&e.name) { div.dim { (shorten(message, 300)) } }
                        }
                    }
                }
            }
        }
    }
}

/// The routes as a table and as one bar split by percentage.
fn split(config: &EndpointConfig) -> Markup {
    let starts = config.routes.iter().scan(0u32, |at, r| {
        let start = *at;
        *at += r.traffic_percentage;
        Some(start)
    });
    html! {
        svg.traffic-split width="100%" height="26" role="img" aria-label="traffic split" {
            @for (i, (x, r)) in starts.zip(&config.routes).enumerate() {
                rect x={ (x) "%" } y="0" width={ (r.traffic_percentage) "%" } height="26"
                    fill=(COLOURS[i % COLOURS.len()]) data-route=(r.served_entity_name) data-percent=(r.traffic_percentage) {
                    title { (r.served_entity_name) " " (r.traffic_percentage) "%" }
                }
                @if r.traffic_percentage > 0 {
                    text x={ (x + r.traffic_percentage / 2) "%" } y="17" text-anchor="middle" fill="#fff" font-size="12" {
                        (r.served_entity_name) " " (r.traffic_percentage) "%"
                    }
                }
            }
        }
        table.list.routes {
            thead { tr { th { "Served entity" } th.num { "Traffic" } } }
            tbody {
                @for r in &config.routes {
                    tr data-route=(r.served_entity_name) { td { (r.served_entity_name) } td.num { (r.traffic_percentage) "%" } }
                }
            }
        }
    }
}

fn traffic_section(t: &Traffic, payloads: bool) -> Markup {
    let now = now_ms();
    let first = t.since_ms.div_euclid(60_000) * 60_000;
    // Every minute of the window gets a bar, zero where nothing came.
    let minutes: Vec<(f64, Option<&traffic::Minute>)> = (0..)
        .map(|i| first + i * 60_000)
        .take_while(|m| *m <= now)
        .map(|m| (m as f64 / 1000.0, t.minutes.iter().find(|x| x.start_ms == m)))
        .collect();
    let counts = minutes.iter().map(|(x, m)| (*x, m.map_or(0.0, |m| m.requests as f64))).collect();
    // Latency only where requests came, with empty ends so that the x axis
    // spans the window as the requests' does (few points are drawn as dots).
    let ends = [minutes.first(), minutes.last()].into_iter().flatten().filter(|(_, m)| m.is_none());
    let ends: Vec<(f64, f64)> = ends.map(|(x, _)| (*x, f64::NAN)).collect();
    let latency = |f: fn(&traffic::Minute) -> f64| -> Vec<(f64, f64)> {
        let logged = t.minutes.iter().map(|m| (m.start_ms as f64 / 1000.0, f(m)));
        ends.iter().copied().chain(logged).collect()
    };
    let requests = Chart {
        title: "Requests per minute",
        x_label: "time",
        time_x: true,
        bars: true,
        series: vec![Series { label: "requests".into(), points: counts }],
    };
    let latency = Chart {
        title: "Latency per minute (ms)",
        x_label: "time",
        time_x: true,
        bars: false,
        series: vec![
            Series { label: "p50".into(), points: latency(|m| m.p50_ms) },
            Series { label: "p95".into(), points: latency(|m| m.p95_ms) },
        ],
    };
    html! {
        div.cards {
            div.card.requests { div.figure data-requests=(t.requests) { (t.requests) } div.caption { "requests logged" } }
            @for (code, n) in &t.status_codes {
                div.card.status data-code=(code) { div.figure { (n) } div.caption { "status " (code) } }
            }
        }
        (requests.render())
        (latency.render())
        h2 { "Latest requests" }
        (recent(t, payloads))
    }
}

/// The latest requests, newest first.
fn recent(t: &Traffic, payloads: bool) -> Markup {
    html! {
        @if t.recent.is_empty() { (empty("No requests in the last hour (rows reach the table within its flush interval).")) } @else {
            table.list.recent {
                thead { tr { th { "Time" } th.num { "Status" } th.num { "Duration" } th { "Served entity" }
                    @if payloads { th { "Request" } th { "Response" } } } }
                tbody {
                    @for r in &t.recent {
                        tr {
                            td { (time(r.time_ms)) }
                            td.num { (r.status_code) }
                            td.num { (components::duration(r.duration_ms)) }
                            td { (r.served_entity.as_deref().unwrap_or("–")) }
                            @if payloads {
                                td { code { (shorten(r.request.as_deref().unwrap_or(""), 120)) } }
                                td { code { (shorten(r.response.as_deref().unwrap_or(""), 120)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Deletes the endpoint (CAN_MANAGE, as the API's delete).
pub(super) async fn delete(
    viewer: Viewer,
    _: HtmxAction,
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiFailure> {
    require(&s, &viewer.user, "serving-endpoints", &name, "CAN_MANAGE")?;
    s.serving.delete(&name).await?;
    Ok(done(Some("/ml/endpoints")))
}
