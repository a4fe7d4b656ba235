//! The committed list of operation names (`operations.txt`, which the agents family reads
//! to check an agent's `operations`) is the catalogue's own list.

use std::path::Path;

use space_catalogue::{OPERATIONS_PATH, operation_names};

#[test]
fn the_committed_operation_names_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("operations.txt");
    let generated = operation_names();
    if std::env::var_os("UPDATE_OPERATIONS").is_some() {
        std::fs::write(&path, &generated).expect("operations.txt is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{OPERATIONS_PATH} is stale (a family's operations changed): run \
         `UPDATE_OPERATIONS=1 cargo test -p space-catalogue --test operations`, rebuild, and commit the file"
    );
}

#[test]
fn every_listed_name_is_one_operation() {
    let names: Vec<String> = operation_names()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let unique: std::collections::BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "operation names are unique");
    assert!(
        names
            .iter()
            .all(|name| !name.is_empty() && !name.contains(char::is_whitespace))
    );
}

/// `docs/events.md` is the catalogue's table of event types.
#[test]
fn the_committed_event_types_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events.md");
    let generated = format!(
        "# Event types\n\n<!-- Generated from the event catalogue (space-http's event_types): \
         UPDATE_EVENTS=1 cargo test -p space-catalogue --test operations -->\n\n{}",
        space_catalogue::llms::event_types_table()
    );
    if std::env::var_os("UPDATE_EVENTS").is_some() {
        std::fs::write(&path, &generated).expect("docs/events.md is writable");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/events.md is stale: run `UPDATE_EVENTS=1 cargo test -p space-catalogue --test operations` and commit it"
    );
}
