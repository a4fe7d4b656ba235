//! Wallet, invoices and integrations: what the owner records through the account API and
//! keys may only read. Every other method on their space-API paths is 405, and no operation
//! any key can reach moves money.

use reqwest::Method;
use serde_json::{Value, json};
use space_http::operation::{Access, Effect};
use space_tests::{ACCOUNT_API, SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    the_owner_records_the_wallet_and_keys_read_it,
    invoices_are_recorded_by_the_owner_and_found_by_number,
    integrations_are_listed_by_status,
    every_other_method_is_405_and_strangers_find_nothing,
);

fn owner_path(app: &TestApp, path: &str) -> String {
    format!("/spaces/{}{path}", app.demo.space_id)
}

async fn record(app: &TestApp, path: &str, body: Value) -> Value {
    app.account(Method::POST, &owner_path(app, path))
        .json(body)
        .send()
        .await
        .expect(201)
        .body
}

async fn read(app: &TestApp, key: &str, path: &str, status: u16) -> Value {
    app.request(Method::GET, &format!("{SPACE_API}{path}"))
        .key(key)
        .send()
        .await
        .expect(status)
        .body
}

#[test]
fn no_operation_a_key_reaches_moves_money() {
    for operation in space_catalogue::operations() {
        let money = ["/wallet", "/finance", "/integrations"]
            .iter()
            .any(|prefix| operation.path.starts_with(prefix));
        if money && matches!(operation.access, Access::Space(_)) {
            assert_eq!(operation.effect, Effect::Read, "{} reads only", operation.name);
        }
    }
}

async fn the_owner_records_the_wallet_and_keys_read_it(app: TestApp) {
    let reader = app.mint(&["wallet:read"], None).await;
    let untouched = read(&app, &reader, "/wallet", 200).await;
    assert_eq!(untouched, json!({"balance": 0, "currency": null, "updated_at": null}));

    let set = app
        .account(Method::PUT, &owner_path(&app, "/wallet"))
        .json(json!({"balance": 125_050, "currency": "EUR"}))
        .send()
        .await
        .expect(200);
    assert_eq!(set.body["balance"], 125_050);
    let bad = app
        .account(Method::PUT, &owner_path(&app, "/wallet"))
        .json(json!({"balance": 1.5, "currency": "eur"}))
        .send()
        .await
        .expect(422);
    assert!(bad.body["error"]["fields"]["balance"].is_array(), "{}", bad.body);
    assert!(bad.body["error"]["fields"]["currency"].is_array(), "{}", bad.body);
    let wallet = read(&app, &reader, "/wallet", 200).await;
    assert_eq!(wallet["balance"], 125_050);
    assert_eq!(wallet["currency"], "EUR");

    let top_up = record(
        &app,
        "/wallet/transactions",
        json!({"amount": 50_000, "currency": "EUR", "kind": "top_up", "occurred_at": "2026-11-01T10:00:00Z"}),
    )
    .await;
    record(
        &app,
        "/wallet/transactions",
        json!({"amount": -1_999, "currency": "EUR", "kind": "charge", "description": "SMS", "occurred_at": "2026-11-20T10:00:00Z"}),
    )
    .await;
    let listed = read(&app, &reader, "/wallet/transactions", 200).await;
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2));
    let charges = read(&app, &reader, "/wallet/transactions?kind=charge", 200).await;
    assert_eq!(charges["data"][0]["amount"], -1_999);
    let early = read(
        &app,
        &reader,
        "/wallet/transactions?occurred_before=2026-11-10T00:00:00Z",
        200,
    )
    .await;
    assert_eq!(early["data"][0]["id"], top_up["id"]);
    assert_eq!(early["data"].as_array().map(Vec::len), Some(1));
    // The owner reads what they recorded without a key: the same answers.
    for path in ["/wallet", "/wallet/transactions?kind=charge"] {
        let owners = app
            .account(Method::GET, &owner_path(&app, path))
            .send()
            .await
            .expect(200);
        assert_eq!(owners.body, read(&app, &reader, path, 200).await, "{path}");
    }
    let types = app.event_types().await;
    assert!(types.iter().any(|t| t == "wallet.updated"), "{types:?}");
    // wallet:read reaches nothing else.
    read(&app, &reader, "/finance/invoices", 403).await;
}

async fn invoices_are_recorded_by_the_owner_and_found_by_number(app: TestApp) {
    let invoice = record(
        &app,
        "/finance/invoices",
        json!({
            "number": "2026-0042", "currency": "EUR", "total": 23_800, "customer_name": "Acme GmbH",
            "due_at": "2026-12-31T00:00:00Z",
            "lines": [{"description": "Consulting", "quantity": 2, "unit_amount": 11_900}]
        }),
    )
    .await;
    assert_eq!(invoice["status"], "open");
    assert_eq!(invoice["amount_paid"], 0);
    let again = app
        .account(Method::POST, &owner_path(&app, "/finance/invoices"))
        .json(json!({"number": "2026-0042", "currency": "EUR", "total": 1}))
        .send()
        .await
        .expect(409);
    assert_eq!(again.body["error"]["existing_id"], invoice["id"]);
    for lines in [
        json!([{"description": "x", "quantity": 0, "unit_amount": 1}]),
        json!([{"description": "", "quantity": 1, "unit_amount": 1}]),
        json!([{"description": "x", "quantity": 1, "unit_amount": 1, "tax": 19}]),
        json!("two hours"),
    ] {
        let refused = app
            .account(Method::POST, &owner_path(&app, "/finance/invoices"))
            .json(json!({"number": "2026-0043", "currency": "EUR", "total": 1, "lines": lines}))
            .send()
            .await
            .expect(422);
        assert!(refused.body["error"]["fields"]["lines"].is_array(), "{}", refused.body);
    }

    let reader = app.mint(&["finance:read"], None).await;
    let found = read(&app, &reader, "/finance/invoices?number=2026-0042", 200).await;
    assert_eq!(found["data"][0]["id"], invoice["id"]);
    let id = invoice["id"].as_str().expect("an id");
    app.account(Method::PATCH, &owner_path(&app, &format!("/finance/invoices/{id}")))
        .json(json!({"status": "paid", "amount_paid": 23_800, "paid_at": "2026-12-02T09:00:00Z"}))
        .send()
        .await
        .expect(200);
    let paid = read(&app, &reader, "/finance/invoices?status=paid", 200).await;
    assert_eq!(paid["data"][0]["amount_paid"], 23_800);
    let got = read(&app, &reader, &format!("/finance/invoices/{id}"), 200).await;
    assert_eq!(got["lines"][0]["unit_amount"], 11_900);
}

async fn integrations_are_listed_by_status(app: TestApp) {
    record(&app, "/integrations", json!({"name": "Payments", "provider": "stripe"})).await;
    let broken = record(
        &app,
        "/integrations",
        json!({"name": "Books", "provider": "quickbooks", "status": "error"}),
    )
    .await;
    let reader = app.mint(&["integrations:read"], None).await;
    let all = read(&app, &reader, "/integrations", 200).await;
    assert_eq!(all["data"].as_array().map(Vec::len), Some(2));
    let failing = read(&app, &reader, "/integrations?status=error", 200).await;
    assert_eq!(failing["data"][0]["id"], broken["id"]);
    assert_eq!(failing["data"].as_array().map(Vec::len), Some(1));
}

async fn every_other_method_is_405_and_strangers_find_nothing(app: TestApp) {
    let invoice = record(
        &app,
        "/finance/invoices",
        json!({"number": "1", "currency": "USD", "total": 100}),
    )
    .await;
    let integration = record(&app, "/integrations", json!({"name": "Shop", "provider": "shopify"})).await;
    let transaction = record(
        &app,
        "/wallet/transactions",
        json!({"amount": 1, "currency": "USD", "kind": "adjustment", "occurred_at": "2026-11-01T00:00:00Z"}),
    )
    .await;
    let id = |value: &Value| value["id"].as_str().expect("an id").to_owned();
    let paths = [
        "/wallet".to_owned(),
        "/wallet/transactions".to_owned(),
        format!("/wallet/transactions/{}", id(&transaction)),
        "/finance/invoices".to_owned(),
        format!("/finance/invoices/{}", id(&invoice)),
        "/integrations".to_owned(),
        format!("/integrations/{}", id(&integration)),
    ];
    for path in &paths {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            let refused = app
                .request(method.clone(), &format!("{SPACE_API}{path}"))
                .key(app.key())
                .json(json!({"amount": 1}))
                .send()
                .await
                .expect(405);
            assert_eq!(refused.error_code(), "METHOD_NOT_ALLOWED", "{method} {path}");
        }
    }
    let stranger = spacectl::bootstrap::create_demo(&app.engine, "Stranger", None)
        .await
        .expect("a second account");
    let refused = app
        .request(Method::PUT, &format!("{ACCOUNT_API}{}", owner_path(&app, "/wallet")))
        .key(&stranger.account_key)
        .json(json!({"balance": 1, "currency": "USD"}))
        .send()
        .await
        .expect(404);
    assert_eq!(refused.error_code(), "NOT_FOUND");
    for path in ["/wallet".to_owned(), format!("/finance/invoices/{}", id(&invoice))] {
        let refused = app
            .request(Method::GET, &format!("{ACCOUNT_API}{}", owner_path(&app, &path)))
            .key(&stranger.account_key)
            .send()
            .await
            .expect(404);
        assert_eq!(refused.error_code(), "NOT_FOUND", "{path}");
    }
    let refused = app
        .request(
            Method::DELETE,
            &format!(
                "{ACCOUNT_API}{}",
                owner_path(&app, &format!("/finance/invoices/{}", id(&invoice)))
            ),
        )
        .key(&stranger.account_key)
        .send()
        .await
        .expect(404);
    assert_eq!(refused.error_code(), "NOT_FOUND");
    let theirs = app
        .request(Method::GET, &format!("{SPACE_API}/finance/invoices/{}", id(&invoice)))
        .key(&stranger.space_key)
        .send()
        .await
        .expect(404);
    assert_eq!(theirs.error_code(), "NOT_FOUND");
}
