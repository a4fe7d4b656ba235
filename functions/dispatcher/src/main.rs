use std::sync::Arc;

use dispatcher::Dispatcher;
use dispatcher::wake::{QueueAndSchedules, Settings};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::init_tracing();
    let engine = space_http::lambda::engine_from_env(dispatcher::BACKENDS)?;
    let wakeups = Arc::new(QueueAndSchedules::new(Settings::from_env()?));
    let dispatcher = Dispatcher::new(engine, wakeups);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let dispatcher = dispatcher.clone();
        async move {
            dispatcher
                .handle(event.payload)
                .await
                .map_err(space_http::lambda::BoxError::from)
        }
    }))
    .await
}
