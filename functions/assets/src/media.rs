//! `/media`: files of a Space. Three ways in:
//!
//! - `POST /media` with multipart/form-data or base64 JSON, up to [`MAX_DIRECT_BYTES`];
//!   the item is `ready` at once.
//! - `POST /media/uploads` for anything up to [`MAX_UPLOAD_BYTES`]: the item starts
//!   `pending` with an upload URL (S3 presigned, or a signed local `PUT /u/{token}`); it
//!   turns `ready` when the bytes have arrived and passed the checks — on the local PUT
//!   itself, or on `POST /media/{id}/complete` after an upload straight to S3.
//!
//! Every way in checks the declared content type against the bytes. The bytes go to the
//! engine's blob store before the item is written, so a `ready` item always has them.

use std::time::Duration;

use bytes::Bytes;
use chrono::TimeDelta;
use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::fields::{CustomKind, Field, FieldKind, WriteMode, format_datetime, validate};
use space_http::ids::new_id;
use space_http::keys;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::resource::{CustomFilter, Filter, Resource};
use space_http::{ApiError, FieldErrors, Operation, Schema};
use space_store::blobs::{BlobStore, DownloadHeaders};
use space_store::{Condition, Item, StoreError, Write};

use crate::links::{Grant, Link, gone};
use crate::sniff;
use crate::upload;

/// The largest file `POST /media` takes in its body. Chosen so that the base64 JSON form
/// still fits a Lambda request (6 MB); larger files go through `POST /media/uploads`.
pub const MAX_DIRECT_BYTES: usize = 4 * 1024 * 1024;
/// The largest file a presigned upload may deliver.
pub const MAX_UPLOAD_BYTES: u64 = 100 * 1024 * 1024;
/// The body limit of `POST /media`: the file in base64 plus room for the other fields.
const DIRECT_BODY_LIMIT: usize = MAX_DIRECT_BYTES / 3 * 4 + 64 * 1024;
/// How long upload and download links work.
pub const LINK_SECONDS: i64 = 3600;
/// How much of a presigned upload is read to check its content type.
const SNIFF_BYTES: usize = 8192;
pub const STATUSES: &[&str] = &["pending", "ready"];
const MAX_FILENAME_CHARS: usize = 255;

/// Visitors holding a link: generous for downloads (pages embed images), tight for uploads.
const DOWNLOADS_PER_MINUTE: u32 = 600;
const UPLOADS_PER_MINUTE: u32 = 60;

/// The media resource: its editable metadata. `content_type`, `size` and `status` are the
/// server's, set from the bytes.
pub fn media() -> Resource {
    Resource {
        domain: Domain::Assets,
        name: "assets_media",
        collection: "media",
        path: "/media",
        item_param: "id",
        singular: "media item",
        plural: "media items",
        event_prefix: "media",
        id_prefix: "med",
        parent: None,
        fields: vec![
            Field::new("filename", FILENAME, "The file's name, e.g. `dot.png`.").required(),
            Field::new(
                "description",
                FieldKind::LongText { max: 2000 },
                "What the file shows or holds.",
            ),
            Field::new(
                "alt_text",
                FieldKind::Text { max: 1000 },
                "Alternative text for images.",
            ),
            Field::new("tags", FieldKind::Tags, "Labels.").default(|| Value::Array(Vec::new())),
        ],
        filters: vec![
            Filter::Equals {
                param: "status",
                field: "status",
                kind: FieldKind::Enum(STATUSES),
            },
            Filter::Custom(CustomFilter {
                param: "content_type",
                description: "Only items of this content type; `image/*` for every image.",
                schema: || json!({"type": "string", "pattern": CONTENT_TYPE_FILTER_PATTERN, "examples": ["image/png", "image/*"]}),
                parse: parse_type_filter,
                matches: type_matches,
            }),
            Filter::Search {
                param: "q",
                fields: &["filename", "description", "alt_text"],
            },
            Filter::HasTag {
                param: "tag",
                field: "tags",
            },
        ],
        rules: None,
    }
}

/// A transparent 1×1 PNG in base64: the example of an upload.
const ONE_PIXEL_PNG: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

/// A media type as JSON fields take it: `type/subtype`, each a token of at most 100
/// characters, then parameters if any (`; charset=utf-8`, which are not kept).
pub const CONTENT_TYPE_PATTERN: &str =
    "^[A-Za-z0-9!#$&^_.+-]{1,100}/[A-Za-z0-9!#$&^_.+-]{1,100}( *;[^\\x00-\\x1f\\x7f]*)?$";
/// The `content_type` filter: a media type, or `kind/*`.
const CONTENT_TYPE_FILTER_PATTERN: &str = "^[A-Za-z0-9!#$&^_.+-]{1,100}/([A-Za-z0-9!#$&^_.+-]{1,100}|\\*)$";

/// A media type written as [`CONTENT_TYPE_PATTERN`] says, in its canonical spelling.
fn declared_type(text: &str) -> Option<String> {
    let token = |part: &str| {
        (1..=100).contains(&part.len())
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    let (essence, parameters) = match text.split_once(';') {
        Some((essence, parameters)) => (essence.trim_end_matches(' '), Some(parameters)),
        None => (text, None),
    };
    let (kind, subtype) = essence.split_once('/')?;
    if !(token(kind) && token(subtype)) || parameters.is_some_and(|p| p.chars().any(|c| c.is_ascii_control())) {
        return None;
    }
    sniff::parse_content_type(essence)
}

fn parse_type_filter(raw: &str) -> Result<Value, String> {
    if let Some(kind) = raw.strip_suffix("/*") {
        if declared_type(&format!("{kind}/x")).is_some() {
            return Ok(json!(format!("{}/", kind.to_ascii_lowercase())));
        }
    } else if let Some(parsed) = declared_type(raw) {
        return Ok(json!(parsed));
    }
    Err("must be a content type like image/png, or image/* for a whole kind".into())
}

/// A file's name: no path separators or control characters, at most
/// [`MAX_FILENAME_CHARS`], not only dots and spaces; surrounding spaces are dropped.
const FILENAME: FieldKind = FieldKind::Custom(CustomKind {
    schema: || {
        json!({
            "type": "string",
            "maxLength": MAX_FILENAME_CHARS,
            "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f/\\\\]*[^\\x00-\\x20\\x7f-\\x9f/\\\\.][^\\x00-\\x1f\\x7f-\\x9f/\\\\]*$",
            "examples": ["dot.png"]
        })
    },
    check: |value| {
        let raw = value.as_str().ok_or("must be a string")?;
        let name = raw.trim_matches(' ');
        let valid = raw.chars().count() <= MAX_FILENAME_CHARS
            && !raw.chars().any(|c| c.is_control() || c == '/' || c == '\\')
            && name.chars().any(|c| c != ' ' && c != '.');
        if valid {
            Ok(json!(name))
        } else {
            Err(format!(
                "must be a file name like dot.png: at most {MAX_FILENAME_CHARS} characters, no path, not only dots"
            ))
        }
    },
});

fn type_matches(item: &Map<String, Value>, wanted: &Value, _now: chrono::DateTime<chrono::Utc>) -> bool {
    let (Some(have), Some(wanted)) = (item.get("content_type").and_then(Value::as_str), wanted.as_str()) else {
        return false;
    };
    if wanted.ends_with('/') {
        have.starts_with(wanted)
    } else {
        have == wanted
    }
}

/// A media item as the API returns it.
pub fn media_schema() -> Value {
    let mut schema = media().item_schema();
    let mut properties = schema["properties"]
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    properties.insert(
        "content_type".into(),
        json!({"type": "string", "description": "Checked against the bytes."}),
    );
    properties.insert(
        "size".into(),
        json!({"type": ["integer", "null"], "description": "Bytes; null until the upload arrives."}),
    );
    properties.insert("status".into(), json!({"type": "string", "enum": STATUSES, "description": "`pending` until the bytes have arrived and passed the checks."}));
    properties.insert(
        "download_url".into(),
        json!({"type": "string", "description": "Where to fetch the bytes (ready items, single-item responses); expires."}),
    );
    properties.insert(
        "download_expires_at".into(),
        json!({"type": "string", "format": "date-time"}),
    );
    properties.insert("upload".into(), upload_link_schema());
    schema["properties"] = Value::Object(properties);
    if let Some(required) = schema["required"].as_array_mut() {
        required.extend([json!("content_type"), json!("status")]);
    }
    schema
}

fn upload_link_schema() -> Value {
    json!({
        "type": "object",
        "description": "Pending items: send the file's bytes as the body of this request, then (for S3 URLs) POST /media/{id}/complete.",
        "required": ["method", "url", "headers", "expires_at"],
        "properties": {
            "method": {"type": "string", "enum": ["PUT"]},
            "url": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "expires_at": {"type": "string", "format": "date-time"}
        }
    })
}

/// The JSON form of a direct upload: the body schema of `POST /media`, and so the MCP tool.
fn direct_upload_schema() -> Value {
    let meta = media();
    let field = |name: &str| {
        meta.fields
            .iter()
            .find(|f| f.name == name)
            .map(Field::schema)
            .unwrap_or(Value::Null)
    };
    json!({
        "type": "object",
        "description": format!(
            "The file as JSON with its bytes in base64 (up to {MAX_DIRECT_BYTES} bytes decoded). Over REST the same fields also come as multipart/form-data, the bytes in a `file` part."
        ),
        "properties": {
            "filename": field("filename"),
            "content_type": {"type": "string", "pattern": CONTENT_TYPE_PATTERN, "description": "The file's media type, e.g. `image/png`; checked against the bytes.", "examples": ["image/png"]},
            "content_base64": {"type": "string", "pattern": upload::base64_pattern(), "contentEncoding": "base64", "description": "The file's bytes in padded base64, standard or URL-safe (a `data:` URL works too).", "examples": [ONE_PIXEL_PNG]},
            "description": field("description"),
            "alt_text": field("alt_text"),
            "tags": field("tags")
        },
        "required": ["filename", "content_type", "content_base64"],
        "additionalProperties": false
    })
}

fn upload_request_schema() -> Value {
    let meta = media();
    let field = |name: &str| {
        meta.fields
            .iter()
            .find(|f| f.name == name)
            .map(Field::schema)
            .unwrap_or(Value::Null)
    };
    json!({
        "type": "object",
        "properties": {
            "filename": field("filename"),
            "content_type": {"type": "string", "pattern": CONTENT_TYPE_PATTERN, "description": "The media type the upload will have; checked against the bytes when it arrives.", "examples": ["image/png"]},
            "size": {"type": "integer", "minimum": 1, "maximum": MAX_UPLOAD_BYTES, "description": "The file's size in bytes, if known; the upload must match it."},
            "description": field("description"),
            "alt_text": field("alt_text"),
            "tags": field("tags")
        },
        "required": ["filename", "content_type"],
        "additionalProperties": false
    })
}

pub fn too_large(limit: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "The file is larger than the {limit} bytes this route accepts; for large files POST /media/uploads for an upload URL."
    ))
}

fn blobs(call: &Call) -> Result<&dyn BlobStore, ApiError> {
    call.engine.blobs().ok_or_else(|| ApiError::Unavailable {
        message: "Media storage is not configured on this server.".into(),
        retry_after: 60,
    })
}

/// The name a file is stored under ([`FILENAME`]).
fn clean_filename(raw: &str) -> Result<String, String> {
    FILENAME
        .check(&json!(raw))
        .map(|name| name.as_str().unwrap_or_default().to_owned())
}

/// Checks the metadata of a new item: the file name, the declared content type and the
/// optional fields. Every problem at once.
fn check_new(
    filename: Option<&str>,
    content_type: Option<&str>,
    meta: &Map<String, Value>,
) -> Result<(Map<String, Value>, String), FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut body = meta.clone();
    match filename.map(clean_filename) {
        Some(Ok(name)) => {
            body.insert("filename".into(), json!(name));
        }
        Some(Err(message)) => {
            errors.insert("filename".into(), vec![message]);
        }
        None => {
            errors.insert("filename".into(), vec!["The filename field is required.".into()]);
        }
    }
    let declared = match content_type.map(|text| (text, declared_type(text))) {
        Some((_, Some(parsed))) => parsed,
        Some((text, None)) => {
            errors.insert(
                "content_type".into(),
                vec![format!("`{text}` is not a media type like image/png")],
            );
            String::new()
        }
        None => {
            errors.insert(
                "content_type".into(),
                vec!["The content_type field is required.".into()],
            );
            String::new()
        }
    };
    let set = match validate(&media().fields, &Value::Object(body), WriteMode::Create) {
        Ok(validated) => validated.set,
        Err(more) => {
            for (field, messages) in more {
                errors.entry(field).or_insert(messages);
            }
            Map::new()
        }
    };
    if errors.is_empty() {
        Ok((set, declared))
    } else {
        Err(errors)
    }
}

/// A new item's stored body.
fn new_item(
    call: &Call,
    set: Map<String, Value>,
    content_type: &str,
    status: &str,
    size: Option<u64>,
) -> Result<Item, ApiError> {
    let id = new_id("med");
    let now = format_datetime(call.engine.now());
    let mut body = Map::new();
    body.insert("id".into(), json!(id));
    body.extend(set);
    body.insert("content_type".into(), json!(content_type));
    body.insert("size".into(), json!(size));
    body.insert("status".into(), json!(status));
    body.insert("created_at".into(), json!(now));
    body.insert("updated_at".into(), json!(now));
    Ok(Item::new(media().partition(call)?, id, body))
}

fn blob_key(call: &Call, id: &str) -> Result<String, ApiError> {
    Ok(keys::media_blob(call.space_id()?, id))
}

fn disposition_type(content_type: &str) -> &'static str {
    let inline = matches!(
        content_type,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/avif" | "image/bmp"
    ) || content_type.starts_with("audio/")
        || content_type.starts_with("video/");
    if inline { "inline" } else { "attachment" }
}

/// `inline; filename="dot.png"; filename*=UTF-8''dot.png`: an ASCII fallback and the
/// exact name (RFC 6266).
pub fn content_disposition(filename: &str, content_type: &str) -> String {
    let fallback: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::with_capacity(filename.len());
    for byte in filename.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!(
        "{}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}",
        disposition_type(content_type)
    )
}

fn text<'a>(item: &'a Item, field: &str) -> &'a str {
    item.body.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// The item with its links: a download URL when ready, an upload URL while pending.
async fn render_with_links(call: &Call, item: &Item) -> Result<Value, ApiError> {
    let mut rendered = Resource::render(item);
    let Some(blobs) = call.engine.blobs() else {
        return Ok(rendered);
    };
    let expires = call.engine.now() + TimeDelta::seconds(LINK_SECONDS);
    let lifetime = Duration::from_secs(LINK_SECONDS as u64);
    let key = blob_key(call, &item.sk)?;
    let content_type = text(item, "content_type");
    let local = |grant| {
        Ok::<_, ApiError>(
            Link {
                space: call.space_id()?.to_owned(),
                media_id: item.sk.clone(),
                grant,
                expires_at: expires.timestamp(),
            }
            .url(&call.engine),
        )
    };
    if text(item, "status") == "ready" {
        let headers = DownloadHeaders {
            content_type: content_type.to_owned(),
            content_disposition: content_disposition(text(item, "filename"), content_type),
        };
        let url = match blobs.presign_get(&key, &headers, lifetime).await? {
            Some(presigned) => presigned.url,
            None => local(Grant::Download)?,
        };
        rendered["download_url"] = json!(url);
        rendered["download_expires_at"] = json!(format_datetime(expires));
    } else {
        let (url, headers) = match blobs.presign_put(&key, content_type, lifetime).await? {
            Some(presigned) => (presigned.url, presigned.headers),
            None => (local(Grant::Upload)?, Vec::new()),
        };
        let mut headers: Map<String, Value> = headers.into_iter().map(|(k, v)| (k, json!(v))).collect();
        if !headers.keys().any(|k| k.eq_ignore_ascii_case("content-type")) {
            headers.insert("Content-Type".into(), json!(content_type));
        }
        rendered["upload"] = json!({
            "method": "PUT",
            "url": url,
            "headers": headers,
            "expires_at": format_datetime(expires),
        });
    }
    Ok(rendered)
}

/// `POST /media`: multipart, base64 JSON, or (over MCP) the JSON already parsed.
async fn create(call: Call) -> Result<Reply, ApiError> {
    let blobs = blobs(&call)?;
    let upload = upload::read(&call).await?;
    if upload.bytes.len() > MAX_DIRECT_BYTES {
        return Err(too_large(MAX_DIRECT_BYTES as u64));
    }
    let (set, declared) = check_new(upload.filename.as_deref(), upload.content_type.as_deref(), &upload.meta)
        .map_err(ApiError::validation)?;
    if upload.bytes.is_empty() {
        return Err(ApiError::invalid_field(
            upload.bytes_field,
            "is empty; send the file's bytes",
        ));
    }
    let content_type = sniff::check(&declared, &upload.bytes, true)
        .map_err(|message| ApiError::invalid_field("content_type", message))?;
    let item = new_item(&call, set, &content_type, "ready", Some(upload.bytes.len() as u64))?;
    let key = blob_key(&call, &item.sk)?;
    blobs.put(&key, &content_type, upload.bytes).await?;
    let writes = vec![
        Write::put(item.clone(), Condition::NotExists),
        media().event(&call, "created", &item)?,
    ];
    if let Err(error) = call.engine.store().transact(writes).await {
        forget_blob(blobs, &key).await;
        return Err(error.into());
    }
    Ok(Reply::created(render_with_links(&call, &item).await?).with_etag(item.version))
}

/// Removes a blob whose item was never written or is gone; a failure only leaves an
/// unreachable object behind, so it is logged, not answered.
async fn forget_blob(blobs: &dyn BlobStore, key: &str) {
    if let Err(error) = blobs.delete(key).await {
        tracing::warn!(%error, key, "could not delete a media blob");
    }
}

/// `POST /media/uploads`: a pending item and where to send its bytes.
async fn start_upload(call: Call) -> Result<Reply, ApiError> {
    blobs(&call)?;
    let Some(body) = call.body.as_object() else {
        return Err(ApiError::invalid_field(
            "body",
            "must be a JSON object with filename and content_type",
        ));
    };
    let mut errors = FieldErrors::new();
    let mut meta = Map::new();
    let mut size = None;
    for (name, value) in body {
        match name.as_str() {
            "filename" | "content_type" => {}
            "size" => match space_http::fields::whole_number(value).and_then(|bytes| u64::try_from(bytes).ok()) {
                Some(bytes) if bytes > MAX_UPLOAD_BYTES => return Err(too_large(MAX_UPLOAD_BYTES)),
                Some(bytes) if bytes > 0 => size = Some(bytes),
                _ => {
                    errors.insert(
                        "size".into(),
                        vec![format!("must be a whole number of bytes from 1 to {MAX_UPLOAD_BYTES}")],
                    );
                }
            },
            _ if ["description", "alt_text", "tags"].contains(&name.as_str()) => {
                meta.insert(name.clone(), value.clone());
            }
            _ => {
                errors.insert(name.clone(), vec!["is not accepted; send filename, content_type, and optionally size, description, alt_text, tags".into()]);
            }
        }
    }
    let string = |name: &str| body.get(name).and_then(Value::as_str);
    for name in ["filename", "content_type"] {
        if body.get(name).is_some_and(|v| !v.is_string() && !v.is_null()) {
            errors.insert(name.into(), vec!["must be a string".into()]);
        }
    }
    let checked = check_new(string("filename"), string("content_type"), &meta);
    let (set, declared) = match checked {
        Ok(checked) if errors.is_empty() => checked,
        Ok(_) => return Err(ApiError::validation(errors)),
        Err(more) => {
            for (field, messages) in more {
                errors.entry(field).or_insert(messages);
            }
            return Err(ApiError::validation(errors));
        }
    };
    let mut item = new_item(&call, set, &declared, "pending", None)?;
    if let Some(size) = size {
        item.body.insert("expected_size".into(), json!(size));
    }
    let writes = vec![
        Write::put(item.clone(), Condition::NotExists),
        media().event(&call, "created", &item)?,
    ];
    call.engine.store().transact(writes).await?;
    Ok(Reply::created(render_with_links(&call, &item).await?).with_etag(item.version))
}

/// Checks arrived bytes (`prefix` is all of them when `complete`), and answers what the
/// item's content type is to be.
fn check_arrival(item: &Item, size: u64, prefix: &[u8], complete: bool) -> Result<String, ApiError> {
    if size > MAX_UPLOAD_BYTES {
        return Err(too_large(MAX_UPLOAD_BYTES));
    }
    if size == 0 {
        return Err(ApiError::invalid_field("file", "is empty; send the file's bytes"));
    }
    if let Some(expected) = item.body.get("expected_size").and_then(Value::as_u64)
        && expected != size
    {
        return Err(ApiError::invalid_field(
            "size",
            format!("the upload has {size} bytes, not the {expected} announced"),
        ));
    }
    sniff::check(text(item, "content_type"), prefix, complete)
        .map_err(|message| ApiError::invalid_field("content_type", message))
}

/// Marks a pending item ready, with its `media.uploaded` event.
async fn mark_ready(call: &Call, current: &Item, size: u64, content_type: String) -> Result<Item, ApiError> {
    let mut next = current.clone();
    next.version = current.version + 1;
    next.body.insert("status".into(), json!("ready"));
    next.body.insert("size".into(), json!(size));
    next.body.insert("content_type".into(), json!(content_type));
    next.body.remove("expected_size");
    next.body
        .insert("updated_at".into(), json!(format_datetime(call.engine.now())));
    let writes = vec![
        Write::put(next.clone(), Condition::Version(current.version)),
        media().event(call, "uploaded", &next)?,
    ];
    match call.engine.store().transact(writes).await {
        Ok(()) => Ok(next),
        Err(StoreError::TransactionConflict { index: 0 }) => Err(ApiError::Conflict(
            "The media item changed while the upload was being completed; read it again.".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// `POST /media/{id}/complete`: after a presigned upload straight to the blob store.
async fn complete(call: Call) -> Result<Reply, ApiError> {
    let blobs = blobs(&call)?;
    let id = call.path_param("id")?.to_owned();
    let item = media().load(&call, &id).await?;
    if text(&item, "status") == "ready" {
        return Ok(Reply::ok(render_with_links(&call, &item).await?).with_etag(item.version));
    }
    call.check_if_match(item.version)?;
    let key = blob_key(&call, &id)?;
    let Some(info) = blobs.info(&key).await? else {
        return Err(ApiError::Conflict(
            "No bytes have arrived for this upload yet: PUT the file to its upload URL, then complete it.".into(),
        ));
    };
    let prefix = blobs.read_prefix(&key, SNIFF_BYTES).await?.unwrap_or_default();
    let complete = (prefix.len() as u64) >= info.size;
    let content_type = match check_arrival(&item, info.size, &prefix, complete) {
        Ok(content_type) => content_type,
        Err(error) => {
            // The bytes are refused: clear them so a corrected upload can follow.
            forget_blob(blobs, &key).await;
            return Err(error);
        }
    };
    let ready = mark_ready(&call, &item, info.size, content_type).await?;
    Ok(Reply::ok(render_with_links(&call, &ready).await?).with_etag(ready.version))
}

/// `PUT /u/{token}`: a signed local upload; completes the item when the bytes pass.
async fn receive(call: Call) -> Result<Reply, ApiError> {
    let link = Link::open(&call.engine, call.path_param("token")?, Grant::Upload)?;
    let mut call = call;
    space_http::public::enter_space(&mut call, &link.space, gone).await?;
    let blobs = blobs(&call)?;
    let item = media().load(&call, &link.media_id).await?;
    if text(&item, "status") != "pending" {
        return Err(ApiError::Conflict("This upload has already been completed.".into()));
    }
    let bytes: Bytes = call.raw.as_ref().map(|raw| raw.bytes.clone()).unwrap_or_default();
    let content_type = check_arrival(&item, bytes.len() as u64, &bytes, true)?;
    let key = blob_key(&call, &item.sk)?;
    let size = bytes.len() as u64;
    blobs.put(&key, &content_type, bytes).await?;
    let ready = mark_ready(&call, &item, size, content_type).await?;
    Ok(Reply::ok(render_with_links(&call, &ready).await?).with_etag(ready.version))
}

/// `GET /d/{token}`: the bytes, with their type and a disposition that keeps the name.
async fn download(call: Call) -> Result<Reply, ApiError> {
    let link = Link::open(&call.engine, call.path_param("token")?, Grant::Download)?;
    let mut call = call;
    space_http::public::enter_space(&mut call, &link.space, gone).await?;
    let blobs = blobs(&call)?;
    let item = media().load(&call, &link.media_id).await?;
    let missing = || ApiError::NotFound("This file is no longer available.".into());
    if text(&item, "status") != "ready" {
        return Err(missing());
    }
    let bytes = blobs.get(&blob_key(&call, &item.sk)?).await?.ok_or_else(missing)?;
    let content_type = text(&item, "content_type").to_owned();
    Ok(Reply::raw(StatusCode::OK, content_type.clone(), bytes)
        .with_header(
            "content-disposition",
            content_disposition(text(&item, "filename"), &content_type),
        )
        .with_header("x-content-type-options", "nosniff")
        .with_header("content-security-policy", "default-src 'none'; sandbox")
        .with_header("cache-control", "private, max-age=300"))
}

async fn get(call: Call) -> Result<Reply, ApiError> {
    let item = media().load(&call, call.path_param("id")?).await?;
    Ok(Reply::ok(render_with_links(&call, &item).await?).with_etag(item.version))
}

/// `DELETE /media/{id}`: the item and its event, then the bytes.
async fn delete(call: Call) -> Result<Reply, ApiError> {
    let resource = media();
    let id = call.path_param("id")?.to_owned();
    let current = resource.load(&call, &id).await?;
    call.check_if_match(current.version)?;
    let writes = vec![
        Write::delete(
            current.pk.clone(),
            current.sk.clone(),
            Condition::Version(current.version),
        ),
        resource.event(&call, "deleted", &current)?,
    ];
    match call.engine.store().transact(writes).await {
        Ok(()) => {}
        Err(StoreError::TransactionConflict { index: 0 }) => {
            return Err(ApiError::PreconditionFailed(
                "The media item changed while it was being deleted; read it again.".into(),
            ));
        }
        Err(error) => return Err(error.into()),
    }
    if let Some(blobs) = call.engine.blobs() {
        forget_blob(blobs, &blob_key(&call, &id)?).await;
    }
    Ok(Reply::no_content())
}

pub fn operations() -> Vec<Operation> {
    let write = Access::Space(Scope::new(Domain::Assets, Action::Write));
    let read = Access::Space(Scope::new(Domain::Assets, Action::Read));
    let id = || vec![Param::path("id", "The media item's id.")];
    let token = || vec![Param::path("token", "The signed token of the link.")];
    let mut generated = media().operations().into_iter();
    let mut take = |name: &str| generated.find(|op| op.name == name);
    let list = take("assets_media_list").map(|op| Operation {
        response: Some(Schema::lazy(|| space_http::resource::list_schema(media_schema()))),
        ..op
    });
    let update = take("assets_media_update").map(|op| Operation {
        summary: "Update a media item's name, description, alt text or tags".into(),
        response: Some(Schema::lazy(media_schema).named("MediaItem")),
        ..op
    });
    let schema = Schema::lazy(media_schema).named("MediaItem");
    let mut operations: Vec<Operation> = list.into_iter().collect();
    operations.push(
        Operation::new(
            "assets_media_create",
            Method::POST,
            "/media",
            write,
            Effect::Create,
            format!("Upload a file of up to {MAX_DIRECT_BYTES} bytes: JSON with content_base64, or multipart/form-data with a `file` part"),
            handler(create),
        )
        .with_body(Schema::lazy(direct_upload_schema).named("MediaCreate"))
        .with_raw_body(Some(DIRECT_BODY_LIMIT))
        .answers(StatusCode::CREATED, schema.clone()),
    );
    operations.push(
        Operation::new(
            "assets_media_uploads_create",
            Method::POST,
            "/media/uploads",
            write,
            Effect::Create,
            format!(
                "Start an upload of up to {MAX_UPLOAD_BYTES} bytes: a pending media item and a URL to PUT the bytes to"
            ),
            handler(start_upload),
        )
        .with_body(Schema::lazy(upload_request_schema).named("MediaUploadCreate"))
        .answers(StatusCode::CREATED, schema.clone()),
    );
    operations.push(
        Operation::new(
            "assets_media_get",
            Method::GET,
            "/media/{id}",
            read,
            Effect::Read,
            "Get a media item with a download URL",
            handler(get),
        )
        .with_params(id())
        .answers(StatusCode::OK, schema.clone()),
    );
    operations.extend(update);
    operations.push(
        Operation::new(
            "assets_media_complete",
            Method::POST,
            "/media/{id}/complete",
            write,
            Effect::Update,
            "Complete an upload sent to its upload URL: checks the bytes and makes the item ready",
            handler(complete),
        )
        .with_params(id())
        .answers(StatusCode::OK, schema.clone()),
    );
    operations.push(
        Operation::new(
            "assets_media_delete",
            Method::DELETE,
            "/media/{id}",
            write,
            Effect::Delete,
            "Delete a media item and its file",
            handler(delete),
        )
        .with_params(id())
        .answers_no_content(),
    );
    let upload_limit = usize::try_from(MAX_UPLOAD_BYTES).unwrap_or(usize::MAX);
    operations.push(
        Operation::new(
            "assets_media_upload_receive",
            Method::PUT,
            "/u/{token}",
            Access::Public {
                per_minute: UPLOADS_PER_MINUTE,
            },
            Effect::Update,
            "Receive the bytes of an upload at its signed local URL (servers without S3)",
            handler(receive),
        )
        .with_params(token())
        .with_raw_body(Some(upload_limit))
        // A bad or expired link is refused before up to 100 MB of body is taken in.
        .admitted_by(|engine, path| {
            let token = path.get("token").map(String::as_str).unwrap_or_default();
            Link::open(engine, token, Grant::Upload).map(|_| ())
        })
        .answers(StatusCode::OK, schema),
    );
    operations.push(
        Operation::new(
            "assets_media_download",
            Method::GET,
            "/d/{token}",
            Access::Public {
                per_minute: DOWNLOADS_PER_MINUTE,
            },
            Effect::Read,
            "Download a file at its signed local URL (servers without S3)",
            handler(download),
        )
        .with_params(token())
        // The file's own type, whatever it was uploaded as.
        .answers_as(StatusCode::OK, &["*/*"]),
    );
    operations
}

/// For the characters family: the media partition of the calling Space.
pub fn partition(call: &Call) -> Result<String, ApiError> {
    media().partition(call)
}
