//! What each channel needs from a store: its credentials, typed, and what its connection must
//! hold. A store's credentials are a map of names to secrets; this is the only place those names
//! are written, and turning the map into a channel's typed credentials is the only way to read one.

use shipsync_domain::ValidationErrors;
use shipsync_domain::secrets::{ChannelCredentials, TRACKING_WEBHOOK_SECRET_NAME, WEBHOOK_SECRET_NAMES};
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, ChannelStore, TrackingSettings, parse_shop_domain};
use shipsync_domain::tracking::TrackingProvider;

use shipsync_domain::export::CarrierMapping;

use crate::amazon_endpoint;
use crate::walmart::{WALMART_CARRIERS, walmart_carrier};

const ACCESS_TOKEN: &str = "access_token";
/// The webhook secrets' names are the domain's: they decide which secrets are sealed apart.
const WEBHOOK_SECRET: &str = WEBHOOK_SECRET_NAMES[0];
const PREVIOUS_WEBHOOK_SECRET: &str = WEBHOOK_SECRET_NAMES[1];
/// The secret the store's carrier-tracking provider signs the scans posted to the store's own
/// carrier webhook URL with (`tracking.provider`): sealed with the webhook secrets.
const TRACKING_WEBHOOK_SECRET: &str = TRACKING_WEBHOOK_SECRET_NAME;
const LWA_CLIENT_ID: &str = "lwa_client_id";
const LWA_CLIENT_SECRET: &str = "lwa_client_secret";
const REFRESH_TOKEN: &str = "refresh_token";
const EBAY_CLIENT_ID: &str = "ebay_client_id";
const EBAY_CLIENT_SECRET: &str = "ebay_client_secret";
const API_TOKEN: &str = "api_token";
const WALMART_CLIENT_ID: &str = "walmart_client_id";
const WALMART_CLIENT_SECRET: &str = "walmart_client_secret";
const WISH_CLIENT_ID: &str = "wish_client_id";
const WISH_CLIENT_SECRET: &str = "wish_client_secret";
/// When the Wish access token stops working (RFC 3339, as Wish's `expiry_time` gives it).
const ACCESS_TOKEN_EXPIRES_AT: &str = "access_token_expires_at";
const SUPPLIER_ID: &str = "supplier_id";
const SUPPLIER_TOKEN: &str = "token";
const CONSUMER_KEY: &str = "consumer_key";
const CONSUMER_SECRET: &str = "consumer_secret";
/// A custom channel's: the secret shipments posted to its receiver are signed with.
const SIGNING_SECRET: &str = "signing_secret";
/// The key of the store's carrier-tracking service (`tracking.provider`): any channel may hold one.
const TRACKING_API_KEY: &str = "tracking_api_key";
/// What a store that names a tracking provider holds besides its channel's credentials: the key
/// its numbers are registered with and the secret its provider signs scans with.
const TRACKING_CREDENTIALS: [&str; 2] = [TRACKING_API_KEY, TRACKING_WEBHOOK_SECRET];

/// The credentials a channel needs, then those it may also have.
fn credential_spec(kind: ChannelKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        ChannelKind::Shopify => (&[ACCESS_TOKEN], &[WEBHOOK_SECRET, PREVIOUS_WEBHOOK_SECRET]),
        ChannelKind::Amazon => (&[LWA_CLIENT_ID, LWA_CLIENT_SECRET, REFRESH_TOKEN], &[]),
        ChannelKind::Ebay => (&[EBAY_CLIENT_ID, EBAY_CLIENT_SECRET, REFRESH_TOKEN], &[]),
        ChannelKind::BackMarket => (&[API_TOKEN], &[]),
        ChannelKind::Walmart => (&[WALMART_CLIENT_ID, WALMART_CLIENT_SECRET], &[]),
        // Its orders are signed with the webhook secret (without one, none is taken).
        ChannelKind::Custom => (&[SIGNING_SECRET], &[WEBHOOK_SECRET, PREVIOUS_WEBHOOK_SECRET]),
        // Its webhooks' secret is optional: polling alone takes its orders in.
        ChannelKind::WooCommerce => (&[CONSUMER_KEY, CONSUMER_SECRET], &[WEBHOOK_SECRET, PREVIOUS_WEBHOOK_SECRET]),
        ChannelKind::Groupon => (&[SUPPLIER_ID, SUPPLIER_TOKEN], &[]),
        // The access token and its expiry are renewed by shipsync (a person may set the first).
        ChannelKind::Wish => {
            (&[WISH_CLIENT_ID, WISH_CLIENT_SECRET, REFRESH_TOKEN], &[ACCESS_TOKEN, ACCESS_TOKEN_EXPIRES_AT])
        }
    }
}

/// "a Shopify store", as messages name a store of the channel.
fn a_store_of(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Shopify => "a Shopify store",
        ChannelKind::Amazon => "an Amazon store",
        ChannelKind::Ebay => "an eBay store",
        ChannelKind::BackMarket => "a Back Market store",
        ChannelKind::Walmart => "a Walmart store",
        ChannelKind::Custom => "a custom channel's store",
        ChannelKind::WooCommerce => "a WooCommerce store",
        ChannelKind::Groupon => "a Groupon store",
        ChannelKind::Wish => "a Wish store",
    }
}

/// Every credential a store of this channel may hold: any other name is refused, not stored.
pub fn credential_names(kind: ChannelKind) -> Vec<&'static str> {
    let (required, optional) = credential_spec(kind);
    required.iter().chain(optional).copied().chain(TRACKING_CREDENTIALS).collect()
}

/// Checks a store's settings as a person saves them: every credential its channel needs is
/// there, no credential is one its channel does not know, and its connection holds what its
/// channel's calls need (Shopify's shop, Amazon's marketplace). Each problem names its key
/// (`credentials.refresh_token`, `marketplace_id`), never a value.
pub fn validate_settings(
    kind: ChannelKind,
    connection: &ChannelConnection,
    credentials: &ChannelCredentials,
) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let known = credential_names(kind);
    for name in credentials.0.keys() {
        if !known.contains(&name.as_str()) {
            // A name too long to echo is named by its place only.
            let field = if name.len() <= 64 { format!("credentials.{name}") } else { "credentials".to_owned() };
            errors.push(field, format!("is not a credential of {} ({})", a_store_of(kind), known.join(", ")));
        }
    }
    let (required, _) = credential_spec(kind);
    for name in required {
        if credentials.0.get(*name).is_none_or(|value| value.trim().is_empty()) {
            errors.push(format!("credentials.{name}"), format!("is required for {}", a_store_of(kind)));
        }
    }
    // Optional, but a blank key is no key (and an empty secret verifies nothing): left out, the store has none.
    for name in TRACKING_CREDENTIALS {
        if credentials.0.get(name).is_some_and(|value| value.trim().is_empty()) {
            errors.push(format!("credentials.{name}"), "must not be blank (leave it out for none)");
        }
    }
    match kind {
        ChannelKind::Shopify => match connection.shop_domain.as_deref() {
            None => errors.push("shop_domain", "is required for a Shopify store (my-shop.myshopify.com)"),
            Some(domain) => {
                if let Err(message) = parse_shop_domain(domain) {
                    errors.push("shop_domain", message);
                }
            }
        },
        ChannelKind::Amazon => match connection.marketplace_id.as_deref() {
            None => errors.push("marketplace_id", "is required for an Amazon store (such as ATVPDKIKX0DER)"),
            Some(marketplace) if amazon_endpoint(marketplace).is_none() => {
                errors.push("marketplace_id", format!("{marketplace:?} is not an Amazon marketplace"));
            }
            Some(_) => {}
        },
        ChannelKind::Ebay
        | ChannelKind::BackMarket
        | ChannelKind::Walmart
        | ChannelKind::Custom
        | ChannelKind::WooCommerce
        | ChannelKind::Groupon
        | ChannelKind::Wish => {}
    }
    if kind == ChannelKind::Wish
        && let Some(expiry) = credentials.0.get(ACCESS_TOKEN_EXPIRES_AT)
        && chrono::DateTime::parse_from_rfc3339(expiry.trim()).is_err()
    {
        errors.push(
            format!("credentials.{ACCESS_TOKEN_EXPIRES_AT}"),
            "must be a time like 2026-12-31T23:59:59Z (Wish's expiry_time)",
        );
    }
    // A signing secret anyone could guess signs nothing.
    if kind == ChannelKind::Custom
        && credentials.0.get(SIGNING_SECRET).is_some_and(|secret| !secret.trim().is_empty() && secret.len() < 16)
    {
        errors.push(format!("credentials.{SIGNING_SECRET}"), "must be at least 16 characters");
    }
    errors.into_result(())
}

/// Checks a store's carrier mappings against what its channel accepts. Walmart takes a carrier
/// only by its exact name in Walmart's list; any other goes as `otherCarrier`, which Walmart
/// accepts only with a tracking URL, so such a mapping needs a `tracking_url_template`.
pub fn validate_carrier_mappings(kind: ChannelKind, mappings: &[CarrierMapping]) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    if kind == ChannelKind::Walmart {
        for (index, mapping) in mappings.iter().enumerate() {
            let name = mapping.channel_carrier.as_str();
            if WALMART_CARRIERS.contains(&name) || mapping.tracking_url_template.is_some() {
                continue;
            }
            let suggestion = walmart_carrier(name).map(|listed| format!(" (Walmart spells it {listed:?})"));
            errors.push(
                format!("carrier_mappings[{index}].channel_carrier"),
                format!(
                    "{name:.64?} is not one of Walmart's carriers{}: use Walmart's exact name ({}, …), or give a \
                     tracking_url_template to send it as another carrier",
                    suggestion.unwrap_or_default(),
                    WALMART_CARRIERS[..6].join(", ")
                ),
            );
        }
    }
    errors.into_result(())
}

/// Checks a store's settings as a person saves them with new credentials: [`validate_settings`],
/// and [`validate_tracking`] over the credentials given (they replace the stored ones whole).
pub fn validate_store_settings(store: &ChannelStore, credentials: &ChannelCredentials) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let problems = [
        validate_settings(store.channel, &store.connection, credentials),
        validate_tracking(&store.tracking, credentials.0.keys().map(String::as_str)),
    ];
    for problem in problems.iter().filter_map(|result| result.as_ref().err()).flat_map(ValidationErrors::errors) {
        errors.push(problem.field.clone(), problem.message.clone());
    }
    errors.into_result(())
}

/// A store that names a tracking provider must hold its key and the secret its provider signs
/// the store's scans with: `credential_names` are those the store will hold (given now, or
/// already stored when none are given).
pub fn validate_tracking<'a>(
    tracking: &TrackingSettings,
    credential_names: impl IntoIterator<Item = &'a str>,
) -> Result<(), ValidationErrors> {
    let Some(provider) = tracking.provider else { return Ok(()) };
    let held: Vec<&str> = credential_names.into_iter().collect();
    let mut errors = ValidationErrors::new();
    if !held.contains(&TRACKING_API_KEY) {
        errors.push(
            format!("credentials.{TRACKING_API_KEY}"),
            format!("is required for a store that registers tracking numbers with {}", provider.name()),
        );
    }
    if !held.contains(&TRACKING_WEBHOOK_SECRET) {
        errors.push(
            format!("credentials.{TRACKING_WEBHOOK_SECRET}"),
            format!(
                "is required for a store that registers tracking numbers with {} (the secret its webhooks to \
                 /carrier_webhooks/{}/<store id> are signed with)",
                provider.name(),
                provider.name()
            ),
        );
    }
    errors.into_result(())
}

fn missing_tracking_key(provider: TrackingProvider) -> ValidationErrors {
    ValidationErrors::single(
        format!("credentials.{TRACKING_API_KEY}"),
        format!("is required for a store that registers tracking numbers with {}", provider.name()),
    )
}

/// The key a store's calls to its carrier-tracking service are made with.
#[derive(Clone)]
pub struct TrackingCredentials {
    pub api_key: String,
}

impl TrackingCredentials {
    pub fn from_credentials(
        credentials: &ChannelCredentials,
        provider: TrackingProvider,
    ) -> Result<Self, ValidationErrors> {
        let api_key = credentials.0.get(TRACKING_API_KEY).filter(|key| !key.trim().is_empty());
        api_key.map(|api_key| Self { api_key: api_key.clone() }).ok_or_else(|| missing_tracking_key(provider))
    }
}

/// Secrets never reach a log.
impl std::fmt::Debug for TrackingCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("TrackingCredentials").finish_non_exhaustive()
    }
}

/// A credential the channel needs, or the error naming it.
fn required(credentials: &ChannelCredentials, kind: ChannelKind, name: &str) -> Result<String, ValidationErrors> {
    credentials.0.get(name).filter(|value| !value.trim().is_empty()).cloned().ok_or_else(|| {
        ValidationErrors::single(format!("credentials.{name}"), format!("is required for {}", a_store_of(kind)))
    })
}

/// Reads several required credentials, naming every one that is missing.
fn required_all<const N: usize>(
    credentials: &ChannelCredentials,
    kind: ChannelKind,
    names: [&str; N],
) -> Result<[String; N], ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let values = names.map(|name| match required(credentials, kind, name) {
        Ok(value) => value,
        Err(missing) => {
            for problem in missing.errors() {
                errors.push(problem.field.clone(), problem.message.clone());
            }
            String::new()
        }
    });
    errors.into_result(values)
}

/// What a Shopify store's API calls are made with.
#[derive(Clone)]
pub struct ShopifyCredentials {
    pub access_token: String,
}

impl ShopifyCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        Ok(Self { access_token: required(credentials, ChannelKind::Shopify, ACCESS_TOKEN)? })
    }
}

/// Secrets never reach a log.
impl std::fmt::Debug for ShopifyCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("ShopifyCredentials").finish_non_exhaustive()
    }
}

/// The secrets a Shopify store's webhooks are signed with: the current one and, during a
/// rotation, the one being retired. Sealed apart from the API credentials (see
/// `shipsync_domain::secrets::SecretPurpose`), so the webhook function opens only these.
#[derive(Clone, Default)]
pub struct ShopifyWebhookSecrets {
    pub webhook_secret: Option<String>,
    pub previous_webhook_secret: Option<String>,
}

impl ShopifyWebhookSecrets {
    /// Reads the secrets from opened credentials; an empty one counts as none (anyone could sign with it).
    pub fn from_credentials(credentials: &ChannelCredentials) -> Self {
        let secret = |name: &str| credentials.0.get(name).filter(|secret| !secret.trim().is_empty()).cloned();
        Self { webhook_secret: secret(WEBHOOK_SECRET), previous_webhook_secret: secret(PREVIOUS_WEBHOOK_SECRET) }
    }

    /// The secrets a delivery may be signed with, the current one first.
    pub fn accepted(&self) -> Vec<&str> {
        [&self.webhook_secret, &self.previous_webhook_secret].into_iter().flatten().map(String::as_str).collect()
    }
}

/// Secrets never reach a log: only which are set.
impl std::fmt::Debug for ShopifyWebhookSecrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ShopifyWebhookSecrets")
            .field("webhook_secret", &self.webhook_secret.is_some())
            .field("previous_webhook_secret", &self.previous_webhook_secret.is_some())
            .finish()
    }
}

/// What a seller authorises shipsync with on Amazon (Login with Amazon).
#[derive(Clone)]
pub struct AmazonCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

impl AmazonCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        let [client_id, client_secret, refresh_token] =
            required_all(credentials, ChannelKind::Amazon, [LWA_CLIENT_ID, LWA_CLIENT_SECRET, REFRESH_TOKEN])?;
        Ok(Self { client_id, client_secret, refresh_token })
    }
}

/// Secrets never reach a log: only the client id shows.
impl std::fmt::Debug for AmazonCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("AmazonCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// What a seller authorises shipsync with on eBay (OAuth, refreshed).
#[derive(Clone)]
pub struct EbayCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
}

impl EbayCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        let [client_id, client_secret, refresh_token] =
            required_all(credentials, ChannelKind::Ebay, [EBAY_CLIENT_ID, EBAY_CLIENT_SECRET, REFRESH_TOKEN])?;
        Ok(Self { client_id, client_secret, refresh_token })
    }
}

/// Secrets never reach a log: only the client id shows.
impl std::fmt::Debug for EbayCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("EbayCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

/// A Back Market seller's API token.
#[derive(Clone)]
pub struct BackMarketCredentials {
    pub api_token: String,
}

impl BackMarketCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        Ok(Self { api_token: required(credentials, ChannelKind::BackMarket, API_TOKEN)? })
    }
}

/// Secrets never reach a log.
impl std::fmt::Debug for BackMarketCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("BackMarketCredentials").finish_non_exhaustive()
    }
}

/// A Groupon supplier's id and API token.
#[derive(Clone)]
pub struct GrouponCredentials {
    pub supplier_id: String,
    pub token: String,
}

impl GrouponCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        let [supplier_id, token] = required_all(credentials, ChannelKind::Groupon, [SUPPLIER_ID, SUPPLIER_TOKEN])?;
        Ok(Self { supplier_id, token })
    }
}

/// Secrets never reach a log: only the supplier shows.
impl std::fmt::Debug for GrouponCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("GrouponCredentials").field("supplier_id", &self.supplier_id).finish_non_exhaustive()
    }
}

/// What a Wish merchant authorises shipsync with (OAuth 2, refreshed). Wish revokes every
/// access token of the app when one is refreshed, so the current token is kept with the
/// credentials (sealed), for every container to use, and renewed by one at a time.
#[derive(Clone, PartialEq, Eq)]
pub struct WishCredentials {
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    /// None until the first renewal (or a person sets it).
    pub access_token: Option<String>,
    /// When the access token stops working; None: unknown, so renewed at once.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl WishCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        let [client_id, client_secret, refresh_token] =
            required_all(credentials, ChannelKind::Wish, [WISH_CLIENT_ID, WISH_CLIENT_SECRET, REFRESH_TOKEN])?;
        let access_token = credentials.0.get(ACCESS_TOKEN).map(|token| token.trim()).filter(|token| !token.is_empty());
        let expires_at = credentials
            .0
            .get(ACCESS_TOKEN_EXPIRES_AT)
            .and_then(|time| chrono::DateTime::parse_from_rfc3339(time.trim()).ok())
            .map(|time| time.to_utc());
        Ok(Self { client_id, client_secret, refresh_token, access_token: access_token.map(str::to_owned), expires_at })
    }

    /// The credentials to store: these, with a renewed token pair and its expiry, the rest kept.
    pub fn renewed(
        stored: &ChannelCredentials,
        access_token: &str,
        refresh_token: &str,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> ChannelCredentials {
        let mut renewed = stored.clone();
        renewed.0.insert(ACCESS_TOKEN.to_owned(), access_token.to_owned());
        renewed.0.insert(REFRESH_TOKEN.to_owned(), refresh_token.to_owned());
        renewed.0.insert(
            ACCESS_TOKEN_EXPIRES_AT.to_owned(),
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        );
        renewed
    }
}

/// Secrets never reach a log: only the client id and the token's expiry show.
impl std::fmt::Debug for WishCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WishCredentials")
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A WooCommerce site's REST API keys.
#[derive(Clone)]
pub struct WooCommerceCredentials {
    pub consumer_key: String,
    pub consumer_secret: String,
}

impl WooCommerceCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        let [consumer_key, consumer_secret] =
            required_all(credentials, ChannelKind::WooCommerce, [CONSUMER_KEY, CONSUMER_SECRET])?;
        Ok(Self { consumer_key, consumer_secret })
    }
}

/// Secrets never reach a log.
impl std::fmt::Debug for WooCommerceCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("WooCommerceCredentials").finish_non_exhaustive()
    }
}

/// What a custom channel's shipments are signed with.
#[derive(Clone)]
pub struct CustomCredentials {
    pub signing_secret: String,
}

impl CustomCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        Ok(Self { signing_secret: required(credentials, ChannelKind::Custom, SIGNING_SECRET)? })
    }
}

/// Secrets never reach a log.
impl std::fmt::Debug for CustomCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("CustomCredentials").finish_non_exhaustive()
    }
}

/// A Walmart seller's API keys (client credentials, exchanged for 15-minute tokens).
#[derive(Clone)]
pub struct WalmartCredentials {
    pub client_id: String,
    pub client_secret: String,
}

impl WalmartCredentials {
    pub fn from_credentials(credentials: &ChannelCredentials) -> Result<Self, ValidationErrors> {
        let [client_id, client_secret] =
            required_all(credentials, ChannelKind::Walmart, [WALMART_CLIENT_ID, WALMART_CLIENT_SECRET])?;
        Ok(Self { client_id, client_secret })
    }
}

/// Secrets never reach a log: only the client id shows.
impl std::fmt::Debug for WalmartCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("WalmartCredentials").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shipsync_domain::secrets::SecretPurpose;

    fn credentials(pairs: &[(&str, &str)]) -> ChannelCredentials {
        ChannelCredentials(pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect())
    }

    fn fields(result: Result<(), ValidationErrors>) -> Vec<String> {
        result.err().map(|errors| errors.errors().iter().map(|e| e.field.clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn each_missing_or_unknown_key_is_named() {
        let amazon = ChannelConnection { marketplace_id: Some("ATVPDKIKX0DER".into()), ..Default::default() };
        assert_eq!(
            fields(validate_settings(ChannelKind::Amazon, &amazon, &credentials(&[("lwa_client_id", "id")]))),
            ["credentials.lwa_client_secret", "credentials.refresh_token"]
        );
        let complete = credentials(&[("lwa_client_id", "id"), ("lwa_client_secret", "s"), ("refresh_token", "r")]);
        assert_eq!(validate_settings(ChannelKind::Amazon, &amazon, &complete), Ok(()));
        assert_eq!(
            fields(validate_settings(ChannelKind::Amazon, &ChannelConnection::default(), &complete)),
            ["marketplace_id"]
        );
        let elsewhere = ChannelConnection { marketplace_id: Some("XX".into()), ..Default::default() };
        assert_eq!(fields(validate_settings(ChannelKind::Amazon, &elsewhere, &complete)), ["marketplace_id"]);
        assert_eq!(
            fields(validate_settings(ChannelKind::BackMarket, &ChannelConnection::default(), &complete)),
            [
                "credentials.lwa_client_id",
                "credentials.lwa_client_secret",
                "credentials.refresh_token",
                "credentials.api_token"
            ]
        );
        let shop = ChannelConnection { shop_domain: Some("my-shop.myshopify.com".into()), ..Default::default() };
        let blank = credentials(&[("access_token", " "), ("webhook_secret", "w")]);
        assert_eq!(fields(validate_settings(ChannelKind::Shopify, &shop, &blank)), ["credentials.access_token"]);
        assert_eq!(
            fields(validate_settings(
                ChannelKind::Shopify,
                &ChannelConnection::default(),
                &credentials(&[("access_token", "t")])
            )),
            ["shop_domain"]
        );
        let ebay = credentials(&[("ebay_client_id", "id"), ("ebay_client_secret", "s"), ("refresh_token", "r")]);
        assert_eq!(validate_settings(ChannelKind::Ebay, &ChannelConnection::default(), &ebay), Ok(()));
    }

    #[test]
    fn walmart_mappings_name_walmarts_own_carriers_or_bring_a_tracking_url() {
        let mapping = |carrier: &str, template: Option<&str>| CarrierMapping {
            shipper_id: shipsync_domain::ids::CarrierId::new_unchecked(1),
            channel_carrier: carrier.to_owned(),
            tracking_url_template: template.map(str::to_owned),
        };
        let mappings = [
            mapping("FedEx", None),
            mapping("fedex", None),
            mapping("Pony Express", None),
            mapping("Pony Express", Some("https://pony.example/{tracking}")),
        ];
        let refused = validate_carrier_mappings(ChannelKind::Walmart, &mappings).expect_err("two refused");
        let fields: Vec<&str> = refused.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["carrier_mappings[1].channel_carrier", "carrier_mappings[2].channel_carrier"]);
        assert!(refused.errors()[0].message.contains("Walmart spells it \"FedEx\""), "{refused}");
        assert_eq!(validate_carrier_mappings(ChannelKind::Ebay, &mappings), Ok(()));
        let keys = credentials(&[("walmart_client_id", "id"), ("walmart_client_secret", "secret-9")]);
        let read = WalmartCredentials::from_credentials(&keys).expect("complete");
        assert_eq!(read.client_id, "id");
        assert!(!format!("{read:?}").contains("secret-9"));
        assert_eq!(validate_settings(ChannelKind::Walmart, &ChannelConnection::default(), &keys), Ok(()));
        assert_eq!(
            fields_of(validate_settings(ChannelKind::Walmart, &ChannelConnection::default(), &credentials(&[]))),
            ["credentials.walmart_client_id", "credentials.walmart_client_secret"]
        );
    }

    fn fields_of(result: Result<(), ValidationErrors>) -> Vec<String> {
        fields(result)
    }

    #[test]
    fn typed_credentials_read_their_keys_and_show_no_secret() {
        let amazon =
            credentials(&[("lwa_client_id", "id"), ("lwa_client_secret", "secret-1"), ("refresh_token", "refresh-1")]);
        let read = AmazonCredentials::from_credentials(&amazon).expect("complete");
        assert_eq!((read.client_id.as_str(), read.refresh_token.as_str()), ("id", "refresh-1"));
        let shown = format!("{read:?}");
        assert!(!shown.contains("secret-1") && !shown.contains("refresh-1"), "{shown}");
        let missing = EbayCredentials::from_credentials(&amazon).expect_err("no eBay keys");
        assert_eq!(missing.errors().len(), 2, "{missing}");
        assert_eq!(
            ShopifyCredentials::from_credentials(&credentials(&[("access_token", "shpat")]))
                .map(|c| c.access_token)
                .ok(),
            Some("shpat".to_owned())
        );
        let token = BackMarketCredentials::from_credentials(&credentials(&[("api_token", "bm")])).expect("token");
        assert_eq!(token.api_token, "bm");
    }

    #[test]
    fn webhook_secrets_come_current_first_and_empty_ones_count_as_none() {
        let both = credentials(&[("webhook_secret", "new"), ("previous_webhook_secret", "old")]);
        assert_eq!(ShopifyWebhookSecrets::from_credentials(&both).accepted(), ["new", "old"]);
        let cleared = credentials(&[("webhook_secret", " "), ("previous_webhook_secret", "old")]);
        assert_eq!(ShopifyWebhookSecrets::from_credentials(&cleared).accepted(), ["old"]);
        assert!(ShopifyWebhookSecrets::from_credentials(&ChannelCredentials::default()).accepted().is_empty());
        assert_eq!(
            credential_names(ChannelKind::Shopify),
            [
                "access_token",
                "webhook_secret",
                "previous_webhook_secret",
                "tracking_api_key",
                "tracking_webhook_secret"
            ]
        );
        let tracking = credentials(&[("tracking_webhook_secret", "whsec_1"), ("webhook_secret", "shopify")]);
        assert_eq!(tracking.tracking_webhook_secret(), Some("whsec_1"));
        assert_eq!(credentials(&[("tracking_webhook_secret", " ")]).tracking_webhook_secret(), None);
        assert_eq!(credentials(&[("webhook_secret", "shopify")]).tracking_webhook_secret(), None);
        assert_eq!(
            SecretPurpose::of("tracking_webhook_secret"),
            SecretPurpose::Webhook,
            "sealed apart from the API key"
        );
        assert_eq!(SecretPurpose::of("tracking_api_key"), SecretPurpose::Channel);
    }

    fn store(provider: Option<TrackingProvider>) -> ChannelStore {
        let mut store = ChannelStore::new(
            shipsync_domain::ids::StoreId::new_unchecked(7),
            shipsync_domain::ids::RetailerId::new_unchecked(1),
            "Store",
            ChannelKind::BackMarket,
        );
        store.tracking.provider = provider;
        store
    }

    #[test]
    fn a_store_that_names_a_tracking_provider_must_hold_its_key_and_webhook_secret() {
        let token = credentials(&[("api_token", "bm")]);
        let with_key =
            credentials(&[("api_token", "bm"), ("tracking_api_key", "EZAK1"), ("tracking_webhook_secret", "whsec")]);
        assert_eq!(validate_store_settings(&store(None), &token), Ok(()));
        assert_eq!(validate_store_settings(&store(None), &with_key), Ok(()));
        assert_eq!(validate_store_settings(&store(Some(TrackingProvider::Easypost)), &with_key), Ok(()));
        let missing = validate_store_settings(&store(Some(TrackingProvider::Shippo)), &token);
        assert_eq!(
            missing.err().map(|errors| errors.messages()),
            Some(vec![
                "credentials.tracking_api_key is required for a store that registers tracking numbers with shippo"
                    .into(),
                "credentials.tracking_webhook_secret is required for a store that registers tracking numbers with \
                 shippo (the secret its webhooks to /carrier_webhooks/shippo/<store id> are signed with)"
                    .into(),
            ])
        );
        // The key without the secret: the provider's scans could not be verified.
        let key_only = credentials(&[("api_token", "bm"), ("tracking_api_key", "EZAK1")]);
        assert_eq!(
            fields(validate_store_settings(&store(Some(TrackingProvider::Easypost)), &key_only)),
            ["credentials.tracking_webhook_secret"]
        );
        let blank = credentials(&[("api_token", "bm"), ("tracking_api_key", " "), ("tracking_webhook_secret", "s")]);
        assert_eq!(
            fields(validate_store_settings(&store(Some(TrackingProvider::Aftership)), &blank)),
            ["credentials.tracking_api_key"]
        );
        assert_eq!(fields(validate_store_settings(&store(None), &blank)), ["credentials.tracking_api_key"]);
        let blank_secret = credentials(&[("api_token", "bm"), ("tracking_webhook_secret", "")]);
        assert_eq!(
            fields(validate_store_settings(&store(None), &blank_secret)),
            ["credentials.tracking_webhook_secret"]
        );
        // Saved without new credentials: the names of the stored ones decide.
        let tracking = store(Some(TrackingProvider::Easypost)).tracking;
        assert_eq!(validate_tracking(&tracking, ["api_token", "tracking_api_key", "tracking_webhook_secret"]), Ok(()));
        assert_eq!(
            fields(validate_tracking(&tracking, ["api_token"])),
            ["credentials.tracking_api_key", "credentials.tracking_webhook_secret"]
        );
        assert_eq!(fields(validate_tracking(&tracking, ["tracking_api_key"])), ["credentials.tracking_webhook_secret"]);
        assert_eq!(validate_tracking(&TrackingSettings::default(), []), Ok(()));
    }

    #[test]
    fn the_tracking_key_is_read_only_when_set_and_never_shown() {
        let read = TrackingCredentials::from_credentials(
            &credentials(&[("tracking_api_key", "shippo_live_1")]),
            TrackingProvider::Shippo,
        )
        .expect("set");
        assert_eq!(read.api_key, "shippo_live_1");
        assert!(!format!("{read:?}").contains("shippo_live_1"));
        let missing = TrackingCredentials::from_credentials(
            &credentials(&[("tracking_api_key", "")]),
            TrackingProvider::Easypost,
        )
        .expect_err("blank");
        assert_eq!(missing.errors()[0].field, "credentials.tracking_api_key");
    }
}
