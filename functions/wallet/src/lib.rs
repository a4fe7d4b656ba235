//! The Space's wallet, read only: its balance and its transactions, as the owner records
//! them through the account API (`PUT …/spaces/{space}/wallet`,
//! `…/spaces/{space}/wallet/transactions`). Keys with `wallet:read` read them at `/wallet`
//! and `/wallet/transactions`. No operation of any family moves money: there is no write
//! here a key can reach, and every other method on these paths is 405.

use axum::Router;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::events::update_event_write;
use space_http::fields::{CURRENCY, Field, FieldKind, WriteMode, body_schema, format_datetime, validate};
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Reply, handler};
use space_http::owned::{for_the_owner, owner_kept, owners_copy};
use space_http::resource::{Filter, Resource};
use space_http::{ApiError, Engine, Operation, Schema};
use space_store::{Condition, Item, StoreError, Write};

/// The largest amount in minor units: ten billion in a two-decimal currency.
const MAX_AMOUNT: i64 = 1_000_000_000_000;

pub const KINDS: &[&str] = &["top_up", "charge", "refund", "payout", "adjustment"];

/// Where the balance lives in the Space.
const COLLECTION: &str = "wallet";
const BALANCE: &str = "balance";

fn balance_fields() -> Vec<Field> {
    vec![
        Field::new(
            "balance",
            FieldKind::Integer {
                min: -MAX_AMOUNT,
                max: MAX_AMOUNT,
            },
            "The balance in minor units (cents); negative when the Space owes.",
        )
        .required(),
        Field::new("currency", CURRENCY, "The wallet's currency.").required(),
    ]
}

fn wallet_schema() -> Value {
    json!({
        "type": "object",
        "required": ["balance", "currency", "updated_at"],
        "properties": {
            "balance": {"type": "integer", "description": "In minor units (cents); 0 until the owner records one."},
            "currency": {"type": ["string", "null"], "description": "ISO 4217; null until the owner records a balance."},
            "updated_at": {"type": ["string", "null"], "format": "date-time"}
        }
    })
}

/// The wallet as the API shows it; an untouched wallet holds nothing.
fn render(item: Option<&Item>) -> Value {
    let field = |name: &str| {
        item.and_then(|item| item.body.get(name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "balance": item.and_then(|item| item.body.get("balance")).cloned().unwrap_or(json!(0)),
        "currency": field("currency"),
        "updated_at": field("updated_at"),
    })
}

async fn get(call: Call) -> Result<Reply, ApiError> {
    let space = call.space_id()?;
    let wallet = call
        .engine
        .store()
        .get(&keys::collection_partition(space, COLLECTION), BALANCE)
        .await?;
    Ok(Reply::ok(render(wallet.as_ref())))
}

/// The owner records the balance; the change is an event like any other.
async fn set(call: Call) -> Result<Reply, ApiError> {
    let validated = validate(&balance_fields(), &call.body, WriteMode::Replace).map_err(ApiError::validation)?;
    let space = call.space_id()?.to_owned();
    let partition = keys::collection_partition(&space, COLLECTION);
    let now = call.engine.now();
    for _ in 0..3 {
        let current = call.engine.store().get(&partition, BALANCE).await?;
        let mut next = current
            .clone()
            .unwrap_or_else(|| Item::new(partition.clone(), BALANCE, Default::default()));
        next.body.extend(validated.set.clone());
        next.body.insert("updated_at".into(), json!(format_datetime(now)));
        let condition = match &current {
            Some(current) => {
                next.version = current.version + 1;
                Condition::Version(current.version)
            }
            None => Condition::NotExists,
        };
        let writes = vec![
            Write::put(next.clone(), condition),
            update_event_write(
                &space,
                "wallet.updated",
                BALANCE,
                &render(current.as_ref()),
                render(Some(&next)),
                &call.principal,
                now,
            ),
        ];
        match call.engine.store().transact(writes).await {
            Ok(()) => return Ok(Reply::ok(render(Some(&next)))),
            Err(StoreError::TransactionConflict { index: 0 } | StoreError::Contention) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    Err(StoreError::Contention.into())
}

/// One movement of the wallet, as the owner records it.
pub fn transactions() -> Resource {
    Resource {
        domain: Domain::Wallet,
        name: "wallet_transactions",
        collection: "wallet_transactions",
        path: "/wallet/transactions",
        item_param: "id",
        singular: "transaction",
        plural: "transactions",
        event_prefix: "wallet_transaction",
        id_prefix: "wtx",
        parent: None,
        fields: vec![
            Field::new(
                "amount",
                FieldKind::Integer {
                    min: -MAX_AMOUNT,
                    max: MAX_AMOUNT,
                },
                "In minor units (cents): positive into the wallet, negative out of it.",
            )
            .required(),
            Field::new("currency", CURRENCY, "The amount's currency.").required(),
            Field::new("kind", FieldKind::Enum(KINDS), "What moved the money.").required(),
            Field::new("description", FieldKind::Text { max: 500 }, "What it was for."),
            Field::new("occurred_at", FieldKind::DateTime, "When it happened (RFC 3339).").required(),
            Field::new(
                "reference",
                FieldKind::Text { max: 100 },
                "The id the payment system knows it by.",
            ),
        ],
        filters: vec![
            Filter::Equals {
                param: "kind",
                field: "kind",
                kind: FieldKind::Enum(KINDS),
            },
            Filter::After {
                param: "occurred_after",
                field: "occurred_at",
            },
            Filter::Before {
                param: "occurred_before",
                field: "occurred_at",
            },
        ],
        rules: None,
    }
}

pub fn operations() -> Vec<Operation> {
    let read = Access::Space(Scope::new(Domain::Wallet, Action::Read));
    let balance = Operation::new(
        "wallet_get",
        Method::GET,
        "/wallet",
        read,
        Effect::Read,
        "Get the wallet's balance (minor units) and currency",
        handler(get),
    )
    .answers(StatusCode::OK, Schema::lazy(wallet_schema).named("Wallet"));
    let mut operations = vec![
        owners_copy(&balance),
        balance,
        for_the_owner(
            Operation::new(
                "wallet_set",
                Method::PUT,
                "/wallet",
                Access::Account,
                Effect::Replace,
                "Record the wallet's balance and currency (the owner's record; nothing is charged or paid)",
                handler(set),
            )
            .with_body(Schema::lazy(|| body_schema(&balance_fields(), WriteMode::Replace)).named("WalletUpdate"))
            .answers(StatusCode::OK, Schema::lazy(wallet_schema).named("Wallet")),
        ),
    ];
    operations.extend(owner_kept(transactions()));
    operations
}

/// What this family's Lambda binary carries beyond the table (IAM follows from it).
pub const BACKENDS: space_http::lambda::Backends = space_http::lambda::Backends::TABLE;

pub fn router() -> Router<Engine> {
    space_http::rest::routes(operations())
}
