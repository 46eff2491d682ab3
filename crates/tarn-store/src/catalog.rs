//! Unity Catalog objects and Delta commit coordination. Objects are stored
//! as their UC info JSON; `tarn-catalog` decides what goes in it.

use crate::db::{OptionalExtension, Row, params};
use serde_json::Value;

use crate::{Result, Store, from_json_text, to_json_text};

#[derive(Debug, Clone, PartialEq)]
pub struct UcObject {
    pub kind: String,
    pub full_name: String,
    pub parent: String,
    pub id: String,
    pub info: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaCommit {
    pub version: i64,
    pub timestamp: i64,
    pub file_name: String,
    pub file_size: i64,
    pub file_modification_timestamp: i64,
}

/// Why a commit was not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// The version was not latest + 1.
    Conflict {
        latest: i64,
    },
}

fn object(kind: String, full_name: String, parent: String, id: String, info: String) -> Result<UcObject> {
    Ok(UcObject { kind, full_name, parent, id, info: from_json_text("uc_objects.info", &info)? })
}

type RawObject = (String, String, String, String, String);

fn raw(r: &Row<'_>) -> crate::db::Result<RawObject> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

impl Store {
    /// Inserts a new object; false when one of that kind and name exists.
    pub fn insert_uc_object(&self, o: &UcObject) -> Result<bool> {
        let n = self.conn().execute(
            "INSERT INTO uc_objects (kind, full_name, parent, id, info) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(kind, full_name) DO NOTHING",
            params![o.kind, o.full_name, o.parent, o.id, to_json_text(&o.info)],
        )?;
        Ok(n > 0)
    }

    /// Replaces an object's info (and its name, for renames); false when the
    /// object is gone.
    pub fn update_uc_object(&self, kind: &str, old_full_name: &str, o: &UcObject) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE uc_objects SET full_name = ?3, parent = ?4, info = ?5 WHERE kind = ?1 AND full_name = ?2",
            params![kind, old_full_name, o.full_name, o.parent, to_json_text(&o.info)],
        )?;
        Ok(n > 0)
    }

    pub fn get_uc_object(&self, kind: &str, full_name: &str) -> Result<Option<UcObject>> {
        let r = self
            .reader()
            .query_row(
                "SELECT kind, full_name, parent, id, info FROM uc_objects WHERE kind = ?1 AND full_name = ?2",
                params![kind, full_name],
                raw,
            )
            .optional()?;
        r.map(|(k, f, p, i, info)| object(k, f, p, i, info)).transpose()
    }

    pub fn get_uc_object_by_id(&self, id: &str) -> Result<Option<UcObject>> {
        let r = self
            .reader()
            .query_row("SELECT kind, full_name, parent, id, info FROM uc_objects WHERE id = ?1", [id], raw)
            .optional()?;
        r.map(|(k, f, p, i, info)| object(k, f, p, i, info)).transpose()
    }

    /// Objects of `kind` under `parent` ('' for catalogs), by name.
    pub fn list_uc_objects(&self, kind: &str, parent: &str) -> Result<Vec<UcObject>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT kind, full_name, parent, id, info FROM uc_objects
             WHERE kind = ?1 AND parent = ?2 ORDER BY full_name",
        )?;
        let rows = stmt.query_map(params![kind, parent], raw)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|(k, f, p, i, info)| object(k, f, p, i, info)).collect()
    }

    /// How many objects of any kind sit directly under `parent`.
    pub fn count_uc_children(&self, parent: &str) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM uc_objects WHERE parent = ?1 AND kind <> 'staging'",
            [parent],
            |r| r.get(0),
        )?)
    }

    /// Deletes the object and, with `cascade`, everything whose full name is
    /// under it. Returns the number of objects removed.
    pub fn delete_uc_object(&self, kind: &str, full_name: &str, cascade: bool) -> Result<usize> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut n =
            tx.execute("DELETE FROM uc_objects WHERE kind = ?1 AND full_name = ?2", params![kind, full_name])?;
        if n > 0 && cascade {
            let prefix = format!("{}.", full_name.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            n += tx.execute("DELETE FROM uc_objects WHERE full_name LIKE ?1 || '%' ESCAPE '\\'", [prefix])?;
        }
        tx.commit()?;
        Ok(n)
    }

    /// Records `commit` if its version is the next one: latest + 1, latest
    /// being the last tracked commit, or `untracked_latest` (what the log on
    /// disk holds) before the first.
    pub fn commit_delta(
        &self,
        table_id: &str,
        commit: &DeltaCommit,
        backfilled: Option<i64>,
        untracked_latest: i64,
    ) -> Result<CommitOutcome> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let latest: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), ?2) FROM delta_commits WHERE table_id = ?1",
            params![table_id, untracked_latest],
            |r| r.get(0),
        )?;
        if commit.version != latest + 1 {
            return Ok(CommitOutcome::Conflict { latest });
        }
        tx.execute(
            "INSERT INTO delta_commits (table_id, version, timestamp, file_name, file_size, file_modification_timestamp)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                table_id,
                commit.version,
                commit.timestamp,
                commit.file_name,
                commit.file_size,
                commit.file_modification_timestamp
            ],
        )?;
        if let Some(v) = backfilled {
            tx.execute(
                "INSERT INTO delta_backfill (table_id, version) VALUES (?1, ?2)
                 ON CONFLICT(table_id) DO UPDATE SET version = CASE
                     WHEN excluded.version > delta_backfill.version THEN excluded.version
                     ELSE delta_backfill.version END",
                params![table_id, v],
            )?;
        }
        tx.commit()?;
        Ok(CommitOutcome::Committed)
    }

    /// Commits not yet backfilled with versions in `[start, end]`, and the
    /// latest version committed through the catalog (-1 when none, as the
    /// UC API specifies).
    pub fn delta_commits(&self, table_id: &str, start: i64, end: Option<i64>) -> Result<(Vec<DeltaCommit>, i64)> {
        let conn = self.conn();
        let latest: i64 = conn.query_row(
            "SELECT COALESCE(MAX(version), -1) FROM delta_commits WHERE table_id = ?1",
            [table_id],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(
            "SELECT version, timestamp, file_name, file_size, file_modification_timestamp FROM delta_commits
             WHERE table_id = ?1 AND version >= ?2 AND version <= ?3
               AND version > COALESCE((SELECT version FROM delta_backfill WHERE table_id = ?1), -1)
             ORDER BY version",
        )?;
        let commits = stmt
            .query_map(params![table_id, start, end.unwrap_or(i64::MAX)], |r| {
                Ok(DeltaCommit {
                    version: r.get(0)?,
                    timestamp: r.get(1)?,
                    file_name: r.get(2)?,
                    file_size: r.get(3)?,
                    file_modification_timestamp: r.get(4)?,
                })
            })?
            .collect::<crate::db::Result<Vec<_>>>()?;
        Ok((commits, latest))
    }
}

/// Paged reads of a container's children, for lists too long to load whole.
impl Store {
    /// At most `limit` objects of `kind` under `parent`, by name, from `offset`.
    pub fn list_uc_objects_page(&self, kind: &str, parent: &str, offset: u64, limit: u64) -> Result<Vec<UcObject>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "SELECT kind, full_name, parent, id, info FROM uc_objects
             WHERE kind = ?1 AND parent = ?2 ORDER BY full_name LIMIT ?3 OFFSET ?4",
        )?;
        let (limit, offset) = (i64::try_from(limit).unwrap_or(i64::MAX), i64::try_from(offset).unwrap_or(i64::MAX));
        let rows = stmt.query_map(params![kind, parent, limit, offset], raw)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|(k, f, p, i, info)| object(k, f, p, i, info)).collect()
    }

    /// At most `limit` objects of `kind` under `parent`, by name, from
    /// `offset`, counting only those one of `principals` owns or holds one
    /// of `privileges` on (granted on the object itself).
    pub fn list_uc_objects_held(
        &self,
        kind: &str,
        parent: &str,
        principals: &[&str],
        privileges: &[&str],
        offset: u64,
        limit: u64,
    ) -> Result<Vec<UcObject>> {
        let marks = |from: usize, n: usize| (from..from + n).map(|i| format!("?{i}")).collect::<Vec<_>>().join(", ");
        let who = marks(5, principals.len());
        let what = marks(5 + principals.len(), privileges.len());
        // The grants' ids are read once; owners from the infos.
        let conn = self.reader();
        let owner = conn.dialect().json_field("info", "owner");
        let sql = format!(
            "SELECT kind, full_name, parent, id, info FROM uc_objects
             WHERE kind = ?1 AND parent = ?2
               AND (id IN (SELECT securable_id FROM uc_grants WHERE principal IN ({who}) AND privilege IN ({what}))
                    OR {owner} IN ({who}))
             ORDER BY full_name LIMIT ?3 OFFSET ?4"
        );
        let (limit, offset) = (i64::try_from(limit).unwrap_or(i64::MAX), i64::try_from(offset).unwrap_or(i64::MAX));
        let mut values: Vec<&dyn crate::db::ToValue> = vec![&kind, &parent, &limit, &offset];
        values.extend(principals.iter().map(|p| p as &dyn crate::db::ToValue));
        values.extend(privileges.iter().map(|p| p as &dyn crate::db::ToValue));
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(values.as_slice(), raw)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|(k, f, p, i, info)| object(k, f, p, i, info)).collect()
    }

    /// How many objects of `kind` sit under `parent`.
    pub fn count_uc_objects(&self, kind: &str, parent: &str) -> Result<u64> {
        let n: i64 = self.conn().query_row(
            "SELECT COUNT(*) FROM uc_objects WHERE kind = ?1 AND parent = ?2",
            params![kind, parent],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(kind: &str, full: &str, parent: &str) -> UcObject {
        UcObject { kind: kind.into(), full_name: full.into(), parent: parent.into(), id: full.into(), info: json!({}) }
    }

    #[test]
    fn objects_cascade_by_name_prefix() {
        let store = crate::test_store();
        assert!(store.insert_uc_object(&obj("schema", "c.s", "c")).unwrap());
        assert!(!store.insert_uc_object(&obj("schema", "c.s", "c")).unwrap());
        store.insert_uc_object(&obj("table", "c.s.t", "c.s")).unwrap();
        store.insert_uc_object(&obj("table", "c.s_x.t", "c.s_x")).unwrap();
        assert_eq!(store.count_uc_children("c.s").unwrap(), 1);
        assert_eq!(store.delete_uc_object("schema", "c.s", true).unwrap(), 2);
        assert!(store.get_uc_object("table", "c.s_x.t").unwrap().is_some());
    }

    #[test]
    fn commits_are_strictly_sequential() {
        let store = crate::test_store();
        let c = |v| DeltaCommit {
            version: v,
            timestamp: 1,
            file_name: format!("{v}.json"),
            file_size: 1,
            file_modification_timestamp: 1,
        };
        assert_eq!(store.delta_commits("t", 0, None).unwrap(), (vec![], -1));
        assert_eq!(store.commit_delta("t", &c(2), None, 0).unwrap(), CommitOutcome::Conflict { latest: 0 });
        assert_eq!(store.commit_delta("t", &c(1), None, 0).unwrap(), CommitOutcome::Committed);
        assert_eq!(store.commit_delta("t", &c(1), None, 0).unwrap(), CommitOutcome::Conflict { latest: 1 });
        store.commit_delta("t", &c(2), Some(1), 0).unwrap();
        let (commits, latest) = store.delta_commits("t", 0, None).unwrap();
        assert_eq!((commits.iter().map(|c| c.version).collect::<Vec<_>>(), latest), (vec![2], 2));
    }
}
