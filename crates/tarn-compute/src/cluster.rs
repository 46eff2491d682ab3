//! The cluster domain: states, the transitions allowed between them, the
//! user's spec and why a cluster terminated.

use serde_json::{Map, Value, json};

use crate::ComputeError;
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

/// The custom tag naming the SQL warehouse a cluster belongs to.
pub const WAREHOUSE_TAG: &str = "SqlEndpointId";
/// The custom tag of the cluster behind serverless execution contexts.
pub const SERVERLESS_TAG: &str = "TarnServerless";

/// Whether a stored spec is a cluster tarn runs for a service of its own (a
/// SQL warehouse, serverless compute): such clusters stay out of the clusters
/// API's lists and of `system.compute.clusters`, as on Databricks.
pub fn is_managed_spec(spec: &Value) -> bool {
    let tags = spec.get("custom_tags");
    [WAREHOUSE_TAG, SERVERLESS_TAG].iter().any(|tag| tags.and_then(|t| t.get(*tag)).is_some())
}

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

/// A validated cluster spec: the user's attributes, kept as given, plus the
/// fields tarn acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    pub attributes: Map<String, Value>,
    pub cluster_name: String,
    pub num_workers: i64,
    pub autoscale: Option<Autoscale>,
    pub autotermination_minutes: i64,
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

fn string_map_field(attrs: &Map<String, Value>, key: &str) -> Result<(), ComputeError> {
    match attrs.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(()),
        Some(_) => Err(invalid(format!("{key} must be an object of string values"))),
    }
}

fn parse_autoscale(v: &Value) -> Result<Autoscale, ComputeError> {
    let obj = v.as_object().ok_or_else(|| invalid("autoscale must be an object"))?;
    let min = int_field(obj, "min_workers")?.ok_or_else(|| invalid("autoscale.min_workers is required"))?;
    let max = int_field(obj, "max_workers")?.ok_or_else(|| invalid("autoscale.max_workers is required"))?;
    if min < 0 || max < 1 || max < min {
        return Err(invalid(format!(
            "autoscale needs 0 <= min_workers <= max_workers and max_workers >= 1, got min_workers={min}, max_workers={max}"
        )));
    }
    Ok(Autoscale { min_workers: min, max_workers: max })
}

impl ClusterSpec {
    /// Validates a create or edit request. Nothing is stored when this fails.
    pub fn parse(mut attributes: Map<String, Value>) -> Result<Self, ComputeError> {
        for key in SERVER_SET {
            attributes.remove(*key);
        }
        attributes.retain(|_, v| !v.is_null());
        match attributes.get("spark_version") {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            Some(_) => return Err(invalid("spark_version must be a non-empty string")),
            None => return Err(invalid("Missing required field: spark_version")),
        }
        let cluster_name = match attributes.get("cluster_name") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(invalid("cluster_name must be a string")),
        };
        let autoscale = attributes.get("autoscale").map(parse_autoscale).transpose()?;
        let num_workers = int_field(&attributes, "num_workers")?;
        if let Some(n) = num_workers.filter(|n| *n < 0) {
            return Err(invalid(format!("num_workers must be >= 0, got {n}")));
        }
        if autoscale.is_some() && num_workers.is_some_and(|n| n > 0) {
            return Err(invalid("Specify either num_workers or autoscale, not both"));
        }
        let autotermination_minutes = int_field(&attributes, "autotermination_minutes")?.unwrap_or(0);
        if autotermination_minutes != 0 && !(10..=10_000).contains(&autotermination_minutes) {
            return Err(invalid(format!(
                "autotermination_minutes must be 0 (disabled) or between 10 and 10000, got {autotermination_minutes}"
            )));
        }
        for key in ["spark_conf", "custom_tags", "spark_env_vars"] {
            string_map_field(&attributes, key)?;
        }
        for key in ["node_type_id", "driver_node_type_id"] {
            if attributes.get(key).is_some_and(|v| !v.is_string()) {
                return Err(invalid(format!("{key} must be a string")));
            }
        }
        Ok(Self {
            num_workers: num_workers.unwrap_or(autoscale.map_or(0, |a| a.min_workers)),
            attributes,
            cluster_name,
            autoscale,
            autotermination_minutes,
        })
    }

    /// A spec already stored; it was validated when written.
    pub fn from_stored(value: &Value) -> Result<Self, ComputeError> {
        let attrs = value.as_object().cloned().ok_or_else(|| invalid("stored cluster spec is not an object"))?;
        Self::parse(attrs)
    }

    /// The runtime key the cluster asked for (validated by [`ClusterSpec::parse`] as a string).
    pub fn spark_version(&self) -> &str {
        self.attributes.get("spark_version").and_then(Value::as_str).unwrap_or_default()
    }

    /// The value of one of the cluster's custom tags.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.attributes.get("custom_tags").and_then(|t| t.get(key)).and_then(Value::as_str)
    }

    /// See [`is_managed_spec`].
    pub fn is_managed(&self) -> bool {
        [WAREHOUSE_TAG, SERVERLESS_TAG].iter().any(|tag| self.tag(tag).is_some())
    }

    pub fn node_type_id(&self) -> Option<&str> {
        self.attributes.get("node_type_id").and_then(Value::as_str)
    }

    pub fn driver_node_type_id(&self) -> Option<&str> {
        self.attributes.get("driver_node_type_id").and_then(Value::as_str).or(self.node_type_id())
    }

    /// Workers the engine is sized for: the fixed count, or the autoscale
    /// maximum (the local backend does not scale while running).
    pub fn target_workers(&self) -> i64 {
        self.autoscale.map_or(self.num_workers, |a| a.max_workers)
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

    /// Sets the size from a resize request.
    pub fn resized(&self, num_workers: Option<i64>, autoscale: Option<&Value>) -> Result<Self, ComputeError> {
        let mut attrs = self.attributes.clone();
        match (num_workers, autoscale) {
            (Some(n), None) => {
                attrs.remove("autoscale");
                attrs.insert("num_workers".into(), json!(n));
            }
            (None, Some(a)) => {
                attrs.remove("num_workers");
                attrs.insert("autoscale".into(), a.clone());
            }
            (Some(_), Some(_)) => return Err(invalid("Specify either num_workers or autoscale, not both")),
            (None, None) => return Err(invalid("Either num_workers or autoscale is required")),
        }
        Self::parse(attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> Result<ClusterSpec, ComputeError> {
        ClusterSpec::parse(v.as_object().unwrap().clone())
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
        assert!(!ok.attributes.contains_key("state"));
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
        assert_eq!(scaled.resized(Some(1), None).unwrap().autoscale, None);
    }
}
