//! Store settings (how and when shipments go to each sales channel), vendor notification
//! overrides, and the list of failed exports. Retailer users only.

use std::collections::BTreeMap;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shipsync_app::Failure;
use shipsync_domain::ValidationErrors;
use shipsync_domain::access::Principal;
use shipsync_domain::export::{CarrierMapping, ExportWhen, ShipConfirmation};
use shipsync_domain::ids::{StoreId, VendorId};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelKind, ChannelStore, StoreChange, Vendor, check_store_name};
use shipsync_domain::tracking::TrackingProvider;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_body, json_response};

use crate::dto::{Metadata, ShipmentView};
use crate::{ShipmentsApi, path_id};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreEnvelope {
    store: StoreBody,
}

/// A store as requests write it. Absent fields keep their value (or default, on create).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreBody {
    name: Option<String>,
    channel: Option<RequestedChannel>,
    shop_domain: Option<String>,
    base_url: Option<String>,
    /// eBay only: use eBay's sandbox.
    sandbox: Option<bool>,
    export_shipments: Option<bool>,
    shipment_export_delay_minutes: Option<u32>,
    send_tracking: Option<bool>,
    export_when: Option<ExportWhen>,
    carrier_mappings: Option<Vec<CarrierMapping>>,
    poll_orders_every_minutes: Option<u32>,
    /// A vendor's cancellation waits for the retailer's approval (default), else goes to the channel at once.
    approve_vendor_cancellations: Option<bool>,
    ship_confirmation: Option<ShipConfirmation>,
    /// Amazon only: the marketplace and the seller's id (which routes its notifications).
    marketplace_id: Option<String>,
    seller_id: Option<String>,
    /// Where the store's tracking numbers are registered (`""` or null: nowhere).
    #[serde(default, deserialize_with = "provider_patch")]
    tracking_provider: Option<Option<TrackingProvider>>,
    movement_timeout_hours: Option<u32>,
    export_after_movement_timeout: Option<bool>,
    tracking_base_url: Option<String>,
    /// Custom channels only: where shipments are posted (https, a public host).
    shipment_url: Option<String>,
    /// WooCommerce only: the shop's site (https, a public host).
    site_url: Option<String>,
    /// Wish only: the country parcels ship from (ISO 3166 alpha-2).
    origin_country: Option<String>,
    /// WooCommerce only: move orders to `completed` once fully shipped.
    complete_order_when_shipped: Option<bool>,
    /// Write-only: never shown, never logged.
    credentials: Option<BTreeMap<String, String>>,
    // Readonly, accepted so that a client may send back what it read.
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "retailer_id")]
    _retailer_id: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "credentials_set")]
    _credentials_set: Option<serde::de::IgnoredAny>,
}

impl StoreBody {
    /// The change it asks for, and the credentials it sends (write-only).
    fn into_change(self) -> (StoreChange, Option<ChannelCredentials>) {
        let change = StoreChange {
            name: self.name,
            shop_domain: self.shop_domain,
            base_url: self.base_url,
            sandbox: self.sandbox,
            export_shipments: self.export_shipments,
            shipment_export_delay_minutes: self.shipment_export_delay_minutes,
            send_tracking: self.send_tracking,
            export_when: self.export_when,
            carrier_mappings: self.carrier_mappings,
            poll_orders_every_minutes: self.poll_orders_every_minutes,
            approve_vendor_cancellations: self.approve_vendor_cancellations,
            ship_confirmation: self.ship_confirmation,
            marketplace_id: self.marketplace_id,
            seller_id: self.seller_id,
            tracking_provider: self.tracking_provider,
            movement_timeout_hours: self.movement_timeout_hours,
            export_after_movement_timeout: self.export_after_movement_timeout,
            tracking_base_url: self.tracking_base_url,
            shipment_url: self.shipment_url,
            site_url: self.site_url,
            origin_country: self.origin_country,
            complete_order_when_shipped: self.complete_order_when_shipped,
        };
        (change, self.credentials.map(ChannelCredentials))
    }
}

/// A tracking provider as a request gives it: present and `null` (or `""`) clears it.
fn provider_patch<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<TrackingProvider>>, D::Error> {
    let given = Option::<String>::deserialize(deserializer)?;
    match given.as_deref().map(str::trim) {
        None | Some("") => Ok(Some(None)),
        Some(name) => TrackingProvider::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(name))
            .map(|provider| Some(Some(provider))),
    }
}

/// The channel a request names. `local`, the local stack's channel before the local stack ran a
/// fake Shopify, is read so that a store asking for it is refused naming the field (422), as
/// before; any other name that is no channel is a malformed request (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestedChannel {
    Offered(ChannelKind),
    Retired(&'static str),
}

/// Channels shipsync no longer offers.
const RETIRED_CHANNELS: [&str; 1] = ["local"];

impl<'de> Deserialize<'de> for RequestedChannel {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        if let Some(retired) = RETIRED_CHANNELS.into_iter().find(|retired| *retired == name) {
            return Ok(RequestedChannel::Retired(retired));
        }
        ChannelKind::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&name))
            .map(RequestedChannel::Offered)
    }
}

/// A store as responses show it: everything but the credentials.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct StoreView {
    id: u64,
    retailer_id: u64,
    name: String,
    #[schemars(with = "String")]
    channel: ChannelKind,
    shop_domain: Option<String>,
    base_url: Option<String>,
    sandbox: bool,
    export_shipments: bool,
    shipment_export_delay_minutes: u32,
    send_tracking: bool,
    #[schemars(with = "String")]
    export_when: ExportWhen,
    #[schemars(with = "Vec<serde_json::Map<String, serde_json::Value>>")]
    carrier_mappings: Vec<CarrierMapping>,
    poll_orders_every_minutes: u32,
    approve_vendor_cancellations: bool,
    /// When the channel gets ship confirmations (the channel's default unless set).
    #[schemars(with = "String")]
    ship_confirmation: ShipConfirmation,
    marketplace_id: Option<String>,
    seller_id: Option<String>,
    #[schemars(with = "Option<String>")]
    tracking_provider: Option<TrackingProvider>,
    movement_timeout_hours: u32,
    export_after_movement_timeout: bool,
    tracking_base_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipment_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    site_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_country: Option<String>,
    /// Shown for WooCommerce stores only.
    #[serde(skip_serializing_if = "Option::is_none")]
    complete_order_when_shipped: Option<bool>,
    credentials_set: bool,
}

impl StoreView {
    fn new(store: &ChannelStore, credentials_set: bool) -> Self {
        Self {
            id: store.id.get(),
            retailer_id: store.retailer_id.get(),
            name: store.name.clone(),
            channel: store.channel,
            shop_domain: store.connection.shop_domain.clone(),
            base_url: store.connection.base_url.clone(),
            sandbox: store.connection.sandbox,
            export_shipments: store.export.export_shipments,
            shipment_export_delay_minutes: store.export.shipment_export_delay_minutes,
            send_tracking: store.export.send_tracking,
            export_when: store.export.export_when,
            carrier_mappings: store.export.carrier_mappings.clone(),
            poll_orders_every_minutes: store.ingestion.poll_orders_every_minutes,
            approve_vendor_cancellations: store.ingestion.approve_vendor_cancellations,
            ship_confirmation: store.export.confirmation(store.channel),
            marketplace_id: store.connection.marketplace_id.clone(),
            seller_id: store.connection.seller_id.clone(),
            tracking_provider: store.tracking.provider,
            movement_timeout_hours: store.tracking.movement_timeout_hours,
            export_after_movement_timeout: store.tracking.export_after_movement_timeout,
            tracking_base_url: store.connection.tracking_base_url.clone(),
            shipment_url: store.connection.shipment_url.clone(),
            site_url: store.connection.site_url.clone(),
            origin_country: store.connection.origin_country.clone(),
            complete_order_when_shipped: (store.channel == shipsync_domain::tenant::ChannelKind::WooCommerce)
                .then_some(store.connection.complete_order_when_shipped),
            credentials_set,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorEnvelope {
    vendor: VendorBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorBody {
    /// `true`/`false` overrides the store's `send_tracking`; `null` follows it.
    #[serde(default, deserialize_with = "present")]
    notify_customer: Option<Option<bool>>,
    /// Where its purchase orders are emailed (`null` or `""`: nowhere).
    #[serde(default, deserialize_with = "present_text")]
    email: Option<Option<String>>,
    /// The retailer emails it its purchase orders, with their labels.
    email_purchase_orders: Option<bool>,
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "name")]
    _name: Option<serde::de::IgnoredAny>,
}

/// Tells a text sent as `null` from one left out.
fn present_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Tells a field sent as `null` from one left out.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(deserializer).map(Some)
}

/// A vendor as the API shows it.
#[derive(Serialize, schemars::JsonSchema)]
pub(crate) struct VendorView {
    id: u64,
    name: String,
    notify_customer: Option<bool>,
    email: Option<String>,
    email_purchase_orders: bool,
}

fn vendor_view(vendor: &Vendor) -> VendorView {
    VendorView {
        id: vendor.id.get(),
        name: vendor.name.clone(),
        notify_customer: vendor.notify_customer,
        email: vendor.email.clone(),
        email_purchase_orders: vendor.email_purchase_orders,
    }
}

pub(crate) fn retailer_only(principal: &Principal) -> Result<(), ApiError> {
    if principal.is_retailer_user() {
        Ok(())
    } else {
        Err(ApiError::Forbidden("only a retailer's API users may do this".into()))
    }
}

impl ShipmentsApi {
    pub(crate) async fn create_store(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let body = json_body::<StoreEnvelope>(request)?.store;
        let channel = match body.channel {
            Some(RequestedChannel::Offered(channel)) => channel,
            refused => {
                // Both problems at once: the name, and the channel.
                let mut errors = ValidationErrors::new();
                check_store_name(body.name.as_deref(), &mut errors);
                match refused {
                    Some(RequestedChannel::Retired(name)) => {
                        errors.push("channel", format!("{name} is no longer offered: {}", ChannelKind::offered()))
                    }
                    _ => errors.push("channel", format!("is required: {}", ChannelKind::offered())),
                }
                return Err(errors.into());
            }
        };
        let name = body.name.clone().unwrap_or_default();
        let (change, credentials) = body.into_change();
        let saved = self.settings.create(principal, &name, channel, change, credentials).await?;
        Ok(json_response(StatusCode::CREATED, &json!({ "store": StoreView::new(&saved.store, saved.credentials_set) })))
    }

    pub(crate) async fn update_store(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let current = self.own_store(principal, id).await?;
        let body = json_body::<StoreEnvelope>(request)?.store;
        let channel = match body.channel {
            Some(RequestedChannel::Offered(channel)) => Some(channel),
            Some(RequestedChannel::Retired(_)) => {
                return Err(ApiError::invalid("channel", "cannot change: create another store for another channel"));
            }
            None => None,
        };
        let (change, credentials) = body.into_change();
        let saved = self.settings.update(principal, &current, channel, change, credentials).await?;
        Ok(json_response(StatusCode::OK, &json!({ "store": StoreView::new(&saved.store, saved.credentials_set) })))
    }

    pub(crate) async fn get_store(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let store = self.own_store(principal, id).await?;
        let credentials_set = self.credentials_set(&store).await?;
        Ok(json_response(StatusCode::OK, &json!({ "store": StoreView::new(&store, credentials_set) })))
    }

    pub(crate) async fn list_stores(&self, principal: &Principal) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let stores = self.table.channel_stores(principal.retailer_id).await.map_err(Failure::from)?;
        let mut views = Vec::with_capacity(stores.len());
        for store in &stores {
            views.push(StoreView::new(store, self.credentials_set(store).await?));
        }
        Ok(json_response(StatusCode::OK, &json!({ "stores": views })))
    }

    async fn own_store(&self, principal: &Principal, id: &str) -> Result<ChannelStore, ApiError> {
        retailer_only(principal)?;
        let id: StoreId = path_id(id, "store")?;
        Ok(self.settings.own_store(principal, id).await?)
    }

    /// Whether credentials are set, from their names: the API cannot open them.
    async fn credentials_set(&self, store: &ChannelStore) -> Result<bool, ApiError> {
        Ok(self.settings.credentials_set(store).await?)
    }

    pub(crate) async fn list_vendors(&self, principal: &Principal) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let vendors = self.table.vendors(principal.retailer_id).await.map_err(Failure::from)?;
        Ok(json_response(StatusCode::OK, &json!({ "vendors": vendors.iter().map(vendor_view).collect::<Vec<_>>() })))
    }

    pub(crate) async fn update_vendor(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let id: VendorId = path_id(id, "vendor")?;
        let mut vendor = self
            .table
            .vendor(principal.retailer_id, id)
            .await
            .map_err(Failure::from)?
            .ok_or_else(|| ApiError::NotFound(format!("vendor {id} not found")))?;
        let body = json_body::<VendorEnvelope>(request)?.vendor;
        let before = vendor.clone();
        let mut errors = ValidationErrors::new();
        if let Some(notify) = body.notify_customer {
            vendor.notify_customer = notify;
        }
        if let Some(email) = body.email {
            match email.as_deref().map(str::trim).filter(|email| !email.is_empty()) {
                None => vendor.email = None,
                Some(email) => match shipsync_domain::tenant::parse_email(email) {
                    Ok(email) => vendor.email = Some(email),
                    Err(problem) => errors.push("email", problem),
                },
            }
        }
        if let Some(on) = body.email_purchase_orders {
            vendor.email_purchase_orders = on;
        }
        if vendor.email_purchase_orders && vendor.email.is_none() && !errors.mentions("email") {
            errors.push("email", "is required to email the vendor its purchase orders");
        }
        errors.into_result(()).map_err(ApiError::Invalid)?;
        if vendor != before {
            self.table.save_vendor(&vendor).await.map_err(Failure::from)?;
        }
        Ok(json_response(StatusCode::OK, &json!({ "vendor": vendor_view(&vendor) })))
    }

    pub(crate) async fn failed_exports(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let (paging, after) = crate::purchase_orders::page_request(request, principal)?;
        let (page, (retailer, _)) = tokio::try_join!(
            async {
                self.table
                    .failed_exports(principal.retailer_id, paging, after.as_ref())
                    .await
                    .map_err(|e| ApiError::from(Failure::from(e)))
            },
            self.retailer(principal)
        )?;
        let views: Vec<ShipmentView> = page.records.iter().map(|s| ShipmentView::new(s, retailer.fees)).collect();
        let metadata = Metadata::for_page(paging, views.len(), &page);
        Ok(json_response(StatusCode::OK, &json!({ "shipments": views, "metadata": metadata })))
    }
}
