//! `run_as` as jobs, pipelines and bundles write it: `{"user_name": …}` or
//! `{"service_principal_name": …}`, exactly one.

use serde_json::Value;

/// The principal the `run_as` field of `settings` names: `Ok(None)` when
/// there is no `run_as`, an error when it names none or both.
pub fn named(settings: &Value) -> Result<Option<&str>, &'static str> {
    let Some(run_as) = settings.get("run_as").filter(|r| !r.is_null()) else { return Ok(None) };
    let names: Vec<&str> = ["user_name", "service_principal_name"]
        .iter()
        .filter_map(|k| run_as.get(*k).and_then(Value::as_str).filter(|n| !n.is_empty()))
        .collect();
    match names.as_slice() {
        [name] => Ok(Some(name)),
        _ => Err("run_as names exactly one of user_name or service_principal_name"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::named;

    #[test]
    fn run_as_names_exactly_one_principal() {
        assert_eq!(named(&json!({})), Ok(None));
        assert_eq!(named(&json!({"run_as": {"user_name": "ann"}})), Ok(Some("ann")));
        assert_eq!(named(&json!({"run_as": {"service_principal_name": "app-1"}})), Ok(Some("app-1")));
        assert!(named(&json!({"run_as": {}})).is_err());
        assert!(named(&json!({"run_as": {"user_name": "ann", "service_principal_name": "app-1"}})).is_err());
    }
}
