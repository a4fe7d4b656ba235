//! Arbitrary bodies against every operation the catalogue declares with a JSON body,
//! through the in-process app with a full-scope key: the answer is always 2xx or 4xx,
//! every 4xx is the JSON error envelope, and nothing panics. Two kinds of input per
//! operation: any JSON value at all (wrong types, huge numbers, deep nesting, odd
//! unicode, nulls), and mutations of a valid example body, which get past the first
//! checks and reach the handler's own rules.
//!
//! `PROPTEST_CASES` sets the cases per operation and kind of input (default 32, so
//! 64 requests per operation).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use chrono::TimeDelta;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use reqwest::Method;
use serde_json::{Map, Value, json};
use space_http::Operation;
use space_http::operation::Access;
use space_store::embedded::EmbeddedStore;
use space_tests::{Backend, TestApp, on_both_backends};

use crate::seed::Seeder;
use tower::ServiceExt as _;

on_both_backends!(deeply_nested_bodies_are_refused_or_read_back);

const DEFAULT_CASES: u32 = 32;
/// serde_json refuses input nested deeper than this; deeper bodies must be a 400.
const PARSER_DEPTH_LIMIT: usize = 128;

#[test]
fn arbitrary_bodies_answer_2xx_or_4xx_on_every_operation() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let app = runtime.block_on(async {
        let clock = Arc::new(space_store::ManualClock::new(chrono::Utc::now()));
        let store = Arc::new(EmbeddedStore::in_memory().with_clock(clock.clone()));
        TestApp::serve(
            store,
            clock,
            tempfile::tempdir().expect("a temp dir"),
            Backend::Embedded,
        )
        .await
    });
    let router = spacectl::app(app.engine.clone());
    let operations: Vec<Operation> = space_catalogue::operations()
        .into_iter()
        .filter(|o| o.body.is_some() && !o.raw_body)
        .collect();
    assert!(!operations.is_empty(), "the catalogue has operations with bodies");
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_CASES);

    let every = space_catalogue::operations();
    // Where each operation is sent, and its examples (full, then required fields only).
    let seeded = runtime.block_on(async {
        let mut seeder = Seeder {
            app: &app,
            operations: &every,
            known: HashMap::new(),
        };
        let mut seeded = Vec::new();
        for operation in &operations {
            let schema = operation.body.as_deref().cloned().unwrap_or(Value::Null);
            let path = seeder.path(operation).await;
            let full = seeder.body(&schema, true).await;
            let minimal = seeder.body(&schema, false).await;
            seeded.push((path, full, minimal));
        }
        seeded
    });

    let started = std::time::Instant::now();
    let sent = Cell::new(0usize);
    let statuses: RefCell<HashMap<u16, usize>> = RefCell::new(HashMap::new());
    for (operation, (path, full, minimal)) in operations.iter().zip(seeded) {
        let schema = operation.body.as_deref().cloned().unwrap_or(Value::Null);
        let fields = field_names(&schema);
        let target = Target {
            router: &router,
            operation,
            url: format!("{}{path}", operation.access.base_path()),
            key: match operation.access {
                Access::Space(_) => Some(app.key().to_owned()),
                Access::Account => Some(app.account_key().to_owned()),
                Access::Public { .. } => None,
            },
        };
        // Each operation starts a fresh rate window for the keys and visitors.
        app.clock.advance(TimeDelta::seconds(61));
        // The fullest example that the operation accepts is the base for mutations.
        let mut example = full;
        let mut example_status = runtime.block_on(target.send(&example, 0)).map(|(status, _)| status);
        if !matches!(example_status, Ok(200..=299)) {
            example = minimal;
            example_status = runtime.block_on(target.send(&example, 0)).map(|(status, _)| status);
        }
        if std::env::var_os("PROPS_DEBUG").is_some() {
            eprintln!("{} {} {:?} {}", operation.method, target.url, example_status, example);
        }
        for (kind, strategy) in [
            ("arbitrary JSON", json_value(fields.clone()).boxed()),
            ("mutated example", mutation(example.clone(), fields.clone()).boxed()),
        ] {
            app.clock.advance(TimeDelta::seconds(61));
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                ..Config::default()
            });
            let visitor = Cell::new(0u32);
            let outcome = runner.run(&strategy, |body| {
                visitor.set(visitor.get() + 1);
                let (status, _) = runtime.block_on(target.send(&body, visitor.get()))?;
                sent.set(sent.get() + 1);
                *statuses.borrow_mut().entry(status).or_default() += 1;
                Ok(())
            });
            if let Err(error) = outcome {
                let message = match error {
                    TestError::Fail(reason, body) => format!(
                        "{reason}\nminimal body: {}",
                        truncate(&serde_json::to_string(&body).unwrap_or_default(), 2000)
                    ),
                    TestError::Abort(reason) => reason.to_string(),
                };
                panic!(
                    "{} {} ({}), {kind}: {message}\n(the valid example answered {example_status:?})",
                    operation.method, target.url, operation.name
                );
            }
        }
    }
    let sent = sent.get();
    let mut statuses: Vec<_> = statuses.into_inner().into_iter().collect();
    statuses.sort();
    println!(
        "properties: {} operations with bodies, {sent} requests in {:.1}s, statuses {statuses:?}",
        operations.len(),
        started.elapsed().as_secs_f64()
    );
}

/// One operation at a seeded path.
struct Target<'a> {
    router: &'a Router,
    operation: &'a Operation,
    url: String,
    key: Option<String>,
}

impl Target<'_> {
    /// Sends `body` and checks the answer; returns its status and body.
    async fn send(&self, body: &Value, visitor: u32) -> Result<(u16, Value), TestCaseError> {
        let bytes = serde_json::to_vec(body).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut request = axum::http::Request::builder()
            .method(self.operation.method.clone())
            .uri(&self.url)
            .header("content-type", "application/json")
            // Public routes count per client address: a fresh one per case.
            .header(
                "x-forwarded-for",
                format!("10.9.{}.{}", visitor / 250, visitor % 250 + 1),
            );
        if let Some(key) = &self.key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = request
            .body(Body::from(bytes))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .map_err(|never| match never {})?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let retry_after = response.headers().contains_key("retry-after");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .map_err(|e| TestCaseError::fail(format!("unreadable body: {e}")))?;
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(
            (200..300).contains(&status) || (400..500).contains(&status),
            "answered {status}: {}",
            truncate(&text, 2000)
        );
        if depth(body) > PARSER_DEPTH_LIMIT {
            // Refused before any handler sees it (or by the rate limit, which comes first).
            prop_assert!(
                status == 400 || status == 429,
                "a body nested past the parser's limit answered {status}"
            );
        }
        let answer: Value = if bytes.is_empty() {
            Value::Null
        } else if content_type.starts_with("application/json") {
            serde_json::from_slice(&bytes).map_err(|e| TestCaseError::fail(format!("{status} is not JSON: {e}")))?
        } else {
            Value::Null
        };
        if status >= 400 {
            prop_assert!(
                content_type.starts_with("application/json"),
                "{status} with content type {content_type:?}"
            );
            let error = &answer["error"];
            prop_assert!(
                error["code"].as_str().is_some_and(|c| !c.is_empty()),
                "{status} without an error code: {}",
                truncate(&text, 500)
            );
            prop_assert!(error["message"].is_string(), "{status} without a message");
            prop_assert!(
                error["request_id"].as_str().is_some_and(|id| id.starts_with("req_")),
                "{status} without a request id"
            );
            if status == 429 {
                prop_assert!(retry_after, "429 without Retry-After");
            }
            if status == 422 {
                prop_assert!(
                    error["fields"].is_object(),
                    "422 without fields: {}",
                    truncate(&text, 500)
                );
            }
        }
        Ok((status, answer))
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Every property name a schema mentions, at any depth, so that arbitrary objects use
/// the operation's own field names often enough to reach its validation.
fn field_names(schema: &Value) -> Vec<String> {
    fn walk(schema: &Value, out: &mut Vec<String>) {
        match schema {
            Value::Object(map) => {
                if let Some(Value::Object(properties)) = map.get("properties") {
                    out.extend(properties.keys().cloned());
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    walk(schema, &mut names);
    names.sort();
    names.dedup();
    if names.is_empty() {
        names.push("name".into());
    }
    names
}

/// Strings that have broken parsers and validators before.
const AWKWARD_STRINGS: &[&str] = &[
    "",
    " ",
    "\u{0}",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "NaN",
    "2026-11-22T17:00:00Z",
    "2026-02-30T25:61:61Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z",
    "2026-11-22",
    "17:00",
    "PT1H",
    "Europe/Paris",
    "Mars/Olympus",
    "FREQ=DAILY;COUNT=99999999",
    "ada@example.com",
    "a@",
    "+14155552671",
    "https://example.com/",
    "javascript:alert(1)",
    "<script>alert(1)</script>",
    "{{form:frm_01jd}}",
    "{{",
    "../../etc/passwd",
    "SPACE#x#contacts",
    "con_01jdxxxxxxxxxxxxxxxxxxxxxx",
    "wks_live_",
    "%00%ff",
    "\u{202e}gnp.exe",
    "👩‍👩‍👧‍👦",
    "\u{feff}",
    "Ǆ̸̛̜",
    "a-b_c",
    "UPPER",
    "text",
    "number",
    "select",
    "email",
    "open",
    "high",
];

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-3i64..300).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            0.5,
            -0.0,
            1e308,
            -1e308,
            5e-324,
            1.8446744073709552e19,
            9.007199254740993e15,
            1e126,
            1e-131
        ])
        .prop_map(|f| json!(f)),
        prop::sample::select(AWKWARD_STRINGS).prop_map(|s| Value::String(s.to_owned())),
        any::<String>().prop_map(Value::String),
        "\\PC{0,24}".prop_map(Value::String),
        (1usize..5).prop_map(|n| Value::String("x".repeat(10usize.pow(n as u32)))),
    ]
    .boxed()
}

/// Any JSON value: objects use the operation's field names half of the time.
fn json_value(fields: Vec<String>) -> BoxedStrategy<Value> {
    let key = prop_oneof![prop::sample::select(fields), "\\PC{0,12}"];
    let tree = leaf().prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    });
    prop_oneof![
        8 => tree,
        1 => deep(),
    ]
    .boxed()
}

/// A value nested up to well past the parser's limit.
fn deep() -> impl Strategy<Value = Value> {
    (1usize..200, any::<bool>(), leaf()).prop_map(|(levels, arrays, leaf)| {
        let mut value = leaf;
        for _ in 0..levels {
            value = if arrays { json!([value]) } else { json!({"name": value}) };
        }
        value
    })
}

/// One step of a path into a JSON value.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every path into `value`, the root included.
fn paths(value: &Value) -> Vec<Vec<Step>> {
    fn walk(value: &Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        out.push(prefix.clone());
        match value {
            Value::Object(map) => {
                for (name, child) in map {
                    prefix.push(Step::Key(name.clone()));
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    prefix.push(Step::Index(index));
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn at<'v>(value: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    path.iter().try_fold(value, |value, step| match step {
        Step::Key(name) => value.as_object_mut()?.get_mut(name),
        Step::Index(index) => value.as_array_mut()?.get_mut(*index),
    })
}

/// What a mutation does at its path.
#[derive(Debug, Clone)]
enum Change {
    Replace(Value),
    Remove,
    AddField(String, Value),
    Duplicate,
    WrapInArray,
    Stringify,
}

fn change(fields: Vec<String>) -> impl Strategy<Value = Change> {
    let value = json_value(fields.clone());
    prop_oneof![
        4 => value.clone().prop_map(Change::Replace),
        2 => Just(Change::Remove),
        2 => (prop_oneof![prop::sample::select(fields), "\\PC{0,12}"], value).prop_map(|(k, v)| Change::AddField(k, v)),
        1 => Just(Change::Duplicate),
        1 => Just(Change::WrapInArray),
        1 => Just(Change::Stringify),
    ]
}

fn apply(body: &mut Value, path: &[Step], change: Change) {
    if let Change::Remove = change {
        if let Some((last, parent)) = path.split_last()
            && let Some(parent) = at(body, parent)
        {
            match (parent, last) {
                (Value::Object(map), Step::Key(name)) => {
                    map.remove(name);
                }
                (Value::Array(items), Step::Index(index)) if *index < items.len() => {
                    items.remove(*index);
                }
                _ => {}
            }
        } else if path.is_empty() {
            *body = Value::Null;
        }
        return;
    }
    let Some(target) = at(body, path) else { return };
    match change {
        Change::Replace(value) => *target = value,
        Change::AddField(name, value) => match target {
            Value::Object(map) => {
                map.insert(name, value);
            }
            Value::Array(items) => items.push(value),
            other => *other = value,
        },
        Change::Duplicate => {
            if let Value::Array(items) = target
                && let Some(first) = items.first().cloned()
            {
                items.extend(std::iter::repeat_n(first, 50));
            } else {
                *target = json!([target.clone(), target.clone()]);
            }
        }
        Change::WrapInArray => *target = json!([target.clone()]),
        Change::Stringify => *target = Value::String(target.to_string()),
        Change::Remove => {}
    }
}

/// The valid example with one to four changes at paths inside it.
fn mutation(example: Value, fields: Vec<String>) -> impl Strategy<Value = Value> {
    let paths = paths(&example);
    let count = paths.len();
    prop::collection::vec((0..count, change(fields)), 1..4).prop_map(move |changes| {
        let mut body = example.clone();
        for (index, change) in changes {
            apply(&mut body, &paths[index], change);
        }
        body
    })
}

/// A body nested deeper than the store keeps is refused with a 400, on both backends
/// alike, and one within the limit reads back. (The embedded store used to write items
/// it could not decode again: every later read of them was a 500.)
async fn deeply_nested_bodies_are_refused_or_read_back(app: TestApp) {
    let created = app
        .space(Method::POST, "/apps")
        .json(json!({"name": "Deep"}))
        .send()
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("an id").to_owned();
    for levels in [8usize, 30, 31, 32, 33, 64, 125, 126, 127, 128] {
        let mut nested = json!("leaf");
        for _ in 0..levels - 2 {
            nested = json!([nested]);
        }
        // The schema object and its `enum` list are two more levels.
        let schema = json!({"enum": [nested]});
        assert_eq!(depth(&schema), levels);
        let put = app
            .space(Method::PUT, &format!("/apps/{id}/schema"))
            .json(schema.clone())
            .send()
            .await;
        // The store keeps the schema inside the item's body: one level more.
        if levels < space_store::MAX_NESTING {
            assert_eq!(put.status, 200, "{levels} levels: {}", put.text);
        } else {
            assert_eq!(put.status, 400, "{levels} levels: {}", put.text);
            assert_eq!(put.error_code(), "BAD_REQUEST");
        }
        let get = app
            .space(Method::GET, &format!("/apps/{id}/schema"))
            .send()
            .await
            .expect(200);
        if put.status == 200 {
            assert_eq!(get.body, schema, "{levels} levels read back");
        }
    }
}
