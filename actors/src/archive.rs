//! `Archive`: what was said, for reading: a user's 1:1 history and replay, a room's
//! transcript, a workgroup's chats.

use std::sync::Arc;

use crate::model::records::{ChatRecord, HistoryQuery, RoomHistoryQuery};
use crate::model::{RoomMessage, StoredMessage};
use crate::storage::{MessageStorage, RoomStorage, Storage, StoreResult, WorkgroupStorage};

/// The read side of the message archive.
#[derive(Clone)]
pub struct Archive {
    messages: Arc<dyn MessageStorage>,
    rooms: Arc<dyn RoomStorage>,
    workgroups: Arc<dyn WorkgroupStorage>,
}

impl Archive {
    pub fn new(storage: &Storage) -> Archive {
        Archive {
            messages: storage.messages.clone(),
            rooms: storage.rooms.clone(),
            workgroups: storage.workgroups.clone(),
        }
    }

    /// A user's 1:1 messages, sent and received, as the query narrows them.
    pub async fn history(&self, query: HistoryQuery) -> StoreResult<Vec<StoredMessage>> {
        self.messages.history(query).await
    }

    /// Messages `username` received after message `after_id` (SSE `Last-Event-ID`).
    pub async fn received_since(
        &self,
        username: String,
        after_id: i64,
        limit: usize,
    ) -> StoreResult<Vec<StoredMessage>> {
        self.messages.received_since(username, after_id, limit).await
    }

    /// What waits for `username` (no station has taken it yet), oldest first.
    pub async fn waiting_for(&self, username: String) -> StoreResult<Vec<StoredMessage>> {
        self.messages.pending_for(username).await
    }

    /// The newest `limit` messages of a room since `since_ms`, oldest first.
    pub async fn room_messages(&self, room: String, since_ms: i64, limit: usize) -> StoreResult<Vec<RoomMessage>> {
        self.room_history(RoomHistoryQuery { room, start_ms: since_ms, limit, ..Default::default() }).await
    }

    /// A page of a room's archive.
    pub async fn room_history(&self, query: RoomHistoryQuery) -> StoreResult<Vec<RoomMessage>> {
        self.rooms.room_messages(query).await
    }

    /// A page back through a room: the newest `limit` messages since `since_ms` older than
    /// message `before` (all, without it), oldest first.
    pub async fn room_messages_before(
        &self,
        room: String,
        since_ms: i64,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<RoomMessage>> {
        self.room_history(RoomHistoryQuery { room, start_ms: since_ms, before, limit, ..Default::default() }).await
    }

    /// A workgroup's chats, newest first.
    pub async fn workgroup_chats(&self, workgroup: String, limit: usize) -> StoreResult<Vec<ChatRecord>> {
        self.workgroups.workgroup_chats(workgroup, limit).await
    }

    /// The chat a workgroup set up in `room`.
    pub async fn workgroup_chat(&self, room: String) -> StoreResult<Option<ChatRecord>> {
        self.workgroups.workgroup_chat(room).await
    }
}
