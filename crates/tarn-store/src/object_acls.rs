//! Direct permissions on workspace objects, as the Permissions API sets
//! them; what they allow is `tarn-identity`'s.

use crate::db::params;

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectAclRow {
    /// `user`, `service_principal` or `group`.
    pub principal_kind: String,
    pub principal: String,
    pub level: String,
}

impl Store {
    pub fn object_acls(&self, object_type: &str, object_id: &str) -> Result<Vec<ObjectAclRow>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT principal_kind, principal, level FROM object_acls
             WHERE object_type = ?1 AND object_id = ?2 ORDER BY principal_kind, principal",
        )?;
        let rows = stmt.query_map(params![object_type, object_id], |r| {
            Ok(ObjectAclRow { principal_kind: r.get(0)?, principal: r.get(1)?, level: r.get(2)? })
        })?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// Replaces an object's direct permissions.
    pub fn set_object_acls(&self, object_type: &str, object_id: &str, rows: &[ObjectAclRow]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM object_acls WHERE object_type = ?1 AND object_id = ?2",
            params![object_type, object_id],
        )?;
        for row in rows {
            tx.execute(
                "INSERT INTO object_acls (object_type, object_id, principal_kind, principal, level)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (object_type, object_id, principal_kind, principal) DO UPDATE SET level = excluded.level",
                params![object_type, object_id, row.principal_kind, row.principal, row.level],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}
