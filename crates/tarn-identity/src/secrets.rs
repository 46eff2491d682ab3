//! Secrets (`w.secrets`): scopes, values sealed with AES-256-GCM under a key
//! kept outside the database, and scope ACLs (READ < WRITE < MANAGE) held
//! by users, service principals or groups. A value is bound to its scope
//! and key (the AEAD's associated data), so a sealed value copied to
//! another key does not open. No value ever appears in an error.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use tarn_core::secret_ref::{Resolved, SecretRef, SecretSource};
use tarn_core::time::now_ms;
use tarn_store::{SecretAclRow, SecretScopeRow, Store, USERS_GROUP, User};

use crate::backends::Backend;
use crate::error::{IdentityError, Result};

/// Largest value Databricks stores.
pub const MAX_VALUE_BYTES: usize = 128 * 1024;
/// Most secrets one scope holds.
pub const MAX_SECRETS_PER_SCOPE: usize = 1000;
const MAX_NAME: usize = 128;
const KEY_BYTES: usize = 32;

/// What a principal may do in a scope, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Permission {
    Read,
    Write,
    Manage,
}

impl Permission {
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "READ" => Ok(Self::Read),
            "WRITE" => Ok(Self::Write),
            "MANAGE" => Ok(Self::Manage),
            other => Err(IdentityError::InvalidParameter(format!(
                "Invalid permission '{other}': one of READ, WRITE, MANAGE"
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "READ",
            Self::Write => "WRITE",
            Self::Manage => "MANAGE",
        }
    }
}

/// The key values are sealed with.
pub struct SealingKey(LessSafeKey);

impl SealingKey {
    /// `TARN_SECRET_KEY` (64 hex digits) if set, else `$TARN_HOME/secret.key`
    /// (32 bytes, mode 0600), made on first use.
    pub fn load(home: &Path, from_env: Option<&str>) -> std::result::Result<Self, String> {
        let bytes = match from_env {
            Some(hex) => decode_hex(hex.trim()).ok_or("TARN_SECRET_KEY must be 64 hex digits (32 bytes)")?,
            None => key_file(&home.join("secret.key"))?,
        };
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| "the secret key is not 32 bytes")?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// Seals `value` bound to `place` (it opens only there); other crates
    /// keeping credentials (git tokens) seal with the same key.
    pub fn seal(&self, place: &str, value: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| sealing_failed())?;
        let mut sealed = value.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(place.as_bytes()), &mut sealed)
            .map_err(|_| sealing_failed())?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn open(&self, place: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(unreadable(place));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| unreadable(place))?;
        let mut body = body.to_vec();
        let plain =
            self.0.open_in_place(nonce, Aad::from(place.as_bytes()), &mut body).map_err(|_| unreadable(place))?;
        Ok(plain.to_vec())
    }
}

fn sealing_failed() -> IdentityError {
    IdentityError::Internal("sealing a secret failed".into())
}

fn unreadable(place: &str) -> IdentityError {
    IdentityError::Internal(format!("secret {place} does not open with this workspace's secret key"))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != KEY_BYTES * 2 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

fn key_file(path: &Path) -> std::result::Result<Vec<u8>, String> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == KEY_BYTES => return Ok(bytes),
        Ok(_) => return Err(format!("{} is not a 32-byte key", path.display())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("reading {}: {e}", path.display())),
        Err(_) => {}
    }
    let mut bytes = vec![0u8; KEY_BYTES];
    SystemRandom::new().fill(&mut bytes).map_err(|_| "no randomness for a secret key")?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("creating {}: {e}", path.display()))?;
    file.write_all(&bytes).and_then(|()| file.sync_all()).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(bytes)
}

pub struct Secrets {
    store: Arc<Store>,
    key: Arc<SealingKey>,
    /// For scopes kept in Vault.
    http: reqwest::Client,
}

fn invalid(message: impl Into<String>) -> IdentityError {
    IdentityError::InvalidParameter(message.into())
}

fn check_name(what: &str, name: &str, extra: &[char]) -> Result<()> {
    let fine = !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c) || extra.contains(&c));
    if fine {
        return Ok(());
    }
    Err(invalid(format!(
        "{what} '{name}' must be 1 to {MAX_NAME} letters, digits, dashes, underscores{} or periods",
        if extra.is_empty() { "" } else { ", @" }
    )))
}

impl Secrets {
    pub fn new(store: Arc<Store>, key: Arc<SealingKey>) -> Self {
        Self { store, key, http: reqwest::Client::new() }
    }

    /// The scope, canonically named, and what `caller` may do in it.
    fn scope(&self, caller: &User, name: &str) -> Result<(SecretScopeRow, Option<Permission>)> {
        let scope = self
            .store
            .get_secret_scope(name)?
            .ok_or_else(|| IdentityError::NotFound(format!("Scope {name} does not exist!")))?;
        if caller.admin {
            return Ok((scope, Some(Permission::Manage)));
        }
        let mut names: Vec<String> = self.store.effective_groups(caller.id)?.into_iter().map(|(_, n)| n).collect();
        names.push(USERS_GROUP.to_string());
        names.push(caller.user_name.clone());
        let held = self
            .store
            .list_secret_acls(&scope.name)?
            .into_iter()
            .filter(|acl| names.contains(&acl.principal))
            .filter_map(|acl| Permission::parse(&acl.permission).ok())
            .max();
        Ok((scope, held))
    }

    fn scope_for(&self, caller: &User, name: &str, needed: Permission) -> Result<SecretScopeRow> {
        let (scope, held) = self.scope(caller, name)?;
        if held.is_some_and(|h| h >= needed) {
            return Ok(scope);
        }
        Err(IdentityError::PermissionDenied(format!(
            "User {} does not have {} permission on scope {}",
            caller.user_name,
            needed.as_str(),
            scope.name
        )))
    }

    /// Creates a scope on `backend`; only admins may point one at Vault or
    /// at tarn's environment.
    pub fn create_scope(
        &self,
        caller: &User,
        name: &str,
        initial_manage_principal: Option<&str>,
        backend: &Backend,
    ) -> Result<()> {
        check_name("Scope name", name, &['@'])?;
        if *backend != Backend::Sealed && !caller.admin {
            return Err(IdentityError::PermissionDenied(format!(
                "Only workspace admins can create {} scopes",
                backend.type_name()
            )));
        }
        if let Some(principal) = initial_manage_principal.filter(|p| *p != USERS_GROUP) {
            return Err(invalid(format!("initial_manage_principal must be 'users' (every user), not '{principal}'")));
        }
        let row = SecretScopeRow {
            name: name.to_string(),
            backend_type: backend.type_name().into(),
            backend_config: backend.config(),
            creator: caller.user_name.clone(),
        };
        if !self.store.create_secret_scope(&row, now_ms())? {
            return Err(IdentityError::AlreadyExists(format!("Scope {name} already exists!")));
        }
        if let Some(principal) = initial_manage_principal {
            let acl = SecretAclRow { principal: principal.to_string(), permission: "MANAGE".into() };
            self.store.put_secret_acl(name, &acl)?;
        }
        Ok(())
    }

    pub fn delete_scope(&self, caller: &User, name: &str) -> Result<()> {
        let scope = self.scope_for(caller, name, Permission::Manage)?;
        self.store.delete_secret_scope(&scope.name)?;
        Ok(())
    }

    /// Every scope (names and backends; values and ACLs need permissions).
    pub fn list_scopes(&self) -> Result<Vec<SecretScopeRow>> {
        Ok(self.store.list_secret_scopes()?)
    }

    pub fn put(&self, caller: &User, scope: &str, key: &str, value: &[u8]) -> Result<()> {
        let scope = self.scope_for(caller, scope, Permission::Write)?;
        read_only(&scope)?;
        check_name("Secret key", key, &[])?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(invalid(format!(
                "The secret value is {} bytes; at most {MAX_VALUE_BYTES} bytes (128 KB) are allowed",
                value.len()
            )));
        }
        let sealed = self.key.seal(&place(&scope.name, key), value)?;
        if !self.store.put_secret(&scope.name, key, &sealed, now_ms(), MAX_SECRETS_PER_SCOPE)? {
            return Err(IdentityError::LimitExceeded(format!(
                "Scope {} already holds {MAX_SECRETS_PER_SCOPE} secrets, the most a scope may hold",
                scope.name
            )));
        }
        Ok(())
    }

    /// A secret's value in clear, for a caller with READ.
    pub async fn get(&self, caller: &User, scope: &str, key: &str) -> Result<Vec<u8>> {
        let scope = self.scope_for(caller, scope, Permission::Read)?;
        let missing =
            || IdentityError::NotFound(format!("Secret does not exist with scope: {} and key: {key}", scope.name));
        match Backend::of(&scope)? {
            Backend::Sealed => {
                let sealed = self.store.get_secret(&scope.name, key)?.ok_or_else(missing)?;
                self.key.open(&place(&scope.name, key), &sealed)
            }
            backend => {
                let values = backend.read(&self.http, &scope.name).await?;
                values.get(key).map(|v| v.clone().into_bytes()).ok_or_else(missing)
            }
        }
    }

    /// Keys and their last update (ms; 0 where the backend keeps none).
    pub async fn list(&self, caller: &User, scope: &str) -> Result<Vec<(String, i64)>> {
        let scope = self.scope_for(caller, scope, Permission::Read)?;
        match Backend::of(&scope)? {
            Backend::Sealed => Ok(self.store.list_secrets(&scope.name)?),
            backend => Ok(backend.read(&self.http, &scope.name).await?.into_keys().map(|k| (k, 0)).collect()),
        }
    }

    pub fn delete(&self, caller: &User, scope: &str, key: &str) -> Result<()> {
        let scope = self.scope_for(caller, scope, Permission::Write)?;
        read_only(&scope)?;
        if !self.store.delete_secret(&scope.name, key)? {
            return Err(IdentityError::NotFound(format!(
                "Secret does not exist with scope: {} and key: {key}",
                scope.name
            )));
        }
        Ok(())
    }

    pub fn put_acl(&self, caller: &User, scope: &str, principal: &str, permission: &str) -> Result<()> {
        let scope = self.scope_for(caller, scope, Permission::Manage)?;
        let permission = Permission::parse(permission)?;
        self.check_principal(principal)?;
        let acl = SecretAclRow { principal: principal.to_string(), permission: permission.as_str().into() };
        Ok(self.store.put_secret_acl(&scope.name, &acl)?)
    }

    pub fn delete_acl(&self, caller: &User, scope: &str, principal: &str) -> Result<()> {
        let scope = self.scope_for(caller, scope, Permission::Manage)?;
        if !self.store.delete_secret_acl(&scope.name, principal)? {
            return Err(IdentityError::NotFound(format!("No ACL for principal {principal} in scope {}", scope.name)));
        }
        Ok(())
    }

    pub fn acls(&self, caller: &User, scope: &str) -> Result<Vec<SecretAclRow>> {
        let scope = self.scope_for(caller, scope, Permission::Manage)?;
        Ok(self.store.list_secret_acls(&scope.name)?)
    }

    /// A principal an ACL can name: a user, a service principal's
    /// application id, or a group.
    fn check_principal(&self, principal: &str) -> Result<()> {
        let known = self.store.find_principal(principal)?.is_some()
            || self.store.find_service_principal(principal)?.is_some()
            || self.store.find_group(principal)?.is_some();
        if known {
            return Ok(());
        }
        Err(IdentityError::NotFound(format!("Principal {principal} does not exist")))
    }
}

/// References resolve with the principal's own READ, as the principal
/// itself would read them.
impl SecretSource for Secrets {
    fn secret<'a>(&'a self, principal: &'a str, reference: &'a SecretRef) -> Resolved<'a> {
        Box::pin(async move {
            let caller = match self.store.find_user(principal) {
                Ok(Some(user)) => user,
                Ok(None) => return Err(format!("{reference}: principal {principal} does not exist")),
                Err(e) => return Err(format!("{reference}: {e}")),
            };
            let value =
                self.get(&caller, &reference.scope, &reference.key).await.map_err(|e| format!("{reference}: {e}"))?;
            String::from_utf8(value).map_err(|_| format!("{reference}: the value is not UTF-8 text"))
        })
    }
}

/// Refuses a write to a scope whose values live elsewhere.
fn read_only(scope: &SecretScopeRow) -> Result<()> {
    if scope.backend_type == "DATABRICKS" {
        return Ok(());
    }
    Err(IdentityError::InvalidParameter(format!(
        "Scope {} is backed by {} and read-only in tarn: write its values there",
        scope.name, scope.backend_type
    )))
}

/// Where a value lives, bound into its seal.
fn place(scope: &str, key: &str) -> String {
    format!("{scope}/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_where_it_was_sealed_and_never_shows() {
        let dir = std::env::temp_dir().join(format!("tarn-secret-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = SealingKey::load(&dir, None).unwrap();
        let again = SealingKey::load(&dir, None).unwrap();
        let sealed = key.seal("s/k", b"hunter2").unwrap();
        assert!(!sealed.windows(7).any(|w| w == b"hunter2"));
        assert_eq!(again.open("s/k", &sealed).unwrap(), b"hunter2");
        assert!(key.open("s/other", &sealed).is_err());
        let mode = std::fs::metadata(dir.join("secret.key")).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
        let other = SealingKey::load(&dir, Some(&"ab".repeat(32))).unwrap();
        assert!(other.open("s/k", &sealed).is_err());
        assert!(SealingKey::load(&dir, Some("abc")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
