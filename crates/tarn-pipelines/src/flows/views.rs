//! The views a flow reads by name, directly or through other views: SQL
//! temporary views, and views with expectations (the Python analysis
//! inlines any other view's plan into the flows that read it). Each is
//! defined in the flow's session under its own name before the flow's
//! query runs; what the views read incrementally counts among the flow's
//! reads.

use std::collections::BTreeSet;

use crate::graph::{Expectation, FileSource, Flow, Input, Query};
use crate::plan::{Plan, bare};

/// Everything a flow reads.
pub struct Reads<'a> {
    /// Stored datasets (views left out), each once.
    pub inputs: Vec<Input>,
    pub sources: Vec<&'a FileSource>,
    /// Views read by name, each after the views it reads.
    pub views: Vec<ViewRead<'a>>,
}

/// A view the flow's session must define.
pub struct ViewRead<'a> {
    pub name: String,
    pub flow: &'a Flow,
    pub expectations: &'a [Expectation],
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
        let dataset = plan.dataset(&name).map(|i| &plan.datasets[i].def);
        let view = dataset.and_then(|d| plan.views.get(&bare(&d.name)).map(|v| (v, d.expectations.as_slice())));
        match view {
            Some((view, expectations)) => {
                if !seen.insert(name.clone()) {
                    continue;
                }
                collect(plan, &view.inputs, out, seen);
                out.sources.extend(view.sources.iter());
                if matches!(view.query, Some(Query::Sql(_))) || !expectations.is_empty() {
                    out.views.push(ViewRead { name, flow: view, expectations });
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
