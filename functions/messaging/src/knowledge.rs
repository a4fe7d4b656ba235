//! The knowledge base: articles (markdown) an agent answers customers from, found by a
//! ranked word search (`GET /knowledge?q=`).
//!
//! Two word indexes, so that a long body never has to fit one transaction:
//!
//! - **title words**, `SPACE#<space>#SEARCH#knowledge` / `<word>#<id>`: written with the
//!   article in its own transaction by the resource ([`Filter::IndexedSearch`] on `title`,
//!   at most [`index::MAX_WORDS`] words), so a title match is found the moment the write
//!   answers;
//! - **all words** (title and body), `SPACE#<space>#SEARCH#knowledge_body` / `<word>#<id>`:
//!   written after the change by the [`INDEX`] job, in batches, up to [`MAX_INDEXED_WORDS`]
//!   words per article. It is eventually consistent: a body word added by an edit is found
//!   once the job ran (a worker pass, usually within a second).
//!
//! The job keeps, per article, the words it may have written (`SPACE#<space>#knowledge_words`
//! / `<id>`): before writing it records the union of what was there and what will be, after
//! writing it records exactly what is there. A job stopped half-way thus leaves a record
//! that covers every entry it may have written, and the next run deletes what the article
//! no longer holds. Runs for one article take turns through the record's version.
//!
//! A search reads the title index, then the all-words index, each on the query's longest
//! word (a range of sort keys, never the articles' partition), and checks every candidate
//! against the article as it is now: an edit or a deletion stops a stale entry from
//! matching at once, whatever the job has done yet. Title matches come first; an article
//! matched in its title is not repeated among the body matches.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use space_auth::Domain;
use space_http::cursor::{self, Position};
use space_http::fields::{Field, FieldKind, WriteMode, validate};
use space_http::index::{self, entry_word, query_words, words_match, words_up_to};
use space_http::keys::{self, ItemKey};
use space_http::listing::{SCAN_BUDGET, Source};
use space_http::operation::{Call, Handler, Reply, handler};
use space_http::resource::{CustomFilter, Filter, PageRequest, Resource, parse_bool};
use space_http::{ApiError, Engine, FieldErrors};
use space_store::{Condition, Item, MAX_TRANSACTION_WRITES, StoreError, Write};
use space_worker::{Handler as JobHandler, Job, JobError, NewJob, Outcome};

/// The articles' collection, and the scope of their title index.
pub const COLLECTION: &str = "knowledge";
/// The scope of the all-words index (`keys::search_partition`).
pub const BODY_SCOPE: &str = "knowledge_body";
/// Where the job records the words it may have indexed, per article.
const WORDS_COLLECTION: &str = "knowledge_words";
/// The job that writes an article's words to the all-words index.
pub const INDEX: &str = "messaging.knowledge_index";

pub const MAX_TITLE: usize = 200;
/// An article's body, in characters.
pub const MAX_BODY: usize = 20_000;
/// Distinct words of one article the all-words index holds at most (a body of the
/// largest size rarely has a third of this).
pub const MAX_INDEXED_WORDS: usize = 10_000;
/// A query, in characters.
const MAX_QUERY: usize = 200;
/// Runs of the job that find the record moved under them before giving up for a retry.
const TURNS: usize = 5;

/// What `?q=` does, for the list's documentation.
pub const SEARCH_RULE: &str = "Words to find: each word of the query must start a word of the article's title or \
     body, ignoring case and accents (`cafe` finds Café, `ret` finds Returns). Articles whose title holds every \
     word come first, then those matched in their body; within each, by the matching word. The first page of \
     matches comes in one call and `next_cursor` is null once there are no more. Titles are searched as soon \
     as an article is written; body words are indexed right after the write (eventually consistent, usually \
     within a second).";

/// The article resource.
pub fn articles() -> Resource {
    Resource {
        domain: Domain::Messaging,
        name: "messaging_knowledge",
        collection: COLLECTION,
        path: "/knowledge",
        item_param: "id",
        singular: "article",
        plural: "articles",
        event_prefix: "article",
        id_prefix: "kb",
        parent: None,
        fields: vec![
            Field::new("title", FieldKind::Text { max: MAX_TITLE }, "The article's title.").required(),
            Field::new(
                "body",
                FieldKind::LongText { max: MAX_BODY },
                "The article, in markdown.",
            )
            .required(),
            Field::new("tags", FieldKind::Tags, "Labels, e.g. `billing`.").default(|| json!([])),
            Field::new(
                "published",
                FieldKind::Boolean,
                "Whether customers may be shown it; a draft until true.",
            )
            .default(|| json!(false)),
        ],
        filters: vec![
            // Keeps the title index in the article's transactions; `q` itself is answered
            // by [`search`].
            Filter::IndexedSearch {
                param: "q",
                fields: &["title"],
            },
            Filter::Custom(CustomFilter {
                param: "published",
                description: "`true`: only published articles; `false`: only drafts.",
                schema: || json!({"type": "boolean"}),
                parse: parse_bool,
                matches: |article, wanted, _| article.get("published") == Some(wanted),
            }),
            Filter::HasTag {
                param: "tag",
                field: "tags",
            },
        ],
        rules: None,
    }
}

/// The job that indexes article `id`'s words, enqueued in the transaction of its change.
fn index_job(call: &Call, id: &str) -> Result<Write, ApiError> {
    Ok(NewJob::new(
        INDEX,
        json!({"space_id": call.space_id()?, "article_id": id}),
        call.engine.now(),
    )
    .write())
}

/// `POST /knowledge`: the article, its title words and its indexing job, in one transaction.
pub fn create() -> Handler {
    handler(|call: Call| async move {
        let resource = articles();
        let (item, mut writes) = resource
            .prepare_create(&call, &call.body)
            .map_err(ApiError::validation)?;
        writes.push(index_job(&call, &item.sk)?);
        call.engine.store().transact(writes).await?;
        Ok(Reply::created(Resource::render(&item)).with_etag(item.version))
    })
}

/// `PATCH` and `PUT`: the change, its title words and a new indexing job, in one transaction.
pub fn write(mode: WriteMode) -> Handler {
    handler(move |call: Call| async move {
        let resource = articles();
        let validated = validate(&resource.fields, &call.body, mode).map_err(ApiError::validation)?;
        let id = call.path_param("id")?.to_owned();
        let item = resource
            .modify_with(
                &call,
                &id,
                |body| {
                    validated.apply(body, mode, &space_http::resource::BASE_FIELDS);
                    Ok(())
                },
                |next| Ok(vec![index_job(&call, &next.sk)?]),
            )
            .await?;
        Ok(Reply::ok(Resource::render(&item)).with_etag(item.version))
    })
}

/// `DELETE /knowledge/{id}`: the article and its title words go at once; the job removes its
/// body words.
pub fn delete() -> Handler {
    handler(|call: Call| async move {
        let resource = articles();
        let id = call.path_param("id")?.to_owned();
        let current = resource.load(&call, &id).await?;
        call.check_if_match(current.version)?;
        let mut writes = vec![
            Write::delete(
                current.pk.clone(),
                current.sk.clone(),
                Condition::Version(current.version),
            ),
            resource.event(&call, "deleted", &current)?,
        ];
        writes.extend(resource.index_writes(&call, Some(&current), None)?);
        writes.push(index_job(&call, &id)?);
        match call.engine.store().transact(writes).await {
            Ok(()) => Ok(Reply::no_content()),
            Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::PreconditionFailed(
                "The article changed while it was being deleted; read it again.".into(),
            )),
            Err(error) => Err(error.into()),
        }
    })
}

fn text<'a>(article: &'a Map<String, Value>, field: &str) -> &'a str {
    article.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// The words of the title as the title index holds them.
fn title_words(article: &Map<String, Value>) -> Vec<String> {
    index::index_words([text(article, "title")])
}

/// The words of the title and body as the all-words index holds them.
fn all_words(article: &Map<String, Value>) -> Vec<String> {
    words_up_to([text(article, "title"), text(article, "body")], MAX_INDEXED_WORDS)
}

/// `GET /knowledge`: the ranked search when `q` has words, the resource's list otherwise.
pub fn list(plain: Handler) -> Handler {
    handler(move |call: Call| {
        let plain = plain.clone();
        async move {
            let query = match call.query_param("q") {
                Some(raw) if raw.chars().count() > MAX_QUERY => {
                    return Err(ApiError::invalid_field(
                        "q",
                        format!("must be at most {MAX_QUERY} characters"),
                    ));
                }
                Some(raw) => query_words(raw),
                None => Vec::new(),
            };
            if query.is_empty() {
                let mut call = call;
                call.query.remove("q");
                return plain(call).await;
            }
            search(&call, query).await
        }
    })
}

/// Where a search is: in the title matches or the body matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Title,
    Body,
}

impl Phase {
    fn mark(self) -> char {
        match self {
            Phase::Title => 't',
            Phase::Body => 'b',
        }
    }
}

/// The position a search cursor holds: the phase, then the sort key of the last entry read.
fn position(phase: Phase, sk: &str) -> String {
    format!("{}{sk}", phase.mark())
}

fn parse_position(text: &str) -> Option<(Phase, String)> {
    let mut chars = text.chars();
    let phase = match chars.next()? {
        't' => Phase::Title,
        'b' => Phase::Body,
        _ => return None,
    };
    Some((phase, chars.as_str().to_owned()))
}

async fn search(call: &Call, query: Vec<String>) -> Result<Reply, ApiError> {
    let mut errors = FieldErrors::new();
    let published = match call.query_param("published").map(parse_bool) {
        None => None,
        Some(Ok(value)) => Some(value),
        Some(Err(message)) => {
            errors.insert("published".into(), vec![message]);
            None
        }
    };
    let tag = call.query_param("tag").map(|tag| json!(tag.trim()));
    let page = PageRequest::from_call(call, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let space = call.space_id()?;
    let items = keys::collection_partition(space, COLLECTION);
    let longest = query
        .iter()
        .max_by_key(|word| word.chars().count())
        .cloned()
        .unwrap_or_default();
    let source = |phase: Phase| Source::Entries {
        index: keys::search_partition(
            space,
            match phase {
                Phase::Title => COLLECTION,
                Phase::Body => BODY_SCOPE,
            },
        ),
        range: space_store::SortRange::BeginsWith(longest.clone()),
        items: items.clone(),
    };
    // A cursor opens for this search only: this Space, these words, these filters.
    let binding = format!(
        "{}|q={}|published={}|tag={}",
        keys::search_partition(space, COLLECTION),
        query.join(" "),
        published.as_ref().map_or(String::new(), Value::to_string),
        tag.as_ref().map_or(String::new(), Value::to_string)
    );
    let key = call.engine.cursor_key();
    let (mut phase, mut after) = match &page.cursor {
        None => (Phase::Title, None),
        Some(text) => {
            let opened =
                cursor::open(key, &binding, text).map_err(|e| ApiError::BadRequest(format!("Invalid cursor: {e}.")))?;
            let (phase, sk) = parse_position(&opened.last_sk)
                .ok_or_else(|| ApiError::BadRequest("Invalid cursor: not one of this search.".into()))?;
            (phase, Some(sk))
        }
    };
    let seal = |last: String| {
        json!(cursor::seal(
            key,
            &binding,
            &Position {
                last_sk: last,
                descending: false
            }
        ))
    };
    let filters_hold = |article: &Map<String, Value>| {
        published
            .as_ref()
            .is_none_or(|wanted| article.get("published") == Some(wanted))
            && tag.as_ref().is_none_or(|wanted| {
                article
                    .get("tags")
                    .and_then(Value::as_array)
                    .is_some_and(|tags| tags.contains(wanted))
            })
    };
    // An article counts once per phase: at the first of its words that the longest query
    // word starts, and in the body phase only if its title does not match.
    let keep = |phase: Phase, sk: &str, article: &Map<String, Value>| {
        if !filters_hold(article) {
            return false;
        }
        let titled = title_words(article);
        let title_match = words_match(&titled, &query);
        let words = match phase {
            Phase::Title if !title_match => return false,
            Phase::Title => titled,
            Phase::Body if title_match => return false,
            Phase::Body => all_words(article),
        };
        if phase == Phase::Body && !words_match(&words, &query) {
            return false;
        }
        words
            .iter()
            .filter(|word| word.starts_with(longest.as_str()))
            .min()
            .is_some_and(|first| first == entry_word(sk))
    };
    let mut data: Vec<Value> = Vec::with_capacity(page.limit);
    let mut last_kept: Option<String> = None;
    let mut examined = 0usize;
    let mut chunk = page.limit + 1;
    loop {
        let (candidates, more) = source(phase).read(call, after.clone(), chunk, false).await?;
        for candidate in candidates {
            examined += 1;
            if let Some(item) = candidate
                .item
                .filter(|item| keep(phase, &candidate.position, &item.body))
            {
                if data.len() == page.limit {
                    // A match beyond the page: the next page starts right after this one.
                    let next = last_kept.map_or(Value::Null, seal);
                    return Ok(Reply::ok(json!({"data": data, "next_cursor": next})));
                }
                data.push(Resource::render(&item));
                last_kept = Some(position(phase, &candidate.position));
            }
            after = Some(candidate.position);
        }
        if !more {
            match phase {
                Phase::Title => {
                    phase = Phase::Body;
                    after = None;
                    chunk = page.limit + 1;
                    continue;
                }
                Phase::Body => return Ok(Reply::ok(json!({"data": data, "next_cursor": null}))),
            }
        }
        if examined >= SCAN_BUDGET {
            return match after {
                Some(sk) if !data.is_empty() => Ok(Reply::ok(
                    json!({"data": data, "next_cursor": seal(position(phase, &sk))}),
                )),
                _ => Err(ApiError::invalid_field(
                    "q",
                    format!(
                        "No article among the {SCAN_BUDGET} index entries read from this position matched every \
                         word: add a longer or rarer word."
                    ),
                )),
            };
        }
        chunk = (chunk * 2).min(1000).min(SCAN_BUDGET - examined);
    }
}

/// An article as the API shows it.
pub fn schema() -> Value {
    articles().item_schema()
}

/// Writes one article's words to the all-words index (see the module's documentation).
pub struct IndexWords;

/// What the job's record says: the words that may be in the index, whether they are
/// exactly those, and the record's version (`None`: no record).
struct Record {
    words: BTreeSet<String>,
    exact: bool,
    version: Option<u64>,
}

fn record_key(space: &str, id: &str) -> ItemKey {
    keys::resource(&keys::collection_partition(space, WORDS_COLLECTION), id)
}

fn read_record(item: Option<Item>) -> Record {
    match item {
        None => Record {
            words: BTreeSet::new(),
            exact: true,
            version: None,
        },
        Some(item) => Record {
            words: item
                .body
                .get("words")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default(),
            exact: item.body.get("exact").and_then(Value::as_bool).unwrap_or(false),
            version: Some(item.version),
        },
    }
}

/// The record `words` at the version after `current`, written only if it is still at
/// `current`.
fn record_write(key: &ItemKey, words: &BTreeSet<String>, exact: bool, current: Option<u64>) -> Write {
    let mut body = Map::new();
    body.insert("words".into(), json!(words));
    body.insert("exact".into(), json!(exact));
    let item = Item::new(key.pk.clone(), key.sk.clone(), body).with_version(current.map_or(1, |v| v + 1));
    Write::put(item, current.map_or(Condition::NotExists, Condition::Version))
}

/// How one turn of the job ended.
enum Turn {
    Done,
    /// Another run moved the record, or the article changed: look again.
    Again,
}

impl IndexWords {
    async fn turn(engine: &Engine, space: &str, id: &str) -> Result<Turn, StoreError> {
        let store = engine.store();
        let live = keys::space_meta(space);
        let at = record_key(space, id);
        let articles = keys::collection_partition(space, COLLECTION);
        let (record, article, space_item) = tokio::try_join!(
            store.get(&at.pk, &at.sk),
            store.get(&articles, id),
            store.get(&live.pk, &live.sk)
        )?;
        if space_item.is_none() {
            // The Space is deleted: its purge removes what is there.
            return Ok(Turn::Done);
        }
        let record = read_record(record);
        let wanted: BTreeSet<String> = article
            .as_ref()
            .map(|article| all_words(&article.body).into_iter().collect())
            .unwrap_or_default();
        if record.exact && record.words == wanted {
            if article.is_none()
                && let Some(version) = record.version
            {
                store.delete(&at.pk, &at.sk, Condition::Version(version)).await?;
            }
            return Ok(Turn::Done);
        }
        // 1. The record covers what is there and what will be, before either is touched.
        let covering: BTreeSet<String> = record.words.union(&wanted).cloned().collect();
        let check = || Write::check(live.pk.clone(), live.sk.clone(), Condition::Exists);
        let widened = store
            .transact(vec![check(), record_write(&at, &covering, false, record.version)])
            .await;
        match widened {
            Ok(()) => {}
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => return Ok(Turn::Again),
            Err(error) => return Err(error),
        }
        let widened_version = record.version.map_or(1, |v| v + 1);
        // 2. The entries: what the record was sure of is not written again.
        let entry = |word: &str| keys::search_entry(space, BODY_SCOPE, word, id);
        let stale: Vec<(String, String)> = record
            .words
            .difference(&wanted)
            .map(|word| {
                let key = entry(word);
                (key.pk, key.sk)
            })
            .collect();
        let new: Vec<&String> = if record.exact {
            wanted.difference(&record.words).collect()
        } else {
            wanted.iter().collect()
        };
        for batch in new.chunks(MAX_TRANSACTION_WRITES - 1) {
            let mut writes = vec![check()];
            for word in batch {
                let key = entry(word);
                let mut body = Map::new();
                body.insert("id".into(), json!(id));
                writes.push(Write::put(Item::new(key.pk, key.sk, body), Condition::None));
            }
            match store.transact(writes).await {
                Ok(()) => {}
                // The Space was deleted meanwhile: the purge takes what was written.
                Err(StoreError::ConditionFailed | StoreError::TransactionConflict { index: 0 }) => {
                    return Ok(Turn::Done);
                }
                Err(error) => return Err(error),
            }
        }
        if !stale.is_empty() {
            store.delete_many(stale).await?;
        }
        // 3. The record says exactly what is there; gone with the article.
        let settled = if article.is_none() {
            store.delete(&at.pk, &at.sk, Condition::Version(widened_version)).await
        } else {
            store
                .transact(vec![record_write(&at, &wanted, true, Some(widened_version))])
                .await
        };
        match settled {
            Ok(()) => {}
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => return Ok(Turn::Again),
            Err(error) => return Err(error),
        }
        // An edit while this ran enqueued its own job; reading again here saves it the work.
        let now = store.get(&articles, id).await?;
        let moved = match (&article, &now) {
            (Some(before), Some(after)) => before.version != after.version,
            (None, None) => false,
            _ => true,
        };
        Ok(if moved { Turn::Again } else { Turn::Done })
    }
}

#[async_trait]
impl JobHandler for IndexWords {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let text = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let (space, id) = (text("space_id")?, text("article_id")?);
        for _ in 0..TURNS {
            if let Turn::Done = Self::turn(engine, space, id).await? {
                return Ok(Outcome::Done);
            }
        }
        Err(JobError::Retry(format!(
            "the words of article {id} kept moving while they were indexed"
        )))
    }
}
