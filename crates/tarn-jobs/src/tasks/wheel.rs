//! `python_wheel_task`: the package (installed from the task's libraries or
//! environment, wheels on volumes or in the workspace included) is run by
//! its entry point: the `console_scripts`-style entry point of that name in
//! the package's metadata, else `package.entry_point()`. `parameters` (or
//! `named_parameters` as `--name=value`) are `sys.argv[1:]`.

use std::path::PathBuf;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tarn_compute::context::Language;

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
    let result = context.run(Language::Python, code, Some(format!("<wheel {package}>"))).await;
    result.into_outcome(context.cluster_id())
}

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())
}

impl Engines {
    /// A dependency as the installer takes it: a wheel on a volume, DBFS or
    /// in the workspace is copied (once, by content) to a local file.
    pub(super) fn local_dependency(&self, dependency: &str) -> Result<String, String> {
        let remote = dependency.starts_with("/Volumes/")
            || dependency.starts_with("dbfs:")
            || dependency.starts_with("/Workspace/")
            || dependency.starts_with("/Users/");
        if !(remote && dependency.ends_with(".whl")) {
            return Ok(dependency.to_string());
        }
        let name = dependency.rsplit('/').next().unwrap_or("package.whl");
        let bytes = super::python::read_bytes(self, dependency)?;
        let digest = hex(&Sha256::digest(&bytes)[..8]);
        let dir: PathBuf = self.wheel_dir.join(digest);
        let path = dir.join(name);
        if !path.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(path.to_string_lossy().into_owned())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
