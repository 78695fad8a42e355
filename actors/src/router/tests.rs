//! The router's handlers driven as actors, over a real store in a temporary directory.

use std::time::Duration;

use std::sync::Arc;

use actix::prelude::*;

use super::hub::{CoreConfig, Router};
use super::roster::ChangeRoster;
use super::streams::Attach;
use crate::model::records::AccountKind;
use crate::roster::RosterOp;
use crate::roster::Subscription;
use crate::storage::{AccountStorage, Storage};
use crate::store::Store;
use crate::store::StoreOptions;
use crate::test_support::{first_matching, recorder, test_user, Inbox};

async fn attach(router: &Addr<Router>, username: &str) -> Inbox {
    let (seen, connection) = recorder();
    let attach = Attach { username: username.into(), stream_id: None, resource: None, connection, door: "test" };
    router.send(attach).await.unwrap().unwrap();
    seen
}

#[actix_rt::test]
async fn a_presence_change_is_rendered_once_for_all_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    for name in names.iter().chain([&"ann".to_owned()]) {
        store.create_user(test_user(name)).await.unwrap();
    }
    let config = CoreConfig {
        domain: "d".into(),
        stream_idle_timeout: Duration::from_secs(60),
        max_connections_per_user: 4,
        roster_auto_accept: false,
    };
    let mut everyone = names.clone();
    everyone.push("ann".into());
    let muc = crate::muc::MucOptions {
        domain: "d".into(),
        service: "conference".into(),
        history: 0,
        users_can_create: false,
        extra_services: Default::default(),
    };
    let storage = Storage::on(store);
    let conference = crate::muc::conference::Conference::new(muc, storage.rooms.clone(), vec![]).start();
    let everyone = everyone.into_iter().map(|n| (n, AccountKind::User)).collect();
    let router = Router::new(config, storage, conference, everyone, vec![], Arc::default()).start();
    for name in &names {
        let op =
            RosterOp::AdminSet { create: true, nickname: None, groups: vec![], subscription: Some(Subscription::Both) };
        router.send(ChangeRoster { owner: "ann".into(), contact: name.clone(), op }).await.unwrap().unwrap();
    }
    let mut inboxes = Vec::new();
    for name in &names {
        inboxes.push(attach(&router, name).await);
    }
    attach(&router, "ann").await;

    let firsts = first_matching(
        &inboxes,
        "ann's presence",
        |e| matches!(&e.payload, crate::model::Payload::Presence { from, .. } if from == "ann"),
    )
    .await;
    assert!(firsts.windows(2).all(|w| Arc::ptr_eq(&w[0], &w[1])), "one rendering shared by all 20 contacts");
}

/// A router over the in-memory storage, knowing `names`.
fn router_on_memory(names: &[&str]) -> (Addr<Router>, crate::store::memory::MemoryStore) {
    let memory = crate::store::memory::MemoryStore::new();
    let storage = Storage::on(memory.clone());
    let config = CoreConfig {
        domain: "d".into(),
        stream_idle_timeout: Duration::from_secs(60),
        max_connections_per_user: 2,
        roster_auto_accept: false,
    };
    let muc = crate::muc::MucOptions {
        domain: "d".into(),
        service: "conference".into(),
        history: 0,
        users_can_create: false,
        extra_services: Default::default(),
    };
    let conference = crate::muc::conference::Conference::new(muc, storage.rooms.clone(), vec![]).start();
    let usernames = names.iter().map(|n| (n.to_string(), AccountKind::User)).collect();
    (Router::new(config, storage, conference, usernames, vec![], Arc::default()).start(), memory)
}

fn new_message(from: &str, to: &str, body: &str) -> crate::model::NewMessage {
    // From the bare address: a refusal goes to every live station of the sender.
    crate::model::NewMessage {
        from: crate::jid::Jid::bare(crate::jid::Username::parse(from).unwrap()),
        to: crate::jid::Jid::bare(crate::jid::Username::parse(to).unwrap()),
        kind: crate::model::MessageKind::Chat,
        body: body.into(),
        data: None,
        client_id: None,
        expires_ms: None,
    }
}

#[actix_rt::test]
async fn a_message_to_an_offline_user_waits_and_reaches_its_first_station_late() {
    let (router, memory) = router_on_memory(&["ann", "bob"]);
    let stored =
        router.send(super::messages::Submit { message: new_message("ann", "bob", "hello") }).await.unwrap().unwrap();
    let pending = crate::storage::MessageStorage::pending_for(&memory, "bob".into()).await.unwrap();
    assert_eq!(pending.iter().map(|m| m.id).collect::<Vec<_>>(), vec![stored.id]);
    let inbox = attach(&router, "bob").await;
    let got = first_matching(
        std::slice::from_ref(&inbox),
        "the message",
        |e| matches!(&e.payload, crate::model::Payload::Message { message, delayed: true } if message.body == "hello"),
    )
    .await;
    assert_eq!(got.len(), 1);
}

#[actix_rt::test]
async fn a_blocked_sender_is_refused_and_its_station_hears_why() {
    let (router, memory) = router_on_memory(&["ann", "bob"]);
    let blocked = super::presence::SetBlock { blocker: "bob".into(), blocked: "ann".into(), on: true };
    assert!(router.send(blocked).await.unwrap().unwrap());
    let ann = attach(&router, "ann").await;
    let refused = router.send(super::messages::Submit { message: new_message("ann", "bob", "hi") }).await.unwrap();
    assert_eq!(refused.unwrap_err(), crate::route_error::RouteError::NotAccepting("bob".into()));
    first_matching(std::slice::from_ref(&ann), "the stanza error", |e| {
        matches!(
            &e.payload,
            crate::model::Payload::StanzaError { condition: crate::model::Condition::ServiceUnavailable, .. }
        )
    })
    .await;
    assert!(
        crate::storage::MessageStorage::pending_for(&memory, "bob".into()).await.unwrap().is_empty(),
        "nothing stored"
    );
}

#[actix_rt::test]
async fn a_user_has_at_most_its_connection_limit() {
    let (router, _) = router_on_memory(&["ann"]);
    attach(&router, "ann").await;
    attach(&router, "ann").await;
    let (_, connection) = recorder();
    let third = router
        .send(Attach { username: "ann".into(), stream_id: None, resource: None, connection, door: "test" })
        .await
        .unwrap();
    assert_eq!(third.unwrap_err(), crate::route_error::RouteError::TooManyConnections(2));
    let unknown = router.send(super::streams::Login { username: "zed".into() }).await.unwrap();
    assert_eq!(unknown.unwrap_err(), crate::route_error::RouteError::UnknownUser("zed".into()));
}

#[actix_rt::test]
async fn a_message_from_a_login_stream_is_sent_from_its_station_and_only_by_its_owner() {
    let (router, memory) = router_on_memory(&["ann", "bob"]);
    let stream = router.send(super::streams::Login { username: "ann".into() }).await.unwrap().unwrap();
    let stream_id = stream.stream_id.clone().unwrap();
    let to = crate::jid::Jid::bare(crate::jid::Username::parse("bob").unwrap());
    let submit = |owner: Option<&str>, stream_id: &str| super::messages::SubmitFromStream {
        stream_id: stream_id.to_owned(),
        owner: owner.map(str::to_owned),
        to: to.clone(),
        kind: crate::model::MessageKind::Chat,
        body: "hi".into(),
        data: None,
    };
    let stored = router.send(submit(Some("ann"), &stream_id)).await.unwrap().unwrap();
    assert_eq!((stored.from_user.as_str(), stored.from_resource.as_deref()), ("ann", Some(stream.resource.as_str())));
    let by_admin = router.send(submit(None, &stream_id)).await.unwrap();
    assert!(by_admin.is_ok(), "the admin may use any stream");
    let by_bob = router.send(submit(Some("bob"), &stream_id)).await.unwrap();
    assert_eq!(by_bob.unwrap_err(), crate::route_error::RouteError::NotYourStream(stream_id.clone()));
    let unknown = router.send(submit(Some("ann"), "nope")).await.unwrap();
    assert_eq!(unknown.unwrap_err(), crate::route_error::RouteError::UnknownStream("nope".into()));
    let pending = crate::storage::MessageStorage::pending_for(&memory, "bob".into()).await.unwrap();
    assert_eq!(pending.len(), 2, "only the two accepted messages were stored");
}
