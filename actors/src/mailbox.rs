//! `Mailbox`: how an HTTP API user sends and what it keeps (Ozeki 10's folders), and
//! `OutboxClock`, which sends what was accepted for later when its time comes.
//!
//! A message an HTTP user sends is an ordinary message of the core: the router checks,
//! stores and routes it, and every door delivers it. What the HTTP user keeps of it is a
//! row in its `sent` folder, or in `notsent` with the reason it was refused, or in `outbox`
//! until its `time_to_send`. What others send to the HTTP user waits in the archive (it
//! holds no live station) and is its inbox.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock::now_ms;
use crate::jid::{Jid, Username};
use crate::model::mailbox::{Folder, Mail, MailAction};
use crate::model::{MessageKind, NewMessage};
use crate::router::{Router, Submit};
use crate::storage::{MailboxStorage, Storage, StoreResult};

/// The station an HTTP user's message comes from when the client names none.
pub const DEFAULT_STATION: &str = "http-api";

/// A `time_to_send` this close to now (or earlier) means now.
const SEND_NOW_SLACK_MS: i64 = 1000;

/// The status of a message that was sent, or accepted to be sent later.
pub const SUCCESS: &str = "SUCCESS";

/// HTTP API users' sending and folders.
#[derive(Clone)]
pub struct Mailbox {
    mailboxes: Arc<dyn MailboxStorage>,
    router: Addr<Router>,
}

impl Mailbox {
    pub fn new(storage: &Storage, router: Addr<Router>) -> Mailbox {
        Mailbox { mailboxes: storage.mailboxes.clone(), router }
    }

    /// Sends `draft` from `owner` now, or files it in the outbox for its `time_to_send`, or
    /// files it in `notsent` when `refusal` (the door could not resolve its recipient) or
    /// the core refuses it. Resolves to the message as filed, with its `status`.
    ///
    /// Sending an id that is already in `sent` or `outbox` again answers what was filed
    /// then and sends nothing: a client may retry a send whose answer it lost.
    pub async fn send(&self, owner: &str, mut draft: Mail, refusal: Option<String>) -> StoreResult<Mail> {
        for folder in [Folder::Sent, Folder::Outbox] {
            let filed = self.mailboxes.find_mail(owner.to_owned(), folder, draft.message_id.clone()).await?;
            if let Some(filed) = filed {
                return Ok(filed);
            }
        }
        let now = now_ms();
        if let Some(reason) = refusal {
            return self.file_as(owner, draft, Folder::NotSent, reason).await;
        }
        if draft.time_to_send_ms.is_some_and(|at| at > now + SEND_NOW_SLACK_MS) {
            return self.file_as(owner, draft, Folder::Outbox, SUCCESS.to_owned()).await;
        }
        draft.time_to_send_ms = draft.time_to_send_ms.map(|at| at.min(now));
        let settled = self.deliver(owner, draft).await;
        self.mailboxes.put_mail(owner.to_owned(), settled.clone()).await?;
        Ok(settled)
    }

    async fn file_as(&self, owner: &str, mut mail: Mail, folder: Folder, status: String) -> StoreResult<Mail> {
        mail.folder = folder;
        mail.status = Some(status);
        self.mailboxes.put_mail(owner.to_owned(), mail.clone()).await?;
        Ok(mail)
    }

    /// Hands a message to the router; the result is the message as it is to be filed, in
    /// `sent` or `notsent`.
    async fn deliver(&self, owner: &str, mut mail: Mail) -> Mail {
        let expired = mail.valid_until_ms.is_some_and(|until| until < now_ms());
        let outcome = match outgoing(owner, &mail) {
            _ if expired => Err("the message expired before it was sent (valid_until has passed)".to_owned()),
            Err(reason) => Err(reason),
            Ok(message) => match self.router.send(Submit { message }).await {
                Ok(Ok(stored)) => Ok(stored.id),
                Ok(Err(refused)) => Err(refused.to_string()),
                Err(_) => Err("the server is shutting down".to_owned()),
            },
        };
        match outcome {
            Ok(archive_id) => {
                mail.folder = Folder::Sent;
                mail.status = Some(SUCCESS.to_owned());
                mail.archive_id = Some(archive_id);
            }
            Err(reason) => {
                mail.folder = Folder::NotSent;
                mail.status = Some(reason);
            }
        }
        mail
    }

    /// Up to `limit` messages of a folder that were not marked, oldest first.
    pub async fn folder(&self, owner: &str, folder: Folder, limit: usize) -> StoreResult<Vec<Mail>> {
        self.mailboxes.folder(owner.to_owned(), folder, limit).await
    }

    /// Deletes or marks the named messages of a folder; resolves to the ids found there.
    pub async fn file(
        &self,
        owner: &str,
        folder: Folder,
        ids: Vec<String>,
        action: MailAction,
    ) -> StoreResult<Vec<String>> {
        self.mailboxes.file_mail(owner.to_owned(), folder, ids, action).await
    }

    /// Sends the outbox messages that are due; resolves to how many it settled.
    pub async fn send_due(&self, limit: usize) -> StoreResult<usize> {
        let due = self.mailboxes.due_mail(now_ms(), limit).await?;
        let count = due.len();
        for (owner, mail) in due {
            let settled = self.deliver(&owner, mail).await;
            self.mailboxes.settle_mail(owner, settled).await?;
        }
        Ok(count)
    }
}

/// The core's message for a filed draft: from the owner's station, to the account and
/// station it resolved to.
fn outgoing(owner: &str, mail: &Mail) -> Result<NewMessage, String> {
    let from_user = Username::parse(owner).map_err(|e| e.to_string())?;
    let station = mail.from_station.clone().unwrap_or_else(|| DEFAULT_STATION.to_owned());
    let to_user = mail.to_user.as_deref().ok_or("the recipient is not a user of this server")?;
    let to_user = Username::parse(to_user).map_err(|e| e.to_string())?;
    let to = match &mail.to_station {
        Some(station) => Jid::full(to_user, station.clone()),
        None => Jid::bare(to_user),
    };
    Ok(NewMessage {
        from: Jid::full(from_user, station),
        to,
        kind: MessageKind::Chat,
        body: mail.text.clone(),
        data: None,
        client_id: Some(mail.message_id.clone()),
        expires_ms: mail.valid_until_ms,
    })
}

/// Sends outbox messages when they come due: checks every `every`.
pub struct OutboxClock {
    mailbox: Mailbox,
    every: Duration,
    busy: bool,
}

/// Most outbox messages one tick sends.
const DUE_PER_TICK: usize = 256;

impl OutboxClock {
    pub fn new(mailbox: Mailbox, every: Duration) -> OutboxClock {
        OutboxClock { mailbox, every, busy: false }
    }
}

impl Actor for OutboxClock {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.every, |clock, ctx| {
            if clock.busy {
                return; // The previous tick is still sending.
            }
            clock.busy = true;
            let mailbox = clock.mailbox.clone();
            let tick = async move { mailbox.send_due(DUE_PER_TICK).await };
            ctx.spawn(tick.into_actor(clock).map(|sent, clock, _| {
                clock.busy = false;
                if let Err(e) = sent {
                    tracing::warn!(error = %e, "could not send the outbox messages that are due");
                }
            }));
        });
    }
}
