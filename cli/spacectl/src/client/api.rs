//! A small typed client of the account API, the way any HTTP client would call it.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where the account API lives under the server's origin.
const ACCOUNT_API: &str = "/functions/v1/account-api";
/// Where the realtime stream lives.
pub const REALTIME: &str = "/functions/v1/space-realtime";

/// What a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The API answered with an error: its message is what the user reads.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        fields: Vec<String>,
    },
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("unexpected answer from the API: {0}")]
    Unexpected(String),
    #[error("not logged in: run `spacectl login` first")]
    NotLoggedIn,
    #[error("{0}")]
    Usage(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ClientError {
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClientError {
        let what = what.into();
        move |source| ClientError::Io { what, source }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Space {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub created_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub toolsets: Option<Vec<String>>,
    #[serde(default)]
    pub last_used_at: Option<String>,
    #[serde(default)]
    pub requests_today: u64,
    #[serde(default)]
    pub requests_this_month: u64,
    pub created_at: String,
}

/// A key as minted: its token exists only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MintedKey {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub token: String,
}

/// What a new key may do.
#[derive(Debug, Clone, Serialize)]
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toolsets: Option<Vec<String>>,
    pub read_only: bool,
    /// Scopes whose live actions wait for the owner's approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_required: Option<Vec<String>>,
}

/// A live action of a key that waits for (or had) the owner's decision.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Approval {
    pub id: String,
    pub status: String,
    pub operation: String,
    pub method: String,
    pub path: String,
    pub key_id: String,
    pub created_at: String,
    #[serde(default)]
    pub request: Value,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Usage {
    pub key_id: String,
    pub days: Vec<UsageDay>,
    pub today: u64,
    pub this_month: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UsageDay {
    pub date: String,
    pub requests: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Secret {
    pub name: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Deserialize)]
struct Listing<T> {
    data: Vec<T>,
    next_cursor: Option<String>,
}

/// The account API at one origin, with the owner's key.
pub struct AccountApi {
    http: reqwest::Client,
    origin: String,
    key: String,
}

impl AccountApi {
    pub fn new(origin: &str, key: &str) -> AccountApi {
        AccountApi {
            http: reqwest::Client::new(),
            origin: origin.trim_end_matches('/').to_owned(),
            key: key.to_owned(),
        }
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    fn url(&self, path: &str) -> String {
        format!("{}{ACCOUNT_API}{path}", self.origin)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let response = request
            .bearer_auth(&self.key)
            .send()
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.origin.clone(),
                source,
            })?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }

    async fn read<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> Result<T, ClientError> {
        self.send(request)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Unexpected(e.to_string()))
    }

    /// Every page of a list.
    async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ClientError> {
        self.list_where(path, &[]).await
    }

    /// Every page of a list filtered by `filters`.
    async fn list_where<T: DeserializeOwned>(
        &self,
        path: &str,
        filters: &[(&str, String)],
    ) -> Result<Vec<T>, ClientError> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = filters.to_vec();
            query.push(("limit", "200".to_owned()));
            if let Some(cursor) = cursor.take() {
                query.push(("cursor", cursor));
            }
            let page: Listing<T> = self.read(self.http.get(self.url(path)).query(&query)).await?;
            all.extend(page.data);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    pub async fn spaces(&self) -> Result<Vec<Space>, ClientError> {
        self.list("/spaces").await
    }

    pub async fn create_space(&self, name: &str) -> Result<Space, ClientError> {
        self.read(self.http.post(self.url("/spaces")).json(&json!({"name": name})))
            .await
    }

    pub async fn delete_space(&self, space: &str) -> Result<(), ClientError> {
        self.send(self.http.delete(self.url(&format!("/spaces/{}", segment(space)))))
            .await
            .map(drop)
    }

    pub async fn keys(&self, space: &str) -> Result<Vec<Key>, ClientError> {
        self.list(&format!("/spaces/{}/keys", segment(space))).await
    }

    pub async fn create_key(&self, space: &str, key: &NewKey) -> Result<MintedKey, ClientError> {
        self.read(
            self.http
                .post(self.url(&format!("/spaces/{}/keys", segment(space))))
                .json(key),
        )
        .await
    }

    pub async fn revoke_key(&self, space: &str, key: &str) -> Result<(), ClientError> {
        let path = format!("/spaces/{}/keys/{}", segment(space), segment(key));
        self.send(self.http.delete(self.url(&path))).await.map(drop)
    }

    pub async fn key_usage(&self, space: &str, key: &str) -> Result<Usage, ClientError> {
        let path = format!("/spaces/{}/keys/{}/usage", segment(space), segment(key));
        self.read(self.http.get(self.url(&path))).await
    }

    pub async fn secrets(&self, space: &str) -> Result<Vec<Secret>, ClientError> {
        self.list(&format!("/spaces/{}/secrets", segment(space))).await
    }

    pub async fn set_secret(&self, space: &str, name: &str, value: &str) -> Result<(), ClientError> {
        let path = format!("/spaces/{}/secrets/{}", segment(space), segment(name));
        self.send(self.http.put(self.url(&path)).json(&json!({"value": value})))
            .await
            .map(drop)
    }

    pub async fn delete_secret(&self, space: &str, name: &str) -> Result<(), ClientError> {
        let path = format!("/spaces/{}/secrets/{}", segment(space), segment(name));
        self.send(self.http.delete(self.url(&path))).await.map(drop)
    }

    pub async fn approvals(&self, space: &str, status: Option<&str>) -> Result<Vec<Approval>, ClientError> {
        let filters: Vec<(&str, String)> = status.map(|status| ("status", status.to_owned())).into_iter().collect();
        self.list_where(&format!("/spaces/{}/approvals", segment(space)), &filters)
            .await
    }

    /// Approves or rejects (`decision`) an approval; its state after.
    pub async fn decide(
        &self,
        space: &str,
        approval: &str,
        decision: &str,
        reason: Option<&str>,
    ) -> Result<Approval, ClientError> {
        let path = format!("/spaces/{}/approvals/{}/{decision}", segment(space), segment(approval));
        let body = match reason {
            Some(reason) => json!({"reason": reason}),
            None => json!({}),
        };
        self.read(self.http.post(self.url(&path)).json(&body)).await
    }

    /// Opens the realtime stream with a space key.
    pub async fn realtime(
        &self,
        space_key: &str,
        types: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut request = self
            .http
            .get(format!("{}{REALTIME}", self.origin))
            .bearer_auth(space_key)
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(types) = types {
            request = request.query(&[("types", types)]);
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.send().await.map_err(|source| ClientError::Unreachable {
            url: self.origin.clone(),
            source,
        })?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(api_error(response).await)
        }
    }
}

/// An id or name as one path segment: anything but the characters ids and names use is
/// escaped, so no argument can reach another route.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The API's error answer, `{"error": {"code", "message", "fields"}}`.
async fn api_error(response: reqwest::Response) -> ClientError {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let error = &body["error"];
    let message = error["message"]
        .as_str()
        .map_or_else(|| format!("the API answered {status}"), str::to_owned);
    let fields = error["fields"]
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .flat_map(|(field, problems)| {
                    problems
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(move |problem| format!("{field}: {problem}"))
                })
                .collect()
        })
        .unwrap_or_default();
    ClientError::Api {
        status,
        code: error["code"].as_str().unwrap_or_default().to_owned(),
        message,
        fields,
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn arguments_stay_one_path_segment() {
        assert_eq!(segment("spc_01ABC"), "spc_01ABC");
        assert_eq!(segment("../keys"), "%2E%2E%2Fkeys");
        assert_eq!(segment("a b?c"), "a%20b%3Fc");
    }
}
