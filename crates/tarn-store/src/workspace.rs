//! Workspace objects by path. The content is on disk (`tarn-files` decides
//! where); a row keeps the object's stable id, its type and a notebook's
//! language.

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store};

/// One workspace object as stored. `object_type` is `NOTEBOOK`, `FILE` or
/// `DIRECTORY`; `language` is set for notebooks only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceObject {
    pub object_id: i64,
    pub path: String,
    pub parent: String,
    pub object_type: String,
    pub language: Option<String>,
    pub created_at: i64,
    pub modified_at: i64,
    /// Who created it: its owner (empty: no owner, admins only).
    pub creator: String,
}

const COLUMNS: &str = "object_id, path, parent, object_type, language, created_at, modified_at, creator";

fn row(r: &Row<'_>) -> crate::db::Result<WorkspaceObject> {
    Ok(WorkspaceObject {
        object_id: r.get(0)?,
        path: r.get(1)?,
        parent: r.get(2)?,
        object_type: r.get(3)?,
        language: r.get(4)?,
        created_at: r.get(5)?,
        modified_at: r.get(6)?,
        creator: r.get(7)?,
    })
}

impl Store {
    pub fn get_workspace_object(&self, path: &str) -> Result<Option<WorkspaceObject>> {
        let sql = format!("SELECT {COLUMNS} FROM workspace_objects WHERE path = ?1");
        Ok(self.reader().query_row(&sql, [path], row).optional()?)
    }

    pub fn get_workspace_object_by_id(&self, object_id: i64) -> Result<Option<WorkspaceObject>> {
        let sql = format!("SELECT {COLUMNS} FROM workspace_objects WHERE object_id = ?1");
        Ok(self.reader().query_row(&sql, [object_id], row).optional()?)
    }

    /// The objects directly under `parent`, by path.
    pub fn list_workspace_children(&self, parent: &str) -> Result<Vec<WorkspaceObject>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare(&format!("SELECT {COLUMNS} FROM workspace_objects WHERE parent = ?1 ORDER BY path"))?;
        let rows = stmt.query_map([parent], row)?.collect::<crate::db::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn count_workspace_children(&self, parent: &str) -> Result<i64> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM workspace_objects WHERE parent = ?1", [parent], |r| r.get(0))?)
    }

    /// Stores the object at `o.path`: a new row with a fresh id, or, when the
    /// path is taken, the same row (same id and `created_at`) with the new
    /// type, language and `modified_at` (and its creator). `o.object_id` and
    /// `o.created_at` are ignored; the stored row is returned.
    pub fn put_workspace_object(&self, o: &WorkspaceObject) -> Result<WorkspaceObject> {
        let sql = format!(
            "INSERT INTO workspace_objects (path, parent, object_type, language, created_at, modified_at, creator)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
             ON CONFLICT(path) DO UPDATE SET object_type = excluded.object_type, language = excluded.language,
                 modified_at = excluded.modified_at
             RETURNING {COLUMNS}"
        );
        let values = params![o.path, o.parent, o.object_type, o.language, o.modified_at, o.creator];
        Ok(self.conn().query_row(&sql, values, row)?)
    }

    /// The directory row at `path`, inserted first if the path is free. An
    /// existing row of another type is returned unchanged: the caller decides.
    pub fn ensure_workspace_directory(
        &self,
        path: &str,
        parent: &str,
        creator: &str,
        at: i64,
    ) -> Result<WorkspaceObject> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO workspace_objects (path, parent, object_type, language, created_at, modified_at, creator)
             VALUES (?1, ?2, 'DIRECTORY', NULL, ?3, ?3, ?4) ON CONFLICT(path) DO NOTHING",
            params![path, parent, at, creator],
        )?;
        let sql = format!("SELECT {COLUMNS} FROM workspace_objects WHERE path = ?1");
        Ok(conn.query_row(&sql, [path], row)?)
    }

    /// Deletes the object at `path` and everything below it; returns how many
    /// rows went. Paths below `p` are exactly those in `[p + "/", p + "0")`,
    /// '0' being the character after '/'.
    pub fn delete_workspace_tree(&self, path: &str) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM workspace_objects WHERE path = ?1 OR (path >= ?1 || '/' AND path < ?1 || '0')",
            [path],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(path: &str, parent: &str, object_type: &str, at: i64) -> WorkspaceObject {
        WorkspaceObject {
            object_id: 0,
            path: path.into(),
            parent: parent.into(),
            object_type: object_type.into(),
            language: (object_type == "NOTEBOOK").then(|| "PYTHON".into()),
            created_at: 0,
            modified_at: at,
            creator: "me".into(),
        }
    }

    #[test]
    fn ids_survive_overwrite_and_trees_delete_by_prefix() {
        let store = crate::test_store();
        let dir = store.ensure_workspace_directory("/a", "/", "me", 1).unwrap();
        assert_eq!(store.ensure_workspace_directory("/a", "/", "me", 9).unwrap(), dir);
        let nb = store.put_workspace_object(&object("/a/nb", "/a", "NOTEBOOK", 2)).unwrap();
        let again = store.put_workspace_object(&object("/a/nb", "/a", "FILE", 3)).unwrap();
        assert_eq!((again.object_id, again.created_at, again.modified_at), (nb.object_id, 2, 3));
        assert_eq!((again.object_type.as_str(), again.language), ("FILE", None));
        store.put_workspace_object(&object("/a/b", "/a", "DIRECTORY", 4)).unwrap();
        store.put_workspace_object(&object("/a/b/c", "/a/b", "FILE", 4)).unwrap();
        store.put_workspace_object(&object("/a0", "/", "FILE", 4)).unwrap();
        store.put_workspace_object(&object("/a.x", "/", "FILE", 4)).unwrap();
        let children: Vec<_> = store.list_workspace_children("/a").unwrap().into_iter().map(|o| o.path).collect();
        assert_eq!(children, ["/a/b", "/a/nb"]);
        assert_eq!(store.count_workspace_children("/a").unwrap(), 2);
        assert_eq!(store.delete_workspace_tree("/a").unwrap(), 4);
        assert!(store.get_workspace_object("/a/b/c").unwrap().is_none());
        // Siblings that merely share the prefix stay.
        assert!(store.get_workspace_object("/a0").unwrap().is_some());
        assert!(store.get_workspace_object("/a.x").unwrap().is_some());
        let fresh = store.put_workspace_object(&object("/a/nb", "/a", "NOTEBOOK", 5)).unwrap();
        assert_ne!(fresh.object_id, nb.object_id);
    }
}
