//! The model registry: registered models, versions, tags and aliases.

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredModelRow {
    /// Databricks' `registered_model_databricks.id`, kept across renames.
    pub id: String,
    pub name: String,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub description: String,
    /// Who created it: its owner.
    pub creator: String,
    pub tags: Vec<(String, String)>,
    /// (alias, version)
    pub aliases: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelVersionRow {
    pub name: String,
    pub version: i64,
    pub creation_time: i64,
    pub last_updated_time: i64,
    pub description: String,
    pub user_id: String,
    pub current_stage: String,
    pub source: String,
    pub storage_location: String,
    pub run_id: Option<String>,
    pub run_link: Option<String>,
    pub model_id: Option<String>,
    pub status: String,
    pub tags: Vec<(String, String)>,
    pub aliases: Vec<String>,
}

const VERSION_COLUMNS: &str = "name, version, creation_time, last_updated_time, description, user_id, current_stage, \
                               source, storage_location, run_id, run_link, model_id, status";

fn version_row(r: &Row<'_>) -> crate::db::Result<ModelVersionRow> {
    Ok(ModelVersionRow {
        name: r.get(0)?,
        version: r.get(1)?,
        creation_time: r.get(2)?,
        last_updated_time: r.get(3)?,
        description: r.get(4)?,
        user_id: r.get(5)?,
        current_stage: r.get(6)?,
        source: r.get(7)?,
        storage_location: r.get(8)?,
        run_id: r.get(9)?,
        run_link: r.get(10)?,
        model_id: r.get(11)?,
        status: r.get(12)?,
        tags: Vec::new(),
        aliases: Vec::new(),
    })
}

fn complete_version(conn: &crate::db::Conn, mut v: ModelVersionRow) -> Result<ModelVersionRow> {
    let mut tags = conn.prepare_cached(
        "SELECT key, value FROM mlflow_model_version_tags WHERE name = ?1 AND version = ?2 ORDER BY key",
    )?;
    v.tags = tags
        .query_map(params![v.name, v.version], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<crate::db::Result<_>>()?;
    let mut aliases = conn.prepare_cached(
        "SELECT alias FROM mlflow_registered_model_aliases WHERE name = ?1 AND version = ?2 ORDER BY alias",
    )?;
    v.aliases = aliases.query_map(params![v.name, v.version], |r| r.get(0))?.collect::<crate::db::Result<_>>()?;
    Ok(v)
}

fn complete_model(conn: &crate::db::Conn, mut m: RegisteredModelRow) -> Result<RegisteredModelRow> {
    let mut tags =
        conn.prepare_cached("SELECT key, value FROM mlflow_registered_model_tags WHERE name = ?1 ORDER BY key")?;
    m.tags = tags.query_map([&m.name], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<crate::db::Result<_>>()?;
    let mut aliases = conn
        .prepare_cached("SELECT alias, version FROM mlflow_registered_model_aliases WHERE name = ?1 ORDER BY alias")?;
    m.aliases = aliases.query_map([&m.name], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<crate::db::Result<_>>()?;
    Ok(m)
}

impl Store {
    /// `false` when the name is taken.
    pub fn create_registered_model(
        &self,
        name: &str,
        creator: &str,
        description: &str,
        tags: &[(String, String)],
        now: i64,
    ) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let inserted = tx.execute(
            "INSERT INTO mlflow_registered_models
                 (name, creation_time, last_updated_time, description, creator, model_id)
             VALUES (?1, ?2, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
            params![name, now, description, creator, tarn_core::id::random_hex(16)],
        )?;
        if inserted == 0 {
            return Ok(false);
        }
        for (key, value) in tags {
            tx.execute(
                "INSERT INTO mlflow_registered_model_tags (name, key, value) VALUES (?1, ?2, ?3)
                 ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
                params![name, key, value],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    pub fn get_registered_model(&self, name: &str) -> Result<Option<RegisteredModelRow>> {
        self.registered_model_where("name", name)
    }

    /// The registered model with Databricks id `id`.
    pub fn get_registered_model_by_id(&self, id: &str) -> Result<Option<RegisteredModelRow>> {
        self.registered_model_where("model_id", id)
    }

    fn registered_model_where(&self, column: &str, value: &str) -> Result<Option<RegisteredModelRow>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT name, creation_time, last_updated_time, description, COALESCE(model_id, ''), creator
             FROM mlflow_registered_models WHERE {column} = ?1"
        );
        let found = conn
            .query_row(&sql, [value], |r| {
                Ok(RegisteredModelRow {
                    name: r.get(0)?,
                    creation_time: r.get(1)?,
                    last_updated_time: r.get(2)?,
                    description: r.get(3)?,
                    id: r.get(4)?,
                    creator: r.get(5)?,
                    tags: Vec::new(),
                    aliases: Vec::new(),
                })
            })
            .optional()?;
        found.map(|m| complete_model(&conn, m)).transpose()
    }

    pub fn list_registered_model_names(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name FROM mlflow_registered_models ORDER BY name")?;
        Ok(stmt.query_map(crate::db::params![], |r| r.get(0))?.collect::<crate::db::Result<_>>()?)
    }

    pub fn update_registered_model(&self, name: &str, description: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE mlflow_registered_models SET description = ?2, last_updated_time = ?3 WHERE name = ?1",
            params![name, description, now],
        )?;
        Ok(())
    }

    /// Hands the model to `owner` (Unity Catalog's `owner`).
    pub fn set_registered_model_creator(&self, name: &str, owner: &str, now: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE mlflow_registered_models SET creator = ?2, last_updated_time = ?3 WHERE name = ?1",
            params![name, owner, now],
        )?;
        Ok(())
    }

    /// `false` when `new_name` is taken.
    pub fn rename_registered_model(&self, name: &str, new_name: &str, now: i64) -> Result<bool> {
        let conn = self.conn();
        let taken: Option<i64> = conn
            .query_row("SELECT 1 FROM mlflow_registered_models WHERE name = ?1", [new_name], |r| r.get(0))
            .optional()?;
        if taken.is_some() {
            return Ok(false);
        }
        conn.execute(
            "UPDATE mlflow_registered_models SET name = ?2, last_updated_time = ?3 WHERE name = ?1",
            params![name, new_name, now],
        )?;
        Ok(true)
    }

    pub fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.conn().execute("DELETE FROM mlflow_registered_models WHERE name = ?1", [name])?;
        Ok(())
    }

    pub fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO mlflow_registered_model_tags (name, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, key) DO UPDATE SET value = excluded.value",
            params![name, key, value],
        )?;
        Ok(())
    }

    pub fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<bool> {
        let n = self
            .conn()
            .execute("DELETE FROM mlflow_registered_model_tags WHERE name = ?1 AND key = ?2", params![name, key])?;
        Ok(n > 0)
    }

    /// Adds the next version of `v.name` (its `version` is ignored) and returns it.
    pub fn create_model_version(&self, v: &ModelVersionRow) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let version: i64 = tx.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM mlflow_model_versions WHERE name = ?1",
            [&v.name],
            |r| r.get(0),
        )?;
        tx.execute(
            &format!(
                "INSERT INTO mlflow_model_versions ({VERSION_COLUMNS})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
            ),
            params![
                v.name,
                version,
                v.creation_time,
                v.last_updated_time,
                v.description,
                v.user_id,
                v.current_stage,
                v.source,
                v.storage_location,
                v.run_id,
                v.run_link,
                v.model_id,
                v.status
            ],
        )?;
        for (key, value) in &v.tags {
            tx.execute(
                "INSERT INTO mlflow_model_version_tags (name, version, key, value) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
                params![v.name, version, key, value],
            )?;
        }
        tx.execute(
            "UPDATE mlflow_registered_models SET last_updated_time = ?2 WHERE name = ?1",
            params![v.name, v.creation_time],
        )?;
        tx.commit()?;
        Ok(version)
    }

    pub fn get_model_version(&self, name: &str, version: i64) -> Result<Option<ModelVersionRow>> {
        let conn = self.conn();
        let sql = format!("SELECT {VERSION_COLUMNS} FROM mlflow_model_versions WHERE name = ?1 AND version = ?2");
        let found = conn.query_row(&sql, params![name, version], version_row).optional()?;
        found.map(|v| complete_version(&conn, v)).transpose()
    }

    /// Every version, of one model or of all, by name then version.
    pub fn list_model_versions(&self, name: Option<&str>) -> Result<Vec<ModelVersionRow>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM mlflow_model_versions WHERE name = ?1 OR ?1 IS NULL ORDER BY name, version"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([name], version_row)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|v| complete_version(&conn, v)).collect()
    }

    pub fn update_model_version(
        &self,
        name: &str,
        version: i64,
        description: &str,
        stage: &str,
        now: i64,
    ) -> Result<()> {
        self.conn().execute(
            "UPDATE mlflow_model_versions SET description = ?3, current_stage = ?4, last_updated_time = ?5
             WHERE name = ?1 AND version = ?2",
            params![name, version, description, stage, now],
        )?;
        Ok(())
    }

    pub fn delete_model_version(&self, name: &str, version: i64) -> Result<()> {
        self.conn()
            .execute("DELETE FROM mlflow_model_versions WHERE name = ?1 AND version = ?2", params![name, version])?;
        Ok(())
    }

    pub fn set_model_version_tag(&self, name: &str, version: i64, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO mlflow_model_version_tags (name, version, key, value) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value",
            params![name, version, key, value],
        )?;
        Ok(())
    }

    pub fn delete_model_version_tag(&self, name: &str, version: i64, key: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM mlflow_model_version_tags WHERE name = ?1 AND version = ?2 AND key = ?3",
            params![name, version, key],
        )?;
        Ok(n > 0)
    }

    pub fn set_registered_model_alias(&self, name: &str, alias: &str, version: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO mlflow_registered_model_aliases (name, alias, version) VALUES (?1, ?2, ?3)
             ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
            params![name, alias, version],
        )?;
        Ok(())
    }

    pub fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<bool> {
        let n = self.conn().execute(
            "DELETE FROM mlflow_registered_model_aliases WHERE name = ?1 AND alias = ?2",
            params![name, alias],
        )?;
        Ok(n > 0)
    }

    pub fn alias_version(&self, name: &str, alias: &str) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT version FROM mlflow_registered_model_aliases WHERE name = ?1 AND alias = ?2",
                params![name, alias],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// One page of a model's versions, newest first (the registry's pages
    /// list them without reading every version).
    pub fn model_versions_page(&self, name: &str, offset: u64, limit: u64) -> Result<Vec<ModelVersionRow>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM mlflow_model_versions WHERE name = ?1 ORDER BY version DESC LIMIT ?2 OFFSET ?3"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![name, limit, offset], version_row)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(|v| complete_version(&conn, v)).collect()
    }

    /// How many versions a model has.
    pub fn count_model_versions(&self, name: &str) -> Result<u64> {
        let n: i64 =
            self.conn()
                .query_row("SELECT count(*) FROM mlflow_model_versions WHERE name = ?1", [name], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
