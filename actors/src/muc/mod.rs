//! Multi-user chat (XEP-0045 basics): rooms `name@conference.{domain}`, and on further MUC
//! services the admin adds, `name@{service}.{domain}`. A room's key is its name on the
//! default service and `name@service` on another ([`MucOptions::room_key`]); the store,
//! the registry and every room know rooms by that key.
//!
//! - [`room`]: `MucRoom`, one actor per room: occupants (nick → station), config, affiliations,
//!   the recent-history ring, and the fan-out of every room event, rendered once.
//! - [`conference`]: `Conference`, the registry: finds rooms, starts them on demand (a user's
//!   first join creates a room and makes that user its owner) and forgets the temporary ones
//!   that emptied. In a cluster it holds each room's lease, and stands in for rooms owned by
//!   peers.
//! - [`calls`]: what a room is asked and answers, as the calls cross nodes.
//!
//! This file holds the plain types both share: config, affiliations, roles, errors, and the
//! JSON a room is shown as.

pub mod calls;
pub mod conference;
pub mod room;

pub use crate::model::records::{Affiliation, AffiliationLists, MucServiceRecord, Role, RoomConfig, RoomRecord};
use crate::model::Condition;
use crate::storage::StoreError;

/// The MUC services besides the default one, by name, kept by the conference registry
/// after each commit and read by the doors to parse and render room addresses.
#[derive(Debug, Default)]
pub struct MucServices {
    extra: std::sync::RwLock<std::collections::BTreeMap<String, MucServiceRecord>>,
}

impl MucServices {
    /// Adds services (or replaces those of the same name).
    pub fn add(&self, services: Vec<MucServiceRecord>) {
        let mut extra = self.extra.write().unwrap_or_else(|p| p.into_inner());
        extra.extend(services.into_iter().map(|s| (s.name.clone(), s)));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.extra.read().unwrap_or_else(|p| p.into_inner()).contains_key(name)
    }

    pub fn all(&self) -> Vec<MucServiceRecord> {
        self.extra.read().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

/// What the MUC service needs from the configuration.
#[derive(Debug, Clone)]
pub struct MucOptions {
    /// The XMPP domain; rooms live on `{service}.{domain}`.
    pub domain: String,
    /// The MUC subdomain, `conference`.
    pub service: String,
    /// Messages a joining occupant receives as history.
    pub history: usize,
    /// A user's first join of an unknown room creates it (the user becomes its owner).
    pub users_can_create: bool,
    /// The services the admin added.
    pub extra_services: std::sync::Arc<MucServices>,
}

impl MucOptions {
    /// `{service}.{domain}`.
    pub fn host(&self) -> String {
        format!("{}.{}", self.service, self.domain)
    }

    /// Whether `service` is the default service or one the admin added.
    pub fn has_service(&self, service: &str) -> bool {
        service == self.service || self.extra_services.contains(service)
    }

    /// The key of room `name` on `service` (`None`: the default one).
    pub fn room_key(&self, name: &str, service: Option<&str>) -> Result<String, RoomError> {
        check_room_name(name)?;
        match service {
            None => Ok(name.to_owned()),
            Some(service) if service == self.service => Ok(name.to_owned()),
            Some(service) if self.extra_services.contains(service) => Ok(format!("{name}@{service}")),
            Some(service) => Err(RoomError::NoService(service.to_owned())),
        }
    }

    /// A room's key from what a door was given: a name (`lobby`), a key (`lobby@games`) or
    /// a room address (`lobby@games.{domain}`).
    pub fn parse_room(&self, raw: &str) -> Result<String, RoomError> {
        match raw.split_once('@') {
            None => self.room_key(raw, None),
            Some((name, host)) => {
                let service = host.strip_suffix(&format!(".{}", self.domain)).unwrap_or(host);
                self.room_key(name, Some(service))
            }
        }
    }

    /// The room of a bare address on one of the services, as a key; `None` when the host
    /// is no MUC service.
    pub fn room_of_address(&self, bare: &str) -> Option<String> {
        let (name, host) = bare.split_once('@')?;
        let service = host.strip_suffix(&format!(".{}", self.domain))?;
        self.has_service(service).then(|| self.room_key(name, Some(service)).ok()).flatten()
    }

    /// Whether `host` is the host of one of the services.
    pub fn is_service_host(&self, host: &str) -> bool {
        host.strip_suffix(&format!(".{}", self.domain)).is_some_and(|s| self.has_service(s))
    }

    /// The room's plain name and service of a key.
    pub fn split_key<'k>(&'k self, key: &'k str) -> (&'k str, &'k str) {
        key.split_once('@').unwrap_or((key, &self.service))
    }

    /// A room's address: `name@{service}.{domain}`.
    pub fn room_jid(&self, key: &str) -> String {
        let (name, service) = self.split_key(key);
        format!("{name}@{service}.{}", self.domain)
    }
}

/// Checks a room name: the same rules as user names (lowercase `a-z`, `0-9`, `.`, `_`, `-`,
/// starting with a letter or digit, at most 64 characters).
pub fn check_room_name(raw: &str) -> Result<(), RoomError> {
    crate::jid::Username::parse(raw)
        .map(|_| ())
        .map_err(|e| RoomError::BadName(e.to_string().replace("username", "room name")))
}

/// Why a room refused a request. It crosses nodes as it is, except a store failure, which
/// arrives as its kind (see [`crate::storage::wire_store_error`]).
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum RoomError {
    #[error("room '{0}' does not exist")]
    NotFound(String),
    #[error("room '{0}' already exists")]
    Exists(String),
    #[error("{0}")]
    BadName(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("you are banned from room '{0}'")]
    Outcast(String),
    #[error("room '{0}' is members-only")]
    MembersOnly(String),
    #[error("room '{0}' needs the right password")]
    BadPassword(String),
    #[error("room '{0}' is full ({1} occupants)")]
    Full(String, u32),
    #[error("the nickname '{0}' is taken in this room")]
    NickTaken(String),
    #[error("you are not an occupant of room '{0}'")]
    NotOccupant(String),
    #[error("visitors may not post in moderated room '{0}'")]
    Visitor(String),
    #[error("you may not invite to room '{0}'")]
    MayNotInvite(String),
    #[error("{0}")]
    NotAllowed(String),
    #[error("there is no chat service '{0}'")]
    NoService(String),
    #[error("'{0}' is not {1} of this room")]
    NotAffiliated(String, std::borrow::Cow<'static, str>),
    #[error("new rooms are created by the administrator only; room '{0}' does not exist")]
    CreationRestricted(String),
    /// The room is held by another node of the cluster, which did not answer in time.
    #[error("room '{0}' is held by cluster node '{1}', which did not answer; try again shortly")]
    Unreachable(String, String),
    #[error(transparent)]
    Store(
        #[from]
        #[serde(with = "crate::storage::wire_store_error")]
        StoreError,
    ),
}

impl RoomError {
    /// The stanza error condition for this refusal (XEP-0045 §7.2, RFC 6120 §8.3.3).
    pub fn condition(&self) -> Condition {
        match self {
            RoomError::NotFound(_)
            | RoomError::NoService(_)
            | RoomError::CreationRestricted(_)
            | RoomError::NotAffiliated(..) => Condition::ItemNotFound,
            RoomError::Exists(_) | RoomError::NickTaken(_) => Condition::Conflict,
            RoomError::BadName(_) | RoomError::BadRequest(_) => Condition::BadRequest,
            RoomError::Outcast(_)
            | RoomError::MembersOnly(_)
            | RoomError::BadPassword(_)
            | RoomError::NotOccupant(_)
            | RoomError::Visitor(_)
            | RoomError::MayNotInvite(_) => Condition::Forbidden,
            RoomError::NotAllowed(_) => Condition::NotAllowed,
            RoomError::Full(..) | RoomError::Unreachable(..) => Condition::ServiceUnavailable,
            RoomError::Store(e) => e.condition(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_affiliation_and_moderation() {
        assert_eq!(Role::on_entry(Some(Affiliation::Owner), true), Role::Moderator);
        assert_eq!(Role::on_entry(Some(Affiliation::Member), true), Role::Participant);
        assert_eq!(Role::on_entry(None, true), Role::Visitor);
        assert_eq!(Role::on_entry(None, false), Role::Participant);
    }

    #[test]
    fn hidden_and_members_only_rooms_are_listed_to_members_only() {
        let mut room = RoomRecord::new("r".into(), RoomConfig { members_only: true, ..RoomConfig::default() });
        room.affiliations.insert("ann".into(), Affiliation::Member);
        room.affiliations.insert("bob".into(), Affiliation::Outcast);
        assert!(room.visible_to("ann"));
        assert!(!room.visible_to("bob"));
        assert!(!room.visible_to("carl"));
        assert!(check_room_name("Lobby").unwrap_err().to_string().contains("room name"));
    }
}
