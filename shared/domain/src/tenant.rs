//! Retailers (the tenants), their vendors and their stores (sales channels).

use crate::ids::{RetailerId, StoreId, VendorId};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retailer {
    pub id: RetailerId,
    pub name: String,
    pub fees: FeeSettings,
}

/// Which vendor fee types a retailer uses. A fee type that is off is left out of responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSettings {
    pub shipping: bool,
    pub handling: bool,
    pub tax: bool,
}

impl Default for FeeSettings {
    fn default() -> Self {
        Self { shipping: true, handling: true, tax: true }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vendor {
    pub id: VendorId,
    pub retailer_id: RetailerId,
    pub name: String,
    /// Overrides the store's `send_tracking` for this vendor's shipments (Duoplane: "deactivate
    /// notifications for a specific vendor"); `None` follows the store.
    #[serde(default)]
    pub notify_customer: Option<bool>,
}

/// The kind of sales channel a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Shopify,
    Amazon,
    Ebay,
    BackMarket,
    /// Records exports in shipsync's own table: for the local stack, which has no internet.
    Local,
}

impl ChannelKind {
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Shopify => "shopify",
            ChannelKind::Amazon => "amazon",
            ChannelKind::Ebay => "ebay",
            ChannelKind::BackMarket => "back_market",
            ChannelKind::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: StoreId,
    pub retailer_id: RetailerId,
    pub name: String,
    pub channel: ChannelKind,
    #[serde(default)]
    pub export: crate::export::ExportSettings,
    #[serde(default)]
    pub connection: ChannelConnection,
    #[serde(default)]
    pub ingestion: IngestionSettings,
}

/// How a store's orders come in besides webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionSettings {
    /// How often to fetch orders changed since the last fetch; 0 turns polling off. For channels
    /// with webhooks it is the safety net for a lost one.
    pub poll_orders_every_minutes: u32,
}

impl Default for IngestionSettings {
    fn default() -> Self {
        Self { poll_orders_every_minutes: 10 }
    }
}

/// The longest polling interval a store may set: a day.
pub const MAX_POLL_MINUTES: u32 = 1440;

/// Where a store's channel is. Its credentials are kept apart and never shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConnection {
    /// Shopify: `my-shop.myshopify.com`.
    pub shop_domain: Option<String>,
    /// Replaces the channel's real address (a local fake in tests).
    pub base_url: Option<String>,
    /// Amazon: the marketplace the orders are in (e.g. `ATVPDKIKX0DER`).
    #[serde(default)]
    pub marketplace_id: Option<String>,
    /// Replaces the channel's token endpoint (Login with Amazon) in tests.
    #[serde(default)]
    pub auth_url: Option<String>,
}
