//! Long polls of the event log (`GET /api/v1/events?order=asc&after=…&wait=N`): a request whose
//! page is empty waits until an event commits or `wait` runs out, then reads again.
//!
//! A waiter holds no database connection while it waits: it reads a page, and if that page is
//! empty, sleeps on the store's commit signal ([`dossier_store::Store::event_commits`]), which
//! this node's commits tell, and on a timer of at most [`RECHECK`], which catches what other
//! nodes commit to a shared database. How many wait at once is bounded, and all of them answer
//! (with what they have) as soon as the server is told to stop.

use std::time::Duration;

use dossier_store::{EventPage, EventQuery, Store};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::error::ApiError;

/// The longest a client may ask to wait.
pub const MAX_WAIT_SECS: u32 = 30;

/// How often, by default, a waiter reads again when nothing told it of a commit: events
/// committed by another node reach it within this.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The long polls under way on this node.
#[derive(Debug)]
pub struct Waiters {
    max: usize,
    recheck: Duration,
    permits: Semaphore,
    stop: watch::Sender<bool>,
}

impl Waiters {
    /// At most `max` requests wait at once; one more is told to come back. A waiter reads
    /// again at least every `recheck`.
    #[must_use]
    pub fn new(max: usize, recheck: Duration) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            max,
            recheck,
            permits: Semaphore::new(max),
            stop: watch::Sender::new(false),
        }
    }

    /// How many requests wait now.
    #[must_use]
    pub fn waiting(&self) -> usize {
        self.max - self.permits.available_permits()
    }

    /// Ends every wait under way, and any that starts later, at once: the server is stopping.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Reads the page `q` asks for; when it is empty, waits up to `wait` for an event to
    /// commit and reads again. An empty page after `wait` is the answer that nothing came.
    ///
    /// # Errors
    /// What the store says of the query; unavailable when too many requests wait already.
    pub async fn page(
        &self,
        store: &dyn Store,
        q: &EventQuery,
        wait: Duration,
    ) -> Result<EventPage, ApiError> {
        let read = || async {
            store
                .list_events(q)
                .await
                .map_err(|e| ApiError::from_store(e, "event"))
        };
        // Subscribed before the first read, so a commit between that read and the wait
        // below still wakes it.
        let mut commits = store.event_commits();
        let mut page = read().await?;
        if !page.items.is_empty() || wait.is_zero() {
            return Ok(page);
        }
        let Ok(_permit) = self.permits.try_acquire() else {
            return Err(ApiError::Unavailable(
                "wait: too many requests are waiting for events; ask again without wait, or later"
                    .into(),
            ));
        };
        let mut stop = self.stop.subscribe();
        let deadline = Instant::now() + wait;
        let mut told = true;
        loop {
            if *stop.borrow_and_update() {
                return Ok(page);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(page);
            }
            let tick = (deadline - now).min(self.recheck);
            tokio::select! {
                changed = commits.changed(), if told => {
                    // The store's signal went: only the timer is left to read again on.
                    told = changed.is_ok();
                }
                () = tokio::time::sleep(tick) => {}
                _ = stop.changed() => return Ok(page),
            }
            page = read().await?;
            if !page.items.is_empty() {
                return Ok(page);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_is_always_room_for_one_waiter() {
        assert_eq!(Waiters::new(0, RECHECK).permits.available_permits(), 1);
    }
}
