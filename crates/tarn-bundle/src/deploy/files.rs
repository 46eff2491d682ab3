//! The bundle's local files in the workspace: the sync set under
//! `<file_path>`, and artifacts (wheels) built locally and uploaded under
//! `<artifact_path>/.internal`, with the tasks that name them rewritten.
//! Only what changed is uploaded, and what a file held before is kept for
//! the rollback of a deploy that fails later.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tarn_assist::Client;

use super::DeployError;
use super::rollback::{Journal, Undo};
use super::state::{SyncedFile, delete_path, read_file, read_file_as, write_file};
use crate::Bundle;
use crate::config::{Artifact, is_notebook_source};

/// What the workspace holds at a synced file's path, in the form the file
/// was uploaded in: a notebook from an `.ipynb` reads back as Jupyter, so
/// a rollback can upload it again as one.
async fn read_synced(client: &Client, target: &str, file: &SyncedFile) -> Result<Option<Vec<u8>>, DeployError> {
    let jupyter = file.is_notebook && file.local_path.to_ascii_lowercase().ends_with(".ipynb");
    let read = if jupyter { read_file_as(client, target, "JUPYTER").await } else { read_file(client, target).await };
    read.map_err(DeployError::api(&format!("reading {target}")))
}

fn slash(path: &Path) -> String {
    path.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// The workspace path a synced file lands on.
fn remote(file_path: &str, file: &SyncedFile) -> String {
    let rel = match file.is_notebook {
        true => file.local_path.rsplit_once('.').map(|(stem, _)| stem).unwrap_or(&file.local_path),
        false => &file.local_path,
    };
    format!("{file_path}/{rel}")
}

/// The sync set, read before anything is written: each file's bytes.
pub fn read_sync_set(bundle: &Bundle) -> Result<Vec<(SyncedFile, Vec<u8>)>, DeployError> {
    let mut out = Vec::new();
    for rel in &bundle.sync_files {
        let bytes = std::fs::read(bundle.root.join(rel))
            .map_err(|e| DeployError::Local(format!("reading {}: {e}", rel.display())))?;
        let file = SyncedFile { local_path: slash(rel), is_notebook: is_notebook_source(rel, &bytes) };
        out.push((file, bytes));
    }
    Ok(out)
}

/// Uploads the files of the sync set whose content differs from the
/// workspace's and deletes what the last deployment synced that is gone
/// now, keeping in `journal` what each overwritten or deleted file held;
/// how many files were uploaded and deleted.
pub async fn sync(
    client: &Client,
    file_path: &str,
    files: &[(SyncedFile, Vec<u8>)],
    previous: &[SyncedFile],
    journal: &mut Journal,
) -> Result<(usize, usize), DeployError> {
    let mut uploaded = 0;
    for (file, bytes) in files {
        let target = remote(file_path, file);
        let before = read_synced(client, &target, file).await?;
        if before.as_deref() == Some(bytes.as_slice()) {
            continue;
        }
        // Sent with its extension: the workspace strips a notebook's.
        let path = format!("{file_path}/{}", file.local_path);
        journal.push(match before {
            Some(bytes) => Undo::File { upload_path: upload_path(file_path, previous, &target, &path), bytes },
            None => Undo::NewFile { path: target },
        });
        write_file(client, &path, bytes.clone(), true).await.map_err(DeployError::api(&format!("uploading {path}")))?;
        uploaded += 1;
    }
    let mut deleted = 0;
    let kept = |old: &SyncedFile| files.iter().any(|(f, _)| remote(file_path, f) == remote(file_path, old));
    for old in previous.iter().filter(|old| !kept(old)) {
        let path = remote(file_path, old);
        let Some(bytes) = read_synced(client, &path, old).await? else { continue };
        journal.push(Undo::File { upload_path: format!("{file_path}/{}", old.local_path), bytes });
        delete_path(client, &path, false).await.map_err(DeployError::api(&format!("deleting {path}")))?;
        deleted += 1;
    }
    Ok((uploaded, deleted))
}

/// Where the previous content of `target` is uploaded back: the path the
/// last deployment synced it from (a notebook's extension may differ),
/// else this deploy's.
fn upload_path(file_path: &str, previous: &[SyncedFile], target: &str, current: &str) -> String {
    match previous.iter().find(|old| remote(file_path, old) == target) {
        Some(old) => format!("{file_path}/{}", old.local_path),
        None => current.to_string(),
    }
}

/// Builds each artifact (its `build` command, else `uv build --wheel`)
/// and lists the files it left.
pub fn build(bundle: &Bundle) -> Result<Vec<PathBuf>, DeployError> {
    let mut built = Vec::new();
    for (name, artifact) in &bundle.artifacts {
        let command = artifact.build.clone().unwrap_or_else(|| "uv build --wheel".to_string());
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .current_dir(&artifact.path)
            .stdout(std::process::Stdio::null())
            .status()
            .map_err(|e| DeployError::Local(format!("artifact {name}: running `{command}`: {e}")))?;
        if !status.success() {
            return Err(DeployError::Local(format!("artifact {name}: `{command}` failed ({status})")));
        }
        let found = outputs(bundle, artifact)?;
        if found.is_empty() {
            return Err(DeployError::Local(format!("artifact {name}: `{command}` left no files")));
        }
        built.extend(found);
    }
    Ok(built)
}

/// Files matching the artifact's globs (`dist/*.whl` under its path when
/// it names none). A `*` may stand only in the file name.
fn outputs(bundle: &Bundle, artifact: &Artifact) -> Result<Vec<PathBuf>, DeployError> {
    let patterns: Vec<PathBuf> = match artifact.files.is_empty() {
        true => vec![artifact.path.join("dist/*.whl")],
        false => artifact.files.iter().map(|f| bundle.root.join(f)).collect(),
    };
    let mut out = Vec::new();
    for pattern in patterns {
        let dir = pattern.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = pattern.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let entries = std::fs::read_dir(&dir).map_err(|e| DeployError::Local(format!("{}: {e}", dir.display())))?;
        for entry in entries.flatten() {
            if wildcard(name, &entry.file_name().to_string_lossy()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// `*` matches any run of characters.
fn wildcard(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            name.starts_with(head) && (0..=name.len() - head.len()).any(|i| wildcard(rest, &name[head.len() + i..]))
        }
    }
}

/// Uploads built files to `<artifact_path>/.internal/<file>` (those the
/// workspace holds with other bytes or not at all), keeping in `journal`
/// what each held before; their workspace paths.
pub async fn upload_artifacts(
    client: &Client,
    artifact_path: &str,
    built: &[PathBuf],
    journal: &mut Journal,
) -> Result<Vec<String>, DeployError> {
    let mut out = Vec::new();
    for file in built {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("artifact");
        let bytes = std::fs::read(file).map_err(|e| DeployError::Local(format!("reading {}: {e}", file.display())))?;
        let path = format!("{artifact_path}/.internal/{name}");
        let before = read_file(client, &path).await.map_err(DeployError::api(&format!("reading {path}")))?;
        if before.as_deref() != Some(bytes.as_slice()) {
            journal.push(match before {
                Some(bytes) => Undo::File { upload_path: path.clone(), bytes },
                None => Undo::NewFile { path: path.clone() },
            });
            write_file(client, &path, bytes, true).await.map_err(DeployError::api(&format!("uploading {path}")))?;
        }
        out.push(path);
    }
    Ok(out)
}

/// Points local wheel references (`libraries[].whl`, an environment's
/// `dependencies`; the loader has turned them into paths under
/// `file_path`) at the uploaded copies, matched by file name.
pub fn rewrite_wheels(value: &mut Value, file_path: &str, uploaded: &[String]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match (key.as_str(), v) {
                    ("whl", Value::String(s)) => replace_wheel(s, file_path, uploaded),
                    ("dependencies", Value::Array(items)) => {
                        for item in items.iter_mut() {
                            if let Value::String(s) = item {
                                replace_wheel(s, file_path, uploaded);
                            }
                        }
                    }
                    (_, v) => rewrite_wheels(v, file_path, uploaded),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_wheels(v, file_path, uploaded)),
        _ => {}
    }
}

fn replace_wheel(reference: &mut String, file_path: &str, uploaded: &[String]) {
    let remote = reference.starts_with("/Workspace") || reference.starts_with("/Volumes") || reference.contains("://");
    let local = reference.starts_with(&format!("{file_path}/")) || !remote;
    if !local || !reference.ends_with(".whl") {
        return;
    }
    let name = reference.rsplit('/').next().unwrap_or(reference);
    if let Some(path) = uploaded.iter().find(|p| wildcard(name, p.rsplit('/').next().unwrap_or(p))) {
        *reference = path.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_file_names() {
        assert!(wildcard("*.whl", "pkg-0.1-py3-none-any.whl"));
        assert!(wildcard("pkg-*-any.whl", "pkg-0.1-py3-none-any.whl"));
        assert!(!wildcard("*.whl", "pkg.tar.gz"));
    }

    #[test]
    fn notebooks_are_told_by_their_first_line() {
        assert!(is_notebook_source(Path::new("a.py"), b"# Databricks notebook source\nx=1"));
        assert!(!is_notebook_source(Path::new("a.py"), b"x=1"));
        assert!(!is_notebook_source(Path::new("a.txt"), b"# Databricks notebook source\n"));
        // As the workspace classifies them: the header must be the language's own.
        assert!(!is_notebook_source(Path::new("a.sql"), b"# Databricks notebook source\n"));
        assert!(is_notebook_source(Path::new("a.ipynb"), b"{}"));
    }
}
