//! Presence: availability values, a user's visible presence, and its events.
//!
//! Each station has its own presence ([`StationPresence`]); a station is *available* while
//! it has a live connection and its `show` is not `offline`. What contacts see is one
//! presence per user ([`Availability`]): that of the available station with the highest
//! priority, ties to the most available `show`. It goes out as `chatapi.presence`, rendered
//! once per change and shared by every contact that receives it, so the broadcast form
//! carries `"to": null` (the recipient is whoever holds the event).

use std::sync::Arc;

use serde_json::json;

use crate::event::Event;
use crate::roster::NoticeKind;

/// What a station says about itself (`show`, RFC 6121 §4.7.2.1, plus ofchat's `offline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Show {
    #[default]
    Available,
    Chat,
    Away,
    Xa,
    Dnd,
    /// Connected but shown as unavailable to contacts.
    Offline,
}

impl Show {
    pub const NAMES: &'static str = "available, away, chat, dnd, xa, offline";

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "available" => Some(Show::Available),
            "chat" => Some(Show::Chat),
            "away" => Some(Show::Away),
            "xa" => Some(Show::Xa),
            "dnd" => Some(Show::Dnd),
            "offline" => Some(Show::Offline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Show::Available => "available",
            Show::Chat => "chat",
            Show::Away => "away",
            Show::Xa => "xa",
            Show::Dnd => "dnd",
            Show::Offline => "offline",
        }
    }

    /// Higher is more available; used to pick a user's visible station.
    fn rank(self) -> u8 {
        match self {
            Show::Chat => 5,
            Show::Available => 4,
            Show::Away => 3,
            Show::Xa => 2,
            Show::Dnd => 1,
            Show::Offline => 0,
        }
    }

    /// Ozeki's coarser availability: `available`, `away`, `busy` or `offline`.
    pub fn ozeki(self) -> &'static str {
        match self {
            Show::Chat | Show::Available => "available",
            Show::Away | Show::Xa => "away",
            Show::Dnd => "busy",
            Show::Offline => "offline",
        }
    }
}

/// One station's own presence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StationPresence {
    pub show: Show,
    pub status: Option<String>,
    /// RFC 6121 priority, -128..=127; the highest available station is the visible one.
    pub priority: i8,
}

/// A user's visible presence: `None` is unavailable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Availability {
    pub show: Show,
    pub status: Option<String>,
}

/// The visible presence from the presences of the user's available stations.
pub fn visible<'a>(stations: impl Iterator<Item = &'a StationPresence>) -> Option<Availability> {
    stations
        .filter(|p| p.show != Show::Offline)
        .max_by_key(|p| (p.priority, p.show.rank()))
        .map(|p| Availability { show: p.show, status: p.status.clone() })
}

/// A presence on its way to contacts: who it is from, what it says, and its one rendering.
#[derive(Debug)]
pub struct PresenceUpdate {
    pub from_user: String,
    pub availability: Option<Availability>,
    pub event: Arc<Event>,
}

impl PresenceUpdate {
    /// Renders `from_user`'s presence once, for every contact that will receive it.
    pub fn new(from_user: &str, availability: Option<Availability>, domain: &str) -> Arc<PresenceUpdate> {
        let event = Event::render("chatapi.presence", None, presence_json(from_user, availability.as_ref(), domain));
        Arc::new(PresenceUpdate { from_user: from_user.to_owned(), availability, event })
    }
}

/// The JSON of a user's presence as the chat API shows it (events, `GET …/presence/{jid}`,
/// contact lists).
pub fn presence_json(user: &str, availability: Option<&Availability>, domain: &str) -> serde_json::Value {
    let (kind, show, status) = match availability {
        Some(a) => ("available", a.show, a.status.as_deref()),
        None => ("unavailable", Show::Offline, None),
    };
    json!({
        "type": kind,
        "from": format!("{user}@{domain}"),
        "to": null,
        "show": show.as_str(),
        "status": status,
        "availability": show.ozeki(),
    })
}

/// A subscription request or answer (RFC 6121 §3) as `chatapi.presence`.
pub fn subscription_event(kind: NoticeKind, from: &str, to: &str, domain: &str) -> Arc<Event> {
    Event::render(
        "chatapi.presence",
        None,
        json!({
            "type": kind.as_str(),
            "from": format!("{from}@{domain}"),
            "to": format!("{to}@{domain}"),
            "show": null,
            "status": null,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(show: Show, priority: i8) -> StationPresence {
        StationPresence { show, status: Some(show.as_str().into()), priority }
    }

    #[test]
    fn visible_presence_is_the_highest_priority_then_most_available_station() {
        assert_eq!(visible([].iter()), None);
        assert_eq!(visible([p(Show::Offline, 9)].iter()), None);
        let picked = visible([p(Show::Away, 0), p(Show::Chat, 0), p(Show::Dnd, 0)].iter()).unwrap();
        assert_eq!(picked.show, Show::Chat);
        let picked = visible([p(Show::Chat, 0), p(Show::Dnd, 5)].iter()).unwrap();
        assert_eq!(picked.show, Show::Dnd);
    }

    #[test]
    fn presence_renders_ofchat_keys_and_ozeki_availability() {
        let update = PresenceUpdate::new("ann", Some(Availability { show: Show::Dnd, status: None }), "d");
        let v: serde_json::Value = serde_json::from_str(&update.event.json).unwrap();
        assert_eq!(v["type"], "available");
        assert_eq!(v["from"], "ann@d");
        assert_eq!(v["show"], "dnd");
        assert_eq!(v["availability"], "busy");
        let gone = PresenceUpdate::new("ann", None, "d");
        let v: serde_json::Value = serde_json::from_str(&gone.event.json).unwrap();
        assert_eq!(v["type"], "unavailable");
        assert_eq!(v["availability"], "offline");
    }
}
