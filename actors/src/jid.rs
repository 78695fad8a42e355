//! Addresses: user names, bare and full JIDs, and the Ozeki spellings of them.
//!
//! Every door parses the addresses it receives here, once, and the core only ever sees
//! these types. Rules: `specs/openfire.md` §2 (ofchat uses `user@domain/resource`) and
//! `specs/vendor_apis.md` (Ozeki writes `user@domain@station`, `%` meaning every station).

use std::fmt;

/// Longest user name accepted (RFC 7622 allows 1023 bytes; 64 keeps ids readable).
pub const MAX_USERNAME_LEN: usize = 64;
/// Longest resource (station name) accepted.
pub const MAX_RESOURCE_LEN: usize = 128;

/// Why a user name was refused; the message names the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    #[error("username must not be empty")]
    Empty,
    #[error("username must be at most {MAX_USERNAME_LEN} characters")]
    TooLong,
    #[error("username may contain only lowercase letters a-z, digits 0-9 and '.', '_', '-' (found {0:?})")]
    BadCharacter(char),
    #[error("username must start with a lowercase letter or a digit")]
    BadStart,
}

/// A validated local user name (the node part of a JID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Username(String);

impl Username {
    /// Parses a user name: lowercase ASCII letters, digits, `.`, `_` and `-`, starting with a
    /// letter or digit. Lowercase-only keeps JID comparison a byte comparison (nodeprep).
    pub fn parse(raw: &str) -> Result<Self, UsernameError> {
        if raw.is_empty() {
            return Err(UsernameError::Empty);
        }
        if raw.chars().count() > MAX_USERNAME_LEN {
            return Err(UsernameError::TooLong);
        }
        if let Some(bad) =
            raw.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
        {
            return Err(UsernameError::BadCharacter(bad));
        }
        let first = raw.chars().next().expect("checked non-empty above");
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(UsernameError::BadStart);
        }
        Ok(Username(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("invalid user in address: {0}")]
    User(#[from] UsernameError),
    #[error("address domain {0:?} is not served here")]
    ForeignDomain(String),
    #[error("resource must be 1 to {MAX_RESOURCE_LEN} characters without '/' or '@'")]
    BadResource,
}

/// A user address on this server: `user@domain`, optionally with a resource (one station).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Jid {
    pub user: Username,
    pub resource: Option<String>,
}

impl Jid {
    pub fn bare(user: Username) -> Self {
        Jid { user, resource: None }
    }

    pub fn full(user: Username, resource: String) -> Self {
        Jid { user, resource: Some(resource) }
    }

    /// Parses a recipient as the doors accept it: `bob`, `bob@domain`, `bob@domain/res`,
    /// and the Ozeki forms `bob@domain@station` and `bob@domain@%` (every station).
    pub fn parse(raw: &str, domain: &str) -> Result<Self, AddressError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(AddressError::Empty);
        }
        let (local, rest) = match raw.split_once('@') {
            Some((local, rest)) => (local, Some(rest)),
            None => (raw, None),
        };
        let user = Username::parse(local)?;
        let Some(rest) = rest else {
            return Ok(Jid::bare(user));
        };
        // Ozeki: user@domain@station, where '%' addresses all stations.
        let (host, resource) = if let Some((host, station)) = rest.split_once('@') {
            (host, if station == "%" { None } else { Some(station) })
        } else if let Some((host, res)) = rest.split_once('/') {
            (host, Some(res))
        } else {
            (rest, None)
        };
        if !host.eq_ignore_ascii_case(domain) {
            return Err(AddressError::ForeignDomain(host.to_owned()));
        }
        match resource {
            None => Ok(Jid::bare(user)),
            Some(res) => Ok(Jid::full(user, parse_resource(res)?)),
        }
    }

    /// Renders the address with the server's domain: `user@domain[/resource]`.
    pub fn render(&self, domain: &str) -> String {
        match &self.resource {
            Some(res) => format!("{}@{}/{}", self.user, domain, res),
            None => format!("{}@{}", self.user, domain),
        }
    }
}

fn parse_resource(raw: &str) -> Result<String, AddressError> {
    if raw.is_empty() || raw.chars().count() > MAX_RESOURCE_LEN || raw.contains(['/', '@']) {
        return Err(AddressError::BadResource);
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Username {
        Username::parse(name).unwrap()
    }

    #[test]
    fn usernames_follow_the_documented_rules() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("a.b_c-9").is_ok());
        assert_eq!(Username::parse(""), Err(UsernameError::Empty));
        assert_eq!(Username::parse("Alice"), Err(UsernameError::BadCharacter('A')));
        assert_eq!(Username::parse("al ice"), Err(UsernameError::BadCharacter(' ')));
        assert_eq!(Username::parse("_x"), Err(UsernameError::BadStart));
        assert_eq!(Username::parse(&"a".repeat(65)), Err(UsernameError::TooLong));
    }

    #[test]
    fn every_recipient_spelling_parses() {
        let d = "example.org";
        assert_eq!(Jid::parse("bob", d).unwrap(), Jid::bare(user("bob")));
        assert_eq!(Jid::parse("bob@example.org", d).unwrap(), Jid::bare(user("bob")));
        assert_eq!(Jid::parse("bob@example.org/phone", d).unwrap(), Jid::full(user("bob"), "phone".into()));
        assert_eq!(Jid::parse("bob@example.org@desk", d).unwrap(), Jid::full(user("bob"), "desk".into()));
        assert_eq!(Jid::parse("bob@example.org@%", d).unwrap(), Jid::bare(user("bob")));
        assert_eq!(Jid::parse("bob@EXAMPLE.org", d).unwrap(), Jid::bare(user("bob")));
    }

    #[test]
    fn foreign_domains_and_bad_parts_are_refused() {
        let d = "example.org";
        assert_eq!(Jid::parse("bob@elsewhere.net", d), Err(AddressError::ForeignDomain("elsewhere.net".into())));
        assert_eq!(Jid::parse("", d), Err(AddressError::Empty));
        assert!(matches!(Jid::parse("Bob", d), Err(AddressError::User(_))));
        assert_eq!(Jid::parse("bob@example.org/", d), Err(AddressError::BadResource));
    }

    #[test]
    fn rendering_uses_the_server_domain() {
        assert_eq!(Jid::bare(user("bob")).render("d"), "bob@d");
        assert_eq!(Jid::full(user("bob"), "r1".into()).render("d"), "bob@d/r1");
    }
}
