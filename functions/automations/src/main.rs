#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::run(automations::router(), automations::BACKENDS).await
}
