//! The channel port: what shipsync asks of every sales channel, and [`Channels`], which connects a
//! store to its channel. The rest of shipsync speaks to channels through [`Channel`] only.

use shipsync_domain::vocabulary::ChannelOrderId;
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use serde_json::Value;
use shipsync_domain::ValidationErrors;
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine, IncomingOrder};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelKind, ChannelStore};

use crate::settings::{
    AmazonCredentials, BackMarketCredentials, CustomCredentials, EbayCredentials, GrouponCredentials,
    ShopifyCredentials, TrackingCredentials, WalmartCredentials, WishCredentials, WooCommerceCredentials,
};
use crate::trackers::TrackerRegistry;
use crate::{ChannelEndpoints, ChannelError, EndpointError, ExportOrder, Fulfillment, TokenCache};

pub type ChannelFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ChannelError>> + Send + 'a>>;

/// What shipsync asks of a sales channel. A new channel is a new module implementing this, and nothing else.
pub trait Channel: Send + Sync {
    /// Creates the channel's fulfillment(s) for a shipment; with `check_first`, what an earlier attempt left is adopted.
    fn export<'a>(&'a self, order: &'a ExportOrder, check_first: bool) -> ChannelFuture<'a, Fulfillment>;
    /// Orders changed since `since`, a page at a time (`page`: the cursor the previous page returned).
    fn orders_since<'a>(&'a self, since: DateTime<Utc>, page: Option<&'a str>) -> ChannelFuture<'a, OrdersPage>;
    /// The fulfillments the channel holds for one of its orders.
    fn fulfillments<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Vec<IncomingFulfillment>>;
    /// One order as it stands now, with the fulfillments the channel holds for it (what a
    /// notification that names an order, such as Amazon's `ORDER_CHANGE`, is a trigger for).
    /// `Ok(None)`: the channel does not know it, or holds it back from shipping (Amazon's pending orders).
    fn order<'a>(&'a self, channel_order_id: &'a ChannelOrderId) -> ChannelFuture<'a, Option<IncomingOrder>> {
        let _ = channel_order_id;
        unsupported("reading one order")
    }
    /// Accepts order lines the channel holds until the seller accepts them (Back Market's
    /// validation, `awaiting_acceptance` lines): called once the lines are routed to vendors.
    /// Accepting a line already accepted is not an error. Channels without acceptance do nothing.
    /// Replaces tracking numbers the channel holds for an exported shipment (`(held, new)`
    /// pairs; `order` carries the new ones), where the channel takes corrections (Walmart,
    /// within its window). With `check_first`, an earlier send may have reached the channel:
    /// what it shows already corrected is not sent again. The channel's ids for the shipment
    /// after it.
    fn correct_tracking<'a>(
        &'a self,
        _order: &'a ExportOrder,
        _replaced: &'a [(shipsync_domain::tracking::TrackingNumber, shipsync_domain::tracking::TrackingNumber)],
        _check_first: bool,
    ) -> ChannelFuture<'a, Vec<String>> {
        unsupported("correcting tracking after the export")
    }

    /// Cancels units (or, with `whole_order`, the order) at the channel. With `check_first`, an
    /// earlier call may have reached it: what the channel shows cancelled already is adopted,
    /// not cancelled again. The channel's ids for the cancellation.
    fn cancel<'a>(
        &'a self,
        _cancellation: &'a crate::CancelOrder,
        _check_first: bool,
    ) -> ChannelFuture<'a, Vec<String>> {
        unsupported("cancelling at the channel")
    }

    /// Opens a return at the channel. With `check_first`, one an earlier call made (found by
    /// its reference) is adopted. The channel's id for the return.
    fn create_return<'a>(&'a self, _ret: &'a crate::ReturnOrder, _check_first: bool) -> ChannelFuture<'a, String> {
        unsupported("opening a return at the channel")
    }

    fn accept_lines<'a>(
        &'a self,
        channel_order_id: &'a ChannelOrderId,
        lines: &'a [IncomingLine],
    ) -> ChannelFuture<'a, ()> {
        let _ = (channel_order_id, lines);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// One page of the orders a channel changed since a time.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersPage {
    pub orders: Vec<IncomingOrder>,
    /// Orders listed that could not be read, with the reason and the order as the channel sent it
    /// (for a person: never dropped in silence).
    pub unreadable: Vec<UnreadableOrder>,
    /// Where the next page starts, if there is one.
    pub next: Option<String>,
}

/// Collects the orders of a listed page: each read, or kept with the reason it could not be
/// (logged, and never dropped).
#[derive(Debug, Default)]
pub(crate) struct PageReader {
    orders: Vec<IncomingOrder>,
    unreadable: Vec<UnreadableOrder>,
}

impl PageReader {
    /// Adds what reading `node` (the order as `channel` listed it, its id in `id_field`) gave.
    pub(crate) fn add(&mut self, channel: &str, id_field: &str, node: Value, read: Result<IncomingOrder, String>) {
        match read {
            Ok(order) => self.orders.push(order),
            Err(reason) => {
                tracing::warn!(order = %node[id_field], %reason, "an order {channel} listed could not be read");
                self.unreadable.push(UnreadableOrder { node, reason });
            }
        }
    }

    pub(crate) fn page(self, next: Option<String>) -> OrdersPage {
        OrdersPage { orders: self.orders, unreadable: self.unreadable, next }
    }
}

/// The first name given, trimmed (a recipient's, else a buyer's...); empty if none is.
pub(crate) fn first_name<'a>(candidates: impl IntoIterator<Item = Option<&'a str>>) -> String {
    candidates.into_iter().flatten().map(str::trim).find(|name| !name.is_empty()).unwrap_or_default().to_owned()
}

/// The lines of a fulfillment as a channel lists them: each entry's line id (`id_field`) and
/// `quantity`; `None` if any entry lacks one (a fulfillment read in part would misstate it).
pub(crate) fn fulfillment_lines(entries: &Value, id_field: &str) -> Option<Vec<(String, u32)>> {
    entries
        .as_array()
        .into_iter()
        .flatten()
        .map(|entry| {
            let quantity = entry["quantity"].as_u64().and_then(|quantity| u32::try_from(quantity).ok())?;
            Some((entry[id_field].as_str()?.to_owned(), quantity))
        })
        .collect()
}

/// The page number a listing's `page` cursor holds (1 when there is none); a cursor that is no
/// page number is refused for good.
pub(crate) fn page_number(page: Option<&str>, channel: &str) -> Result<u64, ChannelError> {
    match page {
        Some(page) => page
            .parse::<u64>()
            .ok()
            .filter(|page| *page > 0)
            .ok_or_else(|| ChannelError::permanent(format!("{page:.50} is not a {channel} page number"))),
        None => Ok(1),
    }
}

/// A field's text, not blank; else why not (`<field> is required`).
pub(crate) fn required_text(value: &Value, field: &str) -> Result<String, String> {
    value
        .as_str()
        .filter(|text| !text.trim().is_empty())
        .map(str::to_owned)
        .ok_or_else(|| format!("{field} is required"))
}

/// A field's RFC 3339 time; else why not.
pub(crate) fn required_time(value: &Value, field: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(&required_text(value, field)?)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| format!("{field} is not a time"))
}

/// An order a channel listed that shipsync cannot read.
#[derive(Debug, Clone, PartialEq)]
pub struct UnreadableOrder {
    pub node: Value,
    pub reason: String,
}

/// A call a channel's client cannot make yet: refused for good, so nothing waits on it.
pub(crate) fn unsupported<'a, T: Send + 'a>(what: &str) -> ChannelFuture<'a, T> {
    let error = ChannelError::Unsupported { what: what.to_owned() };
    Box::pin(std::future::ready(Err(error)))
}

/// Why a store's channel cannot be connected: its settings cannot work, so a person must fix them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A credential or setting the channel needs is missing or wrong; each is named.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// The store's settings name no host its channel may be called at.
    #[error("{0}")]
    Endpoint(#[from] EndpointError),
}

impl From<ValidationErrors> for SettingsError {
    fn from(errors: ValidationErrors) -> Self {
        SettingsError::Invalid(errors)
    }
}

/// Connects stores to their channels: one per process, sharing its HTTP client and the OAuth
/// tokens its channels are granted.
#[derive(Debug, Clone)]
pub struct Channels {
    http: reqwest::Client,
    tokens: TokenCache,
    endpoints: ChannelEndpoints,
    /// For sellers' own receivers (custom channels): refuses private addresses. Built on first use.
    receivers: std::sync::Arc<std::sync::OnceLock<Result<reqwest::Client, String>>>,
}

impl Channels {
    pub fn new(http: reqwest::Client, endpoints: ChannelEndpoints) -> Self {
        Self { http, tokens: TokenCache::default(), endpoints, receivers: Default::default() }
    }

    /// The client a custom channel's shipments go through: the public-only one, except where
    /// store overrides are honoured (the local stack's receivers are on loopback).
    fn receiver_http(&self) -> Result<reqwest::Client, SettingsError> {
        if self.endpoints.honours_store_overrides() {
            return Ok(self.http.clone());
        }
        self.receivers
            .get_or_init(|| crate::public_only_http_client().map_err(|error| error.to_string()))
            .clone()
            .map_err(|error| SettingsError::Endpoint(EndpointError(format!("no client for receivers: {error}"))))
    }

    /// Keeps OAuth tokens in `tokens`, so that they outlive this value (a Lambda's invocations).
    pub fn with_token_cache(mut self, tokens: TokenCache) -> Self {
        self.tokens = tokens;
        self
    }

    /// The store's channel, connected with its opened credentials. Err: settings that cannot work (a person must fix them).
    pub fn connect(
        &self,
        store: &ChannelStore,
        credentials: &ChannelCredentials,
    ) -> Result<Box<dyn Channel>, SettingsError> {
        let http = self.http.clone();
        let connection = &store.connection;
        Ok(match store.channel {
            ChannelKind::Shopify => {
                let ShopifyCredentials { access_token } = ShopifyCredentials::from_credentials(credentials)?;
                Box::new(self.endpoints.shopify_client(http, connection, access_token)?)
            }
            ChannelKind::Amazon => {
                let credentials = AmazonCredentials::from_credentials(credentials)?;
                let marketplace = connection.marketplace_id.clone().ok_or_else(|| {
                    ValidationErrors::single(
                        "marketplace_id",
                        "is required for an Amazon store (such as ATVPDKIKX0DER)",
                    )
                })?;
                Box::new(self.endpoints.amazon_client(
                    http,
                    connection,
                    marketplace,
                    credentials,
                    self.tokens.clone(),
                )?)
            }
            ChannelKind::Ebay => {
                let credentials = EbayCredentials::from_credentials(credentials)?;
                Box::new(self.endpoints.ebay_client(http, connection, credentials, self.tokens.clone()))
            }
            ChannelKind::BackMarket => {
                let BackMarketCredentials { api_token } = BackMarketCredentials::from_credentials(credentials)?;
                Box::new(self.endpoints.back_market_client(http, connection, api_token))
            }
            ChannelKind::Walmart => {
                let credentials = WalmartCredentials::from_credentials(credentials)?;
                Box::new(self.endpoints.walmart_client(http, connection, credentials, self.tokens.clone()))
            }
            ChannelKind::Groupon => {
                let credentials = GrouponCredentials::from_credentials(credentials)?;
                Box::new(self.endpoints.groupon_client(http, connection, credentials))
            }
            ChannelKind::Wish => {
                let credentials = WishCredentials::from_credentials(credentials)?;
                Box::new(self.endpoints.wish_client(http, connection, credentials)?)
            }
            ChannelKind::WooCommerce => {
                let keys = WooCommerceCredentials::from_credentials(credentials)?;
                let site = self.endpoints.woocommerce(connection)?;
                Box::new(
                    crate::WooCommerceClient::new(
                        self.receiver_http()?,
                        &site,
                        keys.consumer_key,
                        keys.consumer_secret,
                    )
                    .completing_orders(connection.complete_order_when_shipped),
                )
            }
            ChannelKind::Custom => {
                let CustomCredentials { signing_secret } = CustomCredentials::from_credentials(credentials)?;
                let url = self.endpoints.custom(connection)?;
                Box::new(crate::CustomClient::new(self.receiver_http()?, url, signing_secret))
            }
        })
    }

    /// When the store's credentials hold a token shipsync must renew before then (Wish's, which
    /// every container shares); `None`: they hold none. Unreadable credentials: none either
    /// (connecting says what is wrong with them).
    pub fn renew_by(&self, store: &ChannelStore, credentials: &ChannelCredentials) -> Option<DateTime<Utc>> {
        match store.channel {
            ChannelKind::Wish => {
                WishCredentials::from_credentials(credentials).ok().map(|wish| crate::WishClient::renew_by(&wish))
            }
            _ => None,
        }
    }

    /// Renews the store's token at its channel: the credentials to store in place of
    /// `credentials` (the channel revokes the tokens issued before, so they must be stored
    /// before anyone uses them).
    pub async fn renew_credentials(
        &self,
        store: &ChannelStore,
        credentials: &ChannelCredentials,
    ) -> Result<ChannelCredentials, ChannelError> {
        match store.channel {
            ChannelKind::Wish => {
                let wish = WishCredentials::from_credentials(credentials)
                    .map_err(|errors| ChannelError::permanent(SettingsError::from(errors).to_string()))?;
                let client = self
                    .endpoints
                    .wish_client(self.http.clone(), &store.connection, wish)
                    .map_err(|error| ChannelError::permanent(error.to_string()))?;
                client.renew(credentials).await
            }
            other => {
                Err(ChannelError::Unsupported { what: format!("renewing a {} store's credentials", other.name()) })
            }
        }
    }

    /// The store's carrier-tracking service, where its settings name one (`Ok(None)`: they do
    /// not), connected with its `tracking_api_key`. Err: a provider named without its key.
    pub fn trackers(
        &self,
        store: &ChannelStore,
        credentials: &ChannelCredentials,
    ) -> Result<Option<Box<dyn TrackerRegistry>>, SettingsError> {
        let Some(provider) = store.tracking.provider else {
            return Ok(None);
        };
        let TrackingCredentials { api_key } = TrackingCredentials::from_credentials(credentials, provider)?;
        Ok(Some(self.endpoints.tracker_client(self.http.clone(), &store.connection, provider, api_key)))
    }
}
