//! `runs/search` as SQL: a query the domain parsed from MLflow's filter
//! grammar becomes one SELECT over the runs, with an `EXISTS` per clause on
//! metrics (latest values), params and tags, and joins for ordering.

use crate::db::{Dialect, Value};

use crate::{Result, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Active,
    Deleted,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    /// A column of the run, named by [`attribute_column`].
    Attribute,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Case-sensitive SQL pattern (`%`, `_`).
    Like,
    ILike,
    In,
    NotIn,
    /// The key is absent (tags and params only).
    IsNull,
    IsNotNull,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Number(f64),
    Text(String),
    List(Vec<String>),
    /// No value: the right side of `IS NULL` / `IS NOT NULL`.
    Null,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub op: Comparison,
    pub value: SqlValue,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunQuery {
    pub experiment_ids: Vec<i64>,
    pub lifecycle: Lifecycle,
    pub clauses: Vec<Clause>,
    pub order: Vec<OrderBy>,
    pub offset: usize,
    pub limit: usize,
}

/// The run column an `attributes.<key>` names, if it is one search knows.
pub fn attribute_column(key: &str) -> Option<&'static str> {
    Some(match key {
        "run_id" | "run_uuid" => "run_uuid",
        "run_name" => "name",
        "status" => "status",
        "user_id" => "user_id",
        "start_time" => "start_time",
        "end_time" => "end_time",
        "artifact_uri" => "artifact_uri",
        "lifecycle_stage" => "lifecycle_stage",
        "experiment_id" => "experiment_id",
        _ => return None,
    })
}

/// `LIKE` in SQLite ignores ASCII case; MLflow's is case-sensitive, so it
/// runs as `GLOB` with the pattern translated.
fn like_to_glob(pattern: &str) -> String {
    let mut glob = String::with_capacity(pattern.len());
    for c in pattern.chars() {
        match c {
            '%' => glob.push('*'),
            '_' => glob.push('?'),
            '*' | '?' | '[' | ']' => {
                glob.push('[');
                glob.push(c);
                glob.push(']');
            }
            c => glob.push(c),
        }
    }
    glob
}

/// `column <op> value` with its bound values.
fn predicate(dialect: Dialect, column: &str, op: Comparison, value: &SqlValue, binds: &mut Vec<Value>) -> String {
    let bind = |v: &SqlValue, binds: &mut Vec<Value>| match v {
        SqlValue::Number(n) => binds.push(Value::Real(*n)),
        SqlValue::Text(t) => binds.push(Value::Text(t.clone())),
        SqlValue::List(_) | SqlValue::Null => {}
    };
    let symbol = match op {
        Comparison::Eq => "=",
        Comparison::Ne => "!=",
        Comparison::Lt => "<",
        Comparison::Le => "<=",
        Comparison::Gt => ">",
        Comparison::Ge => ">=",
        Comparison::Like => {
            if dialect == Dialect::Postgres {
                bind(value, binds);
                return format!("{column} LIKE ?");
            }
            if let SqlValue::Text(t) = value {
                binds.push(Value::Text(like_to_glob(t)));
            }
            return format!("{column} GLOB ?");
        }
        Comparison::ILike => {
            bind(value, binds);
            return format!("LOWER({column}) LIKE LOWER(?)");
        }
        Comparison::In | Comparison::NotIn => {
            let items = match value {
                SqlValue::List(items) => items.clone(),
                SqlValue::Text(t) => vec![t.clone()],
                SqlValue::Number(n) => vec![n.to_string()],
                SqlValue::Null => Vec::new(),
            };
            let marks = vec!["?"; items.len()].join(", ");
            binds.extend(items.into_iter().map(Value::Text));
            let not = if op == Comparison::NotIn { "NOT " } else { "" };
            return format!("{column} {not}IN ({marks})");
        }
        Comparison::IsNull => return format!("{column} IS NULL"),
        Comparison::IsNotNull => return format!("{column} IS NOT NULL"),
    };
    bind(value, binds);
    format!("{column} {symbol} ?")
}

fn entity_table(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::Metric => Some("mlflow_latest_metrics"),
        Entity::Param => Some("mlflow_params"),
        Entity::Tag => Some("mlflow_tags"),
        Entity::Attribute => None,
    }
}

fn clause_sql(dialect: Dialect, clause: &Clause, binds: &mut Vec<Value>) -> String {
    match entity_table(clause.entity) {
        Some(table) if matches!(clause.op, Comparison::IsNull | Comparison::IsNotNull) => {
            binds.push(Value::Text(clause.key.clone()));
            let not = if clause.op == Comparison::IsNull { "NOT " } else { "" };
            format!("{not}EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.key = ?)")
        }
        Some(table) => {
            binds.push(Value::Text(clause.key.clone()));
            let test = predicate(dialect, "x.value", clause.op, &clause.value, binds);
            format!("EXISTS (SELECT 1 FROM {table} x WHERE x.run_uuid = r.run_uuid AND x.key = ? AND {test})")
        }
        None => {
            let column = attribute_column(&clause.key).unwrap_or("run_uuid");
            predicate(dialect, &format!("r.{column}"), clause.op, &clause.value, binds)
        }
    }
}

/// A metric clause the query can be driven from: its rows are found through
/// the (key, value) index, then joined to their runs.
fn driving_clause(query: &RunQuery) -> Option<usize> {
    query.clauses.iter().position(|c| {
        c.entity == Entity::Metric
            && matches!(c.op, Comparison::Eq | Comparison::Lt | Comparison::Le | Comparison::Gt | Comparison::Ge)
    })
}

/// The SELECT for `query` and its bound values, in order. With `driver`,
/// the runs come from that metric clause's matches (a join, sorted after);
/// without, from the experiments' runs in start-time order, each checked
/// (a scan that stops at the page's end).
fn search_sql(dialect: Dialect, query: &RunQuery, driver: Option<usize>) -> (String, Vec<Value>) {
    let mut joins = String::new();
    let mut join_binds = Vec::new();
    if let Some(clause) = driver.and_then(|i| query.clauses.get(i)) {
        let mut binds = vec![Value::Text(clause.key.clone())];
        let test = predicate(dialect, "d.value", clause.op, &clause.value, &mut binds);
        joins.push_str(&format!(" JOIN mlflow_latest_metrics d ON d.run_uuid = r.run_uuid AND d.key = ? AND {test}"));
        join_binds.extend(binds);
    }
    let mut order = Vec::new();
    for (i, o) in query.order.iter().enumerate() {
        let direction = if o.ascending { "ASC" } else { "DESC" };
        match entity_table(o.entity) {
            Some(table) => {
                joins.push_str(&format!(" LEFT JOIN {table} o{i} ON o{i}.run_uuid = r.run_uuid AND o{i}.key = ?"));
                join_binds.push(Value::Text(o.key.clone()));
                // Runs without the key come last either way, as in MLflow.
                order.push(format!("(o{i}.value IS NULL), o{i}.value {direction}"));
            }
            None => {
                let column = attribute_column(&o.key).unwrap_or("start_time");
                order.push(format!("r.{column} {direction}"));
            }
        }
    }
    order.push("r.start_time DESC".into());
    order.push("r.run_uuid".into());
    let mut binds = join_binds;
    let ids = vec!["?"; query.experiment_ids.len()].join(", ");
    binds.extend(query.experiment_ids.iter().map(|id| Value::Int(*id)));
    let mut conditions = vec![format!("r.experiment_id IN ({ids})")];
    match query.lifecycle {
        Lifecycle::Active => conditions.push("r.lifecycle_stage = 'active'".into()),
        Lifecycle::Deleted => conditions.push("r.lifecycle_stage = 'deleted'".into()),
        Lifecycle::All => {}
    }
    for (i, clause) in query.clauses.iter().enumerate() {
        if Some(i) != driver {
            conditions.push(clause_sql(dialect, clause, &mut binds));
        }
    }
    binds.push(Value::Int(i64::try_from(query.limit).unwrap_or(i64::MAX)));
    binds.push(Value::Int(i64::try_from(query.offset).unwrap_or(i64::MAX)));
    let sql = format!(
        "SELECT r.run_uuid FROM mlflow_runs r{joins} WHERE {} ORDER BY {} LIMIT ? OFFSET ?",
        conditions.join(" AND "),
        order.join(", ")
    );
    (sql, binds)
}

/// Whether finding a metric clause's matches first beats scanning the runs
/// in order: a scan reads about `page end * runs / matches` runs before the
/// page is full; the driven plan reads (and sorts) every match.
fn drive_from_metric(conn: &crate::db::Conn, query: &RunQuery, clause: usize) -> Result<bool> {
    let Some(c) = query.clauses.get(clause) else { return Ok(false) };
    let mut binds = vec![Value::Text(c.key.clone())];
    let test = predicate(conn.dialect(), "value", c.op, &c.value, &mut binds);
    let matches: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM mlflow_latest_metrics WHERE key = ? AND {test}"),
        crate::db::params_from_iter(binds),
        |r| r.get(0),
    )?;
    let ids = vec!["?"; query.experiment_ids.len()].join(", ");
    let runs: i64 = conn.query_row(
        &format!("SELECT COUNT(*) FROM mlflow_runs WHERE experiment_id IN ({ids})"),
        crate::db::params_from_iter(query.experiment_ids.iter()),
        |r| r.get(0),
    )?;
    let page_end = i64::try_from(query.offset.saturating_add(query.limit)).unwrap_or(i64::MAX);
    Ok(page_end.saturating_mul(runs) >= matches.saturating_mul(matches))
}

impl Store {
    /// The ids of the runs `query` selects, one page of them.
    pub fn search_run_ids(&self, query: &RunQuery) -> Result<Vec<String>> {
        if query.experiment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn();
        let driver = driving_clause(query).filter(|&i| drive_from_metric(&conn, query, i).unwrap_or(false));
        let (sql, binds) = search_sql(conn.dialect(), query, driver);
        let mut stmt = conn.prepare(&sql)?;
        let ids =
            stmt.query_map(crate::db::params_from_iter(binds), |r| r.get(0))?.collect::<crate::db::Result<_>>()?;
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_ids(store: &Store, query: &RunQuery, driver: Option<usize>) -> Vec<String> {
        let conn = store.conn();
        let (sql, binds) = search_sql(conn.dialect(), query, driver);
        let mut stmt = conn.prepare(&sql).unwrap();
        stmt.query_map(crate::db::params_from_iter(binds), |r| r.get::<String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn driven_and_scanned_plans_find_the_same_runs() {
        use crate::mlflow::{MetricRow, RunRow};
        let store = crate::test_store();
        let exp = store.create_experiment("e", "", &|id| format!("x/{id}"), &[], 0).unwrap().unwrap();
        for i in 0..60 {
            let run = RunRow {
                run_uuid: format!("run{i:02}"),
                experiment_id: exp,
                name: format!("r{i}"),
                user_id: "u".into(),
                status: "FINISHED".into(),
                start_time: i,
                end_time: None,
                artifact_uri: "a".into(),
                lifecycle_stage: "active".into(),
            };
            store.create_run(&run, &[]).unwrap();
            let m =
                MetricRow { key: "m".into(), value: f64::from(i as i32) / 60.0, is_nan: false, timestamp: 0, step: 0 };
            store.log_batch(&run.run_uuid, &[m], &[("p".into(), (i % 3).to_string())], &[]).unwrap();
        }
        for (op, value, limit) in [(Comparison::Gt, 0.9, 100), (Comparison::Lt, 0.5, 7), (Comparison::Ge, 0.0, 10)] {
            let metric = Clause { entity: Entity::Metric, key: "m".into(), op, value: SqlValue::Number(value) };
            let param = Clause {
                entity: Entity::Param,
                key: "p".into(),
                op: Comparison::Eq,
                value: SqlValue::Text("1".into()),
            };
            let query = RunQuery {
                experiment_ids: vec![exp],
                lifecycle: Lifecycle::Active,
                clauses: vec![param, metric],
                order: vec![OrderBy { entity: Entity::Metric, key: "m".into(), ascending: false }],
                offset: 1,
                limit,
            };
            let scanned = run_ids(&store, &query, None);
            assert!(!scanned.is_empty());
            assert_eq!(scanned, run_ids(&store, &query, driving_clause(&query)), "{op:?} {value}");
            assert_eq!(store.search_run_ids(&query).unwrap(), scanned);
        }
    }

    #[test]
    fn like_patterns_become_case_sensitive_globs() {
        assert_eq!(like_to_glob("model_%v[1]*"), "model?*v[[]1[]][*]");
    }
}
