//! `tarn migrate --from sqlite --to postgres`: moves a workspace's metadata
//! from `$TARN_HOME/metadata.db` into the PostgreSQL database that
//! `TARN_DATABASE_URL` (or `database_url` in tarn.toml) names.

use std::path::PathBuf;

use crate::config::{Config, Database};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

pub fn run(config: &Config, from: StoreKind, to: StoreKind, sqlite: Option<PathBuf>) -> Result<(), String> {
    if (from, to) != (StoreKind::Sqlite, StoreKind::Postgres) {
        return Err("only `--from sqlite --to postgres` is supported".into());
    }
    let Database::Postgres(url, _) = &config.database else {
        return Err(
            "set TARN_DATABASE_URL (or database_url in tarn.toml) to the PostgreSQL database to copy into".into()
        );
    };
    let path = sqlite.unwrap_or_else(|| config.store_path());
    if !path.is_file() {
        return Err(format!("no SQLite store at {}", path.display()));
    }
    let source = tarn_store::Store::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let target = tarn_store::Store::connect(url, 0).map_err(|e| format!("PostgreSQL: {e}"))?;
    let report = source.copy_into(&target).map_err(|e| e.to_string())?;
    let total: usize = report.iter().map(|(_, n)| n).sum();
    for (table, rows) in report.iter().filter(|(_, n)| *n > 0) {
        println!("{table:<36} {rows:>10}");
    }
    println!("copied {total} rows of {} tables from {} into PostgreSQL", report.len(), path.display());
    println!("the workspace's files (tables, volumes, artifacts, secrets key) stay in {}", config.home.display());
    Ok(())
}
