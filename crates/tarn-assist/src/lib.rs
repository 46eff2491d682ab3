//! The tools an AI assistant needs to explore data on a workspace:
//! `list_compute`, `manage_cluster` and `execute_code`, served over MCP
//! (`tarn mcp`, stdio, with rmcp) and offered as CLI commands.
//!
//! They are clients of the workspace's REST API (clusters 2.1, Command
//! Execution 1.2, Workspace 2.0), so they work against tarn and against
//! Databricks alike. Like the databricks CLI, they find the workspace from
//! `DATABRICKS_HOST` and `DATABRICKS_TOKEN`, else from a local tarn's
//! `$TARN_HOME` (its `server.json` and admin `token`). They reach tarn only
//! over HTTP (the one tarn crate used is `tarn-files`, for splitting notebook
//! files into cells) and never print the token.

mod client;
pub mod mcp;
pub mod tools;

pub use client::{Client, ClientError, Workspace};
