//! The MCP server `LLMProviderTool`: the gateway as tools for agents and operators, over stdio
//! (`llm-gateway mcp`) and Streamable HTTP (`/mcp` on the API listener with `mcp.enabled`).
//!
//! One implementation ([`LlmProviderTool`], an rmcp `ServerHandler`) serves both transports; what the tools act on
//! is a [`Backend`]: the gateway in this process (its router, pipeline, offline store) or, with `--gateway-url`, a
//! running gateway over its REST API. Tools are dispatched by hand (no rmcp macros) so that wrong arguments are an
//! `isError` result naming the field, which a model can act on; an unknown tool is JSON-RPC `-32602`.
//!
//! Admin tools (`llm_providers`, `llm_mode`, `llm_set_mode`, `llm_smoke`: the `/admin/*` data and calls that spend
//! upstream quota) need `server.admin_token` when one is configured: over HTTP as `X-LLM-Admin-Token` (or
//! `Authorization: Bearer` when no client keys are configured), over stdio from `LLM_MCP_ADMIN_TOKEN`.

mod backend;
pub mod http;
mod tools;

pub use backend::{Backend, Remote};
pub use tools::LlmProviderTool;

/// The environment variable the stdio server reads the admin token from.
pub const ADMIN_TOKEN_ENV: &str = "LLM_MCP_ADMIN_TOKEN";
/// The environment variable the stdio server reads the client key for `--gateway-url` from.
pub const API_KEY_ENV: &str = "LLM_MCP_API_KEY";
/// The HTTP header carrying the admin token on `/mcp`.
pub const ADMIN_TOKEN_HEADER: &str = "x-llm-admin-token";

/// Serves `server` on stdin/stdout until the client closes stdin.
pub async fn serve_stdio(server: LlmProviderTool) -> Result<(), String> {
    use rmcp::ServiceExt;
    let running = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP stdio handshake failed: {e}"))?;
    running
        .waiting()
        .await
        .map(|_| ())
        .map_err(|e| format!("MCP stdio server failed: {e}"))
}
