//! `tarn mcp`: the tools over the Model Context Protocol on stdio (rmcp).
//! A failing call is a tool error the assistant reads, not a protocol error.

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, tool, tool_handler, tool_router};
use serde_json::Value;

use crate::tools::{self, ExecuteCodeArgs, ListComputeArgs, ManageClusterArgs};
use crate::{Client, ClientError};

#[derive(Debug, Clone)]
pub struct Server {
    client: Client,
    tool_router: ToolRouter<Self>,
}

fn answer(result: Result<Value, ClientError>) -> Result<CallToolResult, ErrorData> {
    Ok(match result {
        Ok(value) => CallToolResult::structured(value),
        Err(e) => CallToolResult::error(vec![ContentBlock::text(e.to_string())]),
    })
}

#[tool_router(router = tool_router)]
impl Server {
    pub fn new(client: Client) -> Self {
        Self { client, tool_router: Self::tool_router() }
    }

    /// Lists clusters with their state; with auto_select, suggests running
    /// clusters (best first) and terminated ones that can be started.
    #[tool(name = "list_compute")]
    async fn list_compute(&self, Parameters(args): Parameters<ListComputeArgs>) -> Result<CallToolResult, ErrorData> {
        answer(tools::list_compute(&self.client, args).await)
    }

    /// Creates, starts, stops (terminates), deletes or gets a cluster.
    #[tool(name = "manage_cluster")]
    async fn manage_cluster(
        &self,
        Parameters(args): Parameters<ManageClusterArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(tools::manage_cluster(&self.client, args).await)
    }

    /// Runs Python or SQL (code, a file or a notebook, cell by cell) in an
    /// execution context on a cluster or serverless compute. Returns the
    /// output, and context_id and cluster_id to run the next code in the
    /// same context, where variables and temp views are kept.
    #[tool(name = "execute_code")]
    async fn execute_code(&self, Parameters(args): Parameters<ExecuteCodeArgs>) -> Result<CallToolResult, ErrorData> {
        answer(tools::execute_code(&self.client, args).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Server {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("tarn", env!("CARGO_PKG_VERSION")))
            .with_instructions(format!(
                "Run Python and SQL on the workspace at {}: list_compute to pick compute, manage_cluster to \
                 start it, execute_code to run code; pass context_id back to keep state between calls.",
                self.client.host()
            ))
    }
}

/// Serves the tools on stdin/stdout until the client closes them.
pub async fn serve(client: Client) -> Result<(), String> {
    let service = Server::new(client).serve(rmcp::transport::stdio()).await.map_err(|e| e.to_string())?;
    service.waiting().await.map_err(|e| e.to_string())?;
    Ok(())
}
