//! Secret scopes, sealed secret values and scope ACLs. This module never
//! sees a value in clear: `tarn-identity` seals and opens them.

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretScopeRow {
    pub name: String,
    /// DATABRICKS (sealed here), VAULT or ENV.
    pub backend_type: String,
    /// The backend's settings (JSON text; never a credential).
    pub backend_config: String,
    pub creator: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretAclRow {
    pub principal: String,
    pub permission: String,
}

const SCOPE_COLUMNS: &str = "name, backend_type, backend_config, creator";

fn scope_row(r: &Row<'_>) -> crate::db::Result<SecretScopeRow> {
    Ok(SecretScopeRow { name: r.get(0)?, backend_type: r.get(1)?, backend_config: r.get(2)?, creator: r.get(3)? })
}

impl Store {
    /// Creates a scope with its creator's MANAGE; false if the name (in any case) is taken.
    pub fn create_secret_scope(&self, scope: &SecretScopeRow, now: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "INSERT INTO secret_scopes (name, backend_type, backend_config, creator, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(name) DO NOTHING",
            params![scope.name, scope.backend_type, scope.backend_config, scope.creator, now],
        )?;
        if n > 0 {
            tx.execute(
                "INSERT INTO secret_acls (scope, principal, permission) VALUES (?1, ?2, 'MANAGE')",
                params![scope.name, scope.creator],
            )?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    /// The scope named `name` in any case.
    pub fn get_secret_scope(&self, name: &str) -> Result<Option<SecretScopeRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {SCOPE_COLUMNS} FROM secret_scopes WHERE name = ?1"), [name], scope_row)
            .optional()?)
    }

    pub fn list_secret_scopes(&self) -> Result<Vec<SecretScopeRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {SCOPE_COLUMNS} FROM secret_scopes ORDER BY name"))?;
        let rows = stmt.query_map(crate::db::params![], scope_row)?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// Deletes a scope with its secrets and ACLs.
    pub fn delete_secret_scope(&self, name: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM secret_scopes WHERE name = ?1", [name])? > 0)
    }

    /// Writes a sealed value unless the scope already holds `limit` other
    /// keys; false when it does.
    pub fn put_secret(&self, scope: &str, key: &str, sealed: &[u8], now: i64, limit: usize) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let others: i64 =
            tx.query_row("SELECT COUNT(*) FROM secrets WHERE scope = ?1 AND key != ?2", params![scope, key], |r| {
                r.get(0)
            })?;
        if others as usize >= limit {
            return Ok(false);
        }
        tx.execute(
            "INSERT INTO secrets (scope, key, sealed, last_updated) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(scope, key) DO UPDATE SET sealed = excluded.sealed, last_updated = excluded.last_updated",
            params![scope, key, sealed, now],
        )?;
        tx.commit()?;
        Ok(true)
    }

    pub fn get_secret(&self, scope: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn()
            .query_row("SELECT sealed FROM secrets WHERE scope = ?1 AND key = ?2", params![scope, key], |r| r.get(0))
            .optional()?)
    }

    /// Keys and their last update (ms), never values.
    pub fn list_secrets(&self, scope: &str) -> Result<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT key, last_updated FROM secrets WHERE scope = ?1 ORDER BY key")?;
        let rows = stmt.query_map([scope], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    pub fn delete_secret(&self, scope: &str, key: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM secrets WHERE scope = ?1 AND key = ?2", params![scope, key])? > 0)
    }

    pub fn put_secret_acl(&self, scope: &str, acl: &SecretAclRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO secret_acls (scope, principal, permission) VALUES (?1, ?2, ?3)
             ON CONFLICT(scope, principal) DO UPDATE SET permission = excluded.permission",
            params![scope, acl.principal, acl.permission],
        )?;
        Ok(())
    }

    pub fn delete_secret_acl(&self, scope: &str, principal: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM secret_acls WHERE scope = ?1 AND principal = ?2", params![scope, principal])?
            > 0)
    }

    pub fn list_secret_acls(&self, scope: &str) -> Result<Vec<SecretAclRow>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT principal, permission FROM secret_acls WHERE scope = ?1 ORDER BY principal")?;
        let rows = stmt.query_map([scope], |r| Ok(SecretAclRow { principal: r.get(0)?, permission: r.get(1)? }))?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }
}
