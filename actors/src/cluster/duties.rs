//! `Duties`: the work that one node of a cluster does at a time (the apps' webhook outbox,
//! the HTTP API users' scheduled outbox), each under a lease in the shared store.
//!
//! Every `every`, the node claims or renews each duty's lease until `now + lease`; the worker
//! of a duty hears `OnDuty` when the node takes the lease and when it loses it. A node that
//! could not renew in time (its store is out of reach, its writer stalled) stops before its
//! lease runs out, so two nodes never do a duty at once; a node that died stops renewing and
//! another takes the duty over once the lease ran out.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::clock::now_ms;
use crate::storage::LeaseStorage;

/// The node holds (`true`) or no longer holds a duty's lease. Sent to the duty's worker.
#[derive(Message, Debug, Clone, Copy, PartialEq, Eq)]
#[rtype(result = "()")]
pub struct OnDuty(pub bool);

struct Duty {
    name: String,
    worker: Recipient<OnDuty>,
    held: bool,
    /// When the last claim was granted (epoch ms).
    granted_ms: i64,
}

/// The node's duties and their leases.
pub struct Duties {
    node: String,
    leases: Arc<dyn LeaseStorage>,
    lease: Duration,
    every: Duration,
    duties: Vec<Duty>,
}

impl Duties {
    /// `node`'s duties, each claimed for `lease` every `every` (well under `lease`).
    pub fn new(node: String, leases: Arc<dyn LeaseStorage>, lease: Duration, every: Duration) -> Duties {
        Duties { node, leases, lease, every, duties: Vec::new() }
    }

    /// Adds a duty, `name`, done by `worker` while this node holds its lease.
    pub fn with(mut self, name: &str, worker: Recipient<OnDuty>) -> Duties {
        self.duties.push(Duty { name: name.to_owned(), worker, held: false, granted_ms: 0 });
        self
    }

    fn claim_all(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let lease_ms = self.lease.as_millis() as i64;
        // A holder that could not renew stops while its lease still runs: the next holder
        // may take over only once it ran out.
        let give_up_after = lease_ms - 2 * self.every.as_millis() as i64;
        let mut claims = Vec::with_capacity(self.duties.len());
        for duty in &mut self.duties {
            if duty.held && now - duty.granted_ms > give_up_after {
                tracing::warn!(duty = %duty.name, "could not renew the lease in time; stopping");
                duty.held = false;
                duty.worker.do_send(OnDuty(false));
            }
            claims.push(self.leases.claim_lease(duty.name.clone(), self.node.clone(), now, now + lease_ms));
        }
        for (i, claim) in claims.into_iter().enumerate() {
            ctx.spawn(claim.into_actor(self).map(move |granted, act, _| {
                let duty = &mut act.duties[i];
                let granted = granted.unwrap_or_else(|e| {
                    tracing::warn!(duty = %duty.name, error = %e, "could not claim the lease");
                    false
                });
                if granted {
                    duty.granted_ms = now;
                }
                if granted != duty.held {
                    tracing::info!(duty = %duty.name, held = granted, "duty changed hands");
                    duty.held = granted;
                    duty.worker.do_send(OnDuty(granted));
                }
            }));
        }
    }
}

impl Actor for Duties {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.claim_all(ctx);
        ctx.run_interval(self.every, |act, ctx| act.claim_all(ctx));
    }
}
