//! Schema migrations, embedded in the binary and applied in order at open,
//! one list per dialect. SQLite's `user_version` records how many have run;
//! on PostgreSQL, the one row of `tarn_schema`.

use crate::db::{Conn, Dialect, OptionalExtension};
use crate::{Result, StoreError};

const SQLITE: &[&str] = &[
    include_str!("../migrations/0001_foundation.sql"),
    include_str!("../migrations/0002_catalog.sql"),
    include_str!("../migrations/0003_audit.sql"),
    include_str!("../migrations/0004_workspace.sql"),
    include_str!("../migrations/0005_mlflow.sql"),
    include_str!("../migrations/0006_jobs.sql"),
    include_str!("../migrations/0007_job_runs.sql"),
    include_str!("../migrations/0008_job_triggers.sql"),
    include_str!("../migrations/0009_file_arrival_state.sql"),
    include_str!("../migrations/0010_cluster_libraries.sql"),
    include_str!("../migrations/0011_pipelines.sql"),
    include_str!("../migrations/0012_serving.sql"),
    include_str!("../migrations/0013_monitors.sql"),
    include_str!("../migrations/0014_sql_alerts.sql"),
    include_str!("../migrations/0015_identities.sql"),
    include_str!("../migrations/0016_secrets.sql"),
    include_str!("../migrations/0017_secret_backends.sql"),
    include_str!("../migrations/0018_permissions.sql"),
    include_str!("../migrations/0019_object_owners.sql"),
    include_str!("../migrations/0020_uc_grants.sql"),
    include_str!("../migrations/0021_repos.sql"),
    include_str!("../migrations/0022_pipeline_events_by_update.sql"),
    include_str!("../migrations/0023_leases.sql"),
    include_str!("../migrations/0024_lease_address.sql"),
];

/// PostgreSQL's schema starts at SQLite's 22nd migration: its first file is
/// the schema those 22 built, and later ones pair with SQLite's one to one.
const POSTGRES: &[&str] = &[
    include_str!("../migrations/postgres/0022_schema.sql"),
    include_str!("../migrations/postgres/0023_leases.sql"),
    include_str!("../migrations/postgres/0024_lease_address.sql"),
];
const POSTGRES_BASE: usize = 21;

pub(crate) fn apply(conn: &mut Conn) -> Result<()> {
    let (list, base) = match conn.dialect() {
        Dialect::Sqlite => (SQLITE, 0),
        Dialect::Postgres => (POSTGRES, POSTGRES_BASE),
    };
    let known = (base + list.len()) as i64;
    let found = version(conn)?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    let done = usize::try_from(found).unwrap_or(0).saturating_sub(base);
    for (i, sql) in list.iter().enumerate().skip(done) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        set_version(&tx, (base + i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// How many migrations the database has had.
pub(crate) fn version(conn: &Conn) -> Result<i64> {
    Ok(match conn.dialect() {
        Dialect::Sqlite => conn.query_row("PRAGMA user_version", [0; 0], |r| r.get(0))?,
        Dialect::Postgres => {
            conn.execute_batch("CREATE TABLE IF NOT EXISTS tarn_schema (version BIGINT NOT NULL)")?;
            conn.query_row("SELECT version FROM tarn_schema", [0; 0], |r| r.get(0)).optional()?.unwrap_or(0)
        }
    })
}

fn set_version(conn: &Conn, version: i64) -> Result<()> {
    match conn.dialect() {
        // PRAGMA takes no parameters.
        Dialect::Sqlite => conn.execute_batch(&format!("PRAGMA user_version = {version}"))?,
        Dialect::Postgres => {
            conn.execute("DELETE FROM tarn_schema", [0; 0])?;
            conn.execute("INSERT INTO tarn_schema (version) VALUES (?1)", [version])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Store;

    #[test]
    fn reopening_applies_nothing_twice() {
        let dir = std::env::temp_dir().join(format!("tarn-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("metadata.db");
        let _ = std::fs::remove_file(&path);
        drop(Store::open(&path).unwrap());
        let store = Store::open(&path).unwrap();
        assert!(store.list_clusters().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
