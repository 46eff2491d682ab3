//! Small pieces every page uses: state badges, times and durations, key /
//! value tables, tabs, pagers, action buttons and live regions.

use maud::{Markup, html};

/// The colour family of a Databricks or MLflow state word (`RUNNING`,
/// `SUCCESS`, `FAILED`, `TERMINATED`, `READY`, ...), a CSS class.
pub fn state_class(state: &str) -> &'static str {
    match state.to_ascii_uppercase().as_str() {
        "SUCCESS" | "SUCCEEDED" | "COMPLETED" | "FINISHED" | "READY" | "RUNNING_OK" | "ACTIVE" | "IDLE" | "HEALTHY"
        | "PASSED" => "ok",
        "RUNNING"
        | "STARTING"
        | "PENDING"
        | "QUEUED"
        | "WAITING"
        | "RESIZING"
        | "RESTARTING"
        | "INITIALIZING"
        | "SETTING_UP_TABLES"
        | "RESETTING"
        | "WAITING_FOR_RESOURCES"
        | "BLOCKED"
        | "TERMINATING"
        | "UPDATING"
        | "NOT_READY"
        | "IN_PROGRESS"
        | "SCHEDULED"
        | "RETRYING" => "busy",
        "FAILED"
        | "INTERNAL_ERROR"
        | "ERROR"
        | "TIMEDOUT"
        | "TIMED_OUT"
        | "UPSTREAM_FAILED"
        | "MAXIMUM_CONCURRENT_RUNS_REACHED"
        | "UNHEALTHY"
        | "DRIFTED" => "bad",
        "CANCELED" | "CANCELLED" | "CANCELING" | "SKIPPED" | "EXCLUDED" | "UPSTREAM_CANCELED" | "STOPPING"
        | "KILLED" | "DELETED" => "muted",
        _ => "neutral",
    }
}

/// A state word in its colour.
pub fn badge(state: &str) -> Markup {
    html! { span class={ "badge " (state_class(state)) } data-state=(state) { (state) } }
}

/// `ms` since the epoch as a UTC date and time, machine-readable too.
pub fn time(ms: i64) -> Markup {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) if ms > 0 => html! {
            time datetime=(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
                (t.format("%Y-%m-%d %H:%M:%S"))
            }
        },
        _ => html! { span.dim { "–" } },
    }
}

/// A length of time the way people read it: `850 ms`, `12s`, `3m 05s`, `2h 10m`, `3d 4h`.
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let s = ms / 1000;
    match s {
        _ if ms < 1000 => format!("{ms} ms"),
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// A definition table of (label, value) rows.
pub fn facts(rows: &[(&str, Markup)]) -> Markup {
    html! {
        dl.facts {
            @for (label, value) in rows { dt { (label) } dd { (value) } }
        }
    }
}

/// Tabs as links: (label, href, active).
pub fn tabs(items: &[(&str, &str, bool)]) -> Markup {
    html! {
        nav.tabs {
            @for (label, href, active) in items {
                a href=(href) class=[active.then_some("active")] { (label) }
            }
        }
    }
}

/// A message where a list is empty.
pub fn empty(message: &str) -> Markup {
    html! { p.empty { (message) } }
}

/// An error shown inside a page.
pub fn error(message: &str) -> Markup {
    html! { p.error role="alert" { (message) } }
}

/// A button that POSTs to `url` with htmx (which sends the `HX-Request`
/// header actions require); `confirm` asks first.
pub fn action(url: &str, label: &str, confirm: Option<&str>) -> Markup {
    html! {
        button.action type="button" hx-post=(url) hx-swap="none" hx-confirm=[confirm] { (label) }
    }
}

/// A region htmx reloads from `url` every `seconds` while `live`; once not
/// live (its run ended) it is plain content and polling stops.
pub fn live(id: &str, url: &str, seconds: u32, live: bool, content: Markup) -> Markup {
    html! {
        @if live {
            div id=(id) hx-get=(url) hx-trigger={ "every " (seconds) "s" } hx-swap="outerHTML" data-live="true" {
                (content)
            }
        } @else {
            div id=(id) data-live="false" { (content) }
        }
    }
}

/// One page of a list paged on the server: where it starts, how many it
/// shows, and whether more follow.
pub struct Pager<'a> {
    /// The list's path with any other query parameters, without `offset`.
    pub base: &'a str,
    pub offset: u64,
    pub limit: u64,
    pub shown: u64,
    pub has_more: bool,
    /// The whole list's size, where counting it is cheap.
    pub total: Option<u64>,
}

impl Pager<'_> {
    pub fn render(&self) -> Markup {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        let link = |offset: u64| format!("{}{}offset={}&limit={}", self.base, sep, offset, self.limit);
        let first = if self.shown == 0 { self.offset } else { self.offset + 1 };
        html! {
            nav.pager {
                @if self.offset > 0 {
                    a rel="prev" href=(link(self.offset.saturating_sub(self.limit))) { "‹ Previous" }
                }
                span.range {
                    (first) "–" (self.offset + self.shown)
                    @if let Some(total) = self.total { " of " (total) }
                }
                @if self.has_more {
                    a rel="next" href=(link(self.offset + self.limit)) { "Next ›" }
                }
            }
        }
    }
}

/// Text shortened to `max` characters with an ellipsis.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_000), "12s");
        assert_eq!(duration(185_000), "3m 05s");
        assert_eq!(duration(7_800_000), "2h 10m");
        assert_eq!(duration(273_600_000), "3d 4h");
    }

    #[test]
    fn states_have_a_colour_family() {
        assert_eq!(state_class("SUCCESS"), "ok");
        assert_eq!(state_class("running"), "busy");
        assert_eq!(state_class("UPSTREAM_FAILED"), "bad");
        assert_eq!(state_class("SKIPPED"), "muted");
        assert_eq!(state_class("whatever"), "neutral");
    }

    #[test]
    fn pager_links_keep_the_query() {
        let pager = Pager { base: "/jobs?name=etl", offset: 25, limit: 25, shown: 25, has_more: true, total: None };
        let html = pager.render().into_string();
        assert!(html.contains("/jobs?name=etl&amp;offset=0&amp;limit=25"), "{html}");
        assert!(html.contains("/jobs?name=etl&amp;offset=50&amp;limit=25"), "{html}");
        assert!(html.contains("26–50"), "{html}");
        assert_eq!(shorten("abcdef", 3), "abc…");
    }
}
