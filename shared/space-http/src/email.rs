//! Email addresses as the API accepts them, in every field that holds one: a plain
//! `local@domain.tld`, lowercased. Addresses end up in iCal feeds, mail headers and CSV
//! exports, where a display name, a quoted local part or a stray `;` or `:` changes what
//! the line means; RFC 5322 allows all of those, so the parser's strict options are not
//! enough on their own and the characters that break those formats are refused first.

use std::fmt;

use email_address::{EmailAddress, Options};

/// The longest address SMTP carries (RFC 5321's 256-octet path, minus its brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// [`Email::parse`]'s rule as a JSON Schema pattern, so that clients validating against
/// the schema send what the API accepts (`format: email` alone allows quoted local parts):
/// surrounding ASCII whitespace (dropped), a dot-atom local part, a host name of labels of
/// at most 63 characters. (The 64-character limit of the local part is no pattern's.)
pub const EMAIL_PATTERN: &str = "^[\\t\\n\\f\\r ]*[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*@[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+[\\t\\n\\f\\r ]*$";

/// Characters that end or split a value in iCal, vCard or a mail header.
const UNSAFE: &[char] = &[';', ':', ',', '"', '<', '>', '(', ')', '[', ']', '\\'];

/// A checked, lowercased address. The only way to get one is [`Email::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// Why an address was refused; the messages finish "<field> …" sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("must be at most {MAX_EMAIL_LEN} characters")]
    TooLong,
    #[error(
        "must be a valid email address, like ada@example.com: a plain ASCII address, without a name, quotes, spaces or any of ; : , < > ( ) [ ] \\"
    )]
    Unsafe,
    #[error("must be a valid email address, like ada@example.com")]
    Invalid,
}

impl Email {
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let text = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if text.len() > MAX_EMAIL_LEN {
            return Err(EmailError::TooLong);
        }
        if !text.is_ascii()
            || text
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_ascii_control() || UNSAFE.contains(&c))
        {
            return Err(EmailError::Unsafe);
        }
        let text = text.to_ascii_lowercase();
        let options = Options::default()
            .without_display_text()
            .without_domain_literal()
            .with_required_tld();
        EmailAddress::parse_with_options(&text, options).map_err(|_| EmailError::Invalid)?;
        // The parser lets a domain label hold any atom character (`a@b=c.com`); DNS does not.
        let (_, domain) = text.rsplit_once('@').ok_or(EmailError::Invalid)?;
        let hostname = domain
            .split('.')
            .all(|label| label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if !hostname {
            return Err(EmailError::Invalid);
        }
        Ok(Email(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Email> for String {
    fn from(email: Email) -> String {
        email.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_addresses_are_accepted_and_lowercased() {
        for (raw, stored) in [
            (" Ada@Example.com ", "ada@example.com"),
            ("o'brien+tag@mail.example.co.uk", "o'brien+tag@mail.example.co.uk"),
            ("a.b-c_d@x-y.example", "a.b-c_d@x-y.example"),
            ("{x}|~@example.com", "{x}|~@example.com"),
        ] {
            assert_eq!(Email::parse(raw).map(String::from), Ok(stored.to_owned()), "{raw}");
        }
    }

    #[test]
    fn what_breaks_ical_or_mail_headers_is_refused() {
        for raw in [
            "\"a;b:c\"@example.com",
            "\"ada\"@example.com",
            "Ada <ada@example.com>",
            "<ada@example.com>",
            "ada@example.com (Ada)",
            "ada;x@example.com",
            "ada@exa;mple.com",
            "ada:x@example.com",
            "ada,grace@example.com",
            "ad a@example.com",
            "ada@example.com\r\nBCC:x@example.com",
            "ada\t@example.com",
            "ada@[127.0.0.1]",
            "ada@localhost",
            "ada@b=c.com",
            "ada@-example.com",
            "a..b@example.com",
            ".ada@example.com",
            "ada@@example.com",
            "ada",
            "@example.com",
            "jörg@example.de",
            "ada\\x@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} was accepted");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn every_message_says_it_must_be_a_valid_address() {
        for raw in ["\"a\"@example.com", "nope"] {
            let message = Email::parse(raw).unwrap_err().to_string();
            assert!(message.starts_with("must be a valid email address"), "{message}");
        }
    }
}
