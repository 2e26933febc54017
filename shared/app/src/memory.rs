//! Every port in memory: the fast test tier for the use cases (no emulator, no network), with
//! the table's conditions (versions, uniqueness, tenancy) kept, so a use case that races or
//! retries behaves here as it does against DynamoDB.

use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use shipsync_domain::carrier::Carrier;
use shipsync_domain::export::{Delivery, ExportRequest};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, ShipmentId, StoreId, VendorId};
use shipsync_domain::orders::{KeptPayload, OrderProblem, OrderRecord, Product, sha256_hex};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::{ChannelStore, Retailer, Vendor};
use shipsync_domain::tracking::TrackingNumber;

// (The in-memory channel is at the end of this file.)

use crate::Failure;
use crate::ports::{ExportPlanner, Ids, Orders, PurchaseOrders, Settings, Shipments};

type OrderKey = (RetailerId, StoreId, ChannelOrderId);

/// What the table would hold.
#[derive(Debug, Default)]
pub struct Records {
    pub shipments: BTreeMap<ShipmentId, Shipment>,
    pub purchase_orders: BTreeMap<PurchaseOrderId, PurchaseOrder>,
    /// Purchase order numbers taken, per retailer.
    pub purchase_order_numbers: HashMap<(RetailerId, String), PurchaseOrderId>,
    /// Channel orders: the last version applied and the purchase orders they were split into.
    pub orders: HashMap<OrderKey, (Option<OrderRecord>, Vec<PurchaseOrderId>)>,
    pub products: HashMap<(RetailerId, Sku), Product>,
    pub problems: BTreeMap<(RetailerId, String), OrderProblem>,
    pub kept_payloads: HashMap<(RetailerId, String), Vec<u8>>,
    pub retailers: HashMap<RetailerId, (Retailer, Vec<Carrier>)>,
    pub channel_stores: HashMap<(RetailerId, StoreId), ChannelStore>,
    pub vendors: HashMap<(RetailerId, VendorId), Vendor>,
    pub credentials: HashMap<(RetailerId, StoreId), ChannelCredentials>,
    /// Credential renewals under way: until when each is leased.
    pub renewal_leases: HashMap<(RetailerId, StoreId), chrono::DateTime<chrono::Utc>>,
    pub applied_fulfillments: HashMap<(StoreId, String), ShipmentId>,
    pub next_id: u64,
    /// The poller's list and each store's cursor.
    pub polled_stores: Vec<shipsync_domain::orders::PolledStore>,
    pub poll_states: HashMap<StoreId, shipsync_domain::orders::PollState>,
    /// Writes that fail with a conflict before they are tried, to rehearse lost races.
    pub conflicts_to_inject: usize,
    /// Returns, and each purchase order's return counter.
    pub returns: BTreeMap<u64, shipsync_domain::returns::Return>,
    pub return_counters: HashMap<PurchaseOrderId, u64>,
}

/// The repositories, in memory. Clones share the records.
#[derive(Debug, Clone, Default)]
pub struct MemoryTable {
    records: Arc<Mutex<Records>>,
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// The records, to arrange a test or look at its outcome.
    pub fn records(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next `count` writes lose their race (as if another request wrote first).
    pub fn lose_next_writes(&self, count: usize) {
        self.records().conflicts_to_inject = count;
    }
}

impl Records {
    fn injected_conflict(&mut self, what: &str) -> Result<(), Failure> {
        if self.conflicts_to_inject > 0 {
            self.conflicts_to_inject -= 1;
            return Err(Failure::Conflict(what.to_owned()));
        }
        Ok(())
    }

    /// A purchase order may be written only over the version it was read at.
    fn check_purchase_order(&self, po: &PurchaseOrder) -> Result<(), Failure> {
        match self.purchase_orders.get(&po.id) {
            Some(stored) if stored.version + 1 == po.version => Ok(()),
            _ => Err(Failure::Conflict("purchase order".into())),
        }
    }

    fn check_new_shipment(&self, shipment: &Shipment) -> Result<(), Failure> {
        if self.shipments.contains_key(&shipment.id) {
            return Err(Failure::Conflict("shipment".into()));
        }
        Ok(())
    }
}

impl Shipments for MemoryTable {
    async fn shipment(&self, id: ShipmentId) -> Result<Option<Shipment>, Failure> {
        Ok(self.records().shipments.get(&id).cloned())
    }
    async fn retailer_shipment(&self, retailer: RetailerId, id: ShipmentId) -> Result<Option<Shipment>, Failure> {
        Ok(self.records().shipments.get(&id).filter(|s| s.retailer_id == retailer).cloned())
    }
    async fn create_shipment(&self, shipment: &Shipment, po: &PurchaseOrder) -> Result<(), Failure> {
        let mut records = self.records();
        records.injected_conflict("purchase order")?;
        records.check_new_shipment(shipment)?;
        records.check_purchase_order(po)?;
        records.purchase_orders.insert(po.id, po.clone());
        records.shipments.insert(shipment.id, shipment.clone());
        Ok(())
    }
    async fn create_shipment_from_channel(
        &self,
        shipment: &Shipment,
        po: &PurchaseOrder,
        store: StoreId,
        channel_fulfillment_id: &str,
    ) -> Result<(), Failure> {
        let mut records = self.records();
        records.injected_conflict("purchase order")?;
        let applied = (store, channel_fulfillment_id.to_owned());
        if records.applied_fulfillments.contains_key(&applied) {
            return Err(Failure::Conflict("channel fulfillment".into()));
        }
        records.check_new_shipment(shipment)?;
        records.check_purchase_order(po)?;
        records.applied_fulfillments.insert(applied, shipment.id);
        records.purchase_orders.insert(po.id, po.clone());
        records.shipments.insert(shipment.id, shipment.clone());
        Ok(())
    }
    async fn update_shipment(&self, shipment: &Shipment, po: Option<&PurchaseOrder>) -> Result<(), Failure> {
        let mut records = self.records();
        records.injected_conflict("shipment")?;
        match records.shipments.get(&shipment.id) {
            Some(stored) if stored.version + 1 == shipment.version => {}
            _ => return Err(Failure::Conflict("shipment".into())),
        }
        if let Some(po) = po {
            records.check_purchase_order(po)?;
            records.purchase_orders.insert(po.id, po.clone());
        }
        records.shipments.insert(shipment.id, shipment.clone());
        Ok(())
    }
    async fn update_shipment_state(&self, shipment: &Shipment) -> Result<(), Failure> {
        self.update_shipment(shipment, None).await
    }
    async fn shipments_of_purchase_order(&self, po: PurchaseOrderId) -> Result<Vec<Shipment>, Failure> {
        Ok(self.records().shipments.values().filter(|s| s.purchase_order_id == po).cloned().collect())
    }
    async fn shipments_by_tracking(&self, store: StoreId, number: &TrackingNumber) -> Result<Vec<Shipment>, Failure> {
        Ok(self
            .records()
            .shipments
            .values()
            .filter(|s| {
                s.store_id == store
                    && s.tracked_by_provider
                    && s.trackings.iter().any(|t| t.tracking.same_parcel(number))
            })
            .cloned()
            .collect())
    }
    async fn channel_fulfillment_applied(
        &self,
        store: StoreId,
        channel_id: &str,
    ) -> Result<Option<ShipmentId>, Failure> {
        Ok(self.records().applied_fulfillments.get(&(store, channel_id.to_owned())).copied())
    }
}

impl crate::ports::Returns for MemoryTable {
    async fn purchase_order_returns(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> Result<(Vec<shipsync_domain::returns::Return>, u64), Failure> {
        let records = self.records();
        let found = records
            .returns
            .values()
            .filter(|ret| ret.retailer_id == retailer && ret.purchase_order_id == po)
            .cloned()
            .collect();
        Ok((found, records.return_counters.get(&po).copied().unwrap_or(0)))
    }
    async fn create_return(&self, ret: &shipsync_domain::returns::Return, read_version: u64) -> Result<(), Failure> {
        let mut records = self.records();
        if records.return_counters.get(&ret.purchase_order_id).copied().unwrap_or(0) != read_version {
            return Err(Failure::Conflict("the purchase order's returns".into()));
        }
        if let Some(channel_id) = ret.channel.channel_return_id()
            && records.returns.values().any(|other| {
                other.purchase_order_id == ret.purchase_order_id
                    && other.channel.channel_return_id() == Some(channel_id)
            })
        {
            return Err(Failure::Exists("the channel's return".into()));
        }
        records.return_counters.insert(ret.purchase_order_id, read_version + 1);
        records.returns.insert(ret.id, ret.clone());
        Ok(())
    }
    async fn update_return(&self, ret: &shipsync_domain::returns::Return) -> Result<(), Failure> {
        let mut records = self.records();
        match records.returns.get(&ret.id) {
            Some(stored) if stored.version + 1 == ret.version => {
                records.returns.insert(ret.id, ret.clone());
                Ok(())
            }
            _ => Err(Failure::Conflict("the return".into())),
        }
    }
    async fn channel_returns(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_return_id: &str,
    ) -> Result<Vec<shipsync_domain::returns::Return>, Failure> {
        Ok(self
            .records()
            .returns
            .values()
            .filter(|ret| {
                ret.retailer_id == retailer
                    && ret.store_id == store
                    && matches!(&ret.channel, shipsync_domain::returns::ReturnSync::FromChannel { channel_return_id: id } if id == channel_return_id)
            })
            .cloned()
            .collect())
    }
    async fn retailer_return(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> Result<Option<shipsync_domain::returns::Return>, Failure> {
        Ok(self.records().returns.get(&id).filter(|ret| ret.retailer_id == retailer).cloned())
    }
}

impl PurchaseOrders for MemoryTable {
    async fn purchase_order(&self, id: PurchaseOrderId) -> Result<Option<PurchaseOrder>, Failure> {
        Ok(self.records().purchase_orders.get(&id).cloned())
    }
    async fn purchase_order_now(&self, id: PurchaseOrderId) -> Result<Option<PurchaseOrder>, Failure> {
        Ok(self.records().purchase_orders.get(&id).cloned())
    }
    async fn retailer_purchase_order(
        &self,
        retailer: RetailerId,
        id: PurchaseOrderId,
    ) -> Result<Option<PurchaseOrder>, Failure> {
        Ok(self.records().purchase_orders.get(&id).filter(|po| po.retailer_id == retailer).cloned())
    }
    async fn purchase_orders(&self, ids: &[PurchaseOrderId]) -> Result<Vec<PurchaseOrder>, Failure> {
        let records = self.records();
        Ok(ids.iter().filter_map(|id| records.purchase_orders.get(id).cloned()).collect())
    }
    async fn create_purchase_order(&self, po: &PurchaseOrder) -> Result<(), Failure> {
        let mut records = self.records();
        let number = (po.retailer_id, po.public_reference.clone());
        if records.purchase_order_numbers.contains_key(&number) || records.purchase_orders.contains_key(&po.id) {
            return Err(Failure::Exists(format!("purchase order number {:?}", po.public_reference)));
        }
        records.purchase_order_numbers.insert(number, po.id);
        records.purchase_orders.insert(po.id, po.clone());
        if let Some(channel_order_id) = &po.channel_order_id {
            let key = (po.retailer_id, po.store_id, channel_order_id.clone());
            records.orders.entry(key).or_default().1.push(po.id);
        }
        Ok(())
    }
    async fn update_purchase_order(&self, po: &PurchaseOrder) -> Result<(), Failure> {
        let mut records = self.records();
        records.injected_conflict("purchase order")?;
        records.check_purchase_order(po)?;
        records.purchase_orders.insert(po.id, po.clone());
        Ok(())
    }
    async fn channel_order_purchase_orders(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> Result<Vec<PurchaseOrderId>, Failure> {
        let key = (retailer, store, channel_order_id.to_owned());
        Ok(self.records().orders.get(&key).map(|(_, ids)| ids.clone()).unwrap_or_default())
    }
}

impl Orders for MemoryTable {
    async fn order_record(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> Result<(Option<OrderRecord>, Vec<PurchaseOrderId>), Failure> {
        let key = (retailer, store, channel_order_id.to_owned());
        Ok(self.records().orders.get(&key).cloned().unwrap_or_default())
    }
    async fn retailer_order_record(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> Result<Option<(OrderRecord, Vec<PurchaseOrderId>)>, Failure> {
        Ok(self.records().orders.values().find_map(|(record, ids)| {
            record.as_ref().filter(|r| r.id == id && r.retailer_id == retailer).map(|r| (r.clone(), ids.clone()))
        }))
    }
    async fn save_order_record(&self, record: &OrderRecord) -> Result<(), Failure> {
        let mut records = self.records();
        records.injected_conflict("order")?;
        let key = (record.retailer_id, record.store_id, record.channel_order_id.clone());
        let entry = records.orders.entry(key).or_default();
        let read = entry.0.as_ref().map_or(0, |stored| stored.version);
        if read + 1 != record.version {
            return Err(Failure::Conflict("order".into()));
        }
        entry.0 = Some(record.clone());
        Ok(())
    }
    async fn products_by_sku(&self, retailer: RetailerId, skus: &[Sku]) -> Result<HashMap<Sku, Product>, Failure> {
        let records = self.records();
        Ok(skus
            .iter()
            .filter_map(|sku| records.products.get(&(retailer, sku.clone())).map(|p| (sku.clone(), p.clone())))
            .collect())
    }
    async fn put_problem(&self, retailer: RetailerId, problem: &OrderProblem) -> Result<(), Failure> {
        self.records().problems.insert((retailer, problem.key.clone()), problem.clone());
        Ok(())
    }
    async fn problems_with_prefix(&self, retailer: RetailerId, key_prefix: &str) -> Result<Vec<OrderProblem>, Failure> {
        Ok(self
            .records()
            .problems
            .iter()
            .filter(|((owner, key), _)| *owner == retailer && key.starts_with(key_prefix))
            .map(|(_, problem)| problem.clone())
            .collect())
    }
    async fn delete_problem(&self, retailer: RetailerId, key: &str) -> Result<(), Failure> {
        self.records().problems.remove(&(retailer, key.to_owned()));
        Ok(())
    }
    async fn keep_payload(
        &self,
        retailer: RetailerId,
        problem_key: &str,
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<KeptPayload, Failure> {
        self.records().kept_payloads.insert((retailer, problem_key.to_owned()), body.to_vec());
        Ok(KeptPayload {
            problem_key: problem_key.to_owned(),
            received_at,
            size: body.len(),
            sha256: sha256_hex(body),
            truncated: false,
        })
    }
}

impl Settings for MemoryTable {
    /// Nothing is remembered apart from the records themselves.
    fn forget_settings(&self, _retailer: RetailerId) {}
    async fn retailer_with_carriers(&self, retailer: RetailerId) -> Result<Option<(Retailer, Vec<Carrier>)>, Failure> {
        Ok(self.records().retailers.get(&retailer).cloned())
    }
    async fn channel_store(&self, retailer: RetailerId, store: StoreId) -> Result<Option<ChannelStore>, Failure> {
        Ok(self.records().channel_stores.get(&(retailer, store)).cloned())
    }
    async fn vendor(&self, retailer: RetailerId, vendor: VendorId) -> Result<Option<Vendor>, Failure> {
        Ok(self.records().vendors.get(&(retailer, vendor)).cloned())
    }
    async fn put_carrier(&self, retailer: RetailerId, carrier: &Carrier) -> Result<(), Failure> {
        let mut records = self.records();
        let Some((_, carriers)) = records.retailers.get_mut(&retailer) else {
            return Err(Failure::NotFound(format!("retailer {retailer}")));
        };
        if carriers.iter().any(|c| c.id == carrier.id) {
            return Err(Failure::Exists(format!("carrier {}", carrier.id)));
        }
        carriers.push(carrier.clone());
        Ok(())
    }
    async fn save_channel_store(&self, store: &ChannelStore) -> Result<(), Failure> {
        self.records().channel_stores.insert((store.retailer_id, store.id), store.clone());
        Ok(())
    }
    async fn save_credentials(
        &self,
        retailer: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
    ) -> Result<(), Failure> {
        self.records().credentials.insert((retailer, store), credentials.clone());
        Ok(())
    }
    async fn lease_credential_renewal(
        &self,
        retailer: RetailerId,
        store: StoreId,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, Failure> {
        let mut records = self.records();
        if !records.credentials.contains_key(&(retailer, store)) {
            return Ok(false);
        }
        let held = records.renewal_leases.get(&(retailer, store)).is_some_and(|lease| *lease >= now);
        if !held {
            records.renewal_leases.insert((retailer, store), until);
        }
        Ok(!held)
    }
    async fn release_credential_renewal(
        &self,
        retailer: RetailerId,
        store: StoreId,
        lease: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        let mut records = self.records();
        if records.renewal_leases.get(&(retailer, store)) == Some(&lease) {
            records.renewal_leases.remove(&(retailer, store));
        }
        Ok(())
    }
    async fn save_renewed_credentials(
        &self,
        retailer: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
        lease: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, Failure> {
        let mut records = self.records();
        if records.renewal_leases.get(&(retailer, store)) != Some(&lease) {
            return Ok(false);
        }
        records.renewal_leases.remove(&(retailer, store));
        records.credentials.insert((retailer, store), credentials.clone());
        Ok(true)
    }
    async fn credentials_set(&self, retailer: RetailerId, store: StoreId) -> Result<bool, Failure> {
        Ok(self.records().credentials.get(&(retailer, store)).is_some_and(|c| !c.0.is_empty()))
    }
    async fn credential_names(&self, retailer: RetailerId, store: StoreId) -> Result<Vec<String>, Failure> {
        Ok(self
            .records()
            .credentials
            .get(&(retailer, store))
            .map(|c| c.0.keys().cloned().collect())
            .unwrap_or_default())
    }
    async fn credentials(&self, retailer: RetailerId, store: StoreId) -> Result<ChannelCredentials, Failure> {
        Ok(self.records().credentials.get(&(retailer, store)).cloned().unwrap_or_default())
    }
}

impl crate::ports::PollStates for MemoryTable {
    async fn polled_stores(&self) -> Result<Vec<shipsync_domain::orders::PolledStore>, Failure> {
        Ok(self.records().polled_stores.clone())
    }
    async fn poll_state(&self, store: StoreId) -> Result<shipsync_domain::orders::PollState, Failure> {
        Ok(self.records().poll_states.get(&store).cloned().unwrap_or_default())
    }
    async fn save_poll_state(&self, store: StoreId, state: &shipsync_domain::orders::PollState) -> Result<(), Failure> {
        self.records().poll_states.insert(store, state.clone());
        Ok(())
    }
    async fn amazon_store(
        &self,
        seller_id: &str,
        marketplace_id: &str,
    ) -> Result<Option<shipsync_domain::orders::PolledStore>, Failure> {
        let records = self.records();
        Ok(records
            .channel_stores
            .values()
            .find(|store| {
                store.channel == shipsync_domain::tenant::ChannelKind::Amazon
                    && store.connection.seller_id.as_deref() == Some(seller_id)
                    && store.connection.marketplace_id.as_deref() == Some(marketplace_id)
            })
            .map(|store| shipsync_domain::orders::PolledStore { retailer_id: store.retailer_id, store_id: store.id }))
    }
}

/// The order queue in memory: the events queued, in order.
#[derive(Debug, Clone, Default)]
pub struct MemoryEventQueue {
    queued: Arc<Mutex<Vec<String>>>,
}

impl MemoryEventQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// The events queued so far, as `ChannelEventMessage`s.
    pub fn events(&self) -> Vec<shipsync_domain::orders::ChannelEventMessage> {
        let queued = self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        queued.iter().filter_map(|body| serde_json::from_str(body).ok()).collect()
    }
}

impl crate::ports::EventQueue for MemoryEventQueue {
    async fn queue_event(&self, body: String) -> Result<(), Failure> {
        self.queued.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(body);
        Ok(())
    }
}

impl Ids for MemoryTable {
    async fn allocate_ids(&self, count: usize) -> Result<RangeInclusive<u64>, Failure> {
        let mut records = self.records();
        let first = records.next_id.max(1_000) + 1;
        let last = first + count.max(1) as u64 - 1;
        records.next_id = last;
        Ok(first..=last)
    }
}

/// The export planner in memory: what was planned and withdrawn, in order.
#[derive(Debug, Clone, Default)]
pub struct MemoryPlanner {
    log: Arc<Mutex<PlannerLog>>,
}

#[derive(Debug, Default)]
pub struct PlannerLog {
    pub delivered: Vec<(ExportRequest, Delivery)>,
    pub cancelled: Vec<(ExportRequest, Delivery)>,
    /// Channel updates queued (cancellations to push).
    pub updates: Vec<shipsync_domain::cancellations::ChannelUpdate>,
    /// Deliveries that fail before they are made (the queue or scheduler down).
    pub failures_to_inject: usize,
}

impl MemoryPlanner {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn log(&self) -> MutexGuard<'_, PlannerLog> {
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Plans still standing: delivered and not withdrawn.
    pub fn standing(&self) -> Vec<(ExportRequest, Delivery)> {
        let log = self.log();
        let mut standing = log.delivered.clone();
        for cancelled in &log.cancelled {
            if let Some(index) = standing.iter().position(|planned| planned == cancelled) {
                standing.remove(index);
            }
        }
        standing
    }
}

impl ExportPlanner for MemoryPlanner {
    async fn deliver(&self, request: ExportRequest, delivery: Delivery) -> Result<(), Failure> {
        let mut log = self.log();
        if log.failures_to_inject > 0 {
            log.failures_to_inject -= 1;
            return Err(Failure::retryable("the queue is unavailable"));
        }
        log.delivered.push((request, delivery));
        Ok(())
    }
    async fn cancel(&self, request: ExportRequest, delivery: Delivery) -> Result<(), Failure> {
        self.log().cancelled.push((request, delivery));
        Ok(())
    }
    async fn queue_update(&self, update: shipsync_domain::cancellations::ChannelUpdate) -> Result<(), Failure> {
        let mut log = self.log();
        if log.failures_to_inject > 0 {
            log.failures_to_inject -= 1;
            return Err(Failure::retryable("the queue is unavailable"));
        }
        log.updates.push(update);
        Ok(())
    }
}

/// A sales channel in memory, behind the channel port: it records what it is sent, adopts what
/// it already has when asked to check first, and fails as a test tells it to.
#[derive(Debug, Clone, Default)]
pub struct MemoryChannel {
    state: Arc<Mutex<ChannelState>>,
}

#[derive(Debug, Default)]
pub struct ChannelState {
    /// Every export it accepted, in order.
    pub received: Vec<shipsync_channels::ExportOrder>,
    /// Answers to give before accepting, first first (a retryable error, a refusal).
    pub failures: std::collections::VecDeque<shipsync_channels::ChannelError>,
    /// Calls made, accepted or not.
    pub calls: usize,
    /// The orders it lists as changed (one page), and the error it answers instead, if any.
    pub orders: Vec<shipsync_domain::orders::IncomingOrder>,
    pub orders_failure: Option<shipsync_channels::ChannelError>,
    /// Orders per page when set (the page cursor is the offset); one page of all otherwise.
    pub page_size: Option<usize>,
    /// Every listing call: the time asked from, and the page cursor given.
    pub listings: Vec<(DateTime<Utc>, Option<String>)>,
    /// Lines it was asked to accept: (order, line id).
    pub accepted: Vec<(String, String)>,
    /// Tracking numbers registered with its tracking provider, in order (twice if asked twice).
    pub trackers: Vec<String>,
    /// Answers its tracking provider gives before registering, first first.
    pub tracker_failures: std::collections::VecDeque<shipsync_channels::ChannelError>,
}

impl MemoryChannel {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn state(&self) -> MutexGuard<'_, ChannelState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The next calls fail with these, in order.
    pub fn fail_with(&self, failures: impl IntoIterator<Item = shipsync_channels::ChannelError>) {
        self.state().failures.extend(failures);
    }
}

impl shipsync_channels::Channel for MemoryChannel {
    fn export<'a>(
        &'a self,
        order: &'a shipsync_channels::ExportOrder,
        check_first: bool,
    ) -> shipsync_channels::ChannelFuture<'a, shipsync_channels::Fulfillment> {
        let mut state = self.state();
        state.calls += 1;
        let channel_id = format!("memory-{}", order.shipment_id);
        let answer = if check_first && state.received.iter().any(|sent| sent.shipment_id == order.shipment_id) {
            Ok(shipsync_channels::Fulfillment { channel_ids: vec![channel_id], adopted: true })
        } else if let Some(failure) = state.failures.pop_front() {
            Err(failure)
        } else {
            state.received.push(order.clone());
            Ok(shipsync_channels::Fulfillment { channel_ids: vec![channel_id], adopted: false })
        };
        Box::pin(std::future::ready(answer))
    }

    fn orders_since<'a>(
        &'a self,
        since: DateTime<Utc>,
        page: Option<&'a str>,
    ) -> shipsync_channels::ChannelFuture<'a, shipsync_channels::OrdersPage> {
        let mut state = self.state();
        state.listings.push((since, page.map(str::to_owned)));
        let offset = page.and_then(|page| page.parse::<usize>().ok()).unwrap_or(0);
        let size = state.page_size.unwrap_or(usize::MAX);
        let orders: Vec<_> = state.orders.iter().skip(offset).take(size).cloned().collect();
        let next = (offset.saturating_add(size) < state.orders.len()).then(|| (offset + size).to_string());
        let answer = match &state.orders_failure {
            Some(failure) => Err(failure.clone()),
            None => Ok(shipsync_channels::OrdersPage { orders, unreadable: Vec::new(), next }),
        };
        Box::pin(std::future::ready(answer))
    }

    fn fulfillments<'a>(
        &'a self,
        _channel_order_id: &'a shipsync_domain::vocabulary::ChannelOrderId,
    ) -> shipsync_channels::ChannelFuture<'a, Vec<shipsync_domain::orders::IncomingFulfillment>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }

    fn order<'a>(
        &'a self,
        channel_order_id: &'a shipsync_domain::vocabulary::ChannelOrderId,
    ) -> shipsync_channels::ChannelFuture<'a, Option<shipsync_domain::orders::IncomingOrder>> {
        let found = self.state().orders.iter().find(|order| order.channel_order_id == *channel_order_id).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn accept_lines<'a>(
        &'a self,
        channel_order_id: &'a shipsync_domain::vocabulary::ChannelOrderId,
        lines: &'a [shipsync_domain::orders::IncomingLine],
    ) -> shipsync_channels::ChannelFuture<'a, ()> {
        let mut state = self.state();
        for line in lines {
            let accepted = (channel_order_id.to_string(), line.channel_line_item_id.clone());
            if !state.accepted.contains(&accepted) {
                state.accepted.push(accepted);
            }
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Connects every store to the one [`MemoryChannel`], checking its settings as the real
/// gateway does.
impl crate::ports::ChannelGateway for MemoryChannel {
    fn connect(
        &self,
        store: &ChannelStore,
        credentials: &ChannelCredentials,
    ) -> Result<Box<dyn shipsync_channels::Channel>, shipsync_channels::SettingsError> {
        shipsync_channels::validate_settings(store.channel, &store.connection, credentials)?;
        Ok(Box::new(self.clone()))
    }

    fn register_tracker<'a>(
        &'a self,
        store: &'a ChannelStore,
        _credentials: &'a ChannelCredentials,
        number: &'a shipsync_domain::tracking::TrackingNumber,
        _carrier: Option<shipsync_domain::carrier::StandardCarrier>,
    ) -> impl crate::ports::Pending<bool> + 'a {
        let mut state = self.state();
        let answer = if store.tracking.provider.is_none() {
            Ok(false)
        } else if let Some(failure) = state.tracker_failures.pop_front() {
            Err(failure.into())
        } else {
            state.trackers.push(number.to_string());
            Ok(true)
        };
        std::future::ready(answer)
    }
}
