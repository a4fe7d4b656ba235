//! `llms.txt` and `llms-full.txt`: served where agents look for them, in the llmstxt.org
//! shape, generated from the catalogue (every operation, nothing else), with examples the
//! operations' own schemas accept.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::Value;
use space_catalogue::llms::example;
use space_tests::TestApp;

async fn fetch(app: &TestApp, path: &str) -> String {
    let answer = app.request(Method::GET, path).send().await.expect(200);
    assert_eq!(
        answer.header("content-type"),
        Some("text/markdown; charset=utf-8"),
        "{path}"
    );
    answer.text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_documents_list_every_operation_once_in_the_llmstxt_shape() {
    let app = TestApp::embedded().await;
    let operations = spacectl::operations();
    let short = fetch(&app, "/llms.txt").await;
    assert_eq!(short, fetch(&app, "/functions/v1/space-api/llms.txt").await);
    let full = fetch(&app, "/llms-full.txt").await;
    assert_eq!(full, fetch(&app, "/functions/v1/space-api/llms-full.txt").await);
    for document in [&short, &full] {
        assert!(document.starts_with("# Space API\n\n> "), "an H1, then the summary");
        for section in ["## Authentication", "## Scopes", "## MCP", "## contacts: "] {
            assert!(document.contains(section), "{section}");
        }
        for domain in space_auth::Domain::ALL {
            assert!(
                document.contains(&format!("| `{}` |", domain.as_str())),
                "{domain:?} in the scope table"
            );
        }
    }
    let listed: Vec<&str> = short
        .lines()
        .filter_map(|line| line.strip_prefix("- ["))
        .filter_map(|line| {
            line.split_once("](/functions/v1/space-api/llms-full.txt#")
                .map(|(name, _)| name)
        })
        .filter(|name| *name != "Event types")
        .collect();
    // The event catalogue: linked from the short document, every type in the full one.
    assert!(short.contains("- [Event types](/functions/v1/space-api/llms-full.txt#event-types)"));
    assert!(full.contains("\n## Event types\n"));
    for event in space_http::event_types::ALL {
        assert!(
            full.contains(&format!("| `{}` | {} |", event.name, event.about)),
            "{}",
            event.name
        );
    }
    let grouped = space_catalogue::llms::grouped();
    let names: Vec<&str> = grouped
        .iter()
        .flat_map(|(_, members)| members.iter().map(|operation| operation.name.as_str()))
        .collect();
    assert_eq!(names.len(), operations.len());
    assert_eq!(listed, names, "one line per operation, grouped in catalogue order");
    let detailed: Vec<&str> = full.lines().filter_map(|line| line.strip_prefix("### ")).collect();
    assert_eq!(detailed, names);
    for operation in &operations {
        let line = short
            .lines()
            .find(|line| line.starts_with(&format!("- [{}]", operation.name)))
            .expect("listed");
        assert!(
            line.contains(&format!("`{} {}`", operation.method, operation.full_path())),
            "{line}"
        );
        if let space_http::operation::Access::Space(scope) = operation.access {
            assert!(line.contains(&format!("scope `{scope}`")), "{line}");
        }
    }
}

/// Every example the full document shows (a request body, an answer) is one the
/// operation's schema accepts.
#[test]
fn every_example_is_valid_against_its_schema() {
    let mut checked = HashSet::new();
    let mut refused = Vec::new();
    for operation in spacectl::operations() {
        let schemas = [
            ("body", operation.body.as_ref()),
            ("answer", operation.response.as_ref()),
        ];
        for (what, schema) in schemas {
            let Some(schema) = schema else { continue };
            let schema: &Value = schema;
            let validator = jsonschema::validator_for(schema)
                .unwrap_or_else(|error| panic!("{} {what}: the schema does not compile: {error}", operation.name));
            let sample = example(schema);
            let errors: Vec<String> = validator.iter_errors(&sample).map(|error| error.to_string()).collect();
            if !errors.is_empty() {
                refused.push(format!(
                    "{} {what}: the example {sample} is refused: {errors:?}",
                    operation.name
                ));
            }
            checked.insert(operation.name.clone());
        }
    }
    assert!(refused.is_empty(), "{}", refused.join("\n"));
    assert!(checked.len() > 100, "{} operations checked", checked.len());
}
