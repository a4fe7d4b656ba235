//! Checking a declared content type against the bytes. `infer` recognizes binary formats
//! by their magic numbers; its text heuristics (HTML, XML, shell) are not used, since
//! plain text that starts with `<p>` is not an HTML file.

use infer::MatcherType;

/// `type/subtype`, lowercase, without parameters; `None` unless it looks like one.
pub fn parse_content_type(text: &str) -> Option<String> {
    let essence = text.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |part: &str| {
        !part.is_empty()
            && part.len() <= 100
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&^_.+-".contains(&b))
    };
    (token(kind) && token(subtype)).then(|| canonical(&essence).to_owned())
}

/// One name for each type that travels under several.
fn canonical(essence: &str) -> &str {
    match essence {
        "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/x-png" => "image/png",
        "image/x-icon" | "image/ico" => "image/vnd.microsoft.icon",
        "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg" => "audio/mpeg",
        "audio/wav" | "audio/wave" | "audio/vnd.wave" => "audio/x-wav",
        "audio/flac" => "audio/x-flac",
        "audio/x-m4a" | "audio/mp4" => "audio/m4a",
        "audio/aiff" => "audio/x-aiff",
        "video/avi" | "video/msvideo" => "video/x-msvideo",
        "application/x-zip-compressed" | "application/x-zip" => "application/zip",
        "application/x-gzip" => "application/gzip",
        "application/x-pdf" => "application/pdf",
        "font/woff" => "application/font-woff",
        "font/ttf" | "font/otf" | "font/sfnt" => "application/font-sfnt",
        "application/x-rar-compressed" => "application/vnd.rar",
        other => other,
    }
}

/// Types whose bytes must be text.
fn is_textual(essence: &str) -> bool {
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-ndjson"
                | "application/yaml"
        )
}

/// ZIP-based formats, which `infer` may report as plain ZIP or the other way round.
fn is_zip_based(essence: &str) -> bool {
    essence == "application/zip"
        || essence == "application/epub+zip"
        || essence == "application/java-archive"
        || essence.starts_with("application/vnd.openxmlformats-officedocument.")
        || essence.starts_with("application/vnd.oasis.opendocument.")
}

/// A binary format recognized from the first bytes, if any.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    infer::get(bytes)
        .filter(|found| found.matcher_type() != MatcherType::Text)
        .map(|found| canonical(found.mime_type()))
        .filter(|mime| *mime != "application/octet-stream")
}

fn compatible(declared: &str, found: &str) -> bool {
    if declared == found {
        return true;
    }
    // Audio in a video container (and the reverse) shares its magic numbers.
    let same_container = |a: &str, b: &str| {
        a.split_once('/')
            .zip(b.split_once('/'))
            .is_some_and(|((ka, sa), (kb, sb))| sa == sb && matches!((ka, kb), ("audio", "video") | ("video", "audio")))
    };
    same_container(declared, found)
        || (declared == "audio/m4a" && found == "video/mp4")
        || (is_zip_based(declared) && is_zip_based(found))
}

/// The content type to store for `bytes` declared as `declared` (already parsed), or why
/// the two disagree. `application/octet-stream` declares nothing and takes what the bytes
/// show. `complete` is false when `bytes` is only the start of the file.
pub fn check(declared: &str, bytes: &[u8], complete: bool) -> Result<String, String> {
    let found = sniff(bytes);
    if declared == "application/octet-stream" {
        return Ok(found.unwrap_or(declared).to_owned());
    }
    match found {
        Some(found) if compatible(declared, found) => Ok(declared.to_owned()),
        Some(found) => Err(format!("is `{declared}`, but the bytes are `{found}`")),
        None if is_textual(declared) => {
            if is_text(bytes, complete) {
                Ok(declared.to_owned())
            } else {
                Err(format!("is `{declared}`, but the bytes are not UTF-8 text"))
            }
        }
        None if infer::is_mime_supported(declared) && !declared.starts_with("text/") => {
            Err(format!("is `{declared}`, but the bytes are not a `{declared}` file"))
        }
        None => Ok(declared.to_owned()),
    }
}

/// UTF-8 without NUL bytes; a character cut off at the end of a prefix is fine.
fn is_text(bytes: &[u8], complete: bool) -> bool {
    if bytes.contains(&0) {
        return false;
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(error) => !complete && error.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

    #[test]
    fn content_types_parse_to_their_canonical_essence() {
        assert_eq!(parse_content_type("Image/JPG; q=1").as_deref(), Some("image/jpeg"));
        assert_eq!(
            parse_content_type("text/plain; charset=utf-8").as_deref(),
            Some("text/plain")
        );
        for bad in ["", "png", "image/", "/png", "image/p ng", "a/b/c"] {
            assert_eq!(parse_content_type(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn declared_types_must_match_the_bytes() {
        assert_eq!(check("image/png", PNG, true).as_deref(), Ok("image/png"));
        assert!(check("image/jpeg", PNG, true).unwrap_err().contains("image/png"));
        assert!(check("image/png", b"just text", true).is_err());
        assert!(check("text/plain", PNG, true).is_err());
        assert_eq!(
            check("text/plain", "<p>hé</p>".as_bytes(), true).as_deref(),
            Ok("text/plain")
        );
        assert!(check("text/plain", b"\xff\xfe\x00", true).is_err());
        assert_eq!(
            check("image/svg+xml", b"<?xml version=\"1.0\"?><svg/>", true).as_deref(),
            Ok("image/svg+xml")
        );
        assert_eq!(check("application/octet-stream", PNG, true).as_deref(), Ok("image/png"));
        assert_eq!(
            check("application/x-custom", b"\x01\x02", true).as_deref(),
            Ok("application/x-custom")
        );
        // A prefix may end inside a character.
        assert!(check("text/plain", &"é".as_bytes()[..1], false).is_ok());
        assert!(check("text/plain", &"é".as_bytes()[..1], true).is_err());
    }
}
