//! Signed local links, for blob stores that cannot presign (files, memory): `PUT /u/{token}`
//! takes an upload, `GET /d/{token}` serves a download. A token names the Space, the media
//! item, what it allows and until when, and carries an HMAC made with the deployment's
//! server key, so it cannot be forged or altered, and dies at its expiry.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use space_http::{ApiError, Engine};

const PURPOSE: &str = "media-link";
const MAX_TOKEN_CHARS: usize = 1024;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Grant {
    #[serde(rename = "u")]
    Upload,
    #[serde(rename = "d")]
    Download,
}

impl Grant {
    fn route(self) -> &'static str {
        match self {
            Grant::Upload => "/u/",
            Grant::Download => "/d/",
        }
    }
}

/// The content of a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    #[serde(rename = "s")]
    pub space: String,
    #[serde(rename = "m")]
    pub media_id: String,
    #[serde(rename = "g")]
    pub grant: Grant,
    /// Unix seconds.
    #[serde(rename = "e")]
    pub expires_at: i64,
}

impl Link {
    /// The token for this link.
    pub fn seal(&self, engine: &Engine) -> String {
        let payload = serde_json::to_vec(self).unwrap_or_default();
        let signature = engine.cursor_key().sign(PURPOSE, &payload);
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// The absolute URL.
    pub fn url(&self, engine: &Engine) -> String {
        engine.public_link(&format!("{}{}", self.grant.route(), self.seal(engine)))
    }

    /// Opens a token for `grant`. Every failure is the same 404, so a probe learns nothing.
    pub fn open(engine: &Engine, token: &str, grant: Grant) -> Result<Link, ApiError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(gone());
        }
        let (payload, signature) = token.split_once('.').ok_or_else(gone)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| gone())?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| gone())?;
        let expected = engine.cursor_key().sign(PURPOSE, &payload);
        if !constant_time_eq(&expected, &signature) {
            return Err(gone());
        }
        let link: Link = serde_json::from_slice(&payload).map_err(|_| gone())?;
        if link.grant != grant || link.expires_at <= engine.now().timestamp() {
            return Err(gone());
        }
        Ok(link)
    }
}

/// The one answer to a link that does not work: bad, expired, or of a deleted Space.
pub(crate) fn gone() -> ApiError {
    ApiError::NotFound("This link is invalid or has expired; ask the API for a new one.".into())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use space_store::embedded::EmbeddedStore;

    use super::*;

    fn engine() -> Engine {
        Engine::builder(Arc::new(EmbeddedStore::in_memory()))
            .public_url("http://h:1/")
            .build()
    }

    #[test]
    fn tokens_open_only_unaltered_unexpired_and_for_their_grant() {
        let engine = engine();
        let link = Link {
            space: "spc_1".into(),
            media_id: "med_1".into(),
            grant: Grant::Download,
            expires_at: engine.now().timestamp() + 60,
        };
        let token = link.seal(&engine);
        assert_eq!(link.url(&engine), format!("http://h:1/d/{token}"));
        assert_eq!(Link::open(&engine, &token, Grant::Download).unwrap(), link);
        assert!(Link::open(&engine, &token, Grant::Upload).is_err());
        let mut altered = token.clone().into_bytes();
        altered[3] ^= 1;
        assert!(Link::open(&engine, &String::from_utf8(altered).unwrap(), Grant::Download).is_err());
        assert!(
            Link::open(&self::engine(), &token, Grant::Download).is_err(),
            "another server key"
        );
        let expired = Link {
            expires_at: engine.now().timestamp() - 1,
            ..link
        };
        assert!(Link::open(&engine, &expired.seal(&engine), Grant::Download).is_err());
        assert!(Link::open(&engine, "nonsense", Grant::Download).is_err());
    }
}
