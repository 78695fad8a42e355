//! `Accounts`: the one way to create, change, read and delete an account. A change is one
//! core operation: the store writes it, then the router's directory follows (a new account
//! can receive at once; a deleted one ends its stations and disappears from every roster).

use std::sync::Arc;

use actix::Addr;

use crate::model::records::{NewUser, RosterItem, UserRecord, UserUpdate};
use crate::route_error::RouteError;
use crate::router::{Kick, Router, UserAdded, UserRemoved};
use crate::storage::{AccountStorage, RosterStorage, Storage, StoreResult};

/// Accounts, their properties and (for the admin) their rosters.
#[derive(Clone)]
pub struct Accounts {
    accounts: Arc<dyn AccountStorage>,
    rosters: Arc<dyn RosterStorage>,
    router: Addr<Router>,
}

impl Accounts {
    pub fn new(storage: &Storage, router: Addr<Router>) -> Accounts {
        Accounts { accounts: storage.accounts.clone(), rosters: storage.rosters.clone(), router }
    }

    /// Creates an account (`Conflict` if the name is taken); the router knows it once this
    /// resolves.
    pub async fn create(&self, user: NewUser) -> StoreResult<()> {
        let (username, kind) = (user.username.clone(), user.kind);
        self.accounts.create_user(user).await?;
        // Sent before answering: the next message the caller sends finds the account.
        self.router.do_send(UserAdded { username, kind });
        Ok(())
    }

    pub async fn update(&self, update: UserUpdate) -> StoreResult<()> {
        self.accounts.update_user(update).await
    }

    /// Deletes an account; its stations have ended and its contacts forgot it when this
    /// resolves.
    pub async fn delete(&self, username: String) -> Result<(), RouteError> {
        self.accounts.delete_user(username.clone()).await?;
        self.router
            .send(UserRemoved { username: username.clone() })
            .await
            .map_err(|_| RouteError::Offline(username))?;
        Ok(())
    }

    pub async fn find(&self, username: &str) -> StoreResult<Option<UserRecord>> {
        self.accounts.find_user(username.to_owned()).await
    }

    /// The account with this e-mail address (case and surrounding spaces aside).
    pub async fn find_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        self.accounts.find_user_by_email(email.to_owned()).await
    }

    /// Accounts matching `search` (user name, name or e-mail), at most `limit`.
    pub async fn list(&self, search: Option<String>, limit: Option<usize>) -> StoreResult<Vec<UserRecord>> {
        self.accounts.list_users(search, limit).await
    }

    pub async fn set_property(&self, username: String, key: String, value: String) -> StoreResult<()> {
        self.accounts.set_property(username, key, value).await
    }

    pub async fn delete_property(&self, username: String, key: String) -> StoreResult<()> {
        self.accounts.delete_property(username, key).await
    }

    /// Locks an account out (its live stations end) or lets it in again.
    pub async fn set_locked(&self, username: &str, locked: bool) -> Result<(), RouteError> {
        self.accounts.set_locked(username.to_owned(), locked).await?;
        if locked {
            let kick = Kick { username: username.to_owned(), reason: "the account is locked out".into() };
            self.router.send(kick).await.map_err(|_| RouteError::Offline(username.to_owned()))?;
        }
        Ok(())
    }

    /// The system properties the admin API keeps (none of which the server reads).
    pub async fn system_properties(&self) -> StoreResult<Vec<(String, String)>> {
        self.accounts.system_properties().await
    }

    /// Sets a system property; true if it was new.
    pub async fn put_system_property(&self, key: String, value: String) -> StoreResult<bool> {
        self.accounts.put_system_property(key, value).await
    }

    pub async fn delete_system_property(&self, key: String) -> StoreResult<bool> {
        self.accounts.delete_system_property(key).await
    }

    /// The user's vCard (vcard-temp XML).
    pub async fn vcard(&self, username: &str) -> StoreResult<Option<String>> {
        self.accounts.vcard(username.to_owned()).await
    }

    /// Stores or removes a vCard; false if there was none to remove.
    pub async fn put_vcard(&self, username: &str, vcard: Option<String>) -> StoreResult<bool> {
        self.accounts.put_vcard(username.to_owned(), vcard).await
    }

    /// Every roster row an account holds, online or not (the admin's view).
    pub async fn roster(&self, username: String) -> StoreResult<Vec<RosterItem>> {
        self.rosters.roster(username).await
    }
}
