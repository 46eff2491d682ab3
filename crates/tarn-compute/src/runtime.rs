//! Runtimes: what a cluster's `spark_version` means here. Each Databricks
//! Runtime key tarn lists maps to a Python environment whose libraries follow
//! that runtime's "Installed Python libraries" table (`runtimes/*.txt`,
//! embedded), plus the engine tarn runs in place of Databricks' Spark.
//!
//! ML keys (`-cpu-ml-`) add the ML runtime's libraries; their deep-learning
//! frameworks (torch, tensorflow, ...) are a separate list that
//! [`RuntimeOptions::deep_learning`] leaves out (CI does, to stay within its
//! time). GPU keys are refused: this backend has no GPU support.

use std::collections::BTreeMap;

/// The engine and the Spark Connect client every runtime carries: Sail runs
/// a cluster's Spark work (its Python UDFs in this same environment), and
/// PySpark's Spark Connect client is what `spark` is in a notebook.
pub const ENGINE: &[&str] = &["pysail==0.7.2", "pyspark-client==4.2.0"];

/// The runtime managed clusters (the SQL warehouse, serverless compute) use,
/// and the one `tarn env sync` builds when no key is named.
pub const DEFAULT_KEY: &str = "16.4.x-scala2.12";

/// One Databricks Runtime release tarn mirrors.
struct Release {
    /// The key's version part, `16.4` in `16.4.x-scala2.12`.
    version: &'static str,
    name: &'static str,
    /// Python on Databricks for this release (tarn uses the host's).
    python: &'static str,
    standard: &'static str,
    ml: &'static str,
    deep_learning: &'static str,
}

const RELEASES: &[Release] = &[Release {
    version: "16.4",
    name: "16.4 LTS",
    python: "3.12.3",
    standard: include_str!("../runtimes/16.4.txt"),
    ml: include_str!("../runtimes/16.4-ml.txt"),
    deep_learning: include_str!("../runtimes/16.4-ml-deep-learning.txt"),
}];

const SCALA: &[&str] = &["2.12", "2.13"];

/// Choices about what runtimes hold on this host.
#[derive(Debug, Clone, Copy)]
pub struct RuntimeOptions {
    /// Whether ML runtimes include their deep-learning frameworks
    /// (`TARN_ML_DEEP_LEARNING`, default true).
    pub deep_learning: bool,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self { deep_learning: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("Invalid spark version {0}.")]
    Unknown(String),
    #[error(
        "Spark version {0} is a GPU runtime; this tarn host runs CPU runtimes only \
         (use the matching -cpu-ml- key)."
    )]
    Gpu(String),
}

/// A runtime as a cluster asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runtime {
    /// The key as given (`16.4.x-cpu-ml-scala2.12`).
    pub key: String,
    pub ml: bool,
    release: &'static Release,
}

impl std::fmt::Debug for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.version)
    }
}

impl PartialEq for Release {
    fn eq(&self, other: &Self) -> bool {
        self.version == other.version
    }
}

impl Eq for Release {}

impl Runtime {
    /// The runtime a `spark_version` names, or why it names none.
    pub fn resolve(key: &str) -> Result<Self, RuntimeError> {
        let unknown = || RuntimeError::Unknown(key.to_string());
        let (version, rest) = key.split_once(".x-").ok_or_else(unknown)?;
        let release = RELEASES.iter().find(|r| r.version == version).ok_or_else(unknown)?;
        let (flavour, scala) = match rest.rsplit_once("scala") {
            Some((flavour, scala)) => (flavour, scala),
            None => return Err(unknown()),
        };
        if !SCALA.contains(&scala) {
            return Err(unknown());
        }
        let ml = match flavour {
            "" => false,
            "cpu-ml-" => true,
            "gpu-ml-" => return Err(RuntimeError::Gpu(key.to_string())),
            _ => return Err(unknown()),
        };
        Ok(Self { key: key.to_string(), ml, release })
    }

    /// The name `clusters/spark-versions` shows.
    pub fn name(&self) -> String {
        let scala = self.key.rsplit_once("scala").map_or("", |(_, s)| s);
        let ml = if self.ml { " ML" } else { "" };
        format!(
            "{}{ml} (includes Apache Spark 4 API via Sail 0.7.2, Scala {scala}; Python libraries of Databricks Runtime {}{ml})",
            self.release.name, self.release.name
        )
    }

    /// The Python version Databricks runs this release on.
    pub fn databricks_python(&self) -> &'static str {
        self.release.python
    }

    /// Requirements of the runtime's environment: the release's table, the
    /// ML additions for ML keys (a later list's pin wins), then [`ENGINE`].
    /// Two keys that differ only in Scala share one environment.
    pub fn requirements(&self, options: RuntimeOptions) -> Vec<String> {
        let mut lists = vec![self.release.standard];
        if self.ml {
            lists.push(self.release.ml);
            if options.deep_learning {
                lists.push(self.release.deep_learning);
            }
        }
        let mut by_name = BTreeMap::new();
        for line in lists.into_iter().flat_map(str::lines).chain(ENGINE.iter().copied()) {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            by_name.insert(package_name(line), line.to_string());
        }
        by_name.into_values().collect()
    }
}

/// A requirement's project name, normalized as PyPI does (PEP 503).
pub fn package_name(requirement: &str) -> String {
    let end =
        requirement.find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c))).unwrap_or(requirement.len());
    let mut name = String::with_capacity(end);
    for c in requirement[..end].chars() {
        match c {
            '-' | '_' | '.' if name.ends_with('-') => {}
            '-' | '_' | '.' => name.push('-'),
            c => name.push(c.to_ascii_lowercase()),
        }
    }
    name
}

/// Every key `clusters/spark-versions` lists, with its name: each release
/// standard and ML, in both Scala versions (clients select by suffix; the
/// SDK's `select_spark_version` defaults to 2.12). Newest first.
pub fn listed() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for release in RELEASES {
        for flavour in ["", "cpu-ml-"] {
            for scala in SCALA {
                let key = format!("{}.x-{flavour}scala{scala}", release.version);
                if let Ok(runtime) = Runtime::resolve(&key) {
                    out.push((key, runtime.name()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_resolve_to_their_release_and_flavour() {
        let std = Runtime::resolve("16.4.x-scala2.13").unwrap();
        assert!(!std.ml);
        let ml = Runtime::resolve("16.4.x-cpu-ml-scala2.12").unwrap();
        assert!(ml.ml && ml.name().contains("16.4 LTS ML"));
        for bad in ["15.3.x-scala2.12", "16.4.x-scala2.11", "16.4", "x", "16.4.x-photon-scala2.12", ""] {
            assert_eq!(Runtime::resolve(bad), Err(RuntimeError::Unknown(bad.into())), "{bad}");
        }
        assert!(matches!(Runtime::resolve("16.4.x-gpu-ml-scala2.12"), Err(RuntimeError::Gpu(_))));
    }

    #[test]
    fn ml_requirements_add_to_the_standard_ones_and_the_engine_comes_last() {
        let options = RuntimeOptions { deep_learning: false };
        let std = Runtime::resolve("16.4.x-scala2.12").unwrap().requirements(options);
        let ml = Runtime::resolve("16.4.x-cpu-ml-scala2.13").unwrap().requirements(options);
        let names = |reqs: &[String]| reqs.iter().map(|r| package_name(r)).collect::<Vec<_>>();
        assert!(names(&std).contains(&"scikit-learn".to_string()));
        assert!(names(&ml).contains(&"xgboost".to_string()) && !names(&std).contains(&"xgboost".to_string()));
        assert!(ml.len() > std.len());
        for reqs in [&std, &ml] {
            assert!(reqs.contains(&"pyspark-client==4.2.0".to_string()) && reqs.contains(&"pysail==0.7.2".to_string()));
            let mut seen = names(reqs);
            seen.dedup();
            assert_eq!(seen.len(), reqs.len(), "one pin per package");
        }
        let with_dl = Runtime::resolve("16.4.x-cpu-ml-scala2.12").unwrap().requirements(RuntimeOptions::default());
        assert!(with_dl.len() > ml.len());
        assert_eq!(Runtime::resolve("16.4.x-scala2.13").unwrap().requirements(options), std, "Scala does not matter");
    }

    #[test]
    fn package_names_are_normalized() {
        assert_eq!(package_name("Scikit_Learn==1.4.2"), "scikit-learn");
        assert_eq!(package_name("ruamel.yaml>=0.17"), "ruamel-yaml");
        assert_eq!(package_name("pyspark-client"), "pyspark-client");
    }

    #[test]
    fn listed_keys_all_resolve() {
        let keys = listed();
        assert_eq!(keys.len(), 4);
        assert!(keys.iter().any(|(k, _)| k == DEFAULT_KEY));
        assert!(keys.iter().all(|(k, n)| Runtime::resolve(k).is_ok() && n.contains("LTS")));
    }
}
