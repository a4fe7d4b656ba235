//! The html a message carries: sanitized with ammonia's defaults (a list of harmless tags
//! and attributes; scripts, styles, event handlers, `javascript:` links and unknown tags
//! go), so what is stored and sent cannot run anything in a reader's mail client.

/// `html` with only what ammonia's defaults keep.
pub fn sanitize(html: &str) -> String {
    ammonia::clean(html)
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn scripts_and_handlers_go_and_text_stays() {
        let clean = sanitize(
            r#"<p onclick="steal()">Hi <b>there</b></p><script>alert(1)</script><a href="javascript:x()">x</a>"#,
        );
        assert!(clean.contains("<p>Hi <b>there</b></p>"), "{clean}");
        assert!(
            !clean.contains("script") && !clean.contains("onclick") && !clean.contains("javascript"),
            "{clean}"
        );
    }
}
