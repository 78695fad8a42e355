//! Login streams and live connections: `Login`, `Logoff`, `ResolveStream`, `Attach`,
//! `Detach`. Each answer that names a station carries the user's session, so the doors send
//! per-user requests (rooms, presence, contacts) to it directly.

use actix::prelude::*;

use super::hub::Router;
use crate::clock::now_ms;
use crate::jid::{Jid, Username};
use crate::model::Push;
use crate::random::random_hex;
use crate::route_error::RouteError;
use crate::user_session::{AttachConnection, DetachConnection, UserSession};

/// A login stream or station as the doors see it, with the session that serves it.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub stream_id: Option<String>,
    pub username: String,
    pub resource: String,
    /// The user's session: rooms, presence and contacts requests go to it.
    pub session: Addr<UserSession>,
}

impl StreamInfo {
    /// The station's full address.
    pub fn jid(&self) -> Jid {
        Jid::full(Username::parse(&self.username).expect("stored user names are valid"), self.resource.clone())
    }
}

/// Open a login stream (a new station) for a user. Sent by the chat API's login.
#[derive(Message)]
#[rtype(result = "Result<StreamInfo, RouteError>")]
pub struct Login {
    pub username: String,
}

impl Handler<Login> for Router {
    type Result = Result<StreamInfo, RouteError>;

    fn handle(&mut self, msg: Login, ctx: &mut Context<Self>) -> Self::Result {
        self.directory.require_live(&msg.username)?;
        let stream_id = random_hex(16);
        let resource = self.open_station(&msg.username, Some(stream_id.clone()), None, ctx);
        let session = self.stations.session(&msg.username).cloned().expect("the station's user is online");
        Ok(StreamInfo { stream_id: Some(stream_id), username: msg.username, resource, session })
    }
}

/// End a login stream and its station. Sent by the chat API's logoff.
#[derive(Message)]
#[rtype(result = "Result<(), RouteError>")]
pub struct Logoff {
    pub stream_id: String,
}

impl Handler<Logoff> for Router {
    type Result = Result<(), RouteError>;

    fn handle(&mut self, msg: Logoff, _: &mut Context<Self>) -> Self::Result {
        let (username, resource) =
            self.stations.stream(&msg.stream_id).ok_or(RouteError::UnknownStream(msg.stream_id))?;
        self.close_station(&username, &resource, "logged off");
        Ok(())
    }
}

/// Look a login stream up (and count it as used). Sent by every `/chat/{streamid}/…` call.
#[derive(Message)]
#[rtype(result = "Option<StreamInfo>")]
pub struct ResolveStream {
    pub stream_id: String,
}

impl Handler<ResolveStream> for Router {
    type Result = Option<StreamInfo>;

    fn handle(&mut self, msg: ResolveStream, _: &mut Context<Self>) -> Self::Result {
        let (username, resource) = self.stations.stream(&msg.stream_id)?;
        self.touch(&username, &resource);
        let session = self.stations.session(&username)?.clone();
        Some(StreamInfo { stream_id: Some(msg.stream_id), username, resource, session })
    }
}

/// Attach a live connection to a station. Sent by the SSE and websocket doors.
///
/// With `stream_id`, the connection joins that login stream. With `resource` (XMPP resource
/// binding), it gets a station of its own by that name, or by a name made from it when the
/// name is taken or not a valid resource (RFC 6120 §7.7.2.2: the server overrides it).
/// Without either, it joins the user's most recent login stream, or, when there is none, a
/// station of its own with a made-up name. A station of its own ends with the connection.
#[derive(Message)]
#[rtype(result = "Result<Attached, RouteError>")]
pub struct Attach {
    pub username: String,
    pub stream_id: Option<String>,
    /// The resource the client asked for.
    pub resource: Option<String>,
    pub connection: Recipient<Push>,
    /// Which door the connection came through (`sse`, `ws`), for listings and metrics.
    pub door: &'static str,
}

/// Where a connection was attached.
#[derive(Debug, Clone)]
pub struct Attached {
    pub station: StreamInfo,
    pub connection_id: u64,
}

impl Handler<Attach> for Router {
    type Result = Result<Attached, RouteError>;

    fn handle(&mut self, msg: Attach, ctx: &mut Context<Self>) -> Self::Result {
        self.directory.require_live(&msg.username)?;
        let limit = self.config.max_connections_per_user;
        if self.stations.connections_of(&msg.username) >= limit {
            return Err(RouteError::TooManyConnections(limit));
        }
        let (resource, stream_id) = match msg.stream_id {
            None if msg.resource.is_some() => {
                (self.open_station(&msg.username, None, msg.resource.as_deref(), ctx), None)
            }
            Some(id) => {
                let (owner, resource) =
                    self.stations.stream(&id).ok_or_else(|| RouteError::UnknownStream(id.clone()))?;
                if owner != msg.username {
                    return Err(RouteError::NotYourStream(id));
                }
                (resource, Some(id))
            }
            None => match self.stations.latest_stream_station(&msg.username) {
                Some(found) => found,
                None => (self.open_station(&msg.username, None, None, ctx), None),
            },
        };
        let added = self
            .stations
            .add_connection(&msg.username, &resource, msg.door, now_ms())
            .expect("the station was resolved or opened above");
        self.stats.connections.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        added.session.do_send(AttachConnection {
            resource: resource.clone(),
            connection_id: added.connection_id,
            connection: msg.connection,
            station_came_alive: added.station_came_alive,
        });
        let station = StreamInfo { stream_id, username: msg.username, resource, session: added.session };
        Ok(Attached { station, connection_id: added.connection_id })
    }
}

/// A connection closed. Sent by the connection's door.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Detach {
    pub username: String,
    pub resource: String,
    pub connection_id: u64,
}

impl Handler<Detach> for Router {
    type Result = ();

    fn handle(&mut self, msg: Detach, _: &mut Context<Self>) {
        let Some(removed) = self.stations.remove_connection(&msg.username, &msg.resource, msg.connection_id, now_ms())
        else {
            return;
        };
        self.stats.connections.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        removed.session.do_send(DetachConnection {
            resource: msg.resource.clone(),
            connection_id: msg.connection_id,
            station_went_quiet: removed.station_went_quiet,
        });
        if removed.station_ends {
            self.close_station(&msg.username, &msg.resource, "connection closed");
        }
    }
}
