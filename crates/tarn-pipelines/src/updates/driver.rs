//! Driving one update: compute, definitions, plan, tables, flows (once, or
//! again and again for a continuous pipeline). Each phase is a transition
//! through [`Pipelines::apply`]; a stop request is honoured between phases
//! and between flows.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use tarn_compute::context::{Compute, Language};
use tarn_store::{PipelineRow, UpdateRow};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::state::Event;
use super::{GivenGraph, StartUpdate};
use crate::events::{FlowReport, UpdateLog};
use crate::flows::FlowEnv;
use crate::graph::{DatasetKind, DefinitionError, Definitions, Location};
use crate::pipelines::Pipelines;
use crate::plan::{Plan, bare, plan};
use crate::settings::PipelineSettings;

/// Why an update ended early.
enum Stop {
    Failed(String),
    Stopped,
}

struct Run {
    pipelines: Pipelines,
    update: UpdateRow,
    log: UpdateLog,
    user: String,
    stopped: watch::Receiver<bool>,
}

pub(super) async fn drive(
    pipelines: Pipelines,
    pipeline: PipelineRow,
    update: UpdateRow,
    user: String,
    stopped: watch::Receiver<bool>,
    given: Option<GivenGraph>,
) {
    let log = UpdateLog::new(pipelines.inner.store.clone(), &pipeline.pipeline_id, &pipeline.name, &update.update_id);
    let request = StartUpdate::from_json(&update.request);
    log.create_update(&request.cause, request.full_refresh);
    let handle = pipelines.clone();
    let mut run = Run { pipelines, update, log, user: user.clone(), stopped };
    let settings = match PipelineSettings::parse(&pipeline.spec) {
        Ok(s) => s,
        Err(e) => {
            let event = run.ending(Err(Stop::Failed(e.to_string())));
            return run.end(event);
        }
    };
    let given_graph = given.is_some();
    let outcome = run.phases(&pipeline, &settings, &request, given).await;
    if !settings.development
        && !given_graph
        && let Err(e) = run.pipelines.cluster(&pipeline.pipeline_id, false).stop(&run.user)
    {
        tracing::warn!(pipeline_id = pipeline.pipeline_id, error = %e, "stopping a pipeline's cluster");
    }
    // Published before the update ends, so whoever sees it end reads its
    // flows' events in SQL; the final state's event follows at once.
    let event = run.ending(outcome);
    handle.publish_event_log(&pipeline, &user).await;
    run.end(event);
    handle.publish_event_log(&pipeline, &user).await;
}

impl Run {
    fn advance(&mut self) -> Result<(), Stop> {
        if *self.stopped.borrow() {
            return Err(Stop::Stopped);
        }
        match self.pipelines.apply(&mut self.update, Event::Advanced) {
            Ok(()) => {
                self.log.update_progress(&self.update.state);
                Ok(())
            }
            Err(_) => Err(Stop::Stopped),
        }
    }

    /// Records why the update ends and answers the event that ends it.
    fn ending(&mut self, outcome: Result<(), Stop>) -> Event {
        match outcome {
            Ok(()) => Event::Succeeded,
            Err(Stop::Stopped) => Event::Stopped,
            Err(Stop::Failed(message)) => {
                self.log.error(None, &message, "UpdateFailed", true);
                self.update.message = Some(message);
                Event::Failed
            }
        }
    }

    fn end(mut self, event: Event) {
        if self.pipelines.apply(&mut self.update, event).is_err() {
            let _ = self.pipelines.apply(&mut self.update, Event::Stopped);
        }
        self.log.update_progress(&self.update.state);
    }

    async fn phases(
        &mut self,
        pipeline: &PipelineRow,
        settings: &PipelineSettings,
        request: &StartUpdate,
        given: Option<GivenGraph>,
    ) -> Result<(), Stop> {
        self.advance()?;
        let (cluster_id, port) = match &given {
            Some(graph) => (graph.cluster_id.clone(), graph.port),
            None => {
                let cluster = self.pipelines.cluster(&pipeline.pipeline_id, settings.development);
                let engine = cluster.engine(&self.user).await.map_err(|e| Stop::Failed(e.to_string()))?;
                (engine.cluster_id, engine.port)
            }
        };
        self.update.cluster_id = Some(cluster_id.clone());
        if let Err(e) = self.pipelines.inner.store.set_pipeline_cluster(&pipeline.pipeline_id, Some(&cluster_id)) {
            tracing::warn!(pipeline_id = pipeline.pipeline_id, error = %e, "recording a pipeline's cluster");
        }
        self.log.cluster(&cluster_id);
        self.advance()?;
        // The analysis takes a warm worker; its replacement starts once the
        // first pass of the flows is done, not beside it.
        let hold = self.pipelines.inner.contexts.hold_refill();
        let definitions = match given {
            Some(graph) if graph.definitions.errors.is_empty() => graph.definitions,
            Some(graph) => return Err(Stop::Failed(describe(&graph.definitions.errors))),
            None => self.definitions(settings, &cluster_id).await?,
        };
        self.advance()?;
        let plan =
            plan(definitions, &settings.catalog, &settings.schema).map_err(|errors| Stop::Failed(describe(&errors)))?;
        for flow in &plan.flows {
            let inputs: Vec<String> = flow.reads.iter().map(|&i| plan.datasets[i].full_name.clone()).collect();
            let dataset = &plan.datasets[flow.target];
            let kind = if flow.def.cdc.is_some() { "AUTO_CDC" } else { "APPEND" };
            self.log.flow_definition(&flow.def.name, &dataset.full_name, &inputs, kind);
        }
        self.check_schema(settings)?;
        if request.validate_only {
            return Ok(());
        }
        self.advance()?;
        let env = Arc::new(self.flow_env(pipeline, settings, plan, port));
        env.dirs.iter().for_each(|dir| crate::flows::staged::clear(dir.local_dir()));
        if !settings.continuous {
            return self.run_flows(env, request).await;
        }
        drop(hold);
        self.run_continuously(env, request, settings.trigger_interval).await
    }

    /// A continuous update: the flows run again every `interval` until the
    /// update is stopped (it then ends `CANCELED`) or a flow fails. Only the
    /// first pass refreshes what the request names in full.
    async fn run_continuously(
        &mut self,
        env: Arc<FlowEnv>,
        request: &StartUpdate,
        interval: std::time::Duration,
    ) -> Result<(), Stop> {
        let mut pass = request.clone();
        loop {
            self.run_flows(env.clone(), &pass).await?;
            if !pass.full_refresh_selection.is_empty() {
                pass.refresh_selection.append(&mut pass.full_refresh_selection);
            }
            pass.full_refresh = false;
            let mut stopped = self.stopped.clone();
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            if *self.stopped.borrow() {
                return Err(Stop::Stopped);
            }
        }
    }

    fn check_schema(&self, settings: &PipelineSettings) -> Result<(), Stop> {
        let full = format!("{}.{}", settings.catalog, settings.schema);
        match self.pipelines.inner.catalog.get(tarn_catalog::Kind::Schema, &full) {
            Ok(_) => Ok(()),
            Err(e) => Err(Stop::Failed(format!("The pipeline's schema {full} cannot be used: {e}"))),
        }
    }

    fn flow_env(&self, pipeline: &PipelineRow, settings: &PipelineSettings, plan: Plan, port: u16) -> FlowEnv {
        let inner = &self.pipelines.inner;
        let base = inner.config.tables_dir.join(&pipeline.pipeline_id);
        let dirs = plan.datasets.iter().map(|d| base.join(&bare(&d.def.name).replace('.', "_"))).collect();
        FlowEnv {
            pipeline_id: pipeline.pipeline_id.clone(),
            user: self.user.clone(),
            port,
            catalog: inner.catalog.clone(),
            files: inner.files.clone(),
            store: inner.store.clone(),
            plan,
            dirs,
            namespace: (settings.catalog.clone(), settings.schema.clone()),
            access: inner.config.access.clone(),
        }
    }

    /// SQL parsed here, Python analyzed on the pipeline's cluster.
    async fn definitions(&mut self, settings: &PipelineSettings, cluster_id: &str) -> Result<Definitions, Stop> {
        let loaded = crate::sources::load(&self.pipelines.inner.files, &settings.libraries);
        let mut definitions = loaded.sql;
        if !loaded.python.is_empty() {
            let known: Vec<Value> =
                definitions.datasets.iter().map(|d| serde_json::json!({"name": d.name, "kind": d.kind})).collect();
            // Written to a file: a command's output is capped at 1 MiB.
            let dir = self.pipelines.inner.config.tables_dir.join(&self.update.pipeline_id).local_dir().to_path_buf();
            let path = dir.join(format!("_tarn_definitions_{}.json", self.update.update_id));
            let request = serde_json::json!({
                "catalog": settings.catalog,
                "schema": settings.schema,
                "configuration": settings.configuration,
                "sources": loaded.python,
                "known_datasets": known,
                "definitions_path": path,
            });
            let _ = std::fs::create_dir_all(&dir);
            let analyzed = self.analyze(cluster_id, &request).await;
            let _ = std::fs::remove_file(&path);
            definitions.extend(analyzed?);
        }
        if !definitions.errors.is_empty() {
            return Err(Stop::Failed(describe(&definitions.errors)));
        }
        Ok(definitions)
    }

    async fn analyze(&self, cluster_id: &str, request: &Value) -> Result<Definitions, Stop> {
        let contexts = &self.pipelines.inner.contexts;
        let fail = |e: String| Stop::Failed(format!("Analyzing the pipeline's Python definitions: {e}"));
        let context = contexts
            .create(Compute::Cluster(cluster_id.to_string()), Language::Python, &self.user)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let literal = serde_json::to_string(&request.to_string()).unwrap_or_default();
        let code = format!("import pipeline as _tarn_pipeline\n_tarn_pipeline.analyze({literal})");
        let result = contexts.run(&context, Language::Python, code, None, None).await;
        let _ = contexts.destroy(Some(cluster_id), &context);
        let results = result.map_err(|e| fail(e.to_string()))?.results.unwrap_or_default();
        if results.get("resultType").and_then(Value::as_str) == Some("error") {
            let summary = results.get("summary").and_then(Value::as_str).unwrap_or_default();
            return Err(fail(summary.to_string()));
        }
        let text = results.get("data").and_then(Value::as_str).unwrap_or_default();
        let line = text.lines().rev().find_map(|l| l.strip_prefix("__TARN_DEFINITIONS__"));
        let line = line.ok_or_else(|| fail("the analysis printed no definitions".into()))?.trim();
        let written;
        // Only the file this update named is read, whatever path is printed.
        let json = match (line.strip_prefix('@'), request["definitions_path"].as_str()) {
            (Some(_), Some(path)) => {
                written = std::fs::read_to_string(path).map_err(|e| fail(format!("reading {path}: {e}")))?;
                written.as_str()
            }
            _ => line,
        };
        serde_json::from_str(json).map_err(|e| fail(format!("its definitions are malformed: {e}")))
    }

    /// Runs the selected flows, each once those it reads ended; independent
    /// flows at the same time. The first failure stops new flows from starting.
    async fn run_flows(&mut self, env: Arc<FlowEnv>, request: &StartUpdate) -> Result<(), Stop> {
        let selected = selection(&env.plan, request);
        let refresh = |i: usize| {
            let name = bare(&env.plan.datasets[env.plan.flows[i].target].def.name);
            request.full_refresh || request.full_refresh_selection.contains(&name)
        };
        let n = env.plan.flows.len();
        let mut done = BTreeSet::new();
        let mut started = BTreeSet::new();
        let mut failure = None;
        let mut running = JoinSet::new();
        for i in 0..n {
            let flow = &env.plan.flows[i];
            let dataset = &env.plan.datasets[flow.target].full_name;
            let status = if selected.contains(&i) { "QUEUED" } else { "EXCLUDED" };
            self.log.flow_progress(&flow.def.name, dataset, &FlowReport { status, ..FlowReport::default() });
            if !selected.contains(&i) {
                done.insert(i);
            }
        }
        loop {
            let stop_now = failure.is_some() || *self.stopped.borrow();
            if !stop_now {
                for i in 0..n {
                    let ready = !started.contains(&i)
                        && !done.contains(&i)
                        && env.plan.flows[i].after.iter().all(|j| done.contains(j));
                    if ready {
                        started.insert(i);
                        let (flow, dataset) =
                            (&env.plan.flows[i].def.name, &env.plan.datasets[env.plan.flows[i].target].full_name);
                        self.log.flow_progress(
                            flow,
                            dataset,
                            &FlowReport { status: "RUNNING", ..FlowReport::default() },
                        );
                        let env = env.clone();
                        let refresh = refresh(i);
                        running.spawn(async move { (i, env.run(&env.plan.flows[i], refresh).await) });
                    }
                }
            }
            let Some(joined) = running.join_next().await else { break };
            let (i, result) = joined.map_err(|e| Stop::Failed(format!("a flow's task ended abnormally: {e}")))?;
            let flow = &env.plan.flows[i];
            let dataset = &env.plan.datasets[flow.target].full_name;
            done.insert(i);
            match result {
                Ok(report) => self.log.flow_progress(&flow.def.name, dataset, &report),
                Err(message) => {
                    self.log.error(Some((&flow.def.name, dataset)), &message, "FlowFailed", false);
                    failure.get_or_insert_with(|| format!("Flow '{}' failed: {message}", flow.def.name));
                }
            }
        }
        // Flows a failure or a stop kept from starting.
        for i in (0..n).filter(|i| !started.contains(i) && !done.contains(i)) {
            let (flow, dataset) = (&env.plan.flows[i].def.name, &env.plan.datasets[env.plan.flows[i].target].full_name);
            self.log.flow_progress(flow, dataset, &FlowReport { status: "SKIPPED", ..FlowReport::default() });
        }
        match failure {
            Some(message) => Err(Stop::Failed(message)),
            None if *self.stopped.borrow() => Err(Stop::Stopped),
            None => Ok(()),
        }
    }
}

/// The flows an update runs: all, or those writing the selected datasets.
fn selection(plan: &Plan, request: &StartUpdate) -> BTreeSet<usize> {
    let names: Vec<&String> = request.refresh_selection.iter().chain(&request.full_refresh_selection).collect();
    (0..plan.flows.len())
        .filter(|&i| {
            let dataset = &plan.datasets[plan.flows[i].target];
            names.is_empty() || names.iter().any(|n| bare(n) == bare(&dataset.def.name) || **n == dataset.full_name)
        })
        .filter(|&i| plan.datasets[plan.flows[i].target].def.kind != DatasetKind::View)
        .collect()
}

/// Definition errors in words, each with its file and line.
fn describe(errors: &[DefinitionError]) -> String {
    let each = errors.iter().map(|e| {
        let at = match &e.location {
            Some(Location { path, line: Some(line) }) => format!(" (at {path}:{line})"),
            Some(Location { path, line: None }) if !path.is_empty() => format!(" (in {path})"),
            _ => String::new(),
        };
        let class = e.class.as_deref().map(|c| format!("{c}: ")).unwrap_or_default();
        format!("{class}{}{at}", e.message)
    });
    each.collect::<Vec<_>>().join("; ")
}
