//! The owner's commands of `spacectl`, run in-process against a running server: login
//! keeps the key private, spaces, keys, secrets and the events tail do what they say, and
//! an API error is printed with a non-zero exit.

use reqwest::Method;
use serde_json::{Value, json};
use space_tests::{SPACE_API, TestApp, forbid_in_responses, on_both_backends};
use spacectl::client::{Input, Io};

on_both_backends!(
    login_keeps_the_account_key_private,
    spaces_are_listed_created_and_deleted,
    keys_are_minted_listed_counted_and_revoked,
    secret_values_come_from_standard_input_only,
    events_tail_prints_changes_made_over_rest,
    api_errors_are_printed_and_exit_non_zero,
    approvals_are_listed_approved_and_rejected,
);

/// What one command did.
struct Ran {
    code: i32,
    out: String,
    err: String,
}

/// `spacectl` pointed at the app, with its own config folder.
struct Cli {
    base: String,
    config: tempfile::TempDir,
}

impl Cli {
    fn new(app: &TestApp) -> Cli {
        Cli {
            base: app.base.clone(),
            config: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// `spacectl login` with the demo account key on standard input.
    async fn logged_in(app: &TestApp) -> Cli {
        let cli = Cli::new(app);
        let ran = cli.run(&["login"], app.account_key()).await;
        assert_eq!(ran.code, 0, "login: {}", ran.err);
        cli
    }

    fn args(&self, command: &[&str]) -> Vec<String> {
        let mut args = vec!["spacectl".to_owned()];
        args.extend(command.iter().map(|a| (*a).to_owned()));
        args.extend([
            "--url".to_owned(),
            self.base.clone(),
            "--config-dir".to_owned(),
            self.config.path().display().to_string(),
        ]);
        args
    }

    async fn run(&self, command: &[&str], stdin: &str) -> Ran {
        let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let io = Io {
            input: Input::Piped(&mut input),
            out: &mut out,
            err: &mut err,
            stop: Box::pin(std::future::pending()),
        };
        let code = spacectl::client::run(self.args(command), io).await;
        Ran {
            code,
            out: String::from_utf8(out).expect("utf-8 output"),
            err: String::from_utf8(err).expect("utf-8 errors"),
        }
    }

    async fn ok(&self, command: &[&str]) -> Ran {
        let ran = self.run(command, "").await;
        assert_eq!(ran.code, 0, "{command:?} failed: {}", ran.err);
        ran
    }

    async fn json(&self, command: &[&str]) -> Value {
        let mut command = command.to_vec();
        command.push("--json");
        serde_json::from_str(&self.ok(&command).await.out).expect("JSON output")
    }
}

async fn login_keeps_the_account_key_private(app: TestApp) {
    let cli = Cli::new(&app);
    let ran = cli.run(&["login"], &format!("{}\n", app.account_key())).await;
    assert_eq!(ran.code, 0, "{}", ran.err);
    assert!(!ran.out.contains(app.account_key()) && !ran.err.contains(app.account_key()));
    assert!(
        ran.out.contains(&app.demo.space_id),
        "the only Space is chosen: {}",
        ran.out
    );

    let path = cli.config.path().join("login.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("the login is kept")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads the key");
    }
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
    assert_eq!(kept["account_key"], app.account_key());
    assert_eq!(kept["space"], app.demo.space_id.as_str());
    assert_eq!(kept["url"], app.base.as_str());

    // A key the API does not know is refused with its message, and nothing is kept.
    let elsewhere = Cli::new(&app);
    let unknown = space_auth::Token::generate(space_auth::TokenKind::Account);
    let refused = elsewhere.run(&["login"], unknown.expose()).await;
    assert_eq!(refused.code, 1);
    assert!(refused.err.contains("Invalid API key"), "{}", refused.err);
    assert!(!elsewhere.config.path().join("login.json").exists());
    let space_key = elsewhere.run(&["login"], app.key()).await;
    assert_eq!(space_key.code, 1);
    assert!(space_key.err.contains("not an account key"), "{}", space_key.err);
    // Before a login, commands say what to do.
    let first = elsewhere.run(&["spaces", "list"], "").await;
    assert_eq!(first.code, 1);
    assert!(first.err.contains("spacectl login"), "{}", first.err);
}

async fn spaces_are_listed_created_and_deleted(app: TestApp) {
    let cli = Cli::logged_in(&app).await;
    let listed = cli.ok(&["spaces", "list"]).await;
    assert!(listed.out.starts_with("ID"), "a table: {}", listed.out);
    assert!(listed.out.contains("Test space") && listed.out.contains(&app.demo.space_id));

    let created = cli.ok(&["spaces", "create", "Second shop"]).await;
    let id = created.out.trim().to_owned();
    assert!(id.starts_with("spc_"), "the new id is printed: {}", created.out);
    let spaces = cli.json(&["spaces", "list"]).await;
    assert!(
        spaces
            .as_array()
            .expect("a list")
            .iter()
            .any(|s| s["id"] == id.as_str() && s["name"] == "Second shop")
    );
    // The Space chosen at login stays the default with two.
    let keys = cli.json(&["keys", "list"]).await;
    assert!(
        keys.as_array()
            .expect("a list")
            .iter()
            .any(|k| k["name"] == "all scopes")
    );
    let keys = cli.json(&["keys", "list", "--space", &id]).await;
    assert_eq!(keys, json!([]));

    cli.ok(&["spaces", "delete", &id]).await;
    app.account(Method::GET, &format!("/spaces/{id}/keys"))
        .send()
        .await
        .expect(409);
}

async fn keys_are_minted_listed_counted_and_revoked(app: TestApp) {
    let cli = Cli::logged_in(&app).await;
    let created = cli
        .ok(&[
            "keys",
            "create",
            "--name",
            "ci",
            "--scopes",
            "contacts:read,tasks:write",
            "--expires-in",
            "30d",
            "--mcp",
        ])
        .await;
    let mut lines = created.out.lines();
    let token = lines.next().expect("the token").to_owned();
    assert!(token.starts_with("wks_live_"), "{}", created.out);
    let mcp = lines.next().expect("the claude line");
    assert_eq!(
        mcp,
        format!(
            "claude mcp add --transport http space {}/functions/v1/space-mcp --header \"Authorization: Bearer {token}\"",
            app.base
        )
    );
    let mcp_json: String = lines.collect::<Vec<_>>().join("\n");
    assert_eq!(
        mcp_json,
        account_api::mcp_setup::mcp_json(&app.base, &token),
        "then the .mcp.json entry, as the console shows it"
    );
    for _ in 0..3 {
        app.request(Method::GET, &format!("{SPACE_API}/contacts"))
            .key(&token)
            .send()
            .await
            .expect(200);
    }

    let keys = cli.json(&["keys", "list"]).await;
    let key = keys
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["name"] == "ci"))
        .cloned()
        .expect("the new key is listed");
    let id = key["id"].as_str().expect("an id").to_owned();
    assert_eq!(key["scopes"], json!(["contacts:read", "tasks:write"]));
    assert!(key["expires_at"].is_string());
    assert_eq!(key["requests_today"], 3);
    assert_eq!(key["requests_this_month"], 3);
    assert!(created.err.contains(&id), "the id is named: {}", created.err);

    let table = cli.ok(&["keys", "list"]).await.out;
    let header = table.lines().next().expect("a header");
    for column in [
        "NAME",
        "PREFIX",
        "SCOPES",
        "EXPIRES",
        "LAST USED",
        "TODAY",
        "THIS MONTH",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = table.lines().find(|l| l.contains(&id)).expect("a row for the key");
    assert!(row.contains("contacts:read,tasks:write") && row.contains(key["prefix"].as_str().expect("a prefix")));
    assert!(!table.contains(&token), "lists never show tokens");

    let usage = cli.ok(&["keys", "usage", &id]).await;
    assert!(usage.out.contains("3 requests today, 3 this month"), "{}", usage.out);
    let usage = cli.json(&["keys", "usage", &id]).await;
    assert_eq!(usage["today"], 3);
    assert_eq!(usage["days"][0]["requests"], 3);

    cli.ok(&["keys", "revoke", &id]).await;
    app.request(Method::GET, &format!("{SPACE_API}/contacts"))
        .key(&token)
        .send()
        .await
        .expect(401);
}

async fn secret_values_come_from_standard_input_only(app: TestApp) {
    let cli = Cli::logged_in(&app).await;
    let value = format!("cli-{}", space_http::ids::new_id("v"));
    forbid_in_responses(&value);
    let command = ["secrets", "set", "STRIPE_KEY"];
    assert!(!cli.args(&command).iter().any(|arg| arg.contains(&value)));
    let set = cli.run(&command, &format!("{value}\n")).await;
    assert_eq!(set.code, 0, "{}", set.err);
    assert!(!set.out.contains(&value) && !set.err.contains(&value));
    assert_eq!(
        app.vault.peek(&app.demo.space_id, "STRIPE_KEY").as_deref(),
        Some(value.as_str()),
        "the value is stored without its line break"
    );

    let listed = cli.ok(&["secrets", "list"]).await;
    assert!(listed.out.contains("STRIPE_KEY") && !listed.out.contains(&value));
    let names = cli.json(&["secrets", "list"]).await;
    assert_eq!(names[0]["name"], "STRIPE_KEY");

    let empty = cli.run(&["secrets", "set", "EMPTY"], "").await;
    assert_eq!(empty.code, 1, "nothing read, nothing set");
    cli.ok(&["secrets", "delete", "STRIPE_KEY"]).await;
    assert_eq!(cli.json(&["secrets", "list"]).await, json!([]));
}

/// Standard error as it is written, so a test can wait for a line.
struct Signalled(tokio::sync::mpsc::UnboundedSender<Vec<u8>>);

impl std::io::Write for Signalled {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let _ = self.0.send(bytes.to_vec());
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn events_tail_prints_changes_made_over_rest(app: TestApp) {
    let cli = Cli::logged_in(&app).await;
    let args = cli.args(&["events", "tail", "--type", "contact.created", "--count", "1"]);
    let (errors, mut written) = tokio::sync::mpsc::unbounded_channel();
    let tail = tokio::spawn(async move {
        let mut input = std::io::Cursor::new(Vec::new());
        let mut out = Vec::new();
        let mut err = Signalled(errors);
        let io = Io {
            input: Input::Piped(&mut input),
            out: &mut out,
            err: &mut err,
            stop: Box::pin(std::future::pending()),
        };
        let code = spacectl::client::run(args, io).await;
        (code, String::from_utf8(out).expect("utf-8"))
    });
    let mut err = String::new();
    while !err.contains("Following") {
        let chunk = written.recv().await.expect("the tail says when it follows");
        err.push_str(&String::from_utf8_lossy(&chunk));
    }
    app.space(Method::POST, "/tasks")
        .json(json!({"title": "Filtered out"}))
        .send()
        .await
        .expect(201);
    let contact = app.contact(json!({"name": "Tailed"})).await;
    let (code, out) = tokio::time::timeout(std::time::Duration::from_secs(10), tail)
        .await
        .expect("the tail stops after one event")
        .expect("the tail ran");
    assert_eq!(code, 0, "{err}");
    let line = out.lines().next().expect("one line");
    assert_eq!(out.lines().count(), 1);
    assert!(line.contains("contact.created"), "{line}");
    assert!(line.contains(contact["id"].as_str().expect("an id")), "{line}");

    // The key the tail minted for itself is gone.
    let keys = cli.json(&["keys", "list"]).await;
    assert!(
        !keys
            .as_array()
            .expect("a list")
            .iter()
            .any(|k| k["name"] == "spacectl events tail"),
        "{keys}"
    );
}

async fn api_errors_are_printed_and_exit_non_zero(app: TestApp) {
    let cli = Cli::logged_in(&app).await;
    let missing = cli.run(&["keys", "revoke", "key_nope"], "").await;
    assert_eq!(missing.code, 1);
    assert!(missing.err.starts_with("error: "), "{}", missing.err);
    assert!(missing.err.contains("key_nope"), "the API's message: {}", missing.err);

    let invalid = cli
        .run(&["keys", "create", "--name", "bad", "--scopes", "contacts:fly"], "")
        .await;
    assert_eq!(invalid.code, 1);
    assert!(
        invalid.err.contains("scopes:"),
        "the field's problem is named: {}",
        invalid.err
    );
    let usage = cli.run(&["keys", "usage", "key_nope", "--space", "spc_nope"], "").await;
    assert_eq!(usage.code, 1);
    assert!(usage.err.contains("spc_nope"), "{}", usage.err);
    let bad_flag = cli.run(&["keys", "create", "--name", "x"], "").await;
    assert_eq!(bad_flag.code, 2, "a usage error: {}", bad_flag.err);
    let bad_expiry = cli
        .run(
            &[
                "keys",
                "create",
                "--name",
                "x",
                "--scopes",
                "contacts:read",
                "--expires-in",
                "soon",
            ],
            "",
        )
        .await;
    assert_eq!(bad_expiry.code, 1);
    assert!(bad_expiry.err.contains("--expires-in"), "{}", bad_expiry.err);
}

async fn approvals_are_listed_approved_and_rejected(app: TestApp) {
    let cli = Cli::logged_in(&app).await;
    let created = cli
        .ok(&[
            "keys",
            "create",
            "--name",
            "supervised",
            "--scopes",
            "phone:run,phone:read",
            "--approval-required",
            "phone:run",
        ])
        .await;
    let token = created.out.lines().next().expect("the token").to_owned();
    let number = crate::phone::connect(&app, "+12015550100", &["sms"]).await;
    let mut asked = Vec::new();
    for to in ["+12015550123", "+12015550124"] {
        let pending = crate::caps::send_with(&app, &token, &number, to).await;
        assert_eq!(pending.status, 202, "{}", pending.text);
        asked.push(pending.body["approval_id"].as_str().expect("an approval").to_owned());
    }
    let listed = cli.json(&["approvals", "list", "--status", "pending"]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let table = cli.ok(&["approvals", "list"]).await.out;
    assert!(
        table.contains("phone_sms_send") && table.contains("POST /functions/v1/space-api/phone/sms"),
        "{table}"
    );

    let approved = cli.ok(&["approvals", "approve", &asked[0]]).await;
    assert!(approved.out.contains("Approved"), "{}", approved.out);
    let rejected = cli
        .ok(&["approvals", "reject", &asked[1], "--reason", "Wrong number"])
        .await;
    assert!(rejected.out.contains("Rejected"), "{}", rejected.out);
    let late = cli.run(&["approvals", "approve", &asked[1]], "").await;
    assert_eq!(late.code, 1);
    assert!(late.err.contains("rejected"), "{}", late.err);
    app.worker_pass().await;
    let sent = crate::caps::all_sms(&app).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["to"], "+12015550123");
    let done = cli.json(&["approvals", "list", "--status", "performed"]).await;
    assert_eq!(done[0]["id"], asked[0].as_str());
    assert_eq!(done[0]["result"]["status"], 201);
}
