//! Tokens through their public API: every minted token parses back to itself, and no
//! single-character mistake (a wrong character anywhere, one dropped, one added) ever
//! parses — the checksum catches what the format alone would not.

use proptest::prelude::*;
use space_auth::{Token, TokenError, TokenKind};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn kind() -> impl Strategy<Value = TokenKind> {
    prop_oneof![Just(TokenKind::Space), Just(TokenKind::Account)]
}

fn token() -> impl Strategy<Value = Token> {
    (kind(), proptest::array::uniform32(any::<u8>())).prop_map(|(kind, bytes)| Token::from_random_bytes(kind, bytes))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_minted_token_parses_back_to_itself(token in token()) {
        let parsed = Token::parse(token.expose());
        prop_assert_eq!(parsed.as_ref(), Ok(&token));
        let parsed = parsed.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(parsed.kind(), token.kind());
        prop_assert_eq!(parsed.hash(), token.hash());
        prop_assert!(token.expose().starts_with(token.kind().prefix()));
        prop_assert_eq!(token.expose().len(), 9 + 43 + 6);
    }

    #[test]
    fn generated_tokens_parse_too(kind in kind()) {
        let token = Token::generate(kind);
        prop_assert_eq!(Token::parse(token.expose()), Ok(token));
    }

    /// Exhaustive per token: each of the 58 positions with each of the other 61 base62
    /// characters (and, in the prefix, any printable ASCII).
    #[test]
    fn every_substitution_is_rejected(token in token()) {
        let text = token.expose().as_bytes();
        for position in 0..text.len() {
            for &replacement in BASE62.iter().chain(b"_-.~ +/=") {
                if replacement == text[position] {
                    continue;
                }
                let mut corrupted = text.to_vec();
                corrupted[position] = replacement;
                let corrupted = String::from_utf8(corrupted).map_err(|e| TestCaseError::fail(e.to_string()))?;
                let parsed = Token::parse(&corrupted);
                prop_assert!(parsed.is_err(), "accepted {corrupted} (from {position})");
                if position >= 9 && BASE62.contains(&replacement) {
                    // In the base62 part a valid character can only fail the checksum.
                    prop_assert_eq!(parsed, Err(TokenError::BadChecksum));
                }
            }
        }
    }

    #[test]
    fn every_deletion_is_rejected(token in token()) {
        let text = token.expose();
        for position in 0..text.len() {
            let mut corrupted = text.to_owned();
            corrupted.remove(position);
            prop_assert!(Token::parse(&corrupted).is_err(), "accepted a deletion at {position}");
        }
    }

    #[test]
    fn every_insertion_is_rejected(token in token()) {
        let text = token.expose();
        for position in 0..=text.len() {
            for &inserted in BASE62 {
                let mut corrupted = text.to_owned();
                corrupted.insert(position, char::from(inserted));
                prop_assert!(Token::parse(&corrupted).is_err(), "accepted an insertion at {position}");
            }
        }
    }

    /// Swapping two neighbouring characters is the other common typo.
    #[test]
    fn every_transposition_is_rejected(token in token()) {
        let text = token.expose().as_bytes();
        for position in 0..text.len() - 1 {
            if text[position] == text[position + 1] {
                continue;
            }
            let mut corrupted = text.to_vec();
            corrupted.swap(position, position + 1);
            let corrupted = String::from_utf8(corrupted).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(Token::parse(&corrupted).is_err(), "accepted a transposition at {position}");
        }
    }

    /// Arbitrary text never panics the parser, and what it accepts is a real token.
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        if let Ok(token) = Token::parse(&text) {
            prop_assert_eq!(token.expose(), text.as_str());
        }
    }

    /// A random tail after a valid prefix is refused unless its checksum happens to hold.
    #[test]
    fn forged_bodies_are_rejected(kind in kind(), body in "[0-9A-Za-z]{49}") {
        let text = format!("{}{body}", kind.prefix());
        if let Ok(token) = Token::parse(&text) {
            // 1 in 62^6: only a correct checksum gets through, and then it round-trips.
            prop_assert_eq!(token.expose(), text.as_str());
        }
    }
}
