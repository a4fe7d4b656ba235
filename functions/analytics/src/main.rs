#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    // Exports are sent as they are read: the function streams its responses.
    space_http::lambda::run_streaming(analytics::router(), analytics::BACKENDS).await
}
