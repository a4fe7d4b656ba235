//! Analytics: a period's summary counted from the events, and exports streamed as RFC 4180
//! CSV (read back with the `csv` crate) or JSON lines, over REST and MCP.

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{TestApp, on_both_backends};

use crate::forms::{lead_form, submit_json};
use crate::inbox::{connect, inject, reply};

on_both_backends!(
    the_summary_counts_the_period_from_the_events,
    the_summary_period_is_checked,
    contacts_export_as_csv_and_json_lines_row_for_row,
    nested_datasets_and_periods_export,
    exports_need_analytics_read_and_the_datasets_domain_and_mcp_gets_the_text,
    summaries_and_exports_are_budgeted_per_space,
);

async fn summary(app: &TestApp, query: &str) -> Value {
    app.space(Method::GET, &format!("/analytics/summary{query}"))
        .send()
        .await
        .expect(200)
        .body
}

async fn export(app: &TestApp, query: &str) -> space_tests::Response {
    app.space(Method::GET, &format!("/analytics/export{query}"))
        .send()
        .await
}

/// The rows of a CSV answer, read back by a CSV reader: header first.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|record| record.expect("RFC 4180").iter().map(str::to_owned).collect())
        .collect()
}

async fn the_summary_counts_the_period_from_the_events(app: TestApp) {
    let before = summary(&app, "").await;
    let base = before["contacts_created"].as_u64().unwrap_or(0);
    for name in ["Ada", "Grace"] {
        app.space(Method::POST, "/contacts")
            .json(json!({"name": name}))
            .send()
            .await
            .expect(201);
    }
    let form = lead_form(&app).await;
    submit_json(&app, &form, json!({"email": "lead@example.com", "consent": true}))
        .await
        .expect(201);
    let (whatsapp, _) = connect(&app, "whatsapp", "+12015550100").await;
    let first = inject(&app, &whatsapp, "+12015550123", "Hi, open today?").await;
    inject(&app, &whatsapp, "+12015550123", "Hello?").await;
    let thread = first["thread"]["id"].as_str().expect("a thread").to_owned();
    app.clock.advance(chrono::TimeDelta::seconds(90));
    reply(&app, &thread, "Yes, until six").await.expect(201);
    reply(&app, &thread, "See you").await.expect(201);

    let now = summary(&app, "").await;
    // Two contacts, the form's contact and the messages' contact.
    assert_eq!(now["contacts_created"].as_u64(), Some(base + 4), "{now}");
    assert_eq!(now["form_submissions"], 1);
    assert_eq!(
        (now["messages_in"].as_u64(), now["messages_out"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(now["first_responses"], 1, "one wait, answered once");
    assert_eq!(now["median_first_response_seconds"], 90.0);
    assert_eq!(
        (now["posts_published"].as_u64(), now["appointments_booked"].as_u64()),
        (Some(0), Some(0))
    );
    // A period before any of it counts none of it.
    let start = app.engine.now() - chrono::TimeDelta::days(3);
    let end = start + chrono::TimeDelta::days(1);
    let fmt = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let earlier = summary(&app, &format!("?from={}&to={}", fmt(start), fmt(end))).await;
    assert_eq!(earlier["contacts_created"], 0, "{earlier}");
    assert_eq!(earlier["median_first_response_seconds"], Value::Null);
}

async fn the_summary_period_is_checked(app: TestApp) {
    let now = app.engine.now();
    let fmt = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (query, field) in [
        (format!("?from={}", fmt(now - chrono::TimeDelta::days(31))), "from"),
        (
            format!("?from={}&to={}", fmt(now), fmt(now - chrono::TimeDelta::hours(1))),
            "to",
        ),
        ("?from=yesterday".to_owned(), "from"),
        (format!("?from={}", fmt(now + chrono::TimeDelta::hours(1))), "from"),
    ] {
        let refused = app
            .space(Method::GET, &format!("/analytics/summary{query}"))
            .send()
            .await
            .expect(422);
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{query}: {}",
            refused.text
        );
    }
    let default = summary(&app, "").await;
    let (from, to) = (
        default["from"].as_str().unwrap_or_default(),
        default["to"].as_str().unwrap_or_default(),
    );
    let days = chrono::DateTime::parse_from_rfc3339(to).expect("to")
        - chrono::DateTime::parse_from_rfc3339(from).expect("from");
    assert_eq!(days.num_days(), 7, "the last seven days by default");
}

async fn contacts_export_as_csv_and_json_lines_row_for_row(app: TestApp) {
    let tricky = "Müller, \"Ada\"; the first";
    app.space(Method::POST, "/contacts")
        .json(json!({"name": tricky, "email": "ada@example.com", "tags": ["vip", "lead"]}))
        .send()
        .await
        .expect(201);
    app.space(Method::POST, "/contacts")
        .json(json!({"name": "Grace", "phone": "+12015550123"}))
        .send()
        .await
        .expect(201);
    let listed = app.space(Method::GET, "/contacts?limit=200").send().await.expect(200);
    let contacts = listed.body["data"].as_array().cloned().unwrap_or_default();

    let csv = export(&app, "?dataset=contacts&format=csv").await.expect(200);
    assert!(csv.header("content-type").unwrap_or_default().starts_with("text/csv"));
    assert!(
        csv.header("content-disposition")
            .unwrap_or_default()
            .contains("contacts-")
    );
    let rows = csv_rows(&csv.text);
    assert_eq!(
        rows[0],
        [
            "id",
            "name",
            "email",
            "phone",
            "company",
            "job_title",
            "tags",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(rows.len(), contacts.len() + 1, "a row per contact");
    let ada = rows.iter().find(|row| row[2] == "ada@example.com").expect("Ada's row");
    assert_eq!(ada[1], tricky, "quotes and commas survive");
    assert_eq!(ada[6], "[\"vip\",\"lead\"]");
    assert!(rows.iter().any(|row| row[3] == "+12015550123" && row[2].is_empty()));

    let lines = export(&app, "?dataset=contacts&format=json").await.expect(200);
    assert_eq!(lines.header("content-type"), Some("application/x-ndjson"));
    let parsed: Vec<Value> = lines
        .text
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(parsed.len(), contacts.len());
    let mut ids: Vec<&str> = parsed.iter().filter_map(|c| c["id"].as_str()).collect();
    let mut listed_ids: Vec<&str> = contacts.iter().filter_map(|c| c["id"].as_str()).collect();
    ids.sort_unstable();
    listed_ids.sort_unstable();
    assert_eq!(ids, listed_ids, "the same contacts as the list");
    assert!(
        parsed.iter().all(|c| c["version"].is_u64()),
        "rows as the API shows them"
    );

    for (query, field) in [
        ("?dataset=payments", "dataset"),
        ("", "dataset"),
        ("?dataset=contacts&format=xlsx", "format"),
        (
            "?dataset=contacts&from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            "to",
        ),
    ] {
        let refused = export(&app, query).await.expect(422);
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{query}: {}",
            refused.text
        );
    }
}

async fn nested_datasets_and_periods_export(app: TestApp) {
    let form = lead_form(&app).await;
    for email in ["a@example.com", "b@example.com"] {
        submit_json(&app, &form, json!({"email": email, "consent": true}))
            .await
            .expect(201);
    }
    let (sms, _) = connect(&app, "sms", "+12015550100").await;
    let first = inject(&app, &sms, "+12015550123", "Hi").await;
    inject(&app, &sms, "+12015550124", "Hello").await;
    let thread = first["thread"]["id"].as_str().expect("a thread").to_owned();
    reply(&app, &thread, "Hi there").await.expect(201);

    let submissions = csv_rows(&export(&app, "?dataset=submissions").await.expect(200).text);
    assert_eq!(submissions.len(), 3, "header and two submissions");
    assert!(submissions.iter().skip(1).all(|row| row[1] == form));
    let messages = csv_rows(&export(&app, "?dataset=messages").await.expect(200).text);
    assert_eq!(messages.len(), 4, "three messages in two threads");
    let directions: Vec<&str> = messages.iter().skip(1).map(|row| row[4].as_str()).collect();
    assert_eq!(
        directions.iter().filter(|d| **d == "inbound").count(),
        2,
        "{directions:?}"
    );
    assert_eq!(directions.iter().filter(|d| **d == "outbound").count(), 1);
    let posts = csv_rows(&export(&app, "?dataset=posts").await.expect(200).text);
    assert_eq!(posts.len(), 1, "a header alone when there is nothing");

    // A period holds only the rows created in it.
    let now = app.engine.now();
    let fmt = |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let later = format!("?dataset=submissions&from={}", fmt(now + chrono::TimeDelta::seconds(1)));
    assert_eq!(csv_rows(&export(&app, &later).await.expect(200).text).len(), 1);
    let around = format!(
        "?dataset=submissions&format=json&from={}&to={}",
        fmt(now - chrono::TimeDelta::hours(1)),
        fmt(now + chrono::TimeDelta::hours(1))
    );
    assert_eq!(export(&app, &around).await.expect(200).text.lines().count(), 2);
}

async fn exports_need_analytics_read_and_the_datasets_domain_and_mcp_gets_the_text(app: TestApp) {
    app.space(Method::POST, "/contacts")
        .json(json!({"name": "Ada", "email": "ada@example.com"}))
        .send()
        .await
        .expect(201);
    let contacts_only = app.mint(&["contacts:read"], None).await;
    let refused = app
        .request(Method::GET, "/functions/v1/space-api/analytics/export?dataset=contacts")
        .key(&contacts_only)
        .send()
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // A dataset is its domain's data: analytics:read alone exports none of it.
    let analytics_only = app.mint(&["analytics:read"], None).await;
    for dataset in analytics::export::DATASETS {
        let refused = app
            .request(
                Method::GET,
                &format!("/functions/v1/space-api/analytics/export?dataset={dataset}"),
            )
            .key(&analytics_only)
            .send()
            .await
            .expect(403);
        assert!(refused.text.contains(":read"), "{dataset}: {}", refused.text);
    }
    let key = app.mint(&["analytics:read", "contacts:read"], None).await;
    let called = app
        .mcp(
            &key,
            "",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "read_analytics",
                   "arguments": {"operation": "analytics_export", "arguments": {"dataset": "contacts"}}}}),
        )
        .send()
        .await
        .expect(200);
    let result = &called.body["result"];
    assert_ne!(result["isError"], json!(true), "{result}");
    let text = result["content"][0]["text"].as_str().unwrap_or_default();
    let rows = csv_rows(text);
    assert_eq!(rows[0][0], "id");
    assert!(rows.iter().any(|row| row[2] == "ada@example.com"), "{text}");
}

async fn summaries_and_exports_are_budgeted_per_space(app: TestApp) {
    let per_minute = analytics::READS_PER_MINUTE;
    for _ in 0..per_minute {
        summary(&app, "").await;
    }
    // Every key of the Space shares the budget; an export has one of its own.
    let other_key = app.mint(&["analytics:read"], None).await;
    let refused = app
        .request(Method::GET, &format!("{}/analytics/summary", space_tests::SPACE_API))
        .key(&other_key)
        .send()
        .await
        .expect(429);
    assert_eq!(refused.error_code(), "RATE_LIMITED");
    assert!(refused.text.contains("per Space"), "{}", refused.text);
    assert!(refused.header("retry-after").is_some());
    export(&app, "?dataset=contacts&format=csv").await.expect(200);
    // Another Space is not held back.
    let (_, elsewhere) = app.other_space().await;
    app.request(Method::GET, &format!("{}/analytics/summary", space_tests::SPACE_API))
        .key(&elsewhere)
        .send()
        .await
        .expect(200);
    app.clock.advance(chrono::TimeDelta::seconds(60));
    summary(&app, "").await;
}
