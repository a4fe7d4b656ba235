//! Slugs: the page's address in its Space (`/p/{space_id}/{slug}`), unique there through
//! a claim item written with a conditional put in the page's own transaction.

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use space_http::ApiError;
use space_http::fields::{CustomKind, FieldKind};
use space_http::keys::{self, ItemKey};
use space_http::operation::Call;
use space_store::{Condition, Item, Query, SortRange, Write};

pub const MAX_SLUG_CHARS: usize = 80;
/// A derived slug leaves room for a `-NNN` suffix.
const MAX_DERIVED_CHARS: usize = 64;
/// What the uniqueness claims of page slugs are called.
const CLAIM: &str = "page-slug";

pub fn slug_kind() -> FieldKind {
    FieldKind::Custom(CustomKind {
        schema: slug_schema,
        check: check_slug,
    })
}

fn slug_schema() -> Value {
    json!({
        "type": "string",
        "pattern": "^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$",
        "description": "Stored lowercase.",
        "maxLength": MAX_SLUG_CHARS,
        "examples": ["pricing"]
    })
}

fn check_slug(value: &Value) -> Result<Value, String> {
    let text = value.as_str().ok_or("must be a string")?.to_ascii_lowercase();
    if is_slug(&text) {
        Ok(Value::String(text))
    } else {
        Err(format!(
            "must be 1 to {MAX_SLUG_CHARS} lowercase letters, digits and single hyphens, like `spring-sale`"
        ))
    }
}

/// Whether `text` is a well-formed slug (checked before any store read on public routes).
pub fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_SLUG_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
}

/// `Spring Sale — 50% off!` → `spring-sale-50-off`; `page` when nothing usable is left.
pub fn slugify(title: &str) -> String {
    let mut slug = String::with_capacity(title.len());
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.truncate(MAX_DERIVED_CHARS);
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() { "page".into() } else { slug }
}

pub fn claim_key(space: &str, slug: &str) -> ItemKey {
    keys::unique(space, CLAIM, slug)
}

/// The page a slug belongs to, if any.
pub fn claimed_by(claim: &Item) -> Option<&str> {
    claim.body.get("page_id").and_then(Value::as_str)
}

/// Takes `slug` for `page_id`; fails the transaction if another page holds it.
pub fn acquire(space: &str, slug: &str, page_id: &str) -> Write {
    let key = claim_key(space, slug);
    let mut body = Map::new();
    body.insert("page_id".into(), json!(page_id));
    Write::put(Item::new(key.pk, key.sk, body), Condition::NotExists)
}

/// Gives `slug` up. Only ever written next to the page's version-checked write, so the
/// claim released is the page's own.
pub fn release(space: &str, slug: &str) -> Write {
    let key = claim_key(space, slug);
    Write::delete(key.pk, key.sk, Condition::None)
}

/// The first of `base`, `base-2`, `base-3`, … that no other page holds.
pub async fn first_free(call: &Call, base: &str, own: Option<&str>) -> Result<String, ApiError> {
    let space = call.space_id()?;
    let partition = claim_key(space, base).pk;
    let mut taken = HashSet::new();
    let mut after = None;
    loop {
        let query = Query::partition(partition.clone())
            .range(SortRange::BeginsWith(base.to_owned()))
            .after(after)
            .limit(200);
        let page = call.engine.store().query(query).await?;
        for claim in &page.items {
            if own.is_none() || claimed_by(claim) != own {
                taken.insert(claim.sk.clone());
            }
        }
        match page.last_sk {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    let candidate = |n: usize| if n == 1 { base.to_owned() } else { format!("{base}-{n}") };
    Ok((1..=taken.len() + 1)
        .map(candidate)
        .find(|slug| !taken.contains(slug))
        .unwrap_or_else(|| candidate(taken.len() + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_become_slugs() {
        assert_eq!(slugify("Launch"), "launch");
        assert_eq!(slugify("  Spring Sale — 50% off! "), "spring-sale-50-off");
        assert_eq!(slugify("¡¿!"), "page");
        assert!(slugify(&"long title ".repeat(20)).len() <= MAX_DERIVED_CHARS);
        assert!(is_slug(&slugify(&"a-".repeat(100))));
    }

    #[test]
    fn slugs_are_checked_and_lowercased() {
        assert_eq!(check_slug(&json!("Pricing")).unwrap(), json!("pricing"));
        assert!(
            check_slug(&json!(" pricing")).is_err(),
            "no surrounding spaces: the pattern has none"
        );
        for bad in ["", "-x", "x-", "a--b", "with space", "ünï", &"a".repeat(81)] {
            assert!(check_slug(&json!(bad)).is_err(), "{bad}");
        }
    }
}
