//! The storage interfaces' contract, run against both implementations (SQLite and memory):
//! what a caller of the interfaces may rely on, whichever is behind them.

use std::sync::{Arc, Mutex};

use super::memory::MemoryStore;
use super::{Store, StoreOptions};
use crate::jid::{Jid, Username};
use crate::model::records::{AccountKind, HistoryQuery, NewUser, RosterItem, RowChange, Subscription, Transition};
use crate::model::{MessageKind, NewMessage};
use crate::storage::{Storage, StoreError};
use crate::test_support::test_user as user;

fn message(body: &str) -> NewMessage {
    let jid = |n: &str| Jid::bare(Username::parse(n).unwrap());
    NewMessage {
        from: jid("ann"),
        to: jid("bob"),
        kind: MessageKind::Chat,
        body: body.into(),
        data: None,
        client_id: None,
    }
}

/// Both implementations, the SQLite one in `dir`.
fn implementations(dir: &tempfile::TempDir) -> Vec<(&'static str, Storage)> {
    let sqlite = Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
    vec![("sqlite", Storage::on(sqlite)), ("memory", Storage::on(MemoryStore::new()))]
}

#[actix_rt::test]
async fn accounts_are_unique_and_deleting_one_drops_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        storage.accounts.create_user(user("ann")).await.unwrap();
        let gateway = NewUser { kind: AccountKind::Http, ..user("bob") };
        storage.accounts.create_user(gateway).await.unwrap();
        let bob = storage.accounts.find_user("bob".into()).await.unwrap().unwrap();
        assert_eq!(bob.kind, AccountKind::Http, "{name}: the kind is kept");
        let again = storage.accounts.create_user(user("ann")).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{name}: {again:?}");
        storage.rosters.set_block("bob".into(), "ann".into(), true).await.unwrap();
        storage.accounts.delete_user("ann".into()).await.unwrap();
        assert_eq!(storage.accounts.usernames().await.unwrap(), vec!["bob"], "{name}");
        assert!(storage.rosters.all_blocks().await.unwrap().is_empty(), "{name}: blocks naming ann went with her");
    }
}

#[actix_rt::test]
async fn a_message_is_pending_until_marked_and_its_hook_runs_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        for n in ["ann", "bob"] {
            storage.accounts.create_user(user(n)).await.unwrap();
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut ids = Vec::new();
        for body in ["one", "two", "three"] {
            let fed = seen.clone();
            let hook = Box::new(move |m: &Arc<crate::model::StoredMessage>| fed.lock().unwrap().push(m.id));
            let stored = storage.messages.append_message(message(body), None, hook).await.unwrap();
            assert_eq!(seen.lock().unwrap().last(), Some(&stored.id), "{name}: the hook ran before the answer");
            ids.push(stored.id);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{name}: ids grow in commit order");
        storage.messages.mark_delivered(vec![ids[0]]);
        // Marks are not awaited: they take effect soon after, not necessarily before the next read.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let pending = storage.messages.pending_for("bob".into()).await.unwrap();
            let pending_ids: Vec<i64> = pending.iter().map(|m| m.id).collect();
            if pending_ids == ids[1..] {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{name}: still pending {pending_ids:?}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let since = storage.messages.received_since("bob".into(), ids[0], 10).await.unwrap();
        assert_eq!(since.len(), 2, "{name}");
        let query =
            HistoryQuery { username: "ann".into(), keywords: Some("T".into()), limit: 10, ..Default::default() };
        let found: Vec<String> = storage.messages.history(query).await.unwrap().into_iter().map(|m| m.body).collect();
        assert_eq!(found, vec!["two", "three"], "{name}: case-insensitive, oldest first");
    }
}

#[actix_rt::test]
async fn a_roster_rule_writes_both_rows_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        for n in ["ann", "bob"] {
            storage.accounts.create_user(user(n)).await.unwrap();
        }
        let both = Box::new(|mine: Option<RosterItem>, theirs: Option<RosterItem>| {
            assert!(mine.is_none() && theirs.is_none());
            let row = |owner: &str, contact: &str| {
                let mut row = RosterItem::new(owner, contact);
                row.subscription = Subscription::Both;
                row.listed = true;
                row
            };
            let side = |owner: &str, contact: &str| RowChange {
                owner: owner.into(),
                contact: contact.into(),
                before: None,
                after: Some(row(owner, contact)),
            };
            Ok(Transition { owner_side: side("ann", "bob"), contact_side: side("bob", "ann"), notices: vec![] })
        });
        let hooked = Arc::new(Mutex::new(false));
        let flag = hooked.clone();
        let hook = Box::new(move |_: &Transition| *flag.lock().unwrap() = true);
        storage.rosters.change_roster("ann".into(), "bob".into(), both, hook).await.unwrap();
        assert!(*hooked.lock().unwrap(), "{name}");
        assert_eq!(storage.rosters.roster("bob".into()).await.unwrap()[0].subscription, Subscription::Both, "{name}");
        let refuse = Box::new(|_: Option<RosterItem>, _: Option<RosterItem>| Err(StoreError::Conflict("no".into())));
        let refused = storage.rosters.change_roster("ann".into(), "bob".into(), refuse, Box::new(|_: &Transition| {}));
        assert_eq!(refused.await, Err(StoreError::Conflict("no".into())), "{name}");
        assert_eq!(storage.rosters.roster("ann".into()).await.unwrap().len(), 1, "{name}: the refusal wrote nothing");
    }
}
