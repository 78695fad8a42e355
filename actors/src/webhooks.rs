//! `Webhooks`: the apps' delivery worker. It sends what the outbox holds (written with each
//! message, see `storage::AppStorage`) through a [`WebhookPort`] the door provides (which
//! renders the request and makes it), one delivery per chat at a time and at most
//! `per_app` at a time per app, retrying with backoff and jitter until the retry policy
//! gives up (dead letter). It runs on its own actor, never on a web worker; a slow or dead
//! receiver holds up only its own app's deliveries.
//!
//! It reads each delivery from the store once (when told that new ones were committed) into
//! per-chat queues, and writes outcomes in batches: a crash before a batch is written
//! delivers those again after the restart (with the same delivery id), so delivery is at
//! least once and nothing is lost.

use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;

use crate::clock::now_ms;
use crate::cluster::duties::OnDuty;
use crate::model::apps::{AppRecord, ChatMessage, Delivery, DeliveryOutcome, RetryPolicy};
use crate::router::{AttachAppOutbox, DeliveriesQueued, Router};
use crate::storage::{AppStorage, Storage};

/// One delivery to make: the app (its webhook and signature token), the delivery, the
/// message.
#[derive(Debug, Clone)]
pub struct WebhookJob {
    pub app: AppRecord,
    pub delivery: Delivery,
    pub message: ChatMessage,
}

/// How the door sends a delivery: `Ok` when the receiver took it (2xx with
/// `{"status":"SUCCESS"}`), otherwise what went wrong.
pub trait WebhookPort: 'static {
    fn deliver(&self, job: WebhookJob) -> LocalBoxFuture<'static, Result<(), String>>;
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    pub delivered: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
}

/// The delivery worker's settings.
#[derive(Debug, Clone, Copy)]
pub struct WebhookOptions {
    pub policy: RetryPolicy,
    /// Deliveries in flight per app.
    pub per_app: usize,
    /// How often the outbox is looked at besides when told of new deliveries.
    pub tick: Duration,
}

/// Most pending deliveries read from the store at a time.
const READ_PER_LOOK: usize = 1024;
/// Outcomes written together (or at the next tick).
const SETTLE_BATCH: usize = 256;
/// How long an app's record (its webhook, its signature token) is used before it is read again.
const APP_CACHE_MS: i64 = 1000;

pub struct Webhooks {
    apps: Arc<dyn AppStorage>,
    router: Addr<Router>,
    port: Rc<dyn WebhookPort>,
    options: WebhookOptions,
    stats: Arc<WebhookStats>,
    /// Each chat's pending deliveries, in order: only the first is ever in flight.
    queues: HashMap<String, VecDeque<Delivery>>,
    /// The sequences in `queues`.
    queued: HashSet<i64>,
    /// Read everything again once the outcomes in hand are written.
    reread_pending: bool,
    /// The highest sequence read from the store.
    read_up_to: i64,
    reading: bool,
    read_again: bool,
    /// App → deliveries in flight.
    in_flight: HashMap<String, usize>,
    chats_in_flight: HashSet<String>,
    /// Outcomes not yet written: a crash before they are redelivers (the same delivery id).
    unsettled: Vec<(i64, u32, DeliveryOutcome)>,
    settling: bool,
    apps_seen: HashMap<String, (AppRecord, i64)>,
    /// Whether this node delivers (in a cluster, the node holding the outbox's lease).
    on_duty: bool,
}

impl Webhooks {
    pub fn new(
        storage: &Storage,
        router: Addr<Router>,
        port: Rc<dyn WebhookPort>,
        options: WebhookOptions,
        stats: Arc<WebhookStats>,
    ) -> Webhooks {
        Webhooks {
            apps: storage.apps.clone(),
            router,
            port,
            options,
            stats,
            queues: HashMap::new(),
            queued: HashSet::new(),
            reread_pending: false,
            read_up_to: 0,
            reading: false,
            read_again: false,
            in_flight: HashMap::new(),
            chats_in_flight: HashSet::new(),
            unsettled: Vec::new(),
            settling: false,
            apps_seen: HashMap::new(),
            on_duty: true,
        }
    }

    /// A worker that waits for `OnDuty` before it delivers anything (a node of a cluster).
    pub fn off_duty(self) -> Webhooks {
        Webhooks { on_duty: false, ..self }
    }

    /// Reads the deliveries queued since the last read, then sends what may go.
    fn read_new(&mut self, ctx: &mut Context<Self>) {
        if !self.on_duty {
            return;
        }
        if self.reading {
            self.read_again = true;
            return;
        }
        self.reading = true;
        let read = self.apps.pending_deliveries(self.read_up_to, READ_PER_LOOK);
        ctx.spawn(read.into_actor(self).map(|read, worker, ctx| {
            worker.reading = false;
            match read {
                Ok(read) => {
                    let full = read.len() == READ_PER_LOOK;
                    for delivery in read {
                        worker.read_up_to = worker.read_up_to.max(delivery.seq);
                        if worker.queued.insert(delivery.seq) {
                            worker.queues.entry(delivery.chat_id.clone()).or_default().push_back(delivery);
                        }
                    }
                    worker.read_again |= full;
                }
                Err(e) => tracing::warn!(error = %e, "could not read the webhook outbox"),
            }
            worker.dispatch(ctx);
            if std::mem::take(&mut worker.read_again) {
                worker.read_new(ctx);
            }
        }));
    }

    /// Forgets what was read and reads every pending delivery again (after a replay put old
    /// ones back), once the outcomes in hand are written; what is in flight stays.
    fn reread(&mut self, ctx: &mut Context<Self>) {
        if self.settling || !self.unsettled.is_empty() {
            self.reread_pending = true;
            self.write_outcomes(ctx);
            return;
        }
        let in_flight = &self.chats_in_flight;
        self.queues.retain(|chat, queue| {
            queue.truncate(usize::from(in_flight.contains(chat)));
            !queue.is_empty()
        });
        self.queued = self.queues.values().flatten().map(|d| d.seq).collect();
        self.read_up_to = 0;
        self.read_new(ctx);
    }

    /// Starts every chat's first delivery that is due, within each app's limit.
    fn dispatch(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let ready: Vec<Delivery> = self
            .queues
            .iter()
            .filter(|(chat, _)| !self.chats_in_flight.contains(*chat))
            .filter_map(|(_, queue)| queue.front())
            .filter(|d| d.next_attempt_ms <= now)
            .cloned()
            .collect();
        for delivery in ready {
            let busy = self.in_flight.get(&delivery.app_id).copied().unwrap_or(0);
            if busy < self.options.per_app {
                self.start(delivery, ctx);
            }
        }
    }

    fn start(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        *self.in_flight.entry(delivery.app_id.clone()).or_default() += 1;
        self.chats_in_flight.insert(delivery.chat_id.clone());
        let cached = self.apps_seen.get(&delivery.app_id).filter(|(_, at)| now_ms() - at < APP_CACHE_MS);
        let cached = cached.map(|(app, _)| app.clone());
        let (apps, port, policy) = (self.apps.clone(), self.port.clone(), self.options.policy);
        let attempt = async move {
            let app = match cached {
                Some(app) => Some(app),
                None => apps.app(delivery.app_id.clone()).await.ok().flatten(),
            };
            let attempts = delivery.attempts + 1;
            let outcome = match &app {
                Some(app) if app.webhook_url.is_none() => {
                    // Deliveries stopped: kept, looked at again later, not counted.
                    let error = "no webhook set".to_owned();
                    return (
                        delivery,
                        app.clone().into(),
                        DeliveryOutcome::Retry { at_ms: now_ms() + 5_000, error },
                        false,
                    );
                }
                Some(app) => match apps.archived_message(delivery.kind, delivery.message_id).await.ok().flatten() {
                    Some(message) => {
                        let job = WebhookJob { app: app.clone(), delivery: delivery.clone(), message };
                        match port.deliver(job).await {
                            Ok(()) => DeliveryOutcome::Delivered,
                            Err(error) => policy.after_failure(&delivery, attempts, now_ms(), jitter(), error),
                        }
                    }
                    None => DeliveryOutcome::Dead { error: "the message is no longer archived".into() },
                },
                None => DeliveryOutcome::Dead { error: "the app no longer exists".into() },
            };
            (delivery, app, outcome, true)
        };
        ctx.spawn(attempt.into_actor(self).map(|(delivery, app, outcome, counted), worker, ctx| {
            if let Some(app) = app {
                worker.apps_seen.insert(app.id.clone(), (app, now_ms()));
            }
            worker.settle(delivery, outcome, counted, ctx);
            worker.dispatch(ctx);
        }));
    }

    /// Applies an attempt's outcome to the chat's queue and queues it for the store.
    fn settle(&mut self, delivery: Delivery, outcome: DeliveryOutcome, counted: bool, ctx: &mut Context<Self>) {
        if let Some(n) = self.in_flight.get_mut(&delivery.app_id) {
            *n = n.saturating_sub(1);
        }
        self.chats_in_flight.remove(&delivery.chat_id);
        let attempts = if counted { delivery.attempts + 1 } else { delivery.attempts };
        let stats = &self.stats;
        match &outcome {
            DeliveryOutcome::Delivered => stats.delivered.fetch_add(1, Relaxed),
            DeliveryOutcome::Retry { .. } if counted => {
                stats.failed.fetch_add(1, Relaxed);
                stats.retried.fetch_add(1, Relaxed)
            }
            DeliveryOutcome::Retry { .. } => 0,
            DeliveryOutcome::Dead { .. } => {
                stats.failed.fetch_add(1, Relaxed);
                stats.dead.fetch_add(1, Relaxed)
            }
        };
        if let Some(queue) = self.queues.get_mut(&delivery.chat_id) {
            match &outcome {
                DeliveryOutcome::Retry { at_ms, error } => {
                    if let Some(head) = queue.front_mut().filter(|h| h.seq == delivery.seq) {
                        (head.attempts, head.next_attempt_ms, head.last_error) =
                            (attempts, *at_ms, Some(error.clone()));
                    }
                }
                _ => {
                    if queue.front().is_some_and(|h| h.seq == delivery.seq) {
                        queue.pop_front();
                        self.queued.remove(&delivery.seq);
                    }
                    if queue.is_empty() {
                        self.queues.remove(&delivery.chat_id);
                    }
                }
            }
        }
        self.unsettled.push((delivery.seq, attempts, outcome));
        if self.unsettled.len() >= SETTLE_BATCH {
            self.write_outcomes(ctx);
        }
    }

    /// Writes the outcomes not yet written, in one transaction.
    fn write_outcomes(&mut self, ctx: &mut Context<Self>) {
        if self.settling {
            return;
        }
        if self.unsettled.is_empty() {
            if std::mem::take(&mut self.reread_pending) {
                self.reread(ctx);
            }
            return;
        }
        self.settling = true;
        let batch = std::mem::take(&mut self.unsettled);
        let written = self.apps.settle_deliveries(batch);
        ctx.spawn(written.into_actor(self).map(|written, worker, ctx| {
            worker.settling = false;
            if let Err(e) = written {
                tracing::warn!(error = %e, "could not record webhook deliveries; they will be delivered again");
            }
            if worker.unsettled.len() >= SETTLE_BATCH {
                worker.write_outcomes(ctx);
            } else if std::mem::take(&mut worker.reread_pending) {
                worker.reread(ctx);
            }
        }));
    }
}

/// A number in [0, 1) for spreading retries.
fn jitter() -> f64 {
    let mut byte = [0u8; 2];
    getrandom::fill(&mut byte).expect("the operating system's random source is available");
    f64::from(u16::from_le_bytes(byte)) / 65536.0
}

impl Actor for Webhooks {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.router.do_send(AttachAppOutbox { outbox: ctx.address().recipient() });
        self.read_new(ctx);
        // Room messages are not announced: each tick also reads what was queued since.
        ctx.run_interval(self.options.tick, |worker, ctx| {
            worker.write_outcomes(ctx);
            worker.read_new(ctx);
        });
    }
}

impl Handler<DeliveriesQueued> for Webhooks {
    type Result = ();

    fn handle(&mut self, _: DeliveriesQueued, ctx: &mut Context<Self>) {
        self.read_new(ctx);
    }
}

impl Handler<OnDuty> for Webhooks {
    type Result = ();

    fn handle(&mut self, msg: OnDuty, ctx: &mut Context<Self>) {
        self.on_duty = msg.0;
        if self.on_duty {
            // What another node left may have been settled since: read it all again.
            self.reread(ctx);
        } else {
            // What is in flight finishes and is written; nothing new starts.
            let in_flight = &self.chats_in_flight;
            self.queues.retain(|chat, queue| {
                queue.truncate(usize::from(in_flight.contains(chat)));
                !queue.is_empty()
            });
            self.queued = self.queues.values().flatten().map(|d| d.seq).collect();
        }
    }
}

/// Read the whole outbox again now (a replay put dead deliveries back).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LookNow;

impl Handler<LookNow> for Webhooks {
    type Result = ();

    fn handle(&mut self, _: LookNow, ctx: &mut Context<Self>) {
        self.reread(ctx);
    }
}
