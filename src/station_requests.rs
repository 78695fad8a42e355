//! What the doors ask of a caller's own station (rooms, presence, contacts): sent straight
//! to the user's session, whose address came back when the stream was resolved or the
//! connection attached. Shared by the REST, `/ws` and XMPP doors.

use actix::{Addr, MailboxError};
use switchboard_actors::muc::room::Joined;
use switchboard_actors::muc::RoomError;
use switchboard_actors::presence::StationPresence;
use switchboard_actors::router::StreamInfo;
use switchboard_actors::user_session::{
    ContactView, EnterRoom, ExitRoom, ListContacts, SetStationPresence, UserSession,
};
use switchboard_actors::RouteError;

use crate::error::ApiError;

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
