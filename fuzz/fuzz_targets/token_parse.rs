//! Any text through the token parser: never a panic, and whatever parses is exactly a
//! token we could have minted. Inputs of 33+ bytes also mint a token from their first 32
//! bytes, which must parse back.

#![no_main]

use libfuzzer_sys::fuzz_target;
use space_auth::{Token, TokenKind};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(token) = Token::parse(text)
    {
        assert_eq!(token.expose(), text);
        assert!(text.starts_with(token.kind().prefix()));
        assert_eq!(token.hash().as_str().len(), 64);
        assert!(!format!("{token:?}").contains(&text[20..]), "Debug shows the secret");
    }
    if let Some((bytes, rest)) = data.split_first_chunk::<32>() {
        let kind = if rest.first().is_some_and(|b| b & 1 == 1) {
            TokenKind::Account
        } else {
            TokenKind::Space
        };
        let token = Token::from_random_bytes(kind, *bytes);
        assert_eq!(Token::parse(token.expose()), Ok(token));
    }
});
