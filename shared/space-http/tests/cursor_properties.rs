//! Cursors through their public API: any position round-trips, and any change to a
//! cursor — a flipped bit, a changed, dropped or added character, a cursor sealed for
//! another Space, collection or server key — is refused with an error, never a panic.
//! The layout is version (1) ‖ nonce (24) ‖ ciphertext ‖ tag (16), XChaCha20-Poly1305 with
//! the list as associated data.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use space_http::cursor::{CursorError, CursorKey, Position, open, seal};
use space_http::keys;

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const VERSION: usize = 1;
const NONCE: usize = 24;
const TAG: usize = 16;

fn position() -> impl Strategy<Value = Position> {
    // Sort keys are ids in practice; any text must still round-trip.
    let sort_key = prop_oneof!["[0-9a-z_]{1,40}", any::<String>(), "\\PC{0,300}", Just(String::new())];
    (sort_key, any::<bool>()).prop_map(|(last_sk, descending)| Position { last_sk, descending })
}

/// The partition a list's cursor is bound to, as the engine builds it.
fn binding() -> impl Strategy<Value = String> {
    (
        "[a-z0-9]{1,12}",
        "[a-z_/]{1,16}",
        proptest::option::of("[a-z0-9_]{1,12}"),
    )
        .prop_map(|(space, collection, parent)| match parent {
            Some(parent) => keys::child_partition(&space, &collection, &parent),
            None => keys::collection_partition(&space, &collection),
        })
}

fn key() -> impl Strategy<Value = CursorKey> {
    proptest::array::uniform32(any::<u8>()).prop_map(CursorKey::new)
}

fn decode(cursor: &str) -> Result<Vec<u8>, TestCaseError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|e| TestCaseError::fail(format!("a sealed cursor is base64url: {e}")))
}

/// Positions as lists make them: short ids, which keeps the exhaustive tests quick.
fn id_position() -> impl Strategy<Value = Position> {
    ("[0-9a-z_]{1,40}", any::<bool>()).prop_map(|(last_sk, descending)| Position { last_sk, descending })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_position_round_trips(key in key(), binding in binding(), position in position()) {
        let cursor = seal(&key, &binding, &position);
        prop_assert!(cursor.bytes().all(|b| BASE64URL.contains(&b)), "not URL-safe: {}", cursor);
        prop_assert_eq!(open(&key, &binding, &cursor), Ok(position.clone()));
        // A fresh nonce each time: equal positions do not give equal cursors.
        let again = seal(&key, &binding, &position);
        prop_assert_ne!(&again, &cursor);
        prop_assert_eq!(open(&key, &binding, &again), Ok(position));
    }

    #[test]
    fn every_bit_flip_is_rejected(key in key(), binding in binding(), position in id_position()) {
        let cursor = seal(&key, &binding, &position);
        let bytes = decode(&cursor)?;
        for index in 0..bytes.len() {
            for bit in 0..8 {
                let mut tampered = bytes.clone();
                tampered[index] ^= 1 << bit;
                let tampered = URL_SAFE_NO_PAD.encode(tampered);
                prop_assert!(open(&key, &binding, &tampered).is_err(), "bit {} of byte {} flipped", bit, index);
            }
        }
    }

    #[test]
    fn every_truncation_is_rejected(key in key(), binding in binding(), position in position()) {
        let cursor = seal(&key, &binding, &position);
        for length in 0..cursor.len() {
            prop_assert!(open(&key, &binding, &cursor[..length]).is_err(), "truncated to {}", length);
            prop_assert!(open(&key, &binding, &cursor[cursor.len() - length..]).is_err(), "head cut to {}", length);
        }
    }

    #[test]
    fn any_extension_is_rejected(
        key in key(),
        binding in binding(),
        position in position(),
        suffix in "[A-Za-z0-9_-]{1,64}",
        raw_suffix in proptest::collection::vec(any::<u8>(), 1..48),
    ) {
        let cursor = seal(&key, &binding, &position);
        let appended = format!("{cursor}{suffix}");
        let prepended = format!("{suffix}{cursor}");
        prop_assert!(open(&key, &binding, &appended).is_err());
        prop_assert!(open(&key, &binding, &prepended).is_err());
        let mut bytes = decode(&cursor)?;
        bytes.extend_from_slice(&raw_suffix);
        prop_assert!(open(&key, &binding, &URL_SAFE_NO_PAD.encode(&bytes)).is_err());
    }

    /// A cursor from another Space, collection or parent is a cursor for another list.
    #[test]
    fn a_cursor_for_another_list_is_rejected(
        key in key(),
        mine in binding(),
        theirs in binding(),
        position in position(),
    ) {
        prop_assume!(mine != theirs);
        let cursor = seal(&key, &theirs, &position);
        prop_assert_eq!(open(&key, &mine, &cursor), Err(CursorError::Invalid));
        prop_assert_eq!(open(&key, &theirs, &cursor), Ok(position));
    }

    /// The same collection in another Space is another list.
    #[test]
    fn a_cursor_from_another_space_is_rejected(
        key in key(),
        mine in "[a-z0-9]{1,12}",
        theirs in "[a-z0-9]{1,12}",
        collection in "[a-z_]{1,16}",
        position in position(),
    ) {
        prop_assume!(mine != theirs);
        let cursor = seal(&key, &keys::collection_partition(&theirs, &collection), &position);
        prop_assert_eq!(
            open(&key, &keys::collection_partition(&mine, &collection), &cursor),
            Err(CursorError::Invalid)
        );
    }

    /// A cursor is its version, a fresh nonce, the sealed position and a tag, nothing else:
    /// its length gives the position's away, never its content.
    #[test]
    fn a_cursor_is_version_nonce_ciphertext_and_tag(key in key(), binding in binding(), position in position()) {
        let cursor = seal(&key, &binding, &position);
        let bytes = decode(&cursor)?;
        let plaintext = serde_json::to_vec(&position).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(bytes.len(), VERSION + NONCE + plaintext.len() + TAG);
        prop_assert_eq!(bytes[0], 1);
        let sealed = &bytes[VERSION + NONCE..bytes.len() - TAG];
        prop_assert_ne!(sealed, plaintext.as_slice(), "the position is encrypted");
    }

    #[test]
    fn a_cursor_from_another_server_key_is_rejected(
        key in key(),
        other in key(),
        binding in binding(),
        position in position(),
    ) {
        let cursor = seal(&other, &binding, &position);
        prop_assume!(open(&other, &binding, &cursor).is_ok());
        prop_assert!(open(&key, &binding, &cursor).is_err());
    }

    /// Moving the boundary between ciphertext and binding must not keep the tag valid:
    /// a cursor sealed for `X‖Y` must not open, re-cut, for the list `Y`.
    #[test]
    fn the_binding_cannot_be_spliced_into_the_ciphertext(
        key in key(),
        space in "[a-z0-9]{1,12}",
        collection in "[a-z]{1,12}",
        cut in 1usize..8,
        position in position(),
    ) {
        let binding = keys::collection_partition(&space, &collection);
        let cut = cut.min(binding.len() - 1);
        let (moved, rest) = binding.split_at(cut);
        let cursor = seal(&key, &binding, &position);
        let bytes = decode(&cursor)?;
        let (body, tag) = bytes.split_at(bytes.len() - TAG);
        let mut spliced = body.to_vec();
        spliced.extend_from_slice(moved.as_bytes());
        spliced.extend_from_slice(tag);
        let spliced = URL_SAFE_NO_PAD.encode(spliced);
        prop_assert!(open(&key, rest, &spliced).is_err());
    }

    /// Whatever a client sends, opening answers an error or a position, never panics.
    #[test]
    fn arbitrary_input_never_panics(
        key in key(),
        binding in binding(),
        text in prop_oneof![any::<String>(), "[A-Za-z0-9_-]{0,200}"],
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = open(&key, &binding, &text);
        // Too short, another version, or a random tag: a forgery is accepted only with
        // probability 2^-128.
        let encoded = URL_SAFE_NO_PAD.encode(&bytes);
        prop_assert_eq!(open(&key, &binding, &encoded), Err(CursorError::Invalid));
        let mut versioned = vec![1u8];
        versioned.extend_from_slice(&bytes);
        prop_assert_eq!(open(&key, &binding, &URL_SAFE_NO_PAD.encode(&versioned)), Err(CursorError::Invalid));
    }
}

proptest! {
    // Exhaustive per cursor (every position × 70 characters): fewer cursors suffice.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_character_substitution_is_rejected(key in key(), binding in binding(), position in id_position()) {
        let cursor = seal(&key, &binding, &position);
        let text = cursor.as_bytes();
        for index in 0..text.len() {
            for &replacement in BASE64URL.iter().chain(b"=+/.~ %") {
                if replacement == text[index] {
                    continue;
                }
                let mut tampered = text.to_vec();
                tampered[index] = replacement;
                let tampered = String::from_utf8(tampered).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(open(&key, &binding, &tampered).is_err(), "{} accepted", tampered);
            }
        }
    }
}

/// Every cursor we issue opens again: the longest sort key DynamoDB takes (1024 bytes),
/// made of the characters JSON escapes six-fold, included.
#[test]
fn the_longest_sort_keys_round_trip() {
    let key = CursorKey::new([5; 32]);
    for last_sk in ["\u{1}".repeat(1024), "\u{10ffff}".repeat(256), "z".repeat(1024)] {
        let position = Position {
            last_sk,
            descending: true,
        };
        let cursor = seal(&key, "SPACE#a#contacts", &position);
        assert_eq!(open(&key, "SPACE#a#contacts", &cursor), Ok(position));
    }
}

#[test]
fn an_oversized_cursor_is_rejected_before_decoding() {
    let key = CursorKey::new([3; 32]);
    let huge = "A".repeat(1 << 20);
    assert_eq!(open(&key, "SPACE#a#contacts", &huge), Err(CursorError::Invalid));
}

/// A nonce is drawn afresh for every cursor: none repeats over many cursors of one list.
#[test]
fn nonces_never_repeat() {
    let key = CursorKey::new([1; 32]);
    let position = Position {
        last_sk: "con_01".into(),
        descending: false,
    };
    let mut nonces = std::collections::HashSet::new();
    for _ in 0..10_000 {
        let bytes = URL_SAFE_NO_PAD
            .decode(seal(&key, "SPACE#a#contacts", &position))
            .expect("base64url");
        assert!(
            nonces.insert(bytes[VERSION..VERSION + NONCE].to_vec()),
            "a nonce repeated"
        );
    }
}

/// The key that signs local URLs and the key that seals cursors are apart: the same server
/// secret yields the same of each, another secret neither.
#[test]
fn one_secret_keys_both_purposes_apart() {
    let position = Position {
        last_sk: "con_01".into(),
        descending: true,
    };
    let cursor = seal(
        &CursorKey::from_secret("deployment secret"),
        "SPACE#a#contacts",
        &position,
    );
    assert_eq!(
        open(
            &CursorKey::from_secret("deployment secret"),
            "SPACE#a#contacts",
            &cursor
        ),
        Ok(position)
    );
    assert_eq!(
        open(&CursorKey::from_secret("another secret"), "SPACE#a#contacts", &cursor),
        Err(CursorError::Invalid)
    );
    assert_eq!(
        CursorKey::from_secret("deployment secret").sign("link", b"m"),
        CursorKey::from_secret("deployment secret").sign("link", b"m")
    );
    assert_ne!(
        CursorKey::from_secret("deployment secret").sign("link", b"m"),
        CursorKey::from_secret("deployment secret").sign("other", b"m")
    );
}
