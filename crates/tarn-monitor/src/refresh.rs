//! One refresh's computation, incremental when it can be: the windows the
//! last refresh kept ([`state`]) are extended with the rows of the data
//! files the Delta log added since ([`changes`]), only the windows those
//! rows fall in (and, for CONSECUTIVE drift, the windows right after them)
//! get new output rows, and the baseline's profile is reused while the
//! baseline table's version is unchanged. Anything the log shows besides
//! appends, a changed definition or schema, or a missing state sends the
//! refresh back to reading the whole table.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use deltalake::DeltaTable;
use deltalake::arrow::record_batch::RecordBatch;
use tarn_catalog::Kind;
use tarn_core::time::now_ms;
use tarn_store::MonitorRow;

use crate::changes::{self, Changes};
use crate::custom_eval::{self, Values};
use crate::error::{MonitorError, Result};
use crate::output;
use crate::scan::{self, Plan, Scoring, Source, Windows};
use crate::slicing::{self, SliceSet};
use crate::spec::{Mode, MonitorSpec};
use crate::state::{Kept, KeptBaseline, StateDir};
use crate::tables::{self, Carry, Written};
use crate::window::{Pass, WindowKey};
use crate::{Inner, table_of};

/// What a refresh read, for its message and its log line.
#[derive(Debug, Default)]
pub struct Summary {
    /// Why every row was read, if it was.
    pub full: Option<String>,
    pub since_version: i64,
    pub version: i64,
    pub files: usize,
    pub rows: u64,
    /// Windows whose profile rows were written.
    pub windows: usize,
    /// The baseline's version, and whether its kept profile was used.
    pub baseline: Option<(i64, bool)>,
    /// Milliseconds spent reading the table, and the baseline.
    pub table_ms: u64,
    pub baseline_ms: u64,
}

impl Summary {
    /// The refresh's `message`: what it read, so a caller can see a refresh was incremental.
    pub fn message(&self) -> String {
        let plural = |n: u64, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let read = format!("{} ({})", plural(self.files as u64, "data file"), plural(self.rows, "row"));
        let mut text = match &self.full {
            Some(reason) => format!("Full refresh ({reason}): read {read} of table version {}", self.version),
            None => format!(
                "Incremental refresh: read {read} added after table version {} up to {}",
                self.since_version, self.version
            ),
        };
        text.push_str(&format!("; {} recomputed", plural(self.windows as u64, "window")));
        match self.baseline {
            Some((version, true)) => text.push_str(&format!("; baseline version {version} reused")),
            Some((version, false)) => text.push_str(&format!("; baseline version {version} read")),
            None => {}
        }
        text
    }
}

/// How the definition reads rows.
struct Reading<'a> {
    spec: &'a MonitorSpec,
    now: i64,
    scoring: Option<Scoring<'a>>,
    model_col: Option<&'a str>,
    classification: Option<bool>,
}

impl<'a> Reading<'a> {
    fn of(spec: &'a MonitorSpec, now: i64) -> Self {
        let (scoring, model_col, classification) = match &spec.mode {
            Mode::InferenceLog { prediction_col, label_col, classification, model_id_col, .. } => (
                label_col.as_deref().map(|label_col| Scoring {
                    prediction_col,
                    label_col,
                    classification: *classification,
                }),
                Some(model_id_col.as_str()),
                Some(*classification),
            ),
            _ => (None, None, None),
        };
        Self { spec, now, scoring, model_col, classification }
    }

    fn plan<'b>(&'b self, windows: Windows<'b>, slices: &'b [SliceSet], version: i64) -> Plan<'b> {
        Plan { windows, scoring: self.scoring, slices, version }
    }
}

fn table_id(inner: &Inner, full_name: &str) -> Result<String> {
    let info = inner.catalog.get(Kind::Table, full_name).map_err(|e| MonitorError::Refresh(e.to_string()))?;
    info["table_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| MonitorError::Refresh(format!("table '{full_name}' has no id")))
}

fn version_of(table: &DeltaTable) -> i64 {
    table.version().map_or(0, |v| v as i64)
}

/// The table's columns and types, as a kept state compares them.
fn schema_text(table: &DeltaTable) -> Result<String> {
    let snapshot = table.snapshot().map_err(|e| MonitorError::Refresh(e.to_string()))?;
    Ok(snapshot.schema().fields().map(|f| format!("{}:{:?}", f.name(), f.data_type())).collect::<Vec<_>>().join(","))
}

async fn open(inner: &Inner, name: &str) -> Result<DeltaTable> {
    inner.lake.open_table(name).await.map_err(|e| MonitorError::Refresh(format!("reading {name}: {e}")))
}

/// The kept windows, if the log since shows only appends: with the files to read.
async fn reusable(
    kept: Option<Kept>,
    fingerprint: &str,
    schema: &str,
    table: &DeltaTable,
) -> (Option<Kept>, Vec<String>, Option<String>) {
    let Some(kept) = kept else { return (None, Vec::new(), Some("no kept state".into())) };
    if kept.fingerprint != fingerprint {
        return (None, Vec::new(), Some("the monitor's definition changed".into()));
    }
    if kept.schema != schema {
        return (None, Vec::new(), Some("the table's columns changed".into()));
    }
    match changes::since(table, kept.version, version_of(table)).await {
        Changes::Appended(files) => (Some(kept), files, None),
        Changes::Rewritten(reason) => (None, Vec::new(), Some(reason)),
    }
}

/// A snapshot's one window is dated at the refresh, whatever it kept.
fn redate(pass: &mut Pass, now: i64) {
    let windows = std::mem::take(&mut pass.windows);
    pass.windows = windows.into_iter().map(|(k, w)| (WindowKey { start: now, end: now, ..k }, w)).collect();
}

/// The table's windows: the kept ones plus the new rows', or all read afresh.
struct Current {
    pass: Pass,
    slices: Vec<SliceSet>,
    /// Windows the new rows fell in; `None` after a full read.
    touched: Option<HashSet<WindowKey>>,
    kept: Option<Kept>,
}

async fn read_table(
    table: &DeltaTable,
    reading: &Reading<'_>,
    kept: Option<Kept>,
    files: Vec<String>,
    summary: &mut Summary,
    cancel: &AtomicBool,
) -> Result<Current> {
    let version = summary.version;
    let windows = || Windows::of(&reading.spec.mode, reading.now);
    let exprs = &reading.spec.slicing_exprs;
    let Some(mut kept) = kept else {
        let source = Source::open(table, None).await?;
        let slices = slicing::admit(&source, exprs, &[]).await?;
        summary.files = source.files;
        let (pass, rows) = scan::scan(source, &reading.plan(windows(), &slices, version), cancel).await?;
        summary.rows = rows;
        return Ok(Current { pass, slices, touched: None, kept: None });
    };
    summary.since_version = kept.version;
    let mut pass = std::mem::replace(&mut kept.pass, Pass { column_names: Vec::new(), windows: Default::default() });
    if matches!(reading.spec.mode, Mode::Snapshot) {
        redate(&mut pass, reading.now);
    }
    let mut touched = HashSet::new();
    let mut slices = std::mem::take(&mut kept.slices);
    if !files.is_empty() {
        let source = Source::open(table, Some(files)).await?;
        // Values first seen now had no rows before (see `slicing::admit`), so the kept windows stay right.
        slices = slicing::admit(&source, exprs, &slices).await?;
        summary.files = source.files;
        let (new, rows) = scan::scan(source, &reading.plan(windows(), &slices, version), cancel).await?;
        summary.rows = rows;
        touched.extend(pass.merge(new).map_err(|e| MonitorError::Refresh(e.to_string()))?);
    }
    Ok(Current { pass, slices, touched: Some(touched), kept: Some(kept) })
}

/// The baseline's profile: kept if its version is unchanged, else read and kept.
async fn read_baseline(
    inner: &Inner,
    state: &StateDir,
    reading: &Reading<'_>,
    fingerprint: &str,
    summary: &mut Summary,
    cancel: &AtomicBool,
) -> Result<Option<(Pass, (String, i64))>> {
    let Some(name) = &reading.spec.baseline_table_name else { return Ok(None) };
    let table = open(inner, name).await?;
    let (id, version) = (table_id(inner, name)?, version_of(&table));
    let kept =
        state.load_baseline().filter(|b| b.fingerprint == fingerprint && b.table_id == id && b.version == version);
    if let Some(kept) = kept {
        summary.baseline = Some((version, true));
        return Ok(Some((kept.pass, (id, version))));
    }
    let source = Source::open(&table, None).await?;
    // Expressions over columns the baseline lacks slice the table only.
    let exprs: Vec<String> =
        reading.spec.slicing_exprs.iter().filter(|e| slicing::check(&source, e).is_ok()).cloned().collect();
    let slices = slicing::admit(&source, &exprs, &[]).await?;
    let plan = reading.plan(Windows::Whole { at: reading.now }, &slices, version);
    let (pass, _) = scan::scan(source, &plan, cancel).await?;
    let mut kept = KeptBaseline { fingerprint: fingerprint.to_string(), table_id: id.clone(), version, pass };
    if let Err(e) = state.save_baseline(&mut kept) {
        tracing::warn!(baseline = %name, error = %e, "keeping a baseline profile");
    }
    summary.baseline = Some((version, false));
    Ok(Some((kept.pass, (id, version))))
}

/// Profiles the table (and its baseline) and writes both output tables.
pub(crate) async fn compute(inner: &Inner, monitor: &MonitorRow, cancel: &AtomicBool) -> Result<Summary> {
    let table_name = monitor.table_name.as_str();
    let spec = MonitorSpec::parse(&monitor.info, &table_of(&inner.catalog, table_name)?)?;
    let reading = Reading::of(&spec, now_ms());
    let table = open(inner, table_name).await?;
    let state = StateDir::new(&inner.state_root, &table_id(inner, table_name)?)?;
    let (fingerprint, schema) = (spec.fingerprint(), schema_text(&table)?);
    let mut summary = Summary { version: version_of(&table), ..Summary::default() };
    let (kept, files, full) = reusable(state.load(), &fingerprint, &schema, &table).await;
    summary.full = full;
    let began = std::time::Instant::now();
    let mut current = read_table(&table, &reading, kept, files, &mut summary, cancel).await?;
    summary.table_ms = began.elapsed().as_millis() as u64;
    let mut baseline = read_baseline(inner, &state, &reading, &fingerprint, &mut summary, cancel).await?;
    summary.baseline_ms = began.elapsed().as_millis() as u64 - summary.table_ms;
    let baseline_id = baseline.as_ref().map(|(_, id)| id.clone());
    let kept_outputs = current.kept.as_ref().map(|k| k.outputs.clone()).unwrap_or_default();
    // Every window's rows are written after a full read, for a snapshot (its
    // one window is redated), and when the baseline changed (every BASELINE drift did).
    let same_baseline = current.kept.as_ref().is_some_and(|k| k.baseline == baseline_id);
    let mut touched = current.touched.take().filter(|_| same_baseline && !matches!(spec.mode, Mode::Snapshot));
    let names = [&monitor.info["profile_metrics_table_name"], &monitor.info["drift_metrics_table_name"]]
        .map(|n| n.as_str().unwrap_or_default().to_string());
    let custom = custom_values(inner, &table, &reading, &current, baseline.as_ref().map(|b| &b.0)).await?;
    let mut outputs = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let kept_version = kept_outputs.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let version = loop {
            let only = touched.as_ref().filter(|_| kept_version.is_some());
            let base = baseline.as_mut().map(|(p, _)| p);
            let (rows, rewritten) = rows_of(i, &mut current.pass, base, &reading, only, custom.as_ref()).await?;
            let carry = only.zip(kept_version).map(|(_, version)| Carry {
                version,
                rewritten: &rewritten,
                model_col: reading.model_col,
            });
            match tables::write(&inner.catalog, name, rows, carry, "tarn").await? {
                Written::Done(version) => break version,
                Written::CannotCarry(reason) => {
                    tracing::info!(table = %table_name, %reason, "monitor output rewritten whole");
                    touched = None;
                }
            }
        };
        if i == 0 {
            summary.windows = touched.as_ref().map_or(current.pass.windows.len(), HashSet::len);
        }
        outputs.push((name.clone(), version));
    }
    let mut kept = Kept {
        fingerprint,
        version: summary.version,
        schema,
        baseline: baseline_id,
        outputs,
        slices: current.slices,
        pass: current.pass,
    };
    // Written after the outputs: a crash between leaves an older state, whose
    // next refresh rewrites the same windows again (or all, as the outputs' versions moved).
    state.save(&mut kept)?;
    Ok(summary)
}

/// Custom aggregate metric values of the table's and the baseline's windows.
async fn custom_values(
    inner: &Inner,
    table: &DeltaTable,
    reading: &Reading<'_>,
    current: &Current,
    baseline: Option<&Pass>,
) -> Result<Option<(Values, Values)>> {
    let metrics = &reading.spec.custom_metrics;
    if metrics.is_empty() {
        return Ok(None);
    }
    let windows = Windows::of(&reading.spec.mode, reading.now);
    let values = custom_eval::aggregates(table, &windows, &current.slices, metrics).await?;
    let base = match (baseline, &reading.spec.baseline_table_name) {
        (Some(pass), Some(name)) => {
            let at = pass.windows.keys().next().map_or(reading.now, |k| k.start);
            custom_eval::aggregates(&open(inner, name).await?, &Windows::Whole { at }, &slices_of(pass), metrics)
                .await?
        }
        _ => Values::new(),
    };
    Ok(Some((values, base)))
}

/// The slices a pass's windows have, with their values.
fn slices_of(pass: &Pass) -> Vec<SliceSet> {
    let mut slices: Vec<SliceSet> = Vec::new();
    for slice in pass.windows.keys().filter_map(|k| k.slice.as_ref()) {
        match slices.iter_mut().find(|s| s.text == slice.key) {
            Some(s) => _ = s.allowed.insert(slice.value.clone()),
            None => slices.push(SliceSet { text: slice.key.clone(), allowed: [slice.value.clone()].into() }),
        }
    }
    slices
}

/// Output `i` (0: profile, 1: drift) for the windows in `only`, or all of them
/// (then with the baseline's own profile rows); and the windows it covers.
async fn rows_of(
    i: usize,
    pass: &mut Pass,
    baseline: Option<&mut Pass>,
    reading: &Reading<'_>,
    only: Option<&HashSet<WindowKey>>,
    custom: Option<&(Values, Values)>,
) -> Result<(RecordBatch, HashSet<WindowKey>)> {
    let Some((values, base_values)) = custom else {
        if i == 0 {
            let base = baseline.filter(|_| only.is_none());
            let rows = output::profile_batch(pass, base, reading.model_col, reading.classification, only)?;
            return Ok((rows, only.cloned().unwrap_or_default()));
        }
        return output::drift_batch(pass, baseline, reading.model_col, only);
    };
    // Derived and drift metrics read whole profile rows: every window's is built, then the written ones kept.
    let metrics = &reading.spec.custom_metrics;
    let keys_of = |batch: &RecordBatch| tables::row_keys(batch, reading.model_col).map_err(MonitorError::Refresh);
    let mut baseline = baseline;
    let profile =
        output::profile_batch(pass, baseline.as_deref_mut(), reading.model_col, reading.classification, None)?;
    let keys = keys_of(&profile)?;
    let profile = custom_eval::extend_profile(profile, &keys, values, base_values, metrics).await?;
    if i == 0 {
        return match only {
            Some(only) => Ok((tables::only_windows(&profile, &keys, only)?, only.clone())),
            None => Ok((profile, HashSet::new())),
        };
    }
    let (drift, written) = output::drift_batch(pass, baseline, reading.model_col, only)?;
    let drift_keys = keys_of(&drift)?;
    let drift = custom_eval::extend_drift(drift, &drift_keys, &profile, &keys, metrics).await?;
    Ok((drift, written))
}
