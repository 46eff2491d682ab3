//! Triggers: a job's `schedule` (Quartz cron in its `timezone_id`) and its
//! file-arrival trigger on a volume path start runs; `pause_status: PAUSED`
//! stops them.
//!
//! Missed schedules: when a schedule's next time passed while tarn was down,
//! one run starts when tarn is back (not one per missed time), then the
//! schedule goes on from the present. Unpausing starts from the present too.
//! A file-arrival trigger compares the path's listing with the one it last
//! kept (stored, so files that land while tarn is down start a run when it
//! is back); a new trigger's first listing is its baseline.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tarn_core::time::now_ms;
use tarn_files::Files;
use tarn_store::FileArrivalState;

use crate::error::Result;
use crate::runs::Runs;
use crate::schedule::{next_after, parse_quartz, paused, time_zone};

const TICK: Duration = Duration::from_millis(200);
/// How often file-arrival paths are listed (in ticks).
const FILE_POLL_TICKS: u32 = 5;

struct Schedule {
    expression: String,
    next: DateTime<Utc>,
}

struct Watch {
    url: String,
    seen: HashMap<String, (u64, i64)>,
    last_run: Option<i64>,
}

/// The trigger loop's memory.
struct State {
    /// Where file-arrival paths are listed.
    files: Files,
    schedules: HashMap<i64, Schedule>,
    paused: HashSet<i64>,
    watches: HashMap<i64, Watch>,
}

/// Starts the loop that fires schedules and file-arrival triggers.
pub fn spawn(runs: Runs, files: Files) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = State { files, schedules: HashMap::new(), paused: HashSet::new(), watches: HashMap::new() };
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n: u32 = 0;
        loop {
            tick.tick().await;
            n = n.wrapping_add(1);
            if let Err(e) = state.fire(&runs, n.is_multiple_of(FILE_POLL_TICKS)) {
                tracing::warn!(error = %e, "job triggers");
            }
        }
    })
}

impl State {
    fn fire(&mut self, runs: &Runs, poll_files: bool) -> Result<()> {
        let jobs = runs.store().triggered_jobs()?;
        let present: HashSet<i64> = jobs.iter().map(|(id, _)| *id).collect();
        self.schedules.retain(|id, _| present.contains(id));
        self.watches.retain(|id, _| present.contains(id));
        for (job_id, settings) in jobs {
            match settings.get("schedule").filter(|s| !s.is_null()) {
                Some(schedule) => self.schedule(runs, job_id, &settings, schedule),
                None => {
                    self.schedules.remove(&job_id);
                }
            }
            if poll_files && let Some(trigger) = settings.get("trigger").filter(|t| !t.is_null() && !paused(t)) {
                self.watch(runs, job_id, trigger);
            }
        }
        Ok(())
    }

    fn schedule(&mut self, runs: &Runs, job_id: i64, settings: &Value, schedule: &Value) {
        if paused(schedule) {
            self.schedules.remove(&job_id);
            self.paused.insert(job_id);
            return;
        }
        let expression = schedule.get("quartz_cron_expression").and_then(Value::as_str).unwrap_or_default();
        let (Ok(cron), Ok(tz)) = (parse_quartz(expression), time_zone(settings)) else { return };
        let now = Utc::now();
        let changed = self.schedules.get(&job_id).is_none_or(|s| s.expression != expression);
        if changed {
            let resumed = self.paused.remove(&job_id);
            let last = match resumed {
                true => None,
                false => runs.store().schedule_last_fired(job_id).ok().flatten(),
            };
            let from = last.and_then(DateTime::from_timestamp_millis).filter(|_| !resumed).unwrap_or(now);
            let Some(next) = next_after(&cron, tz, from) else { return };
            self.schedules.insert(job_id, Schedule { expression: expression.to_string(), next });
        }
        let Some(due) = self.schedules.get(&job_id).map(|s| s.next).filter(|next| *next <= now) else { return };
        if let Err(e) = runs.store().set_schedule_fired(job_id, due.timestamp_millis()) {
            return tracing::warn!(job_id, error = %e, "recording a schedule's run");
        }
        if let Err(e) = runs.run_triggered(job_id, "PERIODIC") {
            tracing::warn!(job_id, error = %e, "starting a scheduled run");
        }
        if let (Some(s), Some(next)) = (self.schedules.get_mut(&job_id), next_after(&cron, tz, now)) {
            s.next = next;
        }
    }

    fn watch(&mut self, runs: &Runs, job_id: i64, trigger: &Value) {
        let url = trigger.pointer("/file_arrival/url").and_then(Value::as_str).unwrap_or_default().to_string();
        let Ok(listing) = list_files(&self.files, &url) else { return };
        if self.watches.get(&job_id).is_none_or(|w| w.url != url) {
            match stored_watch(runs, job_id, &url) {
                Some(kept) => self.watches.insert(job_id, kept),
                None => {
                    let baseline = Watch { url, seen: listing, last_run: None };
                    remember(runs, job_id, &baseline);
                    self.watches.insert(job_id, baseline);
                    return;
                }
            };
        }
        let Some(watch) = self.watches.get_mut(&job_id) else { return };
        let arrived = listing.iter().any(|(path, meta)| watch.seen.get(path) != Some(meta));
        let gap =
            trigger.pointer("/file_arrival/min_time_between_triggers_seconds").and_then(Value::as_i64).unwrap_or(0);
        let rested = watch.last_run.is_none_or(|at| now_ms() - at >= gap * 1000);
        if arrived && rested {
            watch.seen = listing;
            watch.last_run = Some(now_ms());
            remember(runs, job_id, watch);
            if let Err(e) = runs.run_triggered(job_id, "FILE_ARRIVAL") {
                tracing::warn!(job_id, error = %e, "starting a file-arrival run");
            }
        }
    }
}

/// The listing a file-arrival trigger on `url` kept before tarn stopped.
fn stored_watch(runs: &Runs, job_id: i64, url: &str) -> Option<Watch> {
    let state = runs.store().file_arrival_state(job_id).ok().flatten().filter(|s| s.url == url)?;
    let seen = serde_json::from_value(state.seen).ok()?;
    Some(Watch { url: state.url, seen, last_run: state.last_run })
}

fn remember(runs: &Runs, job_id: i64, watch: &Watch) {
    let state = FileArrivalState {
        url: watch.url.clone(),
        seen: serde_json::to_value(&watch.seen).unwrap_or_default(),
        last_run: watch.last_run,
    };
    if let Err(e) = runs.store().set_file_arrival_state(job_id, &state) {
        tracing::warn!(job_id, error = %e, "keeping a file-arrival trigger's listing");
    }
}

/// Files under a volume path (recursively), by path with size and mtime.
fn list_files(files: &Files, url: &str) -> std::result::Result<HashMap<String, (u64, i64)>, String> {
    let mut out = HashMap::new();
    let mut pending = vec![url.trim_end_matches('/').to_string()];
    while let Some(dir) = pending.pop() {
        let location = files.dbfs().locate(&dir).map_err(|e| e.to_string())?;
        for entry in location.list().map_err(|e| e.to_string())? {
            match entry.is_dir {
                true => pending.push(entry.path),
                false => {
                    out.insert(entry.path, (entry.size, entry.modified_ms));
                }
            }
        }
        if out.len() > 10_000 {
            break;
        }
    }
    Ok(out)
}
