//! The cluster domain: states, the transitions allowed between them, the
//! user's spec and why a cluster terminated.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::ComputeError;
use crate::libraries::Library;
use crate::node_types::{Host, find_node_type};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    Pending,
    Running,
    Restarting,
    Resizing,
    Terminating,
    Terminated,
    Error,
    Unknown,
}

impl ClusterState {
    pub const ALL: [ClusterState; 8] = [
        Self::Pending,
        Self::Running,
        Self::Restarting,
        Self::Resizing,
        Self::Terminating,
        Self::Terminated,
        Self::Error,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Restarting => "RESTARTING",
            Self::Resizing => "RESIZING",
            Self::Terminating => "TERMINATING",
            Self::Terminated => "TERMINATED",
            Self::Error => "ERROR",
            Self::Unknown => "UNKNOWN",
        }
    }

    pub fn parse(s: &str) -> Self {
        Self::ALL.into_iter().find(|st| st.as_str() == s).unwrap_or(Self::Unknown)
    }

    /// An engine is being brought up for the cluster.
    pub fn is_launching(self) -> bool {
        matches!(self, Self::Pending | Self::Restarting | Self::Resizing)
    }
}

/// What happens to a cluster; [`next_state`] says where each may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Start,
    Restart,
    Resize,
    Edit,
    Terminate,
    EngineReady,
    EngineLost,
    Stopped,
}

/// All allowed transitions in one place: the state a cluster in `from` moves
/// to, or `None` when the transition is not allowed there.
pub fn next_state(from: ClusterState, transition: Transition) -> Option<ClusterState> {
    use ClusterState as S;
    use Transition as T;
    match (transition, from) {
        (T::Start, S::Terminated) => Some(S::Pending),
        (T::Restart, S::Running) => Some(S::Restarting),
        (T::Resize, S::Running) => Some(S::Resizing),
        (T::Edit, S::Running) => Some(S::Restarting),
        (T::Edit, S::Terminated) => Some(S::Terminated),
        (T::Terminate, S::Terminated | S::Terminating) => None,
        (T::Terminate, _) => Some(S::Terminating),
        (T::EngineReady, s) if s.is_launching() => Some(S::Running),
        (T::EngineLost, S::Terminated) => None,
        (T::EngineLost, _) => Some(S::Terminated),
        (T::Stopped, S::Terminating) => Some(S::Terminated),
        _ => None,
    }
}

/// Why a cluster terminated, as `TerminationReason` on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct TerminationReason {
    pub code: &'static str,
    pub kind: &'static str,
    pub parameters: Vec<(&'static str, String)>,
}

impl TerminationReason {
    pub fn user_request(user: &str) -> Self {
        Self { code: "USER_REQUEST", kind: "SUCCESS", parameters: vec![("username", user.to_string())] }
    }
    /// A job cluster whose run ended.
    pub fn job_finished(run_id: i64) -> Self {
        Self { code: "JOB_FINISHED", kind: "SUCCESS", parameters: vec![("job_run_id", run_id.to_string())] }
    }
    pub fn inactivity(minutes: i64) -> Self {
        Self { code: "INACTIVITY", kind: "SUCCESS", parameters: vec![("inactivity_duration_min", minutes.to_string())] }
    }
    pub fn startup_failure(message: String) -> Self {
        Self {
            code: "SPARK_STARTUP_FAILURE",
            kind: "SERVICE_FAULT",
            parameters: vec![("databricks_error_message", message)],
        }
    }
    pub fn engine_lost(message: String) -> Self {
        Self {
            code: "DRIVER_UNEXPECTED_FAILURE",
            kind: "SERVICE_FAULT",
            parameters: vec![("databricks_error_message", message)],
        }
    }
    pub fn tarn_stopped(message: String) -> Self {
        Self {
            code: "COMMUNICATION_LOST",
            kind: "SERVICE_FAULT",
            parameters: vec![("databricks_error_message", message)],
        }
    }

    pub fn to_json(&self) -> Value {
        let parameters: Map<String, Value> =
            self.parameters.iter().map(|(k, v)| ((*k).to_string(), Value::String(v.clone()))).collect();
        json!({"code": self.code, "type": self.kind, "parameters": parameters})
    }
}

pub use tarn_store::{SERVERLESS_TAG, WAREHOUSE_TAG};

/// Attributes the server sets; a spec sent back from `get` drops them.
const SERVER_SET: &[&str] = &[
    "cluster_id",
    "state",
    "state_message",
    "start_time",
    "terminated_time",
    "last_restarted_time",
    "last_state_loss_time",
    "termination_reason",
    "creator_user_name",
    "default_tags",
    "driver",
    "executors",
    "cluster_cores",
    "cluster_memory_mb",
    "spark_context_id",
    "jdbc_port",
    "cluster_source",
    "spec",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Autoscale {
    pub min_workers: i64,
    pub max_workers: i64,
}

impl Autoscale {
    /// Reads an `autoscale` object: both bounds, `0 <= min <= max`, `max >= 1`.
    pub fn from_json(v: &Value) -> Result<Self, ComputeError> {
        let obj = v.as_object().ok_or_else(|| invalid("autoscale must be an object"))?;
        let min = int_field(obj, "min_workers")?.ok_or_else(|| invalid("autoscale.min_workers is required"))?;
        let max = int_field(obj, "max_workers")?.ok_or_else(|| invalid("autoscale.max_workers is required"))?;
        if min < 0 || max < 1 || max < min {
            return Err(invalid(format!(
                "autoscale needs 0 <= min_workers <= max_workers and max_workers >= 1, got min_workers={min}, max_workers={max}"
            )));
        }
        Ok(Self { min_workers: min, max_workers: max })
    }

    fn to_json(self) -> Value {
        json!({"min_workers": self.min_workers, "max_workers": self.max_workers})
    }
}

/// The size a resize asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterSize {
    Fixed(i64),
    Autoscale(Autoscale),
}

/// String-valued maps of a spec (`custom_tags`, `spark_conf`, `spark_env_vars`).
pub type StringMap = BTreeMap<String, String>;

/// A validated cluster spec: the fields tarn reads or checks, as the client
/// sent them (`None` when not sent), and every other attribute in `extra`,
/// so that `clusters/get` echoes the whole spec back.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// The runtime key (checked against the runtimes at create and edit).
    pub spark_version: String,
    pub cluster_name: Option<String>,
    pub num_workers: Option<i64>,
    pub autoscale: Option<Autoscale>,
    pub autotermination_minutes: Option<i64>,
    pub node_type_id: Option<String>,
    pub driver_node_type_id: Option<String>,
    pub custom_tags: Option<StringMap>,
    pub spark_conf: Option<StringMap>,
    pub spark_env_vars: Option<StringMap>,
    /// The other attributes, as sent.
    pub extra: Map<String, Value>,
}

fn invalid(msg: impl Into<String>) -> ComputeError {
    ComputeError::InvalidSpec(msg.into())
}

fn int_field(attrs: &Map<String, Value>, key: &str) -> Result<Option<i64>, ComputeError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or_else(|| invalid(format!("{key} must be an integer, got {v}"))),
    }
}

fn string_field(attrs: &mut Map<String, Value>, key: &str) -> Result<Option<String>, ComputeError> {
    match attrs.remove(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

fn string_map_field(attrs: &mut Map<String, Value>, key: &str) -> Result<Option<StringMap>, ComputeError> {
    let refused = || invalid(format!("{key} must be an object of string values"));
    match attrs.remove(key) {
        None => Ok(None),
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(v) => Ok((k, v)),
                _ => Err(refused()),
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(refused()),
    }
}

/// A cluster to create: its spec, and the libraries to install once it runs
/// (a bundle's cluster resource names them in the create request).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCluster {
    pub spec: ClusterSpec,
    pub libraries: Vec<Library>,
}

impl NewCluster {
    /// Reads a create request's attributes: `libraries` apart, the rest the
    /// spec ([`ClusterSpec::from_attributes`]).
    pub fn from_attributes(mut attributes: Map<String, Value>) -> Result<Self, ComputeError> {
        let libraries = match attributes.remove("libraries") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list,
            Some(_) => return Err(invalid("libraries must be a list")),
        };
        let spec = ClusterSpec::from_attributes(attributes)?;
        let libraries = libraries.iter().map(|l| Library::parse(l).map_err(invalid)).collect::<Result<_, _>>()?;
        Ok(Self { spec, libraries })
    }
}

impl ClusterSpec {
    /// A spec naming only its runtime.
    pub fn new(spark_version: impl Into<String>) -> Self {
        Self {
            spark_version: spark_version.into(),
            cluster_name: None,
            num_workers: None,
            autoscale: None,
            autotermination_minutes: None,
            node_type_id: None,
            driver_node_type_id: None,
            custom_tags: None,
            spark_conf: None,
            spark_env_vars: None,
            extra: Map::new(),
        }
    }

    /// Reads and validates a spec from its attributes, as a create or edit
    /// request carries them (and as the store keeps them). Server-set
    /// attributes and nulls are dropped; nothing is stored when this fails.
    pub fn from_attributes(mut attributes: Map<String, Value>) -> Result<Self, ComputeError> {
        for key in SERVER_SET {
            attributes.remove(*key);
        }
        attributes.retain(|_, v| !v.is_null());
        let spark_version = match attributes.remove("spark_version") {
            Some(Value::String(s)) if !s.trim().is_empty() => s,
            Some(_) => return Err(invalid("spark_version must be a non-empty string")),
            None => return Err(invalid("Missing required field: spark_version")),
        };
        let cluster_name = match attributes.remove("cluster_name") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(invalid("cluster_name must be a string")),
        };
        let autoscale = attributes.remove("autoscale").map(|a| Autoscale::from_json(&a)).transpose()?;
        let num_workers = int_field(&attributes, "num_workers")?;
        attributes.remove("num_workers");
        if let Some(n) = num_workers.filter(|n| *n < 0) {
            return Err(invalid(format!("num_workers must be >= 0, got {n}")));
        }
        if autoscale.is_some() && num_workers.is_some_and(|n| n > 0) {
            return Err(invalid("Specify either num_workers or autoscale, not both"));
        }
        let autotermination_minutes = int_field(&attributes, "autotermination_minutes")?;
        attributes.remove("autotermination_minutes");
        if let Some(m) = autotermination_minutes.filter(|m| *m != 0 && !(10..=10_000).contains(m)) {
            return Err(invalid(format!(
                "autotermination_minutes must be 0 (disabled) or between 10 and 10000, got {m}"
            )));
        }
        Ok(Self {
            spark_conf: string_map_field(&mut attributes, "spark_conf")?,
            custom_tags: string_map_field(&mut attributes, "custom_tags")?,
            spark_env_vars: string_map_field(&mut attributes, "spark_env_vars")?,
            node_type_id: string_field(&mut attributes, "node_type_id")?,
            driver_node_type_id: string_field(&mut attributes, "driver_node_type_id")?,
            spark_version,
            cluster_name,
            num_workers,
            autoscale,
            autotermination_minutes,
            extra: attributes,
        })
    }

    /// A spec already stored; it was validated when written.
    pub fn from_stored(value: &Value) -> Result<Self, ComputeError> {
        let attrs = value.as_object().cloned().ok_or_else(|| invalid("stored cluster spec is not an object"))?;
        Self::from_attributes(attrs)
    }

    /// The attributes as the client sent them (server-set ones and nulls
    /// dropped): what the store keeps and `clusters/get` echoes.
    pub fn to_attributes(&self) -> Map<String, Value> {
        let mut out = self.extra.clone();
        out.insert("spark_version".into(), json!(self.spark_version));
        let maps = [("custom_tags", &self.custom_tags), ("spark_conf", &self.spark_conf)];
        for (key, map) in maps.into_iter().chain([("spark_env_vars", &self.spark_env_vars)]) {
            if let Some(map) = map {
                out.insert(key.into(), json!(map));
            }
        }
        let texts = [
            ("cluster_name", &self.cluster_name),
            ("node_type_id", &self.node_type_id),
            ("driver_node_type_id", &self.driver_node_type_id),
        ];
        for (key, text) in texts {
            if let Some(text) = text {
                out.insert(key.into(), json!(text));
            }
        }
        for (key, n) in [("num_workers", self.num_workers), ("autotermination_minutes", self.autotermination_minutes)] {
            if let Some(n) = n {
                out.insert(key.into(), json!(n));
            }
        }
        if let Some(autoscale) = self.autoscale {
            out.insert("autoscale".into(), autoscale.to_json());
        }
        out
    }

    /// The cluster's name; empty when none was given.
    pub fn name(&self) -> &str {
        self.cluster_name.as_deref().unwrap_or_default()
    }

    /// Workers at start: the fixed count, else the autoscale minimum, else 0.
    pub fn workers(&self) -> i64 {
        self.num_workers.unwrap_or(self.autoscale.map_or(0, |a| a.min_workers))
    }

    /// Idle minutes before the cluster stops itself; 0 never.
    pub fn autotermination(&self) -> i64 {
        self.autotermination_minutes.unwrap_or(0)
    }

    /// The value of one of the cluster's custom tags.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.custom_tags.as_ref().and_then(|t| t.get(key)).map(String::as_str)
    }

    pub fn node_type_id(&self) -> Option<&str> {
        self.node_type_id.as_deref()
    }

    pub fn driver_node_type_id(&self) -> Option<&str> {
        self.driver_node_type_id.as_deref().or(self.node_type_id())
    }

    /// Workers the engine is sized for: the fixed count, or the autoscale
    /// maximum (the local backend does not scale while running).
    pub fn target_workers(&self) -> i64 {
        self.autoscale.map_or(self.workers(), |a| a.max_workers)
    }

    /// Partitions the engine uses by default: worker cores, or the driver's
    /// cores on a single-node cluster.
    pub fn parallelism(&self, host: Host) -> u32 {
        let workers = u32::try_from(self.target_workers()).unwrap_or(u32::MAX);
        if workers == 0 {
            find_node_type(host, self.driver_node_type_id()).num_cores
        } else {
            find_node_type(host, self.node_type_id()).num_cores.saturating_mul(workers)
        }
    }

    /// The spec with the size a resize asks for.
    pub fn resized(&self, size: ClusterSize) -> Result<Self, ComputeError> {
        let mut spec = self.clone();
        match size {
            ClusterSize::Fixed(n) if n < 0 => return Err(invalid(format!("num_workers must be >= 0, got {n}"))),
            ClusterSize::Fixed(n) => (spec.num_workers, spec.autoscale) = (Some(n), None),
            ClusterSize::Autoscale(a) => (spec.num_workers, spec.autoscale) = (None, Some(a)),
        }
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Result<ClusterSpec, ComputeError> {
        ClusterSpec::from_attributes(v.as_object().unwrap().clone())
    }

    #[test]
    fn transitions() {
        use ClusterState as S;
        use Transition as T;
        assert_eq!(next_state(S::Terminated, T::Start), Some(S::Pending));
        assert_eq!(next_state(S::Running, T::Start), None);
        assert_eq!(next_state(S::Pending, T::Restart), None);
        assert_eq!(next_state(S::Pending, T::Terminate), Some(S::Terminating));
        assert_eq!(next_state(S::Terminated, T::Terminate), None);
        assert_eq!(next_state(S::Resizing, T::EngineReady), Some(S::Running));
        assert_eq!(next_state(S::Terminating, T::EngineReady), None);
        assert_eq!(next_state(S::Pending, T::Edit), None);
    }

    #[test]
    fn spec_validation() {
        let ok = spec(json!({"spark_version": "x", "num_workers": 2, "node_type_id": "local-1c", "state": "RUNNING"}))
            .unwrap();
        assert!(!ok.to_attributes().contains_key("state"));
        assert_eq!(ok.parallelism(Host { cores: 4, memory_mb: 4096 }), 2);
        let single = spec(json!({"spark_version": "x"})).unwrap();
        assert_eq!(single.parallelism(Host { cores: 4, memory_mb: 4096 }), 4);
        for bad in [
            json!({"num_workers": 1}),
            json!({"spark_version": "x", "num_workers": -1}),
            json!({"spark_version": "x", "num_workers": "two"}),
            json!({"spark_version": "x", "autoscale": {"min_workers": 3, "max_workers": 1}}),
            json!({"spark_version": "x", "autotermination_minutes": 5}),
            json!({"spark_version": "x", "spark_conf": {"a": 1}}),
        ] {
            assert!(spec(bad.clone()).is_err(), "{bad}");
        }
        let scaled = spec(json!({"spark_version": "x", "autoscale": {"min_workers": 1, "max_workers": 3}})).unwrap();
        assert_eq!(scaled.target_workers(), 3);
        assert_eq!(scaled.resized(ClusterSize::Fixed(1)).unwrap().autoscale, None);
        assert!(scaled.resized(ClusterSize::Fixed(-1)).is_err());
    }

    #[test]
    fn specs_echo_what_was_sent() {
        let sent = json!({
            "spark_version": "16.4.x-scala2.13", "cluster_name": "etl", "num_workers": 0,
            "autotermination_minutes": 30, "node_type_id": "local-1c", "custom_tags": {"team": "x"},
            "spark_conf": {"spark.sql.shuffle.partitions": "4"}, "spark_env_vars": {},
            "data_security_mode": "SINGLE_USER", "init_scripts": [{"workspace": {"destination": "/x.sh"}}],
        });
        let parsed = spec(sent.clone()).unwrap();
        assert_eq!(Value::Object(parsed.to_attributes()), sent);
        assert_eq!(parsed.extra.len(), 2);
        assert_eq!((parsed.name(), parsed.tag("team"), parsed.autotermination()), ("etl", Some("x"), 30));
        let scaled =
            json!({"spark_version": "x", "autoscale": {"min_workers": 1, "max_workers": 2}, "cluster_id": "c"});
        let parsed = spec(scaled).unwrap();
        assert_eq!(parsed.workers(), 1);
        assert_eq!(
            Value::Object(parsed.to_attributes()),
            json!({"spark_version": "x", "autoscale": {"min_workers": 1, "max_workers": 2}})
        );
        assert!(spec(json!({"spark_version": "x", "node_type_id": 3})).is_err());
        assert!(spec(json!({"spark_version": "x", "custom_tags": []})).is_err());
    }
}
