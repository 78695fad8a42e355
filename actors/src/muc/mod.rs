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

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock::format_stamp;
use crate::store::StoreError;

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

/// A user's standing in a room (XEP-0045 §5.2), kept across visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Affiliation {
    Owner,
    Admin,
    Member,
    Outcast,
}

impl Affiliation {
    pub const ALL: [Affiliation; 4] =
        [Affiliation::Owner, Affiliation::Admin, Affiliation::Member, Affiliation::Outcast];

    pub fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::Admin => "admin",
            Affiliation::Member => "member",
            Affiliation::Outcast => "outcast",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Affiliation::ALL.into_iter().find(|a| a.as_str() == raw)
    }

    /// The admin API's list name: `owners`, `admins`, `members`, `outcasts`.
    pub fn plural(self) -> &'static str {
        match self {
            Affiliation::Owner => "owners",
            Affiliation::Admin => "admins",
            Affiliation::Member => "members",
            Affiliation::Outcast => "outcasts",
        }
    }

    pub fn from_plural(raw: &str) -> Option<Self> {
        Affiliation::ALL.into_iter().find(|a| a.plural() == raw)
    }
}

/// Whole affiliation lists, each replacing every holder of its affiliation.
pub type AffiliationLists = Vec<(Affiliation, Vec<String>)>;

/// An occupant's role for this visit (XEP-0045 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Moderator,
    Participant,
    Visitor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
            Role::Visitor => "visitor",
        }
    }

    /// The role an affiliation gets on entering (XEP-0045 §5.1.2): in a moderated room,
    /// users without an affiliation are visitors.
    pub fn on_entry(affiliation: Option<Affiliation>, moderated: bool) -> Role {
        match affiliation {
            Some(Affiliation::Owner | Affiliation::Admin) => Role::Moderator,
            Some(Affiliation::Member) => Role::Participant,
            _ if moderated => Role::Visitor,
            _ => Role::Participant,
        }
    }
}

/// A room's configuration, in the restAPI's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoomConfig {
    pub natural_name: String,
    pub description: String,
    pub subject: String,
    /// Needed to join, when set.
    pub password: Option<String>,
    /// Most occupants at once; 0 = no limit.
    pub max_users: u32,
    /// Kept (config, affiliations) when empty and across restarts.
    pub persistent: bool,
    /// Listed to everyone; otherwise only to its members.
    pub public_room: bool,
    /// Only members, admins and owners may join.
    pub members_only: bool,
    /// Only participants and moderators may post; others enter as visitors.
    pub moderated: bool,
    /// Participants (not only admins and owners) may invite.
    pub can_occupants_invite: bool,
    /// Occupants see each other's real address.
    pub can_anyone_discover_jid: bool,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            natural_name: String::new(),
            description: String::new(),
            subject: String::new(),
            password: None,
            max_users: 0,
            persistent: false,
            public_room: true,
            members_only: false,
            moderated: false,
            can_occupants_invite: false,
            can_anyone_discover_jid: true,
        }
    }
}

/// A room as stored: its name, config and affiliations.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomRecord {
    pub name: String,
    pub config: RoomConfig,
    pub affiliations: BTreeMap<String, Affiliation>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl RoomRecord {
    pub fn new(name: String, config: RoomConfig) -> Self {
        let now = crate::clock::now_ms();
        RoomRecord { name, config, affiliations: BTreeMap::new(), created_ms: now, modified_ms: now }
    }

    /// The users with `affiliation`, sorted.
    pub fn with_affiliation(&self, affiliation: Affiliation) -> Vec<String> {
        self.affiliations.iter().filter(|(_, a)| **a == affiliation).map(|(u, _)| u.clone()).collect()
    }

    /// Whether `username` may see the room in listings: public rooms that are not
    /// members-only are visible to all; the others to their members, admins and owners.
    pub fn visible_to(&self, username: &str) -> bool {
        (self.config.public_room && !self.config.members_only)
            || matches!(
                self.affiliations.get(username),
                Some(Affiliation::Owner | Affiliation::Admin | Affiliation::Member)
            )
    }

    /// The room as the APIs show it. The admin sees the password; users see only whether
    /// there is one.
    pub fn to_json(&self, options: &MucOptions, occupants: usize, for_admin: bool) -> Value {
        let host = options.host();
        let jids = |a| self.with_affiliation(a).iter().map(|u| format!("{u}@{}", options.domain)).collect::<Vec<_>>();
        let mut value = json!({
            "roomName": self.name,
            "jid": format!("{}@{host}", self.name),
            "naturalName": self.config.natural_name,
            "description": self.config.description,
            "subject": self.config.subject,
            "creationDate": format_stamp(self.created_ms),
            "modificationDate": format_stamp(self.modified_ms),
            "maxUsers": self.config.max_users,
            "persistent": self.config.persistent,
            "publicRoom": self.config.public_room,
            "membersOnly": self.config.members_only,
            "moderated": self.config.moderated,
            "canOccupantsInvite": self.config.can_occupants_invite,
            "canAnyoneDiscoverJID": self.config.can_anyone_discover_jid,
            "logEnabled": true,
            "passwordProtected": self.config.password.is_some(),
            "occupantCount": occupants,
            "owners": jids(Affiliation::Owner),
            "admins": jids(Affiliation::Admin),
            "members": jids(Affiliation::Member),
        });
        if for_admin {
            value["password"] = json!(self.config.password);
            value["outcasts"] = json!(jids(Affiliation::Outcast));
        }
        value
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
    #[error("'{0}' is not {1} of this room")]
    NotAffiliated(String, &'static str),
    #[error("new rooms are created by the administrator only; room '{0}' does not exist")]
    CreationRestricted(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
