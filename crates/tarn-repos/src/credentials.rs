//! Git credentials (`w.git_credentials`): per user, a provider, a username
//! and a personal access token sealed with the secrets' key. The token is
//! never returned; it is opened only to hand to git for an https remote.

use std::sync::Arc;

use tarn_core::time::now_ms;
use tarn_identity::SealingKey;
use tarn_store::{GitCredentialRow, Store};

use crate::git::Auth;
use crate::{RepoError, Result, provider};

/// What a create or update sends; `None` leaves a field as it was.
#[derive(Clone, Default)]
pub struct CredentialRequest {
    pub git_provider: Option<String>,
    pub git_username: Option<String>,
    pub git_email: Option<String>,
    pub personal_access_token: Option<String>,
    pub name: Option<String>,
    pub is_default_for_provider: Option<bool>,
}

/// The credentials service. Cheap to clone.
#[derive(Clone)]
pub struct GitCredentials {
    store: Arc<Store>,
    key: Arc<SealingKey>,
}

/// The token's place in its seal: a user's token opens only as theirs.
fn place(user: &str) -> String {
    format!("git-credentials/{user}")
}

impl GitCredentials {
    pub fn new(store: Arc<Store>, key: Arc<SealingKey>) -> Self {
        Self { store, key }
    }

    fn seal(&self, user: &str, token: &str) -> Result<Vec<u8>> {
        self.key.seal(&place(user), token.as_bytes()).map_err(|e| RepoError::Internal(e.to_string()))
    }

    pub fn create(&self, user: &str, req: CredentialRequest) -> Result<GitCredentialRow> {
        let given = req.git_provider.as_deref().unwrap_or_default();
        let git_provider = provider::canonical(given)?.to_string();
        let sealed_token = match req.personal_access_token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => Some(self.seal(user, token)?),
            None => None,
        };
        let mut row = GitCredentialRow {
            credential_id: 0,
            user_name: user.to_string(),
            git_provider,
            git_username: req.git_username,
            git_email: req.git_email,
            name: req.name,
            is_default_for_provider: req.is_default_for_provider.unwrap_or(false),
            sealed_token,
            created_at: now_ms(),
        };
        row.credential_id = self.store.insert_git_credential(&row)?;
        Ok(row)
    }

    pub fn get(&self, user: &str, id: i64) -> Result<GitCredentialRow> {
        self.store
            .get_git_credential(user, id)?
            .ok_or_else(|| RepoError::NotFound(format!("Git credential with id {id} does not exist")))
    }

    pub fn list(&self, user: &str) -> Result<Vec<GitCredentialRow>> {
        Ok(self.store.list_git_credentials(user)?)
    }

    pub fn update(&self, user: &str, id: i64, req: CredentialRequest) -> Result<GitCredentialRow> {
        let mut row = self.get(user, id)?;
        if let Some(p) = req.git_provider.as_deref() {
            row.git_provider = provider::canonical(p)?.to_string();
        }
        if let Some(token) = req.personal_access_token.as_deref() {
            row.sealed_token = if token.is_empty() { None } else { Some(self.seal(user, token)?) };
        }
        row.git_username = req.git_username.or(row.git_username);
        row.git_email = req.git_email.or(row.git_email);
        row.name = req.name.or(row.name);
        row.is_default_for_provider = req.is_default_for_provider.unwrap_or(row.is_default_for_provider);
        self.store.update_git_credential(&row)?;
        Ok(row)
    }

    pub fn delete(&self, user: &str, id: i64) -> Result<()> {
        if !self.store.delete_git_credential(user, id)? {
            return Err(RepoError::NotFound(format!("Git credential with id {id} does not exist")));
        }
        Ok(())
    }

    /// What git gets for an https remote of `provider`: credential `id`
    /// if given, else the user's default for the provider (else their only
    /// one for it); `None` if they have none with a token.
    pub(crate) fn auth(&self, user: &str, id: Option<i64>, provider: &str) -> Result<Option<Auth>> {
        let row = match id {
            Some(id) => Some(self.get(user, id)?),
            None => {
                let same: Vec<_> =
                    self.list(user)?.into_iter().filter(|c| c.git_provider.eq_ignore_ascii_case(provider)).collect();
                let default = same.iter().position(|c| c.is_default_for_provider);
                match (default, same.len()) {
                    (Some(i), _) => same.into_iter().nth(i),
                    (None, 1) => same.into_iter().next(),
                    _ => None,
                }
            }
        };
        let Some(row) = row else { return Ok(None) };
        let Some(sealed) = &row.sealed_token else { return Ok(None) };
        let token = self.key.open(&place(user), sealed).map_err(|e| RepoError::Internal(e.to_string()))?;
        let token = String::from_utf8(token).map_err(|_| RepoError::Internal("a git token is not text".into()))?;
        // Hosts take any username with a token; some want a non-empty one.
        let username = row.git_username.filter(|u| !u.is_empty()).unwrap_or_else(|| "x-access-token".into());
        Ok(Some(Auth { username, token }))
    }
}
