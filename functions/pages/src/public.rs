//! What visitors see: `GET /p/{space_id}/{slug}` serves the published snapshot as HTML,
//! sanitized when it was published, with every `{{form:FORM_ID}}` rendered as the copy of
//! that form the page captured when it was published.

use std::sync::LazyLock;

use futures::future::join_all;
use http::{Method, StatusCode};
use maud::{PreEscaped, html};
use serde_json::Value;
use space_http::ids::has_shape;
use space_http::operation::{Access, Call, Effect, Param, Reply, handler};
use space_http::{ApiError, Operation};
use space_store::Item;

use crate::slug;

/// The layout HTML a page may use: ammonia's safe defaults (no scripts, event handlers,
/// `javascript:` URLs, iframes or forms of the author's own) plus inline styling and
/// `data:` images. A `{{…}}` inside an attribute is broken up, so placeholders only
/// survive as text and a form can only be rendered where an element may stand.
static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .add_generic_attributes(&["class", "style"])
        .rm_clean_content_tags(&["style"])
        .add_tags(&["style"])
        .add_url_schemes(&["data"])
        .attribute_filter(|element, attribute, value| {
            if element == "a" && attribute == "href" && is_data_url(value) {
                return None;
            }
            // Every brace spaced out, so that no run of them (`{{{`) leaves a `{{` behind.
            Some(if value.contains("{{") {
                value.replace('{', "{ ").into()
            } else {
                value.into()
            })
        });
    builder
});

/// Whether `href` is a `data:` URL as a browser reads it: the URL parser drops leading
/// control characters and spaces and every tab and newline before it reads the scheme.
fn is_data_url(href: &str) -> bool {
    let scheme: String = href
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .take(5)
        .collect();
    scheme.eq_ignore_ascii_case("data:")
}

pub fn sanitize(layout: &str) -> String {
    SANITIZER.clean(layout).to_string()
}

/// A `{{form:FORM_ID}}` in the layout: where it is and the form it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub start: usize,
    pub end: usize,
    pub form_id: String,
}

/// Every `{{form:…}}` (spaces allowed inside the braces), in order.
pub fn placeholders(html: &str) -> Vec<Placeholder> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = html[from..].find("{{") {
        let start = from + offset;
        let Some(length) = html[start + 2..].find("}}").filter(|length| *length <= 100) else {
            from = start + 2;
            continue;
        };
        let inner = html[start + 2..start + 2 + length].trim();
        let end = start + 2 + length + 2;
        if let Some(form_id) = inner.strip_prefix("form:") {
            found.push(Placeholder {
                start,
                end,
                form_id: form_id.trim().to_owned(),
            });
            from = end;
        } else {
            from = start + 2;
        }
    }
    found
}

pub fn operation() -> Operation {
    Operation::new(
        "pages_view",
        Method::GET,
        "/p/{space_id}/{slug}",
        Access::Public {
            per_minute: forms::PUBLIC_PER_MINUTE,
        },
        Effect::Read,
        "A published page, as HTML (no key; answers `text/html` with a strict Content-Security-Policy)",
        handler(|call| async move { view(call).await }),
    )
    .with_params(vec![
        Param::path("space_id", "The Space the page belongs to."),
        Param::path("slug", "The page's slug when it was published."),
    ])
    .answers_as(StatusCode::OK, &["text/html"])
}

async fn view(call: Call) -> Result<Reply, ApiError> {
    let missing = || ApiError::NotFound("No published page at this address.".into());
    let space = call.path_param("space_id")?.to_owned();
    let wanted = call.path_param("slug")?.to_owned();
    if !has_shape(&space, "spc") || !slug::is_slug(&wanted) {
        return Err(missing());
    }
    let mut call = call;
    space_http::public::enter_space(&mut call, &space, missing).await?;
    let store = call.engine.store();
    let claim = slug::claim_key(&space, &wanted);
    let claim = store.get(&claim.pk, &claim.sk).await?.ok_or_else(missing)?;
    let page_id = slug::claimed_by(&claim).ok_or_else(missing)?;
    let key = space_http::keys::page_snapshot(&space, page_id);
    let snapshot = store.get(&key.pk, &key.sk).await?.ok_or_else(missing)?;
    // The claim may be the page's new draft slug: only the slug it was published at is live.
    if snapshot.body.get("slug").and_then(Value::as_str) != Some(wanted.as_str()) {
        return Err(missing());
    }
    let text = |name: &str| {
        snapshot
            .body
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (title, html) = (text("title"), text("html"));
    // Snapshots from before pages captured their forms show the current form until the
    // page is published again.
    let page = snapshot.body.contains_key(crate::FORM_VERSIONS).then_some(page_id);
    let found = placeholders(&html);
    let forms = join_all(found.iter().map(|p| shown_form(&call, page, &p.form_id))).await;
    let forms = forms.into_iter().collect::<Result<Vec<_>, _>>()?;
    // The layout was sanitized when the page was published: it goes in as it is, and the
    // forms as maud renders them.
    let mut pieces = Vec::with_capacity(found.len());
    let mut at = 0;
    for (placeholder, form) in found.iter().zip(&forms) {
        pieces.push((&html[at..placeholder.start], form.as_ref()));
        at = placeholder.end;
    }
    let tail = &html[at..];
    let body = html! {
        @for (layout, form) in &pieces {
            (PreEscaped(*layout))
            @if let Some(form) = form {
                (forms::html::render_form(&form.body, page))
            }
        }
        (PreEscaped(tail))
    };
    Ok(forms::html::html_reply(
        StatusCode::OK,
        forms::html::document(&title, body),
    ))
}

/// The form a live page shows: the copy it captured (`page` is the page's id), or the
/// current form for a snapshot without copies. A form deleted since publishing is shown
/// nowhere, since its posts are refused.
async fn shown_form(call: &Call, page: Option<&str>, form_id: &str) -> Result<Option<Item>, ApiError> {
    let Some(current) = forms::find_form(call, form_id).await? else {
        return Ok(None);
    };
    let Some(page) = page else {
        return Ok(Some(current));
    };
    let key = space_http::keys::page_form(call.space_id()?, page, form_id);
    Ok(call.engine.store().get(&key.pk, &key.sk).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_and_handlers_are_stripped() {
        let clean = sanitize(
            "<h1 onclick=\"steal()\" style=\"color:red\">Hi</h1><script>alert(1)</script>\
             <a href=\"javascript:alert(1)\">x</a><a href=\"data:text/html,x\">d</a>\
             <a href=\"d&#9;ata:text/html,x\">t</a><a href=\"&#1;data:text/html,x\">c</a>\
             <img src=\"data:image/png;base64,AAAA\" onerror=\"x()\"><iframe src=\"https://evil\"></iframe>\
             <style>h1{color:blue}</style>",
        );
        assert!(
            !clean.contains("script") && !clean.contains("onclick") && !clean.contains("onerror"),
            "{clean}"
        );
        assert!(
            !clean.contains("javascript:") && !clean.contains("iframe") && !clean.contains("ata:text"),
            "{clean}"
        );
        assert!(clean.contains("<h1 style=\"color:red\">Hi</h1>"), "{clean}");
        assert!(clean.contains("src=\"data:image/png;base64,AAAA\""), "{clean}");
        assert!(clean.contains("<style>h1{color:blue}</style>"), "{clean}");
    }

    #[test]
    fn placeholders_survive_as_text_only() {
        let clean = sanitize(
            "<p title=\"{{form:form_a}}\" class=\"{{{form:form_d}}\">{{form:form_b}}</p>{{ form: form_c }}{{other}}",
        );
        let ids: Vec<String> = placeholders(&clean).into_iter().map(|p| p.form_id).collect();
        assert_eq!(ids, ["form_b", "form_c"]);
    }
}
