//! Pagination cursors: the position in a partition, encrypted and authenticated with a
//! server key, so a client can neither read nor forge one, nor carry it to another list.
//!
//! Layout (base64url): nonce (12) ‖ ciphertext ‖ tag (16). The keystream is
//! HMAC-SHA256(key, "stream" ‖ nonce ‖ counter), the tag HMAC-SHA256(key, "tag" ‖ nonce ‖
//! len(ciphertext) ‖ ciphertext ‖ binding): encrypt-then-MAC from one primitive. The length
//! fixes where the ciphertext ends, so bytes cannot move between it and the binding.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

const NONCE: usize = 12;
const TAG: usize = 16;
/// Room for the cursor of any sort key DynamoDB accepts (1024 bytes, each escaped up to
/// six-fold in JSON: 8254 characters sealed), so that every cursor we issue opens again.
const MAX_CURSOR_CHARS: usize = 8320;

/// The secret that seals cursors; every instance serving a deployment shares it.
#[derive(Clone)]
pub struct CursorKey([u8; 32]);

impl CursorKey {
    pub fn new(bytes: [u8; 32]) -> CursorKey {
        CursorKey(bytes)
    }

    /// Derives a key from configuration text of any length.
    pub fn from_secret(secret: &str) -> CursorKey {
        use sha2::Digest;
        CursorKey(Sha256::digest(secret.as_bytes()).into())
    }

    pub fn random() -> CursorKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        CursorKey(bytes)
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes a key of any length.
        HmacSha256::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"))
    }

    /// An HMAC of `message` for another purpose than cursors (signed local URLs), kept
    /// apart from the cursor MACs by `purpose`.
    pub fn sign(&self, purpose: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = self.mac();
        mac.update(b"sign:");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn keystream(&self, nonce: &[u8], length: usize) -> Vec<u8> {
        let mut stream = Vec::with_capacity(length + 32);
        let mut counter = 0u32;
        while stream.len() < length {
            let mut mac = self.mac();
            mac.update(b"stream");
            mac.update(nonce);
            mac.update(&counter.to_be_bytes());
            stream.extend_from_slice(&mac.finalize().into_bytes());
            counter += 1;
        }
        stream.truncate(length);
        stream
    }

    fn tag(&self, nonce: &[u8], ciphertext: &[u8], binding: &str) -> [u8; TAG] {
        let mut mac = self.mac();
        mac.update(b"tag");
        mac.update(nonce);
        mac.update(&(ciphertext.len() as u64).to_be_bytes());
        mac.update(ciphertext);
        mac.update(binding.as_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG];
        tag.copy_from_slice(&full[..TAG]);
        tag
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

/// Why a cursor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("the cursor is not one this API issued, or it was altered")]
    Invalid,
    #[error("the cursor belongs to a different list")]
    ForeignList,
}

/// Seals a position for the list identified by `binding` (its partition key).
pub fn seal(key: &CursorKey, binding: &str, position: &Position) -> String {
    let plaintext = serde_json::to_vec(position).unwrap_or_default();
    let mut nonce = [0u8; NONCE];
    rand::rng().fill_bytes(&mut nonce);
    let stream = key.keystream(&nonce, plaintext.len());
    let ciphertext: Vec<u8> = plaintext.iter().zip(stream).map(|(p, k)| p ^ k).collect();
    let tag = key.tag(&nonce, &ciphertext, binding);
    let mut out = Vec::with_capacity(NONCE + ciphertext.len() + TAG);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(out)
}

/// Opens a cursor for the list identified by `binding`.
pub fn open(key: &CursorKey, binding: &str, cursor: &str) -> Result<Position, CursorError> {
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(CursorError::Invalid);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| CursorError::Invalid)?;
    if bytes.len() < NONCE + TAG + 2 {
        return Err(CursorError::Invalid);
    }
    let (nonce, rest) = bytes.split_at(NONCE);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG);
    let stream = key.keystream(nonce, ciphertext.len());
    let plaintext: Vec<u8> = ciphertext.iter().zip(stream).map(|(c, k)| c ^ k).collect();
    let position = serde_json::from_slice::<Position>(&plaintext);
    if !bool::from(key.tag(nonce, ciphertext, binding).ct_eq(tag)) {
        // A position that decrypts under our key was sealed by us for another list.
        return Err(match position {
            Ok(_) => CursorError::ForeignList,
            Err(_) => CursorError::Invalid,
        });
    }
    position.map_err(|_| CursorError::Invalid)
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
        assert_eq!(open(&key, "SPACE#b#contacts", &cursor), Err(CursorError::ForeignList));
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
