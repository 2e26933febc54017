//! What a shipment is exported with: its store's channel client and the payload built from the
//! shipment, its purchase order, the store's carrier mapping and the notification setting.

use shipsync_channels::{
    AmazonClient, AmazonCredentials, BackMarketClient, ChannelEndpoints, ChannelError, EbayClient, EbayCredentials,
    EndpointError, ExportLine, ExportOrder, Fulfillment, ShopifyClient, TokenCache,
};
use shipsync_domain::export::{notify_customer, tracking_url};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::{ChannelKind, ChannelStore};
use shipsync_table::{Table, TableError};

/// Why a connector could not be made.
pub enum Problem {
    /// Reading the settings failed: try again.
    Table(TableError),
    /// The settings cannot work (no credentials, an unsupported channel): a person must fix them.
    Refused(String),
}

impl From<TableError> for Problem {
    fn from(error: TableError) -> Self {
        Problem::Table(error)
    }
}

impl From<EndpointError> for Problem {
    fn from(error: EndpointError) -> Self {
        Problem::Refused(error.0)
    }
}

/// A store's credentials, opened. Credentials that do not open for this store (sealed for
/// another, or under another key) need a person: a retry cannot help.
async fn credentials(table: &Table, shipment: &Shipment) -> Result<ChannelCredentials, Problem> {
    match table.credentials(shipment.retailer_id, shipment.store_id).await {
        Ok(credentials) => Ok(credentials),
        Err(TableError::Corrupt { reason, .. }) => Err(Problem::Refused(format!(
            "store {}'s credentials cannot be opened ({reason}): set them again",
            shipment.store_id
        ))),
        Err(error) => Err(Problem::Table(error)),
    }
}

enum Channel {
    Shopify(ShopifyClient),
    Amazon(AmazonClient),
    Ebay(EbayClient),
    BackMarket(BackMarketClient),
    /// Records exports in the table: the local stack's channel.
    Local(Table),
}

pub struct Connector {
    channel: Channel,
    order: ExportOrder,
    /// When it shipped (its creation), as Amazon and eBay want it.
    ship_date: String,
    ship_date_millis: String,
}

impl Connector {
    pub async fn for_shipment(
        table: &Table,
        http: &reqwest::Client,
        tokens: &TokenCache,
        endpoints: ChannelEndpoints,
        shipment: &Shipment,
        allow_local_channel: bool,
    ) -> Result<Self, Problem> {
        let (channel_store, po, vendor) = tokio::try_join!(
            table.channel_store(shipment.retailer_id, shipment.store_id),
            table.purchase_order(shipment.purchase_order_id),
            table.vendor(shipment.retailer_id, shipment.vendor_id),
        )?;
        let channel_store =
            channel_store.ok_or_else(|| Problem::Refused(format!("store {} no longer exists", shipment.store_id)))?;
        let po = po.ok_or_else(|| {
            Problem::Refused(format!("purchase order {} no longer exists", shipment.purchase_order_id))
        })?;
        let vendor_notify = vendor.and_then(|vendor| vendor.notify_customer);
        let order = build_export_order(shipment, &po, &channel_store, vendor_notify).map_err(Problem::Refused)?;
        let channel = match channel_store.channel {
            ChannelKind::Shopify => {
                let credentials = credentials(table, shipment).await?;
                let token = credentials.0.get("access_token").cloned().ok_or_else(|| {
                    Problem::Refused(format!("store {} has no Shopify access_token", channel_store.id))
                })?;
                Channel::Shopify(endpoints.shopify_client(http.clone(), &channel_store.connection, token)?)
            }
            ChannelKind::Amazon => {
                let credentials = credentials(table, shipment).await?;
                let read = |name: &str| {
                    credentials.0.get(name).cloned().ok_or_else(|| {
                        Problem::Refused(format!("store {} has no Amazon {name} credential", channel_store.id))
                    })
                };
                let marketplace = channel_store.connection.marketplace_id.clone().ok_or_else(|| {
                    Problem::Refused(format!("store {} has no Amazon marketplace_id", channel_store.id))
                })?;
                Channel::Amazon(endpoints.amazon_client(
                    http.clone(),
                    &channel_store.connection,
                    marketplace,
                    AmazonCredentials {
                        client_id: read("lwa_client_id")?,
                        client_secret: read("lwa_client_secret")?,
                        refresh_token: read("refresh_token")?,
                    },
                    tokens.clone(),
                )?)
            }
            ChannelKind::Ebay => {
                let credentials = credentials(table, shipment).await?;
                let read = |name: &str| {
                    credentials.0.get(name).cloned().ok_or_else(|| {
                        Problem::Refused(format!("store {} has no eBay {name} credential", channel_store.id))
                    })
                };
                Channel::Ebay(endpoints.ebay_client(
                    http.clone(),
                    &channel_store.connection,
                    EbayCredentials {
                        client_id: read("ebay_client_id")?,
                        client_secret: read("ebay_client_secret")?,
                        refresh_token: read("refresh_token")?,
                    },
                    tokens.clone(),
                ))
            }
            ChannelKind::BackMarket => {
                let credentials = credentials(table, shipment).await?;
                let token = credentials.0.get("api_token").cloned().ok_or_else(|| {
                    Problem::Refused(format!("store {} has no Back Market api_token credential", channel_store.id))
                })?;
                Channel::BackMarket(endpoints.back_market_client(http.clone(), &channel_store.connection, token))
            }
            ChannelKind::Local if allow_local_channel => Channel::Local(table.clone()),
            ChannelKind::Local => {
                return Err(Problem::Refused("the local channel exists only in the local stack".into()));
            }
        };
        let ship_date = shipment.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let ship_date_millis = shipment.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Ok(Self { channel, order, ship_date, ship_date_millis })
    }

    pub fn notify_customer(&self) -> bool {
        self.order.notify_customer
    }

    /// Exports; with `check_first`, what the channel already has from an earlier attempt is adopted.
    pub async fn export(&self, shipment: &Shipment, check_first: bool) -> Result<Fulfillment, ChannelError> {
        match &self.channel {
            Channel::Shopify(client) => client.export(&self.order, check_first).await,
            Channel::Amazon(client) => client.export(&self.order, shipment.id.get(), &self.ship_date).await,
            Channel::Ebay(client) => client.export(&self.order, &self.ship_date_millis, check_first).await,
            Channel::BackMarket(client) => client.export(&self.order).await,
            Channel::Local(store) => {
                let unavailable = |error: TableError| ChannelError::retryable(format!("local channel: {error}"));
                let channel_id = format!("local-{}", shipment.id);
                if check_first && store.local_export(shipment.id).await.map_err(unavailable)?.is_some() {
                    return Ok(Fulfillment { channel_ids: vec![channel_id], adopted: true });
                }
                store.record_local_export(shipment.id, &payload(&self.order)).await.map_err(unavailable)?;
                Ok(Fulfillment { channel_ids: vec![channel_id], adopted: false })
            }
        }
    }
}

/// What the local channel records: the payload a real channel would have received.
fn payload(order: &ExportOrder) -> serde_json::Value {
    serde_json::json!({
        "channel_order_id": order.channel_order_id,
        "lines": order.lines.iter().map(|l| serde_json::json!({"line_item_id": l.channel_line_item_id, "sku": l.sku, "quantity": l.quantity})).collect::<Vec<_>>(),
        "tracking_numbers": order.tracking_numbers,
        "carrier": order.carrier,
        "tracking_urls": order.tracking_urls,
        "notify_customer": order.notify_customer,
    })
}

/// The channel payload for a shipment as it stands now.
pub fn build_export_order(
    shipment: &Shipment,
    po: &PurchaseOrder,
    store: &ChannelStore,
    vendor_notify: Option<bool>,
) -> Result<ExportOrder, String> {
    let channel_order_id = po
        .channel_order_id
        .clone()
        .ok_or_else(|| format!("purchase order {} has no channel order id", po.public_reference))?;
    let mut lines = Vec::with_capacity(shipment.items.len());
    for item in &shipment.items {
        let line = po
            .item(item.order_item_id)
            .and_then(|order_item| order_item.channel_line_item_id.clone())
            .ok_or_else(|| format!("order item {} ({}) has no channel line item id", item.order_item_id, item.sku))?;
        lines.push(ExportLine {
            channel_line_item_id: line,
            quantity: item.quantity,
            sku: item.sku.clone(),
            serial_codes: item.serial_codes.clone(),
        });
    }
    let mapping = store.export.mapping_for(shipment.carrier.id);
    let tracking_numbers: Vec<String> = shipment.trackings.iter().map(|t| t.tracking.clone()).collect();
    let tracking_urls = mapping
        .and_then(|m| m.tracking_url_template.as_deref())
        .map(|template| tracking_numbers.iter().map(|number| tracking_url(template, number)).collect())
        .unwrap_or_default();
    Ok(ExportOrder {
        channel_order_id,
        lines,
        carrier: mapping.map_or_else(|| shipment.carrier.name.clone(), |m| m.channel_carrier.clone()),
        carrier_code: mapping.map(|m| m.channel_carrier.clone()),
        tracking_numbers,
        tracking_urls,
        notify_customer: notify_customer(shipment.export.notify_override, vendor_notify, store.export.send_tracking),
    })
}
