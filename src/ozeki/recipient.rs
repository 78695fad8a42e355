//! Ozeki recipients (`Recipient`, `to_address`): a user name, `user@domain`, an e-mail
//! address, each optionally followed by `@<station>` (one station of the user) or `@%`
//! (all of them, as is the bare name); also the XMPP spelling `user@domain/station`.

use switchboard_actors::jid::{Jid, Username};

/// Which account a recipient names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    Login(Username),
    /// An e-mail address, to be looked up.
    Email(String),
}

/// A parsed recipient: an account, and one station of it or (`None`) all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub account: Account,
    pub station: Option<String>,
}

/// Longest station id accepted, in bytes.
const MAX_STATION_BYTES: usize = 256;

/// Parses a recipient as written to this server (`domain`); the error says what is wrong.
pub fn parse(raw: &str, domain: &str) -> Result<Recipient, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("no recipient given".to_owned());
    }
    if raw.contains('/') {
        let jid = Jid::parse(raw, domain).map_err(|e| format!("recipient {raw:?}: {e}"))?;
        return Ok(Recipient { account: Account::Login(jid.user), station: jid.resource });
    }
    let parts: Vec<&str> = raw.split('@').collect();
    let (account, station) = match parts.as_slice() {
        [name] => (login(name, raw)?, None),
        [name, "%"] => (login(name, raw)?, None),
        [name, host] => (account(name, host, domain, raw)?, None),
        [name, host, station] => (account(name, host, domain, raw)?, station_part(station, raw)?),
        _ => return Err(format!("recipient {raw:?} has too many '@' (user@domain@station at most)")),
    };
    Ok(Recipient { account, station })
}

fn login(name: &str, raw: &str) -> Result<Account, String> {
    let name = name.trim().to_lowercase();
    Username::parse(&name).map(Account::Login).map_err(|e| format!("recipient {raw:?}: {e}"))
}

/// `name@host`: a login of this server's domain, otherwise an e-mail address.
fn account(name: &str, host: &str, domain: &str, raw: &str) -> Result<Account, String> {
    if host.eq_ignore_ascii_case(domain) {
        return login(name, raw);
    }
    if name.is_empty() || host.is_empty() {
        return Err(format!("recipient {raw:?}: an empty part around '@'"));
    }
    Ok(Account::Email(format!("{name}@{host}")))
}

fn station_part(station: &str, raw: &str) -> Result<Option<String>, String> {
    match station {
        "%" => Ok(None),
        "" => Err(format!("recipient {raw:?}: the station after the last '@' is empty (use % for all)")),
        s if s.len() > MAX_STATION_BYTES || s.chars().any(|c| c.is_control() || c.is_whitespace()) => {
            Err(format!("recipient {raw:?}: the station must be at most {MAX_STATION_BYTES} bytes, no spaces"))
        }
        s => Ok(Some(s.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login_of(name: &str, station: Option<&str>) -> Recipient {
        Recipient { account: Account::Login(Username::parse(name).unwrap()), station: station.map(str::to_owned) }
    }

    #[test]
    fn every_spelling_names_an_account_and_its_stations() {
        let d = "localhost";
        assert_eq!(parse("bob", d), Ok(login_of("bob", None)));
        assert_eq!(parse(" Bob@localhost ", d), Ok(login_of("bob", None)));
        assert_eq!(parse("bob@localhost@%", d), Ok(login_of("bob", None)));
        assert_eq!(parse("bob@%", d), Ok(login_of("bob", None)));
        assert_eq!(parse("bob@localhost@phone", d), Ok(login_of("bob", Some("phone"))));
        assert_eq!(parse("bob@localhost/phone", d), Ok(login_of("bob", Some("phone"))));
        let email = parse("Bob@Example.org@%", d).unwrap();
        assert_eq!(email, Recipient { account: Account::Email("Bob@Example.org".into()), station: None });
        let email = parse("bob@example.org@desk", d).unwrap();
        assert_eq!(email.station.as_deref(), Some("desk"));
    }

    #[test]
    fn malformed_recipients_say_what_is_wrong() {
        let d = "localhost";
        assert!(parse("", d).unwrap_err().contains("no recipient"));
        assert!(parse("a@b@c@d", d).unwrap_err().contains("too many"));
        assert!(parse("bob@localhost@", d).unwrap_err().contains("empty"));
        assert!(parse("b b@localhost", d).is_err());
        assert!(parse("@example.org", d).unwrap_err().contains("empty part"));
    }
}
