//! The bundle loader against bundle directories written to a temp dir.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::Path;

use serde_json::{Value, json};
use tarn_bundle::config::{Bundle, CurrentUser, Diagnostic, LoadOptions, Lookup, Mode, load};

struct Workspace;

/// Our own trait answered from a table: the deployer answers it from a workspace.
impl Lookup for Workspace {
    fn resolve(&self, kind: &str, name: &str) -> Result<String, String> {
        match (kind, name) {
            ("cluster", "shared") => Ok("0101-shared".to_string()),
            ("warehouse", "small") => Ok("wh-123".to_string()),
            _ => Err(format!("{kind} named {name} does not exist")),
        }
    }
}

fn user() -> CurrentUser {
    CurrentUser { user_name: "alice@example.com".to_string(), short_name: "alice".to_string() }
}

fn write(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir =
        tempfile::Builder::new().prefix("tarn-bundle-config").tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir: {e}"));
        }
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
    }
    dir
}

fn options(target: Option<&str>, vars: &[(&str, &str)]) -> LoadOptions {
    LoadOptions {
        target: target.map(str::to_string),
        vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn ok(root: &Path, target: Option<&str>, vars: &[(&str, &str)]) -> Bundle {
    match load(root, &options(target, vars), &user(), &Workspace) {
        Ok(bundle) => bundle,
        Err(diags) => panic!("load failed: {}", show(&diags)),
    }
}

fn err(root: &Path, target: Option<&str>, vars: &[(&str, &str)]) -> Vec<Diagnostic> {
    match load(root, &options(target, vars), &user(), &Workspace) {
        Ok(bundle) => panic!("load succeeded: {}", bundle.config),
        Err(diags) => diags,
    }
}

fn show(diags: &[Diagnostic]) -> String {
    diags.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

fn job(bundle: &Bundle, key: &str) -> Value {
    resource(bundle, "jobs", key)
}

fn resource(bundle: &Bundle, kind: &str, key: &str) -> Value {
    bundle.resources.get(kind).and_then(|g| g.get(key)).map(|r| r.value.clone()).unwrap_or(Value::Null)
}

const NOTEBOOK: &str = "# Databricks notebook source\nprint(1)\n";
const HOME: &str = "/Workspace/Users/alice@example.com";

#[test]
fn plain_bundle_paths_and_sync() {
    let dir = write(&[
        (
            "databricks.yml",
            "bundle:\n  name: demo\nresources:\n  jobs:\n    etl:\n      name: etl\n      tasks:\n        - task_key: nb\n          notebook_task:\n            notebook_path: ./src/nb.py\n        - task_key: py\n          spark_python_task:\n            python_file: src/main.py\n        - task_key: ws\n          notebook_task:\n            notebook_path: /Workspace/Shared/x\n",
        ),
        ("src/nb.py", NOTEBOOK),
        ("src/main.py", "print(2)\n"),
        (".gitignore", "*.log\nbuild/\n"),
        ("debug.log", "x"),
        ("build/out.txt", "x"),
        (".databricks/bundle/state.json", "{}"),
    ]);
    let bundle = ok(dir.path(), None, &[]);
    let root = format!("{HOME}/.bundle/demo/default");
    assert_eq!(bundle.target, "default");
    assert_eq!(bundle.root_path, root);
    assert_eq!(bundle.file_path, format!("{root}/files"));
    assert_eq!(bundle.artifact_path, format!("{root}/artifacts"));
    assert_eq!(bundle.state_path, format!("{root}/state"));
    assert!(bundle.lock_enabled);
    let tasks = &job(&bundle, "etl")["tasks"];
    assert_eq!(tasks[0]["notebook_task"]["notebook_path"], json!(format!("{root}/files/src/nb")));
    assert_eq!(tasks[1]["spark_python_task"]["python_file"], json!(format!("{root}/files/src/main.py")));
    assert_eq!(tasks[2]["notebook_task"]["notebook_path"], json!("/Workspace/Shared/x"));
    let files: Vec<String> = bundle.sync_files.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    assert_eq!(files, [".gitignore", "databricks.yml", "src/main.py", "src/nb.py"]);
    assert_eq!(bundle.config["workspace"]["file_path"], json!(format!("{root}/files")));
    assert_eq!(bundle.config["bundle"]["target"], json!("default"));
    let location = &bundle.resources["jobs"]["etl"].location;
    assert_eq!((location.file.to_string_lossy().as_ref(), location.line), ("databricks.yml", 6));
}

#[test]
fn includes_are_merged_and_paths_are_relative_to_their_file() {
    let dir = write(&[
        ("databricks.yml", "bundle:\n  name: demo\ninclude:\n  - resources/*.yml\n"),
        (
            "resources/a.yml",
            "resources:\n  jobs:\n    a:\n      name: a\n      tasks:\n        - task_key: t\n          notebook_task:\n            notebook_path: ../src/nb.py\n",
        ),
        (
            "resources/b.yml",
            "resources:\n  pipelines:\n    p:\n      name: p\n      libraries:\n        - notebook:\n            path: ../src/nb.py\n",
        ),
        ("src/nb.py", NOTEBOOK),
    ]);
    let bundle = ok(dir.path(), None, &[]);
    let files = format!("{HOME}/.bundle/demo/default/files");
    assert_eq!(job(&bundle, "a")["tasks"][0]["notebook_task"]["notebook_path"], json!(format!("{files}/src/nb")));
    assert_eq!(
        resource(&bundle, "pipelines", "p")["libraries"][0]["notebook"]["path"],
        json!(format!("{files}/src/nb"))
    );
    assert_eq!(bundle.resources["jobs"]["a"].location.file, Path::new("resources/a.yml"));
}

#[test]
fn a_resource_defined_in_two_files_is_an_error_naming_both() {
    let dir = write(&[
        (
            "databricks.yml",
            "bundle:\n  name: demo\ninclude:\n  - resources/*.yml\nresources:\n  jobs:\n    a:\n      name: one\n",
        ),
        ("resources/a.yml", "resources:\n  jobs:\n    a:\n      name: two\n"),
    ]);
    let diags = err(dir.path(), None, &[]);
    let text = show(&diags);
    assert!(text.contains("resources.jobs.a is defined in both databricks.yml:8:7 and resources/a.yml:4:7"), "{text}");
}

#[test]
fn variables_precedence_default_target_env_cli() {
    let dir = write(&[(
        "databricks.yml",
        "bundle:\n  name: demo\nvariables:\n  a:\n    default: from-default\n  b:\n    default: from-default\n  pc:\n    default: from-default\n  pd:\n    default: from-default\n  e:\n    description: no default\nresources:\n  jobs:\n    j:\n      name: ${var.a}-${var.b}-${var.pc}-${var.pd}-${var.e}\ntargets:\n  dev:\n    variables:\n      b: from-target\n      pc: from-target\n      pd: from-target\n      e: from-target\n",
    )]);
    // SAFETY: std's own lock orders environment reads and writes, and no
    // other test reads this variable.
    unsafe {
        std::env::set_var("BUNDLE_VAR_pc", "from-env");
        std::env::set_var("BUNDLE_VAR_pd", "from-env");
    }
    let bundle = ok(dir.path(), None, &[("pd", "from-cli")]);
    assert_eq!(job(&bundle, "j")["name"], json!("from-default-from-target-from-env-from-cli-from-target"));
    assert_eq!(bundle.config["variables"]["a"]["value"], json!("from-default"));
    assert_eq!(bundle.config["variables"]["e"]["description"], json!("no default"));
}

#[test]
fn a_variable_without_a_value_is_an_error_naming_it() {
    let dir =
        write(&[("databricks.yml", "bundle:\n  name: demo\nvariables:\n  warehouse:\n    description: which one\n")]);
    let diags = err(dir.path(), None, &[]);
    assert_eq!(diags.len(), 1);
    assert!(diags[0].summary.contains("no value assigned to required variable warehouse"), "{}", diags[0]);
    assert_eq!(diags[0].location.as_ref().map(|l| l.line), Some(5));
}

#[test]
fn complex_variable_substitutes_structure_and_fields() {
    let dir = write(&[(
        "databricks.yml",
        "bundle:\n  name: demo\nvariables:\n  cluster:\n    type: complex\n    default:\n      spark_version: 15.4.x-scala2.12\n      num_workers: 2\nresources:\n  jobs:\n    j:\n      name: v${var.cluster.spark_version}\n      job_clusters:\n        - job_cluster_key: main\n          new_cluster: ${var.cluster}\n",
    )]);
    let bundle = ok(dir.path(), None, &[]);
    let j = job(&bundle, "j");
    assert_eq!(j["name"], json!("v15.4.x-scala2.12"));
    assert_eq!(j["job_clusters"][0]["new_cluster"], json!({"spark_version": "15.4.x-scala2.12", "num_workers": 2}));
}

#[test]
fn lookup_variables_resolve_through_the_trait() {
    let dir = write(&[(
        "databricks.yml",
        "bundle:\n  name: demo\nvariables:\n  cluster_id:\n    lookup:\n      cluster: shared\n  wh:\n    default: none\ntargets:\n  t:\n    variables:\n      wh:\n        lookup:\n          warehouse: small\nresources:\n  jobs:\n    j:\n      name: ${var.wh}\n      tasks:\n        - task_key: a\n          existing_cluster_id: ${var.cluster_id}\n",
    )]);
    let bundle = ok(dir.path(), None, &[]);
    let j = job(&bundle, "j");
    assert_eq!(j["tasks"][0]["existing_cluster_id"], json!("0101-shared"));
    assert_eq!(j["name"], json!("wh-123"));

    let dir =
        write(&[("databricks.yml", "bundle:\n  name: demo\nvariables:\n  c:\n    lookup:\n      cluster: nope\n")]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(text.contains("failed to resolve cluster: nope"), "{text}");
    assert!(text.contains("in databricks.yml:6:16"), "{text}");
}

#[test]
fn unknown_variable_reference_names_file_line_column_and_key() {
    let dir = write(&[(
        "databricks.yml",
        "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: x\n      tasks:\n        - task_key: a\n          description: \"uses ${var.nope}\"\n",
    )]);
    let diags = err(dir.path(), None, &[]);
    assert_eq!(diags.len(), 1);
    assert_eq!(
        diags[0].to_string(),
        "Error: reference does not exist: ${var.nope}\n  at resources.jobs.j.tasks[0].description\n  in databricks.yml:9:24"
    );
}

#[test]
fn resource_references_stay_for_the_deployer() {
    let yml = "bundle:\n  name: demo\nresources:\n  jobs:\n    a:\n      name: a\n    b:\n      name: b\n      tasks:\n        - task_key: t\n          run_job_task:\n            job_id: ${resources.jobs.a.id}\n";
    let dir = write(&[("databricks.yml", yml)]);
    let bundle = ok(dir.path(), None, &[]);
    assert_eq!(job(&bundle, "b")["tasks"][0]["run_job_task"]["job_id"], json!("${resources.jobs.a.id}"));
    let dir = write(&[("databricks.yml", &yml.replace("jobs.a.id", "jobs.zz.id"))]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(text.contains("reference does not exist: ${resources.jobs.zz.id}"), "{text}");
}

#[test]
fn unknown_and_unsupported_resource_types_have_locations() {
    let dir = write(&[(
        "databricks.yml",
        "bundle:\n  name: demo\nresources:\n  jbos:\n    a:\n      name: a\n  apps:\n    b:\n      name: b\n",
    )]);
    let diags = err(dir.path(), None, &[]);
    let text = show(&diags);
    assert!(
        text.contains("Error: unknown resource type: jbos\n  at resources.jbos\n  in databricks.yml:5:5"),
        "{text}"
    );
    assert!(
        text.contains(
            "Error: resource type apps is not supported by tarn\n  at resources.apps\n  in databricks.yml:8:5"
        ),
        "{text}"
    );
}

#[test]
fn unknown_top_level_key_is_an_error_and_python_a_warning() {
    let dir = write(&[("databricks.yml", "bundle:\n  name: demo\nresource:\n  jobs: {}\n")]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(text.contains("unknown field: resource"), "{text}");
    let dir = write(&[("databricks.yml", "bundle:\n  name: demo\npython:\n  venv_path: .venv\n")]);
    let bundle = ok(dir.path(), None, &[]);
    assert_eq!(bundle.warnings.len(), 1);
    assert!(bundle.warnings[0].to_string().starts_with("Warning: tarn ignores python"));
}

#[test]
fn a_task_referencing_a_missing_notebook_is_an_error_at_its_line() {
    let dir = write(&[(
        "databricks.yml",
        "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: j\n      tasks:\n        - task_key: a\n          notebook_task:\n            notebook_path: ./src/missing.py\n",
    )]);
    let diags = err(dir.path(), None, &[]);
    assert_eq!(
        diags[0].to_string(),
        "Error: notebook src/missing.py not found\n  at resources.jobs.j.tasks[0].notebook_task.notebook_path\n  in databricks.yml:10:28"
    );
}

#[test]
fn notebooks_are_detected_by_their_header() {
    let dir = write(&[
        (
            "databricks.yml",
            "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: j\n      tasks:\n        - task_key: sql\n          notebook_task:\n            notebook_path: src/q.sql\n        - task_key: ipynb\n          notebook_task:\n            notebook_path: src/n.ipynb\n        - task_key: bare\n          notebook_task:\n            notebook_path: src/nb\n",
        ),
        ("src/q.sql", "-- Databricks notebook source\nselect 1\n"),
        ("src/n.ipynb", "{}"),
        ("src/nb.py", NOTEBOOK),
        ("src/plain.py", "print(1)\n"),
    ]);
    let bundle = ok(dir.path(), None, &[]);
    let files = format!("{HOME}/.bundle/demo/default/files");
    let tasks = &job(&bundle, "j")["tasks"];
    for (i, name) in ["q", "n", "nb"].iter().enumerate() {
        assert_eq!(tasks[i]["notebook_task"]["notebook_path"], json!(format!("{files}/src/{name}")));
    }
    let yml = "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: j\n      tasks:\n        - task_key: a\n          notebook_task:\n            notebook_path: src/plain.py\n";
    std::fs::write(dir.path().join("databricks.yml"), yml).unwrap_or_else(|e| panic!("{e}"));
    let text = show(&err(dir.path(), None, &[]));
    assert!(text.contains("expected a notebook but src/plain.py is a plain file"), "{text}");
}

const MODES: &str = "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: nightly\n      schedule:\n        quartz_cron_expression: 0 0 1 * * ?\n        timezone_id: UTC\n      tasks:\n        - task_key: a\n          notebook_task:\n            notebook_path: nb.py\n  pipelines:\n    p:\n      name: dlt\n  schemas:\n    s:\n      name: sales\n      catalog_name: main\n  experiments:\n    e:\n      name: /Users/alice@example.com/exp\n";

#[test]
fn development_mode_prefixes_tags_pauses_and_unlocks() {
    let dir = write(&[
        (
            "databricks.yml",
            &format!(
                "{MODES}targets:\n  dev:\n    mode: development\n    default: true\n  prod:\n    mode: production\n"
            ),
        ),
        ("nb.py", NOTEBOOK),
    ]);
    let bundle = ok(dir.path(), None, &[]);
    assert_eq!(bundle.target, "dev");
    assert_eq!(bundle.mode, Some(Mode::Development));
    assert!(!bundle.lock_enabled);
    let j = job(&bundle, "j");
    assert_eq!(j["name"], json!("[dev alice] nightly"));
    assert_eq!(j["tags"], json!({"dev": "alice"}));
    assert_eq!(j["max_concurrent_runs"], json!(4));
    assert_eq!(j["schedule"]["pause_status"], json!("PAUSED"));
    let p = resource(&bundle, "pipelines", "p");
    assert_eq!((p["name"].clone(), p["development"].clone()), (json!("[dev alice] dlt"), json!(true)));
    assert_eq!(resource(&bundle, "schemas", "s")["name"], json!("dev_alice_sales"));
    assert_eq!(resource(&bundle, "experiments", "e")["name"], json!("/Users/alice@example.com/[dev alice] exp"));
    assert_eq!(bundle.config["bundle"]["mode"], json!("development"));
}

#[test]
fn presets_apply_without_a_mode() {
    let yml = format!(
        "{MODES}presets:\n  name_prefix: \"[ci] \"\n  trigger_pause_status: UNPAUSED\n  jobs_max_concurrent_runs: 2\n  tags:\n    team: data\n"
    );
    let dir = write(&[("databricks.yml", &yml), ("nb.py", NOTEBOOK)]);
    let bundle = ok(dir.path(), None, &[]);
    let j = job(&bundle, "j");
    assert_eq!(j["name"], json!("[ci] nightly"));
    assert_eq!(j["tags"], json!({"team": "data"}));
    assert_eq!(j["max_concurrent_runs"], json!(2));
    assert_eq!(j["schedule"]["pause_status"], json!("UNPAUSED"));
    assert_eq!(resource(&bundle, "schemas", "s")["name"], json!("ci_sales"));
    assert!(bundle.lock_enabled);
}

#[test]
fn production_mode_refuses_dev_pipelines_compute_overrides_and_a_shared_default_root() {
    let yml = format!(
        "{}targets:\n  prod:\n    mode: production\n    compute_id: 0101-abc\n",
        MODES.replace("name: dlt\n", "name: dlt\n      development: true\n")
    );
    let dir = write(&[("databricks.yml", &yml), ("nb.py", NOTEBOOK)]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(text.contains("overriding compute for a target that uses 'mode: production' is not allowed"), "{text}");
    assert!(text.contains("cannot include a pipeline with 'development: true'\n  at resources.pipelines.p.development\n  in databricks.yml:17:20"), "{text}");
    assert!(text.contains("must set 'workspace.root_path'"), "{text}");

    let yml = format!(
        "{MODES}targets:\n  prod:\n    mode: production\n    workspace:\n      root_path: /Workspace/Shared/.bundle/${{bundle.name}}\n    permissions:\n      - level: CAN_MANAGE\n        group_name: admins\n"
    );
    let dir = write(&[("databricks.yml", &yml), ("nb.py", NOTEBOOK)]);
    let bundle = ok(dir.path(), None, &[]);
    assert_eq!(bundle.root_path, "/Workspace/Shared/.bundle/demo");
    assert_eq!(bundle.state_path, "/Workspace/Shared/.bundle/demo/state");
    assert_eq!(resource(&bundle, "pipelines", "p")["development"], Value::Null);
    assert_eq!(job(&bundle, "j")["name"], json!("nightly"));
    assert_eq!(bundle.permissions, vec![json!({"permission_level": "CAN_MANAGE", "group_name": "admins"})]);
    assert_eq!(job(&bundle, "j")["permissions"], json!([{"permission_level": "CAN_MANAGE", "group_name": "admins"}]));
}

#[test]
fn target_resources_merge_tasks_by_task_key_and_compute_id_overrides() {
    let yml = "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: j\n      tasks:\n        - task_key: a\n          notebook_task:\n            notebook_path: nb.py\n          new_cluster:\n            num_workers: 1\n        - task_key: b\n          notebook_task:\n            notebook_path: nb.py\ntargets:\n  dev:\n    default: true\n    resources:\n      jobs:\n        j:\n          tasks:\n            - task_key: a\n              timeout_seconds: 60\n            - task_key: c\n              notebook_task:\n                notebook_path: nb.py\n  other:\n    compute_id: 0101-abc\n";
    let dir = write(&[("databricks.yml", yml), ("nb.py", NOTEBOOK)]);
    let bundle = ok(dir.path(), None, &[]);
    let tasks = job(&bundle, "j")["tasks"].clone();
    let keys: Vec<&str> = tasks.as_array().into_iter().flatten().filter_map(|t| t["task_key"].as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert_eq!(tasks[0]["timeout_seconds"], json!(60));
    assert_eq!(tasks[0]["new_cluster"], json!({"num_workers": 1}));

    let bundle = ok(dir.path(), Some("other"), &[]);
    let tasks = job(&bundle, "j")["tasks"].clone();
    assert_eq!(tasks[0]["existing_cluster_id"], json!("0101-abc"));
    assert_eq!(tasks[0]["new_cluster"], Value::Null);

    let text = show(&err(dir.path(), Some("staging"), &[]));
    assert!(text.contains("staging: no such target. Available targets: dev, other"), "{text}");
}

#[test]
fn no_default_among_several_targets_asks_for_one() {
    let dir = write(&[("databricks.yml", "bundle:\n  name: demo\ntargets:\n  a: {}\n  b: {}\n")]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(text.contains("please specify target (-t). Available targets: a, b"), "{text}");
}

#[test]
fn run_as_goes_onto_jobs_and_pipelines() {
    let yml = "bundle:\n  name: demo\nrun_as:\n  service_principal_name: sp-1\npermissions:\n  - level: CAN_VIEW\n    user_name: bob@example.com\nresources:\n  jobs:\n    j:\n      name: j\n  pipelines:\n    p:\n      name: p\n  experiments:\n    e:\n      name: /Users/alice@example.com/e\n";
    let dir = write(&[("databricks.yml", yml)]);
    let bundle = ok(dir.path(), None, &[]);
    assert_eq!(bundle.run_as, Some(json!({"service_principal_name": "sp-1"})));
    assert_eq!(job(&bundle, "j")["run_as"], json!({"service_principal_name": "sp-1"}));
    assert_eq!(resource(&bundle, "pipelines", "p")["run_as"], json!({"service_principal_name": "sp-1"}));
    assert_eq!(
        resource(&bundle, "experiments", "e")["permissions"],
        json!([{"permission_level": "CAN_READ", "user_name": "bob@example.com"}])
    );
}

#[test]
fn artifacts_and_sync_patterns() {
    let yml = "bundle:\n  name: demo\nartifacts:\n  wheel:\n    type: whl\n    path: ./pkg\nsync:\n  exclude:\n    - scratch/**\n  include:\n    - debug.log\n";
    let dir = write(&[
        ("databricks.yml", yml),
        ("pkg/pyproject.toml", "[project]\nname='x'\n"),
        ("scratch/a.txt", "x"),
        ("debug.log", "x"),
        (".gitignore", "*.log\n"),
    ]);
    let bundle = ok(dir.path(), None, &[]);
    let wheel = &bundle.artifacts["wheel"];
    assert_eq!(wheel.kind, "whl");
    assert_eq!(wheel.path, dir.path().join("pkg"));
    assert_eq!(wheel.build.as_deref(), Some("uv build --wheel"));
    assert_eq!(wheel.files, ["pkg/dist/*.whl"]);
    let files: Vec<String> = bundle.sync_files.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    assert_eq!(files, [".gitignore", "databricks.yml", "debug.log", "pkg/pyproject.toml"]);
}

#[test]
fn find_root_searches_upward() {
    let dir = write(&[("databricks.yml", "bundle:\n  name: demo\n"), ("src/deep/x.py", "")]);
    let found = tarn_bundle::config::find_root(&dir.path().join("src/deep"));
    assert_eq!(found.as_deref(), Some(dir.path()));
}

#[test]
fn root_path_with_tilde_and_variables_naming_workspace_paths() {
    let yml = "bundle:\n  name: demo\nvariables:\n  conf:\n    default: ${workspace.file_path}/conf.json\nworkspace:\n  root_path: ~/apps/${workspace.current_user.short_name}/${bundle.target}\nresources:\n  jobs:\n    j:\n      name: ${var.conf}\n";
    let dir = write(&[("databricks.yml", yml)]);
    let bundle = ok(dir.path(), None, &[]);
    assert_eq!(bundle.root_path, format!("{HOME}/apps/alice/default"));
    assert_eq!(job(&bundle, "j")["name"], json!(format!("{HOME}/apps/alice/default/files/conf.json")));
    assert_eq!(bundle.config["workspace"]["current_user"]["userName"], json!("alice@example.com"));
}

#[test]
fn local_wheels_are_translated_and_their_artifact_inferred() {
    let yml = "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: j\n      tasks:\n        - task_key: a\n          python_wheel_task:\n            package_name: demo\n            entry_point: main\n          libraries:\n            - whl: ./dist/*.whl\n            - pypi:\n                package: requests\n      environments:\n        - environment_key: default\n          spec:\n            dependencies:\n              - ./dist/demo-0.1-py3-none-any.whl\n              - pandas==2.2\n";
    let dir = write(&[("databricks.yml", yml), ("pyproject.toml", "[project]\nname='demo'\n")]);
    let bundle = ok(dir.path(), None, &[]);
    let files = format!("{HOME}/.bundle/demo/default/files");
    let j = job(&bundle, "j");
    assert_eq!(j["tasks"][0]["libraries"][0]["whl"], json!(format!("{files}/dist/*.whl")));
    let deps = &j["environments"][0]["spec"]["dependencies"];
    assert_eq!(deps, &json!([format!("{files}/dist/demo-0.1-py3-none-any.whl"), "pandas==2.2"]));
    let inferred = &bundle.artifacts["python_artifact"];
    assert_eq!((inferred.kind.as_str(), inferred.files.clone()), ("whl", vec!["dist/*.whl".to_string()]));
}

#[test]
fn an_include_matching_nothing_is_an_error() {
    let dir = write(&[("databricks.yml", "bundle:\n  name: demo\ninclude:\n  - jobs/*.yml\n")]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(
        text.contains(
            "jobs/*.yml defined in 'include' section does not match any files\n  at include\n  in databricks.yml:4:5"
        ),
        "{text}"
    );
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git").arg("-C").arg(dir).args(args).status().unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn git_work_trees_sync_what_git_would_track_and_production_checks_the_branch() {
    let yml = "bundle:\n  name: demo\ntargets:\n  prod:\n    mode: production\n    git:\n      branch: release\n    workspace:\n      root_path: /Workspace/Shared/demo\n";
    let dir = write(&[
        ("databricks.yml", yml),
        (".gitignore", "out/\n"),
        ("src/a.py", "print(1)\n"),
        ("out/x.txt", "x"),
        ("new.txt", "untracked but not ignored"),
    ]);
    git(dir.path(), &["init", "-q", "-b", "main"]);
    git(dir.path(), &["add", "databricks.yml", ".gitignore", "src/a.py"]);
    git(dir.path(), &["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(
        text.contains("not on the right Git branch:\n  expected according to configuration: release\n  actual: main"),
        "{text}"
    );
    assert!(text.contains("in databricks.yml:7:15"), "{text}");

    std::fs::write(dir.path().join("databricks.yml"), yml.replace("release", "main")).unwrap();
    let bundle = ok(dir.path(), None, &[]);
    let files: Vec<String> = bundle.sync_files.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    assert_eq!(files, [".gitignore", "databricks.yml", "new.txt", "src/a.py"]);
    assert_eq!(bundle.config["bundle"]["git"]["branch"], json!("main"));
    assert_eq!(bundle.config["bundle"]["git"]["commit"].as_str().map(str::len), Some(40));
    assert_eq!(bundle.warnings.len(), 1, "{}", show(&bundle.warnings));
}

#[test]
fn top_level_permissions_and_run_as_are_checked() {
    let yml = "bundle:\n  name: demo\nrun_as:\n  user_name: a@example.com\n  service_principal_name: sp\npermissions:\n  - level: CAN_EAT\n    user_name: bob@example.com\n";
    let dir = write(&[("databricks.yml", yml)]);
    let text = show(&err(dir.path(), None, &[]));
    assert!(text.contains("permission level \"CAN_EAT\" is not one of CAN_MANAGE, CAN_VIEW, CAN_RUN\n  at permissions[0].level\n  in databricks.yml:7:5"), "{text}");
    assert!(
        text.contains(
            "run_as names exactly one of user_name, service_principal_name\n  at run_as\n  in databricks.yml:4:3"
        ),
        "{text}"
    );
}

#[test]
fn numbers_where_the_api_takes_strings_become_strings() {
    let yml = "bundle:\n  name: demo\nresources:\n  jobs:\n    j:\n      name: j\n      max_concurrent_runs: 2\n      tags:\n        cost_center: 1234\n      parameters:\n        - name: n\n          default: 5\n      environments:\n        - environment_key: e\n          spec:\n            client: 1\n";
    let dir = write(&[("databricks.yml", yml)]);
    let j = job(&ok(dir.path(), None, &[]), "j");
    assert_eq!(j["max_concurrent_runs"], json!(2));
    assert_eq!(j["tags"], json!({"cost_center": "1234"}));
    assert_eq!(j["parameters"], json!([{"name": "n", "default": "5"}]));
    assert_eq!(j["environments"][0]["spec"]["client"], json!("1"));
}

#[test]
fn the_bundle_name_may_come_from_a_variable() {
    let yml = "bundle:\n  name: ${var.project}-${bundle.target}\nvariables:\n  project:\n    default: sales\ntargets:\n  qa: {}\n";
    let dir = write(&[("databricks.yml", yml)]);
    let bundle = ok(dir.path(), None, &[]);
    assert_eq!(bundle.name, "sales-qa");
    assert_eq!(bundle.root_path, format!("{HOME}/.bundle/sales-qa/qa"));
    assert_eq!(bundle.config["bundle"]["name"], json!("sales-qa"));
}

/// A bundle shaped like the CLI's `default-python` template.
#[test]
fn a_template_shaped_bundle_loads_for_dev_and_prod() {
    let main = "bundle:\n  name: my_project\n  uuid: 1234\ninclude:\n  - resources/*.yml\n  - resources/*/*.yml\nvariables:\n  catalog:\n    description: The catalog to use\n  schema:\n    description: The schema to use\nartifacts:\n  python_artifact:\n    type: whl\n    build: uv build --wheel\ntargets:\n  dev:\n    mode: development\n    default: true\n    workspace:\n      host: http://127.0.0.1:8080\n    variables:\n      catalog: main\n      schema: ${workspace.current_user.short_name}\n  prod:\n    mode: production\n    workspace:\n      host: http://127.0.0.1:8080\n      root_path: /Workspace/Users/alice@example.com/.bundle/${bundle.name}/${bundle.target}\n    variables:\n      catalog: main\n      schema: prod\n    permissions:\n      - user_name: alice@example.com\n        level: CAN_MANAGE\n";
    let job = "resources:\n  jobs:\n    my_project_job:\n      name: my_project_job\n      trigger:\n        periodic:\n          interval: 1\n          unit: DAYS\n      email_notifications:\n        on_failure:\n          - ${workspace.current_user.userName}\n      parameters:\n        - name: catalog\n          default: ${var.catalog}\n        - name: schema\n          default: ${var.schema}\n      tasks:\n        - task_key: notebook_task\n          notebook_task:\n            notebook_path: ../src/notebook.ipynb\n        - task_key: refresh_pipeline\n          depends_on:\n            - task_key: notebook_task\n          pipeline_task:\n            pipeline_id: ${resources.pipelines.my_project_etl.id}\n        - task_key: main_task\n          depends_on:\n            - task_key: refresh_pipeline\n          environment_key: default\n          python_wheel_task:\n            package_name: my_project\n            entry_point: main\n      environments:\n        - environment_key: default\n          spec:\n            client: \"2\"\n            dependencies:\n              - ../dist/*.whl\n";
    let pipeline = "resources:\n  pipelines:\n    my_project_etl:\n      name: my_project_etl\n      catalog: ${var.catalog}\n      schema: ${var.schema}\n      serverless: true\n      root_path: \"../../src/my_project_etl\"\n      libraries:\n        - glob:\n            include: ../../src/my_project_etl/transformations/**\n";
    let dir = write(&[
        ("databricks.yml", main),
        ("resources/my_project.job.yml", job),
        ("resources/my_project_etl/my_project_etl.pipeline.yml", pipeline),
        ("src/notebook.ipynb", "{\"cells\": []}"),
        ("src/my_project_etl/transformations/t.py", "import dlt\n"),
        ("pyproject.toml", "[project]\nname = 'my_project'\n"),
    ]);
    let dev = ok(dir.path(), None, &[]);
    let files = format!("{HOME}/.bundle/my_project/dev/files");
    let j = job_value(&dev);
    assert_eq!(j["name"], json!("[dev alice] my_project_job"));
    assert_eq!(j["trigger"]["pause_status"], json!("PAUSED"));
    assert_eq!(j["email_notifications"]["on_failure"], json!(["alice@example.com"]));
    assert_eq!(j["parameters"][1], json!({"name": "schema", "default": "alice"}));
    assert_eq!(j["tasks"][0]["notebook_task"]["notebook_path"], json!(format!("{files}/src/notebook")));
    assert_eq!(j["tasks"][1]["pipeline_task"]["pipeline_id"], json!("${resources.pipelines.my_project_etl.id}"));
    assert_eq!(j["environments"][0]["spec"]["dependencies"], json!([format!("{files}/dist/*.whl")]));
    let p = resource(&dev, "pipelines", "my_project_etl");
    assert_eq!(p["root_path"], json!(format!("{files}/src/my_project_etl")));
    assert_eq!(p["libraries"][0]["glob"]["include"], json!(format!("{files}/src/my_project_etl/transformations/**")));
    assert_eq!((p["development"].clone(), p["schema"].clone()), (json!(true), json!("alice")));
    assert_eq!(dev.artifacts["python_artifact"].files, ["dist/*.whl"]);
    assert_eq!(dev.config["workspace"]["host"], json!("http://127.0.0.1:8080"));

    let prod = ok(dir.path(), Some("prod"), &[]);
    let j = job_value(&prod);
    assert_eq!(j["name"], json!("my_project_job"));
    assert_eq!(j["trigger"]["pause_status"], Value::Null);
    assert_eq!(j["permissions"], json!([{"user_name": "alice@example.com", "permission_level": "CAN_MANAGE"}]));
    assert!(prod.lock_enabled);
    assert!(prod.warnings.is_empty(), "{}", show(&prod.warnings));
}

fn job_value(bundle: &Bundle) -> Value {
    job(bundle, "my_project_job")
}
