//! Standard Webhooks signatures: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`
//! keyed with the base64 part of a `whsec_…` secret. After a rotation the previous secret
//! signs too, for a day, so receivers can switch without losing a delivery.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use rand::Rng as _;
use serde_json::{Value, json};
use sha2::Sha256;
use space_http::fields::{format_datetime, parse_datetime};

/// How long the previous secret keeps signing after a rotation.
pub const OVERLAP: TimeDelta = TimeDelta::hours(24);
const PREFIX: &str = "whsec_";

/// A new secret: 32 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    format!("{PREFIX}{}", STANDARD.encode(bytes))
}

/// What the signing-key store keeps for one endpoint.
pub fn stored(current: &str, previous: Option<(String, DateTime<Utc>)>) -> String {
    let (previous, until) = match previous {
        Some((secret, until)) => (json!(secret), json!(format_datetime(until))),
        None => (Value::Null, Value::Null),
    };
    json!({"current": current, "previous": previous, "previous_until": until}).to_string()
}

/// The current secret of a stored entry.
pub fn current(stored: &str) -> Option<String> {
    let value: Value = serde_json::from_str(stored).ok()?;
    value.get("current")?.as_str().map(str::to_owned)
}

/// The secrets that sign at `now`: the current one, and the previous one during its overlap.
pub fn in_force(stored: &str, now: DateTime<Utc>) -> Vec<String> {
    let Ok(value) = serde_json::from_str::<Value>(stored) else {
        return Vec::new();
    };
    let mut secrets: Vec<String> = value
        .get("current")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .into_iter()
        .collect();
    let until = value
        .get("previous_until")
        .and_then(Value::as_str)
        .and_then(parse_datetime);
    if let (Some(previous), Some(until)) = (value.get("previous").and_then(Value::as_str), until)
        && now < until
    {
        secrets.push(previous.to_owned());
    }
    secrets
}

/// The `webhook-signature` header value: one `v1,` signature per secret, space-separated.
pub fn signature(secrets: &[String], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = STANDARD.decode(secret.strip_prefix(PREFIX).unwrap_or(secret)).ok()?;
            let mut mac = Hmac::<Sha256>::new_from_slice(&key).ok()?;
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            Some(format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes())))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_like_the_reference_implementation() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn the_previous_secret_signs_for_a_day() {
        let now = Utc::now();
        let entry = stored("whsec_bmV3", Some(("whsec_b2xk".into(), now + OVERLAP)));
        assert_eq!(current(&entry).as_deref(), Some("whsec_bmV3"));
        assert_eq!(in_force(&entry, now).len(), 2);
        assert_eq!(in_force(&entry, now + OVERLAP), vec!["whsec_bmV3".to_owned()]);
        assert!(new_secret().starts_with(PREFIX));
    }
}
