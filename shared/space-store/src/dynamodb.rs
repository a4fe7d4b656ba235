//! The DynamoDB backend: one table keyed by string `pk` (HASH) and `sk` (RANGE).
//!
//! Item layout: `pk` S, `sk` S, `v` N (version), `ttl` N (unix seconds, the table's TTL
//! attribute, absent when the item never expires), `body` M (the JSON body). Counters
//! written by [`Store::increment`] keep their value in `n` and have no body.
//!
//! DynamoDB deletes expired items up to days late, so every read and every condition
//! checks `ttl` against the injected clock itself: an expired item is absent, exactly as
//! in the embedded backend.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, DeleteRequest, KeySchemaElement, KeyType,
    Put, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TableStatus,
    TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem, Update, WriteRequest,
};
use serde_json::{Map, Number, Value};

use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::item::{Condition, Item, Page, Query, Scan, ScanPage, SortRange, Write};
use crate::store::{Store, holdable_key, validate_item, validate_transaction};

const PK: &str = "pk";
const SK: &str = "sk";
const VERSION: &str = "v";
const TTL: &str = "ttl";
const BODY: &str = "body";
const COUNTER: &str = "n";

/// Rounds of the increment protocol before giving up; each lost round means another
/// writer made progress on the same counter.
const INCREMENT_ROUNDS: usize = 16;
/// DynamoDB's limit on the writes of one BatchWriteItem.
const BATCH_WRITES: usize = 25;
/// Rounds of BatchWriteItem for what DynamoDB left unprocessed (it does under load)
/// before giving up with "unavailable".
const BATCH_ROUNDS: u32 = 8;
/// How long `create_table` waits for a new table to become ACTIVE.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Error codes DynamoDB (and Secrets Manager) use for "slow down": answered with 503.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
];

/// The DynamoDB store. Cheap to clone (the SDK client is shared).
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// How long a DynamoDB call may take in all, retries included (they answer in milliseconds;
/// API Gateway gives up on a request after 29 s).
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

impl DynamoStore {
    /// Writes `requests` through BatchWriteItem, 25 a call, sending again what DynamoDB
    /// leaves unprocessed (with a growing pause) until all are written.
    async fn batch_write(&self, requests: Vec<WriteRequest>, what: &str) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITES) {
            let mut pending = chunk.to_vec();
            for round in 0..BATCH_ROUNDS {
                let written = self
                    .client
                    .batch_write_item()
                    .request_items(self.table.as_ref(), pending)
                    .send()
                    .await;
                let output = match written {
                    Ok(output) => output,
                    Err(error) => {
                        let error = service_error("BatchWriteItem", error)?;
                        return Err(self.unexpected("BatchWriteItem", &error));
                    }
                };
                pending = output
                    .unprocessed_items
                    .and_then(|mut tables| tables.remove(self.table.as_ref()))
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if round + 1 == BATCH_ROUNDS {
                    return Err(StoreError::unavailable(format!(
                        "BatchWriteItem left {} {what} unprocessed after {BATCH_ROUNDS} rounds",
                        pending.len()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(25 << round)).await;
            }
        }
        Ok(())
    }

    /// A store on `table`, through a client the caller configured.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoStore {
        DynamoStore {
            client,
            table: Arc::from(table.into()),
            clock: Arc::new(SystemClock),
        }
    }

    /// A store on `table` with the SDK's standard configuration (environment, profile,
    /// instance role; `AWS_ENDPOINT_URL` for local servers). Build it once per process:
    /// the client holds the connection pool.
    pub async fn from_env(table: impl Into<String>) -> DynamoStore {
        let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
        DynamoStore::from_config(&config, table)
    }

    /// A store on `table` from a loaded SDK config, with a time limit: a call that has no
    /// answer after [`OPERATION_TIMEOUT`] gives up (503 with `Retry-After`), so a stalled
    /// endpoint cannot hold a request until the Lambda itself times out. No per-attempt
    /// limit: a timed-out attempt is retried, and a retried `ADD` that had in fact landed
    /// would count a rate-limit hit twice.
    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> DynamoStore {
        let timeouts = aws_config::timeout::TimeoutConfig::builder()
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let client_config = aws_sdk_dynamodb::config::Builder::from(config)
            .timeout_config(timeouts)
            .build();
        DynamoStore::new(Client::from_conf(client_config), table)
    }

    /// Replaces the clock that decides expiry (tests move time by hand).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> DynamoStore {
        self.clock = clock;
        self
    }

    /// The table this store uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table (on demand, `pk` HASH, `sk` RANGE) and turns TTL on for `ttl`.
    /// Idempotent: an existing table or TTL setting is left as it is. Meant for local
    /// servers and tests; in AWS the infrastructure code owns the table.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(build_error)
        };
        let created = self
            .client
            .create_table()
            .table_name(self.table.as_ref())
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute(PK)?)
            .attribute_definitions(attribute(SK)?)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?)
            .send()
            .await;
        if let Err(error) = created {
            let error = service_error("CreateTable", error)?;
            if !error.is_resource_in_use_exception() {
                return Err(self.unexpected("CreateTable", &error));
            }
        }
        self.wait_until_active().await?;
        if self.ttl_enabled().await? {
            return Ok(());
        }
        let specification = TimeToLiveSpecification::builder()
            .attribute_name(TTL)
            .enabled(true)
            .build()
            .map_err(build_error)?;
        let updated = self
            .client
            .update_time_to_live()
            .table_name(self.table.as_ref())
            .time_to_live_specification(specification)
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("UpdateTimeToLive", error)?;
                // Another process may have turned it on in between.
                if self.ttl_enabled().await? {
                    Ok(())
                } else {
                    Err(self.unexpected("UpdateTimeToLive", &error))
                }
            }
        }
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + TABLE_ACTIVE_TIMEOUT;
        loop {
            let described = self
                .client
                .describe_table()
                .table_name(self.table.as_ref())
                .send()
                .await;
            let status = match described {
                Ok(output) => output.table.and_then(|table| table.table_status),
                Err(error) => {
                    let error = service_error("DescribeTable", error)?;
                    return Err(self.unexpected("DescribeTable", &error));
                }
            };
            if status == Some(TableStatus::Active) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Internal(format!(
                    "DynamoDB table `{}` is not ACTIVE after {}s (status {status:?})",
                    self.table,
                    TABLE_ACTIVE_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn ttl_enabled(&self) -> Result<bool, StoreError> {
        let described = self
            .client
            .describe_time_to_live()
            .table_name(self.table.as_ref())
            .send()
            .await;
        match described {
            Ok(output) => Ok(matches!(
                output.time_to_live_description.and_then(|d| d.time_to_live_status),
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            )),
            Err(error) => {
                let error = service_error("DescribeTimeToLive", error)?;
                Err(self.unexpected("DescribeTimeToLive", &error))
            }
        }
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    /// Maps a service error no caller handles itself.
    fn unexpected<E>(&self, operation: &str, error: &E) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match error.code() {
            Some("ResourceNotFoundException") => StoreError::Internal(format!(
                "{operation}: DynamoDB table `{}` does not exist (create it first; locally DynamoStore::create_table does)",
                self.table
            )),
            // A plain write raced a transaction on the same item.
            Some("TransactionConflictException") => StoreError::Contention,
            _ => unexpected_service_error(operation, error),
        }
    }

    /// GetItem with a consistent read, expired or not.
    async fn get_raw(&self, pk: &str, sk: &str) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        if !holdable_key(pk, sk) {
            return Ok(None);
        }
        let got = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await;
        match got {
            Ok(output) => Ok(output.item),
            Err(error) => {
                let error = service_error("GetItem", error)?;
                Err(self.unexpected("GetItem", &error))
            }
        }
    }

    /// One conditional UpdateItem of the increment protocol.
    async fn update_counter(&self, pk: &str, sk: &str, expression: Expression) -> Result<CounterUpdate, StoreError> {
        let updated = self
            .client
            .update_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(pk, sk)))
            .set_update_expression(expression.update)
            .set_condition_expression(expression.condition)
            .set_expression_attribute_names(non_empty(expression.names))
            .set_expression_attribute_values(non_empty(expression.values))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match updated {
            Ok(output) => {
                let value = output
                    .attributes
                    .as_ref()
                    .and_then(|attributes| attributes.get(COUNTER));
                match value {
                    Some(AttributeValue::N(text)) => text
                        .parse::<u64>()
                        .map(CounterUpdate::Counted)
                        .map_err(|_| StoreError::Internal(format!("counter {pk}/{sk} holds `{text}`, not a count"))),
                    _ => Err(StoreError::Internal(format!(
                        "UpdateItem returned no counter for {pk}/{sk}"
                    ))),
                }
            }
            Err(error) => match service_error("UpdateItem", error)? {
                UpdateItemError::ConditionalCheckFailedException(failed) => Ok(CounterUpdate::Refused(failed.item)),
                other => Err(self.unexpected("UpdateItem", &other)),
            },
        }
    }

    /// Replaces an expired counter with a fresh one holding `by`, unless another writer
    /// got there first (then `Ok(false)`).
    async fn restart_counter(
        &self,
        pk: &str,
        sk: &str,
        by: u64,
        expires_at: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut item = key(pk, sk);
        item.insert(COUNTER.to_owned(), AttributeValue::N(by.to_string()));
        item.insert(TTL.to_owned(), number(expires_at));
        // Exactly NotExists: absent or expired.
        let expression = Expression::condition(Condition::NotExists, now);
        let put = self
            .client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(item))
            .set_condition_expression(expression.condition)
            .set_expression_attribute_names(non_empty(expression.names))
            .set_expression_attribute_values(non_empty(expression.values))
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(error) => {
                let error = service_error("PutItem", error)?;
                if error.is_conditional_check_failed_exception() {
                    Ok(false)
                } else {
                    Err(self.unexpected("PutItem", &error))
                }
            }
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let now = self.now();
        match self.get_raw(pk, sk).await? {
            Some(attributes) => {
                let item = item_from_attributes(attributes)?;
                Ok((!item.is_expired(now)).then_some(item))
            }
            None => Ok(None),
        }
    }

    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        validate_item(&item)?;
        let expression = Expression::condition(condition, self.now());
        let put = self
            .client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(item_attributes(&item)))
            .set_condition_expression(expression.condition)
            .set_expression_attribute_names(non_empty(expression.names))
            .set_expression_attribute_values(non_empty(expression.values))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("PutItem", error)?;
                if error.is_conditional_check_failed_exception() {
                    Err(StoreError::ConditionFailed)
                } else {
                    Err(self.unexpected("PutItem", &error))
                }
            }
        }
    }

    async fn delete(&self, pk: &str, sk: &str, condition: Condition) -> Result<(), StoreError> {
        let expression = Expression::condition(condition, self.now());
        let deleted = self
            .client
            .delete_item()
            .table_name(self.table.as_ref())
            .set_key(Some(key(pk, sk)))
            .set_condition_expression(expression.condition)
            .set_expression_attribute_names(non_empty(expression.names))
            .set_expression_attribute_values(non_empty(expression.values))
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("DeleteItem", error)?;
                if error.is_conditional_check_failed_exception() {
                    Err(StoreError::ConditionFailed)
                } else {
                    Err(self.unexpected("DeleteItem", &error))
                }
            }
        }
    }

    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        let now = self.now();
        let Some(plan) = QueryPlan::new(&query) else {
            return Ok(Page::default());
        };
        let start_key = plan.after.map(|after| key(&query.pk, &after));
        let limit = i32::try_from(query.limit.max(1)).unwrap_or(i32::MAX);
        let queried = self
            .client
            .query()
            .table_name(self.table.as_ref())
            .key_condition_expression(plan.condition)
            .set_expression_attribute_names(Some(plan.names))
            .set_expression_attribute_values(Some(plan.values))
            .set_exclusive_start_key(start_key)
            .scan_index_forward(!query.descending)
            .limit(limit)
            .consistent_read(true)
            .send()
            .await;
        let output = match queried {
            Ok(output) => output,
            Err(error) => {
                let error = service_error("Query", error)?;
                return Err(self.unexpected("Query", &error));
            }
        };
        let mut page = Page::default();
        for attributes in output.items.unwrap_or_default() {
            let item = item_from_attributes(attributes)?;
            if !item.is_expired(now) {
                page.items.push(item);
            }
        }
        page.last_sk = match output.last_evaluated_key.as_ref().and_then(|key| key.get(SK)) {
            None => None,
            Some(AttributeValue::S(sk)) => Some(sk.clone()),
            Some(other) => {
                return Err(StoreError::Internal(format!(
                    "LastEvaluatedKey has a non-string sk: {other:?}"
                )));
            }
        };
        Ok(page)
    }

    async fn transact(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        validate_transaction(&writes)?;
        let now = self.now();
        let items = writes
            .iter()
            .map(|write| self.transact_item(write, now))
            .collect::<Result<Vec<_>, _>>()?;
        let written = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let error = match written {
            Ok(_) => return Ok(()),
            Err(error) => service_error("TransactWriteItems", error)?,
        };
        match error {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                let reasons = cancelled.cancellation_reasons();
                let code_at = |wanted: &[&str]| {
                    reasons
                        .iter()
                        .position(|reason| reason.code().is_some_and(|code| wanted.contains(&code)))
                };
                if let Some(index) = code_at(&["ConditionalCheckFailed"]) {
                    Err(StoreError::TransactionConflict { index })
                } else if code_at(&["TransactionConflict"]).is_some() {
                    Err(StoreError::Contention)
                } else if code_at(&[
                    "ThrottlingError",
                    "ProvisionedThroughputExceeded",
                    "RequestLimitExceeded",
                ])
                .is_some()
                {
                    Err(StoreError::unavailable(format!(
                        "TransactWriteItems: {}",
                        DisplayErrorContext(&cancelled)
                    )))
                } else if code_at(&["ValidationError", "ItemCollectionSizeLimitExceeded"]).is_some() {
                    Err(StoreError::Rejected(format!(
                        "TransactWriteItems: {}",
                        DisplayErrorContext(&cancelled)
                    )))
                } else {
                    let codes: Vec<&str> = reasons.iter().map(|reason| reason.code().unwrap_or("?")).collect();
                    Err(StoreError::Internal(format!(
                        "TransactWriteItems cancelled with reasons {codes:?}: {}",
                        DisplayErrorContext(&cancelled)
                    )))
                }
            }
            TransactWriteItemsError::TransactionInProgressException(_) => Err(StoreError::Contention),
            other => Err(self.unexpected("TransactWriteItems", &other)),
        }
    }

    /// DynamoDB's ADD is atomic, but it cannot restart an expired counter nor keep the
    /// later of two expiries, so those cases take a conditional second step; every step
    /// is conditional, so concurrent callers each see a distinct value.
    /// A Scan of the whole table that keeps the prefix's items: DynamoDB lists partitions
    /// no other way. It reads (and bills) every item once per walk, which a removal that
    /// happens once per tenant can afford; an index over every item would make each item's
    /// creation and removal pay a second write instead, forever.
    async fn scan(&self, scan: Scan) -> Result<ScanPage, StoreError> {
        let limit = i32::try_from(scan.limit.max(1)).unwrap_or(i32::MAX);
        let (filter, values) = if scan.prefix.is_empty() {
            (None, None)
        } else {
            (
                Some("begins_with(#pk, :prefix)".to_owned()),
                Some(HashMap::from([(
                    ":prefix".to_owned(),
                    AttributeValue::S(scan.prefix.clone()),
                )])),
            )
        };
        let scanned = self
            .client
            .scan()
            .table_name(self.table.as_ref())
            .projection_expression("#pk, #sk")
            .set_filter_expression(filter)
            .set_expression_attribute_names(Some(names(&[("#pk", PK), ("#sk", SK)])))
            .set_expression_attribute_values(values)
            .set_exclusive_start_key(scan.after.as_ref().map(|(pk, sk)| key(pk, sk)))
            .limit(limit)
            .consistent_read(true)
            .send()
            .await;
        let output = match scanned {
            Ok(output) => output,
            Err(error) => {
                let error = service_error("Scan", error)?;
                return Err(self.unexpected("Scan", &error));
            }
        };
        let key_of =
            |mut attributes: HashMap<String, AttributeValue>| match (attributes.remove(PK), attributes.remove(SK)) {
                (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) => Ok((pk, sk)),
                other => Err(StoreError::Internal(format!(
                    "Scan returned a key that is not two strings: {other:?}"
                ))),
            };
        let keys = output
            .items
            .unwrap_or_default()
            .into_iter()
            .map(key_of)
            .collect::<Result<Vec<_>, _>>()?;
        let last = output.last_evaluated_key.map(key_of).transpose()?;
        Ok(ScanPage { keys, last })
    }

    /// BatchWriteItem, 25 deletes a call, sending again what DynamoDB leaves unprocessed.
    async fn delete_many(&self, keys: Vec<(String, String)>) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        let requests: Vec<WriteRequest> = keys
            .into_iter()
            .filter(|key| seen.insert(key.clone()))
            .map(|(pk, sk)| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key(&pk, &sk)))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch_write(requests, "deletes").await
    }

    async fn put_many(&self, items: Vec<Item>) -> Result<(), StoreError> {
        // One request may not name a key twice: the later item of a key wins.
        let mut latest = std::collections::HashMap::with_capacity(items.len());
        for item in items {
            validate_item(&item)?;
            latest.insert((item.pk.clone(), item.sk.clone()), item);
        }
        let requests: Vec<WriteRequest> = latest
            .into_values()
            .map(|item| {
                let put = PutRequest::builder()
                    .set_item(Some(item_attributes(&item)))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, StoreError>>()?;
        self.batch_write(requests, "puts").await
    }

    async fn increment(&self, pk: &str, sk: &str, by: u64, expires_at: i64) -> Result<u64, StoreError> {
        for _ in 0..INCREMENT_ROUNDS {
            let now = self.now();
            let old = match self
                .update_counter(pk, sk, Expression::add_moving_expiry(by, expires_at, now))
                .await?
            {
                CounterUpdate::Counted(value) => return Ok(value),
                CounterUpdate::Refused(Some(old)) => old,
                CounterUpdate::Refused(None) => match self.get_raw(pk, sk).await? {
                    Some(old) => old,
                    // Gone in between: start the round again.
                    None => continue,
                },
            };
            let old_expiry = match old.get(TTL) {
                None => None,
                Some(AttributeValue::N(text)) => Some(
                    text.parse::<i64>()
                        .map_err(|_| StoreError::Internal(format!("counter {pk}/{sk} has a malformed ttl `{text}`")))?,
                ),
                Some(other) => {
                    return Err(StoreError::Internal(format!(
                        "counter {pk}/{sk} has a non-numeric ttl: {other:?}"
                    )));
                }
            };
            match old_expiry {
                Some(expiry) if expiry <= now => {
                    if self.restart_counter(pk, sk, by, expires_at, now).await? {
                        return Ok(by);
                    }
                }
                _ => {
                    // Live, expiring later than asked: add and keep the later expiry.
                    if let CounterUpdate::Counted(value) = self
                        .update_counter(pk, sk, Expression::add_keeping_expiry(by, now))
                        .await?
                    {
                        return Ok(value);
                    }
                }
            }
        }
        Err(StoreError::Contention)
    }

    async fn warm_up(&self) -> Result<(), StoreError> {
        match self
            .client
            .describe_table()
            .table_name(self.table.as_ref())
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("DescribeTable", error)?;
                Err(self.unexpected("DescribeTable", &error))
            }
        }
    }
}

impl DynamoStore {
    fn transact_item(&self, write: &Write, now: i64) -> Result<TransactWriteItem, StoreError> {
        let item = match write {
            Write::Put { item, condition } => {
                let expression = Expression::condition(*condition, now);
                let put = Put::builder()
                    .table_name(self.table.as_ref())
                    .set_item(Some(item_attributes(item)))
                    .set_condition_expression(expression.condition)
                    .set_expression_attribute_names(non_empty(expression.names))
                    .set_expression_attribute_values(non_empty(expression.values))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().put(put)
            }
            Write::Delete { pk, sk, condition } => {
                let expression = Expression::condition(*condition, now);
                let delete = Delete::builder()
                    .table_name(self.table.as_ref())
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(expression.condition)
                    .set_expression_attribute_names(non_empty(expression.names))
                    .set_expression_attribute_values(non_empty(expression.values))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().delete(delete)
            }
            Write::Check { pk, sk, condition } => {
                // A ConditionCheck needs an expression; `Condition::None` always holds.
                let mut expression = Expression::condition(*condition, now);
                if expression.condition.is_none() {
                    expression.condition = Some("attribute_exists(#pk) OR attribute_not_exists(#pk)".to_owned());
                    expression.names = names(&[("#pk", PK)]);
                }
                let check = ConditionCheck::builder()
                    .table_name(self.table.as_ref())
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(expression.condition)
                    .set_expression_attribute_names(non_empty(expression.names))
                    .set_expression_attribute_values(non_empty(expression.values))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().condition_check(check)
            }
            Write::Count {
                pk,
                sk,
                limit,
                expires_at,
                by,
            } => {
                // The version is the count, and the body an empty map, so the counter reads
                // back as an item like any other (a Space's purge walks it).
                let update = Update::builder()
                    .table_name(self.table.as_ref())
                    .set_key(Some(key(pk, sk)))
                    .update_expression("ADD #v :one SET #ttl = :ttl, #body = if_not_exists(#body, :empty)")
                    // More than the limit at once fits no counter, a fresh one included.
                    .condition_expression(if by > limit {
                        "attribute_exists(#v) AND attribute_not_exists(#v)"
                    } else {
                        "attribute_not_exists(#v) OR #v <= :most"
                    })
                    .set_expression_attribute_names(Some(names(&[("#v", VERSION), ("#ttl", TTL), ("#body", BODY)])))
                    .set_expression_attribute_values(Some(HashMap::from([
                        (":one".to_owned(), AttributeValue::N(by.to_string())),
                        (":ttl".to_owned(), number(*expires_at)),
                        (":empty".to_owned(), AttributeValue::M(HashMap::new())),
                        // Past `limit` once `by` is added: refused.
                        (
                            ":most".to_owned(),
                            AttributeValue::N(limit.saturating_sub(*by).to_string()),
                        ),
                    ])))
                    .build()
                    .map_err(build_error)?;
                TransactWriteItem::builder().update(update)
            }
        };
        Ok(item.build())
    }
}

/// What one conditional counter update did.
enum CounterUpdate {
    Counted(u64),
    /// The condition failed; the item as it stood, when DynamoDB returned it.
    Refused(Option<HashMap<String, AttributeValue>>),
}

/// Parts of a DynamoDB request's expressions.
#[derive(Default)]
struct Expression {
    update: Option<String>,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expression {
    /// A write condition in which an expired item counts as absent, as in every backend.
    fn condition(condition: Condition, now: i64) -> Expression {
        const LIVE: &str = "attribute_exists(#pk) AND (attribute_not_exists(#ttl) OR #ttl > :now)";
        let text = match condition {
            Condition::None => return Expression::default(),
            Condition::NotExists => "attribute_not_exists(#pk) OR #ttl <= :now".to_owned(),
            Condition::Exists => LIVE.to_owned(),
            Condition::Version(_) => format!("{LIVE} AND #v = :v"),
        };
        let mut expression = Expression {
            update: None,
            condition: Some(text),
            names: names(&[("#pk", PK), ("#ttl", TTL)]),
            values: HashMap::from([(":now".to_owned(), number(now))]),
        };
        if let Condition::Version(version) = condition {
            expression.names.insert("#v".to_owned(), VERSION.to_owned());
            expression
                .values
                .insert(":v".to_owned(), AttributeValue::N(version.to_string()));
        }
        expression
    }

    /// The common increment: a live counter (or none) whose expiry is not past ours
    /// gains `by` and takes our expiry.
    fn add_moving_expiry(by: u64, expires_at: i64, now: i64) -> Expression {
        Expression {
            update: Some("ADD #n :by SET #ttl = :ttl".to_owned()),
            condition: Some("attribute_not_exists(#pk) OR (#ttl > :now AND #ttl <= :ttl)".to_owned()),
            names: names(&[("#n", COUNTER), ("#ttl", TTL), ("#pk", PK)]),
            values: HashMap::from([
                (":by".to_owned(), AttributeValue::N(by.to_string())),
                (":ttl".to_owned(), number(expires_at)),
                (":now".to_owned(), number(now)),
            ]),
        }
    }

    /// A live counter that expires later than asked gains `by` and keeps its expiry.
    fn add_keeping_expiry(by: u64, now: i64) -> Expression {
        let mut expression = Expression::condition(Condition::Exists, now);
        expression.update = Some("ADD #n :by".to_owned());
        expression.names.insert("#n".to_owned(), COUNTER.to_owned());
        expression
            .values
            .insert(":by".to_owned(), AttributeValue::N(by.to_string()));
        expression
    }
}

/// A Query's key condition and start key. DynamoDB rejects a start key outside the key
/// condition, an inverted BETWEEN and empty key values; the store contract allows all
/// three, so they are settled here (`None`: nothing can match).
struct QueryPlan {
    condition: String,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    after: Option<String>,
}

impl QueryPlan {
    fn new(query: &Query) -> Option<QueryPlan> {
        let mut names = names(&[("#pk", PK)]);
        let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(query.pk.clone()))]);
        let mut sort_condition = |text: &str, bounds: &[(&str, &str)]| {
            names.insert("#sk".to_owned(), SK.to_owned());
            for (name, value) in bounds {
                values.insert((*name).to_owned(), AttributeValue::S((*value).to_owned()));
            }
            format!("#pk = :pk AND {text}")
        };
        let condition = match &query.range {
            SortRange::All => "#pk = :pk".to_owned(),
            SortRange::BeginsWith(prefix) if prefix.is_empty() => "#pk = :pk".to_owned(),
            SortRange::BeginsWith(prefix) => sort_condition("begins_with(#sk, :prefix)", &[(":prefix", prefix)]),
            // Sort keys are never empty in DynamoDB, so `high == ""` matches nothing.
            SortRange::Between(low, high) if high.is_empty() || low > high => return None,
            SortRange::Between(low, high) if low.is_empty() => sort_condition("#sk <= :high", &[(":high", high)]),
            SortRange::Between(low, high) => {
                sort_condition("#sk BETWEEN :low AND :high", &[(":low", low), (":high", high)])
            }
        };

        enum Position {
            Below,
            Inside,
            Above,
        }
        let mut after = query.after.clone();
        if let Some(resume) = &after {
            let position = match &query.range {
                SortRange::All => Position::Inside,
                SortRange::BeginsWith(prefix) if resume.starts_with(prefix.as_str()) => Position::Inside,
                SortRange::BeginsWith(prefix) if resume < prefix => Position::Below,
                // Not a prefix and greater: above every key that starts with the prefix.
                SortRange::BeginsWith(_) => Position::Above,
                SortRange::Between(low, _) if resume < low => Position::Below,
                SortRange::Between(_, high) if resume > high => Position::Above,
                SortRange::Between(..) => Position::Inside,
            };
            match (position, query.descending) {
                // Resuming before where the scan starts: the whole range remains.
                (Position::Below, false) | (Position::Above, true) => after = None,
                // Resuming past where the scan ends: nothing remains.
                (Position::Below, true) | (Position::Above, false) => return None,
                // An empty sort key sorts before every real one.
                (Position::Inside, false) if resume.is_empty() => after = None,
                (Position::Inside, true) if resume.is_empty() => return None,
                (Position::Inside, _) => {}
            }
        }
        Some(QueryPlan {
            condition,
            names,
            values,
            after,
        })
    }
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(name, attribute)| ((*name).to_owned(), (*attribute).to_owned()))
        .collect()
}

/// DynamoDB rejects empty expression maps, so absent ones are not sent.
fn non_empty<V>(map: HashMap<String, V>) -> Option<HashMap<String, V>> {
    (!map.is_empty()).then_some(map)
}

fn number(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk.to_owned())),
        (SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

/// An item as DynamoDB stores it (and as the table's stream shows it).
pub fn item_attributes(item: &Item) -> HashMap<String, AttributeValue> {
    let mut attributes = key(&item.pk, &item.sk);
    attributes.insert(VERSION.to_owned(), AttributeValue::N(item.version.to_string()));
    if let Some(expires_at) = item.expires_at {
        attributes.insert(TTL.to_owned(), number(expires_at));
    }
    attributes.insert(BODY.to_owned(), AttributeValue::M(object_attributes(&item.body)));
    attributes
}

fn object_attributes(object: &Map<String, Value>) -> HashMap<String, AttributeValue> {
    object
        .iter()
        .map(|(name, value)| (name.clone(), json_to_attribute(value)))
        .collect()
}

/// JSON to DynamoDB: object→M, array→L, string→S, number→N, bool→BOOL, null→NULL.
fn json_to_attribute(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(flag) => AttributeValue::Bool(*flag),
        Value::Number(number) => AttributeValue::N(number.to_string()),
        Value::String(text) => AttributeValue::S(text.clone()),
        Value::Array(values) => AttributeValue::L(values.iter().map(json_to_attribute).collect()),
        Value::Object(object) => AttributeValue::M(object_attributes(object)),
    }
}

/// DynamoDB to JSON, the inverse of [`json_to_attribute`]; string and number sets (never
/// written here) become arrays, binary is refused.
fn attribute_to_json(value: AttributeValue) -> Result<Value, StoreError> {
    Ok(match value {
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::Bool(flag) => Value::Bool(flag),
        AttributeValue::N(text) => Value::Number(json_number(&text)?),
        AttributeValue::S(text) => Value::String(text),
        AttributeValue::L(values) => Value::Array(values.into_iter().map(attribute_to_json).collect::<Result<_, _>>()?),
        AttributeValue::M(map) => Value::Object(attributes_to_object(map)?),
        AttributeValue::Ss(texts) => Value::Array(texts.into_iter().map(Value::String).collect()),
        AttributeValue::Ns(numbers) => Value::Array(
            numbers
                .iter()
                .map(|text| json_number(text).map(Value::Number))
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(StoreError::Internal(format!(
                "a stored body holds a value JSON cannot: {other:?}"
            )));
        }
    })
}

fn attributes_to_object(map: HashMap<String, AttributeValue>) -> Result<Map<String, Value>, StoreError> {
    map.into_iter()
        .map(|(name, value)| Ok((name, attribute_to_json(value)?)))
        .collect()
}

/// Keeps integers integers (i64, then u64) and everything else f64.
fn json_number(text: &str) -> Result<Number, StoreError> {
    if let Ok(integer) = text.parse::<i64>() {
        return Ok(Number::from(integer));
    }
    if let Ok(integer) = text.parse::<u64>() {
        return Ok(Number::from(integer));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .ok_or_else(|| StoreError::Internal(format!("stored number `{text}` is not a JSON number")))
}

/// The item DynamoDB's attributes hold: what a read returns, and what the dispatcher makes
/// of a stream record's image.
pub fn item_from_attributes(mut attributes: HashMap<String, AttributeValue>) -> Result<Item, StoreError> {
    let mut string = |name: &str| match attributes.remove(name) {
        Some(AttributeValue::S(text)) => Ok(text),
        other => Err(StoreError::Internal(format!(
            "stored item has no string `{name}`: {other:?}"
        ))),
    };
    let pk = string(PK)?;
    let sk = string(SK)?;
    let corrupt = |what: &str, value: &dyn std::fmt::Debug| {
        StoreError::Internal(format!("stored item {pk}/{sk} has a malformed {what}: {value:?}"))
    };
    let version = match attributes.remove(VERSION) {
        Some(AttributeValue::N(text)) => text.parse::<u64>().map_err(|_| corrupt("version", &text))?,
        other => return Err(corrupt("version", &other)),
    };
    let expires_at = match attributes.remove(TTL) {
        None => None,
        Some(AttributeValue::N(text)) => Some(text.parse::<i64>().map_err(|_| corrupt("ttl", &text))?),
        Some(other) => return Err(corrupt("ttl", &other)),
    };
    let body = match attributes.remove(BODY) {
        None => Map::new(),
        Some(AttributeValue::M(map)) => attributes_to_object(map)?,
        Some(other) => return Err(corrupt("body", &other)),
    };
    Ok(Item {
        pk,
        sk,
        version,
        expires_at,
        body,
    })
}

/// Sorts an SDK failure: transport trouble, throttling and 5xx become
/// [`StoreError::Unavailable`] (the API answers 503); a service error the caller may
/// recognise comes back as `Ok`.
pub(crate) fn service_error<E>(operation: &str, error: SdkError<E, HttpResponse>) -> Result<E, StoreError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::ServiceError(context) => {
            let server_side = context.raw().status().is_server_error();
            let error = context.into_err();
            if server_side || error.code().is_some_and(|code| THROTTLING_CODES.contains(&code)) {
                Err(StoreError::unavailable(format!(
                    "{operation}: {}",
                    DisplayErrorContext(&error)
                )))
            } else {
                Ok(error)
            }
        }
        other => {
            let transient = matches!(
                other,
                SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
            );
            let message = format!("{operation}: {}", DisplayErrorContext(&other));
            if transient {
                Err(StoreError::unavailable(message))
            } else {
                Err(StoreError::Internal(message))
            }
        }
    }
}

/// Maps a service error that has no meaning of its own for the caller.
pub(crate) fn unexpected_service_error<E>(operation: &str, error: &E) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = format!("{operation}: {}", DisplayErrorContext(error));
    match error.code() {
        // Too large, too deeply nested, or a key DynamoDB will not store (e.g. empty).
        Some("ValidationException") => StoreError::Rejected(message),
        _ => StoreError::Internal(message),
    }
}

fn build_error(error: BuildError) -> StoreError {
    StoreError::Internal(format!("cannot build a DynamoDB request: {error}"))
}

#[cfg(test)]
mod tests {
    //! Request-shape rules that DynamoDB enforces but moto does not (unused or undefined
    //! placeholders, empty maps, start keys outside the key condition), and decoding.

    use std::collections::BTreeSet;

    use serde_json::json;

    use super::*;

    /// `#name` or `:value` tokens in an expression.
    fn placeholders(text: &str, sigil: char) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut chars = text.char_indices().peekable();
        while let Some((start, c)) = chars.next() {
            if c != sigil {
                continue;
            }
            let mut end = start + c.len_utf8();
            while let Some(&(index, next)) = chars.peek() {
                if !(next.is_ascii_alphanumeric() || next == '_') {
                    break;
                }
                end = index + next.len_utf8();
                chars.next();
            }
            found.insert(text[start..end].to_owned());
        }
        found
    }

    fn assert_placeholders_match(
        texts: &[&str],
        names: &HashMap<String, String>,
        values: &HashMap<String, AttributeValue>,
    ) {
        let text = texts.join(" ");
        let used_names = placeholders(&text, '#');
        let used_values = placeholders(&text, ':');
        assert_eq!(
            used_names,
            names.keys().cloned().collect(),
            "names defined = names used in `{text}`"
        );
        assert_eq!(
            used_values,
            values.keys().cloned().collect(),
            "values defined = values used in `{text}`"
        );
    }

    fn assert_expression_well_formed(expression: &Expression) {
        let texts: Vec<&str> = [&expression.update, &expression.condition]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        assert_placeholders_match(&texts, &expression.names, &expression.values);
    }

    #[test]
    fn conditions_define_exactly_the_placeholders_they_use() {
        for condition in [
            Condition::None,
            Condition::NotExists,
            Condition::Exists,
            Condition::Version(3),
        ] {
            let expression = Expression::condition(condition, 1_700_000_000);
            assert_expression_well_formed(&expression);
            assert_eq!(expression.condition.is_none(), condition == Condition::None);
        }
        assert_expression_well_formed(&Expression::add_moving_expiry(2, 1_700_000_060, 1_700_000_000));
        assert_expression_well_formed(&Expression::add_keeping_expiry(2, 1_700_000_000));
        assert_eq!(
            non_empty(Expression::condition(Condition::None, 0).names),
            None,
            "no empty maps are sent"
        );
    }

    fn plan(range: SortRange, after: Option<&str>, descending: bool) -> Option<QueryPlan> {
        QueryPlan::new(
            &Query::partition("p")
                .range(range)
                .after(after.map(str::to_owned))
                .descending(descending),
        )
    }

    #[test]
    fn query_plans_define_exactly_the_placeholders_they_use() {
        for range in [
            SortRange::All,
            SortRange::BeginsWith(String::new()),
            SortRange::BeginsWith("a".into()),
            SortRange::Between(String::new(), "b".into()),
            SortRange::Between("a".into(), "b".into()),
        ] {
            let plan = plan(range.clone(), None, false).unwrap_or_else(|| panic!("{range:?} can match"));
            assert_placeholders_match(&[&plan.condition], &plan.names, &plan.values);
        }
    }

    #[test]
    fn query_plans_keep_start_keys_inside_the_key_condition() {
        let between = || SortRange::Between("b".into(), "d".into());
        let begins = || SortRange::BeginsWith("b#".into());
        let after = |range: SortRange, after: &str, descending: bool| {
            plan(range, Some(after), descending).map(|plan| plan.after)
        };
        assert_eq!(after(between(), "c", false), Some(Some("c".into())));
        assert_eq!(
            after(between(), "a", false),
            Some(None),
            "before the range: start at its beginning"
        );
        assert_eq!(after(between(), "e", false), None, "past the range: nothing");
        assert_eq!(after(between(), "e", true), Some(None));
        assert_eq!(after(between(), "a", true), None);
        assert_eq!(after(begins(), "b#1", false), Some(Some("b#1".into())));
        assert_eq!(after(begins(), "a", false), Some(None));
        assert_eq!(
            after(begins(), "b", false),
            Some(None),
            "a proper prefix of the prefix sorts before it"
        );
        assert_eq!(after(begins(), "c", false), None);
        assert_eq!(after(begins(), "c", true), Some(None));
        assert_eq!(
            after(SortRange::All, "", false),
            Some(None),
            "an empty start key is never sent"
        );
        assert_eq!(after(SortRange::All, "", true), None);
        assert!(
            plan(SortRange::Between("d".into(), "b".into()), None, false).is_none(),
            "inverted BETWEEN matches nothing"
        );
        assert!(plan(SortRange::Between("a".into(), String::new()), None, false).is_none());
    }

    #[test]
    fn bodies_round_trip_keeping_integers_integers() {
        let body = json!({
            "i": -3, "u": u64::MAX, "f": 0.5, "s": "", "b": true, "n": null,
            "l": [1, [2.5], {"x": []}], "m": {}
        });
        let attribute = json_to_attribute(&body);
        assert_eq!(attribute_to_json(attribute).ok(), Some(body));
        assert_eq!(json_number("1.50").ok(), Number::from_f64(1.5));
        assert_eq!(json_number("7").ok(), Some(Number::from(7)));
        assert!(json_number("not a number").is_err());
    }

    #[test]
    fn malformed_items_are_errors_not_panics() {
        let base = || {
            let mut attributes = key("p", "s");
            attributes.insert(VERSION.to_owned(), AttributeValue::N("1".into()));
            attributes
        };
        assert!(
            item_from_attributes(base()).is_ok(),
            "a body-less item decodes with an empty body"
        );
        for (name, value) in [
            (VERSION, AttributeValue::S("1".into())),
            (VERSION, AttributeValue::N("-1".into())),
            (TTL, AttributeValue::S("soon".into())),
            (BODY, AttributeValue::L(Vec::new())),
            (
                BODY,
                AttributeValue::M(HashMap::from([("x".to_owned(), AttributeValue::B(vec![1].into()))])),
            ),
            (PK, AttributeValue::N("1".into())),
        ] {
            let mut attributes = base();
            attributes.insert(name.to_owned(), value.clone());
            assert!(
                matches!(item_from_attributes(attributes), Err(StoreError::Internal(_))),
                "{name} = {value:?} is refused"
            );
        }
        let mut attributes = base();
        attributes.remove(VERSION);
        assert!(
            item_from_attributes(attributes).is_err(),
            "an item without a version is refused"
        );
    }
}
