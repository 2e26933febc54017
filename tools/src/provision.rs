//! Creating tenants: retailers, vendors, stores, carriers, API users and purchase orders.
//! Used by the admin command, the local stack's demo data and the tests' fixtures.

use chrono::Utc;
use shipsync_domain::ValidationErrors;
use shipsync_domain::access::{
    API_KEY_HEX_DIGITS, API_KEY_PREFIX, ApiUser, Role, parse_time_zone, password_digest, to_hex,
};
use shipsync_domain::carrier::{Carrier, validate_new_carrier};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::ids::{CarrierId, RetailerId, StoreId, VendorId};
use shipsync_domain::purchase_order::{NewPurchaseOrder, PurchaseOrder};
use shipsync_domain::tenant::{
    ChannelConnection, ChannelKind, ChannelStore, FeeSettings, Retailer, TrackingSettings, Vendor, parse_shop_domain,
};
use shipsync_table::{Table, TableError};

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("{0}")]
    Invalid(#[from] ValidationErrors),
    #[error(transparent)]
    Table(#[from] TableError),
    #[error("retailer {0} not found")]
    NoRetailer(RetailerId),
    #[error("vendor {0} not found")]
    NoVendor(VendorId),
    #[error("no randomness available: {0}")]
    Random(String),
}

/// An API user's credentials. The password is shown once, here; only its digest is stored.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub key: String,
    pub password: String,
}

fn random_hex(bytes: usize) -> Result<String, ProvisionError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| ProvisionError::Random(error.to_string()))?;
    Ok(to_hex(&buffer))
}

/// A random secret (256 bits, hex), e.g. for signing webhooks.
pub fn random_secret() -> Result<String, ProvisionError> {
    random_hex(32)
}

async fn next_id(table: &Table) -> Result<u64, ProvisionError> {
    Ok(*table.allocate_ids(1).await?.start())
}

pub async fn create_retailer(table: &Table, name: &str, fees: FeeSettings) -> Result<Retailer, ProvisionError> {
    if name.trim().is_empty() {
        return Err(ValidationErrors::single("name", "must not be blank").into());
    }
    let retailer =
        Retailer { id: RetailerId::new_unchecked(next_id(table).await?), name: name.trim().to_owned(), fees };
    table.put_retailer(&retailer).await?;
    Ok(retailer)
}

pub async fn create_vendor(table: &Table, retailer_id: RetailerId, name: &str) -> Result<Vendor, ProvisionError> {
    ensure_retailer(table, retailer_id).await?;
    if name.trim().is_empty() {
        return Err(ValidationErrors::single("name", "must not be blank").into());
    }
    let vendor = Vendor {
        id: VendorId::new_unchecked(next_id(table).await?),
        retailer_id,
        name: name.trim().to_owned(),
        notify_customer: None,
        email: None,
        email_purchase_orders: false,
    };
    table.put_vendor(&vendor).await?;
    Ok(vendor)
}

pub async fn create_store(
    table: &Table,
    retailer_id: RetailerId,
    name: &str,
    channel: ChannelKind,
    export: ExportSettings,
    connection: ChannelConnection,
) -> Result<ChannelStore, ProvisionError> {
    create_store_tracked(table, retailer_id, name, channel, export, connection, TrackingSettings::default()).await
}

/// [`create_store`] for a store that registers its tracking numbers with a carrier-tracking
/// service (`tracking.provider`; its key goes with the store's credentials).
pub async fn create_store_tracked(
    table: &Table,
    retailer_id: RetailerId,
    name: &str,
    channel: ChannelKind,
    export: ExportSettings,
    connection: ChannelConnection,
    tracking: TrackingSettings,
) -> Result<ChannelStore, ProvisionError> {
    ensure_retailer(table, retailer_id).await?;
    let mut connection = connection;
    if let Some(domain) = &connection.shop_domain {
        let host = parse_shop_domain(domain).map_err(|message| ValidationErrors::single("shop_domain", message))?;
        connection.shop_domain = Some(host);
    }
    if let Some(marketplace) = &connection.marketplace_id
        && shipsync_channels::amazon_endpoint(marketplace).is_none()
    {
        return Err(ValidationErrors::single("marketplace_id", "is not an Amazon marketplace id").into());
    }
    let record = ChannelStore {
        id: StoreId::new_unchecked(next_id(table).await?),
        retailer_id,
        name: name.trim().to_owned(),
        channel,
        export,
        connection,
        ingestion: shipsync_domain::tenant::IngestionSettings::default(),
        tracking,
    };
    table.put_store(&record).await?;
    Ok(record)
}

pub async fn create_carrier(
    table: &Table,
    retailer_id: RetailerId,
    name: &str,
    scac_code: Option<&str>,
) -> Result<Carrier, ProvisionError> {
    let (_, carriers) =
        table.retailer_with_carriers(retailer_id).await?.ok_or(ProvisionError::NoRetailer(retailer_id))?;
    let (name, scac_code) = validate_new_carrier(name, scac_code, &carriers)?;
    let carrier = Carrier { id: CarrierId::new_unchecked(next_id(table).await?), name, scac_code };
    table.put_carrier(retailer_id, &carrier).await?;
    Ok(carrier)
}

/// Creates an API user for a retailer (or, with a vendor, for that vendor only).
pub async fn create_api_user(
    table: &Table,
    retailer_id: RetailerId,
    vendor_id: Option<VendorId>,
    time_zone: &str,
) -> Result<Credentials, ProvisionError> {
    ensure_retailer(table, retailer_id).await?;
    let role = match vendor_id {
        Some(vendor_id) => {
            table.vendor(retailer_id, vendor_id).await?.ok_or(ProvisionError::NoVendor(vendor_id))?;
            Role::Vendor { vendor_id }
        }
        None => Role::Retailer,
    };
    let zone = parse_time_zone(time_zone).map_err(|message| ValidationErrors::single("time_zone", message))?;
    let credentials = Credentials {
        key: format!("{API_KEY_PREFIX}{}", random_hex(API_KEY_HEX_DIGITS / 2)?),
        password: random_hex(32)?,
    };
    let salt = random_hex(16)?;
    let user = ApiUser {
        key: credentials.key.clone(),
        retailer_id,
        role,
        time_zone: zone.name().to_owned(),
        password_digest: password_digest(&salt, &credentials.password),
        password_salt: salt,
    };
    table.put_api_user(&user).await?;
    Ok(credentials)
}

pub async fn create_purchase_order(table: &Table, order: NewPurchaseOrder) -> Result<PurchaseOrder, ProvisionError> {
    let ids = table.allocate_ids(order.ids_needed()).await?;
    let po = order.build(ids, Utc::now())?;
    table.create_purchase_order(&po).await?;
    Ok(po)
}

async fn ensure_retailer(table: &Table, retailer_id: RetailerId) -> Result<(), ProvisionError> {
    table.retailer_with_carriers(retailer_id).await?.ok_or(ProvisionError::NoRetailer(retailer_id))?;
    Ok(())
}
