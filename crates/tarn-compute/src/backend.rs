//! Where a cluster's engine runs: the backend its custom tag `tarn_backend`
//! names, or the server's default (`TARN_DEFAULT_BACKEND`, `sail` unless
//! set). `sail` runs Sail in one process (local mode); `sail-cluster` runs
//! Sail's distributed mode, a driver and `num_workers` workers (the
//! autoscale bounds when given), in that process (Sail's `local-cluster`
//! mode, the form its Kubernetes mode takes on one machine). `spark` runs
//! an Apache Spark Connect server ([`crate::spark`]).

use crate::ComputeError;
use crate::cluster::ClusterSpec;

/// The custom tag that chooses a cluster's backend.
pub const BACKEND_TAG: &str = "tarn_backend";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Backend {
    #[default]
    Sail,
    SailCluster,
    Spark,
}

impl Backend {
    pub fn parse(name: &str) -> Result<Self, ComputeError> {
        match name {
            "sail" => Ok(Self::Sail),
            "sail-cluster" => Ok(Self::SailCluster),
            "spark" => Ok(Self::Spark),
            other => Err(ComputeError::InvalidSpec(format!(
                "Unknown {BACKEND_TAG} {other:?}: use sail, sail-cluster or spark"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sail => "sail",
            Self::SailCluster => "sail-cluster",
            Self::Spark => "spark",
        }
    }

    /// The backend `spec` runs on: its tag's, else `default`.
    pub fn of(spec: &ClusterSpec, default: Backend) -> Result<Self, ComputeError> {
        spec.tag(BACKEND_TAG).map_or(Ok(default), Self::parse)
    }

    /// Whether the engine is Sail, which tarn's catalog, views and Delta
    /// rewrites are made for; Spark does its own.
    pub fn is_sail(self) -> bool {
        self != Self::Spark
    }

    /// What the engine's environment says for this backend (Sail reads its
    /// settings from `SAIL_*` variables; Spark's are a properties file).
    pub fn engine_env(self, spec: &ClusterSpec) -> Vec<(String, String)> {
        match self {
            Self::Sail | Self::Spark => Vec::new(),
            Self::SailCluster => {
                let mut env = vec![
                    ("SAIL_MODE".to_string(), "local-cluster".to_string()),
                    ("SAIL_CLUSTER__WORKER_INITIAL_COUNT".to_string(), spec.workers().max(1).to_string()),
                ];
                if let Some(autoscale) = spec.autoscale {
                    env.push(("SAIL_CLUSTER__WORKER_MAX_COUNT".to_string(), autoscale.max_workers.to_string()));
                }
                env
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> ClusterSpec {
        ClusterSpec::from_stored(&value).unwrap()
    }

    #[test]
    fn the_tag_chooses_and_the_default_fills_in() {
        let tagged =
            spec(json!({"spark_version": "x", "num_workers": 3, "custom_tags": {"tarn_backend": "sail-cluster"}}));
        assert_eq!(Backend::of(&tagged, Backend::Sail).unwrap(), Backend::SailCluster);
        let env = Backend::SailCluster.engine_env(&tagged);
        assert!(env.contains(&("SAIL_MODE".into(), "local-cluster".into())));
        assert!(env.contains(&("SAIL_CLUSTER__WORKER_INITIAL_COUNT".into(), "3".into())));
        let plain = spec(json!({"spark_version": "x"}));
        assert_eq!(Backend::of(&plain, Backend::SailCluster).unwrap(), Backend::SailCluster);
        assert!(Backend::Sail.engine_env(&plain).is_empty());
        let scaled = spec(json!({"spark_version": "x", "autoscale": {"min_workers": 1, "max_workers": 5}}));
        assert!(
            Backend::SailCluster.engine_env(&scaled).contains(&("SAIL_CLUSTER__WORKER_MAX_COUNT".into(), "5".into()))
        );
        assert_eq!(Backend::parse("spark").unwrap(), Backend::Spark);
        assert!(matches!(Backend::parse("flink"), Err(ComputeError::InvalidSpec(_))));
    }
}
