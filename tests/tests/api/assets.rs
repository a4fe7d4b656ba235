//! Assets end to end on both backends: media in by multipart, base64 JSON and presigned
//! upload (files under the embedded backend, S3 on moto under the DynamoDB one), content
//! sniffing, size limits, downloads, deletion of the bytes, characters' references, the
//! scope matrix and Space isolation.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};
use space_auth::{Scope, ScopeSet};
use space_http::Access;
use space_tests::{Backend, PNG, SPACE_API, TestApp, on_both_backends};

on_both_backends!(
    direct_uploads_by_base64_json_and_multipart,
    declared_types_are_checked_against_the_bytes_and_sizes_are_limited,
    presigned_upload_then_download,
    presigned_uploads_are_checked_when_they_arrive,
    deleting_media_removes_its_bytes,
    characters_reference_ready_media_of_their_space,
    media_tools_take_base64_over_mcp,
    every_assets_operation_needs_its_scope,
    another_spaces_assets_are_not_found,
);

fn seed_body(filename: &str) -> Value {
    json!({"filename": filename, "content_type": "image/png", "content_base64": STANDARD.encode(PNG)})
}

/// One part of a multipart body: its name, `(filename, content type)` for files, its bytes.
type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A multipart/form-data body.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----space-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, content_type)) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n")
                    .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload_png(app: &TestApp, filename: &str) -> Value {
    app.space(Method::POST, "/media")
        .json(seed_body(filename))
        .send()
        .await
        .expect(201)
        .body
}

/// A plain request to a URL the API handed out (a signed local link or S3).
async fn fetch(app: &TestApp, method: Method, url: &str) -> reqwest::Response {
    assert!(url.starts_with("http://"), "links are absolute: {url}");
    app.client.request(method, url).send().await.expect("the link answers")
}

fn media_key(app: &TestApp, id: &str) -> String {
    space_http::keys::media_blob(&app.demo.space_id, id)
}

async fn direct_uploads_by_base64_json_and_multipart(app: TestApp) {
    // The seed's own request.
    let response = app
        .space(Method::POST, "/media")
        .json(seed_body("dot.png"))
        .send()
        .await
        .expect(201);
    let dot = response.body.clone();
    assert!(dot["id"].as_str().unwrap().starts_with("med_"));
    assert_eq!(
        (
            dot["status"].as_str(),
            dot["content_type"].as_str(),
            dot["size"].as_u64()
        ),
        (Some("ready"), Some("image/png"), Some(70))
    );
    assert_eq!(dot["filename"], "dot.png");
    assert_eq!(response.header("etag"), Some("\"1\""));
    let download = fetch(&app, Method::GET, dot["download_url"].as_str().unwrap()).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    if app.backend == Backend::Embedded {
        let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
        assert!(
            disposition.starts_with("inline;") && disposition.contains("filename=\"dot.png\""),
            "{disposition}"
        );
        assert_eq!(download.headers()["x-content-type-options"], "nosniff");
    }
    assert_eq!(download.bytes().await.unwrap().as_ref(), PNG);

    // Multipart with optional fields; the part's name and type are used.
    let (content_type, body) = multipart(&[
        ("file", Some(("C:\\fakepath\\logo.png", "image/png")), PNG),
        ("description", None, b"Our logo"),
        ("tags", None, b"brand, logo"),
    ]);
    let logo = app
        .space(Method::POST, "/media")
        .raw(&content_type, body)
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(logo["filename"], "logo.png", "paths are stripped from file names");
    assert_eq!(logo["description"], "Our logo");
    assert_eq!(logo["tags"], json!(["brand", "logo"]));
    // The type comes from the bytes when the client declares only octet-stream.
    let (content_type, body) = multipart(&[("file", Some(("blob.bin", "application/octet-stream")), PNG)]);
    let sniffed = app
        .space(Method::POST, "/media")
        .raw(&content_type, body)
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(sniffed["content_type"], "image/png");
    // Text, with a name that needs encoding in Content-Disposition.
    let notes = app
        .space(Method::POST, "/media")
        .json(json!({"filename": "Notes \"Q1\" é.txt", "content_type": "text/plain; charset=utf-8", "content_base64": STANDARD.encode("héllo")}))
        .send()
        .await
        .expect(201)
        .body;
    assert_eq!(notes["content_type"], "text/plain");
    if app.backend == Backend::Embedded {
        let download = fetch(&app, Method::GET, notes["download_url"].as_str().unwrap()).await;
        let disposition = download.headers()["content-disposition"].to_str().unwrap().to_owned();
        assert!(disposition.starts_with("attachment;"), "{disposition}");
        assert!(
            disposition.contains("filename*=UTF-8''Notes%20%22Q1%22%20%C3%A9.txt"),
            "{disposition}"
        );
    }

    // Lists filter by kind, status and text; they carry no links.
    let all = app.space(Method::GET, "/media").send().await.expect(200);
    assert_eq!(all.body["data"].as_array().unwrap().len(), 4);
    assert!(all.body["data"][0].get("download_url").is_none());
    let images = app
        .space(Method::GET, "/media?content_type=image/*")
        .send()
        .await
        .expect(200);
    assert_eq!(images.body["data"].as_array().unwrap().len(), 3);
    let pending = app.space(Method::GET, "/media?status=pending").send().await.expect(200);
    assert_eq!(pending.body["data"].as_array().unwrap().len(), 0);
    let found = app
        .space(Method::GET, "/media?q=logo&tag=brand")
        .send()
        .await
        .expect(200);
    assert_eq!(found.body["data"][0]["id"], logo["id"]);
    app.space(Method::GET, "/media?content_type=nonsense&status=lost")
        .send()
        .await
        .expect(422);

    // Metadata edits; what the bytes decided cannot be edited.
    let id = dot["id"].as_str().unwrap();
    let edited = app
        .space(Method::PATCH, &format!("/media/{id}"))
        .json(json!({"alt_text": "A dot"}))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (edited.body["alt_text"].as_str(), edited.body["content_type"].as_str()),
        (Some("A dot"), Some("image/png"))
    );
    let refused = app
        .space(Method::PATCH, &format!("/media/{id}"))
        .json(json!({"content_type": "text/plain", "size": 1}))
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["content_type"].is_array());
    let got = app.space(Method::GET, &format!("/media/{id}")).send().await.expect(200);
    assert_eq!(
        (got.body["alt_text"].as_str(), got.body["version"].as_u64()),
        (Some("A dot"), Some(2))
    );
    assert!(got.body["download_url"].is_string() && got.body["download_expires_at"].is_string());
    let events = app.event_types().await;
    assert_eq!(events.iter().filter(|t| *t == "media.created").count(), 4);
    assert_eq!(events.iter().filter(|t| *t == "media.updated").count(), 1);
}

async fn declared_types_are_checked_against_the_bytes_and_sizes_are_limited(app: TestApp) {
    let mismatch = app
        .space(Method::POST, "/media")
        .json(json!({"filename": "dot.jpg", "content_type": "image/jpeg", "content_base64": STANDARD.encode(PNG)}))
        .send()
        .await
        .expect(422);
    let message = mismatch.body["error"]["fields"]["content_type"][0]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("image/png"), "{message}");
    let (content_type, body) = multipart(&[("file", Some(("x.png", "image/png")), b"not a picture")]);
    let refused = app
        .space(Method::POST, "/media")
        .raw(&content_type, body)
        .send()
        .await
        .expect(422);
    assert!(refused.body["error"]["fields"]["content_type"].is_array());
    let (content_type, body) = multipart(&[("file", Some(("x.txt", "text/plain")), PNG)]);
    app.space(Method::POST, "/media")
        .raw(&content_type, body)
        .send()
        .await
        .expect(422);

    let missing = app
        .space(Method::POST, "/media")
        .json(json!({"colour": "red"}))
        .send()
        .await
        .expect(422);
    let fields = missing.body["error"]["fields"].as_object().unwrap();
    for field in ["filename", "content_type", "content_base64", "colour"] {
        assert!(fields.contains_key(field), "{field} not named: {}", missing.text);
    }
    let garbage = app
        .space(Method::POST, "/media")
        .json(json!({"filename": "a.png", "content_type": "image/png", "content_base64": "!!not base64!!"}))
        .send()
        .await
        .expect(422);
    assert!(garbage.body["error"]["fields"]["content_base64"].is_array());
    let bad_type = app
        .space(Method::POST, "/media")
        .json(json!({"filename": "a.png", "content_type": "png", "content_base64": STANDARD.encode(PNG)}))
        .send()
        .await
        .expect(422);
    assert!(bad_type.body["error"]["fields"]["content_type"].is_array());
    let (content_type, body) = multipart(&[("description", None, b"no file")]);
    let no_file = app
        .space(Method::POST, "/media")
        .raw(&content_type, body)
        .send()
        .await
        .expect(422);
    assert!(no_file.body["error"]["fields"]["file"].is_array());
    let raw = app
        .space(Method::POST, "/media")
        .raw("image/png", PNG.to_vec())
        .send()
        .await
        .expect(415);
    assert_eq!(raw.error_code(), "UNSUPPORTED_MEDIA_TYPE");
    app.space(Method::POST, "/media")
        .raw("multipart/form-data", b"x".to_vec())
        .send()
        .await
        .expect(400);

    // Over the direct limit: 413, whichever way it comes.
    let mut big = PNG.to_vec();
    big.resize(assets::MAX_DIRECT_BYTES + 1, 0);
    let too_big = app
        .space(Method::POST, "/media")
        .json(json!({"filename": "big.png", "content_type": "image/png", "content_base64": STANDARD.encode(&big)}))
        .send()
        .await
        .expect(413);
    assert_eq!(too_big.error_code(), "PAYLOAD_TOO_LARGE");
    let (content_type, body) = multipart(&[("file", Some(("big.png", "image/png")), &big)]);
    app.space(Method::POST, "/media")
        .raw(&content_type, body)
        .send()
        .await
        .expect(413);
    let announced = app
        .space(Method::POST, "/media/uploads")
        .json(json!({"filename": "huge.mov", "content_type": "video/quicktime", "size": assets::MAX_UPLOAD_BYTES + 1}))
        .send()
        .await
        .expect(413);
    assert_eq!(announced.error_code(), "PAYLOAD_TOO_LARGE");

    // Nothing of it was kept.
    let listed = app.space(Method::GET, "/media").send().await.expect(200);
    assert_eq!(listed.body["data"], json!([]));
    assert!(!app.event_types().await.iter().any(|t| t.starts_with("media.")));
}

async fn presigned_upload_then_download(app: TestApp) {
    let started = app
        .space(Method::POST, "/media/uploads")
        .json(json!({"filename": "dot.png", "content_type": "image/png", "size": PNG.len(), "description": "Big one"}))
        .send()
        .await
        .expect(201)
        .body;
    let id = started["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (started["status"].as_str(), started["size"].as_u64()),
        (Some("pending"), None)
    );
    assert!(started.get("download_url").is_none());
    let upload = &started["upload"];
    assert_eq!(upload["method"], "PUT");
    let url = upload["url"].as_str().unwrap().to_owned();
    match app.backend {
        Backend::Embedded => assert!(url.starts_with(&format!("{}/u/", app.base)), "{url}"),
        Backend::Dynamodb => assert!(url.contains("X-Amz-Signature="), "an S3 presigned URL: {url}"),
    }
    // A client can tell it is not there yet, and completing early is refused.
    let pending = app.space(Method::GET, &format!("/media/{id}")).send().await.expect(200);
    assert_eq!(pending.body["status"], "pending");
    assert!(
        pending.body["upload"]["url"].is_string(),
        "the upload link is handed out again"
    );
    let early = app
        .space(Method::POST, &format!("/media/{id}/complete"))
        .send()
        .await
        .expect(409);
    assert!(early.body["error"]["message"].as_str().unwrap().contains("PUT"));

    let mut put = app.client.put(&url).body(PNG.to_vec());
    for (name, value) in upload["headers"].as_object().unwrap() {
        put = put.header(name.as_str(), value.as_str().unwrap());
    }
    let uploaded = put.send().await.expect("the upload URL answers");
    assert!(
        uploaded.status().is_success(),
        "upload refused: {}",
        uploaded.text().await.unwrap_or_default()
    );
    if app.backend == Backend::Embedded {
        let local = app.space(Method::GET, &format!("/media/{id}")).send().await.expect(200);
        assert_eq!(local.body["status"], "ready", "a local upload completes on arrival");
        let again = app.client.put(&url).body(PNG.to_vec()).send().await.unwrap();
        assert_eq!(again.status(), 409, "a link uploads once");
        let forged = app
            .client
            .put(url.replace("/u/", "/u/x"))
            .body(PNG.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(forged.status(), 404);
        // A forged link is refused before its body is read: a client that declares 50 MB
        // and sends a kilobyte gets its 404 without the server waiting for the rest.
        let address = app.base.trim_start_matches("http://").to_owned();
        let mut socket = tokio::net::TcpStream::connect(&address).await.expect("a connection");
        let head = format!(
            "PUT /u/xforged HTTP/1.1\r\nHost: {address}\r\nContent-Type: image/png\r\nContent-Length: 50000000\r\n\r\n"
        );
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        socket.write_all(head.as_bytes()).await.expect("the head");
        socket.write_all(&[0_u8; 1024]).await.expect("a first kilobyte");
        let mut answer = [0_u8; 12];
        tokio::time::timeout(std::time::Duration::from_secs(20), socket.read_exact(&mut answer))
            .await
            .expect("answered without the rest of the body")
            .expect("an answer");
        assert_eq!(&answer, b"HTTP/1.1 404");
    }
    let completed = app
        .space(Method::POST, &format!("/media/{id}/complete"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        (completed.body["status"].as_str(), completed.body["size"].as_u64()),
        (Some("ready"), Some(70))
    );
    assert_eq!(completed.body["description"], "Big one");
    // Completing is idempotent.
    let again = app
        .space(Method::POST, &format!("/media/{id}/complete"))
        .send()
        .await
        .expect(200);
    assert_eq!(again.body["version"], completed.body["version"]);

    let item = app.space(Method::GET, &format!("/media/{id}")).send().await.expect(200);
    let download_url = item.body["download_url"].as_str().unwrap().to_owned();
    match app.backend {
        Backend::Embedded => assert!(download_url.starts_with(&format!("{}/d/", app.base))),
        Backend::Dynamodb => assert!(download_url.contains("X-Amz-Signature=")),
    }
    let download = fetch(&app, Method::GET, &download_url).await;
    assert_eq!(download.status(), 200);
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.bytes().await.unwrap().as_ref(), PNG);
    let events = app.event_types().await;
    assert!(
        events.contains(&"media.created".to_owned()) && events.contains(&"media.uploaded".to_owned()),
        "{events:?}"
    );
    // A download link cannot be used to upload, nor an upload link to download.
    if app.backend == Backend::Embedded {
        let swapped = download_url.replace("/d/", "/u/");
        assert_eq!(
            app.client
                .put(swapped)
                .body(PNG.to_vec())
                .send()
                .await
                .unwrap()
                .status(),
            404
        );
    }
}

async fn presigned_uploads_are_checked_when_they_arrive(app: TestApp) {
    let started = app
        .space(Method::POST, "/media/uploads")
        .json(json!({"filename": "photo.jpg", "content_type": "image/jpeg"}))
        .send()
        .await
        .expect(201)
        .body;
    let id = started["id"].as_str().unwrap().to_owned();
    let url = started["upload"]["url"].as_str().unwrap();
    let arrived = app
        .client
        .put(url)
        .header("content-type", "image/jpeg")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    match app.backend {
        Backend::Embedded => {
            assert_eq!(arrived.status(), 422, "the local upload URL checks the bytes itself");
            let body: Value = arrived.json().await.unwrap();
            assert!(body["error"]["fields"]["content_type"].is_array());
        }
        Backend::Dynamodb => {
            assert!(arrived.status().is_success(), "S3 takes any bytes");
            let refused = app
                .space(Method::POST, &format!("/media/{id}/complete"))
                .send()
                .await
                .expect(422);
            assert!(
                refused.body["error"]["fields"]["content_type"][0]
                    .as_str()
                    .unwrap()
                    .contains("image/png")
            );
        }
    }
    assert_eq!(
        app.blobs.info(&media_key(&app, &id)).await.unwrap(),
        None,
        "refused bytes are not kept"
    );
    let still = app.space(Method::GET, &format!("/media/{id}")).send().await.expect(200);
    assert_eq!(still.body["status"], "pending", "a corrected upload may follow");

    // An announced size must be met.
    let sized = app
        .space(Method::POST, "/media/uploads")
        .json(json!({"filename": "dot.png", "content_type": "image/png", "size": 71}))
        .send()
        .await
        .expect(201)
        .body;
    let url = sized["upload"]["url"].as_str().unwrap();
    let arrived = app
        .client
        .put(url)
        .header("content-type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    let sized_id = sized["id"].as_str().unwrap();
    if app.backend == Backend::Embedded {
        assert_eq!(arrived.status(), 422);
    } else {
        assert!(arrived.status().is_success());
        let refused = app
            .space(Method::POST, &format!("/media/{sized_id}/complete"))
            .send()
            .await
            .expect(422);
        assert!(refused.body["error"]["fields"]["size"].is_array());
    }
    let bad = app
        .space(Method::POST, "/media/uploads")
        .json(json!({"filename": "", "content_type": "nope", "size": -3, "extra": 1}))
        .send()
        .await
        .expect(422);
    let fields = bad.body["error"]["fields"].as_object().unwrap();
    for field in ["filename", "content_type", "size", "extra"] {
        assert!(fields.contains_key(field), "{field} not named: {}", bad.text);
    }
}

async fn deleting_media_removes_its_bytes(app: TestApp) {
    let dot = upload_png(&app, "dot.png").await;
    let id = dot["id"].as_str().unwrap();
    let key = media_key(&app, id);
    assert_eq!(app.blobs.info(&key).await.unwrap().map(|i| i.size), Some(70));
    let download_url = dot["download_url"].as_str().unwrap().to_owned();
    app.space(Method::DELETE, &format!("/media/{id}"))
        .header("if-match", "\"7\"")
        .send()
        .await
        .expect(412);
    app.space(Method::DELETE, &format!("/media/{id}"))
        .send()
        .await
        .expect(204);
    assert_eq!(app.blobs.info(&key).await.unwrap(), None, "the bytes are gone");
    app.space(Method::GET, &format!("/media/{id}")).send().await.expect(404);
    app.space(Method::DELETE, &format!("/media/{id}"))
        .send()
        .await
        .expect(404);
    let stale = fetch(&app, Method::GET, &download_url).await.status().as_u16();
    // S3 answers 403 for a missing key to a signer that may not list the bucket.
    let gone: &[u16] = if app.backend == Backend::Embedded {
        &[404]
    } else {
        &[403, 404]
    };
    assert!(gone.contains(&stale), "an old link finds nothing, got {stale}");
    assert!(app.event_types().await.contains(&"media.deleted".to_owned()));
    // A pending item without bytes deletes too.
    let pending = app
        .space(Method::POST, "/media/uploads")
        .json(json!({"filename": "later.png", "content_type": "image/png"}))
        .send()
        .await
        .expect(201);
    let pending_id = pending.body["id"].as_str().unwrap();
    app.space(Method::DELETE, &format!("/media/{pending_id}"))
        .send()
        .await
        .expect(204);
}

async fn characters_reference_ready_media_of_their_space(app: TestApp) {
    let ready = upload_png(&app, "face.png").await["id"].as_str().unwrap().to_owned();
    let pending = app
        .space(Method::POST, "/media/uploads")
        .json(json!({"filename": "later.png", "content_type": "image/png"}))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other_key) = app.other_space().await;
    let foreign = app
        .request(Method::POST, &format!("{SPACE_API}/media"))
        .key(&other_key)
        .json(seed_body("theirs.png"))
        .send()
        .await
        .expect(201)
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let created = app
        .space(Method::POST, "/characters")
        .json(json!({"name": "Mia", "description": "Our mascot, a cheerful fox.", "reference_media_ids": [ready]}))
        .send()
        .await
        .expect(201)
        .body;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("chr_"));
    assert_eq!(created["reference_media_ids"], json!([ready]));

    let refused = app
        .space(Method::POST, "/characters")
        .json(json!({"name": "Bad", "reference_media_ids": [ready, "med_01jdxxxxxxxxxxxxxxxxxxxxxx", pending, foreign, "not-an-id"]}))
        .send()
        .await
        .expect(422);
    let message = refused.body["error"]["fields"]["reference_media_ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in [
        "med_01jdxxxxxxxxxxxxxxxxxxxxxx",
        pending.as_str(),
        foreign.as_str(),
        "not-an-id",
    ] {
        assert!(message.contains(bad), "{bad} not named in {message}");
    }
    assert!(
        !message.contains(ready.as_str()),
        "the good id is not blamed: {message}"
    );
    let both = app
        .space(Method::POST, "/characters")
        .json(json!({"reference_media_ids": [foreign]}))
        .send()
        .await
        .expect(422);
    let fields = both.body["error"]["fields"].as_object().unwrap();
    assert!(
        fields.contains_key("name") && fields.contains_key("reference_media_ids"),
        "{}",
        both.text
    );

    app.space(Method::PATCH, &format!("/characters/{id}"))
        .json(json!({"reference_media_ids": [pending]}))
        .send()
        .await
        .expect(422);
    app.space(Method::PUT, &format!("/characters/{id}"))
        .json(json!({"name": "Mia", "reference_media_ids": [foreign]}))
        .send()
        .await
        .expect(422);
    let patched = app
        .space(Method::PATCH, &format!("/characters/{id}"))
        .json(json!({"description": "A fox."}))
        .send()
        .await
        .expect(200);
    assert_eq!(patched.body["reference_media_ids"], json!([ready]));
    let replaced = app
        .space(Method::PUT, &format!("/characters/{id}"))
        .json(json!({"name": "Mia Fox"}))
        .send()
        .await
        .expect(200);
    assert_eq!(replaced.body["reference_media_ids"], json!([]));
    let listed = app.space(Method::GET, "/characters?q=fox").send().await.expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), 1);
    app.space(Method::GET, &format!("/characters/{id}"))
        .send()
        .await
        .expect(200);
    app.space(Method::DELETE, &format!("/characters/{id}"))
        .send()
        .await
        .expect(204);
    app.space(Method::GET, &format!("/characters/{id}"))
        .send()
        .await
        .expect(404);
    let events = app.event_types().await;
    for kind in ["character.created", "character.updated", "character.deleted"] {
        assert!(events.contains(&kind.to_owned()), "{kind} missing from {events:?}");
    }
}

/// MCP clients send the JSON form; the call reaches the handler with a parsed body and no
/// raw bytes.
async fn media_tools_take_base64_over_mcp(app: TestApp) {
    let call = json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "assets_media_create", "arguments": seed_body("dot.png")}
    });
    let response = app.mcp(app.key(), "", call).send().await.expect(200);
    let result = &response.body["result"];
    assert_ne!(result["isError"], json!(true), "{}", response.text);
    let media = &result["structuredContent"];
    assert_eq!(
        (media["status"].as_str(), media["content_type"].as_str()),
        (Some("ready"), Some("image/png")),
        "{}",
        response.text
    );
    let id = media["id"].as_str().unwrap();
    assert_eq!(app.blobs.get(&media_key(&app, id)).await.unwrap().as_deref(), Some(PNG));
    let mismatch = json!({
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "assets_media_create", "arguments": {"filename": "x.jpg", "content_type": "image/jpeg", "content_base64": STANDARD.encode(PNG)}}
    });
    let refused = app.mcp(app.key(), "", mismatch).send().await.expect(200);
    assert_eq!(refused.body["result"]["isError"], json!(true), "{}", refused.text);
    assert!(refused.text.contains("content_type"), "{}", refused.text);
}

/// A key with every scope but the one an operation needs gets 403, and nothing changes.
async fn every_assets_operation_needs_its_scope(app: TestApp) {
    let media = upload_png(&app, "dot.png").await;
    let media_id = media["id"].as_str().unwrap().to_owned();
    let character = app
        .space(Method::POST, "/characters")
        .json(json!({"name": "Mia"}))
        .send()
        .await
        .expect(201)
        .body;
    let character_id = character["id"].as_str().unwrap().to_owned();
    let snapshot = || async {
        let media = app.space(Method::GET, "/media").send().await.expect(200).body;
        let characters = app.space(Method::GET, "/characters").send().await.expect(200).body;
        (media, characters, app.event_types().await.len())
    };
    // Minting writes events: every key first, then the state to compare.
    let mut keys: HashMap<Scope, String> = HashMap::new();
    for operation in assets::operations() {
        let Access::Space(scope) = operation.access else {
            continue;
        };
        if let Entry::Vacant(entry) = keys.entry(scope) {
            let others: Vec<String> = ScopeSet::all()
                .iter()
                .filter(|s| *s != scope)
                .map(|s| s.to_string())
                .collect();
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            entry.insert(app.mint(&others, Some(100_000)).await);
        }
    }
    let before = snapshot().await;

    let mut checked = 0;
    for operation in assets::operations() {
        let Access::Space(scope) = operation.access else {
            continue;
        };
        let id = if operation.path.starts_with("/characters") {
            &character_id
        } else {
            &media_id
        };
        let path = operation.path.replace("{id}", id);
        let body = match (operation.name.as_str(), operation.method.as_str()) {
            ("assets_media_create", _) => Some(seed_body("dot.png")),
            ("assets_media_uploads_create", _) => Some(json!({"filename": "a.png", "content_type": "image/png"})),
            (_, "PATCH") => Some(json!({"description": "changed"})),
            (_, "POST" | "PUT") => Some(json!({"name": "Changed"})),
            _ => None,
        };
        let mut request = app
            .request(operation.method.clone(), &format!("{SPACE_API}{path}"))
            .key(&keys[&scope]);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect(403);
        assert!(
            response.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&scope.to_string()),
            "{}",
            response.text
        );
        checked += 1;
    }
    assert_eq!(checked, 13, "every space operation of the family was tried");
    assert_eq!(snapshot().await, before, "nothing changed");
    assert!(app.blobs.info(&media_key(&app, &media_id)).await.unwrap().is_some());
}

async fn another_spaces_assets_are_not_found(app: TestApp) {
    let (_, other_key) = app.other_space().await;
    let theirs = |method: Method, path: &str| app.request(method, &format!("{SPACE_API}{path}")).key(&other_key);
    let media = theirs(Method::POST, "/media")
        .json(seed_body("theirs.png"))
        .send()
        .await
        .expect(201)
        .body;
    let media_id = media["id"].as_str().unwrap();
    let character = theirs(Method::POST, "/characters")
        .json(json!({"name": "Theirs", "reference_media_ids": [media_id]}))
        .send()
        .await
        .expect(201)
        .body;
    let character_id = character["id"].as_str().unwrap();

    app.space(Method::GET, &format!("/media/{media_id}"))
        .send()
        .await
        .expect(404);
    app.space(Method::PATCH, &format!("/media/{media_id}"))
        .json(json!({"alt_text": "mine"}))
        .send()
        .await
        .expect(404);
    app.space(Method::POST, &format!("/media/{media_id}/complete"))
        .send()
        .await
        .expect(404);
    app.space(Method::DELETE, &format!("/media/{media_id}"))
        .send()
        .await
        .expect(404);
    app.space(Method::GET, &format!("/characters/{character_id}"))
        .send()
        .await
        .expect(404);
    app.space(Method::PATCH, &format!("/characters/{character_id}"))
        .json(json!({"name": "Mine"}))
        .send()
        .await
        .expect(404);
    app.space(Method::PUT, &format!("/characters/{character_id}"))
        .json(json!({"name": "Mine"}))
        .send()
        .await
        .expect(404);
    app.space(Method::DELETE, &format!("/characters/{character_id}"))
        .send()
        .await
        .expect(404);
    assert_eq!(
        app.space(Method::GET, "/media").send().await.expect(200).body["data"],
        json!([])
    );
    // Still theirs, bytes and all.
    let still = theirs(Method::GET, &format!("/media/{media_id}"))
        .send()
        .await
        .expect(200);
    assert_eq!(
        fetch(&app, Method::GET, still.body["download_url"].as_str().unwrap())
            .await
            .bytes()
            .await
            .unwrap()
            .as_ref(),
        PNG
    );
}
