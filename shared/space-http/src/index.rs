//! Indexes a resource keeps beside its items, so that an exact lookup (`?email=`) or a
//! word search (`?q=`) reads a few index entries instead of scanning the collection.
//!
//! Entries are plain items written in the same store transaction as the item they point
//! at (create, update, replace, delete, import): a reader never sees one without the other.
//! Three shapes, all under the Space's partition (keys built in [`crate::keys`]):
//!
//! - a **unique lookup** claims its value: `SPACE#<space>#UNIQUE#<scope>.<field>` /
//!   `<value>`, body `{"id"}`, put with a `NotExists` condition, so two items can never
//!   hold one value, whatever the concurrency;
//! - a **lookup** (several items may share the value): `SPACE#<space>#IDX#<scope>#<field>` /
//!   `<value>#<id>`;
//! - **search words**: `SPACE#<space>#SEARCH#<scope>` / `<word>#<id>`, one entry per
//!   distinct word of the searchable fields, at most [`MAX_WORDS`] per item; a word prefix
//!   is a sort-key range of that partition.
//!
//! `<scope>` is the collection, or `<collection>#<parent id>` for a child resource.

use std::collections::HashSet;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// The most words of one item the search index holds: an item has at most this many
/// search entries (plus one per lookup field), so a write stays within one transaction
/// (a change of every word is 2 × 32 writes, with the item and its event under 100).
pub const MAX_WORDS: usize = 32;

/// Words are indexed and compared on their first this many characters.
pub const MAX_WORD_CHARS: usize = 24;

/// The words of `texts` as the index holds them, in the order they first appear, each
/// once, at most [`MAX_WORDS`]: split on anything that is not a letter or a digit,
/// lowercased, accents removed (`Zoë` → `zoe`). A German umlaut or `ß` also gives its
/// spelled-out form (`Müller` → `muller` and `mueller`), so both spellings of the query
/// find it; `mueller` typed for a `Mueller` stays `mueller` (the reverse cannot be known).
///
/// A long number (a phone number) is also indexed without its first one to
/// [`MAX_DROPPED_DIGITS`] digits, so `5550109999` finds `+15550109999` whatever the
/// length of the country code.
pub fn index_words<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    words_up_to(texts, MAX_WORDS)
}

/// [`index_words`] with another bound than [`MAX_WORDS`]: for an index written apart from
/// the item's transaction (long text indexed in batches by a job), which may hold many.
pub fn words_up_to<'a>(texts: impl IntoIterator<Item = &'a str>, max: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for text in texts {
        for raw in split_words(text) {
            let (plain, spelled) = fold(raw);
            let shorter = number_tails(&plain);
            for word in [Some(plain), spelled].into_iter().flatten().chain(shorter) {
                if words.len() == max {
                    return words;
                }
                if !word.is_empty() && seen.insert(word.clone()) {
                    words.push(word);
                }
            }
        }
    }
    words
}

/// The words of a query, folded like [`index_words`] but without the spelled-out
/// alternative: `müller` looks for `muller…`, which both `Müller` and `Muller` hold.
///
/// A query written like a phone number (`+1 (555) 010-9999`) is one word of its digits.
pub fn query_words(query: &str) -> Vec<String> {
    let phone_like = query.chars().all(|c| c.is_ascii_digit() || " +()-./".contains(c));
    let digits: String = query.chars().filter(char::is_ascii_digit).collect();
    if phone_like && digits.len() >= MIN_NUMBER_DIGITS {
        return vec![digits.chars().take(MAX_WORD_CHARS).collect()];
    }
    let mut words: Vec<String> = Vec::new();
    for raw in split_words(query) {
        let (plain, _) = fold(raw);
        if !plain.is_empty() && !words.contains(&plain) {
            words.push(plain);
        }
    }
    words
}

/// Whether every query word starts some indexed word.
pub fn words_match(indexed: &[String], query: &[String]) -> bool {
    query
        .iter()
        .all(|q| indexed.iter().any(|word| word.starts_with(q.as_str())))
}

/// Numbers of at least this many digits are phone-like: indexed with their tails, and
/// queried as one word.
const MIN_NUMBER_DIGITS: usize = 7;

/// The most leading digits a number is also indexed without (a country code and a trunk
/// prefix).
pub const MAX_DROPPED_DIGITS: usize = 4;

/// `word` without its first 1 to [`MAX_DROPPED_DIGITS`] digits, when it is a long number.
fn number_tails(word: &str) -> Vec<String> {
    if word.len() < MIN_NUMBER_DIGITS || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Vec::new();
    }
    (1..=MAX_DROPPED_DIGITS)
        .filter(|dropped| word.len() - dropped >= MIN_NUMBER_DIGITS - 1)
        .map(|dropped| word[dropped..].to_owned())
        .collect()
}

fn split_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
}

/// A word lowercased without accents, and its spelled-out form when it had an umlaut or ß.
fn fold(word: &str) -> (String, Option<String>) {
    let mut plain = String::with_capacity(word.len());
    let mut spelled = String::with_capacity(word.len() + 2);
    let mut differs = false;
    for c in word.chars().flat_map(char::to_lowercase) {
        let (flat, long): (&str, &str) = match c {
            'ä' => ("a", "ae"),
            'ö' => ("o", "oe"),
            'ü' => ("u", "ue"),
            'ß' => ("ss", "ss"),
            'æ' => ("ae", "ae"),
            'œ' => ("oe", "oe"),
            'ø' => ("o", "o"),
            'ł' => ("l", "l"),
            'đ' => ("d", "d"),
            'þ' => ("th", "th"),
            'ı' => ("i", "i"),
            _ => ("", ""),
        };
        if flat.is_empty() {
            for part in c.nfkd().filter(|p| !is_combining_mark(*p)) {
                plain.push(part);
                spelled.push(part);
            }
        } else {
            differs |= flat != long;
            plain.push_str(flat);
            spelled.push_str(long);
        }
    }
    let cut = |text: String| text.chars().take(MAX_WORD_CHARS).collect::<String>();
    let plain = cut(plain);
    let spelled = differs.then(|| cut(spelled)).filter(|s| *s != plain);
    (plain, spelled)
}

/// Splits an entry's sort key `<value>#<id>` when its value is exactly `value`: ids never
/// hold `#`, values may, so the id is what follows the value and its separator.
pub fn entry_id<'a>(sk: &'a str, value: &str) -> Option<&'a str> {
    let id = sk.strip_prefix(value)?.strip_prefix('#')?;
    (!id.is_empty() && !id.contains('#')).then_some(id)
}

/// The word of a search entry's sort key `<word>#<id>` (words never hold `#`).
pub fn entry_word(sk: &str) -> &str {
    sk.split_once('#').map_or(sk, |(word, _)| word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_folded_split_and_bounded() {
        assert_eq!(
            index_words(["Zoë O'Brien-Smith", "ada@Example.com"]),
            ["zoe", "o", "brien", "smith", "ada", "example", "com"]
        );
        assert_eq!(index_words(["Müller"]), ["muller", "mueller"]);
        assert_eq!(index_words(["Straße"]), ["strasse"]);
        assert_eq!(
            index_words(["Ørsted Łódź Ångström"]),
            ["orsted", "lodz", "angstrom", "angstroem"]
        );
        let many: String = (0..100).map(|n| format!("w{n} ")).collect();
        assert_eq!(index_words([many.as_str()]).len(), MAX_WORDS);
        let long = "a".repeat(100);
        assert_eq!(index_words([long.as_str()]), ["a".repeat(MAX_WORD_CHARS)]);
    }

    #[test]
    fn queries_match_word_prefixes_in_any_spelling() {
        let mueller = index_words(["Anna Müller"]);
        for query in ["müller", "MULLER", "mueller", "mü", "ann mül"] {
            assert!(words_match(&mueller, &query_words(query)), "{query}");
        }
        assert!(!words_match(&index_words(["Anna Mueller"]), &query_words("müller")));
        assert!(!words_match(&mueller, &query_words("nna")), "prefixes, not substrings");
    }

    #[test]
    fn phone_numbers_match_with_or_without_country_code_and_formatting() {
        let phone = index_words(["+15550109999"]);
        assert_eq!(phone.len(), 5);
        for query in ["+1 (555) 010-9999", "(555) 010-9999", "5550109999", "+1555", "555 010"] {
            assert!(words_match(&phone, &query_words(query)), "{query}");
        }
        assert!(!words_match(&phone, &query_words("9999")));
        assert_eq!(index_words(["2026"]), ["2026"], "short numbers are words");
    }

    #[test]
    fn entry_keys_split_only_at_the_exact_value() {
        assert_eq!(entry_id("+4930#con_1", "+4930"), Some("con_1"));
        assert_eq!(entry_id("a#b@x.io#con_1", "a"), None);
        assert_eq!(entry_id("a#b@x.io#con_1", "a#b@x.io"), Some("con_1"));
        assert_eq!(entry_word("ada#con_1"), "ada");
    }
}
