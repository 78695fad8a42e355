//! `Mailbox`: how an HTTP API user sends and what it keeps (Ozeki 10's folders), and
//! `OutboxClock`, which sends what was accepted for later when its time comes.
//!
//! A message an HTTP user sends is an ordinary message of the core: the router checks,
//! stores and routes it, and every door delivers it. What the HTTP user keeps of it is a
//! row in its `sent` folder, or in `notsent` with the reason it was refused, or in `outbox`
//! until its `time_to_send`. What others send to the HTTP user waits in the archive (it
//! holds no live station) and is its inbox.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock::now_ms;
use crate::cluster::duties::OnDuty;
use crate::jid::{Jid, Username};
use crate::model::mailbox::{Folder, Mail, MailAction};
use crate::model::{MessageKind, NewMessage};
use crate::router::{Router, SubmitAll};
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

    /// Sends each draft from `owner` now, or files it in the outbox for its `time_to_send`,
    /// or files it in `notsent` when its refusal is given (the door could not resolve its
    /// recipient) or the core refuses it. Resolves to the messages as filed, in order, each
    /// with its `status`. One read, the messages' commits, then one write, whatever the
    /// number of drafts.
    ///
    /// Sending an id that is already in `sent` or `outbox` again answers what was filed
    /// then and sends nothing: a client may retry a send whose answer it lost.
    pub async fn send_all(&self, owner: &str, drafts: Vec<(Mail, Option<String>)>) -> StoreResult<Vec<Mail>> {
        let ids = drafts.iter().map(|(d, _)| d.message_id.clone()).collect();
        let filed = self.mailboxes.find_mails(owner.to_owned(), vec![Folder::Sent, Folder::Outbox], ids).await?;
        let mut filed: HashMap<String, Mail> = filed.into_iter().map(|m| (m.message_id.clone(), m)).collect();
        // An id twice in one send: the second answers what the first became.
        let mut planned: HashMap<String, usize> = HashMap::new();
        let now = now_ms();
        let mut plans = Vec::with_capacity(drafts.len());
        let mut outgoing_now = Vec::new();
        for (mut draft, refusal) in drafts {
            if let Some(earlier) = filed.remove(&draft.message_id) {
                planned.insert(draft.message_id.clone(), plans.len());
                plans.push(Plan::Filed(earlier));
                continue;
            }
            if let Some(index) = planned.get(&draft.message_id) {
                plans.push(Plan::SameAs(*index));
                continue;
            }
            planned.insert(draft.message_id.clone(), plans.len());
            let plan = match refusal {
                Some(reason) => Plan::New(settled(draft, Folder::NotSent, reason)),
                None if draft.time_to_send_ms.is_some_and(|at| at > now + SEND_NOW_SLACK_MS) => {
                    Plan::New(settled(draft, Folder::Outbox, SUCCESS.to_owned()))
                }
                None => {
                    draft.time_to_send_ms = draft.time_to_send_ms.map(|at| at.min(now));
                    match sendable(owner, &draft) {
                        Ok(message) => {
                            outgoing_now.push(message);
                            Plan::Sending(draft)
                        }
                        Err(reason) => Plan::New(settled(draft, Folder::NotSent, reason)),
                    }
                }
            };
            plans.push(plan);
        }
        let mut outcomes = self.submit_all(outgoing_now).await.into_iter();
        let mut answers = Vec::with_capacity(plans.len());
        let mut to_file = Vec::new();
        for plan in plans {
            let mail = match plan {
                Plan::Filed(mail) => {
                    answers.push(mail);
                    continue;
                }
                Plan::SameAs(index) => {
                    answers.push(answers[index].clone());
                    continue;
                }
                Plan::New(mail) => mail,
                Plan::Sending(draft) => {
                    let outcome = outcomes.next().unwrap_or_else(|| Err("the server is shutting down".to_owned()));
                    settle(draft, outcome)
                }
            };
            to_file.push(mail.clone());
            answers.push(mail);
        }
        self.mailboxes.put_mails(owner.to_owned(), to_file).await?;
        Ok(answers)
    }

    /// Hands messages to the router in one visit; each one's archive id, or why it was
    /// refused.
    async fn submit_all(&self, messages: Vec<NewMessage>) -> Vec<Result<i64, String>> {
        if messages.is_empty() {
            return Vec::new();
        }
        let count = messages.len();
        match self.router.send(SubmitAll { messages }).await {
            Ok(answers) => answers.into_iter().map(|a| a.map(|stored| stored.id).map_err(|e| e.to_string())).collect(),
            Err(_) => vec![Err("the server is shutting down".to_owned()); count],
        }
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
            let outcome = match sendable(&owner, &mail) {
                Ok(message) => self.submit_all(vec![message]).await.pop().unwrap_or(Err("not sent".to_owned())),
                Err(reason) => Err(reason),
            };
            self.mailboxes.settle_mail(owner, settle(mail, outcome)).await?;
        }
        Ok(count)
    }
}

/// What becomes of one draft of a send.
enum Plan {
    /// Filed before (a retry): answered as it was.
    Filed(Mail),
    /// The same id as an earlier draft of this send.
    SameAs(usize),
    /// Filed now, not sent (refused, or for later).
    New(Mail),
    /// Handed to the router.
    Sending(Mail),
}

fn settled(mut mail: Mail, folder: Folder, status: String) -> Mail {
    mail.folder = folder;
    mail.status = Some(status);
    mail
}

/// A sent draft as it is filed: in `sent` with its archive id, or in `notsent` with why.
fn settle(mut mail: Mail, outcome: Result<i64, String>) -> Mail {
    match outcome {
        Ok(archive_id) => {
            mail.archive_id = Some(archive_id);
            settled(mail, Folder::Sent, SUCCESS.to_owned())
        }
        Err(reason) => settled(mail, Folder::NotSent, reason),
    }
}

/// The core's message for a draft that may go now: from the owner's station, to the
/// account and station it resolved to; refused when its `valid_until` has passed.
fn sendable(owner: &str, mail: &Mail) -> Result<NewMessage, String> {
    if mail.valid_until_ms.is_some_and(|until| until < now_ms()) {
        return Err("the message expired before it was sent (valid_until has passed)".to_owned());
    }
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
    /// Whether this node sends the outbox (in a cluster, the node holding its lease).
    on_duty: bool,
}

/// Most outbox messages one tick sends.
const DUE_PER_TICK: usize = 256;

impl OutboxClock {
    pub fn new(mailbox: Mailbox, every: Duration) -> OutboxClock {
        OutboxClock { mailbox, every, busy: false, on_duty: true }
    }

    /// A clock that waits for `OnDuty` before it sends anything (a node of a cluster).
    pub fn off_duty(self) -> OutboxClock {
        OutboxClock { on_duty: false, ..self }
    }
}

impl Handler<OnDuty> for OutboxClock {
    type Result = ();

    fn handle(&mut self, msg: OnDuty, _: &mut Context<Self>) {
        self.on_duty = msg.0;
    }
}

impl Actor for OutboxClock {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.every, |clock, ctx| {
            if clock.busy || !clock.on_duty {
                return; // The previous tick is still sending, or another node sends.
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
