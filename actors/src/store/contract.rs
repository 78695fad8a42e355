//! The storage interfaces' contract, run against every implementation (SQLite, PostgreSQL
//! and memory):
//! what a caller of the interfaces may rely on, whichever is behind them.

use std::sync::{Arc, Mutex};

use super::memory::MemoryStore;
use super::{Store, StoreOptions};
use crate::jid::{Jid, Username};
use crate::model::apps::{AppRecord, ChatKind, DeliveryOutcome, DeliveryState};
use crate::model::groups::GroupRecord;
use crate::model::mailbox::{Folder, Mail, MailAction, ReportRequests};
use crate::model::ozeki::{ConversationProps, ConversationReport, StationKey};
use crate::model::records::{
    AccountKind, HistoryQuery, NewUser, RoomHistoryQuery, RosterItem, RowChange, Subscription, Transition,
};
use crate::model::sites::{IdsIn, SiteRecord};
use crate::model::NewRoomMessage;
use crate::model::{MessageKind, NewMessage};
use crate::storage::{Storage, StoreError};
use crate::test_support::test_user as user;
use crate::testing::TestPostgres;

fn message(body: &str) -> NewMessage {
    let jid = |n: &str| Jid::bare(Username::parse(n).unwrap());
    NewMessage {
        from: jid("ann"),
        to: jid("bob"),
        kind: MessageKind::Chat,
        body: body.into(),
        data: None,
        client_id: None,
        expires_ms: None,
    }
}

/// Every implementation: SQLite in `dir`, PostgreSQL in a fresh database of the tests'
/// server, and memory.
fn implementations(dir: &tempfile::TempDir) -> Vec<(&'static str, Storage)> {
    let sqlite = Store::open(&dir.path().join("t.db"), StoreOptions::default()).unwrap();
    let postgres = Store::open_postgres(&TestPostgres::shared().database(), StoreOptions::default()).unwrap();
    vec![
        ("sqlite", Storage::on(sqlite)),
        ("postgres", Storage::on(postgres)),
        ("memory", Storage::on(MemoryStore::new())),
    ]
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
        assert_eq!(storage.accounts.account_names().await.unwrap(), vec![("bob".into(), AccountKind::Http)], "{name}");
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

#[actix_rt::test]
async fn accounts_are_found_by_email_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        storage.accounts.create_user(NewUser { email: "Ann@Example.org".into(), ..user("ann") }).await.unwrap();
        storage.accounts.create_user(user("bob")).await.unwrap();
        let found = storage.accounts.find_user_by_email(" ann@example.ORG ".into()).await.unwrap();
        assert_eq!(found.map(|u| u.username).as_deref(), Some("ann"), "{name}");
        assert_eq!(storage.accounts.find_user_by_email("".into()).await.unwrap(), None, "{name}: no e-mail, no match");
        assert_eq!(storage.accounts.find_user_by_email("bob@x".into()).await.unwrap(), None, "{name}");
    }
}

fn mail(id: &str, folder: Folder) -> Mail {
    Mail {
        message_id: id.into(),
        folder,
        from_user: "bob".into(),
        from_station: Some("api".into()),
        to_address: "ann@localhost@%".into(),
        to_user: Some("ann".into()),
        to_station: None,
        text: format!("text of {id}"),
        created_ms: 1000,
        valid_until_ms: Some(9000),
        time_to_send_ms: Some(2000),
        reports: Some(ReportRequests { submit: true, delivery: false, view: true }),
        tags: vec![("k".into(), "v".into())],
        status: Some("SUCCESS".into()),
        archive_id: None,
        marked: false,
    }
}

#[actix_rt::test]
async fn a_mailbox_files_marks_deletes_and_reads_its_inbox_from_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        for n in ["ann", "bob"] {
            storage.accounts.create_user(user(n)).await.unwrap();
        }
        let box_ = &storage.mailboxes;
        box_.put_mails("bob".into(), vec![mail("m1", Folder::Sent)]).await.unwrap();
        box_.put_mails("bob".into(), vec![mail("m2", Folder::Sent)]).await.unwrap();
        let sent = box_.folder("bob".into(), Folder::Sent, 10).await.unwrap();
        assert_eq!(sent, vec![mail("m1", Folder::Sent), mail("m2", Folder::Sent)], "{name}: kept as filed");
        assert!(box_.folder("ann".into(), Folder::Sent, 10).await.unwrap().is_empty(), "{name}: per owner");

        let marked = box_.file_mail("bob".into(), Folder::Sent, vec!["m1".into(), "zz".into()], MailAction::Mark);
        assert_eq!(marked.await.unwrap(), vec!["m1"], "{name}: only what is there");
        let sent = box_.folder("bob".into(), Folder::Sent, 10).await.unwrap();
        assert_eq!(sent.iter().map(|m| m.message_id.as_str()).collect::<Vec<_>>(), ["m2"], "{name}");
        let deleted = box_.file_mail("bob".into(), Folder::Sent, vec!["m1".into()], MailAction::Delete).await;
        assert_eq!(deleted.unwrap(), vec!["m1"], "{name}: a marked message can be deleted");
        let bin = box_.folder("bob".into(), Folder::Deleted, 10).await.unwrap();
        assert_eq!(bin.len(), 1, "{name}");
        assert!(!bin[0].marked, "{name}");
        let gone = box_.file_mail("bob".into(), Folder::Deleted, vec!["m1".into()], MailAction::Delete).await;
        assert_eq!(gone.unwrap(), vec!["m1"], "{name}");
        assert!(box_.folder("bob".into(), Folder::Deleted, 10).await.unwrap().is_empty(), "{name}: removed");

        // The inbox is what waits in the archive.
        let mut ids = Vec::new();
        for body in ["one", "two", "three"] {
            let to_bob = NewMessage {
                from: Jid::full(Username::parse("ann").unwrap(), "web".into()),
                to: Jid::bare(Username::parse("bob").unwrap()),
                ..message(body)
            };
            ids.push(storage.messages.append_message(to_bob, None, Box::new(|_| {})).await.unwrap().id.to_string());
        }
        let inbox = box_.folder("bob".into(), Folder::Inbox, 2).await.unwrap();
        assert_eq!(inbox.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["one", "two"], "{name}: limit");
        assert_eq!(inbox[0].message_id, ids[0], "{name}: the archive id");
        assert_eq!(inbox[0].from_station.as_deref(), Some("web"), "{name}");
        let marked = box_.file_mail("bob".into(), Folder::Inbox, vec![ids[0].clone()], MailAction::Mark).await;
        assert_eq!(marked.unwrap(), vec![ids[0].clone()], "{name}");
        let deleted = box_.file_mail("bob".into(), Folder::Inbox, vec![ids[1].clone()], MailAction::Delete).await;
        assert_eq!(deleted.unwrap(), vec![ids[1].clone()], "{name}");
        let inbox = box_.folder("bob".into(), Folder::Inbox, 10).await.unwrap();
        assert_eq!(inbox.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["three"], "{name}");
        assert!(storage.messages.pending_for("bob".into()).await.unwrap().len() == 1, "{name}: no longer waiting");
        let kept = box_.find_mails("bob".into(), vec![Folder::Inbox], vec![ids[0].clone()]).await.unwrap().pop();
        assert!(kept.is_some_and(|m| m.marked && m.text == "one"), "{name}: a marked message stays in the inbox");
        let again = box_.file_mail("bob".into(), Folder::Inbox, vec![ids[0].clone()], MailAction::Delete).await;
        assert_eq!(again.unwrap(), vec![ids[0].clone()], "{name}: and can be deleted from there");
        let bin = box_.folder("bob".into(), Folder::Deleted, 10).await.unwrap();
        assert_eq!(bin.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["two", "one"], "{name}");
        let someone_elses = box_.file_mail("ann".into(), Folder::Inbox, vec![ids[2].clone()], MailAction::Delete);
        assert!(someone_elses.await.unwrap().is_empty(), "{name}: only one's own inbox");
    }
}

#[actix_rt::test]
async fn outbox_messages_come_due_in_order_and_settle_into_another_folder() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        storage.accounts.create_user(user("bob")).await.unwrap();
        let box_ = &storage.mailboxes;
        let later = Mail { time_to_send_ms: Some(5000), ..mail("later", Folder::Outbox) };
        box_.put_mails("bob".into(), vec![later]).await.unwrap();
        box_.put_mails("bob".into(), vec![mail("soon", Folder::Outbox)]).await.unwrap();
        let due = box_.due_mail(3000, 10).await.unwrap();
        assert_eq!(due.iter().map(|(o, m)| (o.as_str(), m.message_id.as_str())).collect::<Vec<_>>(), [("bob", "soon")]);
        let due = box_.due_mail(6000, 10).await.unwrap();
        assert_eq!(due.iter().map(|(_, m)| m.message_id.as_str()).collect::<Vec<_>>(), ["soon", "later"], "{name}");
        box_.settle_mail("bob".into(), mail("soon", Folder::Sent)).await.unwrap();
        assert_eq!(box_.due_mail(6000, 10).await.unwrap().len(), 1, "{name}");
        assert_eq!(box_.folder("bob".into(), Folder::Sent, 10).await.unwrap(), vec![mail("soon", Folder::Sent)]);
    }
}

#[actix_rt::test]
async fn station_keys_conversation_settings_reports_and_peers_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        for n in ["ann", "bob", "cy"] {
            storage.accounts.create_user(user(n)).await.unwrap();
        }
        let key = StationKey { username: "ann".into(), station: "s1".into(), digest: vec![1; 32], created_ms: 5 };
        storage.ozeki.add_station_key(key.clone()).await.unwrap();
        let again = storage.ozeki.add_station_key(StationKey { digest: vec![2; 32], ..key.clone() }).await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{name}: one key per station");
        let elsewhere = StationKey { username: "bob".into(), digest: vec![3; 32], ..key.clone() };
        let taken = storage.ozeki.add_station_key(elsewhere).await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{name}: station ids are unique");
        assert_eq!(storage.ozeki.station_key_of("s1".into()).await.unwrap(), Some(key.clone()), "{name}");
        assert_eq!(storage.ozeki.station_key(vec![1; 32]).await.unwrap(), Some(key.clone()), "{name}");
        assert_eq!(storage.ozeki.station_keys("ann".into()).await.unwrap(), vec![key], "{name}");
        assert!(storage.ozeki.delete_station_key("ann".into(), "s1".into()).await.unwrap(), "{name}");
        assert!(!storage.ozeki.delete_station_key("ann".into(), "s1".into()).await.unwrap(), "{name}");
        assert_eq!(storage.ozeki.station_key(vec![1; 32]).await.unwrap(), None, "{name}: revoked");

        let props = ConversationProps {
            conversation: "c1".into(),
            username: "ann".into(),
            peer: "bob".into(),
            instance: "PqjfKSn7V8".into(),
            muted: true,
            favorite: false,
            hide_id: String::new(),
            color: "#ffffff".into(),
            cleared_through: 0,
            changed_ms: 9,
        };
        storage.ozeki.save_conversation(props.clone()).await.unwrap();
        let changed = ConversationProps { favorite: true, ..props.clone() };
        storage.ozeki.save_conversation(changed.clone()).await.unwrap();
        assert_eq!(storage.ozeki.conversation("c1".into(), "ann".into()).await.unwrap(), Some(changed.clone()));
        assert_eq!(storage.ozeki.conversation("c1".into(), "bob".into()).await.unwrap(), None, "{name}: per user");
        assert_eq!(storage.ozeki.conversations("ann".into()).await.unwrap(), vec![changed], "{name}");

        for (i, at) in [10, 20, 30].iter().enumerate() {
            let report = ConversationReport {
                id: format!("r{i}"),
                conversation: "c1".into(),
                username: "bob".into(),
                kind: "viewed".into(),
                created_ms: *at,
                message_ids: vec![format!("m{i}")],
            };
            storage.ozeki.add_report(report).await.unwrap();
        }
        let reports = storage.ozeki.reports("c1".into(), 15, 10).await.unwrap();
        assert_eq!(reports.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1", "r2"], "{name}");
        let newest = storage.ozeki.reports("c1".into(), 0, 1).await.unwrap();
        assert_eq!(newest[0].message_ids, vec!["m2"], "{name}: the newest, when limited");

        let to = |from: &str, to: &str| NewMessage {
            from: Jid::bare(Username::parse(from).unwrap()),
            to: Jid::bare(Username::parse(to).unwrap()),
            ..message("x")
        };
        let mut last = Vec::new();
        for (from, peer) in [("ann", "bob"), ("cy", "ann"), ("bob", "ann"), ("bob", "cy")] {
            last.push(storage.messages.append_message(to(from, peer), None, Box::new(|_| {})).await.unwrap().id);
        }
        let peers = storage.messages.peers_of("ann".into(), 10).await.unwrap();
        let peers: Vec<(&str, i64)> = peers.iter().map(|(p, id, _)| (p.as_str(), *id)).collect();
        assert_eq!(peers, [("bob", last[2]), ("cy", last[1])], "{name}: newest first, with the newest id");
    }
}

#[actix_rt::test]
async fn an_expired_message_no_longer_waits() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        for n in ["ann", "bob"] {
            storage.accounts.create_user(user(n)).await.unwrap();
        }
        let now = crate::clock::now_ms();
        for (body, expires_ms) in [("gone", Some(now - 1)), ("kept", Some(now + 60_000)), ("forever", None)] {
            let m = NewMessage { expires_ms, ..message(body) };
            storage.messages.append_message(m, None, Box::new(|_| {})).await.unwrap();
        }
        let pending = storage.messages.pending_for("bob".into()).await.unwrap();
        assert_eq!(pending.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["kept", "forever"], "{name}");
        assert_eq!(pending[0].expires_ms, Some(now + 60_000), "{name}: kept with the message");
        let inbox = storage.mailboxes.folder("bob".into(), Folder::Inbox, 10).await.unwrap();
        assert_eq!(inbox.len(), 2, "{name}: nor is it in an HTTP user's inbox");
    }
}

fn app(id: &str, name: &str) -> AppRecord {
    AppRecord {
        id: id.into(),
        name: name.into(),
        description: String::new(),
        token_digest: vec![id.as_bytes()[0]; 32],
        signature_token: None,
        webhook_url: None,
        created_ms: 1,
        modified_ms: 1,
    }
}

#[actix_rt::test]
async fn an_apps_chats_and_webhook_outbox_keep_order_retries_and_dead_letters() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        for n in ["ann", "bob"] {
            storage.accounts.create_user(user(n)).await.unwrap();
        }
        let bot = NewUser { kind: AccountKind::App, ..user("bot") };
        storage.apps.create_app(app("a1", "bot"), bot.clone()).await.unwrap();
        let taken = storage.apps.create_app(app("a2", "ann"), NewUser { kind: AccountKind::App, ..user("ann") }).await;
        assert!(matches!(taken, Err(StoreError::Conflict(_))), "{name}: a user's name is taken");
        assert_eq!(storage.apps.app_by_token(vec![b'a'; 32]).await.unwrap().map(|a| a.id).as_deref(), Some("a1"));

        let to_bot = |from: &str, body: &str| NewMessage {
            from: Jid::full(Username::parse(from).unwrap(), "web".into()),
            to: Jid::bare(Username::parse("bot").unwrap()),
            ..message(body)
        };
        let (first, chat) = storage
            .apps
            .append_for_app(
                to_bot("ann", "before the webhook"),
                "a1".into(),
                "c-ann".into(),
                "d0".into(),
                Box::new(|_| {}),
            )
            .await
            .unwrap();
        assert_eq!(chat.chat_id, "c-ann", "{name}: the chat is opened by the first message");
        assert!(storage.apps.pending_deliveries(0, 10).await.unwrap().is_empty(), "{name}: no webhook, no delivery");
        assert!(
            storage.messages.pending_for("bot".into()).await.unwrap().is_empty(),
            "{name}: nothing waits for a station"
        );
        assert_eq!(
            storage.apps.archived_message(ChatKind::User, first.id).await.unwrap().map(|m| m.body).as_deref(),
            Some("before the webhook")
        );

        let watched = AppRecord { webhook_url: Some("http://127.0.0.1:9/hook".into()), ..app("a1", "bot") };
        storage.apps.update_app(watched).await.unwrap();
        let mut ids = Vec::new();
        for (i, (from, body)) in [("ann", "a1"), ("bob", "b1"), ("ann", "a2")].iter().enumerate() {
            let (stored, chat) = storage
                .apps
                .append_for_app(
                    to_bot(from, body),
                    "a1".into(),
                    format!("c-{from}"),
                    format!("d{}", i + 1),
                    Box::new(|_| {}),
                )
                .await
                .unwrap();
            assert_eq!(chat.chat_id, format!("c-{from}"), "{name}: one chat per user, stable");
            ids.push(stored.id);
        }
        let pending = storage.apps.pending_deliveries(0, 10).await.unwrap();
        let queued: Vec<(&str, i64)> = pending.iter().map(|d| (d.chat_id.as_str(), d.message_id)).collect();
        assert_eq!(queued, [("c-ann", ids[0]), ("c-bob", ids[1]), ("c-ann", ids[2])], "{name}: in order");
        let after_first = storage.apps.pending_deliveries(pending[0].seq, 10).await.unwrap();
        assert_eq!(after_first.len(), 2, "{name}: paged by sequence");
        let (first, second) = (pending[0].seq, pending[1].seq);
        let retry = DeliveryOutcome::Retry { at_ms: 5000, error: "500".into() };
        storage.apps.settle_deliveries(vec![(first, 1, retry), (second, 1, DeliveryOutcome::Delivered)]).await.unwrap();
        let pending = storage.apps.pending_deliveries(0, 10).await.unwrap();
        assert_eq!(pending.len(), 2, "{name}: the delivered one left, the retried one stays");
        assert_eq!((pending[0].attempts, pending[0].next_attempt_ms), (1, 5000), "{name}");
        storage.apps.settle_deliveries(vec![(first, 2, DeliveryOutcome::Dead { error: "gone".into() })]).await.unwrap();
        assert_eq!(storage.apps.outbox_depth().await.unwrap().0, 1, "{name}");
        let dead = storage.apps.deliveries("a1".into(), Some(DeliveryState::Dead), 10).await.unwrap();
        assert_eq!((dead.len(), dead[0].attempts, dead[0].last_error.as_deref()), (1, 2, Some("gone")), "{name}");
        assert_eq!(storage.apps.replay_deliveries("a1".into(), None).await.unwrap(), 1, "{name}");
        let pending = storage.apps.pending_deliveries(0, 10).await.unwrap();
        assert_eq!((pending[0].seq, pending[0].attempts), (first, 0), "{name}: replayed, from the start");

        let opened = storage.apps.open_chat("a1".into(), ChatKind::User, "ann".into(), "ignored".into()).await.unwrap();
        assert_eq!(opened.chat_id, "c-ann", "{name}");
        let page = storage.apps.chats("a1".into(), 1, 10).await.unwrap();
        assert_eq!(page.iter().map(|c| c.chat_id.as_str()).collect::<Vec<_>>(), ["c-bob"], "{name}: paged");
        // A room the app is attached to: its messages are archived with a delivery, but the
        // app's own.
        let room = storage.apps.open_chat("a1".into(), ChatKind::Room, "hall".into(), "c-hall".into()).await.unwrap();
        assert_eq!((room.kind, room.chat_id.as_str()), (ChatKind::Room, "c-hall"), "{name}");
        assert_eq!(storage.apps.watched_rooms().await.unwrap(), vec!["hall"], "{name}");
        let said = |from: &str| NewRoomMessage {
            room: "hall".into(),
            nick: from.into(),
            from_user: from.into(),
            body: format!("{from} in the hall"),
            data: None,
        };
        let before = storage.apps.pending_deliveries(0, 100).await.unwrap().len();
        let ann_said = storage.apps.append_watched_room_message(said("ann"), Box::new(|_| {})).await.unwrap();
        let bot_said = storage.apps.append_watched_room_message(said("bot"), Box::new(|_| {})).await.unwrap();
        let page =
            |before, after, limit| RoomHistoryQuery { room: "hall".into(), before, after, limit, ..Default::default() };
        let older = storage.rooms.room_messages(page(Some(bot_said.id), None, 10)).await.unwrap();
        assert_eq!(older.iter().map(|m| m.id).collect::<Vec<_>>(), [ann_said.id], "{name}: paged before a message");
        let newer = storage.rooms.room_messages(page(None, Some(ann_said.id), 10)).await.unwrap();
        assert_eq!(newer.iter().map(|m| m.id).collect::<Vec<_>>(), [bot_said.id], "{name}: paged after a message");
        let first = storage.rooms.room_messages(page(None, Some(0), 1)).await.unwrap();
        assert_eq!(first.iter().map(|m| m.id).collect::<Vec<_>>(), [ann_said.id], "{name}: the oldest first");
        let last = storage.rooms.room_messages(page(None, None, 1)).await.unwrap();
        assert_eq!(last.iter().map(|m| m.id).collect::<Vec<_>>(), [bot_said.id], "{name}: the newest last");
        let ended = RoomHistoryQuery { end_ms: Some(ann_said.stamp_ms - 1), ..page(None, None, 10) };
        assert!(storage.rooms.room_messages(ended).await.unwrap().is_empty(), "{name}: nothing before the end");
        let pending = storage.apps.pending_deliveries(0, 100).await.unwrap();
        assert_eq!(pending.len(), before + 1, "{name}: not the app's own message");
        let last = pending.last().unwrap();
        assert_eq!(
            (last.kind, last.chat_id.as_str(), last.message_id),
            (ChatKind::Room, "c-hall", ann_said.id),
            "{name}"
        );
        let archived = storage.apps.archived_message(ChatKind::Room, ann_said.id).await.unwrap().unwrap();
        assert_eq!((archived.room.as_deref(), archived.body.as_str()), (Some("hall"), "ann in the hall"), "{name}");
        assert!(storage.apps.close_chat("a1".into(), ChatKind::Room, "hall".into()).await.unwrap(), "{name}");
        assert!(storage.apps.watched_rooms().await.unwrap().is_empty(), "{name}");
        assert!(storage.apps.delete_app("a1".into()).await.unwrap(), "{name}");
        assert!(storage.accounts.find_user("bot".into()).await.unwrap().is_none(), "{name}: its account went with it");
        assert!(storage.apps.chat("c-ann".into()).await.unwrap().is_none(), "{name}");
    }
}

#[actix_rt::test]
async fn a_lease_has_one_holder_until_it_runs_out_or_is_given_up() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        let l = &storage.leases;
        let claim = |node: &str, now: i64| l.claim_lease("outbox".into(), node.into(), now, now + 100);
        assert!(claim("n1", 0).await.unwrap(), "{name}: a free lease is granted");
        assert!(!claim("n2", 50).await.unwrap(), "{name}: held by another");
        assert!(claim("n1", 90).await.unwrap(), "{name}: renewed by its holder");
        assert!(!claim("n2", 150).await.unwrap(), "{name}: the renewal runs to 190");
        assert!(claim("n2", 191).await.unwrap(), "{name}: ran out, taken over");
        assert!(!claim("n1", 192).await.unwrap(), "{name}");
        l.release_lease("outbox".into(), "n1".into()).await.unwrap();
        assert!(!claim("n1", 193).await.unwrap(), "{name}: only the holder gives it up");
        l.release_lease("outbox".into(), "n2".into()).await.unwrap();
        assert!(claim("n1", 194).await.unwrap(), "{name}: given up, free");
        assert!(l.claim_lease("other".into(), "n2".into(), 194, 294).await.unwrap(), "{name}: leases are by name");

        let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let holders = l.claim_leases(names(&["outbox", "room:a", "other"]), "n3".into(), 200, 300).await.unwrap();
        assert_eq!(holders, names(&["n1", "n3", "n2"]), "{name}: each lease's holder after a bulk claim");
        l.renew_leases("n3".into(), 1000).await.unwrap();
        let holders = l.claim_leases(names(&["room:a", "outbox"]), "n1".into(), 500, 600).await.unwrap();
        assert_eq!(holders, names(&["n3", "n1"]), "{name}: renewed by node to 1000; n1's own one renewed");
        let holders = l.claim_leases(names(&["room:a"]), "n1".into(), 1001, 1100).await.unwrap();
        assert_eq!(holders, names(&["n1"]), "{name}: ran out, taken over in a bulk claim");
    }
}

#[actix_rt::test]
async fn system_properties_are_kept_by_key() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        let a = &storage.accounts;
        assert!(a.put_system_property("b.key".into(), "1".into()).await.unwrap(), "{name}: new");
        assert!(!a.put_system_property("b.key".into(), "2".into()).await.unwrap(), "{name}: replaced");
        a.put_system_property("a.key".into(), "x".into()).await.unwrap();
        let all = a.system_properties().await.unwrap();
        assert_eq!(all, vec![("a.key".into(), "x".into()), ("b.key".into(), "2".into())], "{name}");
        assert!(a.delete_system_property("a.key".into()).await.unwrap(), "{name}");
        assert!(!a.delete_system_property("a.key".into()).await.unwrap(), "{name}");
    }
}

#[actix_rt::test]
async fn groups_keep_their_people_and_shared_ones_appear_in_rosters() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        for n in ["ann", "bob", "cid"] {
            storage.accounts.create_user(user(n)).await.unwrap();
        }
        let g = &storage.groups;
        let mut staff = GroupRecord::new("staff".into());
        staff.members = ["ann".to_owned(), "bob".to_owned()].into();
        staff.admins = ["cid".to_owned()].into();
        g.create_group(staff.clone()).await.unwrap();
        assert!(matches!(g.create_group(staff.clone()).await, Err(StoreError::Conflict(_))), "{name}");
        let mut ghost = GroupRecord::new("ghosts".into());
        ghost.members = ["nobody".to_owned()].into();
        assert!(matches!(g.create_group(ghost).await, Err(StoreError::NotFound(_))), "{name}: unknown member");
        let found = g.group("staff".into()).await.unwrap().unwrap();
        assert_eq!((found.members.len(), found.admins.len()), (2, 1), "{name}");
        // Not shared: no roster shows it.
        assert!(storage.rosters.roster("ann".into()).await.unwrap().is_empty(), "{name}");

        staff.shared = true;
        g.update_group(staff.clone()).await.unwrap();
        let roster = storage.rosters.roster("ann".into()).await.unwrap();
        let contacts: Vec<_> = roster.iter().map(|r| r.contact.as_str()).collect();
        assert_eq!(contacts, ["bob", "cid"], "{name}: the others of the shared group");
        assert!(roster.iter().all(|r| r.listed && r.subscription == Subscription::Both && r.groups == ["staff"]));

        // Ann's own change on a shared contact keeps the share and asks nothing.
        let rule: crate::storage::RosterRule = Box::new(|mine, theirs| {
            let mut item = RosterItem::new("ann", "bob");
            (item.listed, item.ask_out, item.groups) = (true, true, vec!["own".into()]);
            let mut request = RosterItem::new("bob", "ann");
            request.pending_in = true;
            let side = |owner: &str, contact: &str, before, after| RowChange {
                owner: owner.into(),
                contact: contact.into(),
                before,
                after: Some(after),
            };
            Ok(Transition {
                owner_side: side("ann", "bob", mine, item),
                contact_side: side("bob", "ann", theirs, request),
                notices: vec![crate::model::records::Notice {
                    kind: crate::model::records::NoticeKind::Subscribe,
                    from: "ann".into(),
                    to: "bob".into(),
                }],
            })
        });
        let t = storage.rosters.change_roster("ann".into(), "bob".into(), rule, Box::new(|_| ())).await.unwrap();
        assert!(t.notices.is_empty(), "{name}");
        let after = t.owner_side.after.unwrap();
        assert_eq!(
            (after.subscription, after.groups.clone()),
            (Subscription::Both, vec!["own".into(), "staff".into()])
        );

        // Bob leaves: ann keeps her own item of him, without the share.
        assert!(g.set_membership("staff".into(), "bob".into(), None).await.unwrap(), "{name}");
        assert!(!g.set_membership("staff".into(), "bob".into(), None).await.unwrap(), "{name}: nothing to do");
        let roster = storage.rosters.roster("ann".into()).await.unwrap();
        let bob = roster.iter().find(|r| r.contact == "bob").unwrap();
        assert_eq!((bob.groups.clone(), bob.subscription), (vec!["own".into()], Subscription::None), "{name}");
        assert!(g.set_membership("staff".into(), "bob".into(), Some(true)).await.unwrap(), "{name}");
        assert!(g.group("staff".into()).await.unwrap().unwrap().admins.contains("bob"), "{name}");
        let missing = g.set_membership("nope".into(), "bob".into(), Some(false)).await;
        assert!(matches!(missing, Err(StoreError::NotFound(_))), "{name}");

        assert!(g.delete_group("staff".into()).await.unwrap(), "{name}");
        assert!(!g.delete_group("staff".into()).await.unwrap(), "{name}");
        assert!(storage.rosters.roster("cid".into()).await.unwrap().is_empty(), "{name}: the share went with it");
    }
}

#[actix_rt::test]
async fn vcards_are_kept_per_user_and_go_with_the_account() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        storage.accounts.create_user(user("ann")).await.unwrap();
        let a = &storage.accounts;
        assert!(a.vcard("ann".into()).await.unwrap().is_none(), "{name}");
        a.put_vcard("ann".into(), Some("<vCard xmlns='vcard-temp'/>".into())).await.unwrap();
        assert_eq!(a.vcard("ann".into()).await.unwrap().as_deref(), Some("<vCard xmlns='vcard-temp'/>"), "{name}");
        assert!(matches!(a.put_vcard("zed".into(), Some("x".into())).await, Err(StoreError::NotFound(_))), "{name}");
        assert!(a.put_vcard("ann".into(), None).await.unwrap(), "{name}");
        assert!(!a.put_vcard("ann".into(), None).await.unwrap(), "{name}");
    }
}

fn site(id: &str) -> SiteRecord {
    SiteRecord {
        id: id.into(),
        name: "Shop".into(),
        users_info_url: "http://shop.example/users".into(),
        api_login: "root".into(),
        api_password: "abc".into(),
        origins: vec!["http://shop.example".into(), "https://shop.example".into()],
        ids_in: IdsIn::Path,
        secret: "s3cret".into(),
        created_ms: 1,
        modified_ms: 1,
    }
}

#[actix_rt::test]
async fn sites_are_kept_replaced_and_deleted_by_id() {
    let dir = tempfile::tempdir().unwrap();
    for (name, storage) in implementations(&dir) {
        let s = &storage.sites;
        s.create_site(site("shop")).await.unwrap();
        s.create_site(site("blog")).await.unwrap();
        assert!(matches!(s.create_site(site("shop")).await, Err(StoreError::Conflict(_))), "{name}");
        let changed = SiteRecord { secret: "new".into(), origins: vec![], ids_in: IdsIn::Query, ..site("shop") };
        s.update_site(changed.clone()).await.unwrap();
        assert!(matches!(s.update_site(site("none")).await, Err(StoreError::NotFound(_))), "{name}");
        assert_eq!(s.all_sites().await.unwrap(), vec![site("blog"), changed], "{name}: by id, as written");
        assert!(s.delete_site("blog".into()).await.unwrap(), "{name}");
        assert!(!s.delete_site("blog".into()).await.unwrap(), "{name}");
        assert_eq!(s.all_sites().await.unwrap().len(), 1, "{name}");
    }
}
