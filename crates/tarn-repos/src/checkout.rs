//! Git operations on one checkout: clone, fetch and check out a branch, a
//! tag or a commit, sparse patterns, and reading where HEAD is. A revision
//! that does not exist is refused before anything in the checkout moves.

use std::path::Path;

use crate::git::{Auth, Git, check_ref, mask};
use crate::{RepoError, Result};

/// A revision to check out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    Branch(String),
    Tag(String),
    Commit(String),
}

impl Revision {
    fn check(&self) -> Result<()> {
        match self {
            Revision::Branch(b) => check_ref("branch", b),
            Revision::Tag(t) => check_ref("tag", t),
            Revision::Commit(c) => {
                let hex = (4..=64).contains(&c.len()) && c.chars().all(|ch| ch.is_ascii_hexdigit());
                if hex { Ok(()) } else { Err(RepoError::InvalidParameter(format!("'{c}' is not a commit hash"))) }
            }
        }
    }

    /// The ref it resolves to after a fetch from `origin`.
    fn target(&self) -> String {
        match self {
            Revision::Branch(b) => format!("refs/remotes/origin/{b}"),
            Revision::Tag(t) => format!("refs/tags/{t}"),
            Revision::Commit(c) => c.clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Revision::Branch(b) => format!("Branch {b}"),
            Revision::Tag(t) => format!("Tag {t}"),
            Revision::Commit(c) => format!("Commit {c}"),
        }
    }
}

fn failed(what: &str) -> impl Fn(String) -> RepoError + '_ {
    move |e| RepoError::InvalidParameter(format!("{what}: {e}"))
}

/// Clones `url` into `dest` (which must not exist), on its default branch.
pub(crate) async fn clone(git: &Git, url: &str, dest: &Path, auth: Option<&Auth>) -> Result<()> {
    let parent = dest.parent().ok_or_else(|| RepoError::Internal("a checkout needs a parent directory".into()))?;
    let dest = dest.to_str().ok_or_else(|| RepoError::Internal("checkout paths are UTF-8".into()))?;
    let shown = mask(url);
    git.run(parent, &["clone", "--quiet", "--no-recurse-submodules", "--", url, dest], auth)
        .await
        .map_err(failed(&format!("Could not clone the remote repository {shown}")))?;
    Ok(())
}

/// Fetches from `origin` and checks out `revision` (a branch as a local
/// branch tracking it; a tag or commit as a detached HEAD). The checkout
/// is unchanged if the revision does not exist.
pub(crate) async fn switch(git: &Git, dir: &Path, revision: &Revision, auth: Option<&Auth>) -> Result<()> {
    revision.check()?;
    git.run(dir, &["fetch", "--quiet", "--prune", "--tags", "--force", "origin"], auth)
        .await
        .map_err(failed("Could not fetch from the remote repository"))?;
    let target = revision.target();
    let verify = format!("{target}^{{commit}}");
    if git.run(dir, &["rev-parse", "--verify", "--quiet", &verify], None).await.is_err() {
        return Err(RepoError::InvalidParameter(format!(
            "{} does not exist in the remote repository",
            revision.describe()
        )));
    }
    let args: Vec<&str> = match revision {
        Revision::Branch(b) => vec!["checkout", "--quiet", "--force", "-B", b, &target],
        Revision::Tag(_) | Revision::Commit(_) => vec!["checkout", "--quiet", "--force", "--detach", &target],
    };
    git.run(dir, &args, None).await.map_err(failed(&format!("Could not check out {}", revision.describe())))?;
    Ok(())
}

/// Applies sparse checkout patterns (cone mode, as Databricks takes them);
/// an empty list turns sparse checkout off.
pub(crate) async fn sparse(git: &Git, dir: &Path, patterns: &[String]) -> Result<()> {
    let mut args = vec!["sparse-checkout"];
    if patterns.is_empty() {
        args.push("disable");
    } else {
        args.extend(["set", "--cone", "--"]);
        args.extend(patterns.iter().map(String::as_str));
    }
    git.run(dir, &args, None).await.map_err(failed("Could not apply the sparse checkout patterns"))?;
    Ok(())
}

/// Where HEAD is: its branch (`None` when detached) and its commit (empty
/// for a repository without commits).
pub(crate) async fn head(git: &Git, dir: &Path) -> (Option<String>, String) {
    let branch = git.run(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"], None).await.ok();
    let commit = git.run(dir, &["rev-parse", "--verify", "--quiet", "HEAD"], None).await.unwrap_or_default();
    (branch.filter(|b| !b.is_empty()), commit)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    use super::*;

    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// An origin with `main` (tagged v1) and `feature`; its commits.
    fn origin(base: &Path) -> (PathBuf, String, String) {
        let repo = base.join("origin");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        std::fs::write(repo.join("f"), "main").unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-q", "-m", "main"]);
        git(&repo, &["tag", "v1"]);
        let main = git(&repo, &["rev-parse", "HEAD"]);
        git(&repo, &["checkout", "-q", "-b", "feature"]);
        std::fs::write(repo.join("f"), "feature").unwrap();
        git(&repo, &["commit", "-q", "-am", "feature"]);
        let feature = git(&repo, &["rev-parse", "HEAD"]);
        git(&repo, &["checkout", "-q", "main"]);
        (repo, main, feature)
    }

    #[tokio::test]
    async fn checkouts_move_only_to_revisions_that_exist() {
        let base = std::env::temp_dir().join(format!("tarn-repos-checkout-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&base).unwrap();
        let (repo, main, feature) = origin(&base);
        let git = Git::new(&base, Duration::from_secs(60)).unwrap();
        let dir = base.join("clone");
        clone(&git, repo.to_str().unwrap(), &dir, None).await.unwrap();
        assert_eq!(head(&git, &dir).await, (Some("main".into()), main.clone()));

        switch(&git, &dir, &Revision::Branch("feature".into()), None).await.unwrap();
        assert_eq!(head(&git, &dir).await, (Some("feature".into()), feature.clone()));
        assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "feature");

        let refused = switch(&git, &dir, &Revision::Branch("nope".into()), None).await;
        assert!(matches!(refused, Err(RepoError::InvalidParameter(m)) if m.contains("nope")));
        assert_eq!(head(&git, &dir).await, (Some("feature".into()), feature.clone()));

        switch(&git, &dir, &Revision::Tag("v1".into()), None).await.unwrap();
        assert_eq!(head(&git, &dir).await, (None, main.clone()));
        switch(&git, &dir, &Revision::Commit(feature.clone()), None).await.unwrap();
        assert_eq!(head(&git, &dir).await, (None, feature));

        let missing = clone(&git, "/nonexistent/x.git", &base.join("other"), None).await;
        assert!(matches!(missing, Err(RepoError::InvalidParameter(m)) if m.contains("/nonexistent/x.git")));
        assert!(!base.join("other").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn revisions_are_checked_before_git_sees_them() {
        assert!(Revision::Commit("abc123".into()).check().is_ok());
        assert!(Revision::Commit("xyz".into()).check().is_err());
        assert!(Revision::Branch("-f".into()).check().is_err());
        assert_eq!(Revision::Tag("v1".into()).target(), "refs/tags/v1");
    }
}
