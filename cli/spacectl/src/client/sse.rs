//! Server-Sent Events as the realtime stream sends them: `id`, `event` and `data` lines,
//! a blank line ending each event, comments (`:`) kept alive and ignored.

use serde_json::Value;

/// One event of the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub data: String,
}

/// Turns chunks of the body into events, whatever the chunks' boundaries.
#[derive(Default)]
pub struct Parser {
    pending: Vec<u8>,
    event: Event,
}

impl Parser {
    /// The events `chunk` completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(chunk);
        let mut done = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                let event = std::mem::take(&mut self.event);
                if !event.data.is_empty() {
                    done.push(event);
                }
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => self.event.id = Some(value.to_owned()),
                "event" => self.event.kind = Some(value.to_owned()),
                "data" => {
                    if !self.event.data.is_empty() {
                        self.event.data.push('\n');
                    }
                    self.event.data.push_str(value);
                }
                _ => {}
            }
        }
        done
    }
}

/// An event as one line: when, what, which resource, and who.
pub fn line(event: &Event) -> String {
    let data: Value = serde_json::from_str(&event.data).unwrap_or(Value::Null);
    let text = |value: &Value| value.as_str().unwrap_or("-").to_owned();
    let kind = event.kind.clone().unwrap_or_else(|| text(&data["type"]));
    let actor = match data["actor"]["kind"].as_str() {
        Some("key") => format!("key {}", text(&data["actor"]["key_id"])),
        Some(other) => other.to_owned(),
        None => "-".into(),
    };
    format!(
        "{}  {kind}  {}  by {actor}",
        text(&data["created_at"]),
        text(&data["resource"]["id"])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_span_chunks_and_comments_are_skipped() {
        let mut parser = Parser::default();
        assert!(parser.push(b": heartbeat\n\nid: evt_1\nevent: contact.cre").is_empty());
        let events = parser.push(b"ated\ndata: {\"type\":\"contact.created\"}\r\n\r\n");
        assert_eq!(
            events,
            vec![Event {
                id: Some("evt_1".into()),
                kind: Some("contact.created".into()),
                data: "{\"type\":\"contact.created\"}".into()
            }]
        );
    }

    #[test]
    fn a_line_names_the_type_the_resource_and_the_actor() {
        let event = Event {
            id: Some("evt_1".into()),
            kind: Some("contact.created".into()),
            data: r#"{"created_at":"2026-12-05T10:00:00Z","actor":{"kind":"key","key_id":"key_1"},"resource":{"type":"contact","id":"con_1"}}"#.into(),
        };
        assert_eq!(
            line(&event),
            "2026-12-05T10:00:00Z  contact.created  con_1  by key key_1"
        );
    }
}
