//! Pagination cursors: the position in a partition, encrypted and authenticated with a
//! server key, so a client can neither read nor forge one, nor carry it to another list.
//!
//! Sealed with XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`), a vetted AEAD: a fresh
//! random 24-byte nonce per cursor (large enough that random nonces never repeat in
//! practice), and the list the cursor belongs to — its partition key, which names the Space
//! and the collection (and the parent, for a child collection) — as associated data, so a
//! cursor opens for its own list only. Layout (base64url): version (1) ‖ nonce (24) ‖
//! ciphertext ‖ tag (16). The cipher's key is derived from the server key with HKDF, apart
//! from the key that signs local URLs ([`CursorKey::sign`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The layout's first byte: a cursor of another layout is refused, not misread.
const VERSION: u8 = 1;
const NONCE: usize = 24;
const TAG: usize = 16;
/// What the associated data starts with, before the list's partition key.
const CONTEXT: &[u8] = b"space-api cursor v1\0";
/// Room for the cursor of any sort key DynamoDB accepts (1024 bytes, each escaped up to
/// six-fold in JSON: 8254 characters sealed), so that every cursor we issue opens again.
const MAX_CURSOR_CHARS: usize = 8320;

/// The secret that seals cursors; every instance serving a deployment shares it.
#[derive(Clone)]
pub struct CursorKey {
    /// The configured secret (or its digest): what [`CursorKey::sign`] keys its HMAC with.
    secret: [u8; 32],
    /// Derived from `secret` for the cursor cipher alone.
    cipher: XChaCha20Poly1305,
}

impl CursorKey {
    pub fn new(bytes: [u8; 32]) -> CursorKey {
        let mut derived = [0u8; 32];
        hkdf::Hkdf::<Sha256>::new(None, &bytes)
            .expand(b"space-api cursor cipher key", &mut derived)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        CursorKey {
            secret: bytes,
            cipher: XChaCha20Poly1305::new(&derived.into()),
        }
    }

    /// Derives a key from configuration text of any length.
    pub fn from_secret(secret: &str) -> CursorKey {
        use sha2::Digest;
        CursorKey::new(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn random() -> CursorKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        CursorKey::new(bytes)
    }

    /// An HMAC of `message` for another purpose than cursors (signed local URLs), kept
    /// apart by `purpose`.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(b"sign:");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(…)")
    }
}

/// Where a list stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The last sort key returned.
    #[serde(rename = "s")]
    pub last_sk: String,
    #[serde(rename = "d")]
    pub descending: bool,
}

/// Why a cursor was refused. An AEAD cannot tell a cursor of another list from a forged or
/// altered one (either fails authentication), so one answer names every cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error(
        "the cursor was not issued for this list: it belongs to another list or Space, comes from another server key, or was altered; list again without `cursor`"
    )]
    Invalid,
}

fn associated_data(binding: &str) -> Vec<u8> {
    let mut data = Vec::with_capacity(CONTEXT.len() + binding.len());
    data.extend_from_slice(CONTEXT);
    data.extend_from_slice(binding.as_bytes());
    data
}

/// Seals a position for the list identified by `binding` (its partition key).
pub fn seal(key: &CursorKey, binding: &str, position: &Position) -> String {
    let plaintext = serde_json::to_vec(position).unwrap_or_default();
    let mut nonce = [0u8; NONCE];
    rand::rng().fill_bytes(&mut nonce);
    let aad = associated_data(binding);
    let sealed = key
        .cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 seals any message shorter than 256 GiB"));
    let mut out = Vec::with_capacity(1 + NONCE + sealed.len());
    out.push(VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// Opens a cursor for the list identified by `binding`.
pub fn open(key: &CursorKey, binding: &str, cursor: &str) -> Result<Position, CursorError> {
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(CursorError::Invalid);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError::Invalid)?;
    let Some((&VERSION, rest)) = bytes.split_first() else {
        return Err(CursorError::Invalid);
    };
    if rest.len() < NONCE + TAG {
        return Err(CursorError::Invalid);
    }
    let (nonce, sealed) = rest.split_at(NONCE);
    let aad = associated_data(binding);
    let plaintext = key
        .cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad: &aad })
        .map_err(|_| CursorError::Invalid)?;
    serde_json::from_slice(&plaintext).map_err(|_| CursorError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn position() -> Position {
        Position {
            last_sk: "con_01jd".into(),
            descending: true,
        }
    }

    #[test]
    fn round_trips_and_hides_the_position() {
        let key = CursorKey::random();
        let cursor = seal(&key, "SPACE#a#contacts", &position());
        assert!(!cursor.contains("con_"));
        assert_eq!(open(&key, "SPACE#a#contacts", &cursor), Ok(position()));
    }

    #[test]
    fn refuses_other_lists_other_keys_and_garbage() {
        let key = CursorKey::random();
        let cursor = seal(&key, "SPACE#a#contacts", &position());
        assert_eq!(open(&key, "SPACE#b#contacts", &cursor), Err(CursorError::Invalid));
        assert_eq!(open(&key, "SPACE#a#tasks", &cursor), Err(CursorError::Invalid));
        assert_eq!(
            open(&CursorKey::random(), "SPACE#a#contacts", &cursor),
            Err(CursorError::Invalid)
        );
        assert_eq!(
            open(&key, "SPACE#a#contacts", "not a cursor"),
            Err(CursorError::Invalid)
        );
    }

    proptest! {
        #[test]
        fn any_tampering_is_rejected(flip in 0usize..64, bit in 0u8..8, sk in "[a-z0-9_]{1,40}") {
            let key = CursorKey::new([9; 32]);
            let position = Position { last_sk: sk, descending: false };
            let cursor = seal(&key, "P", &position);
            let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
            let index = flip % bytes.len();
            bytes[index] ^= 1 << bit;
            let tampered = URL_SAFE_NO_PAD.encode(bytes);
            prop_assert!(open(&key, "P", &tampered).is_err());
            prop_assert_eq!(open(&key, "P", &cursor), Ok(position));
        }
    }
}
