//! Local paths in resources, relative to the YAML file that declares
//! them, turned into paths under `workspace.file_path` (where the sync
//! puts the files). A notebook loses its extension, as the workspace
//! stores notebooks without one; a missing file is an error at the line
//! naming it. Workspace paths (`/Workspace/...`), URLs and references
//! stay as written.

use std::path::{Component, Path, PathBuf};

use super::Diagnostic;
use super::yaml::{Node, error};

#[derive(Clone, Copy, PartialEq)]
enum Want {
    Notebook,
    File,
    Dir,
    /// `glob.include`: the directory before the first wildcard must exist.
    Glob,
    /// A wheel or jar a build may make: translated, not checked.
    Library,
}

struct Ctx<'a> {
    root: &'a Path,
    file_path: &'a str,
    errors: Vec<Diagnostic>,
}

pub fn translate(tree: &mut Node, root: &Path, file_path: &str) -> Result<(), Vec<Diagnostic>> {
    let mut ctx = Ctx { root, file_path, errors: Vec::new() };
    let Some(resources) = tree.get_mut("resources") else { return Ok(()) };
    for (kind, group) in resources.entries_mut() {
        for (key, body) in group.entries_mut() {
            let path = format!("resources.{kind}.{key}");
            match kind.as_str() {
                "jobs" => job(&mut ctx, body, &path),
                "pipelines" => pipeline(&mut ctx, body, &path),
                _ => {}
            }
        }
    }
    if ctx.errors.is_empty() { Ok(()) } else { Err(ctx.errors) }
}

fn job(ctx: &mut Ctx, job: &mut Node, path: &str) {
    let git = job.get("git_source").is_some();
    for (i, task) in job.get_mut("tasks").map(Node::items_mut).unwrap_or_default().iter_mut().enumerate() {
        self::task(ctx, task, git, &format!("{path}.tasks[{i}]"));
    }
    let environments = job.get_mut("environments").map(Node::items_mut).unwrap_or_default();
    for (i, env) in environments.iter_mut().enumerate() {
        let deps = env.get_mut("spec").and_then(|s| s.get_mut("dependencies"));
        for (j, dep) in deps.map(Node::items_mut).unwrap_or_default().iter_mut().enumerate() {
            if dep.as_str().is_some_and(is_local_library) {
                at(ctx, dep, Want::Library, &format!("{path}.environments[{i}].spec.dependencies[{j}]"));
            }
        }
    }
}

fn task(ctx: &mut Ctx, task: &mut Node, job_git: bool, path: &str) {
    // A task's files come from git when its source (or the job's) says so.
    let from_git = |block: Option<&Node>| {
        let source = block.and_then(|b| b.get("source")).and_then(Node::as_str);
        source == Some("GIT") || (job_git && source != Some("WORKSPACE"))
    };
    let fields: [(&str, &[&str], Want); 4] = [
        ("notebook_task", &["notebook_path"], Want::Notebook),
        ("spark_python_task", &["python_file"], Want::File),
        ("sql_task", &["file", "path"], Want::File),
        ("dbt_task", &["project_directory"], Want::Dir),
    ];
    for (block, keys, want) in fields {
        let source_block =
            if block == "sql_task" { task.get(block).and_then(|b| b.get("file")) } else { task.get(block) };
        if from_git(source_block) {
            continue;
        }
        let mut node = task.get_mut(block);
        for key in keys {
            node = node.and_then(|n| n.get_mut(key));
        }
        if let Some(node) = node {
            at(ctx, node, want, &format!("{path}.{block}.{}", keys.join(".")));
        }
    }
    for (i, lib) in task.get_mut("libraries").map(Node::items_mut).unwrap_or_default().iter_mut().enumerate() {
        for kind in ["whl", "jar", "requirements"] {
            if let Some(node) = lib.get_mut(kind).filter(|n| n.as_str().is_some_and(|s| !is_remote(s))) {
                at(ctx, node, Want::Library, &format!("{path}.libraries[{i}].{kind}"));
            }
        }
    }
    if let Some(inner) = task.get_mut("for_each_task").and_then(|f| f.get_mut("task")) {
        self::task(ctx, inner, job_git, &format!("{path}.for_each_task.task"));
    }
}

fn pipeline(ctx: &mut Ctx, pipeline: &mut Node, path: &str) {
    if let Some(node) = pipeline.get_mut("root_path") {
        at(ctx, node, Want::Dir, &format!("{path}.root_path"));
    }
    for (i, lib) in pipeline.get_mut("libraries").map(Node::items_mut).unwrap_or_default().iter_mut().enumerate() {
        for (kind, key, want) in
            [("notebook", "path", Want::Notebook), ("file", "path", Want::File), ("glob", "include", Want::Glob)]
        {
            if let Some(node) = lib.get_mut(kind).and_then(|n| n.get_mut(key)) {
                at(ctx, node, want, &format!("{path}.libraries[{i}].{kind}.{key}"));
            }
        }
    }
}

/// A dependency that names a local file (`./dist/x.whl`), not a package.
fn is_local_library(dep: &str) -> bool {
    !is_remote(dep) && !dep.starts_with('-') && (dep.starts_with('.') || dep.ends_with(".whl") || dep.ends_with(".jar"))
}

/// Workspace paths, volumes, URLs (`dbfs:/`, `s3://`) and references.
fn is_remote(value: &str) -> bool {
    value.starts_with('/') || value.contains("${") || value.split('/').next().is_some_and(|first| first.contains(':'))
}

fn at(ctx: &mut Ctx, node: &mut Node, want: Want, path: &str) {
    let Some(value) = node.as_str().map(str::to_string) else { return };
    if is_remote(&value) {
        return;
    }
    let dir = node.loc.file.parent().map(Path::to_path_buf).unwrap_or_default();
    let Some(rel) = normalize(&dir.join(&value)) else {
        let summary = format!("path {value} is not contained in the bundle root {}", ctx.root.display());
        ctx.errors.push(error(summary, Some(node.loc.clone()), path));
        return;
    };
    match local_target(ctx.root, &rel, want) {
        Ok(remote) => node.kind = super::yaml::Kind::Str(format!("{}/{}", ctx.file_path, slashes(&remote))),
        Err(summary) => ctx.errors.push(error(summary, Some(node.loc.clone()), path)),
    }
}

/// The path below the bundle root the file will have in the workspace
/// (a notebook without its extension).
fn local_target(root: &Path, rel: &Path, want: Want) -> Result<PathBuf, String> {
    let full = root.join(rel);
    let shown = slashes(rel);
    match want {
        Want::Library => Ok(rel.to_path_buf()),
        Want::Dir if full.is_dir() => Ok(rel.to_path_buf()),
        Want::Dir => Err(format!("directory {shown} not found")),
        Want::Glob => {
            let fixed: PathBuf =
                rel.components().take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '['])).collect();
            if root.join(&fixed).exists() {
                Ok(rel.to_path_buf())
            } else {
                Err(format!("directory {} not found", slashes(&fixed)))
            }
        }
        Want::Notebook | Want::File => {
            let Some(found) = existing(&full) else {
                let what = if want == Want::Notebook { "notebook" } else { "file" };
                return Err(format!("{what} {shown} not found"));
            };
            let found_rel = found.strip_prefix(root).map(Path::to_path_buf).unwrap_or_else(|_| rel.to_path_buf());
            match (is_notebook(&found), want) {
                (true, _) => Ok(found_rel.with_extension("")),
                (false, Want::File) => Ok(found_rel),
                (false, _) => Err(format!(
                    "expected a notebook but {shown} is a plain file (a notebook's first line is \"# Databricks notebook source\")"
                )),
            }
        }
    }
}

/// The file itself, or (for a name without extension) the notebook with
/// one of the notebook extensions.
fn existing(full: &Path) -> Option<PathBuf> {
    if full.is_file() {
        return Some(full.to_path_buf());
    }
    if full.extension().is_some() {
        return None;
    }
    ["py", "sql", "scala", "r", "ipynb"]
        .iter()
        .map(|ext| full.with_extension(ext))
        .find(|candidate| candidate.is_file() && is_notebook(candidate))
}

/// A notebook in source format: `.ipynb`, or a source file whose first
/// line is the language's `Databricks notebook source` header.
pub fn is_notebook(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| is_notebook_source(path, &bytes))
}

/// [`is_notebook`] of a file's name and bytes: what the workspace makes a
/// notebook of when the file is imported (and stores without its
/// extension).
pub fn is_notebook_source(path: &Path, bytes: &[u8]) -> bool {
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let header = match ext.as_str() {
        "ipynb" => return true,
        "py" | "r" => "# Databricks notebook source",
        "sql" => "-- Databricks notebook source",
        "scala" => "// Databricks notebook source",
        _ => return false,
    };
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(first).trim_end() == header
}

/// `a/./b/../c` as `a/c`; `None` when it climbs out of the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn slashes(path: &Path) -> String {
    path.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}
