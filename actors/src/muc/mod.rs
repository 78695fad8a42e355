//! Multi-user chat (XEP-0045 basics): rooms `name@conference.{domain}`.
//!
//! - [`room`]: `MucRoom`, one actor per room: occupants (nick → station), config, affiliations,
//!   the recent-history ring, and the fan-out of every room event, rendered once.
//! - [`conference`]: `Conference`, the registry: finds rooms, starts them on demand (a user's
//!   first join creates a room and makes that user its owner) and forgets the temporary ones
//!   that emptied.
//!
//! This file holds the plain types both share: config, affiliations, roles, errors, and the
//! JSON a room is shown as.

pub mod conference;
pub mod room;

pub use crate::model::records::{Affiliation, AffiliationLists, Role, RoomConfig, RoomRecord};
use crate::model::Condition;
use crate::storage::StoreError;

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
}

impl MucOptions {
    /// `{service}.{domain}`.
    pub fn host(&self) -> String {
        format!("{}.{}", self.service, self.domain)
    }
}

/// Checks a room name: the same rules as user names (lowercase `a-z`, `0-9`, `.`, `_`, `-`,
/// starting with a letter or digit, at most 64 characters).
pub fn check_room_name(raw: &str) -> Result<(), RoomError> {
    crate::jid::Username::parse(raw)
        .map(|_| ())
        .map_err(|e| RoomError::BadName(e.to_string().replace("username", "room name")))
}

/// Why a room refused a request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
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
    #[error("'{0}' is not {1} of this room")]
    NotAffiliated(String, &'static str),
    #[error("new rooms are created by the administrator only; room '{0}' does not exist")]
    CreationRestricted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RoomError {
    /// The stanza error condition for this refusal (XEP-0045 §7.2, RFC 6120 §8.3.3).
    pub fn condition(&self) -> Condition {
        match self {
            RoomError::NotFound(_) | RoomError::CreationRestricted(_) | RoomError::NotAffiliated(..) => {
                Condition::ItemNotFound
            }
            RoomError::Exists(_) | RoomError::NickTaken(_) => Condition::Conflict,
            RoomError::BadName(_) | RoomError::BadRequest(_) => Condition::BadRequest,
            RoomError::Outcast(_)
            | RoomError::MembersOnly(_)
            | RoomError::BadPassword(_)
            | RoomError::NotOccupant(_)
            | RoomError::Visitor(_)
            | RoomError::MayNotInvite(_) => Condition::Forbidden,
            RoomError::NotAllowed(_) => Condition::NotAllowed,
            RoomError::Full(..) => Condition::ServiceUnavailable,
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
