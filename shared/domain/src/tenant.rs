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
    /// Where the vendor's purchase orders are emailed, with their labels (`email_purchase_orders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The retailer sends this vendor its purchase orders by email.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub email_purchase_orders: bool,
}

/// An email address as a person gives it: trimmed, at most 254 characters, one `@` between a
/// local part and a domain with a dot, no spaces or control characters (no header can be made of it).
pub fn parse_email(input: &str) -> Result<String, String> {
    let address = input.trim();
    let well_formed = address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'))
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if well_formed { Ok(address.to_owned()) } else { Err("must be an email address (name@example.com)".into()) }
}

/// The kind of sales channel a store is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    Shopify,
    Amazon,
    Ebay,
    BackMarket,
    Walmart,
    /// Any other marketplace (UntilGone, a seller's own): orders come in by a signed webhook in
    /// shipsync's documented format, shipments go out as a signed POST to the store's URL.
    Custom,
    /// A WooCommerce shop on the seller's own site (`site_url`).
    #[serde(rename = "woocommerce")]
    WooCommerce,
    /// Groupon Goods, through its supplier API.
    Groupon,
    /// Wish, through its Merchant API v3 (OAuth; the token renewed by shipsync).
    Wish,
}

impl ChannelKind {
    /// Every channel shipsync offers, in the order messages list them.
    pub const ALL: [ChannelKind; 9] = [
        ChannelKind::Shopify,
        ChannelKind::Amazon,
        ChannelKind::Ebay,
        ChannelKind::BackMarket,
        ChannelKind::Walmart,
        ChannelKind::WooCommerce,
        ChannelKind::Groupon,
        ChannelKind::Wish,
        ChannelKind::Custom,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ChannelKind::Shopify => "shopify",
            ChannelKind::Amazon => "amazon",
            ChannelKind::Ebay => "ebay",
            ChannelKind::BackMarket => "back_market",
            ChannelKind::Walmart => "walmart",
            ChannelKind::Custom => "custom",
            ChannelKind::WooCommerce => "woocommerce",
            ChannelKind::Groupon => "groupon",
            ChannelKind::Wish => "wish",
        }
    }

    /// How long after a shipment's export the channel takes a correction of its tracking numbers
    /// (Walmart: 4 hours after the line is marked shipped); `None`: tracking is readonly once
    /// exported.
    pub fn tracking_correction_window(self) -> Option<chrono::Duration> {
        (self == ChannelKind::Walmart).then(|| chrono::Duration::hours(4))
    }

    /// Whether the store's API token is one shipsync renews and every container shares (Wish
    /// revokes the older tokens at each renewal): the order poller renews it, polling or not.
    pub fn shares_renewed_token(self) -> bool {
        self == ChannelKind::Wish
    }

    /// Whether the channel lists its orders for the poller (a custom channel posts them instead).
    pub fn lists_orders(self) -> bool {
        self != ChannelKind::Custom
    }

    /// The channels' names as a message lists them: `shopify, amazon, … or walmart`.
    pub fn offered() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|kind| kind.name()).collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
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
    #[serde(default)]
    pub tracking: TrackingSettings,
}

/// How a store hears that its parcels move, for the stores that confirm on movement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingSettings {
    /// The service every tracking number is registered with (its API key is kept with the
    /// store's credentials as `tracking_api_key`); `None`: numbers are registered elsewhere.
    #[serde(default)]
    pub provider: Option<crate::tracking::TrackingProvider>,
    /// A shipment that waited this long for its first scan is listed in order health.
    #[serde(default = "default_movement_timeout_hours")]
    pub movement_timeout_hours: u32,
    /// Whether such a shipment is then confirmed anyway (else it waits for a person).
    #[serde(default)]
    pub export_after_movement_timeout: bool,
}

fn default_movement_timeout_hours() -> u32 {
    DEFAULT_MOVEMENT_TIMEOUT_HOURS
}

/// How long a shipment waits for its first scan before order health lists it: 3 days.
pub const DEFAULT_MOVEMENT_TIMEOUT_HOURS: u32 = 72;

/// The longest wait for a first scan a store may set: 30 days.
pub const MAX_MOVEMENT_TIMEOUT_HOURS: u32 = 720;

impl Default for TrackingSettings {
    fn default() -> Self {
        Self {
            provider: None,
            movement_timeout_hours: DEFAULT_MOVEMENT_TIMEOUT_HOURS,
            export_after_movement_timeout: false,
        }
    }
}

/// How a store's orders come in besides webhooks, and how changes to them are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestionSettings {
    /// How often to fetch orders changed since the last fetch; 0 turns polling off. For channels
    /// with webhooks it is the safety net for a lost one.
    pub poll_orders_every_minutes: u32,
    /// A vendor's cancellation waits for the retailer's approval (else it goes to the channel at once).
    #[serde(default = "approve_by_default")]
    pub approve_vendor_cancellations: bool,
}

fn approve_by_default() -> bool {
    true
}

impl Default for IngestionSettings {
    fn default() -> Self {
        Self { poll_orders_every_minutes: 10, approve_vendor_cancellations: true }
    }
}

/// The longest Amazon marketplace or seller id accepted (they are about 14 characters).
pub const MAX_AMAZON_ID_CHARS: usize = 32;

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
    /// Amazon: the seller's id (`SellerId` in its notifications), which routes an `ORDER_CHANGE`
    /// notification to the store.
    #[serde(default)]
    pub seller_id: Option<String>,
    /// Replaces the tracking provider's address (a local fake): honoured like `base_url`.
    #[serde(default)]
    pub tracking_base_url: Option<String>,
    /// Custom channels: where shipments are posted (the seller's own receiver, https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_url: Option<String>,
    /// WooCommerce: the shop's site (`https://shop.example.com`), where its REST API is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_url: Option<String>,
    /// Wish: the country parcels ship from (ISO 3166 alpha-2), which Wish requires with tracking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_country: Option<String>,
    /// WooCommerce: move an order to `completed` once every unit has shipped (WooCommerce then
    /// emails the buyer that the order is complete).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub complete_order_when_shipped: bool,
}

/// A custom channel's receiver URL, as a store saves it: `https://` and a public host name
/// (no address, no `localhost`, no `.internal` or `.local` name, no user or fragment), at most
/// [`MAX_URL_CHARS`](crate::limits::MAX_URL_CHARS). Shipments and their signature go there, so
/// nothing that could reach the deployment's own network is taken (the exporter also refuses
/// to connect to a private address a public name resolves to). `allow_local`: plain http and
/// loopback too, for the local stack and the tests.
pub fn parse_receiver_url(input: &str, allow_local: bool) -> Result<String, String> {
    let url = input.trim();
    if url.len() > crate::limits::MAX_URL_CHARS {
        return Err(format!("must be at most {} characters", crate::limits::MAX_URL_CHARS));
    }
    let rest = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => rest,
        (None, Some(rest)) if allow_local => rest,
        _ => return Err("must be an https:// URL".into()),
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains('#') {
        return Err("must be a URL without spaces or a #fragment".into());
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("must not carry a user or password".into());
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => {
            if port.parse::<u16>().is_err() {
                return Err("has a port that is not a number".into());
            }
            host
        }
        _ => authority,
    }
    .to_ascii_lowercase();
    if host.is_empty() {
        return Err("must name a host".into());
    }
    if allow_local {
        return Ok(url.to_owned());
    }
    let address = host.starts_with('[') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let private_name = host == "localhost"
        || [".localhost", ".local", ".internal", ".localdomain"].iter().any(|suffix| host.ends_with(suffix))
        || !host.contains('.');
    if address || private_name {
        return Err("must name a public host (not an address, localhost or an internal name)".into());
    }
    let valid = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
    });
    if !valid {
        return Err("must name a valid host".into());
    }
    Ok(url.to_owned())
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

    #[test]
    fn a_receiver_url_is_https_to_a_public_host() {
        for good in ["https://orders.untilgone.example/shipsync", "https://hooks.example.com:8443/a?b=c"] {
            assert_eq!(parse_receiver_url(good, false).as_deref(), Ok(good));
        }
        for bad in [
            "http://orders.example.com/",
            "https://127.0.0.1/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]:9001/",
            "https://localhost:9001/",
            "https://runtime.localhost/",
            "https://metadata.google.internal/",
            "https://printer.local/",
            "https://intranet/",
            "https://user:pw@example.com/",
            "https://example.com:99999/",
            "https://example.com/#x",
            "https://exa mple.com/",
            "https://-bad.example.com/",
            "ftp://example.com/",
            "",
        ] {
            assert!(parse_receiver_url(bad, false).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_receiver_url("http://127.0.0.1:4000/custom", true).is_ok());
        assert!(parse_receiver_url("ftp://127.0.0.1/", true).is_err());
    }
}

/// A change to a channel store's settings, as a request gives it: a field left out keeps its
/// value (on a new store, the default).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreChange {
    pub name: Option<String>,
    pub shop_domain: Option<String>,
    pub base_url: Option<String>,
    /// eBay only: use eBay's sandbox.
    pub sandbox: Option<bool>,
    pub export_shipments: Option<bool>,
    pub shipment_export_delay_minutes: Option<u32>,
    pub send_tracking: Option<bool>,
    pub export_when: Option<crate::export::ExportWhen>,
    pub carrier_mappings: Option<Vec<crate::export::CarrierMapping>>,
    pub poll_orders_every_minutes: Option<u32>,
    pub approve_vendor_cancellations: Option<bool>,
    pub ship_confirmation: Option<crate::export::ShipConfirmation>,
    /// Amazon only.
    pub marketplace_id: Option<String>,
    /// Amazon only: the seller's id, which routes its `ORDER_CHANGE` notifications.
    pub seller_id: Option<String>,
    /// `Some(None)` clears the provider.
    pub tracking_provider: Option<Option<crate::tracking::TrackingProvider>>,
    pub movement_timeout_hours: Option<u32>,
    pub export_after_movement_timeout: Option<bool>,
    pub tracking_base_url: Option<String>,
    /// Custom channels only: where shipments are posted.
    pub shipment_url: Option<String>,
    /// WooCommerce only: the shop's site.
    pub site_url: Option<String>,
    /// Wish only: the country parcels ship from.
    pub origin_country: Option<String>,
    /// WooCommerce only: complete orders once fully shipped.
    pub complete_order_when_shipped: Option<bool>,
}

/// A new store must be named.
pub fn check_store_name(name: Option<&str>, errors: &mut crate::ValidationErrors) {
    if name.is_none_or(|name| name.trim().is_empty()) {
        errors.push("name", "is required");
    }
}

impl ChannelStore {
    /// A retailer's new store on `channel`, with the default settings.
    pub fn new(id: StoreId, retailer_id: RetailerId, name: &str, channel: ChannelKind) -> Self {
        Self {
            id,
            retailer_id,
            name: name.trim().to_owned(),
            channel,
            export: crate::export::ExportSettings::default(),
            connection: ChannelConnection::default(),
            ingestion: IngestionSettings::default(),
            tracking: TrackingSettings::default(),
        }
    }

    /// The store with `change` applied, and every problem found, each naming its field: save it
    /// only when there is none (further checks, a channel's own, may add to them). `carriers` are
    /// the retailer's (a carrier mapping must name one); `base_url_allowed` only where channel
    /// calls may go to a store's own address (the local stack and tests).
    pub fn with_change(
        &self,
        change: StoreChange,
        carriers: &[crate::carrier::Carrier],
        base_url_allowed: bool,
    ) -> (ChannelStore, crate::ValidationErrors) {
        use crate::limits::{MAX_DOMAIN_CHARS, MAX_NAME_CHARS, MAX_URL_CHARS, check_length};
        let mut store = self.clone();
        let mut errors = crate::ValidationErrors::new();
        if let Some(name) = &change.name {
            check_length(&mut errors, "name", name.trim(), MAX_NAME_CHARS);
        }
        if let Some(domain) = &change.shop_domain {
            check_length(&mut errors, "shop_domain", domain.trim(), MAX_DOMAIN_CHARS);
        }
        if let Some(url) = &change.base_url {
            check_length(&mut errors, "base_url", url.trim(), MAX_URL_CHARS);
        }
        if let Some(name) = change.name.filter(|name| !name.trim().is_empty()) {
            store.name = name.trim().to_owned();
        }
        if let Some(domain) = change.shop_domain {
            // The host the shop's access token is sent to: a Shopify shop's, nothing else.
            store.connection.shop_domain = if domain.trim().is_empty() {
                None
            } else {
                parse_shop_domain(&domain).map_err(|message| errors.push("shop_domain", message)).ok()
            };
        }
        if let Some(url) = change.base_url {
            let url = url.trim().trim_end_matches('/').to_owned();
            if !url.is_empty() && !base_url_allowed {
                errors.push("base_url", "cannot be set: each channel's address is fixed");
            } else if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                errors.push("base_url", "must be an http(s) URL");
            }
            store.connection.base_url = Some(url).filter(|u| !u.is_empty());
        }
        if let Some(sandbox) = change.sandbox {
            if sandbox && store.channel != ChannelKind::Ebay {
                errors.push("sandbox", "only eBay stores have a sandbox");
            }
            store.connection.sandbox = sandbox;
        }
        for (field, given, slot) in [
            ("marketplace_id", change.marketplace_id, &mut store.connection.marketplace_id),
            ("seller_id", change.seller_id, &mut store.connection.seller_id),
        ] {
            let Some(given) = given else { continue };
            // Amazon's ids are capitals and digits: a notification's `SellerId` must find the store.
            let value = given.trim().to_ascii_uppercase();
            if store.channel != ChannelKind::Amazon && !value.is_empty() {
                errors.push(field, "is for Amazon stores only");
            } else if value.len() > MAX_AMAZON_ID_CHARS || !value.chars().all(|c| c.is_ascii_alphanumeric()) {
                errors.push(field, format!("must be at most {MAX_AMAZON_ID_CHARS} letters and digits"));
            }
            *slot = Some(value).filter(|v| !v.is_empty());
        }
        if let Some(url) = change.tracking_base_url {
            let url = url.trim().trim_end_matches('/').to_owned();
            check_length(&mut errors, "tracking_base_url", &url, MAX_URL_CHARS);
            if !url.is_empty() && !base_url_allowed {
                errors.push("tracking_base_url", "cannot be set: each tracking provider's address is fixed");
            } else if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                errors.push("tracking_base_url", "must be an http(s) URL");
            }
            store.connection.tracking_base_url = Some(url).filter(|u| !u.is_empty());
        }
        if let Some(url) = change.shipment_url {
            let url = url.trim().to_owned();
            if url.is_empty() {
                store.connection.shipment_url = None;
            } else if store.channel != ChannelKind::Custom {
                errors.push("shipment_url", "is for custom channels only");
            } else {
                match parse_receiver_url(&url, base_url_allowed) {
                    Ok(url) => store.connection.shipment_url = Some(url),
                    Err(message) => errors.push("shipment_url", message),
                }
            }
        }
        if let Some(url) = change.site_url {
            let url = url.trim().trim_end_matches('/').to_owned();
            if url.is_empty() {
                store.connection.site_url = None;
            } else if store.channel != ChannelKind::WooCommerce {
                errors.push("site_url", "is for WooCommerce stores only");
            } else {
                match parse_receiver_url(&url, base_url_allowed) {
                    Ok(url) => store.connection.site_url = Some(url),
                    Err(message) => errors.push("site_url", message),
                }
            }
        }
        if let Some(country) = change.origin_country {
            let country = country.trim().to_ascii_uppercase();
            if country.is_empty() {
                store.connection.origin_country = None;
            } else if store.channel != ChannelKind::Wish {
                errors.push("origin_country", "is for Wish stores only");
            } else if country.len() != 2 || !country.chars().all(|c| c.is_ascii_alphabetic()) {
                errors.push("origin_country", "must be a two-letter country code (ISO 3166), such as US or CN");
            } else {
                store.connection.origin_country = Some(country);
            }
        }
        if let Some(complete) = change.complete_order_when_shipped {
            if complete && store.channel != ChannelKind::WooCommerce {
                errors.push("complete_order_when_shipped", "is for WooCommerce stores only");
            } else {
                store.connection.complete_order_when_shipped = complete;
            }
        }
        if store.channel == ChannelKind::Wish
            && store.connection.origin_country.is_none()
            && !errors.mentions("origin_country")
        {
            errors.push("origin_country", "is required for a Wish store: the country parcels ship from, such as US");
        }
        if store.channel == ChannelKind::WooCommerce
            && store.connection.site_url.is_none()
            && !errors.mentions("site_url")
        {
            errors.push("site_url", "is required for a WooCommerce store: the shop's https address");
        }
        if store.channel == ChannelKind::Custom
            && store.connection.shipment_url.is_none()
            && !errors.mentions("shipment_url")
        {
            errors.push(
                "shipment_url",
                "is required for a custom channel: the https URL shipsync posts each shipment to",
            );
        }
        if let Some(provider) = change.tracking_provider {
            store.tracking.provider = provider;
        }
        if let Some(hours) = change.movement_timeout_hours {
            if !(1..=MAX_MOVEMENT_TIMEOUT_HOURS).contains(&hours) {
                errors.push(
                    "movement_timeout_hours",
                    format!("must be between 1 and {MAX_MOVEMENT_TIMEOUT_HOURS} (30 days)"),
                );
            }
            store.tracking.movement_timeout_hours = hours;
        }
        if let Some(anyway) = change.export_after_movement_timeout {
            store.tracking.export_after_movement_timeout = anyway;
        }
        if let Some(minutes) = change.poll_orders_every_minutes {
            if minutes > MAX_POLL_MINUTES {
                errors.push(
                    "poll_orders_every_minutes",
                    format!("must be at most {MAX_POLL_MINUTES} (a day); 0 turns polling off"),
                );
            }
            store.ingestion.poll_orders_every_minutes = minutes;
        }
        if let Some(approve) = change.approve_vendor_cancellations {
            store.ingestion.approve_vendor_cancellations = approve;
        }
        let settings = &mut store.export;
        settings.export_shipments = change.export_shipments.unwrap_or(settings.export_shipments);
        settings.shipment_export_delay_minutes =
            change.shipment_export_delay_minutes.unwrap_or(settings.shipment_export_delay_minutes);
        settings.send_tracking = change.send_tracking.unwrap_or(settings.send_tracking);
        settings.export_when = change.export_when.unwrap_or(settings.export_when);
        if change.ship_confirmation.is_some() {
            settings.ship_confirmation = change.ship_confirmation;
        }
        if let Some(mappings) = change.carrier_mappings {
            for (index, mapping) in mappings.iter().enumerate() {
                if !carriers.iter().any(|carrier| carrier.id == mapping.shipper_id) {
                    errors.push(
                        format!("carrier_mappings[{index}].shipper_id"),
                        format!("{} is not a carrier of this retailer", mapping.shipper_id),
                    );
                }
            }
            settings.carrier_mappings = mappings;
        }
        if let Err(problems) = settings.validate_for(store.channel) {
            for problem in problems.errors() {
                errors.push(problem.field.clone(), problem.message.clone());
            }
        }
        if store.channel == ChannelKind::Shopify
            && store.connection.shop_domain.is_none()
            && !errors.mentions("shop_domain")
        {
            errors.push("shop_domain", "is required for a Shopify store (my-shop.myshopify.com)");
        }
        (store, errors)
    }
}
