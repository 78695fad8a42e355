//! Administration of what the router knows: accounts (`UserAdded`, `UserRemoved`), kicks,
//! and the listings `/restapi/v1/sessions` and `/metrics` read (`ListSessions`,
//! `TakeCensus`).

use actix::prelude::*;

use super::hub::Router;
use super::stations::{Census, SessionInfo};
use crate::cluster::{AskPeers, Relay};
use crate::model::records::AccountKind;
use crate::user_session::ContactGone;

/// End every station of a user, on every node. Sent by the admin API; replies with how many
/// ended.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Kick {
    pub username: String,
    pub reason: String,
}

impl Handler<Kick> for Router {
    type Result = usize;

    fn handle(&mut self, msg: Kick, _: &mut Context<Self>) -> usize {
        let elsewhere = self.remote_station_count(&msg.username);
        self.relay_to_holders(&msg.username, || Relay::Kick {
            username: msg.username.clone(),
            reason: msg.reason.clone(),
        });
        self.close_all(&msg.username, &msg.reason) + elsewhere
    }
}

/// An account was created. Sent by the accounts service after the store committed it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UserAdded {
    pub username: String,
    pub kind: AccountKind,
}

impl Handler<UserAdded> for Router {
    type Result = ();

    fn handle(&mut self, msg: UserAdded, _: &mut Context<Self>) {
        self.relay_to_peers(|| Relay::AccountAdded { username: msg.username.clone(), kind: msg.kind });
        self.directory.add(msg.username, msg.kind);
    }
}

/// An account is an app's (`app_id`), or no longer is (`None`). Sent by the apps service.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AppKnown {
    pub username: String,
    pub app_id: Option<String>,
}

impl Handler<AppKnown> for Router {
    type Result = ();

    fn handle(&mut self, msg: AppKnown, _: &mut Context<Self>) {
        self.relay_to_peers(|| Relay::AppKnown { username: msg.username.clone(), app_id: msg.app_id.clone() });
        self.directory.set_app(&msg.username, msg.app_id);
    }
}

/// Where to tell that webhook deliveries were queued. Sent by the apps' outbox when it starts.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachAppOutbox {
    pub outbox: Recipient<super::hub::DeliveriesQueued>,
}

impl Handler<AttachAppOutbox> for Router {
    type Result = ();

    fn handle(&mut self, msg: AttachAppOutbox, _: &mut Context<Self>) {
        self.app_outbox = Some(msg.outbox);
    }
}

/// An account was deleted: it can no longer receive, and its stations end. Sent by the
/// accounts service after the store committed it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct UserRemoved {
    pub username: String,
}

impl Handler<UserRemoved> for Router {
    type Result = ();

    fn handle(&mut self, msg: UserRemoved, _: &mut Context<Self>) {
        // The store dropped the account's contacts and blocks; the live tables follow.
        self.relay_to_peers(|| Relay::AccountRemoved { username: msg.username.clone() });
        self.directory.remove(&msg.username);
        self.close_all(&msg.username, "the account was deleted");
        for (_, user) in self.stations.users() {
            user.session.do_send(ContactGone { username: msg.username.clone() });
        }
    }
}

/// Every station of every online user, on every node that answers in time. Sent by the
/// admin API.
#[derive(Message)]
#[rtype(result = "Vec<SessionInfo>")]
pub struct ListSessions;

impl Handler<ListSessions> for Router {
    type Result = ResponseFuture<Vec<SessionInfo>>;

    fn handle(&mut self, _: ListSessions, _: &mut Context<Self>) -> Self::Result {
        let mut sessions = self.stations.sessions();
        let Some(cluster) = self.cluster.as_ref().filter(|c| !c.peers.nodes().is_empty()) else {
            return Box::pin(std::future::ready(sessions));
        };
        let asked = cluster.asker.send(AskPeers { nodes: cluster.peers.nodes(), relay: Relay::ListSessions });
        Box::pin(async move {
            for (node, answer) in asked.await.unwrap_or_default() {
                let Relay::Sessions { sessions: theirs } = answer else {
                    continue;
                };
                sessions.extend(theirs.into_iter().map(|s| SessionInfo {
                    username: s.username,
                    resource: s.resource,
                    stream_id: s.stream_id,
                    created_ms: s.created_ms,
                    last_active_ms: s.last_active_ms,
                    connections: s.connections,
                    doors: s.doors,
                    node: Some(node.clone()),
                }));
            }
            sessions.sort_by(|a, b| (&a.username, a.created_ms).cmp(&(&b.username, b.created_ms)));
            sessions
        })
    }
}

/// Count what is live. Sent by `/metrics`.
#[derive(Message)]
#[rtype(result = "Census")]
pub struct TakeCensus;

impl Handler<TakeCensus> for Router {
    type Result = MessageResult<TakeCensus>;

    fn handle(&mut self, _: TakeCensus, _: &mut Context<Self>) -> Self::Result {
        MessageResult(self.stations.census())
    }
}
