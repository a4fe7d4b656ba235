//! Reading a direct upload (`POST /media`) in either of its two shapes: multipart/form-data
//! with a `file` part, or JSON with the bytes in base64 (what MCP clients send; over MCP
//! the JSON arrives already parsed, with no raw body).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use space_http::operation::Call;
use space_http::rest::{essence, is_json, parse_json};
use space_http::{ApiError, FieldErrors};

use crate::media::{MAX_DIRECT_BYTES, too_large};

/// One file as the client sent it, before any check of its content.
pub struct Upload {
    pub filename: Option<String>,
    /// The declared content type, as sent.
    pub content_type: Option<String>,
    pub bytes: Bytes,
    /// Which input field carried the bytes (`file` or `content_base64`), for messages.
    pub bytes_field: &'static str,
    /// `description`, `alt_text`, `tags`: validated later with the resource's fields.
    pub meta: Map<String, Value>,
}

const META_FIELDS: &[&str] = &["description", "alt_text", "tags"];

const HOW: &str = "send multipart/form-data with a `file` part, or JSON {\"filename\", \"content_type\", \"content_base64\"}; \
                   for files over the direct limit, POST /media/uploads for an upload URL";

/// Reads the upload of `call`, whichever way it came.
pub async fn read(call: &Call) -> Result<Upload, ApiError> {
    let Some(raw) = &call.raw else {
        return from_json(&call.body);
    };
    if raw.bytes.is_empty() {
        return Err(ApiError::invalid_field("body", format!("is empty: {HOW}")));
    }
    let kind = essence(&raw.content_type);
    if kind == "multipart/form-data" {
        from_multipart(&raw.content_type, raw.bytes.clone()).await
    } else if is_json(&raw.content_type) {
        from_json(&parse_json(raw)?)
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "`{}` is not an upload format here: {HOW}.",
            if kind.is_empty() {
                "no content type"
            } else {
                kind.as_str()
            }
        )))
    }
}

fn from_json(body: &Value) -> Result<Upload, ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field("body", format!("must be a JSON object: {HOW}")));
    };
    let mut errors = FieldErrors::new();
    let mut text = |name: &str| match object.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.insert(name.to_owned(), vec!["must be a string".into()]);
            None
        }
    };
    let filename = text("filename");
    let content_type = text("content_type");
    let encoded = text("content_base64");
    let mut meta = Map::new();
    for (name, value) in object {
        if META_FIELDS.contains(&name.as_str()) {
            meta.insert(name.clone(), value.clone());
        } else if !matches!(name.as_str(), "filename" | "content_type" | "content_base64") {
            errors.insert(
                name.clone(),
                vec!["is not accepted; send filename, content_type, content_base64 and optionally description, alt_text, tags".into()],
            );
        }
    }
    for (name, present) in [
        ("filename", filename.is_some()),
        ("content_type", content_type.is_some()),
    ] {
        if !present && !errors.contains_key(name) {
            errors.insert(name.into(), vec![format!("The {name} field is required.")]);
        }
    }
    let bytes = match encoded {
        Some(encoded) => match decode_base64(&encoded) {
            Ok(bytes) => Some(bytes),
            Err(DecodeError::TooLarge) => return Err(too_large(MAX_DIRECT_BYTES as u64)),
            Err(DecodeError::Invalid) => {
                errors.insert(
                    "content_base64".into(),
                    vec!["must be the file's bytes in base64".into()],
                );
                None
            }
        },
        None => {
            errors
                .entry("content_base64".into())
                .or_insert_with(|| vec!["The content_base64 field is required.".into()]);
            None
        }
    };
    match bytes {
        Some(bytes) if errors.is_empty() => Ok(Upload {
            filename,
            content_type,
            bytes,
            bytes_field: "content_base64",
            meta,
        }),
        _ => Err(ApiError::validation(errors)),
    }
}

enum DecodeError {
    TooLarge,
    Invalid,
}

/// Standard or URL-safe base64, padded or not, line breaks allowed, optionally as a
/// `data:` URL.
/// What `content_base64` takes: padded base64 in the standard or the URL-safe alphabet
/// (not both), with zero trailing bits, optionally behind a `data:…;base64,` prefix.
pub fn base64_pattern() -> String {
    let body = |alphabet: &str| {
        let tail = format!("{alphabet}[AQgw]==|{alphabet}{{2}}[AEIMQUYcgkosw048]=");
        format!("(?:{alphabet}{{4}})+(?:{tail})?|{tail}")
    };
    format!(
        "^(?:data:[^,]*;base64,)?(?:{}|{})$",
        body("[A-Za-z0-9+/]"),
        body("[A-Za-z0-9_-]")
    )
}

fn decode_base64(text: &str) -> Result<Bytes, DecodeError> {
    let text = match text.strip_prefix("data:") {
        Some(rest) => rest
            .split_once(";base64,")
            .map(|(_, data)| data)
            .ok_or(DecodeError::Invalid)?,
        None => text,
    };
    // Canonical and padded, as BASE64_PATTERN says: groups of four, no spaces.
    let compact = text;
    if compact.is_empty() || compact.len() % 4 != 0 {
        return Err(DecodeError::Invalid);
    }
    if compact.len() / 4 * 3 > MAX_DIRECT_BYTES + 3 {
        return Err(DecodeError::TooLarge);
    }
    let config = GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let alphabet = if compact.contains(['-', '_']) {
        &alphabet::URL_SAFE
    } else {
        &alphabet::STANDARD
    };
    GeneralPurpose::new(alphabet, config)
        .decode(compact.as_bytes())
        .map(Bytes::from)
        .map_err(|_| DecodeError::Invalid)
}

async fn from_multipart(content_type: &str, body: Bytes) -> Result<Upload, ApiError> {
    let malformed = |error: multer::Error| ApiError::BadRequest(format!("The multipart body is malformed: {error}."));
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| ApiError::BadRequest("A multipart/form-data body needs a boundary in its Content-Type.".into()))?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut errors = FieldErrors::new();
    let mut file: Option<(Option<String>, Option<String>, Bytes)> = None;
    let mut filename = None;
    let mut declared = None;
    let mut meta = Map::new();
    let mut tags: Vec<Value> = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                let part_name = field.file_name().map(str::to_owned);
                let part_type = field.content_type().map(|mime| mime.essence_str().to_owned());
                let bytes = field.bytes().await.map_err(malformed)?;
                if file.replace((part_name, part_type, bytes)).is_some() {
                    errors.insert("file".into(), vec!["send exactly one file per request".into()]);
                }
            }
            "filename" | "content_type" | "description" | "alt_text" | "tags" => {
                let value = field.text().await.map_err(malformed)?;
                match name.as_str() {
                    "filename" => filename = Some(value),
                    "content_type" => declared = Some(value),
                    // `tags` may repeat, or hold a comma-separated list.
                    "tags" => tags.extend(
                        value
                            .split(',')
                            .map(str::trim)
                            .filter(|t| !t.is_empty())
                            .map(|t| json!(t)),
                    ),
                    _ => {
                        meta.insert(name, Value::String(value));
                    }
                }
            }
            "" => {
                errors.insert("body".into(), vec!["every multipart part needs a name".into()]);
            }
            _ => {
                errors.insert(
                    name,
                    vec!["is not accepted; send `file` and optionally filename, content_type, description, alt_text, tags".into()],
                );
            }
        }
    }
    if !tags.is_empty() {
        meta.insert("tags".into(), Value::Array(tags));
    }
    let Some((part_name, part_type, bytes)) = file else {
        errors
            .entry("file".into())
            .or_insert_with(|| vec!["The file part is required.".into()]);
        return Err(ApiError::validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    // A browser may name the file with its path (`C:\\fakepath\\dot.png`): keep the name.
    let part_name = part_name.map(|name| name.rsplit(['/', '\\']).next().unwrap_or_default().to_owned());
    Ok(Upload {
        filename: filename.or(part_name),
        content_type: declared.or(part_type),
        bytes,
        bytes_field: "file",
        meta,
    })
}
