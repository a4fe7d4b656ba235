//! What an owner pastes to connect an MCP client with a new key: the `claude mcp add` line
//! and the `.mcp.json` entry. `spacectl keys create --mcp` prints them and the console shows
//! them, from this one place.

/// Where MCP clients connect, under the API's origin.
pub const MCP_PATH: &str = "/functions/v1/space-mcp";

/// The server's name in the client's configuration.
const SERVER_NAME: &str = "space";

/// `claude mcp add …` for the server at `origin` with `token`.
pub fn claude_code_command(origin: &str, token: &str) -> String {
    format!(
        "claude mcp add --transport http {SERVER_NAME} {origin}{MCP_PATH} --header \"Authorization: Bearer {token}\""
    )
}

/// A `.mcp.json` holding the server at `origin` with `token`.
pub fn mcp_json(origin: &str, token: &str) -> String {
    let config = serde_json::json!({
        "mcpServers": {
            SERVER_NAME: {
                "type": "http",
                "url": format!("{origin}{MCP_PATH}"),
                "headers": {"Authorization": format!("Bearer {token}")}
            }
        }
    });
    serde_json::to_string_pretty(&config).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_name_the_server_and_carry_the_token() {
        let line = claude_code_command("http://127.0.0.1:8787", "wks_live_x");
        assert_eq!(
            line,
            "claude mcp add --transport http space http://127.0.0.1:8787/functions/v1/space-mcp --header \"Authorization: Bearer wks_live_x\""
        );
        let config: serde_json::Value =
            serde_json::from_str(&mcp_json("https://api.example.com", "wks_live_x")).unwrap();
        assert_eq!(
            config["mcpServers"]["space"]["url"],
            "https://api.example.com/functions/v1/space-mcp"
        );
        assert_eq!(
            config["mcpServers"]["space"]["headers"]["Authorization"],
            "Bearer wks_live_x"
        );
    }
}
