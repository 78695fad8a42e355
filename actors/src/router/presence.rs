//! Presence across users: what sessions send out (`PresenceOut`), probes, watchers of a
//! user's availability (workgroups), and blocklists (`SetBlock`, `Blocklist`), which decide
//! what presence may cross.

use std::future::ready;

use actix::prelude::*;

use super::hub::{Router, UserStatus};
use crate::cluster::Relay;
use crate::presence::{Availability, PresenceUpdate};
use crate::route_error::RouteError;
use crate::user_session::{BlocklistChanged, GetPresence, IncomingPresence, PresenceOut, Probe};

impl Handler<PresenceOut> for Router {
    type Result = ();

    fn handle(&mut self, msg: PresenceOut, _: &mut Context<Self>) {
        if let Some(user) = self.stations.user_mut(&msg.update.from_user) {
            if user.session != msg.sender {
                return; // From a session that already ended; the new one speaks for the user.
            }
            if msg.broadcast {
                let was_available = self.local_status(&msg.update.from_user).1;
                if let Some(user) = self.stations.user_mut(&msg.update.from_user) {
                    user.presence = msg.update.availability.is_some().then(|| msg.update.clone());
                }
                self.notify_watchers(&msg.update.from_user);
                if self.local_status(&msg.update.from_user).1 != was_available {
                    self.announce(&msg.update.from_user);
                }
            }
        }
        self.fan_out_presence(&msg.update, &msg.to);
    }
}

impl Handler<Probe> for Router {
    type Result = ();

    fn handle(&mut self, msg: Probe, _: &mut Context<Self>) {
        let Some(requester) = self.stations.session(&msg.requester) else {
            return;
        };
        let allowed = || msg.contacts.iter().filter(|contact| !self.directory.blocked_either(&msg.requester, contact));
        for contact in allowed() {
            if let Some(update) = self.stations.user(contact).and_then(|c| c.presence.as_ref()) {
                requester.do_send(IncomingPresence { update: update.clone(), resource: msg.resource.clone() });
            }
        }
        // Contacts held by peers: each peer answers for its own.
        if let Some(cluster) = &self.cluster {
            for (node, contacts) in cluster.peers.group_by_node(allowed()) {
                let relay = Relay::Probe { requester: msg.requester.clone(), resource: msg.resource.clone(), contacts };
                self.relay_to(vec![node], relay);
            }
        }
    }
}

/// Watch a user's availability under `key` (one watch per key and user); replies with the
/// current status, then every change follows. Sent by workgroups for their agents.
#[derive(Message)]
#[rtype(result = "UserStatus")]
pub struct WatchUser {
    pub username: String,
    pub key: String,
    pub watcher: Recipient<UserStatus>,
}

impl Handler<WatchUser> for Router {
    type Result = MessageResult<WatchUser>;

    fn handle(&mut self, msg: WatchUser, _: &mut Context<Self>) -> Self::Result {
        self.watchers.entry(msg.username.clone()).or_default().insert(msg.key, msg.watcher);
        MessageResult(self.status_of(&msg.username))
    }
}

/// Stop watching a user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UnwatchUser {
    pub username: String,
    pub key: String,
}

impl Handler<UnwatchUser> for Router {
    type Result = ();

    fn handle(&mut self, msg: UnwatchUser, _: &mut Context<Self>) {
        if let Some(watchers) = self.watchers.get_mut(&msg.username) {
            watchers.remove(&msg.key);
            if watchers.is_empty() {
                self.watchers.remove(&msg.username);
            }
        }
    }
}

/// The presence of `of` as `username` may see it (itself, or a contact it is subscribed
/// to); `None` is unavailable. Sent by the chat API.
#[derive(Message)]
#[rtype(result = "Result<Option<Availability>, RouteError>")]
pub struct PresenceOf {
    pub username: String,
    pub of: String,
}

impl Handler<PresenceOf> for Router {
    type Result = ResponseFuture<Result<Option<Availability>, RouteError>>;

    fn handle(&mut self, msg: PresenceOf, _: &mut Context<Self>) -> Self::Result {
        if let Err(unknown) = self.directory.require(&msg.of) {
            return Box::pin(ready(Err(unknown)));
        }
        let Some(session) = self.stations.session(&msg.username) else {
            return Box::pin(ready(Err(RouteError::Offline(msg.username))));
        };
        let asked = session.send(GetPresence { of: msg.of });
        Box::pin(async move { asked.await.map_err(|_| RouteError::Offline(msg.username))? })
    }
}

/// Block (`on`) or unblock a user. Sent by the chat API; replies after the commit with
/// whether anything changed.
#[derive(Message)]
#[rtype(result = "Result<bool, RouteError>")]
pub struct SetBlock {
    pub blocker: String,
    pub blocked: String,
    pub on: bool,
}

impl Handler<SetBlock> for Router {
    type Result = ResponseActFuture<Self, Result<bool, RouteError>>;

    fn handle(&mut self, msg: SetBlock, _: &mut Context<Self>) -> Self::Result {
        if msg.blocker == msg.blocked {
            return Box::pin(fut::ready(Err(RouteError::Yourself("block"))));
        }
        if let Err(unknown) = self.directory.require(&msg.blocked) {
            return Box::pin(fut::ready(Err(unknown)));
        }
        let SetBlock { blocker, blocked, on } = msg;
        let written = self.storage.rosters.set_block(blocker.clone(), blocked.clone(), on);
        Box::pin(written.into_actor(self).map(move |result, act, _| {
            let changed = result?;
            if changed {
                act.relay_to_peers(|| Relay::Block { blocker: blocker.clone(), blocked: blocked.clone(), on });
                act.apply_block(&blocker, &blocked, on);
            }
            Ok(changed)
        }))
    }
}

impl Router {
    /// A committed block or unblock: update the directory and let each side's view of the
    /// other follow (each session shows only what its own subscriptions allow).
    pub(super) fn apply_block(&mut self, blocker: &str, blocked: &str, on: bool) {
        self.directory.set_block(blocker, blocked, on);
        if let Some(own) = self.stations.user(blocker) {
            own.session.do_send(BlocklistChanged { user: blocked.to_owned(), on });
        }
        for (from, to) in [(blocker, blocked), (blocked, blocker)] {
            let (Some(sender), Some(receiver)) = (self.stations.user(from), self.stations.user(to)) else {
                continue;
            };
            let Some(current) = &sender.presence else {
                continue; // Unavailable already, as far as anyone can see.
            };
            let update = if on {
                PresenceUpdate::new(from, None)
            } else if self.directory.blocked_either(from, to) {
                continue; // Still blocked the other way.
            } else {
                current.clone()
            };
            receiver.session.do_send(IncomingPresence { update, resource: None });
        }
    }
}

/// The users `username` blocks, sorted. Sent by the chat API.
#[derive(Message)]
#[rtype(result = "Vec<String>")]
pub struct Blocklist {
    pub username: String,
}

impl Handler<Blocklist> for Router {
    type Result = Vec<String>;

    fn handle(&mut self, msg: Blocklist, _: &mut Context<Self>) -> Vec<String> {
        self.directory.blocklist(&msg.username)
    }
}
