//! Shipment search: the Duoplane search parameters, and the plan that says which index serves them.

use crate::ValidationErrors;
use crate::access::Principal;
use crate::ids::{RetailerId, VendorId};
use crate::limits::{MAX_REFERENCE_CHARS, MAX_SEARCH_TERM_CHARS, check_key_part, check_length};
use crate::time::parse_api_time;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// The default and largest page size. A larger `per_page` is capped to it, as Duoplane does.
pub const MAX_PER_PAGE: u32 = 250;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub min: Option<DateTime<Utc>>,
    pub max: Option<DateTime<Utc>>,
}

impl TimeRange {
    pub fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// Whether the range can hold nothing (its minimum after its maximum).
    pub fn is_empty(&self) -> bool {
        matches!((self.min, self.max), (Some(min), Some(max)) if min > max)
    }
}

/// The filters of `GET /shipments.json`, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentSearch {
    pub purchase_order_number: Option<String>,
    /// Lower-cased: matched anywhere in the customer's name.
    pub customer_name: Option<String>,
    pub vendor_invoice_reference: Option<String>,
    /// Normalized by [`search_tracking_text`]: matched anywhere in any tracking number.
    pub tracking: Option<String>,
    pub vendor_id: Option<VendorId>,
    pub retailer_id: Option<RetailerId>,
    pub created: TimeRange,
    pub updated: TimeRange,
    pub invoiced: TimeRange,
}

impl TimeRange {
    /// Whether `time` is within the range (both ends included); an open end takes anything.
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        self.min.is_none_or(|min| time >= min) && self.max.is_none_or(|max| time <= max)
    }
}

impl ShipmentSearch {
    /// Whether a shipment passes these filters, the way the table's filter expressions decide
    /// (for a purchase order's shipments, filtered after they are read). The purchase order
    /// number and retailer are the search's scope, not filters, and are not checked here.
    pub fn matches(&self, shipment: &crate::shipment::Shipment) -> bool {
        let name = self
            .customer_name
            .as_deref()
            .is_none_or(|wanted| name_matches(&search_name_text(wanted), &search_name_text(&shipment.customer_name)));
        let tracking = self.tracking.as_deref().is_none_or(|wanted| {
            shipment.trackings.iter().any(|t| search_tracking_text(t.tracking.as_str()).contains(wanted))
        });
        let reference = self
            .vendor_invoice_reference
            .as_deref()
            .is_none_or(|wanted| shipment.vendor_invoice_reference.as_deref() == Some(wanted));
        let vendor = self.vendor_id.is_none_or(|wanted| shipment.vendor_id == wanted);
        let invoiced = self.invoiced.is_open() || shipment.invoiced_at.is_some_and(|at| self.invoiced.contains(at));
        name && tracking
            && reference
            && vendor
            && self.created.contains(shipment.created_at)
            && self.updated.contains(shipment.updated_at)
            && invoiced
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Starts at 1.
    pub page: u32,
    pub per_page: u32,
}

impl Default for Paging {
    fn default() -> Self {
        Self { page: 1, per_page: MAX_PER_PAGE }
    }
}

impl Paging {
    /// How many matches come before this page.
    pub fn offset(&self) -> u64 {
        u64::from(self.page.saturating_sub(1)) * u64::from(self.per_page)
    }
}

/// A parsed list request: filters, paging, and whether to embed each shipment's purchase order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShipmentQuery {
    pub search: ShipmentSearch,
    pub paging: Paging,
    pub include_purchase_order: bool,
}

/// How a customer name is matched: case does not matter.
pub fn search_name_text(text: &str) -> String {
    text.trim().to_lowercase()
}

/// Whether a customer name matches a search, as Duoplane matches it: the search's words appear
/// in the name in that order, each anywhere after the previous ("B Smi" finds "Bill Smith").
/// Both sides are already normalized by [`search_name_text`].
pub fn name_matches(search: &str, name: &str) -> bool {
    let mut rest = name;
    for word in search.split_whitespace() {
        match rest.find(word) {
            Some(position) => rest = &rest[position + word.len()..],
            None => return false,
        }
    }
    true
}

/// How a tracking number is matched: case and spaces do not matter.
pub fn search_tracking_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase()
}

/// Parses the query parameters of `GET /shipments.json`. Times without a zone are in `zone`.
pub fn parse_shipment_query(params: &[(String, String)], zone: Tz) -> Result<ShipmentQuery, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut query = ShipmentQuery::default();
    let search = &mut query.search;
    for (key, value) in params {
        let value = value.trim();
        let Some(name) = key.strip_prefix("search[").and_then(|rest| rest.strip_suffix(']')) else {
            match key.as_str() {
                "page" => match value.parse::<u32>() {
                    Ok(page) if page >= 1 => query.paging.page = page,
                    _ => errors.push("page", "must be a whole number from 1"),
                },
                // Capped rather than refused: a client written for Duoplane asks for more.
                "per_page" => match value.parse::<u64>() {
                    Ok(size) if size >= 1 => {
                        query.paging.per_page = u32::try_from(size.min(u64::from(MAX_PER_PAGE))).unwrap_or(MAX_PER_PAGE)
                    }
                    _ => errors.push(
                        "per_page",
                        format!("must be a whole number from 1 (at most {MAX_PER_PAGE} are returned)"),
                    ),
                },
                "include_shipment_purchase_order" => match value {
                    "1" | "true" => query.include_purchase_order = true,
                    "0" | "false" | "" => query.include_purchase_order = false,
                    _ => errors.push(key.as_str(), "must be 1, true, 0 or false"),
                },
                // Other parameters (a cache buster, say) are not ours to judge.
                _ => {}
            }
            continue;
        };
        let field = format!("search[{name}]");
        // A purchase order number is looked up by key; every other term is a filter.
        let fits = if name == "purchase_order_number" {
            check_key_part(&mut errors, &field, value, MAX_REFERENCE_CHARS)
        } else {
            check_length(&mut errors, &field, value, MAX_SEARCH_TERM_CHARS)
        };
        let text = || (fits && !value.is_empty()).then(|| value.to_owned());
        let mut time = |field: &str| match parse_api_time(value, zone) {
            Ok(time) => Some(time),
            Err(message) => {
                errors.push(format!("search[{field}]"), message);
                None
            }
        };
        match name {
            "purchase_order_number" => search.purchase_order_number = text(),
            "customer_name" => search.customer_name = text().map(|t| search_name_text(&t)),
            "vendor_invoice_reference" => search.vendor_invoice_reference = text(),
            "tracking" => search.tracking = text().map(|t| search_tracking_text(&t)),
            "vendor_id" => match value.parse() {
                Ok(id) => search.vendor_id = Some(id),
                Err(problem) => errors.push("search[vendor_id]", problem.to_string()),
            },
            "retailer_id" => match value.parse() {
                Ok(id) => search.retailer_id = Some(id),
                Err(problem) => errors.push("search[retailer_id]", problem.to_string()),
            },
            "created_at_min" => search.created.min = time(name),
            "created_at_max" => search.created.max = time(name),
            "updated_at_min" => search.updated.min = time(name),
            "updated_at_max" => search.updated.max = time(name),
            "invoiced_at_min" => search.invoiced.min = time(name),
            "invoiced_at_max" => search.invoiced.max = time(name),
            _ => errors.push(key.as_str(), "is not a search parameter"),
        }
    }
    errors.into_result(query)
}

/// Which index a search reads, and in which order results come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchScope {
    /// Nothing can match (another retailer, another vendor, an empty range): read nothing.
    Nothing,
    /// One purchase order's shipments, by its number.
    PurchaseOrder(String),
    /// One vendor's shipments, by creation time.
    VendorByCreated(VendorId),
    /// The retailer's shipments, by creation time.
    RetailerByCreated,
    /// The retailer's shipments, by last update.
    RetailerByUpdated,
}

/// A search as the store runs it: a key condition on one index, then filters on what is left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchPlan {
    pub retailer_id: RetailerId,
    pub scope: SearchScope,
    /// The range on the index's sort key (creation or update time, as the scope says).
    pub key_range: TimeRange,
    /// What the key does not already guarantee; these become filters.
    pub filters: ShipmentSearch,
}

/// Chooses the narrowest index for a search, within what the caller may see.
pub fn plan_search(principal: &Principal, search: &ShipmentSearch) -> SearchPlan {
    let mut filters = search.clone();
    let mut plan = SearchPlan {
        retailer_id: principal.retailer_id,
        scope: SearchScope::Nothing,
        key_range: TimeRange::default(),
        filters: ShipmentSearch::default(),
    };
    // The caller's own retailer is implied; asking for another is asking for nothing.
    if filters.retailer_id.take().is_some_and(|id| id != principal.retailer_id) {
        return plan;
    }
    let vendor = match (principal.vendor_scope(), filters.vendor_id) {
        (Some(own), Some(asked)) if own != asked => return plan,
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    if [search.created, search.updated, search.invoiced].iter().any(TimeRange::is_empty) {
        return plan;
    }
    plan.scope = if let Some(number) = filters.purchase_order_number.take() {
        // The vendor stays a filter: the purchase order may be another vendor's.
        filters.vendor_id = vendor;
        SearchScope::PurchaseOrder(number)
    } else if let Some(vendor) = vendor {
        filters.vendor_id = None;
        plan.key_range = std::mem::take(&mut filters.created);
        SearchScope::VendorByCreated(vendor)
    } else if !filters.updated.is_open() && filters.created.is_open() {
        plan.key_range = std::mem::take(&mut filters.updated);
        SearchScope::RetailerByUpdated
    } else {
        plan.key_range = std::mem::take(&mut filters.created);
        SearchScope::RetailerByCreated
    };
    plan.filters = filters;
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::Role;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn principal(role: Role) -> Principal {
        Principal { retailer_id: RetailerId::new_unchecked(1), role, time_zone: Tz::UTC }
    }

    #[test]
    fn names_match_by_words_in_order() {
        let matches = |search: &str, name: &str| name_matches(&search_name_text(search), &search_name_text(name));
        assert!(matches("B Smi", "Bill Smith"));
        assert!(matches("smith", "Bill Smith"));
        assert!(matches("ill mit", "Bill Smith"));
        assert!(matches("", "Bill Smith"));
        assert!(!matches("Smi B", "Bill Smith"));
        assert!(!matches("Bill Bill", "Bill Smith"));
        assert!(!matches("Jones", "Bill Smith"));
    }

    #[test]
    fn every_parameter_parses() {
        let query = parse_shipment_query(
            &params(&[
                ("search[purchase_order_number]", "PO-1"),
                ("search[customer_name]", "B Smi"),
                ("search[vendor_invoice_reference]", "AB1234"),
                ("search[tracking]", "1z 12"),
                ("search[vendor_id]", "7"),
                ("search[retailer_id]", "1"),
                ("search[created_at_min]", "2026-01-01"),
                ("search[created_at_max]", "2026-01-02T00:00:00Z"),
                ("search[updated_at_min]", "2026-01-01T10:00:00"),
                ("search[invoiced_at_max]", "2026-02-01T00:00:00+01:00"),
                ("per_page", "10"),
                ("page", "3"),
                ("include_shipment_purchase_order", "true"),
                ("_", "12345"),
            ]),
            Tz::America__New_York,
        )
        .unwrap();
        assert_eq!(query.search.customer_name.as_deref(), Some("b smi"));
        assert_eq!(query.search.tracking.as_deref(), Some("1z12"));
        assert_eq!(query.search.vendor_id.map(VendorId::get), Some(7));
        assert_eq!(query.search.created.min.map(|t| t.to_rfc3339()), Some("2026-01-01T05:00:00+00:00".into()));
        assert_eq!(query.search.updated.min.map(|t| t.to_rfc3339()), Some("2026-01-01T15:00:00+00:00".into()));
        assert_eq!(query.search.invoiced.max.map(|t| t.to_rfc3339()), Some("2026-01-31T23:00:00+00:00".into()));
        assert_eq!(query.paging, Paging { page: 3, per_page: 10 });
        assert_eq!(query.paging.offset(), 20);
        assert!(query.include_purchase_order);
    }

    #[test]
    fn bad_parameters_are_named() {
        let long_name = "x".repeat(MAX_SEARCH_TERM_CHARS + 1);
        let long_number = "😀".repeat(200);
        let errors = parse_shipment_query(
            &params(&[
                ("search[created_at_min]", "last week"),
                ("search[vendor_id]", "x"),
                ("search[colour]", "red"),
                ("per_page", "0"),
                ("page", "0"),
                ("search[customer_name]", long_name.as_str()),
                ("search[purchase_order_number]", long_number.as_str()),
            ]),
            Tz::UTC,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "search[created_at_min]",
                "search[vendor_id]",
                "search[colour]",
                "per_page",
                "page",
                "search[customer_name]",
                "search[purchase_order_number]"
            ]
        );
    }

    #[test]
    fn a_larger_page_is_capped_not_refused() {
        for asked in ["251", "1000", "99999999999"] {
            let query = parse_shipment_query(&params(&[("per_page", asked)]), Tz::UTC).unwrap();
            assert_eq!(query.paging.per_page, MAX_PER_PAGE, "{asked}");
        }
    }

    #[test]
    fn plans_pick_the_narrowest_index() {
        let retailer = principal(Role::Retailer);
        let vendor = VendorId::new_unchecked(7);
        let vendor_user = principal(Role::Vendor { vendor_id: vendor });
        let day = parse_api_time("2026-01-01", Tz::UTC).ok();
        let by_number = ShipmentSearch { purchase_order_number: Some("PO-1".into()), ..ShipmentSearch::default() };
        assert_eq!(plan_search(&retailer, &by_number).scope, SearchScope::PurchaseOrder("PO-1".into()));
        let vendor_plan = plan_search(&vendor_user, &by_number);
        assert_eq!(vendor_plan.filters.vendor_id, Some(vendor), "a vendor's search stays within its vendor");
        let updated = ShipmentSearch { updated: TimeRange { min: day, max: None }, ..ShipmentSearch::default() };
        let plan = plan_search(&retailer, &updated);
        assert_eq!((plan.scope, plan.key_range.min), (SearchScope::RetailerByUpdated, day));
        assert!(plan.filters.updated.is_open());
        assert_eq!(plan_search(&vendor_user, &updated).scope, SearchScope::VendorByCreated(vendor));
        assert_eq!(plan_search(&vendor_user, &updated).filters.updated, updated.updated);
        let other_vendor = ShipmentSearch { vendor_id: Some(VendorId::new_unchecked(8)), ..ShipmentSearch::default() };
        assert_eq!(plan_search(&vendor_user, &other_vendor).scope, SearchScope::Nothing);
        assert_eq!(
            plan_search(&retailer, &other_vendor).scope,
            SearchScope::VendorByCreated(VendorId::new_unchecked(8))
        );
        let other_retailer =
            ShipmentSearch { retailer_id: Some(RetailerId::new_unchecked(2)), ..ShipmentSearch::default() };
        assert_eq!(plan_search(&retailer, &other_retailer).scope, SearchScope::Nothing);
        let backwards = ShipmentSearch {
            created: TimeRange { min: day, max: parse_api_time("2025-01-01", Tz::UTC).ok() },
            ..ShipmentSearch::default()
        };
        assert_eq!(plan_search(&retailer, &backwards).scope, SearchScope::Nothing);
    }
}
