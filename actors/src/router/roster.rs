//! Contact changes: `ChangeRoster` runs RFC 6121's rules inside the pair's store
//! transaction; once it commits, the subscription notices and both sides' new rows go to
//! the users' sessions, in commit order.

use std::future::ready;

use actix::prelude::*;

use super::hub::Router;
use crate::cluster::Relay;
use crate::model::{Event, Payload};
use crate::roster::{self, RosterError, RosterOp, Transition};
use crate::route_error::RouteError;
use crate::storage::StoreError;
use crate::user_session::{DeliverLive, ReloadRoster, RosterChanged};

/// Change a roster (add, update, remove a contact; or the admin's direct set). Sent by the
/// chat and admin APIs; replies after the commit with both sides' rows.
#[derive(Message)]
#[rtype(result = "Result<Transition, RouteError>")]
pub struct ChangeRoster {
    pub owner: String,
    pub contact: String,
    pub op: RosterOp,
}

impl Handler<ChangeRoster> for Router {
    type Result = ResponseFuture<Result<Transition, RouteError>>;

    fn handle(&mut self, msg: ChangeRoster, ctx: &mut Context<Self>) -> Self::Result {
        if msg.owner == msg.contact {
            return Box::pin(ready(Err(RouteError::Yourself("add as a contact"))));
        }
        for name in [&msg.owner, &msg.contact] {
            if let Err(unknown) = self.directory.require(name) {
                return Box::pin(ready(Err(unknown)));
            }
        }
        if matches!(msg.op, RosterOp::Add { .. }) {
            if let Some(refusal) = self.directory.block_refusal(&msg.owner, &msg.contact) {
                return Box::pin(ready(Err(refusal)));
            }
        }
        let feed = ctx.address();
        let (owner, contact, op) = (msg.owner.clone(), msg.contact.clone(), msg.op);
        // An HTTP API user has no station to answer a request from: it approves every one.
        let auto_accept = self.config.roster_auto_accept || self.directory.holds_no_station(&msg.contact);
        // RFC 6121's rules, run by the store inside the pair's transaction.
        let rule = move |mine, theirs| {
            roster::apply(op, &owner, &contact, mine, theirs, auto_accept).map_err(|e| match e {
                RosterError::AlreadyListed(_) => StoreError::Conflict(e.to_string()),
                RosterError::NotListed(_) => StoreError::NotFound(e.to_string()),
            })
        };
        let changed = self.storage.rosters.change_roster(
            msg.owner,
            msg.contact,
            Box::new(rule),
            Box::new(move |transition| feed.do_send(RosterCommitted { transition: transition.clone() })),
        );
        Box::pin(async move { changed.await.map_err(RouteError::from) })
    }
}

/// A roster change committed. Sent by the store's writer thread, in commit order.
#[derive(Message)]
#[rtype(result = "()")]
struct RosterCommitted {
    transition: Transition,
}

impl Handler<RosterCommitted> for Router {
    type Result = ();

    fn handle(&mut self, msg: RosterCommitted, _: &mut Context<Self>) {
        let Transition { owner_side, contact_side, notices } = msg.transition;
        // The notices first: a contact hears "subscribed" before the presence it allows.
        for notice in notices {
            self.relay_to_holders(&notice.to, || Relay::Notice { notice: notice.clone() });
            if let Some(session) = self.stations.session(&notice.to) {
                let event = Event::new(Payload::Subscription {
                    kind: notice.kind,
                    from: notice.from.clone(),
                    to: notice.to.clone(),
                });
                session.do_send(DeliverLive { event, resource: None });
            }
        }
        for change in [owner_side, contact_side] {
            self.relay_to_holders(&change.owner, || Relay::RosterChanged { change: change.clone() });
            if let Some(session) = self.stations.session(&change.owner) {
                session.do_send(RosterChanged { change });
            }
        }
    }
}

/// The rosters of these users changed outside a pair's transaction (a shared group changed):
/// the online ones reload theirs. Sent by the groups service after its commit.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RostersStale {
    pub usernames: Vec<String>,
}

impl Handler<RostersStale> for Router {
    type Result = ();

    fn handle(&mut self, msg: RostersStale, _: &mut Context<Self>) {
        self.relay_to_peers(|| Relay::RostersStale { usernames: msg.usernames.clone() });
        for username in &msg.usernames {
            if let Some(session) = self.stations.session(username) {
                session.do_send(ReloadRoster);
            }
        }
    }
}
