//! Any bytes as the JSON body of a create. The input's first line names one of the
//! catalogue's operations that take a JSON body on a collection (no path parameters) by
//! its path, e.g. `tasks` or `booking/pages` (any other first line picks one by its
//! bytes); the rest is sent through the whole app with a full-scope key. Parsing,
//! validation and the handler must answer 2xx or 4xx in the error envelope, never 5xx,
//! never panic.

#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use libfuzzer_sys::fuzz_target;
use space_fuzz::{Harness, check};
use space_http::operation::Access;

/// (method, full path) of every space operation with a JSON body and no path parameter.
fn targets() -> &'static [(http::Method, String)] {
    static TARGETS: OnceLock<Vec<(http::Method, String)>> = OnceLock::new();
    TARGETS.get_or_init(|| {
        let mut targets: Vec<_> = space_catalogue::operations()
            .into_iter()
            .filter(|o| o.body.is_some() && !o.raw_body && !o.path.contains('{'))
            .filter(|o| matches!(o.access, Access::Space(_)))
            .map(|o| (o.method.clone(), o.full_path()))
            .collect();
        targets.sort_by(|a, b| (&a.1, a.0.as_str()).cmp(&(&b.1, b.0.as_str())));
        targets
    })
}

fuzz_target!(|data: &[u8]| {
    let (name, body) = match data.iter().position(|&b| b == b'\n') {
        Some(end) => (&data[..end], &data[end + 1..]),
        None => (&data[..0], data),
    };
    let targets = targets();
    let named = std::str::from_utf8(name)
        .ok()
        .filter(|name| !name.is_empty())
        .and_then(|name| targets.iter().find(|(_, path)| path.ends_with(&format!("/{name}"))));
    let (method, path) = named.unwrap_or_else(|| {
        let pick = name.iter().map(|&b| usize::from(b)).sum::<usize>();
        &targets[pick % targets.len()]
    });
    Harness::with(|harness| {
        let request = http::Request::builder()
            .method(method.clone())
            .uri(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", harness.space_key))
            .body(Body::from(body.to_vec()))
            .expect("a request");
        let answer = harness.send(request);
        check(&answer, &format!("{method} {path}"));
    });
});
