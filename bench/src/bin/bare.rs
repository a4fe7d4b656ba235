//! The baseline: a bare axum 0.8 server answering `GET /` with a constant JSON body, on the
//! same runtime as `spacectl serve` (tokio multi-thread) and with TCP_NODELAY like it.
//!
//! Port: the first argument, else `BARE_PORT`, else 0 (any free port). Prints
//! `bare listening on http://ADDR` once bound.

use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::routing::get;
use axum::serve::ListenerExt as _;

const BODY: &str = r#"{"id":"con_01jbench00000000000000000000","name":"Ada","email":"ada@example.com"}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = match std::env::args().nth(1).or_else(|| std::env::var("BARE_PORT").ok()) {
        Some(text) => text
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("bad port {text:?}: {e}")))?,
        None => 0,
    };
    let app = Router::new().route(
        "/",
        get(|| async { ([(header::CONTENT_TYPE, "application/json")], BODY) }),
    );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("bare listening on http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app).await
}
