//! What people are called where someone knows better than their address: a web site's users
//! have the names and avatars their site tells (`model::sites`). One shared map from account
//! to display name, filled by the door that asks the sites and read by every door that
//! renders a person; an account it does not hold shows as its address alone.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// A person's name and picture, as their site gave them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DisplayName {
    pub name: String,
    /// An image URL.
    pub avatar: Option<String>,
}

/// Display names by account.
#[derive(Debug, Default)]
pub struct DisplayNames {
    known: RwLock<HashMap<String, Arc<DisplayName>>>,
}

impl DisplayNames {
    pub fn get(&self, username: &str) -> Option<Arc<DisplayName>> {
        self.known.read().unwrap_or_else(|p| p.into_inner()).get(username).cloned()
    }

    /// Sets one; false if it was already so.
    pub fn set(&self, username: &str, name: DisplayName) -> bool {
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if known.get(username).is_some_and(|n| **n == name) {
            return false;
        }
        known.insert(username.to_owned(), Arc::new(name));
        true
    }

    pub fn remove(&self, username: &str) {
        self.known.write().unwrap_or_else(|p| p.into_inner()).remove(username);
    }
}
