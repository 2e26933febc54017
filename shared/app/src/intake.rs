//! Order intake: applies what channels report (orders, cancellations, fulfillments made in the
//! channel, carrier scans). Events may come twice and in any order; each is applied idempotently
//! against what is stored, and a version older than the one applied is ignored.

use chrono::{DateTime, Utc};
use shipsync_domain::carrier::{Carrier, CarrierRef};
use shipsync_domain::export::{Delivery, ExportReason, ExportRequest};
use shipsync_domain::ids::{CarrierId, OrderItemId, RetailerId, ShipmentId, StoreId};
use shipsync_domain::limits::clip_bytes;
use shipsync_domain::mail::MailRequest;
use shipsync_domain::orders::{
    ChannelEvent, ChannelEventMessage, IncomingFulfillment, IncomingOrder, MAX_ID_BYTES, OrderProblem, OrderRecord,
    ProblemKind, ReverseSync, apply_order_changes, is_stale_version, items_cancelled_after_shipping, match_fulfillment,
    new_items, purchase_order_number, sha256_hex, split_order,
};
use shipsync_domain::purchase_order::{NewPurchaseOrder, PurchaseOrder};
use shipsync_domain::shipment::{
    ItemInput, Shipment, ShipmentContext, ShipmentInput, TrackingInput, draft_new_shipment,
};
use shipsync_domain::tenant::ChannelStore;
use shipsync_domain::time::Clock;
use shipsync_domain::tracking::CarrierScan;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use tracing::{error, info, warn};

mod returns;

use crate::Failure;
use crate::optimistic::{AsFound, kept_changing, retry_on_conflict};
use crate::ports::{ExportPlanner, Repositories};
use crate::shipments::release_order_if_shipped;

/// The template's `maxReceiveCount` for the order queue.
pub const MAX_RECEIVES: u32 = 5;

/// Applies channel events; the order processor feeds it its queue, the API its reprocessing.
#[derive(Clone)]
pub struct OrderIntake<R, P> {
    repositories: R,
    /// Queues exports that a carrier scan makes due.
    planner: P,
    /// Emails new purchase orders to vendors that take them (`None`: the deployment sends no email).
    mail: Option<crate::ports::MailSender>,
    clock: Clock,
    /// The order queue's `maxReceiveCount`: on that receive, an event that still fails is listed
    /// in order health before its message goes to the dead-letter queue.
    max_receives: u32,
}

/// How a queued event reached us: which message, and on which of its deliveries.
#[derive(Debug, Clone, Default)]
pub struct QueuedDelivery {
    pub message_id: String,
    /// SQS's `ApproximateReceiveCount`: 1 on the first delivery.
    pub receives: u32,
}

/// What applying an order did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The version was not newer than the one already applied.
    pub stale: bool,
    pub order_id: u64,
    pub purchase_orders: Vec<shipsync_domain::ids::PurchaseOrderId>,
    pub unknown_lines: usize,
}

impl<R: Repositories, P: ExportPlanner> OrderIntake<R, P> {
    pub fn new(repositories: R, planner: P, clock: Clock) -> Self {
        Self { repositories, planner, clock, max_receives: MAX_RECEIVES, mail: None }
    }

    /// Emails each new purchase order to its vendor when the retailer turned that on for it.
    pub fn with_mail(mut self, mail: crate::ports::MailSender) -> Self {
        self.mail = Some(mail);
        self
    }

    /// Reads the time from `clock` (tests control it).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The order queue's `maxReceiveCount`, if not [`MAX_RECEIVES`].
    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.max_receives = max_receives;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Applies one queued channel event (a message body). An event that can never be applied is
    /// kept and listed in order health (and the message is done with); one that fails on its
    /// last delivery is listed before it goes to the dead-letter queue.
    pub async fn apply_message(&self, body: &str, delivery: &QueuedDelivery) -> Result<(), Failure> {
        let event: ChannelEventMessage = match serde_json::from_str(body) {
            Ok(event) => event,
            Err(error) => {
                // Well formed enough to name its store: kept and listed, not retried (it never reads).
                if let Some((retailer, store)) = scope_of(body) {
                    return self.unapplicable(retailer, store, body, "", &format!("unreadable event: {error}")).await;
                }
                // Kept: after its last receive it rests in the dead-letter queue (alarmed), for a person.
                error!(%error, "unreadable channel event naming no store");
                return Err(Failure::retryable("unreadable channel event"));
            }
        };
        // Boxed: the nested futures are deep enough to exceed the compiler's layout limit.
        let outcome = match event.event.check_applicable() {
            Ok(()) => Box::pin(self.apply(&event)).await,
            Err(problem) => Err(Failure::permanent(problem)),
        };
        let outcome = match (outcome, event.retailer_id, event.store_id) {
            (Err(failure), Some(retailer), Some(store)) if failure.is_permanent() => {
                let order = clip_bytes(&event_order_id(&event.event), MAX_ID_BYTES);
                return self.unapplicable(retailer, store, body, &order, &format!("{}: {failure}", event.source)).await;
            }
            (Err(failure), _, _) if failure.is_permanent() => Err(Failure::retryable(failure.to_string())),
            (outcome, _, _) => outcome,
        };
        let receives = delivery.receives;
        if let Err(failure) = &outcome
            && receives >= self.max_receives
            && let (Some(retailer), Some(store)) = (event.retailer_id, event.store_id)
        {
            // Its last try: say so where people look before the message goes to the dead-letter queue.
            let problem = OrderProblem {
                key: format!("dead_letter:{}", delivery.message_id),
                kind: ProblemKind::UnreadableEvent,
                order_id: None,
                store_id: store,
                channel_order_id: event_order_id(&event.event),
                order_number: String::new(),
                reason: format!(
                    "{} could not be applied after {receives} tries ({failure}); it is in the order dead-letter queue",
                    event.source
                ),
                since: self.now(),
            };
            if let Err(failure) = self.repositories.put_problem(retailer, &problem).await {
                error!(error = %failure.chain(), "could not list a dead-lettered event");
            }
        }
        outcome
    }

    /// Keeps an event that can never be applied and lists it in order health, instead of
    /// retrying it: the message is done with once both are written.
    async fn unapplicable(
        &self,
        retailer: RetailerId,
        store: StoreId,
        body: &str,
        channel_order_id: &str,
        problem: &str,
    ) -> Result<(), Failure> {
        let now = self.now();
        let key = format!("unapplicable:{store}:{}", sha256_hex(body.as_bytes()));
        let kept = self.repositories.keep_payload(retailer, &key, body.as_bytes(), now).await?;
        let listed = OrderProblem {
            key: key.clone(),
            kind: ProblemKind::UnapplicablePayload,
            order_id: None,
            store_id: store,
            channel_order_id: channel_order_id.to_owned(),
            order_number: String::new(),
            reason: format!(
                "an order event could not be applied: {problem}. The event ({}) is kept as {key}",
                kept.describe()
            ),
            since: now,
        };
        self.repositories.put_problem(retailer, &listed).await?;
        warn!(%problem, "order event kept: it cannot be applied");
        Ok(())
    }

    async fn apply(&self, event: &ChannelEventMessage) -> Result<(), Failure> {
        let event = event.clone();
        let scope = || match (event.retailer_id, event.store_id) {
            (Some(retailer), Some(store)) => Ok((retailer, store)),
            _ => Err(Failure::retryable(format!("{}: an order event names no store", event.source))),
        };
        match event.event.clone() {
            ChannelEvent::OrderChanged { order } | ChannelEvent::OrderCancelled { order } => {
                let (retailer, store) = scope()?;
                self.apply_order(retailer, store, &order, false).await?;
                // The channel's own shipments of the order, after the order (their lines are
                // known now); each is applied once, however often the order comes.
                for fulfillment in &order.fulfillments {
                    self.reverse_sync(retailer, store, fulfillment).await?;
                }
                Ok(())
            }
            ChannelEvent::FulfillmentChanged { fulfillment } => {
                let (retailer, store) = scope()?;
                self.reverse_sync(retailer, store, &fulfillment).await
            }
            ChannelEvent::CarrierScanned { scan } => {
                // Posted to one store's URL and signed with its secret: only its shipments.
                let (_, store) = scope()?;
                self.apply_scan(store, &scan).await
            }
            ChannelEvent::ReturnChanged { ret } => {
                let (retailer, store) = scope()?;
                Box::pin(self.apply_return(retailer, store, &ret)).await
            }
        }
    }

    /// Applies a version of an order: one purchase order per vendor, later versions' removals
    /// and cancellations, problems listed for lines no product claims. With `force` (reprocess),
    /// the version is applied even if it is not newer.
    pub async fn apply_order(
        &self,
        retailer: RetailerId,
        store: StoreId,
        order: &IncomingOrder,
        force: bool,
    ) -> Result<Applied, Failure> {
        shipsync_domain::orders::check_applicable(order).map_err(Failure::permanent)?;
        retry_on_conflict(|| self.try_apply_order(retailer, store, order, force))
            .await
            .map_err(kept_changing(format_args!("order {}", order.channel_order_id)))
    }

    /// Applies an order's last version again, with the products as they are now (reprocess):
    /// problems that are fixed are cleared. Another retailer's order is as absent as a missing one.
    pub async fn reprocess(&self, retailer: RetailerId, order_id: u64) -> Result<(OrderRecord, Applied), Failure> {
        let (record, _) = self
            .repositories
            .retailer_order_record(retailer, order_id)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("order {order_id}")))?;
        let applied = self.apply_order(record.retailer_id, record.store_id, &record.order, true).await?;
        Ok((record, applied))
    }

    async fn try_apply_order(
        &self,
        retailer: RetailerId,
        store: StoreId,
        order: &IncomingOrder,
        force: bool,
    ) -> Result<Applied, Failure> {
        let (record, mut po_ids) = self.repositories.order_record(retailer, store, &order.channel_order_id).await?;
        if let Some(applied) = &record
            && !force
            && is_stale_version(&applied.order, order)
        {
            info!(order = %order.channel_order_id, "order version already applied or older: ignored");
            return Ok(Applied { stale: true, ..Applied::default() });
        }
        let now = self.now();
        let skus: Vec<Sku> = order.lines.iter().filter_map(|line| line.sku.clone()).collect();
        let products = self.repositories.products_by_sku(retailer, &skus).await?;
        let split = split_order(order, |sku| products.get(sku).cloned());

        // A purchase order for every vendor with lines and none yet, unless the order is cancelled.
        // (The order's own list decides, not the number: purchase orders made before numbers
        // carried the store are found too.)
        let mut current = self.repositories.purchase_orders(&po_ids).await?;
        let mut taken = Vec::new();
        if !order.cancelled {
            for (vendor, lines) in &split.by_vendor {
                if current.iter().any(|po| po.vendor_id == *vendor) {
                    continue;
                }
                let items = new_items(None, lines);
                if items.is_empty() {
                    continue;
                }
                let number = purchase_order_number(store, &order.number, *vendor);
                let new = NewPurchaseOrder {
                    retailer_id: retailer,
                    vendor_id: *vendor,
                    store_id: store,
                    public_reference: number.clone(),
                    channel_order_id: Some(order.channel_order_id.clone()),
                    customer_name: order.customer_name.clone(),
                    items,
                };
                let ids = self.repositories.allocate_ids(new.ids_needed()).await?;
                let po = new.build(ids, now).map_err(|errors| Failure::permanent(errors.to_string()))?;
                // Queued before the order is written (the mailer waits for one that comes first),
                // named by the order's creation, so a retry's request is the same one.
                if let Some(send) = &self.mail
                    && self
                        .repositories
                        .vendor(retailer, *vendor)
                        .await?
                        .is_some_and(|vendor| vendor.email_purchase_orders && vendor.email.is_some())
                {
                    send(MailRequest { retailer_id: retailer, purchase_order_id: po.id, requested_at: po.created_at })
                        .await?;
                }
                match self.repositories.create_purchase_order(&po).await {
                    Ok(()) => {
                        info!(purchase_order_id = %po.id, number = %po.public_reference, "purchase order created");
                        po_ids.push(po.id);
                        current.push(po);
                    }
                    Err(Failure::Exists(_)) => {
                        // Another delivery of this order made it meanwhile: start again from what is stored.
                        let (_, now_listed) =
                            self.repositories.order_record(retailer, store, &order.channel_order_id).await?;
                        if now_listed.len() != po_ids.len() {
                            return Err(Failure::Conflict("order".into()));
                        }
                        // Or another purchase order holds the number: a person must see it.
                        warn!(%number, order = %order.number, "purchase order number taken");
                        taken.push(OrderProblem {
                            key: format!("{}V{vendor}", number_taken_prefix(store, &order.channel_order_id)),
                            kind: ProblemKind::PurchaseOrderNumberTaken,
                            order_id: None,
                            store_id: store,
                            channel_order_id: order.channel_order_id.to_string(),
                            order_number: order.number.clone(),
                            reason: format!(
                                "no purchase order was made for vendor {vendor}: its number {number} is taken by \
                                 another purchase order; rename that one, then reprocess the order"
                            ),
                            since: now,
                        });
                    }
                    Err(other) => return Err(other),
                }
            }
        }

        // Every purchase order of the order: new lines added, decreased and cancelled quantities cancelled.
        po_ids.sort_unstable();
        po_ids.dedup();
        for mut po in current {
            let before = po.clone();
            if !order.cancelled
                && let Some(lines) = split.by_vendor.get(&po.vendor_id)
            {
                let items = new_items(Some(&po), lines);
                if !items.is_empty() {
                    let ids = self.repositories.allocate_ids(items.len()).await?;
                    for (item, id) in items.into_iter().zip(ids) {
                        po.items.push(item.into_item(OrderItemId::new_unchecked(id)));
                    }
                }
            }
            apply_order_changes(&mut po, order, now);
            if po != before {
                po.version += 1;
                po.updated_at = now;
                self.repositories.update_purchase_order(&po).await?;
            }
            self.stop_cancelled_exports(&po, order, now).await?;
        }

        let order_id = match &record {
            Some(current) => current.id,
            None => *self.repositories.allocate_ids(1).await?.start(),
        };
        // Problems: listed for lines no product claims, cleared for lines that are fine now.
        let unknown: Vec<OrderProblem> =
            split.unknown.iter().map(|line| OrderProblem::unknown_sku(store, order_id, order, line, now)).collect();
        let listed = self
            .repositories
            .problems_with_prefix(retailer, &OrderProblem::unknown_sku_prefix(store, &order.channel_order_id))
            .await?;
        for existing in &listed {
            if order.cancelled || !unknown.iter().any(|problem| problem.key == existing.key) {
                self.repositories.delete_problem(retailer, &existing.key).await?;
                info!(problem = %existing.key, "problem cleared");
            }
        }
        // A problem already listed keeps the time it was first seen.
        for problem in unknown.iter().filter(|p| !order.cancelled && !listed.iter().any(|l| l.key == p.key)) {
            warn!(order = %order.number, reason = %problem.reason, "order problem");
            self.repositories.put_problem(retailer, problem).await?;
        }
        // Numbers taken: listed while they are, cleared once the purchase order could be made.
        let listed_taken = self
            .repositories
            .problems_with_prefix(retailer, &number_taken_prefix(store, &order.channel_order_id))
            .await?;
        for existing in listed_taken.iter().filter(|l| !taken.iter().any(|t| t.key == l.key)) {
            self.repositories.delete_problem(retailer, &existing.key).await?;
            info!(problem = %existing.key, "problem cleared");
        }
        for problem in taken.iter().filter(|t| !listed_taken.iter().any(|l| l.key == t.key)) {
            self.repositories.put_problem(retailer, problem).await?;
        }

        // Before the record that makes this version stale: a failure here is retried with it.
        let record_had_cancel_request = record.as_ref().is_some_and(|r| r.order.cancel_requested.is_some());
        self.list_cancel_request(retailer, store, order, record_had_cancel_request).await?;
        let next = match record {
            Some(current) => OrderRecord { order: order.clone(), version: current.version + 1, ..current },
            None => OrderRecord {
                id: order_id,
                retailer_id: retailer,
                store_id: store,
                channel_order_id: order.channel_order_id.clone(),
                number: order.number.clone(),
                order: order.clone(),
                version: 1,
            },
        };
        self.repositories.save_order_record(&next).await?;
        Ok(Applied { stale: false, order_id, purchase_orders: po_ids, unknown_lines: unknown.len() })
    }

    /// A buyer's cancellation request is the seller's to decide at the channel: listed in order
    /// health while the order asks, cleared once it no longer does (cancelled, or withdrawn).
    async fn list_cancel_request(
        &self,
        retailer: RetailerId,
        store: StoreId,
        order: &IncomingOrder,
        listed_before: bool,
    ) -> Result<(), Failure> {
        let key = OrderProblem::cancel_requested_key(store, &order.channel_order_id);
        match order.cancel_requested.as_ref().filter(|_| !order.cancelled) {
            // Listed already: it keeps the time it was first seen.
            Some(_) if listed_before => Ok(()),
            Some(reason) => {
                let problem = OrderProblem {
                    key,
                    kind: ProblemKind::CancelRequested,
                    order_id: None,
                    store_id: store,
                    channel_order_id: order.channel_order_id.to_string(),
                    order_number: order.number.clone(),
                    reason: format!(
                        "the buyer asked to cancel ({reason}): accept or decline it at the channel before the order ships"
                    ),
                    since: self.now(),
                };
                warn!(order = %order.number, "buyer asked to cancel");
                self.repositories.put_problem(retailer, &problem).await
            }
            None if listed_before => self.repositories.delete_problem(retailer, &key).await,
            None => Ok(()),
        }
    }

    /// A planned export of a shipment holding cancelled items does not go out, and says why.
    async fn stop_cancelled_exports(
        &self,
        po: &PurchaseOrder,
        order: &IncomingOrder,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        // Items of which the channel now wants fewer than were shipped: some shipment carries
        // cancelled units. A line the order does not mention wants what it wanted.
        let over = items_cancelled_after_shipping(po, order);
        if over.is_empty() {
            return Ok(());
        }
        for shipment in self.repositories.shipments_of_purchase_order(po.id).await? {
            let Some(cancelled_item) =
                shipment.items.iter().find_map(|item| over.iter().find(|o| o.id == item.order_item_id))
            else {
                continue;
            };
            let reason = if order.cancelled {
                format!("order {} was cancelled at the channel", order.number)
            } else {
                format!("{} ({}) was cancelled at the channel", cancelled_item.sku, cancelled_item.name)
            };
            if let Some(stopped) = shipment.cancel_export(now, reason.clone()) {
                self.repositories.update_shipment_state(&stopped).await?;
                info!(shipment_id = %shipment.id, %reason, "planned export cancelled");
            }
        }
        Ok(())
    }

    /// Records a carrier scan on the store's shipments that carry the tracking number, and
    /// queues the export of those that waited for movement. The scan came to this store's URL,
    /// signed with its secret: another store's shipment with the same number is not looked at.
    /// Applying a scan again changes nothing (a shipment's tracking status only moves forward,
    /// and an export is released once), so a delivery repeated by the provider is harmless.
    pub async fn apply_scan(&self, store: StoreId, scan: &CarrierScan) -> Result<(), Failure> {
        let shipments = self.repositories.shipments_by_tracking(store, &scan.tracking_number).await?;
        if shipments.is_empty() {
            info!(%store, tracking = %scan.tracking_number, provider = %scan.provider, "scan for a tracking number the store does not know");
        }
        for shipment in shipments {
            let id = shipment.id;
            let found = AsFound::new(shipment);
            retry_on_conflict(|| self.record_scan(id, &found, scan))
                .await
                .map_err(kept_changing(format_args!("shipment {id}")))?;
        }
        Ok(())
    }

    /// One attempt at recording a scan on a shipment: the shipment as found on the first
    /// attempt, read again after a conflict.
    async fn record_scan(&self, id: ShipmentId, found: &AsFound<Shipment>, scan: &CarrierScan) -> Result<(), Failure> {
        let Some(current) = found.current(|| self.repositories.shipment(id)).await? else { return Ok(()) };
        let Some((next, release)) = current.carrier_scan(scan.status, scan.occurred_at, self.now()) else {
            return Ok(());
        };
        if release {
            // Planned before it is written, as everywhere: the exporter retries a request that comes early.
            let request = ExportRequest { shipment_id: next.id, reason: ExportReason::Scheduled };
            self.planner.deliver(request, Delivery::Now).await?;
        }
        self.repositories.update_shipment_state(&next).await?;
        if release {
            // It moved: a "no carrier scan" problem listed for it is settled.
            self.repositories.delete_problem(next.retailer_id, &OrderProblem::no_scan_key(next.id)).await?;
        }
        info!(shipment_id = %next.id, status = scan.status.name(), release, "carrier scan recorded");
        Ok(())
    }

    /// Applies a fulfillment made in the channel, by Duoplane's rules.
    pub async fn reverse_sync(
        &self,
        retailer: RetailerId,
        store: StoreId,
        fulfillment: &IncomingFulfillment,
    ) -> Result<(), Failure> {
        if fulfillment.cancelled {
            info!(fulfillment = %fulfillment.channel_fulfillment_id, "cancelled channel fulfillment: nothing to apply");
            return Ok(());
        }
        // A reverse sync never becomes "unapplicable": what it cannot apply it lists as ignored.
        let outcome = retry_on_conflict(|| self.try_reverse_sync(retailer, store, fulfillment))
            .await
            .map_err(kept_changing(format_args!("fulfillment {}", fulfillment.channel_fulfillment_id)));
        outcome
            .map_err(|failure| if failure.is_permanent() { Failure::retryable(failure.to_string()) } else { failure })
    }

    async fn try_reverse_sync(
        &self,
        retailer: RetailerId,
        store: StoreId,
        fulfillment: &IncomingFulfillment,
    ) -> Result<(), Failure> {
        let now = self.now();
        // Applied before (a create and an update racing, a delivery twice): the record decides,
        // not the shipments an index shows, which may not show the other side's shipment yet.
        if let Some(shipment) =
            self.repositories.channel_fulfillment_applied(store, &fulfillment.channel_fulfillment_id).await?
        {
            info!(fulfillment = %fulfillment.channel_fulfillment_id, shipment_id = %shipment, "channel fulfillment applied before");
            return Ok(());
        }
        let (_, po_ids) = self.repositories.order_record(retailer, store, &fulfillment.channel_order_id).await?;
        let purchase_orders = self.repositories.purchase_orders(&po_ids).await?;
        let mut shipments = Vec::new();
        for po in &purchase_orders {
            shipments.extend(self.repositories.shipments_of_purchase_order(po.id).await?);
        }
        let decision = match_fulfillment(fulfillment, &purchase_orders, &shipments);
        info!(fulfillment = %fulfillment.channel_fulfillment_id, ?decision, "channel fulfillment");
        match decision {
            ReverseSync::Known(_) => Ok(()),
            ReverseSync::Link(id) => {
                let Some(shipment) = shipments.into_iter().find(|s| s.id == id) else { return Ok(()) };
                let linked = shipment.linked_to_channel(now, fulfillment.channel_fulfillment_id.clone());
                self.repositories.update_shipment_state(&linked).await
            }
            ReverseSync::Create { purchase_order_id, items } => {
                let Some(po) = purchase_orders.into_iter().find(|po| po.id == purchase_order_id) else { return Ok(()) };
                self.create_from_channel(retailer, store, po, fulfillment, &items, now).await
            }
            ReverseSync::Ignore(reason) => self.ignored(retailer, store, fulfillment, reason, now).await,
        }
    }

    /// Creates the shipment a channel fulfillment stands for, linked to it and never exported.
    async fn create_from_channel(
        &self,
        retailer: RetailerId,
        store: StoreId,
        mut po: PurchaseOrder,
        fulfillment: &IncomingFulfillment,
        items: &[(OrderItemId, u32)],
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let Some((profile, carriers)) = self.repositories.retailer_with_carriers(retailer).await? else {
            return Err(Failure::retryable(format!("retailer {retailer} not found")));
        };
        let channel_store = self.repositories.channel_store(retailer, po.store_id).await?;
        let carrier = match self.channel_carrier(retailer, fulfillment, channel_store.as_ref(), &carriers).await? {
            Some(carrier) => carrier,
            None => {
                let reason = "it has no tracking company shipsync can name a carrier for".to_owned();
                return self.ignored(retailer, po.store_id, fulfillment, reason, now).await;
            }
        };
        let input = ShipmentInput {
            shipper_id: Some(carrier.get()),
            items: Some(
                items
                    .iter()
                    .map(|(item, quantity)| ItemInput {
                        order_item_id: Some(item.get()),
                        quantity: Some(i64::from(*quantity)),
                        ..ItemInput::default()
                    })
                    .collect(),
            ),
            trackings: Some(
                fulfillment
                    .tracking_numbers
                    .iter()
                    .map(|number| TrackingInput { tracking: Some(number.to_string()), ..TrackingInput::default() })
                    .collect(),
            ),
            export: Some(false),
            ..ShipmentInput::default()
        };
        let context = ShipmentContext {
            purchase_order: &po,
            carriers: &carriers,
            fees: profile.fees,
            now,
            tracking_corrections: None,
        };
        let draft = match draft_new_shipment(context, &input) {
            Ok(draft) => draft,
            Err(problems) => {
                return self.ignored(retailer, po.store_id, fulfillment, problems.to_string(), now).await;
            }
        };
        let ids = self.repositories.allocate_ids(draft.ids_needed()).await?;
        po.apply_fulfillment(&draft.fulfillment_change).map_err(|_| Failure::Conflict("purchase order".into()))?;
        po.version += 1;
        po.updated_at = now;
        let shipment = draft
            .finish(&mut ids.into_iter())
            .map_err(|e| Failure::retryable(e.to_string()))?
            .arrived_from_channel(now, fulfillment.channel_fulfillment_id.clone());
        self.repositories
            .create_shipment_from_channel(&shipment, &po, store, &fulfillment.channel_fulfillment_id)
            .await?;
        info!(shipment_id = %shipment.id, fulfillment = %fulfillment.channel_fulfillment_id, "shipment created from the channel");
        // Shipped in the channel, it can complete an order whose other shipments wait for it.
        if let Some(channel_store) = &channel_store
            && let Err(failure) = release_order_if_shipped(
                &self.repositories,
                &self.planner,
                &self.clock,
                &po,
                channel_store,
                Some(&shipment),
            )
            .await
        {
            error!(shipment_id = %shipment.id, error = %failure.chain(), "could not release the order's shipments");
        }
        Ok(())
    }

    /// The carrier a channel's tracking company names: the store's mapping, else a carrier of
    /// that name, else a new carrier of the retailer with that name.
    async fn channel_carrier(
        &self,
        retailer: RetailerId,
        fulfillment: &IncomingFulfillment,
        channel_store: Option<&ChannelStore>,
        carriers: &[Carrier],
    ) -> Result<Option<CarrierId>, Failure> {
        let Some(company) = fulfillment.tracking_company.as_deref().map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let mapped = channel_store.and_then(|store| {
            store
                .export
                .carrier_mappings
                .iter()
                .find(|m| m.channel_carrier.eq_ignore_ascii_case(company))
                .map(|m| m.shipper_id)
        });
        if let Some(id) = mapped.or_else(|| CarrierRef::Name(company.to_owned()).resolve(carriers).map(|c| c.id)) {
            return Ok(Some(id));
        }
        let carrier = Carrier {
            id: CarrierId::new_unchecked(*self.repositories.allocate_ids(1).await?.start()),
            name: company.to_owned(),
            scac_code: None,
        };
        match self.repositories.put_carrier(retailer, &carrier).await {
            Ok(()) => {
                info!(carrier = %carrier.name, "carrier added from a channel fulfillment");
                Ok(Some(carrier.id))
            }
            Err(Failure::Exists(what)) => Err(Failure::Conflict(what)),
            Err(other) => Err(other),
        }
    }

    async fn ignored(
        &self,
        retailer: RetailerId,
        store: StoreId,
        fulfillment: &IncomingFulfillment,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(), Failure> {
        let (record, _) = self.repositories.order_record(retailer, store, &fulfillment.channel_order_id).await?;
        let problem = OrderProblem {
            key: format!("channel_fulfillment:{store}:{}", fulfillment.channel_fulfillment_id),
            kind: ProblemKind::ChannelFulfillmentIgnored,
            order_id: record.as_ref().map(|r| r.id),
            store_id: store,
            channel_order_id: fulfillment.channel_order_id.to_string(),
            order_number: record.map(|r| r.number).unwrap_or_default(),
            reason: format!("a fulfillment made in the channel was ignored: {reason}"),
            since: now,
        };
        warn!(fulfillment = %fulfillment.channel_fulfillment_id, %reason, "channel fulfillment ignored");
        self.repositories.put_problem(retailer, &problem).await?;
        Ok(())
    }
}

fn event_order_id(event: &ChannelEvent) -> String {
    match event {
        ChannelEvent::OrderChanged { order } | ChannelEvent::OrderCancelled { order } => {
            order.channel_order_id.to_string()
        }
        ChannelEvent::FulfillmentChanged { fulfillment } => fulfillment.channel_order_id.to_string(),
        ChannelEvent::CarrierScanned { scan } => scan.tracking_number.to_string(),
        ChannelEvent::ReturnChanged { ret } => {
            ret.channel_order_id.as_ref().map_or_else(|| ret.channel_return_id.clone(), ToString::to_string)
        }
    }
}

/// The key prefix of an order's "purchase order number taken" problems.
fn number_taken_prefix(store: StoreId, channel_order_id: &ChannelOrderId) -> String {
    format!("po_number_taken:{store}:{channel_order_id}:")
}

/// The retailer and store an unreadable message names, if it names them.
fn scope_of(body: &str) -> Option<(RetailerId, StoreId)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let retailer = value["retailer_id"].as_u64().and_then(|id| RetailerId::new(id).ok())?;
    let store = value["store_id"].as_u64().and_then(|id| StoreId::new(id).ok())?;
    Some((retailer, store))
}
