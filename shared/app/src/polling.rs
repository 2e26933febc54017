//! Polling: on every tick, each channel store whose interval has passed has the orders changed
//! since its cursor fetched through the channel port (with an overlap, so an order changed during
//! the last fetch is not missed) and queued for the order processor, which ignores versions it
//! already has.
//!
//! Stores are polled side by side, at most [`CONCURRENT_STORES`] at a time, and each on its own:
//! one store's failure (its channel down, its credentials wrong, its record unreadable) is logged
//! and listed in order health, and every other store still advances its cursor. An order that
//! cannot be read or queued is kept and listed, never dropped in silence.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use shipsync_channels::{Channel, ChannelError};
use shipsync_domain::ids::StoreId;
use shipsync_domain::orders::IncomingLine;
use shipsync_domain::orders::{
    ChannelEvent, ChannelEventMessage, IncomingOrder, OrderProblem, PollResume, PollState, PolledStore, ProblemKind,
    sha256_hex,
};
use shipsync_domain::tenant::ChannelStore;
use shipsync_domain::time::Clock;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::Failure;
use crate::ports::{ChannelGateway, EventQueue, Repositories};

/// Fetches reach back this far before the cursor: an order updated while the previous fetch ran
/// may carry a time just before where that fetch ended.
pub const OVERLAP: Duration = Duration::minutes(5);

/// How far back the first fetch of a store reaches.
pub const FIRST_FETCH: Duration = Duration::days(1);

/// Pages fetched per store per tick: a large backlog is caught up over several ticks.
pub const PAGES_PER_TICK: usize = 20;

/// The longest one store's listing runs in a tick before it stops and resumes at the next: the
/// poller's Lambda must end well inside its 300 seconds, whatever a channel's pages cost.
pub const LISTING_TIME: std::time::Duration = std::time::Duration::from_secs(90);

/// Stores polled at the same time: enough that a slow shop does not hold up the rest, few
/// enough to stay within the Lambda's connections and the table's capacity.
pub const CONCURRENT_STORES: usize = 4;

/// The largest event queued: an SQS message holds 256 KiB, with room for the envelope.
pub const MAX_EVENT_BYTES: usize = 250 * 1024;

/// Fetches orders from channels that need asking, and queues them.
#[derive(Clone)]
pub struct OrderPolling<R, G, Q> {
    repositories: R,
    /// Connects each store to its channel.
    channels: G,
    /// The order processor's queue.
    queue: Q,
    clock: Clock,
    /// Pages one store's listing reads per tick.
    pages_per_tick: usize,
}

/// What a tick did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    pub stores_polled: usize,
    pub orders_queued: usize,
    /// Orders kept and listed in order health instead of queued (unreadable, or too large).
    pub orders_kept: usize,
    /// Stores whose fetch failed (logged and listed in order health; their cursor stays, so the
    /// next tick tries again).
    pub failures: Vec<String>,
}

/// What polling one store did.
#[derive(Debug, Default, PartialEq, Eq)]
struct Polled {
    queued: usize,
    kept: usize,
}

/// Runs `work` on every item, at most `limit` at a time, and returns the results in the order
/// they finish. A task that panics is reported as an error, and the others go on.
pub async fn run_bounded<I, T, F, Fut>(items: Vec<I>, limit: usize, work: F) -> Vec<Result<T, Failure>>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(I) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(limit.max(1)));
    let mut tasks = JoinSet::new();
    for item in items {
        let permits = Arc::clone(&permits);
        let future = work(item);
        tasks.spawn(async move {
            // The semaphore is never closed, so a permit always comes.
            let _permit = permits.acquire_owned().await;
            future.await
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        results.push(joined.map_err(|failure| Failure::permanent(format!("a polling task failed: {failure}"))));
    }
    results
}

impl<R, G, Q> OrderPolling<R, G, Q>
where
    R: Repositories,
    G: ChannelGateway + Clone + 'static,
    Q: EventQueue + Clone + 'static,
{
    pub fn new(repositories: R, channels: G, queue: Q, clock: Clock) -> Self {
        Self { repositories, channels, queue, clock, pages_per_tick: PAGES_PER_TICK }
    }

    /// Reads at most `pages` pages of a store's listing per tick (tests make backlogs small).
    pub fn with_pages_per_tick(mut self, pages: usize) -> Self {
        self.pages_per_tick = pages.max(1);
        self
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Connects stores through `channels` instead.
    pub fn with_channels(mut self, channels: G) -> Self {
        self.channels = channels;
        self
    }

    /// Polls every store that is due, [`CONCURRENT_STORES`] at a time.
    pub async fn tick(&self) -> Result<PollReport, Failure> {
        let now = (self.clock)();
        let listed = self.repositories.polled_stores().await?;
        let results = run_bounded(listed, CONCURRENT_STORES, |entry| {
            let polling = self.clone();
            async move {
                let store = entry.store_id;
                (store, polling.poll_store(entry, now).await)
            }
        })
        .await;
        let mut report = PollReport::default();
        for result in results {
            match result {
                Ok((_, Ok(Some(polled)))) => {
                    report.stores_polled += 1;
                    report.orders_queued += polled.queued;
                    report.orders_kept += polled.kept;
                }
                Ok((_, Ok(None))) => {}
                Ok((store, Err(problem))) => report.failures.push(format!("store {store}: {}", problem.chain())),
                Err(problem) => report.failures.push(problem.chain()),
            }
        }
        Ok(report)
    }

    /// Polls one store if it is due; a failure is listed in order health (and cleared by the
    /// next success). `Ok(None)`: not due, or not a store that polls.
    async fn poll_store(&self, entry: PolledStore, now: DateTime<Utc>) -> Result<Option<Polled>, Failure> {
        let store = match self.repositories.channel_store(entry.retailer_id, entry.store_id).await {
            Ok(Some(store)) => store,
            Ok(None) => return Ok(None),
            Err(failure) => return Err(self.failed(&entry, None, failure, now).await),
        };
        if store.channel.shares_renewed_token() {
            // Renewed whether the store polls or not: its exports use the same token.
            self.renew_token(&store, now).await;
        }
        let every = store.ingestion.poll_orders_every_minutes;
        if every == 0 || !store.channel.lists_orders() {
            return Ok(None);
        }
        let state = match self.repositories.poll_state(entry.store_id).await {
            Ok(state) => state,
            Err(failure) => {
                return Err(self.failed(&entry, None, failure, now).await);
            }
        };
        if state.last_polled_at.is_some_and(|last| now - last < Duration::minutes(i64::from(every))) {
            return Ok(None);
        }
        match self.poll(&store, state.clone(), now).await {
            Ok(polled) => Ok(Some(polled)),
            Err(problem) => Err(self.failed(&entry, Some(state), problem, now).await),
        }
    }

    /// Renews the store's shared token when it is due. A failure is logged and listed in order
    /// health (the token still works until it expires; every tick tries again), and cleared by
    /// the next renewal.
    async fn renew_token(&self, store: &ChannelStore, now: DateTime<Utc>) {
        match self.renew_token_if_due(store, now).await {
            Ok(false) => {}
            Ok(true) => {
                if let Err(failure) =
                    self.repositories.delete_problem(store.retailer_id, &renewal_problem_key(store.id)).await
                {
                    warn!(error = ?failure, store_id = %store.id, "could not clear a token renewal problem");
                }
            }
            Err(problem) => {
                error!(store_id = %store.id, problem = %problem.chain(), "token renewal failed");
                let listed = OrderProblem {
                    key: renewal_problem_key(store.id),
                    kind: ProblemKind::TokenRenewalFailed,
                    order_id: None,
                    store_id: store.id,
                    channel_order_id: String::new(),
                    order_number: String::new(),
                    reason: format!(
                        "renewing {}'s {} token failed: {}. The current token works until it expires; every \
                         tick tries again",
                        store.name,
                        store.channel.name(),
                        problem.chain()
                    ),
                    since: now,
                };
                if let Err(failure) = self.repositories.put_problem(store.retailer_id, &listed).await {
                    error!(error = ?failure, store_id = %store.id, "could not list a token renewal failure");
                }
            }
        }
    }

    /// Renews the store's token if it is due, one container at a time: the renewal is leased on
    /// the credentials record, the credentials read again under the lease (another container may
    /// have just renewed them), the token renewed at the channel (which revokes the older ones)
    /// and the new one stored under the lease. `Ok(true)`: renewed here.
    async fn renew_token_if_due(&self, store: &ChannelStore, now: DateTime<Utc>) -> Result<bool, Failure> {
        let (retailer, id) = (store.retailer_id, store.id);
        let credentials = self.repositories.credentials(retailer, id).await?;
        if self.channels.renew_by(store, &credentials).is_none_or(|by| by > now) {
            return Ok(false);
        }
        let lease = now + RENEWAL_LEASE;
        if !self.repositories.lease_credential_renewal(retailer, id, now, lease).await? {
            info!(store_id = %id, "another container renews the store's token");
            return Ok(false);
        }
        self.repositories.forget_settings(retailer);
        let current = self.repositories.credentials(retailer, id).await?;
        if self.channels.renew_by(store, &current).is_none_or(|by| by > now) {
            return Ok(false);
        }
        let renewed = match self.channels.renew_credentials(store, &current).await {
            Ok(renewed) => renewed,
            Err(failure) => {
                // The channel renewed nothing: the next tick may try at once.
                if let Err(release) = self.repositories.release_credential_renewal(retailer, id, lease).await {
                    warn!(error = ?release, store_id = %id, "could not end a token renewal's lease");
                }
                return Err(failure);
            }
        };
        if !self.repositories.save_renewed_credentials(retailer, id, &renewed, lease).await? {
            return Err(Failure::retryable(
                "the renewed token was not stored: the renewal's lease ran out first (the channel may have \
                 revoked the stored token; the next tick renews again)",
            ));
        }
        info!(store_id = %id, "the store's token is renewed");
        Ok(true)
    }

    /// Logs a store's failure and lists it in order health, keeping the time it was first seen
    /// where its polling state could be read (and never writing over a state it did not read).
    /// Returns the problem.
    async fn failed(
        &self,
        entry: &PolledStore,
        state: Option<PollState>,
        problem: Failure,
        now: DateTime<Utc>,
    ) -> Failure {
        error!(store_id = %entry.store_id, problem = %problem.chain(), "polling failed");
        let since = state.as_ref().and_then(|state| state.failing_since).unwrap_or(now);
        let listed = OrderProblem {
            key: poll_problem_key(entry.store_id),
            kind: ProblemKind::PollFailed,
            order_id: None,
            store_id: entry.store_id,
            channel_order_id: String::new(),
            order_number: String::new(),
            reason: format!(
                "fetching the store's orders failed: {}. Its cursor stays where it was and every tick \
                 tries again",
                problem.chain()
            ),
            since,
        };
        if let Err(failure) = self.repositories.put_problem(entry.retailer_id, &listed).await {
            error!(error = ?failure, store_id = %entry.store_id, "could not list a polling failure");
        }
        if let Some(state) = state.filter(|state| state.failing_since.is_none()) {
            let failing = PollState { failing_since: Some(since), ..state };
            if let Err(failure) = self.repositories.save_poll_state(entry.store_id, &failing).await {
                warn!(error = ?failure, store_id = %entry.store_id, "could not record a polling failure");
            }
        }
        problem
    }

    async fn poll(&self, store: &ChannelStore, state: PollState, now: DateTime<Utc>) -> Result<Polled, Failure> {
        let credentials = self.repositories.credentials(store.retailer_id, store.id).await?;
        let channel = self.channels.connect(store, &credentials)?;
        // An unfinished listing goes on where it stopped; else one starts from the cursor.
        let (since, mut after, mut newest) = match &state.resume {
            Some(resume) => (resume.since, Some(resume.page.clone()), resume.newest),
            None => (state.cursor.map_or(now - FIRST_FETCH, |cursor| cursor - OVERLAP), None, None),
        };
        let started = std::time::Instant::now();
        let mut polled = Polled::default();
        // Accepted only once the listing is read: accepting changes an order (and where it sorts),
        // which would shift the pages still to come and hide an order from this poll and the next.
        let mut to_accept = Vec::new();
        for _ in 0..self.pages_per_tick {
            let page = match channel.orders_since(since, after.as_deref()).await {
                Ok(page) => page,
                Err(failure) if state.resume.is_some() && !matches!(failure, ChannelError::Retryable { .. }) => {
                    // A resumed page the channel no longer knows (its token expired): the next
                    // tick lists again from the cursor, which never moved past what is unread.
                    let restart = PollState { resume: None, ..state.clone() };
                    self.repositories.save_poll_state(store.id, &restart).await?;
                    return Err(failure.into());
                }
                Err(failure) => return Err(failure.into()),
            };
            for unreadable in page.unreadable {
                let reason = format!("{} listed an order shipsync cannot read: {}", store.name, unreadable.reason);
                self.keep(store, &unreadable.node, &reason, now).await?;
                polled.kept += 1;
            }
            for order in page.orders {
                newest = Some(newest.map_or(order.updated_at, |n| n.max(order.updated_at)));
                if order.lines.iter().any(|line| line.awaiting_acceptance) {
                    to_accept.push(order.clone());
                }
                if self.queue(store, order, "poll", now).await? {
                    polled.queued += 1;
                } else {
                    polled.kept += 1;
                }
            }
            after = page.next;
            if after.is_none() || started.elapsed() >= LISTING_TIME {
                break;
            }
        }
        for order in &to_accept {
            self.accept_routed_lines(store, channel.as_ref(), order, now).await?;
        }
        // Saved only after every order up to it was queued (or kept): a failure above fetches them
        // again. The cursor moves only once the listing is read to its end: a channel need not
        // list oldest first, and an unread page may hold an older change.
        let next = match after {
            Some(page) => PollState {
                cursor: state.cursor,
                last_polled_at: Some(now),
                failing_since: None,
                resume: Some(PollResume { since, page, newest }),
            },
            None => PollState {
                cursor: state.cursor.max(newest),
                last_polled_at: Some(now),
                failing_since: None,
                resume: None,
            },
        };
        self.repositories.save_poll_state(store.id, &next).await?;
        if state.failing_since.is_some() {
            self.repositories.delete_problem(store.retailer_id, &poll_problem_key(store.id)).await?;
            info!(store_id = %store.id, "polling works again: its problem is cleared");
        }
        info!(store_id = %store.id, queued = polled.queued, kept = polled.kept, cursor = ?next.cursor, "polled");
        Ok(polled)
    }

    /// Reads one order a channel's notification names (Amazon's `ORDER_CHANGE`: a trigger, not
    /// the order) and queues it, as a poll would. `Ok(false)`: the store or the order is not
    /// known (nothing to do); a repeated notification queues the same version, which the
    /// processor ignores.
    pub async fn refresh_notified_order(
        &self,
        entry: PolledStore,
        channel_order_id: &ChannelOrderId,
        source: &str,
    ) -> Result<bool, Failure> {
        let now = (self.clock)();
        let Some(store) = self.repositories.channel_store(entry.retailer_id, entry.store_id).await? else {
            return Ok(false);
        };
        // A store whose intake is off (orders entered by hand, say) takes no order by notification either.
        if store.ingestion.poll_orders_every_minutes == 0 {
            info!(store_id = %store.id, order = %channel_order_id, "notified order not read: the store's intake is off");
            return Ok(false);
        }
        let credentials = self.repositories.credentials(store.retailer_id, store.id).await?;
        let channel = self.channels.connect(&store, &credentials)?;
        let Some(order) = channel.order(channel_order_id).await? else {
            warn!(store_id = %store.id, order = %channel_order_id, "notified order not found at the channel");
            return Ok(false);
        };
        self.accept_routed_lines(&store, channel.as_ref(), &order, now).await?;
        self.queue(&store, order, source, now).await
    }

    /// Applies an Amazon `ORDER_CHANGE` notification from the deployment's notification queue:
    /// the order it names is read from Amazon (the notification is a trigger, not the order) and
    /// queued, so a notification delivered twice queues one version twice, which the processor
    /// ignores. One that cannot be read fails for good (it ends in the dead-letter queue, which
    /// is alarmed); one for a seller no store has is logged and dropped: no store can apply it.
    pub async fn apply_amazon_notification(&self, body: &str) -> Result<(), Failure> {
        let change = shipsync_channels::parse_amazon_order_change(body)
            .map_err(|problem| Failure::permanent(format!("an Amazon notification cannot be read: {problem}")))?;
        let routed = self.repositories.amazon_store(&change.seller_id, &change.marketplace_id).await?;
        let Some(store) = routed else {
            warn!(
                seller_id = %change.seller_id,
                marketplace_id = %change.marketplace_id,
                notification_id = %change.notification_id,
                "Amazon notification for a seller no store has: dropped"
            );
            return Ok(());
        };
        let queued = self.refresh_notified_order(store, &change.amazon_order_id, "notification").await?;
        info!(order = %change.amazon_order_id, notification_id = %change.notification_id, queued, "Amazon notification applied");
        Ok(())
    }

    /// Accepts the lines a channel holds for the seller's acceptance (Back Market) once they are
    /// routed to a vendor; a line no product claims stays unaccepted (its problem says why). A
    /// refusal is listed in order health, and the order is still queued: the export accepts any
    /// line it ships.
    async fn accept_routed_lines(
        &self,
        store: &ChannelStore,
        channel: &dyn Channel,
        order: &IncomingOrder,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let waiting: Vec<&IncomingLine> = order.lines.iter().filter(|line| line.awaiting_acceptance).collect();
        // An order shipsync cannot apply (an id or SKU too long for a key) is kept by `queue`, not accepted.
        if waiting.is_empty() || order.cancelled || shipsync_domain::orders::check_applicable(order).is_err() {
            return Ok(());
        }
        let skus: Vec<Sku> = waiting.iter().filter_map(|line| line.sku.clone()).collect();
        let products = self.repositories.products_by_sku(store.retailer_id, &skus).await?;
        let routed: Vec<IncomingLine> = waiting
            .into_iter()
            .filter(|line| line.sku.as_ref().is_some_and(|sku| products.contains_key(sku)))
            .cloned()
            .collect();
        if routed.is_empty() {
            return Ok(());
        }
        let key = format!("acceptance_failed:{}:{}", store.id, order.channel_order_id);
        match channel.accept_lines(&order.channel_order_id, &routed).await {
            Ok(()) => {
                info!(store_id = %store.id, order = %order.channel_order_id, lines = routed.len(), "order lines accepted");
                // A refusal listed by an earlier poll is settled (a rare write: acceptance comes once).
                self.repositories.delete_problem(store.retailer_id, &key).await
            }
            // Worth another try (a throttle page, a 5xx): the store's poll fails and the next tick
            // lists the order and accepts it again.
            Err(retry @ shipsync_channels::ChannelError::Retryable { .. }) => Err(retry.into()),
            Err(refused) => {
                let listed = OrderProblem {
                    key,
                    kind: ProblemKind::AcceptanceFailed,
                    order_id: None,
                    store_id: store.id,
                    channel_order_id: order.channel_order_id.to_string(),
                    order_number: order.number.clone(),
                    reason: format!(
                        "{} did not accept the order's lines ({refused}); the shipment's export accepts them \
                         again, or accept them at the channel",
                        store.name
                    ),
                    since: now,
                };
                warn!(store_id = %store.id, order = %order.channel_order_id, problem = %refused, "order lines not accepted");
                self.repositories.put_problem(store.retailer_id, &listed).await
            }
        }
    }

    /// Queues an order for the processor; `false` when it cannot be applied and was kept instead.
    async fn queue(
        &self,
        store: &ChannelStore,
        order: IncomingOrder,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Failure> {
        let event = ChannelEvent::OrderChanged { order };
        let message = ChannelEventMessage {
            retailer_id: Some(store.retailer_id),
            store_id: Some(store.id),
            source: format!("{} {how}", store.channel.name()),
            event,
        };
        let body = serde_json::to_string(&message).map_err(|e| Failure::permanent(e.to_string()))?;
        let unapplicable = match message.event.check_applicable() {
            Err(problem) => Some(problem),
            Ok(()) if body.len() > MAX_EVENT_BYTES => Some(format!(
                "the order is too large for one queue message ({} bytes; at most {MAX_EVENT_BYTES})",
                body.len()
            )),
            Ok(()) => None,
        };
        if let Some(problem) = unapplicable {
            let payload = serde_json::from_str(&body).unwrap_or(Value::Null);
            self.keep(store, &payload, &format!("a polled order cannot be applied: {problem}"), now).await?;
            return Ok(false);
        }
        self.queue.queue_event(body).await?;
        Ok(true)
    }

    /// Keeps an order that cannot be applied and lists it in order health.
    async fn keep(
        &self,
        store: &ChannelStore,
        payload: &Value,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let bytes = payload.to_string();
        let key = format!("unapplicable:{}:{}", store.id, sha256_hex(bytes.as_bytes()));
        let kept = self.repositories.keep_payload(store.retailer_id, &key, bytes.as_bytes(), now).await?;
        let listed = OrderProblem {
            key: key.clone(),
            kind: ProblemKind::UnapplicablePayload,
            order_id: None,
            store_id: store.id,
            channel_order_id: String::new(),
            order_number: String::new(),
            reason: format!("{reason}. The order ({}) is kept as {key}", kept.describe()),
            since: now,
        };
        self.repositories.put_problem(store.retailer_id, &listed).await?;
        warn!(store_id = %store.id, %reason, "polled order kept: it cannot be applied");
        Ok(())
    }
}

/// The key of a store's "polling failed" problem.
pub fn poll_problem_key(store: StoreId) -> String {
    format!("poll_failed:{store}")
}

/// The key of a store's "token renewal failed" problem.
pub fn renewal_problem_key(store: StoreId) -> String {
    format!("token_renewal_failed:{store}")
}

/// How long one container holds a token renewal: longer than a channel call may take, so that
/// the renewed token is stored before another container may renew it again.
pub const RENEWAL_LEASE: Duration = Duration::minutes(2);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn stores_run_side_by_side_but_never_more_than_the_bound() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let results = run_bounded((0..12).collect(), 4, |n: usize| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if n == 3 { Err(format!("store {n} failed")) } else { Ok(n) }
            }
        })
        .await;
        assert_eq!(most.load(Ordering::SeqCst), 4, "four at a time, not one and not twelve");
        assert_eq!(results.len(), 12);
        let failed: Vec<_> = results.iter().filter(|r| matches!(r, Ok(Err(_)))).collect();
        assert_eq!(failed.len(), 1, "one store's failure leaves the others' results");
    }
}
