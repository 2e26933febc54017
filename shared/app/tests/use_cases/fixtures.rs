//! A retailer with a Shopify store, two vendors and their products, in memory, on a clock the
//! test moves.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use shipsync_app::intake::{OrderIntake, QueuedDelivery};
use shipsync_app::memory::{MemoryPlanner, MemoryTable};
use shipsync_domain::carrier::Carrier;
use shipsync_domain::ids::{CarrierId, RetailerId, StoreId, VendorId};
use shipsync_domain::orders::{ChannelEvent, ChannelEventMessage, IncomingLine, IncomingOrder, Product};
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, ChannelStore, FeeSettings, Retailer, Vendor};
use shipsync_domain::time::Clock;

pub struct World {
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
            };
            records.channel_stores.insert((retailer, store), shop);
            for (vendor, name, sku) in [(vendor, "Acme", "TENT"), (other_vendor, "Globex", "STOVE")] {
                let record = Vendor { id: vendor, retailer_id: retailer, name: name.into(), notify_customer: None };
                records.vendors.insert((retailer, vendor), record);
                let product = Product { sku: sku.into(), vendor_id: vendor, name: name.into(), cost: None };
                records.products.insert((retailer, sku.into()), product);
            }
        }
        let intake = OrderIntake::new(table.clone(), planner.clone(), clock);
        Self { table, planner, intake, now, retailer, store, vendor, other_vendor }
    }

    pub fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("clock")
    }

    /// An order of one tent and two stoves (and a line no product claims, if `unknown`).
    pub fn order(&self, unknown: bool) -> IncomingOrder {
        let line = |id: &str, sku: &str, quantity| IncomingLine {
            channel_line_item_id: id.into(),
            sku: Some(sku.into()),
            name: sku.into(),
            quantity,
            unit_price: None,
        };
        let mut lines = vec![line("L1", "TENT", 1), line("L2", "STOVE", 2)];
        if unknown {
            lines.push(line("L3", "MYSTERY", 1));
        }
        IncomingOrder {
            channel_order_id: "9001".into(),
            number: "1001".into(),
            customer_name: "Ada".into(),
            updated_at: self.now(),
            cancelled: false,
            lines,
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
}
