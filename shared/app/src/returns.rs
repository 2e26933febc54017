//! Returns authorized in shipsync, opened at their channel once by the exporter (Shopify's
//! `returnCreate`), like a cancellation's push.

use chrono::{DateTime, Utc};
use shipsync_channels::ReturnOrder;
use shipsync_domain::cancellations::PushAction;
use shipsync_domain::returns::{Return, ReturnRef, ReturnSync};
use shipsync_domain::time::Clock;
use tracing::{info, warn};

use crate::Failure;
use crate::cancellations::{MISSING_RECORD_GRACE as MISSING_GRACE, channel_outcome, connect_store};
use crate::ports::{ChannelGateway, Repositories};

/// Opens returns at their channels, once: run by the exporter for each push request.
#[derive(Clone)]
pub struct ReturnPush<R, G> {
    repositories: R,
    channels: G,
    clock: Clock,
}

impl<R: Repositories, G: ChannelGateway> ReturnPush<R, G> {
    pub fn new(repositories: R, channels: G, clock: Clock) -> Self {
        Self { repositories, channels, clock }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Connects stores through `channels` instead.
    pub fn with_channels<H: ChannelGateway>(self, channels: H) -> ReturnPush<R, H> {
        ReturnPush { repositories: self.repositories, channels, clock: self.clock }
    }

    /// Handles one push request (`sent_at`: when it was first queued). `Err`: deliver it again.
    pub async fn run(&self, request: ReturnRef, sent_at: Option<DateTime<Utc>>) -> Result<(), Failure> {
        let now = (self.clock)();
        let found = self.repositories.retailer_return(request.retailer_id, request.id).await?;
        let Some(ret) = found.filter(|ret| ret.purchase_order_id == request.purchase_order_id) else {
            if sent_at.is_none_or(|sent| now - sent < MISSING_GRACE) {
                return Err(Failure::retryable("return not written yet"));
            }
            warn!(return_id = request.id, "push request for a return that does not exist: dropped");
            return Ok(());
        };
        let check_first = match ret.decide_push(now) {
            PushAction::Skip(state) => {
                info!(return_id = ret.id, state, "nothing to push");
                return Ok(());
            }
            PushAction::Busy => return Err(Failure::retryable("another attempt is opening the return")),
            PushAction::Push { check_first } => check_first,
        };
        let claimed = ret.claim_push(now);
        match self.repositories.update_return(&claimed).await {
            Ok(()) => {}
            Err(Failure::Conflict(_)) => return Err(Failure::retryable("the return changed while claiming it")),
            Err(other) => return Err(other),
        }
        let outcome = self.call_channel(&claimed, check_first).await;
        let now = (self.clock)();
        let (next, again) = match outcome {
            Ok(Ok(id)) => {
                info!(return_id = claimed.id, channel_return = %id, "return opened at the channel");
                (claimed.with_channel(ReturnSync::Pushed { channel_return_id: id }, now), None)
            }
            Ok(Err(refused)) => {
                warn!(return_id = claimed.id, %refused, "the channel refused the return: listed");
                (claimed.with_channel(ReturnSync::PushFailed { message: refused }, now), None)
            }
            Err(failure) => (claimed.push_retry(failure.chain(), now), Some(failure)),
        };
        // The problem before the state that ends the pushes: never a failure nobody sees.
        if let Some(problem) = next.problem(now) {
            self.repositories.put_problem(next.retailer_id, &problem).await?;
        }
        self.repositories.update_return(&next).await?;
        match again {
            Some(failure) if matches!(next.channel, ReturnSync::Pushing(_)) => Err(failure),
            _ => Ok(()),
        }
    }

    /// The channel call. `Ok(Err(reason))`: refused for good; `Err`: worth retrying.
    async fn call_channel(&self, ret: &Return, check_first: bool) -> Result<Result<String, String>, Failure> {
        let po = self.repositories.retailer_purchase_order(ret.retailer_id, ret.purchase_order_id).await?;
        let Some(po) = po else {
            return Ok(Err(format!("purchase order {} no longer exists", ret.purchase_order_id)));
        };
        let order = match ReturnOrder::for_return(ret, &po) {
            Ok(order) => order,
            Err(reason) => return Ok(Err(reason)),
        };
        let (store, channel) =
            match connect_store(&self.repositories, &self.channels, ret.retailer_id, ret.store_id).await? {
                Ok(connected) => connected,
                Err(reason) => return Ok(Err(reason)),
            };
        channel_outcome(&store, channel.create_return(&order, check_first).await)
    }
}
