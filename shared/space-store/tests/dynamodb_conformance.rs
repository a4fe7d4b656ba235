//! The DynamoDB backend against moto (`scripts/with-moto.sh cargo test -p space-store`).
//! Without `AWS_ENDPOINT_URL` these tests fail rather than skip: a silent skip would let
//! the DynamoDB backend go untested.

use std::sync::Arc;

use aws_config::BehaviorVersion;
use chrono::Utc;
use space_store::dynamodb::DynamoStore;
use space_store::{ManualClock, Store, StoreError, conformance};

/// The SDK configuration for the local server, or a failure telling how to get one.
async fn local_config() -> aws_config::SdkConfig {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!("AWS_ENDPOINT_URL is not set: run through scripts/with-moto.sh (make test does)");
    }
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dynamodb_store_conforms() {
    let config = local_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("space-store-conformance-{}", conformance::unique_suffix());
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let store = DynamoStore::new(client.clone(), &table).with_clock(clock.clone());
    store.create_table().await.expect("create_table creates the table");
    store.create_table().await.expect("create_table is idempotent");

    conformance::run_all(Arc::new(store), clock).await;

    client
        .delete_table()
        .table_name(&table)
        .send()
        .await
        .expect("the test table is deleted");
}

#[tokio::test]
async fn a_missing_table_is_an_internal_error_that_names_it() {
    let config = local_config().await;
    let table = format!("no-such-table-{}", conformance::unique_suffix());
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table);
    for result in [store.get("pk", "sk").await.map(|_| ()), store.warm_up().await] {
        match result {
            Err(StoreError::Internal(message)) => {
                assert!(message.contains(&table), "the message names the table: {message}")
            }
            other => panic!("a missing table must be an Internal error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    let config = local_config().await;
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let unreachable = aws_sdk_dynamodb::config::Builder::from(&config)
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(unreachable), "any");
    match store.get("pk", "sk").await {
        Err(StoreError::Unavailable { .. }) => {}
        other => panic!("a refused connection must be Unavailable (503), got {other:?}"),
    }
}
