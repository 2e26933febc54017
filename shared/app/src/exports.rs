//! Running an export: re-reads the shipment, and exports it to its channel if it is still due,
//! never twice.
//!
//! Never twice rests on three things: a claim (a conditional write) before the channel call, so
//! two deliveries cannot both call; a claim that outlives its attempt (a crash, a timeout after
//! sending) makes the next attempt ask the channel first and adopt what it finds; and the
//! exported state, written after success, ends every later delivery.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use shipsync_channels::{Channel, ChannelError, ExportOrder, Fulfillment};
use shipsync_domain::carrier::StandardCarrier;
use shipsync_domain::export::{ExportAction, ExportRequest, ExportState, MAX_TRACKER_ATTEMPTS, decide_export};
use shipsync_domain::history::{Actor, EventKind};
use shipsync_domain::ids::ShipmentId;
use shipsync_domain::orders::{OrderProblem, ProblemKind};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::ChannelStore;
use shipsync_domain::time::Clock;
use shipsync_domain::tracking::TrackingNumber;
use tracing::{error, info, warn};

use crate::Failure;
use crate::optimistic::{AsFound, kept_changing, retry_on_conflict};
use crate::ports::{ChannelGateway, Repositories};

/// `current` with the channel calls an attempt retried at once recorded in its history (they
/// are written with the attempt's outcome).
fn with_failed_calls(current: &Shipment, failed_calls: &[(DateTime<Utc>, String)]) -> Shipment {
    let mut next = current.clone();
    for (at, message) in failed_calls {
        next.record(EventKind::CallFailed, Actor::Exporter, *at, Some(message.clone()));
    }
    next
}

/// How long a request for a shipment that is not there yet is retried: a shipment's export is
/// planned just before the shipment is written, so its first message may arrive first.
pub const MISSING_SHIPMENT_GRACE: Duration = Duration::minutes(5);

/// The longest wait spent inside one attempt before calling a channel again; longer waits go
/// back to the queue.
pub const IN_PROCESS_WAIT: StdDuration = StdDuration::from_secs(10);

/// Channel calls tried in one attempt before the request goes back to the queue.
pub const CALLS_PER_DELIVERY: u32 = 3;

/// The longest an export waits for a channel that asked to wait (SQS allows 12 hours).
pub const MAX_REDELIVERY_WAIT: StdDuration = StdDuration::from_secs(43_200);

/// A store's channel, ready for one shipment's export, with the settings it was made from.
struct Connected {
    channel: Box<dyn Channel>,
    order: ExportOrder,
    store: ChannelStore,
    credentials: ChannelCredentials,
}

/// How an export request reached the exporter.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestDelivery {
    /// SQS's `ApproximateReceiveCount`: 1 on the first delivery.
    pub receives: u32,
    /// When the request was first sent, if known.
    pub sent_at: Option<DateTime<Utc>>,
}

/// Exports shipments to their channels.
#[derive(Clone)]
pub struct ExportRun<R, G> {
    repositories: R,
    channels: G,
    clock: Clock,
    /// The export queue's `maxReceiveCount`: on that delivery, an export that still cannot reach
    /// its channel is marked failed (for a person) before the request goes to the dead-letter queue.
    max_receives: u32,
}

impl<R: Repositories, G: ChannelGateway> ExportRun<R, G> {
    pub fn new(repositories: R, channels: G, clock: Clock, max_receives: u32) -> Self {
        Self { repositories, channels, clock, max_receives }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Connects stores through `channels` instead.
    pub fn with_channels<H: ChannelGateway>(self, channels: H) -> ExportRun<R, H> {
        ExportRun { repositories: self.repositories, channels, clock: self.clock, max_receives: self.max_receives }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Handles one export request. `Err` means deliver it again (after the failure's
    /// `retry_after`, when the channel asked for a wait).
    pub async fn run(&self, request: ExportRequest, delivery: RequestDelivery) -> Result<(), Failure> {
        let now = self.now();
        let Some(shipment) = self.repositories.shipment(request.shipment_id).await? else {
            let age = delivery.sent_at.map(|sent| now - sent).unwrap_or_default();
            if age < MISSING_SHIPMENT_GRACE {
                return Err(Failure::retryable("shipment not written yet"));
            }
            warn!(shipment_id = %request.shipment_id, "export request for a shipment that does not exist: dropped");
            return Ok(());
        };
        match decide_export(&shipment, now) {
            ExportAction::Skip(why) => {
                info!(shipment_id = %shipment.id, reason = ?request.reason, why, "nothing to export");
                Ok(())
            }
            ExportAction::Busy => Err(Failure::retryable("another attempt is exporting it")),
            ExportAction::RegisterTrackers(numbers) => Box::pin(self.register_trackers(&shipment, &numbers)).await,
            ExportAction::MovementTimedOut => Box::pin(self.movement_timed_out(shipment, delivery.receives)).await,
            ExportAction::CorrectTracking { check_channel_first } => {
                let claimed = shipment.claim_correction(now);
                match self.repositories.update_shipment_state(&claimed).await {
                    Ok(()) => Box::pin(self.correct_tracking(claimed, check_channel_first, delivery.receives)).await,
                    Err(Failure::Conflict(_)) => {
                        Err(Failure::retryable("the shipment changed while taking its correction"))
                    }
                    Err(other) => Err(other),
                }
            }
            ExportAction::Export { check_channel_first } => {
                let claimed = shipment.claim_export(now);
                match self.repositories.update_shipment_state(&claimed).await {
                    Ok(()) => self.export(claimed, check_channel_first, delivery.receives).await,
                    Err(Failure::Conflict(_)) => Err(Failure::retryable("the shipment changed while claiming it")),
                    Err(other) => Err(other),
                }
            }
        }
    }

    /// Registers a waiting shipment's tracking numbers with its store's tracking provider. A
    /// number the provider refuses for good is listed in order health and not tried again. A
    /// failure worth retrying leaves the rest registered and the attempt recorded: the sweeper
    /// delivers it again after a growing wait, and after [`MAX_TRACKER_ATTEMPTS`] the numbers
    /// still unregistered are listed instead.
    async fn register_trackers(&self, shipment: &Shipment, numbers: &[TrackingNumber]) -> Result<(), Failure> {
        let (retailer, store_id) = (shipment.retailer_id, shipment.store_id);
        let Some(store) = self.repositories.channel_store(retailer, store_id).await? else {
            warn!(shipment_id = %shipment.id, "its store no longer exists: no tracker registered");
            return self.settle_trackers(shipment, numbers).await;
        };
        let credentials = match self.repositories.credentials(retailer, store_id).await {
            Ok(credentials) => credentials,
            Err(refused @ Failure::Permanent { .. }) => {
                // Credentials that cannot be opened: a person must set them again.
                for number in numbers {
                    self.list_unregistered(shipment, number, &refused.chain()).await?;
                }
                return self.settle_trackers(shipment, numbers).await;
            }
            Err(other) => return Err(other),
        };
        let carrier = StandardCarrier::recognise(&shipment.carrier);
        let mut settled = Vec::new();
        let mut retry: Option<Failure> = None;
        for number in numbers {
            match self.channels.register_tracker(&store, &credentials, number, carrier).await {
                Ok(registered) => {
                    info!(shipment_id = %shipment.id, tracking = %number, registered, "tracker registered");
                    settled.push(number.clone());
                }
                Err(refused) if refused.is_permanent() => {
                    self.list_unregistered(shipment, number, &refused.chain()).await?;
                    settled.push(number.clone());
                }
                Err(failure) => {
                    warn!(shipment_id = %shipment.id, tracking = %number, problem = %failure.chain(), "tracker registration failed");
                    retry.get_or_insert(failure);
                }
            }
        }
        let Some(failure) = retry else { return self.settle_trackers(shipment, &settled).await };
        let attempts = match &shipment.export.state {
            ExportState::WaitingForMovement(watch) => watch.attempts + 1,
            _ => 1,
        };
        if attempts >= MAX_TRACKER_ATTEMPTS {
            let reason = format!("{} attempts failed, the last: {}", attempts, failure.chain());
            for number in numbers.iter().filter(|number| !settled.contains(number)) {
                self.list_unregistered(shipment, number, &reason).await?;
            }
            return self.settle_trackers(shipment, numbers).await;
        }
        // 5, 10, 20, 40 minutes: a provider's outage is waited out, not hammered.
        let wait = Duration::minutes(5 << (attempts - 1).min(4));
        self.settle_trackers(shipment, &settled).await?;
        self.record(shipment, |current, now| current.trackers_retry(now, wait)).await
    }

    /// Lists a tracking number the provider would not register: no scan will come for it.
    async fn list_unregistered(&self, shipment: &Shipment, number: &TrackingNumber, why: &str) -> Result<(), Failure> {
        let problem = OrderProblem {
            key: format!("tracker_refused:{}:{}", shipment.id, number.key()),
            kind: ProblemKind::TrackerRefused,
            order_id: None,
            store_id: shipment.store_id,
            channel_order_id: String::new(),
            order_number: shipment.purchase_order_public_reference.clone(),
            reason: format!(
                "shipment {}: {number} could not be registered with the tracking provider ({why}), so no carrier \
                 scan will confirm it: fix the number or the store's tracking settings, or export it by hand",
                shipment.id
            ),
            since: self.now(),
        };
        warn!(shipment_id = %shipment.id, tracking = %number, %why, "tracker not registered: listed");
        self.repositories.put_problem(shipment.retailer_id, &problem).await
    }

    /// Records tracking numbers as registered (or refused for good).
    async fn settle_trackers(&self, shipment: &Shipment, numbers: &[TrackingNumber]) -> Result<(), Failure> {
        if numbers.is_empty() {
            return Ok(());
        }
        self.record(shipment, |current, now| current.trackers_settled(numbers, now)).await
    }

    /// A shipment waited for its first scan past its store's timeout: confirmed anyway if the
    /// store says so, else listed in order health with how long it has waited.
    async fn movement_timed_out(&self, shipment: Shipment, receives: u32) -> Result<(), Failure> {
        let now = self.now();
        let store = self.repositories.channel_store(shipment.retailer_id, shipment.store_id).await?;
        if store.is_some_and(|store| store.tracking.export_after_movement_timeout) {
            info!(shipment_id = %shipment.id, "no carrier scan in time: confirmed anyway, as its store says");
            let check_channel_first = shipment.export.attempts > 0;
            let claimed = shipment.claim_export(now);
            return match self.repositories.update_shipment_state(&claimed).await {
                Ok(()) => self.export(claimed, check_channel_first, receives).await,
                Err(Failure::Conflict(_)) => Err(Failure::retryable("the shipment changed while claiming it")),
                Err(other) => Err(other),
            };
        }
        let since = match &shipment.export.state {
            ExportState::WaitingForMovement(watch) => watch.since,
            _ => None,
        };
        let waited = since.map_or_else(String::new, |since| {
            format!(" for {} hours (since {})", (now - since).num_hours(), since.format("%Y-%m-%d %H:%M UTC"))
        });
        let problem = OrderProblem {
            key: OrderProblem::no_scan_key(shipment.id),
            kind: ProblemKind::NoCarrierScan,
            order_id: None,
            store_id: shipment.store_id,
            channel_order_id: String::new(),
            order_number: shipment.purchase_order_public_reference.clone(),
            reason: format!(
                "shipment {} has waited{waited} for its first carrier scan and is not confirmed to the channel: \
                 check the parcel with the carrier, then export it by hand (POST /shipments/{}/export.json)",
                shipment.id, shipment.id
            ),
            since: now,
        };
        self.repositories.put_problem(shipment.retailer_id, &problem).await?;
        warn!(shipment_id = %shipment.id, "no carrier scan in time: listed in order health");
        self.record(&shipment, |current, now| current.movement_timed_out(now)).await
    }

    /// The channel and payload a claimed shipment is exported with. `Ok(Err(reason))`: settings
    /// that cannot work, for a person to fix.
    async fn connect(&self, shipment: &Shipment) -> Result<Result<Connected, String>, Failure> {
        let (retailer, store_id) = (shipment.retailer_id, shipment.store_id);
        // Store and vendor are settings a warm container remembers; the order's channel ids
        // travel on the shipment, so the purchase order is read only for a shipment older than that.
        let (store, vendor) = tokio::try_join!(
            self.repositories.channel_store(retailer, store_id),
            self.repositories.vendor(retailer, shipment.vendor_id),
        )?;
        let Some(store) = store else { return Ok(Err(format!("store {store_id} no longer exists"))) };
        let carries_channel_ids = shipment.channel_order_id.is_some()
            && shipment.items.iter().all(|item| item.channel_line_item_id.is_some());
        let po = if carries_channel_ids {
            None
        } else {
            match self.repositories.purchase_order(shipment.purchase_order_id).await? {
                Some(po) => Some(po),
                None => return Ok(Err(format!("purchase order {} no longer exists", shipment.purchase_order_id))),
            }
        };
        let vendor_notify = vendor.and_then(|v| v.notify_customer);
        let order = match ExportOrder::for_shipment(shipment, po.as_ref(), &store, vendor_notify) {
            Ok(order) => order,
            Err(reason) => return Ok(Err(reason)),
        };
        let credentials = match self.repositories.credentials(retailer, store_id).await {
            Ok(credentials) => credentials,
            Err(refused @ Failure::Permanent { .. }) => return Ok(Err(refused.to_string())),
            Err(other) => return Err(other),
        };
        Ok(match self.channels.connect(&store, &credentials) {
            Ok(channel) => Ok(Connected { channel, order, store, credentials }),
            Err(error) => Err(format!("store {}: {error}", store.id)),
        })
    }

    /// As [`ExportRun::connect`], but settings that cannot work are first read again: they may be
    /// this container's memory of them, older than a person's fix.
    async fn connect_confirmed(&self, shipment: &Shipment) -> Result<Result<Connected, String>, Failure> {
        match Box::pin(self.connect(shipment)).await? {
            Ok(connected) => Ok(Ok(connected)),
            Err(_) => {
                self.repositories.forget_settings(shipment.retailer_id);
                Box::pin(self.connect(shipment)).await
            }
        }
    }

    /// Calls the channel up to `calls` times, retrying within the attempt what is worth it and quick.
    async fn call_channel(
        &self,
        connected: &Connected,
        shipment: ShipmentId,
        check_channel_first: bool,
        calls: u32,
        failed_calls: &mut Vec<(DateTime<Utc>, String)>,
    ) -> Result<Fulfillment, ChannelError> {
        let mut check_first = check_channel_first;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match connected.channel.export(&connected.order, check_first).await {
                Err(ChannelError::Retryable { message, retry_after })
                    if attempt < calls && retry_after.unwrap_or_default() <= IN_PROCESS_WAIT =>
                {
                    let wait = retry_after.unwrap_or(StdDuration::from_millis(500 << attempt));
                    warn!(shipment_id = %shipment, %message, ?wait, "channel call failed; retrying");
                    // Kept for the shipment's history, written with the attempt's outcome.
                    failed_calls.push((self.now(), message));
                    tokio::time::sleep(wait).await;
                    // The failed call may have reached the channel.
                    check_first = true;
                }
                other => return other,
            }
        }
    }

    /// Calls the channel for a claimed shipment and records the outcome.
    async fn export(&self, claimed: Shipment, check_channel_first: bool, receives: u32) -> Result<(), Failure> {
        let connected = match self.connect_confirmed(&claimed).await? {
            Ok(connected) => connected,
            Err(refused) => return self.record_failure(&claimed, refused, &[]).await,
        };
        let mut failed_calls = Vec::new();
        let mut outcome =
            self.call_channel(&connected, claimed.id, check_channel_first, CALLS_PER_DELIVERY, &mut failed_calls).await;
        let mut notified = connected.order.notify_customer;
        if matches!(outcome, Err(ChannelError::Permanent { .. } | ChannelError::Unsupported { .. })) {
            // A refusal may answer settings this container remembers (a token rotated, a carrier
            // mapped in the last minute): it is recorded only once the store's current settings
            // are refused too.
            self.repositories.forget_settings(claimed.retailer_id);
            if let Ok(fresh) = Box::pin(self.connect(&claimed)).await?
                && (fresh.store != connected.store || fresh.credentials != connected.credentials)
            {
                info!(shipment_id = %claimed.id, "refused with remembered settings: trying the store's current ones");
                // One call, no waits: the attempt's time was sized for one round of calls, and a
                // retryable answer here is retried from the queue like any other.
                outcome = self.call_channel(&fresh, claimed.id, true, 1, &mut failed_calls).await;
                notified = fresh.order.notify_customer;
            }
        }
        match outcome {
            Ok(fulfillment) => {
                info!(shipment_id = %claimed.id, channel_ids = ?fulfillment.channel_ids, adopted = fulfillment.adopted, "exported");
                self.record(&claimed, |current, now| {
                    matches!(current.export.state, ExportState::Exporting { .. }).then(|| {
                        let current = with_failed_calls(current, &failed_calls);
                        if fulfillment.adopted {
                            current.adopted(now, fulfillment.channel_ids.clone(), notified)
                        } else {
                            current.exported(now, fulfillment.channel_ids.clone(), notified)
                        }
                    })
                })
                .await
            }
            Err(refused @ (ChannelError::Permanent { .. } | ChannelError::Unsupported { .. })) => {
                self.record_failure(&claimed, refused.to_string(), &failed_calls).await
            }
            Err(ChannelError::Retryable { message, retry_after }) => {
                if receives >= self.max_receives {
                    let message = format!("gave up after {receives} deliveries: {message}");
                    self.record_failure(&claimed, message.clone(), &failed_calls).await?;
                    // Failing it once more sends the request to the dead-letter queue.
                    return Err(Failure::retryable(message));
                }
                // Not due before the wait the channel asked for, so the sweeper leaves it alone too.
                let wait = retry_after
                    .map(|after| after.min(MAX_REDELIVERY_WAIT))
                    .and_then(|after| Duration::from_std(after).ok())
                    .unwrap_or_default();
                self.record(&claimed, |current, now| {
                    matches!(current.export.state, ExportState::Exporting { .. }).then(|| {
                        with_failed_calls(current, &failed_calls).export_retry_at(now, now + wait, message.clone())
                    })
                })
                .await?;
                Err(Failure::Retryable { reason: message, after: retry_after, cause: None })
            }
        }
    }

    /// Sends a taken tracking correction to the channel (each number the channel holds replaced
    /// by the record's number now) and records the outcome: sent, refused (listed in order
    /// health), or to be tried again. A correction made while this one was being sent is kept,
    /// counting what this one changed at the channel.
    async fn correct_tracking(
        &self,
        claimed: Shipment,
        check_channel_first: bool,
        receives: u32,
    ) -> Result<(), Failure> {
        let Some(correction) = claimed.export.correction.clone() else { return Ok(()) };
        let sent: Vec<(shipsync_domain::ids::TrackingId, TrackingNumber, TrackingNumber)> = correction
            .channel_holds
            .iter()
            .filter_map(|(id, held)| {
                let now = claimed.trackings.iter().find(|tracking| tracking.id == *id)?;
                Some((*id, held.clone(), now.tracking.clone()))
            })
            .collect();
        let pairs: Vec<(TrackingNumber, TrackingNumber)> =
            sent.iter().map(|(_, held, now)| (held.clone(), now.clone())).collect();
        let outcome = match self.connect_confirmed(&claimed).await? {
            Ok(connected) => connected.channel.correct_tracking(&connected.order, &pairs, check_channel_first).await,
            Err(refused) => Err(ChannelError::permanent(refused)),
        };
        match outcome {
            Ok(channel_ids) => {
                info!(shipment_id = %claimed.id, ?channel_ids, "tracking correction sent");
                let sent: Vec<_> = sent.iter().map(|(id, _, now)| (*id, now.clone())).collect();
                self.record(&claimed, |current, now| {
                    Some(current.correction_sent_as(&correction, &sent, channel_ids.clone(), now))
                })
                .await
            }
            Err(ChannelError::Retryable { message, retry_after }) if receives < self.max_receives => {
                warn!(shipment_id = %claimed.id, %message, "tracking correction failed; retrying");
                self.record(&claimed, |current, now| {
                    (current.export.correction.as_ref().map(|c| c.requested_at) == Some(correction.requested_at))
                        .then(|| current.correction_retry(message.clone(), now))
                })
                .await?;
                Err(Failure::Retryable { reason: message, after: retry_after, cause: None })
            }
            Err(refused) => {
                let message = match refused {
                    ChannelError::Retryable { message, .. } => {
                        format!("gave up after {receives} deliveries: {message}")
                    }
                    other => other.to_string(),
                };
                error!(shipment_id = %claimed.id, %message, "tracking correction refused");
                let held: Vec<String> = pairs.iter().map(|(held, _)| held.to_string()).collect();
                let problem = OrderProblem {
                    key: format!("tracking_correction:{}", claimed.id),
                    kind: ProblemKind::TrackingCorrectionRefused,
                    order_id: None,
                    store_id: claimed.store_id,
                    channel_order_id: String::new(),
                    order_number: claimed.purchase_order_public_reference.clone(),
                    reason: format!(
                        "shipment {}: the channel did not take its corrected tracking ({message}); it still holds {}: \
                         correct it in the channel's own seller tools",
                        claimed.id,
                        held.join(", ")
                    ),
                    since: self.now(),
                };
                self.repositories.put_problem(claimed.retailer_id, &problem).await?;
                self.record(&claimed, |current, now| {
                    (current.export.correction.as_ref().map(|c| c.requested_at) == Some(correction.requested_at))
                        .then(|| current.correction_refused(message.clone(), now))
                })
                .await
            }
        }
    }

    async fn record_failure(
        &self,
        claimed: &Shipment,
        message: String,
        failed_calls: &[(DateTime<Utc>, String)],
    ) -> Result<(), Failure> {
        error!(shipment_id = %claimed.id, %message, "export failed");
        self.record(claimed, |current, now| {
            matches!(current.export.state, ExportState::Exporting { .. })
                .then(|| with_failed_calls(current, failed_calls).export_failed(now, message.clone()))
        })
        .await
    }

    /// Writes an outcome. If the shipment changed meanwhile (costs edited during the call), the
    /// outcome is applied to the fresh copy, as long as it is still this attempt's to record.
    async fn record(
        &self,
        claimed: &Shipment,
        outcome: impl Fn(&Shipment, DateTime<Utc>) -> Option<Shipment>,
    ) -> Result<(), Failure> {
        let found = AsFound::new(claimed.clone());
        let (found, outcome) = (&found, &outcome);
        retry_on_conflict(|| async move {
            let Some(current) = found.current(|| self.repositories.shipment(claimed.id)).await? else { return Ok(()) };
            let Some(next) = outcome(&current, self.now()) else { return Ok(()) };
            self.repositories.update_shipment_state(&next).await
        })
        .await
        .map_err(kept_changing(format_args!("shipment {} (recording its export outcome)", claimed.id)))
    }
}
