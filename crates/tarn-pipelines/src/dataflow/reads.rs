//! A graph's flows made runnable: the relations SDP clients planned read
//! datasets by the names they were defined with (`spark.read.table("x")`,
//! `spark.readStream.table("x")`, `spark.sql("... FROM x")`) and stream
//! files (`spark.readStream.format("json").load(dir)`). Walking each
//! relation, a batch read of a dataset becomes a read of its full name, a
//! streaming read one of the view each update points at the rows the flow
//! has not read ([`stream_view`]), a temporary view is inlined, and a file
//! stream becomes a [`FileSource`] read through its view; every dataset
//! read is recorded as an input of the flow, as the Python analysis
//! (`python/tarn/pipeline.py`) records them for `dlt` pipelines.

use std::cell::RefCell;

use base64::Engine as _;
use prost::Message;
use serde_json::{Map, Value};
use spark_connect_proto::{Read, Relation, SubqueryAlias, read, relation};
use tarn_gateway::relations::children_mut;
use tarn_sqltext::quote_identifier;

use crate::flows::relation::decode;
use crate::graph::{Dataset, DatasetKind, DefinitionError, Definitions, FileSource, Flow, Input, Query, stream_view};
use crate::plan::bare;

/// File formats a stream may read (Auto Loader's `cloudFiles.format` too).
const FILE_FORMATS: &[&str] = &["json", "csv", "parquet", "text", "avro", "orc", "xml", "binaryfile"];

/// The graph's definitions with every flow's reads resolved; a flow whose
/// reads cannot be becomes a definition error at its location.
pub(super) fn resolve(definitions: Definitions, catalog: &str, schema: &str) -> Definitions {
    let names = Names { catalog, schema, datasets: &definitions.datasets, flows: &definitions.flows };
    let mut flows = Vec::new();
    let mut errors = definitions.errors.clone();
    for flow in &definitions.flows {
        match resolve_flow(&names, flow) {
            Ok(resolved) => flows.push(resolved),
            Err(Failed::Own(message)) => errors.push(DefinitionError {
                message,
                class: Some("AnalysisException".into()),
                location: (!flow.location.path.is_empty()).then(|| flow.location.clone()),
            }),
            // The view's own flow reports it.
            Err(Failed::View) => {}
        }
    }
    Definitions { datasets: definitions.datasets.clone(), flows, errors }
}

/// Why a relation could not be resolved.
#[derive(Debug)]
enum Failed {
    Own(String),
    /// A view it reads could not be (reported once, for the view).
    View,
}

fn resolve_flow(names: &Names, flow: &Flow) -> Result<Flow, Failed> {
    let Some(Query::Relation(encoded)) = &flow.query else { return Ok(flow.clone()) };
    let mut relation = decode(encoded).map_err(Failed::Own)?;
    let mut walker = Walker { names, views: vec![names.key(&flow.target)], reads: Reads::default() };
    walker.walk(&mut relation).map_err(|e| match e {
        Failed::Own(message) => Failed::Own(format!("Flow '{}': {message}", flow.name)),
        Failed::View => Failed::View,
    })?;
    let encoded = base64::engine::general_purpose::STANDARD.encode(relation.encode_to_vec());
    let Reads { inputs, sources } = walker.reads;
    Ok(Flow { query: Some(Query::Relation(encoded)), inputs, sources, ..flow.clone() })
}

/// The datasets of the graph, by the names flows use.
struct Names<'a> {
    catalog: &'a str,
    schema: &'a str,
    datasets: &'a [Dataset],
    flows: &'a [Flow],
}

impl Names<'_> {
    /// `name`'s parts, qualified with the graph's catalog and schema.
    fn qualified(&self, name: &str) -> Vec<String> {
        let parts = split_name(name);
        let defaults = [self.catalog.to_string(), self.schema.to_string()];
        let missing = 3usize.saturating_sub(parts.len()).min(2);
        defaults[2 - missing..].iter().cloned().chain(parts).collect()
    }

    /// How a name is compared: qualified, lower-cased, without a `LIVE.`
    /// prefix.
    fn key(&self, name: &str) -> Vec<String> {
        let parts = split_name(name);
        let name = match parts.as_slice() {
            [live, rest] if live.eq_ignore_ascii_case("live") => quote_identifier(rest),
            _ => name.to_string(),
        };
        self.qualified(&name).into_iter().map(|p| p.to_lowercase()).collect()
    }

    fn find(&self, name: &str) -> Option<&Dataset> {
        let key = self.key(name);
        self.datasets.iter().find(|d| self.key(&d.name) == key)
    }

    /// The dataset's full name, quoted for the engine.
    fn full(&self, dataset: &Dataset) -> String {
        self.qualified(&dataset.name).iter().map(|p| quote_identifier(p)).collect::<Vec<_>>().join(".")
    }
}

/// What one flow reads.
#[derive(Default)]
struct Reads {
    inputs: Vec<Input>,
    sources: Vec<FileSource>,
}

impl Reads {
    fn input(&mut self, name: &str, streaming: bool) {
        let input = Input { name: name.to_string(), streaming, skip_change_commits: false };
        if !self.inputs.contains(&input) {
            self.inputs.push(input);
        }
    }
}

struct Walker<'a> {
    names: &'a Names<'a>,
    /// The flow's target and the views being inlined, to find cycles.
    views: Vec<Vec<String>>,
    reads: Reads,
}

impl Walker<'_> {
    fn walk(&mut self, relation: &mut Relation) -> Result<(), Failed> {
        if let Some(rel_type) = self.read(relation)? {
            relation.rel_type = Some(rel_type);
            return Ok(());
        }
        if let Some(relation::RelType::Sql(sql)) = relation.rel_type.as_mut() {
            sql.query = self.sql(&sql.query)?;
        }
        children_mut(relation).into_iter().try_for_each(|child| self.walk(child))
    }

    /// What replaces a read of a dataset or a file stream; `None` for any
    /// other relation. The relation's `common` (its plan id) stays.
    fn read(&mut self, relation: &Relation) -> Result<Option<relation::RelType>, Failed> {
        let Some(relation::RelType::Read(read)) = &relation.rel_type else { return Ok(None) };
        match &read.read_type {
            Some(read::ReadType::NamedTable(table)) => {
                let Some(dataset) = self.names.find(&table.unparsed_identifier) else {
                    if read.is_streaming {
                        return Err(Failed::Own(format!(
                            "it streams from '{}', which is not a dataset of this pipeline; tarn streams from the \
                             pipeline's datasets and from files",
                            table.unparsed_identifier
                        )));
                    }
                    return Ok(None);
                };
                if dataset.kind == DatasetKind::View {
                    return self.view(dataset).map(Some);
                }
                self.reads.input(&dataset.name, read.is_streaming);
                let name = match read.is_streaming {
                    true => quote_identifier(&stream_view(&bare(&dataset.name))),
                    false => self.names.full(dataset),
                };
                Ok(Some(named(name, table.options.clone())))
            }
            Some(read::ReadType::DataSource(source)) if read.is_streaming => self.files(source).map(Some),
            _ => Ok(None),
        }
    }

    /// A temporary view's query, inlined under the view's name.
    fn view(&mut self, view: &Dataset) -> Result<relation::RelType, Failed> {
        let key = self.names.key(&view.name);
        if self.views.contains(&key) {
            return Err(Failed::Own(format!("the views it reads read each other in a cycle through '{}'", view.name)));
        }
        let flow = self.names.flows.iter().find(|f| self.names.key(&f.target) == key);
        let query = match flow.and_then(|f| f.query.as_ref()) {
            Some(Query::Relation(encoded)) => {
                let mut inner = decode(encoded).map_err(Failed::Own)?;
                self.views.push(key);
                let walked = self.walk(&mut inner);
                self.views.pop();
                walked.map_err(|_| Failed::View)?;
                inner
            }
            Some(Query::Sql(text)) => crate::flows::relation::sql(&self.sql(text)?),
            None => return Err(Failed::Own(format!("the temporary view '{}' has no query", view.name))),
        };
        let alias = split_name(&view.name).pop().unwrap_or_default();
        let alias = SubqueryAlias { input: Some(Box::new(query)), alias, qualifier: Vec::new() };
        Ok(relation::RelType::SubqueryAlias(Box::new(alias)))
    }

    /// SQL text with the datasets it names as full names and `STREAM(x)`
    /// as x's stream view.
    fn sql(&mut self, text: &str) -> Result<String, Failed> {
        let found = RefCell::new(Vec::new());
        let view_named = RefCell::new(None);
        let lookup = |name: &str, streaming: bool| {
            let dataset = self.names.find(name)?;
            if dataset.kind == DatasetKind::View {
                view_named.borrow_mut().get_or_insert_with(|| dataset.name.clone());
                return None;
            }
            found.borrow_mut().push((dataset.name.clone(), streaming));
            Some(match streaming {
                true => quote_identifier(&stream_view(&bare(&dataset.name))),
                false => self.names.full(dataset),
            })
        };
        let rewritten = crate::sql::rewrite_references(text, &|n| lookup(n, false), &|n| lookup(n, true), &|_| None);
        if let Some(view) = view_named.into_inner() {
            return Err(Failed::Own(format!(
                "its SQL reads the temporary view '{view}', which tarn inlines only into DataFrame reads; use \
                 spark.read.table(\"{view}\")"
            )));
        }
        for (name, streaming) in found.into_inner() {
            self.reads.input(&name, streaming);
        }
        Ok(rewritten)
    }

    /// A file stream, read through the view each update points at the files
    /// the flow has not processed.
    fn files(&mut self, source: &read::DataSource) -> Result<relation::RelType, Failed> {
        let refuse = |m: String| Err(Failed::Own(m));
        let format = source.format.as_deref().unwrap_or_default().to_ascii_lowercase();
        let option = |key: &str| source.options.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v);
        let file_format = if format == "cloudfiles" {
            match option("cloudFiles.format") {
                Some(f) => f.to_ascii_lowercase(),
                None => {
                    return refuse("Auto Loader needs the file format: .option('cloudFiles.format', 'json')".into());
                }
            }
        } else {
            format.clone()
        };
        if !FILE_FORMATS.contains(&file_format.as_str()) {
            return refuse(format!(
                "it streams from '{format}'; tarn streams files (cloudFiles, json, csv, parquet, ...) and the \
                 pipeline's datasets"
            ));
        }
        let path = match (source.paths.as_slice(), option("path")) {
            ([one], _) => one.clone(),
            ([], Some(path)) => path.clone(),
            ([], None) => return refuse("a file stream needs a path: .load('/Volumes/...')".into()),
            _ => return refuse("a file stream reads one path; union several streams instead".into()),
        };
        let options: Map<String, Value> = source
            .options
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("path"))
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let view = files_view(&path);
        let schema = source.schema.clone().filter(|s| !s.trim().is_empty());
        let file_source =
            FileSource { path, format: file_format, options, schema, view: Some(view.clone()), batch: false };
        if !self.reads.sources.contains(&file_source) {
            self.reads.sources.push(file_source);
        }
        Ok(named(quote_identifier(&view), Default::default()))
    }
}

fn named(name: String, options: std::collections::HashMap<String, String>) -> relation::RelType {
    let table = read::NamedTable { unparsed_identifier: name, options };
    relation::RelType::Read(Read { is_streaming: false, read_type: Some(read::ReadType::NamedTable(table)) })
}

/// The view a file stream of `path` is read through (FNV-1a of the path).
fn files_view(path: &str) -> String {
    let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("__tarn_files__{hash:016x}")
}

/// The parts of a multi-part name; a backquoted part may hold dots.
pub(super) fn split_name(name: &str) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                current.push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current).trim().to_string()),
            c => current.push(c),
        }
    }
    parts.push(current.trim().to_string());
    parts
}
