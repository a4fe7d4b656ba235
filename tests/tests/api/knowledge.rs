//! The knowledge base: articles validated and filtered, and a ranked word search (titles
//! before bodies, any case or accent, word prefixes) that pages honestly, forgets what an
//! edit or a deletion removed, and finds words anywhere in a long body once the worker has
//! indexed it.

use std::collections::{BTreeSet, HashMap};

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{Value, json};
use space_store::{Query, Scan, SortRange};
use space_tests::{SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    articles_are_validated_and_filtered,
    titles_rank_before_bodies_in_any_case_or_accent,
    pages_of_matches_are_honest,
    edits_and_deletions_remove_stale_matches,
    long_bodies_are_indexed_whole_after_the_write,
    scopes_split_and_other_spaces_see_nothing,
    a_deleted_space_takes_its_knowledge_indexes,
);

async fn article(app: &TestApp, title: &str, body: &str) -> String {
    article_with(app, json!({"title": title, "body": body})).await
}

async fn article_with(app: &TestApp, body: Value) -> String {
    let created = app
        .space(Method::POST, "/knowledge")
        .json(body)
        .send()
        .await
        .expect(201);
    created.body["id"].as_str().expect("an id").to_owned()
}

/// Worker passes until none runs a job: the body words are indexed.
async fn index(app: &TestApp) {
    let worker = spacectl::worker(app.engine.clone());
    for _ in 0..100 {
        app.clock.advance(TimeDelta::milliseconds(1));
        let pass = worker.run_due().await.expect("a worker pass");
        if pass.done + pass.later + pass.dead == 0 {
            return;
        }
        assert_eq!(pass.dead, 0, "no job fails");
    }
    panic!("the worker never went idle");
}

/// The ids a search answers, in order, from one page.
async fn search(app: &TestApp, query: &str) -> Vec<String> {
    let page = app
        .space(Method::GET, &format!("/knowledge?q={}", encode(query)))
        .send()
        .await
        .expect(200);
    ids(&page.body)
}

fn ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_owned())
        .collect()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The articles the body index holds `word` for, read from the store.
async fn body_entries(app: &TestApp, space: &str, word: &str) -> Vec<String> {
    let partition = space_http::keys::search_partition(space, messaging::knowledge::BODY_SCOPE);
    let page = app
        .engine
        .store()
        .query(
            Query::partition(partition)
                .range(SortRange::BeginsWith(format!("{word}#")))
                .limit(100),
        )
        .await
        .expect("a read");
    page.items
        .iter()
        .filter_map(|entry| entry.body.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

async fn articles_are_validated_and_filtered(app: TestApp) {
    let created = app
        .space(Method::POST, "/knowledge")
        .json(json!({"title": "  Returns  ", "body": "# Returns\n\nSend it back within **30 days**.", "tags": ["billing", "billing"]}))
        .send()
        .await
        .expect(201);
    let draft = created.body["id"].as_str().expect("an id").to_owned();
    assert!(draft.starts_with("kb_"));
    assert_eq!(created.body["title"], "Returns");
    assert_eq!(created.body["published"], false, "a draft by default");
    assert_eq!(created.body["tags"], json!(["billing"]));
    assert!(
        created.body["body"].as_str().is_some_and(|b| b.contains("**30 days**")),
        "markdown kept"
    );
    let live = article_with(
        &app,
        json!({"title": "Opening hours", "body": "9 to 5", "published": true, "tags": ["store"]}),
    )
    .await;

    let long = "a".repeat(messaging::knowledge::MAX_BODY + 1);
    for (body, field) in [
        (json!({"body": "No title"}), "title"),
        (json!({"title": "No body"}), "body"),
        (json!({"title": "t".repeat(201), "body": "x"}), "title"),
        (json!({"title": "Line\nbreak", "body": "x"}), "title"),
        (json!({"title": "Huge", "body": long}), "body"),
        (json!({"title": "Flag", "body": "x", "published": "yes"}), "published"),
        (json!({"title": "Tags", "body": "x", "tags": "billing"}), "tags"),
        (json!({"title": "Extra", "body": "x", "author": "me"}), "author"),
    ] {
        let refused = app
            .space(Method::POST, "/knowledge")
            .json(body)
            .send()
            .await
            .expect(422);
        assert!(
            refused.body["error"]["fields"][field].is_array(),
            "{field}: {}",
            refused.text
        );
    }
    let at_most = "b".repeat(messaging::knowledge::MAX_BODY);
    article(&app, "Largest", &at_most).await;

    let listed = |query: &'static str| {
        let app = &app;
        async move {
            let page = app
                .space(Method::GET, &format!("/knowledge{query}"))
                .send()
                .await
                .expect(200);
            ids(&page.body)
        }
    };
    assert_eq!(listed("?published=true").await, vec![live.clone()]);
    assert!(listed("?published=false").await.contains(&draft));
    assert!(!listed("?published=false").await.contains(&live));
    assert_eq!(listed("?tag=billing").await, vec![draft.clone()]);
    assert_eq!(listed("?tag=store&published=true").await, vec![live.clone()]);
    let bad = app
        .space(Method::GET, "/knowledge?published=maybe")
        .send()
        .await
        .expect(422);
    assert!(bad.body["error"]["fields"]["published"].is_array());
    let bad = app
        .space(Method::GET, &format!("/knowledge?q={}", "w".repeat(201)))
        .send()
        .await
        .expect(422);
    assert!(bad.body["error"]["fields"]["q"].is_array());

    let published = app
        .space(Method::PATCH, &format!("/knowledge/{draft}"))
        .json(json!({"published": true}))
        .send()
        .await
        .expect(200);
    assert_eq!(published.body["published"], true);
    assert_eq!(published.body["version"], 2);
    let events = app.event_types().await;
    assert!(events.iter().any(|t| t == "article.created"));
    assert!(events.iter().any(|t| t == "article.updated"));
}

async fn titles_rank_before_bodies_in_any_case_or_accent(app: TestApp) {
    let shipping = article(&app, "Shipping", "Returns are accepted within 30 days of delivery.").await;
    let returns = article(&app, "Returns policy", "How to send an item back to us.").await;
    let returning = article(&app, "Returning customers", "A discount on the second order.").await;
    let cafe = article(&app, "Café opening hours", "Our crème brûlée is served until 17:00.").await;
    article(&app, "Unrelated", "Nothing to see here.").await;

    // Titles are searched as soon as the write answers.
    assert_eq!(search(&app, "return").await, [returning.clone(), returns.clone()]);
    index(&app).await;
    // Every title match, then every body-only match.
    assert_eq!(
        search(&app, "return").await,
        [returning.clone(), returns.clone(), shipping.clone()]
    );
    assert_eq!(search(&app, "RETURNS").await, [returns.clone(), shipping.clone()]);
    assert_eq!(
        search(&app, "ret").await,
        [returning.clone(), returns.clone(), shipping.clone()]
    );
    assert!(
        search(&app, "eturn").await.is_empty(),
        "prefixes of words, not substrings"
    );
    // Accents and case, either way.
    for query in ["cafe", "CAFÉ", "Café", "café open"] {
        assert_eq!(search(&app, query).await, vec![cafe.clone()], "{query}");
    }
    for query in ["creme brulee", "CRÈME", "brûl"] {
        assert_eq!(search(&app, query).await, vec![cafe.clone()], "{query}");
    }
    // Every word must match, in the title or the body; a title holding only some of them
    // is a body match.
    assert_eq!(search(&app, "returns days").await, vec![shipping.clone()]);
    assert_eq!(search(&app, "returns send").await, vec![returns.clone()]);
    assert!(search(&app, "returns zebra").await.is_empty());
    // Filters narrow a search.
    app.space(Method::PATCH, &format!("/knowledge/{returns}"))
        .json(json!({"published": true, "tags": ["policy"]}))
        .send()
        .await
        .expect(200);
    let narrowed = app
        .space(Method::GET, "/knowledge?q=return&published=true")
        .send()
        .await
        .expect(200);
    assert_eq!(ids(&narrowed.body), vec![returns.clone()]);
    let tagged = app
        .space(Method::GET, "/knowledge?q=ret&tag=policy")
        .send()
        .await
        .expect(200);
    assert_eq!(ids(&tagged.body), vec![returns.clone()]);
    // A query of no words is the plain list.
    let everything = app.space(Method::GET, "/knowledge?q=%21%3F").send().await.expect(200);
    assert_eq!(ids(&everything.body).len(), 5);
}

async fn pages_of_matches_are_honest(app: TestApp) {
    let mut titled = Vec::new();
    for n in 0..5 {
        titled.push(article(&app, &format!("Refund step {n}"), "Read this first.").await);
    }
    let mut bodied = Vec::new();
    for n in 0..3 {
        bodied.push(article(&app, &format!("Note {n}"), "Ask for a refund at the desk.").await);
    }
    article(&app, "Other", "Nothing about money.").await;
    index(&app).await;

    let walk = |limit: usize| {
        let app = &app;
        async move {
            let mut seen: Vec<Vec<String>> = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path = format!("/knowledge?q=refund&limit={limit}");
                if let Some(cursor) = &cursor {
                    path.push_str(&format!("&cursor={}", encode(cursor)));
                }
                let page = app.space(Method::GET, &path).send().await.expect(200);
                let found = ids(&page.body);
                assert!(!found.is_empty(), "a page with a cursor is never empty");
                seen.push(found);
                match page.body["next_cursor"].as_str() {
                    Some(next) => cursor = Some(next.to_owned()),
                    None => return seen,
                }
                assert!(seen.len() < 20, "the pages end");
            }
        }
    };
    let as_set = |ids: &[String]| ids.iter().cloned().collect::<BTreeSet<String>>();
    for limit in [1, 2, 3, 5, 7, 8, 50] {
        let pages = walk(limit).await;
        let all: Vec<String> = pages.concat();
        assert_eq!(all.len(), 8, "limit {limit}: each match once: {pages:?}");
        assert_eq!(as_set(&all[..5]), as_set(&titled), "limit {limit}: titles first");
        assert_eq!(as_set(&all[5..]), as_set(&bodied), "limit {limit}");
        assert!(pages.iter().all(|page| page.len() <= limit));
        assert_eq!(
            pages.len(),
            8_usize.div_ceil(limit),
            "limit {limit}: full pages, then the rest"
        );
    }
    // Exactly a page of matches: no cursor.
    let exact = app
        .space(Method::GET, "/knowledge?q=refund&limit=8")
        .send()
        .await
        .expect(200);
    assert_eq!(ids(&exact.body).len(), 8);
    assert_eq!(exact.body["next_cursor"], Value::Null);
    let titles_only = app
        .space(Method::GET, "/knowledge?q=refund%20step&limit=5")
        .send()
        .await
        .expect(200);
    assert_eq!(as_set(&ids(&titles_only.body)), as_set(&titled));
    assert_eq!(titles_only.body["next_cursor"], Value::Null);
    // A cursor belongs to its search.
    let first = app
        .space(Method::GET, "/knowledge?q=refund&limit=2")
        .send()
        .await
        .expect(200);
    let cursor = first.body["next_cursor"].as_str().expect("a cursor").to_owned();
    app.space(
        Method::GET,
        &format!("/knowledge?q=refunds&limit=2&cursor={}", encode(&cursor)),
    )
    .send()
    .await
    .expect(400);
    app.space(Method::GET, &format!("/knowledge?limit=2&cursor={}", encode(&cursor)))
        .send()
        .await
        .expect(400);
}

async fn edits_and_deletions_remove_stale_matches(app: TestApp) {
    let space = app.demo.space_id.clone();
    let id = article(&app, "Zebra crossing", "Alpha beta gamma.").await;
    index(&app).await;
    assert_eq!(search(&app, "alpha").await, vec![id.clone()]);
    assert_eq!(body_entries(&app, &space, "alpha").await, vec![id.clone()]);

    let path = format!("/knowledge/{id}");
    app.space(Method::PATCH, &path)
        .json(json!({"title": "Lion gate", "body": "Delta epsilon."}))
        .send()
        .await
        .expect(200);
    // Stale words stop matching at once, before the worker runs.
    assert!(search(&app, "alpha").await.is_empty());
    assert!(search(&app, "zebra").await.is_empty());
    assert_eq!(search(&app, "lion").await, vec![id.clone()]);
    index(&app).await;
    assert!(
        body_entries(&app, &space, "alpha").await.is_empty(),
        "stale entries removed"
    );
    assert!(body_entries(&app, &space, "zebra").await.is_empty());
    assert_eq!(search(&app, "epsilon").await, vec![id.clone()]);
    assert_eq!(body_entries(&app, &space, "delta").await, vec![id.clone()]);

    // A replace, twice before the worker runs: the index ends with the last.
    for body in ["Omega first.", "Sigma last."] {
        app.space(Method::PUT, &path)
            .json(json!({"title": "Lion gate", "body": body}))
            .send()
            .await
            .expect(200);
    }
    index(&app).await;
    assert!(body_entries(&app, &space, "delta").await.is_empty());
    assert!(body_entries(&app, &space, "omega").await.is_empty());
    assert_eq!(search(&app, "sigma").await, vec![id.clone()]);

    app.space(Method::DELETE, &path).send().await.expect(204);
    assert!(search(&app, "lion").await.is_empty(), "gone at once");
    assert!(search(&app, "sigma").await.is_empty(), "gone at once");
    index(&app).await;
    for word in ["sigma", "lion", "gate"] {
        assert!(body_entries(&app, &space, word).await.is_empty(), "{word}");
    }
    // Nothing of the article is left under the Space but its events.
    let own = space_http::keys::space_partition(&space);
    let page = app
        .engine
        .store()
        .scan(Scan::prefix(own.as_str()).limit(1000))
        .await
        .expect("a scan");
    let left: Vec<String> = page
        .keys
        .iter()
        .filter(|(pk, sk)| !pk.ends_with("#EVENTS") && (pk.contains("knowledge") || sk.contains(&id)))
        .map(|(pk, sk)| format!("{pk} / {sk}"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

async fn long_bodies_are_indexed_whole_after_the_write(app: TestApp) {
    // More distinct words than one transaction could index (and far more than an item's
    // own word index holds).
    let words: Vec<String> = (0..450).map(|n| format!("w{n}x")).collect();
    let body = words.join(" ");
    assert!(body.chars().count() <= messaging::knowledge::MAX_BODY);
    let id = article(&app, "Glossary", &body).await;
    assert!(
        search(&app, "w449x").await.is_empty(),
        "body words come after the write"
    );
    index(&app).await;
    for word in ["w0x", "w225x", "w449x", "glossary w449"] {
        assert_eq!(search(&app, word).await, vec![id.clone()], "{word}");
    }
    // A shorter body drops the rest, in batches too.
    app.space(Method::PATCH, &format!("/knowledge/{id}"))
        .json(json!({"body": "w0x only"}))
        .send()
        .await
        .expect(200);
    index(&app).await;
    assert!(body_entries(&app, &app.demo.space_id, "w449x").await.is_empty());
    assert_eq!(search(&app, "w0x").await, vec![id.clone()]);
}

async fn scopes_split_and_other_spaces_see_nothing(app: TestApp) {
    let id = article(&app, "Private", "Only for this Space.").await;
    index(&app).await;
    let reader = app.mint(&["messaging:read"], None).await;
    let path = format!("{SPACE_API}/knowledge/{id}");
    app.request(Method::GET, &path).key(&reader).send().await.expect(200);
    app.request(Method::GET, &format!("{SPACE_API}/knowledge?q=private"))
        .key(&reader)
        .send()
        .await
        .expect(200);
    for (method, url, body) in [
        (
            Method::POST,
            format!("{SPACE_API}/knowledge"),
            json!({"title": "x", "body": "y"}),
        ),
        (Method::PATCH, path.clone(), json!({"title": "x"})),
        (Method::PUT, path.clone(), json!({"title": "x", "body": "y"})),
        (Method::DELETE, path.clone(), json!({})),
    ] {
        let refused = app
            .request(method, &url)
            .key(&reader)
            .json(body)
            .send()
            .await
            .expect(403);
        assert!(refused.text.contains("messaging:write"), "{}", refused.text);
    }
    let writer = app.mint(&["messaging:write"], None).await;
    let refused = app.request(Method::GET, &path).key(&writer).send().await.expect(403);
    assert!(refused.text.contains("messaging:read"), "{}", refused.text);

    // Every route of the domain, templates included, with this article's id.
    let article_body = json!({"title": "Returns", "body": "Within 30 days."});
    let template = json!({"name": "hello", "language": "en", "category": "utility", "body": "Hello there, friend."});
    let bodies: HashMap<&str, Value> = HashMap::from([
        ("messaging_knowledge_create", article_body.clone()),
        ("messaging_knowledge_replace", article_body),
        ("messaging_templates_create", template.clone()),
        ("messaging_templates_replace", template),
    ]);
    let ids = [("id", id.as_str()), ("tag", "ours")];
    crate::family_checks::scopes_are_enforced(&app, "messaging", &ids, &bodies).await;
    crate::family_checks::other_spaces_get_404(&app, "messaging", &ids, &bodies).await;

    let (_, other) = app.other_space().await;
    app.request(Method::GET, &path).key(&other).send().await.expect(404);
    app.request(Method::DELETE, &path).key(&other).send().await.expect(404);
    for query in ["private", "only"] {
        let found = app
            .request(Method::GET, &format!("{SPACE_API}/knowledge?q={query}"))
            .key(&other)
            .send()
            .await
            .expect(200);
        assert_eq!(found.body["data"], json!([]), "{query}");
    }
    assert_eq!(search(&app, "only").await, [id]);
}

async fn a_deleted_space_takes_its_knowledge_indexes(app: TestApp) {
    let (space, key) = app.other_space().await;
    let created = app
        .request(Method::POST, &format!("{SPACE_API}/knowledge"))
        .key(&key)
        .json(json!({"title": "Warranty", "body": "Two years on every bicycle."}))
        .send()
        .await
        .expect(201);
    let id = created.body["id"].as_str().expect("an id").to_owned();
    index(&app).await;
    assert_eq!(body_entries(&app, &space, "bicycle").await, vec![id.clone()]);
    app.account(Method::DELETE, &format!("/spaces/{space}"))
        .send()
        .await
        .expect(204);
    index(&app).await;
    let own = space_http::keys::space_partition(&space);
    let page = app
        .engine
        .store()
        .scan(Scan::prefix(own.as_str()).limit(1000))
        .await
        .expect("a scan");
    let left: Vec<&(String, String)> = page
        .keys
        .iter()
        .filter(|(pk, _)| pk == &own || pk.starts_with(&format!("{own}#")))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
