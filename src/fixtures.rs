//! Sample events the door renderers' tests share, so that each door's golden output is
//! checked against the same values.

use std::sync::Arc;

use serde_json::json;
use switchboard_actors::model::event::OccupantPresence;
use switchboard_actors::model::records::{Affiliation, Role};
use switchboard_actors::model::{MessageKind, RoomMessage};
use switchboard_actors::{Hosts, StoredMessage};

/// Users on `d`, rooms on `conference.d`, workgroups on `workgroup.d`.
pub fn hosts() -> Hosts {
    Hosts::new("d", "conference")
}

/// Message 7, from `ann@d/r1` to `bob@d`, at 1 s, carrying `{"n":1}` as data.
pub fn stored_message(body: &str) -> Arc<StoredMessage> {
    Arc::new(StoredMessage {
        id: 7,
        stamp_ms: 1_000,
        kind: MessageKind::Chat,
        from_user: "ann".into(),
        from_resource: Some("r1".into()),
        to_user: "bob".into(),
        to_resource: None,
        body: body.into(),
        data: Some(json!({"n": 1})),
        deliver_to: None,
        expires_ms: None,
    })
}

/// Room message 9 in `hall`, from the occupant `Ann`, at 2 s.
pub fn room_message() -> Arc<RoomMessage> {
    Arc::new(RoomMessage {
        id: 9,
        room: "hall".into(),
        stamp_ms: 2_000,
        nick: "Ann".into(),
        from_user: "ann".into(),
        body: "hello".into(),
        data: None,
    })
}

/// `ann` (station `r1`) in `hall` as `Ann`, with `role` and `affiliation`, her address visible.
pub fn occupant(role: Role, affiliation: Option<Affiliation>) -> OccupantPresence {
    OccupantPresence {
        room: "hall".into(),
        nick: "Ann".into(),
        user: "ann".into(),
        resource: "r1".into(),
        jid_visible: true,
        available: true,
        role,
        affiliation,
        reason: None,
        new_nick: None,
    }
}
