//! What a room is asked and answers, in the form that crosses nodes: in a cluster a room
//! lives on one node (its owner), and the others stand in for it, forwarding each call
//! ([`RoomCall`]) and handing back the owner's answer ([`RoomAnswer`]). Also the plain
//! views the calls answer with, and where an occupant's station is ([`Seat`]).

use actix::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Affiliation, AffiliationLists, Role, RoomConfig, RoomError, RoomRecord};
use crate::model::{Payload, RoomMessage};
use crate::station::Station;

/// Where an occupant's station is: on this node, or on a peer (which delivers to it what
/// the room relays).
#[derive(Debug, Clone)]
pub enum Seat {
    Here(Addr<Station>),
    On(String),
}

/// Where and as what a station entered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Joined {
    pub room: String,
    pub nick: String,
    pub role: Role,
    pub affiliation: Option<Affiliation>,
    /// This join created the room.
    pub created: bool,
}

/// An occupant as the APIs list it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OccupantView {
    pub nick: String,
    pub username: String,
    pub role: Role,
    pub affiliation: Option<Affiliation>,
}

/// A room's state for the APIs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomView {
    pub record: RoomRecord,
    pub occupants: Vec<OccupantView>,
}

/// A change by the administrator: the config, or one user's affiliation, or the whole
/// list of one affiliation. Saved before it takes effect; occupants who may no longer be
/// in the room are removed with a reason.
#[derive(Message, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[rtype(result = "Result<RoomView, RoomError>")]
pub enum Administer {
    /// A new config, and the affiliation lists (of users, of groups) to replace with it.
    Configure { config: RoomConfig, users: AffiliationLists, groups: AffiliationLists },
    /// Give `username` an affiliation, or (`None`) remove the one it has, which must be
    /// `expected` when given.
    Affiliate { username: String, affiliation: Option<Affiliation>, expected: Option<Affiliation> },
    /// The same for a user group: its people hold the affiliation.
    AffiliateGroup { group: String, affiliation: Option<Affiliation>, expected: Option<Affiliation> },
    /// Replace every holder of `affiliation` with `usernames`.
    ReplaceAll { affiliation: Affiliation, usernames: Vec<String> },
}

/// A call to a room from a node that stands in for it. The station of a joining user is on
/// the calling node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoomCall {
    /// `rejoin`: the station was in the room before it moved to this owner (no history again).
    Join {
        username: String,
        resource: String,
        nick: String,
        password: Option<String>,
        rejoin: bool,
    },
    Leave {
        username: String,
        resource: String,
    },
    /// The station ended (no answer).
    StationGone {
        username: String,
        resource: String,
    },
    Post {
        username: String,
        resource: String,
        body: String,
        data: Option<Value>,
    },
    SendPrivate {
        username: String,
        resource: String,
        to_nick: String,
        body: String,
        id: String,
    },
    PostAsApp {
        app: String,
        body: String,
        data: Option<Value>,
    },
    Invite {
        inviter: Option<(String, String)>,
        invitees: Vec<String>,
        reason: String,
    },
    Describe,
    Administer(Administer),
    Destroy {
        reason: String,
    },
}

/// A room's answer to a [`RoomCall`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RoomAnswer {
    Joined(Joined),
    Done,
    Posted(RoomMessage),
    /// One invitation per invitee, for the caller to deliver.
    Invitations(Vec<(String, Payload)>),
    View(Box<RoomView>),
}
