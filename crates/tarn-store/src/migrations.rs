//! Schema migrations, embedded in the binary and applied in order at open.
//! SQLite's `user_version` records how many have run.

use rusqlite::Connection;

use crate::{Result, StoreError};

const MIGRATIONS: &[&str] = &[
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
];

pub(crate) fn apply(conn: &mut Connection) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
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
