//! The `spark` backend: an Apache Spark Connect server, started with
//! `spark-submit` from a Spark distribution (the operator's
//! `TARN_SPARK_HOME`, else the `pyspark` package's, built once into a
//! managed environment), against the master `TARN_SPARK_MASTER` names
//! (a standalone `spark://` or a `k8s://` URL).
//!
//! A cluster with no workers is a single-node cluster, as on Databricks: its
//! driver runs the tasks itself (`local[n]`). A cluster with workers gets
//! executors of its node type's size from the master, a fixed count or,
//! with `autoscale`, Spark's dynamic allocation between the bounds (driven by
//! pending tasks). The cluster's `spark_conf` is passed on last, so a
//! `spark.master` there wins, as it does on Databricks.
//!
//! Tables live in the server's own catalog (Hive's, kept in an embedded
//! Derby database and a warehouse under the cluster's directory, so they
//! outlive a restart), unless the distribution carries Unity Catalog's Spark
//! connector: then each of tarn's catalogs is mounted through its REST API.
//! Everything is handed to `spark-submit` in a properties file readable by
//! tarn's user only, since it may hold the engine's token.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ComputeError;
use crate::cluster::ClusterSpec;
use crate::node_types::{Host, find_node_type};

/// The Spark distribution tarn builds when `TARN_SPARK_HOME` is unset: the
/// Apache Spark release whose Connect protocol the runtimes' client speaks.
pub const DISTRIBUTION: &str = "pyspark==4.2.0";

/// The custom tag naming a Spark Connect server tarn does not start, only
/// routes the cluster's sessions to: `sc://host:port`.
pub const ENDPOINT_TAG: &str = "tarn_spark_connect_url";

/// The `host:port` of the endpoint `spec` routes to, if it names one.
pub fn endpoint(spec: &ClusterSpec) -> Result<Option<String>, ComputeError> {
    let Some(url) = spec.tag(ENDPOINT_TAG) else { return Ok(None) };
    let invalid = || ComputeError::InvalidSpec(format!("{ENDPOINT_TAG} must be sc://host:port, got {url:?}"));
    let rest = url.strip_prefix("sc://").ok_or_else(invalid)?;
    let authority = rest.split(['/', ';']).next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, port.parse::<u16>().map_err(|_| invalid())?),
        None => (authority, 15002),
    };
    if host.is_empty() || port == 0 || rest[authority.len()..].contains("use_ssl=true") {
        return Err(invalid());
    }
    Ok(Some(format!("{host}:{port}")))
}

/// The server's Spark settings.
#[derive(Debug, Clone, Default)]
pub struct SparkConfig {
    /// `TARN_SPARK_MASTER`; clusters with workers run there, `local[n]` when unset.
    pub master: Option<String>,
    /// `TARN_SPARK_HOME`: an installed Spark; else tarn's [`DISTRIBUTION`].
    pub home: Option<PathBuf>,
}

/// What a cluster's engine needs to catalog through tarn, when it can.
pub struct CatalogAccess<'a> {
    pub api_url: &'a str,
    pub token: &'a str,
    pub catalogs: &'a [String],
}

/// The distribution inside an environment with `pyspark` installed.
pub fn home_in_env(env_dir: &Path) -> Result<PathBuf, ComputeError> {
    let lib = env_dir.join("lib");
    let entries = std::fs::read_dir(&lib).map_err(|e| ComputeError::Engine(format!("{}: {e}", lib.display())))?;
    entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages").join("pyspark"))
        .find(|p| p.join("bin").join("spark-submit").is_file())
        .ok_or_else(|| {
            ComputeError::Engine(format!("no Spark distribution (pyspark/bin/spark-submit) under {}", lib.display()))
        })
}

/// Checks that `home` holds a Spark distribution.
pub fn check_home(home: &Path) -> Result<(), ComputeError> {
    if home.join("bin").join("spark-submit").is_file() {
        Ok(())
    } else {
        Err(ComputeError::Engine(format!("TARN_SPARK_HOME {} has no bin/spark-submit", home.display())))
    }
}

fn has_jar(home: &Path, prefix: &str) -> bool {
    std::fs::read_dir(home.join("jars")).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().starts_with(prefix))
    })
}

/// The master a cluster's driver asks for executors.
pub fn master(spec: &ClusterSpec, config: &SparkConfig, host: Host) -> String {
    if let Some(master) = spec.spark_conf.as_ref().and_then(|c| c.get("spark.master")) {
        return master.clone();
    }
    match &config.master {
        Some(master) if has_workers(spec) => master.clone(),
        _ => format!("local[{}]", spec.parallelism(host).max(1)),
    }
}

/// Whether the cluster has workers (a count or autoscale bounds), rather
/// than being a single node.
fn has_workers(spec: &ClusterSpec) -> bool {
    spec.workers() > 0 || spec.autoscale.is_some()
}

/// The executors the launcher watches, starting from this many, when
/// `props` leave dynamic allocation on (the last value of a key is Spark's).
pub fn watched_executors(props: &[(String, String)]) -> Option<i64> {
    let last = |key: &str| props.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    if last("spark.dynamicAllocation.enabled") != Some("true") {
        return None;
    }
    let initial = last("spark.dynamicAllocation.initialExecutors").or(last("spark.dynamicAllocation.minExecutors"));
    Some(initial.and_then(|n| n.parse().ok()).unwrap_or(0))
}

/// The Spark properties of a cluster's server, in the order they apply.
pub fn properties(
    spec: &ClusterSpec,
    host: Host,
    home: &Path,
    cluster_dir: &Path,
    catalog: &CatalogAccess<'_>,
) -> Vec<(String, String)> {
    let mut props: Vec<(String, String)> = vec![
        ("spark.app.name".into(), format!("tarn {}", spec.name())),
        ("spark.sql.catalogImplementation".into(), "hive".into()),
        ("spark.sql.warehouse.dir".into(), cluster_dir.join("warehouse").display().to_string()),
        (
            "spark.hadoop.javax.jdo.option.ConnectionURL".into(),
            format!("jdbc:derby:;databaseName={};create=true", cluster_dir.join("metastore_db").display()),
        ),
        ("spark.driver.extraJavaOptions".into(), format!("-Dderby.system.home={}", cluster_dir.display())),
    ];
    props.extend(executors(spec, host));
    if has_jar(home, "unitycatalog-spark") {
        props.extend(unity_catalogs(catalog));
    }
    if has_jar(home, "delta-spark") {
        props.push(("spark.sql.extensions".into(), "io.delta.sql.DeltaSparkSessionExtension".into()));
    }
    if let Some(conf) = &spec.spark_conf {
        props.extend(conf.iter().filter(|(k, _)| k.starts_with("spark.")).map(|(k, v)| (k.clone(), v.clone())));
    }
    props
}

/// Executors of the node type's size: `workers` of them, or dynamic
/// allocation between the autoscale bounds; none for a single node.
fn executors(spec: &ClusterSpec, host: Host) -> Vec<(String, String)> {
    if !has_workers(spec) {
        return Vec::new();
    }
    let node = find_node_type(host, spec.node_type_id());
    let cores = node.num_cores.max(1);
    // Three quarters of the node for the executor's heap, the rest for overhead and the OS.
    let memory_mb = (node.memory_mb * 3 / 4).max(512);
    let mut props = vec![
        ("spark.executor.cores".to_string(), cores.to_string()),
        ("spark.executor.memory".to_string(), format!("{memory_mb}m")),
    ];
    match spec.autoscale {
        Some(bounds) => props.extend([
            ("spark.dynamicAllocation.enabled".into(), "true".into()),
            ("spark.dynamicAllocation.shuffleTracking.enabled".into(), "true".into()),
            ("spark.dynamicAllocation.minExecutors".into(), bounds.min_workers.to_string()),
            ("spark.dynamicAllocation.initialExecutors".into(), bounds.min_workers.to_string()),
            ("spark.dynamicAllocation.maxExecutors".into(), bounds.max_workers.to_string()),
            ("spark.dynamicAllocation.executorIdleTimeout".into(), "60s".into()),
            // An executor holding shuffle files would otherwise stay for good.
            ("spark.dynamicAllocation.shuffleTracking.timeout".into(), "120s".into()),
            ("spark.cores.max".into(), (i64::from(cores) * bounds.max_workers).to_string()),
        ]),
        None => props.extend([
            ("spark.executor.instances".into(), spec.workers().to_string()),
            ("spark.cores.max".into(), (i64::from(cores) * spec.workers()).to_string()),
        ]),
    }
    props
}

/// Each of tarn's catalogs through Unity Catalog's Spark connector.
fn unity_catalogs(access: &CatalogAccess<'_>) -> Vec<(String, String)> {
    let mut props = Vec::new();
    for name in access.catalogs.iter().filter(|c| c.as_str() != "system") {
        let key = format!("spark.sql.catalog.{name}");
        props.push((key.clone(), "io.unitycatalog.spark.UCSingleCatalog".into()));
        props.push((format!("{key}.uri"), access.api_url.trim_end_matches('/').to_string()));
        props.push((format!("{key}.token"), access.token.to_string()));
    }
    props.push(("spark.sql.defaultCatalog".into(), "main".into()));
    props
}

/// Writes `props` where only tarn's user can read them (a token may be
/// among them), in the format `spark-submit --properties-file` reads.
pub fn write_properties(path: &Path, props: &[(String, String)]) -> Result<(), ComputeError> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: std::io::Error| ComputeError::Engine(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(failed)?;
    for (key, value) in props {
        writeln!(file, "{}={}", escape(key), escape(value)).map_err(failed)?;
    }
    Ok(())
}

/// Java properties-file escaping of a key or value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '=' | ':' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    if out.starts_with(' ') {
        out.insert(0, '\\');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> ClusterSpec {
        ClusterSpec::from_stored(&value).unwrap()
    }

    const HOST: Host = Host { cores: 4, memory_mb: 8192 };

    fn value<'a>(props: &'a [(String, String)], key: &str) -> Option<&'a str> {
        props.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn single_node_clusters_run_locally_and_workers_go_to_the_master() {
        let config = SparkConfig { master: Some("spark://m:7077".into()), home: None };
        let single = spec(json!({"spark_version": "x", "num_workers": 0, "node_type_id": "local-2c"}));
        assert_eq!(master(&single, &config, HOST), "local[2]");
        let access = CatalogAccess { api_url: "http://a", token: "dapi", catalogs: &[] };
        let props = properties(&single, HOST, Path::new("/nowhere"), Path::new("/w"), &access);
        assert!(!props.iter().any(|(k, _)| k.starts_with("spark.executor.")), "{props:?}");
        let two = spec(json!({"spark_version": "x", "num_workers": 2}));
        assert_eq!(master(&two, &config, HOST), "spark://m:7077");
        assert_eq!(master(&two, &SparkConfig::default(), HOST), "local[8]");
        let pinned =
            spec(json!({"spark_version": "x", "num_workers": 2, "spark_conf": {"spark.master": "local[*, 4]"}}));
        assert_eq!(master(&pinned, &config, HOST), "local[*, 4]");
    }

    #[test]
    fn executors_follow_the_node_type_and_autoscale() {
        let dir = Path::new("/w/c1");
        let access = CatalogAccess { api_url: "http://a", token: "dapi", catalogs: &[] };
        let fixed = spec(json!({"spark_version": "x", "num_workers": 3, "node_type_id": "local-2c"}));
        let props = properties(&fixed, HOST, Path::new("/nowhere"), dir, &access);
        assert_eq!(value(&props, "spark.executor.cores"), Some("2"));
        assert_eq!(value(&props, "spark.executor.memory"), Some("3072m"));
        assert_eq!(value(&props, "spark.executor.instances"), Some("3"));
        assert_eq!(value(&props, "spark.cores.max"), Some("6"));
        assert_eq!(value(&props, "spark.sql.warehouse.dir"), Some("/w/c1/warehouse"));
        assert!(!props.iter().any(|(k, _)| k.starts_with("spark.sql.catalog.")));
        let scaled = spec(json!({"spark_version": "x", "autoscale": {"min_workers": 1, "max_workers": 4},
            "spark_conf": {"spark.sql.shuffle.partitions": "8", "not.spark": "x"}}));
        let props = properties(&scaled, HOST, Path::new("/nowhere"), dir, &access);
        assert_eq!(value(&props, "spark.dynamicAllocation.enabled"), Some("true"));
        assert_eq!(value(&props, "spark.dynamicAllocation.maxExecutors"), Some("4"));
        assert_eq!(value(&props, "spark.sql.shuffle.partitions"), Some("8"));
        assert_eq!(value(&props, "not.spark"), None);
        assert_eq!(watched_executors(&props), Some(1));
        assert_eq!(watched_executors(&properties(&fixed, HOST, Path::new("/nowhere"), dir, &access)), None);
        let off = spec(json!({"spark_version": "x", "autoscale": {"min_workers": 1, "max_workers": 4},
            "spark_conf": {"spark.dynamicAllocation.enabled": "false"}}));
        assert_eq!(watched_executors(&properties(&off, HOST, Path::new("/nowhere"), dir, &access)), None);
    }

    #[test]
    fn the_unity_connector_mounts_tarns_catalogs() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("jars")).unwrap();
        std::fs::write(home.path().join("jars").join("unitycatalog-spark_2.13-0.3.0.jar"), b"").unwrap();
        let catalogs = ["main".to_string(), "system".to_string()];
        let access = CatalogAccess { api_url: "http://127.0.0.1:9/", token: "dapi1", catalogs: &catalogs };
        let props = properties(&spec(json!({"spark_version": "x"})), HOST, home.path(), Path::new("/w"), &access);
        assert_eq!(value(&props, "spark.sql.catalog.main"), Some("io.unitycatalog.spark.UCSingleCatalog"));
        assert_eq!(value(&props, "spark.sql.catalog.main.uri"), Some("http://127.0.0.1:9"));
        assert_eq!(value(&props, "spark.sql.catalog.main.token"), Some("dapi1"));
        assert_eq!(value(&props, "spark.sql.catalog.system"), None);
    }

    #[test]
    fn an_endpoint_is_host_and_port() {
        let tagged = |url: &str| spec(json!({"spark_version": "x", "custom_tags": {ENDPOINT_TAG: url}}));
        assert_eq!(
            endpoint(&tagged("sc://spark.example:15002/;token=x")).unwrap().as_deref(),
            Some("spark.example:15002")
        );
        assert_eq!(endpoint(&tagged("sc://10.0.0.5")).unwrap().as_deref(), Some("10.0.0.5:15002"));
        for bad in ["http://h:1", "sc://:1", "sc://h:x", "sc://h:1/;use_ssl=true"] {
            assert!(matches!(endpoint(&tagged(bad)), Err(ComputeError::InvalidSpec(_))), "{bad}");
        }
        assert_eq!(endpoint(&spec(json!({"spark_version": "x"}))).unwrap(), None);
    }

    #[test]
    fn properties_are_escaped_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spark.properties");
        let props = vec![("spark.a".to_string(), "jdbc:derby:;x=y".to_string())];
        write_properties(&path, &props).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "spark.a=jdbc\\:derby\\:;x\\=y\n");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    }
}
