//! Merchant-driven cancellations: asked for through the API (the retailer, or a vendor that cannot
//! fulfil), applied to the purchase order with their order health problem in one write, and
//! pushed to the channel once by the exporter ([`CancellationPush`]).

use chrono::{DateTime, Duration, Utc};
use shipsync_channels::CancelOrder;
use shipsync_domain::access::Principal;
use shipsync_domain::cancellations::{
    Cancellation, CancellationInput, CancellationRef, CancellationState, ChannelUpdate, ProblemUpdate, PushAction,
    draft_cancellation, push_plan,
};
use shipsync_domain::ids::PurchaseOrderId;
use shipsync_domain::labels::AttachedBy;
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::tenant::ChannelStore;
use shipsync_domain::time::Clock;
use tracing::{info, warn};

use crate::Failure;
use crate::optimistic::retry_on_conflict;
use crate::ports::{Cancellations, ChannelGateway, ExportPlanner, Repositories};
use crate::shipments::{release_order_if_shipped, visible_purchase_order};

/// How long a push request for a record not written yet (a cancellation, a return) is retried:
/// the request is queued
/// just before the record is written, so it may arrive first.
pub const MISSING_RECORD_GRACE: Duration = Duration::minutes(5);

/// Cancellations as the API offers them.
#[derive(Clone)]
pub struct CancellationDesk<R, P> {
    repositories: R,
    planner: P,
    clock: Clock,
}

impl<R: Repositories + Cancellations, P: ExportPlanner> CancellationDesk<R, P> {
    pub fn new(repositories: R, planner: P, clock: Clock) -> Self {
        Self { repositories, planner, clock }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// `POST /purchase_orders/{id}/cancellations.json`: the retailer's cancels at once; a
    /// vendor's waits for approval where its store says so. `id` is the new cancellation's id,
    /// the same on every attempt.
    pub async fn request(
        &self,
        principal: &Principal,
        po_id: PurchaseOrderId,
        input: &CancellationInput,
        id: u64,
    ) -> Result<Cancellation, Failure> {
        retry_on_conflict(|| async {
            let po = visible_purchase_order(&self.repositories, principal, po_id).await?;
            let po = self.repositories.purchase_order_now(po.id).await?.unwrap_or(po);
            let store = self.store_of(&po).await?;
            let by = if principal.is_retailer_user() { AttachedBy::Retailer } else { AttachedBy::Vendor };
            let drafted = draft_cancellation(
                &po,
                input,
                by,
                store.ingestion.approve_vendor_cancellations,
                store.export.send_tracking,
                id,
                self.now(),
            )?;
            if drafted.state == CancellationState::AwaitingApproval {
                let problem = drafted.problem_update(None, self.now());
                self.repositories.save_cancellation(&drafted, None, &problem).await?;
                info!(cancellation_id = id, purchase_order_id = %po.id, "vendor's cancellation awaits approval");
                return Ok(drafted);
            }
            self.cancel_units(drafted, None, &po, &store).await
        })
        .await
    }

    /// `POST /cancellations/{id}/approve.json` (retailer users): a vendor's request cancels its
    /// units now, if they are still open.
    pub async fn approve(&self, principal: &Principal, id: u64) -> Result<Cancellation, Failure> {
        retailer_only(principal)?;
        retry_on_conflict(|| async {
            let current = self.visible(principal, id).await?;
            if current.state != CancellationState::AwaitingApproval {
                return Err(not_awaiting(&current));
            }
            let po = self
                .repositories
                .purchase_order_now(current.purchase_order_id)
                .await?
                .ok_or_else(|| Failure::NotFound(format!("purchase order {}", current.purchase_order_id)))?;
            let store = self.store_of(&po).await?;
            let mut approved = current.clone();
            approved.version += 1;
            approved.updated_at = self.now();
            self.cancel_units(approved, Some(&current), &po, &store).await
        })
        .await
    }

    /// `POST /cancellations/{id}/decline.json` (retailer users): nothing is cancelled.
    pub async fn decline(&self, principal: &Principal, id: u64) -> Result<Cancellation, Failure> {
        retailer_only(principal)?;
        retry_on_conflict(|| async {
            let current = self.visible(principal, id).await?;
            if current.state != CancellationState::AwaitingApproval {
                return Err(not_awaiting(&current));
            }
            let declined = current.with_state(CancellationState::Declined { at: self.now() }, self.now());
            let problem = declined.problem_update(Some(&current), self.now());
            self.repositories.save_cancellation(&declined, None, &problem).await?;
            info!(cancellation_id = id, "vendor's cancellation declined");
            Ok(declined)
        })
        .await
    }

    /// `POST /cancellations/{id}/push.json` (retailer users): a push that failed is tried again.
    pub async fn push_again(&self, principal: &Principal, id: u64) -> Result<Cancellation, Failure> {
        retailer_only(principal)?;
        retry_on_conflict(|| async {
            let current = self.visible(principal, id).await?;
            let again = current.push_again(self.now())?;
            self.queue(&again).await?;
            let problem = again.problem_update(Some(&current), self.now());
            self.repositories.save_cancellation(&again, None, &problem).await?;
            Ok(again)
        })
        .await
    }

    /// A cancellation the caller may see: its retailer's, and for a vendor its own purchase order's.
    pub async fn visible(&self, principal: &Principal, id: u64) -> Result<Cancellation, Failure> {
        match self.repositories.retailer_cancellation(principal.retailer_id, id).await? {
            Some(found) if principal.can_see(found.retailer_id, found.vendor_id) => Ok(found),
            _ => Err(Failure::NotFound(format!("cancellation {id}"))),
        }
    }

    /// A purchase order's cancellations, oldest first (`GET /purchase_orders/{id}/cancellations.json`).
    pub async fn of_purchase_order(
        &self,
        principal: &Principal,
        po_id: PurchaseOrderId,
    ) -> Result<Vec<Cancellation>, Failure> {
        let po = visible_purchase_order(&self.repositories, principal, po_id).await?;
        self.repositories.purchase_order_cancellations(po.retailer_id, po.id).await
    }

    /// Cancels the units on `po` (as read), decides how the channel hears of it, queues the
    /// push before the write (the exporter retries a request that comes first), writes all in
    /// one transaction, and releases shipments that waited for the now complete order.
    async fn cancel_units(
        &self,
        mut cancellation: Cancellation,
        before: Option<&Cancellation>,
        po: &PurchaseOrder,
        store: &ChannelStore,
    ) -> Result<Cancellation, Failure> {
        let now = self.now();
        let after = cancellation.apply_to(po, now)?;
        let mut others = Vec::new();
        if let Some(channel_order) = &po.channel_order_id {
            for other in
                self.repositories.channel_order_purchase_orders(po.retailer_id, po.store_id, channel_order).await?
            {
                if other != po.id
                    && let Some(found) = self.repositories.purchase_order_now(other).await?
                {
                    others.push(found);
                }
            }
        }
        cancellation.record_totals(&after);
        let (whole, state) = push_plan(&cancellation, &after, &others, store.channel);
        cancellation.whole_order = whole;
        cancellation.state = state;
        cancellation.updated_at = now;
        if matches!(cancellation.state, CancellationState::Pushing(_)) {
            self.queue(&cancellation).await?;
        }
        let problem = cancellation.problem_update(before, now);
        self.repositories.save_cancellation(&cancellation, Some(&after), &problem).await?;
        info!(
            cancellation_id = cancellation.id,
            purchase_order_id = %po.id,
            state = cancellation.state.name(),
            whole_order = whole,
            "units cancelled"
        );
        if let Err(failure) =
            release_order_if_shipped(&self.repositories, &self.planner, &self.clock, &after, store, None).await
        {
            // The cancellation stands; the sweeper and the next shipment write release them too.
            warn!(error = %failure.chain(), purchase_order_id = %po.id, "could not release the order's waiting shipments");
        }
        Ok(cancellation)
    }

    async fn queue(&self, cancellation: &Cancellation) -> Result<(), Failure> {
        self.planner
            .queue_update(ChannelUpdate::Cancellation(CancellationRef {
                retailer_id: cancellation.retailer_id,
                purchase_order_id: cancellation.purchase_order_id,
                id: cancellation.id,
            }))
            .await
    }

    async fn store_of(&self, po: &PurchaseOrder) -> Result<ChannelStore, Failure> {
        self.repositories
            .channel_store(po.retailer_id, po.store_id)
            .await?
            .ok_or_else(|| Failure::permanent(format!("store {} of purchase order {} not found", po.store_id, po.id)))
    }
}

fn retailer_only(principal: &Principal) -> Result<(), Failure> {
    if principal.is_retailer_user() {
        Ok(())
    } else {
        Err(Failure::Forbidden("the retailer approves, declines and pushes cancellations".into()))
    }
}

fn not_awaiting(cancellation: &Cancellation) -> Failure {
    Failure::Invalid(shipsync_domain::ValidationErrors::single(
        "state",
        format!(
            "the cancellation is {}: only one awaiting approval can be approved or declined",
            cancellation.state.name()
        ),
    ))
}

/// Pushes cancellations to their channels, once: run by the exporter for each push request.
#[derive(Clone)]
pub struct CancellationPush<R, G> {
    repositories: R,
    channels: G,
    clock: Clock,
}

impl<R: Repositories + Cancellations, G: ChannelGateway> CancellationPush<R, G> {
    pub fn new(repositories: R, channels: G, clock: Clock) -> Self {
        Self { repositories, channels, clock }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Connects stores through `channels` instead.
    pub fn with_channels<H: ChannelGateway>(self, channels: H) -> CancellationPush<R, H> {
        CancellationPush { repositories: self.repositories, channels, clock: self.clock }
    }

    /// Handles one push request (`sent_at`: when it was first queued). `Err`: deliver it again.
    pub async fn run(&self, request: CancellationRef, sent_at: Option<DateTime<Utc>>) -> Result<(), Failure> {
        let now = (self.clock)();
        let found = self.repositories.cancellation(request.retailer_id, request.purchase_order_id, request.id).await?;
        let Some(cancellation) = found else {
            if sent_at.is_none_or(|sent| now - sent < MISSING_RECORD_GRACE) {
                return Err(Failure::retryable("cancellation not written yet"));
            }
            warn!(cancellation_id = request.id, "push request for a cancellation that does not exist: dropped");
            return Ok(());
        };
        let check_first = match cancellation.decide_push(now) {
            PushAction::Skip(state) => {
                info!(cancellation_id = cancellation.id, state, "nothing to push");
                return Ok(());
            }
            PushAction::Busy => return Err(Failure::retryable("another attempt is pushing the cancellation")),
            PushAction::Push { check_first } => check_first,
        };
        let claimed = cancellation.claim_push(now);
        match self.repositories.save_cancellation(&claimed, None, &ProblemUpdate::Unchanged).await {
            Ok(()) => {}
            Err(Failure::Conflict(_)) => return Err(Failure::retryable("the cancellation changed while claiming it")),
            Err(other) => return Err(other),
        }
        let outcome = self.call_channel(&claimed, check_first).await;
        let now = (self.clock)();
        let (next, again) = match outcome {
            Ok(Ok(channel_ids)) => {
                info!(cancellation_id = claimed.id, ?channel_ids, adopted = check_first, "cancellation pushed");
                let pushed = CancellationState::Pushed { at: now, channel_ids, adopted: check_first };
                (claimed.with_state(pushed, now), None)
            }
            Ok(Err(refused)) => {
                warn!(cancellation_id = claimed.id, %refused, "the channel refused the cancellation: listed");
                (claimed.with_state(CancellationState::PushFailed { at: now, message: refused }, now), None)
            }
            Err(failure) => {
                warn!(cancellation_id = claimed.id, error = %failure.chain(), "cancellation push failed: retried");
                (claimed.push_retry(failure.chain(), now), Some(failure))
            }
        };
        let problem = next.problem_update(Some(&claimed), now);
        self.repositories.save_cancellation(&next, None, &problem).await?;
        match again {
            Some(failure) if matches!(next.state, CancellationState::Pushing(_)) => Err(failure),
            _ => Ok(()),
        }
    }

    /// The channel call. `Ok(Err(reason))`: refused for good (settings a person must fix, or the
    /// channel's own refusal); `Err`: worth retrying.
    async fn call_channel(
        &self,
        cancellation: &Cancellation,
        check_first: bool,
    ) -> Result<Result<Vec<String>, String>, Failure> {
        let order = match CancelOrder::for_cancellation(cancellation) {
            Ok(order) => order,
            Err(reason) => return Ok(Err(reason)),
        };
        let (store, channel) =
            match connect_store(&self.repositories, &self.channels, cancellation.retailer_id, cancellation.store_id)
                .await?
            {
                Ok(connected) => connected,
                Err(reason) => return Ok(Err(reason)),
            };
        channel_outcome(&store, channel.cancel(&order, check_first).await)
    }
}

/// A store's channel, connected with its credentials, for a change to push. `Ok(Err(reason))`:
/// settings a person must fix (the store gone, credentials that cannot be opened or used).
pub(crate) async fn connect_store<R: Repositories, G: ChannelGateway>(
    repositories: &R,
    channels: &G,
    retailer: shipsync_domain::ids::RetailerId,
    store_id: shipsync_domain::ids::StoreId,
) -> Result<Result<(ChannelStore, Box<dyn shipsync_channels::Channel>), String>, Failure> {
    let Some(store) = repositories.channel_store(retailer, store_id).await? else {
        return Ok(Err(format!("store {store_id} no longer exists")));
    };
    let credentials = match repositories.credentials(retailer, store_id).await {
        Ok(credentials) => credentials,
        Err(refused @ Failure::Permanent { .. }) => return Ok(Err(refused.to_string())),
        Err(other) => return Err(other),
    };
    Ok(match channels.connect(&store, &credentials) {
        Ok(channel) => Ok((store, channel)),
        Err(refused) => Err(refused.to_string()),
    })
}

/// A pushed change's channel answer: `Err` worth retrying, `Ok(Err)` refused for good.
pub(crate) fn channel_outcome<T>(
    store: &ChannelStore,
    answer: Result<T, shipsync_channels::ChannelError>,
) -> Result<Result<T, String>, Failure> {
    match answer {
        Ok(done) => Ok(Ok(done)),
        Err(error @ shipsync_channels::ChannelError::Retryable { .. }) => Err(Failure::from(error)),
        Err(refused) => Ok(Err(format!("{} refused it: {refused}", store.channel.name()))),
    }
}
