//! Personal access tokens, and the one check of a bearer token both edges
//! make (REST and Spark Connect): it yields the caller as a [`User`]. Only
//! the SHA-256 of a token is stored.

use crate::db::{OptionalExtension, Row, params};
use sha2::{Digest, Sha256};

use crate::{Result, Store, StoreError};

/// A caller: a user or a service principal (whose `user_name` is its
/// application id), and whether it is a workspace admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub user_name: String,
    pub display_name: String,
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub token_id: String,
    pub user_id: i64,
    pub comment: String,
    pub creation_time: i64,
    /// -1 when the token never expires.
    pub expiry_time: i64,
}

/// The workspace's first admin, whom `tarn serve` creates; tarn's own
/// engines (the warehouse, serverless, pipelines) reach the catalog as it.
pub const ADMIN_USER: &str = "admin";

pub fn hash_token(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

impl TokenRow {
    pub fn is_live_at(&self, now: i64) -> bool {
        self.expiry_time < 0 || self.expiry_time > now
    }
}

/// Why a bearer token's secret authenticates no one.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token has this secret (or it was revoked).
    #[error("Invalid access token")]
    Invalid,
    /// The token's lifetime has passed.
    #[error("Token expired")]
    Expired,
    /// The token's user or service principal has been deactivated.
    #[error("The token's principal is not active")]
    Inactive,
    /// The store could not be asked.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new token's secret: `dapi` and 32 hex digits, as Databricks forms them.
pub fn new_token_secret() -> String {
    format!("dapi{}", tarn_core::id::random_hex(16))
}

fn token_row(r: &Row<'_>) -> crate::db::Result<TokenRow> {
    Ok(TokenRow {
        token_id: r.get(0)?,
        user_id: r.get(1)?,
        comment: r.get(2)?,
        creation_time: r.get(3)?,
        expiry_time: r.get(4)?,
    })
}

impl Store {
    /// Issues a token for `user`; the secret is returned once and stored hashed.
    pub fn create_token(
        &self,
        user: &User,
        comment: &str,
        lifetime_seconds: Option<i64>,
        now: i64,
    ) -> Result<(String, TokenRow)> {
        self.create_token_for(user, comment, lifetime_seconds, now, "user")
    }

    /// A token tarn hands to one of its own processes (an engine); never
    /// listed to users. Revoked with [`Store::revoke_engine_tokens`].
    pub fn create_engine_token(&self, user: &User, comment: &str, now: i64) -> Result<(String, TokenRow)> {
        self.create_token_for(user, comment, None, now, "engine")
    }

    /// Revokes engine tokens with this comment, or all of them.
    pub fn revoke_engine_tokens(&self, comment: Option<&str>) -> Result<usize> {
        Ok(self
            .conn()
            .execute("DELETE FROM tokens WHERE purpose = 'engine' AND (comment = ?1 OR ?1 IS NULL)", [comment])?)
    }

    fn create_token_for(
        &self,
        user: &User,
        comment: &str,
        lifetime_seconds: Option<i64>,
        now: i64,
        purpose: &str,
    ) -> Result<(String, TokenRow)> {
        let secret = new_token_secret();
        let row = TokenRow {
            token_id: tarn_core::id::random_hex(32),
            user_id: user.id,
            comment: comment.to_string(),
            creation_time: now,
            expiry_time: lifetime_seconds.filter(|s| *s > 0).map_or(-1, |s| now.saturating_add(s.saturating_mul(1000))),
        };
        self.conn().execute(
            "INSERT INTO tokens (token_id, token_hash, user_id, comment, creation_time, expiry_time, purpose)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                row.token_id,
                hash_token(&secret),
                row.user_id,
                row.comment,
                row.creation_time,
                row.expiry_time,
                purpose
            ],
        )?;
        Ok((secret, row))
    }

    /// The user with this name, created on first use.
    pub fn ensure_user(&self, user_name: &str, display_name: &str, now: i64) -> Result<User> {
        {
            let conn = self.conn();
            let id = crate::principals::new_principal_id(&conn)?;
            conn.execute(
                "INSERT INTO users (id, user_name, display_name, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(user_name) DO NOTHING",
                params![id, user_name, display_name, now],
            )?;
        }
        self.user_named(user_name)
    }

    /// The workspace's first user, created on first use and kept in `admins`.
    pub fn ensure_admin(&self, user_name: &str, display_name: &str, now: i64) -> Result<User> {
        let user = self.ensure_user(user_name, display_name, now)?;
        self.add_to_group(crate::ADMINS_GROUP, user.id)?;
        self.user_named(user_name)
    }

    /// The user or service principal with this name (a service principal's
    /// is its application id), with whether it is an admin.
    pub fn find_user(&self, user_name: &str) -> Result<Option<User>> {
        let exists: bool =
            self.conn()
                .query_row("SELECT EXISTS (SELECT 1 FROM users WHERE user_name = ?1)", [user_name], |r| r.get(0))?;
        if !exists {
            return Ok(None);
        }
        self.user_named(user_name).map(Some)
    }

    fn user_named(&self, user_name: &str) -> Result<User> {
        let (id, display_name) =
            self.conn().query_row("SELECT id, display_name FROM users WHERE user_name = ?1", [user_name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        Ok(User { id, user_name: user_name.to_string(), display_name, admin: self.is_admin(id)? })
    }

    pub fn count_tokens(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM tokens WHERE purpose = 'user'", crate::db::params![], |r| r.get(0))?)
    }

    /// The token whose secret this is, its user, and whether that user is active.
    pub fn find_token(&self, secret: &str) -> Result<Option<(TokenRow, User, bool)>> {
        let found = self
            .reader()
            .query_row(
                "SELECT t.token_id, t.user_id, t.comment, t.creation_time, t.expiry_time,
                        u.user_name, u.display_name, u.active
                 FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1",
                [hash_token(secret)],
                |r| {
                    Ok((
                        token_row(r)?,
                        User { id: r.get(1)?, user_name: r.get(5)?, display_name: r.get(6)?, admin: false },
                        r.get::<bool>(7)?,
                    ))
                },
            )
            .optional()?;
        let Some((token, mut user, active)) = found else { return Ok(None) };
        user.admin = self.is_admin(user.id)?;
        Ok(Some((token, user, active)))
    }

    /// The active user whose live token has this secret at `now`: the check
    /// every edge makes of a caller's credentials.
    pub fn authenticate(&self, secret: &str, now: i64) -> std::result::Result<User, AuthError> {
        match self.find_token(secret)? {
            Some((token, _, _)) if !token.is_live_at(now) => Err(AuthError::Expired),
            Some((_, _, false)) => Err(AuthError::Inactive),
            Some((_, user, true)) => Ok(user),
            None => Err(AuthError::Invalid),
        }
    }

    pub fn list_tokens(&self, user_id: i64) -> Result<Vec<TokenRow>> {
        Ok(self.all_tokens(Some(user_id))?.into_iter().map(|(t, _)| t).collect())
    }

    /// Users' tokens (never engines'), of one owner or all, with their owners' names.
    pub fn all_tokens(&self, owner: Option<i64>) -> Result<Vec<(TokenRow, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT t.token_id, t.user_id, t.comment, t.creation_time, t.expiry_time, u.user_name
             FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE t.purpose = 'user' AND (t.user_id = ?1 OR ?1 IS NULL) ORDER BY t.creation_time, t.token_id",
        )?;
        let rows = stmt.query_map([owner], |r| Ok((token_row(r)?, r.get(5)?)))?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// Deletes a user's token whoever owns it; false when there was none.
    pub fn revoke_token(&self, token_id: &str) -> Result<bool> {
        let n = self.conn().execute("DELETE FROM tokens WHERE token_id = ?1 AND purpose = 'user'", [token_id])?;
        Ok(n > 0)
    }

    /// Deletes a token of this user; false when there was none.
    pub fn delete_token(&self, user_id: i64, token_id: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM tokens WHERE token_id = ?1 AND user_id = ?2 AND purpose = 'user'",
            params![token_id, user_id],
        )?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_secret_and_stored_hashed() {
        let store = crate::test_store();
        let user = store.ensure_user("admin", "Admin", 1).unwrap();
        assert_eq!(store.ensure_user("admin", "Admin", 2).unwrap(), user);
        let (secret, row) = store.create_token(&user, "c", None, 1).unwrap();
        assert_eq!(row.expiry_time, -1);
        assert!(row.is_live_at(i64::MAX));
        let (_, short) = store.create_token(&user, "short", Some(1), 0).unwrap();
        assert!(short.is_live_at(999) && !short.is_live_at(1000));
        assert!(store.delete_token(user.id, &short.token_id).unwrap());
        assert_eq!(store.find_token(&secret).unwrap().unwrap().0, row);
        assert!(store.find_token("dapiwrong").unwrap().is_none());
        assert_eq!(store.authenticate(&secret, i64::MAX).unwrap(), user);
        let stored: String =
            store.conn().query_row("SELECT token_hash FROM tokens", crate::db::params![], |r| r.get(0)).unwrap();
        assert!(!stored.contains(&secret));
        let (engine_secret, _) = store.create_engine_token(&user, "engine of c1", 1).unwrap();
        assert!(store.find_token(&engine_secret).unwrap().is_some());
        assert_eq!(store.list_tokens(user.id).unwrap(), vec![row.clone()]);
        assert_eq!(store.revoke_engine_tokens(Some("engine of c1")).unwrap(), 1);
        assert!(store.delete_token(user.id, &row.token_id).unwrap());
        assert!(!store.delete_token(user.id, &row.token_id).unwrap());
    }

    #[test]
    fn a_token_authenticates_its_user_until_it_expires() {
        let store = crate::test_store();
        let user = store.ensure_user("u", "U", 1).unwrap();
        let (secret, _) = store.create_token(&user, "short", Some(1), 0).unwrap();
        assert_eq!(store.authenticate(&secret, 999).unwrap(), user);
        assert!(matches!(store.authenticate(&secret, 1000), Err(AuthError::Expired)));
        assert!(matches!(store.authenticate("dapinotatoken", 0), Err(AuthError::Invalid)));
        assert_eq!(AuthError::Invalid.to_string(), "Invalid access token");
        assert_eq!(AuthError::Expired.to_string(), "Token expired");
    }
}
