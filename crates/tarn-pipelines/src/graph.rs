//! The dataflow graph of a pipeline: its datasets (streaming tables,
//! materialized views, views), the flows that write them, and the
//! expectations on them. Python definitions (`python/tarn/pipeline.py`) and
//! SQL definitions ([`crate::sql`]) both produce these; [`plan`] checks the
//! whole and orders the flows.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a definition is in its source, for errors and the event log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub path: String,
    #[serde(default)]
    pub line: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    StreamingTable,
    MaterializedView,
    /// Not stored: its query is inlined into the flows that read it.
    View,
}

/// What a failed expectation does to its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Keep the row, count it.
    Warn,
    /// Leave the row out, count it.
    Drop,
    /// Stop the update before the flow writes anything.
    Fail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expectation {
    pub name: String,
    /// A SQL boolean expression over the dataset's columns.
    pub condition: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// As defined: unqualified, or a full `catalog.schema.name`.
    pub name: String,
    pub kind: DatasetKind,
    #[serde(default)]
    pub comment: Option<String>,
    #[serde(default)]
    pub table_properties: Map<String, Value>,
    #[serde(default)]
    pub partition_cols: Vec<String>,
    #[serde(default)]
    pub cluster_by: Vec<String>,
    /// A declared schema in DDL (`a INT, b STRING`), when given.
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub expectations: Vec<Expectation>,
    #[serde(default)]
    pub location: Location,
}

/// The temporary view a flow's relation reads a streaming input from:
/// each update points it at the rows the flow has not read yet.
pub fn stream_view(dataset: &str) -> String {
    format!("__tarn_stream__{dataset}")
}

/// A pipeline dataset a flow reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Input {
    pub name: String,
    /// Read as a stream: only what the flow has not read before.
    #[serde(default)]
    pub streaming: bool,
    /// A streaming read's `skipChangeCommits`: commits that change or
    /// delete rows are passed over instead of failing the flow.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_change_commits: bool,
}

/// Files a flow reads incrementally (Auto Loader's `cloudFiles`, a file
/// stream, or `STREAM read_files(...)`): the relation reads `path` as
/// `format`, and each update substitutes the files not yet processed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileSource {
    pub path: String,
    pub format: String,
    #[serde(default)]
    pub options: Map<String, Value>,
    /// The schema the reader declared (DDL); inferred from the files when absent.
    #[serde(default)]
    pub schema: Option<String>,
    /// The temporary view the flow's relation reads these files from; each
    /// update points it at the files not yet processed.
    #[serde(default)]
    pub view: Option<String>,
    /// A batch read (`read_files` without `STREAM`): every file, each update.
    #[serde(default)]
    pub batch: bool,
}

/// `AUTO CDC` / `apply_changes` settings of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cdc {
    /// The dataset the changes come from.
    pub source: String,
    pub keys: Vec<String>,
    /// SQL expression ordering the changes.
    pub sequence_by: String,
    #[serde(default)]
    pub apply_as_deletes: Option<String>,
    #[serde(default)]
    pub apply_as_truncates: Option<String>,
    #[serde(default)]
    pub column_list: Option<Vec<String>>,
    #[serde(default)]
    pub except_column_list: Option<Vec<String>>,
    #[serde(default = "scd_type_1")]
    pub stored_as_scd_type: u8,
    #[serde(default)]
    pub track_history_column_list: Option<Vec<String>>,
    #[serde(default)]
    pub track_history_except_column_list: Option<Vec<String>>,
    #[serde(default)]
    pub ignore_null_updates: bool,
}

fn scd_type_1() -> u8 {
    1
}

/// How a flow's query is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Query {
    /// A Spark Connect `Relation`, base64 of its protobuf bytes.
    Relation(String),
    /// Spark SQL text (`LIVE.x` and `STREAM(x)` as written).
    Sql(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub name: String,
    /// The dataset it writes.
    pub target: String,
    /// `None` for a flow that only declares its target (a query-less
    /// streaming table written by other flows).
    #[serde(default)]
    pub query: Option<Query>,
    #[serde(default)]
    pub inputs: Vec<Input>,
    #[serde(default)]
    pub sources: Vec<FileSource>,
    /// Runs once per full refresh (`append_flow(once=True)`, `INSERT INTO ONCE`).
    #[serde(default)]
    pub once: bool,
    #[serde(default)]
    pub cdc: Option<Cdc>,
    #[serde(default)]
    pub location: Location,
}

/// A definition error: which file and line, and what is wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DefinitionError {
    pub message: String,
    /// The exception class as Python or tarn names it (`SyntaxError`, ...).
    #[serde(default)]
    pub class: Option<String>,
    #[serde(default)]
    pub location: Option<Location>,
}

/// Definitions from one or more sources, merged before planning.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Definitions {
    #[serde(default)]
    pub datasets: Vec<Dataset>,
    #[serde(default)]
    pub flows: Vec<Flow>,
    #[serde(default)]
    pub errors: Vec<DefinitionError>,
}

impl Definitions {
    pub fn extend(&mut self, other: Definitions) {
        self.datasets.extend(other.datasets);
        self.flows.extend(other.flows);
        self.errors.extend(other.errors);
    }
}
