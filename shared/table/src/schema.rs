//! The table's layout. One table holds every record; keys are prefixed by record kind. A record's
//! fields live under `data`; keys, index keys and the attributes named below sit beside it.
//!
//! Every record kind (a unit test checks that each key `keys.rs` makes is here, and nothing else):
//!
//! | record | `pk` | `sk` | indexes | TTL |
//! |---|---|---|---|---|
//! | retailer profile (name, fee settings) | `RETAILER#<id>` | `#PROFILE` | | |
//! | custom carrier | `RETAILER#<id>` | `CARRIER#<id>` | | |
//! | vendor | `RETAILER#<id>` | `VENDOR#<id>` | | |
//! | channel store (a retailer's sales channel and its settings) | `RETAILER#<id>` | `STORE#<id>` | | |
//! | channel store credentials: names readable, values KMS-sealed in `ciphertext` (API) and `webhook_ciphertext` (webhook secrets) | `RETAILER#<id>` | `STORESECRET#<id>` | | |
//! | purchase order number (uniqueness within a retailer) | `RETAILER#<id>` | `POREF#<number>` | | |
//! | channel order: the last order version applied (with `version`) and `purchase_order_ids`, its purchase orders | `RETAILER#<id>` | `ORDER#<store>#<channel order id>` | | |
//! | product (which vendor ships a SKU) | `RETAILER#<id>` | `PRODUCT#<sku>` | | |
//! | order problem (order health) | `RETAILER#<id>` | `PROBLEM#<key>` | gsi5 `RETAILER#<id>#ATTENTION`, `<since>#0000000000000000#<key>` | |
//! | kept payload: one that could not be applied, its bytes in `body` (at most 350 KiB) | `RETAILER#<id>` | `PAYLOAD#<problem key>` | | |
//! | API user (salted password digest) | `APIUSER#<key>` | `APIUSER` | | |
//! | purchase order (with `version`; `shipment_ids`, a number set of its shipments, added to in the transaction that writes each) | `PO#<id>` | `PO` | gsi1 `RETAILER#<id>#POS`, gsi2 `RETAILER#<id>#VENDOR#<id>#POS`, both `<created>#<id>` | |
//! | shipment (with `version`) | `SHIPMENT#<id>` | `SHIPMENT` | gsi1 `RETAILER#<id>#SHIPMENTS`, `<created>#<id>`; gsi2 `RETAILER#<id>#VENDOR#<id>#SHIPMENTS`, `<created>#<id>`; gsi3 `RETAILER#<id>#SHIPMENTS`, `<updated>#<id>`; gsi5 `RETAILER#<id>#ATTENTION`, `<failed at>#<id>` only while its export failed; gsi6 `EXPORTDUE#<id mod 4>`, `<sweep at>#<id>` only while its export is scheduled or under way | |
//! | tracking number within a store (for that store's carrier scans; one per number a shipment carries if its store had a tracking provider when it was made (`tracked_by_provider`), left behind when an edit drops it) | `TRACKING#<store>#<number>` | `SHIPMENT#<id>` | | |
//! | channel fulfillment applied by reverse sync, and as which shipment (idempotency) | `CHANNELFULFILLMENT#<store>#<channel id>` | `APPLIED` | | |
//! | channel store by id alone (webhook URLs carry only that) | `STOREREF#<id>` | `STORE` | | |
//! | the Amazon store a seller's notifications in a marketplace go to (claimed by one store: `owner`) | `AMAZONSELLER#<seller>#<marketplace>` | `STORE` | | |
//! | the poller's list: every channel store, with its retailer | `POLLING` | `STORE#<id>` | | |
//! | a store's poll state: cursor, last poll, failing since | `POLLSTATE#<store>` | `STATE` | | |
//! | channel order by shipsync's order id (for reprocessing) | `ORDERREF#<id>` | `ORDER` | | |
//! | shipping label of a purchase order or one of its shipments (its file in the labels bucket, at `labels/<retailer>/<po>/<id>.<format>`) | `LABELS#<retailer>#<po>` | `LABEL#<id, 16 digits>` | | |
//! | a purchase order's email to its vendor, sent (with the provider's `message_id`) for the request made at that time | `LABELS#<retailer>#<po>` | `MAILSENT#<requested at, ms, 16 digits>` | | |
//! | return (RMA) of a purchase order (with `version`) | `RETURNS#<retailer>#<po>` | `RETURN#<id, 16 digits>` | gsi1 `RETAILER#<id>#RETURNS`, gsi2 `RETAILER#<id>#VENDOR#<id>#RETURNS`, both `<created>#<id>` | |
//! | a purchase order's return counter (`version`, moved by every new return's transaction) | `RETURNS#<retailer>#<po>` | `COUNTER` | | |
//! | a return's purchase order, by the return's id | `RETAILER#<id>` | `RETURNREF#<id>` | | |
//! | a return made in a channel, for one purchase order (written with the return) | `RETAILER#<id>` | `CHANNELRETURN#<store>#<channel return id>#<po>` | | |
//! | merchant-driven cancellation of a purchase order's units (with `version`; written with the purchase order and its problem) | `CANCELS#<retailer>#<po>` | `CANCEL#<id, 16 digits>` | | |
//! | a cancellation's purchase order, by the cancellation's id (sorted after `CARRIER$`) | `RETAILER#<id>` | `REF#CANCELLATION#<id>` | | |
//! | id sequence: the last id handed out, in `last` | `SEQUENCE` | `ids` | | |
//!
//! Every index copies the keys and [`PROJECTED_ATTRIBUTES`] (what search filters read). Sort keys of
//! the listing indexes are `<time>#<id>` (the id 16 digits wide, so equal times keep an order); a
//! time range is the key condition from `<time>` to `<time>#~`.
//!
//! Access patterns, each one key lookup or one key-condition query (never a scan). Reads are
//! eventually consistent unless marked consistent: those decide a write that may race another.
//!
//! | pattern | served by (`Table::` method) |
//! |---|---|
//! | authenticate an API user | GetItem `APIUSER#<key>` / `APIUSER` (`api_user`) |
//! | a retailer's profile, fee settings and carriers | Query `RETAILER#<id>`, sk < `CARRIER$` (`retailer_with_carriers`) |
//! | a vendor; a retailer's vendors | GetItem `RETAILER#<id>` / `VENDOR#<id>` (`vendor`); Query `RETAILER#<id>`, begins_with `VENDOR#` (`vendors`) |
//! | a channel store; a retailer's channel stores | GetItem `RETAILER#<id>` / `STORE#<id>` (`channel_store`); Query `RETAILER#<id>`, begins_with `STORE#` (`channel_stores`) |
//! | a channel store by its id alone (webhooks) | GetItem `STOREREF#<id>` / `STORE`, then GetItem the store (`channel_store_by_id`) |
//! | the Amazon store of a seller and marketplace (notifications) | GetItem `AMAZONSELLER#<seller>#<marketplace>` / `STORE` (`amazon_store`) |
//! | a store's credentials, its webhook secrets, or only their names (kept apart from the store) | GetItem `RETAILER#<id>` / `STORESECRET#<id>`, then KMS Decrypt of the one purpose asked for (`credentials`, `webhook_credentials`, `credential_names`) |
//! | a shipment / purchase order by id | GetItem `SHIPMENT#<id>` / `SHIPMENT`, `PO#<id>` / `PO` (`shipment`, `purchase_order`; `retailer_shipment` and friends answer "absent" for another retailer's) |
//! | a purchase order as just written (is the whole order shipped now?) | GetItem `PO#<id>` / `PO`, consistent (`purchase_order_now`) |
//! | a purchase order's returns (for what may still come back) | GetItem `RETURNS#<retailer>#<po>` / `COUNTER` (consistent), Query begins_with `RETURN#` (`purchase_order_returns`) |
//! | a return by id | GetItem `RETAILER#<id>` / `RETURNREF#<id>`, then GetItem (`retailer_return`) |
//! | the returns made of a channel's return | Query begins_with `CHANNELRETURN#<store>#<channel return id>#` (consistent, `channel_returns`) |
//! | a retailer's or a vendor's returns | Query gsi1 `RETAILER#<id>#RETURNS` or gsi2 `RETAILER#<id>#VENDOR#<id>#RETURNS` (`list_returns`) |
//! | a purchase order's cancellations | Query begins_with `CANCEL#` (consistent, `purchase_order_cancellations`); one: GetItem (consistent, `cancellation`) |
//! | a cancellation by id | GetItem `RETAILER#<id>` / `REF#CANCELLATION#<id>`, then GetItem (`retailer_cancellation`) |
//! | whether a purchase order's email request was sent | GetItem `LABELS#<retailer>#<po>` / `MAILSENT#<requested at>` (`mail_sent`) |
//! | a purchase order's labels, or one label | Query `LABELS#<retailer>#<po>`, begins_with `LABEL#` (`purchase_order_labels`); GetItem (`label`) |
//! | a purchase order by its number | GetItem `RETAILER#<id>` / `POREF#<number>`, then GetItem (`purchase_order_by_number`) |
//! | several shipments, purchase orders or products by key | BatchGetItem, 100 keys a call (`shipments`, `purchase_orders`, `products_by_sku`) |
//! | a page of shipments or purchase orders | Query an index (keys and projected attributes only) counting the matches, then BatchGetItem of the page (`search_shipments`, `list_purchase_orders`) |
//! | shipments of a retailer by creation time (created_at_min/max); its purchase orders | `by_retailer_created` (gsi1): `RETAILER#<id>#SHIPMENTS` / `RETAILER#<id>#POS`, `<created>#<id>` |
//! | shipments of a vendor by creation time, every vendor user's search; a vendor's purchase orders | `by_vendor_created` (gsi2): `RETAILER#<id>#VENDOR#<id>#SHIPMENTS` / `RETAILER#<id>#VENDOR#<id>#POS`, `<created>#<id>` |
//! | shipments of a retailer changed since (updated_at_min/max) | `by_retailer_updated` (gsi3): `RETAILER#<id>#SHIPMENTS`, `<updated>#<id>` |
//! | shipments of a purchase order (purchase_order_number searches, filtered once read; whole-order release, cancellations, reverse sync) | GetItem `PO#<id>` / `PO` for its `shipment_ids`, then BatchGetItem (`shipments_of_purchase_order`) |
//! | customer name, tracking (partial), invoice reference, other time ranges | filters on the chosen index's query, over projected attributes |
//! | what needs a person, oldest first: failed exports and order problems (sparse: only such records have the keys) | `by_attention` (gsi5): `RETAILER#<id>#ATTENTION`, then BatchGetItem (`attention`, `failed_exports`) |
//! | exports the sweeper must re-queue: overdue scheduled ones, expired claims (sparse: only while scheduled or exporting) | `by_export_due` (gsi6): each `EXPORTDUE#<shard>`, sk up to `<now>#~`, keys only (`overdue_exports`) |
//! | a channel order's record and its purchase orders (which version applies? is the order fully shipped?) | GetItem `RETAILER#<id>` / `ORDER#<store>#<channel order id>`, consistent (`order_record`, `channel_order`) |
//! | a channel order by shipsync's order id (reprocess) | GetItem `ORDERREF#<id>` / `ORDER`, then the consistent GetItem above (`order_record_by_id`, `retailer_order_record_by_id`) |
//! | was this channel fulfillment applied already? | GetItem `CHANNELFULFILLMENT#<store>#<channel id>` / `APPLIED`, consistent (`channel_fulfillment_applied`) |
//! | a store's shipments by tracking number (its carrier scans) | Query `TRACKING#<store>#<number>` (no spaces, upper case), begins_with `SHIPMENT#`, then BatchGetItem, keeping those that still carry it (`shipments_by_tracking`) |
//! | a retailer's products | Query `RETAILER#<id>`, begins_with `PRODUCT#` (`products`) |
//! | a retailer's order problems of one channel order and kind | Query `RETAILER#<id>`, begins_with `PROBLEM#<key prefix>` (`problems_with_prefix`) |
//! | a kept payload and its bytes | GetItem `RETAILER#<id>` / `PAYLOAD#<problem key>` (`kept_payload`) |
//! | the stores the poller looks at | Query `POLLING`, begins_with `STORE#` (`polled_stores`) |
//! | a store's poll state | GetItem `POLLSTATE#<store>` / `STATE` (`poll_state`) |
//! | a new block of ids | UpdateItem ADD `last` on `SEQUENCE` / `ids` (`allocate_ids`) |
//! | was anything ever written? (the local stack's first run) | GetItem `SEQUENCE` / `ids` (`is_empty`) |
//!
//! Writes: purchase orders, shipments and channel orders carry a `version`, and every write of
//! one is conditional on the version read; a shipment is written in one TransactWriteItems with
//! its purchase order, its tracking-number records and, from reverse sync, its `APPLIED` record.
//! The only scans are one-offs an operator runs by hand to move keys of an older form to the ones
//! above: `rekey_vendor_listings` (`VENDOR#<id>#SHIPMENTS`, `VENDOR#<id>#POS`) and
//! `rekey_tracking_numbers` (`TRACKING#<number>`, which a scan from any store could reach).
//!
//! Every listing partition starts with the retailer, so no query can reach another tenant's
//! records whatever id a request names; reads by id (`SHIPMENT#<id>`, `PO#<id>`) go through
//! `Table::retailer_shipment` and friends, which answer "absent" for another retailer's record.
//!
//! `infra/template.yaml` declares the same table; a test checks that the two agree.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};

use crate::TableError;

/// A global secondary index: its name, key attributes, and the attributes it copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
}

/// Attributes every index copies besides the keys: what search filters read, so that a page
/// of results can be counted without reading whole records.
pub const PROJECTED_ATTRIBUTES: [&str; 7] = [
    "customer_search",
    "tracking_search",
    "vendor_invoice_reference",
    "vendor_id",
    "created_at",
    "updated_at",
    "invoiced_at",
];

pub const BY_RETAILER_CREATED: IndexDefinition =
    IndexDefinition { name: "by_retailer_created", partition_key: "gsi1pk", sort_key: "gsi1sk" };
pub const BY_VENDOR_CREATED: IndexDefinition =
    IndexDefinition { name: "by_vendor_created", partition_key: "gsi2pk", sort_key: "gsi2sk" };
pub const BY_RETAILER_UPDATED: IndexDefinition =
    IndexDefinition { name: "by_retailer_updated", partition_key: "gsi3pk", sort_key: "gsi3sk" };

pub const BY_ATTENTION: IndexDefinition =
    IndexDefinition { name: "by_attention", partition_key: "gsi5pk", sort_key: "gsi5sk" };

/// Sparse: a shipment has its keys only while its export is scheduled or under way, keyed by
/// when the sweeper must re-queue it if it is still there (`ExportState::sweep_at`). Spread over
/// [`EXPORT_DUE_SHARDS`] partitions so that no one partition takes every shipment's writes.
pub const BY_EXPORT_DUE: IndexDefinition =
    IndexDefinition { name: "by_export_due", partition_key: "gsi6pk", sort_key: "gsi6sk" };

/// How many partitions `by_export_due` spreads shipments over (by id).
pub const EXPORT_DUE_SHARDS: u64 = 4;

// gsi4 (`by_purchase_order`) is gone: a purchase order holds its shipments' ids, which saved an
// index write on every shipment write. Its attribute names are not reused.
pub const INDEXES: [IndexDefinition; 5] =
    [BY_RETAILER_CREATED, BY_VENDOR_CREATED, BY_RETAILER_UPDATED, BY_ATTENTION, BY_EXPORT_DUE];

/// The table's key attributes (all strings): `pk`, `sk`, then each index's two.
pub fn key_attributes() -> Vec<&'static str> {
    let mut names = vec![crate::keys::PK, crate::keys::SK];
    for index in INDEXES {
        names.extend([index.partition_key, index.sort_key]);
    }
    names
}

/// Creates the table as the template declares it (for the local stack and the tests).
pub async fn create_table(client: &Client, table: &str) -> Result<(), TableError> {
    let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let built = |error: aws_sdk_dynamodb::error::BuildError| TableError::Corrupt {
        key: table.to_owned(),
        reason: error.to_string(),
    };
    let mut request = client.create_table().table_name(table).billing_mode(BillingMode::PayPerRequest);
    for name in key_attributes() {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(built)?,
        );
    }
    request = request
        .key_schema(key(crate::keys::PK, KeyType::Hash).map_err(built)?)
        .key_schema(key(crate::keys::SK, KeyType::Range).map_err(built)?);
    for index in INDEXES {
        let projection = Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(PROJECTED_ATTRIBUTES.iter().map(|a| (*a).to_owned()).collect()))
            .build();
        request = request.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.partition_key, KeyType::Hash).map_err(built)?)
                .key_schema(key(index.sort_key, KeyType::Range).map_err(built)?)
                .projection(projection)
                .build()
                .map_err(built)?,
        );
    }
    match request.send().await {
        Ok(_) => Ok(()),
        Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => Ok(()),
        Err(error) => Err(TableError::unavailable("CreateTable")(error)),
    }
}

#[cfg(test)]
mod tests {
    //! The layout above is the map a newcomer reads: these tests keep it true to `keys.rs`, so a
    //! record kind cannot be added or removed without the map following.

    const SCHEMA: &str = include_str!("schema.rs");
    const KEYS: &str = include_str!("keys.rs");

    /// The crate documentation of a source file (its `//!` lines), as markdown.
    fn crate_doc(source: &str) -> Vec<&str> {
        source.lines().filter_map(|line| line.strip_prefix("//!")).map(str::trim).collect()
    }

    /// The string literals of a source file's code (comments skipped), each a key or a part of one.
    fn string_literals(source: &str) -> Vec<String> {
        let mut literals = Vec::new();
        for line in source.lines() {
            let mut chars = line.chars().peekable();
            let mut literal: Option<String> = None;
            while let Some(c) = chars.next() {
                match (&mut literal, c) {
                    (None, '/') if chars.peek() == Some(&'/') => break,
                    (None, '"') => literal = Some(String::new()),
                    (None, _) => {}
                    (Some(text), '\\') => text.extend(chars.next()),
                    (Some(_), '"') => literals.extend(literal.take()),
                    (Some(text), c) => text.push(c),
                }
            }
        }
        literals
    }

    /// A key's shape: every placeholder (`{id}` in a format string, `<id>` in the doc) becomes `*`.
    fn shape(text: &str, open: char, close: char) -> String {
        let mut shaped = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == open && chars.peek() == Some(&open) {
                shaped.push(chars.next().unwrap_or(c));
            } else if c == open {
                chars.by_ref().find(|c| *c == close);
                shaped.push('*');
            } else {
                shaped.push(c);
            }
        }
        shaped
    }

    /// The inline code spans of some markdown.
    fn code_spans(text: &str) -> Vec<&str> {
        text.split('`').skip(1).step_by(2).collect()
    }

    /// Whether a doc key (placeholders as `*`) fits a key shape, whose `*` stands for one or more characters.
    fn fits(shape: &[u8], key: &[u8]) -> bool {
        match shape.split_first() {
            None => key.is_empty(),
            Some((b'*', rest)) => (1..=key.len()).any(|taken| fits(rest, &key[taken..])),
            Some((c, rest)) => key.first() == Some(c) && fits(rest, &key[1..]),
        }
    }

    /// Every key and key part `keys.rs` makes, as shapes.
    fn key_shapes() -> Vec<String> {
        string_literals(KEYS).iter().map(|literal| shape(literal, '{', '}')).collect()
    }

    /// The `pk` and `sk` cells of the record table, one row per record kind.
    fn record_rows() -> Vec<(String, String)> {
        crate_doc(SCHEMA)
            .into_iter()
            .skip_while(|line| !line.starts_with("| record |"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').collect();
                (cells[2].trim().to_owned(), cells[3].trim().to_owned())
            })
            .collect()
    }

    #[test]
    fn the_schema_doc_shows_every_key_keys_rs_makes() {
        let doc = crate_doc(SCHEMA).join("\n");
        let documented: Vec<String> = code_spans(&doc).iter().map(|span| shape(span, '<', '>')).collect();
        let shapes = key_shapes();
        assert!(shapes.len() > 40, "keys.rs read wrongly: {shapes:?}");
        let missing: Vec<&String> = shapes
            .iter()
            .filter(|shape| !documented.iter().any(|key| fits(shape.as_bytes(), key.as_bytes())))
            .collect();
        assert!(missing.is_empty(), "keys.rs makes keys schema.rs does not show (placeholders as *): {missing:?}");
    }

    #[test]
    fn every_record_key_in_the_schema_doc_is_one_keys_rs_makes() {
        // Shapes that start with a placeholder are index sort keys (`<time>#<id>`), not record keys.
        let shapes: Vec<String> = key_shapes().into_iter().filter(|shape| !shape.starts_with('*')).collect();
        let rows = record_rows();
        assert!(rows.len() > 20, "the record table read wrongly: {rows:?}");
        let mut unknown = Vec::new();
        for (pk, sk) in &rows {
            assert!(!code_spans(pk).is_empty() && !code_spans(sk).is_empty(), "a record without keys: {pk} | {sk}");
            // A plain word (`PO`, `STATE`) names a kind within a partition checked here already.
            for key in code_spans(pk).into_iter().chain(code_spans(sk)).filter(|key| key.contains('#')) {
                let key = shape(key, '<', '>');
                if !shapes.iter().any(|shape| fits(shape.as_bytes(), key.as_bytes())) {
                    unknown.push(key);
                }
            }
        }
        assert!(unknown.is_empty(), "schema.rs shows record keys keys.rs no longer makes: {unknown:?}");
    }

    #[test]
    fn key_shapes_fit_only_keys_of_their_form() {
        assert_eq!(shape("ORDER#{store}#{channel_order_id}", '{', '}'), "ORDER#*#*");
        assert_eq!(shape("ORDER#<store>#<channel order id>", '<', '>'), "ORDER#*#*");
        assert!(fits(b"TRACKING#*", b"TRACKING#*#*"));
        assert!(!fits(b"RETAILER#*#ATTENTION", b"RETAILER#*"));
        assert!(!fits(b"RETAILER#*", b"RETAILER#"));
        assert_eq!(string_literals("let a = format!(\"A#{id}\"); // \"not this\"\n// \"nor this\""), ["A#{id}"]);
    }
}
