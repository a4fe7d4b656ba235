//! `spacectl serve` as a user runs it: first start bootstraps once, a SIGTERM stops it
//! cleanly, and a restart finds everything where it was.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

struct Server {
    child: Child,
    base: String,
    output: Vec<String>,
}

fn start(data: &std::path::Path) -> Server {
    start_with(data, &[])
}

fn start_with(data: &std::path::Path, extra: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spacectl"))
        .args(["serve", "--port", "0", "--data"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spacectl starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut output = Vec::new();
    let base = loop {
        let line = lines
            .next()
            .expect("spacectl prints until it listens")
            .expect("utf-8 output");
        output.push(line.clone());
        if let Some(rest) = line.strip_prefix("Space API listening on ") {
            break rest.trim_end_matches("/functions/v1/space-api").to_owned();
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base, output }
}

fn terminate(mut server: Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let exit = server.child.wait().expect("spacectl exits");
    assert!(exit.success(), "a clean shutdown exits 0, got {exit:?}");
}

#[tokio::test]
async fn bootstraps_once_and_survives_a_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path());
    assert!(
        server.output.iter().any(|l| l.contains("space key:")),
        "first start prints the keys once"
    );
    let bootstrap_path = data.path().join("bootstrap.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&bootstrap_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "bootstrap.json is private");
    }
    let bootstrap: Value = serde_json::from_str(&std::fs::read_to_string(&bootstrap_path).unwrap()).unwrap();
    let key = bootstrap["space_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("wks_live_"));
    assert!(bootstrap["account_key"].as_str().unwrap().starts_with("wka_live_"));

    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/functions/v1/space-api/contacts", server.base))
        .bearer_auth(&key)
        .json(&json!({"name": "Survives restarts"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    terminate(server);

    let server = start(data.path());
    assert!(
        !server.output.iter().any(|l| l.contains("space key:")),
        "a restart does not bootstrap again"
    );
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&bootstrap_path).unwrap()).unwrap();
    assert_eq!(again, bootstrap);
    let response = client
        .get(format!("{}/functions/v1/space-api/contacts/{id}", server.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let contact: Value = response.json().await.unwrap();
    assert_eq!(contact["name"], "Survives restarts");

    // The owner's commands, as a shell runs them: the account key piped in, a table out.
    // The key's two requests were counted, the first written out when the server stopped.
    let config = tempfile::tempdir().unwrap();
    let owner = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_spacectl"))
            .args(args)
            .args(["--url", &server.base, "--config-dir"])
            .arg(config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spacectl starts");
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let login = owner(&["login"], bootstrap["account_key"].as_str().unwrap());
    assert!(login.status.success(), "{}", String::from_utf8_lossy(&login.stderr));
    let listed = owner(&["keys", "list", "--json"], "");
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let keys: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(keys[0]["requests_today"], 2, "{keys}");
    let refused = owner(&["keys", "revoke", "key_nope"], "");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("key_nope"));
    terminate(server);
}

#[test]
fn prints_the_openapi_document() {
    let output = Command::new(env!("CARGO_BIN_EXE_spacectl"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success());
    let spec: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/functions/v1/space-api/contacts"]["get"].is_object());
}

/// The calendar feed URL of a fresh server started with `extra` flags, and its address.
async fn feed_url(extra: &[&str]) -> (String, String) {
    let data = tempfile::tempdir().unwrap();
    let server = start_with(data.path(), extra);
    let bootstrap: Value =
        serde_json::from_str(&std::fs::read_to_string(data.path().join("bootstrap.json")).unwrap()).unwrap();
    let feed: Value = reqwest::Client::new()
        .post(format!(
            "{}/functions/v1/space-api/calendar/ical-token/rotate",
            server.base
        ))
        .bearer_auth(bootstrap["space_key"].as_str().unwrap())
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let base = server.base.clone();
    terminate(server);
    (feed["url"].as_str().unwrap_or_default().to_owned(), base)
}

#[tokio::test]
async fn links_are_absolute_on_the_address_served_or_the_public_url() {
    // `--port 0`: the port the system picked, not 0.
    let (url, base) = feed_url(&[]).await;
    assert!(url.starts_with(&format!("{base}/c/")), "{url} on {base}");
    let (url, _) = feed_url(&["--public-url", "https://api.example.com/"]).await;
    assert!(url.starts_with("https://api.example.com/c/"), "{url}");
    assert!(url.ends_with("/calendar.ics"), "{url}");
    let refused = Command::new(env!("CARGO_BIN_EXE_spacectl"))
        .args(["serve", "--public-url", "api.example.com/x"])
        .output()
        .unwrap();
    assert!(
        !refused.status.success(),
        "a public URL that is not an origin is refused"
    );
}
