//! Who is calling: the stored record of a key, and the principal it yields once checked.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::caps::{Cap, StoredLimits};
use crate::rate_limit::DEFAULT_RATE_LIMIT_PER_MINUTE;
use crate::scope::{Domain, Scope, ScopeSet};
use crate::token::TokenKind;

/// What the key lookup item holds (stored under the token's hash, never the token).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: String,
    pub kind: PrincipalKind,
    pub account_id: String,
    /// Present for space keys: the one Space the key can reach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub space_id: Option<String>,
    #[serde(default, with = "stored_scopes")]
    pub scopes: ScopeSet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Domains the key is pinned to (MCP toolsets); `None` means every domain its scopes allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toolsets: Option<Vec<String>>,
    /// A read-only key may only read, whatever its scopes say.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// Caps on live actions per UTC day, by cap name.
    #[serde(default, skip_serializing_if = "StoredLimits::is_empty")]
    pub limits: StoredLimits,
    /// Scopes whose live actions wait for the owner's approval instead of running.
    #[serde(default, skip_serializing_if = "ScopeSet::is_empty")]
    pub approval_required: ScopeSet,
}

/// The scopes of a stored key as one space-separated string, OAuth's form
/// (`"contacts:read tasks:write"`). The lookup item is read on every request, and one
/// string decodes without the allocation per scope a list costs (a full-scope key has 60).
/// A list, the form records were first written in, is read as well.
mod stored_scopes {
    use std::cell::RefCell;
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    use crate::scope::{Scope, ScopeSet};

    pub fn serialize<S: Serializer>(scopes: &ScopeSet, serializer: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = scopes.iter().map(|scope| scope.to_string()).collect();
        serializer.serialize_str(&text.join(" "))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<ScopeSet, D::Error> {
        deserializer.deserialize_any(StoredScopes)
    }

    struct StoredScopes;

    impl<'de> Visitor<'de> for StoredScopes {
        type Value = ScopeSet;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("space-separated scopes, or a list of them")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<ScopeSet, E> {
            // Requests with one key read its record again and again: each thread keeps
            // its last parse (a full-scope key's string is 60 scopes long).
            thread_local! {
                static LAST: RefCell<(String, ScopeSet)> = RefCell::default();
            }
            LAST.with_borrow_mut(|(last_text, last_scopes)| {
                if last_text != text {
                    *last_scopes = ScopeSet::parse_spaced(text).map_err(E::custom)?;
                    last_text.clear();
                    last_text.push_str(text);
                }
                Ok(*last_scopes)
            })
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut list: A) -> Result<ScopeSet, A::Error> {
            let mut scopes = ScopeSet::default();
            while let Some(scope) = list.next_element::<Scope>()? {
                scopes.insert(scope);
            }
            Ok(scopes)
        }
    }
}

/// The kind of key a record belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Space,
    Account,
}

impl From<TokenKind> for PrincipalKind {
    fn from(kind: TokenKind) -> PrincipalKind {
        match kind {
            TokenKind::Space => PrincipalKind::Space,
            TokenKind::Account => PrincipalKind::Account,
        }
    }
}

/// Why a key that exists may not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyStatus {
    #[error("the API key has expired")]
    Expired,
    #[error("the API key has been revoked")]
    Revoked,
    #[error("this endpoint needs a different kind of API key")]
    WrongKind,
}

impl KeyRecord {
    /// The per-minute request limit, the default when the key has none of its own.
    pub fn rate_limit(&self) -> u32 {
        self.rate_limit_per_minute.unwrap_or(DEFAULT_RATE_LIMIT_PER_MINUTE)
    }

    /// Checks revocation, expiry and kind; `now` is passed in so tests control time.
    pub fn authenticate(&self, expected: PrincipalKind, now: DateTime<Utc>) -> Result<Principal, KeyStatus> {
        if self.revoked_at.is_some() {
            return Err(KeyStatus::Revoked);
        }
        if self.expires_at.is_some_and(|at| at <= now) {
            return Err(KeyStatus::Expired);
        }
        if self.kind != expected {
            return Err(KeyStatus::WrongKind);
        }
        let space_id = match (self.kind, &self.space_id) {
            (PrincipalKind::Space, Some(space)) => Some(space.clone()),
            (PrincipalKind::Space, None) => return Err(KeyStatus::WrongKind),
            (PrincipalKind::Account, _) => None,
        };
        Ok(Principal {
            key_id: self.key_id.clone(),
            account_id: self.account_id.clone(),
            space_id,
            scopes: self.scopes,
            rate_limit: self.rate_limit(),
            toolsets: self
                .toolsets
                .as_ref()
                .map(|names| names.iter().filter_map(|name| name.parse().ok()).collect()),
            read_only: self.read_only,
            limits: crate::caps::known(&self.limits),
            approval_required: self.approval_required,
            cause: None,
        })
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub key_id: String,
    pub account_id: String,
    /// The Space a space key is locked to; `None` for an account key.
    pub space_id: Option<String>,
    pub scopes: ScopeSet,
    pub rate_limit: u32,
    /// The domains the key is pinned to, if any.
    pub toolsets: Option<Vec<Domain>>,
    pub read_only: bool,
    /// The key's caps on live actions, per UTC day.
    pub limits: Vec<(Cap, u32)>,
    /// Scopes whose live actions wait for the owner's approval.
    pub approval_required: ScopeSet,
    /// The automation run this call is a step of, if any.
    pub cause: Option<Cause>,
}

/// The automation run a call is a step of. The events the call writes carry it, so that an
/// automation is never started again by what its own runs did, and a chain of automations
/// starting one another ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub automation_id: String,
    /// 1 for a run started by anything but an automation's event; one more for each
    /// automation before it in a chain.
    pub depth: u32,
}

/// The scope a call needed and the key did not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("this API key lacks the `{0}` scope")]
pub struct MissingScope(pub Scope);

impl Principal {
    /// The caller of a public route: no key, no scopes, no Space until the route names one.
    pub fn visitor() -> Principal {
        Principal {
            key_id: "visitor".into(),
            account_id: String::new(),
            space_id: None,
            scopes: ScopeSet::default(),
            rate_limit: 0,
            toolsets: Some(Vec::new()),
            read_only: true,
            limits: Vec::new(),
            approval_required: ScopeSet::default(),
            cause: None,
        }
    }

    /// The platform itself, acting later on its own schedule (a worker job): no scopes.
    pub fn system() -> Principal {
        Principal {
            key_id: "system".into(),
            ..Principal::visitor()
        }
    }

    /// This principal acting inside `space`. Public routes get here only after the engine
    /// checked that the Space is still live.
    pub fn in_space(mut self, space: &str) -> Principal {
        self.space_id = Some(space.to_owned());
        self
    }

    /// Authorizes one operation by its scope alone.
    pub fn require(&self, scope: Scope) -> Result<(), MissingScope> {
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(MissingScope(scope))
        }
    }

    /// The key's daily limit on `cap`, if it has one.
    pub fn limit(&self, cap: Cap) -> Option<u32> {
        self.limits
            .iter()
            .find(|(capped, _)| *capped == cap)
            .map(|(_, limit)| *limit)
    }

    /// Whether a live action under `scope` waits for the owner's approval.
    pub fn needs_approval(&self, scope: Scope) -> bool {
        self.approval_required.contains(scope)
    }

    /// Whether the key's pinned toolsets include `domain`.
    pub fn reaches(&self, domain: Domain) -> bool {
        self.toolsets.as_ref().is_none_or(|sets| sets.contains(&domain))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scope::{Action, Domain};
    use chrono::Duration;

    fn record() -> KeyRecord {
        KeyRecord {
            key_id: "key_1".into(),
            kind: PrincipalKind::Space,
            account_id: "acc_1".into(),
            space_id: Some("spc_1".into()),
            scopes: [Scope::new(Domain::Contacts, Action::Read)].into_iter().collect(),
            rate_limit_per_minute: None,
            expires_at: None,
            revoked_at: None,
            toolsets: None,
            read_only: false,
            limits: StoredLimits::new(),
            approval_required: ScopeSet::default(),
        }
    }

    #[test]
    fn expiry_revocation_and_kind_are_checked() {
        let now = Utc::now();
        let mut key = record();
        assert!(key.authenticate(PrincipalKind::Space, now).is_ok());
        assert_eq!(key.authenticate(PrincipalKind::Account, now), Err(KeyStatus::WrongKind));
        key.expires_at = Some(now - Duration::seconds(1));
        assert_eq!(key.authenticate(PrincipalKind::Space, now), Err(KeyStatus::Expired));
        key.expires_at = None;
        key.revoked_at = Some(now);
        assert_eq!(key.authenticate(PrincipalKind::Space, now), Err(KeyStatus::Revoked));
    }

    #[test]
    fn require_names_the_missing_scope() {
        let principal = record().authenticate(PrincipalKind::Space, Utc::now()).unwrap();
        assert_eq!(principal.rate_limit, 100);
        assert!(principal.require(Scope::new(Domain::Contacts, Action::Read)).is_ok());
        let missing = principal
            .require(Scope::new(Domain::Contacts, Action::Write))
            .unwrap_err();
        assert_eq!(missing.to_string(), "this API key lacks the `contacts:write` scope");
    }

    #[test]
    fn stored_scopes_are_one_string_and_the_list_form_still_reads() {
        let mut key = record();
        key.scopes = ScopeSet::all();
        let stored = serde_json::to_value(&key).unwrap();
        let text = stored["scopes"].as_str().expect("scopes stored as one string");
        assert!(text.starts_with("contacts:read contacts:write "), "{text}");
        assert_eq!(serde_json::from_value::<KeyRecord>(stored).unwrap(), key);

        let mut listed = serde_json::to_value(record()).unwrap();
        listed["scopes"] = serde_json::json!(["contacts:read", "tasks:write"]);
        let read: KeyRecord = serde_json::from_value(listed).unwrap();
        let expected: ScopeSet = [
            Scope::new(Domain::Contacts, Action::Read),
            Scope::new(Domain::Tasks, Action::Write),
        ]
        .into_iter()
        .collect();
        assert_eq!(read.scopes, expected);

        let mut unknown = serde_json::to_value(record()).unwrap();
        unknown["scopes"] = serde_json::json!("contacts:read nope:read");
        assert!(serde_json::from_value::<KeyRecord>(unknown).is_err());
    }

    #[test]
    fn records_with_different_scopes_read_back_their_own_in_any_order() {
        let narrow = ScopeSet::parse_spaced("tasks:read").unwrap();
        let contacts: ScopeSet = [Scope::new(Domain::Contacts, Action::Read)].into_iter().collect();
        let texts = [
            ("", ScopeSet::default()),
            ("tasks:read", narrow),
            ("contacts:read", contacts),
        ];
        for (text, expected) in texts.iter().chain(texts.iter().rev()).chain(texts.iter()) {
            let mut stored = serde_json::to_value(record()).unwrap();
            stored["scopes"] = serde_json::json!(text);
            assert_eq!(
                serde_json::from_value::<KeyRecord>(stored).unwrap().scopes,
                *expected,
                "{text:?}"
            );
            let mut bad = serde_json::to_value(record()).unwrap();
            bad["scopes"] = serde_json::json!(format!("{text} nope:read"));
            assert!(
                serde_json::from_value::<KeyRecord>(bad).is_err(),
                "{text:?} + an unknown scope"
            );
        }
    }
}
