#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::run(meet::router(), meet::BACKENDS).await
}
