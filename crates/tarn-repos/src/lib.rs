//! Git folders (repos) and git credentials: clones of remotes made with
//! the `git` binary, kept under `$TARN_HOME/repos/<id>` and shown in the
//! workspace tree at their path (tarn-files' `workspace/repo.rs`), branch
//! and tag checkouts, per-user credentials for https remotes, and the
//! one-off checkouts a job run with a `git_source` reads its files from.
//! Who may see or change a repo is the API layer's (workspace permissions).

mod checkout;
pub mod credentials;
pub mod git;
pub mod provider;
mod service;

pub use checkout::Revision;
pub use credentials::{CredentialRequest, GitCredentials};
pub use service::{CreateRepo, Repos, UpdateRepo, patterns};

/// What a repos or credentials call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Files(#[from] tarn_files::FilesError),
    #[error(transparent)]
    Store(#[from] tarn_store::StoreError),
}

impl RepoError {
    fn io(context: &str, e: std::io::Error) -> Self {
        RepoError::Internal(format!("{context}: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, RepoError>;
