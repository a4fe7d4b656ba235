//! What `spacectl login` keeps: the API's origin, the account key and the chosen Space, in
//! one file only its owner can read.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::api::ClientError;

/// The file in the config folder.
const FILE: &str = "login.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    pub url: String,
    pub account_key: String,
    #[serde(default)]
    pub space: Option<String>,
}

/// The platform's folder for such files (`~/.config/spacectl` on Linux), unless one is
/// given.
pub fn folder(given: Option<&Path>) -> Result<PathBuf, ClientError> {
    match given {
        Some(path) => Ok(path.to_owned()),
        None => dirs::config_dir()
            .map(|dir| dir.join("spacectl"))
            .ok_or_else(|| ClientError::Usage("no config folder on this platform: pass --config-dir".into())),
    }
}

pub fn path(folder: &Path) -> PathBuf {
    folder.join(FILE)
}

/// The stored login, if any.
pub fn load(folder: &Path) -> Result<Option<Login>, ClientError> {
    let path = path(folder);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            ClientError::Usage(format!(
                "{} is unreadable ({e}): run `spacectl login` again",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(ClientError::io(format!("cannot read {}", path.display()))(error)),
    }
}

/// Replaces the stored login. The file is created with mode 0600 and swapped in whole, so
/// the key is never readable by others, not even for a moment.
pub fn save(folder: &Path, login: &Login) -> Result<PathBuf, ClientError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(folder)
        .map_err(ClientError::io(format!("cannot create {}", folder.display())))?;
    let path = path(folder);
    let temporary = folder.join(format!(".{FILE}.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let text = serde_json::to_string_pretty(login).map_err(|e| ClientError::Unexpected(e.to_string()))?;
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    #[cfg(unix)]
    let written = written
        .and_then(|()| std::fs::set_permissions(&temporary, std::os::unix::fs::PermissionsExt::from_mode(0o600)));
    written
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(ClientError::io(format!("cannot write {}", path.display())))?;
    Ok(path)
}
