//! Demo data for the local stack: a retailer with two vendors, two Shopify stores served by the
//! local [`FakeShopify`], purchase orders on the shop's orders, an Amazon, an eBay, a Back
//! Market and a Walmart store served by the local [`FakeMarketplaces`] (each with an order waiting there for the
//! poller, and EasyPost, faked too, as its tracking provider), and an API user for the retailer
//! and for one vendor. Each store that hears of movement holds its own EasyPost webhook secret
//! (`tracking_webhook_secret`): the scans for its parcels are posted to its own URL.

use rust_decimal::Decimal;
use shipsync_domain::ValidationErrors;
use shipsync_domain::export::{CarrierMapping, ExportSettings, ShipConfirmation};
use shipsync_domain::ids::{CarrierId, VendorId};
use shipsync_domain::orders::{Product, purchase_order_number};
use shipsync_domain::purchase_order::{NewOrderItem, NewPurchaseOrder, PurchaseOrder};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{
    ChannelConnection, ChannelKind, ChannelStore, FeeSettings, Retailer, TrackingSettings, Vendor,
};
use shipsync_domain::tracking::TrackingProvider;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use shipsync_table::Table;
use std::collections::BTreeMap;

use crate::fake_marketplaces::{self as fake, FakeMarketplaces, MarketLine, MarketOrder, Marketplace};
use crate::fake_shopify::{FakeLine, FakeOrder, FakeShopify};
use crate::provision::{self, Credentials, ProvisionError};

pub struct Demo {
    pub retailer: Retailer,
    pub store: ChannelStore,
    /// What the demo store's Shopify webhooks are signed with.
    pub webhook_secret: String,
    /// A purchase order on the store that confirms on movement.
    pub marketplace_po: PurchaseOrder,
    /// What that store's EasyPost webhooks (to `/carrier_webhooks/easypost/<its id>`) are signed with.
    pub marketplace_tracking_secret: String,
    pub vendors: Vec<Vendor>,
    pub purchase_orders: Vec<PurchaseOrder>,
    pub retailer_user: Credentials,
    pub vendor_user: Credentials,
    /// The Amazon, eBay, Back Market and Walmart stores, each with its order waiting at the fake.
    pub marketplaces: Vec<MarketplaceDemo>,
    /// A custom channel's store: its orders are posted to shipsync, its shipments to the fake receiver.
    pub custom: CustomDemo,
}

/// The demo's custom channel (UntilGone): a store whose orders come by signed webhook and whose
/// shipments go to the fake receiver, once tracking is assigned.
#[derive(Debug, Clone)]
pub struct CustomDemo {
    pub store: ChannelStore,
    /// What its order webhooks (to `/webhooks/custom/<store id>`) are signed with.
    pub webhook_secret: String,
    /// The order `tools/demo/custom_order.json` posts, and the purchase order it becomes.
    pub order_id: &'static str,
    pub purchase_order_number: String,
}

/// The order in `tools/demo/custom_order.json`, of a demo SKU (`TENT-2P`, Acme's): its id, and
/// the number its purchase order is named by.
pub const CUSTOM_ORDER_ID: &str = "UG-7001";
pub const CUSTOM_ORDER_NUMBER: &str = "7001";

/// Creates the custom channel's store: shipments go to the fake receiver at once (no delay,
/// tracking assigned), signed with the secret the receiver checks.
async fn seed_custom(
    table: &Table,
    retailer: &Retailer,
    vendor: VendorId,
    marketplaces: &FakeMarketplaces,
) -> Result<CustomDemo, ProvisionError> {
    let (channel, name, credentials) = marketplace_store(Marketplace::Custom);
    let connection = ChannelConnection {
        shipment_url: Some(format!("{}/shipments", marketplaces.url(Marketplace::Custom))),
        ..ChannelConnection::default()
    };
    let store =
        provision::create_store(table, retailer.id, name, channel, ExportSettings::default(), connection).await?;
    let webhook_secret = provision::random_secret()?;
    let mut credentials: BTreeMap<String, String> =
        credentials.into_iter().map(|(name, value)| (name.to_owned(), value.to_owned())).collect();
    credentials.insert("webhook_secret".to_owned(), webhook_secret.clone());
    let credentials = ChannelCredentials(credentials);
    shipsync_channels::validate_store_settings(&store, &credentials)?;
    table.save_credentials(retailer.id, store.id, &credentials).await?;
    Ok(CustomDemo {
        purchase_order_number: purchase_order_number(store.id, CUSTOM_ORDER_NUMBER, vendor),
        store,
        webhook_secret,
        order_id: CUSTOM_ORDER_ID,
    })
}

/// A marketplace store of the demo, the order waiting for it at its fake channel, and the
/// shipment the README makes on that order's purchase order.
#[derive(Debug, Clone)]
pub struct MarketplaceDemo {
    pub marketplace: Marketplace,
    pub store: ChannelStore,
    pub order: MarketOrder,
    /// The purchase order the poller makes of the order (`S<store>-<order>-V<vendor>`).
    pub purchase_order_number: String,
    /// The shipment's carrier, tracking number, and serial codes (a phone's IMEI for Back Market).
    pub carrier: &'static str,
    pub tracking_number: &'static str,
    pub serial_codes: &'static [&'static str],
    /// What the store's EasyPost webhooks (to `/carrier_webhooks/easypost/<store id>`) are signed with.
    pub tracking_webhook_secret: String,
}

/// The id of the fake Shopify's order `number`.
fn shopify_order(number: &str) -> Result<ChannelOrderId, ProvisionError> {
    ChannelOrderId::parse(&format!("gid://shopify/Order/{number}"))
        .map_err(|problem| invalid("channel_order_id", problem))
}

fn invalid(field: &str, problem: String) -> ProvisionError {
    let mut errors = ValidationErrors::new();
    errors.push(field, problem);
    errors.into()
}

fn item(sku: &str, name: &str, quantity: u32, cents: i64, line: &str) -> NewOrderItem {
    NewOrderItem {
        sku: sku.into(),
        name: name.into(),
        quantity,
        cost: Some(Decimal::new(cents, 2)),
        channel_line_item_id: Some(line.into()),
        needs_imei: false,
    }
}

/// The shop the demo store's webhooks come from (`scripts/send-shopify-webhook` sends it).
pub const DEMO_SHOP_DOMAIN: &str = "demo-outfitters.myshopify.com";

/// The shop of the demo store that confirms on movement.
pub const DEMO_MARKETPLACE_SHOP_DOMAIN: &str = "demo-marketplace.myshopify.com";

/// The access token the demo stores call the fake Shopify with (a local fake's, no secret).
pub const DEMO_ACCESS_TOKEN: &str = "shpat_local_demo";

/// An order line as the fake Shopify holds it: line item id, SKU, quantity.
type ShopLine = (&'static str, &'static str, u32);

/// The orders the demo's purchase orders and webhook files are on, as the fake Shopify holds them.
const SHOP_ORDERS: [(&str, &[ShopLine]); 5] = [
    (
        "gid://shopify/Order/1001",
        &[("gid://shopify/LineItem/1001", "TENT-2P", 1), ("gid://shopify/LineItem/1002", "STAKE-10", 2)],
    ),
    ("gid://shopify/Order/1002", &[("gid://shopify/LineItem/1003", "LAMP-LED", 3)]),
    ("gid://shopify/Order/1003", &[("gid://shopify/LineItem/1004", "PHONE-X", 1)]),
    ("gid://shopify/Order/2001", &[("gid://shopify/LineItem/2001", "LAMP-LED", 1)]),
    // `tools/demo/orders_create.json`, the order the demo posts by webhook.
    (
        "gid://shopify/Order/5550001",
        &[("gid://shopify/LineItem/9100001", "TENT-2P", 1), ("gid://shopify/LineItem/9100002", "PHONE-X", 1)],
    ),
];

/// The demo purchase order whose Shopify order the fake shop does not hold: its export fails.
pub const BROKEN_ORDER: &str = "PO-1004";

/// Starts the fake Shopify the demo stores export to, holding the demo's orders.
pub fn fake_shopify(listener: tokio::net::TcpListener) -> std::io::Result<FakeShopify> {
    let shop = FakeShopify::start(listener, DEMO_ACCESS_TOKEN)?;
    for (id, lines) in SHOP_ORDERS {
        let lines = lines
            .iter()
            .map(|(id, sku, quantity)| FakeLine { id: (*id).to_owned(), sku: (*sku).to_owned(), quantity: *quantity })
            .collect();
        shop.add_order(FakeOrder { id: id.to_owned(), lines });
    }
    Ok(shop)
}

/// A marketplace order of the demo and the shipment the README makes on it.
struct MarketplaceOrder {
    marketplace: Marketplace,
    order: MarketOrder,
    carrier: &'static str,
    tracking_number: &'static str,
    serial_codes: &'static [&'static str],
}

fn market_line(id: &str, sku: &str, title: &str, quantity: u32, unit_price: &str) -> MarketLine {
    MarketLine {
        id: id.into(),
        sku: sku.into(),
        title: title.into(),
        quantity,
        unit_price: unit_price.into(),
        category: None,
    }
}

/// One order at each marketplace, each of SKUs one demo vendor sells.
fn marketplace_orders() -> [MarketplaceOrder; 7] {
    let phone = MarketLine {
        category: Some("Smartphones".into()),
        ..market_line("46000011", "PHONE-X", "Refurbished phone", 1, "210.00")
    };
    [
        MarketplaceOrder {
            marketplace: Marketplace::Amazon,
            order: MarketOrder {
                id: "111-4000001-0000001".into(),
                customer_name: "Ada Byron".into(),
                lines: vec![market_line("40000011111111", "LAMP-LED", "LED camp lamp", 2, "15.00")],
            },
            carrier: "UPS",
            tracking_number: "1Z999AA10000000001",
            serial_codes: &[],
        },
        MarketplaceOrder {
            marketplace: Marketplace::Ebay,
            order: MarketOrder {
                id: "12-04000-00001".into(),
                customer_name: "Jo Bloggs".into(),
                lines: vec![market_line("10004000001", "TENT-2P", "Two-person tent", 1, "89.00")],
            },
            carrier: "US Postal",
            tracking_number: "9400100000000000000001",
            serial_codes: &[],
        },
        MarketplaceOrder {
            marketplace: Marketplace::BackMarket,
            order: MarketOrder { id: "4600001".into(), customer_name: "Jeanne Dupont".into(), lines: vec![phone] },
            carrier: "DHL Express",
            tracking_number: "4600000001",
            serial_codes: &["356938035643809"],
        },
        MarketplaceOrder {
            marketplace: Marketplace::Walmart,
            order: MarketOrder {
                id: "1796277083022".into(),
                customer_name: "Kathryn Cole".into(),
                lines: vec![market_line("1", "LAMP-LED", "LED camp lamp", 1, "15.00")],
            },
            // shipsync's "US Postal" goes to Walmart as its "USPS", with no mapping needed.
            carrier: "US Postal",
            tracking_number: "9400100000000000000002",
            serial_codes: &[],
        },
        MarketplaceOrder {
            marketplace: Marketplace::WooCommerce,
            order: MarketOrder {
                id: "7301".into(),
                customer_name: "Mary Jackson".into(),
                lines: vec![market_line("31", "STAKE-10", "Tent stakes (10)", 2, "6.50")],
            },
            carrier: "UPS",
            tracking_number: "1Z999AA10000007301",
            serial_codes: &[],
        },
        MarketplaceOrder {
            marketplace: Marketplace::Groupon,
            order: MarketOrder {
                id: "FFB7A681BE".into(),
                customer_name: "Dorothy Vaughan".into(),
                lines: vec![market_line("54553920", "TENT-2P", "Two-person tent", 1, "79.00")],
            },
            // shipsync's "UPS" goes to Groupon as its code "ups", with no mapping needed.
            carrier: "UPS",
            tracking_number: "1Z999AA10000005455",
            serial_codes: &[],
        },
        MarketplaceOrder {
            marketplace: Marketplace::Wish,
            // A Wish order is one product variation: its line is the order itself.
            order: MarketOrder {
                id: WISH_ORDER_ID.into(),
                customer_name: "Annie Easley".into(),
                lines: vec![market_line(WISH_ORDER_ID, "STAKE-10", "Tent stakes (10)", 3, "5.00")],
            },
            carrier: "UPS",
            tracking_number: "1Z999AA10000005021",
            serial_codes: &[],
        },
    ]
}

/// The demo's Wish order (Wish's ids are 24 hexadecimal digits).
const WISH_ORDER_ID: &str = "5f1a0c2e9b1d4a0012ab34cd";

/// Starts the fake Amazon, eBay, Back Market and EasyPost, each marketplace holding the demo's
/// order for it, modified a few minutes ago (so the first poll, which reaches back a day, finds it).
pub fn fake_marketplaces(listener: tokio::net::TcpListener) -> std::io::Result<FakeMarketplaces> {
    let marketplaces = FakeMarketplaces::start(listener)?;
    let at = chrono::Utc::now() - chrono::Duration::minutes(10);
    for demo in marketplace_orders() {
        marketplaces.add_order(demo.marketplace, demo.order, at);
    }
    Ok(marketplaces)
}

/// The channel's own carrier codes for the demo's carriers (Amazon's and eBay's carrier lists);
/// Back Market takes the carrier's name.
fn carrier_mappings(marketplace: Marketplace) -> Vec<CarrierMapping> {
    let mapping = |shipper: u64, code: &str| CarrierMapping {
        shipper_id: CarrierId::new_unchecked(shipper),
        channel_carrier: code.to_owned(),
        tracking_url_template: None,
    };
    match marketplace {
        Marketplace::Amazon => vec![mapping(UPS, "UPS")],
        Marketplace::Ebay => vec![mapping(US_POSTAL, "USPS")],
        Marketplace::BackMarket
        | Marketplace::Walmart
        | Marketplace::WooCommerce
        | Marketplace::Groupon
        | Marketplace::Wish
        | Marketplace::Custom => Vec::new(),
    }
}

/// The ids of the default carriers `UPS` and `US Postal` (`shipsync_domain::carrier::default_carriers`).
const UPS: u64 = 1;
const US_POSTAL: u64 = 17;

/// What a store of the marketplace is, and the credentials the fake accepts from it.
fn marketplace_store(marketplace: Marketplace) -> (ChannelKind, &'static str, Vec<(&'static str, &'static str)>) {
    match marketplace {
        Marketplace::Amazon => (
            ChannelKind::Amazon,
            "Demo Outfitters on Amazon (fake)",
            vec![
                ("lwa_client_id", fake::AMAZON_CLIENT_ID),
                ("lwa_client_secret", fake::AMAZON_CLIENT_SECRET),
                ("refresh_token", fake::AMAZON_REFRESH_TOKEN),
            ],
        ),
        Marketplace::Ebay => (
            ChannelKind::Ebay,
            "Demo Outfitters on eBay (fake)",
            vec![
                ("ebay_client_id", fake::EBAY_CLIENT_ID),
                ("ebay_client_secret", fake::EBAY_CLIENT_SECRET),
                ("refresh_token", fake::EBAY_REFRESH_TOKEN),
            ],
        ),
        Marketplace::BackMarket => (
            ChannelKind::BackMarket,
            "Demo Outfitters on Back Market (fake)",
            vec![("api_token", fake::BACK_MARKET_TOKEN)],
        ),
        Marketplace::Walmart => (
            ChannelKind::Walmart,
            "Demo Outfitters on Walmart (fake)",
            vec![
                ("walmart_client_id", fake::WALMART_CLIENT_ID),
                ("walmart_client_secret", fake::WALMART_CLIENT_SECRET),
            ],
        ),
        Marketplace::WooCommerce => (
            ChannelKind::WooCommerce,
            "Demo Outfitters on WooCommerce (fake)",
            vec![
                ("consumer_key", fake::WOOCOMMERCE_CONSUMER_KEY),
                ("consumer_secret", fake::WOOCOMMERCE_CONSUMER_SECRET),
            ],
        ),
        Marketplace::Groupon => (
            ChannelKind::Groupon,
            "Demo Outfitters on Groupon (fake)",
            vec![("supplier_id", fake::GROUPON_SUPPLIER_ID), ("token", fake::GROUPON_TOKEN)],
        ),
        // No access token: the order poller obtains the first at once (and renews it before it expires).
        Marketplace::Wish => (
            ChannelKind::Wish,
            "Demo Outfitters on Wish (fake)",
            vec![
                ("wish_client_id", fake::WISH_CLIENT_ID),
                ("wish_client_secret", fake::WISH_CLIENT_SECRET),
                ("refresh_token", fake::WISH_REFRESH_TOKEN),
            ],
        ),
        Marketplace::Custom => (
            ChannelKind::Custom,
            "Demo Outfitters on UntilGone (custom channel)",
            vec![("signing_secret", fake::CUSTOM_SIGNING_SECRET)],
        ),
    }
}

/// A demo store's tracking credentials: the fake EasyPost's key, and the store's own secret for
/// the scans EasyPost posts to the store's URL.
fn easypost_credentials(webhook_secret: &str) -> [(String, String); 2] {
    [
        ("tracking_api_key".to_owned(), fake::EASYPOST_API_KEY.to_owned()),
        ("tracking_webhook_secret".to_owned(), webhook_secret.to_owned()),
    ]
}

/// Creates the marketplace stores: each polls its fake channel (every 10 minutes, the default;
/// the first poll comes at once), confirms on movement (the marketplaces' default), and registers
/// its tracking numbers with the fake EasyPost.
async fn seed_marketplaces(
    table: &Table,
    retailer: &Retailer,
    vendors_by_sku: &[(&str, VendorId)],
    marketplaces: &FakeMarketplaces,
) -> Result<Vec<MarketplaceDemo>, ProvisionError> {
    // Back Market's demo parcel goes by DHL Express, a carrier the retailer adds.
    provision::create_carrier(table, retailer.id, "DHL Express", Some("DHLC")).await?;
    let mut seeded = Vec::new();
    for demo in marketplace_orders() {
        let (channel, name, credentials) = marketplace_store(demo.marketplace);
        let connection = ChannelConnection {
            base_url: Some(marketplaces.url(demo.marketplace)),
            tracking_base_url: Some(marketplaces.easypost_url()),
            marketplace_id: (channel == ChannelKind::Amazon).then(|| fake::AMAZON_MARKETPLACE_ID.to_owned()),
            site_url: (channel == ChannelKind::WooCommerce).then(|| marketplaces.url(demo.marketplace)),
            origin_country: (channel == ChannelKind::Wish).then(|| "US".to_owned()),
            ..ChannelConnection::default()
        };
        let tracking = TrackingSettings { provider: Some(TrackingProvider::Easypost), ..TrackingSettings::default() };
        let tracking_webhook_secret = provision::random_secret()?;
        let mut credentials: BTreeMap<String, String> =
            credentials.into_iter().map(|(name, value)| (name.to_owned(), value.to_owned())).collect();
        credentials.extend(easypost_credentials(&tracking_webhook_secret));
        let credentials = ChannelCredentials(credentials);
        // Each confirms on movement (the marketplaces' default; WooCommerce's is on tracking, so
        // the demo asks for movement there too: one walk for all).
        let export = ExportSettings {
            carrier_mappings: carrier_mappings(demo.marketplace),
            ship_confirmation: Some(ShipConfirmation::TrackingMovement),
            ..ExportSettings::default()
        };
        let store =
            provision::create_store_tracked(table, retailer.id, name, channel, export, connection, tracking).await?;
        // The settings a person could save through the API, checked as the API checks them.
        shipsync_channels::validate_store_settings(&store, &credentials)?;
        table.save_credentials(retailer.id, store.id, &credentials).await?;
        let sku = demo.order.lines.first().map(|line| line.sku.clone()).unwrap_or_default();
        let vendor = vendors_by_sku
            .iter()
            .find(|(product, _)| *product == sku)
            .map(|(_, vendor)| *vendor)
            .ok_or_else(|| invalid("sku", format!("{sku} is no demo vendor's")))?;
        seeded.push(MarketplaceDemo {
            marketplace: demo.marketplace,
            purchase_order_number: purchase_order_number(store.id, &demo.order.id, vendor),
            store,
            order: demo.order,
            carrier: demo.carrier,
            tracking_number: demo.tracking_number,
            serial_codes: demo.serial_codes,
            tracking_webhook_secret,
        });
    }
    Ok(seeded)
}

/// Seeds the demo; its Shopify stores are at `shop_url` (the fake's), its marketplace stores at
/// the fake `marketplaces`.
pub async fn seed(table: &Table, shop_url: &str, marketplaces: &FakeMarketplaces) -> Result<Demo, ProvisionError> {
    let retailer = provision::create_retailer(table, "Demo Outfitters", FeeSettings::default()).await?;
    let acme = provision::create_vendor(table, retailer.id, "Acme Supply").await?;
    let globex = provision::create_vendor(table, retailer.id, "Globex Parts").await?;
    // A one-minute delay shows the export plan at work.
    let settings = ExportSettings { shipment_export_delay_minutes: 1, ..ExportSettings::default() };
    let shop = provision::create_store(
        table,
        retailer.id,
        "Demo Outfitters (fake Shopify)",
        ChannelKind::Shopify,
        settings,
        // Its webhooks must come from this shop (`X-Shopify-Shop-Domain`); its calls go to the fake.
        ChannelConnection {
            shop_domain: Some(DEMO_SHOP_DOMAIN.into()),
            base_url: Some(shop_url.to_owned()),
            ..ChannelConnection::default()
        },
    )
    .await?;
    let orders = [
        (
            &acme,
            "PO-1001",
            "Bill Smith",
            vec![
                item("TENT-2P", "Two-person tent", 1, 8900, "gid://shopify/LineItem/1001"),
                item("STAKE-10", "Tent stakes (10)", 2, 450, "gid://shopify/LineItem/1002"),
            ],
        ),
        (
            &acme,
            "PO-1002",
            "Ada Lovelace",
            vec![item("LAMP-LED", "LED camp lamp", 3, 1500, "gid://shopify/LineItem/1003")],
        ),
        (
            &globex,
            "PO-1003",
            "Grace Hopper",
            vec![item("PHONE-X", "Refurbished phone", 1, 21000, "gid://shopify/LineItem/1004")],
        ),
        // Its order is not in the fake shop (as if deleted in Shopify): the local stack ships it
        // at start-up, so the console shows a real failed export to fix.
        (
            &acme,
            BROKEN_ORDER,
            "Edsger Dijkstra",
            vec![item("LAMP-LED", "LED camp lamp", 1, 1500, "gid://shopify/LineItem/1005")],
        ),
    ];
    let mut purchase_orders = Vec::new();
    for (vendor, number, customer, items) in orders {
        let order = NewPurchaseOrder {
            retailer_id: retailer.id,
            vendor_id: vendor.id,
            store_id: shop.id,
            public_reference: number.into(),
            channel_order_id: Some(shopify_order(number.trim_start_matches("PO-"))?),
            customer_name: customer.into(),
            items,
        };
        purchase_orders.push(provision::create_purchase_order(table, order).await?);
    }
    // Products, so that a Shopify order for these SKUs splits between the vendors, and a webhook
    // secret, so that the demo can post signed Shopify webhooks to the demo store.
    let products = [
        ("TENT-2P", &acme, "Two-person tent"),
        ("STAKE-10", &acme, "Tent stakes (10)"),
        ("LAMP-LED", &acme, "LED camp lamp"),
        ("PHONE-X", &globex, "Refurbished phone"),
    ];
    for (sku, vendor, name) in products {
        let sku = Sku::parse(sku).map_err(|problem| invalid("sku", problem))?;
        let product = Product { sku, vendor_id: vendor.id, name: name.into(), cost: None };
        table.save_product(retailer.id, &product).await?;
    }
    let webhook_secret = provision::random_secret()?;
    let credentials = BTreeMap::from([
        ("access_token".to_owned(), DEMO_ACCESS_TOKEN.to_owned()),
        ("webhook_secret".to_owned(), webhook_secret.clone()),
    ]);
    table.save_credentials(retailer.id, shop.id, &ChannelCredentials(credentials)).await?;
    // A marketplace-like store that confirms only once the carrier reports movement: it registers
    // its numbers with the fake EasyPost, whose scans it receives at its own URL, signed with its
    // own secret.
    let marketplace_settings =
        ExportSettings { ship_confirmation: Some(ShipConfirmation::TrackingMovement), ..ExportSettings::default() };
    let marketplace = provision::create_store_tracked(
        table,
        retailer.id,
        "Demo marketplace (fake Shopify, confirms on movement)",
        ChannelKind::Shopify,
        marketplace_settings,
        ChannelConnection {
            shop_domain: Some(DEMO_MARKETPLACE_SHOP_DOMAIN.into()),
            base_url: Some(shop_url.to_owned()),
            tracking_base_url: Some(marketplaces.easypost_url()),
            ..ChannelConnection::default()
        },
        TrackingSettings { provider: Some(TrackingProvider::Easypost), ..TrackingSettings::default() },
    )
    .await?;
    let marketplace_tracking_secret = provision::random_secret()?;
    let mut access = BTreeMap::from([("access_token".to_owned(), DEMO_ACCESS_TOKEN.to_owned())]);
    access.extend(easypost_credentials(&marketplace_tracking_secret));
    let access = ChannelCredentials(access);
    shipsync_channels::validate_store_settings(&marketplace, &access)?;
    table.save_credentials(retailer.id, marketplace.id, &access).await?;
    let marketplace_order = NewPurchaseOrder {
        retailer_id: retailer.id,
        vendor_id: acme.id,
        store_id: marketplace.id,
        public_reference: "PO-2001".into(),
        channel_order_id: Some(shopify_order("2001")?),
        customer_name: "Ida Tarbell".into(),
        items: vec![item("LAMP-LED", "LED camp lamp", 1, 1500, "gid://shopify/LineItem/2001")],
    };
    let marketplace_po = provision::create_purchase_order(table, marketplace_order).await?;
    let vendors_by_sku: Vec<(&str, VendorId)> = products.iter().map(|(sku, vendor, _)| (*sku, vendor.id)).collect();
    let custom = seed_custom(table, &retailer, acme.id, marketplaces).await?;
    let marketplaces = seed_marketplaces(table, &retailer, &vendors_by_sku, marketplaces).await?;
    let retailer_user = provision::create_api_user(table, retailer.id, None, "UTC").await?;
    let vendor_user = provision::create_api_user(table, retailer.id, Some(acme.id), "America/New_York").await?;
    Ok(Demo {
        retailer,
        store: shop,
        webhook_secret,
        marketplace_po,
        marketplace_tracking_secret,
        vendors: vec![acme, globex],
        purchase_orders,
        retailer_user,
        vendor_user,
        marketplaces,
        custom,
    })
}

/// What the fake marketplace logs when it receives the confirmation.
pub fn confirmation_log(marketplace: Marketplace) -> &'static str {
    match marketplace {
        Marketplace::Amazon => "fake Amazon: shipment confirmed",
        Marketplace::Ebay => "fake eBay: shipping fulfillment created",
        Marketplace::BackMarket => "fake Back Market: order line shipped",
        Marketplace::Walmart => "fake Walmart: order line shipped",
        Marketplace::WooCommerce => "fake WooCommerce: fulfillment created",
        Marketplace::Groupon => "fake Groupon: tracking received",
        Marketplace::Wish => "fake Wish: tracking received",
        Marketplace::Custom => "fake custom channel: shipment received",
    }
}

/// The shipment the README makes on a marketplace order's purchase order: every unit, the
/// demo's carrier and tracking number, and the serial codes (Back Market's IMEI).
pub fn marketplace_shipment(market: &MarketplaceDemo, po: &PurchaseOrder) -> serde_json::Value {
    let items: Vec<serde_json::Value> = po
        .items
        .iter()
        .map(|item| {
            let mut line = serde_json::json!({"order_item_id": item.id, "quantity": item.quantity});
            if !market.serial_codes.is_empty() {
                line["serial_codes"] = serde_json::json!(market.serial_codes);
            }
            line
        })
        .collect();
    serde_json::json!({"shipment": {
        "shipper_name": market.carrier,
        "shipment_items_attributes": items,
        "shipment_trackings_attributes": [{"tracking": market.tracking_number}],
    }})
}

/// The commands that walk a marketplace order from its purchase order to the channel's
/// confirmation, with what to expect at each step.
pub fn marketplace_walk(market: &MarketplaceDemo, po: &PurchaseOrder, demo: &Demo, port: u16) -> String {
    let base = format!("http://127.0.0.1:{port}");
    let user = &demo.retailer_user;
    let name = market.marketplace.name();
    format!(
        r#"
{name} order {order} was polled: purchase order {number} (id {po_id}). Ship it (expect HTTP 201 and
"export_state": "waiting_for_movement"; the fake EasyPost logs "fake EasyPost: tracker registered"):
      curl -s -u '{key}:{password}' -X POST {base}/purchase_orders/{po_id}/shipments.json -H 'Content-Type: application/json' \
        -d '{body}'
  then the carrier's first scan, signed as EasyPost signs it; within seconds the fake {name} logs
  "{confirmed}" and the shipment shows "export_state": "exported":
      scripts/send-carrier-webhook {store_id} {secret} {tracking} in_transit {port}
      curl -sg -u '{key}:{password}' '{base}/shipments.json?search[tracking]={tracking}'"#,
        order = market.order.id,
        number = po.public_reference,
        po_id = po.id,
        key = user.key,
        password = user.password,
        body = marketplace_shipment(market, po),
        confirmed = confirmation_log(market.marketplace),
        store_id = market.store.id,
        secret = market.tracking_webhook_secret,
        tracking = market.tracking_number,
    )
}
