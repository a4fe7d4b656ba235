#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::run(account_api::router(), account_api::BACKENDS).await
}
