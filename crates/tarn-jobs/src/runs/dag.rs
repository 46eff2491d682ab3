//! The run's task graph: when a task may start, given how its dependencies
//! ended (`run_if`, and `outcome` for a condition task's branches), and how
//! the whole run ended, given its tasks. Pure functions; the driver acts.

use std::collections::{HashMap, HashSet};

use super::state::ResultState;
use crate::settings::TaskSettings;

/// A task's place in the graph, read from its settings.
#[derive(Debug, Clone)]
pub struct Node {
    pub task_key: String,
    pub depends_on: Vec<Edge>,
    pub run_if: Option<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone)]
pub struct Edge {
    pub task_key: String,
    pub outcome: Option<String>,
}

impl Node {
    pub fn of(task: &TaskSettings) -> Node {
        let depends_on =
            task.depends_on.iter().map(|d| Edge { task_key: d.task_key.clone(), outcome: d.outcome.clone() }).collect();
        Node { task_key: task.task_key.clone(), depends_on, run_if: task.run_if.clone(), disabled: task.disabled }
    }
}

/// Every task each task depends on, directly or through others (a cycle
/// ends the walk; create refuses one).
pub fn upstream(nodes: &[Node]) -> HashMap<String, HashSet<String>> {
    let by_key: HashMap<&str, &Node> = nodes.iter().map(|n| (n.task_key.as_str(), n)).collect();
    let closure = |node: &Node| {
        let mut seen = HashSet::new();
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            for edge in &n.depends_on {
                if seen.insert(edge.task_key.clone())
                    && let Some(up) = by_key.get(edge.task_key.as_str())
                {
                    stack.push(up);
                }
            }
        }
        seen
    };
    nodes.iter().map(|n| (n.task_key.clone(), closure(n))).collect()
}

/// How a finished task ended, as its dependents see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Done {
    pub result: ResultState,
    /// A condition task's outcome.
    pub outcome: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Wait,
    Run,
    Skip(ResultState),
}

/// Whether `node` may start now that `done` holds its finished dependencies.
pub fn decide(node: &Node, done: &HashMap<String, Done>) -> Decision {
    let (mut succeeded, mut failed, mut cancelled, mut excluded) = (0, 0, 0, 0);
    for edge in &node.depends_on {
        let Some(dep) = done.get(&edge.task_key) else { return Decision::Wait };
        let branch_taken = match edge.outcome.as_deref() {
            None => true,
            Some(want) => dep.outcome.map(|o| o.to_string()) == Some(want.to_string()),
        };
        match dep.result {
            r if r.is_success() && branch_taken => succeeded += 1,
            r if r.is_failure() => failed += 1,
            r if r.is_cancellation() => cancelled += 1,
            _ => excluded += 1,
        }
    }
    let n = node.depends_on.len();
    if n > 0 && excluded == n {
        return Decision::Skip(ResultState::Excluded);
    }
    let upstream = || {
        if failed > 0 {
            ResultState::UpstreamFailed
        } else if cancelled > 0 {
            ResultState::UpstreamCanceled
        } else {
            ResultState::Excluded
        }
    };
    let run = match node.run_if.as_deref().unwrap_or("ALL_SUCCESS") {
        "AT_LEAST_ONE_SUCCESS" => n == 0 || succeeded > 0,
        "NONE_FAILED" => failed == 0 && cancelled == 0 && (n == 0 || succeeded > 0),
        "ALL_DONE" => true,
        "AT_LEAST_ONE_FAILED" => failed > 0,
        "ALL_FAILED" => n > 0 && failed == n,
        _ => succeeded == n,
    };
    match (run, node.disabled) {
        (true, true) => Decision::Skip(ResultState::Disabled),
        (true, false) => Decision::Run,
        (false, _) if matches!(node.run_if.as_deref(), Some("AT_LEAST_ONE_FAILED" | "ALL_FAILED")) => {
            Decision::Skip(ResultState::Excluded)
        }
        (false, _) => Decision::Skip(upstream()),
    }
}

/// The run's result from its tasks' (latest attempts'): a failed leaf task
/// fails the run; failures that a leaf got past make SUCCESS_WITH_FAILURES.
pub fn run_result(nodes: &[Node], done: &HashMap<String, Done>) -> (ResultState, String) {
    let is_leaf = |key: &str| !nodes.iter().any(|n| n.depends_on.iter().any(|e| e.task_key == key));
    let mut failed_leaves: Vec<&str> = Vec::new();
    let mut timed_out = false;
    let mut cancelled = false;
    let mut any_failure = false;
    for node in nodes {
        let Some(d) = done.get(&node.task_key) else { continue };
        any_failure |= d.result.is_failure();
        if is_leaf(&node.task_key) && !d.result.is_success() && d.result != ResultState::Excluded {
            failed_leaves.push(&node.task_key);
            timed_out |= d.result == ResultState::TimedOut;
            cancelled |= d.result.is_cancellation();
        }
    }
    if failed_leaves.is_empty() {
        return match any_failure {
            true => (ResultState::SuccessWithFailures, "Some tasks failed; every leaf task succeeded.".into()),
            false => (ResultState::Success, String::new()),
        };
    }
    let names = failed_leaves.join(", ");
    let result = match (any_failure, timed_out, cancelled) {
        (_, true, _) => ResultState::TimedOut,
        (false, _, true) => ResultState::Canceled,
        _ => ResultState::Failed,
    };
    (result, format!("Task(s) {names} did not succeed."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        Node::of(&crate::settings::TaskSettings::parse(&v).unwrap())
    }

    fn done(pairs: &[(&str, ResultState, Option<bool>)]) -> HashMap<String, Done> {
        pairs.iter().map(|(k, r, o)| (k.to_string(), Done { result: *r, outcome: *o })).collect()
    }

    #[test]
    fn run_if_decides_from_finished_dependencies() {
        use ResultState::*;
        let deps = json!([{"task_key": "a"}, {"task_key": "b"}]);
        let with = |run_if: &str| node(json!({"task_key": "t", "depends_on": deps, "run_if": run_if}));
        let one_failed = done(&[("a", Success, None), ("b", Failed, None)]);
        let cases = [
            ("ALL_SUCCESS", Decision::Skip(UpstreamFailed)),
            ("AT_LEAST_ONE_SUCCESS", Decision::Run),
            ("NONE_FAILED", Decision::Skip(UpstreamFailed)),
            ("ALL_DONE", Decision::Run),
            ("AT_LEAST_ONE_FAILED", Decision::Run),
            ("ALL_FAILED", Decision::Skip(Excluded)),
        ];
        for (run_if, want) in cases {
            assert_eq!(decide(&with(run_if), &one_failed), want, "{run_if}");
        }
        assert_eq!(decide(&with("ALL_SUCCESS"), &done(&[("a", Success, None)])), Decision::Wait);
        let cancelled = done(&[("a", Success, None), ("b", Canceled, None)]);
        assert_eq!(decide(&with("ALL_SUCCESS"), &cancelled), Decision::Skip(UpstreamCanceled));
        let roots = node(json!({"task_key": "r", "disabled": true}));
        assert_eq!(decide(&roots, &HashMap::new()), Decision::Skip(Disabled));
    }

    #[test]
    fn a_condition_branch_not_taken_is_excluded_with_its_dependents() {
        use ResultState::*;
        let register = node(json!({"task_key": "register", "depends_on": [{"task_key": "check", "outcome": "true"}]}));
        let taken = done(&[("check", Success, Some(true))]);
        assert_eq!(decide(&register, &taken), Decision::Run);
        let not_taken = done(&[("check", Success, Some(false))]);
        assert_eq!(decide(&register, &not_taken), Decision::Skip(Excluded));
        let after = node(json!({"task_key": "notify", "depends_on": [{"task_key": "register"}]}));
        assert_eq!(decide(&after, &done(&[("register", Excluded, None)])), Decision::Skip(Excluded));
    }

    #[test]
    fn the_run_result_comes_from_its_leaves() {
        use ResultState::*;
        let nodes = vec![
            node(json!({"task_key": "a"})),
            node(json!({"task_key": "b", "depends_on": [{"task_key": "a"}], "run_if": "ALL_DONE"})),
        ];
        assert_eq!(run_result(&nodes, &done(&[("a", Success, None), ("b", Success, None)])).0, Success);
        assert_eq!(run_result(&nodes, &done(&[("a", Failed, None), ("b", Success, None)])).0, SuccessWithFailures);
        let (result, message) = run_result(&nodes, &done(&[("a", Success, None), ("b", Failed, None)]));
        assert_eq!((result, message.as_str()), (Failed, "Task(s) b did not succeed."));
        assert_eq!(run_result(&nodes, &done(&[("a", Success, None), ("b", TimedOut, None)])).0, TimedOut);
    }
}
