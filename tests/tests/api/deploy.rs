//! The deploy path. The committed manifest is current, covers every function crate, and
//! sends every catalogue route to exactly one function that answers it; and one family,
//! built with `cargo lambda build`, answers API Gateway v2 events under `cargo lambda
//! invoke` (401 without a key, 200 with one) over DynamoDB on moto.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use space_http::Engine;
use space_store::dynamodb::DynamoStore;
use space_store::embedded::EmbeddedStore;
use spacectl::manifest::{COMMITTED_PATH, Route, manifest, route_key, router, to_json};

/// The family the Lambda test builds and the API Gateway v2 event it sends.
const FAMILY: &str = "contacts";
const EVENT: &str = "tests/fixtures/apigw-v2-list-contacts.json";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository")
        .to_path_buf()
}

/// `UPDATE_MANIFEST=1 cargo test -p space-tests --test api deploy::` rewrites the file instead.
#[test]
fn the_committed_manifest_is_current() {
    let path = repo_root().join(COMMITTED_PATH);
    let fresh = to_json(&manifest());
    if std::env::var_os("UPDATE_MANIFEST").is_some() {
        std::fs::write(&path, &fresh).expect("the manifest is written");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} is stale: run `UPDATE_MANIFEST=1 cargo test -p space-tests --test api deploy::` \
         (or `cargo run -q -p spacectl -- manifest > {COMMITTED_PATH}`) and commit it",
        path.display()
    );
}

#[test]
fn every_function_crate_is_in_the_manifest_and_every_entry_is_a_crate() {
    let functions = repo_root().join("functions");
    let crates: BTreeSet<String> = std::fs::read_dir(&functions)
        .expect("functions/ is readable")
        .filter_map(Result::ok)
        .filter(|entry| entry.path().join("Cargo.toml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let manifest = manifest();
    let listed: BTreeSet<String> = manifest.functions.iter().map(|f| f.crate_name.clone()).collect();
    let missing: Vec<&String> = crates.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "function crates missing from the manifest (wire them into space_catalogue::families()): {missing:?}"
    );
    for function in &manifest.functions {
        let main = functions.join(&function.crate_name).join("src/main.rs");
        assert!(
            main.is_file(),
            "{} is in the manifest but {} does not exist",
            function.name,
            main.display()
        );
        assert_eq!(
            function.binary, function.crate_name,
            "one binary per crate, of the same name"
        );
    }
}

#[test]
fn every_catalogue_route_goes_to_exactly_one_function() {
    let manifest = manifest();
    let mut owners: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for function in &manifest.functions {
        for route in &function.routes {
            owners.entry(route).or_default().push(&function.name);
        }
    }
    let shared: Vec<_> = owners.iter().filter(|(_, functions)| functions.len() > 1).collect();
    assert!(
        shared.is_empty(),
        "route keys given to more than one function: {shared:?}"
    );
    // A streaming family is reached at its own function URL, not through API Gateway.
    let streamed: Vec<String> = space_catalogue::families()
        .iter()
        .filter(|family| family.streaming)
        .flat_map(|family| (family.operations)())
        .map(|operation| operation.name)
        .collect();
    for function in manifest
        .functions
        .iter()
        .filter(|f| f.triggers.contains(&"streaming_url"))
    {
        assert!(
            function.routes.is_empty(),
            "{} streams: API Gateway sends it nothing",
            function.name
        );
    }
    for operation in spacectl::operations()
        .into_iter()
        .filter(|o| !streamed.contains(&o.name))
    {
        let key = route_key(&Route {
            method: operation.method.as_str().to_owned(),
            path: operation.full_path(),
        });
        assert!(
            owners.contains_key(key.as_str()),
            "{} ({key}) is routed to no function",
            operation.name
        );
    }
    for generated in [
        "ANY /functions/v1/space-mcp",
        "GET /functions/v1/space-api/openapi.json",
        "GET /functions/v1/space-api/llms.txt",
        "GET /functions/v1/space-api/llms-full.txt",
        "GET /llms.txt",
        "GET /llms-full.txt",
    ] {
        assert_eq!(
            owners.get(generated).map(Vec::as_slice),
            Some(&["space-mcp"][..]),
            "{generated}"
        );
    }
}

/// API Gateway sends a route to one function; that function's own router must answer it
/// (anything but the "no such route" 404 or a 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_the_routes_it_is_sent() {
    let client = reqwest::Client::new();
    for function in manifest().functions {
        let routes = router(&function.name).unwrap_or_else(|| panic!("no router for {}", function.name));
        let engine = Engine::builder(Arc::new(EmbeddedStore::in_memory())).build();
        let app = space_http::rest::finish(routes, engine);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("bound"));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        for key in &function.routes {
            let (method, path) = key.split_once(' ').expect("METHOD /path");
            let method = if method == "ANY" { "POST" } else { method };
            let path: Vec<&str> = path
                .split('/')
                .map(|segment| if segment.starts_with('{') { "x" } else { segment })
                .collect();
            let url = format!("{base}{}", path.join("/"));
            let response = client
                .request(method.parse().expect("a method"), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("the function answers");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(
                status != 405 && !(status == 404 && body.contains("No such route")),
                "{} is sent `{key}` but answers {status}: {body}",
                function.name
            );
        }
        server.abort();
    }
}

/// Kills what it started, whatever the test's outcome.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn venv_bin() -> PathBuf {
    repo_root().join(".venv/bin")
}

/// `cargo lambda …` through scripts/cargo-lambda.sh, the way `make build` runs it (the same
/// link flags; check-infra.sh has installed cargo-lambda into the venv).
fn cargo_lambda(args: &[&str]) -> Command {
    assert!(
        venv_bin().join("cargo-lambda").is_file(),
        "cargo-lambda is missing from .venv: run scripts/check-infra.sh (make test does)"
    );
    let mut command = Command::new(repo_root().join("scripts/cargo-lambda.sh"));
    command.args(args).current_dir(repo_root());
    command
}

fn succeed(what: &str, output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn collect_lines(stream: impl std::io::Read + Send + 'static, log: &Arc<Mutex<Vec<String>>>) {
    let log = Arc::clone(log);
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            log.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    });
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for_port(port: u16, watch: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = watch.try_wait() {
            panic!("cargo lambda watch exited early: {status}");
        }
        assert!(Instant::now() < deadline, "cargo lambda watch did not listen on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `cargo lambda invoke` with `event`; the function's API Gateway response.
fn invoke(port: u16, event: &Path) -> Value {
    let output = cargo_lambda(&[
        "invoke",
        "_",
        "--invoke-address",
        "127.0.0.1",
        "--invoke-port",
        &port.to_string(),
    ])
    .arg("--data-file")
    .arg(event)
    // Only the function talks to moto; the invoke goes to the local emulator.
    .env_remove("AWS_ENDPOINT_URL")
    .output()
    .expect("cargo lambda invoke runs");
    let stdout = succeed("cargo lambda invoke", output);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not an API Gateway response ({e}): {stdout}"))
}

#[test]
fn a_family_built_with_cargo_lambda_answers_api_gateway_events() {
    assert!(
        std::env::var_os("AWS_ENDPOINT_URL").is_some(),
        "the Lambda test needs moto: run through scripts/with-moto.sh (make test does)"
    );
    let root = repo_root();
    let scratch = tempfile::tempdir().expect("a temp dir");

    // A table on moto with a space key in it, as the account API would have minted it.
    let table = format!("space-lambda-{}", space_http::ids::new_id("t").replace('_', "-"));
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let demo = runtime.block_on(async {
        let store = DynamoStore::from_env(table.clone()).await;
        store.create_table().await.expect("moto creates the table");
        let engine = Engine::builder(Arc::new(store)).build();
        spacectl::bootstrap::create_demo(&engine, "Lambda", None)
            .await
            .expect("a space key")
    });

    // A debug build is enough to prove the packaging; the release build is `make build`.
    let lambda_dir = scratch.path().join("lambda");
    let lambda_dir_text = lambda_dir.to_string_lossy().into_owned();
    succeed(
        "cargo lambda build",
        cargo_lambda(&["build", "--x86-64", "--bin", FAMILY, "--lambda-dir", &lambda_dir_text])
            .output()
            .expect("cargo lambda build runs"),
    );
    let bootstrap = lambda_dir.join(FAMILY).join("bootstrap");
    assert!(
        bootstrap.is_file(),
        "cargo lambda build left no {}",
        bootstrap.display()
    );

    // The Runtime API emulator alone; the built binary polls it, exactly as on Lambda.
    let port = free_port();
    let mut processes = Processes(Vec::new());
    let watch = cargo_lambda(&["watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cargo lambda watch starts");
    processes.0.push(watch);
    wait_for_port(port, &mut processes.0[0]);

    let mut function = Command::new(&bootstrap)
        .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt"))
        .env("AWS_LAMBDA_FUNCTION_NAME", "_")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("TABLE_NAME", &table)
        .env("CURSOR_SECRET", "deploy-test-cursor-secret")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bootstrap starts");
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    collect_lines(function.stdout.take().expect("piped stdout"), &log);
    collect_lines(function.stderr.take().expect("piped stderr"), &log);
    processes.0.push(function);

    let event_path = root.join(EVENT);
    let anonymous = invoke(port, &event_path);
    let logs = || log.lock().unwrap_or_else(|p| p.into_inner()).join("\n");
    assert_eq!(
        anonymous["statusCode"],
        401,
        "without a key: {anonymous}\nfunction log:\n{}",
        logs()
    );
    let body: Value = serde_json::from_str(anonymous["body"].as_str().unwrap_or_default()).expect("a JSON body");
    assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{body}");

    let mut event: Value =
        serde_json::from_str(&std::fs::read_to_string(&event_path).expect("the fixture")).expect("JSON");
    event["headers"]["authorization"] = Value::String(format!("Bearer {}", demo.space_key));
    let keyed_path = scratch.path().join("with-key.json");
    std::fs::write(&keyed_path, event.to_string()).expect("the keyed event is written");
    let keyed = invoke(port, &keyed_path);
    assert_eq!(
        keyed["statusCode"],
        200,
        "with a key: {keyed}\nfunction log:\n{}",
        logs()
    );
    let body: Value = serde_json::from_str(keyed["body"].as_str().unwrap_or_default()).expect("a JSON body");
    assert!(body["data"].is_array() && body.get("next_cursor").is_some(), "{body}");

    // The per-function 5xx alarm (infra/alarms.tf) counts these lines: pin their shape.
    // The function writes its line as it answers; the reader thread may be a moment behind.
    let served_lines = || -> Vec<Value> {
        log.lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["fields"]["message"] == "served")
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut served = served_lines();
    while served.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        served = served_lines();
    }
    let statuses: Vec<&Value> = served.iter().map(|line| &line["fields"]["status"]).collect();
    assert_eq!(
        statuses,
        [401, 200],
        "one JSON `served` line per request with its status; log:\n{}",
        logs()
    );
}
