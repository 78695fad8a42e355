//! `Apps`: the one way to create, change, read and delete an external app. An app and its
//! account (of kind `app`) are made and removed together, and the router's directory follows
//! (what users send the account goes to the app's outbox).

use std::sync::Arc;

use actix::Addr;

use crate::model::apps::{AppChat, AppRecord, ChatKind, Delivery, DeliveryState};
use crate::model::records::{AccountKind, NewUser};
use crate::muc::conference::{Conference, WatchRoom};
use crate::route_error::RouteError;
use crate::router::{AppKnown, Router, UserAdded, UserRemoved};
use crate::storage::{AppStorage, Storage, StoreResult};

/// An app account's password hash: no password matches it, so nobody signs in as the app.
const NO_PASSWORD: &str = "!app";

#[derive(Clone)]
pub struct Apps {
    apps: Arc<dyn AppStorage>,
    router: Addr<Router>,
    conference: Addr<Conference>,
}

impl Apps {
    pub fn new(storage: &Storage, router: Addr<Router>, conference: Addr<Conference>) -> Apps {
        Apps { apps: storage.apps.clone(), router, conference }
    }

    /// Tells the router which accounts are apps (at start-up).
    pub async fn announce_all(&self) -> StoreResult<()> {
        for app in self.apps.all_apps().await? {
            self.router.do_send(AppKnown { username: app.name, app_id: Some(app.id) });
        }
        Ok(())
    }

    /// Creates the app and its account; `Conflict` if the name is an account's already.
    pub async fn create(&self, app: AppRecord) -> StoreResult<()> {
        let account = NewUser {
            username: app.name.clone(),
            kind: AccountKind::App,
            password_hash: NO_PASSWORD.to_owned(),
            name: app.name.clone(),
            email: String::new(),
            properties: Vec::new(),
            scram: Vec::new(),
        };
        let (name, id) = (app.name.clone(), app.id.clone());
        self.apps.create_app(app, account).await?;
        self.router.do_send(UserAdded { username: name.clone(), kind: AccountKind::App });
        self.router.do_send(AppKnown { username: name, app_id: Some(id) });
        Ok(())
    }

    pub async fn update(&self, app: AppRecord) -> StoreResult<()> {
        self.apps.update_app(app).await
    }

    /// Deletes the app, its account, chats and deliveries; false if there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, RouteError> {
        let Some(app) = self.apps.app(id.to_owned()).await? else { return Ok(false) };
        self.apps.delete_app(id.to_owned()).await?;
        self.router
            .send(UserRemoved { username: app.name.clone() })
            .await
            .map_err(|_| RouteError::Offline(app.name))?;
        Ok(true)
    }

    pub async fn find(&self, id: &str) -> StoreResult<Option<AppRecord>> {
        self.apps.app(id.to_owned()).await
    }

    pub async fn by_token(&self, digest: Vec<u8>) -> StoreResult<Option<AppRecord>> {
        self.apps.app_by_token(digest).await
    }

    pub async fn all(&self) -> StoreResult<Vec<AppRecord>> {
        self.apps.all_apps().await
    }

    pub async fn open_chat(
        &self,
        app_id: &str,
        kind: ChatKind,
        peer: &str,
        new_chat_id: String,
    ) -> StoreResult<AppChat> {
        self.apps.open_chat(app_id.to_owned(), kind, peer.to_owned(), new_chat_id).await
    }

    /// Attaches the app to a room (a chat of its own); the room archives its messages with
    /// the app's deliveries from then on.
    pub async fn attach_room(&self, app_id: &str, room: &str, new_chat_id: String) -> StoreResult<AppChat> {
        let chat = self.apps.open_chat(app_id.to_owned(), ChatKind::Room, room.to_owned(), new_chat_id).await?;
        self.conference.do_send(WatchRoom { room: room.to_owned(), watched: true });
        Ok(chat)
    }

    /// Detaches the app from a room; false if it was not attached.
    pub async fn detach_room(&self, app_id: &str, room: &str) -> StoreResult<bool> {
        let closed = self.apps.close_chat(app_id.to_owned(), ChatKind::Room, room.to_owned()).await?;
        let still = self.apps.watched_rooms().await?.iter().any(|r| r == room);
        self.conference.do_send(WatchRoom { room: room.to_owned(), watched: still });
        Ok(closed)
    }

    /// Tells the conference which rooms apps watch (at start-up).
    pub async fn announce_rooms(&self) -> StoreResult<()> {
        for room in self.apps.watched_rooms().await? {
            self.conference.do_send(WatchRoom { room, watched: true });
        }
        Ok(())
    }

    pub async fn chat(&self, chat_id: &str) -> StoreResult<Option<AppChat>> {
        self.apps.chat(chat_id.to_owned()).await
    }

    pub async fn chats(&self, app_id: &str, offset: usize, limit: usize) -> StoreResult<Vec<AppChat>> {
        self.apps.chats(app_id.to_owned(), offset, limit).await
    }

    pub async fn deliveries(
        &self,
        app_id: &str,
        state: Option<DeliveryState>,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        self.apps.deliveries(app_id.to_owned(), state, limit).await
    }

    pub async fn replay(&self, app_id: &str, seq: Option<i64>) -> StoreResult<usize> {
        self.apps.replay_deliveries(app_id.to_owned(), seq).await
    }

    pub async fn outbox_depth(&self) -> StoreResult<(u64, Option<i64>)> {
        self.apps.outbox_depth().await
    }
}
