//! `spark_python_task`: a Python file from the workspace, a volume or DBFS
//! run as a script in the task's context, its parameters as `sys.argv`
//! (`SparkSession.builder.getOrCreate()` there returns the task's session).

use serde_json::Value;
use tarn_compute::context::Language;
use tarn_files::Format;

use super::context::TaskContext;
use super::{Attempt, Engines, Outcome};

pub(super) async fn run(engines: &Engines, attempt: &Attempt, spec: &Value) -> Outcome {
    let given = spec.get("python_file").and_then(Value::as_str).unwrap_or_default();
    // A file from a job's git_source is read from the run's checkout,
    // and runs under its local path there.
    let read_code = match crate::git::task_checkout(attempt, spec) {
        Ok(Some(checkout)) => checkout.resolve(given).and_then(|local| {
            let code = checkout.read(given)?;
            let code = String::from_utf8(code).map_err(|_| format!("{given} is not UTF-8 text"))?;
            Ok((local.to_string_lossy().into_owned(), code))
        }),
        Ok(None) => read(engines, &attempt.user, given).map(|code| (given.to_string(), code)),
        Err(e) => Err(e),
    };
    let (file, code) = match read_code {
        Ok(read) => read,
        Err(e) => return Outcome::failed(e),
    };
    let file = file.as_str();
    let mut argv = vec![file.to_string()];
    if let Some(Value::Array(parameters)) = spec.get("parameters") {
        argv.extend(parameters.iter().map(|p| p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string())));
    }
    let mut context = match TaskContext::open(engines, attempt, Some(argv)).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e),
    };
    let result = context.run_last(Language::Python, code, Some(file.to_string())).await;
    result.into_outcome(context.cluster_id())
}

/// A file's text from a volume, DBFS or the workspace.
pub(super) fn read(engines: &Engines, user: &str, path: &str) -> Result<String, String> {
    String::from_utf8(read_bytes(engines, user, path)?).map_err(|_| format!("{path} is not UTF-8 text"))
}

/// A file's bytes, if the run's principal may read it.
pub(super) fn read_bytes(engines: &Engines, user: &str, path: &str) -> Result<Vec<u8>, String> {
    engines.may_read(user, path)?;
    if path.starts_with("/Volumes/") || path.starts_with("dbfs:") {
        return engines.files.dbfs().read_all(path).map_err(|e| format!("{path}: {e}"));
    }
    Ok(engines.files.workspace().export(path, Format::Raw).map_err(|e| format!("{path}: {e}"))?.content)
}
