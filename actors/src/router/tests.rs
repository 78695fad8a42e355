//! The router's handlers driven as actors, over a real store in a temporary directory.

use std::time::Duration;

use std::sync::Arc;

use actix::prelude::*;

use super::hub::{CoreConfig, Router};
use super::roster::ChangeRoster;
use super::streams::Attach;
use crate::roster::RosterOp;
use crate::roster::Subscription;
use crate::store::Store;
use crate::store::{NewUser, StoreOptions};
use crate::test_support::{first_matching, recorder, Inbox};

async fn attach(router: &Addr<Router>, username: &str) -> Inbox {
    let (seen, connection) = recorder();
    let attach = Attach { username: username.into(), stream_id: None, connection, door: "test" };
    router.send(attach).await.unwrap().unwrap();
    seen
}

#[actix_rt::test]
async fn a_presence_change_is_rendered_once_for_all_contacts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
    let names: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
    for name in names.iter().chain([&"ann".to_owned()]) {
        let user = NewUser {
            username: name.clone(),
            password_hash: "h".into(),
            name: String::new(),
            email: String::new(),
            properties: vec![],
        };
        store.create_user(user).await.unwrap();
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
    };
    let conference = crate::muc::conference::Conference::new(muc, store.clone(), vec![]).start();
    let router = Router::new(config, store, conference, everyone, vec![], Arc::default()).start();
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
