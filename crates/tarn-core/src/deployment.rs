//! `deployment` and `edit_mode` as jobs and pipelines carry them: which
//! deployment manages the object (`{"kind": "BUNDLE", "metadata_file_path":
//! …}` for a bundle) and whether its UI is locked. tarn stores and echoes
//! them; the API still edits a locked object, as Databricks' does.

use serde_json::Value;

/// Deployment kinds a job may name.
pub const JOB_KINDS: &[&str] = &["BUNDLE", "SYSTEM_MANAGED"];
/// Deployment kinds a pipeline may name.
pub const PIPELINE_KINDS: &[&str] = &["BUNDLE"];
const EDIT_MODES: &[&str] = &["UI_LOCKED", "EDITABLE"];

/// Checks the `deployment` (of one of `kinds`) and `edit_mode` fields of
/// `settings`, if present.
pub fn check(settings: &Value, kinds: &[&str]) -> Result<(), String> {
    if let Some(deployment) = settings.get("deployment").filter(|d| !d.is_null()) {
        let kind = deployment.get("kind").and_then(Value::as_str);
        match kind {
            Some(kind) if kinds.contains(&kind) => {}
            Some(kind) => return Err(format!("deployment.kind must be one of {}, got {kind}", kinds.join(", "))),
            None => return Err("deployment.kind is required when deployment is set".into()),
        }
        match deployment.get("metadata_file_path") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => return Err("deployment.metadata_file_path must be a string".into()),
        }
    }
    match settings.get("edit_mode") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(mode)) if EDIT_MODES.contains(&mode.as_str()) => Ok(()),
        Some(other) => Err(format!("edit_mode must be one of {}, got {other}", EDIT_MODES.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{JOB_KINDS, PIPELINE_KINDS, check};

    #[test]
    fn deployment_and_edit_mode_are_checked() {
        let bundle = json!({"deployment": {"kind": "BUNDLE", "metadata_file_path": "/x/state/metadata.json"},
                            "edit_mode": "UI_LOCKED"});
        assert_eq!(check(&bundle, JOB_KINDS), Ok(()));
        assert_eq!(check(&json!({}), PIPELINE_KINDS), Ok(()));
        assert!(check(&json!({"deployment": {"kind": "SYSTEM_MANAGED"}}), PIPELINE_KINDS).is_err());
        assert!(check(&json!({"deployment": {}}), JOB_KINDS).is_err());
        assert!(check(&json!({"edit_mode": "LOCKED"}), JOB_KINDS).is_err());
    }
}
