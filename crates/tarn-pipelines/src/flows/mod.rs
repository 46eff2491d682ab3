//! One flow of an update: its incremental inputs pointed at what it has not
//! read, its query run on the pipeline's engine with its target's
//! expectations, the rows written to the target, and the batch recorded.

pub mod autoloader;
pub mod cdc;
pub mod incremental;
pub mod quality;
pub mod relation;
pub mod sources;
pub mod staged;
pub mod views;
pub mod write;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;
use std::sync::Arc;

use deltalake::arrow::ipc::reader::StreamReader;
use deltalake::arrow::record_batch::RecordBatch;
use serde_json::{Value, json};
use spark_connect_proto::Relation;
use tarn_catalog::Catalog;
use tarn_files::Files;
use tarn_gateway::connect::EngineSession;
use tarn_store::Store;

use crate::events::FlowReport;
use crate::graph::{Cdc, Dataset, DatasetKind, FileSource, Query, stream_view};
use crate::plan::{Plan, PlannedFlow, bare};
use crate::table_dir::TableDir;
use write::{Output, Target, Txn};

/// What every flow of an update shares.
pub struct FlowEnv {
    pub pipeline_id: String,
    pub user: String,
    pub port: u16,
    pub catalog: Catalog,
    pub files: Files,
    pub store: Arc<Store>,
    pub plan: Plan,
    /// Where each stored dataset's table is.
    pub dirs: Vec<TableDir>,
    pub namespace: (String, String),
    /// Grants the flows' reads are checked against, as `user`.
    pub access: Option<Arc<dyn tarn_gateway::AccessControl>>,
}

/// What the flow read in one batch: files, and the version of each
/// streaming input it reached.
#[derive(Debug, Clone, Default)]
struct Progress {
    files: BTreeSet<String>,
    inputs: BTreeMap<String, i64>,
    columns: BTreeMap<String, Vec<String>>,
    /// Files were left for the next batch (`maxFilesPerTrigger`).
    limited: bool,
    /// What an incrementally refreshed materialized view was defined as.
    signature: Option<String>,
}

impl Progress {
    fn to_json(&self) -> Value {
        json!({"files": self.files, "inputs": self.inputs, "columns": self.columns, "signature": self.signature})
    }

    /// Whether it reached files or versions `done` did not.
    fn is_new(&self, done: &Progress) -> bool {
        !self.files.is_subset(&done.files)
            || self.inputs.iter().any(|(name, version)| done.inputs.get(name) != Some(version))
    }

    fn absorb(&mut self, v: &Value) {
        let strings = |v: &Value| -> Vec<String> {
            v.as_array().into_iter().flatten().filter_map(Value::as_str).map(str::to_string).collect()
        };
        self.files.extend(strings(&v["files"]));
        for (k, version) in v["inputs"].as_object().into_iter().flatten() {
            if let Some(n) = version.as_i64() {
                self.inputs.insert(k.clone(), n);
            }
        }
        for (k, cols) in v["columns"].as_object().into_iter().flatten() {
            self.columns.insert(k.clone(), strings(cols));
        }
        if let Some(signature) = v["signature"].as_str() {
            self.signature = Some(signature.to_string());
        }
    }
}

/// What the batches of one flow run wrote and counted.
#[derive(Debug, Default)]
struct Outcome {
    written: u64,
    quality: Option<quality::Quality>,
    /// What the expectations of views the flow read counted, by view.
    views: Vec<(String, quality::Quality)>,
}

impl Outcome {
    fn plus(self, other: Outcome) -> Outcome {
        let quality = match (self.quality, other.quality) {
            (Some(a), Some(b)) => Some(a.plus(&b)),
            (a, b) => a.or(b),
        };
        let mut views = self.views;
        for (name, counted) in other.views {
            match views.iter_mut().find(|(n, _)| *n == name) {
                Some((_, sum)) => *sum = sum.plus(&counted),
                None => views.push((name, counted)),
            }
        }
        Outcome { written: self.written + other.written, quality, views }
    }

    fn report(self, dataset: &Dataset, plan: &Plan, mode: &'static str) -> FlowReport {
        let mut data_quality = self.quality.map(|q| q.to_event(&dataset.expectations, &dataset.name));
        for (name, counted) in &self.views {
            let Some(view) = plan.dataset(name).map(|i| &plan.datasets[i].def) else { continue };
            let event = counted.to_event(&view.expectations, &view.name);
            let merged = data_quality.get_or_insert_with(|| json!({"dropped_records": 0, "expectations": []}));
            quality::merge_event(merged, &event);
        }
        let metrics = Some(json!({"num_output_rows": self.written}));
        FlowReport { status: "COMPLETED", metrics, data_quality, mode: Some(mode) }
    }
}

/// A streaming flow's batch: its number, what it read, and whether it
/// replaces the table's rows.
struct Batch<'a> {
    number: i64,
    progress: &'a Progress,
    overwrite: bool,
}

/// Ends the process at a named point when `TARN_CRASH_AT` names it: the
/// crash tests kill tarn between a batch's Delta commit and its record.
fn crash_point(name: &str) {
    if std::env::var("TARN_CRASH_AT").is_ok_and(|at| at == name) {
        tracing::error!(point = name, "TARN_CRASH_AT reached; exiting");
        std::process::exit(86);
    }
}

fn app_id(pipeline_id: &str, flow: &str) -> String {
    format!("{pipeline_id}:{flow}")
}

impl FlowEnv {
    /// Refuses a flow whose query reads a table its run-as principal may
    /// not (flows reach the engine directly, not through the gateway).
    fn check_reads(&self, flow: &PlannedFlow) -> Result<(), String> {
        let Some(control) = self.access.as_deref() else { return Ok(()) };
        let access = match &flow.def.query {
            Some(Query::Sql(text)) => tarn_gateway::access::of_sql(text),
            Some(Query::Relation(plan)) => tarn_gateway::access::of_relation(&mut relation::decode(plan)?),
            None => return Ok(()),
        };
        let namespace = [self.namespace.0.clone(), self.namespace.1.clone()];
        control.check(&self.user, &access, &namespace)
    }

    fn target(&self, flow: &PlannedFlow) -> Target {
        Target {
            full_name: self.plan.datasets[flow.target].full_name.clone(),
            dir: self.dirs[flow.target].clone(),
            pipeline_id: self.pipeline_id.clone(),
            partition_cols: self.plan.datasets[flow.target].def.partition_cols.clone(),
        }
    }

    /// The batches the flow committed (a pending one settled against the
    /// table first) and the number of the next.
    async fn read_progress(&self, flow: &PlannedFlow, dir: &TableDir) -> Result<(Progress, i64), String> {
        let name = &flow.def.name;
        let batches = self.store.flow_batches(&self.pipeline_id, name).map_err(|e| e.to_string())?;
        let in_table = write::committed_batch(dir, &app_id(&self.pipeline_id, name)).await?;
        let mut progress = Progress::default();
        let mut last = in_table.unwrap_or(0);
        for (batch, state, value) in batches {
            let landed = state == "committed" || in_table.is_some_and(|v| v >= batch);
            if landed {
                if state != "committed" {
                    self.store
                        .put_flow_batch(&self.pipeline_id, name, batch, "committed", &value)
                        .map_err(|e| e.to_string())?;
                }
                progress.absorb(&value);
            } else {
                self.store.delete_flow_batches(&self.pipeline_id, name, Some("pending")).map_err(|e| e.to_string())?;
            }
            last = last.max(batch);
        }
        Ok((progress, last + 1))
    }

    /// Runs the flow; `refresh` rewrites its target from scratch. A
    /// streaming flow runs batches until its inputs have nothing new.
    pub async fn run(&self, flow: &PlannedFlow, refresh: bool) -> Result<FlowReport, String> {
        let dataset = &self.plan.datasets[flow.target].def;
        let target = self.target(flow);
        write::check_ownership(&self.catalog, &target)?;
        self.check_reads(flow)?;
        let mut session = EngineSession::open(self.port, &self.user).await.map_err(|e| e.to_string())?;
        let (catalog, schema) = &self.namespace;
        session.use_namespace(Some(catalog), Some(schema)).await.map_err(|e| e.to_string())?;
        if dataset.kind != DatasetKind::StreamingTable {
            if let Some(input) = self.projected_input(flow) {
                return self.refresh_projection(&mut session, flow, &target, refresh, input).await;
            }
            let outcome = self.batch(&mut session, flow, &target, None, None).await?;
            return Ok(outcome.report(dataset, &self.plan, "COMPLETE_RECOMPUTE"));
        }
        let incremental = views::reads(&self.plan, &flow.def).incremental();
        let mut total: Option<Outcome> = None;
        let mut refresh = refresh;
        loop {
            // A refresh reads from scratch, but its batch still numbers after
            // every batch the table holds, so a crash is settled the same way.
            let (done, number) = self.read_progress(flow, &target.dir).await?;
            let done = if refresh { Progress::default() } else { done };
            let now = self.point_inputs(&mut session, flow, &done).await?;
            let exists = target.dir.has_log();
            if incremental && !now.is_new(&done) && exists && !refresh {
                break;
            }
            // AUTO CDC rewrites its target from every change, in the batch's commit.
            let overwrite = refresh || flow.def.cdc.is_some();
            let batch = Batch { number, progress: &now, overwrite };
            let outcome = self.batch(&mut session, flow, &target, Some(batch), None).await?;
            total = Some(match total {
                Some(sum) => sum.plus(outcome),
                None => outcome,
            });
            refresh = false;
            if !now.limited || !incremental {
                break;
            }
        }
        let mode = if flow.def.cdc.is_some() { "COMPLETE_RECOMPUTE" } else { "INCREMENTAL" };
        Ok(match total {
            Some(outcome) => outcome.report(dataset, &self.plan, mode),
            None => Outcome::default().report(dataset, &self.plan, "NO_NEW_DATA"),
        })
    }

    /// The stored dataset a materialized view's query only projects and
    /// filters, when it does (see [`incremental`]).
    fn projected_input(&self, flow: &PlannedFlow) -> Option<usize> {
        if flow.def.cdc.is_some() || !flow.def.sources.is_empty() {
            return None;
        }
        let table = incremental::projected_table(flow.def.query.as_ref()?)?;
        let i = self.plan.dataset(&table)?;
        let stored = !self.plan.views.contains_key(&bare(&self.plan.datasets[i].def.name));
        (stored && i != flow.target).then_some(i)
    }

    /// A materialized view over appends to `input`: the new rows only, when
    /// the view is defined as before and `input` only gained rows since;
    /// else recomputed whole.
    async fn refresh_projection(
        &self,
        session: &mut EngineSession,
        flow: &PlannedFlow,
        target: &Target,
        refresh: bool,
        input: usize,
    ) -> Result<FlowReport, String> {
        let dataset = &self.plan.datasets[flow.target].def;
        let name = bare(&self.plan.datasets[input].def.name);
        let dir = self.dirs[input].engine_path();
        let (done, number) = self.read_progress(flow, &target.dir).await?;
        let mut now = Progress { signature: Some(signature(flow, dataset)), ..Progress::default() };
        let same = !refresh && target.dir.has_log() && done.signature == now.signature;
        let since = done.inputs.get(&name).copied().filter(|_| same);
        let appended = match since {
            // A version that changed rows is not an append: recompute.
            Some(version) => sources::delta_files_since(&dir, Some(version), false).await.ok(),
            None => None,
        };
        let Some((files, version)) = appended else {
            let (_, version) = sources::delta_files_since(&dir, None, false).await?;
            now.inputs.insert(name, version);
            let batch = Batch { number, progress: &now, overwrite: true };
            let outcome = self.batch(session, flow, target, Some(batch), None).await?;
            return Ok(outcome.report(dataset, &self.plan, "COMPLETE_RECOMPUTE"));
        };
        if files.is_empty() {
            return Ok(Outcome::default().report(dataset, &self.plan, "NO_NEW_DATA"));
        }
        let view = stream_view(&name);
        let new_rows = relation::files("parquet", files, None, Vec::new());
        session.run_command(relation::temp_view(&view, new_rows)).await.map_err(|e| e.to_string())?;
        now.inputs.insert(name, version);
        let batch = Batch { number, progress: &now, overwrite: false };
        let outcome = self.batch(session, flow, target, Some(batch), Some((input, view))).await?;
        Ok(outcome.report(dataset, &self.plan, "INCREMENTAL"))
    }

    /// One pass of the flow's query over what its inputs point at (a
    /// stored input read through a view instead when `redirect` says so),
    /// its expectations applied, the rows written.
    async fn batch(
        &self,
        session: &mut EngineSession,
        flow: &PlannedFlow,
        target: &Target,
        batch: Option<Batch<'_>>,
        redirect: Option<(usize, String)>,
    ) -> Result<Outcome, String> {
        let dataset = &self.plan.datasets[flow.target].def;
        let cdc = flow.def.cdc.as_ref();
        let mut checked = Vec::new();
        for view in views::reads(&self.plan, &flow.def).views {
            checked.extend(self.define_view(session, &view).await?);
        }
        let is_input = |name: &str| redirect.as_ref().is_some_and(|(i, _)| self.plan.dataset(name) == Some(*i));
        let query = match (&flow.def.query, cdc) {
            (Some(Query::Relation(plan)), _) => {
                let mut relation = relation::decode(plan)?;
                if let Some((_, view)) = &redirect {
                    incremental::redirect(&mut relation, &is_input, view);
                }
                relation
            }
            (Some(Query::Sql(text)), _) => {
                let redirected: Option<Redirect<'_>> =
                    redirect.as_ref().map(|(_, view)| (&is_input as _, view.as_str()));
                relation::sql(&self.sql_for_engine(text, &flow.def.sources, redirected))
            }
            (None, Some(cdc)) => {
                relation::sql(&self.sql_for_engine(&format!("SELECT * FROM STREAM({})", cdc.source), &[], None))
            }
            (None, None) => return Ok(Outcome::default()),
        };
        let query = match cdc {
            Some(cdc) => self.cdc_query(session, &flow.def.name, query, cdc).await?,
            None => query,
        };
        let expectations = &dataset.expectations;
        let started = std::time::Instant::now();
        // Partitioned tables take the rows here: delta-rs lays out the partitions.
        let (output, quality) = if target.partition_cols.is_empty() {
            let view = format!("__tarn_checked_{}", relation::view_part(&flow.def.name));
            let staging = staged::Staging::new(target.dir.local_dir());
            staged::write(session, query, expectations, &dataset.name, &view, staging).await?
        } else {
            let (schema, rows, quality) = self.checked_rows(session, query, expectations, &dataset.name).await?;
            (Output::Rows(schema, rows), quality)
        };
        let engine_ms = started.elapsed().as_millis();
        let (written, fields) = self.commit(flow, target, output, batch).await?;
        write::register(&self.catalog, target, dataset, &fields, &self.user)?;
        // Where a flow's time goes: the engine's pass (and the rows' trip
        // here), then the Delta write.
        let write_ms = started.elapsed().as_millis() - engine_ms;
        tracing::info!(
            pipeline_id = self.pipeline_id,
            flow = flow.def.name,
            rows = written,
            engine_ms,
            write_ms,
            "flow batch"
        );
        Ok(Outcome { written, quality: (!expectations.is_empty()).then_some(quality), views: checked })
    }

    /// Defines a view the flow reads by name in its session; one with
    /// expectations is run here, checked, and defined over the rows they
    /// kept, answering what they counted.
    async fn define_view(
        &self,
        session: &mut EngineSession,
        view: &views::ViewRead<'_>,
    ) -> Result<Option<(String, quality::Quality)>, String> {
        let query = match &view.flow.query {
            Some(Query::Sql(text)) => relation::sql(&self.sql_for_engine(text, &view.flow.sources, None)),
            Some(Query::Relation(plan)) => relation::decode(plan)?,
            None => return Ok(None),
        };
        if view.expectations.is_empty() {
            session.run_command(relation::temp_view(&view.name, query)).await.map_err(|e| e.to_string())?;
            return Ok(None);
        }
        let (schema, rows, quality) = self.checked_rows(session, query, view.expectations, &view.name).await?;
        let kept = relation::local(schema, &rows)?;
        session.run_command(relation::temp_view(&view.name, kept)).await.map_err(|e| e.to_string())?;
        Ok(Some((view.name.clone(), quality)))
    }

    /// The query's rows with `expectations` applied: counted, dropped, or
    /// refused at the first row a FAIL expectation does not meet.
    async fn checked_rows(
        &self,
        session: &mut EngineSession,
        query: Relation,
        expectations: &[crate::graph::Expectation],
        dataset: &str,
    ) -> Result<(deltalake::arrow::datatypes::SchemaRef, Vec<RecordBatch>, quality::Quality), String> {
        let streams = session.collect(relation::with_verdicts(query, expectations)).await.map_err(|e| e.to_string())?;
        let (schema, rows) = decode(&streams)?;
        let schema = schema.ok_or("the engine returned no schema for the flow's rows")?;
        let (rows, quality) = quality::apply(rows, expectations).map_err(|v| v.message(dataset))?;
        let data_schema = Arc::new(
            schema
                .project(&(0..schema.fields().len() - expectations.len()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())?,
        );
        Ok((data_schema, rows, quality))
    }

    /// Commits the rows; a streaming flow's batch is recorded pending before
    /// the Delta commit that carries its number and committed after it.
    async fn commit(
        &self,
        flow: &PlannedFlow,
        target: &Target,
        output: Output,
        batch: Option<Batch<'_>>,
    ) -> Result<(u64, Vec<Value>), String> {
        let name = &flow.def.name;
        let Some(batch) = batch else {
            return write::commit(target, output, true, None).await;
        };
        let store = |state: &str| {
            self.store
                .put_flow_batch(&self.pipeline_id, name, batch.number, state, &batch.progress.to_json())
                .map_err(|e| e.to_string())
        };
        store("pending")?;
        crash_point("before_commit");
        let txn = Txn { app_id: app_id(&self.pipeline_id, name), version: batch.number };
        let (written, fields) = write::commit(target, output, batch.overwrite, Some(&txn)).await?;
        crash_point("after_commit");
        if batch.overwrite {
            self.store.delete_flow_batches(&self.pipeline_id, name, Some("committed")).map_err(|e| e.to_string())?;
        }
        store("committed")?;
        Ok((written, fields))
    }

    /// Points the flow's incremental inputs at what it has not read; AUTO
    /// CDC recomputes from every change, so its inputs are read whole.
    async fn point_inputs(
        &self,
        session: &mut EngineSession,
        flow: &PlannedFlow,
        done: &Progress,
    ) -> Result<Progress, String> {
        let whole = Progress::default();
        let since = if flow.def.cdc.is_some() { &whole } else { done };
        let mut now = Progress::default();
        let reads = views::reads(&self.plan, &flow.def);
        for source in reads.sources {
            // A whole read takes every file at once.
            let whole_read = source.batch || flow.def.cdc.is_some();
            let since = if source.batch { &whole } else { since };
            self.point_files(session, source, since, &mut now, !whole_read).await?;
        }
        for input in reads.inputs.iter().filter(|i| i.streaming) {
            self.point_stream(session, input, since, &mut now).await?;
        }
        Ok(now)
    }

    /// The AUTO CDC target's query over the flow's change rows.
    async fn cdc_query(
        &self,
        session: &mut EngineSession,
        flow: &str,
        changes: Relation,
        cdc: &Cdc,
    ) -> Result<Relation, String> {
        let view = format!("__tarn_changes_{}", relation::view_part(flow));
        session.run_command(relation::temp_view(&view, changes)).await.map_err(|e| e.to_string())?;
        let empty = session.collect(relation::sql(&format!("SELECT * FROM {view} LIMIT 0"))).await;
        let (schema, _) = decode(&empty.map_err(|e| e.to_string())?)?;
        let schema = schema.ok_or("the engine returned no schema for the AUTO CDC source")?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        Ok(relation::sql(&cdc::target_query(cdc, &view, &columns)?))
    }

    /// Points the source's view at its next batch of files.
    async fn point_files(
        &self,
        session: &mut EngineSession,
        source: &FileSource,
        done: &Progress,
        now: &mut Progress,
        limit: bool,
    ) -> Result<(), String> {
        let view = source.view.clone().ok_or("a file source without a view to read it from")?;
        let dir = sources::source_dir(&self.files, &source.path)?;
        let known = done.columns.get(&source.path).map(Vec::as_slice).unwrap_or_default();
        let batch = autoloader::next_batch(&dir, source, &done.files, known, limit)?;
        session.run_command(relation::temp_view(&view, batch.relation)).await.map_err(|e| e.to_string())?;
        now.files.extend(batch.files);
        now.columns.insert(source.path.clone(), batch.columns);
        now.limited |= batch.limited;
        Ok(())
    }

    /// Points the stream view of a pipeline dataset at the data files it
    /// gained since the flow last read it.
    async fn point_stream(
        &self,
        session: &mut EngineSession,
        input: &crate::graph::Input,
        done: &Progress,
        now: &mut Progress,
    ) -> Result<(), String> {
        let name = bare(&input.name);
        let Some(i) = self.plan.dataset(&name) else {
            return Err(format!("Failed to read dataset '{name}'. Dataset is not defined in the pipeline."));
        };
        let dir = &self.dirs[i];
        let full = &self.plan.datasets[i].full_name;
        let since = done.inputs.get(&name).copied();
        let (files, version) = if dir.has_log() {
            sources::delta_files_since(&dir.engine_path(), since, input.skip_change_commits).await?
        } else {
            return Err(format!("Dataset '{name}' has no data yet: its flow must run before '{full}' is read"));
        };
        let relation = if files.is_empty() {
            relation::sql(&format!("SELECT * FROM {full} LIMIT 0"))
        } else {
            relation::files("parquet", files.clone(), None, Vec::new())
        };
        session.run_command(relation::temp_view(&stream_view(&name), relation)).await.map_err(|e| e.to_string())?;
        now.inputs.insert(name, version);
        Ok(())
    }

    /// SQL text with `LIVE.x` and pipeline names as full names,
    /// `STREAM(x)` as the view of x's new rows and file sources as their views.
    fn sql_for_engine(&self, text: &str, sources: &[FileSource], redirect: Option<Redirect<'_>>) -> String {
        // A view is read under its own name; it streams what it reads.
        let resolve = |name: &str| match redirect {
            Some((is_input, view)) if is_input(name) => Some(view.to_string()),
            _ if views::is_view(&self.plan, name) => Some(tarn_sqltext::quote_identifier(&bare(name))),
            _ => self.plan.dataset(name).map(|i| self.plan.datasets[i].full_name.clone()),
        };
        let stream = |name: &str| match views::is_view(&self.plan, name) {
            true => Some(tarn_sqltext::quote_identifier(&bare(name))),
            false => self.plan.dataset(name).map(|_| stream_view(&bare(name))),
        };
        let files = |i: usize| sources.get(i).and_then(|s| s.view.clone());
        crate::sql::rewrite_references(text, &resolve, &stream, &files)
    }
}

/// Reads of the tables a predicate names, pointed at a view instead.
type Redirect<'a> = (&'a dyn Fn(&str) -> bool, &'a str);

/// What a materialized view is defined as: a change recomputes it.
fn signature(flow: &PlannedFlow, dataset: &Dataset) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let definition = json!([flow.def.query, dataset.expectations, dataset.schema, dataset.partition_cols]);
    definition.to_string().hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Record batches from the engine's Arrow IPC streams, with their schema.
fn decode(
    streams: &[bytes::Bytes],
) -> Result<(Option<deltalake::arrow::datatypes::SchemaRef>, Vec<RecordBatch>), String> {
    let mut schema = None;
    let mut rows = Vec::new();
    for stream in streams {
        let reader = StreamReader::try_new(Cursor::new(stream.as_ref()), None).map_err(|e| e.to_string())?;
        schema.get_or_insert_with(|| reader.schema());
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            if batch.num_rows() > 0 {
                rows.push(batch);
            }
        }
    }
    Ok((schema, rows))
}
