//! The usage records a page may show (task attempts' compute, the rows
//! `system.billing.usage` is built from) and their sums, shared by the
//! home, compute and costs pages.
//!
//! Reading a record means parsing its task run's document, too slow to do
//! for a month of runs on each page view; so the records of runs already in
//! a final state (whose usage no longer changes) are kept in memory (the
//! server's [`UsageMemo`], in `AppState`), and each view reads only the
//! runs after them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tarn_core::time::now_ms;
use tarn_store::{Store, UsageRecord, User};

use crate::AppState;
use crate::error::ApiFailure;
use crate::routes::permissions::{job, permissions};

pub(in crate::ui) const DAY_MS: i64 = 86_400_000;

/// How long before it started a task run may have been created and still be
/// found (runs are searched by creation time, records by start).
const QUEUE_SLACK_MS: i64 = DAY_MS;

/// The most days back a page reads (the costs page's 30, and a day's margin).
const KEEP_DAYS: i64 = 31;

/// The midnight (UTC) that starts the day of `ms`.
pub(in crate::ui) fn day_start(ms: i64) -> i64 {
    ms - ms.rem_euclid(DAY_MS)
}

/// What the pages have read of the usage records, kept between views.
#[derive(Clone, Default)]
pub struct UsageMemo(Arc<Mutex<Option<Kept>>>);

/// The records read so far.
struct Kept {
    /// Records kept start at or after this.
    since: i64,
    /// Runs from this id on are read on the next view.
    below: i64,
    /// Runs below `below` that were not final when read: read again.
    pending: Vec<i64>,
    records: BTreeMap<i64, UsageRecord>,
}

impl Kept {
    fn new(store: &Store, since: i64) -> Result<Self, ApiFailure> {
        Ok(Self {
            since,
            below: store.first_job_run_since(since.saturating_sub(QUEUE_SLACK_MS))?,
            pending: Vec::new(),
            records: BTreeMap::new(),
        })
    }

    /// Reads the runs after those read and those then unfinished. The last
    /// id is read first and the unfinished ids next, so a run that ends
    /// meanwhile is either read now or listed to be read again.
    fn catch_up(&mut self, store: &Store) -> Result<(), ApiFailure> {
        let last = store.last_job_run_id()?;
        let unfinished = store.unfinished_job_run_ids()?;
        let mut read = store.usage_records_from(self.below)?;
        read.extend(store.usage_records_of(&self.pending)?);
        let since = self.since;
        self.records.extend(read.into_iter().filter(|r| r.start_time >= since).map(|r| (r.task_run_id, r)));
        self.pending = unfinished.into_iter().filter(|id| *id <= last).collect();
        self.below = self.below.max(last + 1);
        // Days older than any page shows are dropped as time moves on.
        let horizon = day_start(now_ms()) - KEEP_DAYS * DAY_MS;
        if horizon >= self.since + DAY_MS {
            self.records.retain(|_, r| r.start_time >= horizon);
            self.since = horizon;
        }
        Ok(())
    }
}

/// Calls `f` with every record started since `since` (of one cluster when
/// given) that `user` may see: an admin all of them, anyone else those of
/// jobs they may view (a one-time run's records are the admins'). Task
/// attempts' usage is written once, with their final state, so what was
/// read is kept and only newer or then unfinished runs are read again.
pub(in crate::ui) fn each_visible(
    s: &AppState,
    user: &User,
    since: i64,
    cluster_id: Option<&str>,
    mut f: impl FnMut(&UsageRecord),
) -> Result<(), ApiFailure> {
    let mut memo = s.usage_memo.0.lock().unwrap_or_else(|p| p.into_inner());
    if memo.as_ref().is_none_or(|k| k.since > since) {
        *memo = Some(Kept::new(&s.store, since)?);
    }
    let Some(kept) = memo.as_mut() else { return Ok(()) };
    kept.catch_up(&s.store)?;
    let mut allowed: HashMap<i64, bool> = HashMap::new();
    for r in kept.records.values() {
        if r.start_time < since || cluster_id.is_some_and(|id| r.cluster_id.as_deref() != Some(id)) {
            continue;
        }
        if user.admin || may_view(s, user, r.job_id, &mut allowed)? {
            f(r);
        }
    }
    Ok(())
}

fn may_view(
    s: &AppState,
    user: &User,
    job_id: Option<i64>,
    allowed: &mut HashMap<i64, bool>,
) -> Result<bool, ApiFailure> {
    let Some(job_id) = job_id else { return Ok(false) };
    if let Some(may) = allowed.get(&job_id) {
        return Ok(*may);
    }
    let may = match job(s, job_id) {
        Ok(object) => permissions(s).allows(user, &object, "CAN_VIEW")?,
        Err(_) => false,
    };
    allowed.insert(job_id, may);
    Ok(may)
}

/// The records [`each_visible`] gives, copied (for one cluster's few).
pub(in crate::ui) fn visible_records(
    s: &AppState,
    user: &User,
    since: i64,
    cluster_id: Option<&str>,
) -> Result<Vec<UsageRecord>, ApiFailure> {
    let mut out = Vec::new();
    each_visible(s, user, since, cluster_id, |r| out.push(r.clone()))?;
    Ok(out)
}

/// One cluster's use: its totals, per day, and when its tasks ran.
#[derive(Debug, Clone, Default)]
pub(in crate::ui) struct ClusterUse {
    pub totals: Totals,
    pub days: BTreeMap<i64, Totals>,
    pub spans: Vec<(i64, i64)>,
}

/// Records summed per day, job and cluster in one pass.
#[derive(Debug, Clone, Default)]
pub(in crate::ui) struct Summary {
    pub total: Totals,
    pub days: BTreeMap<i64, Totals>,
    pub jobs: HashMap<i64, Totals>,
    pub clusters: HashMap<String, ClusterUse>,
}

impl Summary {
    pub fn add(&mut self, r: &UsageRecord) {
        let day = day_start(r.start_time);
        self.total.add(r);
        self.days.entry(day).or_default().add(r);
        if let Some(job) = r.job_id {
            self.jobs.entry(job).or_default().add(r);
        }
        if let Some(id) = &r.cluster_id {
            let cluster = match self.clusters.get_mut(id) {
                Some(c) => c,
                None => self.clusters.entry(id.clone()).or_default(),
            };
            cluster.totals.add(r);
            cluster.days.entry(day).or_default().add(r);
            cluster.spans.push((r.start_time, r.end_time));
        }
    }
}

/// Sums of some records.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(in crate::ui) struct Totals {
    pub core_seconds: f64,
    pub cost: f64,
    /// Task attempts counted.
    pub attempts: usize,
}

impl Totals {
    pub fn add(&mut self, r: &UsageRecord) {
        self.core_seconds += r.core_seconds;
        self.cost += r.estimated_cost;
        self.attempts += 1;
    }

    pub fn of<'a>(records: impl IntoIterator<Item = &'a UsageRecord>) -> Self {
        let mut totals = Self::default();
        records.into_iter().for_each(|r| totals.add(r));
        totals
    }

    pub fn core_hours(&self) -> f64 {
        self.core_seconds / 3600.0
    }

    /// The cost of a core-hour these records were estimated at.
    pub fn rate(&self) -> Option<f64> {
        (self.core_seconds > 0.0).then(|| self.cost / self.core_hours())
    }
}

/// The records' totals by `key` (records without one are left out).
pub(in crate::ui) fn by<'a, K: Ord>(
    records: impl IntoIterator<Item = &'a UsageRecord>,
    key: impl Fn(&'a UsageRecord) -> Option<K>,
) -> BTreeMap<K, Totals> {
    let mut out: BTreeMap<K, Totals> = BTreeMap::new();
    for r in records {
        if let Some(k) = key(r) {
            out.entry(k).or_default().add(r);
        }
    }
    out
}

/// A figure of money as the records give it (the rate is tarn's estimate).
pub(in crate::ui) fn money(cost: f64) -> String {
    format!("{cost:.4}")
}

/// The UTC day of `day_ms` as `YYYY-MM-DD`.
pub(in crate::ui) fn date(day_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(day_ms).map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string())
}

/// Core-hours, to the precision short task runs need.
pub(in crate::ui) fn hours(core_hours: f64) -> String {
    format!("{core_hours:.4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cluster: &str, start: i64, core_seconds: f64, cost: f64) -> UsageRecord {
        UsageRecord {
            task_run_id: 1,
            job_id: Some(1),
            job_run_id: Some(1),
            cluster_id: Some(cluster.into()),
            product: "JOBS".into(),
            cores: 4.0,
            start_time: start,
            end_time: start + 1000,
            core_seconds,
            estimated_cost: cost,
        }
    }

    #[test]
    fn totals_by_key_and_rate() {
        let records = [record("a", 10, 3600.0, 0.1), record("a", DAY_MS + 5, 7200.0, 0.2), record("b", 5, 0.0, 0.0)];
        let per_cluster = by(&records, |r| r.cluster_id.as_deref());
        assert_eq!(per_cluster["a"].attempts, 2);
        assert!((per_cluster["a"].core_hours() - 3.0).abs() < 1e-9);
        assert!((per_cluster["a"].rate().unwrap_or(0.0) - 0.1).abs() < 1e-9);
        assert_eq!(per_cluster["b"].rate(), None);
        let per_day = by(&records, |r| Some(day_start(r.start_time)));
        assert_eq!(per_day.keys().copied().collect::<Vec<_>>(), vec![0, DAY_MS]);
    }
}
