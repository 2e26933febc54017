//! The order processor: applies what channels and carriers report (orders, cancellations,
//! fulfillments made in the channel, carrier scans, which queue the exports waiting for movement).
//! Events may come twice and in any order; each is applied idempotently against what is stored,
//! and a version older than the one applied is ignored.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, Utc};
use shipsync_domain::carrier::{Carrier, CarrierRef};
use shipsync_domain::export::ExportState;
use shipsync_domain::export::{Delivery, ExportReason, ExportRequest};
use shipsync_domain::ids::OrderItemId;
use shipsync_domain::ids::{CarrierId, PurchaseOrderId, RetailerId, StoreId};
use shipsync_domain::limits::clip_bytes;
use shipsync_domain::orders::{
    ChannelEvent, ChannelEventMessage, IncomingFulfillment, IncomingOrder, MAX_ID_BYTES, OrderProblem, ProblemKind,
    ReverseSync, apply_order_changes, match_fulfillment, new_items, purchase_order_number, split_order,
    wanted_quantity,
};
use shipsync_domain::purchase_order::{NewPurchaseOrder, OrderItem, PurchaseOrder};
use shipsync_domain::shipment::{ItemInput, ShipmentContext, ShipmentInput, TrackingInput, draft_new_shipment};
use shipsync_domain::tracking::CarrierScan;
use shipsync_planner::ExportPlanner;
use shipsync_table::{OrderRecord, Table, TableError, sha256_hex};
use tracing::{error, info, warn};

use shipsync_domain::time::Clock;

/// Attempts at an event whose records changed under it before the message goes back to the queue.
const ATTEMPTS: usize = 5;

#[derive(Clone)]
pub struct OrderProcessor {
    table: Table,
    /// Queues exports that a carrier scan makes due.
    planner: Option<ExportPlanner>,
    clock: Clock,
    /// The order queue's `maxReceiveCount`: on that receive, an event that still fails is listed
    /// in order health before its message goes to the dead-letter queue.
    max_receives: u32,
}

/// The template's `maxReceiveCount` for the order queue.
pub const MAX_RECEIVES: u32 = 5;

/// Why an event must be delivered again.
#[derive(Debug)]
pub struct Retry(pub String);

impl From<TableError> for Retry {
    fn from(error: TableError) -> Self {
        Retry(format!("store: {error}"))
    }
}

/// What applying an order did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The version was not newer than the one already applied.
    pub stale: bool,
    pub order_id: u64,
    pub purchase_orders: Vec<PurchaseOrderId>,
    pub unknown_lines: usize,
}

impl OrderProcessor {
    pub fn new(table: Table) -> Self {
        Self { table, planner: None, clock: Arc::new(Utc::now), max_receives: MAX_RECEIVES }
    }

    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn with_planner(mut self, planner: ExportPlanner) -> Self {
        self.planner = Some(planner);
        self
    }

    pub fn with_max_receives(mut self, max_receives: u32) -> Self {
        self.max_receives = max_receives;
        self
    }

    fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Handles a batch; each record succeeds or fails on its own.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        shipsync_platform::for_each_record(event, "order-processor", async |message| {
            // Boxed: the nested futures are deep enough to exceed the compiler's layout limit.
            Box::pin(self.process(message)).await.map_err(|Retry(reason)| reason)
        })
        .await
    }

    async fn process(&self, message: &SqsMessage) -> Result<(), Retry> {
        let body = message.body.as_deref().unwrap_or_default();
        let event: ChannelEventMessage = match serde_json::from_str(body) {
            Ok(event) => event,
            Err(error) => {
                // Well formed enough to name its store: kept and listed, not retried (it never reads).
                if let Some((retailer, store)) = scope_of(body) {
                    return self.unapplicable(retailer, store, body, "", &format!("unreadable event: {error}")).await;
                }
                // Kept: after its last receive it rests in the dead-letter queue (alarmed), for a person.
                error!(%error, "unreadable channel event naming no store");
                return Err(Retry("unreadable channel event".into()));
            }
        };
        // Boxed: the nested futures are deep enough to exceed the compiler's layout limit.
        let outcome = match event.event.check_applicable() {
            Ok(()) => Box::pin(self.apply(&event)).await,
            Err(problem) => Err(Failure::Unapplicable(problem)),
        };
        let outcome = match (outcome, event.retailer_id, event.store_id) {
            (Err(Failure::Unapplicable(problem)), Some(retailer), Some(store)) => {
                let order = clip_bytes(&event_order_id(&event.event), MAX_ID_BYTES);
                return self.unapplicable(retailer, store, body, &order, &format!("{}: {problem}", event.source)).await;
            }
            (Err(Failure::Unapplicable(problem)), _, _) => Err(Retry(problem)),
            (Err(Failure::Retry(retry)), _, _) => Err(retry),
            (Ok(()), _, _) => Ok(()),
        };
        let receives: u32 =
            message.attributes.get("ApproximateReceiveCount").and_then(|count| count.parse().ok()).unwrap_or(1);
        if let Err(Retry(reason)) = &outcome
            && receives >= self.max_receives
            && let (Some(retailer), Some(store)) = (event.retailer_id, event.store_id)
        {
            // Its last try: say so where people look before the message goes to the dead-letter queue.
            let problem = OrderProblem {
                key: format!("dead_letter:{}", message.message_id.as_deref().unwrap_or_default()),
                kind: ProblemKind::UnreadableEvent,
                order_id: None,
                store_id: store,
                channel_order_id: event_order_id(&event.event),
                order_number: String::new(),
                reason: format!(
                    "{} could not be applied after {receives} tries ({reason}); it is in the order dead-letter queue",
                    event.source
                ),
                since: self.now(),
            };
            if let Err(failure) = self.table.put_problem(retailer, &problem).await {
                error!(error = ?failure, "could not list a dead-lettered event");
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
    ) -> Result<(), Retry> {
        let now = self.now();
        let key = format!("unapplicable:{store}:{}", sha256_hex(body.as_bytes()));
        let kept = self.table.keep_payload(retailer, &key, body.as_bytes(), now).await?;
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
        self.table.put_problem(retailer, &listed).await?;
        warn!(%problem, "order event kept: it cannot be applied");
        Ok(())
    }

    async fn apply(&self, event: &ChannelEventMessage) -> Result<(), Failure> {
        let event = event.clone();
        let scope = || match (event.retailer_id, event.store_id) {
            (Some(retailer), Some(store)) => Ok((retailer, store)),
            _ => Err(Failure::Retry(Retry(format!("{}: an order event names no store", event.source)))),
        };
        match event.event.clone() {
            ChannelEvent::OrderChanged { order } | ChannelEvent::OrderCancelled { order } => {
                let (retailer, store) = scope()?;
                self.applying_order(retailer, store, &order, false).await.map(|_| ())
            }
            ChannelEvent::FulfillmentChanged { fulfillment } => {
                let (retailer, store) = scope()?;
                self.reverse_sync(retailer, store, &fulfillment).await.map_err(Failure::Retry)
            }
            ChannelEvent::CarrierScanned { scan } => self.apply_scan(&scan).await.map_err(Failure::Retry),
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
    ) -> Result<Applied, Retry> {
        self.applying_order(retailer, store, order, force).await.map_err(|failure| match failure {
            Failure::Retry(retry) => retry,
            Failure::Unapplicable(problem) => Retry(problem),
        })
    }

    async fn applying_order(
        &self,
        retailer: RetailerId,
        store: StoreId,
        order: &IncomingOrder,
        force: bool,
    ) -> Result<Applied, Failure> {
        shipsync_domain::orders::check_applicable(order).map_err(Failure::Unapplicable)?;
        for _ in 0..ATTEMPTS {
            match self.try_apply_order(retailer, store, order, force).await {
                Err(Attempt::Again) => continue,
                Err(Attempt::Failed(retry)) => return Err(Failure::Retry(retry)),
                Err(Attempt::Unapplicable(problem)) => return Err(Failure::Unapplicable(problem)),
                Ok(applied) => return Ok(applied),
            }
        }
        Err(Failure::Retry(Retry(format!("order {} kept changing", order.channel_order_id))))
    }

    async fn try_apply_order(
        &self,
        retailer: RetailerId,
        store: StoreId,
        order: &IncomingOrder,
        force: bool,
    ) -> Result<Applied, Attempt> {
        let (record, mut po_ids) = self.table.order_record(retailer, store, &order.channel_order_id).await?;
        if let Some(applied) = &record
            && !force
            && (applied.order.updated_at > order.updated_at
                || (applied.order.updated_at == order.updated_at && applied.order.cancelled == order.cancelled))
        {
            info!(order = %order.channel_order_id, "order version already applied or older: ignored");
            return Ok(Applied { stale: true, ..Applied::default() });
        }
        let now = self.now();
        let skus: Vec<String> = order.lines.iter().filter_map(|line| line.sku.clone()).collect();
        let products = self.table.products_by_sku(retailer, &skus).await?;
        let split = split_order(order, |sku| products.get(sku).cloned());

        // A purchase order for every vendor with lines and none yet, unless the order is cancelled.
        // (The order's own list decides, not the number: purchase orders made before numbers
        // carried the store are found too.)
        let mut current = self.table.purchase_orders(&po_ids).await?;
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
                let ids = self.table.allocate_ids(new.ids_needed()).await?;
                let po = new.build(ids, now).map_err(|errors| Attempt::Unapplicable(errors.to_string()))?;
                match self.table.create_purchase_order(&po).await {
                    Ok(()) => {
                        info!(purchase_order_id = %po.id, number = %po.public_reference, "purchase order created");
                        po_ids.push(po.id);
                        current.push(po);
                    }
                    Err(TableError::AlreadyExists(_)) => {
                        // Another delivery of this order made it meanwhile: start again from what is stored.
                        let (_, now_listed) = self.table.order_record(retailer, store, &order.channel_order_id).await?;
                        if now_listed.len() != po_ids.len() {
                            return Err(Attempt::Again);
                        }
                        // Or another purchase order holds the number: a person must see it.
                        warn!(%number, order = %order.number, "purchase order number taken");
                        taken.push(OrderProblem {
                            key: format!("{}V{vendor}", number_taken_prefix(store, &order.channel_order_id)),
                            kind: ProblemKind::PurchaseOrderNumberTaken,
                            order_id: None,
                            store_id: store,
                            channel_order_id: order.channel_order_id.clone(),
                            order_number: order.number.clone(),
                            reason: format!(
                                "no purchase order was made for vendor {vendor}: its number {number} is taken by \
                                 another purchase order; rename that one, then reprocess the order"
                            ),
                            since: now,
                        });
                    }
                    Err(other) => return Err(other.into()),
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
                    let ids = self.table.allocate_ids(items.len()).await?;
                    for (item, id) in items.into_iter().zip(ids) {
                        po.items.push(item.into_item(OrderItemId::new_unchecked(id)));
                    }
                }
            }
            apply_order_changes(&mut po, order, now);
            if po != before {
                po.version += 1;
                po.updated_at = now;
                match self.table.update_purchase_order(&po).await {
                    Ok(()) => {}
                    Err(TableError::Conflict(_)) => return Err(Attempt::Again),
                    Err(other) => return Err(other.into()),
                }
            }
            self.stop_cancelled_exports(&po, order, now).await?;
        }

        let order_id = match &record {
            Some(current) => current.id,
            None => *self.table.allocate_ids(1).await?.start(),
        };
        // Problems: listed for lines no product claims, cleared for lines that are fine now.
        let unknown: Vec<OrderProblem> =
            split.unknown.iter().map(|line| OrderProblem::unknown_sku(store, order_id, order, line, now)).collect();
        let listed = self
            .table
            .problems_with_prefix(retailer, &OrderProblem::unknown_sku_prefix(store, &order.channel_order_id))
            .await?;
        for existing in &listed {
            if order.cancelled || !unknown.iter().any(|problem| problem.key == existing.key) {
                self.table.delete_problem(retailer, &existing.key).await?;
                info!(problem = %existing.key, "problem cleared");
            }
        }
        // A problem already listed keeps the time it was first seen.
        for problem in unknown.iter().filter(|p| !order.cancelled && !listed.iter().any(|l| l.key == p.key)) {
            warn!(order = %order.number, reason = %problem.reason, "order problem");
            self.table.put_problem(retailer, problem).await?;
        }
        // Numbers taken: listed while they are, cleared once the purchase order could be made.
        let listed_taken =
            self.table.problems_with_prefix(retailer, &number_taken_prefix(store, &order.channel_order_id)).await?;
        for existing in listed_taken.iter().filter(|l| !taken.iter().any(|t| t.key == l.key)) {
            self.table.delete_problem(retailer, &existing.key).await?;
            info!(problem = %existing.key, "problem cleared");
        }
        for problem in taken.iter().filter(|t| !listed_taken.iter().any(|l| l.key == t.key)) {
            self.table.put_problem(retailer, problem).await?;
        }

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
        match self.table.save_order_record(&next).await {
            Ok(()) => Ok(Applied { stale: false, order_id, purchase_orders: po_ids, unknown_lines: unknown.len() }),
            Err(TableError::Conflict(_)) => Err(Attempt::Again),
            Err(other) => Err(other.into()),
        }
    }

    /// A planned export of a shipment holding cancelled items does not go out, and says why.
    async fn stop_cancelled_exports(
        &self,
        po: &PurchaseOrder,
        order: &IncomingOrder,
        now: DateTime<Utc>,
    ) -> Result<(), Attempt> {
        // Items of which the channel now wants fewer than were shipped: some shipment carries
        // cancelled units. A line the order does not mention wants what it wanted.
        let over: Vec<&OrderItem> = po
            .items
            .iter()
            .filter(|item| {
                order.cancelled
                    || wanted_quantity(order, item.channel_line_item_id.as_deref())
                        .is_some_and(|want| want < item.quantity_fulfilled)
            })
            .collect();
        if over.is_empty() {
            return Ok(());
        }
        for shipment in self.table.shipments_of_purchase_order(po.id).await? {
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
                match self.table.update_shipment(&stopped, None).await {
                    Ok(()) => info!(shipment_id = %shipment.id, %reason, "planned export cancelled"),
                    Err(TableError::Conflict(_)) => return Err(Attempt::Again),
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(())
    }

    /// Records a carrier scan on every shipment that carries the tracking number (each retailer's
    /// own), and queues the export of those whose store waited for movement.
    pub async fn apply_scan(&self, scan: &CarrierScan) -> Result<(), Retry> {
        let shipments = self.table.shipments_by_tracking(&scan.tracking_number).await?;
        if shipments.is_empty() {
            info!(tracking = %scan.tracking_number, provider = %scan.provider, "scan for a tracking number shipsync does not know");
        }
        for shipment in shipments {
            let mut current = shipment;
            for attempt in 0..=ATTEMPTS {
                if attempt == ATTEMPTS {
                    return Err(Retry(format!("shipment {} kept changing", current.id)));
                }
                let Some((next, release)) = current.carrier_scan(scan.status, scan.occurred_at, self.now()) else {
                    break;
                };
                if release {
                    // Planned before it is written, as everywhere: the exporter retries a request that comes early.
                    let planner = self.planner.as_ref().ok_or_else(|| Retry("no export planner configured".into()))?;
                    let request = ExportRequest { shipment_id: next.id, reason: ExportReason::Scheduled };
                    planner
                        .deliver(request, Delivery::Now)
                        .await
                        .map_err(|e| Retry(format!("queueing an export: {e}")))?;
                }
                match self.table.update_shipment(&next, None).await {
                    Ok(()) => {
                        info!(shipment_id = %next.id, status = scan.status.name(), release, "carrier scan recorded");
                        break;
                    }
                    Err(TableError::Conflict(_)) => match self.table.shipment(next.id).await? {
                        Some(fresh) => current = fresh,
                        None => break,
                    },
                    Err(other) => return Err(other.into()),
                }
            }
        }
        Ok(())
    }

    /// Applies a fulfillment made in the channel, by Duoplane's rules.
    pub async fn reverse_sync(
        &self,
        retailer: RetailerId,
        store: StoreId,
        fulfillment: &IncomingFulfillment,
    ) -> Result<(), Retry> {
        if fulfillment.cancelled {
            info!(fulfillment = %fulfillment.channel_fulfillment_id, "cancelled channel fulfillment: nothing to apply");
            return Ok(());
        }
        for _ in 0..ATTEMPTS {
            match self.try_reverse_sync(retailer, store, fulfillment).await {
                Err(Attempt::Again) => continue,
                Err(Attempt::Failed(retry)) => return Err(retry),
                Err(Attempt::Unapplicable(problem)) => return Err(Retry(problem)),
                Ok(()) => return Ok(()),
            }
        }
        Err(Retry(format!("fulfillment {} kept changing", fulfillment.channel_fulfillment_id)))
    }

    async fn try_reverse_sync(
        &self,
        retailer: RetailerId,
        store: StoreId,
        fulfillment: &IncomingFulfillment,
    ) -> Result<(), Attempt> {
        let now = self.now();
        // Applied before (a create and an update racing, a delivery twice): the record decides,
        // not the shipments an index shows, which may not show the other side's shipment yet.
        if let Some(shipment) =
            self.table.channel_fulfillment_applied(store, &fulfillment.channel_fulfillment_id).await?
        {
            info!(fulfillment = %fulfillment.channel_fulfillment_id, shipment_id = %shipment, "channel fulfillment applied before");
            return Ok(());
        }
        let (_, po_ids) = self.table.order_record(retailer, store, &fulfillment.channel_order_id).await?;
        let purchase_orders = self.table.purchase_orders(&po_ids).await?;
        let mut shipments = Vec::new();
        for po in &purchase_orders {
            shipments.extend(self.table.shipments_of_purchase_order(po.id).await?);
        }
        let decision = match_fulfillment(fulfillment, &purchase_orders, &shipments);
        info!(fulfillment = %fulfillment.channel_fulfillment_id, ?decision, "channel fulfillment");
        match decision {
            ReverseSync::Known(_) => Ok(()),
            ReverseSync::Link(id) => {
                let Some(shipment) = shipments.into_iter().find(|s| s.id == id) else { return Ok(()) };
                let linked = shipment.linked_to_channel(now, fulfillment.channel_fulfillment_id.clone());
                match self.table.update_shipment(&linked, None).await {
                    Ok(()) => Ok(()),
                    Err(TableError::Conflict(_)) => Err(Attempt::Again),
                    Err(other) => Err(other.into()),
                }
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
    ) -> Result<(), Attempt> {
        let Some((profile, carriers)) = self.table.retailer_with_carriers(retailer).await? else {
            return Err(Attempt::Failed(Retry(format!("retailer {retailer} not found"))));
        };
        let channel_store = self.table.channel_store(retailer, po.store_id).await?;
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
                    .map(|number| TrackingInput { tracking: Some(number.clone()), ..TrackingInput::default() })
                    .collect(),
            ),
            export: Some(false),
            ..ShipmentInput::default()
        };
        let context = ShipmentContext { purchase_order: &po, carriers: &carriers, fees: profile.fees, now };
        let draft = match draft_new_shipment(context, &input) {
            Ok(draft) => draft,
            Err(problems) => {
                return self.ignored(retailer, po.store_id, fulfillment, problems.to_string(), now).await;
            }
        };
        let ids = self.table.allocate_ids(draft.ids_needed()).await?;
        po.apply_fulfillment(&draft.fulfillment_change).map_err(|_| Attempt::Again)?;
        po.version += 1;
        po.updated_at = now;
        let mut shipment = draft.finish(&mut ids.into_iter()).map_err(|e| Attempt::Failed(Retry(e.to_string())))?;
        shipment.export.state = ExportState::Exported {
            exported_at: now,
            channel_ids: vec![fulfillment.channel_fulfillment_id.clone()],
            notified_customer: false,
        };
        shipment.sync.exported_at = Some(now);
        match self.table.create_shipment_from_channel(&shipment, &po, store, &fulfillment.channel_fulfillment_id).await
        {
            Ok(()) => {
                info!(shipment_id = %shipment.id, fulfillment = %fulfillment.channel_fulfillment_id, "shipment created from the channel");
                Ok(())
            }
            Err(TableError::Conflict(_)) => Err(Attempt::Again),
            Err(other) => Err(other.into()),
        }
    }

    /// The carrier a channel's tracking company names: the store's mapping, else a carrier of
    /// that name, else a new carrier of the retailer with that name.
    async fn channel_carrier(
        &self,
        retailer: RetailerId,
        fulfillment: &IncomingFulfillment,
        channel_store: Option<&shipsync_domain::tenant::ChannelStore>,
        carriers: &[Carrier],
    ) -> Result<Option<CarrierId>, Attempt> {
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
            id: CarrierId::new_unchecked(*self.table.allocate_ids(1).await?.start()),
            name: company.to_owned(),
            scac_code: None,
        };
        match self.table.put_carrier(retailer, &carrier).await {
            Ok(()) => {
                info!(carrier = %carrier.name, "carrier added from a channel fulfillment");
                Ok(Some(carrier.id))
            }
            Err(TableError::AlreadyExists(_)) => Err(Attempt::Again),
            Err(other) => Err(other.into()),
        }
    }

    async fn ignored(
        &self,
        retailer: RetailerId,
        store: StoreId,
        fulfillment: &IncomingFulfillment,
        reason: String,
        now: DateTime<Utc>,
    ) -> Result<(), Attempt> {
        let (record, _) = self.table.order_record(retailer, store, &fulfillment.channel_order_id).await?;
        let problem = OrderProblem {
            key: format!("channel_fulfillment:{store}:{}", fulfillment.channel_fulfillment_id),
            kind: ProblemKind::ChannelFulfillmentIgnored,
            order_id: record.as_ref().map(|r| r.id),
            store_id: store,
            channel_order_id: fulfillment.channel_order_id.clone(),
            order_number: record.map(|r| r.number).unwrap_or_default(),
            reason: format!("a fulfillment made in the channel was ignored: {reason}"),
            since: now,
        };
        warn!(fulfillment = %fulfillment.channel_fulfillment_id, %reason, "channel fulfillment ignored");
        self.table.put_problem(retailer, &problem).await?;
        Ok(())
    }
}

fn event_order_id(event: &ChannelEvent) -> String {
    match event {
        ChannelEvent::OrderChanged { order } | ChannelEvent::OrderCancelled { order } => order.channel_order_id.clone(),
        ChannelEvent::FulfillmentChanged { fulfillment } => fulfillment.channel_order_id.clone(),
        ChannelEvent::CarrierScanned { scan } => scan.tracking_number.clone(),
    }
}

/// Why an attempt stopped.
enum Attempt {
    /// A record changed under it: read again and retry at once.
    Again,
    /// Give the message back to the queue.
    Failed(Retry),
    /// It can never succeed (a record DynamoDB cannot hold, a value the domain refuses).
    Unapplicable(String),
}

impl From<TableError> for Attempt {
    fn from(error: TableError) -> Self {
        if error.is_permanent() { Attempt::Unapplicable(error.to_string()) } else { Attempt::Failed(error.into()) }
    }
}

/// Why an event was not applied.
enum Failure {
    /// Deliver it again later.
    Retry(Retry),
    /// Never: keep it and list it for a person.
    Unapplicable(String),
}

/// The key prefix of an order's "purchase order number taken" problems.
fn number_taken_prefix(store: StoreId, channel_order_id: &str) -> String {
    format!("po_number_taken:{store}:{channel_order_id}:")
}

/// The retailer and store an unreadable message names, if it names them.
fn scope_of(body: &str) -> Option<(RetailerId, StoreId)> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let retailer = value["retailer_id"].as_u64().and_then(|id| RetailerId::new(id).ok())?;
    let store = value["store_id"].as_u64().and_then(|id| StoreId::new(id).ok())?;
    Some((retailer, store))
}
