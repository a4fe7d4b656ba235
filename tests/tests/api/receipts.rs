//! Delivery receipts from the AWS providers, end to end on moto: a message the API sent
//! through SES or End User Messaging, the provider's event published to an SNS topic whose
//! subscription fills a queue, the batch received from the queue and handed to the
//! `receipts` function, the worker moving the message (and suppressing a hard-bounced
//! address). Sends name the configuration set and carry the message's tags or context
//! (checked on the request, against a local stand-in); a disconnected SES sender's identity
//! is deleted.

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

use crate::phone::stand_in;

on_both_backends!(
    ses_events_move_mail_and_suppress_hard_bounces,
    sms_events_move_sms,
    an_sms_whose_answer_was_lost_is_never_sent_again,
    an_ses_send_whose_answer_was_lost_is_never_sent_again,
    ses_sends_name_the_configuration_set_and_tag_the_message,
    sms_sends_name_the_configuration_set_and_carry_the_message_in_their_context,
    disconnecting_an_ses_sender_deletes_its_identity,
    an_ses_domain_belongs_to_one_space,
    a_deleted_spaces_ses_identities_go_before_its_domains,
    what_is_not_a_receipt_is_dropped_not_retried,
);

fn moto() -> String {
    std::env::var("AWS_ENDPOINT_URL")
        .expect("the receipts tests need moto: run through scripts/with-moto.sh (make test does)")
}

fn unique(prefix: &str) -> String {
    space_http::ids::new_id(prefix).to_lowercase().replace('_', "-")
}

fn id(value: &Value) -> String {
    value["id"].as_str().expect("an id").to_owned()
}

/// Between `<tag>` and `</tag>` of an SNS (query protocol) answer.
fn xml_field(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = text.find(&open).map(|at| at + open.len());
    let end = text.find(&format!("</{tag}>"));
    match (start, end) {
        (Some(start), Some(end)) if start <= end => text[start..end].to_owned(),
        _ => panic!("no {tag} in {text}"),
    }
}

/// An SNS topic on moto, subscribed by a queue with raw delivery, as Terraform sets it up.
struct Topic {
    endpoint: String,
    arn: String,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
}

impl Topic {
    async fn sns(endpoint: &str, params: &[(&str, &str)]) -> String {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let answer = reqwest::Client::new()
            .post(endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            // moto picks the service from the credential scope.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/sns/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body)
            .send()
            .await
            .expect("moto answers");
        let status = answer.status();
        let text = answer.text().await.expect("a body");
        assert!(status.is_success(), "SNS {params:?}: {status} {text}");
        text
    }

    async fn new() -> Topic {
        let endpoint = moto();
        let name = unique("receipts");
        let arn = xml_field(
            &Topic::sns(&endpoint, &[("Action", "CreateTopic"), ("Name", &name)]).await,
            "TopicArn",
        );
        let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        let sqs = aws_sdk_sqs::Client::new(&config);
        let (queue_url, queue_arn) = crate::moto::queue(&sqs, &name).await;
        Topic::sns(
            &endpoint,
            &[
                ("Action", "Subscribe"),
                ("TopicArn", &arn),
                ("Protocol", "sqs"),
                ("Endpoint", &queue_arn),
                ("Attributes.entry.1.key", "RawMessageDelivery"),
                ("Attributes.entry.1.value", "true"),
            ],
        )
        .await;
        Topic {
            endpoint,
            arn,
            sqs,
            queue_url,
        }
    }

    /// Publishes `event` as the provider would.
    async fn publish(&self, event: &Value) {
        Topic::sns(
            &self.endpoint,
            &[
                ("Action", "Publish"),
                ("TopicArn", &self.arn),
                ("Message", &event.to_string()),
            ],
        )
        .await;
    }

    /// What the queue holds now, as the batch Lambda's event source mapping would invoke
    /// the function with (then deleted from the queue, as the mapping does with what the
    /// function took).
    async fn batch(&self) -> receipts::SqsEvent {
        let received = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("a receive");
        let messages = received.messages.unwrap_or_default();
        for handle in messages.iter().filter_map(|message| message.receipt_handle.clone()) {
            self.sqs
                .delete_message()
                .queue_url(&self.queue_url)
                .receipt_handle(handle)
                .send()
                .await
                .expect("a delete");
        }
        let records: Vec<Value> = messages
            .into_iter()
            .map(|message| {
                json!({
                    "messageId": message.message_id,
                    "receiptHandle": message.receipt_handle,
                    "body": message.body,
                    "attributes": {},
                    "messageAttributes": {},
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:receipts",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        assert!(!records.is_empty(), "the queue got the event");
        serde_json::from_value(json!({"Records": records})).expect("an SQS event")
    }
}

/// Hands `batch` to the receipts function: the messages it wants back.
async fn take(app: &TestApp, batch: &receipts::SqsEvent) -> Vec<String> {
    let answer = receipts::Receipts::new(app.engine.clone()).queue(batch.clone()).await;
    let answer = serde_json::to_value(answer).expect("JSON");
    answer["batchItemFailures"]
        .as_array()
        .expect("a partial batch response")
        .iter()
        .map(|failure| failure["itemIdentifier"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Publishes `event`, receives it from the queue and hands it to the function, then runs
/// the worker: the batch, to hand over again.
async fn report(app: &TestApp, topic: &Topic, event: &Value) -> receipts::SqsEvent {
    topic.publish(event).await;
    let batch = topic.batch().await;
    assert_eq!(take(app, &batch).await, Vec::<String>::new());
    app.worker_pass().await;
    batch
}

/// An SES sending event about the message `message_id` of `space` (tags as every send
/// sets them), with `detail` under its own field.
fn ses_event(kind: &str, field: &str, detail: Value, space: &str, message_id: &str, to: &[&str]) -> Value {
    json!({
        "eventType": kind,
        field: detail,
        "mail": {
            "timestamp": "2026-03-02T09:58:01.012Z",
            "source": "agent@example.com",
            "sendingAccountId": "123456789012",
            "messageId": "0100018e0a1b2c3d-5e6f7a8b-000000",
            "destination": to,
            "headersTruncated": false,
            "tags": {
                "ses:configuration-set": ["space-api-test-mail"],
                "space_id": [space],
                "message_id": [message_id]
            }
        }
    })
}

async fn mail_message(app: &TestApp, id: &str) -> Value {
    app.space(Method::GET, &format!("/mail/messages/{id}"))
        .send()
        .await
        .expect(200)
        .body
}

fn recipient(message: &Value, address: &str) -> String {
    message["recipients"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["address"] == address)
        .and_then(|r| r["status"].as_str())
        .unwrap_or_default()
        .to_owned()
}

async fn connect_ses_sender(app: &TestApp, address: &str) -> String {
    let space = &app.demo.space_id;
    let created = app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "mail", "address": address, "provider": "ses"}))
        .send()
        .await
        .expect(201);
    // The worker registers the identity with SES (moto verifies it at once).
    app.worker_pass().await;
    id(&created.body)
}

async fn ses_events_move_mail_and_suppress_hard_bounces(app: TestApp) {
    moto();
    let space = app.demo.space_id.clone();
    let sender = connect_ses_sender(&app, &format!("{}@example.com", unique("agent"))).await;
    let accepted = app
        .space(Method::POST, "/mail/messages")
        .json(
            json!({"from_sender_id": sender, "to": ["gone@example.com", "ada@example.com"],
                     "subject": "Your order", "text": "It shipped."}),
        )
        .send()
        .await
        .expect(202);
    let message_id = id(&accepted.body);
    app.worker_pass().await;
    assert_eq!(mail_message(&app, &message_id).await["status"], "sent");
    let topic = Topic::new().await;

    // A hard bounce from one recipient: the message bounced, the address suppressed.
    let bounce = ses_event(
        "Bounce",
        "bounce",
        json!({"bounceType": "Permanent", "bounceSubType": "General",
               "bouncedRecipients": [{"emailAddress": "gone@example.com", "action": "failed",
                                      "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
               "timestamp": "2026-03-02T09:59:02.669Z", "feedbackId": "0100018e-bounce-000000"}),
        &space,
        &message_id,
        &["gone@example.com", "ada@example.com"],
    );
    let batch = report(&app, &topic, &bounce).await;
    let bounced = mail_message(&app, &message_id).await;
    assert_eq!(bounced["status"], "bounced", "{bounced}");
    assert_eq!(recipient(&bounced, "gone@example.com"), "bounced");
    assert_eq!(recipient(&bounced, "ada@example.com"), "sent");
    let refused = app
        .space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["gone@example.com"], "subject": "Again", "text": "Hi"}))
        .send()
        .await
        .expect(422);
    assert!(refused.text.contains("gone@example.com"), "{}", refused.text);

    // The same message delivered again moves nothing twice.
    assert_eq!(take(&app, &batch).await, Vec::<String>::new());
    app.worker_pass().await;
    let again = mail_message(&app, &message_id).await;
    assert_eq!(again["version"], bounced["version"], "{again}");
    let types = app.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "mail.bounced").count(), 1, "{types:?}");

    // The other recipient's delivery, reported later, is recorded; the message stays bounced.
    let delivery = ses_event(
        "Delivery",
        "delivery",
        json!({"timestamp": "2026-03-02T09:58:03.106Z", "processingTimeMillis": 2094,
               "recipients": ["ada@example.com"], "smtpResponse": "250 2.6.0 Message received"}),
        &space,
        &message_id,
        &["gone@example.com", "ada@example.com"],
    );
    report(&app, &topic, &delivery).await;
    let settled = mail_message(&app, &message_id).await;
    assert_eq!(settled["status"], "bounced", "{settled}");
    assert_eq!(recipient(&settled, "ada@example.com"), "delivered");

    // A soft bounce moves nothing and suppresses nobody; a complaint suppresses.
    let second = app
        .space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["full@example.com"], "subject": "Hi", "text": "Hi"}))
        .send()
        .await
        .expect(202);
    let second_id = id(&second.body);
    app.worker_pass().await;
    let soft = ses_event(
        "Bounce",
        "bounce",
        json!({"bounceType": "Transient", "bounceSubType": "MailboxFull",
               "bouncedRecipients": [{"emailAddress": "full@example.com"}],
               "timestamp": "2026-03-02T09:59:02.669Z", "feedbackId": "0100018e-soft-000000"}),
        &space,
        &second_id,
        &["full@example.com"],
    );
    report(&app, &topic, &soft).await;
    assert_eq!(mail_message(&app, &second_id).await["status"], "sent");
    let complaint = ses_event(
        "Complaint",
        "complaint",
        json!({"complainedRecipients": [{"emailAddress": "full@example.com"}],
               "timestamp": "2026-03-02T10:01:00.000Z", "feedbackId": "0100018e-complaint-000000",
               "complaintFeedbackType": "abuse"}),
        &space,
        &second_id,
        &["full@example.com"],
    );
    report(&app, &topic, &complaint).await;
    assert_eq!(mail_message(&app, &second_id).await["status"], "complained");
    app.space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["full@example.com"], "subject": "Again", "text": "Hi"}))
        .send()
        .await
        .expect(422);

    // An event that overtakes the record of its send (here: taken before the worker sent
    // the message) waits for it rather than being lost.
    let third = app
        .space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["early@example.com"], "subject": "Hi", "text": "Hi"}))
        .send()
        .await
        .expect(202);
    let third_id = id(&third.body);
    let early = ses_event(
        "Bounce",
        "bounce",
        json!({"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "early@example.com"}],
               "timestamp": "2026-03-02T09:59:02.669Z", "feedbackId": "0100018e-early-000000"}),
        &space,
        &third_id,
        &["early@example.com"],
    );
    report(&app, &topic, &early).await;
    app.clock.advance(chrono::TimeDelta::seconds(60));
    app.worker_pass().await;
    assert_eq!(mail_message(&app, &third_id).await["status"], "bounced");

    // SES refusing a message it took fails it with SES's reason and suppresses nobody.
    let fourth = app
        .space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["virus@example.com"], "subject": "Hi", "text": "Hi"}))
        .send()
        .await
        .expect(202);
    let fourth_id = id(&fourth.body);
    app.worker_pass().await;
    let reject = ses_event(
        "Reject",
        "reject",
        json!({"reason": "Bad content"}),
        &space,
        &fourth_id,
        &["virus@example.com"],
    );
    report(&app, &topic, &reject).await;
    let failed = mail_message(&app, &fourth_id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "PROVIDER_REJECTED", "{failed}");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Bad content"),
        "{failed}"
    );
    app.space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["virus@example.com"], "subject": "Clean", "text": "Hi"}))
        .send()
        .await
        .expect(202);
}

fn sms_event(kind: &str, space: &str, message_id: &str, to: &str) -> Value {
    json!({
        "eventType": kind,
        "eventVersion": "1.0",
        "eventTimestamp": 1_772_445_540_000_i64,
        "isFinal": true,
        "originationPhoneNumber": "+12015550100",
        "destinationPhoneNumber": to,
        "isoCountryCode": "US",
        "messageId": format!("aws-{message_id}"),
        "messageRequestTimestamp": 1_772_445_539_000_i64,
        "messageEncoding": "GSM",
        "messageType": "TRANSACTIONAL",
        "messageStatus": kind.trim_start_matches("TEXT_"),
        "messageStatusDescription": "Reported by the carrier",
        "context": {"space_id": space, "message_id": message_id},
        "totalMessageParts": 1,
        "totalMessagePrice": 0.00581,
        "totalCarrierFee": 0.00302
    })
}

fn aws_sms(endpoint: &str, configuration_set: Option<&str>) -> phone::provider::AwsSms {
    use aws_sdk_pinpointsmsvoicev2::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_pinpointsmsvoicev2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    phone::provider::AwsSms::new(aws_sdk_pinpointsmsvoicev2::Client::from_conf(config))
        .with_configuration_set(configuration_set.map(str::to_owned))
}

async fn stored(app: &TestApp, collection: &str, id: &str) -> space_store::Item {
    let partition = space_http::keys::collection_partition(&app.demo.space_id, collection);
    app.engine
        .store()
        .get(&partition, id)
        .await
        .expect("a read")
        .expect("the message")
}

/// An `aws` number and an SMS from it to `to`, sent through a stand-in that answers
/// `SendTextMessage`: the message's id and the request the stand-in got.
async fn sent_sms(app: &TestApp, to: &str, configuration_set: Option<&str>) -> (String, Value) {
    let space = app.demo.space_id.clone();
    let number = match app
        .space(Method::GET, "/phone/numbers")
        .send()
        .await
        .expect(200)
        .body["data"]
        .as_array()
        .and_then(|numbers| numbers.first().cloned())
    {
        Some(number) => id(&number),
        None => id(&app
            .account(Method::POST, &format!("/spaces/{space}/connections"))
            .json(json!({"kind": "phone", "number": "+12015550100", "capabilities": ["sms"], "name": "AWS", "provider": "aws"}))
            .send()
            .await
            .expect(201)
            .body),
    };
    let queued = crate::phone::send(app, &number, to, "Your code is 123456")
        .await
        .expect(201);
    let message_id = id(&queued.body);
    let (endpoint, received) = stand_in(200, json!({"MessageId": format!("aws-{message_id}")})).await;
    let message = stored(app, phone::sms::MESSAGES, &message_id).await;
    phone::delivery::deliver(
        &app.engine,
        &space,
        &message,
        Some(&aws_sms(&endpoint, configuration_set)),
        0,
    )
    .await
    .expect("sent");
    let requests = received.requests.lock().expect("not poisoned").clone();
    assert_eq!(requests.len(), 1);
    (message_id, requests[0].1.clone())
}

async fn sms(app: &TestApp, id: &str) -> Value {
    app.space(Method::GET, &format!("/phone/sms/{id}"))
        .send()
        .await
        .expect(200)
        .body
}

async fn sms_events_move_sms(app: TestApp) {
    let space = app.demo.space_id.clone();
    let (delivered_id, _) = sent_sms(&app, "+12015550123", Some("space-api-test-sms")).await;
    let (unreachable_id, _) = sent_sms(&app, "+12015550124", Some("space-api-test-sms")).await;
    assert_eq!(sms(&app, &delivered_id).await["status"], "sent");
    let topic = Topic::new().await;

    let batch = report(
        &app,
        &topic,
        &sms_event("TEXT_DELIVERED", &space, &delivered_id, "+12015550123"),
    )
    .await;
    let delivered = sms(&app, &delivered_id).await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    report(
        &app,
        &topic,
        &sms_event("TEXT_CARRIER_UNREACHABLE", &space, &unreachable_id, "+12015550124"),
    )
    .await;
    assert_eq!(sms(&app, &unreachable_id).await["status"], "undelivered");

    // Redelivered, or a progress event after the final one: nothing moves.
    assert_eq!(take(&app, &batch).await, Vec::<String>::new());
    report(
        &app,
        &topic,
        &sms_event("TEXT_PENDING", &space, &delivered_id, "+12015550123"),
    )
    .await;
    app.worker_pass().await;
    let again = sms(&app, &delivered_id).await;
    assert_eq!(again["version"], delivered["version"], "{again}");
    let types = app.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "sms.delivered").count(), 1, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "sms.undelivered").count(), 1, "{types:?}");
}

/// An SMS from the `aws` number to `to`, its send answered by AWS's internal error (it may
/// have gone): the message's id, left `sending` after one request (the SDK does not retry).
async fn lost_sms(app: &TestApp, to: &str) -> String {
    let space = app.demo.space_id.clone();
    let number = id(&app.space(Method::GET, "/phone/numbers").send().await.expect(200).body["data"][0]);
    let message_id = id(&crate::phone::send(app, &number, to, "Your code is 123456")
        .await
        .expect(201)
        .body);
    let (endpoint, received) = stand_in(
        500,
        json!({"__type": "InternalServerException", "message": "Something went wrong"}),
    )
    .await;
    let message = stored(app, phone::sms::MESSAGES, &message_id).await;
    let outcome = phone::delivery::deliver(&app.engine, &space, &message, Some(&aws_sms(&endpoint, None)), 0).await;
    let settle = app.engine.now() + space_connections::outbound::SETTLE_AFTER;
    assert_eq!(outcome, Ok(space_worker::Outcome::Later(settle)));
    assert_eq!(received.requests.lock().expect("not poisoned").len(), 1, "asked once");
    assert_eq!(sms(app, &message_id).await["status"], "sending");
    message_id
}

async fn an_sms_whose_answer_was_lost_is_never_sent_again(app: TestApp) {
    let space = app.demo.space_id.clone();
    sent_sms(&app, "+12015550120", None).await;
    let confirmed_id = lost_sms(&app, "+12015550123").await;

    // Its job runs again (its run died, or the worker retries it): AWS is not asked again.
    let (endpoint, received) = stand_in(200, json!({"MessageId": "aws-again"})).await;
    let message = stored(&app, phone::sms::MESSAGES, &confirmed_id).await;
    let outcome = phone::delivery::deliver(&app.engine, &space, &message, Some(&aws_sms(&endpoint, None)), 1).await;
    assert!(matches!(outcome, Ok(space_worker::Outcome::Later(_))), "{outcome:?}");
    app.worker_pass().await;
    assert_eq!(sms(&app, &confirmed_id).await["status"], "sending");

    // The carrier's receipt shows it went: sent, then delivered.
    let topic = Topic::new().await;
    report(
        &app,
        &topic,
        &sms_event("TEXT_DELIVERED", &space, &confirmed_id, "+12015550123"),
    )
    .await;
    assert_eq!(sms(&app, &confirmed_id).await["status"], "delivered");

    // Without a receipt within the hour it fails, never sent again; a late receipt still
    // tells that it went.
    let unknown_id = lost_sms(&app, "+12015550124").await;
    app.clock.advance(space_connections::outbound::SETTLE_AFTER);
    let message = stored(&app, phone::sms::MESSAGES, &unknown_id).await;
    let outcome = phone::delivery::deliver(&app.engine, &space, &message, Some(&aws_sms(&endpoint, None)), 1).await;
    assert_eq!(outcome, Ok(space_worker::Outcome::Done));
    app.worker_pass().await;
    let failed = sms(&app, &unknown_id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"]["code"], "OUTCOME_UNKNOWN", "{failed}");
    assert!(
        received.requests.lock().expect("not poisoned").is_empty(),
        "never asked twice"
    );
    report(
        &app,
        &topic,
        &sms_event("TEXT_DELIVERED", &space, &unknown_id, "+12015550124"),
    )
    .await;
    let delivered = sms(&app, &unknown_id).await;
    assert_eq!(delivered["status"], "delivered", "{delivered}");
    assert!(delivered.get("error").is_none_or(Value::is_null), "{delivered}");

    let types = app.event_types().await;
    assert_eq!(types.iter().filter(|t| *t == "sms.sent").count(), 3, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "sms.failed").count(), 1, "{types:?}");
    assert_eq!(types.iter().filter(|t| *t == "sms.delivered").count(), 2, "{types:?}");
}

async fn an_ses_send_whose_answer_was_lost_is_never_sent_again(app: TestApp) {
    let space = app.demo.space_id.clone();
    let sender = id(&app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "mail", "address": "agent@example.com", "provider": "sandbox"}))
        .send()
        .await
        .expect(201)
        .body);
    let message_id = id(&app
        .space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["ada@example.com"], "subject": "Hi", "text": "Hi"}))
        .send()
        .await
        .expect(202)
        .body);
    let (endpoint, received) = stand_in(500, json!({"__type": "InternalFailure", "message": "Try later"})).await;
    let ses = ses_at(&endpoint, None);
    for run in 0..3 {
        let message = stored(&app, mail::messages::MESSAGES, &message_id).await;
        let outcome = mail::delivery::deliver(&app.engine, &space, &message, Some(&ses), run).await;
        assert!(matches!(outcome, Ok(space_worker::Outcome::Later(_))), "{outcome:?}");
    }
    assert_eq!(received.requests.lock().expect("not poisoned").len(), 1, "asked once");
    assert_eq!(mail_message(&app, &message_id).await["status"], "sending");

    // Throttled is refused before sending: queued again, and the next run asks again.
    let throttled_id = id(&app
        .space(Method::POST, "/mail/messages")
        .json(json!({"from_sender_id": sender, "to": ["bob@example.com"], "subject": "Hi", "text": "Hi"}))
        .send()
        .await
        .expect(202)
        .body);
    let (endpoint, received) = stand_in(
        400,
        json!({"__type": "TooManyRequestsException", "message": "Slow down"}),
    )
    .await;
    let message = stored(&app, mail::messages::MESSAGES, &throttled_id).await;
    let outcome = mail::delivery::deliver(&app.engine, &space, &message, Some(&ses_at(&endpoint, None)), 0).await;
    assert!(matches!(outcome, Err(space_worker::JobError::Retry(_))), "{outcome:?}");
    assert_eq!(mail_message(&app, &throttled_id).await["status"], "queued");
    assert_eq!(received.requests.lock().expect("not poisoned").len(), 1);
    let (endpoint, received) = stand_in(200, json!({"MessageId": "ses-0002"})).await;
    let message = stored(&app, mail::messages::MESSAGES, &throttled_id).await;
    mail::delivery::deliver(&app.engine, &space, &message, Some(&ses_at(&endpoint, None)), 1)
        .await
        .expect("sent");
    assert_eq!(received.requests.lock().expect("not poisoned").len(), 1);
    assert_eq!(mail_message(&app, &throttled_id).await["status"], "sent");
}

async fn sms_sends_name_the_configuration_set_and_carry_the_message_in_their_context(app: TestApp) {
    let space = app.demo.space_id.clone();
    let (message_id, request) = sent_sms(&app, "+12015550123", Some("space-api-test-sms")).await;
    assert_eq!(request["ConfigurationSetName"], "space-api-test-sms");
    assert_eq!(request["Context"], json!({"space_id": space, "message_id": message_id}));
    // Without a configuration set (none configured), none is named; the context still goes.
    let (message_id, request) = sent_sms(&app, "+12015550124", None).await;
    assert!(request.get("ConfigurationSetName").is_none(), "{request}");
    assert_eq!(request["Context"]["message_id"], message_id.as_str());
}

fn ses_at(endpoint: &str, configuration_set: Option<&str>) -> mail::provider::Ses {
    use aws_sdk_sesv2::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_sesv2::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    mail::provider::Ses::new(aws_sdk_sesv2::Client::from_conf(config))
        .with_configuration_set(configuration_set.map(str::to_owned))
}

async fn ses_sends_name_the_configuration_set_and_tag_the_message(app: TestApp) {
    let space = app.demo.space_id.clone();
    let sender = id(&app
        .account(Method::POST, &format!("/spaces/{space}/connections"))
        .json(json!({"kind": "mail", "address": "agent@example.com", "provider": "sandbox"}))
        .send()
        .await
        .expect(201)
        .body);
    for configuration_set in [Some("space-api-test-mail"), None] {
        let accepted = app
            .space(Method::POST, "/mail/messages")
            .json(json!({"from_sender_id": sender, "to": ["ada@example.com"], "subject": "Hi", "text": "Hi"}))
            .send()
            .await
            .expect(202);
        let message_id = id(&accepted.body);
        let (endpoint, received) = stand_in(200, json!({"MessageId": "ses-0001"})).await;
        let message = stored(&app, mail::messages::MESSAGES, &message_id).await;
        mail::delivery::deliver(
            &app.engine,
            &space,
            &message,
            Some(&ses_at(&endpoint, configuration_set)),
            0,
        )
        .await
        .expect("sent");
        let requests = received.requests.lock().expect("not poisoned").clone();
        assert_eq!(requests.len(), 1);
        let request = &requests[0].1;
        assert_eq!(
            request["EmailTags"],
            json!([{"Name": "space_id", "Value": space}, {"Name": "message_id", "Value": message_id}])
        );
        match configuration_set {
            Some(name) => assert_eq!(request["ConfigurationSetName"], name),
            None => assert!(request.get("ConfigurationSetName").is_none(), "{request}"),
        }
        assert_eq!(mail_message(&app, &message_id).await["status"], "sent");
    }
}

async fn ses_identity(address: &str) -> Result<(), String> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_sesv2::Client::new(&config);
    client
        .get_email_identity()
        .email_identity(address)
        .send()
        .await
        .map(|_| ())
        .map_err(|error| {
            use aws_sdk_sesv2::error::ProvideErrorMetadata;
            error.code().unwrap_or("no code").to_owned()
        })
}

async fn disconnecting_an_ses_sender_deletes_its_identity(app: TestApp) {
    moto();
    let space = app.demo.space_id.clone();
    let address = format!("{}@example.com", unique("agent"));
    let sender = connect_ses_sender(&app, &address).await;
    assert_eq!(ses_identity(&address).await, Ok(()), "the identity exists");
    app.account(Method::DELETE, &format!("/spaces/{space}/connections/{sender}"))
        .send()
        .await
        .expect(204);
    app.worker_pass().await;
    assert_eq!(ses_identity(&address).await, Err("NotFoundException".into()));

    // An identity already gone is fine: the job is done, not retried.
    let other = format!("{}@example.com", unique("agent"));
    let sender = connect_ses_sender(&app, &other).await;
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_sesv2::Client::new(&config)
        .delete_email_identity()
        .email_identity(&other)
        .send()
        .await
        .expect("deleted by hand");
    app.account(Method::DELETE, &format!("/spaces/{space}/connections/{sender}"))
        .send()
        .await
        .expect(204);
    app.worker_pass().await;
    let mut partitions: Vec<String> = (0..space_worker::SHARDS).map(space_worker::partition).collect();
    partitions.push(space_worker::DEAD_PARTITION.to_owned());
    for partition in partitions {
        let left = app
            .engine
            .store()
            .query(space_store::Query::partition(partition).limit(100))
            .await
            .expect("jobs")
            .items;
        assert!(
            left.iter().all(|job| job.body["kind"] != mail::IDENTITY_DELETE),
            "{left:?}"
        );
    }
}

async fn an_ses_domain_belongs_to_one_space(app: TestApp) {
    moto();
    let space = app.demo.space_id.clone();
    let domain = format!("{}.example.com", unique("d"));
    let sender = connect_ses_sender(&app, &format!("agent@{domain}")).await;
    // The same Space connects more of its domain.
    let second = connect_ses_sender(&app, &domain).await;

    let stranger = spacectl::bootstrap::create_demo(&app.engine, "Stranger", None)
        .await
        .expect("a second account");
    let connect = |address: String, provider: &'static str| {
        let app = &app;
        let stranger = &stranger;
        async move {
            app.request(
                Method::POST,
                &format!("{}/spaces/{}/connections", space_tests::ACCOUNT_API, stranger.space_id),
            )
            .key(&stranger.account_key)
            .json(json!({"kind": "mail", "address": address, "provider": provider}))
            .send()
            .await
        }
    };
    for address in [format!("ceo@{domain}"), format!("agent@{domain}"), domain.clone()] {
        let refused = connect(address.clone(), "ses").await.expect(409);
        assert!(refused.text.contains(&domain), "{address}: {}", refused.text);
    }
    connect(format!("ceo@{domain}"), "sandbox").await.expect(201);

    // Once the Space has no SES sender at the domain, another Space may claim it.
    for id in [&sender, &second] {
        app.account(Method::DELETE, &format!("/spaces/{space}/connections/{id}"))
            .send()
            .await
            .expect(204);
    }
    app.worker_pass().await;
    connect(format!("ceo@{domain}"), "ses").await.expect(201);
}

async fn a_deleted_spaces_ses_identities_go_before_its_domains(app: TestApp) {
    moto();
    let space = app.demo.space_id.clone();
    let domain = format!("{}.example.com", unique("d"));
    let address = format!("agent@{domain}");
    connect_ses_sender(&app, &address).await;
    connect_ses_sender(&app, &domain).await;
    assert_eq!(ses_identity(&address).await, Ok(()));

    let stranger = spacectl::bootstrap::create_demo(&app.engine, "Stranger", None)
        .await
        .expect("a second account");
    let connect = || {
        app.request(
            Method::POST,
            &format!("{}/spaces/{}/connections", space_tests::ACCOUNT_API, stranger.space_id),
        )
        .key(&stranger.account_key)
        .json(json!({"kind": "mail", "address": format!("ceo@{domain}"), "provider": "ses"}))
        .send()
    };
    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(204);
    // Deleting: the Space's claim stands until SES has let go of its identities.
    assert!(connect().await.expect(409).text.contains(&domain));
    app.worker_drain().await;
    assert_eq!(ses_identity(&address).await, Err("NotFoundException".into()));
    assert_eq!(ses_identity(&domain).await, Err("NotFoundException".into()));
    connect().await.expect(201);
}

async fn what_is_not_a_receipt_is_dropped_not_retried(app: TestApp) {
    let topic = Topic::new().await;
    // Not JSON, JSON of no provider, an SES event of another sender (no tags), and an SMS
    // event naming no message of ours: each dropped, none asked back.
    topic.publish(&json!({"hello": "world"})).await;
    topic
        .publish(
            &json!({"eventType": "Bounce", "bounce": {"bounceType": "Permanent", "bouncedRecipients": []},
                         "mail": {"messageId": "x", "tags": {}}}),
        )
        .await;
    topic
        .publish(&json!({"eventType": "TEXT_DELIVERED", "messageId": "y", "context": {"account": "bar"}}))
        .await;
    let batch = topic.batch().await;
    let mut garbage = serde_json::to_value(&batch).expect("JSON");
    garbage["Records"][0]["body"] = json!("not json at all");
    let garbage: receipts::SqsEvent = serde_json::from_value(garbage).expect("an SQS event");
    assert_eq!(take(&app, &batch).await, Vec::<String>::new());
    assert_eq!(take(&app, &garbage).await, Vec::<String>::new());
    app.worker_pass().await;
}
