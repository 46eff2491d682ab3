//! Run driving through a fake task runner and an in-memory store: the DAG
//! with `run_if` and condition branches, retries with their intervals,
//! timeouts, a cancel during a retry wait, a repair, a for-each with its
//! concurrency, and a restart in the middle of each (runs resumed, running
//! attempts taken over), with the fenced write refusing what a driver that
//! lost the schedulers lease would overwrite.
//!
//! The fake runs a task by its notebook path: `/ok` succeeds and sets its
//! base parameters as task values, `/fail` fails, `/flaky/N` fails its first
//! N attempts, `/hang` never ends (`/hang-first`: its first attempt only),
//! `/sleep/MS` succeeds after MS, and
//! `/fail-if/X` fails when its parameter `v` is X.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tarn_compute::cluster::NewCluster;
use tarn_jobs::tasks::{Attempt, BoxFuture, Ending, Outcome, TaskRunner};
use tarn_jobs::{Destinations, JobSettings, Jobs, Notifier, RepairRequest, RunNow, Runs, RunsConfig, SmtpConfig};
use tarn_store::{JobRunRow, Store};

#[derive(Default)]
struct Fake {
    /// Attempts started, by task key.
    calls: Mutex<HashMap<String, usize>>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
    clusters_created: Mutex<Vec<String>>,
    clusters_stopped: Mutex<Vec<String>>,
    /// Attempts taken over from an earlier tarn, by the worker they recorded.
    taken_over: Mutex<Vec<Value>>,
}

impl Fake {
    fn calls(&self, key: &str) -> usize {
        self.calls.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    async fn work(&self, attempt: Attempt) -> Outcome {
        let key = attempt.task["task_key"].as_str().unwrap_or_default().to_string();
        let call = {
            let mut calls = self.calls.lock().unwrap();
            let n = calls.entry(key).or_default();
            *n += 1;
            *n
        };
        let path = attempt.task.pointer("/notebook_task/notebook_path").and_then(Value::as_str).unwrap_or("/ok");
        // As a real worker does before it runs the task's code.
        attempt.notes.record(&json!({"fake_worker": attempt.task_run_id}));
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(now, Ordering::SeqCst);
        let succeeded = match parts.as_slice() {
            ["fail"] => false,
            ["flaky", n] => call > n.parse().unwrap_or(0),
            ["hang"] => std::future::pending().await,
            ["hang-first"] if call == 1 => std::future::pending().await,
            ["sleep", ms] => {
                tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
                true
            }
            ["fail-if", x] => attempt.widgets.get("v").and_then(Value::as_str) != Some(*x),
            _ => true,
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        let ending = match succeeded {
            true => Ending::Success,
            false => Ending::Failed { error: format!("{path} failed"), trace: None },
        };
        Outcome {
            ending,
            notebook_result: None,
            logs: format!("ran {path}\n"),
            values: attempt.widgets,
            cluster_id: None,
            output: Default::default(),
        }
    }
}

/// The fake behind an `Arc`, as `Runs` holds its runner.
#[derive(Clone, Default)]
struct Runner(Arc<Fake>);

impl TaskRunner for Runner {
    fn run(&self, attempt: Attempt) -> BoxFuture<'_, Outcome> {
        Box::pin(self.0.work(attempt))
    }

    fn ensure_running<'a>(&'a self, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn create_job_cluster(&self, _: NewCluster, run_id: i64, key: &str, _: &str) -> Result<String, String> {
        let id = format!("job-{run_id}-{key}");
        self.0.clusters_created.lock().unwrap().push(id.clone());
        Ok(id)
    }

    fn stop_job_cluster(&self, cluster_id: &str, _: i64) {
        self.0.clusters_stopped.lock().unwrap().push(cluster_id.to_string());
    }

    fn cluster_cores(&self, _: &str) -> Option<u32> {
        Some(2)
    }

    /// The worker an earlier tarn left ends well.
    fn take_over<'a>(&'a self, worker: &'a Value) -> BoxFuture<'a, Outcome> {
        self.0.taken_over.lock().unwrap().push(worker.clone());
        Box::pin(async { Outcome { logs: "taken over\n".into(), ..Outcome::failed("") }.succeeded() })
    }
}

trait Succeeded {
    fn succeeded(self) -> Self;
}

impl Succeeded for Outcome {
    fn succeeded(mut self) -> Self {
        self.ending = Ending::Success;
        self
    }
}

/// One tarn: its jobs and runs over `store`, with `runner`.
fn tarn(store: &Arc<Store>, runner: &Runner, home: &std::path::Path) -> (Jobs, Runs) {
    let jobs = Jobs::new(store.clone(), Arc::new(|id: &str| id == "0101-000000-existing"));
    let destinations = Destinations::new(store.clone());
    let smtp = SmtpConfig { host: None, port: 25, from: "tarn@localhost".into(), username: None, password: None };
    // Runs here notify no one; a run's JSON is tarn-api's to make.
    let notifier = Notifier::new(destinations, smtp, "1".into(), Arc::new(|run| json!({"run_id": run.row().run_id})));
    let config = RunsConfig {
        home: home.to_path_buf(),
        storage: Default::default(),
        max_parallel_tasks: 8,
        workspace_id: "1".into(),
        workspace_url: "http://127.0.0.1".into(),
        cost_per_core_hour: 0.0,
    };
    let runs = Runs::new(store.clone(), jobs.clone(), Arc::new(runner.clone()), notifier, config);
    (jobs, runs)
}

struct World {
    store: Arc<Store>,
    runner: Runner,
    jobs: Jobs,
    runs: Runs,
    home: std::path::PathBuf,
}

impl World {
    fn new() -> Self {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let runner = Runner::default();
        let home = std::env::temp_dir().join(format!("tarn-driving-{}", uuid::Uuid::new_v4()));
        let (jobs, runs) = tarn(&store, &runner, &home);
        World { store, runner, jobs, runs, home }
    }

    fn run_now(&self, settings: Value) -> i64 {
        let job_id = self.jobs.create("ann", JobSettings::from_value(settings).unwrap()).unwrap();
        self.runs.run_now(job_id, "ann", RunNow::default()).unwrap()
    }

    fn run(&self, run_id: i64) -> JobRunRow {
        self.store.get_job_run(run_id).unwrap().unwrap()
    }

    /// Every attempt of the run's tasks, oldest first, by task key.
    fn attempts(&self, run_id: i64) -> HashMap<String, Vec<JobRunRow>> {
        let mut out: HashMap<String, Vec<JobRunRow>> = HashMap::new();
        for row in self.store.child_job_runs(run_id).unwrap() {
            out.entry(row.task_key.clone().unwrap()).or_default().push(row);
        }
        out
    }

    /// How each task's latest attempt ended: its result, or its life cycle if it has none.
    fn ended(&self, run_id: i64) -> HashMap<String, String> {
        let last = |rows: &Vec<JobRunRow>| {
            let row = rows.last().unwrap();
            row.result_state.clone().unwrap_or_else(|| row.life_cycle_state.clone())
        };
        self.attempts(run_id).iter().map(|(k, rows)| (k.clone(), last(rows))).collect()
    }

    /// Waits (a bounded while) until `check` holds for the run's rows.
    async fn until(&self, what: &str, check: impl Fn(&World) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn notebook(key: &str, path: &str, deps: &[&str]) -> Value {
    let depends_on: Vec<Value> = deps.iter().map(|d| json!({"task_key": d})).collect();
    json!({"task_key": key, "depends_on": depends_on, "notebook_task": {"notebook_path": path}})
}

fn result(row: &JobRunRow) -> (&str, Option<&str>) {
    (row.life_cycle_state.as_str(), row.result_state.as_deref())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dag_follows_run_if_conditions_and_task_values() {
    let w = World::new();
    let mut train = notebook("train", "/ok", &["prep"]);
    train["notebook_task"]["base_parameters"] = json!({"acc": "0.93"});
    let run_id = w.run_now(json!({"name": "dag", "tasks": [
        notebook("prep", "/ok", &[]),
        train,
        {"task_key": "gate", "depends_on": [{"task_key": "train"}],
         "condition_task": {"op": "GREATER_THAN", "left": "{{tasks.train.values.acc}}", "right": "0.8"}},
        {"task_key": "register", "depends_on": [{"task_key": "gate", "outcome": "true"}], "notebook_task": {"notebook_path": "/ok"}},
        {"task_key": "retrain", "depends_on": [{"task_key": "gate", "outcome": "false"}], "notebook_task": {"notebook_path": "/ok"}},
        notebook("check", "/fail", &["prep"]),
        notebook("after_check", "/ok", &["check"]),
        {"task_key": "on_failure", "depends_on": [{"task_key": "check"}], "run_if": "AT_LEAST_ONE_FAILED",
         "notebook_task": {"notebook_path": "/ok"}},
        {"task_key": "cleanup", "depends_on": [{"task_key": "register"}, {"task_key": "check"}], "run_if": "ALL_DONE",
         "notebook_task": {"notebook_path": "/ok"}},
    ]}));
    w.runs.wait(run_id).await;
    let ended = w.ended(run_id);
    let want = [
        ("prep", "SUCCESS"),
        ("train", "SUCCESS"),
        ("gate", "SUCCESS"),
        ("register", "SUCCESS"),
        ("retrain", "EXCLUDED"),
        ("check", "FAILED"),
        ("after_check", "UPSTREAM_FAILED"),
        ("on_failure", "SUCCESS"),
        ("cleanup", "SUCCESS"),
    ];
    for (key, result) in want {
        assert_eq!(ended[key], result, "task {key}");
    }
    let gate = &w.attempts(run_id)["gate"][0];
    assert_eq!(gate.doc.pointer("/output/condition_task/outcome"), Some(&json!("true")));
    assert_eq!(w.attempts(run_id)["after_check"][0].life_cycle_state, "SKIPPED");
    assert_eq!(w.runner.0.calls("retrain"), 0, "the false branch never ran");
    // after_check is a leaf that did not succeed.
    assert_eq!(result(&w.run(run_id)), ("TERMINATED", Some("FAILED")));
    assert_eq!(w.runs.refused_transitions(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_are_retried_after_their_interval() {
    let w = World::new();
    let mut task = notebook("flaky", "/flaky/2", &[]);
    task["max_retries"] = json!(3);
    task["min_retry_interval_millis"] = json!(300);
    let run_id = w.run_now(json!({"name": "retries", "tasks": [task]}));
    w.runs.wait(run_id).await;
    let attempts = &w.attempts(run_id)["flaky"];
    let states: Vec<_> = attempts.iter().map(|r| (r.attempt_number, r.result_state.clone().unwrap())).collect();
    assert_eq!(states, vec![(0, "FAILED".into()), (1, "FAILED".into()), (2, "SUCCESS".into())]);
    for pair in attempts.windows(2) {
        let waited = pair[1].execution_start.unwrap() - pair[0].end_time.unwrap();
        assert!(waited >= 300, "the retry started {waited} ms after the failure, before its interval");
    }
    assert_eq!(result(&w.run(run_id)), ("TERMINATED", Some("SUCCESS")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_end_the_attempt_and_the_run() {
    let w = World::new();
    let mut task = notebook("slow", "/hang", &[]);
    task["timeout_seconds"] = json!(1);
    task["max_retries"] = json!(2);
    let run_id = w.run_now(json!({"name": "task timeout", "tasks": [task]}));
    w.runs.wait(run_id).await;
    let attempts = &w.attempts(run_id)["slow"];
    assert_eq!(attempts.len(), 1, "a timed out attempt is not retried without retry_on_timeout");
    assert_eq!(result(&attempts[0]), ("TERMINATED", Some("TIMEDOUT")));
    assert_eq!(result(&w.run(run_id)), ("TERMINATED", Some("TIMEDOUT")));

    let mut task = notebook("slow", "/hang", &[]);
    task["timeout_seconds"] = json!(1);
    task["max_retries"] = json!(1);
    task["retry_on_timeout"] = json!(true);
    let run_id = w.run_now(json!({"name": "retry on timeout", "tasks": [task]}));
    w.runs.wait(run_id).await;
    assert_eq!(w.attempts(run_id)["slow"].len(), 2);

    let run_id = w.run_now(json!({"name": "job timeout", "timeout_seconds": 1, "tasks": [
        notebook("slow", "/hang", &[]), notebook("next", "/ok", &["slow"])]}));
    w.runs.wait(run_id).await;
    let run = w.run(run_id);
    assert_eq!(result(&run), ("TERMINATED", Some("TIMEDOUT")));
    assert!(run.state_message.contains("timed out after 1 seconds"), "{}", run.state_message);
    let ended = w.ended(run_id);
    assert_eq!((ended["slow"].as_str(), ended["next"].as_str()), ("TIMEDOUT", "UPSTREAM_CANCELED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_during_a_retry_wait_ends_the_run() {
    let w = World::new();
    let mut task = notebook("flaky", "/fail", &[]);
    task["max_retries"] = json!(3);
    task["min_retry_interval_millis"] = json!(600_000);
    let run_id = w.run_now(json!({"name": "cancel", "tasks": [task, notebook("after", "/ok", &["flaky"])]}));
    w.until("the task waits for its retry", |w| w.ended(run_id)["flaky"] == "WAITING_FOR_RETRY").await;
    w.runs.cancel(run_id, "bob").unwrap();
    w.runs.wait(run_id).await;
    let run = w.run(run_id);
    assert_eq!(result(&run), ("TERMINATED", Some("CANCELED")));
    assert_eq!(run.termination_code.as_deref(), Some("USER_CANCELED"));
    let attempts = w.attempts(run_id);
    assert_eq!(attempts["flaky"].len(), 2);
    assert_eq!(result(&attempts["flaky"][1]), ("SKIPPED", Some("UPSTREAM_CANCELED")));
    assert_eq!(result(&attempts["after"][0]), ("SKIPPED", Some("UPSTREAM_CANCELED")));
    assert_eq!(w.runner.0.calls("flaky"), 1, "the retry never started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repair_reruns_the_failed_tasks_and_keeps_the_rest() {
    let w = World::new();
    let run_id = w.run_now(json!({"name": "repair", "job_clusters": [{"job_cluster_key": "main", "new_cluster": {"spark_version": "15.4.x-scala2.12"}}],
        "tasks": [notebook("a", "/ok", &[]), notebook("b", "/flaky/1", &["a"]), notebook("c", "/ok", &["b"])]}));
    w.runs.wait(run_id).await;
    let ended = w.ended(run_id);
    assert_eq!(
        (ended["a"].as_str(), ended["b"].as_str(), ended["c"].as_str()),
        ("SUCCESS", "FAILED", "UPSTREAM_FAILED")
    );
    assert_eq!(result(&w.run(run_id)), ("TERMINATED", Some("FAILED")));

    let request = RepairRequest { rerun_all_failed_tasks: true, ..RepairRequest::default() };
    let repair_id = w.runs.repair(run_id, &request).unwrap();
    w.runs.wait(run_id).await;
    let ended = w.ended(run_id);
    assert_eq!((ended["a"].as_str(), ended["b"].as_str(), ended["c"].as_str()), ("SUCCESS", "SUCCESS", "SUCCESS"));
    assert_eq!((w.runner.0.calls("a"), w.runner.0.calls("b"), w.runner.0.calls("c")), (1, 2, 1));
    let run = w.run(run_id);
    assert_eq!(result(&run), ("TERMINATED", Some("SUCCESS")));
    let repair = &run.doc["repairs"][0];
    assert_eq!((repair["id"].as_i64(), repair["state"]["result_state"].as_str()), (Some(repair_id), Some("SUCCESS")));
    // A repair of a repaired run names the latest repair.
    assert!(w.runs.repair(run_id, &request).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_each_runs_its_iterations_at_its_concurrency() {
    let w = World::new();
    let nested = json!({"task_key": "each", "max_retries": 1,
        "notebook_task": {"notebook_path": "/fail-if/3", "base_parameters": {"v": "{{input}}"}}});
    let run_id = w.run_now(json!({"name": "for each", "tasks": [
        {"task_key": "loop", "for_each_task": {"inputs": "[\"1\",\"2\",\"3\",\"4\",\"5\"]", "concurrency": 2, "task": nested}}]}));
    w.runs.wait(run_id).await;
    let outer = &w.attempts(run_id)["loop"][0];
    assert_eq!(result(outer), ("TERMINATED", Some("FAILED")));
    assert_eq!(outer.state_message, "1 of 5 iterations failed");
    let stats = &outer.doc["for_each_stats"]["task_run_stats"];
    assert_eq!((stats["succeeded_iterations"].as_i64(), stats["failed_iterations"].as_i64()), (Some(4), Some(1)));
    let iterations = w.store.child_job_runs(outer.run_id).unwrap();
    assert_eq!(iterations.len(), 6, "five iterations and one retry of the failed one");
    assert!(w.runner.0.most_at_once.load(Ordering::SeqCst) <= 2);
    assert_eq!(w.runner.0.calls("each"), 6);
}

/// A tarn in its own runtime, as a process would be: shutting the runtime
/// down drops its drivers mid-flight, as a crash would.
struct Process {
    runtime: tokio::runtime::Runtime,
    runs: Runs,
    jobs: Jobs,
}

impl Process {
    fn start(store: &Arc<Store>, runner: &Runner, home: &std::path::Path) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (jobs, runs) = tarn(store, runner, home);
        Process { runtime, runs, jobs }
    }

    fn run_now(&self, settings: Value) -> i64 {
        let _inside = self.runtime.enter();
        let job_id = self.jobs.create("ann", JobSettings::from_value(settings).unwrap()).unwrap();
        self.runs.run_now(job_id, "ann", RunNow::default()).unwrap()
    }

    fn until(&self, store: &Store, what: &str, check: impl Fn(&Store) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !check(store) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn crash(self) {
        self.runtime.shutdown_timeout(Duration::from_secs(5));
    }
}

fn task_state(store: &Store, run_id: i64, key: &str) -> Vec<String> {
    let rows = store.child_job_runs(run_id).unwrap();
    rows.into_iter().filter(|r| r.task_key.as_deref() == Some(key)).map(|r| r.life_cycle_state).collect()
}

#[test]
fn a_restart_resumes_what_was_in_flight_and_starts_what_was_queued() {
    let store = Arc::new(Store::open_in_memory().unwrap());
    let runner = Runner::default();
    let home = std::env::temp_dir().join(format!("tarn-driving-{}", uuid::Uuid::new_v4()));
    let first = Process::start(&store, &runner, &home);

    // One run in each stage: a task running, a task waiting for its retry,
    // a for-each task with iterations in flight, and a run queued behind one.
    let running =
        first.run_now(json!({"name": "running", "tasks": [notebook("t", "/hang", &[]), notebook("u", "/ok", &["t"])]}));
    let mut flaky = notebook("t", "/fail", &[]);
    flaky["max_retries"] = json!(1);
    flaky["min_retry_interval_millis"] = json!(600_000);
    let waiting = first.run_now(json!({"name": "waiting", "tasks": [flaky]}));
    let nested = json!({"task_key": "each", "notebook_task": {"notebook_path": "/hang"}});
    let each = first.run_now(json!({"name": "each", "tasks": [
        {"task_key": "loop", "for_each_task": {"inputs": "[1,2,3]", "concurrency": 2, "task": nested}}]}));
    let holder = first.run_now(json!({"name": "queue", "max_concurrent_runs": 1, "queue": {"enabled": true},
        "tasks": [notebook("q", "/hang-first", &[])]}));
    let job_id = store.get_job_run(holder).unwrap().unwrap().job_id.unwrap();
    let queued = {
        let _inside = first.runtime.enter();
        first.runs.run_now(job_id, "ann", RunNow::default()).unwrap()
    };
    first.until(&store, "every run is in its stage", |s| {
        task_state(s, running, "t") == ["RUNNING"]
            && task_state(s, waiting, "t") == ["TERMINATED", "WAITING_FOR_RETRY"]
            && s.child_job_runs(s.child_job_runs(each).unwrap()[0].run_id).unwrap().len() == 2
            && task_state(s, holder, "q") == ["RUNNING"]
    });
    assert_eq!(store.get_job_run(queued).unwrap().unwrap().life_cycle_state, "QUEUED");
    first.crash();
    let calls_before = runner.0.calls("t");

    // The next tarn drives the four runs on; the queued run starts after its holder.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_, runs) = tarn(&store, &runner, &home);
    let resumed = {
        let _inside = runtime.enter();
        runs.recover().unwrap()
    };
    assert_eq!(resumed, 4);
    for run_id in [running, waiting, each, holder, queued] {
        runtime.block_on(runs.wait(run_id));
    }
    // The running attempts were taken over from their workers, not run again.
    let taken: Vec<Value> = runner.0.taken_over.lock().unwrap().clone();
    assert_eq!(taken.len(), 2, "{taken:?}");
    assert_eq!(result(&store.get_job_run(running).unwrap().unwrap()), ("TERMINATED", Some("SUCCESS")));
    assert_eq!(task_state(&store, running, "u"), ["TERMINATED"]);
    // The waiting retry ran at once (its second and last attempt), and failed.
    assert_eq!(task_state(&store, waiting, "t"), ["TERMINATED", "TERMINATED"]);
    assert_eq!(runner.0.calls("t"), calls_before + 1);
    assert_eq!(result(&store.get_job_run(waiting).unwrap().unwrap()), ("TERMINATED", Some("FAILED")));
    // A for-each in flight cannot be taken over: it fails, its iterations end with it.
    assert_eq!(result(&store.get_job_run(each).unwrap().unwrap()), ("TERMINATED", Some("FAILED")));
    let unfinished = |rows: Vec<JobRunRow>| {
        rows.iter()
            .filter(|r| !matches!(r.life_cycle_state.as_str(), "TERMINATED" | "SKIPPED" | "INTERNAL_ERROR"))
            .count()
    };
    let loop_row = store.child_job_runs(each).unwrap().remove(0);
    assert_eq!(unfinished(store.child_job_runs(loop_row.run_id).unwrap()), 0);
    assert_eq!(result(&store.get_job_run(holder).unwrap().unwrap()), ("TERMINATED", Some("SUCCESS")));
    let promoted = store.get_job_run(queued).unwrap().unwrap();
    assert_eq!(result(&promoted), ("TERMINATED", Some("SUCCESS")));
    assert_eq!(runs.refused_transitions(), 0);
}

#[test]
fn a_driver_that_lost_the_lease_writes_nothing() {
    use tarn_store::LeaseClaim;
    let store = Arc::new(Store::open_in_memory().unwrap());
    let runner = Runner::default();
    let home = std::env::temp_dir().join(format!("tarn-driving-{}", uuid::Uuid::new_v4()));
    let claim = |holder, stale| LeaseClaim { name: "schedulers", holder, address: None, stale, now: 1, ttl_ms: 1_000 };
    let stale = Process::start(&store, &runner, &home);
    stale.runs.fence_with("schedulers", store.acquire_lease(&claim("first", None)).unwrap().unwrap());
    let run_id = stale
        .run_now(json!({"name": "stale", "tasks": [notebook("t", "/sleep/1500", &[]), notebook("u", "/ok", &["t"])]}));
    stale.until(&store, "the task runs", |s| task_state(s, run_id, "t") == ["RUNNING"]);

    // A second tarn takes the lease and the run while the first still drives it.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (_, runs) = tarn(&store, &runner, &home);
    runs.fence_with("schedulers", store.acquire_lease(&claim("second", Some("first"))).unwrap().unwrap());
    let resumed = {
        let _inside = runtime.enter();
        runs.recover().unwrap()
    };
    assert_eq!(resumed, 1);
    runtime.block_on(runs.wait(run_id));
    stale.runtime.block_on(stale.runs.wait(run_id));
    std::thread::sleep(Duration::from_millis(1_700));

    // The second drove the run to its end; the first's writes after losing the lease did not land.
    assert_eq!(result(&store.get_job_run(run_id).unwrap().unwrap()), ("TERMINATED", Some("SUCCESS")));
    assert_eq!(task_state(&store, run_id, "t"), ["TERMINATED"]);
    assert_eq!(task_state(&store, run_id, "u"), ["TERMINATED"]);
    assert_eq!(runner.0.calls("u"), 1, "the task after the taken-over one ran once");
    assert!(stale.runs.refused_transitions() >= 1, "the stale driver's write was refused and counted");
    assert_eq!(runs.refused_transitions(), 0);
    stale.crash();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_clusters_are_created_once_and_stopped_with_the_run() {
    let w = World::new();
    let task = |key: &str, deps: &[&str]| {
        let mut t = notebook(key, "/ok", deps);
        t["job_cluster_key"] = json!("main");
        t
    };
    let run_id = w
        .run_now(json!({"name": "clusters", "job_clusters": [{"job_cluster_key": "main", "new_cluster": {"spark_version": "15.4.x-scala2.12"}}],
        "tasks": [task("a", &[]), task("b", &["a"]), task("c", &["a"])]}));
    w.runs.wait(run_id).await;
    assert_eq!(result(&w.run(run_id)), ("TERMINATED", Some("SUCCESS")));
    let created = w.runner.0.clusters_created.lock().unwrap().clone();
    assert_eq!(created, vec![format!("job-{run_id}-main")]);
    assert_eq!(*w.runner.0.clusters_stopped.lock().unwrap(), created);
    let _ = std::fs::remove_dir_all(&w.home);
}

/// Values a task sets reach the tasks after it, not the ones beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_values_reach_downstream_tasks() {
    let w = World::new();
    let mut a = notebook("a", "/ok", &[]);
    a["notebook_task"]["base_parameters"] = json!({"model": "m1"});
    let mut b = notebook("b", "/ok", &["a"]);
    b["notebook_task"]["base_parameters"] = json!({"got": "{{tasks.a.values.model}}"});
    let run_id = w.run_now(json!({"name": "values", "tasks": [a, b]}));
    w.runs.wait(run_id).await;
    let b = &w.attempts(run_id)["b"][0];
    let values: &Map<String, Value> = b.doc["values"].as_object().unwrap();
    assert_eq!(values.get("got"), Some(&json!("m1")));
}
