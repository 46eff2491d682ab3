//! `python_wheel_task`: the package (installed from the task's libraries or
//! environment, wheels on volumes or in the workspace included) is run by
//! its entry point: the `console_scripts`-style entry point of that name in
//! the package's metadata, else `package.entry_point()`. `parameters` (or
//! `named_parameters` as `--name=value`) are `sys.argv[1:]`.

use serde_json::Value;
use tarn_compute::context::Language;
use tarn_compute::libraries::is_remote_path;

use super::context::TaskContext;
use super::{Attempt, Engines, Outcome};

pub(super) async fn run(engines: &Engines, attempt: &Attempt, spec: &Value) -> Outcome {
    let package = spec.get("package_name").and_then(Value::as_str).unwrap_or_default();
    let entry = spec.get("entry_point").and_then(Value::as_str).unwrap_or_default();
    if package.is_empty() || entry.is_empty() {
        return Outcome::failed("python_wheel_task needs package_name and entry_point");
    }
    let mut argv = vec![package.to_string()];
    match (spec.get("named_parameters").and_then(Value::as_object), spec.get("parameters").and_then(Value::as_array)) {
        (Some(named), _) => argv.extend(named.iter().map(|(k, v)| format!("--{k}={}", text(v)))),
        (None, Some(params)) => argv.extend(params.iter().map(text)),
        (None, None) => {}
    }
    let mut context = match TaskContext::open(engines, attempt, Some(argv)).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed(e),
    };
    let code = format!(
        "import importlib, importlib.metadata\n\
         _eps = [e for e in importlib.metadata.distribution({package:?}).entry_points if e.name == {entry:?}]\n\
         _main = _eps[0].load() if _eps else getattr(importlib.import_module({module:?}), {entry:?})\n\
         _main()\n",
        module = package.replace('-', "_"),
    );
    let result = context.run_last(Language::Python, code, Some(format!("<wheel {package}>"))).await;
    result.into_outcome(context.cluster_id())
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

impl Engines {
    /// A dependency as the installer takes it: a wheel on a volume, DBFS or
    /// in the workspace is copied (once, by content) to a local file.
    pub(super) fn local_dependency(&self, dependency: &str) -> Result<String, String> {
        if is_remote_path(dependency) && dependency.ends_with(".whl") {
            return self.library_files.local_copy(dependency);
        }
        Ok(dependency.to_string())
    }
}
