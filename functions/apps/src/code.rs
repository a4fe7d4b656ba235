//! `PUT /apps/{id}/code` and `GET /apps/{id}/code`: the app's files, a map of relative
//! paths to text. Every bad path and every oversized file is named in one 422.

use http::{Method, StatusCode};
use serde_json::{Map, Value, json};
use space_auth::{Action, Domain, Scope};
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::{ApiError, FieldErrors, Operation};

use crate::drafts::{self, CODE};

pub const MAX_FILES: usize = 100;
/// Per file and in total, in bytes of UTF-8. The total keeps a version (code and schema)
/// inside one DynamoDB item (400 KB).
pub const MAX_FILE_BYTES: usize = 128 * 1024;
pub const MAX_TOTAL_BYTES: usize = 256 * 1024;
pub const MAX_PATH_CHARS: usize = 200;
pub const MAX_DEPTH: usize = 8;

/// Checks one file path: relative, `/`-separated segments of letters, digits, `.`, `-`
/// and `_`, none empty, `.` or `..`; at most [`MAX_DEPTH`] segments and
/// [`MAX_PATH_CHARS`] characters.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("a path must not be empty".into());
    }
    if path.chars().count() > MAX_PATH_CHARS {
        return Err(format!("a path has at most {MAX_PATH_CHARS} characters"));
    }
    if path.starts_with('/') {
        return Err("must be relative, without a leading /".into());
    }
    if path.contains('\\') {
        return Err("must separate folders with /, not \\".into());
    }
    let segments: Vec<&str> = path.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err("must not have empty segments (// or a trailing /)".into());
    }
    if segments.iter().any(|s| *s == "." || *s == "..") {
        return Err("must not contain . or .. segments".into());
    }
    if segments.len() > MAX_DEPTH {
        return Err(format!("must be at most {MAX_DEPTH} levels deep"));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/'))
    {
        return Err("may only contain letters, digits, '.', '-', '_' and '/'".into());
    }
    Ok(())
}

/// [`check_path`] as a pattern: segments of letters, digits, `.`, `-` and `_` that are not
/// `.` or `..`, joined by `/`, at most [`MAX_DEPTH`] of them.
fn path_pattern() -> String {
    let segment = "([A-Za-z0-9_-][A-Za-z0-9._-]*|\\.[A-Za-z0-9_-][A-Za-z0-9._-]*|\\.\\.[A-Za-z0-9._-]+)";
    format!("^{segment}(/{segment}){{0,{}}}$", MAX_DEPTH - 1)
}

/// The error key naming one file: `files[index.html]`.
fn file_key(path: &str) -> String {
    let shown: String = path.chars().take(MAX_PATH_CHARS).collect();
    format!("files[{shown}]")
}

/// The checked file map of a `PUT /apps/{id}/code` body.
fn parse(body: &Value) -> Result<(Map<String, Value>, usize), ApiError> {
    let Some(object) = body.as_object() else {
        return Err(ApiError::invalid_field(
            "body",
            "send {\"files\": {\"index.html\": \"…\"}}",
        ));
    };
    let mut errors = FieldErrors::new();
    for name in object.keys().filter(|k| *k != "files") {
        errors.insert(name.clone(), vec!["is not accepted; send only `files`".into()]);
    }
    let Some(files) = object.get("files").and_then(Value::as_object) else {
        errors.insert(
            "files".into(),
            vec!["must be an object of file paths to their text, like {\"index.html\": \"…\"}".into()],
        );
        return Err(ApiError::validation(errors));
    };
    if files.is_empty() {
        errors.insert("files".into(), vec!["must hold at least one file".into()]);
    }
    if files.len() > MAX_FILES {
        errors.insert(
            "files".into(),
            vec![format!("holds {} files; an app has at most {MAX_FILES}", files.len())],
        );
    }
    let mut total = 0usize;
    for (path, content) in files {
        let mut problems = Vec::new();
        if let Err(message) = check_path(path) {
            problems.push(message);
        }
        match content.as_str() {
            Some(text) if text.len() > MAX_FILE_BYTES => {
                problems.push(format!("is {} bytes; a file has at most {MAX_FILE_BYTES}", text.len()));
            }
            Some(text) => total += text.len(),
            None => problems.push("must be the file's text, as a string".into()),
        }
        if !problems.is_empty() {
            errors.insert(file_key(path), problems);
        }
    }
    if total > MAX_TOTAL_BYTES {
        errors.entry("files".into()).or_default().push(format!(
            "the files hold {total} bytes; an app has at most {MAX_TOTAL_BYTES}"
        ));
    }
    if errors.is_empty() {
        Ok((files.clone(), total))
    } else {
        Err(ApiError::validation(errors))
    }
}

/// What a code write answers, and its event carries: everything but the contents.
fn summary(files: &Map<String, Value>, total: usize) -> Value {
    json!({"paths": files.keys().collect::<Vec<_>>(), "file_count": files.len(), "total_bytes": total})
}

async fn put(call: Call) -> Result<Reply, ApiError> {
    let (files, total) = parse(&call.body)?;
    let summary = summary(&files, total);
    let mut body = Map::new();
    body.insert("files".into(), Value::Object(files));
    body.insert("file_count".into(), summary["file_count"].clone());
    body.insert("total_bytes".into(), json!(total));
    let item = drafts::replace(&call, CODE, body, "code_updated", summary).await?;
    let mut shown = drafts::render(&item);
    if let Some(object) = shown.as_object_mut()
        && let Some(Value::Object(files)) = object.remove("files")
    {
        object.insert("paths".into(), json!(files.keys().collect::<Vec<_>>()));
    }
    Ok(Reply::ok(shown).with_etag(item.version))
}

async fn get(call: Call) -> Result<Reply, ApiError> {
    match drafts::load(&call, CODE).await? {
        Some(item) => Ok(Reply::ok(drafts::render(&item)).with_etag(item.version)),
        None => Ok(Reply::ok(json!({
            "app_id": call.path_param("id")?,
            "files": {},
            "file_count": 0,
            "total_bytes": 0,
            "updated_at": null,
            "version": 0
        }))),
    }
}

fn code_schema(with_files: bool) -> Value {
    let mut properties = json!({
        "app_id": {"type": "string"},
        "file_count": {"type": "integer"},
        "total_bytes": {"type": "integer"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "version": {"type": "integer", "description": "0 while the app has no code."}
    });
    if with_files {
        properties["files"] = json!({"type": "object", "additionalProperties": {"type": "string"}});
    } else {
        properties["paths"] = json!({"type": "array", "items": {"type": "string"}});
    }
    json!({"type": "object", "properties": properties, "required": ["app_id", "file_count", "total_bytes", "version"]})
}

pub fn operations() -> Vec<Operation> {
    let id = || vec![Param::path("id", "The app's id.")];
    vec![
        Operation::new(
            "apps_code_get",
            Method::GET,
            "/apps/{id}/code",
            Access::Space(Scope::new(Domain::Apps, Action::Read)),
            Effect::Read,
            "Get an app's draft files",
            handler(get),
        )
        .with_params(id())
        .answers(StatusCode::OK, || code_schema(true)),
        Operation::new(
            "apps_code_put",
            Method::PUT,
            "/apps/{id}/code",
            Access::Space(Scope::new(Domain::Apps, Action::Write)),
            Effect::Replace,
            "Replace an app's draft files",
            handler(put),
        )
        .with_params(id())
        .with_description(format!("The files hold at most {MAX_TOTAL_BYTES} bytes in all; otherwise 422."))
        .with_body(|| json!({
            "type": "object",
            "properties": {
                "files": {
                    "type": "object",
                    "description": format!(
                        "File paths (relative, `/`-separated, letters, digits, `.`, `-`, `_`; at most {MAX_DEPTH} levels and {MAX_PATH_CHARS} characters) to their text. At most {MAX_FILES} files, {MAX_FILE_BYTES} bytes each, {MAX_TOTAL_BYTES} in all."
                    ),
                    "additionalProperties": {"type": "string", "maxLength": MAX_FILE_BYTES},
                    "propertyNames": {"maxLength": MAX_PATH_CHARS, "pattern": path_pattern()},
                    "maxProperties": MAX_FILES,
                    "examples": [{"index.html": "<h1>Hello</h1>"}]
                }
            },
            "required": ["files"],
            "additionalProperties": false
        }))
        .answers(StatusCode::OK, || code_schema(false)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_relative_plain_and_shallow() {
        for good in [
            "index.html",
            "assets/app.js",
            "a/b/c/d/e/f/g/h.txt",
            ".well-known/x",
            "x-y_z.1",
        ] {
            assert_eq!(check_path(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "/index.html",
            "../x",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "a b",
            "ä.html",
            "a/b/c/d/e/f/g/h/i",
        ] {
            assert!(check_path(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_path(&"a".repeat(MAX_PATH_CHARS + 1)).is_err());
    }

    #[test]
    fn the_schema_pattern_says_what_check_path_checks() {
        let pattern = jsonschema::validator_for(&json!({"type": "string", "pattern": path_pattern()})).unwrap();
        for path in [
            "index.html",
            "assets/app.js",
            "a/b/c/d/e/f/g/h.txt",
            ".well-known/x",
            "x-y_z.1",
            "...",
            "a/.b/..c",
            "",
            "/index.html",
            "../x",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "a\\b",
            "a b",
            "ä.html",
            "a/b/c/d/e/f/g/h/i",
            ".",
            "..",
        ] {
            assert_eq!(pattern.is_valid(&json!(path)), check_path(path).is_ok(), "{path:?}");
        }
    }

    #[test]
    fn every_bad_file_is_named() {
        let body = json!({"files": {"ok.html": "x", "../up": "x", "/abs": "y", "big.js": "z".repeat(MAX_FILE_BYTES + 1), "n": 1}});
        let error = parse(&body).unwrap_err();
        let fields = error.fields().unwrap();
        let names: Vec<&str> = fields.keys().map(String::as_str).collect();
        assert_eq!(names, ["files[../up]", "files[/abs]", "files[big.js]", "files[n]"]);
    }
}
