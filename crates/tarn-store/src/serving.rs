//! Model serving endpoints, one row each; which config states may follow
//! which is `tarn-serving`'s rule.

use crate::db::{OptionalExtension, Row};
use serde_json::Value;

use crate::{Result, Store, from_json_text, to_json_text};

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRow {
    pub name: String,
    pub id: String,
    pub creator: String,
    pub creation_timestamp: i64,
    pub last_updated_timestamp: i64,
    /// The live config, `None` until a first one has deployed.
    pub config: Option<Value>,
    pub pending_config: Option<Value>,
    pub config_update: String,
    pub update_message: Option<String>,
    pub settings: Value,
    pub tags: Value,
}

const COLUMNS: &str = "name, id, creator, creation_timestamp, last_updated_timestamp, config, pending_config,
    config_update, update_message, settings, tags";

/// A row with its JSON columns still as text: config, pending config,
/// settings, tags.
type RawEndpoint = (EndpointRow, [Option<String>; 4]);

fn endpoint(r: &Row<'_>) -> crate::db::Result<RawEndpoint> {
    let row = EndpointRow {
        name: r.get(0)?,
        id: r.get(1)?,
        creator: r.get(2)?,
        creation_timestamp: r.get(3)?,
        last_updated_timestamp: r.get(4)?,
        config: None,
        pending_config: None,
        config_update: r.get(7)?,
        update_message: r.get(8)?,
        settings: Value::Null,
        tags: Value::Null,
    };
    Ok((row, [r.get(5)?, r.get(6)?, r.get(9)?, r.get(10)?]))
}

fn into_row((mut row, [config, pending, settings, tags]): RawEndpoint) -> Result<EndpointRow> {
    let json = |column: &'static str, text: Option<String>| -> Result<Option<Value>> {
        text.map(|t| from_json_text(column, &t)).transpose()
    };
    row.config = json("serving_endpoints.config", config)?;
    row.pending_config = json("serving_endpoints.pending_config", pending)?;
    row.settings = json("serving_endpoints.settings", settings)?.unwrap_or(Value::Null);
    row.tags = json("serving_endpoints.tags", tags)?.unwrap_or(Value::Null);
    Ok(row)
}

/// An endpoint's columns in `COLUMNS` order, as SQL values.
fn values(row: &EndpointRow) -> [crate::db::Value; 11] {
    use crate::db::Value as Sql;
    let text = |v: Option<String>| v.map_or(Sql::Null, Sql::Text);
    [
        Sql::Text(row.name.clone()),
        Sql::Text(row.id.clone()),
        Sql::Text(row.creator.clone()),
        Sql::Int(row.creation_timestamp),
        Sql::Int(row.last_updated_timestamp),
        text(row.config.as_ref().map(to_json_text)),
        text(row.pending_config.as_ref().map(to_json_text)),
        Sql::Text(row.config_update.clone()),
        text(row.update_message.clone()),
        Sql::Text(to_json_text(&row.settings)),
        Sql::Text(to_json_text(&row.tags)),
    ]
}

impl Store {
    /// Inserts a new endpoint; false if one with its name exists.
    pub fn insert_endpoint(&self, row: &EndpointRow) -> Result<bool> {
        let sql = format!(
            "INSERT INTO serving_endpoints ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT DO NOTHING"
        );
        let conn = self.conn();
        Ok(conn.execute(&sql, crate::db::params_from_iter(values(row).iter()))? == 1)
    }

    /// Writes every field of an existing endpoint but its name, id and creation.
    pub fn update_endpoint(&self, row: &EndpointRow) -> Result<bool> {
        // The same numbered values as an insert; ?2 to ?4 (id, creator, creation) stay as stored.
        let sql = "UPDATE serving_endpoints SET last_updated_timestamp = ?5, config = ?6, pending_config = ?7,
                 config_update = ?8, update_message = ?9, settings = ?10, tags = ?11
                 WHERE name = ?1 AND ?2 IS NOT NULL AND ?3 IS NOT NULL AND ?4 IS NOT NULL";
        let conn = self.conn();
        Ok(conn.execute(sql, crate::db::params_from_iter(values(row).iter()))? == 1)
    }

    pub fn get_endpoint(&self, name: &str) -> Result<Option<EndpointRow>> {
        let conn = self.conn();
        let found = conn
            .query_row(&format!("SELECT {COLUMNS} FROM serving_endpoints WHERE name = ?1"), [name], endpoint)
            .optional()?;
        found.map(into_row).transpose()
    }

    /// Every endpoint, by name.
    pub fn list_endpoints(&self) -> Result<Vec<EndpointRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM serving_endpoints ORDER BY name"))?;
        let rows = stmt.query_map(crate::db::params![], endpoint)?.collect::<crate::db::Result<Vec<_>>>()?;
        rows.into_iter().map(into_row).collect()
    }

    /// Deletes an endpoint; false if there was none.
    pub fn delete_endpoint(&self, name: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM serving_endpoints WHERE name = ?1", [name])? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_round_trips_and_names_are_unique() {
        let store = crate::test_store();
        let mut row = EndpointRow {
            name: "e".into(),
            id: "1".into(),
            creator: "admin".into(),
            creation_timestamp: 1,
            last_updated_timestamp: 1,
            config: None,
            pending_config: Some(serde_json::json!({"served_entities": []})),
            config_update: "IN_PROGRESS".into(),
            update_message: None,
            settings: serde_json::json!({}),
            tags: serde_json::json!([]),
        };
        assert!(store.insert_endpoint(&row).unwrap());
        assert!(!store.insert_endpoint(&row).unwrap());
        row.config = row.pending_config.take();
        row.config_update = "NOT_UPDATING".into();
        assert!(store.update_endpoint(&row).unwrap());
        assert_eq!(store.get_endpoint("e").unwrap(), Some(row));
        assert_eq!(store.list_endpoints().unwrap().len(), 1);
        assert!(store.delete_endpoint("e").unwrap());
        assert_eq!(store.get_endpoint("e").unwrap(), None);
    }
}
