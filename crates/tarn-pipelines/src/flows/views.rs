//! The SQL temporary views a flow reads, directly or through other views:
//! each is defined in the flow's session (under its own name) before the
//! flow's query runs, and what the views read incrementally counts among
//! the flow's reads. Python views need none of this: the analysis inlines
//! a view's plan, and its reads, into each flow that reads it.

use std::collections::BTreeSet;

use crate::graph::{FileSource, Flow, Input, Query};
use crate::plan::{Plan, bare};

/// Everything a flow reads.
pub struct Reads<'a> {
    /// Stored datasets (views left out), each once.
    pub inputs: Vec<Input>,
    pub sources: Vec<&'a FileSource>,
    /// SQL views, each after the views it reads.
    pub views: Vec<(String, &'a Flow)>,
}

impl Reads<'_> {
    pub fn incremental(&self) -> bool {
        !self.sources.is_empty() || self.inputs.iter().any(|i| i.streaming)
    }
}

pub fn reads<'a>(plan: &'a Plan, flow: &'a Flow) -> Reads<'a> {
    let mut out = Reads { inputs: Vec::new(), sources: flow.sources.iter().collect(), views: Vec::new() };
    let mut seen = BTreeSet::new();
    collect(plan, &flow.inputs, &mut out, &mut seen);
    out
}

fn collect<'a>(plan: &'a Plan, inputs: &'a [Input], out: &mut Reads<'a>, seen: &mut BTreeSet<String>) {
    for input in inputs {
        let name = bare(&input.name);
        let view = plan.dataset(&name).and_then(|i| plan.views.get(&bare(&plan.datasets[i].def.name)));
        match view {
            Some(view) => {
                if !seen.insert(name.clone()) {
                    continue;
                }
                collect(plan, &view.inputs, out, seen);
                out.sources.extend(view.sources.iter());
                if matches!(view.query, Some(Query::Sql(_))) {
                    out.views.push((name, view));
                }
            }
            None => {
                let known = out.inputs.iter_mut().find(|i| bare(&i.name) == name);
                match known {
                    Some(known) => known.streaming |= input.streaming,
                    None => out.inputs.push(input.clone()),
                }
            }
        }
    }
}

/// Whether `name` is one of the plan's views (read by its own name).
pub fn is_view(plan: &Plan, name: &str) -> bool {
    plan.dataset(name).is_some_and(|i| plan.views.contains_key(&bare(&plan.datasets[i].def.name)))
}
