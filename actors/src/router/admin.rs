//! Administration of what the router knows: accounts (`UserAdded`, `UserRemoved`), kicks,
//! and the listings `/restapi/v1/sessions` and `/metrics` read (`ListSessions`,
//! `TakeCensus`).

use actix::prelude::*;

use super::hub::Router;
use super::stations::{Census, SessionInfo};
use crate::model::records::AccountKind;
use crate::user_session::ContactGone;

/// End every station of a user. Sent by the admin API; replies with how many ended.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Kick {
    pub username: String,
    pub reason: String,
}

impl Handler<Kick> for Router {
    type Result = usize;

    fn handle(&mut self, msg: Kick, _: &mut Context<Self>) -> usize {
        self.close_all(&msg.username, &msg.reason)
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
        self.directory.remove(&msg.username);
        self.close_all(&msg.username, "the account was deleted");
        for (_, user) in self.stations.users() {
            user.session.do_send(ContactGone { username: msg.username.clone() });
        }
    }
}

/// Every station of every online user. Sent by the admin API.
#[derive(Message)]
#[rtype(result = "Vec<SessionInfo>")]
pub struct ListSessions;

impl Handler<ListSessions> for Router {
    type Result = Vec<SessionInfo>;

    fn handle(&mut self, _: ListSessions, _: &mut Context<Self>) -> Vec<SessionInfo> {
        self.stations.sessions()
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
