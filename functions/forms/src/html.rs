//! The HTML visitors see: a form as a page embeds it, and the small pages a browser gets
//! back after posting one. No page carries a script, and the Content-Security-Policy
//! forbids one anyway.
//!
//! Markup is written with maud: its templates are Rust, checked when the crate compiles
//! (a misspelt field or an unclosed element does not build), and every value spliced into
//! them is escaped, in text and in attributes alike — maud always quotes attributes, so
//! its one escaper is right in both places. Nothing reaches a page unescaped except
//! through `PreEscaped`, which marks the few trusted pieces: a page's layout, sanitized by
//! ammonia when the page was published, and the page's own style sheet. (Askama and
//! minijinja were the other candidates: askama writes entities as numbers, where pages and
//! their tests use the named ones, and minijinja checks its templates only at run time.)

use http::StatusCode;
use maud::{Markup, PreEscaped, html};
use serde_json::{Map, Value};
use space_http::{FieldErrors, Reply};

use crate::definition::{FormField, MAX_TEXT_CHARS, MAX_TEXTAREA_CHARS, form_fields};

/// No script of any kind, styles inline only, images from https or data URLs, forms
/// posting only to this origin, and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The few rules that make an embedded form readable without the page styling it.
const BASE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
.space-form{display:grid;gap:.75rem;margin:1.5rem 0}.space-field{display:grid;gap:.25rem}\
.space-field input,.space-field select,.space-field textarea{font:inherit;padding:.4rem}\
.space-check{display:flex;gap:.5rem;align-items:center}.space-form button{font:inherit;padding:.5rem 1rem;justify-self:start}";

/// A whole HTML document around `body`.
pub fn document(title: &str, body: Markup) -> String {
    html! {
        (PreEscaped("<!doctype html>\n"))
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(BASE_STYLE)) }
            }
            "\n"
            body { "\n" (body) "\n" }
        }
        "\n"
    }
    .into_string()
}

/// An HTML answer with the headers every public page carries.
pub fn html_reply(status: StatusCode, html: String) -> Reply {
    Reply::raw(status, "text/html; charset=utf-8", html)
        .with_header("content-security-policy", CONTENT_SECURITY_POLICY)
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "same-origin")
        .with_header("cache-control", "no-store")
}

/// The path a form posts to; from a published page, naming the page, so that the post is
/// checked against the form as that page shows it.
pub fn submit_path(form_id: &str, page_id: Option<&str>) -> String {
    match page_id {
        Some(page) => format!("/f/{form_id}?page={page}"),
        None => format!("/f/{form_id}"),
    }
}

/// A stored form (or a page's copy of one) as a real `<form>` a browser can post without
/// any script; `page_id` is the published page it is shown on.
pub fn render_form(form: &Map<String, Value>, page_id: Option<&str>) -> Markup {
    let id = form.get("id").and_then(Value::as_str).unwrap_or_default();
    let submit = form
        .get("submit_label")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("Send");
    html! {
        form class="space-form" method="post" action=(submit_path(id, page_id)) accept-charset="utf-8" {
            "\n"
            @for field in form_fields(form) {
                (render_field(id, &field))
                "\n"
            }
            div class="space-field" { button type="submit" { (submit) } }
            "\n"
        }
    }
}

fn render_field(form_id: &str, field: &FormField) -> Markup {
    let dom_id = format!("{form_id}-{}", field.name);
    let name = field.name.as_str();
    let required = field.required;
    let label = html! {
        label for=(dom_id) {
            (field.label())
            @if required { span aria-hidden="true" { " *" } }
        }
    };
    if field.kind == "checkbox" {
        return html! {
            div class="space-field space-check" {
                input type="checkbox" id=(dom_id) name=(name) value="on" required[required];
                (label)
            }
        };
    }
    let control = match field.kind.as_str() {
        "textarea" => html! {
            textarea id=(dom_id) name=(name) rows="5" maxlength=(MAX_TEXTAREA_CHARS) required[required] {}
        },
        "select" => html! {
            select id=(dom_id) name=(name) required[required] {
                option value="" { "Choose…" }
                @for option in &field.options {
                    option value=(option) { (option) }
                }
            }
        },
        kind => {
            let (input_type, autocomplete, placeholder, step) = match kind {
                "email" => ("email", Some("email"), None, None),
                "phone" => ("tel", Some("tel"), Some("+15551234567"), None),
                "number" => ("number", None, None, Some("any")),
                _ => ("text", None, None, None),
            };
            html! {
                input type=(input_type) id=(dom_id) name=(name) maxlength=(MAX_TEXT_CHARS)
                    autocomplete=[autocomplete] placeholder=[placeholder] step=[step] required[required];
            }
        }
    };
    html! { div class="space-field" { (label) (control) } }
}

/// What a visitor reads after a good submission.
pub fn success_message(form: &Map<String, Value>) -> &str {
    form.get("success_message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or("Your message was sent.")
}

/// What a browser gets after a good submission.
pub fn thanks_page(form: &Map<String, Value>) -> String {
    document(
        "Thank you",
        html! { h1 { "Thank you" } "\n" p { (success_message(form)) } },
    )
}

/// What a browser gets when the values did not pass: each problem, by field label.
pub fn problems_page(form: &Map<String, Value>, errors: &FieldErrors) -> String {
    let fields = form_fields(form);
    let label_of = |name: &String| {
        fields
            .iter()
            .find(|f| &f.name == name)
            .map(FormField::label)
            .unwrap_or_else(|| name.clone())
    };
    document(
        "Please check the form",
        html! {
            h1 { "Please check the form" }
            "\n"
            ul {
                "\n"
                @for (name, messages) in errors {
                    @let label = label_of(name);
                    @for message in messages {
                        li { strong { (label) } ": " (message) }
                        "\n"
                    }
                }
            }
            "\n"
            p { "Go back, correct these and send it again." }
        },
    )
}

/// A short page for a form that does not exist (any more).
pub fn missing_page() -> String {
    document(
        "Form not found",
        html! { h1 { "Form not found" } "\n" p { "This form does not exist or was removed." } },
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_form_renders_every_field_escaped() {
        let form = json!({
            "id": "form_1",
            "fields": [
                {"name": "email", "type": "email", "required": true},
                {"name": "plan", "type": "select", "required": false, "options": ["<b>basic</b>", "pro"]},
                {"name": "agree", "type": "checkbox", "required": true, "label": "I agree to \"terms\""}
            ]
        });
        let html = render_form(form.as_object().unwrap(), None).into_string();
        assert!(html.starts_with("<form class=\"space-form\" method=\"post\" action=\"/f/form_1\""));
        let on_page = render_form(form.as_object().unwrap(), Some("page_1")).into_string();
        assert!(on_page.starts_with("<form class=\"space-form\" method=\"post\" action=\"/f/form_1?page=page_1\""));
        assert!(html.contains("<input type=\"email\" id=\"form_1-email\" name=\"email\""));
        assert!(html.contains("autocomplete=\"email\" required>"));
        assert!(html.contains("<option value=\"&lt;b&gt;basic&lt;/b&gt;\">"));
        assert!(html.contains("I agree to &quot;terms&quot;"));
        assert!(!html.contains("<b>"));
    }

    /// The markup is the one pages carried before maud wrote it, byte for byte.
    #[test]
    fn a_form_and_its_page_keep_their_markup() {
        let form = json!({
            "id": "frm_1",
            "submit_label": "Join",
            "fields": [
                {"name": "email", "type": "email", "required": true},
                {"name": "phone_number", "type": "phone"},
                {"name": "notes", "type": "textarea", "label": "Tell us <more>"},
                {"name": "plan", "type": "select", "required": true, "options": ["basic", "a & b"]},
                {"name": "agree", "type": "checkbox", "required": true, "label": "I agree"},
                {"name": "seats", "type": "number"},
                {"name": "company", "type": "text"}
            ]
        });
        let expected = "<form class=\"space-form\" method=\"post\" action=\"/f/frm_1?page=page_1\" accept-charset=\"utf-8\">\n\
<div class=\"space-field\"><label for=\"frm_1-email\">Email<span aria-hidden=\"true\"> *</span></label><input type=\"email\" id=\"frm_1-email\" name=\"email\" maxlength=\"1000\" autocomplete=\"email\" required></div>\n\
<div class=\"space-field\"><label for=\"frm_1-phone_number\">Phone number</label><input type=\"tel\" id=\"frm_1-phone_number\" name=\"phone_number\" maxlength=\"1000\" autocomplete=\"tel\" placeholder=\"+15551234567\"></div>\n\
<div class=\"space-field\"><label for=\"frm_1-notes\">Tell us &lt;more&gt;</label><textarea id=\"frm_1-notes\" name=\"notes\" rows=\"5\" maxlength=\"10000\"></textarea></div>\n\
<div class=\"space-field\"><label for=\"frm_1-plan\">Plan<span aria-hidden=\"true\"> *</span></label><select id=\"frm_1-plan\" name=\"plan\" required><option value=\"\">Choose…</option><option value=\"basic\">basic</option><option value=\"a &amp; b\">a &amp; b</option></select></div>\n\
<div class=\"space-field space-check\"><input type=\"checkbox\" id=\"frm_1-agree\" name=\"agree\" value=\"on\" required><label for=\"frm_1-agree\">I agree<span aria-hidden=\"true\"> *</span></label></div>\n\
<div class=\"space-field\"><label for=\"frm_1-seats\">Seats</label><input type=\"number\" id=\"frm_1-seats\" name=\"seats\" maxlength=\"1000\" step=\"any\"></div>\n\
<div class=\"space-field\"><label for=\"frm_1-company\">Company</label><input type=\"text\" id=\"frm_1-company\" name=\"company\" maxlength=\"1000\"></div>\n\
<div class=\"space-field\"><button type=\"submit\">Join</button></div>\n\
</form>";
        assert_eq!(
            render_form(form.as_object().unwrap(), Some("page_1")).into_string(),
            expected
        );
        assert_eq!(
            document("A <b> page", html! { p { "x" } }),
            format!(
                "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
                 <title>A &lt;b&gt; page</title><style>{BASE_STYLE}</style></head>\n<body>\n<p>x</p>\n</body></html>\n"
            )
        );
        assert_eq!(
            thanks_page(json!({"success_message": "Thanks & see you"}).as_object().unwrap()),
            document(
                "Thank you",
                PreEscaped("<h1>Thank you</h1>\n<p>Thanks &amp; see you</p>".to_owned())
            )
        );
    }

    #[test]
    fn problems_name_fields_by_label() {
        let form = json!({"fields": [{"name": "email", "type": "email", "required": true, "label": "Your <email>"}]});
        let errors = FieldErrors::from([("email".to_owned(), vec!["must be a valid email address".to_owned()])]);
        let html = problems_page(form.as_object().unwrap(), &errors);
        assert!(html.contains(
            "<ul>\n<li><strong>Your &lt;email&gt;</strong>: must be a valid email address</li>\n</ul>\n<p>Go back"
        ));
    }
}
