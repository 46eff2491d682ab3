//! Jobs with a `git_source`: one checkout of the job's revision per run
//! (made as the run starts, under `<home>/jobs/git/<run id>`, removed when
//! the run's driver and its attempts let go of it), from which notebook and
//! Python tasks whose `source` is `GIT` (the default once a job has a
//! `git_source`) read their files, paths relative to the repository root.
//! The clone itself is the wiring's [`GitSources`] (tarn-repos, with the
//! run's principal's git credential); the commit used is written into the
//! run's document as `git_source.git_snapshot.used_commit`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use tarn_files::{Cell, Language, Root};
use tarn_store::JobRunRow;

use crate::runs::Runs;
use crate::settings::JobSettings;
use crate::tasks::{Attempt, BoxFuture};

/// A revision of a `git_source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitRevision {
    Branch(String),
    Tag(String),
    Commit(String),
}

/// A job's `git_source`, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    pub url: String,
    pub provider: String,
    pub revision: GitRevision,
}

impl GitSource {
    /// The settings' `git_source`, if they have one: exactly one of
    /// `git_branch`, `git_tag` and `git_commit`.
    pub fn of(settings: &Value) -> Option<Result<GitSource, String>> {
        let source = settings.get("git_source")?;
        let text = |key: &str| source.get(key).and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_string);
        let revisions: Vec<GitRevision> = [
            text("git_branch").map(GitRevision::Branch),
            text("git_tag").map(GitRevision::Tag),
            text("git_commit").map(GitRevision::Commit),
        ]
        .into_iter()
        .flatten()
        .collect();
        let Some(url) = text("git_url") else { return Some(Err("git_source needs a git_url".into())) };
        let mut revisions = revisions.into_iter();
        let (Some(revision), None) = (revisions.next(), revisions.next()) else {
            return Some(Err("git_source needs exactly one of git_branch, git_tag and git_commit".into()));
        };
        Some(Ok(GitSource { url, provider: text("git_provider").unwrap_or_else(|| "gitHub".into()), revision }))
    }
}

/// Clones a git source at its revision: the wiring's answer (tarn-jobs
/// does not know git).
pub trait GitSources: Send + Sync {
    /// Clones `source` into `dest` (which does not exist) as `user`;
    /// answers the commit checked out.
    fn checkout<'a>(
        &'a self,
        source: &'a GitSource,
        user: &'a str,
        dest: &'a Path,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// A run's checkout; its directory goes when the last holder drops it.
#[derive(Debug)]
pub struct Checkout {
    pub dir: PathBuf,
    pub commit: String,
    root: Root,
}

impl Drop for Checkout {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "could not remove a run's git checkout");
        }
    }
}

/// What tasks of a run get: its checkout, or why there is none.
pub type GitCheckout = Result<Arc<Checkout>, String>;

impl Checkout {
    /// The local path of `rel` (relative to the repository root; a leading
    /// `/` is the root), refused if it leaves the checkout.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, String> {
        self.root.resolve(rel.trim_start_matches('/'), rel).map_err(|e| e.to_string())
    }

    /// A notebook's language and cells; its path may leave out the extension.
    pub(crate) fn notebook(&self, rel: &str) -> Result<(Language, Vec<Cell>), String> {
        let exact = self.resolve(rel)?;
        let found = std::iter::once(exact.clone())
            .chain(["py", "sql", "scala", "r", "R", "ipynb"].iter().map(|ext| exact.with_extension(ext)))
            .find(|p| p.is_file());
        let Some(path) = found else {
            return Err(format!("Notebook {rel} does not exist in the git source at commit {}", self.commit));
        };
        let content = std::fs::read(&path).map_err(|e| format!("{rel}: {e}"))?;
        let shown = path.to_string_lossy();
        tarn_files::file_cells(&shown, content).map_err(|e| format!("Notebook {rel}: {e}"))
    }

    /// A file's bytes.
    pub(crate) fn read(&self, rel: &str) -> Result<Vec<u8>, String> {
        let path = self.resolve(rel)?;
        std::fs::read(&path)
            .map_err(|e| format!("{rel} could not be read from the git source at commit {}: {e}", self.commit))
    }
}

/// The checkout a notebook or Python task reads from: `None` for a
/// workspace source.
pub(crate) fn task_checkout<'a>(attempt: &'a Attempt, spec: &Value) -> Result<Option<&'a Checkout>, String> {
    match (spec.get("source").and_then(Value::as_str), &attempt.git) {
        (Some("WORKSPACE"), _) | (None, None) => Ok(None),
        (Some("GIT") | None, Some(Ok(checkout))) => Ok(Some(checkout)),
        (Some("GIT") | None, Some(Err(e))) => Err(format!("The job's git_source could not be checked out: {e}")),
        (Some("GIT"), None) => Err("The task's source is GIT, but the job has no git_source".into()),
        (Some(other), _) => Err(format!("Unknown task source '{other}'; expected WORKSPACE or GIT")),
    }
}

/// Removes the checkouts an earlier tarn left (it stopped mid-run); at
/// start, before any run is driven again (a re-driven run checks out anew).
pub fn remove_stale_checkouts(home: &Path) {
    let dir = home.join("jobs").join("git");
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove runs' old git checkouts");
    }
}

/// Makes the run's checkout if its job has a `git_source`, and notes the
/// commit in the run's document.
pub(crate) async fn prepare(runs: &Runs, run: &JobRunRow, settings: &JobSettings) -> Option<GitCheckout> {
    let source = GitSource::of(&settings.raw)?;
    Some(checkout(runs, run, settings, source).await)
}

async fn checkout(
    runs: &Runs,
    run: &JobRunRow,
    settings: &JobSettings,
    source: Result<GitSource, String>,
) -> GitCheckout {
    let source = source?;
    let Some(git) = runs.git_sources() else { return Err("tarn was started without git sources".into()) };
    let dir = runs.config().home.join("jobs").join("git").join(run.run_id.to_string());
    // A repair drives the run again: a fresh checkout of the same revision.
    let _ = std::fs::remove_dir_all(&dir);
    let user = crate::runs::run_as(run).to_string();
    let commit = git.checkout(&source, &user, &dir).await?;
    let root = Root::open(&dir).map_err(|e| e.to_string())?;
    let checkout = Arc::new(Checkout { dir, commit: commit.clone(), root });
    let mut shown = settings.raw.get("git_source").cloned().unwrap_or_else(|| json!({}));
    shown["git_snapshot"] = json!({"used_commit": commit});
    if let Err(e) = crate::runs::update_doc(runs, run.run_id, |doc| doc["git_source"] = shown) {
        tracing::warn!(run_id = run.run_id, error = %e, "could not record the run's git snapshot");
    }
    Ok(checkout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_git_source_names_one_revision() {
        let of = |v: Value| GitSource::of(&json!({"git_source": v}));
        let source = of(json!({"git_url": "file:///r", "git_provider": "gitHub", "git_tag": "v1"}));
        assert_eq!(source.and_then(Result::ok).map(|s| s.revision), Some(GitRevision::Tag("v1".into())));
        assert!(of(json!({"git_url": "u", "git_branch": "a", "git_tag": "b"})).is_some_and(|r| r.is_err()));
        assert!(of(json!({"git_url": "u"})).is_some_and(|r| r.is_err()));
        assert!(of(json!({"git_branch": "main"})).is_some_and(|r| r.is_err()));
        assert!(GitSource::of(&json!({})).is_none());
    }
}
