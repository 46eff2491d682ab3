//! Directed graphs (a job's tasks, a pipeline's datasets) laid out in layers
//! and drawn as SVG, left to right as Databricks draws them.
//!
//! The layout is the classic layered one, small enough to keep here rather
//! than ship a JavaScript graph library: a node's layer is the longest path
//! to it from a source, nodes within a layer are ordered by the mean
//! position of their neighbours (a few sweeps down and up, which removes
//! most crossings), then placed on a grid. Edges that would close a cycle
//! are drawn but do not constrain the layers.

use std::collections::HashMap;

use maud::{Markup, html};

use crate::components::{shorten, state_class};

/// One box of the graph.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Unique within the graph; also the `data-node` attribute tests select by.
    pub id: String,
    pub label: String,
    /// A second line (duration, rows written, expectation counts...).
    pub detail: String,
    /// A state word (see [`state_class`]); empty for none.
    pub state: String,
    pub href: Option<String>,
}

/// Nodes and (from, to) edges by node id; edges to unknown ids are ignored.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<(String, String)>,
}

const NODE_W: f64 = 200.0;
const NODE_H: f64 = 52.0;
const GAP_X: f64 = 70.0;
const GAP_Y: f64 = 22.0;
const MARGIN: f64 = 10.0;

/// Where each node sits: its (layer, position within the layer).
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub places: Vec<(usize, usize)>,
}

impl Graph {
    fn edge_indexes(&self) -> Vec<(usize, usize)> {
        let index: HashMap<&str, usize> = self.nodes.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
        self.edges
            .iter()
            .filter_map(|(a, b)| Some((*index.get(a.as_str())?, *index.get(b.as_str())?)))
            .filter(|(a, b)| a != b)
            .collect()
    }

    /// The layered layout.
    pub fn layout(&self) -> Layout {
        let n = self.nodes.len();
        let edges = self.edge_indexes();
        let layer = longest_path_layers(n, &edges);
        let depth = layer.iter().copied().max().map_or(0, |m| m + 1);
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); depth];
        for (i, l) in layer.iter().enumerate() {
            layers[*l].push(i);
        }
        let forward: Vec<(usize, usize)> = edges.iter().copied().filter(|(a, b)| layer[*a] < layer[*b]).collect();
        for sweep in 0..4 {
            let down = sweep % 2 == 0;
            let order: Vec<usize> = match down {
                true => (1..depth).collect(),
                false => (0..depth.saturating_sub(1)).rev().collect(),
            };
            for l in order {
                let position = positions(&layers);
                let mut keyed: Vec<(f64, usize)> = layers[l]
                    .iter()
                    .map(|&v| {
                        let neighbours: Vec<f64> = forward
                            .iter()
                            .filter_map(|&(a, b)| match down {
                                true if b == v => Some(position[&a]),
                                false if a == v => Some(position[&b]),
                                _ => None,
                            })
                            .collect();
                        let key = match neighbours.is_empty() {
                            true => position[&v],
                            false => neighbours.iter().sum::<f64>() / neighbours.len() as f64,
                        };
                        (key, v)
                    })
                    .collect();
                keyed.sort_by(|x, y| x.0.total_cmp(&y.0));
                layers[l] = keyed.into_iter().map(|(_, v)| v).collect();
            }
        }
        let mut places = vec![(0, 0); n];
        for (l, members) in layers.iter().enumerate() {
            for (k, &v) in members.iter().enumerate() {
                places[v] = (l, k);
            }
        }
        Layout { places }
    }

    /// The graph as an inline SVG: each node a `g.node` with `data-node` and
    /// `data-state`, linked where it has an `href`.
    pub fn svg(&self) -> Markup {
        let layout = self.layout();
        let tallest = layout.places.iter().fold(HashMap::new(), |mut m: HashMap<usize, usize>, (l, k)| {
            let e = m.entry(*l).or_default();
            *e = (*e).max(k + 1);
            m
        });
        let rows = tallest.values().copied().max().unwrap_or(0);
        let cols = tallest.len();
        let width = MARGIN * 2.0 + cols as f64 * NODE_W + cols.saturating_sub(1) as f64 * GAP_X;
        let height = MARGIN * 2.0 + rows as f64 * NODE_H + rows.saturating_sub(1) as f64 * GAP_Y;
        // Layers of different sizes are centred on the tallest.
        let origin = |(l, k): (usize, usize)| {
            let count = tallest.get(&l).copied().unwrap_or(1) as f64;
            let offset = (rows as f64 - count) * (NODE_H + GAP_Y) / 2.0;
            (MARGIN + l as f64 * (NODE_W + GAP_X), MARGIN + offset + k as f64 * (NODE_H + GAP_Y))
        };
        let at: Vec<(f64, f64)> = layout.places.iter().map(|p| origin(*p)).collect();
        html! {
            svg.dag xmlns="http://www.w3.org/2000/svg" width=(width) height=(height)
                viewBox={ "0 0 " (width) " " (height) } role="img" {
                @for (a, b) in self.edge_indexes() {
                    (edge(at[a], at[b]))
                }
                @for (i, node) in self.nodes.iter().enumerate() {
                    @if let Some(href) = &node.href {
                        a href=(href) { (box_of(node, at[i])) }
                    } @else {
                        (box_of(node, at[i]))
                    }
                }
            }
        }
    }
}

fn edge(from: (f64, f64), to: (f64, f64)) -> Markup {
    let (x1, y1) = (from.0 + NODE_W, from.1 + NODE_H / 2.0);
    let (x2, y2) = (to.0, to.1 + NODE_H / 2.0);
    let bend = ((x2 - x1).abs() / 2.0).max(30.0);
    let d = format!("M{x1:.1},{y1:.1} C{:.1},{y1:.1} {:.1},{y2:.1} {x2:.1},{y2:.1}", x1 + bend, x2 - bend);
    html! { path.edge d=(d) {} }
}

fn box_of(node: &Node, (x, y): (f64, f64)) -> Markup {
    let class = match node.state.is_empty() {
        true => "node".to_string(),
        false => format!("node {}", state_class(&node.state)),
    };
    html! {
        g class=(class) data-node=(node.id) data-state=(node.state) {
            title { (node.label) @if !node.state.is_empty() { " · " (node.state) } }
            rect x=(x) y=(y) width=(NODE_W) height=(NODE_H) rx="6" {}
            text.label x=(x + 12.0) y=(y + 21.0) { (shorten(&node.label, 24)) }
            text.detail x=(x + 12.0) y=(y + 40.0) {
                @if node.detail.is_empty() { (node.state) } @else { (shorten(&node.detail, 30)) }
            }
        }
    }
}

/// Each node's layer: 0 for sources, else one past its deepest predecessor,
/// over the edges of a depth-first order that leaves out cycle-closing ones.
fn longest_path_layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut successors = vec![Vec::new(); n];
    for &(a, b) in edges {
        successors[a].push(b);
    }
    // Topological order by depth-first search; an edge into a node still on
    // the stack closes a cycle and is left out.
    let mut mark = vec![0u8; n];
    let mut order = Vec::with_capacity(n);
    let mut acyclic = Vec::new();
    for start in 0..n {
        if mark[start] != 0 {
            continue;
        }
        let mut stack = vec![(start, 0usize)];
        mark[start] = 1;
        while let Some((v, next)) = stack.pop() {
            if let Some(&w) = successors[v].get(next) {
                stack.push((v, next + 1));
                match mark[w] {
                    0 => {
                        acyclic.push((v, w));
                        mark[w] = 1;
                        stack.push((w, 0));
                    }
                    2 => acyclic.push((v, w)),
                    _ => {}
                }
            } else {
                mark[v] = 2;
                order.push(v);
            }
        }
    }
    order.reverse();
    let mut layer = vec![0usize; n];
    let mut incoming = vec![Vec::new(); n];
    for &(a, b) in &acyclic {
        incoming[b].push(a);
    }
    for &v in &order {
        layer[v] = incoming[v].iter().map(|&u| layer[u] + 1).max().unwrap_or(0);
    }
    layer
}

/// Each node's position within its layer, as a number to average.
fn positions(layers: &[Vec<usize>]) -> HashMap<usize, f64> {
    layers.iter().flat_map(|members| members.iter().enumerate().map(|(k, &v)| (v, k as f64))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> Graph {
        Graph {
            nodes: nodes
                .iter()
                .map(|id| Node { id: id.to_string(), label: id.to_string(), ..Node::default() })
                .collect(),
            edges: edges.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    #[test]
    fn layers_are_longest_paths_from_sources() {
        let g = graph(&["a", "b", "c", "d"], &[("a", "b"), ("b", "d"), ("a", "d"), ("c", "d")]);
        let layers: Vec<usize> = g.layout().places.iter().map(|p| p.0).collect();
        assert_eq!(layers, vec![0, 1, 0, 2]);
    }

    #[test]
    fn a_cycle_does_not_hang_the_layout() {
        let g = graph(&["a", "b", "c"], &[("a", "b"), ("b", "c"), ("c", "a"), ("a", "zzz")]);
        let layers: Vec<usize> = g.layout().places.iter().map(|p| p.0).collect();
        assert_eq!(layers, vec![0, 1, 2]);
    }

    #[test]
    fn ordering_uncrosses_edges() {
        // a→y and b→x cross when x, y keep their input order.
        let g = graph(&["a", "b", "x", "y"], &[("a", "y"), ("b", "x")]);
        let p = g.layout().places;
        assert!((p[0].1 < p[1].1) == (p[3].1 < p[2].1), "{p:?}");
    }

    #[test]
    fn svg_has_a_node_per_task_with_its_state() {
        let mut g = graph(&["ingest", "train"], &[("ingest", "train")]);
        g.nodes[0].state = "SUCCESS".into();
        g.nodes[1].href = Some("/x".into());
        let svg = g.svg().into_string();
        assert!(svg.contains(r#"class="node ok" data-node="ingest" data-state="SUCCESS""#), "{svg}");
        assert!(svg.contains(r#"<a href="/x">"#) && svg.contains("path class=\"edge\""), "{svg}");
    }
}
