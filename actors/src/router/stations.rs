//! `StationTable`: who is online, their stations, login streams and connections, as plain
//! data with its rules (most recent login stream, connection-owned stations, idle expiry,
//! the census and the admin listing).
//!
//! It is the one record of which connections belong to which station: the router updates it
//! and tells the user's session only what delivery needs. `S` is the handle of a user's
//! session (`Addr<UserSession>` in the router, anything in tests).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::presence::PresenceUpdate;

/// One station in an admin listing (`GET /restapi/v1/sessions`).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub username: String,
    pub resource: String,
    pub stream_id: Option<String>,
    pub created_ms: i64,
    pub last_active_ms: i64,
    pub connections: usize,
    pub doors: Vec<String>,
    /// The cluster node that holds the station (`None`: this one).
    pub node: Option<String>,
}

/// Live stations and connections by door, for `/metrics`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Census {
    pub users_online: u64,
    pub stations: u64,
    /// Door → stations with at least one connection through it.
    pub stations_by_door: BTreeMap<&'static str, u64>,
    /// Door → open connections.
    pub connections_by_door: BTreeMap<&'static str, u64>,
}

/// An online user: its session, stations and last visible presence.
#[derive(Debug)]
pub struct OnlineUser<S> {
    pub session: S,
    stations: HashMap<String, StationEntry>,
    connections: usize,
    /// The user's last visible presence, if available: what probes are answered with.
    pub presence: Option<Arc<PresenceUpdate>>,
}

impl<S> OnlineUser<S> {
    pub fn has_station(&self, resource: &str) -> bool {
        self.stations.contains_key(resource)
    }

    pub fn station_count(&self) -> usize {
        self.stations.len()
    }
}

#[derive(Debug)]
struct StationEntry {
    stream_id: Option<String>,
    created_ms: i64,
    last_active_ms: i64,
    /// Open connections, by id, with the door each came through.
    connections: HashMap<u64, &'static str>,
}

impl StationEntry {
    /// A station of its own for one connection: it ends when that connection closes.
    fn is_connection_owned(&self) -> bool {
        self.stream_id.is_none()
    }

    fn doors(&self) -> Vec<&'static str> {
        let mut doors: Vec<&'static str> = self.connections.values().copied().collect();
        doors.sort_unstable();
        doors.dedup();
        doors
    }
}

/// What closing a station ended.
#[derive(Debug, PartialEq)]
pub struct ClosedStation<S> {
    /// The user's session, to tell.
    pub session: S,
    /// The connections the station still had.
    pub connections: usize,
    /// It was the user's last station: the user is offline now.
    pub user_gone: bool,
}

/// What adding a connection did.
#[derive(Debug, PartialEq)]
pub struct AddedConnection<S> {
    pub session: S,
    pub connection_id: u64,
    /// It is the station's only connection: the station just came alive.
    pub station_came_alive: bool,
}

/// What removing a connection did.
#[derive(Debug, PartialEq)]
pub struct RemovedConnection<S> {
    pub session: S,
    /// It was the station's last connection: the station is no longer live.
    pub station_went_quiet: bool,
    /// The station was the connection's own and is now empty: close it.
    pub station_ends: bool,
}

/// Online users, their stations and connections, and the login streams.
#[derive(Debug)]
pub struct StationTable<S> {
    users: HashMap<String, OnlineUser<S>>,
    /// Login stream id → (user, resource).
    streams: HashMap<String, (String, String)>,
    next_connection_id: u64,
}

impl<S> Default for StationTable<S> {
    fn default() -> Self {
        StationTable { users: HashMap::new(), streams: HashMap::new(), next_connection_id: 1 }
    }
}

impl<S: Clone> StationTable<S> {
    pub fn user(&self, username: &str) -> Option<&OnlineUser<S>> {
        self.users.get(username)
    }

    pub fn user_mut(&mut self, username: &str) -> Option<&mut OnlineUser<S>> {
        self.users.get_mut(username)
    }

    /// A user's session, if it is online.
    pub fn session(&self, username: &str) -> Option<&S> {
        self.users.get(username).map(|u| &u.session)
    }

    pub fn users(&self) -> impl Iterator<Item = (&String, &OnlineUser<S>)> {
        self.users.iter()
    }

    pub fn online_count(&self) -> usize {
        self.users.len()
    }

    /// Makes `username` online with the session `start` gives, if it is not; true if it
    /// was started now.
    pub fn ensure_online(&mut self, username: &str, start: impl FnOnce() -> S) -> bool {
        if self.users.contains_key(username) {
            return false;
        }
        let user = OnlineUser { session: start(), stations: HashMap::new(), connections: 0, presence: None };
        self.users.insert(username.to_owned(), user);
        true
    }

    /// Adds a station to an online user (see [`Self::ensure_online`]), under a login stream
    /// or (`None`) for one connection of its own.
    pub fn open_station(&mut self, username: &str, resource: &str, stream_id: Option<String>, now_ms: i64) {
        let Some(user) = self.users.get_mut(username) else {
            debug_assert!(false, "a station for a user who is not online");
            return;
        };
        let entry = StationEntry {
            stream_id: stream_id.clone(),
            created_ms: now_ms,
            last_active_ms: now_ms,
            connections: HashMap::new(),
        };
        user.stations.insert(resource.to_owned(), entry);
        if let Some(id) = stream_id {
            self.streams.insert(id, (username.to_owned(), resource.to_owned()));
        }
    }

    /// Removes a station (and its login stream); the user goes offline with its last one.
    pub fn close_station(&mut self, username: &str, resource: &str) -> Option<ClosedStation<S>> {
        let user = self.users.get_mut(username)?;
        let entry = user.stations.remove(resource)?;
        if let Some(id) = &entry.stream_id {
            self.streams.remove(id);
        }
        user.connections -= entry.connections.len();
        let session = user.session.clone();
        let user_gone = user.stations.is_empty();
        if user_gone {
            self.users.remove(username);
        }
        Some(ClosedStation { session, connections: entry.connections.len(), user_gone })
    }

    /// The (user, resource) of a login stream.
    pub fn stream(&self, stream_id: &str) -> Option<(String, String)> {
        self.streams.get(stream_id).cloned()
    }

    /// The user's station under its most recently opened login stream, if any.
    pub fn latest_stream_station(&self, username: &str) -> Option<(String, Option<String>)> {
        self.users.get(username).and_then(|u| {
            u.stations
                .iter()
                .filter(|(_, s)| s.stream_id.is_some())
                .max_by_key(|(_, s)| s.created_ms)
                .map(|(res, s)| (res.clone(), s.stream_id.clone()))
        })
    }

    /// The station was used now.
    pub fn touch(&mut self, username: &str, resource: &str, now_ms: i64) {
        if let Some(entry) = self.users.get_mut(username).and_then(|u| u.stations.get_mut(resource)) {
            entry.last_active_ms = now_ms;
        }
    }

    /// The user's open connections, over all its stations.
    pub fn connections_of(&self, username: &str) -> usize {
        self.users.get(username).map_or(0, |u| u.connections)
    }

    /// Records a new connection on an open station; `None` if there is no such station.
    pub fn add_connection(
        &mut self,
        username: &str,
        resource: &str,
        door: &'static str,
        now_ms: i64,
    ) -> Option<AddedConnection<S>> {
        let user = self.users.get_mut(username)?;
        let entry = user.stations.get_mut(resource)?;
        let connection_id = self.next_connection_id;
        self.next_connection_id += 1;
        entry.connections.insert(connection_id, door);
        entry.last_active_ms = now_ms;
        user.connections += 1;
        let station_came_alive = entry.connections.len() == 1;
        Some(AddedConnection { session: user.session.clone(), connection_id, station_came_alive })
    }

    /// Forgets a connection; `None` if it was not recorded (already gone).
    pub fn remove_connection(
        &mut self,
        username: &str,
        resource: &str,
        connection_id: u64,
        now_ms: i64,
    ) -> Option<RemovedConnection<S>> {
        let user = self.users.get_mut(username)?;
        let entry = user.stations.get_mut(resource)?;
        entry.connections.remove(&connection_id)?;
        entry.last_active_ms = now_ms;
        user.connections -= 1;
        let station_went_quiet = entry.connections.is_empty();
        let station_ends = entry.is_connection_owned() && station_went_quiet;
        Some(RemovedConnection { session: user.session.clone(), station_went_quiet, station_ends })
    }

    /// The user's stations.
    pub fn resources(&self, username: &str) -> Vec<String> {
        self.users.get(username).map(|u| u.stations.keys().cloned().collect()).unwrap_or_default()
    }

    /// Stations with no connection that nobody used since `cutoff_ms`.
    pub fn idle_stations(&self, cutoff_ms: i64) -> Vec<(String, String)> {
        self.users
            .iter()
            .flat_map(|(name, user)| {
                user.stations
                    .iter()
                    .filter(|(_, s)| s.connections.is_empty() && s.last_active_ms < cutoff_ms)
                    .map(move |(res, _)| (name.clone(), res.clone()))
            })
            .collect()
    }

    /// What is live, by door.
    pub fn census(&self) -> Census {
        let mut census = Census { users_online: self.users.len() as u64, ..Census::default() };
        for station in self.users.values().flat_map(|u| u.stations.values()) {
            census.stations += 1;
            for door in station.connections.values() {
                *census.connections_by_door.entry(door).or_default() += 1;
            }
            for door in station.doors() {
                *census.stations_by_door.entry(door).or_default() += 1;
            }
        }
        census
    }

    /// Every station of every online user, by user then age.
    pub fn sessions(&self) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = self
            .users
            .iter()
            .flat_map(|(name, user)| {
                user.stations.iter().map(move |(res, s)| SessionInfo {
                    username: name.clone(),
                    resource: res.clone(),
                    stream_id: s.stream_id.clone(),
                    created_ms: s.created_ms,
                    last_active_ms: s.last_active_ms,
                    connections: s.connections.len(),
                    doors: s.doors().into_iter().map(str::to_owned).collect(),
                    node: None,
                })
            })
            .collect();
        out.sort_by(|a, b| (&a.username, a.created_ms).cmp(&(&b.username, b.created_ms)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table whose sessions are numbers.
    fn table() -> StationTable<u32> {
        StationTable::default()
    }

    fn online(t: &mut StationTable<u32>, user: &str, resource: &str, stream: Option<&str>, now: i64) {
        t.ensure_online(user, || 7);
        t.open_station(user, resource, stream.map(str::to_owned), now);
    }

    #[test]
    fn a_login_stream_resolves_to_its_station_until_closed() {
        let mut t = table();
        assert!(t.ensure_online("ann", || 7));
        assert!(!t.ensure_online("ann", || 8), "one session per user");
        t.open_station("ann", "r1", Some("s1".into()), 10);
        assert_eq!(t.stream("s1"), Some(("ann".into(), "r1".into())));
        let closed = t.close_station("ann", "r1").unwrap();
        assert_eq!(closed, ClosedStation { session: 7, connections: 0, user_gone: true });
        assert_eq!(t.stream("s1"), None);
        assert!(t.user("ann").is_none());
        assert_eq!(t.close_station("ann", "r1"), None);
    }

    #[test]
    fn the_latest_login_stream_is_the_default_station() {
        let mut t = table();
        online(&mut t, "ann", "old", Some("s1"), 10);
        online(&mut t, "ann", "new", Some("s2"), 20);
        online(&mut t, "ann", "own", None, 30);
        assert_eq!(t.latest_stream_station("ann"), Some(("new".into(), Some("s2".into()))));
        assert_eq!(t.latest_stream_station("bob"), None);
    }

    #[test]
    fn connections_are_counted_per_user_and_a_connection_owned_station_ends_with_it() {
        let mut t = table();
        online(&mut t, "ann", "login", Some("s1"), 0);
        online(&mut t, "ann", "own", None, 0);
        let a = t.add_connection("ann", "login", "sse", 1).unwrap();
        assert!(a.station_came_alive);
        let second = t.add_connection("ann", "login", "ws", 1).unwrap();
        assert!(!second.station_came_alive);
        let b = t.add_connection("ann", "own", "ws", 1).unwrap().connection_id;
        let a = a.connection_id;
        assert_ne!(a, b);
        assert_eq!(t.connections_of("ann"), 3);
        assert_eq!(t.add_connection("ann", "nowhere", "ws", 1), None);
        let removed = t.remove_connection("ann", "login", a, 2).unwrap();
        assert!(!removed.station_went_quiet && !removed.station_ends);
        assert!(t.remove_connection("ann", "login", a, 2).is_none(), "removed once");
        let removed = t.remove_connection("ann", "login", second.connection_id, 2).unwrap();
        assert!(removed.station_went_quiet);
        assert!(!removed.station_ends, "a login stream outlives its connections");
        assert!(t.remove_connection("ann", "own", b, 2).unwrap().station_ends);
        assert_eq!(t.connections_of("ann"), 0);
    }

    #[test]
    fn only_unused_stations_without_connections_expire() {
        let mut t = table();
        online(&mut t, "ann", "idle", Some("s1"), 0);
        online(&mut t, "ann", "used", Some("s2"), 0);
        online(&mut t, "bob", "held", Some("s3"), 0);
        t.touch("ann", "used", 100);
        t.add_connection("bob", "held", "sse", 0);
        assert_eq!(t.idle_stations(50), vec![("ann".to_owned(), "idle".to_owned())]);
    }

    #[test]
    fn the_census_and_listing_count_by_door() {
        let mut t = table();
        online(&mut t, "ann", "r1", Some("s1"), 5);
        online(&mut t, "ann", "r2", None, 1);
        online(&mut t, "bob", "r3", Some("s3"), 2);
        t.add_connection("ann", "r1", "sse", 5);
        t.add_connection("ann", "r1", "sse", 5);
        t.add_connection("ann", "r1", "ws", 5);
        t.add_connection("ann", "r2", "ws", 5);
        let census = t.census();
        assert_eq!((census.users_online, census.stations), (2, 3));
        assert_eq!(census.connections_by_door, [("sse", 2), ("ws", 2)].into());
        assert_eq!(census.stations_by_door, [("sse", 1), ("ws", 2)].into());
        let sessions = t.sessions();
        let order: Vec<&str> = sessions.iter().map(|s| s.resource.as_str()).collect();
        assert_eq!(order, vec!["r2", "r1", "r3"], "by user, then oldest first");
        assert_eq!(sessions[1].doors, vec!["sse", "ws"]);
        assert_eq!(sessions[1].connections, 3);
    }
}
