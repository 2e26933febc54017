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
}

impl ChannelKind {
    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Shopify => "shopify",
            ChannelKind::Amazon => "amazon",
            ChannelKind::Ebay => "ebay",
            ChannelKind::BackMarket => "back_market",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelStore {
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
    /// Replaces the channel's real address (a local fake): honoured only by a deployment that
    /// allows it (the local stack and the tests), ignored everywhere else.
    pub base_url: Option<String>,
    /// Amazon: the marketplace the orders are in (e.g. `ATVPDKIKX0DER`).
    #[serde(default)]
    pub marketplace_id: Option<String>,
    /// Replaces the channel's token endpoint (Login with Amazon) in tests; honoured like `base_url`.
    #[serde(default)]
    pub auth_url: Option<String>,
    /// eBay: use eBay's sandbox (`api.sandbox.ebay.com`) instead of production.
    #[serde(default)]
    pub sandbox: bool,
}

/// The domain every Shopify shop has.
pub const SHOPIFY_SHOP_SUFFIX: &str = ".myshopify.com";

/// A Shopify shop's host, `my-shop.myshopify.com`, checked strictly: one label of lowercase
/// letters, digits and hyphens (uppercase is folded) before `.myshopify.com`, nothing else: no
/// scheme, port, path, userinfo, trailing dot or further labels. The host is where the shop's
/// access token is sent, so anything else is refused rather than repaired.
pub fn parse_shop_domain(input: &str) -> Result<String, &'static str> {
    const MESSAGE: &str = "must be a Shopify shop's host such as my-shop.myshopify.com";
    let host = input.trim().to_ascii_lowercase();
    let shop = host.strip_suffix(SHOPIFY_SHOP_SUFFIX).ok_or(MESSAGE)?;
    let valid_label = (1..=63).contains(&shop.len())
        && shop.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !shop.starts_with('-')
        && !shop.ends_with('-');
    if valid_label { Ok(host) } else { Err(MESSAGE) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shop_domains_are_one_label_under_myshopify() {
        assert_eq!(parse_shop_domain("my-shop.myshopify.com"), Ok("my-shop.myshopify.com".to_owned()));
        assert_eq!(parse_shop_domain(" My-Shop2.MyShopify.com "), Ok("my-shop2.myshopify.com".to_owned()));
        for bad in [
            "",
            "myshopify.com",
            ".myshopify.com",
            "evil.example.com",
            "https://my-shop.myshopify.com",
            "my-shop.myshopify.com/admin",
            "my-shop.myshopify.com:8443",
            "my-shop.myshopify.com.",
            "my-shop.myshopify.com.evil.com",
            "evil.com#.myshopify.com",
            "evil.com/.myshopify.com",
            "evil.com?.myshopify.com",
            "user@my-shop.myshopify.com",
            "evil.com@my-shop.myshopify.com",
            "a.b.myshopify.com",
            "127.0.0.1:80\\.myshopify.com",
            "-shop.myshopify.com",
            "shop-.myshopify.com",
            "my shop.myshopify.com",
            "my_shop.myshopify.com",
            "mу-shop.myshopify.com",
            "my-shop.myshopify.com\0",
            "my-shop\n.myshopify.com",
        ] {
            assert!(parse_shop_domain(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_shop_domain(&format!("{}.myshopify.com", "a".repeat(64))).is_err());
    }
}
