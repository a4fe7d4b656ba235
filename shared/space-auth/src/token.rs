//! API tokens: `wks_live_` (space) or `wka_live_` (account), 32 random bytes in base62,
//! then a 6-character base62 CRC32 of everything before it.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

const RANDOM_BYTES: usize = 32;
/// 62^43 > 2^256, so 32 bytes always fit in 43 base62 digits.
const RANDOM_CHARS: usize = 43;
/// 62^6 > 2^32, so a CRC32 always fits in 6 base62 digits.
const CHECKSUM_CHARS: usize = 6;
/// In ASCII order, so fixed-width base62 strings compare like the numbers they spell.
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// 2^256 - 1 in 43 base62 digits: the largest random part 32 bytes can spell.
const MAX_RANDOM: &[u8; RANDOM_CHARS] = b"yhjskwdA6OZ1AL1YmHWZWm8LLG7HjnuCA2j5rOw8Xp1";
/// How many characters of the random part a key list shows.
const DISPLAY_CHARS: usize = 6;

/// Which kind of principal a token authenticates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// A key locked to one Space.
    Space,
    /// An owner key that manages spaces, keys and secret values.
    Account,
}

impl TokenKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            TokenKind::Space => "wks_live_",
            TokenKind::Account => "wka_live_",
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            TokenKind::Space => "space",
            TokenKind::Account => "account",
        }
    }
}

/// Why a presented token was rejected without looking it up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the API key does not start with wks_live_ or wka_live_")]
    UnknownPrefix,
    #[error("the API key has the wrong length")]
    WrongLength,
    #[error("the API key contains characters that are not base62")]
    BadCharacter,
    #[error("the API key's checksum does not match; it was probably mistyped or truncated")]
    BadChecksum,
}

/// A well-formed token. Holding one proves the format and checksum are right, not that
/// the key exists.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    kind: TokenKind,
    text: String,
}

impl Token {
    /// Mints a fresh token from the operating system's random source.
    pub fn generate(kind: TokenKind) -> Token {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Self::from_random_bytes(kind, bytes)
    }

    /// Builds the token for given random bytes; deterministic, for tests and fuzzing.
    pub fn from_random_bytes(kind: TokenKind, bytes: [u8; RANDOM_BYTES]) -> Token {
        let mut text = String::with_capacity(kind.prefix().len() + RANDOM_CHARS + CHECKSUM_CHARS);
        text.push_str(kind.prefix());
        text.push_str(&encode_base62(&bytes, RANDOM_CHARS));
        let checksum = checksum_digits(text.as_bytes());
        text.extend(checksum.iter().map(|&digit| char::from(digit)));
        Token { kind, text }
    }

    /// Checks prefix, length, alphabet and checksum. Costs no I/O.
    pub fn parse(text: &str) -> Result<Token, TokenError> {
        let kind = if text.starts_with(TokenKind::Space.prefix()) {
            TokenKind::Space
        } else if text.starts_with(TokenKind::Account.prefix()) {
            TokenKind::Account
        } else {
            return Err(TokenError::UnknownPrefix);
        };
        let body = &text[kind.prefix().len()..];
        if body.len() != RANDOM_CHARS + CHECKSUM_CHARS {
            return Err(TokenError::WrongLength);
        }
        if !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(TokenError::BadCharacter);
        }
        let (signed, checksum) = text.split_at(text.len() - CHECKSUM_CHARS);
        let expected = checksum_digits(signed.as_bytes());
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], checksum.as_bytes())) {
            return Err(TokenError::BadChecksum);
        }
        // 43 base62 digits can exceed 2^256; a value that does was not minted by us.
        if body.as_bytes()[..RANDOM_CHARS] > MAX_RANDOM[..] {
            return Err(TokenError::BadCharacter);
        }
        Ok(Token {
            kind,
            text: text.to_owned(),
        })
    }

    pub fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The secret itself. Show it once, at creation, and never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// SHA-256 of the token: the only form that is ever stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.text)
    }

    /// What a key list shows so an owner can tell keys apart, e.g. `wks_live_3xQ9aB…`.
    pub fn display_prefix(&self) -> String {
        let cut = self.kind.prefix().len() + DISPLAY_CHARS;
        format!("{}…", &self.text[..cut])
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret, not even in a debug log.
        write!(f, "Token({})", self.display_prefix())
    }
}

/// Lowercase hex SHA-256 of a token.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    fn of(text: &str) -> TokenHash {
        let digest = Sha256::digest(text.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0x0f)]));
        }
        TokenHash(hex)
    }

    /// Rebuilds a hash read back from storage.
    pub fn from_stored(hex: String) -> TokenHash {
        TokenHash(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", &self.0[..8.min(self.0.len())])
    }
}

/// Big-endian bytes to a fixed-width base62 string (left-padded with '0').
fn encode_base62(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    for _ in 0..width {
        // Long division of the big-endian number by 62, keeping the remainder.
        let mut remainder: u32 = 0;
        for byte in number.iter_mut() {
            let accumulator = (remainder << 8) | u32::from(*byte);
            *byte = (accumulator / 62) as u8;
            remainder = accumulator % 62;
        }
        digits.push(ALPHABET[remainder as usize]);
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// The CRC32 of `signed` in 6 base62 digits.
fn checksum_digits(signed: &[u8]) -> [u8; CHECKSUM_CHARS] {
    let mut crc = crc32fast::hash(signed);
    let mut digits = [b'0'; CHECKSUM_CHARS];
    for digit in digits.iter_mut().rev() {
        *digit = ALPHABET[(crc % 62) as usize];
        crc /= 62;
    }
    digits
}

/// Decodes base62 into `len` big-endian bytes; `None` if the value does not fit.
#[cfg(test)]
fn decode_base62_fits(text: &str, len: usize) -> Option<Vec<u8>> {
    let mut number = vec![0u8; len];
    for c in text.bytes() {
        let digit = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        let mut carry = u32::from(digit);
        for byte in number.iter_mut().rev() {
            let accumulator = u32::from(*byte) * 62 + carry;
            *byte = (accumulator & 0xff) as u8;
            carry = accumulator >> 8;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let token = Token::generate(TokenKind::Space);
        assert!(token.expose().starts_with("wks_live_"));
        assert_eq!(token.expose().len(), 9 + 43 + 6);
        assert_eq!(Token::parse(token.expose()), Ok(token.clone()));
        assert_eq!(Token::generate(TokenKind::Account).kind(), TokenKind::Account);
    }

    #[test]
    fn hash_is_hex_sha256_and_debug_hides_the_secret() {
        let token = Token::from_random_bytes(TokenKind::Space, [7; 32]);
        assert_eq!(token.hash().as_str().len(), 64);
        assert!(!format!("{token:?}").contains(&token.expose()[20..]));
        assert!(token.display_prefix().starts_with("wks_live_"));
    }

    #[test]
    fn rejects_wrong_prefix_length_and_alphabet() {
        let token = Token::generate(TokenKind::Space);
        let text = token.expose();
        assert_eq!(Token::parse("Bearer"), Err(TokenError::UnknownPrefix));
        assert_eq!(Token::parse(&text[..text.len() - 1]), Err(TokenError::WrongLength));
        let mut bad = text.to_owned();
        bad.replace_range(20..21, "-");
        assert_eq!(Token::parse(&bad), Err(TokenError::BadCharacter));
    }

    #[test]
    fn the_largest_random_part_is_two_to_the_256_minus_one() {
        assert_eq!(
            encode_base62(&[0xff; RANDOM_BYTES], RANDOM_CHARS).as_bytes(),
            MAX_RANDOM
        );
        assert_eq!(
            decode_base62_fits(std::str::from_utf8(MAX_RANDOM).unwrap(), RANDOM_BYTES),
            Some(vec![0xff; 32])
        );
        let mut over = *MAX_RANDOM;
        over[RANDOM_CHARS - 1] += 1;
        assert_eq!(
            decode_base62_fits(std::str::from_utf8(&over).unwrap(), RANDOM_BYTES),
            None
        );
        // A token whose random part is above the maximum is refused even with a valid checksum.
        let mut text = format!("wks_live_{}", std::str::from_utf8(&over).unwrap());
        let checksum = checksum_digits(text.as_bytes());
        text.push_str(std::str::from_utf8(&checksum).unwrap());
        assert_eq!(Token::parse(&text), Err(TokenError::BadCharacter));
        let zero = format!("wks_live_{}", "0".repeat(RANDOM_CHARS));
        let valid = format!(
            "{zero}{}",
            std::str::from_utf8(&checksum_digits(zero.as_bytes())).unwrap()
        );
        assert!(Token::parse(&valid).is_ok());
    }

    #[test]
    fn checksum_digits_are_the_crc32_in_base62() {
        let crc = crc32fast::hash(b"wks_live_abc");
        assert_eq!(
            checksum_digits(b"wks_live_abc").to_vec(),
            encode_base62(&crc.to_be_bytes(), CHECKSUM_CHARS).into_bytes()
        );
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::array::uniform32(any::<u8>()), account in any::<bool>()) {
            let kind = if account { TokenKind::Account } else { TokenKind::Space };
            let token = Token::from_random_bytes(kind, bytes);
            prop_assert_eq!(Token::parse(token.expose()), Ok(token.clone()));
            let decoded = decode_base62_fits(&token.expose()[9..52], 32);
            prop_assert_eq!(decoded, Some(bytes.to_vec()));
        }

        #[test]
        fn every_single_character_corruption_is_rejected(
            bytes in proptest::array::uniform32(any::<u8>()),
            position in 0usize..58,
            replacement in proptest::char::range('!', '~'),
        ) {
            let token = Token::from_random_bytes(TokenKind::Space, bytes);
            let mut chars: Vec<char> = token.expose().chars().collect();
            prop_assume!(chars[position] != replacement);
            chars[position] = replacement;
            let corrupted: String = chars.into_iter().collect();
            prop_assert!(Token::parse(&corrupted).is_err());
        }
    }
}
