//! What a feed request asks for: `types`, `resource_id` and `after`, each parsed once at
//! the edge so that a bad value is a 422 naming its parameter and never reaches the store.

use serde_json::{Map, Value};
use space_http::events::{EVENT_ID_PREFIX, TypePattern, parse_types};
use space_http::ids::has_shape;
use space_http::operation::Call;
use space_http::resource::PageRequest;
use space_http::{ApiError, FieldErrors};

/// Longest `resource_id` accepted (ids are ~30 characters, secret names up to 128).
const MAX_RESOURCE_ID_CHARS: usize = 255;

/// A feed request, checked: which events to keep and where the page starts.
#[derive(Debug, Clone)]
pub struct FeedQuery {
    pub types: Option<Vec<TypePattern>>,
    pub resource_id: Option<String>,
    pub page: PageRequest,
}

impl FeedQuery {
    /// Reads every parameter, so one 422 names all the bad ones.
    pub fn from_call(call: &Call) -> Result<FeedQuery, ApiError> {
        let mut errors = FieldErrors::new();
        let mut page = PageRequest::from_call(call, &mut errors);
        let types = call.query_param("types").and_then(|raw| {
            parse_types(raw)
                .map_err(|e| errors.insert("types".into(), vec![e.to_string()]))
                .ok()
        });
        let resource_id = call.query_param("resource_id").and_then(|raw| {
            if raw.is_empty() || raw.chars().count() > MAX_RESOURCE_ID_CHARS {
                let message = format!("must be a resource id of 1 to {MAX_RESOURCE_ID_CHARS} characters");
                errors.insert("resource_id".into(), vec![message]);
                None
            } else {
                Some(raw.to_owned())
            }
        });
        if let Some(raw) = call.query_param("after") {
            if has_shape(raw, EVENT_ID_PREFIX) {
                // Ids are minted lowercase; ULIDs read the same in either case.
                page.start_after = Some(raw.to_ascii_lowercase());
            } else {
                errors.insert(
                    "after".into(),
                    vec!["must be an event id, like evt_01jd4x2k9v8c3r5t7w0y6z1a2b".into()],
                );
            }
            // Polling reads forward from the event it names.
            if call.query_param("order") == Some("desc") {
                errors.insert(
                    "order".into(),
                    vec!["`after` lists oldest first: leave out `order` or use asc".into()],
                );
            }
            page.descending = false;
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(FeedQuery {
            types,
            resource_id,
            page,
        })
    }

    /// Whether a stored event is one the request asks for.
    pub fn keeps(&self, stored: &Map<String, Value>) -> bool {
        let text = |name: &str| stored.get(name).and_then(Value::as_str).unwrap_or_default();
        let kind = text("type");
        self.types
            .as_ref()
            .is_none_or(|patterns| patterns.iter().any(|pattern| pattern.matches(kind)))
            && self.resource_id.as_deref().is_none_or(|id| text("subject_id") == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use space_http::events::{MAX_PATTERNS, PatternError};

    #[test]
    fn exact_types_and_wildcards_parse() {
        assert_eq!(
            parse_types("contact.*, page.published"),
            Ok(vec![
                TypePattern::Prefix("contact.".into()),
                TypePattern::Exact("page.published".into())
            ])
        );
        assert_eq!(
            parse_types("calendar_event.*"),
            Ok(vec![TypePattern::Prefix("calendar_event.".into())])
        );
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for bad in [
            "contact",
            "**",
            "contact*",
            ".created",
            "contact.",
            "Contact.created",
            "contact.*.x",
            "a..b",
            "contact.cre ated",
            "contact.**",
            "1contact.created",
        ] {
            assert!(matches!(parse_types(bad), Err(PatternError::Malformed(_))), "{bad}");
        }
        assert_eq!(parse_types("*"), Ok(vec![TypePattern::Any]), "everything");
        assert_eq!(parse_types(""), Err(PatternError::Empty));
        assert_eq!(parse_types(" , "), Err(PatternError::Empty));
        assert!(matches!(parse_types("contact.*,"), Err(PatternError::Malformed(_))));
        let many = vec!["contact.*"; MAX_PATTERNS + 1].join(",");
        assert_eq!(parse_types(&many), Err(PatternError::TooMany));
        let long = format!("{}.created", "a".repeat(200));
        assert!(matches!(parse_types(&long), Err(PatternError::Malformed(_))));
    }

    #[test]
    fn a_wildcard_matches_only_its_own_prefix() {
        let contact = TypePattern::parse("contact.*").expect("a wildcard");
        assert!(contact.matches("contact.created"));
        assert!(contact.matches("contact.note.created"));
        assert!(!contact.matches("contacts.created"));
        assert!(!contact.matches("contact"));
        let exact = TypePattern::parse("page.published").expect("a type");
        assert!(exact.matches("page.published"));
        assert!(!exact.matches("page.published.again"));
    }
}
