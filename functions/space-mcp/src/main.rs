#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::run(space_mcp::router(), space_mcp::BACKENDS).await
}
