//! A retailer with a Shopify store, two vendors and their products, in memory, on a clock the
//! test moves.

use shipsync_domain::vocabulary::Sku;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use shipsync_app::intake::{OrderIntake, QueuedDelivery};
use shipsync_app::memory::{MemoryPlanner, MemoryTable};
use shipsync_app::shipments::ShipmentDesk;
use shipsync_domain::access::{Principal, Role};
use shipsync_domain::carrier::Carrier;
use shipsync_domain::ids::{CarrierId, RetailerId, StoreId, VendorId};
use shipsync_domain::orders::{ChannelEvent, ChannelEventMessage, IncomingLine, IncomingOrder, Product};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::shipment::{ItemInput, ShipmentInput, TrackingInput};
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, ChannelStore, FeeSettings, Retailer, Vendor};
use shipsync_domain::time::Clock;

pub type Desk = ShipmentDesk<MemoryTable, MemoryPlanner>;

pub struct World {
    pub desk: Desk,
    pub table: MemoryTable,
    pub planner: MemoryPlanner,
    pub intake: OrderIntake<MemoryTable, MemoryPlanner>,
    pub now: Arc<Mutex<DateTime<Utc>>>,
    pub retailer: RetailerId,
    pub store: StoreId,
    pub vendor: VendorId,
    pub other_vendor: VendorId,
}

impl World {
    pub fn new() -> Self {
        let table = MemoryTable::new();
        let planner = MemoryPlanner::new();
        let now = Arc::new(Mutex::new("2026-03-02T12:00:00Z".parse::<DateTime<Utc>>().expect("time")));
        let reading = Arc::clone(&now);
        let clock: Clock = Arc::new(move || *reading.lock().expect("clock"));
        let retailer = RetailerId::new(1).expect("id");
        let store = StoreId::new(2).expect("id");
        let (vendor, other_vendor) = (VendorId::new(3).expect("id"), VendorId::new(4).expect("id"));
        {
            let mut records = table.records();
            let carrier =
                Carrier { id: CarrierId::new(5).expect("id"), name: "UPS".into(), scac_code: Some("UPSN".into()) };
            let profile = Retailer { id: retailer, name: "Retailer".into(), fees: FeeSettings::default() };
            records.retailers.insert(retailer, (profile, vec![carrier]));
            let shop = ChannelStore {
                id: store,
                retailer_id: retailer,
                name: "Shop".into(),
                channel: ChannelKind::Shopify,
                export: Default::default(),
                connection: ChannelConnection {
                    shop_domain: Some("test-shop.myshopify.com".into()),
                    ..ChannelConnection::default()
                },
                ingestion: Default::default(),
                tracking: Default::default(),
            };
            records.channel_stores.insert((retailer, store), shop);
            for (vendor, name, sku) in [(vendor, "Acme", "TENT"), (other_vendor, "Globex", "STOVE")] {
                let record = Vendor {
                    id: vendor,
                    retailer_id: retailer,
                    name: name.into(),
                    notify_customer: None,
                    email: None,
                    email_purchase_orders: false,
                };
                records.vendors.insert((retailer, vendor), record);
                let sku = Sku::parse(sku).expect("a SKU");
                records
                    .products
                    .insert((retailer, sku.clone()), Product { sku, vendor_id: vendor, name: name.into(), cost: None });
            }
        }
        let intake = OrderIntake::new(table.clone(), planner.clone(), Arc::clone(&clock));
        let desk = ShipmentDesk::new(table.clone(), planner.clone(), clock);
        Self { desk, table, planner, intake, now, retailer, store, vendor, other_vendor }
    }

    /// A clock reading the world's time.
    pub fn clock(&self) -> Clock {
        let reading = Arc::clone(&self.now);
        Arc::new(move || *reading.lock().expect("clock"))
    }

    pub fn advance(&self, by: chrono::Duration) {
        *self.now.lock().expect("clock") += by;
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock")
    }

    /// An order of one tent and two stoves (and a line no product claims, if `unknown`).
    pub fn order(&self, unknown: bool) -> IncomingOrder {
        let line = |id: &str, sku: &str, quantity| IncomingLine {
            channel_line_item_id: id.into(),
            sku: Some(Sku::parse(sku).expect("a SKU")),
            name: sku.into(),
            quantity,
            unit_price: None,
            awaiting_acceptance: false,
            needs_imei: false,
        };
        let mut lines = vec![line("L1", "TENT", 1), line("L2", "STOVE", 2)];
        if unknown {
            lines.push(line("L3", "MYSTERY", 1));
        }
        IncomingOrder {
            channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("9001").expect("an order id"),
            number: "1001".into(),
            customer_name: "Ada".into(),
            updated_at: self.now(),
            cancelled: false,
            lines,
            cancel_requested: None,
            fulfillments: Vec::new(),
        }
    }

    /// The order queue's message for an event about the store.
    pub fn message(&self, event: ChannelEvent) -> String {
        let message = ChannelEventMessage {
            retailer_id: Some(self.retailer),
            store_id: Some(self.store),
            source: "test".into(),
            event,
        };
        serde_json::to_string(&message).expect("json")
    }

    pub fn first_delivery() -> QueuedDelivery {
        QueuedDelivery { message_id: "m-1".into(), receives: 1 }
    }

    pub fn retailer_user(&self) -> Principal {
        Principal { retailer_id: self.retailer, role: Role::Retailer, time_zone: chrono_tz::UTC }
    }

    pub fn vendor_user(&self) -> Principal {
        Principal {
            retailer_id: self.retailer,
            role: Role::Vendor { vendor_id: self.vendor },
            time_zone: chrono_tz::UTC,
        }
    }

    /// Changes the store's export settings.
    pub fn store_settings(&self, change: impl FnOnce(&mut shipsync_domain::export::ExportSettings)) {
        let mut records = self.table.records();
        let store = records.channel_stores.get_mut(&(self.retailer, self.store)).expect("the store");
        change(&mut store.export);
    }

    /// The order applied: its purchase orders, the tent vendor's first.
    pub async fn purchase_orders(&self) -> Vec<PurchaseOrder> {
        let applied =
            self.intake.apply_order(self.retailer, self.store, &self.order(false), false).await.expect("order");
        let records = self.table.records();
        let mut orders: Vec<PurchaseOrder> =
            applied.purchase_orders.iter().map(|id| records.purchase_orders[id].clone()).collect();
        orders.sort_by_key(|po| po.vendor_id != self.vendor);
        orders
    }
}

/// A shipment of every unit of a purchase order, by UPS, with one tracking number.
pub fn ship_all(po: &PurchaseOrder, tracking: &str) -> ShipmentInput {
    ShipmentInput {
        shipper_id: Some(5),
        items: Some(
            po.items
                .iter()
                .map(|item| ItemInput {
                    order_item_id: Some(item.id.get()),
                    quantity: Some(i64::from(item.quantity)),
                    ..ItemInput::default()
                })
                .collect(),
        ),
        trackings: Some(vec![TrackingInput { tracking: Some(tracking.into()), ..TrackingInput::default() }]),
        ..ShipmentInput::default()
    }
}
