//! Secret values. The trait can write and delete but never read a value back: nothing
//! serving the space API can leak what it cannot read. Names and metadata live in the
//! main store, next to the Space's other data.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use crate::dynamodb::{service_error, unexpected_service_error};
use crate::error::StoreError;

/// Where secret values go. Write-only by design.
#[async_trait]
pub trait SecretVault: Send + Sync + 'static {
    /// Creates or replaces the value of `name` in `space`.
    async fn put_value(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError>;
    /// Removes the value; removing a missing secret is not an error.
    async fn delete_value(&self, space: &str, name: &str) -> Result<(), StoreError>;
    /// Removes up to `limit` of the Space's values, found in the vault itself (not through
    /// the names the item store lists), and says how many: none means none is left.
    async fn delete_all(&self, space: &str, limit: usize) -> Result<usize, StoreError>;
}

/// Keys the platform signs with and must read back (webhook signing secrets), kept apart
/// from the Space's secret values, which nothing reads: in AWS under their own prefix, which
/// only the function that signs deliveries may read.
#[async_trait]
pub trait SigningKeys: Send + Sync + 'static {
    async fn put_key(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError>;
    async fn get_key(&self, space: &str, name: &str) -> Result<Option<String>, StoreError>;
    /// Reads past any cache in front of the backend: for a check that failed with a key
    /// that may have been replaced since it was remembered.
    async fn get_key_fresh(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        self.get_key(space, name).await
    }
    async fn delete_key(&self, space: &str, name: &str) -> Result<(), StoreError>;
    /// Removes up to `limit` of the Space's keys and says how many: none means none is left.
    async fn delete_all_keys(&self, space: &str, limit: usize) -> Result<usize, StoreError>;
}

/// Space and secret names become path parts (files, Secrets Manager names), so both are
/// limited to characters that are safe in either.
fn check_names(space: &str, name: &str) -> Result<(), StoreError> {
    let safe = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !safe(space) || !safe(name) {
        return Err(StoreError::Rejected(
            "secret and space names are limited to letters, digits, _ and -".into(),
        ));
    }
    Ok(())
}

/// Secret values in files under a folder (mode 0600), one per secret.
#[derive(Debug, Clone)]
pub struct FileVault {
    root: Arc<PathBuf>,
}

impl FileVault {
    pub fn new(root: impl AsRef<Path>) -> FileVault {
        FileVault {
            root: Arc::new(root.as_ref().to_path_buf()),
        }
    }

    fn path(&self, space: &str, name: &str) -> Result<PathBuf, StoreError> {
        check_names(space, name)?;
        Ok(self.root.join(space).join(name))
    }
}

#[async_trait]
impl SecretVault for FileVault {
    async fn put_value(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        let path = self.path(space, name)?;
        let value = value.to_owned();
        tokio::task::spawn_blocking(move || write_private(&path, value.as_bytes()))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    async fn delete_value(&self, space: &str, name: &str) -> Result<(), StoreError> {
        let path = self.path(space, name)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::Internal(e.to_string())),
        }
    }

    /// The Space's folder holds its values and nothing else: it goes whole.
    async fn delete_all(&self, space: &str, _limit: usize) -> Result<usize, StoreError> {
        check_names(space, "all")?;
        let folder = self.root.join(space);
        tokio::task::spawn_blocking(move || {
            let count = match std::fs::read_dir(&folder) {
                Ok(entries) => entries.count(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(e) => return Err(StoreError::Internal(format!("{}: {e}", folder.display()))),
            };
            match std::fs::remove_dir_all(&folder) {
                Ok(()) => Ok(count),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(StoreError::Internal(format!("{}: {e}", folder.display()))),
            }
        })
        .await
        .map_err(|e| StoreError::Internal(e.to_string()))?
    }
}

#[async_trait]
impl SigningKeys for FileVault {
    async fn put_key(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        self.put_value(space, name, value).await
    }

    async fn get_key(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        let path = self.path(space, name)?;
        match tokio::fs::read_to_string(&path).await {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Internal(e.to_string())),
        }
    }

    async fn delete_key(&self, space: &str, name: &str) -> Result<(), StoreError> {
        self.delete_value(space, name).await
    }

    async fn delete_all_keys(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        SecretVault::delete_all(self, space, limit).await
    }
}

/// Writes through a temporary file and a rename, so a crash leaves the old or the new
/// value, never half of one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write as _;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt as _;

    let io = |e: std::io::Error| StoreError::Internal(format!("{}: {e}", path.display()));
    let folder = path
        .parent()
        .ok_or_else(|| StoreError::Internal("secret path has no folder".into()))?;
    std::fs::create_dir_all(folder).map_err(io)?;
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(&temporary).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&temporary, path).map_err(io)
}

/// Values kept in memory, for tests; exposes them to the test that owns it, never to a
/// route.
#[derive(Debug, Default, Clone)]
pub struct MemoryVault {
    values: Arc<std::sync::Mutex<std::collections::BTreeMap<(String, String), String>>>,
}

impl MemoryVault {
    /// For tests that prove a value arrived.
    pub fn peek(&self, space: &str, name: &str) -> Option<String> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.get(&(space.to_owned(), name.to_owned())).cloned()
    }
}

#[async_trait]
impl SecretVault for MemoryVault {
    async fn put_value(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.insert((space.to_owned(), name.to_owned()), value.to_owned());
        Ok(())
    }

    async fn delete_value(&self, space: &str, name: &str) -> Result<(), StoreError> {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values.remove(&(space.to_owned(), name.to_owned()));
        Ok(())
    }

    async fn delete_all(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let doomed: Vec<(String, String)> = values
            .keys()
            .filter(|(owner, _)| owner == space)
            .take(limit.max(1))
            .cloned()
            .collect();
        for key in &doomed {
            values.remove(key);
        }
        Ok(doomed.len())
    }
}

impl MemoryVault {
    /// The names of the Space's values, for tests that prove they are gone.
    pub fn names(&self, space: &str) -> Vec<String> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        values
            .keys()
            .filter(|(owner, _)| owner == space)
            .map(|(_, name)| name.clone())
            .collect()
    }
}

#[async_trait]
impl SigningKeys for MemoryVault {
    async fn put_key(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        self.put_value(space, name, value).await
    }

    async fn get_key(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self.peek(space, name))
    }

    async fn delete_key(&self, space: &str, name: &str) -> Result<(), StoreError> {
        self.delete_value(space, name).await
    }

    async fn delete_all_keys(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        SecretVault::delete_all(self, space, limit).await
    }
}

/// Secret values in AWS Secrets Manager, one secret per value, named
/// `{prefix}/{space}/{name}`. The IAM policy of whatever serves the API should allow
/// create, put and delete on `{prefix}/*` but never GetSecretValue.
#[derive(Debug, Clone)]
pub struct SecretsManagerVault {
    client: aws_sdk_secretsmanager::Client,
    prefix: Arc<str>,
}

/// Rounds of create-or-replace before giving up; a lost round means the secret was
/// deleted or created concurrently.
const SECRET_PUT_ROUNDS: usize = 3;

impl SecretsManagerVault {
    /// A vault through a client the caller configured; `prefix` is e.g. `space-api/dev`.
    pub fn new(client: aws_sdk_secretsmanager::Client, prefix: impl Into<String>) -> SecretsManagerVault {
        let prefix = prefix.into();
        SecretsManagerVault {
            client,
            prefix: Arc::from(prefix.trim_end_matches('/')),
        }
    }

    /// A vault from a loaded SDK config (environment, profile, role; `AWS_ENDPOINT_URL`
    /// for local servers).
    pub fn from_config(config: &aws_config::SdkConfig, prefix: impl Into<String>) -> SecretsManagerVault {
        SecretsManagerVault::new(aws_sdk_secretsmanager::Client::new(config), prefix)
    }

    /// The Secrets Manager name of a secret, for infrastructure and tests.
    pub fn secret_name(&self, space: &str, name: &str) -> Result<String, StoreError> {
        check_names(space, name)?;
        Ok(format!("{}/{space}/{name}", self.prefix))
    }
}

/// Signing keys live in a vault built with their own prefix (`SecretsManagerVault::from_config`
/// with e.g. `space-api/dev-signing`, a sibling of the secret values' prefix), so IAM can let
/// the signer read that prefix alone.
#[async_trait]
impl SigningKeys for SecretsManagerVault {
    async fn put_key(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        self.put_value(space, name, value).await
    }

    async fn get_key(&self, space: &str, name: &str) -> Result<Option<String>, StoreError> {
        let id = self.secret_name(space, name)?;
        match self.client.get_secret_value().secret_id(&id).send().await {
            Ok(found) => Ok(found.secret_string().map(str::to_owned)),
            Err(error) => {
                let error = service_error("GetSecretValue", error)?;
                if error.is_resource_not_found_exception() {
                    Ok(None)
                } else {
                    Err(unexpected_service_error("GetSecretValue", &error))
                }
            }
        }
    }

    async fn delete_key(&self, space: &str, name: &str) -> Result<(), StoreError> {
        self.delete_value(space, name).await
    }

    async fn delete_all_keys(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        SecretVault::delete_all(self, space, limit).await
    }
}

/// ListSecrets' most results per page.
const LIST_SECRETS_PAGE: usize = 100;

impl SecretsManagerVault {
    /// Deletes a secret by its full name at once, with no recovery window: a deleted
    /// value must not come back. Deleting a missing secret is not an error.
    async fn delete_secret(&self, id: &str) -> Result<(), StoreError> {
        let deleted = self
            .client
            .delete_secret()
            .secret_id(id)
            .force_delete_without_recovery(true)
            .send()
            .await;
        match deleted {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = service_error("DeleteSecret", error)?;
                if error.is_resource_not_found_exception() {
                    Ok(())
                } else {
                    Err(unexpected_service_error("DeleteSecret", &error))
                }
            }
        }
    }

    /// The names of up to `limit` secrets under `{prefix}/{space}/`. ListSecrets' name
    /// filter matches prefixes without regard to case, so the answer is checked exactly.
    async fn names_under(&self, space: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};

        check_names(space, "all")?;
        let prefix = format!("{}/{space}/", self.prefix);
        let filter = Filter::builder()
            .key(FilterNameStringType::Name)
            .values(prefix.clone())
            .build();
        let listed = self
            .client
            .list_secrets()
            .filters(filter)
            .max_results(i32::try_from(limit.clamp(1, LIST_SECRETS_PAGE)).unwrap_or(1))
            .send()
            .await;
        match listed {
            Ok(output) => Ok(output
                .secret_list()
                .iter()
                .filter_map(|secret| secret.name())
                .filter(|name| name.starts_with(&prefix))
                .map(str::to_owned)
                .collect()),
            Err(error) => {
                let error = service_error("ListSecrets", error)?;
                Err(unexpected_service_error("ListSecrets", &error))
            }
        }
    }
}

#[async_trait]
impl SecretVault for SecretsManagerVault {
    async fn put_value(&self, space: &str, name: &str, value: &str) -> Result<(), StoreError> {
        use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;

        let id = self.secret_name(space, name)?;
        for _ in 0..SECRET_PUT_ROUNDS {
            let created = self.client.create_secret().name(&id).secret_string(value).send().await;
            match created {
                Ok(_) => return Ok(()),
                Err(error) => match service_error("CreateSecret", error)? {
                    CreateSecretError::ResourceExistsException(_) => {}
                    // Most often: a secret of that name is still being deleted.
                    CreateSecretError::InvalidRequestException(refused) => {
                        return Err(StoreError::unavailable(format!(
                            "CreateSecret: {}",
                            aws_sdk_secretsmanager::error::DisplayErrorContext(&refused)
                        )));
                    }
                    other => return Err(unexpected_service_error("CreateSecret", &other)),
                },
            }
            let replaced = self
                .client
                .put_secret_value()
                .secret_id(&id)
                .secret_string(value)
                .send()
                .await;
            match replaced {
                Ok(_) => return Ok(()),
                Err(error) => {
                    let error = service_error("PutSecretValue", error)?;
                    // Deleted since CreateSecret saw it: create it again.
                    if !error.is_resource_not_found_exception() {
                        return Err(unexpected_service_error("PutSecretValue", &error));
                    }
                }
            }
        }
        Err(StoreError::unavailable(format!(
            "secret {id} kept changing while being written"
        )))
    }

    async fn delete_value(&self, space: &str, name: &str) -> Result<(), StoreError> {
        self.delete_secret(&self.secret_name(space, name)?).await
    }

    /// Lists the Space's secrets by name and deletes each without a recovery window.
    async fn delete_all(&self, space: &str, limit: usize) -> Result<usize, StoreError> {
        let names = self.names_under(space, limit).await?;
        for name in &names {
            self.delete_secret(name).await?;
        }
        Ok(names.len())
    }
}
