//! PostgreSQL through the `postgres` client, on a thread of its own.
//!
//! The synchronous client drives a runtime of its own, which may not be
//! entered from a tokio worker, and the store is called from those: so one
//! thread owns the connection and each statement travels to it as owned text
//! and values, its rows coming back owned. The store's lock keeps a
//! transaction's statements together on that one connection.

use std::collections::HashMap;
use std::error::Error;
use std::sync::mpsc;

use bytes::{BufMut, BytesMut};
use postgres::error::SqlState;
use postgres::{Client, NoTls, Statement};
use postgres_types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::{DbError, Result, Value};

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

pub struct PgConn {
    jobs: mpsc::Sender<Job>,
}

impl PgConn {
    /// Connects to `url` (`postgres://user:password@host:port/db`); the
    /// error never carries the URL, which may hold a password.
    pub fn connect(url: &str) -> Result<Self> {
        let url = url.to_owned();
        let (jobs, queue) = mpsc::channel::<Job>();
        let (ready, connected) = mpsc::sync_channel(1);
        // Connecting blocks on the client's own runtime too: in the thread.
        std::thread::Builder::new()
            .name("tarn-postgres".into())
            .spawn(move || {
                let client = match Client::connect(&url, NoTls) {
                    Ok(client) => client,
                    Err(e) => {
                        let _ = ready.send(Err(DbError::from(e)));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                let mut worker = Worker { client, statements: HashMap::new(), translated: HashMap::new() };
                for job in queue {
                    job(&mut worker);
                }
            })
            .map_err(|_| DbError::Gone)?;
        connected.recv().map_err(|_| DbError::Gone)??;
        Ok(Self { jobs })
    }

    fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Worker) -> Result<R> + Send + 'static) -> Result<R> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |w| {
            let _ = reply.send(f(w));
        });
        self.jobs.send(job).map_err(|_| DbError::Gone)?;
        answer.recv().map_err(|_| DbError::Gone)?
    }

    pub fn execute(&self, sql: &str, params: Vec<Value>) -> Result<usize> {
        let sql = sql.to_owned();
        self.call(move |w| {
            let stmt = w.statement(&sql, &params)?;
            let n = w.client.execute(&stmt, &refs(&params))?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }

    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        let sql = sql.to_owned();
        self.call(move |w| Ok(w.client.batch_execute(&sql)?))
    }

    pub fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Vec<Value>>> {
        let sql = sql.to_owned();
        self.call(move |w| {
            let stmt = w.statement(&sql, &params)?;
            let rows = w.client.query(&stmt, &refs(&params))?;
            rows.iter()
                .map(|row| (0..row.len()).map(|i| row.try_get::<_, Value>(i).map_err(DbError::from)).collect())
                .collect()
        })
    }
}

fn refs(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// Statements kept prepared per connection.
const STATEMENT_CACHE: usize = 256;

struct Worker {
    client: Client,
    /// Prepared statements by their PostgreSQL text.
    statements: HashMap<String, Statement>,
    /// PostgreSQL text by the SQLite-spelled text it came from.
    translated: HashMap<String, String>,
}

impl Worker {
    fn statement(&mut self, sql: &str, params: &[Value]) -> Result<Statement> {
        // Built SQL (IN lists, multi-row VALUES) varies without end: past the
        // bound the caches start over, which also frees the server's copies
        // of the statements dropped (as rusqlite's LRU of 256 does).
        if self.translated.len() >= STATEMENT_CACHE {
            self.translated.clear();
            self.statements.clear();
        }
        let text = self.translated.entry(sql.to_owned()).or_insert_with(|| translate(sql)).clone();
        if let Some(stmt) = self.statements.get(&text) {
            return Ok(stmt.clone());
        }
        match self.client.prepare(&text) {
            Ok(stmt) => {
                self.statements.insert(text, stmt.clone());
                Ok(stmt)
            }
            // A parameter used only as `?N IS NULL` says nothing of its type:
            // the values say it (a NULL's left to inference, else text), and
            // that statement is not cached, as another call's values may differ.
            Err(e)
                if [Some(&SqlState::INDETERMINATE_DATATYPE), Some(&SqlState::AMBIGUOUS_PARAMETER)]
                    .contains(&e.code()) =>
            {
                let types: Vec<Type> = params.iter().map(|v| declared_type(v, Type::UNKNOWN)).collect();
                match self.client.prepare_typed(&text, &types) {
                    Ok(stmt) => Ok(stmt),
                    Err(_) => {
                        let types: Vec<Type> = params.iter().map(|v| declared_type(v, Type::TEXT)).collect();
                        Ok(self.client.prepare_typed(&text, &types)?)
                    }
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

fn declared_type(value: &Value, null: Type) -> Type {
    match value {
        Value::Null => null,
        Value::Text(_) => Type::TEXT,
        Value::Int(_) => Type::INT8,
        Value::Real(_) => Type::FLOAT8,
        Value::Blob(_) => Type::BYTEA,
    }
}

/// SQLite's `?N` and `?` parameters as PostgreSQL's `$N`, outside quotes
/// and comments.
pub(crate) fn translate(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next_bare = 0;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for q in chars.by_ref() {
                    out.push(q);
                    if q == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next_bare += 1;
                    digits = next_bare.to_string();
                }
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    out
}

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match (self, ty) {
            (Value::Null, _) => return Ok(IsNull::Yes),
            (Value::Int(i), t) if *t == Type::INT8 => out.put_i64(*i),
            (Value::Int(i), t) if *t == Type::INT4 => out.put_i32(i32::try_from(*i)?),
            (Value::Int(i), t) if *t == Type::INT2 => out.put_i16(i16::try_from(*i)?),
            (Value::Int(i), t) if *t == Type::BOOL => out.put_u8(u8::from(*i != 0)),
            (Value::Int(i), t) if *t == Type::FLOAT8 => out.put_f64(*i as f64),
            (Value::Int(i), t) if is_text(t) => out.put_slice(i.to_string().as_bytes()),
            (Value::Real(f), t) if *t == Type::FLOAT8 => out.put_f64(*f),
            (Value::Real(f), t) if *t == Type::FLOAT4 => out.put_f32(*f as f32),
            (Value::Real(f), t) if *t == Type::INT8 && f.fract() == 0.0 => out.put_i64(*f as i64),
            (Value::Text(s), t) if is_text(t) => out.put_slice(s.as_bytes()),
            (Value::Text(s), t) if *t == Type::JSONB => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            (Value::Blob(b), t) if *t == Type::BYTEA => out.put_slice(b),
            (value, t) => return Err(format!("cannot bind {value:?} as {t}").into()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(t: &Type) -> bool {
    [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME, Type::UNKNOWN, Type::JSON].contains(t)
}

impl<'a> FromSql<'a> for Value {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(match ty {
            t if *t == Type::INT8 => Value::Int(i64::from_sql(t, raw)?),
            t if *t == Type::INT4 => Value::Int(i32::from_sql(t, raw)?.into()),
            t if *t == Type::INT2 => Value::Int(i16::from_sql(t, raw)?.into()),
            t if *t == Type::OID => Value::Int(u32::from_sql(t, raw)?.into()),
            t if *t == Type::BOOL => Value::Int(bool::from_sql(t, raw)?.into()),
            t if *t == Type::FLOAT8 => Value::Real(f64::from_sql(t, raw)?),
            t if *t == Type::FLOAT4 => Value::Real(f32::from_sql(t, raw)?.into()),
            t if *t == Type::NUMERIC => numeric(raw)?,
            t if *t == Type::BYTEA => Value::Blob(raw.to_vec()),
            t if *t == Type::JSONB => Value::Text(std::str::from_utf8(raw.get(1..).unwrap_or_default())?.to_owned()),
            _ => Value::Text(std::str::from_utf8(raw)?.to_owned()),
        })
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Value::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// NUMERIC's binary form (what `SUM` of integers answers): base-10000
/// digits with a weight; integral values come back as integers.
fn numeric(raw: &[u8]) -> Result<Value, BoxError> {
    let word = |i: usize| -> Result<i16, BoxError> {
        let b = raw.get(i * 2..i * 2 + 2).ok_or("short NUMERIC")?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    };
    let (ndigits, weight, sign, scale) = (word(0)?, word(1)?, word(2)? as u16, word(3)?);
    if sign == 0xC000 {
        return Ok(Value::Real(f64::NAN));
    }
    let mut value = 0f64;
    for i in 0..ndigits.max(0) as usize {
        let digit = f64::from(word(4 + i)?);
        value += digit * 10000f64.powi(i32::from(weight) - i as i32);
    }
    if sign == 0x4000 {
        value = -value;
    }
    if scale == 0 && value.abs() < 9.0e15 {
        return Ok(Value::Int(value as i64));
    }
    Ok(Value::Real(value))
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn parameters_are_renumbered_outside_quotes() {
        assert_eq!(translate("SELECT a FROM t WHERE b = ?2 AND c = ?1"), "SELECT a FROM t WHERE b = $2 AND c = $1");
        assert_eq!(
            translate("SELECT '?1', \"x?\" FROM t WHERE b IN (?, ?)"),
            "SELECT '?1', \"x?\" FROM t WHERE b IN ($1, $2)"
        );
        assert_eq!(translate("SELECT 1 -- why?\nWHERE a = ?3"), "SELECT 1 -- why?\nWHERE a = $3");
    }
}
