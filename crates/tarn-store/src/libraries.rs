//! Cluster libraries: which libraries each cluster has, in the order asked
//! for, and which are to go at its next start.

use crate::db::params;

use crate::{Result, Store, from_json_text, to_json_text};

/// One library of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryRow {
    /// The library's canonical text: equal libraries have equal keys.
    pub key: String,
    /// The library as the API gives it (`{"pypi": {"package": ...}}`).
    pub library: serde_json::Value,
    pub uninstall_pending: bool,
}

impl Store {
    /// The cluster's libraries in the order they were first asked for.
    pub fn cluster_libraries(&self, cluster_id: &str) -> Result<Vec<LibraryRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key, library, uninstall_pending FROM cluster_libraries WHERE cluster_id = ?1 ORDER BY position",
        )?;
        let rows = stmt
            .query_map([cluster_id], |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<bool>(2)?)))?
            .collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter()
            .map(|(key, library, uninstall_pending)| {
                Ok(LibraryRow {
                    key,
                    library: from_json_text("cluster_libraries.library", &library)?,
                    uninstall_pending,
                })
            })
            .collect()
    }

    /// Clusters that have libraries.
    pub fn clusters_with_libraries(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT DISTINCT cluster_id FROM cluster_libraries ORDER BY cluster_id")?;
        let ids = stmt.query_map(crate::db::params![], |r| r.get(0))?.collect::<crate::db::Result<Vec<String>>>()?;
        Ok(ids)
    }

    /// Adds libraries the cluster does not have yet (at the end, in order);
    /// one asked for again after an uninstall is kept instead of removed.
    pub fn add_cluster_libraries(&self, cluster_id: &str, libraries: &[(String, serde_json::Value)]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let next: i64 = tx.query_row(
            "SELECT COALESCE(MAX(position), -1) + 1 FROM cluster_libraries WHERE cluster_id = ?1",
            [cluster_id],
            |r| r.get(0),
        )?;
        for (i, (key, library)) in libraries.iter().enumerate() {
            tx.execute(
                "INSERT INTO cluster_libraries (cluster_id, key, library, position) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (cluster_id, key) DO UPDATE SET uninstall_pending = 0",
                params![cluster_id, key, to_json_text(library), next + i as i64],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Marks libraries to be removed at the cluster's next start; returns how
    /// many of them the cluster had.
    pub fn mark_cluster_libraries_uninstalled(&self, cluster_id: &str, keys: &[String]) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n = 0;
        for key in keys {
            n += tx.execute(
                "UPDATE cluster_libraries SET uninstall_pending = 1 WHERE cluster_id = ?1 AND key = ?2",
                params![cluster_id, key],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Removes the libraries marked for uninstall (the cluster is starting).
    pub fn drop_uninstalled_libraries(&self, cluster_id: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM cluster_libraries WHERE cluster_id = ?1 AND uninstall_pending = 1", [cluster_id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn libraries_keep_their_order_and_uninstall_at_restart() {
        let store = crate::test_store();
        let a = ("pypi:a".to_string(), json!({"pypi": {"package": "a"}}));
        let b = ("pypi:b".to_string(), json!({"pypi": {"package": "b"}}));
        store.add_cluster_libraries("c1", &[a.clone(), b.clone()]).unwrap();
        store.add_cluster_libraries("c1", std::slice::from_ref(&a)).unwrap();
        let keys = |store: &Store| {
            store.cluster_libraries("c1").unwrap().into_iter().map(|r| (r.key, r.uninstall_pending)).collect::<Vec<_>>()
        };
        assert_eq!(keys(&store), [("pypi:a".to_string(), false), ("pypi:b".to_string(), false)]);
        assert_eq!(store.mark_cluster_libraries_uninstalled("c1", &["pypi:a".into(), "pypi:z".into()]).unwrap(), 1);
        assert_eq!(keys(&store), [("pypi:a".to_string(), true), ("pypi:b".to_string(), false)]);
        store.add_cluster_libraries("c1", &[a]).unwrap();
        assert_eq!(keys(&store)[0], ("pypi:a".to_string(), false), "asked for again: kept");
        store.mark_cluster_libraries_uninstalled("c1", &["pypi:a".into()]).unwrap();
        store.drop_uninstalled_libraries("c1").unwrap();
        assert_eq!(keys(&store), [("pypi:b".to_string(), false)]);
        assert_eq!(store.clusters_with_libraries().unwrap(), ["c1"]);
        assert_eq!(store.cluster_libraries("c2").unwrap(), []);
    }
}
