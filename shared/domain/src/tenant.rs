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
}

/// The kind of sales channel a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Shopify,
    Amazon,
    Ebay,
    BackMarket,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: StoreId,
    pub retailer_id: RetailerId,
    pub name: String,
    pub channel: ChannelKind,
}
