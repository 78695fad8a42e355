//! `Webhooks`: the apps' delivery worker. It sends what the outbox holds (written with each
//! message, see `storage::AppStorage`) through a [`WebhookPort`] the door provides (which
//! renders the request and makes it), one delivery per chat at a time and at most
//! `per_app` at a time per app, retrying with backoff and jitter until the retry policy
//! gives up (dead letter). It runs on its own actor, never on a web worker; a slow or dead
//! receiver holds up only its own app's deliveries. After a restart it resumes from the
//! store: at least once, never lost.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::LocalBoxFuture;

use crate::clock::now_ms;
use crate::model::apps::{AppRecord, Delivery, DeliveryOutcome, RetryPolicy};
use crate::model::StoredMessage;
use crate::router::{AttachAppOutbox, DeliveriesQueued, Router};
use crate::storage::{AppStorage, Storage};

/// One delivery to make: the app (its webhook and signature token), the delivery, the
/// message.
#[derive(Debug, Clone)]
pub struct WebhookJob {
    pub app: AppRecord,
    pub delivery: Delivery,
    pub message: StoredMessage,
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

/// Most deliveries one look at the outbox takes.
const DUE_PER_LOOK: usize = 512;

pub struct Webhooks {
    apps: Arc<dyn AppStorage>,
    router: Addr<Router>,
    port: Rc<dyn WebhookPort>,
    options: WebhookOptions,
    stats: Arc<WebhookStats>,
    /// App → deliveries in flight.
    in_flight: HashMap<String, usize>,
    chats_in_flight: HashSet<String>,
    looking: bool,
    look_again: bool,
    /// Counts looks; a chat whose attempt ended after look N began is skipped in N's
    /// answer, which may have read it before the attempt was recorded.
    looks: u64,
    chat_settled_at: HashMap<String, u64>,
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
            in_flight: HashMap::new(),
            chats_in_flight: HashSet::new(),
            looking: false,
            look_again: false,
            looks: 0,
            chat_settled_at: HashMap::new(),
        }
    }

    /// Reads what is due and starts what may start now.
    fn look(&mut self, ctx: &mut Context<Self>) {
        if self.looking {
            self.look_again = true;
            return;
        }
        self.looking = true;
        self.looks += 1;
        let this_look = self.looks;
        let due = self.apps.due_deliveries(now_ms(), DUE_PER_LOOK);
        ctx.spawn(due.into_actor(self).map(move |due, worker, ctx| {
            worker.looking = false;
            match due {
                Ok(due) => {
                    for delivery in due {
                        let stale = worker.chat_settled_at.get(&delivery.chat_id).is_some_and(|at| *at >= this_look);
                        if !stale {
                            worker.start(delivery, ctx);
                        }
                    }
                    worker.chat_settled_at.retain(|_, at| *at > this_look);
                }
                Err(e) => tracing::warn!(error = %e, "could not read the webhook outbox"),
            }
            if std::mem::take(&mut worker.look_again) {
                worker.look(ctx);
            }
        }));
    }

    fn start(&mut self, delivery: Delivery, ctx: &mut Context<Self>) {
        let busy = self.in_flight.get(&delivery.app_id).copied().unwrap_or(0);
        if busy >= self.options.per_app || self.chats_in_flight.contains(&delivery.chat_id) {
            return; // Taken again at the next look.
        }
        *self.in_flight.entry(delivery.app_id.clone()).or_default() += 1;
        self.chats_in_flight.insert(delivery.chat_id.clone());
        let (apps, port, policy, stats) =
            (self.apps.clone(), self.port.clone(), self.options.policy, self.stats.clone());
        let attempt = async move {
            let app = apps.app(delivery.app_id.clone()).await.ok().flatten();
            let message = apps.archived_message(delivery.message_id).await.ok().flatten();
            let attempts = delivery.attempts + 1;
            let outcome = match (app, message) {
                (Some(app), _) if app.webhook_url.is_none() => {
                    // Deliveries stopped: kept, looked at again later, not counted.
                    let wait = DeliveryOutcome::Retry { at_ms: now_ms() + 5_000, error: "no webhook set".into() };
                    let _ = apps.settle_delivery(delivery.seq, delivery.attempts, wait).await;
                    return (delivery, false);
                }
                (Some(app), Some(message)) => {
                    match port.deliver(WebhookJob { app, delivery: delivery.clone(), message }).await {
                        Ok(()) => DeliveryOutcome::Delivered,
                        Err(error) => policy.after_failure(&delivery, attempts, now_ms(), jitter(), error),
                    }
                }
                (None, _) => DeliveryOutcome::Dead { error: "the app no longer exists".into() },
                (Some(_), None) => DeliveryOutcome::Dead { error: "the message is no longer archived".into() },
            };
            match &outcome {
                DeliveryOutcome::Delivered => stats.delivered.fetch_add(1, Relaxed),
                DeliveryOutcome::Retry { .. } => {
                    stats.failed.fetch_add(1, Relaxed);
                    stats.retried.fetch_add(1, Relaxed)
                }
                DeliveryOutcome::Dead { .. } => {
                    stats.failed.fetch_add(1, Relaxed);
                    stats.dead.fetch_add(1, Relaxed)
                }
            };
            if let Err(e) = apps.settle_delivery(delivery.seq, attempts, outcome).await {
                tracing::warn!(error = %e, delivery = %delivery.delivery_id, "could not record a webhook delivery");
            }
            (delivery, true)
        };
        ctx.spawn(attempt.into_actor(self).map(|(delivery, settled), worker, ctx| {
            if let Some(n) = worker.in_flight.get_mut(&delivery.app_id) {
                *n = n.saturating_sub(1);
            }
            worker.chats_in_flight.remove(&delivery.chat_id);
            worker.chat_settled_at.insert(delivery.chat_id.clone(), worker.looks);
            if settled {
                worker.look(ctx);
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
        self.look(ctx);
        ctx.run_interval(self.options.tick, |worker, ctx| worker.look(ctx));
    }
}

impl Handler<DeliveriesQueued> for Webhooks {
    type Result = ();

    fn handle(&mut self, _: DeliveriesQueued, ctx: &mut Context<Self>) {
        self.look(ctx);
    }
}

/// Look at the outbox now (a replay made deliveries due).
#[derive(Message)]
#[rtype(result = "()")]
pub struct LookNow;

impl Handler<LookNow> for Webhooks {
    type Result = ();

    fn handle(&mut self, _: LookNow, ctx: &mut Context<Self>) {
        self.look(ctx);
    }
}
