//! Mail senders: connections of kind `mail`, connected by the owner (account API). A
//! sender is one address (`agent@example.com`) or a whole domain (`example.com`, any
//! address at it). A sandbox sender is verified at once; an SES sender becomes an SES
//! identity (`CreateEmailIdentity`) on the worker, which then reads its verification
//! (`GetEmailIdentity`) until SES reports it verified, for a while. A disconnected SES
//! sender's identity is deleted on the worker (`DeleteEmailIdentity`).

use async_trait::async_trait;
use aws_sdk_sesv2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sesv2::types::VerificationStatus;
use serde_json::{Map, Value, json};
use space_connections::{self as connections, MAIL};
use space_http::email::Email;
use space_http::operation::{Call, Reply};
use space_http::{ApiError, Engine};
use space_store::{Condition, Item, StoreError, Write};
use space_worker::{Handler, Job, JobError, NewJob, Outcome};

use crate::provider::ses_client;
use crate::{IDENTITY, IDENTITY_DELETE};

/// The longest domain name (RFC 1035, without its final dot).
const MAX_DOMAIN: usize = 253;
/// Waits between two reads of an SES identity's verification; after the last the sender
/// stays unverified until the owner connects it again.
pub const VERIFICATION_CHECKS: &[i64] = &[60, 300, 900, 3_600, 3_600 * 6, 3_600 * 24];

/// A sender's address as stored: a plain email address, or a domain name, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderAddress {
    Address(String),
    Domain(String),
}

impl SenderAddress {
    pub fn as_str(&self) -> &str {
        match self {
            SenderAddress::Address(text) | SenderAddress::Domain(text) => text,
        }
    }
}

/// Why a sender's address was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SenderError {
    #[error("must be an email address (agent@example.com) or a domain name (example.com)")]
    Invalid,
}

/// Checks a sender's address: an address as every email field takes it, or a domain
/// name whose labels an address at it would pass with.
pub fn parse_sender(text: &str) -> Result<SenderAddress, SenderError> {
    let text = text.trim();
    if text.contains('@') {
        return Email::parse(text)
            .map(|email| SenderAddress::Address(email.into()))
            .map_err(|_| SenderError::Invalid);
    }
    if text.is_empty() || text.len() > MAX_DOMAIN {
        return Err(SenderError::Invalid);
    }
    // The domain rules of an address are those of the address `postmaster@<domain>`.
    Email::parse(&format!("postmaster@{text}"))
        .map(|_| SenderAddress::Domain(text.to_ascii_lowercase()))
        .map_err(|_| SenderError::Invalid)
}

/// What an address sender may send as: itself; a domain sender any address at it.
pub fn may_send_as(sender: &Item, from: &str) -> bool {
    let address = sender.body.get("address").and_then(Value::as_str).unwrap_or_default();
    if address.contains('@') {
        from == address
    } else {
        from.rsplit_once('@').is_some_and(|(_, domain)| domain == address)
    }
}

/// Whether the sender may send now.
pub fn is_verified(sender: &Item) -> bool {
    sender.body.get("verified").and_then(Value::as_bool) == Some(true)
}

/// Where the claims on SES domains live: one item per domain, naming the Space whose
/// senders use it and the identities its SES senders made at it. SES identities are the AWS
/// account's, shared by every Space: without a claim, a Space connecting an address or
/// domain another Space verified would find it verified and send as it. A claim outlives
/// its Space's senders until SES has deleted every identity it lists, so it is not one of
/// the Space's references (a purge lets go of it through [`IdentityDelete`], not the walk).
const SES_DOMAINS: &str = "SES_DOMAINS";

/// The domain of a sender's address (the address itself for a domain sender).
fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, domain)| domain)
}

/// The identities a claim lists.
fn claimed_identities(claim: &Item) -> Vec<String> {
    claim
        .body
        .get("identities")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The claim `space` makes on `domain` listing `identities`, replacing `current`.
fn claim_write(space: &str, domain: &str, identities: &[String], current: Option<&Item>) -> Write {
    let mut body = Map::new();
    body.insert("space_id".into(), json!(space));
    body.insert("identities".into(), json!(identities));
    let item = Item::new(SES_DOMAINS, domain, body);
    match current {
        Some(current) => Write::put(
            item.with_version(current.version + 1),
            Condition::Version(current.version),
        ),
        None => Write::put(item, Condition::NotExists),
    }
}

/// The write that claims `address`'s domain with SES for `space` and lists `address` among
/// its identities, or a 409 when another Space's senders use it. It goes into the
/// connection's transaction, conditioned on the claim as read, so two Spaces racing for
/// one domain get one claim and a release racing a new sender loses.
pub async fn claim_ses_domain(engine: &Engine, space: &str, address: &str) -> Result<Write, ApiError> {
    let domain = domain_of(address);
    let claim = engine.store().get(SES_DOMAINS, domain).await?;
    if let Some(claim) = &claim
        && claim.body.get("space_id").and_then(Value::as_str) != Some(space)
    {
        return Err(ApiError::Conflict(format!(
            "{domain} is connected with Amazon SES by another Space: a domain's identities belong to one Space."
        )));
    }
    let mut identities = claim.as_ref().map(claimed_identities).unwrap_or_default();
    if !identities.iter().any(|identity| identity == address) {
        identities.push(address.to_owned());
    }
    Ok(claim_write(space, domain, &identities, claim.as_ref()))
}

/// What a new mail connection holds beyond the common fields: its address normalized,
/// `verified` (a sandbox sender at once), and the job that registers an SES sender.
pub fn prepare(
    space: &str,
    id: &str,
    set: &mut Map<String, Value>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Write>, SenderError> {
    let raw = set.get("address").and_then(Value::as_str).unwrap_or_default();
    let address = parse_sender(raw)?;
    let domain = matches!(address, SenderAddress::Domain(_));
    set.insert("address".into(), json!(address.as_str()));
    set.insert("address_type".into(), json!(if domain { "domain" } else { "address" }));
    if !set.contains_key("name") {
        set.insert("name".into(), json!(address.as_str()));
    }
    let ses = set.get("provider").and_then(Value::as_str) == Some("ses");
    set.insert("verified".into(), json!(!ses));
    set.insert(
        "verification_status".into(),
        json!(if ses { "pending" } else { "success" }),
    );
    Ok(ses.then(|| NewJob::new(IDENTITY, json!({"space_id": space, "connection_id": id}), now).write()))
}

/// The job that deletes the SES identity of `sender` (a mail connection being deleted),
/// to go into the deletion's transaction; `None` for a sender SES does not hold.
pub fn on_disconnect(space: &str, sender: &Item, now: chrono::DateTime<chrono::Utc>) -> Option<Write> {
    identity_delete(space, sender, false, now)
}

/// The jobs that delete the SES identities of a deleted Space's senders, enqueued by its
/// purge before the walk removes the senders. Named after the sender, so a purge step run
/// twice enqueues each once.
pub async fn on_purge(engine: &Engine, space: &str) -> Result<Vec<Write>, StoreError> {
    let now = engine.now();
    Ok(connections::list(engine, space, MAIL)
        .await?
        .iter()
        .filter_map(|sender| identity_delete(space, sender, true, now))
        .collect())
}

fn identity_delete(
    space: &str,
    sender: &Item,
    space_deleted: bool,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Write> {
    let ses = sender.body.get("kind").and_then(Value::as_str) == Some(MAIL)
        && sender.body.get("provider").and_then(Value::as_str) == Some("ses");
    let identity = sender.body.get("address").and_then(Value::as_str)?;
    ses.then(|| {
        let job = NewJob::new(
            IDENTITY_DELETE,
            json!({"space_id": space, "connection_id": sender.sk, "identity": identity, "space_deleted": space_deleted}),
            now,
        );
        if space_deleted {
            job.named(format!("ses-identity-delete-{space}-{}", sender.sk)).write()
        } else {
            job.write()
        }
    })
}

/// A sender as a space key sees it.
pub fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "What `POST /mail/messages` takes as `from_sender_id`."},
            "address": {"type": "string", "description": "An email address, or a domain (any address at it)."},
            "address_type": {"type": "string", "enum": ["address", "domain"]},
            "name": {"type": "string"},
            "provider": {"type": "string", "enum": ["sandbox", "ses"]},
            "verified": {"type": "boolean", "description": "Whether mail may go out from it now."},
            "verification_status": {"type": "string", "description": "The provider's word: `success`, `pending`, `failed`, …"},
            "active": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
            "version": {"type": "integer"}
        },
        "required": ["id", "address", "address_type", "name", "provider", "verified", "verification_status", "active", "created_at", "version"]
    })
}

fn view(item: &Item) -> Value {
    let mut shown = connections::render(item);
    if let Some(object) = shown.as_object_mut() {
        object.remove("kind");
        object.remove("verification_checks");
    }
    shown
}

/// `GET /mail/senders`.
pub async fn list(call: Call) -> Result<Reply, ApiError> {
    let items = connections::list(&call.engine, call.space_id()?, MAIL).await?;
    let data: Vec<Value> = items.iter().map(view).collect();
    Ok(Reply::ok(json!({"data": data, "next_cursor": null})))
}

/// Registers an SES sender as an identity and reads its verification, again after each
/// of [`VERIFICATION_CHECKS`] until it is verified.
pub struct Identity;

fn status_name(status: &VerificationStatus) -> String {
    status.as_str().to_ascii_lowercase()
}

#[async_trait]
impl Handler for Identity {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let space = field("space_id")?;
        let Some(sender) = connections::get(engine, space, field("connection_id")?).await? else {
            return Ok(Outcome::Done);
        };
        if sender.body.get("kind").and_then(Value::as_str) != Some(MAIL)
            || sender.body.get("provider").and_then(Value::as_str) != Some("ses")
            || is_verified(&sender)
        {
            return Ok(Outcome::Done);
        }
        let identity = sender.body.get("address").and_then(Value::as_str).unwrap_or_default();
        let client = ses_client().await;
        match client.create_email_identity().email_identity(identity).send().await {
            Ok(_) => {}
            Err(SdkError::ServiceError(failure)) if failure.err().code() == Some("AlreadyExistsException") => {}
            Err(error) => {
                return Err(JobError::Retry(format!(
                    "CreateEmailIdentity: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&error)
                )));
            }
        }
        let read = client
            .get_email_identity()
            .email_identity(identity)
            .send()
            .await
            .map_err(|error| {
                JobError::Retry(format!(
                    "GetEmailIdentity: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&error)
                ))
            })?;
        let status = read.verification_status().map(status_name);
        let verified = read.verified_for_sending_status() || status.as_deref() == Some("success");
        let checks = sender
            .body
            .get("verification_checks")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let mut next = sender.clone();
        next.body.insert("verified".into(), json!(verified));
        next.body.insert(
            "verification_status".into(),
            json!(status.unwrap_or_else(|| "pending".into())),
        );
        next.body.insert("verification_checks".into(), json!(checks + 1));
        next.version += 1;
        match engine
            .store()
            .transact(vec![Write::put(next, Condition::Version(sender.version))])
            .await
        {
            Ok(()) => {}
            Err(StoreError::ConditionFailed | StoreError::TransactionConflict { .. }) => {
                return Err(JobError::Retry(
                    "the sender changed while its verification was read".into(),
                ));
            }
            Err(error) => return Err(error.into()),
        }
        match usize::try_from(checks).ok().and_then(|n| VERIFICATION_CHECKS.get(n)) {
            Some(wait) if !verified => Ok(Outcome::Later(engine.now() + chrono::TimeDelta::seconds(*wait))),
            _ => Ok(Outcome::Done),
        }
    }
}

/// Deletes a disconnected SES sender's identity, unless another SES sender of the Space
/// (the same address connected again) still uses it, then takes it off the Space's claim
/// on the domain, letting go of the claim once it lists no identity: in that order, so no
/// other Space can claim a domain while an identity of it is still verified in SES. An
/// identity already gone is done. A deleted Space's senders are all going (the purge
/// enqueues these jobs before it removes them), so theirs are deleted whatever the
/// senders still say.
pub struct IdentityDelete;

/// Reads and writes of a claim one [`IdentityDelete`] run tries before it comes back later.
const CLAIM_ATTEMPTS: usize = 5;

#[async_trait]
impl Handler for IdentityDelete {
    async fn run(&self, engine: &Engine, job: &Job) -> Result<Outcome, JobError> {
        let field = |name: &str| {
            job.payload
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| JobError::Fail(format!("payload without `{name}`")))
        };
        let space = field("space_id")?;
        let identity = field("identity")?;
        let space_deleted = job.payload.get("space_deleted").and_then(Value::as_bool) == Some(true);
        let domain = domain_of(identity);
        let ours = |claim: &Item| claim.body.get("space_id").and_then(Value::as_str) == Some(space);
        if engine
            .store()
            .get(SES_DOMAINS, domain)
            .await?
            .is_some_and(|claim| !ours(&claim))
        {
            // Another Space holds the domain now: the identity is its own.
            return Ok(Outcome::Done);
        }
        let ses_senders: Vec<String> = if space_deleted {
            Vec::new()
        } else {
            connections::list(engine, space, MAIL)
                .await?
                .iter()
                .filter(|sender| sender.body.get("provider").and_then(Value::as_str) == Some("ses"))
                .filter_map(|sender| sender.body.get("address").and_then(Value::as_str).map(str::to_owned))
                .collect()
        };
        if ses_senders.iter().any(|address| address == identity) {
            return Ok(Outcome::Done);
        }
        match ses_client()
            .await
            .delete_email_identity()
            .email_identity(identity)
            .send()
            .await
        {
            Ok(_) => {}
            Err(SdkError::ServiceError(failure)) if failure.err().code() == Some("NotFoundException") => {}
            Err(error) => {
                return Err(JobError::Retry(format!(
                    "DeleteEmailIdentity: {}",
                    aws_sdk_sesv2::error::DisplayErrorContext(&error)
                )));
            }
        }
        // Sibling jobs (a Space's senders at one domain, going together) race for the claim:
        // each takes its identity off and tries again on a conflict.
        for _ in 0..CLAIM_ATTEMPTS {
            let Some(claim) = engine.store().get(SES_DOMAINS, domain).await?.filter(ours) else {
                return Ok(Outcome::Done);
            };
            let left: Vec<String> = claimed_identities(&claim)
                .into_iter()
                .filter(|listed| listed != identity)
                .collect();
            // A claim written before claims listed identities is let go of once no SES
            // sender of the Space is at the domain.
            let write = if left.is_empty() && !ses_senders.iter().any(|address| domain_of(address) == domain) {
                Write::delete(SES_DOMAINS, domain, Condition::Version(claim.version))
            } else {
                claim_write(space, domain, &left, Some(&claim))
            };
            match engine.store().transact(vec![write]).await {
                Ok(()) => return Ok(Outcome::Done),
                Err(error) if error.is_condition_failure() => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(JobError::Retry(
            "the domain's claim kept changing while the identity was taken off it".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_are_addresses_or_domains() {
        assert_eq!(
            parse_sender(" Agent@Example.com "),
            Ok(SenderAddress::Address("agent@example.com".into()))
        );
        assert_eq!(
            parse_sender("Mail.Example.co.uk"),
            Ok(SenderAddress::Domain("mail.example.co.uk".into()))
        );
        for bad in [
            "",
            "example",
            "exa mple.com",
            "-x.com",
            "a@b",
            "Ada <a@example.com>",
            "x..com",
        ] {
            assert_eq!(parse_sender(bad), Err(SenderError::Invalid), "{bad}");
        }
    }
}
