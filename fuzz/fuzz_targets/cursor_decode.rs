//! Any text as a cursor: opening it answers a position or an error, never a panic. Only
//! a cursor sealed with this key for this list opens (the seed corpus holds some): it
//! opens for no other list, and not at all once one of its characters is changed. The
//! input (its first 1024 bytes, a sort key's limit) also seals as a position, which must
//! open again, and only for its own list.

#![no_main]

use libfuzzer_sys::fuzz_target;
use space_http::cursor::{CursorKey, Position, open, seal};

const BINDING: &str = "SPACE#spc_fuzz#contacts";
const OTHER: &str = "SPACE#spc_other#contacts";

/// The cursor with the character at `index` (mod its length) replaced by another.
fn tampered(cursor: &str, index: usize) -> String {
    let mut bytes = cursor.as_bytes().to_vec();
    let index = index % bytes.len().max(1);
    if let Some(byte) = bytes.get_mut(index) {
        *byte = if *byte == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let key = CursorKey::new([7; 32]);
    let text = String::from_utf8_lossy(data);
    let index = data.iter().map(|&b| usize::from(b)).sum::<usize>();
    if open(&key, BINDING, &text).is_ok() {
        assert!(open(&key, OTHER, &text).is_err(), "a cursor opened for another list");
        let changed = tampered(&text, index);
        assert!(
            changed == text || open(&key, BINDING, &changed).is_err(),
            "a changed cursor opened: {changed}"
        );
    }

    // A sort key is at most 1024 bytes (DynamoDB's limit).
    let mut last_sk = text.clone().into_owned();
    let mut end = last_sk.len().min(1024);
    while !last_sk.is_char_boundary(end) {
        end -= 1;
    }
    last_sk.truncate(end);
    let position = Position {
        last_sk,
        descending: data.len() % 2 == 1,
    };
    let cursor = seal(&key, BINDING, &position);
    assert_eq!(open(&key, BINDING, &cursor), Ok(position));
    assert!(
        open(&key, OTHER, &cursor).is_err(),
        "a sealed cursor opened for another list"
    );
    assert!(
        open(&key, BINDING, &tampered(&cursor, index)).is_err(),
        "a changed cursor opened"
    );
});
