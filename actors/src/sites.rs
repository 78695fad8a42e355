//! `Sites`: the one way to add, change and remove a web site (`model::sites`), read without
//! a store call on every sign-in, and the accounts its users get.
//!
//! A site user's account is made on its first sign-in, of kind `Site`, with no password:
//! only the site's tokens sign it in. A name taken by another kind of account is refused,
//! so a site cannot sign in as a person who merely has a name of its shape.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::accounts::Accounts;
use crate::model::records::{AccountKind, NewUser};
use crate::model::sites::{site_username, SiteRecord};
use crate::storage::{SiteStorage, Storage, StoreError, StoreResult};

/// Why a site user could not be signed in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SiteUserError {
    #[error("{0}")]
    BadUserId(String),
    #[error("the account name '{0}' belongs to an account that is not this site's user")]
    NameTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The sites, kept in memory and written through to the store.
#[derive(Clone)]
pub struct Sites {
    storage: Arc<dyn SiteStorage>,
    accounts: Accounts,
    known: Arc<RwLock<BTreeMap<String, Arc<SiteRecord>>>>,
}

impl Sites {
    /// Every stored site.
    pub async fn load(storage: &Storage, accounts: Accounts) -> StoreResult<Sites> {
        let all = storage.sites.all_sites().await?;
        let known = all.into_iter().map(|s| (s.id.clone(), Arc::new(s))).collect();
        Ok(Sites { storage: storage.sites.clone(), accounts, known: Arc::new(RwLock::new(known)) })
    }

    pub fn get(&self, id: &str) -> Option<Arc<SiteRecord>> {
        self.read().get(id).cloned()
    }

    /// Every site, by id.
    pub fn list(&self) -> Vec<Arc<SiteRecord>> {
        self.read().values().cloned().collect()
    }

    /// `Conflict` if the id is taken.
    pub async fn create(&self, site: SiteRecord) -> StoreResult<()> {
        self.storage.create_site(site.clone()).await?;
        self.write().insert(site.id.clone(), Arc::new(site));
        Ok(())
    }

    /// Replaces a site's settings (its id and creation time stay); `NotFound` if unknown.
    pub async fn update(&self, site: SiteRecord) -> StoreResult<()> {
        self.storage.update_site(site.clone()).await?;
        let mut known = self.write();
        let created_ms = known.get(&site.id).map_or(site.created_ms, |s| s.created_ms);
        known.insert(site.id.clone(), Arc::new(SiteRecord { created_ms, ..site }));
        Ok(())
    }

    /// False if there was none. Its users' accounts and history stay; their tokens stop
    /// working with it.
    pub async fn delete(&self, id: &str) -> StoreResult<bool> {
        let deleted = self.storage.delete_site(id.to_owned()).await?;
        self.write().remove(id);
        Ok(deleted)
    }

    /// The account of user `user_id` of `site`, made on first use: its name, and whether the
    /// admin locked it out.
    pub async fn site_user(&self, site: &str, user_id: &str) -> Result<(String, bool), SiteUserError> {
        let username = site_username(site, user_id).map_err(SiteUserError::BadUserId)?;
        for _ in 0..2 {
            match self.accounts.find(&username).await? {
                Some(account) if account.kind == AccountKind::Site => return Ok((username, account.locked)),
                Some(_) => return Err(SiteUserError::NameTaken(username)),
                None => {}
            }
            let account = NewUser {
                username: username.clone(),
                kind: AccountKind::Site,
                password_hash: String::new(),
                name: user_id.to_owned(),
                email: String::new(),
                properties: Vec::new(),
                scram: Vec::new(),
            };
            match self.accounts.create(account).await {
                Ok(()) => return Ok((username, false)),
                // Another sign-in made it first: read it again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(SiteUserError::NameTaken(username))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<SiteRecord>>> {
        self.known.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<SiteRecord>>> {
        self.known.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
