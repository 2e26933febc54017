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
