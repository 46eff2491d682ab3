//! What a deploy uploads: the files under the root (`.gitignore` honoured,
//! through `git ls-files` when the root is in a git work tree), less
//! `sync.exclude`, plus `sync.include`; and the `artifacts:` to build.
//! Also the local git facts a bundle records (branch, commit, origin).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use glob::{MatchOptions, Pattern};

use super::yaml::{Node, error};
use super::{Artifact, Diagnostic};

/// Never uploaded, whatever the patterns say.
const ALWAYS_SKIPPED: [&str; 2] = [".databricks", ".git"];

pub fn files(root: &Path, tree: &Node) -> Result<Vec<PathBuf>, Vec<Diagnostic>> {
    let sync = tree.get("sync");
    let mut errors = Vec::new();
    let include = patterns(sync, "include", &mut errors);
    let exclude = patterns(sync, "exclude", &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let all = walk(root);
    let tracked: BTreeSet<PathBuf> = match git_files(root) {
        Some(files) => files,
        None => {
            let ignore = gitignore(root);
            all.iter().filter(|p| !ignore.iter().any(|pat| matches(pat, p))).cloned().collect()
        }
    };
    let mut chosen: BTreeSet<PathBuf> =
        tracked.into_iter().filter(|p| !exclude.iter().any(|pat| matches(pat, p))).collect();
    chosen.extend(all.into_iter().filter(|p| include.iter().any(|pat| matches(pat, p))));
    Ok(chosen.into_iter().filter(|p| !skipped(p) && root.join(p).is_file()).collect())
}

fn skipped(path: &Path) -> bool {
    path.components().next().is_some_and(|c| ALWAYS_SKIPPED.contains(&c.as_os_str().to_string_lossy().as_ref()))
}

fn patterns(sync: Option<&Node>, key: &str, errors: &mut Vec<Diagnostic>) -> Vec<Pattern> {
    let items = sync.and_then(|s| s.get(key)).map(Node::items).unwrap_or_default();
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let text = item.scalar_text().unwrap_or_default();
        match Pattern::new(text.trim_start_matches("./").trim_end_matches('/')) {
            Ok(p) => out.push(p),
            Err(e) => errors.push(error(
                format!("invalid pattern {text}: {e}"),
                Some(item.loc.clone()),
                &format!("sync.{key}[{i}]"),
            )),
        }
    }
    out
}

/// A path matches a pattern when the pattern matches it or one of the
/// directories it is in; a pattern without `/` also matches any name.
fn matches(pattern: &Pattern, path: &Path) -> bool {
    let options =
        MatchOptions { case_sensitive: true, require_literal_separator: true, require_literal_leading_dot: false };
    let anchored = pattern.as_str().contains('/');
    let mut prefix = PathBuf::new();
    for component in path.components() {
        prefix.push(component);
        let name = Path::new(component.as_os_str());
        if pattern.matches_path_with(&prefix, options) || (!anchored && pattern.matches_path_with(name, options)) {
            return true;
        }
    }
    false
}

/// Every file under the root, relative, `.git` and `.databricks` skipped.
fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else { continue };
        for entry in entries.flatten() {
            let rel = dir.join(entry.file_name());
            if skipped(&rel) {
                continue;
            }
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(rel),
                Ok(t) if t.is_file() => out.push(rel),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The root `.gitignore`'s patterns (negations are not supported).
fn gitignore(root: &Path) -> Vec<Pattern> {
    let text = std::fs::read_to_string(root.join(".gitignore")).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| Pattern::new(l.trim_start_matches('/').trim_end_matches('/')).ok())
        .collect()
}

/// Files git tracks or would track; `None` outside a git work tree.
fn git_files(root: &Path) -> Option<BTreeSet<PathBuf>> {
    let out = git(root, &["ls-files", "--others", "--cached", "--exclude-standard", "-z"])?;
    Some(out.split('\0').filter(|s| !s.is_empty()).map(PathBuf::from).collect())
}

fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git").arg("-C").arg(root).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The checked-out branch of the work tree holding `root`.
pub fn git_branch(root: &Path) -> Option<String> {
    git(root, &["rev-parse", "--abbrev-ref", "HEAD"])
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s != "HEAD")
}

/// `bundle.git` as the CLI records it: branch, commit, origin URL.
pub fn git_info(root: &Path) -> BTreeMap<&'static str, String> {
    let mut info = BTreeMap::new();
    if let Some(branch) = git_branch(root) {
        info.insert("actual_branch", branch);
    }
    if let Some(commit) = git(root, &["rev-parse", "HEAD"]) {
        info.insert("commit", commit.trim().to_string());
    }
    if let Some(url) = git(root, &["config", "--get", "remote.origin.url"]) {
        info.insert("origin_url", url.trim().to_string());
    }
    info
}

/// `artifacts.<name>`: `type`, `path` (relative to the file declaring
/// it), `build` (`uv build --wheel` for a `whl` without one), `files`.
pub fn artifacts(root: &Path, tree: &Node, file_path: &str) -> Result<BTreeMap<String, Artifact>, Vec<Diagnostic>> {
    if tree.get("artifacts").is_none() {
        return Ok(inferred(root, tree, file_path).into_iter().collect());
    }
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, body) in tree.get("artifacts").map(Node::entries).unwrap_or_default() {
        let at = format!("artifacts.{name}");
        let kind = body.get("type").and_then(Node::scalar_text).unwrap_or_else(|| "whl".to_string());
        if kind != "whl" && kind != "jar" {
            errors.push(error(
                format!("artifact type {kind} is not supported (whl, jar)"),
                Some(body.loc.clone()),
                &format!("{at}.type"),
            ));
            continue;
        }
        let base = body.loc.file.parent().map(Path::to_path_buf).unwrap_or_default();
        let dir = body.get("path").and_then(Node::scalar_text).map_or_else(|| base.clone(), |p| base.join(p));
        let build = body
            .get("build")
            .and_then(Node::scalar_text)
            .or_else(|| (kind == "whl").then(|| "uv build --wheel".to_string()));
        let mut files: Vec<String> = body
            .get("files")
            .map(Node::items)
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.get("source").and_then(Node::scalar_text))
            .map(|source| base.join(source).to_string_lossy().into_owned())
            .collect();
        if files.is_empty() && kind == "whl" {
            files.push(dir.join("dist").join("*.whl").to_string_lossy().into_owned());
        }
        let files = files.into_iter().map(|f| f.trim_start_matches("./").to_string()).collect();
        out.insert(name.clone(), Artifact { kind, path: root.join(dir), build, files });
    }
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

/// With no `artifacts:`, a Python project at the root whose wheel a job
/// installs from `dist/` gets the artifact the CLI infers for it.
fn inferred(root: &Path, tree: &Node, file_path: &str) -> Option<(String, Artifact)> {
    let project = ["pyproject.toml", "setup.py"].iter().any(|f| root.join(f).is_file());
    let dist = format!("{file_path}/dist/");
    let jobs = tree.get("resources").and_then(|r| r.get("jobs")).map(Node::entries).unwrap_or_default();
    let wants = jobs.iter().any(|(_, job)| {
        let tasks = job.get("tasks").map(Node::items).unwrap_or_default();
        let libraries = tasks.iter().flat_map(|t| t.get("libraries").map(Node::items).unwrap_or_default());
        let from_tasks = libraries.filter_map(|l| l.get("whl").and_then(Node::as_str)).any(|w| w.starts_with(&dist));
        let envs = job.get("environments").map(Node::items).unwrap_or_default();
        let deps = envs
            .iter()
            .flat_map(|e| e.get("spec").and_then(|s| s.get("dependencies")).map(Node::items).unwrap_or_default());
        from_tasks || deps.filter_map(Node::as_str).any(|d| d.starts_with(&dist))
    });
    let artifact = Artifact {
        kind: "whl".to_string(),
        path: root.to_path_buf(),
        build: Some("uv build --wheel".to_string()),
        files: vec!["dist/*.whl".to_string()],
    };
    (project && wants).then(|| ("python_artifact".to_string(), artifact))
}
