//! Carrier-tracking services behind one port, [`TrackerRegistry`]: a store that confirms on
//! movement registers each tracking number with its provider (EasyPost, AfterShip or Shippo), so
//! that the parcel's first scan reaches shipsync as a webhook. A number the provider already
//! tracks counts as registered. Errors say, as a channel's do, whether a retry can help.
//!
//! Shippo is not idempotent: registering a number twice makes it send every update twice. So
//! shipsync registers a number once: the caller records what it registered and skips it after.

use std::time::Duration;

use serde_json::{Value, json};
use shipsync_domain::carrier::StandardCarrier;
use shipsync_domain::tracking::{TrackingNumber, TrackingProvider};

use crate::{ChannelError, ChannelFuture, channel_wait, retry_after};

pub const EASYPOST_ENDPOINT: &str = "https://api.easypost.com";
pub const AFTERSHIP_ENDPOINT: &str = "https://api.aftership.com";
pub const SHIPPO_ENDPOINT: &str = "https://api.goshippo.com";

/// AfterShip versions its Tracking API by month in the path, and each version changes shapes
/// (`data` vs `data.tracking`, field names): pinned so that what is sent and read stays the one
/// tested here until it is moved on purpose (intake.md §2: the quickstart's current version).
pub const AFTERSHIP_API_VERSION: &str = "2026-07";

/// Registers tracking numbers with a store's carrier-tracking service.
pub trait TrackerRegistry: Send + Sync {
    fn provider(&self) -> TrackingProvider;
    /// Asks the provider to track `number`; `carrier` when the shipment's carrier is a standard one
    /// (EasyPost and AfterShip detect it otherwise; Shippo cannot, and refuses without one). A
    /// number the provider already tracks is registered, not an error.
    fn register<'a>(
        &'a self,
        number: &'a TrackingNumber,
        carrier: Option<StandardCarrier>,
    ) -> ChannelFuture<'a, Registered>;
}

/// The provider tracks the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// The provider's id for its tracker, when its answer names one (EasyPost `trk_…`, AfterShip's id).
    pub tracker_id: Option<String>,
    /// The provider said it already tracked the number (AfterShip's 4003). EasyPost answers a
    /// repeat with its existing tracker as it answers a new one, so there it stays false.
    pub already_registered: bool,
}

/// How a provider names a standard carrier. Sources: EasyPost's carrier strings (`USPS`,
/// `DHLExpress`; docs.easypost.com tracking guide and carrier metadata, where DHL eCommerce is
/// `DHLEcommerceSolutions`), AfterShip's courier slugs (aftership.com/docs/tracking supported
/// couriers: `dhl` is DHL Express, `dhl-global-mail` is DHL eCommerce), Shippo's carrier tokens
/// (docs.goshippo.com/docs/tracking/trackingcarriers).
pub fn carrier_code(provider: TrackingProvider, carrier: StandardCarrier) -> &'static str {
    use StandardCarrier::{DhlEcommerce, DhlExpress, FedEx, Ups, Usps};
    match provider {
        TrackingProvider::Easypost => match carrier {
            Ups => "UPS",
            FedEx => "FedEx",
            Usps => "USPS",
            DhlExpress => "DHLExpress",
            DhlEcommerce => "DHLEcommerceSolutions",
        },
        TrackingProvider::Aftership => match carrier {
            Ups => "ups",
            FedEx => "fedex",
            Usps => "usps",
            DhlExpress => "dhl",
            DhlEcommerce => "dhl-global-mail",
        },
        TrackingProvider::Shippo => match carrier {
            Ups => "ups",
            FedEx => "fedex",
            Usps => "usps",
            DhlExpress => "dhl_express",
            DhlEcommerce => "dhl_ecommerce",
        },
    }
}

/// The provider as messages name it.
fn display(provider: TrackingProvider) -> &'static str {
    match provider {
        TrackingProvider::Easypost => "EasyPost",
        TrackingProvider::Aftership => "AfterShip",
        TrackingProvider::Shippo => "Shippo",
    }
}

/// A provider's answer, read whole: the status, the wait it asked for, its body as sent and as JSON.
struct Answer {
    status: reqwest::StatusCode,
    wait: Option<Duration>,
    text: String,
    body: Value,
}

impl Answer {
    async fn read(provider: TrackingProvider, response: reqwest::Response) -> Result<Self, ChannelError> {
        let status = response.status();
        let wait = provider_wait(response.headers(), chrono::Utc::now());
        let text = response.text().await.map_err(|error| unreachable(provider, &error))?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Self { status, wait, text, body })
    }

    /// The error this answer's status means: a rate limit or server error is worth a retry
    /// (after the wait it asked for), anything else needs a person. `detail`: the provider's
    /// own words, else the start of its body.
    fn refusal(&self, provider: TrackingProvider, number: &TrackingNumber, detail: Option<String>) -> ChannelError {
        let detail = detail.unwrap_or_else(|| self.text.chars().take(300).collect());
        let message = format!(
            "{} answered HTTP {} for tracking number {number}: {detail}",
            display(provider),
            self.status.as_u16()
        );
        if self.status == reqwest::StatusCode::TOO_MANY_REQUESTS || self.status.is_server_error() {
            ChannelError::Retryable { message, retry_after: self.wait }
        } else {
            ChannelError::Permanent { message }
        }
    }
}

/// The wait a provider's answer asks for: `Retry-After`, else the time until `X-RateLimit-Reset`
/// (a Unix time: AfterShip's rate-limit headers), clamped as every channel wait is.
fn provider_wait(headers: &reqwest::header::HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    retry_after(headers).or_else(|| {
        let reset = headers.get("x-ratelimit-reset")?.to_str().ok()?.trim().parse::<i64>().ok()?;
        // i64 seconds to f64 loses precision only far beyond the clamp.
        channel_wait(reset.saturating_sub(now.timestamp()) as f64)
    })
}

/// A request that got no answer: retryable, since a registration repeated is harmless where the
/// provider is idempotent, and the caller's record keeps Shippo's to one. A key that cannot be
/// sent as a header is the store's to fix.
fn unreachable(provider: TrackingProvider, error: &reqwest::Error) -> ChannelError {
    let name = display(provider);
    if error.is_builder() {
        return ChannelError::permanent(format!(
            "the store's credentials.tracking_api_key cannot be sent to {name}: it holds characters no header may"
        ));
    }
    ChannelError::retryable(format!("request to {name} {}", crate::failure_kind(error)))
}

/// A string field of a JSON answer.
fn text_at(value: &Value) -> Option<String> {
    value.as_str().filter(|text| !text.trim().is_empty()).map(|text| text.chars().take(300).collect())
}

/// A store's tracking provider: EasyPost (`POST /v2/trackers`, the API key as the Basic auth
/// user; a number it already tracks, same code and carrier within three months, comes back as its
/// existing tracker), AfterShip (`POST /tracking/{version}/trackings`, the key in `as-api-key`;
/// a tracking it has answers `meta.code` 4003) or Shippo (`POST /tracks/`, the key as
/// `ShippoToken`; it needs the carrier and is not idempotent, see the module's note).
/// No `Debug`: it holds the store's key.
#[derive(Clone)]
pub struct TrackerClient {
    provider: TrackingProvider,
    http: reqwest::Client,
    endpoint: String,
    api_key: String,
}

/// AfterShip's `meta.code` for a tracking it already has.
const AFTERSHIP_ALREADY_EXISTS: i64 = 4003;

impl TrackerClient {
    /// A client of `provider` at its own host, or at `endpoint` (a local fake).
    pub fn new(provider: TrackingProvider, http: reqwest::Client, endpoint: Option<&str>, api_key: String) -> Self {
        let host = match provider {
            TrackingProvider::Easypost => EASYPOST_ENDPOINT,
            TrackingProvider::Aftership => AFTERSHIP_ENDPOINT,
            TrackingProvider::Shippo => SHIPPO_ENDPOINT,
        };
        Self { provider, http, endpoint: endpoint.unwrap_or(host).trim_end_matches('/').to_owned(), api_key }
    }

    async fn easypost(
        &self,
        number: &TrackingNumber,
        carrier: Option<StandardCarrier>,
    ) -> Result<Registered, ChannelError> {
        const PROVIDER: TrackingProvider = TrackingProvider::Easypost;
        let mut tracker = json!({ "tracking_code": number.as_str() });
        if let Some(carrier) = carrier {
            tracker["carrier"] = json!(carrier_code(PROVIDER, carrier));
        }
        let response = self
            .http
            .post(format!("{}/v2/trackers", self.endpoint))
            .basic_auth(&self.api_key, Some(""))
            .json(&json!({ "tracker": tracker }))
            .send()
            .await
            .map_err(|error| unreachable(PROVIDER, &error))?;
        let answer = Answer::read(PROVIDER, response).await?;
        if answer.status.is_success() {
            return Ok(Registered { tracker_id: text_at(&answer.body["id"]), already_registered: false });
        }
        // `{"error":{"code":"TRACKER.CREATE.ERROR","message":"…"}}`
        let error = &answer.body["error"];
        let detail = text_at(&error["message"]).map(|message| {
            text_at(&error["code"]).map_or_else(|| message.clone(), |code| format!("{message} ({code})"))
        });
        Err(answer.refusal(PROVIDER, number, detail))
    }
    async fn aftership(
        &self,
        number: &TrackingNumber,
        carrier: Option<StandardCarrier>,
    ) -> Result<Registered, ChannelError> {
        const PROVIDER: TrackingProvider = TrackingProvider::Aftership;
        let mut body = json!({ "tracking_number": number.as_str() });
        if let Some(carrier) = carrier {
            body["slug"] = json!(carrier_code(PROVIDER, carrier));
        }
        let response = self
            .http
            .post(format!("{}/tracking/{AFTERSHIP_API_VERSION}/trackings", self.endpoint))
            .header("as-api-key", &self.api_key)
            .json(&body)
            .send()
            .await
            .map_err(|error| unreachable(PROVIDER, &error))?;
        let answer = Answer::read(PROVIDER, response).await?;
        // The tracking itself is `data` in this version, `data.tracking` in older ones.
        let data = &answer.body["data"];
        let tracker_id = text_at(&data["id"]).or_else(|| text_at(&data["tracking"]["id"]));
        if answer.status.is_success() {
            return Ok(Registered { tracker_id, already_registered: false });
        }
        let meta = &answer.body["meta"];
        let code = meta["code"].as_i64();
        if answer.status.is_client_error() && code == Some(AFTERSHIP_ALREADY_EXISTS) {
            return Ok(Registered { tracker_id, already_registered: true });
        }
        let hint = match code {
            Some(4005 | 4017) => " (the number is not one AfterShip can track)",
            Some(4010) => " (the carrier is not one AfterShip knows)",
            Some(4012) => {
                " (AfterShip cannot tell the carrier: give the shipment a standard carrier: UPS, FedEx, USPS or DHL)"
            }
            _ => "",
        };
        let detail = text_at(&meta["message"]).map(|message| match code {
            Some(code) => format!("{message} [{code}]{hint}"),
            None => message,
        });
        Err(answer.refusal(PROVIDER, number, detail))
    }
    async fn shippo(
        &self,
        number: &TrackingNumber,
        carrier: Option<StandardCarrier>,
    ) -> Result<Registered, ChannelError> {
        const PROVIDER: TrackingProvider = TrackingProvider::Shippo;
        let Some(carrier) = carrier else {
            return Err(ChannelError::permanent(format!(
                "Shippo needs the carrier to track {number}, and the shipment's carrier is not a standard one: \
                 ship it with UPS, FedEx, USPS, DHL Express or DHL eCommerce, or have the store register numbers \
                 with EasyPost or AfterShip, which detect the carrier"
            )));
        };
        let response = self
            .http
            .post(format!("{}/tracks/", self.endpoint))
            .header(reqwest::header::AUTHORIZATION, format!("ShippoToken {}", self.api_key))
            .json(&json!({ "carrier": carrier_code(PROVIDER, carrier), "tracking_number": number.as_str() }))
            .send()
            .await
            .map_err(|error| unreachable(PROVIDER, &error))?;
        let answer = Answer::read(PROVIDER, response).await?;
        if answer.status.is_success() {
            return Ok(Registered { tracker_id: None, already_registered: false });
        }
        // `{"detail": "…"}`, or field errors: `{"carrier": ["…"]}`.
        let detail = text_at(&answer.body["detail"]);
        Err(answer.refusal(PROVIDER, number, detail))
    }
}

impl TrackerRegistry for TrackerClient {
    fn provider(&self) -> TrackingProvider {
        self.provider
    }

    fn register<'a>(
        &'a self,
        number: &'a TrackingNumber,
        carrier: Option<StandardCarrier>,
    ) -> ChannelFuture<'a, Registered> {
        match self.provider {
            TrackingProvider::Easypost => Box::pin(self.easypost(number, carrier)),
            TrackingProvider::Aftership => Box::pin(self.aftership(number, carrier)),
            TrackingProvider::Shippo => Box::pin(self.shippo(number, carrier)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn a_rate_limit_reset_time_is_a_wait_when_no_retry_after_is_given() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        let wait = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            provider_wait(&headers, now)
        };
        assert_eq!(wait(&[("x-ratelimit-reset", "1800000012")]), Some(Duration::from_secs(12)));
        assert_eq!(wait(&[("x-ratelimit-reset", "1800000012"), ("retry-after", "3")]), Some(Duration::from_secs(3)));
        assert_eq!(wait(&[("x-ratelimit-reset", "1799999999")]), Some(Duration::ZERO));
        assert_eq!(wait(&[("x-ratelimit-reset", "9223372036854775807")]), Some(crate::MAX_CHANNEL_WAIT));
        assert_eq!(wait(&[("x-ratelimit-reset", "-9223372036854775808")]), Some(Duration::ZERO));
        assert_eq!(wait(&[("x-ratelimit-reset", "soon")]), None);
        assert_eq!(wait(&[]), None);
    }

    #[test]
    fn every_standard_carrier_has_a_code_at_every_provider() {
        use StandardCarrier::{DhlEcommerce, DhlExpress, FedEx, Ups, Usps};
        let codes = |provider| [Ups, FedEx, Usps, DhlExpress, DhlEcommerce].map(|c| carrier_code(provider, c));
        assert_eq!(codes(TrackingProvider::Easypost), ["UPS", "FedEx", "USPS", "DHLExpress", "DHLEcommerceSolutions"]);
        assert_eq!(codes(TrackingProvider::Aftership), ["ups", "fedex", "usps", "dhl", "dhl-global-mail"]);
        assert_eq!(codes(TrackingProvider::Shippo), ["ups", "fedex", "usps", "dhl_express", "dhl_ecommerce"]);
    }
}
