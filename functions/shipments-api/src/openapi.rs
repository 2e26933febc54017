//! The API's contract as an OpenAPI 3.1 document, generated from the code: its paths and
//! methods from the router's own table ([`ShipmentsApi::routes`]), its bodies' schemas from the
//! response types (derived by `schemars`). Served at `GET /openapi.json`; written to
//! `docs/openapi.json` by `shipsync-admin openapi` (a test keeps that file current, and the
//! integration tests check every response they receive against this document).

use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use crate::{Endpoint, ShipmentsApi};

/// A response body the document describes: `{key: T}`, `{key: [T]}`, or either with the page's
/// `metadata`.
enum Body {
    One(&'static str, Value),
    Many(&'static str, Value),
    Page(&'static str, Value),
}

/// The error body every failure answers with.
#[derive(JsonSchema)]
#[allow(dead_code)]
struct ErrorBody {
    /// What is wrong, each naming its field where there is one.
    errors: Vec<String>,
}

/// A shipment's history, as `GET /shipments/{id}/events.json` answers it.
#[derive(serde::Serialize, JsonSchema)]
pub(crate) struct EventsBody {
    pub shipment_id: u64,
    pub events: Vec<EventView>,
    pub metadata: EventsMetadata,
}

#[derive(serde::Serialize, JsonSchema)]
pub(crate) struct EventView {
    pub at: String,
    pub event: &'static str,
    pub by: &'static str,
    pub export_state: Option<String>,
    pub due_at: Option<String>,
    pub detail: Option<String>,
}

#[derive(serde::Serialize, JsonSchema)]
pub(crate) struct EventsMetadata {
    /// How many of the newest events a shipment keeps.
    pub kept: usize,
}

/// The success status and body of each endpoint, from the types its handler answers with.
fn success(endpoint: Endpoint, schemas: &mut SchemaGenerator) -> (u16, Body) {
    use crate::dto::{Metadata, PurchaseOrderView, ShipmentView};
    let of = |schema: schemars::Schema| schema.to_value();
    let shipment = of(schemas.subschema_for::<ShipmentView>());
    let purchase_order = of(schemas.subschema_for::<PurchaseOrderView>());
    let store = of(schemas.subschema_for::<crate::stores::StoreView>());
    let label = of(schemas.subschema_for::<crate::labels::LabelView>());
    let ret = of(schemas.subschema_for::<crate::returns::ReturnView>());
    let cancellation = of(schemas.subschema_for::<crate::cancellations::CancellationView>());
    let vendor = of(schemas.subschema_for::<crate::stores::VendorView>());
    let product = of(schemas.subschema_for::<crate::orders::ProductView>());
    let _ = schemas.subschema_for::<Metadata>();
    match endpoint {
        Endpoint::CreateShipment => (201, Body::One("shipment", shipment)),
        Endpoint::GetShipment | Endpoint::UpdateShipment => (200, Body::One("shipment", shipment)),
        Endpoint::ExportShipment => (202, Body::One("shipment", shipment)),
        Endpoint::SearchShipments | Endpoint::FailedExports => (200, Body::Page("shipments", shipment)),
        Endpoint::ShipmentEvents => (200, Body::One("", of(schemas.subschema_for::<EventsBody>()))),
        Endpoint::ListPurchaseOrders => (200, Body::Page("purchase_orders", purchase_order)),
        Endpoint::GetPurchaseOrder => (200, Body::One("purchase_order", purchase_order)),
        Endpoint::CreateStore => (201, Body::One("store", store)),
        Endpoint::GetStore | Endpoint::UpdateStore => (200, Body::One("store", store)),
        Endpoint::ListStores => (200, Body::Many("stores", store)),
        Endpoint::ListVendors => (200, Body::Many("vendors", vendor)),
        Endpoint::UpdateVendor => (200, Body::One("vendor", vendor)),
        Endpoint::SaveProduct => (201, Body::One("product", product)),
        Endpoint::ListProducts => (200, Body::Many("products", product)),
        Endpoint::OrderHealth => {
            (200, Body::Page("problems", of(schemas.subschema_for::<crate::orders::ProblemView>())))
        }
        Endpoint::ReprocessOrder => {
            (200, Body::One("order", of(schemas.subschema_for::<crate::orders::ReprocessedView>())))
        }
        Endpoint::AttachPurchaseOrderLabel | Endpoint::AttachShipmentLabel => (201, Body::One("label", label)),
        Endpoint::PurchaseOrderLabels | Endpoint::ShipmentLabels => (200, Body::Many("labels", label)),
        Endpoint::EmailPurchaseOrder => {
            (202, Body::One("email", of(schemas.subschema_for::<crate::labels::EmailView>())))
        }
        Endpoint::CreateReturn => (201, Body::One("return", ret)),
        Endpoint::ListReturns => (200, Body::Page("returns", ret)),
        Endpoint::GetReturn | Endpoint::UpdateReturn => (200, Body::One("return", ret)),
        Endpoint::CreateCancellation => (201, Body::One("cancellation", cancellation)),
        Endpoint::PurchaseOrderCancellations => (200, Body::Many("cancellations", cancellation)),
        Endpoint::GetCancellation
        | Endpoint::ApproveCancellation
        | Endpoint::DeclineCancellation
        | Endpoint::PushCancellation => (200, Body::One("cancellation", cancellation)),
    }
}

fn envelope(body: Body) -> Value {
    let wrap = |key: &str, inner: Value| json!({"type": "object", "required": [key], "properties": {key: inner}});
    match body {
        Body::One("", schema) => schema,
        Body::One(key, schema) => wrap(key, schema),
        Body::Many(key, schema) => wrap(key, json!({"type": "array", "items": schema})),
        Body::Page(key, schema) => json!({"type": "object", "required": [key, "metadata"], "properties": {
            key: {"type": "array", "items": schema},
            "metadata": {"$ref": "#/components/schemas/Metadata"},
        }}),
    }
}

/// The document.
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    // Response bodies: what serializing writes (a field serde skips when empty is not required).
    settings.contract = schemars::generate::Contract::Serialize;
    let mut schemas = SchemaGenerator::new(settings);
    let error = schemas.subschema_for::<ErrorBody>().to_value();
    let mut paths: Map<String, Value> = Map::new();
    for route in ShipmentsApi::routes() {
        let (status, body) = success(route.endpoint, &mut schemas);
        let mut operation = json!({
            "operationId": format!("{:?}", route.endpoint),
            "security": [{"basic": []}],
            "responses": {
                status.to_string(): {"description": "done", "content": {"application/json": {"schema": envelope(body)}}},
                "default": {"description": "refused: each error names its field where there is one",
                    "content": {"application/json": {"schema": error.clone()}}},
            },
        });
        if route.path.contains("{id}") {
            operation["parameters"] =
                json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "shipsync Shipment API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Duoplane-compatible shipments, purchase orders, stores, labels, returns and cancellations. \
                Generated from the code (the router's routes and the response types); HTTP Basic with an API key and password.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {"basic": {"type": "http", "scheme": "basic"}},
            "schemas": schemas.take_definitions(true),
        },
    })
}

/// The document as the API serves it: `docs/openapi.json`, compiled in. The function carries
/// the generated text rather than the generator (a test holds the two equal), which keeps the
/// schema code out of its package.
pub fn served() -> shipsync_http_api::ApiResponse {
    let mut response = http::Response::new(include_str!("../../../docs/openapi.json").to_owned());
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, http::header::HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

/// The document as `docs/openapi.json` holds it (pretty, with a final newline).
pub fn document_text() -> String {
    format!("{}\n", serde_json::to_string_pretty(&document()).unwrap_or_default())
}
