#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::run(inbox::router(), inbox::BACKENDS).await
}
