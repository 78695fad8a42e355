//! `UserSession`: one actor per online user (a user with at least one station).
//!
//! It owns the user's stations and decides where each message goes: a message to the bare
//! address reaches every live station, one to a full address that one station. What no
//! live station takes stays pending in the store. When a station comes alive, the session
//! flushes the pending messages first, in id order, and holds back messages that commit
//! meanwhile so that order is kept (DESIGN.md §5, offline delivery). The router starts it,
//! tells it about stations and connections, and stops it when the last station ends.
//!
//! It also owns the user's contacts while the user is online (loaded from the store before
//! it handles anything else, then kept current by the router's `RosterChanged`) and its
//! presence: each station's own, the visible one contacts see (broadcast once per change,
//! `unavailable` when the last station goes), and the contacts' presence it may show.

mod by_resource;
pub mod rooms;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;

use self::by_resource::ByResource;
use crate::model::event::CopyDirection;
use crate::model::{Event, Payload, StoredMessage};
use crate::muc::conference::{Conference, StationLeft};
use crate::presence::{station_event, visible, Availability, PresenceUpdate, Show, StationPresence};
use crate::roster::{NoticeKind, RosterItem, RowChange, Subscription};
use crate::route_error::RouteError;
use crate::station::{AddConnection, EndStation, RemoveConnection, Station, StationEvent};
use crate::storage::{MessageStorage, RosterStorage, Storage};

/// One online user.
pub struct UserSession {
    username: String,
    messages: Arc<dyn MessageStorage>,
    rosters: Arc<dyn RosterStorage>,
    /// Where this user's presence goes out (the router).
    presence_out: Recipient<PresenceOut>,
    /// Where probes for contacts' presence go (the router).
    probes: Recipient<Probe>,
    conference: Addr<Conference>,
    stations: ByResource<StationSlot>,
    flush: FlushState,
    /// The user's roster rows, by contact.
    roster: HashMap<String, RosterItem>,
    /// Contacts' presence this user sees, for the available ones.
    seen: HashMap<String, Arc<PresenceUpdate>>,
    /// Ids of roster pushes.
    next_push: u64,
    /// What subscribers currently see of this user: the last broadcast, while available.
    visible: Option<Arc<PresenceUpdate>>,
    /// The available stations' presence as last broadcast, and its events.
    station_presence: ByResource<StationPresence>,
    station_events: ByResource<Arc<Event>>,
}

struct StationSlot {
    addr: Addr<Station>,
    /// It has a connection (the router's station table counts them and says when).
    live: bool,
    presence: StationPresence,
    /// Rooms this station is in: it leaves them when it ends.
    rooms: HashSet<String>,
}

/// The offline flush: `Running` while pending messages are being read from the store.
enum FlushState {
    Idle,
    Running {
        /// Messages committed while the flush reads; delivered after it, in order.
        held_back: Vec<Arc<StoredMessage>>,
        /// Another station came alive meanwhile: flush again when this one is done.
        again: bool,
    },
}

impl UserSession {
    pub fn new(
        username: String,
        storage: &Storage,
        presence_out: Recipient<PresenceOut>,
        probes: Recipient<Probe>,
        conference: Addr<Conference>,
    ) -> Self {
        UserSession {
            username,
            messages: storage.messages.clone(),
            rosters: storage.rosters.clone(),
            presence_out,
            probes,
            conference,
            stations: ByResource::default(),
            flush: FlushState::Idle,
            roster: HashMap::new(),
            seen: HashMap::new(),
            next_push: 0,
            visible: None,
            station_presence: ByResource::default(),
            station_events: ByResource::default(),
        }
    }

    /// Sends `event` to every live station, or to one (`resource`).
    fn push_live(&self, event: &Arc<Event>, resource: Option<&str>) {
        for (name, slot) in self.live_stations() {
            if resource.is_none_or(|only| only == name) {
                slot.addr.do_send(StationEvent { event: event.clone() });
            }
        }
    }

    /// The contacts that receive this user's presence.
    fn subscribers(&self) -> Vec<String> {
        self.roster.values().filter(|r| r.subscription.has_from()).map(|r| r.contact.clone()).collect()
    }

    /// A station just came alive: it gets the presence of the contacts the user sees and
    /// the subscription requests waiting for an answer (RFC 6121 §3.1.3).
    fn greet_station(&self, resource: &str) {
        let contacts: Vec<String> =
            self.roster.values().filter(|r| r.subscription.has_to()).map(|r| r.contact.clone()).collect();
        if !contacts.is_empty() {
            self.probes.do_send(Probe {
                requester: self.username.clone(),
                resource: Some(resource.to_owned()),
                contacts,
            });
        }
        for request in self.roster.values().filter(|r| r.pending_in) {
            let event = Event::new(Payload::Subscription {
                kind: NoticeKind::Subscribe,
                from: request.contact.clone(),
                to: self.username.clone(),
            });
            self.push_live(&event, Some(resource));
        }
    }

    /// Station `resource` may have changed its presence (or come alive, gone quiet, ended):
    /// if it or the visible presence changed, broadcasts the change (rendered once) to
    /// every subscriber.
    fn refresh_presence(&mut self, resource: &str, ctx: &mut Context<Self>) {
        let now = visible(self.live_stations().map(|(_, slot)| &slot.presence));
        let visible_changed = now != self.visible.as_ref().and_then(|u| u.availability.clone());
        let station = self
            .stations
            .get(resource)
            .filter(|slot| slot.live && slot.presence.show != Show::Offline)
            .map(|slot| &slot.presence);
        let station_changed = self.station_presence.get(resource) != station;
        if !visible_changed && !station_changed {
            return;
        }
        let changed = station_event(&self.username, resource, station);
        match station {
            Some(presence) => {
                self.station_presence.insert(resource.to_owned(), presence.clone());
                self.station_events.insert(resource.to_owned(), changed.clone());
            }
            None => {
                self.station_presence.remove(resource);
                self.station_events.remove(resource);
            }
        }
        let stations = self.station_events.values().cloned().collect();
        let update = PresenceUpdate::changed(&self.username, now, visible_changed, stations, changed);
        self.visible = update.availability.is_some().then(|| update.clone());
        self.presence_out.do_send(PresenceOut {
            sender: ctx.address(),
            update,
            to: self.subscribers(),
            broadcast: true,
        });
    }

    fn live_stations(&self) -> impl Iterator<Item = (&String, &StationSlot)> {
        self.stations.iter().filter(|(_, slot)| slot.live)
    }

    /// Pushes a stored message to the stations it is for; true if any live station took it.
    fn push_message(&self, message: &Arc<StoredMessage>, event: &Arc<Event>) -> bool {
        let mut delivered = false;
        match &message.deliver_to {
            Some(resource) => {
                if let Some(slot) = self.stations.get(resource).filter(|s| s.live) {
                    slot.addr.do_send(StationEvent { event: event.clone() });
                    delivered = true;
                }
                // The user's other stations see it came (XEP-0280 received copies).
                self.push_copy(message, CopyDirection::Received, Some(resource));
            }
            None => {
                for (_, slot) in self.live_stations() {
                    slot.addr.do_send(StationEvent { event: event.clone() });
                    delivered = true;
                }
            }
        }
        delivered
    }

    /// A copy of `message` to every live station but `except`.
    fn push_copy(&self, message: &Arc<StoredMessage>, direction: CopyDirection, except: Option<&str>) {
        let mut copy = None;
        for (name, slot) in self.live_stations() {
            if Some(name.as_str()) != except {
                let event =
                    copy.get_or_insert_with(|| Event::new(Payload::Copy { message: message.clone(), direction }));
                slot.addr.do_send(StationEvent { event: event.clone() });
            }
        }
    }

    fn start_flush(&mut self, ctx: &mut Context<Self>) {
        if let FlushState::Running { again, .. } = &mut self.flush {
            *again = true;
            return;
        }
        self.flush = FlushState::Running { held_back: Vec::new(), again: false };
        self.messages
            .pending_for(self.username.clone())
            .into_actor(self)
            .map(|result, act, ctx| {
                let pending = result.unwrap_or_else(|e| {
                    tracing::warn!(user = %act.username, error = %e, "could not read pending messages");
                    Vec::new()
                });
                let FlushState::Running { held_back, again } = std::mem::replace(&mut act.flush, FlushState::Idle)
                else {
                    return;
                };
                let mut flushed = HashSet::with_capacity(pending.len());
                let mut delivered = Vec::new();
                for message in pending.into_iter().map(Arc::new) {
                    flushed.insert(message.id);
                    if act.push_message(&message, &Event::delayed_message(message.clone())) {
                        delivered.push(message.id);
                    }
                }
                for message in held_back.into_iter().filter(|m| !flushed.contains(&m.id)) {
                    if act.push_message(&message, &Event::message(message.clone())) {
                        delivered.push(message.id);
                    }
                }
                act.messages.mark_delivered(delivered);
                if again {
                    act.start_flush(ctx);
                }
            })
            .spawn(ctx);
    }
}

impl Actor for UserSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // Nothing else is handled until the roster is in: presence needs it.
        self.rosters
            .roster(self.username.clone())
            .into_actor(self)
            .map(|result, act, _| match result {
                Ok(rows) => act.roster = rows.into_iter().map(|row| (row.contact.clone(), row)).collect(),
                Err(e) => tracing::warn!(user = %act.username, error = %e, "could not load contacts"),
            })
            .wait(ctx);
    }
}

/// A user's presence for some of its contacts. Sent by the user's session to the router: `broadcast` for
/// a change of its visible presence (to every subscriber; also remembered for probes),
/// otherwise a directed presence (to a new or former subscriber).
#[derive(Message)]
#[rtype(result = "()")]
pub struct PresenceOut {
    pub sender: Addr<UserSession>,
    pub update: Arc<PresenceUpdate>,
    pub to: Vec<String>,
    pub broadcast: bool,
}

/// Ask for the current presence of contacts. Sent by a session to the router when a station comes alive
/// or a new subscription is approved; each available contact's presence goes back to the
/// requester (to one station, or to all).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Probe {
    pub requester: String,
    pub resource: Option<String>,
    pub contacts: Vec<String>,
}

/// A new station for this user. Sent by the router (login, or a connection without one).
#[derive(Message)]
#[rtype(result = "()")]
pub struct OpenStation {
    pub resource: String,
}

impl Handler<OpenStation> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: OpenStation, _: &mut Context<Self>) {
        let addr = Station::new().start();
        self.stations.insert(
            msg.resource,
            StationSlot { addr, live: false, presence: StationPresence::default(), rooms: HashSet::new() },
        );
    }
}

/// A connection attaches to one of the user's stations. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachConnection {
    pub resource: String,
    pub connection_id: u64,
    pub connection: Recipient<crate::model::Push>,
    /// It is the station's first connection: the station just came alive.
    pub station_came_alive: bool,
}

impl Handler<AttachConnection> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: AttachConnection, ctx: &mut Context<Self>) {
        let Some(slot) = self.stations.get_mut(&msg.resource) else {
            msg.connection.do_send(crate::model::Push::Close { reason: "the stream has ended".into() });
            return;
        };
        slot.addr.do_send(AddConnection { connection_id: msg.connection_id, connection: msg.connection });
        if msg.station_came_alive {
            slot.live = true;
            // The station just came alive: what waited for it goes out first.
            self.start_flush(ctx);
            self.greet_station(&msg.resource);
            self.refresh_presence(&msg.resource, ctx);
        }
    }
}

/// A connection closed. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachConnection {
    pub resource: String,
    pub connection_id: u64,
    /// It was the station's last connection: the station is no longer live.
    pub station_went_quiet: bool,
}

impl Handler<DetachConnection> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: DetachConnection, ctx: &mut Context<Self>) {
        if let Some(slot) = self.stations.get_mut(&msg.resource) {
            slot.addr.do_send(RemoveConnection { connection_id: msg.connection_id });
            if msg.station_went_quiet {
                slot.live = false;
                self.refresh_presence(&msg.resource, ctx);
            }
        }
    }
}

/// A committed 1:1 message for this user. Sent by the router, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverMessage {
    pub message: Arc<StoredMessage>,
}

impl Handler<DeliverMessage> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: DeliverMessage, _: &mut Context<Self>) {
        if let FlushState::Running { held_back, .. } = &mut self.flush {
            held_back.push(msg.message);
            return;
        }
        let event = Event::message(msg.message.clone());
        if self.push_message(&msg.message, &event) {
            self.messages.mark_delivered(vec![msg.message.id]);
        }
    }
}

/// A committed 1:1 message this user sent: a copy for its other live stations. Sent by the
/// router when the user has a station besides the one it was sent from.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverSentCopy {
    pub message: Arc<StoredMessage>,
}

impl Handler<DeliverSentCopy> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: DeliverSentCopy, _: &mut Context<Self>) {
        self.push_copy(&msg.message, CopyDirection::Sent, msg.message.from_resource.as_deref());
    }
}

/// Messages a connection of station `resource` took and lost (XEP-0198: the client never
/// acknowledged them and did not resume). If another station of the user is live, it has
/// them; otherwise they wait again in the store for the next one. Sent by the XMPP door
/// before it detaches.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReturnUndelivered {
    pub resource: String,
    pub ids: Vec<i64>,
}

impl Handler<ReturnUndelivered> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: ReturnUndelivered, ctx: &mut Context<Self>) {
        if msg.ids.is_empty() || self.live_stations().any(|(name, _)| *name != msg.resource) {
            return;
        }
        let username = self.username.clone();
        self.messages
            .mark_pending(msg.ids)
            .into_actor(self)
            .map(move |result, _, _| {
                if let Err(e) = result {
                    tracing::warn!(user = %username, error = %e, "could not return unacknowledged messages to the store");
                }
            })
            .wait(ctx);
    }
}

/// An event for live stations only, never stored (headlines, chat states): to every live
/// station, or to one (`resource`). Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct DeliverLive {
    pub event: Arc<Event>,
    pub resource: Option<String>,
}

impl Handler<DeliverLive> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: DeliverLive, _: &mut Context<Self>) {
        self.push_live(&msg.event, msg.resource.as_deref());
    }
}

/// End one station (logoff, expiry, kick). Sent by the router, which already forgot it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseStation {
    pub resource: String,
    pub reason: String,
}

impl Handler<CloseStation> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: CloseStation, ctx: &mut Context<Self>) {
        let Some(slot) = self.stations.remove(&msg.resource) else {
            return;
        };
        slot.addr.do_send(EndStation { reason: msg.reason });
        for room in slot.rooms {
            self.conference.do_send(StationLeft {
                room,
                username: self.username.clone(),
                resource: msg.resource.clone(),
            });
        }
        self.refresh_presence(&msg.resource, ctx);
        // What waited for this station now waits for any; a live one gets it at once.
        self.messages
            .retarget_pending(self.username.clone(), msg.resource)
            .into_actor(self)
            .map(|_, act, ctx| {
                if act.live_stations().next().is_some() {
                    act.start_flush(ctx);
                }
            })
            .spawn(ctx);
    }
}

/// The user has no station left. Sent by the router after the last `CloseStation`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown;

impl Handler<Shutdown> for UserSession {
    type Result = ();

    fn handle(&mut self, _: Shutdown, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Set one station's own presence. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetStationPresence {
    pub resource: String,
    pub presence: StationPresence,
}

impl Handler<SetStationPresence> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: SetStationPresence, ctx: &mut Context<Self>) {
        if let Some(slot) = self.stations.get_mut(&msg.resource) {
            slot.presence = msg.presence;
            self.refresh_presence(&msg.resource, ctx);
        }
    }
}

/// A committed change to one of this user's roster rows, with the row before and after.
/// Sent by the router, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RosterChanged {
    pub change: RowChange,
}

impl Handler<RosterChanged> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: RosterChanged, ctx: &mut Context<Self>) {
        let RowChange { contact, before, after, .. } = msg.change;
        self.roster_row_changed(contact, before, after, ctx);
    }
}

/// The user's roster changed in the store outside a pair's change (a shared group): read it
/// again and act on every row that differs. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReloadRoster;

/// Read what waits for this user again and deliver it to its live stations (what was
/// already delivered to a connection is not written to it twice). Sent by the router when
/// a cluster peer comes (back) into reach: relays lost meanwhile left their messages
/// pending.
#[derive(Message)]
#[rtype(result = "()")]
pub struct FlushPending;

impl Handler<FlushPending> for UserSession {
    type Result = ();

    fn handle(&mut self, _: FlushPending, ctx: &mut Context<Self>) {
        if self.live_stations().next().is_some() {
            self.start_flush(ctx);
        }
    }
}

impl Handler<ReloadRoster> for UserSession {
    type Result = ();

    fn handle(&mut self, _: ReloadRoster, ctx: &mut Context<Self>) {
        let read = self.rosters.roster(self.username.clone());
        read.into_actor(self)
            .map(|result, act, ctx| match result {
                Ok(rows) => {
                    let mut fresh: HashMap<String, RosterItem> =
                        rows.into_iter().map(|row| (row.contact.clone(), row)).collect();
                    let mut contacts: Vec<String> = act.roster.keys().chain(fresh.keys()).cloned().collect();
                    contacts.sort();
                    contacts.dedup();
                    for contact in contacts {
                        let after = fresh.remove(&contact);
                        let before = act.roster.get(&contact).cloned();
                        if before != after {
                            act.roster_row_changed(contact, before, after, ctx);
                        }
                    }
                }
                Err(e) => tracing::error!(user = %act.username, error = %e, "could not reload the roster"),
            })
            .wait(ctx);
    }
}

impl UserSession {
    /// One roster row changed from `before` to `after`: keep it, push it to the live
    /// stations, and let presence follow the subscription.
    fn roster_row_changed(
        &mut self,
        contact: String,
        before_row: Option<RosterItem>,
        after_row: Option<RosterItem>,
        ctx: &mut Context<Self>,
    ) {
        let subscription = |row: &Option<RosterItem>| row.as_ref().map_or(Subscription::None, |r| r.subscription);
        let (before, after) = (subscription(&before_row), subscription(&after_row));
        let was_listed = before_row.as_ref().is_some_and(|row| row.listed);
        match after_row {
            Some(row) => self.roster.insert(contact.clone(), row),
            None => self.roster.remove(&contact),
        };
        // A roster push (RFC 6121 §2.1.6) to every live station, when the visible list changed.
        let listed = self.roster.get(&contact).filter(|row| row.listed);
        if was_listed || listed.is_some() {
            self.next_push += 1;
            let push = Payload::RosterPush { push_id: self.next_push, contact: contact.clone(), item: listed.cloned() };
            self.push_live(&Event::new(push), None);
        }
        // The user stopped seeing the contact: its stations hear it went.
        if before.has_to() && !after.has_to() && self.seen.remove(&contact).is_some() {
            self.push_live(&PresenceUpdate::new(&contact, None).event, None);
        }
        // The contact may now see the user: it gets the user's presence (RFC 6121 §3.1.5).
        // (The other transitions need nothing from here: the contact's own session hides
        // what it no longer sees, and sends what the user now may see.)
        if !before.has_from() && after.has_from() {
            if let Some(current) = &self.visible {
                let update = current.clone();
                self.presence_out.do_send(PresenceOut {
                    sender: ctx.address(),
                    update,
                    to: vec![contact],
                    broadcast: false,
                });
            }
        }
    }
}

/// The user's blocklist changed. Sent by the router after the change was committed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct BlocklistChanged {
    pub user: String,
    pub on: bool,
}

impl Handler<BlocklistChanged> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: BlocklistChanged, _: &mut Context<Self>) {
        self.push_live(&Event::new(Payload::BlocklistPush { user: msg.user, on: msg.on }), None);
    }
}

/// A contact's presence. Sent by the router; shown only if the user is subscribed to it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct IncomingPresence {
    pub update: Arc<PresenceUpdate>,
    /// Only for this station (a probe answer for a station that just came alive).
    pub resource: Option<String>,
}

impl Handler<IncomingPresence> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: IncomingPresence, _: &mut Context<Self>) {
        let from = &msg.update.from_user;
        if !self.roster.get(from).is_some_and(|row| row.subscription.has_to()) {
            return;
        }
        if msg.update.availability.is_some() {
            self.seen.insert(from.clone(), msg.update.clone());
        } else if self.seen.remove(from).is_none() {
            return; // Already unavailable as far as this user knows.
        }
        match &msg.resource {
            // A probe's answer, for a station that just came alive: everything it shows.
            Some(resource) => {
                for event in msg.update.snapshot() {
                    self.push_live(&event, Some(resource));
                }
            }
            None => {
                for event in &msg.update.news {
                    self.push_live(event, None);
                }
            }
        }
    }
}

/// A contact in the user's list, with the presence the user sees of it.
#[derive(Debug, Clone)]
pub struct ContactView {
    pub item: RosterItem,
    pub presence: Option<Availability>,
}

/// The user's contact list. Sent by the router.
#[derive(Message)]
#[rtype(result = "Vec<ContactView>")]
pub struct ListContacts;

impl Handler<ListContacts> for UserSession {
    type Result = MessageResult<ListContacts>;

    fn handle(&mut self, _: ListContacts, _: &mut Context<Self>) -> Self::Result {
        let mut list: Vec<ContactView> = self
            .roster
            .values()
            .filter(|row| row.listed)
            .map(|row| ContactView {
                item: row.clone(),
                presence: self.seen.get(&row.contact).and_then(|u| u.availability.clone()),
            })
            .collect();
        list.sort_by(|a, b| a.item.contact.cmp(&b.item.contact));
        MessageResult(list)
    }
}

/// The presence of `of` as this user may see it. Sent by the router.
#[derive(Message)]
#[rtype(result = "Result<Option<Availability>, RouteError>")]
pub struct GetPresence {
    pub of: String,
}

impl Handler<GetPresence> for UserSession {
    type Result = Result<Option<Availability>, RouteError>;

    fn handle(&mut self, msg: GetPresence, _: &mut Context<Self>) -> Self::Result {
        if msg.of == self.username {
            return Ok(self.visible.as_ref().and_then(|u| u.availability.clone()));
        }
        if !self.roster.get(&msg.of).is_some_and(|row| row.subscription.has_to()) {
            return Err(RouteError::NotSubscribed(msg.of));
        }
        Ok(self.seen.get(&msg.of).and_then(|u| u.availability.clone()))
    }
}

/// An account was deleted: forget it as a contact. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ContactGone {
    pub username: String,
}

impl Handler<ContactGone> for UserSession {
    type Result = ();

    fn handle(&mut self, msg: ContactGone, _: &mut Context<Self>) {
        self.roster.remove(&msg.username);
        if self.seen.remove(&msg.username).is_some() {
            self.push_live(&PresenceUpdate::new(&msg.username, None).event, None);
        }
    }
}
