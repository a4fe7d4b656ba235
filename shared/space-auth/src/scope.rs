//! The scope catalogue: every domain of a Space and which actions it offers.
//!
//! `read` lists and inspects, `write` creates and edits drafts, `run` performs the live
//! action (publish, send, post, reply, run, launch). A live action is never reachable
//! with `write`. The table below is the only place this is written down; REST
//! authorization, MCP tool filtering, OpenAPI and the docs all read it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a scope allows within its domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Read,
    Write,
    Run,
}

impl Action {
    pub const ALL: [Action; 3] = [Action::Read, Action::Write, Action::Run];

    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Write => "write",
            Action::Run => "run",
        }
    }

    /// One line for docs and the console's scope grid.
    pub const fn about(self) -> &'static str {
        match self {
            Action::Read => "List and inspect",
            Action::Write => "Create and edit: drafts, never a live action",
            Action::Run => "Live actions, seen outside the Space: publish, send, reply, run, launch",
        }
    }

    /// Whether the action reaches outside the Space.
    pub const fn is_live(self) -> bool {
        matches!(self, Action::Run)
    }

    const fn bit(self) -> u32 {
        match self {
            Action::Read => 0,
            Action::Write => 1,
            Action::Run => 2,
        }
    }
}

const R: &[Action] = &[Action::Read];
const RW: &[Action] = &[Action::Read, Action::Write];
const RWX: &[Action] = &[Action::Read, Action::Write, Action::Run];
const RX: &[Action] = &[Action::Read, Action::Run];
const W: &[Action] = &[Action::Write];

macro_rules! domains {
    ($( $variant:ident = $name:literal, $actions:expr, $about:literal; )*) => {
        /// A business area of a Space; the part of a scope before the colon.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Domain { $( $variant, )* }

        impl Domain {
            /// Every domain, in catalogue order.
            pub const ALL: &'static [Domain] = &[ $( Domain::$variant, )* ];

            pub const fn as_str(self) -> &'static str {
                match self { $( Domain::$variant => $name, )* }
            }

            /// The actions this domain offers; a scope outside them does not exist.
            pub const fn actions(self) -> &'static [Action] {
                match self { $( Domain::$variant => $actions, )* }
            }

            /// One line for docs and tool descriptions.
            pub const fn about(self) -> &'static str {
                match self { $( Domain::$variant => $about, )* }
            }

            /// The domain named `text`; a `match` on the names, which the compiler turns
            /// into a few length and byte comparisons (the key lookup parses every scope
            /// of the key on every request).
            fn from_name(text: &str) -> Option<Domain> {
                match text {
                    $( $name => Some(Domain::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

domains! {
    Contacts = "contacts", RW, "People and companies, their notes and tags";
    Tables = "tables", RW, "User-defined tables and their records";
    Pages = "pages", RWX, "Web pages: drafts, and publishing them live";
    Forms = "forms", RW, "Forms and their submissions";
    Booking = "booking", RW, "Booking pages, appointment types and appointments";
    Calendar = "calendar", RW, "Calendar events";
    Tasks = "tasks", RW, "Tasks with status, priority and due dates";
    Documents = "documents", RW, "Documents in markdown";
    Whiteboards = "whiteboards", RW, "Whiteboards";
    Meet = "meet", RW, "Video meetings";
    Assets = "assets", RW, "Media files and characters";
    Social = "social", RWX, "Social accounts, drafts, slots, the queue; publishing and scheduling";
    Inbox = "inbox", RWX, "Conversations: notes and closing; replying live";
    Phone = "phone", RX, "Phone numbers and calls; sending SMS";
    Ads = "ads", RW, "Ad accounts and draft campaigns (launching is UI-only)";
    Agents = "agents", RW, "Cloud agents";
    Apps = "apps", RWX, "Space Apps: code and schema; publishing";
    Wallet = "wallet", R, "Wallet balance and transactions (read only)";
    Finance = "finance", R, "Invoices (read only)";
    Integrations = "integrations", R, "Connected integrations (read only)";
    Secrets = "secrets", R, "Secret names and metadata, never values";
    Automations = "automations", RX, "Automations and their runs; running them";
    Mail = "mail", W, "Agent mail: sending";
    Messaging = "messaging", RWX, "Templates, tags, campaigns and knowledge; launching campaigns";
    Team = "team", R, "Members of the Space (read only)";
    Analytics = "analytics", R, "Analytics summaries and exports";
    Webhooks = "webhooks", RW, "Webhook endpoints";
    Events = "events", R, "The changes feed and the realtime stream";
}

impl Domain {
    fn index(self) -> u32 {
        // Position in ALL; the enum is fieldless and declared in the same order.
        self as u32
    }
}

impl FromStr for Domain {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Domain, ScopeError> {
        Domain::from_name(text).ok_or_else(|| ScopeError::UnknownDomain(text.to_owned()))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a scope string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("`{0}` is not a scope: write it as domain:action, e.g. contacts:read")]
    Malformed(String),
    #[error("`{0}` is not a known domain")]
    UnknownDomain(String),
    #[error("`{0}` is not an action: use read, write or run")]
    UnknownAction(String),
    #[error("the {domain} domain has no `{action}` scope (it offers {offered})")]
    NotOffered {
        domain: Domain,
        action: &'static str,
        offered: String,
    },
}

/// One permission, printed and parsed as `domain:action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    pub domain: Domain,
    pub action: Action,
}

impl Scope {
    /// Only for pairs the catalogue offers; use `parse` for anything from outside.
    pub const fn new(domain: Domain, action: Action) -> Scope {
        Scope { domain, action }
    }

    /// Every scope the catalogue offers, in catalogue order.
    pub fn all() -> impl Iterator<Item = Scope> {
        Domain::ALL
            .iter()
            .flat_map(|&domain| domain.actions().iter().map(move |&action| Scope { domain, action }))
    }

    fn bit(self) -> u128 {
        1u128 << (self.domain.index() * 3 + self.action.bit())
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Scope, ScopeError> {
        let (domain_text, action_text) = text
            .split_once(':')
            .ok_or_else(|| ScopeError::Malformed(text.to_owned()))?;
        let domain: Domain = domain_text.parse()?;
        let action = Action::ALL
            .into_iter()
            .find(|a| a.as_str() == action_text)
            .ok_or_else(|| ScopeError::UnknownAction(action_text.to_owned()))?;
        if !domain.actions().contains(&action) {
            let offered: Vec<&str> = domain.actions().iter().map(|a| a.as_str()).collect();
            return Err(ScopeError::NotOffered {
                domain,
                action: action.as_str(),
                offered: offered.join(", "),
            });
        }
        Ok(Scope { domain, action })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.domain.as_str(), self.action.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scope, D::Error> {
        struct ScopeText;

        impl serde::de::Visitor<'_> for ScopeText {
            type Value = Scope;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scope such as \"contacts:read\"")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Scope, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_str(ScopeText)
    }
}

/// A set of scopes as a bit set: checking a scope on the request path is one AND.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u128);

impl ScopeSet {
    /// Every scope the catalogue offers.
    pub fn all() -> ScopeSet {
        Scope::all().collect()
    }

    pub fn contains(&self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn insert(&mut self, scope: Scope) {
        self.0 |= scope.bit();
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The scopes in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::all().filter(|s| self.contains(*s))
    }

    /// Parses space-separated scopes (OAuth's form, how key records store them). Scopes in
    /// catalogue order, the order they are written in, match in one pass over the
    /// catalogue; any other order still parses, one scope at a time.
    pub fn parse_spaced(text: &str) -> Result<ScopeSet, ScopeError> {
        let mut set = ScopeSet::default();
        let mut catalogue = Scope::all();
        'scopes: for token in text.split_ascii_whitespace() {
            if let Some((domain, action)) = token.split_once(':') {
                for scope in catalogue.by_ref() {
                    if scope.domain.as_str() == domain && scope.action.as_str() == action {
                        set.insert(scope);
                        continue 'scopes;
                    }
                }
            }
            set.insert(token.parse()?);
            catalogue = Scope::all();
        }
        Ok(set)
    }

    /// Parses every entry, reporting each bad one (for a 422 that names them all).
    pub fn parse_all<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<ScopeSet, Vec<ScopeError>> {
        let mut set = ScopeSet::default();
        let mut errors = Vec::new();
        for text in texts {
            match text.parse::<Scope>() {
                Ok(scope) => set.insert(scope),
                Err(error) => errors.push(error),
            }
        }
        if errors.is_empty() { Ok(set) } else { Err(errors) }
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> ScopeSet {
        let mut set = ScopeSet::default();
        for scope in iter {
            set.insert(scope);
        }
        set
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter().map(|s| s.to_string())).finish()
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ScopeSet, D::Error> {
        let scopes = Vec::<Scope>::deserialize(deserializer)?;
        Ok(scopes.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offered_scope_round_trips_and_fits_the_bit_set() {
        assert!(Domain::ALL.len() * 3 <= 128);
        for scope in Scope::all() {
            assert_eq!(scope.to_string().parse::<Scope>(), Ok(scope));
        }
        let all = ScopeSet::all();
        assert_eq!(all.iter().count(), Scope::all().count());
    }

    #[test]
    fn spaced_scopes_parse_in_any_order_and_refuse_unknown_ones() {
        let names: Vec<String> = Scope::all().map(|scope| scope.to_string()).collect();
        assert_eq!(ScopeSet::parse_spaced(&names.join(" ")), Ok(ScopeSet::all()));
        let reversed: Vec<&str> = names.iter().rev().map(String::as_str).collect();
        assert_eq!(ScopeSet::parse_spaced(&reversed.join(" ")), Ok(ScopeSet::all()));
        let some = ScopeSet::parse_spaced("tasks:write  contacts:read tasks:write").unwrap();
        assert_eq!(
            some.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            ["contacts:read", "tasks:write"]
        );
        assert_eq!(ScopeSet::parse_spaced(""), Ok(ScopeSet::default()));
        assert!(matches!(
            ScopeSet::parse_spaced("contacts:read nope:read"),
            Err(ScopeError::UnknownDomain(_))
        ));
        assert!(matches!(
            ScopeSet::parse_spaced("contacts:read wallet:write"),
            Err(ScopeError::NotOffered { .. })
        ));
        assert!(ScopeSet::parse_spaced("contacts").is_err());
    }

    #[test]
    fn live_actions_and_read_only_domains_follow_the_design() {
        assert!("pages:run".parse::<Scope>().is_ok());
        assert!(matches!(
            "wallet:write".parse::<Scope>(),
            Err(ScopeError::NotOffered { .. })
        ));
        assert!(matches!("ads:run".parse::<Scope>(), Err(ScopeError::NotOffered { .. })));
        assert!(matches!(
            "mail:read".parse::<Scope>(),
            Err(ScopeError::NotOffered { .. })
        ));
        assert!(matches!(
            "money:read".parse::<Scope>(),
            Err(ScopeError::UnknownDomain(_))
        ));
        assert!(matches!(
            "contacts:admin".parse::<Scope>(),
            Err(ScopeError::UnknownAction(_))
        ));
        assert!(matches!("contacts".parse::<Scope>(), Err(ScopeError::Malformed(_))));
    }

    #[test]
    fn parse_all_reports_every_bad_entry() {
        let errors = ScopeSet::parse_all(["contacts:read", "nope:read", "tasks:fly"]).unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
