//! The `profiles.yml` a `dbt_task` with a `warehouse_id` gets, as Databricks
//! generates it: the project's profile with one target,
//! `databricks_cluster`, on the warehouse's `http_path`, tarn's host and
//! port, the task's catalog and schema (`default` when none is given).
//! The token is not written: the profile reads it from
//! `DBT_ACCESS_TOKEN`, which the run sets to its principal's short-lived
//! token. The connector is told tarn's port and, when tarn serves HTTPS
//! (the only protocol the connector speaks), the certificate to trust.

use std::path::PathBuf;

/// The target Databricks names in the profiles it generates.
pub const TARGET: &str = "databricks_cluster";

/// Where dbt reaches tarn's warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    /// The certificate tarn serves HTTPS with, for the connector to trust;
    /// `None` when tarn serves plain HTTP.
    pub tls_ca_file: Option<PathBuf>,
}

/// What the profile names.
#[derive(Debug, Clone)]
pub struct ProfileSpec<'a> {
    /// The `profile:` of the project's `dbt_project.yml`.
    pub profile: &'a str,
    pub endpoint: &'a Endpoint,
    pub warehouse_id: &'a str,
    pub catalog: Option<&'a str>,
    pub schema: Option<&'a str>,
}

/// A YAML double-quoted scalar: JSON's string escapes are YAML's.
fn quoted(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The text of `profiles.yml`.
pub fn profiles_yml(spec: &ProfileSpec<'_>) -> String {
    let endpoint = spec.endpoint;
    let mut out = format!(
        "{profile}:\n  target: {TARGET}\n  outputs:\n    {TARGET}:\n      type: databricks\n      \
         host: {host}\n      http_path: {http_path}\n      token: \"{{{{ env_var('DBT_ACCESS_TOKEN') }}}}\"\n",
        profile = quoted(spec.profile),
        host = quoted(&endpoint.host),
        http_path = quoted(&format!("/sql/1.0/warehouses/{}", spec.warehouse_id)),
    );
    if let Some(catalog) = spec.catalog {
        out.push_str(&format!("      catalog: {}\n", quoted(catalog)));
    }
    out.push_str(&format!("      schema: {}\n      threads: 1\n", quoted(spec.schema.unwrap_or("default"))));
    out.push_str(&format!("      connection_parameters:\n        _port: {}\n", endpoint.port));
    if let Some(ca) = &endpoint.tls_ca_file {
        out.push_str(&format!("        _tls_trusted_ca_file: {}\n", quoted(&ca.to_string_lossy())));
    }
    out
}

/// The `profile:` a `dbt_project.yml` names (a top-level key; dbt's own
/// default, `default`, when there is none).
pub fn project_profile(dbt_project_yml: &str) -> String {
    dbt_project_yml
        .lines()
        .find_map(|line| line.strip_prefix("profile:"))
        .map(|value| {
            let value = value.split(" #").next().unwrap_or_default().trim();
            value.trim_matches(|c| c == '"' || c == '\'').to_string()
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_names_the_warehouse_and_reads_the_token_from_the_environment() {
        let endpoint = Endpoint { host: "127.0.0.1".into(), port: 8443, tls_ca_file: Some("/h/tls/cert.pem".into()) };
        let spec = ProfileSpec {
            profile: "shop",
            endpoint: &endpoint,
            warehouse_id: "abc",
            catalog: Some("main"),
            schema: Some("sales"),
        };
        assert_eq!(
            profiles_yml(&spec),
            "\"shop\":\n  target: databricks_cluster\n  outputs:\n    databricks_cluster:\n      type: databricks\n      \
             host: \"127.0.0.1\"\n      http_path: \"/sql/1.0/warehouses/abc\"\n      \
             token: \"{{ env_var('DBT_ACCESS_TOKEN') }}\"\n      catalog: \"main\"\n      schema: \"sales\"\n      \
             threads: 1\n      connection_parameters:\n        _port: 8443\n        \
             _tls_trusted_ca_file: \"/h/tls/cert.pem\"\n"
        );
        let plain = Endpoint { tls_ca_file: None, ..endpoint.clone() };
        let text = profiles_yml(&ProfileSpec { catalog: None, schema: None, endpoint: &plain, ..spec });
        assert!(text.contains("schema: \"default\"") && !text.contains("catalog"));
        assert!(text.contains("_port: 8443") && !text.contains("_tls_trusted_ca_file"));
    }

    #[test]
    fn the_project_names_its_profile() {
        assert_eq!(project_profile("name: shop\nprofile: 'shop_profile'  # ours\nversion: 1\n"), "shop_profile");
        assert_eq!(project_profile("name: shop\nprofile: \"p\"\n"), "p");
        assert_eq!(project_profile("name: shop\n  profile: nested\n"), "default");
    }
}
