//! `tarn.toml`: the settings file beside the environment variables.
//!
//! Each key names a `TARN_*` variable without its prefix, in lower case
//! (`database_url` is `TARN_DATABASE_URL`); a table prefixes its keys
//! (`[spark] master` is `TARN_SPARK_MASTER`). A variable set in the
//! environment wins over the file. The file is `$TARN_HOME/tarn.toml`, or
//! the one `TARN_CONFIG` names.

use std::path::{Path, PathBuf};

/// The settings a file may hold: every operator-facing `TARN_*` variable.
const SETTINGS: &[&str] = &[
    "command_timeout_seconds",
    "cost_per_core_hour",
    "database_readers",
    "database_url",
    "default_backend",
    "env_dir",
    "git_token",
    "git_username",
    "inference_flush_ms",
    "job_parallel_tasks",
    "job_reuse_workers",
    "ml_deep_learning",
    "mlflow_anonymous",
    "python",
    "replica",
    "sail_k8s_driver_host",
    "sail_k8s_image",
    "sail_k8s_kubeconfig",
    "sail_k8s_namespace",
    "sail_k8s_service_account",
    "secret_key",
    "serverless_idle_seconds",
    "serverless_memory_mb",
    "serving_idle_seconds",
    "serving_load_timeout_seconds",
    "serving_request_timeout_seconds",
    "smtp_from",
    "smtp_host",
    "smtp_password",
    "smtp_port",
    "smtp_username",
    "spark_home",
    "spark_master",
    "storage_root",
    "tls",
    "tls_cert",
    "tls_key",
    "uv",
    "vault_token",
    "warm_workers",
];

/// Where the settings file is for `home`.
pub fn path(home: &Path) -> PathBuf {
    std::env::var_os("TARN_CONFIG")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join("tarn.toml"))
}

/// The file's settings as `(TARN_NAME, value)`, none when there is no file.
/// An unknown key or a value that is not a string, number or boolean is an
/// error naming it (never its value, which may be a password).
pub fn read(path: &Path) -> Result<Vec<(String, String)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| format!("{}: not TOML ({})", path.display(), e.message()))?;
    let mut out = Vec::new();
    flatten("", &table, &mut out).map_err(|key| format!("{}: unknown setting `{key}`", path.display()))?;
    Ok(out)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) -> Result<(), String> {
    for (key, value) in table {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}_{key}") };
        let text = match value {
            toml::Value::Table(inner) => {
                flatten(&name, inner, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            _ => return Err(name),
        };
        if !SETTINGS.contains(&name.as_str()) {
            return Err(name);
        }
        out.push((format!("TARN_{}", name.to_uppercase()), text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_tables_name_variables_and_unknown_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("tarn-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("tarn.toml");
        std::fs::write(
            &file,
            "database_url = \"postgres://u:p@h/db\"\nwarm_workers = 2\n[spark]\nmaster = \"spark://m:7077\"\n",
        )
        .unwrap();
        let mut got = read(&file).unwrap();
        got.sort();
        assert_eq!(
            got,
            [
                ("TARN_DATABASE_URL".to_string(), "postgres://u:p@h/db".to_string()),
                ("TARN_SPARK_MASTER".into(), "spark://m:7077".into()),
                ("TARN_WARM_WORKERS".into(), "2".into()),
            ]
        );
        std::fs::write(&file, "databse_url = \"postgres://u:secret@h/db\"\n").unwrap();
        let err = read(&file).unwrap_err();
        assert!(err.contains("unknown setting `databse_url`") && !err.contains("secret"), "{err}");
        assert!(read(&dir.join("absent.toml")).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
