//! `Conference`: the registry of rooms on `conference.{domain}`.
//!
//! It starts every stored (persistent) room at start-up, creates rooms on demand (a user's
//! first join of an unknown room, when `users_can_create`; the admin API), hands out room
//! addresses, and forgets temporary rooms once they stop. A join that reaches a room in the
//! instant it stopped is retried on a fresh room.
//!
//! In a cluster ([`Conference::clustered`]) each room is owned by the node that holds its
//! lease (`room:{name}` in the shared store); every node renews all of its leases at once,
//! each heartbeat. A room owned by a peer has a stand-in here, which forwards what it is
//! asked; the conference answers peers' calls to the rooms it owns ([`FromPeer`]). When an
//! owner dies (`PeerGone`), its rooms' stand-ins claim their leases, and each room comes back
//! on the node that wins it, rebuilt from the store.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::calls::{RoomAnswer, RoomCall, Seat};
use super::room::{
    AppsAttached, Describe, Destroy, Dismiss, Invite, Join, Joined, Leave, MoveTo, MucRoom, NodeGone, Post, PostAsApp,
    Relayed, RoomActivity, RoomLink, RoomStopped, SendPrivate, StationGone,
};
use super::{Affiliation, MucOptions, MucServiceRecord, RoomConfig, RoomError, RoomRecord};
use crate::clock::now_ms;
use crate::cluster::{AskPeers, FromPeer, Relay, Targets, ToPeers};
use crate::groups::{GroupChanged, GroupIndex};
use crate::model::RoomMessage;
use crate::station::Station;
use crate::storage::{AppStorage, LeaseStorage, RoomStorage, StoreError};

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
    /// Set on a node of a cluster.
    cluster: Option<RoomCluster>,
}

/// The rooms' side of a cluster.
struct RoomCluster {
    node: String,
    leases: Arc<dyn LeaseStorage>,
    lease_ms: i64,
    every: Duration,
    /// Set once the cluster link is up (`LinkRooms`).
    link: Option<Arc<RoomLink>>,
    /// The rooms this node stands in for, and their owners.
    owners: HashMap<String, String>,
    /// Stand-ins whose owner died: the owner, and when it was heard dead (epoch ms).
    orphaned: HashMap<String, (String, i64)>,
}

/// A room's lease.
fn lease_name(room: &str) -> String {
    format!("room:{room}")
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
            cluster: None,
        }
    }

    /// A node of a cluster, `node`: rooms are owned under leases in `leases`, each held for
    /// `lease` and renewed `every`. Rooms start once the cluster link is up (`LinkRooms`).
    pub fn clustered(mut self, node: String, leases: Arc<dyn LeaseStorage>, lease: Duration, every: Duration) -> Self {
        self.cluster = Some(RoomCluster {
            node,
            leases,
            lease_ms: lease.as_millis() as i64,
            every,
            link: None,
            owners: HashMap::new(),
            orphaned: HashMap::new(),
        });
        self
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

    fn link(&self) -> Option<Arc<RoomLink>> {
        self.cluster.as_ref().and_then(|c| c.link.clone())
    }

    fn is_stand_in(&self, room: &str) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.owners.contains_key(room))
    }

    /// The room `name` if this node owns it.
    fn owned(&self, name: &str) -> Option<Addr<MucRoom>> {
        self.rooms.get(name).filter(|_| !self.is_stand_in(name)).cloned()
    }

    fn start_stand_in(&mut self, name: String, owner: String, ctx: &mut Context<Self>) -> Addr<MucRoom> {
        let record = RoomRecord::new(name.clone(), RoomConfig::default());
        let room = MucRoom::new(self.options.clone(), self.store.clone(), ctx.address().recipient(), record)
            .linked(self.link())
            .standing_in_for(owner.clone())
            .start();
        self.rooms.insert(name.clone(), room.clone());
        if let Some(cluster) = &mut self.cluster {
            cluster.owners.insert(name, owner);
        }
        room
    }

    /// Claims the leases of `names`: the holder of each.
    fn claim(&self, names: &[String]) -> impl std::future::Future<Output = Vec<String>> + 'static {
        let claimed = self.cluster.as_ref().map(|c| {
            let now = now_ms();
            let leases = names.iter().map(|n| lease_name(n)).collect();
            c.leases.claim_leases(leases, c.node.clone(), now, now + c.lease_ms)
        });
        async move {
            match claimed {
                Some(claimed) => claimed.await.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "could not claim room leases");
                    Vec::new()
                }),
                None => Vec::new(),
            }
        }
    }

    /// Gives up the lease of `name` when this node has no such room.
    fn release_if_absent(&self, name: &str) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        if self.rooms.contains_key(name) {
            return;
        }
        let released = cluster.leases.release_lease(lease_name(name), cluster.node.clone());
        actix::spawn(async move {
            if let Err(e) = released.await {
                tracing::warn!(error = %e, "could not give up a room's lease");
            }
        });
    }

    /// The room `name`, wherever it lives: known here, or (in a cluster) owned by whoever
    /// holds its lease: a stand-in for a peer's, or the stored room started here. None when
    /// there is no such room; this node then holds its lease (see `release_if_absent`).
    fn resolve(&mut self, name: String) -> actix::fut::LocalBoxActorFuture<Self, Option<Addr<MucRoom>>> {
        if let Some(room) = self.rooms.get(&name) {
            return Box::pin(fut::ready(Some(room.clone())));
        }
        let Some(cluster) = &self.cluster else {
            return Box::pin(fut::ready(None));
        };
        let node = cluster.node.clone();
        let claimed = self.claim(std::slice::from_ref(&name));
        let store = self.store.clone();
        let wanted = name.clone();
        let looked_up = async move {
            let holder = claimed.await.pop()?;
            if holder != node {
                return Some((holder, None));
            }
            let stored = store.stored_room(wanted).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read a room");
                None
            });
            Some((holder, stored))
        };
        Box::pin(looked_up.into_actor(self).map(move |found, act, ctx| {
            if let Some(room) = act.rooms.get(&name) {
                return Some(room.clone()); // Started meanwhile.
            }
            match found? {
                (_, Some(record)) => Some(act.start_room(record, ctx)),
                (holder, None) if act.cluster.as_ref().is_some_and(|c| c.node != holder) => {
                    Some(act.start_stand_in(name, holder, ctx))
                }
                _ => None,
            }
        }))
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
            .linked(self.link())
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
        if self.cluster.is_some() {
            return; // Rooms start once the link is up and their leases are claimed.
        }
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
        JoinRoom {
            room,
            join: Join { username, resource, nick, password, seat: Seat::Here(station), rejoin: false },
            may_create: true,
        }
    }
}

impl Handler<JoinRoom> for Conference {
    type Result = ResponseActFuture<Self, Result<Joined, RoomError>>;

    fn handle(&mut self, msg: JoinRoom, ctx: &mut Context<Self>) -> Self::Result {
        if self.cluster.is_some() && !self.rooms.contains_key(&msg.room) {
            // Whoever holds its lease has the room; if nobody did, this node now does.
            let resolved = self.resolve(msg.room.clone());
            return Box::pin(resolved.then(move |_, act, ctx| act.join(msg, ctx)));
        }
        self.join(msg, ctx)
    }
}

impl Conference {
    fn join(&mut self, msg: JoinRoom, ctx: &mut Context<Self>) -> ResponseActFuture<Self, Result<Joined, RoomError>> {
        let (room, created) = match self.room_for_join(&msg, ctx) {
            Ok(found) => found,
            Err(e) => {
                self.release_if_absent(&msg.room);
                return Box::pin(fut::ready(Err(e)));
            }
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
    type Result = ResponseActFuture<Self, Option<Addr<MucRoom>>>;

    fn handle(&mut self, msg: FindRoom, _: &mut Context<Self>) -> Self::Result {
        let name = msg.name.clone();
        Box::pin(self.resolve(msg.name).map(move |found, act, _| {
            if found.is_none() {
                act.release_if_absent(&name);
            }
            found
        }))
    }
}

impl Conference {
    /// Hands `message` to room `name` (found or resolved), and its answer back.
    fn hand_to<M>(&mut self, name: String, message: M) -> ResponseActFuture<Self, Result<Arc<RoomMessage>, RoomError>>
    where
        M: Message<Result = Result<Arc<RoomMessage>, RoomError>> + Send + 'static,
        MucRoom: Handler<M>,
    {
        if let Some(room) = self.rooms.get(&name) {
            // Handed over now, so that one client's posts keep their order.
            let posted = room.send(message);
            return Box::pin(async move { posted.await.map_err(|_| RoomError::NotFound(name))? }.into_actor(self));
        }
        let missing = name.clone();
        Box::pin(self.resolve(name).then(move |found, act, _| {
            act.release_if_absent(&missing);
            async move {
                match found {
                    Some(room) => room.send(message).await.map_err(|_| RoomError::NotFound(missing))?,
                    None => Err(RoomError::NotFound(missing)),
                }
            }
            .into_actor(act)
        }))
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
    type Result = ResponseActFuture<Self, Result<Arc<RoomMessage>, RoomError>>;

    fn handle(&mut self, msg: PostTo, _: &mut Context<Self>) -> Self::Result {
        self.hand_to(msg.room, msg.post)
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
    type Result = ResponseActFuture<Self, Result<Arc<RoomMessage>, RoomError>>;

    fn handle(&mut self, msg: AppPostTo, _: &mut Context<Self>) -> Self::Result {
        self.hand_to(msg.room, msg.post)
    }
}

/// How many rooms this node runs (in a cluster, those it owns). Sent by `/metrics`.
#[derive(Message)]
#[rtype(result = "u64")]
pub struct CountRooms;

impl Handler<CountRooms> for Conference {
    type Result = u64;

    fn handle(&mut self, _: CountRooms, _: &mut Context<Self>) -> u64 {
        let stand_ins = self.cluster.as_ref().map_or(0, |c| c.owners.len());
        (self.rooms.len() - stand_ins) as u64
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
        if self.cluster.is_none() {
            return self.create(msg, ctx);
        }
        // In a cluster the name is this node's once it holds the lease.
        self.creating.insert(name.clone());
        let claimed = self.claim(std::slice::from_ref(&name));
        Box::pin(claimed.into_actor(self).then(move |holders, act, ctx| {
            act.creating.remove(&name);
            let node = act.cluster.as_ref().map(|c| c.node.as_str());
            if holders.first().map(String::as_str) != node || act.rooms.contains_key(&name) {
                return Box::pin(fut::ready(Err(RoomError::Exists(name)))) as ResponseActFuture<Self, _>;
            }
            act.create(msg, ctx)
        }))
    }
}

impl Conference {
    fn create(&mut self, msg: CreateRoom, ctx: &mut Context<Self>) -> ResponseActFuture<Self, Result<(), RoomError>> {
        let name = msg.record.name.clone();
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
                    act.tell_peers(Relay::RoomKnown { room: name });
                    Ok(())
                }
                Err(e) => {
                    act.release_if_absent(&name);
                    match e {
                        StoreError::Conflict(_) => Err(RoomError::Exists(name)),
                        e => Err(e.into()),
                    }
                }
            }
        }))
    }

    /// Tells every peer (nothing on one machine).
    fn tell_peers(&self, relay: Relay) {
        if let Some(link) = self.link() {
            link.link.do_send(ToPeers { targets: Targets::Everyone, relay: Arc::new(relay) });
        }
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
        if self.rooms.get(&msg.name) != Some(&msg.room) {
            return;
        }
        self.rooms.remove(&msg.name);
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        if cluster.owners.remove(&msg.name).is_none() {
            // An owned room ended: its name is free again everywhere.
            cluster.orphaned.remove(&msg.name);
            self.release_if_absent(&msg.name);
            self.tell_peers(Relay::RoomGone { room: msg.name });
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

/// The cluster link is up: this node claims the stored rooms' leases, starts the rooms it
/// won and stands in for the others, and renews its leases every heartbeat from now on.
/// Sent once by the server's cluster link.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LinkRooms {
    pub link: Recipient<ToPeers>,
    pub asker: Recipient<AskPeers>,
}

impl Handler<LinkRooms> for Conference {
    type Result = ();

    fn handle(&mut self, msg: LinkRooms, ctx: &mut Context<Self>) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        cluster.link = Some(Arc::new(RoomLink { node: cluster.node.clone(), link: msg.link, asker: msg.asker }));
        let every = cluster.every;
        let stored = std::mem::take(&mut self.stored);
        let names: Vec<String> = stored.iter().map(|r| r.name.clone()).collect();
        let claimed = self.claim(&names);
        claimed
            .into_actor(self)
            .map(move |holders, act, ctx| {
                let node = act.cluster.as_ref().map(|c| c.node.clone()).unwrap_or_default();
                let (mut owned, mut standing_in) = (0, 0);
                for (record, holder) in
                    stored.into_iter().zip(holders.into_iter().map(Some).chain(std::iter::repeat(None)))
                {
                    match holder {
                        Some(holder) if holder != node => {
                            standing_in += 1;
                            act.start_stand_in(record.name, holder, ctx);
                        }
                        _ => {
                            owned += 1;
                            act.start_room(record, ctx);
                        }
                    }
                }
                tracing::info!(owned, standing_in, "rooms started under their leases");
            })
            .wait(ctx);
        ctx.run_interval(every, |act, ctx| act.renew(ctx));
    }
}

impl Conference {
    /// Every heartbeat: renews this node's leases (at once), and claims the rooms whose
    /// owner died.
    fn renew(&mut self, ctx: &mut Context<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let renewed = cluster.leases.renew_leases(cluster.node.clone(), now_ms() + cluster.lease_ms);
        actix::spawn(async move {
            if let Err(e) = renewed.await {
                tracing::warn!(error = %e, "could not renew the room leases");
            }
        });
        if !cluster.orphaned.is_empty() {
            self.adopt_orphans(ctx);
        }
    }

    /// Claims the leases of rooms whose owner died: a room this node wins is rebuilt here
    /// from the store; one a peer won moves there. A dead owner that still holds a lease
    /// once it could have run out renewed it: it restarted, and has the room again.
    fn adopt_orphans(&mut self, ctx: &mut Context<Self>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let names: Vec<String> = cluster.orphaned.keys().cloned().collect();
        let claimed = self.claim(&names);
        let store = self.store.clone();
        let node = cluster.node.clone();
        let looked_up = async move {
            let holders = claimed.await;
            let mut found = Vec::new();
            for (name, holder) in names.into_iter().zip(holders) {
                let stored = if holder == node { store.stored_room(name.clone()).await.ok().flatten() } else { None };
                found.push((name, holder, stored));
            }
            found
        };
        ctx.spawn(looked_up.into_actor(self).map(|found, act, _| {
            let Some(cluster) = &mut act.cluster else {
                return;
            };
            let now = now_ms();
            for (name, holder, stored) in found {
                let Some((dead, since)) = cluster.orphaned.get(&name).cloned() else {
                    continue;
                };
                let Some(room) = act.rooms.get(&name) else {
                    cluster.orphaned.remove(&name);
                    continue;
                };
                let mine = holder == cluster.node;
                if holder == dead && now - since <= cluster.lease_ms + cluster.every.as_millis() as i64 {
                    continue; // Its lease may still run: try again next heartbeat.
                }
                cluster.orphaned.remove(&name);
                if mine {
                    cluster.owners.remove(&name);
                    let record = stored.unwrap_or_else(|| RoomRecord::new(name.clone(), RoomConfig::default()));
                    room.do_send(MoveTo { owner: None, record });
                } else {
                    cluster.owners.insert(name.clone(), holder.clone());
                    room.do_send(MoveTo { owner: Some(holder), record: RoomRecord::new(name, RoomConfig::default()) });
                }
            }
        }));
    }
}

/// A peer died or restarted. The rooms this node owns drop the occupants that sat there;
/// the rooms it owned are claimed. Sent by the router.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PeerGone {
    pub node: String,
}

impl Handler<PeerGone> for Conference {
    type Result = ();

    fn handle(&mut self, msg: PeerGone, ctx: &mut Context<Self>) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        let now = now_ms();
        for (name, room) in &self.rooms {
            match cluster.owners.get(name) {
                Some(owner) if *owner == msg.node => {
                    cluster.orphaned.insert(name.clone(), (msg.node.clone(), now));
                }
                Some(_) => {}
                None => room.do_send(NodeGone { node: msg.node.clone() }),
            }
        }
        if !cluster.orphaned.is_empty() {
            self.adopt_orphans(ctx);
        }
    }
}

/// What peers relay about rooms: calls to the rooms this node owns (answered), events for
/// the stand-ins here, and rooms appearing and ending on their owners. Sent by the link.
impl Handler<FromPeer> for Conference {
    type Result = ResponseFuture<Option<Relay>>;

    fn handle(&mut self, msg: FromPeer, ctx: &mut Context<Self>) -> Self::Result {
        let none = || -> ResponseFuture<Option<Relay>> { Box::pin(std::future::ready(None)) };
        match msg.relay {
            Relay::RoomCall { room, call } => {
                let Some(addr) = self.owned(&room) else {
                    let answer = Err(RoomError::NotFound(room));
                    return Box::pin(std::future::ready(Some(Relay::RoomAnswer { answer })));
                };
                let answered = call_room(&addr, msg.node, call);
                Box::pin(async move { Some(Relay::RoomAnswer { answer: answered.await }) })
            }
            Relay::RoomEvents { room, events, to } => {
                if self.is_stand_in(&room) {
                    if let Some(addr) = self.rooms.get(&room) {
                        addr.do_send(Relayed { events, to });
                    }
                }
                none()
            }
            Relay::RoomKnown { room } => {
                if !self.rooms.contains_key(&room) {
                    self.start_stand_in(room, msg.node, ctx);
                }
                none()
            }
            Relay::RoomGone { room } => {
                let owned_by_sender = self.cluster.as_ref().is_some_and(|c| c.owners.get(&room) == Some(&msg.node));
                if owned_by_sender {
                    if let Some(addr) = self.rooms.remove(&room) {
                        addr.do_send(Dismiss);
                    }
                    if let Some(cluster) = &mut self.cluster {
                        cluster.owners.remove(&room);
                        cluster.orphaned.remove(&room);
                    }
                }
                none()
            }
            _ => none(),
        }
    }
}

/// A peer's call to `room` (owned here), made as the matching message now, so that calls
/// keep the order they arrived in; the answer once the room gave it.
fn call_room(
    room: &Addr<MucRoom>,
    node: String,
    call: RoomCall,
) -> futures_util::future::BoxFuture<'static, Result<RoomAnswer, RoomError>> {
    use futures_util::FutureExt;
    fn answer<T, E>(
        sent: Result<Result<T, RoomError>, E>,
        read: impl FnOnce(T) -> RoomAnswer,
    ) -> Result<RoomAnswer, RoomError> {
        match sent {
            Ok(result) => result.map(read),
            Err(_) => Err(RoomError::BadRequest("the room ended".into())),
        }
    }
    match call {
        RoomCall::Join { username, resource, nick, password, rejoin } => {
            let join = Join { username, resource, nick, password, seat: Seat::On(node), rejoin };
            room.send(join).map(|sent| answer(sent, RoomAnswer::Joined)).boxed()
        }
        RoomCall::Leave { username, resource } => {
            room.send(Leave { username, resource }).map(|sent| answer(sent, |()| RoomAnswer::Done)).boxed()
        }
        RoomCall::StationGone { username, resource } => {
            room.do_send(StationGone { username, resource });
            std::future::ready(Ok(RoomAnswer::Done)).boxed()
        }
        RoomCall::Post { username, resource, body, data } => room
            .send(Post { username, resource, body, data })
            .map(|sent| answer(sent, |m: Arc<RoomMessage>| RoomAnswer::Posted((*m).clone())))
            .boxed(),
        RoomCall::SendPrivate { username, resource, to_nick, body, id } => room
            .send(SendPrivate { username, resource, to_nick, body, id })
            .map(|sent| answer(sent, |()| RoomAnswer::Done))
            .boxed(),
        RoomCall::PostAsApp { app, body, data } => room
            .send(PostAsApp { app, body, data })
            .map(|sent| answer(sent, |m: Arc<RoomMessage>| RoomAnswer::Posted((*m).clone())))
            .boxed(),
        RoomCall::Invite { inviter, invitees, reason } => room
            .send(Invite { inviter, invitees, reason })
            .map(|sent| {
                answer(sent, |invitations: Vec<(String, Arc<crate::model::Event>)>| {
                    RoomAnswer::Invitations(invitations.into_iter().map(|(u, e)| (u, e.payload.clone())).collect())
                })
            })
            .boxed(),
        RoomCall::Describe => room.send(Describe).map(|sent| answer(sent, |v| RoomAnswer::View(Box::new(v)))).boxed(),
        RoomCall::Administer(change) => {
            room.send(change).map(|sent| answer(sent, |v| RoomAnswer::View(Box::new(v)))).boxed()
        }
        RoomCall::Destroy { reason } => {
            room.send(Destroy { reason }).map(|sent| answer(sent, |()| RoomAnswer::Done)).boxed()
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

    /// Stands in for the cluster link: keeps the room relays it is given.
    #[derive(Default)]
    struct Link {
        relays: Vec<(Vec<String>, Arc<Relay>)>,
    }

    impl Actor for Link {
        type Context = Context<Self>;
    }

    impl Handler<ToPeers> for Link {
        type Result = ();

        fn handle(&mut self, msg: ToPeers, _: &mut Context<Self>) {
            if let Targets::Nodes(nodes) = msg.targets {
                self.relays.push((nodes, msg.relay));
            }
        }
    }

    impl Handler<AskPeers> for Link {
        type Result = Vec<(String, Relay)>;

        fn handle(&mut self, _: AskPeers, _: &mut Context<Self>) -> Self::Result {
            Vec::new()
        }
    }

    #[derive(Message)]
    #[rtype(result = "Vec<(Vec<String>, Arc<Relay>)>")]
    struct Relays;

    impl Handler<Relays> for Link {
        type Result = MessageResult<Relays>;

        fn handle(&mut self, _: Relays, _: &mut Context<Self>) -> Self::Result {
            MessageResult(std::mem::take(&mut self.relays))
        }
    }

    #[actix_rt::test]
    async fn a_room_event_is_relayed_once_per_node_naming_its_stations() {
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
        let link = Link::default().start();
        let room_link =
            Arc::new(RoomLink { node: "a".into(), link: link.clone().recipient(), asker: link.clone().recipient() });
        let conference = Conference::new(options.clone(), store.clone(), vec![]).start();
        let record = RoomRecord::new("hall".into(), RoomConfig::default());
        let room =
            MucRoom::new(Arc::new(options), store, conference.recipient(), record).linked(Some(room_link)).start();
        // Ten occupants on node b, five on node c, one here.
        let station = Station::new().start();
        let here = Join {
            username: "h".into(),
            resource: "r".into(),
            nick: "h".into(),
            password: None,
            seat: Seat::Here(station),
            rejoin: false,
        };
        room.send(here).await.unwrap().unwrap();
        for (i, node) in (0..15).map(|i| (i, if i < 10 { "b" } else { "c" })) {
            let seat = Seat::On(node.into());
            let join = Join {
                username: format!("u{i}"),
                resource: "r".into(),
                nick: format!("n{i}"),
                password: None,
                seat,
                rejoin: false,
            };
            room.send(join).await.unwrap().unwrap();
        }
        link.send(Relays).await.unwrap();
        let post = Post { username: "h".into(), resource: "r".into(), body: "to all".into(), data: None };
        room.send(post).await.unwrap().unwrap();
        let mut relays = Vec::new();
        for _ in 0..100 {
            relays.extend(link.send(Relays).await.unwrap());
            if relays.len() >= 2 {
                break;
            }
            actix_rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(50)).await;
        relays.extend(link.send(Relays).await.unwrap());
        let mut per_node: Vec<(String, usize)> = relays
            .iter()
            .map(|(nodes, relay)| match &**relay {
                Relay::RoomEvents { to, events, .. } => {
                    assert_eq!(events.len(), 1);
                    (nodes.join(","), to.len())
                }
                other => panic!("not a room event: {other:?}"),
            })
            .collect();
        per_node.sort();
        assert_eq!(per_node, [("b".to_owned(), 10), ("c".to_owned(), 5)], "one relay per node, naming its stations");
    }
}
