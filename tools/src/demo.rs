//! Demo data for the local stack: a retailer with two vendors, two Shopify stores served by the
//! local [`FakeShopify`], purchase orders on the shop's orders, and an API user for the retailer
//! and for one vendor.

use rust_decimal::Decimal;
use shipsync_domain::ValidationErrors;
use shipsync_domain::export::{ExportSettings, ShipConfirmation};
use shipsync_domain::orders::Product;
use shipsync_domain::purchase_order::{NewOrderItem, NewPurchaseOrder, PurchaseOrder};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, ChannelStore, FeeSettings, Retailer, Vendor};
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use shipsync_table::Table;
use std::collections::BTreeMap;

use crate::fake_shopify::{FakeLine, FakeOrder, FakeShopify};
use crate::provision::{self, Credentials, ProvisionError};

pub struct Demo {
    pub retailer: Retailer,
    pub store: ChannelStore,
    /// What the demo store's Shopify webhooks are signed with.
    pub webhook_secret: String,
    /// A purchase order on the store that confirms on movement.
    pub marketplace_po: PurchaseOrder,
    /// What local EasyPost webhooks are signed with.
    pub carrier_secret: String,
    pub vendors: Vec<Vendor>,
    pub purchase_orders: Vec<PurchaseOrder>,
    pub retailer_user: Credentials,
    pub vendor_user: Credentials,
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

/// Seeds the demo; its stores are Shopify stores at `shop_url` (the fake's).
pub async fn seed(table: &Table, shop_url: &str) -> Result<Demo, ProvisionError> {
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
    for (sku, vendor, name) in [
        ("TENT-2P", &acme, "Two-person tent"),
        ("STAKE-10", &acme, "Tent stakes (10)"),
        ("LAMP-LED", &acme, "LED camp lamp"),
        ("PHONE-X", &globex, "Refurbished phone"),
    ] {
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
    // A marketplace-like store that confirms only once the carrier reports movement, and the
    // secret the local EasyPost webhooks are signed with.
    let marketplace_settings =
        ExportSettings { ship_confirmation: Some(ShipConfirmation::TrackingMovement), ..ExportSettings::default() };
    let marketplace = provision::create_store(
        table,
        retailer.id,
        "Demo marketplace (fake Shopify, confirms on movement)",
        ChannelKind::Shopify,
        marketplace_settings,
        ChannelConnection {
            shop_domain: Some(DEMO_MARKETPLACE_SHOP_DOMAIN.into()),
            base_url: Some(shop_url.to_owned()),
            ..ChannelConnection::default()
        },
    )
    .await?;
    let access = BTreeMap::from([("access_token".to_owned(), DEMO_ACCESS_TOKEN.to_owned())]);
    table.save_credentials(retailer.id, marketplace.id, &ChannelCredentials(access)).await?;
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
    let carrier_secret = provision::random_secret()?;
    table.set_carrier_webhook_secret("easypost", &carrier_secret).await?;
    let retailer_user = provision::create_api_user(table, retailer.id, None, "UTC").await?;
    let vendor_user = provision::create_api_user(table, retailer.id, Some(acme.id), "America/New_York").await?;
    Ok(Demo {
        retailer,
        store: shop,
        webhook_secret,
        marketplace_po,
        carrier_secret,
        vendors: vec![acme, globex],
        purchase_orders,
        retailer_user,
        vendor_user,
    })
}
