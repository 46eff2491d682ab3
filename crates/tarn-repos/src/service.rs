//! The repos service: create (clone, then show in the workspace), get,
//! list, update (branch, tag, sparse patterns, credential) and delete, and
//! the per-run checkouts of jobs with a `git_source`. Changes to repos are
//! serialized by one lock; a failed create leaves nothing behind, a failed
//! update leaves the checkout as it was.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tarn_core::time::now_ms;
use tarn_files::Files;
use tarn_identity::SealingKey;
use tarn_store::{RepoRow, Store};

use crate::checkout::{self, Revision};
use crate::credentials::GitCredentials;
use crate::git::{Auth, Git, is_http, mask};
use crate::{RepoError, Result, provider};

/// A create request.
#[derive(Debug, Clone, Default)]
pub struct CreateRepo {
    pub url: String,
    pub provider: String,
    pub path: Option<String>,
    pub sparse_patterns: Option<Vec<String>>,
    pub git_credential_id: Option<i64>,
}

/// An update request: at most one of `branch` and `tag`.
#[derive(Debug, Clone, Default)]
pub struct UpdateRepo {
    pub branch: Option<String>,
    pub tag: Option<String>,
    pub sparse_patterns: Option<Vec<String>>,
    pub git_credential_id: Option<i64>,
}

/// The repos service. Cheap to clone.
#[derive(Clone)]
pub struct Repos {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    files: Files,
    git: Git,
    /// `$TARN_HOME/repos`: checkouts by id, and clones being made.
    dir: PathBuf,
    credentials: GitCredentials,
    lock: tokio::sync::Mutex<()>,
}

/// The repo name a URL ends with (`…/demo.git` → `demo`).
fn name_from_url(url: &str) -> Option<&str> {
    let last = url.trim_end_matches('/').rsplit(['/', ':']).next()?;
    let name = last.strip_suffix(".git").unwrap_or(last);
    (!name.is_empty()).then_some(name)
}

fn patterns_json(patterns: &[String]) -> Option<String> {
    (!patterns.is_empty()).then(|| serde_json::Value::from(patterns.to_vec()).to_string())
}

/// A repo's sparse checkout patterns (empty: none).
pub fn patterns(row: &RepoRow) -> Vec<String> {
    row.sparse_checkout.as_deref().and_then(|t| serde_json::from_str(t).ok()).unwrap_or_default()
}

/// Removes a directory, ignoring one already gone.
fn remove_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove a git checkout");
    }
}

impl Repos {
    /// Repos under `home/repos` (the directory tarn-files shows them from),
    /// git commands stopped after `timeout`.
    pub fn new(store: Arc<Store>, files: Files, key: Arc<SealingKey>, home: &Path, timeout: Duration) -> Result<Self> {
        let dir = home.join("repos");
        std::fs::create_dir_all(&dir).map_err(|e| RepoError::io("creating the repos directory", e))?;
        // Clones an earlier tarn was making when it stopped.
        for entry in std::fs::read_dir(&dir).map_err(|e| RepoError::io("reading the repos directory", e))?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tarn-staging-") {
                remove_dir(&entry.path());
            }
        }
        let git = Git::new(&dir, timeout)?;
        let credentials = GitCredentials::new(store.clone(), key);
        let inner = Inner { store, files, git, dir, credentials, lock: tokio::sync::Mutex::new(()) };
        Ok(Self { inner: Arc::new(inner) })
    }

    pub fn credentials(&self) -> &GitCredentials {
        &self.inner.credentials
    }

    fn checkout_dir(&self, id: i64) -> PathBuf {
        self.inner.files.workspace().checkout_dir(id).unwrap_or_else(|| self.inner.dir.join(id.to_string()))
    }

    fn auth(&self, user: &str, url: &str, provider: &str, credential: Option<i64>) -> Result<Option<Auth>> {
        if !is_http(url) {
            return Ok(None);
        }
        self.inner.credentials.auth(user, credential, provider)
    }

    /// Clones the remote and shows it at its path; the repo as stored.
    pub async fn create(&self, user: &str, req: CreateRepo) -> Result<RepoRow> {
        let url = req.url.trim().to_string();
        if url.is_empty() {
            return Err(RepoError::InvalidParameter("url is required".into()));
        }
        let provider = provider::canonical(&req.provider)?.to_string();
        let workspace = self.inner.files.workspace();
        let path = match req.path.as_deref().filter(|p| !p.is_empty()) {
            Some(p) => workspace.canonical(p)?,
            None => {
                let name = name_from_url(&url).ok_or_else(|| {
                    RepoError::InvalidParameter(format!("No repository name in the url {}; give a path", mask(&url)))
                })?;
                workspace.canonical(&format!("/Repos/{user}/{name}"))?
            }
        };
        let patterns = req.sparse_patterns.unwrap_or_default();
        let _guard = self.inner.lock.lock().await;
        if workspace.get_status(&path).is_ok() {
            return Err(RepoError::AlreadyExists(format!("{path} already exists")));
        }
        let auth = self.auth(user, &url, &provider, req.git_credential_id)?;
        let staging = self.inner.dir.join(format!(".tarn-staging-{}", uuid::Uuid::new_v4()));
        let cloned = self.clone_into(&url, &staging, auth.as_ref(), &patterns).await;
        let (branch, head) = match cloned {
            Ok(at) => at,
            Err(e) => {
                remove_dir(&staging);
                return Err(e);
            }
        };
        let row = RepoRow {
            id: 0,
            path: path.clone(),
            url,
            provider,
            branch,
            head_commit_id: head,
            sparse_checkout: patterns_json(&patterns),
            git_credential_id: req.git_credential_id,
            creator: user.to_string(),
            created_at: now_ms(),
        };
        let placed = self.place(&staging, row).await;
        if placed.is_err() {
            remove_dir(&staging);
        }
        placed
    }

    async fn clone_into(
        &self,
        url: &str,
        dest: &Path,
        auth: Option<&Auth>,
        patterns: &[String],
    ) -> Result<(Option<String>, String)> {
        checkout::clone(&self.inner.git, url, dest, auth).await?;
        if !patterns.is_empty() {
            checkout::sparse(&self.inner.git, dest, patterns).await?;
        }
        Ok(checkout::head(&self.inner.git, dest).await)
    }

    /// Mounts the clone at its path, moves it to its id's directory and
    /// records it; undone if any step fails.
    async fn place(&self, staging: &Path, mut row: RepoRow) -> Result<RepoRow> {
        let workspace = self.inner.files.workspace();
        row.id = workspace.mount_repo(&row.path, &row.creator)?;
        let dir = self.checkout_dir(row.id);
        let placed = std::fs::rename(staging, &dir)
            .map_err(|e| RepoError::io("moving a clone into place", e))
            .and_then(|()| Ok(self.inner.store.insert_repo(&row)?))
            .and_then(|()| Ok(workspace.sync_repo(&row.path)?));
        if let Err(e) = placed {
            let _ = workspace.unmount_repo(&row.path);
            let _ = self.inner.store.delete_repo(row.id);
            if dir.exists() {
                remove_dir(&dir);
            }
            return Err(e);
        }
        Ok(row)
    }

    pub fn get(&self, id: i64) -> Result<RepoRow> {
        self.inner.store.get_repo(id)?.ok_or_else(|| RepoError::NotFound(format!("Repo {id} does not exist")))
    }

    /// Repos under `path_prefix` (canonical form), by id after `after_id`.
    pub fn list(&self, path_prefix: Option<&str>, after_id: i64, limit: usize) -> Result<Vec<RepoRow>> {
        let prefix = match path_prefix.filter(|p| !p.is_empty()) {
            Some(p) => self.inner.files.workspace().canonical(p)?,
            None => String::new(),
        };
        Ok(self.inner.store.list_repos(&prefix, after_id, limit)?)
    }

    /// Checks out a branch or a tag (fetching first), changes the sparse
    /// patterns or the credential; the repo as stored after.
    pub async fn update(&self, user: &str, id: i64, req: UpdateRepo) -> Result<RepoRow> {
        let revision = match (req.branch.filter(|b| !b.is_empty()), req.tag.filter(|t| !t.is_empty())) {
            (Some(_), Some(_)) => {
                return Err(RepoError::InvalidParameter("Give either a branch or a tag, not both".into()));
            }
            (Some(b), None) => Some(Revision::Branch(b)),
            (None, Some(t)) => Some(Revision::Tag(t)),
            (None, None) => None,
        };
        let _guard = self.inner.lock.lock().await;
        let mut row = self.get(id)?;
        if let Some(credential) = req.git_credential_id {
            self.inner.credentials.get(user, credential)?;
            row.git_credential_id = Some(credential);
        }
        let dir = self.checkout_dir(id);
        if let Some(patterns) = &req.sparse_patterns {
            checkout::sparse(&self.inner.git, &dir, patterns).await?;
            row.sparse_checkout = patterns_json(patterns);
        }
        if let Some(revision) = &revision {
            let auth = self.auth(user, &row.url, &row.provider, row.git_credential_id)?;
            checkout::switch(&self.inner.git, &dir, revision, auth.as_ref()).await?;
        }
        (row.branch, row.head_commit_id) = checkout::head(&self.inner.git, &dir).await;
        self.inner.store.update_repo_checkout(&row)?;
        self.inner.files.workspace().sync_repo(&row.path)?;
        Ok(row)
    }

    /// Removes the repo: its workspace entries, its record, its checkout.
    pub async fn delete(&self, id: i64) -> Result<()> {
        let _guard = self.inner.lock.lock().await;
        let row = self.get(id)?;
        self.inner.files.workspace().unmount_repo(&row.path)?;
        self.inner.store.delete_repo(id)?;
        remove_dir(&self.checkout_dir(id));
        Ok(())
    }

    /// Clones `url` into `dest` and checks out `revision` for a job run,
    /// with `user`'s credential for the provider; the commit checked out.
    pub async fn checkout_revision(
        &self,
        user: &str,
        url: &str,
        provider: &str,
        revision: &Revision,
        dest: &Path,
    ) -> Result<String> {
        let provider = provider::canonical(provider)?;
        let auth = self.auth(user, url, provider, None)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| RepoError::io("creating a run's checkout directory", e))?;
        }
        checkout::clone(&self.inner.git, url, dest, auth.as_ref()).await?;
        checkout::switch(&self.inner.git, dest, revision, auth.as_ref()).await?;
        let (_, commit) = checkout::head(&self.inner.git, dest).await;
        Ok(commit)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn repo_names_come_from_the_url_end() {
        assert_eq!(super::name_from_url("https://github.com/a/demo.git"), Some("demo"));
        assert_eq!(super::name_from_url("file:///tmp/x/demo/"), Some("demo"));
        assert_eq!(super::name_from_url("git@github.com:a/b.git"), Some("b"));
        assert_eq!(super::name_from_url("/"), None);
    }
}
