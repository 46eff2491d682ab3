//! Users and personal access tokens. Only the SHA-256 of a token is stored.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub user_name: String,
    pub display_name: String,
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

pub fn hash_token(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new token's secret: `dapi` and 32 hex digits, as Databricks forms them.
pub fn new_token_secret() -> String {
    format!("dapi{}", tarn_core::id::random_hex(16))
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
        let secret = new_token_secret();
        let row = TokenRow {
            token_id: tarn_core::id::random_hex(32),
            user_id: user.id,
            comment: comment.to_string(),
            creation_time: now,
            expiry_time: lifetime_seconds.filter(|s| *s > 0).map_or(-1, |s| now.saturating_add(s.saturating_mul(1000))),
        };
        self.insert_token(&row, &secret)?;
        Ok((secret, row))
    }

    /// The user with this name, created on first use.
    pub fn ensure_user(&self, user_name: &str, display_name: &str, now: i64) -> Result<User> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO users (user_name, display_name, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(user_name) DO NOTHING",
            params![user_name, display_name, now],
        )?;
        Ok(conn.query_row("SELECT id, user_name, display_name FROM users WHERE user_name = ?1", [user_name], |r| {
            Ok(User { id: r.get(0)?, user_name: r.get(1)?, display_name: r.get(2)? })
        })?)
    }

    pub fn count_tokens(&self) -> Result<i64> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0))?)
    }

    pub fn insert_token(&self, token: &TokenRow, secret: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO tokens (token_id, token_hash, user_id, comment, creation_time, expiry_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                token.token_id,
                hash_token(secret),
                token.user_id,
                token.comment,
                token.creation_time,
                token.expiry_time
            ],
        )?;
        Ok(())
    }

    /// The token whose secret this is, and its user.
    pub fn find_token(&self, secret: &str) -> Result<Option<(TokenRow, User)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT t.token_id, t.user_id, t.comment, t.creation_time, t.expiry_time,
                        u.user_name, u.display_name
                 FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?1",
                [hash_token(secret)],
                |r| {
                    Ok((
                        TokenRow {
                            token_id: r.get(0)?,
                            user_id: r.get(1)?,
                            comment: r.get(2)?,
                            creation_time: r.get(3)?,
                            expiry_time: r.get(4)?,
                        },
                        User { id: r.get(1)?, user_name: r.get(5)?, display_name: r.get(6)? },
                    ))
                },
            )
            .optional()?)
    }

    pub fn list_tokens(&self, user_id: i64) -> Result<Vec<TokenRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT token_id, user_id, comment, creation_time, expiry_time
             FROM tokens WHERE user_id = ?1 ORDER BY creation_time, token_id",
        )?;
        let rows = stmt.query_map([user_id], |r| {
            Ok(TokenRow {
                token_id: r.get(0)?,
                user_id: r.get(1)?,
                comment: r.get(2)?,
                creation_time: r.get(3)?,
                expiry_time: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a token of this user; false when there was none.
    pub fn delete_token(&self, user_id: i64, token_id: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM tokens WHERE token_id = ?1 AND user_id = ?2", params![token_id, user_id])?;
        Ok(n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_by_secret_and_stored_hashed() {
        let store = Store::open_in_memory().unwrap();
        let user = store.ensure_user("admin", "Admin", 1).unwrap();
        assert_eq!(store.ensure_user("admin", "Admin", 2).unwrap(), user);
        let row = TokenRow {
            token_id: "t1".into(),
            user_id: user.id,
            comment: "c".into(),
            creation_time: 1,
            expiry_time: -1,
        };
        store.insert_token(&row, "dapisecret").unwrap();
        assert_eq!(store.find_token("dapisecret").unwrap().unwrap().0, row);
        assert!(store.find_token("dapiwrong").unwrap().is_none());
        let stored: String = store.conn().query_row("SELECT token_hash FROM tokens", [], |r| r.get(0)).unwrap();
        assert!(!stored.contains("dapisecret"));
        assert!(store.delete_token(user.id, "t1").unwrap());
        assert!(!store.delete_token(user.id, "t1").unwrap());
    }
}
