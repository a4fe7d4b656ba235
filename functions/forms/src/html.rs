//! The HTML visitors see: a form as a page embeds it, and the small pages a browser gets
//! back after posting one. Every value is escaped; no page carries a script, and the
//! Content-Security-Policy forbids one anyway.

use http::StatusCode;
use serde_json::{Map, Value};
use space_http::{FieldErrors, Reply};

use crate::definition::{FormField, MAX_TEXT_CHARS, MAX_TEXTAREA_CHARS, form_fields};

/// No script of any kind, styles inline only, images from https or data URLs, forms
/// posting only to this origin, and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Escapes text for an HTML text node or a double- or single-quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The few rules that make an embedded form readable without the page styling it.
const BASE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
.space-form{display:grid;gap:.75rem;margin:1.5rem 0}.space-field{display:grid;gap:.25rem}\
.space-field input,.space-field select,.space-field textarea{font:inherit;padding:.4rem}\
.space-check{display:flex;gap:.5rem;align-items:center}.space-form button{font:inherit;padding:.5rem 1rem;justify-self:start}";

/// A whole HTML document around `body` (already safe HTML).
pub fn document(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{BASE_STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    )
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
pub fn render_form(form: &Map<String, Value>, page_id: Option<&str>) -> String {
    let id = form.get("id").and_then(Value::as_str).unwrap_or_default();
    let submit = form
        .get("submit_label")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("Send");
    let mut html = format!(
        "<form class=\"space-form\" method=\"post\" action=\"{}\" accept-charset=\"utf-8\">\n",
        escape(&submit_path(id, page_id))
    );
    for field in form_fields(form) {
        html.push_str(&render_field(id, &field));
    }
    html.push_str(&format!(
        "<div class=\"space-field\"><button type=\"submit\">{}</button></div>\n</form>",
        escape(submit)
    ));
    html
}

fn render_field(form_id: &str, field: &FormField) -> String {
    let dom_id = escape(&format!("{form_id}-{}", field.name));
    let name = escape(&field.name);
    let required = if field.required { " required" } else { "" };
    let marker = if field.required {
        "<span aria-hidden=\"true\"> *</span>"
    } else {
        ""
    };
    let label = format!("<label for=\"{dom_id}\">{}{marker}</label>", escape(&field.label()));
    let control = match field.kind.as_str() {
        "checkbox" => {
            return format!(
                "<div class=\"space-field space-check\"><input type=\"checkbox\" id=\"{dom_id}\" name=\"{name}\" value=\"on\"{required}>{label}</div>\n"
            );
        }
        "textarea" => format!(
            "<textarea id=\"{dom_id}\" name=\"{name}\" rows=\"5\" maxlength=\"{MAX_TEXTAREA_CHARS}\"{required}></textarea>"
        ),
        "select" => {
            let mut select =
                format!("<select id=\"{dom_id}\" name=\"{name}\"{required}><option value=\"\">Choose…</option>");
            for option in &field.options {
                let option = escape(option);
                select.push_str(&format!("<option value=\"{option}\">{option}</option>"));
            }
            select.push_str("</select>");
            select
        }
        kind => {
            let (input_type, extra) = match kind {
                "email" => ("email", " autocomplete=\"email\""),
                "phone" => ("tel", " autocomplete=\"tel\" placeholder=\"+15551234567\""),
                "number" => ("number", " step=\"any\""),
                _ => ("text", ""),
            };
            format!(
                "<input type=\"{input_type}\" id=\"{dom_id}\" name=\"{name}\" maxlength=\"{MAX_TEXT_CHARS}\"{extra}{required}>"
            )
        }
    };
    format!("<div class=\"space-field\">{label}{control}</div>\n")
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
        &format!("<h1>Thank you</h1>\n<p>{}</p>", escape(success_message(form))),
    )
}

/// What a browser gets when the values did not pass: each problem, by field label.
pub fn problems_page(form: &Map<String, Value>, errors: &FieldErrors) -> String {
    let fields = form_fields(form);
    let mut list = String::from("<ul>\n");
    for (name, messages) in errors {
        let label = fields
            .iter()
            .find(|f| &f.name == name)
            .map(FormField::label)
            .unwrap_or_else(|| name.clone());
        for message in messages {
            list.push_str(&format!(
                "<li><strong>{}</strong>: {}</li>\n",
                escape(&label),
                escape(message)
            ));
        }
    }
    list.push_str("</ul>");
    document(
        "Please check the form",
        &format!("<h1>Please check the form</h1>\n{list}\n<p>Go back, correct these and send it again.</p>"),
    )
}

/// A short page for a form that does not exist (any more).
pub fn missing_page() -> String {
    document(
        "Form not found",
        "<h1>Form not found</h1>\n<p>This form does not exist or was removed.</p>",
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
        let html = render_form(form.as_object().unwrap(), None);
        assert!(html.starts_with("<form class=\"space-form\" method=\"post\" action=\"/f/form_1\""));
        let on_page = render_form(form.as_object().unwrap(), Some("page_1"));
        assert!(on_page.starts_with("<form class=\"space-form\" method=\"post\" action=\"/f/form_1?page=page_1\""));
        assert!(html.contains("<input type=\"email\" id=\"form_1-email\" name=\"email\""));
        assert!(html.contains("autocomplete=\"email\" required>"));
        assert!(html.contains("<option value=\"&lt;b&gt;basic&lt;/b&gt;\">"));
        assert!(html.contains("I agree to &quot;terms&quot;"));
        assert!(!html.contains("<b>"));
    }

    #[test]
    fn problems_name_fields_by_label() {
        let form = json!({"fields": [{"name": "email", "type": "email", "required": true, "label": "Your <email>"}]});
        let errors = FieldErrors::from([("email".to_owned(), vec!["must be a valid email address".to_owned()])]);
        let html = problems_page(form.as_object().unwrap(), &errors);
        assert!(html.contains("<strong>Your &lt;email&gt;</strong>: must be a valid email address"));
    }
}
