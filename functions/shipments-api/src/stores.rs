//! Store settings (how and when shipments go to each sales channel), vendor notification
//! overrides, and the list of failed exports. Retailer users only.

use std::collections::BTreeMap;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shipsync_channels::{credential_names, validate_settings};
use shipsync_domain::ValidationErrors;
use shipsync_domain::access::Principal;
use shipsync_domain::export::{CarrierMapping, ExportSettings, ExportWhen, ShipConfirmation};
use shipsync_domain::ids::{StoreId, VendorId};
use shipsync_domain::limits::{
    MAX_CREDENTIAL_VALUE_CHARS, MAX_CREDENTIALS, MAX_DOMAIN_CHARS, MAX_NAME_CHARS, MAX_URL_CHARS, check_length,
};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::secrets::MAX_SEALED_BYTES;
use shipsync_domain::tenant::{
    ChannelConnection, ChannelKind, ChannelStore, IngestionSettings, MAX_POLL_MINUTES, Vendor, parse_shop_domain,
};
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_body, json_response, store_failure};

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
    ship_confirmation: Option<ShipConfirmation>,
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
#[derive(Debug, Serialize)]
struct StoreView {
    id: u64,
    retailer_id: u64,
    name: String,
    channel: ChannelKind,
    shop_domain: Option<String>,
    base_url: Option<String>,
    sandbox: bool,
    export_shipments: bool,
    shipment_export_delay_minutes: u32,
    send_tracking: bool,
    export_when: ExportWhen,
    carrier_mappings: Vec<CarrierMapping>,
    poll_orders_every_minutes: u32,
    /// When the channel gets ship confirmations (the channel's default unless set).
    ship_confirmation: ShipConfirmation,
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
            ship_confirmation: store.export.confirmation(store.channel),
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
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
    #[serde(default, rename = "name")]
    _name: Option<serde::de::IgnoredAny>,
}

/// Tells a field sent as `null` from one left out.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<bool>>, D::Error> {
    Option::<bool>::deserialize(deserializer).map(Some)
}

fn vendor_view(vendor: &Vendor) -> serde_json::Value {
    json!({ "id": vendor.id.get(), "name": vendor.name, "notify_customer": vendor.notify_customer })
}

/// Checks a store's new credentials: bounded values, and small enough to be sealed (KMS
/// encrypts at most 4 KiB). Which names a channel takes is the channel's to say
/// (`shipsync_channels::validate_settings`). Errors name `credentials` or `credentials.<name>`,
/// never a value.
fn check_credentials(channel: ChannelKind, credentials: &BTreeMap<String, String>, errors: &mut ValidationErrors) {
    let known = credential_names(channel);
    if credentials.len() > MAX_CREDENTIALS {
        errors.push("credentials", format!("must have at most {MAX_CREDENTIALS} entries"));
    }
    for (name, value) in credentials {
        if known.contains(&name.as_str()) && value.chars().count() > MAX_CREDENTIAL_VALUE_CHARS {
            errors.push(
                format!("credentials.{name}"),
                format!("must be at most {MAX_CREDENTIAL_VALUE_CHARS} characters"),
            );
        }
    }
    let sealed_size = serde_json::to_vec(credentials).map_or(usize::MAX, |json| json.len());
    if sealed_size > MAX_SEALED_BYTES {
        errors.push("credentials", format!("must be at most {MAX_SEALED_BYTES} bytes together"));
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
        let mut errors = ValidationErrors::new();
        let name = body.name.clone().unwrap_or_default();
        if name.trim().is_empty() {
            errors.push("name", "is required");
        }
        let channel = match body.channel {
            Some(RequestedChannel::Offered(channel)) => channel,
            Some(RequestedChannel::Retired(name)) => {
                errors.push("channel", format!("{name} is no longer offered: shopify, amazon, ebay or back_market"));
                return Err(errors.into());
            }
            None => {
                errors.push("channel", "is required: shopify, amazon, ebay or back_market");
                return Err(errors.into());
            }
        };
        errors.into_result(())?;
        let id = *self.table.allocate_ids(1).await.map_err(store_failure)?.start();
        let store = ChannelStore {
            id: StoreId::new_unchecked(id),
            retailer_id: principal.retailer_id,
            name: name.trim().to_owned(),
            channel,
            export: ExportSettings::default(),
            connection: ChannelConnection::default(),
            ingestion: IngestionSettings::default(),
        };
        self.save_store(principal, store, body, StatusCode::CREATED).await
    }

    pub(crate) async fn update_store(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let current = self.own_store(principal, id).await?;
        let body = json_body::<StoreEnvelope>(request)?.store;
        if body.channel.is_some_and(|channel| channel != RequestedChannel::Offered(current.channel)) {
            return Err(ApiError::invalid("channel", "cannot change: create another store for another channel"));
        }
        self.save_store(principal, current, body, StatusCode::OK).await
    }

    /// Applies a request to a store, checks it, and saves it with its credentials.
    async fn save_store(
        &self,
        principal: &Principal,
        mut store: ChannelStore,
        body: StoreBody,
        status: StatusCode,
    ) -> Result<ApiResponse, ApiError> {
        let (_, carriers) = self.retailer(principal).await?;
        let mut errors = ValidationErrors::new();
        check_store_text(&body, &mut errors);
        if let Some(name) = body.name.filter(|name| !name.trim().is_empty()) {
            store.name = name.trim().to_owned();
        }
        if let Some(domain) = body.shop_domain {
            // The host the shop's access token is sent to: a Shopify shop's, nothing else.
            store.connection.shop_domain = if domain.trim().is_empty() {
                None
            } else {
                parse_shop_domain(&domain).map_err(|message| errors.push("shop_domain", message)).ok()
            };
        }
        if let Some(url) = body.base_url {
            let url = url.trim().trim_end_matches('/').to_owned();
            if !url.is_empty() && !self.allow_store_base_url {
                errors.push("base_url", "cannot be set: each channel's address is fixed");
            } else if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
                errors.push("base_url", "must be an http(s) URL");
            }
            store.connection.base_url = Some(url).filter(|u| !u.is_empty());
        }
        if let Some(sandbox) = body.sandbox {
            if sandbox && store.channel != ChannelKind::Ebay {
                errors.push("sandbox", "only eBay stores have a sandbox");
            }
            store.connection.sandbox = sandbox;
        }
        if let Some(minutes) = body.poll_orders_every_minutes {
            if minutes > MAX_POLL_MINUTES {
                errors.push(
                    "poll_orders_every_minutes",
                    format!("must be at most {MAX_POLL_MINUTES} (a day); 0 turns polling off"),
                );
            }
            store.ingestion.poll_orders_every_minutes = minutes;
        }
        let settings = &mut store.export;
        settings.export_shipments = body.export_shipments.unwrap_or(settings.export_shipments);
        settings.shipment_export_delay_minutes =
            body.shipment_export_delay_minutes.unwrap_or(settings.shipment_export_delay_minutes);
        settings.send_tracking = body.send_tracking.unwrap_or(settings.send_tracking);
        settings.export_when = body.export_when.unwrap_or(settings.export_when);
        if body.ship_confirmation.is_some() {
            settings.ship_confirmation = body.ship_confirmation;
        }
        if let Some(mappings) = body.carrier_mappings {
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
            && !errors.errors().iter().any(|error| error.field == "shop_domain")
        {
            errors.push("shop_domain", "is required for a Shopify store (my-shop.myshopify.com)");
        }
        // Credentials replace the stored ones whole: with them, the store must be able to work.
        let credentials = body.credentials.map(ChannelCredentials);
        if let Some(credentials) = &credentials {
            check_credentials(store.channel, &credentials.0, &mut errors);
            if let Err(problems) = validate_settings(store.channel, &store.connection, credentials) {
                // A field already refused above (a malformed shop_domain) is named once.
                let already = errors.clone();
                for problem in problems.errors().iter().filter(|problem| !already.mentions(&problem.field)) {
                    errors.push(problem.field.clone(), problem.message.clone());
                }
            }
        }
        errors.into_result(())?;

        if let Some(credentials) = credentials {
            self.table.save_credentials(store.retailer_id, store.id, &credentials).await.map_err(store_failure)?;
        }
        self.table.save_channel_store(&store).await.map_err(store_failure)?;
        let credentials_set = self.credentials_set(&store).await?;
        Ok(json_response(status, &json!({ "store": StoreView::new(&store, credentials_set) })))
    }

    pub(crate) async fn get_store(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let store = self.own_store(principal, id).await?;
        let credentials_set = self.credentials_set(&store).await?;
        Ok(json_response(StatusCode::OK, &json!({ "store": StoreView::new(&store, credentials_set) })))
    }

    pub(crate) async fn list_stores(&self, principal: &Principal) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let stores = self.table.channel_stores(principal.retailer_id).await.map_err(store_failure)?;
        let mut views = Vec::with_capacity(stores.len());
        for store in &stores {
            views.push(StoreView::new(store, self.credentials_set(store).await?));
        }
        Ok(json_response(StatusCode::OK, &json!({ "stores": views })))
    }

    async fn own_store(&self, principal: &Principal, id: &str) -> Result<ChannelStore, ApiError> {
        let id: StoreId = path_id(id, "store")?;
        self.table
            .channel_store(principal.retailer_id, id)
            .await
            .map_err(store_failure)?
            .ok_or_else(|| ApiError::NotFound(format!("store {id} not found")))
    }

    /// Whether credentials are set, from their names: the API cannot open them.
    async fn credentials_set(&self, store: &ChannelStore) -> Result<bool, ApiError> {
        let names = self.table.credential_names(store.retailer_id, store.id).await.map_err(store_failure)?;
        Ok(!names.is_empty())
    }

    pub(crate) async fn list_vendors(&self, principal: &Principal) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let vendors = self.table.vendors(principal.retailer_id).await.map_err(store_failure)?;
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
            .map_err(store_failure)?
            .ok_or_else(|| ApiError::NotFound(format!("vendor {id} not found")))?;
        let body = json_body::<VendorEnvelope>(request)?.vendor;
        if let Some(notify) = body.notify_customer {
            vendor.notify_customer = notify;
            self.table.save_vendor(&vendor).await.map_err(store_failure)?;
        }
        Ok(json_response(StatusCode::OK, &json!({ "vendor": vendor_view(&vendor) })))
    }

    pub(crate) async fn failed_exports(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let paging = crate::purchase_orders::paging(request, principal)?;
        let (page, (retailer, _)) = tokio::try_join!(
            async { self.table.failed_exports(principal.retailer_id, paging).await.map_err(store_failure) },
            self.retailer(principal)
        )?;
        let views: Vec<ShipmentView> = page.records.iter().map(|s| ShipmentView::new(s, retailer.fees)).collect();
        let metadata = Metadata::for_page(paging, views.len(), page.total_count);
        Ok(json_response(StatusCode::OK, &json!({ "shipments": views, "metadata": metadata })))
    }
}

/// Bounds every string a store request can store (see `shipsync_domain::limits`).
fn check_store_text(body: &StoreBody, errors: &mut ValidationErrors) {
    if let Some(name) = &body.name {
        check_length(errors, "name", name.trim(), MAX_NAME_CHARS);
    }
    if let Some(domain) = &body.shop_domain {
        check_length(errors, "shop_domain", domain.trim(), MAX_DOMAIN_CHARS);
    }
    if let Some(url) = &body.base_url {
        check_length(errors, "base_url", url.trim(), MAX_URL_CHARS);
    }
}
