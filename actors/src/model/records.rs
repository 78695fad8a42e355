//! The records the core keeps and the value types its events carry: presence values,
//! roster rows, rooms and their affiliations, workgroups and their chats.
//!
//! They sit below the actors and the store alike: the store persists them, the actors apply
//! the rules to them, and the doors render them. Nothing here knows a wire format.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::scram::ScramKeys;

/// What an account is for.
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq, Default)]
pub enum AccountKind {
    /// A person, on any door.
    #[default]
    User,
    /// An HTTP API user (Ozeki's service account): applications send and receive through it
    /// over HTTP; it holds no live station, so what is addressed to it waits until downloaded.
    Http,
    /// An external app's account (`model::apps`): it holds no live station; what end users
    /// send it goes to the app's webhook.
    App,
    /// A web site's user (`model::sites`): a person like `User`, signed in by the site's
    /// tokens, with no password of its own.
    Site,
}

impl AccountKind {
    pub const NAMES: &'static str = "user, http, app, site";

    pub fn as_str(self) -> &'static str {
        match self {
            AccountKind::User => "user",
            AccountKind::Http => "http",
            AccountKind::App => "app",
            AccountKind::Site => "site",
        }
    }

    pub fn parse(raw: &str) -> Option<AccountKind> {
        match raw {
            "user" => Some(AccountKind::User),
            "http" => Some(AccountKind::Http),
            "app" => Some(AccountKind::App),
            "site" => Some(AccountKind::Site),
            _ => None,
        }
    }
}

/// A new account; the password is already an argon2 hash.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: String,
    pub kind: AccountKind,
    pub password_hash: String,
    pub name: String,
    pub email: String,
    pub properties: Vec<(String, String)>,
    /// The password's SCRAM credentials (none for accounts without a password).
    pub scram: Vec<ScramKeys>,
}

/// A change to an account; `None` leaves a field as it is. `properties`, when given,
/// replaces them all (restAPI `PUT` semantics).
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub username: String,
    pub password_hash: Option<String>,
    /// Given with a new password (or alone, to add the credentials an account lacks).
    pub scram: Option<Vec<ScramKeys>>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub properties: Option<Vec<(String, String)>>,
}

/// An account as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub username: String,
    pub kind: AccountKind,
    pub password_hash: String,
    pub name: String,
    pub email: String,
    pub properties: Vec<(String, String)>,
    pub created_ms: i64,
    pub modified_ms: i64,
    /// Locked out by the admin: signs in through no door.
    pub locked: bool,
    pub scram: Vec<ScramKeys>,
}

/// A page of a room's archive: its messages stamped at or after `start_ms` (and at or
/// before `end_ms`), older than message `before` or newer than message `after`. The newest
/// `limit` of them, or with `after` the oldest `limit`; oldest first either way.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct RoomHistoryQuery {
    pub room: String,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: usize,
}

/// A history search (`GET /restapi/v1/chat/{username}/messages`).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct HistoryQuery {
    /// Whose history: messages this user sent or received.
    pub username: String,
    /// Only the conversation with this user.
    pub with: Option<String>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    /// Case-insensitive substring of the body.
    pub keywords: Option<String>,
    /// Only messages older than this id (page backwards).
    pub before: Option<i64>,
    /// Only messages newer than this id (page forwards).
    pub after: Option<i64>,
    pub limit: usize,
}

/// What a station says about itself (`show`, RFC 6121 §4.7.2.1, plus ofchat's `offline`).
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq, Default)]
pub enum Show {
    #[default]
    Available,
    Chat,
    Away,
    Xa,
    Dnd,
    /// Connected but shown as unavailable to contacts.
    Offline,
}

impl Show {
    pub const NAMES: &'static str = "available, away, chat, dnd, xa, offline";

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "available" => Some(Show::Available),
            "chat" => Some(Show::Chat),
            "away" => Some(Show::Away),
            "xa" => Some(Show::Xa),
            "dnd" => Some(Show::Dnd),
            "offline" => Some(Show::Offline),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Show::Available => "available",
            Show::Chat => "chat",
            Show::Away => "away",
            Show::Xa => "xa",
            Show::Dnd => "dnd",
            Show::Offline => "offline",
        }
    }

    /// Higher is more available; used to pick a user's visible station.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Show::Chat => 5,
            Show::Available => 4,
            Show::Away => 3,
            Show::Xa => 2,
            Show::Dnd => 1,
            Show::Offline => 0,
        }
    }

    /// Ozeki's coarser availability: `available`, `away`, `busy` or `offline`.
    pub fn ozeki(self) -> &'static str {
        match self {
            Show::Chat | Show::Available => "available",
            Show::Away | Show::Xa => "away",
            Show::Dnd => "busy",
            Show::Offline => "offline",
        }
    }
}

/// A user's visible presence: `None` is unavailable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Availability {
    pub show: Show,
    pub status: Option<String>,
}

/// The subscription state of one side of a pair (RFC 6121 §2.1.2.5), coded as ofchat does.
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq, Default)]
pub enum Subscription {
    #[default]
    None,
    /// The owner receives the contact's presence.
    To,
    /// The contact receives the owner's presence.
    From,
    Both,
}

impl Subscription {
    /// ofchat's `subscriptionType`: 0 none, 1 to, 2 from, 3 both.
    pub fn code(self) -> i64 {
        match self {
            Subscription::None => 0,
            Subscription::To => 1,
            Subscription::From => 2,
            Subscription::Both => 3,
        }
    }

    /// RFC 6121's name: `none`, `to`, `from` or `both`.
    pub fn name(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        match code {
            0 => Some(Subscription::None),
            1 => Some(Subscription::To),
            2 => Some(Subscription::From),
            3 => Some(Subscription::Both),
            _ => None,
        }
    }

    pub(crate) fn from_flags(to: bool, from: bool) -> Self {
        match (to, from) {
            (false, false) => Subscription::None,
            (true, false) => Subscription::To,
            (false, true) => Subscription::From,
            (true, true) => Subscription::Both,
        }
    }

    /// The owner sees the contact's presence.
    pub fn has_to(self) -> bool {
        matches!(self, Subscription::To | Subscription::Both)
    }

    /// The contact sees the owner's presence.
    pub fn has_from(self) -> bool {
        matches!(self, Subscription::From | Subscription::Both)
    }

    pub(crate) fn with_to(self, to: bool) -> Self {
        Subscription::from_flags(to, self.has_from())
    }

    pub(crate) fn with_from(self, from: bool) -> Self {
        Subscription::from_flags(self.has_to(), from)
    }

    /// The same pair seen from the other side.
    pub(crate) fn mirrored(self) -> Self {
        Subscription::from_flags(self.has_from(), self.has_to())
    }
}

/// One side of a pair: what `owner` knows about `contact`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RosterItem {
    pub owner: String,
    pub contact: String,
    pub nickname: Option<String>,
    pub groups: Vec<String>,
    pub subscription: Subscription,
    /// The owner asked to see the contact's presence and waits for an answer.
    pub ask_out: bool,
    /// The contact asked to see the owner's presence and waits for the owner's answer.
    pub pending_in: bool,
    /// The owner approves a subscription request from the contact before it arrives.
    pub preapproved: bool,
    /// The item shows in the owner's contact list.
    pub listed: bool,
}

impl RosterItem {
    pub fn new(owner: &str, contact: &str) -> Self {
        RosterItem {
            owner: owner.to_owned(),
            contact: contact.to_owned(),
            nickname: None,
            groups: Vec::new(),
            subscription: Subscription::None,
            ask_out: false,
            pending_in: false,
            preapproved: false,
            listed: false,
        }
    }

    /// A row with nothing left in it is deleted rather than stored.
    pub fn is_empty(&self) -> bool {
        !self.listed
            && self.subscription == Subscription::None
            && !self.ask_out
            && !self.pending_in
            && !self.preapproved
    }
}

/// A subscription-type presence (RFC 6121 §3) to show to `to`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Subscribe => "subscribe",
            NoticeKind::Subscribed => "subscribed",
            NoticeKind::Unsubscribe => "unsubscribe",
            NoticeKind::Unsubscribed => "unsubscribed",
        }
    }
}

/// One side's row before and after a change (`None`: no row).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RowChange {
    pub owner: String,
    pub contact: String,
    pub before: Option<RosterItem>,
    pub after: Option<RosterItem>,
}

impl RowChange {
    fn subscription(row: &Option<RosterItem>) -> Subscription {
        row.as_ref().map_or(Subscription::None, |r| r.subscription)
    }

    pub fn subscription_before(&self) -> Subscription {
        Self::subscription(&self.before)
    }

    pub fn subscription_after(&self) -> Subscription {
        Self::subscription(&self.after)
    }
}

/// The outcome of one change: both rows and the notices to deliver after the commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transition {
    pub owner_side: RowChange,
    pub contact_side: RowChange,
    pub notices: Vec<Notice>,
}

/// A user's standing in a room (XEP-0045 §5.2), kept across visits.
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Whether this affiliation ranks above `other` (owner, admin, member, outcast).
    pub fn outranks(self, other: Affiliation) -> bool {
        let rank = |a| match a {
            Affiliation::Owner => 3,
            Affiliation::Admin => 2,
            Affiliation::Member => 1,
            Affiliation::Outcast => 0,
        };
        rank(self) > rank(other)
    }

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
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
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
    /// Users may register with the room (kept and shown; the server has no registration
    /// form).
    pub registration_enabled: bool,
    /// Participants (not only moderators) may change the subject (kept and shown).
    pub can_occupants_change_subject: bool,
    /// An occupant may take another nick while in the room.
    pub can_change_nickname: bool,
    /// Users may enter only with their user name as nick.
    pub login_restricted_to_nickname: bool,
    /// Messages are archived; without it they reach the occupants and the room's recent
    /// history but no archive (unless an external app is attached, whose deliveries need it).
    pub log_enabled: bool,
    /// The roles whose presence is broadcast (kept and shown).
    pub broadcast_presence_roles: Vec<String>,
    /// Who may send private messages to occupants: anyone, participants, moderators, none
    /// (kept and shown).
    #[serde(rename = "allowPM")]
    pub allow_pm: String,
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
            registration_enabled: true,
            can_occupants_change_subject: false,
            can_change_nickname: true,
            login_restricted_to_nickname: false,
            log_enabled: true,
            broadcast_presence_roles: vec!["moderator".into(), "participant".into(), "visitor".into()],
            allow_pm: "anyone".into(),
        }
    }
}

/// A MUC service the admin added (the REST API plugin's `MUCServiceEntity`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MucServiceRecord {
    pub name: String,
    pub description: String,
    pub hidden: bool,
}

/// A room as stored: its name, config and affiliations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RoomRecord {
    pub name: String,
    pub config: RoomConfig,
    pub affiliations: BTreeMap<String, Affiliation>,
    /// Affiliations held by user groups: every person of the group has it (a user's own
    /// affiliation comes first).
    pub group_affiliations: BTreeMap<String, Affiliation>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl RoomRecord {
    pub fn new(name: String, config: RoomConfig) -> Self {
        let now = crate::clock::now_ms();
        RoomRecord {
            name,
            config,
            affiliations: BTreeMap::new(),
            group_affiliations: BTreeMap::new(),
            created_ms: now,
            modified_ms: now,
        }
    }

    /// The groups with `affiliation`, sorted.
    pub fn groups_with(&self, affiliation: Affiliation) -> Vec<String> {
        self.group_affiliations.iter().filter(|(_, a)| **a == affiliation).map(|(g, _)| g.clone()).collect()
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
}

/// A workgroup's stored settings and agents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkgroupRecord {
    pub name: String,
    pub description: String,
    /// The user names of its agents.
    pub members: BTreeSet<String>,
    /// Groups whose people are agents too.
    pub member_groups: BTreeSet<String>,
    /// The admin's open flag: closed workgroups refuse visitors.
    pub open: bool,
    pub max_chats: u32,
    pub offer_timeout_ms: i64,
    pub request_timeout_ms: i64,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// One chat a workgroup set up: its room, who met there, and when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatRecord {
    pub room: String,
    pub workgroup: String,
    pub visitor: String,
    pub agent: String,
    pub question: String,
    pub email: String,
    pub started_ms: i64,
    pub ended_ms: Option<i64>,
}

/// What a visitor's request says of itself (question, e-mail, name), by field name: shown to
/// the agents it is offered to.
pub type RequestMetadata = BTreeMap<String, String>;

/// Why a visitor left the queue without a chat.
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub enum DepartReason {
    AgentNotFound,
    DepartureRequested,
}

impl DepartReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DepartReason::AgentNotFound => "agent-not-found",
            DepartReason::DepartureRequested => "departure-requested",
        }
    }
}

/// Why an offer was taken back.
#[derive(Debug, Clone, Serialize, Deserialize, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    TimedOut,
    UserCanceled,
}

impl RevokeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::TimedOut => "The offer has timed out",
            RevokeReason::UserCanceled => "User canceled",
        }
    }
}
