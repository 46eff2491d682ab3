//! Where a cluster's engine runs: the backend its custom tag `tarn_backend`
//! names, or the server's default (`TARN_DEFAULT_BACKEND`, `sail` unless
//! set). `sail` runs Sail in one process (local mode); `sail-cluster` runs
//! Sail's distributed mode, a driver and `num_workers` workers (the
//! autoscale bounds when given), in that process (Sail's `local-cluster`
//! mode, the form its Kubernetes mode takes on one machine), or, when the
//! server is given a worker image ([`SailKubernetes`]), on Kubernetes: the
//! driver here, each worker a pod. `spark` runs an Apache Spark Connect
//! server ([`crate::spark`]).

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

    /// The backend `spec` runs on: its tag's, else `default`. A Spark
    /// Connect endpoint to route to ([`crate::spark::endpoint`]) must be
    /// well formed and on the spark backend.
    pub fn of(spec: &ClusterSpec, default: Backend) -> Result<Self, ComputeError> {
        let backend = spec.tag(BACKEND_TAG).map_or(Ok(default), Self::parse)?;
        if crate::spark::endpoint(spec)?.is_some() && backend != Self::Spark {
            return Err(ComputeError::InvalidSpec(format!(
                "{} routes to a Spark Connect server: it needs {BACKEND_TAG} spark",
                crate::spark::ENDPOINT_TAG
            )));
        }
        Ok(backend)
    }

    /// Whether the engine is Sail, which tarn's catalog, views and Delta
    /// rewrites are made for; Spark does its own.
    pub fn is_sail(self) -> bool {
        self != Self::Spark
    }

    /// What the engine's environment says for this backend (Sail reads its
    /// settings from `SAIL_*` variables; Spark's are a properties file).
    pub fn engine_env(
        self,
        cluster_id: &str,
        spec: &ClusterSpec,
        kubernetes: Option<&SailKubernetes>,
    ) -> Vec<(String, String)> {
        match self {
            Self::Sail | Self::Spark => Vec::new(),
            Self::SailCluster => {
                let mut env =
                    vec![("SAIL_CLUSTER__WORKER_INITIAL_COUNT".to_string(), spec.workers().max(1).to_string())];
                if let Some(autoscale) = spec.autoscale {
                    env.push(("SAIL_CLUSTER__WORKER_MAX_COUNT".to_string(), autoscale.max_workers.to_string()));
                }
                match kubernetes {
                    Some(k8s) => env.extend(k8s.engine_env(cluster_id)),
                    None => env.push(("SAIL_MODE".to_string(), "local-cluster".to_string())),
                }
                env
            }
        }
    }
}

/// Where `sail-cluster` clusters put their workers when not on this host:
/// Sail's `kubernetes-cluster` mode, the driver in the engine process here
/// and each worker a pod (`TARN_SAIL_K8S_IMAGE` and the variables beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SailKubernetes {
    /// The workers' image: Sail's, of the version the runtimes carry.
    pub image: String,
    pub namespace: String,
    /// The kubeconfig the driver creates pods with (`KUBECONFIG`); none:
    /// the in-cluster service account, when tarn itself runs in a pod.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// The address pods reach this host's driver at.
    pub driver_host: String,
    pub service_account: String,
}

impl SailKubernetes {
    fn engine_env(&self, cluster_id: &str) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("SAIL_MODE", "kubernetes-cluster".to_string()),
            ("SAIL_KUBERNETES__IMAGE", self.image.clone()),
            ("SAIL_KUBERNETES__NAMESPACE", self.namespace.clone()),
            // Pods of one cluster are told apart from another's by name.
            ("SAIL_KUBERNETES__WORKER_POD_NAME_PREFIX", format!("tarn-{}-", cluster_id.to_lowercase())),
            ("SAIL_KUBERNETES__WORKER_SERVICE_ACCOUNT_NAME", self.service_account.clone()),
            ("SAIL_CLUSTER__DRIVER_LISTEN_HOST", "0.0.0.0".to_string()),
            ("SAIL_CLUSTER__DRIVER_EXTERNAL_HOST", self.driver_host.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        if let Some(path) = &self.kubeconfig {
            env.push(("KUBECONFIG".to_string(), path.display().to_string()));
        }
        env
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
        let env = Backend::SailCluster.engine_env("c1", &tagged, None);
        assert!(env.contains(&("SAIL_MODE".into(), "local-cluster".into())));
        assert!(env.contains(&("SAIL_CLUSTER__WORKER_INITIAL_COUNT".into(), "3".into())));
        let plain = spec(json!({"spark_version": "x"}));
        assert_eq!(Backend::of(&plain, Backend::SailCluster).unwrap(), Backend::SailCluster);
        assert!(Backend::Sail.engine_env("c1", &plain, None).is_empty());
        let scaled = spec(json!({"spark_version": "x", "autoscale": {"min_workers": 1, "max_workers": 5}}));
        assert!(
            Backend::SailCluster
                .engine_env("c1", &scaled, None)
                .contains(&("SAIL_CLUSTER__WORKER_MAX_COUNT".into(), "5".into()))
        );
        assert_eq!(Backend::parse("spark").unwrap(), Backend::Spark);
        assert!(matches!(Backend::parse("flink"), Err(ComputeError::InvalidSpec(_))));
    }

    #[test]
    fn with_a_worker_image_sail_cluster_runs_its_workers_as_pods() {
        let k8s = SailKubernetes {
            image: "registry.local/sail:0.7.2".into(),
            namespace: "data".into(),
            kubeconfig: Some("/etc/tarn/kubeconfig".into()),
            driver_host: "10.0.0.7".into(),
            service_account: "sail".into(),
        };
        let two = spec(json!({"spark_version": "x", "num_workers": 2}));
        let env = Backend::SailCluster.engine_env("0102-ABC", &two, Some(&k8s));
        for pair in [
            ("SAIL_MODE", "kubernetes-cluster"),
            ("SAIL_KUBERNETES__IMAGE", "registry.local/sail:0.7.2"),
            ("SAIL_KUBERNETES__NAMESPACE", "data"),
            ("SAIL_KUBERNETES__WORKER_POD_NAME_PREFIX", "tarn-0102-abc-"),
            ("SAIL_CLUSTER__DRIVER_EXTERNAL_HOST", "10.0.0.7"),
            ("SAIL_CLUSTER__WORKER_INITIAL_COUNT", "2"),
            ("KUBECONFIG", "/etc/tarn/kubeconfig"),
        ] {
            assert!(env.contains(&(pair.0.into(), pair.1.into())), "{pair:?} in {env:?}");
        }
        assert!(!env.iter().any(|(_, v)| v == "local-cluster"));
    }
}
