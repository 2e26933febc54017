//! Where each channel's calls go, decided in one place. In AWS every host is fixed per channel
//! (Shopify's shop host, Amazon's regional SP-API host and Login with Amazon, eBay's API or its
//! sandbox, Back Market's API, each carrier-tracking service's API): a store's data chooses among
//! them but cannot name a host, so no credential is ever sent anywhere else. Only a deployment
//! built to honour store overrides (the local stack and the tests, never a Lambda) sends a store's
//! calls to its `base_url` (and its tracker registrations to its `tracking_base_url`).

use shipsync_domain::tenant::{ChannelConnection, parse_shop_domain};
use shipsync_domain::tracking::TrackingProvider;

use crate::TokenCache;
use crate::amazon::{AmazonClient, AmazonTokens, LWA_TOKEN_URL};
use crate::backmarket::{BACK_MARKET_ENDPOINT, BackMarketClient};
use crate::ebay::{EBAY_ENDPOINT, EbayClient};
use crate::groupon::{GROUPON_ENDPOINT, GrouponClient};
use crate::settings::{AmazonCredentials, EbayCredentials, WalmartCredentials};
use crate::shopify::ShopifyClient;
use crate::trackers::{AFTERSHIP_ENDPOINT, EASYPOST_ENDPOINT, SHIPPO_ENDPOINT, TrackerClient, TrackerRegistry};
use crate::walmart::{WALMART_ENDPOINT, WalmartClient};

pub const EBAY_SANDBOX_ENDPOINT: &str = "https://api.sandbox.ebay.com";
pub const AMAZON_NA_ENDPOINT: &str = "https://sellingpartnerapi-na.amazon.com";
pub const AMAZON_EU_ENDPOINT: &str = "https://sellingpartnerapi-eu.amazon.com";
pub const AMAZON_FE_ENDPOINT: &str = "https://sellingpartnerapi-fe.amazon.com";

/// Why a store's channel cannot be reached: its settings must be fixed by a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EndpointError(pub String);

/// The channel endpoints of a deployment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelEndpoints {
    honour_store_overrides: bool,
}

impl ChannelEndpoints {
    /// The channels' own hosts; a store's `base_url` and `auth_url` are ignored. What every
    /// Lambda uses.
    pub const fn fixed() -> Self {
        Self { honour_store_overrides: false }
    }

    /// Also sends a store's calls to its `base_url` (and tokens to its `auth_url`): local fakes,
    /// for the local stack and the tests only.
    pub const fn honouring_store_overrides() -> Self {
        Self { honour_store_overrides: true }
    }

    pub const fn honours_store_overrides(self) -> bool {
        self.honour_store_overrides
    }

    fn base_override(self, connection: &ChannelConnection) -> Option<String> {
        self.honoured(connection.base_url.as_deref())
    }

    /// A store's replacement address, where this deployment honours one.
    fn honoured(self, url: Option<&str>) -> Option<String> {
        if !self.honour_store_overrides {
            return None;
        }
        url.map(|url| url.trim().trim_end_matches('/').to_owned()).filter(|u| !u.is_empty())
    }

    /// The carrier-tracking service's API host (the store's `tracking_base_url` only where honoured).
    pub fn tracker_base(self, provider: TrackingProvider, connection: &ChannelConnection) -> String {
        self.honoured(connection.tracking_base_url.as_deref()).unwrap_or_else(|| {
            match provider {
                TrackingProvider::Easypost => EASYPOST_ENDPOINT,
                TrackingProvider::Aftership => AFTERSHIP_ENDPOINT,
                TrackingProvider::Shippo => SHIPPO_ENDPOINT,
            }
            .to_owned()
        })
    }

    pub fn tracker_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        provider: TrackingProvider,
        api_key: String,
    ) -> Box<dyn TrackerRegistry> {
        let base = self.tracker_base(provider, connection);
        Box::new(TrackerClient::new(provider, http, Some(&base), api_key))
    }

    /// `https://{shop}.myshopify.com` for a valid `shop_domain`, the only host a Shopify token goes to.
    pub fn shopify_base(self, connection: &ChannelConnection) -> Result<String, EndpointError> {
        if let Some(base) = self.base_override(connection) {
            return Ok(base);
        }
        let domain = connection
            .shop_domain
            .as_deref()
            .ok_or_else(|| EndpointError("the store has no shop_domain (my-shop.myshopify.com)".into()))?;
        let host =
            parse_shop_domain(domain).map_err(|message| EndpointError(format!("shop_domain {domain:?} {message}")))?;
        Ok(format!("https://{host}"))
    }

    /// The SP-API host of the store's marketplace region, and Login with Amazon.
    pub fn amazon(self, connection: &ChannelConnection) -> Result<(String, String), EndpointError> {
        let marketplace = connection.marketplace_id.as_deref().unwrap_or_default();
        let regional = amazon_endpoint(marketplace)
            .ok_or_else(|| EndpointError(format!("marketplace_id {marketplace:?} is not an Amazon marketplace")))?;
        match self.base_override(connection) {
            Some(base) => {
                let token = connection.auth_url.clone().unwrap_or_else(|| format!("{base}/auth/o2/token"));
                Ok((base, token))
            }
            None => Ok((regional.to_owned(), LWA_TOKEN_URL.to_owned())),
        }
    }

    /// eBay's API host (its sandbox if the store says so) and its OAuth token endpoint.
    pub fn ebay(self, connection: &ChannelConnection) -> (String, String) {
        let base = self
            .base_override(connection)
            .unwrap_or_else(|| if connection.sandbox { EBAY_SANDBOX_ENDPOINT } else { EBAY_ENDPOINT }.to_owned());
        let token = match (&connection.auth_url, self.honour_store_overrides) {
            (Some(url), true) => url.clone(),
            _ => format!("{base}/identity/v1/oauth2/token"),
        };
        (base, token)
    }

    pub fn back_market(self, connection: &ChannelConnection) -> String {
        self.base_override(connection).unwrap_or_else(|| BACK_MARKET_ENDPOINT.to_owned())
    }

    /// Where a custom channel's shipments go: the store's `shipment_url`, which must be https to a
    /// public host name wherever store overrides are not honoured (checked again here, so a URL
    /// saved by a local stack is refused in AWS).
    pub fn custom(self, connection: &ChannelConnection) -> Result<String, EndpointError> {
        let url = connection
            .shipment_url
            .as_deref()
            .ok_or_else(|| EndpointError("the custom channel's store has no shipment_url".into()))?;
        shipsync_domain::tenant::parse_receiver_url(url, self.honour_store_overrides)
            .map_err(|problem| EndpointError(format!("shipment_url {problem}")))
    }

    /// A WooCommerce store's site: `https://` to a public host name wherever store overrides are
    /// not honoured (checked again here, as for a custom channel's receiver).
    pub fn woocommerce(self, connection: &ChannelConnection) -> Result<String, EndpointError> {
        let url = connection
            .site_url
            .as_deref()
            .ok_or_else(|| EndpointError("the WooCommerce store has no site_url".into()))?;
        shipsync_domain::tenant::parse_receiver_url(url, self.honour_store_overrides)
            .map_err(|problem| EndpointError(format!("site_url {problem}")))
    }

    /// Groupon's supplier API.
    pub fn groupon(self, connection: &ChannelConnection) -> String {
        self.base_override(connection).unwrap_or_else(|| GROUPON_ENDPOINT.to_owned())
    }

    pub fn groupon_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        credentials: crate::settings::GrouponCredentials,
    ) -> GrouponClient {
        GrouponClient::new(http, Some(&self.groupon(connection)), credentials.supplier_id, credentials.token)
    }

    /// Wish's Merchant API host (its OAuth endpoints are on it too).
    pub fn wish(self, connection: &ChannelConnection) -> String {
        self.base_override(connection).unwrap_or_else(|| crate::wish::WISH_ENDPOINT.to_owned())
    }

    /// Err: the store has no `origin_country`, which Wish requires with every tracking number.
    pub fn wish_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        credentials: crate::settings::WishCredentials,
    ) -> Result<crate::wish::WishClient, EndpointError> {
        let origin = connection
            .origin_country
            .as_deref()
            .ok_or_else(|| EndpointError("the Wish store has no origin_country".into()))?;
        Ok(crate::wish::WishClient::new(http, Some(&self.wish(connection)), credentials, origin))
    }

    /// Walmart Marketplace's API host (its token endpoint is on it too).
    pub fn walmart(self, connection: &ChannelConnection) -> String {
        self.base_override(connection).unwrap_or_else(|| WALMART_ENDPOINT.to_owned())
    }

    pub fn walmart_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        credentials: WalmartCredentials,
        tokens: TokenCache,
    ) -> WalmartClient {
        WalmartClient::new(http, Some(&self.walmart(connection)), credentials, tokens)
    }

    pub fn shopify_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        access_token: String,
    ) -> Result<ShopifyClient, EndpointError> {
        let base = self.shopify_base(connection)?;
        Ok(ShopifyClient::at(http, &base, access_token))
    }

    pub fn amazon_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        marketplace_id: String,
        credentials: AmazonCredentials,
        tokens: AmazonTokens,
    ) -> Result<AmazonClient, EndpointError> {
        let (api, token) = self.amazon(connection)?;
        Ok(AmazonClient::new(http, Some(&api), Some(&token), marketplace_id, credentials, tokens))
    }

    pub fn ebay_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        credentials: EbayCredentials,
        tokens: TokenCache,
    ) -> EbayClient {
        let (api, token) = self.ebay(connection);
        EbayClient::new(http, Some(&api), Some(&token), credentials, tokens)
    }

    pub fn back_market_client(
        self,
        http: reqwest::Client,
        connection: &ChannelConnection,
        token: String,
    ) -> BackMarketClient {
        BackMarketClient::new(http, Some(&self.back_market(connection)), token)
    }
}

/// The SP-API host serving a marketplace (Amazon's published marketplace ids per region).
pub fn amazon_endpoint(marketplace_id: &str) -> Option<&'static str> {
    const NORTH_AMERICA: &[&str] = &["ATVPDKIKX0DER", "A2EUQ1WTGCTBG2", "A1AM78C64UM0Y8", "A2Q3Y263D00KWC"];
    const EUROPE: &[&str] = &[
        "A28R8C7NBKEWEA",
        "A1RKKUPIHCS9HS",
        "A1F83G8C2ARO7P",
        "A13V1IB3VIYZZH",
        "AMEN7PMS3EDWL",
        "A1805IZSGTT6HS",
        "A1PA6795UKMFR9",
        "APJ6JRA9NG5V4",
        "A2NODRKZP88ZB9",
        "AE08WJ6YKNBMC",
        "A1C3SOZRARQ6R3",
        "ARBP9OOSHTCHU",
        "A33AVAJ2PDY3EV",
        "A17E79C6D8DWNP",
        "A2VIGQ35RCS4UG",
        "A21TJRUUN4KGV",
    ];
    const FAR_EAST: &[&str] = &["A19VAU5U5O7RUS", "A39IBJ37TRP1C6", "A1VC38T7YXB528"];
    if NORTH_AMERICA.contains(&marketplace_id) {
        Some(AMAZON_NA_ENDPOINT)
    } else if EUROPE.contains(&marketplace_id) {
        Some(AMAZON_EU_ENDPOINT)
    } else if FAR_EAST.contains(&marketplace_id) {
        Some(AMAZON_FE_ENDPOINT)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evil(connection: ChannelConnection) -> ChannelConnection {
        ChannelConnection {
            base_url: Some("https://attacker.example".into()),
            auth_url: Some("https://attacker.example/token".into()),
            tracking_base_url: Some("https://attacker.example/tracking".into()),
            ..connection
        }
    }

    #[test]
    fn fixed_endpoints_ignore_a_stores_base_and_auth_urls() {
        let fixed = ChannelEndpoints::fixed();
        let shop = evil(ChannelConnection { shop_domain: Some("my-shop.myshopify.com".into()), ..Default::default() });
        assert_eq!(fixed.shopify_base(&shop), Ok("https://my-shop.myshopify.com".to_owned()));
        let amazon = evil(ChannelConnection { marketplace_id: Some("A1PA6795UKMFR9".into()), ..Default::default() });
        assert_eq!(
            fixed.amazon(&amazon),
            Ok((
                "https://sellingpartnerapi-eu.amazon.com".to_owned(),
                "https://api.amazon.com/auth/o2/token".to_owned()
            ))
        );
        let ebay = evil(ChannelConnection::default());
        assert_eq!(
            fixed.ebay(&ebay),
            ("https://api.ebay.com".to_owned(), "https://api.ebay.com/identity/v1/oauth2/token".to_owned())
        );
        let sandbox = evil(ChannelConnection { sandbox: true, ..Default::default() });
        assert_eq!(fixed.ebay(&sandbox).0, "https://api.sandbox.ebay.com");
        assert_eq!(fixed.ebay(&sandbox).1, "https://api.sandbox.ebay.com/identity/v1/oauth2/token");
        assert_eq!(fixed.back_market(&evil(ChannelConnection::default())), "https://www.backmarket.fr");
        assert_eq!(fixed.walmart(&evil(ChannelConnection::default())), "https://marketplace.walmartapis.com");
        assert_eq!(fixed.groupon(&evil(ChannelConnection::default())), "https://scm.commerceinterface.com/api/v4");
        assert_eq!(fixed.wish(&evil(ChannelConnection::default())), "https://merchant.wish.com");
    }

    #[test]
    fn fixed_endpoints_ignore_a_stores_tracking_base_url() {
        let fixed = ChannelEndpoints::fixed();
        let connection = evil(ChannelConnection::default());
        let base = |provider| fixed.tracker_base(provider, &connection);
        assert_eq!(base(TrackingProvider::Easypost), "https://api.easypost.com");
        assert_eq!(base(TrackingProvider::Aftership), "https://api.aftership.com");
        assert_eq!(base(TrackingProvider::Shippo), "https://api.goshippo.com");
        let local = ChannelEndpoints::honouring_store_overrides();
        assert_eq!(local.tracker_base(TrackingProvider::Shippo, &connection), "https://attacker.example/tracking");
        // The channel's own override does not move the trackers, nor theirs the channel.
        let channel_only = ChannelConnection { base_url: Some("http://127.0.0.1:9".into()), ..Default::default() };
        assert_eq!(local.tracker_base(TrackingProvider::Easypost, &channel_only), "https://api.easypost.com");
        let trackers_only =
            ChannelConnection { tracking_base_url: Some("http://127.0.0.1:9/ ".into()), ..Default::default() };
        assert_eq!(local.tracker_base(TrackingProvider::Easypost, &trackers_only), "http://127.0.0.1:9");
        assert_eq!(local.back_market(&trackers_only), "https://www.backmarket.fr");
    }

    #[test]
    fn a_stored_shop_domain_that_is_not_a_shopify_host_is_refused() {
        for domain in ["attacker.example", "x.myshopify.com@attacker.example", "x.myshopify.com:1", "x.myshopify.com."]
        {
            let connection = ChannelConnection { shop_domain: Some(domain.into()), ..Default::default() };
            assert!(ChannelEndpoints::fixed().shopify_base(&connection).is_err(), "{domain}");
        }
        assert!(ChannelEndpoints::fixed().shopify_base(&ChannelConnection::default()).is_err());
    }

    #[test]
    fn amazon_regions_follow_the_marketplace() {
        assert_eq!(amazon_endpoint("ATVPDKIKX0DER"), Some(AMAZON_NA_ENDPOINT));
        assert_eq!(amazon_endpoint("A1F83G8C2ARO7P"), Some(AMAZON_EU_ENDPOINT));
        assert_eq!(amazon_endpoint("A1VC38T7YXB528"), Some(AMAZON_FE_ENDPOINT));
        assert_eq!(amazon_endpoint("attacker"), None);
        let unknown = ChannelConnection { marketplace_id: Some("XX".into()), ..Default::default() };
        assert!(ChannelEndpoints::fixed().amazon(&unknown).is_err());
    }

    #[test]
    fn overrides_are_honoured_only_where_the_deployment_allows() {
        let local = ChannelEndpoints::honouring_store_overrides();
        let connection = ChannelConnection {
            base_url: Some("http://127.0.0.1:9/".into()),
            marketplace_id: Some("ATVPDKIKX0DER".into()),
            ..Default::default()
        };
        assert_eq!(local.shopify_base(&connection), Ok("http://127.0.0.1:9".to_owned()));
        assert_eq!(local.back_market(&connection), "http://127.0.0.1:9");
        assert_eq!(local.ebay(&connection).1, "http://127.0.0.1:9/identity/v1/oauth2/token");
        assert_eq!(
            local.amazon(&connection).map(|(_, token)| token),
            Ok("http://127.0.0.1:9/auth/o2/token".to_owned())
        );
        assert!(!ChannelEndpoints::default().honours_store_overrides());
    }
}
