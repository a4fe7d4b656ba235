//! Caps on live actions: how many times per UTC day a key may send an SMS, publish a post,
//! reply in the inbox, send a mail. The names are here, once, like the scopes: an operation
//! that counts against a cap declares it, the account API accepts limits on these names
//! only, and the engine counts each use in the transaction of the action itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scope::Domain;

/// A live action a key's limits can cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cap {
    PhoneSms,
    SocialPublish,
    InboxReply,
    MailSend,
}

impl Cap {
    pub const ALL: &'static [Cap] = &[Cap::PhoneSms, Cap::SocialPublish, Cap::InboxReply, Cap::MailSend];

    /// The name a key's `limits` use: `<domain>.<action>`.
    pub fn as_str(self) -> &'static str {
        match self {
            Cap::PhoneSms => "phone.sms",
            Cap::SocialPublish => "social.publish",
            Cap::InboxReply => "inbox.reply",
            Cap::MailSend => "mail.send",
        }
    }

    pub fn parse(text: &str) -> Option<Cap> {
        Cap::ALL.iter().copied().find(|cap| cap.as_str() == text)
    }

    /// The domain whose operations count against it.
    pub fn domain(self) -> Domain {
        match self {
            Cap::PhoneSms => Domain::Phone,
            Cap::SocialPublish => Domain::Social,
            Cap::InboxReply => Domain::Inbox,
            Cap::MailSend => Domain::Mail,
        }
    }

    /// Every name, for messages that list them.
    pub fn names() -> Vec<&'static str> {
        Cap::ALL.iter().map(|cap| cap.as_str()).collect()
    }
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cap as a key record stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapLimit {
    pub per_day: u32,
}

/// A key's caps by name, as stored (names the code no longer knows are kept and ignored).
pub type StoredLimits = BTreeMap<String, CapLimit>;

/// The caps of `stored` this code knows, with their daily limits.
pub fn known(stored: &StoredLimits) -> Vec<(Cap, u32)> {
    stored
        .iter()
        .filter_map(|(name, limit)| Cap::parse(name).map(|cap| (cap, limit.per_day)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_name_their_domain() {
        for cap in Cap::ALL {
            assert_eq!(Cap::parse(cap.as_str()), Some(*cap));
            assert!(cap.as_str().starts_with(cap.domain().as_str()));
        }
        assert_eq!(Cap::parse("phone.call"), None);
    }
}
