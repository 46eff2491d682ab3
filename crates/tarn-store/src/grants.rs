//! Unity Catalog privileges as granted: (object id, principal, privilege)
//! rows. What they allow, and inheritance, are `tarn-catalog`'s.

use crate::db::params;

use crate::{Result, Store};

impl Store {
    /// The privileges granted directly on each of `securable_ids`, as
    /// (securable id, principal, privilege), ordered by principal.
    pub fn uc_grants(&self, securable_ids: &[&str]) -> Result<Vec<(String, String, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT securable_id, principal, privilege FROM uc_grants WHERE securable_id = ?1
             ORDER BY principal, privilege",
        )?;
        let mut out = Vec::new();
        for id in securable_ids {
            let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            out.extend(rows.collect::<crate::db::Result<Vec<_>>>()?);
        }
        Ok(out)
    }

    /// Adds and removes (principal, privilege) pairs on one object, in one
    /// transaction.
    pub fn change_uc_grants(
        &self,
        securable_id: &str,
        add: &[(String, String)],
        remove: &[(String, String)],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        for (principal, privilege) in remove {
            tx.execute(
                "DELETE FROM uc_grants WHERE securable_id = ?1 AND principal = ?2 AND privilege = ?3",
                params![securable_id, principal, privilege],
            )?;
        }
        for (principal, privilege) in add {
            tx.execute(
                "INSERT INTO uc_grants (securable_id, principal, privilege) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                params![securable_id, principal, privilege],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::UcObject;

    #[test]
    fn grants_follow_their_object() {
        let store = crate::test_store();
        let object = |name: &str, id: &str| UcObject {
            kind: "catalog".into(),
            full_name: name.into(),
            parent: String::new(),
            id: id.into(),
            info: json!({}),
        };
        store.insert_uc_object(&object("c1", "id1")).unwrap();
        let add = [("bob".to_string(), "USE_CATALOG".to_string()), ("bob".into(), "SELECT".into())];
        store.change_uc_grants("id1", &add, &[]).unwrap();
        store.change_uc_grants("id1", &add[..1], &[("bob".into(), "SELECT".into())]).unwrap();
        assert_eq!(store.uc_grants(&["id1"]).unwrap(), [("id1".into(), "bob".into(), "USE_CATALOG".into())]);
        store.delete_uc_object("catalog", "c1", false).unwrap();
        assert!(store.uc_grants(&["id1"]).unwrap().is_empty());
    }
}
