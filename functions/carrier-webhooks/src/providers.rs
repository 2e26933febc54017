//! The three providers' signatures and payloads.

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use shipsync_domain::tracking::{CarrierScan, TrackingStatus};

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

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// Whether a delivery is signed with `secret`, in the provider's scheme, compared in constant time.
/// `header` is the signature header's value; `token` is the URL's `token` (Shippo's default protection).
pub fn verify(provider: Provider, body: &[u8], secret: &str, header: Option<&str>, token: Option<&str>) -> bool {
    match provider {
        // X-Hmac-Signature: hmac-sha256-hex=<hex of HMAC-SHA256(secret, body)>
        Provider::EasyPost => header
            .and_then(|value| value.trim().strip_prefix("hmac-sha256-hex="))
            .and_then(hex_decode)
            .zip(mac(secret, &[body]))
            .is_some_and(|(expected, mac)| mac.verify_slice(&expected).is_ok()),
        // aftership-hmac-sha256: base64(HMAC-SHA256(secret, body))
        Provider::AfterShip => header
            .and_then(|value| base64::engine::general_purpose::STANDARD.decode(value.trim()).ok())
            .zip(mac(secret, &[body]))
            .is_some_and(|(expected, mac)| mac.verify_slice(&expected).is_ok()),
        // Shippo-Auth-Signature: t=<unix>,v1=<hex of HMAC-SHA256(secret, "<t>.<body>")>, or ?token=<secret>
        Provider::Shippo => {
            if let Some(value) = header {
                let field = |name: &str| value.split(',').find_map(|part| part.trim().strip_prefix(name));
                let (Some(time), Some(signature)) = (field("t="), field("v1=")) else { return false };
                return hex_decode(signature)
                    .zip(mac(secret, &[time.as_bytes(), b".", body]))
                    .is_some_and(|(expected, mac)| mac.verify_slice(&expected).is_ok());
            }
            token.is_some_and(|given| constant_time_eq(given.as_bytes(), secret.as_bytes()))
        }
    }
}

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
                tracking_number: text(&result["tracking_code"], "result.tracking_code")?,
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
                tracking_number: text(&message["tracking_number"], "msg.tracking_number")?,
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
            let number = text(&data["tracking_number"], "data.tracking_number")?;
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
