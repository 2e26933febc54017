//! Products (which vendor ships a SKU), order health (what needs a person), and reprocessing an
//! order once its problems are fixed. Retailer users only.

use http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use shipsync_app::Failure;
use shipsync_app::intake::OrderIntake;
use shipsync_domain::ValidationErrors;
use shipsync_domain::access::Principal;
use shipsync_domain::export::ExportState;
use shipsync_domain::ids::VendorId;
use shipsync_domain::limits::{MAX_NAME_CHARS, check_length};
use shipsync_domain::money::{format_cost, parse_cost_text};
use shipsync_domain::orders::Product;
use shipsync_domain::time::format_api_time;
use shipsync_domain::vocabulary::Sku;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_body, json_response};
use shipsync_table::Attention;

use crate::ShipmentsApi;
use crate::dto::Metadata;
use crate::stores::retailer_only;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEnvelope {
    product: ProductBody,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductBody {
    sku: Option<String>,
    vendor_id: Option<u64>,
    name: Option<String>,
    #[serde(default)]
    cost: Option<Value>,
}

/// A product as the API shows it.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ProductView {
    sku: String,
    vendor_id: u64,
    name: String,
    cost: Option<String>,
}

fn product_view(product: &Product) -> ProductView {
    ProductView {
        sku: product.sku.to_string(),
        vendor_id: product.vendor_id.get(),
        name: product.name.clone(),
        cost: product.cost.map(format_cost),
    }
}

/// An open problem in order health: one an order or a store has, or a failed export.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ProblemView {
    kind: String,
    /// A cancellation's problem names it, for its actions (approve, push again).
    #[serde(skip_serializing_if = "Option::is_none")]
    cancellation_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipment_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purchase_order_id: Option<u64>,
    order_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel_order_id: Option<String>,
    store_id: u64,
    reason: String,
    since: Option<String>,
}

/// An order applied again (`POST /orders/{id}/reprocess.json`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct ReprocessedView {
    id: u64,
    number: String,
    channel_order_id: String,
    purchase_order_ids: Vec<u64>,
    unknown_lines: usize,
}

impl ShipmentsApi {
    /// `POST /products.json`: adds a product, or replaces the one with the same SKU.
    pub(crate) async fn save_product(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let body = json_body::<ProductEnvelope>(request)?.product;
        let mut errors = ValidationErrors::new();
        // The SKU is part of the product's key.
        let sku =
            Sku::parse(body.sku.as_deref().unwrap_or_default()).map_err(|problem| errors.push("sku", problem)).ok();
        if let Some(name) = &body.name {
            check_length(&mut errors, "name", name, MAX_NAME_CHARS);
        }
        let cost = match &body.cost {
            None | Some(Value::Null) => None,
            Some(Value::Number(number)) => parse_cost_text(&number.to_string()).unwrap_or_else(|message| {
                errors.push("cost", message);
                None
            }),
            Some(Value::String(text)) => parse_cost_text(text).unwrap_or_else(|message| {
                errors.push("cost", message);
                None
            }),
            Some(_) => {
                errors.push("cost", "must be a number or a numeric string");
                None
            }
        };
        let vendor = match body.vendor_id.map(VendorId::new) {
            Some(Ok(id)) => match self.table.vendor(principal.retailer_id, id).await.map_err(Failure::from)? {
                Some(vendor) => Some(vendor),
                None => {
                    errors.push("vendor_id", format!("{id} is not a vendor of this retailer"));
                    None
                }
            },
            Some(Err(problem)) => {
                errors.push("vendor_id", problem.to_string());
                None
            }
            None => {
                errors.push("vendor_id", "is required");
                None
            }
        };
        let (vendor, sku) = errors.into_result(vendor.zip(sku))?.ok_or(ApiError::Internal)?;
        let product = Product { name: body.name.unwrap_or_else(|| sku.to_string()), sku, vendor_id: vendor.id, cost };
        self.table.save_product(principal.retailer_id, &product).await.map_err(Failure::from)?;
        Ok(json_response(StatusCode::CREATED, &json!({ "product": product_view(&product) })))
    }

    pub(crate) async fn list_products(&self, principal: &Principal) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let products = self.table.products(principal.retailer_id).await.map_err(Failure::from)?;
        Ok(json_response(StatusCode::OK, &json!({ "products": products.iter().map(product_view).collect::<Vec<_>>() })))
    }

    /// `GET /order_health.json`: open problems, oldest first: unknown SKUs, ignored channel
    /// fulfillments, failed exports.
    pub(crate) async fn order_health(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let (paging, after) = crate::purchase_orders::page_request(request, principal)?;
        let page = self.table.attention(principal.retailer_id, paging, after.as_ref()).await.map_err(Failure::from)?;
        let problems: Vec<ProblemView> = page
            .records
            .iter()
            .map(|entry| match entry {
                Attention::Problem(problem) => ProblemView {
                    kind: problem.kind.name().to_owned(),
                    cancellation_id: problem.key.strip_prefix("cancellation:").and_then(|id| id.parse::<u64>().ok()),
                    order_id: problem.order_id,
                    shipment_id: None,
                    purchase_order_id: None,
                    order_number: problem.order_number.clone(),
                    channel_order_id: Some(problem.channel_order_id.clone()),
                    store_id: problem.store_id.get(),
                    reason: problem.reason.clone(),
                    since: Some(format_api_time(problem.since)),
                },
                Attention::FailedExport(shipment) => {
                    let (reason, since) = match &shipment.export.state {
                        ExportState::Failed { message, failed_at } => {
                            (message.clone(), Some(format_api_time(*failed_at)))
                        }
                        _ => (String::new(), None),
                    };
                    ProblemView {
                        kind: "export_failed".to_owned(),
                        cancellation_id: None,
                        order_id: None,
                        shipment_id: Some(shipment.id.get()),
                        purchase_order_id: Some(shipment.purchase_order_id.get()),
                        order_number: shipment.purchase_order_public_reference.clone(),
                        channel_order_id: None,
                        store_id: shipment.store_id.get(),
                        reason,
                        since,
                    }
                }
            })
            .collect();
        let metadata = Metadata::for_page(paging, problems.len(), &page);
        Ok(json_response(StatusCode::OK, &json!({ "problems": problems, "metadata": metadata })))
    }

    /// `POST /orders/{id}/reprocess.json`: applies the order's last version again, with the
    /// products as they are now; problems that are fixed are cleared.
    pub(crate) async fn reprocess_order(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        retailer_only(principal)?;
        let order_id: u64 = id.parse().map_err(|_| ApiError::NotFound(format!("order {id} not found")))?;
        let intake = OrderIntake::new(self.table.clone(), self.planner.clone(), self.clock.clone());
        let (record, applied) = intake.reprocess(principal.retailer_id, order_id).await?;
        Ok(json_response(
            StatusCode::OK,
            &json!({ "order": ReprocessedView {
                id: order_id,
                number: record.number.clone(),
                channel_order_id: record.channel_order_id.to_string(),
                purchase_order_ids: applied.purchase_orders.iter().map(|id| id.get()).collect(),
                unknown_lines: applied.unknown_lines,
            }}),
        ))
    }
}
