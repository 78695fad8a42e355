//! Presence: availability values, a user's visible presence, and its events.
//!
//! Each station has its own presence ([`StationPresence`]); a station is *available* while
//! it has a live connection and its `show` is not `offline`. What contacts see is one
//! presence per user ([`Availability`]): that of the available station with the highest
//! priority, ties to the most available `show`. It goes out as `chatapi.presence`, rendered
//! once per change and shared by every contact that receives it, so the broadcast form
//! carries `"to": null` (the recipient is whoever holds the event). Each available station's
//! own presence goes out too, as its own event, for the doors that show every resource
//! (XMPP, RFC 6121 §4.4).

use std::sync::Arc;

pub use crate::model::records::{Availability, Show};
use crate::model::{Event, Payload};

/// One station's own presence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StationPresence {
    pub show: Show,
    pub status: Option<String>,
    /// RFC 6121 priority, -128..=127; the highest available station is the visible one.
    pub priority: i8,
}

/// The visible presence from the presences of the user's available stations.
pub fn visible<'a>(stations: impl Iterator<Item = &'a StationPresence>) -> Option<Availability> {
    stations
        .filter(|p| p.show != Show::Offline)
        .max_by_key(|p| (p.priority, p.show.rank()))
        .map(|p| Availability { show: p.show, status: p.status.clone() })
}

/// A presence on its way to contacts: who it is from, what it says, and its events.
#[derive(Debug)]
pub struct PresenceUpdate {
    pub from_user: String,
    pub availability: Option<Availability>,
    /// The visible presence, one event for every contact that receives it.
    pub event: Arc<Event>,
    /// One [`Payload::StationPresence`] per available station: what a probe is answered
    /// with besides `event`.
    pub stations: Vec<Arc<Event>>,
    /// What this update tells contacts now: the station presence that changed, then
    /// `event` if the visible presence changed (so that the last resource's leaving comes
    /// before the user's).
    pub news: Vec<Arc<Event>>,
}

impl PresenceUpdate {
    /// `from_user`'s visible presence alone (an unavailable notice: no stations).
    pub fn new(from_user: &str, availability: Option<Availability>) -> Arc<PresenceUpdate> {
        let event = Event::new(Payload::Presence { from: from_user.to_owned(), availability: availability.clone() });
        let news = vec![event.clone()];
        Arc::new(PresenceUpdate { from_user: from_user.to_owned(), availability, event, stations: Vec::new(), news })
    }

    /// A change of one station (`changed`) and perhaps of the visible presence, with the
    /// user's available stations after it.
    pub fn changed(
        from_user: &str,
        availability: Option<Availability>,
        visible_changed: bool,
        stations: Vec<Arc<Event>>,
        changed: Arc<Event>,
    ) -> Arc<PresenceUpdate> {
        let event = Event::new(Payload::Presence { from: from_user.to_owned(), availability: availability.clone() });
        let mut news = vec![changed];
        if visible_changed {
            news.push(event.clone());
        }
        Arc::new(PresenceUpdate { from_user: from_user.to_owned(), availability, event, stations, news })
    }

    /// What a probe is answered with: the visible presence, then each available station.
    pub fn snapshot(&self) -> Vec<Arc<Event>> {
        std::iter::once(self.event.clone()).chain(self.stations.iter().cloned()).collect()
    }
}

/// One station's presence as its event (`None`: unavailable).
pub fn station_event(from_user: &str, resource: &str, presence: Option<&StationPresence>) -> Arc<Event> {
    Event::new(Payload::StationPresence {
        from: from_user.to_owned(),
        resource: resource.to_owned(),
        availability: presence.map(|p| Availability { show: p.show, status: p.status.clone() }),
        priority: presence.map_or(0, |p| p.priority),
    })
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
    fn a_presence_update_carries_its_availability_in_its_event() {
        let busy = Some(Availability { show: Show::Dnd, status: None });
        let update = PresenceUpdate::new("ann", busy.clone());
        assert_eq!(update.event.payload, Payload::Presence { from: "ann".into(), availability: busy });
        let gone = PresenceUpdate::new("ann", None);
        assert_eq!(gone.event.payload, Payload::Presence { from: "ann".into(), availability: None });
    }
}
