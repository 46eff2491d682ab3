//! A cluster's event log as the clusters API pages it: the event types
//! Databricks names, what an `events` request may filter on, and the page
//! arithmetic ([`crate::ClusterManager::events`] reads the log).

use tarn_store::{EventFilter, EventRow};

use crate::ComputeError;

/// The event types a request may filter on.
pub const EVENT_TYPES: &[&str] = &[
    "CREATING",
    "STARTING",
    "RESTARTING",
    "TERMINATING",
    "EDITED",
    "RUNNING",
    "RESIZING",
    "UPSIZE_COMPLETED",
    "PINNED",
    "UNPINNED",
    "DRIVER_HEALTHY",
    "DRIVER_NOT_RESPONDING",
    "DRIVER_UNAVAILABLE",
    "SPARK_EXCEPTION",
    "NODES_LOST",
    "INIT_SCRIPTS_STARTED",
    "INIT_SCRIPTS_FINISHED",
    "AUTOSCALING_STATS_REPORT",
];

const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: i64 = 500;

/// An `events` request: its filters, order and page, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsRequest {
    pub cluster_id: String,
    /// `ASC` or `DESC` (newest first, the default).
    pub order: Option<String>,
    /// Only events of these types (all when empty).
    pub event_types: Vec<String>,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    /// Events per page, 0 to 500; none or 0 is 50.
    pub limit: Option<i64>,
    /// Where the page starts when no page token is sent.
    pub offset: Option<i64>,
    pub page_token: Option<String>,
}

/// One page of a cluster's events.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    /// Events matching the filters, on all pages.
    pub total_count: usize,
    /// Where the next page starts, when events remain.
    pub next_offset: Option<usize>,
    /// The page size served.
    pub limit: usize,
}

fn invalid(message: String) -> ComputeError {
    ComputeError::InvalidRequest(message)
}

impl EventsRequest {
    /// The store's filter, and the offset and size of the page asked for.
    pub(crate) fn resolve(&self) -> Result<(EventFilter, usize, usize), ComputeError> {
        let descending = match self.order.as_deref() {
            None | Some("DESC") => true,
            Some("ASC") => false,
            Some(other) => return Err(invalid(format!("order must be ASC or DESC, got {other}"))),
        };
        if let Some(unknown) = self.event_types.iter().find(|k| !EVENT_TYPES.contains(&k.as_str())) {
            return Err(invalid(format!("Unknown event type in event_types: {unknown}")));
        }
        let limit = match self.limit.unwrap_or(0) {
            0 => DEFAULT_LIMIT,
            n if (1..=MAX_LIMIT).contains(&n) => usize::try_from(n).unwrap_or(DEFAULT_LIMIT),
            n => return Err(invalid(format!("limit must be between 0 and 500, got {n}"))),
        };
        let offset = match self.page_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => tarn_core::page::decode(token).map_err(|e| invalid(e.message))?,
            None => usize::try_from(self.offset.unwrap_or(0)).map_err(|_| invalid("offset must be >= 0".into()))?,
        };
        let filter = EventFilter {
            start_time: self.start_time,
            end_time: self.end_time,
            kinds: self.event_types.clone(),
            descending,
        };
        Ok((filter, offset, limit))
    }
}

/// The page of `all` (filtered and ordered) at `offset`.
pub(crate) fn page(all: Vec<EventRow>, offset: usize, limit: usize) -> EventPage {
    let total_count = all.len();
    let end = offset.saturating_add(limit).min(total_count);
    let events = all.into_iter().skip(offset).take(end.saturating_sub(offset)).collect();
    EventPage { events, total_count, next_offset: (end < total_count).then_some(end), limit }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(request: EventsRequest) -> Result<(usize, usize, bool), String> {
        request.resolve().map(|(f, offset, limit)| (offset, limit, f.descending)).map_err(|e| e.to_string())
    }

    #[test]
    fn requests_resolve_to_a_filter_and_a_page() {
        let base = EventsRequest { cluster_id: "c".into(), ..Default::default() };
        assert_eq!(resolve(base.clone()), Ok((0, 50, true)));
        let asc = EventsRequest { order: Some("ASC".into()), limit: Some(2), offset: Some(4), ..base.clone() };
        assert_eq!(resolve(asc.clone()), Ok((4, 2, false)));
        // A page token wins over `offset`.
        assert_eq!(resolve(EventsRequest { page_token: Some("o6".into()), ..asc }), Ok((6, 2, false)));
        for (bad, message) in [
            (EventsRequest { order: Some("UP".into()), ..base.clone() }, "order must be ASC or DESC, got UP"),
            (
                EventsRequest { event_types: vec!["RUNNING".into(), "NAPPING".into()], ..base.clone() },
                "Unknown event type in event_types: NAPPING",
            ),
            (EventsRequest { limit: Some(501), ..base.clone() }, "limit must be between 0 and 500, got 501"),
            (EventsRequest { offset: Some(-1), ..base.clone() }, "offset must be >= 0"),
            (EventsRequest { page_token: Some("x".into()), ..base.clone() }, "Invalid page token: x"),
        ] {
            assert_eq!(resolve(bad), Err(message.to_string()));
        }
    }

    #[test]
    fn pages_count_what_remains() {
        let events: Vec<EventRow> = (0..5)
            .map(|i| EventRow {
                cluster_id: "c".into(),
                timestamp: i,
                kind: "RUNNING".into(),
                details: Default::default(),
            })
            .collect();
        let first = page(events.clone(), 0, 2);
        assert_eq!((first.events.len(), first.total_count, first.next_offset), (2, 5, Some(2)));
        let last = page(events.clone(), 4, 2);
        assert_eq!((last.events[0].timestamp, last.next_offset), (4, None));
        assert!(page(events, 9, 2).events.is_empty());
    }
}
