//! The scope catalogue as data, so that a client (the console's scope grid) builds its
//! choices from what the server accepts instead of a copy that drifts.

use serde_json::{Value, json};
use space_auth::{Action, Cap, Domain};
use space_http::operation::{Call, Handler, Reply, handler};

/// Every action, every domain with the actions it offers, and the toolsets a key may pin.
pub fn view() -> Value {
    let actions: Vec<Value> = Action::ALL
        .iter()
        .map(|action| json!({"name": action.as_str(), "about": action.about(), "live": action.is_live()}))
        .collect();
    let domains: Vec<Value> = Domain::ALL
        .iter()
        .map(|domain| {
            let offered: Vec<&str> = domain.actions().iter().map(|action| action.as_str()).collect();
            json!({"name": domain.as_str(), "about": domain.about(), "actions": offered})
        })
        .collect();
    let toolsets: Vec<&str> = Domain::ALL.iter().map(|domain| domain.as_str()).collect();
    let caps: Vec<Value> = Cap::ALL
        .iter()
        .map(|cap| json!({"name": cap.as_str(), "domain": cap.domain().as_str()}))
        .collect();
    json!({"actions": actions, "domains": domains, "toolsets": toolsets, "caps": caps})
}

pub fn schema() -> Value {
    let action_names: Vec<&str> = Action::ALL.iter().map(|action| action.as_str()).collect();
    let domain_names: Vec<&str> = Domain::ALL.iter().map(|domain| domain.as_str()).collect();
    json!({
        "type": "object",
        "required": ["actions", "domains", "toolsets", "caps"],
        "properties": {
            "actions": {
                "type": "array",
                "description": "What a scope allows within its domain, in order: read, write, run.",
                "items": {
                    "type": "object",
                    "required": ["name", "about", "live"],
                    "properties": {
                        "name": {"type": "string", "enum": action_names},
                        "about": {"type": "string"},
                        "live": {"type": "boolean", "description": "The action is seen outside the Space (publish, send, …)."}
                    }
                }
            },
            "domains": {
                "type": "array",
                "description": "Every domain, with the actions it offers: a scope is `<domain>:<action>` for one of them.",
                "items": {
                    "type": "object",
                    "required": ["name", "about", "actions"],
                    "properties": {
                        "name": {"type": "string", "enum": domain_names},
                        "about": {"type": "string"},
                        "actions": {"type": "array", "items": {"type": "string", "enum": action_names}}
                    }
                }
            },
            "toolsets": {
                "type": "array",
                "description": "What a key's `toolsets` may name.",
                "items": {"type": "string", "enum": domain_names}
            },
            "caps": {
                "type": "array",
                "description": "The live actions a key's `limits` may cap per UTC day, each with the domain whose `run` scope does it.",
                "items": {
                    "type": "object",
                    "required": ["name", "domain"],
                    "properties": {
                        "name": {"type": "string", "enum": Cap::names()},
                        "domain": {"type": "string", "enum": domain_names}
                    }
                }
            }
        }
    })
}

pub fn get_handler() -> Handler {
    handler(|_call: Call| async move { Ok(Reply::ok(view())) })
}
