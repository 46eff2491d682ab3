//! SQLite through rusqlite: the statement cache is rusqlite's, rows are
//! read in place.

use rusqlite::types::{ToSqlOutput, ValueRef as SqliteRef};

use super::{Result, Row, Value, ValueRef};

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => SqliteRef::Null,
            Value::Int(i) => SqliteRef::Integer(*i),
            Value::Real(f) => SqliteRef::Real(*f),
            Value::Text(s) => SqliteRef::Text(s.as_bytes()),
            Value::Blob(b) => SqliteRef::Blob(b),
        }))
    }
}

pub(super) fn value_ref(value: SqliteRef<'_>) -> Result<ValueRef<'_>, String> {
    Ok(match value {
        SqliteRef::Null => ValueRef::Null,
        SqliteRef::Integer(i) => ValueRef::Int(i),
        SqliteRef::Real(f) => ValueRef::Real(f),
        SqliteRef::Text(t) => ValueRef::Text(std::str::from_utf8(t).map_err(|e| e.to_string())?),
        SqliteRef::Blob(b) => ValueRef::Blob(b),
    })
}

pub(super) fn execute(conn: &rusqlite::Connection, sql: &str, params: Vec<Value>) -> Result<usize> {
    Ok(conn.prepare_cached(sql)?.execute(rusqlite::params_from_iter(params.iter()))?)
}

pub(super) fn query(
    conn: &rusqlite::Connection,
    sql: &str,
    params: Vec<Value>,
    mut each: impl FnMut(&Row<'_>),
) -> Result<()> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    while let Some(row) = rows.next()? {
        each(&Row::Sqlite(row));
    }
    Ok(())
}
