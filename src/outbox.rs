//! A byte budget for what waits to be written to one slow client.
//!
//! The connection actor takes from the budget before queueing a frame; the response body
//! gives it back as the HTTP layer pulls bytes for the socket. When a frame does not fit,
//! the client is not keeping up: the connection is closed with a reason instead of letting
//! server memory grow without bound.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;

#[derive(Clone, Debug)]
pub struct OutboxBudget {
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl OutboxBudget {
    pub fn new(limit: usize) -> Self {
        OutboxBudget { queued: Arc::new(AtomicUsize::new(0)), limit }
    }

    /// Reserves `bytes`; false when that would exceed the limit (nothing is reserved then).
    pub fn try_take(&self, bytes: usize) -> bool {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued + bytes <= self.limit).then_some(queued + bytes)
            })
            .is_ok()
    }

    /// Returns `bytes` written out (saturating: frame headers count on this side only).
    pub fn release(&self, bytes: usize) {
        let _ =
            self.queued.fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| Some(queued.saturating_sub(bytes)));
    }
}

/// A response body that gives bytes back to the budget as they are pulled.
pub struct MeteredBody<S> {
    pub inner: S,
    pub budget: OutboxBudget,
}

impl<S, E> Stream for MeteredBody<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    type Item = Result<Bytes, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.budget.release(chunk.len());
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refuses_past_its_limit_and_refills() {
        let budget = OutboxBudget::new(10);
        assert!(budget.try_take(6));
        assert!(!budget.try_take(5));
        assert!(budget.try_take(4));
        budget.release(20);
        assert!(budget.try_take(10));
    }
}
