use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{LambdaEvent, service_fn};
use receipts::Receipts;

#[tokio::main]
async fn main() -> Result<(), space_http::lambda::BoxError> {
    space_http::lambda::init_tracing();
    let engine = space_http::lambda::engine_from_env(receipts::BACKENDS)?;
    let receipts = Receipts::new(engine);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let receipts = receipts.clone();
        async move { Ok::<_, space_http::lambda::BoxError>(receipts.queue(event.payload).await) }
    }))
    .await
}
