//! Typed addresses of the things events travel between, and the hosts they render with.
//!
//! The core names a sender or recipient by what it is (a user's station, a room occupant, a
//! workgroup's visitor), never by a string a door built. Every door renders an [`Address`]
//! with the server's [`Hosts`] the same way, so `ann@example.org/desk` is the same text on
//! SSE, `/ws` and XMPP.

use std::fmt;
use std::sync::Arc;

use super::names::DisplayNames;

/// The hosts the server answers for: users on `domain`, rooms on `conference`, workgroups
/// on `workgroup`.
#[derive(Debug, Clone)]
pub struct Hosts {
    pub domain: String,
    pub conference: String,
    pub workgroup: String,
    /// What people are called beside their address (site users' names and avatars).
    pub names: Arc<DisplayNames>,
}

impl PartialEq for Hosts {
    fn eq(&self, other: &Hosts) -> bool {
        (&self.domain, &self.conference, &self.workgroup) == (&other.domain, &other.conference, &other.workgroup)
    }
}

impl Hosts {
    /// The usual layout: `conference.{domain}` and `workgroup.{domain}`, with the MUC
    /// service's subdomain given.
    pub fn new(domain: &str, muc_service: &str) -> Hosts {
        Hosts {
            domain: domain.to_owned(),
            conference: format!("{muc_service}.{domain}"),
            workgroup: format!("workgroup.{domain}"),
            names: Arc::default(),
        }
    }

    /// `address` as text.
    pub fn render(&self, address: &Address) -> String {
        address.display(self).to_string()
    }
}

/// Who an event is from or to.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq, Hash)]
pub enum Address {
    /// The server itself: `domain`.
    Server,
    /// A user (`user@domain`) or one of its stations (`user@domain/resource`).
    User { user: String, resource: Option<String> },
    /// A room (`room@conference`) or an occupant (`room@conference/nick`).
    Room { room: String, nick: Option<String> },
    /// A workgroup (`name@workgroup`) or one of its visitors (`name@workgroup/userID`).
    Workgroup { workgroup: String, visitor: Option<String> },
}

impl Address {
    pub fn user(user: impl Into<String>) -> Address {
        Address::User { user: user.into(), resource: None }
    }

    pub fn station(user: impl Into<String>, resource: Option<String>) -> Address {
        Address::User { user: user.into(), resource }
    }

    pub fn room(room: impl Into<String>) -> Address {
        Address::Room { room: room.into(), nick: None }
    }

    pub fn occupant(room: impl Into<String>, nick: impl Into<String>) -> Address {
        Address::Room { room: room.into(), nick: Some(nick.into()) }
    }

    pub fn workgroup(workgroup: impl Into<String>) -> Address {
        Address::Workgroup { workgroup: workgroup.into(), visitor: None }
    }

    pub fn visitor(workgroup: impl Into<String>, user_id: impl Into<String>) -> Address {
        Address::Workgroup { workgroup: workgroup.into(), visitor: Some(user_id.into()) }
    }

    /// The address as text with `hosts`, for `write!` and `format!`.
    pub fn display<'a>(&'a self, hosts: &'a Hosts) -> impl fmt::Display + 'a {
        Shown { address: self, hosts }
    }
}

impl From<&crate::jid::Jid> for Address {
    fn from(jid: &crate::jid::Jid) -> Address {
        Address::User { user: jid.user.as_str().to_owned(), resource: jid.resource.clone() }
    }
}

struct Shown<'a> {
    address: &'a Address,
    hosts: &'a Hosts,
}

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (local, host, last) = match self.address {
            Address::Server => return f.write_str(&self.hosts.domain),
            Address::User { user, resource } => (user, &self.hosts.domain, resource),
            Address::Room { room, nick } => match room.split_once('@') {
                // A room on another MUC service: its key is `name@service`.
                Some((name, service)) => {
                    write!(f, "{name}@{service}.{}", self.hosts.domain)?;
                    return match nick {
                        Some(nick) => write!(f, "/{nick}"),
                        None => Ok(()),
                    };
                }
                None => (room, &self.hosts.conference, nick),
            },
            Address::Workgroup { workgroup, visitor } => (workgroup, &self.hosts.workgroup, visitor),
        };
        f.write_str(local)?;
        f.write_str("@")?;
        f.write_str(host)?;
        if let Some(last) = last {
            f.write_str("/")?;
            f.write_str(last)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_address_renders_on_its_host() {
        let hosts = Hosts::new("d", "conference");
        assert_eq!(hosts.render(&Address::Server), "d");
        assert_eq!(hosts.render(&Address::user("ann")), "ann@d");
        assert_eq!(hosts.render(&Address::station("ann", Some("r1".into()))), "ann@d/r1");
        assert_eq!(hosts.render(&Address::room("hall")), "hall@conference.d");
        assert_eq!(hosts.render(&Address::occupant("hall", "Ann B")), "hall@conference.d/Ann B");
        assert_eq!(hosts.render(&Address::workgroup("sales")), "sales@workgroup.d");
        assert_eq!(hosts.render(&Address::visitor("sales", "v1")), "sales@workgroup.d/v1");
        assert_eq!(Hosts::new("d", "rooms").conference, "rooms.d");
        assert_eq!(hosts.render(&Address::occupant("hall@games", "ann")), "hall@games.d/ann");
    }
}
