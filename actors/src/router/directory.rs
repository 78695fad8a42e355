//! `Directory`: the accounts that exist and every blocklist (XEP-0191), as plain data.
//!
//! The router checks it on every message, chat state, presence and subscription request,
//! for offline recipients too; it is loaded from the store at start-up and kept current as
//! accounts and blocks change (after their commits).

use std::collections::{HashMap, HashSet};

use crate::model::records::AccountKind;
use crate::route_error::RouteError;

/// Accounts and blocks.
#[derive(Debug, Default)]
pub struct Directory {
    accounts: HashSet<String>,
    /// The HTTP API users and apps among them: they hold no live station.
    stationless: HashSet<String>,
    /// App accounts → their app's id.
    apps: HashMap<String, String>,
    /// Blocker → the users it blocks.
    blocks: HashMap<String, HashSet<String>>,
}

impl Directory {
    /// The accounts in `accounts`, with the (blocker, blocked) pairs in `blocks`.
    pub fn new(
        accounts: impl IntoIterator<Item = (String, AccountKind)>,
        blocks: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut directory = Directory::default();
        for (username, kind) in accounts {
            directory.add(username, kind);
        }
        for (blocker, blocked) in blocks {
            directory.set_block(&blocker, &blocked, true);
        }
        directory
    }

    pub fn contains(&self, username: &str) -> bool {
        self.accounts.contains(username)
    }

    /// `Ok` if the account exists, `UnknownUser` otherwise.
    pub fn require(&self, username: &str) -> Result<(), RouteError> {
        if self.contains(username) {
            Ok(())
        } else {
            Err(RouteError::UnknownUser(username.to_owned()))
        }
    }

    /// Whether `username` is an HTTP API user or an app, which hold no live station.
    pub fn holds_no_station(&self, username: &str) -> bool {
        self.stationless.contains(username)
    }

    /// The app whose account `username` is.
    pub fn app_of(&self, username: &str) -> Option<&str> {
        self.apps.get(username).map(String::as_str)
    }

    /// Records (or, with `None`, forgets) which app an account belongs to.
    pub fn set_app(&mut self, username: &str, app_id: Option<String>) {
        match app_id {
            Some(id) => self.apps.insert(username.to_owned(), id),
            None => self.apps.remove(username),
        };
    }

    /// `Ok` if the account exists and may hold live stations; `UnknownUser`, or
    /// `NoLiveStation` for an HTTP API user.
    pub fn require_live(&self, username: &str) -> Result<(), RouteError> {
        self.require(username)?;
        if self.holds_no_station(username) {
            return Err(RouteError::NoLiveStation(username.to_owned()));
        }
        Ok(())
    }

    pub fn add(&mut self, username: String, kind: AccountKind) {
        if matches!(kind, AccountKind::Http | AccountKind::App) {
            self.stationless.insert(username.clone());
        }
        self.accounts.insert(username);
    }

    /// Forgets an account and every block that names it (the store dropped them too).
    pub fn remove(&mut self, username: &str) {
        self.accounts.remove(username);
        self.stationless.remove(username);
        self.apps.remove(username);
        self.blocks.remove(username);
        self.blocks.retain(|_, blocked| {
            blocked.remove(username);
            !blocked.is_empty()
        });
    }

    /// Whether `blocker` blocks `blocked`.
    pub fn blocks(&self, blocker: &str, blocked: &str) -> bool {
        self.blocks.get(blocker).is_some_and(|set| set.contains(blocked))
    }

    /// Whether either user blocks the other.
    pub fn blocked_either(&self, a: &str, b: &str) -> bool {
        self.blocks(a, b) || self.blocks(b, a)
    }

    /// Why `from` may not send to `to`, if a block stands between them (XEP-0191 §3.5).
    pub fn block_refusal(&self, from: &str, to: &str) -> Option<RouteError> {
        if self.blocks(to, from) {
            Some(RouteError::NotAccepting(to.to_owned()))
        } else if self.blocks(from, to) {
            Some(RouteError::YouBlocked(to.to_owned()))
        } else {
            None
        }
    }

    /// Adds (`on`) or removes a block.
    pub fn set_block(&mut self, blocker: &str, blocked: &str, on: bool) {
        if on {
            self.blocks.entry(blocker.to_owned()).or_default().insert(blocked.to_owned());
        } else if let Some(set) = self.blocks.get_mut(blocker) {
            set.remove(blocked);
            if set.is_empty() {
                self.blocks.remove(blocker);
            }
        }
    }

    /// The users `username` blocks, sorted.
    pub fn blocklist(&self, username: &str) -> Vec<String> {
        let mut list: Vec<String> =
            self.blocks.get(username).map(|set| set.iter().cloned().collect()).unwrap_or_default();
        list.sort_unstable();
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let names = ["ann", "bob", "eve"].map(|n| (n.to_owned(), AccountKind::User));
        Directory::new(names, [("ann".to_owned(), "eve".to_owned())])
    }

    #[test]
    fn accounts_are_known_until_removed() {
        let mut d = directory();
        assert!(d.contains("bob"));
        assert_eq!(d.require("zed"), Err(RouteError::UnknownUser("zed".into())));
        d.add("zed".into(), AccountKind::User);
        assert!(d.require("zed").is_ok());
        d.remove("zed");
        assert!(!d.contains("zed"));
    }

    #[test]
    fn an_http_user_receives_but_holds_no_live_station() {
        let mut d = directory();
        d.add("gateway".into(), AccountKind::Http);
        assert!(d.require("gateway").is_ok());
        assert_eq!(d.require_live("gateway"), Err(RouteError::NoLiveStation("gateway".into())));
        assert!(d.require_live("bob").is_ok());
        assert_eq!(d.require_live("zed"), Err(RouteError::UnknownUser("zed".into())));
        d.add("bot".into(), AccountKind::App);
        d.set_app("bot", Some("a1".into()));
        assert!(d.holds_no_station("bot"));
        assert_eq!(d.app_of("bot"), Some("a1"));
        d.remove("bot");
        assert_eq!(d.app_of("bot"), None);
    }

    #[test]
    fn a_block_refuses_both_ways_with_the_sides_named() {
        let d = directory();
        assert_eq!(d.block_refusal("eve", "ann"), Some(RouteError::NotAccepting("ann".into())));
        assert_eq!(d.block_refusal("ann", "eve"), Some(RouteError::YouBlocked("eve".into())));
        assert_eq!(d.block_refusal("ann", "bob"), None);
        assert!(d.blocked_either("eve", "ann") && d.blocked_either("ann", "eve"));
        assert!(!d.blocked_either("bob", "eve"));
    }

    #[test]
    fn blocklists_are_sorted_and_follow_changes_and_removals() {
        let mut d = directory();
        d.set_block("ann", "bob", true);
        assert_eq!(d.blocklist("ann"), vec!["bob", "eve"]);
        d.set_block("ann", "bob", false);
        assert_eq!(d.blocklist("ann"), vec!["eve"]);
        d.set_block("bob", "eve", true);
        d.remove("eve");
        assert!(d.blocklist("ann").is_empty() && d.blocklist("bob").is_empty());
        assert!(!d.blocked_either("ann", "eve"));
    }
}
