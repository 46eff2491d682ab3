//! Right-sizing from what was measured: how long each cluster was up (its
//! RUNNING to TERMINATING/RESTARTING events) against how long job tasks ran
//! on it (the usage records). tarn records no CPU utilisation, so time up
//! with no task running is what counts as idle.

use std::collections::{BTreeMap, HashMap};

use tarn_compute::EventsRequest;
use tarn_compute::cluster::ClusterState;
use tarn_core::time::now_ms;
use tarn_store::User;

use super::usage::{ClusterUse, Totals};
use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::visible;

/// The autotermination the savings are figured for (Databricks' least).
pub(in crate::ui) const SHORTER_MINUTES: i64 = 10;
/// Clusters looked at, most used first.
const MAX_CLUSTERS: usize = 50;
const EVENTS: [&str; 4] = ["RUNNING", "TERMINATING", "RESTARTING", "STARTING"];

/// One cluster's measured use over the window.
#[derive(Debug, Clone)]
pub(in crate::ui) struct Sizing {
    pub cluster_id: String,
    pub name: String,
    pub cores: u32,
    pub autotermination: i64,
    pub uptime_ms: i64,
    /// Time up with at least one task running.
    pub busy_ms: i64,
    pub used: Totals,
    /// Time each ended uptime ran on past its last task, beyond
    /// [`SHORTER_MINUTES`].
    pub excess_tail_ms: i64,
}

impl Sizing {
    pub fn idle_ms(&self) -> i64 {
        (self.uptime_ms - self.busy_ms).max(0)
    }

    pub fn idle_core_hours(&self) -> f64 {
        f64::from(self.cores) * self.idle_ms() as f64 / 3_600_000.0
    }

    pub fn idle_cost(&self) -> Option<f64> {
        self.used.rate().map(|rate| self.idle_core_hours() * rate)
    }

    /// What stopping [`SHORTER_MINUTES`] after the last task would have saved.
    pub fn autotermination_saving(&self) -> Option<f64> {
        let hours = f64::from(self.cores) * self.excess_tail_ms as f64 / 3_600_000.0;
        self.used.rate().map(|rate| hours * rate)
    }

    /// What half the cores would have saved over the idle time alone.
    pub fn half_size_saving(&self) -> Option<f64> {
        let removed = f64::from(self.cores - self.cores / 2);
        (self.cores >= 2).then_some(())?;
        self.used.rate().map(|rate| removed * self.idle_ms() as f64 / 3_600_000.0 * rate)
    }
}

/// The clusters of `records` (and those running now) that `user` may see,
/// measured since `since`.
pub(in crate::ui) fn measure(
    s: &AppState,
    user: &User,
    used: &HashMap<String, ClusterUse>,
    since: i64,
) -> Result<Vec<Sizing>, ApiFailure> {
    let mut ids: Vec<(String, f64)> = used.iter().map(|(id, c)| (id.clone(), c.totals.core_seconds)).collect();
    let running = tarn_compute::ClusterFilter { states: vec![ClusterState::Running], ..Default::default() };
    ids.extend(
        s.clusters
            .list(&running)?
            .into_iter()
            .map(|c| c.row.cluster_id)
            .filter(|id| !used.contains_key(id))
            .map(|id| (id, 0.0)),
    );
    ids.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut out = Vec::new();
    for (id, _) in ids.into_iter().take(MAX_CLUSTERS) {
        if !user.admin && !visible(s, user, "clusters", &id)? {
            continue;
        }
        // A cluster deleted since leaves records but no cluster to size.
        let Ok(cluster) = s.clusters.get(&id) else { continue };
        let ups = uptimes(s, &id, since, cluster.state == ClusterState::Running)?;
        let spans = used.get(&id).map_or(&[][..], |c| c.spans.as_slice());
        let (busy_ms, excess_tail_ms) = busy_and_tails(&ups, spans);
        out.push(Sizing {
            name: cluster.spec.name().to_string(),
            cores: cluster.cores,
            autotermination: cluster.spec.autotermination(),
            uptime_ms: ups.iter().map(|u| u.end - u.start).sum(),
            busy_ms,
            used: used.get(&id).map(|c| c.totals).unwrap_or_default(),
            excess_tail_ms,
            cluster_id: id,
        });
    }
    Ok(out)
}

/// A stretch of time the cluster was up; `ended` when it stopped (rather
/// than running on now).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Uptime {
    start: i64,
    end: i64,
    ended: bool,
}

fn uptimes(s: &AppState, cluster_id: &str, since: i64, running_now: bool) -> Result<Vec<Uptime>, ApiFailure> {
    let request = EventsRequest {
        cluster_id: cluster_id.to_string(),
        order: Some("ASC".into()),
        event_types: EVENTS.iter().map(|k| k.to_string()).collect(),
        start_time: Some(since),
        limit: Some(500),
        ..Default::default()
    };
    let events: Vec<(i64, String)> =
        s.clusters.events(&request)?.events.into_iter().map(|e| (e.timestamp, e.kind)).collect();
    Ok(stretches(&events, since, now_ms(), running_now))
}

/// The stretches between RUNNING events and the next event that stops or
/// replaces the engine; one open at `now` only when the cluster runs now.
fn stretches(events: &[(i64, String)], since: i64, now: i64, running_now: bool) -> Vec<Uptime> {
    let mut out = Vec::new();
    let mut up: Option<i64> = None;
    for (i, (at, kind)) in events.iter().enumerate() {
        match (kind.as_str(), up) {
            ("RUNNING", None) => up = Some(*at),
            ("RUNNING", Some(_)) => {}
            (_, Some(start)) => {
                out.push(Uptime { start, end: *at, ended: true });
                up = None;
            }
            // Running already when the window opened.
            (_, None) if i == 0 && kind != "STARTING" => out.push(Uptime { start: since, end: *at, ended: true }),
            (_, None) => {}
        }
    }
    match up {
        Some(start) if running_now => out.push(Uptime { start, end: now, ended: false }),
        None if running_now && events.is_empty() => out.push(Uptime { start: since, end: now, ended: false }),
        _ => {}
    }
    out
}

/// Time within the uptimes with a task running, and the idle tails of the
/// ended uptimes beyond [`SHORTER_MINUTES`].
fn busy_and_tails(ups: &[Uptime], runs: &[(i64, i64)]) -> (i64, i64) {
    let mut busy = 0;
    let mut tails = 0;
    for up in ups {
        let mut spans: BTreeMap<i64, i64> = BTreeMap::new();
        for (run_start, run_end) in runs {
            let (start, end) = ((*run_start).max(up.start), (*run_end).min(up.end));
            if start < end {
                let e = spans.entry(start).or_insert(end);
                *e = (*e).max(end);
            }
        }
        let (mut covered, mut reach, mut last_end) = (0, up.start, up.start);
        for (start, end) in spans {
            let from = start.max(reach);
            if end > from {
                covered += end - from;
                reach = end;
            }
            last_end = last_end.max(end);
        }
        busy += covered;
        if up.ended {
            tails += (up.end - last_end - SHORTER_MINUTES * 60_000).max(0);
        }
    }
    (busy, tails)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: i64, kind: &str) -> (i64, String) {
        (at, kind.to_string())
    }

    #[test]
    fn uptimes_follow_the_events() {
        let events = [ev(10, "STARTING"), ev(20, "RUNNING"), ev(50, "RESTARTING"), ev(60, "RUNNING")];
        let ups = stretches(&events, 0, 100, true);
        assert_eq!(ups, vec![Uptime { start: 20, end: 50, ended: true }, Uptime { start: 60, end: 100, ended: false }]);
        // Up before the window: from its start; not running now: no open stretch.
        let ups = stretches(&[ev(30, "TERMINATING"), ev(40, "STARTING"), ev(45, "RUNNING")], 5, 100, false);
        assert_eq!(ups, vec![Uptime { start: 5, end: 30, ended: true }]);
    }

    #[test]
    fn busy_time_is_the_union_of_task_runs() {
        let up = Uptime { start: 0, end: 300 + 11 * 60_000, ended: true };
        let (busy, tail) = busy_and_tails(&[up], &[(0, 100), (50, 150), (200, 300)]);
        assert_eq!(busy, 250);
        assert_eq!(tail, 60_000);
    }
}
