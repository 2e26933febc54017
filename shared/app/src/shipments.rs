//! Shipments through the API: create, update, export on demand, and the release of an order's
//! waiting shipments once the whole order has shipped. Every write is planned before it is
//! written (a failure to plan changes nothing; a crash between the two leaves a request that
//! finds nothing to do), conditional on what was read, and retried from a fresh read when it
//! loses a race; a lost race withdraws its plan.

use chrono::{DateTime, Utc};
use shipsync_domain::ValidationErrors;
use shipsync_domain::access::Principal;
use shipsync_domain::carrier::Carrier;
use shipsync_domain::export::{
    Delivery, ExportReason, ExportRequest, ExportState, ExportWhen, ShipConfirmation, hold_for_imei,
    imei_completes_export, plan_new_export, scheduled, watch_for_movement,
};
use shipsync_domain::history::{Actor, EventKind};
use shipsync_domain::ids::{PurchaseOrderId, ShipmentId};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::shipment::{
    EchoedIds, Shipment, ShipmentContext, ShipmentInput, ShippingLock, draft_new_shipment, draft_shipment_update,
};
use shipsync_domain::tenant::{ChannelStore, Retailer};
use shipsync_domain::time::Clock;
use tracing::{error, info, warn};

use crate::Failure;
use crate::optimistic::{AsFound, reserve_once, retry_on_conflict};
use crate::ports::{ExportPlanner, PurchaseOrders, Repositories, Shipments};
use std::ops::RangeInclusive;
use std::sync::OnceLock;

/// The shipment use cases of the API.
#[derive(Clone)]
pub struct ShipmentDesk<R, P> {
    repositories: R,
    planner: P,
    clock: Clock,
}

/// A shipment as written, with what its view needs (the retailer's fee settings).
#[derive(Debug, Clone)]
pub struct Written {
    pub shipment: Shipment,
    pub retailer: Retailer,
}

impl<R: Repositories, P: ExportPlanner> ShipmentDesk<R, P> {
    pub fn new(repositories: R, planner: P, clock: Clock) -> Self {
        Self { repositories, planner, clock }
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// `POST /purchase_orders/{id}/shipments.json`.
    pub async fn create(
        &self,
        principal: &Principal,
        purchase_order_id: PurchaseOrderId,
        input: &ShipmentInput,
        echoed: EchoedIds,
    ) -> Result<Written, Failure> {
        echoed.check(None, purchase_order_id)?;
        refuse_export_fields_to_vendors(principal, input, None)?;
        // The same request needs the same ids on every attempt: reserved once, on the first.
        let reserved = OnceLock::new();
        let mut confirmed = false;
        loop {
            let (retailer, carriers) = self.retailer(principal).await?;
            let created = retry_on_conflict(|| {
                self.try_create(principal, purchase_order_id, input, &retailer, &carriers, &reserved)
            })
            .await;
            match created {
                Err(refused) if !confirmed && self.may_be_remembered_carriers(principal, &refused) => confirmed = true,
                created => return Ok(Written { shipment: created?, retailer }),
            }
        }
    }

    /// A carrier refused by this container's memory of the retailer's carriers (a carrier added
    /// in the last minute elsewhere is not in it yet): forgets them, so the request is tried once
    /// more against the table's.
    fn may_be_remembered_carriers(&self, principal: &Principal, refused: &Failure) -> bool {
        let carrier = matches!(refused, Failure::Invalid(errors) if errors.mentions_carrier());
        if carrier {
            self.repositories.forget_settings(principal.retailer_id);
        }
        carrier
    }

    async fn try_create(
        &self,
        principal: &Principal,
        purchase_order_id: PurchaseOrderId,
        input: &ShipmentInput,
        retailer: &Retailer,
        carriers: &[Carrier],
        reserved: &OnceLock<RangeInclusive<u64>>,
    ) -> Result<Shipment, Failure> {
        let mut po = self.visible_purchase_order(principal, purchase_order_id).await?;
        let store = self.channel_store_of(&po).await?;
        let now = self.now();
        let context =
            ShipmentContext { purchase_order: &po, carriers, fees: retailer.fees, now, tracking_corrections: None };
        let draft = draft_new_shipment(context, input)?;
        let ids = reserve_once(reserved, || self.repositories.allocate_ids(draft.ids_needed())).await?;
        po.apply_fulfillment(&draft.fulfillment_change)?;
        let mut shipment = draft.finish(&mut ids.clone())?;
        shipment.tracked_by_provider = store.tracking.provider.is_some();
        po.version += 1;
        po.updated_at = now;
        let confirmation = store.export.confirmation(store.channel);
        let plan = plan_new_export(&store.export, confirmation, input.export, now);
        let plan = watch_for_movement(plan, &store.tracking, &shipment, now);
        let (export_state, delivery) = hold_for_imei(store.channel, &shipment, plan, now);
        shipment.export.state = export_state;
        shipment.record(EventKind::Created, actor(principal), now, None);
        // Planned before the shipment is written, so that a shipment is never written without
        // its plan; the exporter retries a request that arrives before the shipment does.
        if let Some(delivery) = delivery {
            self.deliver(shipment.id, ExportReason::Scheduled, delivery).await?;
        }
        match self.repositories.create_shipment(&shipment, &po).await {
            Ok(()) => {
                info!(shipment_id = %shipment.id, purchase_order_id = %po.id, export = shipment.export.state.name(), "shipment created");
                self.release_order_after(&po, &store, &shipment).await;
                Ok(shipment)
            }
            Err(Failure::Conflict(what)) => {
                // Lost the race for the units: this attempt's plan must not outlive it.
                if let Some(delivery) = delivery {
                    self.withdraw(shipment.id, ExportReason::Scheduled, delivery).await;
                }
                Err(Failure::Conflict(what))
            }
            Err(other) => Err(other),
        }
    }

    /// `PUT/PATCH /shipments/{id}.json`.
    pub async fn update(
        &self,
        principal: &Principal,
        id: ShipmentId,
        input: &ShipmentInput,
        echoed: EchoedIds,
    ) -> Result<Written, Failure> {
        let reserved = OnceLock::new();
        let mut confirmed = false;
        loop {
            let (retailer, carriers) = self.retailer(principal).await?;
            let updated =
                retry_on_conflict(|| self.try_update(principal, id, input, echoed, &retailer, &carriers, &reserved))
                    .await;
            match updated {
                Err(refused) if !confirmed && self.may_be_remembered_carriers(principal, &refused) => confirmed = true,
                updated => return Ok(Written { shipment: updated?, retailer }),
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn try_update(
        &self,
        principal: &Principal,
        id: ShipmentId,
        input: &ShipmentInput,
        echoed: EchoedIds,
        retailer: &Retailer,
        carriers: &[Carrier],
        reserved: &OnceLock<RangeInclusive<u64>>,
    ) -> Result<Shipment, Failure> {
        let current = self.visible_shipment(principal, id).await?;
        echoed.check(Some(id), current.purchase_order_id)?;
        refuse_export_fields_to_vendors(principal, input, Some(&current))?;
        let mut po = self.visible_purchase_order(principal, current.purchase_order_id).await?;
        let now = self.now();
        // An exported shipment's tracking may be corrected where its channel allows (Walmart).
        let tracking_corrections = match current.shipping_details_lock() {
            Some(ShippingLock::Exported) => self.channel_store_of(&po).await?.channel.tracking_correction_window(),
            _ => None,
        };
        let context = ShipmentContext { purchase_order: &po, carriers, fees: retailer.fees, now, tracking_corrections };
        let draft = draft_shipment_update(&current, context, input)?;
        if draft.is_unchanged_from(&current) {
            // An update that changes nothing writes nothing.
            return Ok(current);
        }
        let mut ids = match draft.ids_needed() {
            0 => 0..=0,
            count => reserve_once(reserved, || self.repositories.allocate_ids(count)).await?,
        };
        let fulfilment_changed = !draft.fulfillment_change.is_empty();
        if fulfilment_changed {
            po.apply_fulfillment(&draft.fulfillment_change)?;
            po.version += 1;
            po.updated_at = now;
        }
        // Back Market: adding the last missing IMEI releases the waiting confirmation, queued
        // before this write, which carries both.
        let shipment = self.release_on_imei(&current, draft.finish(&mut ids)?, &po).await?;
        let mut shipment = self.watch_new_trackings(&current, shipment, &po).await?;
        // A store that took a tracking provider after the shipment was made gets its scans from
        // the next edit on (its numbers are then indexed for them).
        if !shipment.tracked_by_provider {
            shipment.tracked_by_provider = self.channel_store_of(&po).await?.tracking.provider.is_some();
        }
        let correcting =
            shipment.export.correction.is_some() && shipment.export.correction != current.export.correction;
        let detail = correcting.then(|| "tracking corrected: the channel is to be told".to_owned());
        shipment.record(EventKind::Updated, actor(principal), now, detail);
        if correcting {
            // Queued before the write that records it, as an export is.
            self.deliver(shipment.id, ExportReason::Manual, Delivery::Now).await?;
        }
        self.repositories.update_shipment(&shipment, fulfilment_changed.then_some(&po)).await?;
        info!(shipment_id = %shipment.id, correcting, "shipment updated");
        // Units added by an edit can complete the order as well as a new shipment can.
        if fulfilment_changed {
            let store = self.channel_store_of(&po).await?;
            self.release_order_after(&po, &store, &shipment).await;
        }
        Ok(shipment)
    }

    /// `POST /shipments/{id}/export.json`: exports now, whatever the delay or the store's setting.
    pub async fn export_now(&self, principal: &Principal, id: ShipmentId) -> Result<Written, Failure> {
        let (retailer, _) = self.retailer(principal).await?;
        let shipment = retry_on_conflict(|| async move {
            let current = self.visible_shipment(principal, id).await?;
            self.check_manual_export(principal, &current).await?;
            let planned = current.export_now(self.now())?;
            // Queued before it is written, as creation does.
            self.deliver(id, ExportReason::Manual, Delivery::Now).await?;
            self.repositories.update_shipment_state(&planned).await?;
            info!(shipment_id = %id, "manual export queued");
            Ok(planned)
        })
        .await?;
        Ok(Written { shipment, retailer })
    }

    /// What a manual export may not override: the role (a vendor may not push a retailer's
    /// shipment to its channel) and a store that never sends ship confirmations.
    async fn check_manual_export(&self, principal: &Principal, shipment: &Shipment) -> Result<(), Failure> {
        if !principal.is_retailer_user() {
            return Err(Failure::Forbidden("export may be requested by retailer users only".into()));
        }
        let store =
            self.repositories.channel_store(shipment.retailer_id, shipment.store_id).await?.ok_or_else(|| {
                Failure::permanent(format!("store {} of shipment {} not found", shipment.store_id, shipment.id))
            })?;
        if store.export.confirmation(store.channel) == ShipConfirmation::Never {
            return Err(Failure::Invalid(ValidationErrors::single(
                "export",
                format!(
                    "is not possible: store {} never sends ship confirmations (ship_confirmation is never)",
                    store.id
                ),
            )));
        }
        Ok(())
    }

    /// Back Market: when an edit adds the last missing IMEI, the confirmation that waited for it
    /// (or failed for want of it) goes out now, queued before the edit that carries it.
    async fn release_on_imei(
        &self,
        before: &Shipment,
        after: Shipment,
        po: &PurchaseOrder,
    ) -> Result<Shipment, Failure> {
        if before.missing_imeis().is_empty() || !after.missing_imeis().is_empty() {
            return Ok(after);
        }
        let store = self.channel_store_of(po).await?;
        let now = self.now();
        if !imei_completes_export(store.channel, before, &after, now) {
            return Ok(after);
        }
        let mut planned = after.export_now(now)?;
        // One write carries the edit and the release: the version the edit was given.
        planned.version = after.version;
        self.deliver(planned.id, ExportReason::Manual, Delivery::Now).await?;
        info!(shipment_id = %planned.id, "IMEI added: export released");
        Ok(planned)
    }

    /// A shipment waiting for movement whose edit adds tracking numbers has them registered too
    /// (queued before the write that records them as due).
    async fn watch_new_trackings(
        &self,
        before: &Shipment,
        after: Shipment,
        po: &PurchaseOrder,
    ) -> Result<Shipment, Failure> {
        if !matches!(after.export.state, ExportState::WaitingForMovement(_)) || after.trackings == before.trackings {
            return Ok(after);
        }
        let store = self.channel_store_of(po).await?;
        let Some(watched) = after.watch_new_trackings(before, &store.tracking) else { return Ok(after) };
        self.deliver(watched.id, ExportReason::Scheduled, Delivery::Now).await?;
        info!(shipment_id = %watched.id, "new tracking numbers to register");
        Ok(watched)
    }

    /// After a shipment is written: releases its order's waiting shipments if that completed the
    /// order. The shipment stands whatever happens here; a failure leaves the others visible as
    /// waiting, to be exported by hand.
    async fn release_order_after(&self, po: &PurchaseOrder, store: &ChannelStore, written: &Shipment) {
        if let Err(failure) =
            release_order_if_shipped(&self.repositories, &self.planner, &self.clock, po, store, Some(written)).await
        {
            error!(shipment_id = %written.id, error = %failure.chain(), "could not release the order's shipments");
        }
    }

    /// The caller's retailer and its carriers.
    pub async fn retailer(&self, principal: &Principal) -> Result<(Retailer, Vec<Carrier>), Failure> {
        self.repositories
            .retailer_with_carriers(principal.retailer_id)
            .await?
            // An API user whose retailer is gone: a data problem, not the caller's.
            .ok_or_else(|| Failure::permanent(format!("API user's retailer {} not found", principal.retailer_id)))
    }

    /// A shipment the caller may see; anything else is not found.
    pub async fn visible_shipment(&self, principal: &Principal, id: ShipmentId) -> Result<Shipment, Failure> {
        visible_shipment(&self.repositories, principal, id).await
    }

    /// A purchase order the caller may see; anything else is not found.
    pub async fn visible_purchase_order(
        &self,
        principal: &Principal,
        id: PurchaseOrderId,
    ) -> Result<PurchaseOrder, Failure> {
        visible_purchase_order(&self.repositories, principal, id).await
    }

    async fn channel_store_of(&self, po: &PurchaseOrder) -> Result<ChannelStore, Failure> {
        channel_store_of(&self.repositories, po).await
    }

    async fn deliver(&self, id: ShipmentId, reason: ExportReason, delivery: Delivery) -> Result<(), Failure> {
        self.planner.deliver(ExportRequest { shipment_id: id, reason }, delivery).await
    }

    /// Withdraws the plan of a write that lost its race (nothing was written). If withdrawing
    /// fails, the schedule fires and the exporter finds nothing due.
    async fn withdraw(&self, id: ShipmentId, reason: ExportReason, delivery: Delivery) {
        withdraw(&self.planner, id, reason, delivery).await;
    }
}

/// The store a purchase order came from.
/// A shipment the caller may see: read under the caller's retailer, and for a vendor user its
/// own only; anything else is not found.
pub async fn visible_shipment<R: Shipments>(
    repositories: &R,
    principal: &Principal,
    id: ShipmentId,
) -> Result<Shipment, Failure> {
    match repositories.retailer_shipment(principal.retailer_id, id).await? {
        Some(shipment) if principal.can_see(shipment.retailer_id, shipment.vendor_id) => Ok(shipment),
        _ => Err(Failure::NotFound(format!("shipment {id}"))),
    }
}

/// A purchase order the caller may see (as [`visible_shipment`]).
pub async fn visible_purchase_order<R: PurchaseOrders>(
    repositories: &R,
    principal: &Principal,
    id: PurchaseOrderId,
) -> Result<PurchaseOrder, Failure> {
    match repositories.retailer_purchase_order(principal.retailer_id, id).await? {
        Some(po) if principal.can_see_purchase_order(&po) => Ok(po),
        _ => Err(Failure::NotFound(format!("purchase order {id}"))),
    }
}

async fn channel_store_of<R: Repositories>(repositories: &R, po: &PurchaseOrder) -> Result<ChannelStore, Failure> {
    repositories
        .channel_store(po.retailer_id, po.store_id)
        .await?
        .ok_or_else(|| Failure::permanent(format!("store {} of purchase order {} not found", po.store_id, po.id)))
}

async fn withdraw<P: ExportPlanner>(planner: &P, id: ShipmentId, reason: ExportReason, delivery: Delivery) {
    if let Err(failure) = planner.cancel(ExportRequest { shipment_id: id, reason }, delivery).await {
        warn!(error = %failure.chain(), "could not withdraw the plan of a write that lost its race");
    }
}

/// On a store that exports whole orders: once `written` (a shipment just written, or a
/// cancellation of the last open units) completes its order, plans the export of every shipment
/// that waited for it. Whoever writes a shipment (the API, a channel fulfillment) or cancels
/// units calls it.
pub async fn release_order_if_shipped<R: Repositories, P: ExportPlanner>(
    repositories: &R,
    planner: &P,
    clock: &Clock,
    po: &PurchaseOrder,
    store: &ChannelStore,
    written: Option<&Shipment>,
) -> Result<(), Failure> {
    if store.export.export_when != ExportWhen::OrderFullyShipped {
        return Ok(());
    }
    let mut order_ids = match &po.channel_order_id {
        Some(channel_order) => {
            repositories.channel_order_purchase_orders(po.retailer_id, po.store_id, channel_order).await?
        }
        None => Vec::new(),
    };
    if !order_ids.contains(&po.id) {
        order_ids.push(po.id);
    }
    // Read after our own write, consistently: whichever shipment completes the order sees it.
    for id in &order_ids {
        let complete = match repositories.purchase_order_now(*id).await? {
            Some(order) => order.is_fully_fulfilled(),
            None => true,
        };
        if !complete {
            return Ok(());
        }
    }
    info!(purchase_order_id = %po.id, orders = order_ids.len(), "order fully shipped: releasing its shipments");
    for id in order_ids {
        let mut shipments = repositories.shipments_of_purchase_order(id).await?;
        // The index may not show the shipment written a moment ago yet.
        if let Some(written) = written
            && written.purchase_order_id == id
            && !shipments.iter().any(|s| s.id == written.id)
        {
            shipments.push(written.clone());
        }
        for shipment in shipments.into_iter().filter(|s| s.export.state == ExportState::WaitingForOrder) {
            let id = shipment.id;
            let found = AsFound::new(shipment);
            retry_on_conflict(|| release_one(repositories, planner, clock, store, id, &found)).await?;
        }
    }
    Ok(())
}

/// One attempt at releasing a waiting shipment: as found the first time, read again after a conflict.
async fn release_one<R: Repositories, P: ExportPlanner>(
    repositories: &R,
    planner: &P,
    clock: &Clock,
    store: &ChannelStore,
    id: ShipmentId,
    found: &AsFound<Shipment>,
) -> Result<(), Failure> {
    let Some(current) = found.current(|| repositories.shipment(id)).await? else { return Ok(()) };
    let now = clock();
    let Some(released) = current.order_shipped(now, store.export.delay()) else { return Ok(()) };
    let ExportState::Scheduled { due_at } = released.export.state else { return Ok(()) };
    let delivery = scheduled(due_at, now).1.unwrap_or(Delivery::Now);
    // Planned before it is written: the exporter retries a request that comes early.
    let request = ExportRequest { shipment_id: released.id, reason: ExportReason::OrderShipped };
    planner.deliver(request, delivery).await?;
    match repositories.update_shipment_state(&released).await {
        Err(Failure::Conflict(what)) => {
            withdraw(planner, released.id, ExportReason::OrderShipped, delivery).await;
            Err(Failure::Conflict(what))
        }
        other => other,
    }
}

/// Who a request's changes are recorded as made by.
fn actor(principal: &Principal) -> Actor {
    if principal.is_retailer_user() { Actor::RetailerUser } else { Actor::VendorUser }
}

/// `export` and `notify_customer` decide what a retailer's customer is told and when: a vendor
/// user may not set them. On an update, sending back the value the shipment has is not setting it.
fn refuse_export_fields_to_vendors(
    principal: &Principal,
    input: &ShipmentInput,
    current: Option<&Shipment>,
) -> Result<(), Failure> {
    if principal.is_retailer_user() {
        return Ok(());
    }
    let changes = |given: Option<bool>, current_value: Option<Option<bool>>| {
        given.is_some() && current_value.is_none_or(|value| value != given)
    };
    let mut refused = Vec::new();
    if changes(input.export, current.map(|s| s.export.export_override)) {
        refused.push("export");
    }
    if changes(input.notify_customer, current.map(|s| s.export.notify_override)) {
        refused.push("notify_customer");
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(Failure::Forbidden(format!("{} may be set by retailer users only", refused.join(" and "))))
}
