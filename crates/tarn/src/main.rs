//! `tarn`: the command line. Parses arguments, builds the pieces from the
//! configuration and wires them together; the work itself lives in the
//! library crates.

mod assist;
mod bundle_cli;
mod bundle_init;
mod config;
mod config_file;
mod git_sources;
mod jobs_cli;
mod leader;
mod lease;
mod migrate;
mod pipeline_tasks;
mod pipelines_cli;
mod replica;
mod serve;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use config::Config;

#[derive(Parser)]
#[command(name = "tarn", version, about = "A lakehouse ML workspace in one binary")]
struct Cli {
    /// Where tarn keeps its state.
    #[arg(long, env = "TARN_HOME", default_value = ".tarn", global = true)]
    home: std::path::PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Databricks and MLflow APIs.
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// 0 picks a free port; the address is printed once bound.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Port of the Spark Connect gateway (0 picks a free one).
        #[arg(long, default_value_t = 15002)]
        spark_connect_port: u16,
        #[command(flatten)]
        tls: config::TlsArgs,
    },
    /// Manage personal access tokens (of the admin, or of a user by name).
    Token {
        #[command(subcommand)]
        action: token::TokenAction,
    },
    /// Serve the assistant tools (list_compute, manage_cluster, execute_code)
    /// over MCP on stdio.
    Mcp,
    /// List clusters; with --auto-select, suggest which to use.
    Compute {
        #[arg(long)]
        auto_select: bool,
    },
    /// Create, start, stop, delete or get a cluster.
    Cluster {
        #[command(subcommand)]
        action: assist::ClusterAction,
    },
    /// Run Python or SQL in an execution context (a cluster or serverless).
    Execute(assist::ExecuteArgs),
    /// Create, list, get and run jobs (runs followed live).
    Jobs {
        #[command(subcommand)]
        action: jobs_cli::JobsAction,
    },
    /// Get, watch, cancel a job run, or print its tasks' logs.
    Runs {
        #[command(subcommand)]
        action: jobs_cli::RunsAction,
    },
    /// Create, get and start declarative pipelines (updates followed live),
    /// or print their event log.
    Pipelines {
        #[command(subcommand)]
        action: pipelines_cli::PipelinesAction,
    },
    /// Declarative Automation Bundles: init, validate, deploy, run, destroy,
    /// summary (as the databricks CLI's `bundle` group).
    Bundle(bundle_cli::BundleArgs),
    /// Copy the workspace's metadata from one store to another (today:
    /// from `$TARN_HOME/metadata.db` into the PostgreSQL `TARN_DATABASE_URL`).
    Migrate {
        #[arg(long, value_enum)]
        from: migrate::StoreKind,
        #[arg(long, value_enum)]
        to: migrate::StoreKind,
        /// The SQLite file to read (default `$TARN_HOME/metadata.db`).
        #[arg(long)]
        sqlite: Option<std::path::PathBuf>,
    },
    /// Manage tarn's Python environments.
    Env {
        #[command(subcommand)]
        action: EnvAction,
    },
}

#[derive(Subcommand)]
enum EnvAction {
    /// Build a runtime's Python environment now rather than at its first
    /// cluster (the default runtime unless one is named).
    Sync {
        /// A `spark_version` key, as `clusters/spark-versions` lists them.
        #[arg(long)]
        runtime: Option<String>,
        /// Every listed runtime.
        #[arg(long, conflicts_with = "runtime")]
        all: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new("info,tower_http=warn,buoyant_kernel=warn,deltalake_core=warn")
        }))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // The file's settings become the variables the environment leaves unset,
    // then the command line is read again so its env-backed flags see them.
    let cli = match config_file::read(&config_file::path(&cli.home)) {
        Ok(settings) if settings.is_empty() => cli,
        Ok(settings) => {
            for (name, value) in settings {
                if std::env::var_os(&name).is_none() {
                    // SAFETY: no other thread runs yet; nothing reads the
                    // environment concurrently.
                    unsafe { std::env::set_var(name, value) };
                }
            }
            Cli::parse()
        }
        Err(e) => {
            eprintln!("tarn: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config::from_env(cli.home);
    let result = match cli.command {
        Command::Serve { host, port, spark_connect_port, tls } => {
            serve::run(config, &host, port, spark_connect_port, &tls)
        }
        Command::Token { action } => token::run(&config, action),
        Command::Migrate { from, to, sqlite } => migrate::run(&config, from, to, sqlite),
        Command::Env { action: EnvAction::Sync { runtime, all } } => serve::env_sync(&config, runtime.as_deref(), all),
        Command::Mcp => assist::mcp(&config.home),
        Command::Compute { auto_select } => assist::list_compute(&config.home, auto_select),
        Command::Cluster { action } => assist::manage_cluster(&config.home, action),
        Command::Execute(args) => assist::execute(&config.home, args),
        Command::Jobs { action } => jobs_cli::jobs(&config.home, action),
        Command::Runs { action } => jobs_cli::runs(&config.home, action),
        Command::Pipelines { action } => pipelines_cli::pipelines(&config.home, action),
        Command::Bundle(args) => bundle_cli::bundle(&config.home, args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarn: {e}");
            ExitCode::FAILURE
        }
    }
}
