//! An update's flows as its event log records them: which dataset each
//! flow writes and reads (`flow_definition`), its latest status, the rows
//! it wrote and its expectations' counts (`flow_progress`); drawn as the
//! dataset graph and the tables under it.

use maud::{Markup, html};
use serde_json::Value;
use tarn_store::PipelineEventRow;
use tarn_ui::components::{badge, empty};
use tarn_ui::dag::{Graph, Node};

/// One expectation's counts, summed over the update's progress events.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Expectation {
    pub name: String,
    pub passed: u64,
    pub failed: u64,
}

/// One flow of the update.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Flow {
    pub name: String,
    /// The dataset it writes (a full name).
    pub dataset: String,
    pub inputs: Vec<String>,
    /// The latest `flow_progress` status; none before the flow reported.
    pub status: Option<String>,
    /// How it last ran: `INCREMENTAL`, `COMPLETE_RECOMPUTE`, `NO_NEW_DATA`.
    pub mode: Option<String>,
    /// `num_output_rows`, summed over the progress events that carry it.
    pub rows: Option<u64>,
    /// `data_quality.dropped_records`, summed likewise.
    pub dropped: Option<u64>,
    pub expectations: Vec<Expectation>,
}

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// The flows from an update's `flow_definition` and `flow_progress`
/// events (each list oldest first).
pub(super) fn flows(definitions: &[PipelineEventRow], progress: &[PipelineEventRow]) -> Vec<Flow> {
    let mut out: Vec<Flow> = Vec::new();
    for e in definitions {
        let (Some(name), Some(def)) = (e.origin["flow_name"].as_str(), e.details.get("flow_definition")) else {
            continue;
        };
        let inputs = def["input_datasets"].as_array().into_iter().flatten();
        let flow = Flow {
            name: name.to_string(),
            dataset: def["output_dataset"].as_str().unwrap_or(name).to_string(),
            inputs: inputs.filter_map(|i| i["name"].as_str().map(str::to_string)).collect(),
            ..Flow::default()
        };
        match out.iter_mut().find(|f| f.name == flow.name) {
            Some(known) => *known = flow,
            None => out.push(flow),
        }
    }
    for e in progress {
        let Some(name) = e.origin["flow_name"].as_str() else { continue };
        let Some(p) = e.details.get("flow_progress") else { continue };
        let flow = match out.iter().position(|f| f.name == name) {
            Some(i) => &mut out[i],
            None => {
                let dataset = e.origin["dataset_name"].as_str().unwrap_or(name).to_string();
                out.push(Flow { name: name.to_string(), dataset, ..Flow::default() });
                let last = out.len() - 1;
                &mut out[last]
            }
        };
        progressed(flow, p);
    }
    out
}

/// What one `flow_progress` event adds to its flow.
fn progressed(flow: &mut Flow, p: &Value) {
    if let Some(status) = p["status"].as_str() {
        flow.status = Some(status.to_string());
    }
    if let Some(mode) = p["mode"].as_str() {
        flow.mode = Some(mode.to_string());
    }
    if let Some(rows) = p.pointer("/metrics/num_output_rows") {
        flow.rows = Some(flow.rows.unwrap_or(0) + count(rows));
    }
    let Some(quality) = p.get("data_quality") else { return };
    flow.dropped = Some(flow.dropped.unwrap_or(0) + count(&quality["dropped_records"]));
    for e in quality["expectations"].as_array().into_iter().flatten() {
        let name = e["name"].as_str().unwrap_or_default();
        let at = match flow.expectations.iter().position(|x| x.name == name) {
            Some(i) => i,
            None => {
                flow.expectations.push(Expectation { name: name.to_string(), ..Expectation::default() });
                flow.expectations.len() - 1
            }
        };
        flow.expectations[at].passed += count(&e["passed_records"]);
        flow.expectations[at].failed += count(&e["failed_records"]);
    }
}

/// `12345` as `12.3k`: the node's detail line is short.
fn compact(n: u64) -> String {
    match n {
        0..10_000 => n.to_string(),
        10_000..1_000_000 => format!("{:.1}k", n as f64 / 1e3),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

/// The node's second line: rows written, then dropped and failed records.
fn detail(flow: &Flow) -> String {
    let mut parts = Vec::new();
    if let Some(rows) = flow.rows {
        parts.push(format!("{} rows", compact(rows)));
    }
    if let Some(dropped) = flow.dropped {
        parts.push(format!("{} dropped", compact(dropped)));
    }
    let failed: u64 = flow.expectations.iter().map(|e| e.failed).sum();
    if !flow.expectations.is_empty() {
        parts.push(format!("{} failed", compact(failed)));
    }
    parts.join(" · ")
}

/// Where a dataset's page is: its table in the catalog explorer.
fn table_href(dataset: &str) -> Option<String> {
    (dataset.split('.').count() == 3).then(|| crate::ui::catalog::table_href(dataset))
}

/// A dataset's name without its catalog and schema.
fn short(dataset: &str) -> &str {
    dataset.rsplit('.').next().unwrap_or(dataset)
}

/// The dataset graph: a node per dataset (written or read), an edge from
/// each input to the dataset its flow writes.
pub(super) fn graph(flows: &[Flow]) -> Graph {
    let mut graph = Graph::default();
    let add = |graph: &mut Graph, dataset: &str, flow: Option<&Flow>| {
        let node = Node {
            id: dataset.to_string(),
            label: short(dataset).to_string(),
            detail: flow.map(detail).unwrap_or_default(),
            state: flow.and_then(|f| f.status.clone()).unwrap_or_default(),
            href: table_href(dataset),
        };
        match graph.nodes.iter_mut().find(|n| n.id == node.id) {
            Some(known) if flow.is_some() => *known = node,
            Some(_) => {}
            None => graph.nodes.push(node),
        }
    };
    for flow in flows {
        add(&mut graph, &flow.dataset, Some(flow));
        for input in &flow.inputs {
            add(&mut graph, input, None);
            graph.edges.push((input.clone(), flow.dataset.clone()));
        }
    }
    graph
}

/// The graph, then a table of the flows and one of their expectations.
pub(super) fn render(flows: &[Flow]) -> Markup {
    if flows.is_empty() {
        return empty("This update defined no flows yet.");
    }
    let expectations: Vec<(&Flow, &Expectation)> =
        flows.iter().flat_map(|f| f.expectations.iter().map(move |e| (f, e))).collect();
    html! {
        div.scroll { (graph(flows).svg()) }
        h3 { "Flows" }
        table.list.flows {
            thead { tr { th { "Flow" } th { "Dataset" } th { "Status" } th { "Mode" } th { "Rows written" } th { "Dropped" } } }
            tbody {
                @for f in flows {
                    tr data-flow=(f.name) {
                        td { (f.name) }
                        td { @match table_href(&f.dataset) { Some(h) => a href=(h) { (f.dataset) }, None => (f.dataset) } }
                        td { @match &f.status { Some(s) => (badge(s)), None => span.dim { "–" } } }
                        td.mode { (f.mode.as_deref().unwrap_or_default()) }
                        td.num.rows { (opt(f.rows)) }
                        td.num.dropped { (opt(f.dropped)) }
                    }
                }
            }
        }
        @if !expectations.is_empty() {
            h3 { "Expectations" }
            table.list.expectations {
                thead { tr { th { "Dataset" } th { "Expectation" } th { "Passed" } th { "Failed" } th { "Dropped (flow)" } } }
                tbody {
                    @for (f, e) in &expectations {
                        tr data-dataset=(f.dataset) data-expectation=(e.name) {
                            td { (short(&f.dataset)) }
                            td { (e.name) }
                            td.num.passed { (e.passed) }
                            td.num.failed { (e.failed) }
                            td.num.dropped { (opt(f.dropped)) }
                        }
                    }
                }
            }
        }
    }
}

fn opt(n: Option<u64>) -> Markup {
    match n {
        Some(n) => html! { (n) },
        None => html! { span.dim { "–" } },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(event_type: &str, flow: &str, dataset: &str, details: Value) -> PipelineEventRow {
        PipelineEventRow {
            seq: 0,
            id: String::new(),
            pipeline_id: "p".into(),
            update_id: Some("u".into()),
            timestamp: 0,
            level: "INFO".into(),
            event_type: event_type.into(),
            message: String::new(),
            origin: json!({"flow_name": flow, "dataset_name": dataset}),
            details,
            error: None,
        }
    }

    #[test]
    fn flows_sum_rows_and_expectations_and_keep_the_latest_status() {
        let def = |flow: &str, out: &str, inputs: &[&str]| {
            let inputs: Vec<Value> = inputs.iter().map(|i| json!({"name": i})).collect();
            event(
                "flow_definition",
                flow,
                out,
                json!({"flow_definition": {"output_dataset": out, "input_datasets": inputs}}),
            )
        };
        let definitions = [def("raw", "m.s.raw", &[]), def("clean", "m.s.clean", &["m.s.raw"])];
        let quality = json!({"dropped_records": 2, "expectations": [
            {"name": "id", "passed_records": 5, "failed_records": 1},
            {"name": "amount", "passed_records": 4, "failed_records": 2}]});
        let progress = [
            event("flow_progress", "clean", "m.s.clean", json!({"flow_progress": {"status": "RUNNING"}})),
            event(
                "flow_progress",
                "clean",
                "m.s.clean",
                json!({"flow_progress": {"status": "COMPLETED", "mode": "INCREMENTAL", "metrics": {"num_output_rows": 4}, "data_quality": quality}}),
            ),
            event("flow_progress", "raw", "m.s.raw", json!({"flow_progress": {"status": "QUEUED"}})),
        ];
        let flows = flows(&definitions, &progress);
        assert_eq!(flows.len(), 2);
        assert_eq!(flows[0].status.as_deref(), Some("QUEUED"));
        assert_eq!(flows[0].rows, None);
        let clean = &flows[1];
        assert_eq!((clean.status.as_deref(), clean.rows, clean.dropped), (Some("COMPLETED"), Some(4), Some(2)));
        assert_eq!(clean.mode.as_deref(), Some("INCREMENTAL"));
        assert_eq!(clean.expectations[1], Expectation { name: "amount".into(), passed: 4, failed: 2 });
        assert_eq!(detail(clean), "4 rows · 2 dropped · 3 failed");
        let g = graph(&flows);
        assert_eq!(g.nodes.iter().map(|n| n.id.as_str()).collect::<Vec<_>>(), ["m.s.raw", "m.s.clean"]);
        assert_eq!(g.edges, [("m.s.raw".to_string(), "m.s.clean".to_string())]);
        assert_eq!(g.nodes[1].href.as_deref(), Some("/explore/data/m/s/clean"));
        assert_eq!(compact(12_345), "12.3k");
    }
}
