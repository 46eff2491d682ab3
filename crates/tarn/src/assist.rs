//! `tarn mcp` and the same tools as commands: `tarn compute`, `tarn cluster`,
//! `tarn execute`. Each prints the tool's JSON answer.

use std::path::Path;

use clap::Subcommand;
use tarn_assist::tools::{self, ExecuteCodeArgs, ListComputeArgs, ManageClusterArgs};
use tarn_assist::{Client, Workspace};

#[derive(Subcommand)]
pub enum ClusterAction {
    Create {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        num_workers: Option<i64>,
        #[arg(long)]
        node_type_id: Option<String>,
        #[arg(long)]
        autotermination_minutes: Option<i64>,
    },
    Start {
        cluster_id: String,
    },
    Stop {
        cluster_id: String,
    },
    Delete {
        cluster_id: String,
    },
    Get {
        cluster_id: String,
    },
}

#[derive(clap::Args)]
pub struct ExecuteArgs {
    /// The code to run (else --file).
    #[arg(long)]
    code: Option<String>,
    /// A .py/.sql file, Databricks source notebook or .ipynb to run cell by cell.
    #[arg(long)]
    file: Option<String>,
    #[arg(long)]
    language: Option<String>,
    /// cluster, serverless or auto.
    #[arg(long, default_value = "auto")]
    compute_type: String,
    #[arg(long)]
    cluster_id: Option<String>,
    #[arg(long)]
    context_id: Option<String>,
    /// Save the run to the workspace as a notebook at this path.
    #[arg(long)]
    workspace_path: Option<String>,
    #[arg(long)]
    run_name: Option<String>,
    #[arg(long)]
    destroy_context: bool,
}

fn client(home: &Path) -> Result<Client, String> {
    Client::new(Workspace::discover(home).map_err(|e| e.to_string())?).map_err(|e| e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())
}

fn print(result: Result<serde_json::Value, tarn_assist::ClientError>) -> Result<(), String> {
    let value = result.map_err(|e| e.to_string())?;
    println!("{}", serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?);
    Ok(())
}

pub fn mcp(home: &Path) -> Result<(), String> {
    let client = client(home)?;
    runtime()?.block_on(tarn_assist::mcp::serve(client))
}

pub fn list_compute(home: &Path, auto_select: bool) -> Result<(), String> {
    let client = client(home)?;
    print(runtime()?.block_on(tools::list_compute(&client, ListComputeArgs { resource: None, auto_select })))
}

pub fn manage_cluster(home: &Path, action: ClusterAction) -> Result<(), String> {
    let args = match action {
        ClusterAction::Create { name, num_workers, node_type_id, autotermination_minutes } => ManageClusterArgs {
            action: "create".into(),
            cluster_name: name,
            num_workers,
            node_type_id,
            autotermination_minutes,
            ..Default::default()
        },
        ClusterAction::Start { cluster_id } => by_id("start", cluster_id),
        ClusterAction::Stop { cluster_id } => by_id("stop", cluster_id),
        ClusterAction::Delete { cluster_id } => by_id("delete", cluster_id),
        ClusterAction::Get { cluster_id } => by_id("get", cluster_id),
    };
    let client = client(home)?;
    print(runtime()?.block_on(tools::manage_cluster(&client, args)))
}

fn by_id(action: &str, cluster_id: String) -> ManageClusterArgs {
    ManageClusterArgs { action: action.into(), cluster_id: Some(cluster_id), ..Default::default() }
}

pub fn execute(home: &Path, args: ExecuteArgs) -> Result<(), String> {
    let args = ExecuteCodeArgs {
        code: args.code,
        file_path: args.file,
        language: args.language,
        compute_type: Some(args.compute_type),
        cluster_id: args.cluster_id,
        context_id: args.context_id,
        workspace_path: args.workspace_path,
        run_name: args.run_name,
        destroy_context_on_completion: args.destroy_context,
    };
    let client = client(home)?;
    print(runtime()?.block_on(tools::execute_code(&client, args)))
}
