//! Pipeline tasks driven against a fake `PipelineUpdates`: the update a
//! task asks for (refreshes, run-now's `pipeline_params`), the task ending
//! as the update did, a start refused, and a cancel or a timeout stopping
//! the update.
//!
//! The fake answers by pipeline id: `ok` completes, `broken` fails,
//! `stopped` ends CANCELED, `hang` runs until stopped, `busy` and anything
//! else refuse to start.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tarn_compute::cluster::NewCluster;
use tarn_jobs::tasks::{Attempt, BoxFuture, Outcome, TaskRunner};
use tarn_jobs::{
    Destinations, JobSettings, Jobs, Notifier, PipelineUpdates, RunNow, Runs, RunsConfig, SmtpConfig, UpdateEnd,
    UpdateRequest,
};
use tarn_store::{JobRunRow, Store};
use tokio::sync::watch;

/// No task here runs on compute.
struct NoCompute;

impl TaskRunner for NoCompute {
    fn run(&self, _: Attempt) -> BoxFuture<'_, Outcome> {
        Box::pin(async { Outcome::failed("no compute here") })
    }
    fn ensure_running<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    fn create_job_cluster(&self, _: NewCluster, _: i64, _: &str, _: &str) -> Result<String, String> {
        Err("no clusters here".into())
    }
    fn stop_job_cluster(&self, _: &str, _: i64) {}
    fn cluster_cores(&self, _: &str) -> Option<u32> {
        None
    }
}

struct Fake {
    started: Mutex<Vec<UpdateRequest>>,
    stopped: Mutex<Vec<String>>,
    stop: watch::Sender<bool>,
}

impl PipelineUpdates for Fake {
    fn start(&self, request: UpdateRequest) -> Result<String, String> {
        let id = request.pipeline_id.clone();
        if !["ok", "broken", "stopped", "hang"].contains(&id.as_str()) {
            return Err(format!("The pipeline {id} could not start an update"));
        }
        self.started.lock().unwrap().push(request);
        Ok(format!("update-of-{id}"))
    }

    fn wait<'a>(&'a self, pipeline_id: &'a str, _: &'a str) -> BoxFuture<'a, UpdateEnd> {
        let mut stop = self.stop.subscribe();
        Box::pin(async move {
            match pipeline_id {
                "ok" => UpdateEnd::Completed,
                "broken" => UpdateEnd::Failed("Flow 'silver' failed: boom".into()),
                "stopped" => UpdateEnd::Canceled,
                _ => {
                    let _ = stop.wait_for(|s| *s).await;
                    UpdateEnd::Canceled
                }
            }
        })
    }

    fn stop(&self, _: &str, update_id: &str) {
        self.stopped.lock().unwrap().push(update_id.to_string());
        let _ = self.stop.send(true);
    }
}

struct World {
    store: Arc<Store>,
    jobs: Jobs,
    runs: Runs,
    fake: Arc<Fake>,
}

impl World {
    fn new() -> Self {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let jobs = Jobs::new(store.clone(), Arc::new(|_: &str| false));
        let smtp = SmtpConfig { host: None, port: 25, from: "tarn@localhost".into(), username: None, password: None };
        let notifier = Notifier::new(Destinations::new(store.clone()), smtp, "1".into(), Arc::new(|_| json!({})));
        let config = RunsConfig {
            home: std::env::temp_dir().join(format!("tarn-pipeline-tasks-{}", uuid::Uuid::new_v4())),
            storage: Default::default(),
            max_parallel_tasks: 4,
            workspace_id: "1".into(),
            workspace_url: "http://127.0.0.1".into(),
            cost_per_core_hour: 0.0,
        };
        let fake =
            Arc::new(Fake { started: Mutex::default(), stopped: Mutex::default(), stop: watch::channel(false).0 });
        let runs =
            Runs::new(store.clone(), jobs.clone(), Arc::new(NoCompute), notifier, config).with_pipelines(fake.clone());
        World { store, jobs, runs, fake }
    }

    fn start(&self, task: Value, overriding: Map<String, Value>) -> i64 {
        let settings = json!({"name": "p", "tasks": [task]});
        let job_id = self.jobs.create("ann", JobSettings::from_value(settings).unwrap()).unwrap();
        let request = RunNow { overriding_parameters: overriding, ..RunNow::default() };
        self.runs.run_now(job_id, "ann", request).unwrap()
    }

    /// Runs a job of the one pipeline task to its end; its task run.
    async fn run(&self, task: Value, overriding: Map<String, Value>) -> JobRunRow {
        let run_id = self.start(task, overriding);
        self.runs.wait(run_id).await;
        self.task_run(run_id)
    }

    fn task_run(&self, run_id: i64) -> JobRunRow {
        self.store.child_job_runs(run_id).unwrap().pop().unwrap()
    }
}

fn pipeline(id: &str) -> Value {
    json!({"task_key": "refresh", "pipeline_task": {"pipeline_id": id}})
}

fn ended(row: &JobRunRow) -> (&str, Option<&str>, &str) {
    (row.life_cycle_state.as_str(), row.result_state.as_deref(), row.state_message.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_ends_as_its_update_did() {
    let w = World::new();
    let mut task = pipeline("ok");
    task["pipeline_task"]["refresh_selection"] = json!(["gold"]);
    let row = w.run(task, Map::new()).await;
    assert_eq!(ended(&row), ("TERMINATED", Some("SUCCESS"), ""));
    let request = w.fake.started.lock().unwrap()[0].clone();
    assert_eq!(request.pipeline_id, "ok");
    assert_eq!(
        (request.full_refresh, request.refresh_selection, request.user),
        (false, vec!["gold".into()], "ann".into())
    );
    assert_eq!(row.doc["task"]["pipeline_task"]["pipeline_id"], "ok");

    let row = w.run(pipeline("broken"), Map::new()).await;
    assert_eq!(ended(&row), ("TERMINATED", Some("FAILED"), "Flow 'silver' failed: boom"));
    assert_eq!(row.doc["output"]["error"], "Flow 'silver' failed: boom");

    let row = w.run(pipeline("stopped"), Map::new()).await;
    assert_eq!(ended(&row), ("TERMINATED", Some("CANCELED"), "The pipeline update update-of-stopped was canceled"));

    let row = w.run(pipeline("busy"), Map::new()).await;
    assert_eq!(ended(&row), ("TERMINATED", Some("FAILED"), "The pipeline busy could not start an update"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_now_pipeline_params_refresh_fully() {
    let w = World::new();
    let overriding: Map<String, Value> =
        [("pipeline_params".to_string(), json!({"full_refresh": true}))].into_iter().collect();
    let row = w.run(pipeline("ok"), overriding).await;
    assert_eq!(row.result_state.as_deref(), Some("SUCCESS"));
    assert!(w.fake.started.lock().unwrap()[0].full_refresh);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_or_a_timeout_stops_the_update() {
    let w = World::new();
    let run_id = w.start(pipeline("hang"), Map::new());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while w.fake.started.lock().unwrap().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the update never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.runs.cancel(run_id, "bob").unwrap();
    w.runs.wait(run_id).await;
    assert_eq!(w.task_run(run_id).result_state.as_deref(), Some("CANCELED"));
    assert_eq!(*w.fake.stopped.lock().unwrap(), vec!["update-of-hang".to_string()]);

    let w = World::new();
    let mut task = pipeline("hang");
    task["timeout_seconds"] = json!(1);
    let row = w.run(task, Map::new()).await;
    assert_eq!(row.result_state.as_deref(), Some("TIMEDOUT"));
    assert_eq!(*w.fake.stopped.lock().unwrap(), vec!["update-of-hang".to_string()]);
}
