//! The Secrets Manager vault against moto (`scripts/with-moto.sh cargo test -p space-store`).
//! The vault cannot read values back, so the test reads them with the SDK directly.

use aws_config::BehaviorVersion;
use space_store::secrets::{SecretVault, SecretsManagerVault};
use space_store::{StoreError, conformance};

async fn local_config() -> aws_config::SdkConfig {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!("AWS_ENDPOINT_URL is not set: run through scripts/with-moto.sh (make test does)");
    }
    aws_config::load_defaults(BehaviorVersion::latest()).await
}

/// The stored value, or None when the secret does not exist.
async fn read(client: &aws_sdk_secretsmanager::Client, id: &str) -> Option<String> {
    match client.get_secret_value().secret_id(id).send().await {
        Ok(output) => Some(output.secret_string.expect("the secret has a string value")),
        Err(error) => {
            let error = error.into_service_error();
            assert!(
                error.is_resource_not_found_exception(),
                "unexpected GetSecretValue error: {error:?}"
            );
            None
        }
    }
}

#[tokio::test]
async fn secrets_manager_vault_writes_replaces_and_deletes() {
    let config = local_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let prefix = format!("space-api/test-{}", conformance::unique_suffix());
    let vault = SecretsManagerVault::new(client.clone(), format!("{prefix}/"));
    let id = vault.secret_name("space_1", "api-key").expect("valid names");
    assert_eq!(
        id,
        format!("{prefix}/space_1/api-key"),
        "secrets are named prefix/space/name"
    );

    vault
        .put_value("space_1", "api-key", "first")
        .await
        .expect("put creates");
    assert_eq!(read(&client, &id).await.as_deref(), Some("first"), "the value arrived");

    vault
        .put_value("space_1", "api-key", "second")
        .await
        .expect("put replaces");
    assert_eq!(read(&client, &id).await.as_deref(), Some("second"), "the value changed");

    vault
        .put_value("space_2", "api-key", "other")
        .await
        .expect("another space");
    assert_eq!(
        read(&client, &id).await.as_deref(),
        Some("second"),
        "spaces keep their own values"
    );

    vault.delete_value("space_1", "api-key").await.expect("delete");
    assert_eq!(read(&client, &id).await, None, "the value was removed");
    vault
        .delete_value("space_1", "api-key")
        .await
        .expect("deleting a missing secret is fine");

    vault
        .put_value("space_1", "api-key", "third")
        .await
        .expect("put after delete creates again");
    assert_eq!(read(&client, &id).await.as_deref(), Some("third"), "the value is back");

    for (space, name) in [("space_1", "a/b"), ("", "x"), ("space 1", "x"), ("space_1", "")] {
        assert!(
            matches!(vault.put_value(space, name, "v").await, Err(StoreError::Rejected(_))),
            "names outside letters, digits, _ and - are rejected: {space:?}/{name:?}"
        );
    }

    for space in ["space_1", "space_2"] {
        vault.delete_value(space, "api-key").await.expect("cleanup");
    }
}

/// A Space's values go in steps, found by listing the vault (not the item store's names);
/// a Space whose id starts like another's keeps its values.
#[tokio::test]
async fn secrets_manager_vault_deletes_all_of_a_space() {
    let config = local_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let prefix = format!("space-api/test-{}", conformance::unique_suffix());
    let vault = SecretsManagerVault::new(client.clone(), prefix);
    for n in 0..5 {
        vault.put_value("spc_a", &format!("KEY_{n}"), "v").await.expect("put");
    }
    vault.put_value("spc_ab", "KEY_0", "kept").await.expect("put");
    assert_eq!(vault.delete_all("spc_a", 3).await.expect("first step"), 3);
    assert_eq!(vault.delete_all("spc_a", 3).await.expect("second step"), 2);
    assert_eq!(vault.delete_all("spc_a", 3).await.expect("nothing left"), 0);
    for n in 0..5 {
        let id = vault.secret_name("spc_a", &format!("KEY_{n}")).expect("valid");
        assert_eq!(read(&client, &id).await, None, "{id} is gone");
    }
    let kept = vault.secret_name("spc_ab", "KEY_0").expect("valid");
    assert_eq!(read(&client, &kept).await.as_deref(), Some("kept"));
    vault.delete_value("spc_ab", "KEY_0").await.expect("cleanup");
}
