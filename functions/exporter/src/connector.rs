//! What a shipment is exported with: its store's channel, connected through the channel port,
//! and the payload the channels crate builds from the shipment, its purchase order, the store's
//! carrier mapping and the notification setting.

use shipsync_channels::{Channel, ChannelEndpoints, ChannelError, Channels, ExportOrder, Fulfillment, TokenCache};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::Shipment;
use shipsync_table::{Table, TableError};

/// Why a connector could not be made.
pub enum Problem {
    /// Reading the settings failed: try again.
    Table(TableError),
    /// The settings cannot work (no credentials, a store gone): a person must fix them.
    Refused(String),
}

impl From<TableError> for Problem {
    fn from(error: TableError) -> Self {
        Problem::Table(error)
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

pub struct Connector {
    channel: Box<dyn Channel>,
    order: ExportOrder,
}

impl Connector {
    pub async fn for_shipment(
        table: &Table,
        http: &reqwest::Client,
        tokens: &TokenCache,
        endpoints: ChannelEndpoints,
        shipment: &Shipment,
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
        let order =
            ExportOrder::for_shipment(shipment, &po, &channel_store, vendor_notify).map_err(Problem::Refused)?;
        let credentials = credentials(table, shipment).await?;
        let channels = Channels::new(http.clone(), endpoints).with_token_cache(tokens.clone());
        let channel = channels
            .connect(&channel_store, &credentials)
            .map_err(|error| Problem::Refused(format!("store {}: {error}", channel_store.id)))?;
        Ok(Self { channel, order })
    }

    pub fn notify_customer(&self) -> bool {
        self.order.notify_customer
    }

    /// Exports; with `check_first`, what the channel already has from an earlier attempt is adopted.
    pub async fn export(&self, check_first: bool) -> Result<Fulfillment, ChannelError> {
        self.channel.export(&self.order, check_first).await
    }
}
