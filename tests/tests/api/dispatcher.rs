//! The dispatcher as AWS runs it, against moto (DynamoDB, SQS, EventBridge Scheduler) and the
//! signature-checking webhook receiver. Lambda's events are the documented shapes
//! (`tests/fixtures/dynamodb-stream-batch.json`, `tests/fixtures/sqs-jobs-batch.json`),
//! filled with the items the API really wrote: a new event fans out, a new job is sent to
//! the queue (due soon) or to a one-time schedule (due later), a queue message runs its job
//! once, and a failure names the first record to retry.
//!
//! moto stores schedules and never fires them: the firing path is the schedule's own
//! target input handed to the dispatcher as the queue would.

use std::collections::HashMap;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::TimeDelta;
use dispatcher::Dispatcher;
use dispatcher::wake::{QueueAndSchedules, Settings, schedule_name};
use reqwest::Method;
use serde_json::{Value, json};
use space_store::{Clock as _, Item, Query};
use space_tests::TestApp;
use space_worker::JobRef;

use crate::webhooks::{Receiver, deliveries, endpoint};

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the fixture")).expect("JSON")
}

/// A stream batch: the fixture's MODIFY and REMOVE records (which change nothing), then an
/// INSERT record per item, numbered on from the fixture's sequence numbers.
fn stream_batch(items: &[Item]) -> Value {
    let mut batch = fixture("dynamodb-stream-batch.json");
    let template = batch["Records"][0].clone();
    let records = batch["Records"].as_array_mut().expect("records");
    for (n, item) in items.iter().enumerate() {
        let image: HashMap<String, AttributeValue> = space_store::dynamodb::item_attributes(item);
        let image = serde_json::to_value(serde_dynamo::Item::from(image)).expect("an image");
        let mut record = template.clone();
        record["eventName"] = json!("INSERT");
        record["dynamodb"]["Keys"] = json!({"pk": {"S": item.pk}, "sk": {"S": item.sk}});
        record["dynamodb"]["NewImage"] = image;
        record["dynamodb"].as_object_mut().expect("a change").remove("OldImage");
        record["dynamodb"]["SequenceNumber"] = json!(format!("1110000000000000000001{:02}", n + 10));
        records.push(record);
    }
    batch
}

/// A stream batch of REMOVE records, one per item, each with the item as its old image.
fn removal_batch(items: &[Item]) -> Value {
    let mut batch = stream_batch(items);
    let records = batch["Records"].as_array_mut().expect("records");
    records.drain(..records.len() - items.len());
    for record in records.iter_mut() {
        record["eventName"] = json!("REMOVE");
        let image = record["dynamodb"]["NewImage"].take();
        let change = record["dynamodb"].as_object_mut().expect("a change");
        change.remove("NewImage");
        change.insert("OldImage".into(), image);
    }
    batch
}

fn queue_batch(bodies: &[String]) -> Value {
    let mut batch = fixture("sqs-jobs-batch.json");
    let template = batch["Records"][0].clone();
    batch["Records"] = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            let mut message = template.clone();
            message["messageId"] = json!(format!("message-{n}"));
            message["body"] = json!(body);
            message
        })
        .collect();
    batch
}

/// Every job waiting in the store.
pub(crate) async fn jobs(app: &TestApp) -> Vec<Item> {
    let mut items = Vec::new();
    for shard in 0..space_worker::SHARDS {
        let page = app
            .engine
            .store()
            .query(Query::partition(space_worker::partition(shard)).limit(1000))
            .await
            .expect("jobs");
        items.extend(page.items);
    }
    items
}

async fn events_after(app: &TestApp, after: Option<String>) -> Vec<Item> {
    let partition = space_http::keys::events_partition(&app.demo.space_id);
    app.engine
        .store()
        .query(Query::partition(partition).after(after).limit(100))
        .await
        .expect("events")
        .items
}

struct Aws {
    sqs: aws_sdk_sqs::Client,
    scheduler: aws_sdk_scheduler::Client,
    settings: Settings,
}

/// A jobs queue and a schedule group of their own on moto.
async fn aws() -> Aws {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let scheduler = aws_sdk_scheduler::Client::new(&config);
    let name = space_http::ids::new_id("jobs").replace('_', "-");
    let (queue_url, queue_arn) = crate::moto::queue(&sqs, &name).await;
    scheduler
        .create_schedule_group()
        .name(&name)
        .send()
        .await
        .expect("moto creates the group");
    Aws {
        sqs,
        scheduler,
        settings: Settings {
            queue_url,
            queue_arn,
            schedule_group: name,
            scheduler_role_arn: "arn:aws:iam::123456789012:role/space-api-test-scheduler".into(),
        },
    }
}

impl Aws {
    /// Every message now visible on the queue, deleted from it.
    async fn drain(&self) -> Vec<String> {
        self.drain_grouped().await.into_iter().map(|(body, _)| body).collect()
    }

    /// [`Aws::drain`], each body with its message group (a fair queue's tenant).
    async fn drain_grouped(&self) -> Vec<(String, Option<String>)> {
        let mut bodies = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.settings.queue_url)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                .send()
                .await
                .expect("a receive");
            let messages = received.messages.unwrap_or_default();
            if messages.is_empty() {
                return bodies;
            }
            for message in messages {
                let group = message
                    .attributes
                    .as_ref()
                    .and_then(|attributes| {
                        attributes.get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
                    })
                    .cloned();
                if let Some(handle) = message.receipt_handle {
                    self.sqs
                        .delete_message()
                        .queue_url(&self.settings.queue_url)
                        .receipt_handle(handle)
                        .send()
                        .await
                        .expect("a delete");
                }
                bodies.extend(message.body.map(|body| (body, group)));
            }
        }
    }
}

fn failures(answer: &Value) -> Vec<String> {
    answer["batchItemFailures"]
        .as_array()
        .expect("a partial batch response")
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn require_moto() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "the dispatcher tests need moto: run through scripts/with-moto.sh (make test does)"
    );
}

/// The API on DynamoDB (moto), a queue and a schedule group, and the dispatcher over them.
async fn start() -> (TestApp, Aws, Dispatcher) {
    require_moto();
    let app = TestApp::dynamodb().await;
    let aws = aws().await;
    let dispatcher = Dispatcher::new(
        app.engine.clone(),
        Arc::new(QueueAndSchedules::new(aws.settings.clone())),
    );
    (app, aws, dispatcher)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_and_queue_batches_deliver_a_webhook_once() {
    let (app, aws, dispatcher) = start().await;
    let receiver = Receiver::start();
    let (webhook, secret) = endpoint(&app, &receiver.hook(), json!(["contact.created"])).await;
    receiver.configure(&[&secret], &[]).await;
    let before = events_after(&app, None).await.last().map(|event| event.sk.clone());
    app.contact(json!({"name": "Ada", "email": "ada@example.com"})).await;

    // The change's event reaches the dispatcher through the stream: the fan-out enqueues
    // one delivery job (twice shown, still one).
    let events = events_after(&app, before).await;
    assert_eq!(events.len(), 1, "one new event");
    for _ in 0..2 {
        let answer = dispatcher.handle(stream_batch(&events)).await.expect("a stream batch");
        assert_eq!(failures(&answer), Vec::<String>::new());
    }
    let queued = jobs(&app).await;
    assert_eq!(queued.len(), 1, "one delivery job: {queued:?}");
    assert_eq!(
        aws.drain().await,
        Vec::<String>::new(),
        "a fan-out sends nothing itself"
    );

    // The job item's INSERT sends it to the queue, due now; the message runs it.
    let answer = dispatcher.handle(stream_batch(&queued)).await.expect("a stream batch");
    assert_eq!(failures(&answer), Vec::<String>::new());
    let (messages, groups): (Vec<String>, Vec<Option<String>>) = aws.drain_grouped().await.into_iter().unzip();
    let job = JobRef::of(&queued[0]).expect("a job");
    assert_eq!(messages, vec![dispatcher::wake::message(&job)]);
    assert_eq!(
        groups,
        vec![Some(app.demo.space_id.clone())],
        "the Space is the message's group: a fair queue's tenant"
    );
    // Delivered twice by the queue (at least once): run once.
    let answer = dispatcher
        .handle(queue_batch(&[messages[0].clone(), messages[0].clone()]))
        .await
        .expect("a queue batch");
    assert_eq!(failures(&answer), Vec::<String>::new());
    let received = receiver.received().await;
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["verified_with"], json!([secret]), "{received:?}");
    assert_eq!(received[0]["body"]["type"], "contact.created");
    assert!(jobs(&app).await.is_empty(), "the job is done");
    let logged = deliveries(&app, &webhook).await;
    assert_eq!(logged[0]["status"], "delivered", "{logged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_comes_back_through_the_stream_as_a_new_job() {
    let (app, aws, dispatcher) = start().await;
    let receiver = Receiver::start();
    let (_, secret) = endpoint(&app, &receiver.hook(), json!(["contact.created"])).await;
    receiver.configure(&[&secret], &[500]).await;
    let before = events_after(&app, None).await.last().map(|event| event.sk.clone());
    app.contact(json!({"name": "Grace"})).await;
    dispatcher
        .handle(stream_batch(&events_after(&app, before).await))
        .await
        .expect("a stream batch");
    let first = jobs(&app).await;
    dispatcher.handle(stream_batch(&first)).await.expect("a stream batch");
    let answer = dispatcher
        .handle(queue_batch(&aws.drain().await))
        .await
        .expect("a queue batch");
    assert_eq!(
        failures(&answer),
        Vec::<String>::new(),
        "a failed attempt is the job's, not the message's"
    );

    // The retry is a new item, 5 s later: its INSERT sends it with that delay.
    let retry = jobs(&app).await;
    assert_eq!(retry.len(), 1);
    assert_ne!(retry[0].sk, first[0].sk);
    let due = JobRef::of(&retry[0]).and_then(|job| job.due()).expect("a due time");
    assert_eq!(due, app.clock.now() + TimeDelta::seconds(5));
    dispatcher.handle(stream_batch(&retry)).await.expect("a stream batch");

    // Run before it is due (a message early), it waits; once due, it delivers.
    receiver.configure(&[&secret], &[]).await;
    let retry_message = dispatcher::wake::message(&JobRef::of(&retry[0]).expect("a job"));
    dispatcher
        .handle(queue_batch(std::slice::from_ref(&retry_message)))
        .await
        .expect("a queue batch");
    assert_eq!(receiver.received().await.len(), 1, "only the failed attempt so far");
    app.clock.advance(TimeDelta::seconds(5));
    dispatcher
        .handle(queue_batch(&[retry_message]))
        .await
        .expect("a queue batch");
    let received = receiver.received().await;
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(
        received[0]["webhook_id"], received[1]["webhook_id"],
        "the same delivery, again"
    );
    assert!(jobs(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_due_later_becomes_a_one_time_schedule_that_fires_once() {
    let (app, aws, dispatcher) = start().await;
    let expires_at = space_http::fields::format_datetime(app.clock.now() + TimeDelta::days(30));
    app.account(Method::POST, &format!("/spaces/{}/keys", app.demo.space_id))
        .json(json!({"name": "a month", "scopes": ["contacts:read"], "expires_at": expires_at}))
        .send()
        .await
        .expect(201);
    let pending = jobs(&app).await;
    assert_eq!(pending.len(), 1, "the warning, due in 23 days: {pending:?}");
    let job = JobRef::of(&pending[0]).expect("a job");

    // Seen twice by the stream: one schedule, nothing on the queue.
    for _ in 0..2 {
        let answer = dispatcher.handle(stream_batch(&pending)).await.expect("a stream batch");
        assert_eq!(failures(&answer), Vec::<String>::new());
    }
    assert_eq!(aws.drain().await, Vec::<String>::new());
    let schedule = aws
        .scheduler
        .get_schedule()
        .name(schedule_name(&job))
        .group_name(&aws.settings.schedule_group)
        .send()
        .await
        .expect("the schedule exists");
    let due = job.due().expect("a due time");
    assert_eq!(
        schedule.schedule_expression.as_deref(),
        Some(dispatcher::wake::at_expression(due).as_str())
    );
    assert_eq!(schedule.schedule_expression_timezone.as_deref(), Some("UTC"));
    assert_eq!(
        schedule.action_after_completion,
        Some(aws_sdk_scheduler::types::ActionAfterCompletion::Delete)
    );
    let target = schedule.target.expect("a target");
    assert_eq!(target.arn, aws.settings.queue_arn);
    assert_eq!(target.role_arn, aws.settings.scheduler_role_arn);
    let input = target.input.expect("the job's message");
    assert_eq!(input, dispatcher::wake::message(&job));

    // The schedule fires: its input reaches the dispatcher through the queue.
    app.clock.advance(TimeDelta::days(23));
    let answer = dispatcher.handle(queue_batch(&[input])).await.expect("a queue batch");
    assert_eq!(failures(&answer), Vec::<String>::new());
    let warned: Vec<String> = app
        .event_types()
        .await
        .into_iter()
        .filter(|kind| kind == "key.expiring")
        .collect();
    assert_eq!(warned.len(), 1);
    assert!(jobs(&app).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_withdrawn_before_its_time_takes_its_schedule_with_it() {
    let (app, aws, dispatcher) = start().await;
    let account = crate::social::connect(&app, "linkedin", "Acme on LinkedIn").await;
    let created = app
        .space(Method::POST, "/social/posts")
        .json(json!({"content": "Next week", "account_ids": [account]}))
        .send()
        .await
        .expect(201);
    let post = created.body["posts"][0]["id"].as_str().unwrap_or_default().to_owned();
    let at = app.clock.now() + TimeDelta::days(7);
    let schedule = |at: chrono::DateTime<chrono::Utc>| {
        app.space(Method::POST, &format!("/social/posts/{post}/schedule"))
            .json(json!({"scheduled_at": space_http::fields::format_datetime(at)}))
            .send()
    };
    schedule(at).await.expect(200);
    let first = jobs(&app).await;
    assert_eq!(first.len(), 1, "{first:?}");
    dispatcher.handle(stream_batch(&first)).await.expect("a stream batch");
    let name = schedule_name(&JobRef::of(&first[0]).expect("a job"));
    let exists = |name: String| {
        let aws = &aws;
        async move {
            aws.scheduler
                .get_schedule()
                .name(name)
                .group_name(&aws.settings.schedule_group)
                .send()
                .await
                .is_ok()
        }
    };
    assert!(exists(name.clone()).await);

    // Moved a day later: the old job goes in the same transaction, the new one comes.
    schedule(at + TimeDelta::days(1)).await.expect(200);
    let second = jobs(&app).await;
    assert_eq!(second.len(), 1, "one job, the new one: {second:?}");
    assert_ne!(second[0].sk, first[0].sk);
    dispatcher.handle(stream_batch(&second)).await.expect("a stream batch");
    let answer = dispatcher.handle(removal_batch(&first)).await.expect("a stream batch");
    assert_eq!(failures(&answer), Vec::<String>::new());
    assert!(!exists(name).await, "the old schedule is withdrawn");
    let moved = schedule_name(&JobRef::of(&second[0]).expect("a job"));
    assert!(exists(moved.clone()).await);

    // Unscheduled: no job, no schedule; seen again, the removal is harmless.
    app.space(Method::POST, &format!("/social/posts/{post}/unschedule"))
        .json(json!({}))
        .send()
        .await
        .expect(200);
    assert!(jobs(&app).await.is_empty());
    for _ in 0..2 {
        let answer = dispatcher.handle(removal_batch(&second)).await.expect("a stream batch");
        assert_eq!(failures(&answer), Vec::<String>::new());
    }
    assert!(!exists(moved).await);
    assert_eq!(aws.drain().await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_cannot_be_woken_names_its_record_for_the_retry() {
    require_moto();
    let app = TestApp::dynamodb().await;
    let mut settings = aws().await.settings;
    settings.queue_url = format!("{}-missing", settings.queue_url);
    let dispatcher = Dispatcher::new(app.engine.clone(), Arc::new(QueueAndSchedules::new(settings)));
    let receiver = Receiver::start();
    let (_, secret) = endpoint(&app, &receiver.hook(), json!(["contact.created"])).await;
    receiver.configure(&[&secret], &[]).await;
    app.contact(json!({"name": "Edsger"})).await;
    let pending: Vec<Item> = {
        let events = events_after(&app, None).await;
        dispatcher.handle(stream_batch(&events)).await.expect("a stream batch");
        jobs(&app).await
    };
    assert_eq!(pending.len(), 1);
    let answer = dispatcher.handle(stream_batch(&pending)).await.expect("a stream batch");
    // The fixture's two records come first; the job's record is the third.
    assert_eq!(failures(&answer), vec!["111000000000000000000110".to_owned()]);

    let malformed = dispatcher
        .handle(json!({"Records": [{"eventSource": "aws:kinesis"}]}))
        .await;
    assert!(malformed.is_err(), "an event from elsewhere is refused");
}
