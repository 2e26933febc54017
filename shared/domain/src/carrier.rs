//! Carriers (shippers). Every retailer starts with Duoplane's common carriers and may add its own.

use crate::ids::CarrierId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Carrier {
    pub id: CarrierId,
    pub name: String,
    /// Standard Carrier Alpha Code, where the carrier has one.
    pub scac_code: Option<String>,
}

impl Carrier {
    fn new(id: u64, name: &str, scac_code: Option<&str>) -> Self {
        Self { id: CarrierId::new_unchecked(id), name: name.to_owned(), scac_code: scac_code.map(str::to_owned) }
    }
}

/// Duoplane's common carriers, with Duoplane's ids, so that existing integrations keep working.
pub fn default_carriers() -> Vec<Carrier> {
    vec![
        Carrier::new(1, "UPS", Some("UPSN")),
        Carrier::new(2, "FedEx", Some("FEDX")),
        Carrier::new(17, "US Postal", Some("USPS")),
        Carrier::new(395, "DHL eCommerce", None),
    ]
}

/// Custom carriers get ids from the shared id sequence, which starts above every default id.
pub const FIRST_ASSIGNED_ID: u64 = 1_000;

/// How a request names a carrier: exactly one of the three ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CarrierRef {
    Id(CarrierId),
    Name(String),
    Scac(String),
}

impl CarrierRef {
    /// The request field this reference came from.
    pub fn field(&self) -> &'static str {
        match self {
            CarrierRef::Id(_) => "shipper_id",
            CarrierRef::Name(_) => "shipper_name",
            CarrierRef::Scac(_) => "shipper_scac_code",
        }
    }

    /// Finds the carrier among a retailer's carriers; names and codes match regardless of case.
    pub fn resolve<'a>(&self, carriers: &'a [Carrier]) -> Option<&'a Carrier> {
        let same = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        carriers.iter().find(|carrier| match self {
            CarrierRef::Id(id) => carrier.id == *id,
            CarrierRef::Name(name) => same(&carrier.name, name),
            CarrierRef::Scac(code) => carrier.scac_code.as_deref().is_some_and(|own| same(own, code)),
        })
    }

    /// A readable description for error messages.
    pub fn describe(&self) -> String {
        match self {
            CarrierRef::Id(id) => id.to_string(),
            CarrierRef::Name(name) | CarrierRef::Scac(name) => format!("{name:?}"),
        }
    }
}

/// A carrier a retailer adds; the name must not clash with one it already has.
pub fn validate_new_carrier(
    name: &str,
    scac_code: Option<&str>,
    existing: &[Carrier],
) -> Result<(String, Option<String>), crate::ValidationErrors> {
    let mut errors = crate::ValidationErrors::new();
    let name = name.trim().to_owned();
    if name.is_empty() {
        errors.push("name", "must not be blank");
    } else if name.chars().count() > crate::limits::MAX_CARRIER_NAME_CHARS {
        errors.push("name", format!("must be at most {} characters", crate::limits::MAX_CARRIER_NAME_CHARS));
    } else if CarrierRef::Name(name.clone()).resolve(existing).is_some() {
        errors.push("name", format!("{name:?} is already a carrier of this retailer"));
    }
    let scac = scac_code.map(str::trim).filter(|code| !code.is_empty()).map(str::to_uppercase);
    if let Some(code) = &scac {
        if !(2..=4).contains(&code.len()) || !code.chars().all(|c| c.is_ascii_alphabetic()) {
            errors.push("scac_code", "must be 2 to 4 letters");
        } else if CarrierRef::Scac(code.clone()).resolve(existing).is_some() {
            errors.push("scac_code", format!("{code:?} is already used by another carrier"));
        }
    }
    errors.into_result((name, scac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_carriers_resolve_by_each_reference() {
        let carriers = default_carriers();
        let id = |r: CarrierRef| r.resolve(&carriers).map(|c| c.id.get());
        assert_eq!(id(CarrierRef::Id(CarrierId::new_unchecked(17))), Some(17));
        assert_eq!(id(CarrierRef::Name("ups".into())), Some(1));
        assert_eq!(id(CarrierRef::Name("DHL eCommerce".into())), Some(395));
        assert_eq!(id(CarrierRef::Scac("FEDX".into())), Some(2));
        assert_eq!(id(CarrierRef::Name("Pony Express".into())), None);
        assert_eq!(id(CarrierRef::Id(CarrierId::new_unchecked(3))), None);
    }

    #[test]
    fn new_carriers_must_be_distinct() {
        let carriers = default_carriers();
        assert!(validate_new_carrier("ups", None, &carriers).is_err());
        assert!(validate_new_carrier("Royal Mail", Some("USPS"), &carriers).is_err());
        assert!(validate_new_carrier("Royal Mail", Some("R1"), &carriers).is_err());
        assert_eq!(
            validate_new_carrier(" Royal Mail ", Some("rmal"), &carriers),
            Ok(("Royal Mail".into(), Some("RMAL".into())))
        );
    }
}

/// The carriers shipsync knows by name: their public tracking pages, and how tracking services
/// and channels name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StandardCarrier {
    Ups,
    FedEx,
    Usps,
    DhlExpress,
    DhlEcommerce,
}

impl StandardCarrier {
    /// The standard carrier a retailer's carrier is, by its SCAC code or its name (any case,
    /// spaces and punctuation ignored); `None` for any other carrier.
    pub fn recognise(carrier: &Carrier) -> Option<Self> {
        let squeeze = |text: &str| text.chars().filter(char::is_ascii_alphanumeric).collect::<String>().to_lowercase();
        let by_code = carrier.scac_code.as_deref().map(squeeze).and_then(|code| match code.as_str() {
            "upsn" | "ups" => Some(Self::Ups),
            "fedx" | "fdeg" | "fdxe" => Some(Self::FedEx),
            "usps" => Some(Self::Usps),
            "dhlc" => Some(Self::DhlExpress),
            _ => None,
        });
        by_code.or_else(|| match squeeze(&carrier.name).as_str() {
            "ups" | "unitedparcelservice" => Some(Self::Ups),
            "fedex" | "federalexpress" => Some(Self::FedEx),
            "usps" | "uspostal" | "uspostalservice" | "unitedstatespostalservice" => Some(Self::Usps),
            "dhl" | "dhlexpress" => Some(Self::DhlExpress),
            "dhlecommerce" | "dhlglobalmail" => Some(Self::DhlEcommerce),
            _ => None,
        })
    }

    /// The carrier's public tracking page for a number (the number URL-encoded).
    pub fn tracking_url(self, number: &str) -> String {
        let number = encode_query_value(number);
        match self {
            Self::Ups => format!("https://www.ups.com/track?tracknum={number}"),
            Self::FedEx => format!("https://www.fedex.com/fedextrack/?tracknumbers={number}"),
            Self::Usps => format!("https://tools.usps.com/go/TrackConfirmAction?tLabels={number}"),
            Self::DhlExpress => format!("https://www.dhl.com/en/express/tracking.html?AWB={number}"),
            Self::DhlEcommerce => format!("https://webtrack.dhlglobalmail.com/?trackingnumber={number}"),
        }
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters, as `rawurlencode` does.
fn encode_query_value(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod standard_carrier_tests {
    use super::*;

    #[test]
    fn the_default_carriers_are_recognised_and_others_are_not() {
        let found: Vec<_> = default_carriers().iter().map(StandardCarrier::recognise).collect();
        assert_eq!(
            found,
            [
                Some(StandardCarrier::Ups),
                Some(StandardCarrier::FedEx),
                Some(StandardCarrier::Usps),
                Some(StandardCarrier::DhlEcommerce)
            ]
        );
        let own = Carrier::new(1001, "Colissimo", None);
        assert_eq!(StandardCarrier::recognise(&own), None);
        assert_eq!(StandardCarrier::recognise(&Carrier::new(1002, "D.H.L.", None)), Some(StandardCarrier::DhlExpress));
    }

    #[test]
    fn tracking_pages_encode_the_number() {
        assert_eq!(
            StandardCarrier::Ups.tracking_url("1Z999AA10123456784"),
            "https://www.ups.com/track?tracknum=1Z999AA10123456784"
        );
        assert_eq!(
            StandardCarrier::Usps.tracking_url("9400 1&x=y"),
            "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400%201%26x%3Dy"
        );
    }
}
