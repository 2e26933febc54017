//! The table's layout. One table holds every record; keys are prefixed by record kind.
//!
//! | record | pk | sk | listing indexes |
//! |---|---|---|---|
//! | retailer profile | `RETAILER#<id>` | `#PROFILE` | |
//! | custom carrier | `RETAILER#<id>` | `CARRIER#<id>` | |
//! | vendor | `RETAILER#<id>` | `VENDOR#<id>` | |
//! | store | `RETAILER#<id>` | `STORE#<id>` | |
//! | purchase order number (uniqueness) | `RETAILER#<id>` | `POREF#<number>` | |
//! | API user | `APIUSER#<key>` | `APIUSER` | |
//! | purchase order | `PO#<id>` | `PO` | gsi1 `RETAILER#<id>#POS`, gsi2 `RETAILER#<id>#VENDOR#<id>#POS` |
//! | shipment | `SHIPMENT#<id>` | `SHIPMENT` | gsi1, gsi2, gsi3, gsi4, gsi5 when its export failed, gsi6 while its export is scheduled or under way |
//! | store credentials | `RETAILER#<id>` | `STORESECRET#<id>` | |
//! | channel order | `RETAILER#<id>` | `ORDER#<store>#<channel order id>` | |
//! | channel fulfillment applied by reverse sync (idempotency) | `CHANNELFULFILLMENT#<store>#<channel id>` | `APPLIED` | |
//! | tracking number (carrier scans) | `TRACKING#<number>` | `SHIPMENT#<id>` | |
//! | id sequence | `SEQUENCE` | `ids` | |
//!
//! Access patterns, each one key lookup or one key-condition query (never a scan):
//!
//! | pattern | served by |
//! |---|---|
//! | authenticate an API user | GetItem `APIUSER#<key>` |
//! | a retailer's fee settings and carriers | Query `RETAILER#<id>`, sk < `CARRIER$` |
//! | a shipment / purchase order by id | GetItem |
//! | a purchase order by its number | GetItem `POREF#<number>`, then GetItem |
//! | a page of shipments or purchase orders | Query an index (keys and filter attributes only), then BatchGetItem of the page |
//! | shipments of a retailer by creation time (created_at_min/max) | `by_retailer_created` (gsi1): `RETAILER#<id>#SHIPMENTS`, `<created>#<id>` |
//! | shipments of a vendor by creation time; every vendor user's search | `by_vendor_created` (gsi2): `RETAILER#<id>#VENDOR#<id>#SHIPMENTS`, `<created>#<id>` |
//! | shipments of a retailer changed since (updated_at_min/max) | `by_retailer_updated` (gsi3): `RETAILER#<id>#SHIPMENTS`, `<updated>#<id>` |
//! | shipments of a purchase order (purchase_order_number) | `by_purchase_order` (gsi4): `PO#<id>#SHIPMENTS`, `<created>#<id>` |
//! | what needs a person: failed exports (sparse: only such records have the keys) | `by_attention` (gsi5): `RETAILER#<id>#ATTENTION`, `<since>#<id>` |
//! | exports the sweeper must re-queue: overdue scheduled ones, expired claims (sparse: only while scheduled or exporting) | `by_export_due` (gsi6): `EXPORTDUE#<shard>` (shipment id mod 4), `<sweep at>#<id>` |
//! | the purchase orders of a channel order (is the order fully shipped?) | GetItem `RETAILER#<id>` / `ORDER#<store>#<channel order id>`, consistent |
//! | a store, its credentials (kept apart), a retailer's stores or vendors | GetItem / Query `RETAILER#<id>`, begins_with `STORE#` / `VENDOR#` |
//! | was this channel fulfillment applied already? | GetItem `CHANNELFULFILLMENT#<store>#<channel id>`, consistent |
//! | shipments of any retailer by tracking number (carrier scans) | Query `TRACKING#<number>`, then BatchGetItem |
//! | customer name, tracking (partial), invoice reference, other time ranges | filters on the chosen index's query, over projected attributes |
//! | a new id | UpdateItem ADD on `SEQUENCE` |
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
pub const BY_PURCHASE_ORDER: IndexDefinition =
    IndexDefinition { name: "by_purchase_order", partition_key: "gsi4pk", sort_key: "gsi4sk" };

pub const BY_ATTENTION: IndexDefinition =
    IndexDefinition { name: "by_attention", partition_key: "gsi5pk", sort_key: "gsi5sk" };

/// Sparse: a shipment has its keys only while its export is scheduled or under way, keyed by
/// when the sweeper must re-queue it if it is still there (`ExportState::sweep_at`). Spread over
/// [`EXPORT_DUE_SHARDS`] partitions so that no one partition takes every shipment's writes.
pub const BY_EXPORT_DUE: IndexDefinition =
    IndexDefinition { name: "by_export_due", partition_key: "gsi6pk", sort_key: "gsi6sk" };

/// How many partitions `by_export_due` spreads shipments over (by id).
pub const EXPORT_DUE_SHARDS: u64 = 4;

pub const INDEXES: [IndexDefinition; 6] =
    [BY_RETAILER_CREATED, BY_VENDOR_CREATED, BY_RETAILER_UPDATED, BY_PURCHASE_ORDER, BY_ATTENTION, BY_EXPORT_DUE];

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
