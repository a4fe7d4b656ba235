//! Lookups, search and honest pages: `?email=`, `?phone=` and `?q=` answer from indexes
//! kept in the item's transaction (an import's words follow from a job), an email belongs
//! to one contact, and no list hands out an empty page with a cursor or a cursor after its
//! last item.

use std::collections::BTreeSet;

use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{Backend, TestApp, on_both_backends};

on_both_backends!(
    an_email_finds_its_one_contact_and_a_phone_every_contact_sharing_it,
    a_second_contact_with_an_email_is_refused_naming_the_first,
    upsert_updates_the_contact_with_the_email_or_creates_it,
    concurrent_creates_with_one_email_make_one_contact,
    lookups_and_search_agree_with_a_scan_after_any_sequence_of_writes,
    imported_words_follow_the_edits_made_before_they_are_indexed,
    search_ignores_case_and_accents_and_matches_word_beginnings,
    a_match_at_the_end_of_thousands_is_found_in_one_call,
    a_page_that_ends_the_list_carries_no_cursor,
    the_catalogue_documents_upsert_search_and_the_conflict,
);

/// The `data` of a list.
fn data(body: &Value) -> Vec<Value> {
    body["data"].as_array().cloned().unwrap_or_default()
}

fn ids(body: &Value) -> BTreeSet<String> {
    data(body)
        .iter()
        .filter_map(|item| item["id"].as_str().map(str::to_owned))
        .collect()
}

/// Every contact, read page by page without a filter.
async fn all_contacts(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/contacts?limit=200&cursor={cursor}"),
            None => "/contacts?limit=200".to_owned(),
        };
        let page = app.space(Method::GET, &path).send().await.expect(200);
        all.extend(data(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// Every match of a filtered list, following cursors; asserts no page is empty with a cursor.
async fn all_matches(app: &TestApp, query: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/contacts?{query}&limit=3&cursor={cursor}"),
            None => format!("/contacts?{query}&limit=3"),
        };
        let page = app.space(Method::GET, &path).send().await.expect(200);
        let before = found.len();
        found.extend(ids(&page.body));
        match page.body["next_cursor"].as_str() {
            Some(next) => {
                assert!(found.len() > before, "a page with a cursor and nothing new: {query}");
                cursor = Some(next.to_owned());
            }
            None => return found,
        }
    }
}

async fn an_email_finds_its_one_contact_and_a_phone_every_contact_sharing_it(app: TestApp) {
    let ada = app
        .contact(json!({"name": "Ada", "email": "Ada.Lovelace@Example.com", "phone": "+44 20 7946 0000"}))
        .await;
    let byron = app
        .contact(json!({"name": "Lord Byron", "phone": "+442079460000"}))
        .await;
    app.contact(json!({"name": "Someone else", "email": "else@example.com"}))
        .await;

    let found = app
        .space(Method::GET, "/contacts?email=%20ADA.lovelace@EXAMPLE.com%20")
        .send()
        .await
        .expect(200);
    assert_eq!(
        ids(&found.body),
        BTreeSet::from([ada["id"].as_str().unwrap().to_owned()])
    );
    assert_eq!(found.body["next_cursor"], Value::Null);
    let none = app
        .space(Method::GET, "/contacts?email=nobody@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(none.body, json!({"data": [], "next_cursor": null}));
    app.space(Method::GET, "/contacts?email=not-an-email")
        .send()
        .await
        .expect(422);

    let household = app
        .space(Method::GET, "/contacts?phone=%2B44%2020%207946%200000")
        .send()
        .await
        .expect(200);
    let expected: BTreeSet<String> = [&ada, &byron]
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids(&household.body), expected);
    let with_other_filters = app
        .space(Method::GET, "/contacts?phone=%2B442079460000&q=byron")
        .send()
        .await
        .expect(200);
    assert_eq!(data(&with_other_filters.body).len(), 1);
    assert_eq!(data(&with_other_filters.body)[0]["name"], "Lord Byron");
}

async fn a_second_contact_with_an_email_is_refused_naming_the_first(app: TestApp) {
    let ada = app.contact(json!({"name": "Ada", "email": "ada@example.com"})).await;
    let ada_id = ada["id"].as_str().unwrap();
    let refused = app
        .space(Method::POST, "/contacts")
        .json(json!({"name": "Ada again", "email": " ADA@example.com"}))
        .send()
        .await
        .expect(409);
    assert_eq!(refused.error_code(), "CONFLICT");
    assert_eq!(refused.body["error"]["existing_id"], ada_id);
    let message = refused.body["error"]["fields"]["email"][0].as_str().unwrap();
    assert!(message.contains(ada_id), "{message}");
    assert!(refused.body["error"]["request_id"].is_string());

    // Taking another contact's email is refused too; giving one up frees it.
    let grace = app
        .contact(json!({"name": "Grace", "email": "grace@example.com"}))
        .await;
    let grace_id = grace["id"].as_str().unwrap();
    let taken = app
        .space(Method::PATCH, &format!("/contacts/{grace_id}"))
        .json(json!({"email": "ada@example.com"}))
        .send()
        .await
        .expect(409);
    assert_eq!(taken.body["error"]["existing_id"], ada_id);
    app.space(Method::PUT, &format!("/contacts/{grace_id}"))
        .json(json!({"name": "Grace", "email": "ada@example.com"}))
        .send()
        .await
        .expect(409);
    app.space(Method::PATCH, &format!("/contacts/{ada_id}"))
        .json(json!({"email": "countess@example.com"}))
        .send()
        .await
        .expect(200);
    app.space(Method::PATCH, &format!("/contacts/{grace_id}"))
        .json(json!({"email": "ada@example.com"}))
        .send()
        .await
        .expect(200);
    let now_grace = app
        .space(Method::GET, "/contacts?email=ada@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(data(&now_grace.body)[0]["id"], grace_id);
    app.space(Method::DELETE, &format!("/contacts/{grace_id}"))
        .send()
        .await
        .expect(204);
    app.contact(json!({"name": "New owner", "email": "ada@example.com"}))
        .await;

    // An import reports the duplicates, within the file and against the Space, and
    // writes the rest.
    let imported = app
        .space(Method::POST, "/contacts/import")
        .json(json!({"contacts": [
            {"name": "Fresh", "email": "fresh@example.com"},
            {"name": "Taken", "email": "countess@example.com"},
            {"name": "Fresh twice", "email": "FRESH@example.com"},
            {"name": "Also fresh", "email": "also@example.com"}
        ]}))
        .send()
        .await
        .expect(200);
    let results = imported.body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(
        statuses,
        ["created", "duplicate", "invalid", "created"],
        "{}",
        imported.text
    );
    assert_eq!(results[1]["existing_id"], ada_id);
    assert_eq!(imported.body["created"], 2);
}

async fn upsert_updates_the_contact_with_the_email_or_creates_it(app: TestApp) {
    let created = app
        .space(Method::POST, "/contacts?upsert=email")
        .json(json!({"name": "Ada", "email": "ada@example.com", "tags": ["lead"]}))
        .send()
        .await
        .expect(201);
    let id = created.body["id"].as_str().unwrap();
    let updated = app
        .space(Method::POST, "/contacts?upsert=email")
        .json(json!({"email": "ADA@example.com", "company": "Analytical Engines"}))
        .send()
        .await
        .expect(200);
    assert_eq!(updated.body["id"], id);
    assert_eq!(updated.body["name"], "Ada", "fields not sent are kept");
    assert_eq!(updated.body["tags"], json!(["lead"]));
    assert_eq!(updated.body["company"], "Analytical Engines");
    assert_eq!(updated.body["version"], 2);
    assert_eq!(updated.header("etag"), Some("\"2\""));
    assert_eq!(all_contacts(&app).await.len(), 1);

    let by_name = app
        .space(Method::POST, "/contacts?upsert=name")
        .json(json!({"name": "Ada"}))
        .send()
        .await
        .expect(422);
    assert!(
        by_name.body["error"]["fields"]["upsert"][0]
            .as_str()
            .unwrap()
            .contains("email")
    );
    let without = app
        .space(Method::POST, "/contacts?upsert=email")
        .json(json!({"name": "No email"}))
        .send()
        .await
        .expect(422);
    assert!(without.body["error"]["fields"]["email"].is_array());
    // A retry with the same Idempotency-Key answers what the first call did.
    let first = app
        .space(Method::POST, "/contacts?upsert=email")
        .header("idempotency-key", "upsert-1")
        .json(json!({"name": "Grace", "email": "grace@example.com"}))
        .send()
        .await
        .expect(201);
    let again = app
        .space(Method::POST, "/contacts?upsert=email")
        .header("idempotency-key", "upsert-1")
        .json(json!({"name": "Grace", "email": "grace@example.com"}))
        .send()
        .await
        .expect(201);
    assert_eq!(first.body["id"], again.body["id"]);
}

async fn concurrent_creates_with_one_email_make_one_contact(app: TestApp) {
    for round in 0..3 {
        let email = format!("race{round}@example.com");
        let attempts = (0..6).map(|n| {
            app.space(Method::POST, "/contacts")
                .json(json!({"name": format!("Racer {n}"), "email": email}))
                .send()
        });
        let responses = futures::future::join_all(attempts).await;
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        let winners: Vec<&Value> = responses.iter().filter(|r| r.status == 201).map(|r| &r.body).collect();
        assert_eq!(winners.len(), 1, "one create wins: {statuses:?}");
        let winner = winners[0]["id"].as_str().unwrap();
        for loser in responses.iter().filter(|r| r.status != 201) {
            assert_eq!(loser.status, 409, "{}", loser.text);
            assert_eq!(loser.body["error"]["existing_id"], winner);
        }
        // And upserts racing each other end on one contact too.
        let upserts = (0..4).map(|n| {
            app.space(Method::POST, "/contacts?upsert=email")
                .json(json!({"email": format!("upsert{round}@example.com"), "job_title": format!("Job {n}")}))
                .send()
        });
        let responses = futures::future::join_all(upserts).await;
        let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 201 || *s == 200), "{statuses:?}");
        let ids: BTreeSet<&str> = responses.iter().filter_map(|r| r.body["id"].as_str()).collect();
        assert_eq!(ids.len(), 1, "one contact for one email");
    }
}

/// A small deterministic generator, so a failing sequence replays exactly.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next(from.len())]
    }
}

async fn lookups_and_search_agree_with_a_scan_after_any_sequence_of_writes(app: TestApp) {
    const EMAILS: [&str; 5] = ["a@x.io", "b@x.io", "c@x.io", "d@x.io", "e@x.io"];
    const PHONES: [&str; 3] = ["+12025550101", "+12025550102", "+4930123456"];
    const NAMES: [&str; 6] = [
        "Anna Müller",
        "Zoë Adams",
        "Ada Lovelace",
        "Adam Smith",
        "Mueller GmbH",
        "Bo",
    ];
    let mut sequence = Sequence(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<String> = Vec::new();
    for step in 0..70 {
        let mut body = json!({"name": sequence.pick(&NAMES)});
        if sequence.next(3) > 0 {
            body["email"] = json!(sequence.pick(&EMAILS));
        }
        if sequence.next(2) == 0 {
            body["phone"] = json!(sequence.pick(&PHONES));
        }
        let action = if live.is_empty() { 0 } else { sequence.next(6) };
        let target = if live.is_empty() {
            String::new()
        } else {
            live[sequence.next(live.len())].clone()
        };
        let response = match action {
            0 | 1 => app.space(Method::POST, "/contacts").json(body).send().await,
            2 => {
                let mut patch = json!({});
                match sequence.next(4) {
                    0 => patch["email"] = Value::Null,
                    1 => patch["email"] = json!(sequence.pick(&EMAILS)),
                    2 => patch["phone"] = json!(sequence.pick(&PHONES)),
                    _ => patch["name"] = json!(sequence.pick(&NAMES)),
                }
                app.space(Method::PATCH, &format!("/contacts/{target}"))
                    .json(patch)
                    .send()
                    .await
            }
            3 => {
                app.space(Method::PUT, &format!("/contacts/{target}"))
                    .json(body)
                    .send()
                    .await
            }
            4 => {
                let rows =
                    json!({"contacts": [body, {"name": sequence.pick(&NAMES), "email": sequence.pick(&EMAILS)}]});
                app.space(Method::POST, "/contacts/import").json(rows).send().await
            }
            _ => app.space(Method::DELETE, &format!("/contacts/{target}")).send().await,
        };
        assert!(
            [200, 201, 204, 409, 422].contains(&response.status),
            "step {step}: {} {}",
            response.status,
            response.text
        );
        // Imported rows get their words from a job: let it run at random points, so
        // updates and deletes also land between an import and its words.
        if sequence.next(3) == 0 {
            app.worker_pass().await;
        }
        live = all_contacts(&app)
            .await
            .iter()
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect();
    }

    app.worker_pass().await;
    let contacts = all_contacts(&app).await;
    // The word index holds exactly the words of the contacts as they are: none missing,
    // none of a former version or of a deleted contact.
    let space = &app.demo.space_id;
    let entries = app
        .engine
        .store()
        .query(space_store::Query::partition(space_http::keys::search_partition(space, "contacts")).limit(10_000))
        .await
        .expect("the word index reads");
    let held: BTreeSet<String> = entries.items.iter().map(|entry| entry.sk.clone()).collect();
    let expected: BTreeSet<String> = contacts
        .iter()
        .flat_map(|c| {
            let id = c["id"].as_str().unwrap_or_default().to_owned();
            let texts: Vec<&str> = ["name", "email", "phone", "company"]
                .iter()
                .filter_map(|f| c[*f].as_str())
                .collect();
            space_http::index::index_words(texts)
                .into_iter()
                .map(move |word| format!("{word}#{id}"))
        })
        .collect();
    assert_eq!(held, expected, "the word index against the contacts");
    assert!(
        contacts.len() >= 3,
        "the sequence left contacts to look up: {}",
        contacts.len()
    );
    assert!(
        contacts.iter().any(|c| c["email"].is_string()) && contacts.iter().any(|c| c["phone"].is_string()),
        "the sequence left emails and phones to look up"
    );
    let scan = |keep: &dyn Fn(&Value) -> bool| -> BTreeSet<String> {
        contacts
            .iter()
            .filter(|c| keep(c))
            .filter_map(|c| c["id"].as_str().map(str::to_owned))
            .collect()
    };
    for email in EMAILS {
        let expected = scan(&|c| c["email"] == email);
        assert!(expected.len() <= 1, "an email on two contacts: {email}");
        assert_eq!(
            all_matches(&app, &format!("email={email}")).await,
            expected,
            "email={email}"
        );
    }
    for phone in PHONES {
        let expected = scan(&|c| c["phone"] == phone);
        let query = format!("phone={}", phone.replace('+', "%2B"));
        assert_eq!(all_matches(&app, &query).await, expected, "phone={phone}");
    }
    // The search rule, written plainly: a query word starts a word of the name or email,
    // with ë read as e and ü as u or ue.
    let words = |c: &Value| -> Vec<String> {
        let text = ["name", "email"]
            .iter()
            .filter_map(|f| c[*f].as_str())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
            .replace('ë', "e");
        text.split(|ch: char| !ch.is_alphanumeric())
            .flat_map(|word| [word.replace('ü', "u"), word.replace('ü', "ue")])
            .collect()
    };
    for query in ["ad", "mueller", "muller", "lovelace", "x", "zoe", "bo"] {
        let expected = scan(&|c| words(c).iter().any(|word| word.starts_with(query)));
        assert_eq!(all_matches(&app, &format!("q={query}")).await, expected, "q={query}");
    }
}

async fn imported_words_follow_the_edits_made_before_they_are_indexed(app: TestApp) {
    let imported = app
        .space(Method::POST, "/contacts/import")
        .json(json!({"contacts": [
            {"name": "Grace Hopper", "email": "grace@example.com"},
            {"name": "Alan Turing", "email": "alan@example.com"},
            {"name": "Edsger Dijkstra"}
        ]}))
        .send()
        .await
        .expect(200);
    let id = |n: usize| imported.body["results"][n]["id"].as_str().unwrap().to_owned();
    // Found by email at once; by word once the job ran.
    let by_email = app
        .space(Method::GET, "/contacts?email=alan@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(ids(&by_email.body), BTreeSet::from([id(1)]));
    // Edited and deleted before the job: the words are those of the contacts as they are.
    app.space(Method::PATCH, &format!("/contacts/{}", id(0)))
        .json(json!({"name": "Grace Brewster Murray"}))
        .send()
        .await
        .expect(200);
    app.space(Method::DELETE, &format!("/contacts/{}", id(2)))
        .send()
        .await
        .expect(204);
    app.worker_pass().await;
    let search = |q: &'static str| {
        let app = &app;
        async move {
            ids(&app
                .space(Method::GET, &format!("/contacts?q={q}"))
                .send()
                .await
                .expect(200)
                .body)
        }
    };
    assert_eq!(search("brewster").await, BTreeSet::from([id(0)]));
    assert_eq!(search("turing").await, BTreeSet::from([id(1)]));
    assert_eq!(search("hopper").await, BTreeSet::new());
    assert_eq!(search("dijkstra").await, BTreeSet::new());
    let entries = app
        .engine
        .store()
        .query(space_store::Query::partition(space_http::keys::search_partition(
            &app.demo.space_id,
            "contacts",
        )))
        .await
        .expect("the word index reads");
    let words: BTreeSet<&str> = entries
        .items
        .iter()
        .map(|e| space_http::index::entry_word(&e.sk))
        .collect();
    assert!(
        !words.contains("hopper") && !words.contains("dijkstra") && !words.contains("edsger"),
        "no word of a former version or of a deleted contact: {words:?}"
    );
    assert_eq!(search("grace").await, BTreeSet::from([id(0)]));
}

async fn search_ignores_case_and_accents_and_matches_word_beginnings(app: TestApp) {
    let mut id_of = std::collections::HashMap::new();
    for (name, email) in [
        ("Anna Müller", "anna@example.com"),
        ("Jörg Mueller", "joerg@example.com"),
        ("Zoë Saldaña", "zoe@films.example"),
        ("François Dupont", "fd@example.fr"),
        ("Ada Lovelace", "ada@engines.example"),
    ] {
        let contact = app.contact(json!({"name": name, "email": email})).await;
        id_of.insert(name, contact["id"].as_str().unwrap().to_owned());
    }
    let search = |q: &'static str| {
        let app = &app;
        async move {
            let page = app
                .space(Method::GET, &format!("/contacts?q={q}"))
                .send()
                .await
                .expect(200);
            assert_eq!(page.body["next_cursor"], Value::Null, "q={q}");
            ids(&page.body)
        }
    };
    let names = |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| id_of[n].clone()).collect() };
    assert_eq!(search("ZOE").await, names(&["Zoë Saldaña"]));
    assert_eq!(search("saldana").await, names(&["Zoë Saldaña"]));
    assert_eq!(search("fran%C3%A7").await, names(&["François Dupont"]));
    assert_eq!(search("muller").await, names(&["Anna Müller"]));
    assert_eq!(search("m%C3%BCller").await, names(&["Anna Müller"]));
    assert_eq!(search("mueller").await, names(&["Anna Müller", "Jörg Mueller"]));
    assert_eq!(search("love").await, names(&["Ada Lovelace"]));
    assert_eq!(search("ada%20love").await, names(&["Ada Lovelace"]));
    assert_eq!(search("ada%20dupont").await, names(&[]));
    assert_eq!(search("engines").await, names(&["Ada Lovelace"]), "email words");
    assert_eq!(
        search("ovelace").await,
        names(&[]),
        "word beginnings, not any substring"
    );
    assert_eq!(search("example").await.len(), 5);

    // An edit moves the words with it.
    let ada = &id_of["Ada Lovelace"];
    app.space(Method::PATCH, &format!("/contacts/{ada}"))
        .json(json!({"name": "Augusta King"}))
        .send()
        .await
        .expect(200);
    assert_eq!(search("love").await, names(&[]));
    assert_eq!(search("augusta").await, names(&["Ada Lovelace"]));
    app.space(Method::DELETE, &format!("/contacts/{ada}"))
        .send()
        .await
        .expect(204);
    assert_eq!(search("augusta").await, names(&[]));

    // Pages of a search: each match once, in word order, and the last page says so.
    let mut seen = BTreeSet::new();
    let mut cursor = String::new();
    for page_number in 0..3 {
        let page = app
            .space(Method::GET, &format!("/contacts?q=example&limit=2{cursor}"))
            .send()
            .await
            .expect(200);
        for id in ids(&page.body) {
            assert!(seen.insert(id), "a contact on two pages");
        }
        match page.body["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => {
                assert_eq!(page_number, 1, "4 matches in pages of 2: the second is the last");
                break;
            }
        }
    }
    assert_eq!(seen.len(), 4);
}

/// `first`, then `rows` more contacts: through the import on the embedded store (every
/// index entry written), straight into the table on moto (whose transactions are too slow
/// for thousands of imports; the needle still has its index entries, the hay needs none).
async fn haystack(app: &TestApp, first: Value, rows: usize) {
    app.contact(first).await;
    let person = |n: usize| json!({"name": format!("Person {n}"), "email": format!("p{n}@example.com")});
    if app.backend == Backend::Dynamodb {
        let partition = space_http::keys::collection_partition(&app.demo.space_id, "contacts");
        // Single puts, 16 at a time: moto copies the whole table for every transaction,
        // which under a full suite's load outlasts the SDK's timeout.
        let puts = (0..rows).map(|n| {
            let id = space_http::ids::new_id("con");
            let mut body = person(n);
            body["id"] = json!(id);
            body["tags"] = json!([]);
            let body = body.as_object().cloned().unwrap_or_default();
            let item = space_store::Item::new(partition.clone(), id, body);
            app.engine.store().put(item, space_store::Condition::NotExists)
        });
        let written: Vec<_> = futures::stream::iter(puts).buffer_unordered(16).collect().await;
        for result in written {
            result.expect("hay written");
        }
        return;
    }
    for start in (0..rows).step_by(1000) {
        let batch: Vec<Value> = (start..rows.min(start + 1000)).map(person).collect();
        let imported = app
            .space(Method::POST, "/contacts/import")
            .json(json!({"contacts": batch}))
            .send()
            .await
            .expect(200);
        let failed: Vec<Value> = data(&json!({"data": imported.body["results"]}))
            .into_iter()
            .filter(|r| r["status"] != "created")
            .take(3)
            .collect();
        assert_eq!(imported.body["failed"], 0, "first failures: {failed:?}");
    }
    // The imported rows' words.
    app.worker_pass().await;
}

async fn a_match_at_the_end_of_thousands_is_found_in_one_call(app: TestApp) {
    // The oldest of thousands of contacts: the last a newest-first list reaches, past the
    // 2,000 one page used to read (moto copies its whole table for every transaction, so
    // it gets fewer).
    let needle =
        json!({"name": "Needle Haystack", "email": "needle@example.com", "phone": "+12025550177", "tags": ["rare"]});
    let rows = match app.backend {
        Backend::Embedded => 5000,
        Backend::Dynamodb => 2100,
    };
    haystack(&app, needle, rows).await;
    for query in [
        "email=needle@example.com",
        "phone=%2B12025550177",
        "q=needle",
        "tag=rare",
        "q=haystack&tag=rare",
    ] {
        let page = app
            .space(Method::GET, &format!("/contacts?{query}"))
            .send()
            .await
            .expect(200);
        assert_eq!(data(&page.body).len(), 1, "{query}: {}", page.text);
        assert_eq!(data(&page.body)[0]["name"], "Needle Haystack");
        assert_eq!(page.body["next_cursor"], Value::Null, "{query}");
    }
    let nothing = app.space(Method::GET, "/contacts?tag=absent").send().await.expect(200);
    assert_eq!(nothing.body, json!({"data": [], "next_cursor": null}));
}

async fn a_page_that_ends_the_list_carries_no_cursor(app: TestApp) {
    for n in 0..6 {
        let tags = if n % 2 == 0 { json!(["even"]) } else { json!([]) };
        app.contact(json!({"name": format!("Member {n}"), "tags": tags})).await;
    }
    for (query, limit, pages) in [
        ("", 3, 2),
        ("", 6, 1),
        ("tag=even&", 3, 1),
        ("q=member&", 2, 3),
        ("tag=even&", 1, 3),
    ] {
        let mut cursor = String::new();
        for page_number in 1..=pages {
            let page = app
                .space(Method::GET, &format!("/contacts?{query}limit={limit}{cursor}"))
                .send()
                .await
                .expect(200);
            assert_eq!(data(&page.body).len(), limit, "{query} page {page_number}");
            match page.body["next_cursor"].as_str() {
                Some(next) if page_number < pages => cursor = format!("&cursor={next}"),
                None if page_number == pages => {}
                other => panic!("{query}limit={limit} page {page_number} of {pages}: cursor {other:?}"),
            }
        }
    }
    let first = app.space(Method::GET, "/contacts?limit=3").send().await.expect(200);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    app.space(Method::GET, &format!("/contacts?q=member&limit=3&cursor={cursor}"))
        .send()
        .await
        .expect(400);
}

async fn the_catalogue_documents_upsert_search_and_the_conflict(app: TestApp) {
    let spec = app
        .request(Method::GET, "/functions/v1/space-api/openapi.json")
        .send()
        .await
        .expect(200)
        .body;
    let schema = |reference: &Value| {
        let name = reference["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_default();
        spec["components"]["schemas"][name].clone()
    };
    let create = &spec["paths"]["/functions/v1/space-api/contacts"]["post"];
    let params = create["parameters"].as_array().unwrap();
    let upsert = params
        .iter()
        .find(|p| p["name"] == "upsert")
        .expect("upsert is documented");
    assert_eq!(schema(&upsert["schema"])["enum"], json!(["email"]));
    assert_eq!(upsert["in"], "query");
    assert!(create["responses"]["201"]["content"].is_object());
    let updated = &create["responses"]["200"];
    assert!(updated["description"].as_str().unwrap().contains("upsert"), "{updated}");
    let schema = |reference: &Value| {
        let name = reference["$ref"]
            .as_str()
            .and_then(|r| r.rsplit('/').next())
            .unwrap_or_default();
        spec["components"]["schemas"][name].clone()
    };
    assert_eq!(
        schema(&updated["content"]["application/json"]["schema"])["properties"]["email"]["pattern"],
        space_http::email::EMAIL_PATTERN
    );
    let conflict = &create["responses"]["409"];
    assert!(
        conflict["description"].as_str().unwrap().contains("existing_id"),
        "{conflict}"
    );
    assert!(
        schema(&spec["components"]["schemas"]["Error"]["properties"]["error"])["properties"]["existing_id"].is_object()
    );
    let patch = &spec["paths"]["/functions/v1/space-api/contacts/{id}"]["patch"];
    assert!(
        patch["responses"]["409"]["description"]
            .as_str()
            .unwrap()
            .contains("existing_id")
    );
    let list = &spec["paths"]["/functions/v1/space-api/contacts"]["get"];
    let described = |name: &str| {
        list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .and_then(|p| p["description"].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(described("q").contains("accents"), "{}", described("q"));
    assert!(described("email").contains("index"), "{}", described("email"));
    assert!(described("phone").contains("E.164"), "{}", described("phone"));

    // MCP tools come from the same catalogue.
    let listed = app
        .mcp(
            app.key(),
            "?toolsets=contacts&mode=operations",
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        )
        .send()
        .await
        .expect(200);
    let tools = listed.body["result"]["tools"].as_array().cloned().unwrap_or_default();
    let tool = |name: &str| tools.iter().find(|t| t["name"] == name).cloned().unwrap_or_default();
    let create_tool = tool("contacts_create");
    assert_eq!(
        create_tool["inputSchema"]["properties"]["upsert"]["enum"],
        json!(["email"]),
        "{create_tool}"
    );
    let list_tool = tool("contacts_list");
    for param in ["q", "email", "phone"] {
        assert!(
            list_tool["inputSchema"]["properties"][param]["description"].is_string(),
            "{list_tool}"
        );
    }
    let called = app
        .mcp(
            app.key(),
            "",
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                   "params": {"name": "contacts_create", "arguments": {"upsert": "email", "email": "mcp@example.com", "name": "Via MCP"}}}),
        )
        .send()
        .await
        .expect(200);
    assert_eq!(
        called.body["result"]["structuredContent"]["email"], "mcp@example.com",
        "{}",
        called.text
    );
}

/// Past the scan budget (10,000 items a call), contacts' filters all read indexes: a tag
/// finds its contacts among thousands in one call (oldest first, the index's order), and a
/// tag nothing carries is an empty page, not a scan. Embedded only: moto copies its table
/// for every transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tags_are_found_past_the_scan_budget_through_their_index() {
    let app = TestApp::embedded().await;
    let old = app
        .contact(json!({"name": "Old Friend", "email": "old@example.com", "tags": ["rare"]}))
        .await;
    haystack(&app, json!({"name": "Middle"}), 10_500).await;
    app.contact(json!({"name": "Recent", "tags": ["rare"]})).await;
    let found = app
        .space(Method::GET, "/contacts?tag=rare&limit=5")
        .send()
        .await
        .expect(200);
    let names: Vec<Value> = data(&found.body).iter().map(|c| c["name"].clone()).collect();
    assert_eq!(names, [json!("Old Friend"), json!("Recent")]);
    assert_eq!(data(&found.body)[0]["id"], old["id"]);
    assert_eq!(found.body["next_cursor"], Value::Null);
    let absent = app.space(Method::GET, "/contacts?tag=absent").send().await.expect(200);
    assert_eq!(absent.body, json!({"data": [], "next_cursor": null}));
    // The indexes reach what the scan cannot, in one call.
    let by_email = app
        .space(Method::GET, "/contacts?email=old@example.com")
        .send()
        .await
        .expect(200);
    assert_eq!(data(&by_email.body)[0]["id"], old["id"]);
    let by_word = app
        .space(Method::GET, "/contacts?q=friend&tag=rare")
        .send()
        .await
        .expect(200);
    assert_eq!(data(&by_word.body)[0]["id"], old["id"]);
    assert_eq!(by_word.body["next_cursor"], Value::Null);
}
