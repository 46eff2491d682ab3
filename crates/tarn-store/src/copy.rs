//! `tarn migrate --from sqlite --to postgres`: a workspace's every row,
//! copied from a SQLite store into a new PostgreSQL one in one transaction.

use std::collections::BTreeMap;

use crate::db::{Conn, Dialect, Value, params_from_iter, row_marks};
use crate::{Result, Store, StoreError};

/// Rows read and written at a time.
const CHUNK: usize = 500;

/// How many rows each table received.
pub type CopyReport = Vec<(String, usize)>;

impl Store {
    /// Copies every row of this (SQLite) store into `target`, a PostgreSQL
    /// store that holds no workspace yet (only what its migrations seed,
    /// which the copy replaces). Both are at the same schema version, as
    /// opening migrated them. On any error nothing is written.
    pub fn copy_into(&self, target: &Store) -> Result<CopyReport> {
        let source = self.conn();
        let mut target = target.conn();
        if source.dialect() != Dialect::Sqlite || target.dialect() != Dialect::Postgres {
            return Err(StoreError::Write("a copy goes from a SQLite store to a PostgreSQL one".into()));
        }
        let holds: i64 = target.query_row("SELECT COUNT(*) FROM users", crate::db::params![], |r| r.get(0))?;
        if holds > 0 {
            return Err(StoreError::Write(
                "the PostgreSQL database already holds a workspace (it has users); copy into a new one".into(),
            ));
        }
        let tables = tables_parents_first(&source)?;
        let tx = target.transaction()?;
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        tx.execute_batch(&format!("TRUNCATE {} RESTART IDENTITY CASCADE", names.join(", ")))?;
        let mut report = Vec::new();
        for table in &tables {
            report.push((table.name.clone(), copy_table(&source, &tx, table)?));
        }
        // Identities continue after the copied keys.
        let identities: Vec<(String, String)> = tx
            .query_map(
                "SELECT table_name, column_name FROM information_schema.columns
                 WHERE table_schema = current_schema() AND is_identity = 'YES'",
                crate::db::params![],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .collect::<crate::db::Result<_>>()?;
        for (table, column) in identities {
            tx.execute_batch(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
            ))?;
        }
        tx.commit()?;
        Ok(report)
    }
}

struct Table {
    name: String,
    columns: Vec<String>,
    parents: Vec<String>,
}

/// The source's tables, each after those its foreign keys point to.
fn tables_parents_first(conn: &Conn) -> Result<Vec<Table>> {
    let names: Vec<String> = conn
        .query_map(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
            crate::db::params![],
            |r| r.get(0),
        )?
        .collect::<crate::db::Result<_>>()?;
    let mut pending = BTreeMap::new();
    for name in names {
        let columns = conn
            .query_map(
                &format!("SELECT name FROM pragma_table_info('{name}') ORDER BY cid"),
                crate::db::params![],
                |r| r.get::<String>(0),
            )?
            .collect::<crate::db::Result<Vec<_>>>()?;
        let parents = conn
            .query_map(
                &format!("SELECT \"table\" FROM pragma_foreign_key_list('{name}')"),
                crate::db::params![],
                |r| r.get::<String>(0),
            )?
            .collect::<crate::db::Result<Vec<_>>>()?;
        pending.insert(name.clone(), Table { name, columns, parents });
    }
    let mut ordered: Vec<Table> = Vec::new();
    while !pending.is_empty() {
        let ready: Vec<String> = pending
            .values()
            .filter(|t| t.parents.iter().all(|p| p == &t.name || !pending.contains_key(p)))
            .map(|t| t.name.clone())
            .collect();
        if ready.is_empty() {
            return Err(StoreError::Write("the tables' foreign keys form a cycle".into()));
        }
        for name in ready {
            ordered.extend(pending.remove(&name));
        }
    }
    Ok(ordered)
}

/// Copies `table` in rowid order (which PostgreSQL's `seq` columns then
/// keep), a chunk at a time; answers the rows written.
fn copy_table(source: &Conn, target: &Conn, table: &Table) -> Result<usize> {
    let columns = table.columns.join(", ");
    let width = table.columns.len();
    let mut last_rowid = i64::MIN;
    let mut copied = 0;
    loop {
        let mut rowids = Vec::new();
        let rows: Vec<Vec<Value>> = source
            .query_map(
                &format!("SELECT rowid, {columns} FROM {} WHERE rowid > ?1 ORDER BY rowid LIMIT ?2", table.name),
                [last_rowid, CHUNK as i64],
                |r| {
                    rowids.push(r.get::<i64>(0)?);
                    (1..=width).map(|i| r.get::<Value>(i)).collect()
                },
            )?
            .collect::<crate::db::Result<_>>()?;
        let Some(&last) = rowids.last() else { break };
        last_rowid = last;
        let values: Vec<Value> = rows.iter().flatten().cloned().collect();
        copied += target.execute(
            &format!("INSERT INTO {} ({columns}) VALUES {}", table.name, row_marks(rows.len(), width)),
            params_from_iter(values),
        )?;
    }
    Ok(copied)
}
