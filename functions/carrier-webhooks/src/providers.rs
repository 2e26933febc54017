//! The three providers' signatures and payloads.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use shipsync_domain::access::constant_time_eq;
use shipsync_domain::tracking::{CarrierScan, TrackingNumber, TrackingStatus};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    EasyPost,
    AfterShip,
    Shippo,
}

impl Provider {
    pub fn from_path(name: &str) -> Option<Self> {
        match name {
            "easypost" => Some(Provider::EasyPost),
            "aftership" => Some(Provider::AfterShip),
            "shippo" => Some(Provider::Shippo),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Provider::EasyPost => "easypost",
            Provider::AfterShip => "aftership",
            Provider::Shippo => "shippo",
        }
    }
}

fn mac(secret: &str, parts: &[&[u8]]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac)
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// How far a signed time may be from now, either way: a captured delivery cannot be replayed
/// later, and a clock that runs a little fast or slow does not refuse good ones.
pub const SIGNATURE_WINDOW_SECONDS: i64 = 5 * 60;

/// What a delivery carries that a provider's signature can cover.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    pub body: &'a [u8],
    pub headers: &'a http::HeaderMap,
    pub method: &'a str,
    /// The URL's `token` (Shippo's default protection).
    pub token: Option<&'a str>,
    pub now: DateTime<Utc>,
}

impl Delivery<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim).filter(|value| !value.is_empty())
    }
}

/// Why a delivery was refused (for the logs).
pub type Refusal = &'static str;

fn within_window(signed_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Refusal> {
    if (now - signed_at).num_milliseconds().abs() > SIGNATURE_WINDOW_SECONDS * 1000 {
        Err("the signed time is more than 5 minutes from now")
    } else {
        Ok(())
    }
}

/// Whether a delivery is signed with `secret`, in the provider's scheme, compared in constant time,
/// and, where the provider signs a time, signed within [`SIGNATURE_WINDOW_SECONDS`] of now. An
/// empty secret verifies nothing: anyone could sign with it.
pub fn verify(provider: Provider, secret: &str, delivery: &Delivery<'_>) -> Result<(), Refusal> {
    if secret.trim().is_empty() {
        return Err("no secret is configured");
    }
    let body = delivery.body;
    let matches = |expected: Option<Vec<u8>>, parts: &[&[u8]]| {
        expected.zip(mac(secret, parts)).is_some_and(|(expected, mac)| mac.verify_slice(&expected).is_ok())
    };
    match provider {
        Provider::EasyPost => {
            // X-Hmac-Signature-V2: hmac-sha256-hex=<hex of HMAC-SHA256(secret, X-Timestamp + METHOD + X-Path + body)>.
            // When it is there it decides: the time it signs bounds a replay.
            if let Some(value) = delivery.header(EASYPOST_V2_HEADER) {
                let (Some(time), Some(path)) = (delivery.header("x-timestamp"), delivery.header("x-path")) else {
                    return Err("X-Hmac-Signature-V2 without X-Timestamp and X-Path");
                };
                let expected = value.strip_prefix("hmac-sha256-hex=").unwrap_or(value);
                let method = delivery.method.to_ascii_uppercase();
                if !matches(hex_decode(expected), &[time.as_bytes(), method.as_bytes(), path.as_bytes(), body]) {
                    return Err("X-Hmac-Signature-V2 does not match");
                }
                let signed_at = DateTime::parse_from_rfc2822(time)
                    .or_else(|_| DateTime::parse_from_rfc3339(time))
                    .map_err(|_| "X-Timestamp is not a time")?;
                return within_window(signed_at.with_timezone(&Utc), delivery.now);
            }
            // X-Hmac-Signature: hmac-sha256-hex=<hex of HMAC-SHA256(secret, body)>; signs no time.
            let value = delivery.header(signature_header(provider)).ok_or("no signature")?;
            let expected = value.strip_prefix("hmac-sha256-hex=").and_then(hex_decode);
            if matches(expected, &[body]) { Ok(()) } else { Err("X-Hmac-Signature does not match") }
        }
        // aftership-hmac-sha256: base64(HMAC-SHA256(secret, body)); signs no time.
        Provider::AfterShip => {
            let value = delivery.header(signature_header(provider)).ok_or("no signature")?;
            let expected = base64::engine::general_purpose::STANDARD.decode(value).ok();
            if matches(expected, &[body]) { Ok(()) } else { Err("aftership-hmac-sha256 does not match") }
        }
        // Shippo-Auth-Signature: t=<unix>,v1=<hex of HMAC-SHA256(secret, "<t>.<body>")>, or ?token=<secret>
        Provider::Shippo => {
            if let Some(value) = delivery.header(signature_header(provider)) {
                let field = |name: &str| value.split(',').find_map(|part| part.trim().strip_prefix(name));
                let (Some(time), Some(signature)) = (field("t="), field("v1=")) else {
                    return Err("Shippo-Auth-Signature without t= and v1=");
                };
                if !matches(hex_decode(signature), &[time.as_bytes(), b".", body]) {
                    return Err("Shippo-Auth-Signature does not match");
                }
                let signed_at = time
                    .parse::<i64>()
                    .ok()
                    .and_then(|seconds| DateTime::from_timestamp(seconds, 0))
                    .ok_or("t= is not a Unix time")?;
                return within_window(signed_at, delivery.now);
            }
            let given = delivery.token.ok_or("no signature and no token")?;
            if constant_time_eq(given.as_bytes(), secret.as_bytes()) { Ok(()) } else { Err("the token does not match") }
        }
    }
}

/// EasyPost's newer signature header, which signs a time and the path as well.
pub const EASYPOST_V2_HEADER: &str = "x-hmac-signature-v2";

/// The header each provider signs with.
pub fn signature_header(provider: Provider) -> &'static str {
    match provider {
        Provider::EasyPost => "x-hmac-signature",
        Provider::AfterShip => "aftership-hmac-sha256",
        Provider::Shippo => "shippo-auth-signature",
    }
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?).ok().map(|t| t.with_timezone(&Utc))
}

/// Reads a provider's payload: `Ok(None)` for an event that is not a tracking update.
pub fn read_scan(provider: Provider, payload: &Value, now: DateTime<Utc>) -> Result<Option<CarrierScan>, String> {
    let text =
        |value: &Value, field: &str| value.as_str().map(str::to_owned).ok_or_else(|| format!("{field} is required"));
    let tracking_number = |value: &Value, field: &str| {
        TrackingNumber::parse(&text(value, field)?).map_err(|problem| format!("{field} {problem}"))
    };
    match provider {
        Provider::EasyPost => {
            if payload["description"].as_str() != Some("tracker.updated") {
                return Ok(None);
            }
            let result = &payload["result"];
            let status = match result["status"].as_str().unwrap_or_default() {
                "pre_transit" => TrackingStatus::PreTransit,
                "in_transit" => TrackingStatus::InTransit,
                "out_for_delivery" | "available_for_pickup" => TrackingStatus::OutForDelivery,
                "delivered" => TrackingStatus::Delivered,
                "return_to_sender" | "failure" | "error" => TrackingStatus::Exception,
                _ => TrackingStatus::Unknown,
            };
            Ok(Some(CarrierScan {
                provider: provider.name().into(),
                event_id: text(&payload["id"], "id")?,
                tracking_number: tracking_number(&result["tracking_code"], "result.tracking_code")?,
                status,
                occurred_at: time(&result["updated_at"]).or_else(|| time(&payload["updated_at"])).unwrap_or(now),
            }))
        }
        Provider::AfterShip => {
            if payload["event"].as_str() != Some("tracking_update") {
                return Ok(None);
            }
            let message = &payload["msg"];
            let status = match message["tag"].as_str().unwrap_or_default() {
                "Pending" | "InfoReceived" => TrackingStatus::PreTransit,
                "InTransit" => TrackingStatus::InTransit,
                "OutForDelivery" | "AttemptFail" | "AvailableForPickup" => TrackingStatus::OutForDelivery,
                "Delivered" => TrackingStatus::Delivered,
                "Exception" => TrackingStatus::Exception,
                _ => TrackingStatus::Unknown,
            };
            Ok(Some(CarrierScan {
                provider: provider.name().into(),
                event_id: text(&payload["event_id"], "event_id")?,
                tracking_number: tracking_number(&message["tracking_number"], "msg.tracking_number")?,
                status,
                occurred_at: time(&message["updated_at"]).unwrap_or(now),
            }))
        }
        Provider::Shippo => {
            if payload["event"].as_str() != Some("track_updated") {
                return Ok(None);
            }
            let data = &payload["data"];
            let tracking = &data["tracking_status"];
            let raw = tracking["status"].as_str().unwrap_or_default();
            let status = match raw {
                "PRE_TRANSIT" => TrackingStatus::PreTransit,
                "TRANSIT" => TrackingStatus::InTransit,
                "DELIVERED" => TrackingStatus::Delivered,
                "RETURNED" | "FAILURE" => TrackingStatus::Exception,
                _ => TrackingStatus::Unknown,
            };
            let number = tracking_number(&data["tracking_number"], "data.tracking_number")?;
            let date = tracking["status_date"].as_str().unwrap_or_default();
            Ok(Some(CarrierScan {
                provider: provider.name().into(),
                // Shippo's events carry no id: the parcel, status and time name one.
                event_id: format!("{number}:{raw}:{date}"),
                tracking_number: number,
                status,
                occurred_at: time(&tracking["status_date"]).unwrap_or(now),
            }))
        }
    }
}

/// EasyPost's `X-Hmac-Signature-V2` value for a delivery (for tests and replay tools).
pub fn sign_easypost_v2(body: &[u8], secret: &str, timestamp: &str, method: &str, path: &str) -> String {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    mac(secret, &[timestamp.as_bytes(), method.as_bytes(), path.as_bytes(), body])
        .map(|mac| format!("hmac-sha256-hex={}", hex(&mac.finalize().into_bytes())))
        .unwrap_or_default()
}

/// The signature header value a provider sends for a body (for tests and replay tools).
pub fn sign(provider: Provider, body: &[u8], secret: &str, unix_time: i64) -> String {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    match provider {
        Provider::EasyPost => mac(secret, &[body])
            .map(|mac| format!("hmac-sha256-hex={}", hex(&mac.finalize().into_bytes())))
            .unwrap_or_default(),
        Provider::AfterShip => mac(secret, &[body])
            .map(|mac| base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
            .unwrap_or_default(),
        Provider::Shippo => {
            let time = unix_time.to_string();
            mac(secret, &[time.as_bytes(), b".", body])
                .map(|mac| format!("t={time},v1={}", hex(&mac.finalize().into_bytes())))
                .unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_772_456_400, 0).unwrap_or_default()
    }

    fn delivery<'a>(body: &'a [u8], headers: &'a http::HeaderMap, token: Option<&'a str>) -> Delivery<'a> {
        Delivery { body, headers, method: "POST", token, now: now() }
    }

    fn headers(pairs: &[(&'static str, String)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            if let Ok(value) = http::HeaderValue::from_str(value) {
                map.insert(*name, value);
            }
        }
        map
    }

    #[test]
    fn a_shippo_signature_is_accepted_only_within_five_minutes_of_its_time() {
        let body = br#"{"event":"track_updated"}"#;
        let at = |offset: i64| {
            headers(&[("shippo-auth-signature", sign(Provider::Shippo, body, "s", now().timestamp() + offset))])
        };
        for (offset, accepted) in [(0, true), (-299, true), (299, true), (-301, false), (301, false), (-86_400, false)]
        {
            let signed = at(offset);
            assert_eq!(verify(Provider::Shippo, "s", &delivery(body, &signed, None)).is_ok(), accepted, "{offset}");
        }
        let garbled = headers(&[("shippo-auth-signature", "t=soon,v1=00".into())]);
        assert!(verify(Provider::Shippo, "s", &delivery(body, &garbled, None)).is_err());
    }

    #[test]
    fn an_empty_secret_verifies_nothing() {
        let body = b"{}";
        for provider in [Provider::EasyPost, Provider::AfterShip, Provider::Shippo] {
            for secret in ["", "  "] {
                let signed = headers(&[(signature_header(provider), sign(provider, body, secret, now().timestamp()))]);
                assert!(verify(provider, secret, &delivery(body, &signed, None)).is_err(), "{provider:?}");
            }
        }
        // Shippo's token: an empty token against an empty secret is no match either.
        let none = http::HeaderMap::new();
        assert!(verify(Provider::Shippo, "", &delivery(body, &none, Some(""))).is_err());
        assert!(verify(Provider::Shippo, "tok", &delivery(body, &none, Some("tok"))).is_ok());
        assert!(verify(Provider::Shippo, "tok", &delivery(body, &none, Some(""))).is_err());
    }

    #[test]
    fn easyposts_v2_signature_binds_a_time_and_decides_when_present() {
        let body = br#"{"description":"tracker.updated"}"#;
        let fresh = "Mon, 02 Mar 2026 13:00:00 +0000";
        let stale = "Sun, 01 Mar 2026 13:00:00 +0000";
        let v2 = |time: &str| {
            headers(&[
                (EASYPOST_V2_HEADER, sign_easypost_v2(body, "s", time, "POST", "/carrier_webhooks/easypost")),
                ("x-timestamp", time.to_owned()),
                ("x-path", "/carrier_webhooks/easypost".to_owned()),
                // A valid V1 signature beside it does not rescue a stale V2.
                ("x-hmac-signature", sign(Provider::EasyPost, body, "s", 0)),
            ])
        };
        assert!(verify(Provider::EasyPost, "s", &delivery(body, &v2(fresh), None)).is_ok());
        assert!(verify(Provider::EasyPost, "s", &delivery(body, &v2(stale), None)).is_err());
        assert!(verify(Provider::EasyPost, "other", &delivery(body, &v2(fresh), None)).is_err());
        let iso = v2("2026-03-02T13:01:00Z");
        assert!(verify(Provider::EasyPost, "s", &delivery(body, &iso, None)).is_ok());
        // V1 alone (it signs no time) still verifies.
        let v1 = headers(&[("x-hmac-signature", sign(Provider::EasyPost, body, "s", 0))]);
        assert!(verify(Provider::EasyPost, "s", &delivery(body, &v1, None)).is_ok());
    }
}
