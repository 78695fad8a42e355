//! What the doors ask of the core on a caller's behalf, shared by the REST, `/ws` and XMPP
//! doors: requests of the caller's own station (rooms, presence, contacts), sent straight to
//! the user's session, whose address came back when the stream was resolved or the
//! connection attached; and room lookups and invitations.

use actix::{Addr, MailboxError};
use switchboard_actors::muc::conference::FindRoom;
use switchboard_actors::muc::room::{Invite, Joined, MucRoom};
use switchboard_actors::muc::RoomError;
use switchboard_actors::presence::StationPresence;
use switchboard_actors::router::{DeliverToUser, StreamInfo};
use switchboard_actors::user_session::rooms::{EnterRoom, ExitRoom};
use switchboard_actors::user_session::{ContactView, ListContacts, SetStationPresence, UserSession};
use switchboard_actors::RouteError;

use crate::error::ApiError;
use crate::state::AppState;

/// The station a request comes from: its user, its resource and the user's session.
#[derive(Clone)]
pub struct OwnStation<'a> {
    pub username: &'a str,
    pub resource: &'a str,
    pub session: &'a Addr<UserSession>,
}

impl<'a> From<&'a StreamInfo> for OwnStation<'a> {
    fn from(info: &'a StreamInfo) -> Self {
        OwnStation { username: &info.username, resource: &info.resource, session: &info.session }
    }
}

/// The session ended while the request was on its way: the station is gone.
fn station_ended(_: MailboxError) -> RoomError {
    RoomError::BadRequest("the station has ended".into())
}

/// Enters `room` as `nick` from the station.
pub async fn enter_room(
    station: OwnStation<'_>,
    room: String,
    nick: String,
    password: Option<String>,
) -> Result<Joined, ApiError> {
    let enter = EnterRoom { resource: station.resource.to_owned(), room, nick, password };
    Ok(station.session.send(enter).await.map_err(station_ended)??)
}

/// Leaves `room` from the station.
pub async fn exit_room(station: OwnStation<'_>, room: String) -> Result<(), ApiError> {
    let exit = ExitRoom { resource: station.resource.to_owned(), room: room.clone() };
    Ok(station.session.send(exit).await.map_err(|_| RoomError::NotOccupant(room))??)
}

/// Sets the station's own presence.
pub async fn set_presence(station: OwnStation<'_>, presence: StationPresence) -> Result<(), ApiError> {
    let set = SetStationPresence { resource: station.resource.to_owned(), presence };
    station.session.send(set).await.map_err(|_| RouteError::Offline(station.username.to_owned()))?;
    Ok(())
}

/// The user's contacts with the presence it sees.
pub async fn contacts(station: OwnStation<'_>) -> Result<Vec<ContactView>, ApiError> {
    Ok(station.session.send(ListContacts).await.map_err(|_| RouteError::Offline(station.username.to_owned()))?)
}

/// The room a door names: `lobby` (the default service), `lobby@games` (a key) or its
/// address `lobby@games.{domain}`.
pub async fn find_room(state: &AppState, raw: &str) -> Result<Addr<MucRoom>, ApiError> {
    let key = state.muc.parse_room(raw)?;
    state.conference.send(FindRoom { name: key.clone() }).await?.ok_or_else(|| RoomError::NotFound(key).into())
}

/// Sends a request to a room; a room that stopped meanwhile is 404.
pub async fn ask_room<M, T>(room: &Addr<MucRoom>, name: &str, msg: M) -> Result<T, ApiError>
where
    M: actix::Message<Result = Result<T, RoomError>> + Send + 'static,
    T: Send + 'static,
    MucRoom: actix::Handler<M>,
{
    Ok(room.send(msg).await.map_err(|_| RoomError::NotFound(name.to_owned()))??)
}

/// Delivers invitations the room rendered, live, to each invitee's stations.
pub async fn deliver_invitations(
    state: &AppState,
    room: &Addr<MucRoom>,
    name: &str,
    invite: Invite,
) -> Result<usize, ApiError> {
    for invitee in &invite.invitees {
        require_account(state, invitee).await?;
    }
    let invitations = ask_room(room, name, invite).await?;
    let count = invitations.len();
    for (username, event) in invitations {
        state.router.send(DeliverToUser { username, event }).await??;
    }
    Ok(count)
}

/// 404 unless the account exists.
pub async fn require_account(state: &AppState, username: &str) -> Result<(), ApiError> {
    match state.accounts.find(username).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::user_not_found(username)),
    }
}
