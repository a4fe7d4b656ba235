//! Hello world on lambda_http + axum: the floor a function's cold start is measured against.

use axum::Router;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let app = Router::new().fallback(|| async { "hello" });
    lambda_http::run(app).await
}
