//! 1:1 messages and live-only events: `Submit` (stored, delivered after the commit),
//! `SendChatState`, `SendDisplayed` (read markers), `Broadcast` (headlines) and `DeliverToUser`.

use std::future::ready;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use actix::prelude::*;

use super::hub::{ConversationMoved, DeliveriesQueued, Router};
use crate::clock::now_ms;
use crate::cluster::Relay;
use crate::jid::{Jid, Username};
use crate::model::{Address, ChatState, Event, MessageKind, NewMessage, Payload, StoredMessage};
use crate::random::random_hex;
use crate::route_error::RouteError;
use crate::user_session::DeliverLive;

/// Store and route a message. Sent by every door; replies once the message is committed.
#[derive(Message)]
#[rtype(result = "Result<Arc<StoredMessage>, RouteError>")]
pub struct Submit {
    pub message: NewMessage,
}

impl Handler<Submit> for Router {
    type Result = ResponseFuture<Result<Arc<StoredMessage>, RouteError>>;

    fn handle(&mut self, msg: Submit, ctx: &mut Context<Self>) -> Self::Result {
        self.submit(msg.message, ctx)
    }
}

/// Store and route several messages, in order, in one visit of the router (so they are
/// committed together). Sent by the HTTP API users' mailbox; replies once every one is
/// committed or refused, each with its own answer.
#[derive(Message)]
#[rtype(result = "Vec<Result<Arc<StoredMessage>, RouteError>>")]
pub struct SubmitAll {
    pub messages: Vec<NewMessage>,
}

impl Handler<SubmitAll> for Router {
    type Result = ResponseFuture<Vec<Result<Arc<StoredMessage>, RouteError>>>;

    fn handle(&mut self, msg: SubmitAll, ctx: &mut Context<Self>) -> Self::Result {
        let pending: Vec<_> = msg.messages.into_iter().map(|message| self.submit(message, ctx)).collect();
        Box::pin(futures_util::future::join_all(pending))
    }
}

/// Store and route a message from a login stream: the router resolves the stream, checks
/// that it is `owner`'s (`None`: anyone's, for the admin), and sends it from that station.
/// Sent by the chat API, so that a REST message visits the router once before its commit;
/// replies once the message is committed.
#[derive(Message)]
#[rtype(result = "Result<Arc<StoredMessage>, RouteError>")]
pub struct SubmitFromStream {
    pub stream_id: String,
    pub owner: Option<String>,
    pub to: Jid,
    pub kind: MessageKind,
    pub body: String,
    pub data: Option<serde_json::Value>,
}

impl Handler<SubmitFromStream> for Router {
    type Result = ResponseFuture<Result<Arc<StoredMessage>, RouteError>>;

    fn handle(&mut self, msg: SubmitFromStream, ctx: &mut Context<Self>) -> Self::Result {
        let Some((username, resource)) = self.stations.stream(&msg.stream_id) else {
            return Box::pin(ready(Err(RouteError::UnknownStream(msg.stream_id))));
        };
        if msg.owner.as_ref().is_some_and(|owner| *owner != username) {
            return Box::pin(ready(Err(RouteError::NotYourStream(msg.stream_id))));
        }
        let from = Jid::full(Username::parse(&username).expect("stored user names are valid"), resource);
        let message = NewMessage {
            from,
            to: msg.to,
            kind: msg.kind,
            body: msg.body,
            data: msg.data,
            client_id: None,
            expires_ms: None,
        };
        self.submit(message, ctx)
    }
}

impl Router {
    /// What a live-only event (a chat state, a read marker) must pass: the recipient
    /// exists and no block stands between the two (the sender also gets the stanza error).
    fn check_live_event(&mut self, from: &Jid, to: &Jid) -> Result<(), RouteError> {
        self.directory.require(to.user.as_str())?;
        if let Some(refusal) = self.directory.block_refusal(from.user.as_str(), to.user.as_str()) {
            return Err(self.refuse(from, to, None, refusal));
        }
        if let Some(res) = &from.resource {
            self.touch(from.user.as_str(), res);
        }
        Ok(())
    }

    /// Checks, stores and routes a message; the future resolves once it is committed.
    fn submit(
        &mut self,
        message: NewMessage,
        ctx: &mut Context<Self>,
    ) -> ResponseFuture<Result<Arc<StoredMessage>, RouteError>> {
        let to_user = message.to.user.as_str();
        if let Err(unknown) = self.directory.require(to_user) {
            return Box::pin(ready(Err(unknown)));
        }
        if let Some(refusal) = self.directory.block_refusal(message.from.user.as_str(), to_user) {
            let error = self.refuse(&message.from, &message.to, message.client_id.clone(), refusal);
            return Box::pin(ready(Err(error)));
        }
        // RFC 6121 §8.5.3.2.1: a full address whose resource is not a station of the user is
        // treated as the bare address.
        let deliver_to = message.to.resource.clone().filter(|res| {
            self.stations.user(to_user).is_some_and(|u| u.has_station(res)) || self.remote_station(to_user, res)
        });
        if let Some(res) = &message.from.resource {
            self.touch(message.from.user.as_str(), res);
        }
        self.stats.messages_routed.fetch_add(1, Relaxed);
        let feed = ctx.address();
        if let Some(app_id) = self.directory.app_of(to_user) {
            // To an app: archived with its webhook delivery, in one transaction.
            let outbox = self.app_outbox.clone();
            let stored = self.storage.apps.append_for_app(
                message,
                app_id.to_owned(),
                random_hex(8),
                random_hex(16),
                Box::new(move |committed| {
                    feed.do_send(MessageCommitted { message: committed.clone() });
                    if let Some(outbox) = outbox {
                        outbox.do_send(DeliveriesQueued);
                    }
                }),
            );
            return Box::pin(async move { stored.await.map(|(message, _)| message).map_err(RouteError::from) });
        }
        let stored = self.storage.messages.append_message(
            message,
            deliver_to,
            Box::new(move |committed| feed.do_send(MessageCommitted { message: committed.clone() })),
        );
        Box::pin(async move { stored.await.map_err(RouteError::from) })
    }
}

/// A message was committed. Sent by the store's writer thread, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MessageCommitted {
    pub message: Arc<StoredMessage>,
}

impl Handler<MessageCommitted> for Router {
    type Result = ();

    fn handle(&mut self, msg: MessageCommitted, _: &mut Context<Self>) {
        self.stats.messages_stored.fetch_add(1, Relaxed);
        let m = &msg.message;
        self.deliver_committed_here(m, false);
        // The peers that hold the recipient, or the sender (for its other stations' copies).
        if self.cluster.is_some() {
            let mut nodes = self.holders_of(&m.to_user);
            if m.from_user != m.to_user {
                for node in self.holders_of(&m.from_user) {
                    if !nodes.contains(&node) {
                        nodes.push(node);
                    }
                }
            }
            if !nodes.is_empty() {
                self.relay_to(nodes, Relay::Committed { message: StoredMessage::clone(m) });
            }
        }
        // A recipient held nowhere is offline: the message stays pending in the store.
    }
}

/// Tell `feed` of every 1:1 message `username` sends or receives from now on. Sent by the
/// conversation feed (one feed per server: the latest one given is kept).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WatchConversations {
    pub username: String,
    pub feed: Recipient<ConversationMoved>,
}

impl Handler<WatchConversations> for Router {
    type Result = ();

    fn handle(&mut self, msg: WatchConversations, _: &mut Context<Self>) {
        self.conversation_feed = Some(msg.feed);
        if self.conversation_watched.insert(msg.username.clone()) {
            self.announce(&msg.username);
        }
    }
}

/// A chat state for the recipient's live stations; not archived, not stored offline. Sent
/// by the chat API and `/ws`.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct SendChatState {
    pub from: Jid,
    pub to: Jid,
    pub state: ChatState,
}

impl Handler<SendChatState> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: SendChatState, _: &mut Context<Self>) -> Self::Result {
        self.check_live_event(&msg.from, &msg.to)?;
        let to_user = msg.to.user.as_str();
        let id = self.live_id("state");
        // Offline, nothing is sent: a chat state is not worth keeping. As for messages, a
        // resource that is no station of the user means the bare address.
        let payload =
            Payload::ChatState { id, from: Address::from(&msg.from), to: Address::from(&msg.to), state: msg.state };
        self.deliver_live_everywhere(to_user, msg.to.resource.clone(), payload);
        Ok(())
    }
}

/// A read marker (XEP-0333 `displayed`) for the recipient's live stations: `from` has seen
/// these messages (oldest first). Live only, like a chat state. Sent by the Ozeki client API.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct SendDisplayed {
    pub from: Jid,
    pub to: Jid,
    pub message_ids: Vec<String>,
}

impl Handler<SendDisplayed> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: SendDisplayed, _: &mut Context<Self>) -> Self::Result {
        self.check_live_event(&msg.from, &msg.to)?;
        let to_user = msg.to.user.as_str();
        let id = self.live_id("displayed");
        // Offline, the report is kept by the door that took it.
        let payload = Payload::Displayed {
            id,
            from: Address::from(&msg.from),
            to: Address::from(&msg.to),
            message_ids: msg.message_ids,
        };
        self.deliver_live_everywhere(to_user, None, payload);
        Ok(())
    }
}

/// A headline to every online user, live only. Sent by the admin API; replies with the
/// number of users it reached.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Broadcast {
    pub body: String,
}

impl Handler<Broadcast> for Router {
    type Result = usize;

    fn handle(&mut self, msg: Broadcast, _: &mut Context<Self>) -> usize {
        let id = self.live_id("headline");
        // One event; every session and station shares the same Arc.
        let payload = Payload::Headline { id, body: msg.body, stamp_ms: now_ms() };
        self.relay_to_peers(|| Relay::LiveToAll { payload: payload.clone() });
        let event = Event::new(payload);
        for (_, user) in self.stations.users() {
            user.session.do_send(DeliverLive { event: event.clone(), resource: None });
        }
        let elsewhere = self.cluster.as_ref().map_or(0, |c| c.peers.users_online());
        self.stations.online_count() + elsewhere
    }
}

/// A live-only event for every live station of a user (a room invitation). Sent by the
/// APIs and workgroups; `UnknownUser` if there is no such account, nothing kept if it is
/// offline.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct DeliverToUser {
    pub username: String,
    pub event: Arc<Event>,
}

impl Handler<DeliverToUser> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: DeliverToUser, _: &mut Context<Self>) -> Self::Result {
        self.directory.require(&msg.username)?;
        self.relay_to_holders(&msg.username, || Relay::Live {
            user: msg.username.clone(),
            resource: None,
            payload: msg.event.payload.clone(),
        });
        self.deliver_live_here(&msg.username, None, msg.event);
        Ok(())
    }
}

impl Router {
    /// A live-only event for `user`'s stations, here and on the peers that hold it: to
    /// station `resource` on the node that holds it, or, when it is no station of the user,
    /// to every station.
    fn deliver_live_everywhere(&self, user: &str, resource: Option<String>, payload: Payload) {
        let here = self.stations.user(user);
        let held_here = |r: &String| here.is_some_and(|u| u.has_station(r));
        let resource = resource.filter(|r| held_here(r) || self.remote_station(user, r));
        let nodes: Vec<String> = match (&resource, &self.cluster) {
            (_, None) => Vec::new(),
            (None, Some(c)) => c.peers.nodes_of(user).map(str::to_owned).collect(),
            (Some(r), Some(c)) => {
                let holders = c.peers.holders(user).iter();
                holders.filter(|(_, h)| h.resources.contains(r)).map(|(node, _)| node.clone()).collect()
            }
        };
        if !nodes.is_empty() {
            let relay = Relay::Live { user: user.to_owned(), resource: resource.clone(), payload: payload.clone() };
            self.relay_to(nodes, relay);
        }
        if here.is_some() && resource.as_ref().is_none_or(held_here) {
            self.deliver_live_here(user, resource, Event::new(payload));
        }
    }
}
