//! YAML read into a tree that keeps, for every value, the file, line and
//! column it came from, so that a diagnostic found after merging targets
//! and includes still points at the line a user wrote. Scalars are typed
//! the YAML 1.2 core-schema way (the way the CLI's loader types them).

use std::collections::HashMap;
use std::path::Path;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

use super::{Diagnostic, Location, Severity};

/// A YAML value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub loc: Location,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in the order written (a duplicate key is an error when parsing).
    Map(Vec<(String, Node)>),
}

impl Node {
    pub fn new(kind: Kind, loc: Location) -> Node {
        Node { kind, loc }
    }

    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.kind {
            Kind::Map(entries) => entries.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Sets `key` in a map (keeping its place when present); a no-op on
    /// anything that is not a map.
    pub fn set(&mut self, key: &str, value: Node) {
        if let Kind::Map(entries) = &mut self.kind {
            match entries.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => entries.push((key.to_string(), value)),
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Node> {
        match &mut self.kind {
            Kind::Map(entries) => {
                let at = entries.iter().position(|(k, _)| k == key)?;
                Some(entries.remove(at).1)
            }
            _ => None,
        }
    }

    /// The map under `key`, created empty (at this node's location) when absent.
    pub fn entry_map(&mut self, key: &str) -> Option<&mut Node> {
        if self.get(key).is_none() {
            let empty = Node::new(Kind::Map(Vec::new()), self.loc.clone());
            self.set(key, empty);
        }
        self.get_mut(key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self.kind {
            Kind::Bool(b) => Some(b),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(String, Node)] {
        match &self.kind {
            Kind::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn entries_mut(&mut self) -> &mut [(String, Node)] {
        match &mut self.kind {
            Kind::Map(entries) => entries,
            _ => &mut [],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.kind {
            Kind::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn items_mut(&mut self) -> &mut [Node] {
        match &mut self.kind {
            Kind::Seq(items) => items,
            _ => &mut [],
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.kind, Kind::Map(_))
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// A scalar's text as interpolation sees it (`${var.n}` of a number).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Bool(b) => Some(b.to_string()),
            Kind::Int(i) => Some(i.to_string()),
            Kind::Float(f) => Some(f.to_string()),
            Kind::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Int(i) => Value::from(*i),
            Kind::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => {
                let map: Map<String, Value> = entries.iter().map(|(k, v)| (k.clone(), v.to_json())).collect();
                Value::Object(map)
            }
        }
    }

    pub fn string(s: impl Into<String>, loc: &Location) -> Node {
        Node::new(Kind::Str(s.into()), loc.clone())
    }
}

/// Parses one YAML file (`file` is the name diagnostics print, relative to
/// the bundle root). An empty file is an empty map.
pub fn parse(text: &str, file: &Path) -> Result<Node, Diagnostic> {
    let mut builder = Builder { file, stack: Vec::new(), anchors: HashMap::new(), root: None };
    let mut parser = Parser::new_from_str(text);
    while let Some(next) = parser.next_event() {
        match next {
            Ok((event, span)) => builder.event(event, span)?,
            Err(e) => {
                let loc = builder.loc_of(e.marker().line(), e.marker().col());
                return Err(error(format!("invalid YAML: {}", e.info()), Some(loc), ""));
            }
        }
    }
    let empty = Node::new(Kind::Map(Vec::new()), builder.loc_of(1, 0));
    match builder.root {
        Some(node) if node.is_null() => Ok(empty),
        Some(node) => Ok(node),
        None => Ok(empty),
    }
}

pub(crate) fn error(summary: impl Into<String>, location: Option<Location>, path: &str) -> Diagnostic {
    Diagnostic { severity: Severity::Error, summary: summary.into(), location, path: path.to_string() }
}

enum Frame {
    Seq(Vec<Node>, Location, usize),
    Map(MapFrame),
}

struct MapFrame {
    entries: Vec<(String, Node)>,
    /// The key read, waiting for its value.
    pending: Option<(String, Location)>,
    /// Entries from `<<` merge keys: they fill in what the map leaves unset.
    merged: Vec<(String, Node)>,
    start: Location,
    anchor: usize,
}

struct Builder<'a> {
    file: &'a Path,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    root: Option<Node>,
}

impl Builder<'_> {
    fn loc_of(&self, line: usize, col: usize) -> Location {
        Location { file: self.file.to_path_buf(), line, column: col + 1 }
    }

    fn event(&mut self, event: Event<'_>, span: Span) -> Result<(), Diagnostic> {
        let loc = self.loc_of(span.start.line(), span.start.col());
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain && tag.is_none();
                let node = Node::new(scalar(&text, plain), loc);
                self.value(node, anchor)
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(mut node) => {
                    node.loc = loc;
                    self.value(node, 0)
                }
                None => Err(error("unknown YAML alias", Some(loc), "")),
            },
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq(Vec::new(), loc, anchor));
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                let frame = MapFrame { entries: Vec::new(), pending: None, merged: Vec::new(), start: loc, anchor };
                self.stack.push(Frame::Map(frame));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(items, start, anchor)) => self.value(Node::new(Kind::Seq(items), start), anchor),
                Some(Frame::Map(mut frame)) => {
                    for (k, v) in frame.merged {
                        if !frame.entries.iter().any(|(e, _)| *e == k) {
                            frame.entries.push((k, v));
                        }
                    }
                    self.value(Node::new(Kind::Map(frame.entries), frame.start), frame.anchor)
                }
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn value(&mut self, node: Node, anchor: usize) -> Result<(), Diagnostic> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.root.get_or_insert(node);
                Ok(())
            }
            Some(Frame::Seq(items, _, _)) => {
                items.push(node);
                Ok(())
            }
            Some(Frame::Map(frame)) => match frame.pending.take() {
                None => {
                    let key = node.scalar_text().unwrap_or_default();
                    frame.pending = Some((key, node.loc));
                    Ok(())
                }
                Some((key, key_loc)) => insert_entry(frame, key, key_loc, node),
            },
        }
    }
}

/// Adds a map entry; `<<: *anchor` merges the anchored map's entries that
/// the map does not set itself, as YAML 1.1 merge keys do (bundles use them).
fn insert_entry(frame: &mut MapFrame, key: String, key_loc: Location, node: Node) -> Result<(), Diagnostic> {
    if key == "<<" {
        let sources = match node.kind {
            Kind::Map(_) => vec![node],
            Kind::Seq(items) => items,
            _ => return Err(error("a merge key (<<) needs a map", Some(key_loc), "")),
        };
        for source in sources {
            for (k, v) in source.entries() {
                if !frame.merged.iter().any(|(e, _)| e == k) {
                    frame.merged.push((k.clone(), v.clone()));
                }
            }
        }
        return Ok(());
    }
    if frame.entries.iter().any(|(k, _)| *k == key) {
        return Err(error(format!("key {key} is defined twice"), Some(key_loc), &key));
    }
    frame.entries.push((key, node));
    Ok(())
}

fn scalar(text: &str, plain: bool) -> Kind {
    if !plain {
        return Kind::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        "true" | "True" | "TRUE" => return Kind::Bool(true),
        "false" | "False" | "FALSE" => return Kind::Bool(false),
        _ => {}
    }
    if let Ok(i) = text.parse::<i64>() {
        return Kind::Int(i);
    }
    let numeric = text.chars().next().is_some_and(|c| c.is_ascii_digit() || "+-.".contains(c));
    if numeric
        && !text.contains(['_', ' '])
        && let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return Kind::Float(f);
    }
    Kind::Str(text.to_string())
}
