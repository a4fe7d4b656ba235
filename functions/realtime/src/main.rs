#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::run_streaming(realtime::router(), realtime::BACKENDS).await
}
