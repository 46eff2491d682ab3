//! From definitions to a plan: names resolved to `catalog.schema.name`,
//! every flow's target and inputs checked, and the flows ordered so each
//! runs after the flows writing what it reads. A graph with errors is not
//! planned: its errors are what the update fails with.

use std::collections::{BTreeSet, HashMap};

use crate::graph::{Dataset, DatasetKind, DefinitionError, Definitions, Flow, Location};

#[derive(Debug, Clone)]
pub struct PlannedDataset {
    pub def: Dataset,
    pub full_name: String,
}

#[derive(Debug, Clone)]
pub struct PlannedFlow {
    pub def: Flow,
    /// Index of the dataset it writes.
    pub target: usize,
    /// Pipeline datasets it reads (views followed to what they read).
    pub reads: BTreeSet<usize>,
    /// Flows that must end before it starts.
    pub after: BTreeSet<usize>,
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub datasets: Vec<PlannedDataset>,
    /// Flows that write stored datasets, in an order that respects `after`.
    pub flows: Vec<PlannedFlow>,
    /// View definitions (flows into views), by view name.
    pub views: HashMap<String, Flow>,
}

/// A dataset name without `LIVE.` and quoting, as flows refer to it.
pub fn bare(name: &str) -> String {
    let name = name.trim().trim_matches('`');
    let name = name.strip_prefix("LIVE.").or_else(|| name.strip_prefix("live.")).unwrap_or(name);
    name.replace('`', "")
}

fn full_name(name: &str, catalog: &str, schema: &str) -> String {
    let parts: Vec<&str> = name.split('.').collect();
    match parts.len() {
        1 => format!("{catalog}.{schema}.{name}"),
        2 => format!("{catalog}.{name}"),
        _ => name.to_string(),
    }
}

fn error(message: String, location: &Location) -> DefinitionError {
    DefinitionError {
        message,
        class: Some("AnalysisException".into()),
        location: (!location.path.is_empty()).then(|| location.clone()),
    }
}

impl Plan {
    pub fn dataset(&self, name: &str) -> Option<usize> {
        let name = bare(name);
        self.datasets.iter().position(|d| bare(&d.def.name) == name || d.full_name == name)
    }
}

pub fn plan(defs: Definitions, catalog: &str, schema: &str) -> Result<Plan, Vec<DefinitionError>> {
    let mut errors = defs.errors;
    let mut out = Plan::default();
    for dataset in defs.datasets {
        let full = full_name(&bare(&dataset.name), catalog, schema);
        if out.datasets.iter().any(|d| d.full_name == full) {
            errors.push(error(format!("Dataset '{}' is defined more than once", dataset.name), &dataset.location));
            continue;
        }
        out.datasets.push(PlannedDataset { def: dataset, full_name: full });
    }
    let mut flows = Vec::new();
    for flow in defs.flows {
        let Some(target) = out.dataset(&flow.target) else {
            let message =
                format!("Flow '{}' writes to '{}', which is not defined in the pipeline", flow.name, flow.target);
            errors.push(error(message, &flow.location));
            continue;
        };
        if out.datasets[target].def.kind == DatasetKind::View {
            out.views.insert(bare(&out.datasets[target].def.name), flow);
            continue;
        }
        flows.push((flow, target));
    }
    check_targets(&out, &flows, &mut errors);
    let reads: Vec<BTreeSet<usize>> = flows.iter().map(|(f, _)| reads_of(&out, f)).collect();
    let mut planned: Vec<PlannedFlow> = flows
        .into_iter()
        .zip(reads)
        .map(|((def, target), reads)| PlannedFlow { def, target, reads, after: BTreeSet::new() })
        .collect();
    for i in 0..planned.len() {
        let after = (0..planned.len()).filter(|&j| j != i && planned[i].reads.contains(&planned[j].target)).collect();
        planned[i].after = after;
    }
    match order(&planned) {
        Ok(order) => out.flows = order.into_iter().map(|i| planned[i].clone()).collect(),
        Err(names) => errors
            .push(error(format!("The pipeline's flows form a cycle: {}", names.join(" -> ")), &Location::default())),
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // Positions changed with the order: `after` now names positions in it.
    let targets: Vec<usize> = out.flows.iter().map(|f| f.target).collect();
    for i in 0..out.flows.len() {
        out.flows[i].after = (0..i).filter(|&j| out.flows[i].reads.contains(&targets[j])).collect();
    }
    Ok(out)
}

/// A materialized view has exactly one flow; a streaming table may have many.
fn check_targets(plan: &Plan, flows: &[(Flow, usize)], errors: &mut Vec<DefinitionError>) {
    for (i, dataset) in plan.datasets.iter().enumerate() {
        let writers: Vec<&Flow> = flows.iter().filter(|(_, t)| *t == i).map(|(f, _)| f).collect();
        if dataset.def.kind == DatasetKind::MaterializedView && writers.len() > 1 {
            let message = format!("Materialized view '{}' is written by more than one flow", dataset.def.name);
            errors.push(error(message, &dataset.def.location));
        }
    }
}

/// The stored datasets a flow reads, through the views it reads.
fn reads_of(plan: &Plan, flow: &Flow) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut pending: Vec<String> = flow.inputs.iter().map(|i| i.name.clone()).collect();
    if let Some(cdc) = &flow.cdc {
        pending.push(cdc.source.clone());
    }
    let mut seen = BTreeSet::new();
    while let Some(name) = pending.pop() {
        let Some(i) = plan.dataset(&name) else { continue };
        if !seen.insert(i) {
            continue;
        }
        match plan.views.get(&bare(&plan.datasets[i].def.name)) {
            Some(view) => pending.extend(view.inputs.iter().map(|i| i.name.clone())),
            None => {
                out.insert(i);
            }
        }
    }
    out
}

/// Kahn's order of the flows; the names on a cycle when there is one.
fn order(flows: &[PlannedFlow]) -> Result<Vec<usize>, Vec<String>> {
    let mut waiting: Vec<usize> = flows.iter().map(|f| f.after.len()).collect();
    let mut ready: Vec<usize> = (0..flows.len()).filter(|&i| waiting[i] == 0).rev().collect();
    let mut out = Vec::new();
    while let Some(i) = ready.pop() {
        out.push(i);
        for (j, flow) in flows.iter().enumerate() {
            if flow.after.contains(&i) {
                waiting[j] -= 1;
                if waiting[j] == 0 {
                    ready.insert(0, j);
                }
            }
        }
    }
    if out.len() == flows.len() {
        return Ok(out);
    }
    let stuck: Vec<String> = (0..flows.len()).filter(|i| !out.contains(i)).map(|i| flows[i].def.name.clone()).collect();
    Err(stuck)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Input, Query};

    fn dataset(name: &str, kind: DatasetKind) -> Dataset {
        Dataset {
            name: name.into(),
            kind,
            comment: None,
            table_properties: Default::default(),
            partition_cols: vec![],
            cluster_by: vec![],
            schema: None,
            expectations: vec![],
            location: Location::default(),
        }
    }

    fn flow(name: &str, target: &str, inputs: &[&str]) -> Flow {
        Flow {
            name: name.into(),
            target: target.into(),
            query: Some(Query::Sql("SELECT 1".into())),
            inputs: inputs
                .iter()
                .map(|i| Input { name: (*i).into(), streaming: false, skip_change_commits: false })
                .collect(),
            sources: vec![],
            once: false,
            cdc: None,
            location: Location::default(),
        }
    }

    #[test]
    fn flows_run_after_what_they_read_through_views() {
        let defs = Definitions {
            datasets: vec![
                dataset("gold", DatasetKind::MaterializedView),
                dataset("v", DatasetKind::View),
                dataset("bronze", DatasetKind::StreamingTable),
            ],
            flows: vec![
                flow("gold", "gold", &["LIVE.v", "main.other.ext"]),
                flow("v", "v", &["bronze"]),
                flow("bronze", "bronze", &[]),
            ],
            errors: vec![],
        };
        let plan = plan(defs, "main", "sales").unwrap();
        let names: Vec<&str> = plan.flows.iter().map(|f| f.def.name.as_str()).collect();
        assert_eq!(names, ["bronze", "gold"]);
        assert_eq!(plan.flows[1].after, BTreeSet::from([0]));
        assert_eq!(plan.datasets[0].full_name, "main.sales.gold");
    }

    #[test]
    fn cycles_unknown_targets_and_duplicates_are_errors() {
        let defs = Definitions {
            datasets: vec![
                dataset("a", DatasetKind::MaterializedView),
                dataset("b", DatasetKind::MaterializedView),
                dataset("a", DatasetKind::StreamingTable),
            ],
            flows: vec![flow("a", "a", &["b"]), flow("b", "b", &["a"]), flow("c", "nowhere", &[])],
            errors: vec![],
        };
        let errors = plan(defs, "main", "s").unwrap_err();
        let text: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert!(text.iter().any(|m| m.contains("more than once")), "{text:?}");
        assert!(text.iter().any(|m| m.contains("'nowhere'")), "{text:?}");
        assert!(text.iter().any(|m| m.contains("cycle")), "{text:?}");
    }
}
