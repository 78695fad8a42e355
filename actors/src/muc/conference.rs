//! `Conference`: the registry of rooms on `conference.{domain}`.
//!
//! It starts every stored (persistent) room at start-up, creates rooms on demand (a user's
//! first join of an unknown room, when `users_can_create`; the admin API), hands out room
//! addresses, and forgets temporary rooms once they stop. A join that reaches a room in the
//! instant it stopped is retried on a fresh room.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use actix::prelude::*;

use super::room::{AppsAttached, Join, Joined, MucRoom, Post, PostAsApp, RoomActivity, RoomStopped, StationGone};
use super::{Affiliation, MucOptions, MucServiceRecord, RoomConfig, RoomError, RoomRecord};
use crate::groups::{GroupChanged, GroupIndex};
use crate::model::RoomMessage;
use crate::station::Station;
use crate::storage::{AppStorage, RoomStorage, StoreError};

/// The room registry. One per server.
pub struct Conference {
    options: Arc<MucOptions>,
    store: Arc<dyn RoomStorage>,
    rooms: HashMap<String, Addr<MucRoom>>,
    /// Names being created in the store (admin creation), so that a second create waits
    /// for nothing and fails at once.
    creating: HashSet<String>,
    /// Rooms loaded from the store, started when the actor starts.
    stored: Vec<RoomRecord>,
    /// The apps' outbox, for rooms apps are attached to (`watched`).
    apps: Option<Arc<dyn AppStorage>>,
    watched: HashSet<String>,
    /// Resolves rooms' group affiliations.
    groups: Arc<GroupIndex>,
}

impl Conference {
    pub fn new(options: MucOptions, store: Arc<dyn RoomStorage>, stored: Vec<RoomRecord>) -> Self {
        Conference {
            options: Arc::new(options),
            store,
            rooms: HashMap::new(),
            creating: HashSet::new(),
            stored,
            apps: None,
            watched: HashSet::new(),
            groups: Arc::default(),
        }
    }

    /// Rooms may hold affiliations by user group, resolved with this index.
    pub fn with_groups(mut self, groups: Arc<GroupIndex>) -> Self {
        self.groups = groups;
        self
    }

    /// Rooms may have external apps attached, whose deliveries go to this outbox.
    pub fn with_apps(mut self, apps: Arc<dyn AppStorage>) -> Self {
        self.apps = Some(apps);
        self
    }

    fn apps_for(&self, room: &str) -> Option<Arc<dyn AppStorage>> {
        self.apps.clone().filter(|_| self.watched.contains(room))
    }

    fn start_room(&mut self, record: RoomRecord, ctx: &mut Context<Self>) -> Addr<MucRoom> {
        self.start_watched_room(record, None, None, ctx)
    }

    fn start_watched_room(
        &mut self,
        record: RoomRecord,
        watcher: Option<Recipient<RoomActivity>>,
        empty_timeout: Option<std::time::Duration>,
        ctx: &mut Context<Self>,
    ) -> Addr<MucRoom> {
        let name = record.name.clone();
        let apps = self.apps_for(&name);
        let room = MucRoom::new(self.options.clone(), self.store.clone(), ctx.address().recipient(), record)
            .watched(watcher, empty_timeout)
            .with_apps(apps)
            .with_groups(self.groups.clone())
            .start();
        self.rooms.insert(name, room.clone());
        room
    }

    /// The room a join goes to, creating a temporary one owned by the joiner if allowed.
    fn room_for_join(&mut self, msg: &JoinRoom, ctx: &mut Context<Self>) -> Result<(Addr<MucRoom>, bool), RoomError> {
        if let Some(room) = self.rooms.get(&msg.room) {
            return Ok((room.clone(), false));
        }
        if self.creating.contains(&msg.room) || !msg.may_create {
            return Err(RoomError::NotFound(msg.room.clone()));
        }
        if !self.options.users_can_create {
            return Err(RoomError::CreationRestricted(msg.room.clone()));
        }
        let mut record = RoomRecord::new(msg.room.clone(), RoomConfig::default());
        record.affiliations.insert(msg.join.username.clone(), Affiliation::Owner);
        Ok((self.start_room(record, ctx), true))
    }
}

impl Actor for Conference {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        for record in std::mem::take(&mut self.stored) {
            self.start_room(record, ctx);
        }
    }
}

/// Enter a room, creating it if it does not exist (and users may create rooms). Sent by
/// the user's session, which remembers the room for the station.
#[derive(Message)]
#[rtype(result = "Result<Joined, RoomError>")]
pub struct JoinRoom {
    pub room: String,
    pub join: Join,
    /// Whether an unknown room may be created by this join (false: `NotFound`).
    pub may_create: bool,
}

impl JoinRoom {
    pub fn new(
        room: String,
        username: String,
        resource: String,
        nick: String,
        password: Option<String>,
        station: Addr<Station>,
    ) -> Self {
        JoinRoom { room, join: Join { username, resource, nick, password, station }, may_create: true }
    }
}

impl Handler<JoinRoom> for Conference {
    type Result = ResponseActFuture<Self, Result<Joined, RoomError>>;

    fn handle(&mut self, msg: JoinRoom, ctx: &mut Context<Self>) -> Self::Result {
        let (room, created) = match self.room_for_join(&msg, ctx) {
            Ok(found) => found,
            Err(e) => return Box::pin(fut::ready(Err(e))),
        };
        let first = room.send(msg.join.clone());
        Box::pin(first.into_actor(self).then(move |result, act, ctx| {
            let outcome: actix::fut::LocalBoxActorFuture<Self, Result<Joined, RoomError>> = match result {
                Ok(joined) => Box::pin(fut::ready(joined.map(|j| Joined { created, ..j }))),
                Err(_) => {
                    // The room stopped (it had emptied) just as the join reached it.
                    if act.rooms.get(&msg.room) == Some(&room) {
                        act.rooms.remove(&msg.room);
                    }
                    match act.room_for_join(&msg, ctx) {
                        Ok((again, created)) => {
                            let name = msg.room.clone();
                            Box::pin(again.send(msg.join).into_actor(act).map(move |result, _, _| match result {
                                Ok(joined) => joined.map(|j| Joined { created, ..j }),
                                Err(_) => Err(RoomError::NotFound(name)),
                            }))
                        }
                        Err(e) => Box::pin(fut::ready(Err(e))),
                    }
                }
            };
            outcome
        }))
    }
}

/// The address of a room, if it exists. Sent by the APIs.
#[derive(Message)]
#[rtype(result = "Option<Addr<MucRoom>>")]
pub struct FindRoom {
    pub name: String,
}

impl Handler<FindRoom> for Conference {
    type Result = Option<Addr<MucRoom>>;

    fn handle(&mut self, msg: FindRoom, _: &mut Context<Self>) -> Self::Result {
        self.rooms.get(&msg.name).cloned()
    }
}

/// A post to a room by name. The conference hands it to the room before it handles its
/// next message, so one client's posts reach the room in the order they were sent without
/// waiting for each other's archive commit. Replies once the post is archived. Sent by the
/// XMPP door's pipelined path.
#[derive(Message)]
#[rtype(result = "Result<Arc<RoomMessage>, RoomError>")]
pub struct PostTo {
    pub room: String,
    pub post: Post,
}

impl Handler<PostTo> for Conference {
    type Result = ResponseFuture<Result<Arc<RoomMessage>, RoomError>>;

    fn handle(&mut self, msg: PostTo, _: &mut Context<Self>) -> Self::Result {
        let PostTo { room, post } = msg;
        let posted = self.rooms.get(&room).map(|addr| addr.send(post));
        Box::pin(async move {
            match posted {
                Some(posted) => posted.await.map_err(|_| RoomError::NotFound(room))?,
                None => Err(RoomError::NotFound(room)),
            }
        })
    }
}

/// Apps are attached to `room` (`watched`), or no longer. Sent by the apps service.
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchRoom {
    pub room: String,
    pub watched: bool,
}

impl Handler<WatchRoom> for Conference {
    type Result = ();

    fn handle(&mut self, msg: WatchRoom, _: &mut Context<Self>) {
        if msg.watched {
            self.watched.insert(msg.room.clone());
        } else {
            self.watched.remove(&msg.room);
        }
        if let Some(room) = self.rooms.get(&msg.room) {
            room.do_send(AppsAttached { apps: self.apps_for(&msg.room) });
        }
    }
}

/// An attached app's post to a room by name. Sent by the apps' API.
#[derive(Message)]
#[rtype(result = "Result<Arc<RoomMessage>, RoomError>")]
pub struct AppPostTo {
    pub room: String,
    pub post: PostAsApp,
}

impl Handler<AppPostTo> for Conference {
    type Result = ResponseFuture<Result<Arc<RoomMessage>, RoomError>>;

    fn handle(&mut self, msg: AppPostTo, _: &mut Context<Self>) -> Self::Result {
        let AppPostTo { room, post } = msg;
        let posted = self.rooms.get(&room).map(|addr| addr.send(post));
        Box::pin(async move {
            match posted {
                Some(posted) => posted.await.map_err(|_| RoomError::NotFound(room))?,
                None => Err(RoomError::NotFound(room)),
            }
        })
    }
}

/// Every room's address. Sent by the listing APIs.
#[derive(Message)]
#[rtype(result = "Vec<Addr<MucRoom>>")]
pub struct AllRooms;

impl Handler<AllRooms> for Conference {
    type Result = Vec<Addr<MucRoom>>;

    fn handle(&mut self, _: AllRooms, _: &mut Context<Self>) -> Self::Result {
        self.rooms.values().cloned().collect()
    }
}

/// Create a room (admin API, workgroups): stored first when persistent. `Exists` if the
/// name is taken. A `watcher` hears when occupants leave and when the room ends; a room
/// still empty `empty_timeout` after its creation ends.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct CreateRoom {
    pub record: RoomRecord,
    pub watcher: Option<Recipient<RoomActivity>>,
    pub empty_timeout: Option<std::time::Duration>,
}

impl Handler<CreateRoom> for Conference {
    type Result = ResponseActFuture<Self, Result<(), RoomError>>;

    fn handle(&mut self, msg: CreateRoom, ctx: &mut Context<Self>) -> Self::Result {
        let name = msg.record.name.clone();
        if self.rooms.contains_key(&name) || self.creating.contains(&name) {
            return Box::pin(fut::ready(Err(RoomError::Exists(name))));
        }
        if !msg.record.config.persistent {
            self.start_watched_room(msg.record, msg.watcher, msg.empty_timeout, ctx);
            return Box::pin(fut::ready(Ok(())));
        }
        self.creating.insert(name.clone());
        let record = msg.record.clone();
        Box::pin(self.store.create_room(msg.record).into_actor(self).map(move |result, act, ctx| {
            act.creating.remove(&name);
            match result {
                Ok(()) => {
                    act.start_room(record, ctx);
                    Ok(())
                }
                Err(StoreError::Conflict(_)) => Err(RoomError::Exists(name)),
                Err(e) => Err(e.into()),
            }
        }))
    }
}

/// A station ended: it leaves the room. Sent by the user's session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StationLeft {
    pub room: String,
    pub username: String,
    pub resource: String,
}

impl Handler<StationLeft> for Conference {
    type Result = ();

    fn handle(&mut self, msg: StationLeft, _: &mut Context<Self>) {
        if let Some(room) = self.rooms.get(&msg.room) {
            room.do_send(StationGone { username: msg.username, resource: msg.resource });
        }
    }
}

impl Handler<RoomStopped> for Conference {
    type Result = ();

    fn handle(&mut self, msg: RoomStopped, _: &mut Context<Self>) {
        if self.rooms.get(&msg.name) == Some(&msg.room) {
            self.rooms.remove(&msg.name);
        }
    }
}

/// Add a MUC service (`Conflict` if it exists, the default one included); its rooms are
/// `name@{service}.{domain}` once this resolves.
#[derive(Message)]
#[rtype(result = "Result<(), RoomError>")]
pub struct AddService {
    pub service: MucServiceRecord,
}

impl Handler<AddService> for Conference {
    type Result = ResponseFuture<Result<(), RoomError>>;

    fn handle(&mut self, msg: AddService, _: &mut Context<Self>) -> Self::Result {
        if msg.service.name == self.options.service {
            let taken = StoreError::Conflict(format!("chat service '{}' already exists", msg.service.name));
            return Box::pin(std::future::ready(Err(taken.into())));
        }
        let options = self.options.clone();
        let stored = self.store.add_muc_service(msg.service.clone());
        Box::pin(async move {
            stored.await?;
            options.extra_services.add(vec![msg.service]);
            Ok(())
        })
    }
}

impl Handler<GroupChanged> for Conference {
    type Result = ();

    fn handle(&mut self, msg: GroupChanged, _: &mut Context<Self>) {
        for room in self.rooms.values() {
            room.do_send(msg.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Payload;
    use crate::muc::room::Post;
    use crate::station::AddConnection;
    use crate::station::Station;
    use crate::store::StoreOptions;
    use crate::test_support::{first_matching, recorder};

    #[actix_rt::test]
    async fn a_room_message_is_rendered_once_for_every_occupant() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
        let store: Arc<dyn RoomStorage> = Arc::new(store);
        let options = MucOptions {
            domain: "d".into(),
            service: "conference".into(),
            history: 5,
            users_can_create: true,
            extra_services: Default::default(),
        };
        let conference = Conference::new(options, store, vec![]).start();
        let mut inboxes = Vec::new();
        for i in 0..200 {
            let station = Station::new().start();
            let (inbox, connection) = recorder();
            station.send(AddConnection { connection_id: 1, connection }).await.unwrap();
            let join = JoinRoom::new("hall".into(), format!("u{i}"), "r".into(), format!("n{i}"), None, station);
            conference.send(join).await.unwrap().unwrap();
            inboxes.push(inbox);
        }
        let hall = conference.send(FindRoom { name: "hall".into() }).await.unwrap().unwrap();
        let post = Post { username: "u7".into(), resource: "r".into(), body: "to all".into(), data: None };
        hall.send(post).await.unwrap().unwrap();

        let received = first_matching(
            &inboxes,
            "the room message",
            |e| matches!(&e.payload, Payload::RoomMessage { message, .. } if message.body == "to all"),
        )
        .await;
        assert!(received.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])), "one rendering shared by 200 occupants");
    }
}
