//! Paged searches: a key-condition query on one index counts the matches and finds the page,
//! then one batch read fetches the page's records.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use serde::de::DeserializeOwned;
use shipsync_domain::search::{Paging, SearchPlan, SearchScope, ShipmentSearch, TimeRange, name_matches};
use shipsync_domain::shipment::Shipment;
use shipsync_domain::time::sortable_time;

use crate::codec::{Item, describe, key, record, s};
use crate::cursor::{InvalidCursor, SearchCursor};
use crate::keys::{self, PK, SHIPMENT, SK};
use crate::schema::{BY_RETAILER_CREATED, BY_RETAILER_UPDATED, BY_VENDOR_CREATED, IndexDefinition};
use crate::{Table, TableError};

/// One page of results and how many match: all of them when `total_count_exact`, else at least
/// that many (the search stopped reading once it knew there is a next page, or at its budget of
/// [`SEARCH_BUDGET`] entries). `next_cursor`, when more may match, goes on from the page's end,
/// or from where reading stopped if the page could not be filled within the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage<T> {
    pub records: Vec<T>,
    pub total_count: u64,
    pub total_count_exact: bool,
    pub next_cursor: Option<SearchCursor>,
}

impl<T> SearchPage<T> {
    pub fn empty() -> Self {
        Self { records: Vec::new(), total_count: 0, total_count_exact: true, next_cursor: None }
    }

    /// The same page with each record changed by `convert`.
    pub(crate) fn try_map<U, E>(self, convert: impl FnMut(T) -> Result<U, E>) -> Result<SearchPage<U>, E> {
        Ok(SearchPage {
            records: self.records.into_iter().map(convert).collect::<Result<_, _>>()?,
            total_count: self.total_count,
            total_count_exact: self.total_count_exact,
            next_cursor: self.next_cursor,
        })
    }
}

/// How many pages' worth of matches past the requested page a search goes on counting: the
/// total is exact for a listing that ends within them, and a page of a partition of any size
/// reads a bounded number of index entries (at most the page's end plus this many pages).
pub const PAGES_COUNTED_AHEAD: u64 = 1;

/// How many index entries a filtered search examines per request at most, matching or not.
/// Without it, a filter that matches rarely (a customer name nobody has) reads the whole
/// listing: 100,000 shipments are about 25 MB of index entries. Measured (`shipsync-bench`), an
/// entry is about 250 bytes (keys and the projected search attributes), so 2,000 are about
/// 0.5 MB: within one 1 MB Query page on DynamoDB, 62 read units, half of what the default first
/// page costs (140, most of it reading its 250 records by key). A rarer filter gets what was
/// found and a `next_cursor` to go on from, in steps of the same size.
pub const SEARCH_BUDGET: u64 = 2_000;

/// A filter expression under construction.
#[derive(Debug, Default)]
pub(crate) struct Filter {
    /// A customer-name search, checked in full on each result (DynamoDB cannot express it).
    name_search: Option<String>,
    conditions: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Filter {
    fn add(&mut self, condition: &str, attribute: &str, value: AttributeValue) {
        let position = self.values.len();
        let name = format!("#f{position}");
        let placeholder = format!(":f{position}");
        self.conditions.push(condition.replace("{a}", &name).replace("{v}", &placeholder));
        self.names.insert(name, attribute.to_owned());
        self.values.insert(placeholder, value);
    }

    fn range(&mut self, attribute: &str, range: TimeRange) {
        if let Some(min) = range.min {
            self.add("{a} >= {v}", attribute, s(sortable_time(min)));
        }
        if let Some(max) = range.max {
            self.add("{a} <= {v}", attribute, s(sortable_time(max)));
        }
    }

    fn for_shipments(search: &ShipmentSearch) -> Self {
        let mut filter = Filter::default();
        if let Some(name) = &search.customer_name {
            // Each word narrows the query here; their order is checked on the results.
            for word in name.split_whitespace() {
                filter.add("contains({a}, {v})", "customer_search", s(word));
            }
            filter.name_search = Some(name.clone());
        }
        if let Some(tracking) = &search.tracking {
            filter.add("contains({a}, {v})", "tracking_search", s(tracking));
        }
        if let Some(reference) = &search.vendor_invoice_reference {
            filter.add("{a} = {v}", "vendor_invoice_reference", s(reference));
        }
        if let Some(vendor) = search.vendor_id {
            filter.add("{a} = {v}", "vendor_id", AttributeValue::N(vendor.to_string()));
        }
        filter.range("created_at", search.created);
        filter.range("updated_at", search.updated);
        filter.range("invoiced_at", search.invoiced);
        filter
    }
}

impl Table {
    /// Runs a search plan: one page of shipments and the number that match in all.
    /// With `after`, the page starts after that cursor (one this search handed out).
    pub async fn search_shipments(
        &self,
        plan: &SearchPlan,
        paging: Paging,
        after: Option<&SearchCursor>,
    ) -> Result<SearchPage<Shipment>, TableError> {
        let filter = Filter::for_shipments(&plan.filters);
        let (index, partition) = match &plan.scope {
            SearchScope::Nothing => return Ok(SearchPage::empty()),
            // A purchase order's few shipments come in one page, which hands out no cursor.
            SearchScope::PurchaseOrder(_) if after.is_some() => return Err(InvalidCursor.into()),
            SearchScope::PurchaseOrder(number) => {
                let Some(po) = self.purchase_order_by_number(plan.retailer_id, number).await? else {
                    return Ok(SearchPage::empty());
                };
                // Its few shipments are read whole and filtered here: the count is exact.
                let mut matching = self.shipments_of_purchase_order(po.id).await?;
                matching.retain(|shipment| shipment.retailer_id == plan.retailer_id && plan.filters.matches(shipment));
                let total_count = matching.len() as u64;
                let first = usize::try_from(paging.offset()).unwrap_or(usize::MAX);
                let records = matching.into_iter().skip(first).take(paging.per_page as usize).collect();
                return Ok(SearchPage { records, total_count, total_count_exact: true, next_cursor: None });
            }
            SearchScope::VendorByCreated(vendor) => {
                (BY_VENDOR_CREATED, keys::vendor_shipments(plan.retailer_id, *vendor))
            }
            SearchScope::RetailerByCreated => (BY_RETAILER_CREATED, keys::retailer_shipments(plan.retailer_id)),
            SearchScope::RetailerByUpdated => (BY_RETAILER_UPDATED, keys::retailer_shipments(plan.retailer_id)),
        };
        let mut page: SearchPage<Shipment> =
            self.search_index(index, partition, plan.key_range, filter, paging, after).await?;
        crate::purchase_orders::retain_own(&mut page.records, |s| s.retailer_id == plan.retailer_id, "shipment");
        Ok(page)
    }

    /// Queries one partition of an index in sort-key order (from just after `after`, if given),
    /// counting the matches and keeping the keys of the requested page, then reads the page's
    /// records. A filtered search examines at most the table's search budget of entries.
    pub(crate) async fn search_index<T: DeserializeOwned>(
        &self,
        index: IndexDefinition,
        partition: String,
        key_range: TimeRange,
        filter: Filter,
        paging: Paging,
        after: Option<&SearchCursor>,
    ) -> Result<SearchPage<T>, TableError> {
        self.search_index_items(index, partition, key_range, filter, paging, after).await?.try_map(record)
    }

    /// As [`Table::search_index`], returning the page's items as stored.
    pub(crate) async fn search_index_items(
        &self,
        index: IndexDefinition,
        partition: String,
        key_range: TimeRange,
        filter: Filter,
        paging: Paging,
        after: Option<&SearchCursor>,
    ) -> Result<SearchPage<Item>, TableError> {
        // The partition is the caller's; a cursor only says where in it to start, and only one
        // made by this same search is taken.
        let mut start_key = match after {
            None => None,
            Some(cursor) if cursor.fits(index, &partition, key_range) => Some(cursor.start_key(index, &partition)),
            Some(_) => return Err(InvalidCursor.into()),
        };
        let mut key_condition = "#ipk = :ipk".to_owned();
        let mut names = filter.names;
        let mut values = filter.values;
        names.insert("#ipk".into(), index.partition_key.into());
        names.insert("#pk".into(), PK.into());
        names.insert("#sk".into(), SK.into());
        names.insert("#isk".into(), index.sort_key.into());
        values.insert(":ipk".into(), s(partition.as_str()));
        match (key_range.min, key_range.max) {
            (Some(min), Some(max)) => {
                key_condition.push_str(" AND #isk BETWEEN :min AND :max");
                values.insert(":min".into(), s(keys::time_floor(min)));
                values.insert(":max".into(), s(keys::time_ceiling(max)));
            }
            (Some(min), None) => {
                key_condition.push_str(" AND #isk >= :min");
                values.insert(":min".into(), s(keys::time_floor(min)));
            }
            (None, Some(max)) => {
                key_condition.push_str(" AND #isk <= :max");
                values.insert(":max".into(), s(keys::time_ceiling(max)));
            }
            (None, None) => {}
        }
        let filter_expression = (!filter.conditions.is_empty()).then(|| filter.conditions.join(" AND "));
        // The index sort key too: a cursor at the page's last entry holds it.
        let mut projection = "#pk, #sk, #isk".to_owned();
        if filter.name_search.is_some() {
            projection.push_str(", customer_search");
        }
        let accepts = |item: &Item| match &filter.name_search {
            None => true,
            Some(search) => {
                item.get("customer_search").and_then(|v| v.as_s().ok()).is_some_and(|name| name_matches(search, name))
            }
        };

        let first = paging.offset();
        let end = first + u64::from(paging.per_page);
        // Reading stops here: the page, then up to PAGES_COUNTED_AHEAD more pages of matches counted.
        let stop = end + PAGES_COUNTED_AHEAD * u64::from(paging.per_page);
        let filtered = filter_expression.is_some() || filter.name_search.is_some();
        // Unfiltered, every entry examined is a match and `stop` bounds the reading already.
        let budget = if filtered { self.search_budget } else { u64::MAX };
        let mut examined = 0u64;
        let mut total = 0u64;
        let mut exhausted = false;
        let mut page_keys = Vec::new();
        let mut last_on_page = None;
        while total < stop && examined < budget {
            // Unfiltered, every entry read is a match: ask for no more than are still wanted
            // (DynamoDB counts read units by what it reads, whatever the answer keeps).
            // Filtered, read in larger steps, since some entries will not match.
            let wanted = stop - total;
            let limit = if filtered { wanted.clamp(100, 1000).min(budget - examined) } else { wanted };
            self.count_call();
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(index.name)
                .key_condition_expression(&key_condition)
                .set_filter_expression(filter_expression.clone())
                .projection_expression(&projection)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .set_exclusive_start_key(start_key.take())
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(TableError::unavailable("Query"))?;
            examined += u64::try_from(output.scanned_count.max(output.count)).unwrap_or_default();
            for item in output.items.unwrap_or_default().into_iter().filter(|item| accepts(item)) {
                if total >= stop {
                    break;
                }
                if (first..end).contains(&total) {
                    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
                    if let (Some(pk), Some(sk)) = (text(PK), text(SK)) {
                        page_keys.push((pk, sk));
                        last_on_page = Some(item);
                    }
                }
                total += 1;
            }
            start_key = output.last_evaluated_key;
            if start_key.is_none() {
                exhausted = true;
                break;
            }
        }
        let page_filled = total >= end;
        let next_cursor = if page_filled && (total > end || !exhausted) {
            last_on_page.and_then(|entry| SearchCursor::at_entry(index, &partition, &entry))
        } else if !page_filled && !exhausted {
            // The budget ran out first: go on from the last entry examined.
            start_key.and_then(|entry| SearchCursor::at_entry(index, &partition, &entry))
        } else {
            None
        };
        let records = self.batch_get_items(page_keys).await?;
        // Counted from a cursor, the total leaves out what came before it.
        let total_count_exact = exhausted && after.is_none();
        Ok(SearchPage { records, total_count: total, total_count_exact, next_cursor })
    }

    /// Reads records by key, in the order given, in batches of 100 (the most one call takes).
    pub(crate) async fn batch_get<T: DeserializeOwned>(
        &self,
        keys: Vec<(String, String)>,
    ) -> Result<Vec<T>, TableError> {
        self.batch_get_items(keys).await?.into_iter().map(record).collect()
    }

    /// As [`Table::batch_get`], returning the items as stored. Repeated keys are read once.
    pub(crate) async fn batch_get_items(&self, keys: Vec<(String, String)>) -> Result<Vec<Item>, TableError> {
        self.batch_get_items_read(keys, false).await
    }

    /// As [`Table::batch_get_items`], consistently when `consistent` (a write that just finished
    /// is seen).
    pub(crate) async fn batch_get_items_read(
        &self,
        keys: Vec<(String, String)>,
        consistent: bool,
    ) -> Result<Vec<Item>, TableError> {
        let mut found: HashMap<String, Item> = HashMap::with_capacity(keys.len());
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let mut request: Option<KeysAndAttributes> = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|(pk, sk)| key(pk.clone(), sk)).collect()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|error| TableError::Corrupt { key: "batch".into(), reason: error.to_string() })?,
            );
            let mut attempt = 0u32;
            while let Some(keys_and_attributes) = request.take() {
                self.count_call();
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys_and_attributes)
                    .send()
                    .await
                    .map_err(TableError::unavailable("BatchGetItem"))?;
                for item in output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    found.insert(describe(&item), item);
                }
                // DynamoDB may leave keys unprocessed under load: ask again, backing off.
                request = output.unprocessed_keys.and_then(|mut u| u.remove(&self.table));
                if request.is_some() {
                    attempt += 1;
                    if attempt > 8 {
                        return Err(TableError::Unavailable {
                            operation: "BatchGetItem",
                            source: "keys left unprocessed after 8 attempts".into(),
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(25 << attempt.min(6))).await;
                }
            }
        }
        Ok(keys.iter().filter_map(|(pk, sk)| found.get(&format!("{pk}/{sk}")).cloned()).collect())
    }

    /// Several shipments by id, in one batch read.
    pub async fn shipments(&self, ids: &[shipsync_domain::ids::ShipmentId]) -> Result<Vec<Shipment>, TableError> {
        self.batch_get(ids.iter().map(|id| (keys::shipment(*id), SHIPMENT.to_owned())).collect()).await
    }
}
