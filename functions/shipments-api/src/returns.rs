//! Return requests: a retailer opens a return (RMA) on a purchase order, lists and reads them;
//! the retailer moves them on, the vendor marks them received.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shipsync_app::Failure;
use shipsync_domain::ValidationErrors;
use shipsync_domain::access::Principal;
use shipsync_domain::cancellations::ChannelUpdate;
use shipsync_domain::ids::PurchaseOrderId;
use shipsync_domain::labels::LabelState;
use shipsync_domain::returns::{Return, ReturnInput, ReturnRef, ReturnState, ReturnSync, draft_return};
use shipsync_domain::time::format_api_time;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_body, json_response, query_pairs};
use shipsync_table::TableError;

use crate::dto::Metadata;
use crate::purchase_orders::page_request;
use crate::{ShipmentsApi, path_id};

/// How often a new return is tried again when another was made on its purchase order meanwhile.
const CREATE_ATTEMPTS: usize = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnEnvelope {
    #[serde(rename = "return")]
    body: ReturnInput,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeEnvelope {
    #[serde(rename = "return")]
    body: ReturnChange,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReturnChange {
    state: Option<String>,
    #[serde(default, rename = "id")]
    _id: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct ReturnView {
    id: u64,
    purchase_order_id: u64,
    purchase_order_number: String,
    vendor_id: u64,
    customer_name: String,
    state: &'static str,
    reason: String,
    label_id: Option<u64>,
    items: Vec<serde_json::Value>,
    history: Vec<serde_json::Value>,
    /// `none`, `from_channel` (made there), `pushing`, `pushed` or `push_failed`.
    channel_sync: &'static str,
    channel_return_id: Option<String>,
    channel_message: Option<String>,
    created_at: String,
    updated_at: String,
}

impl ReturnView {
    fn new(ret: &Return) -> Self {
        Self {
            id: ret.id,
            purchase_order_id: ret.purchase_order_id.get(),
            purchase_order_number: ret.purchase_order_number.clone(),
            vendor_id: ret.vendor_id.get(),
            customer_name: ret.customer_name.clone(),
            state: ret.state.name(),
            reason: ret.reason.clone(),
            label_id: ret.label_id,
            items: ret
                .lines
                .iter()
                .map(|line| json!({"order_item_id": line.order_item_id.get(), "sku": line.sku, "quantity": line.quantity}))
                .collect(),
            history: ret
                .history
                .iter()
                .map(|step| json!({"state": step.state.name(), "at": format_api_time(step.at), "by": step.by}))
                .collect(),
            channel_sync: ret.channel.name(),
            channel_return_id: ret.channel.channel_return_id().map(str::to_owned),
            channel_message: match &ret.channel {
                ReturnSync::PushFailed { message } => Some(message.clone()),
                ReturnSync::Pushing(progress) => progress.last_error.clone(),
                _ => None,
            },
            created_at: format_api_time(ret.created_at),
            updated_at: format_api_time(ret.updated_at),
        }
    }
}

impl ShipmentsApi {
    /// `POST /purchase_orders/{id}/returns.json` (retailer users).
    pub(crate) async fn create_return(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        let po = self.desk.visible_purchase_order(principal, id).await?;
        if !principal.is_retailer_user() {
            return Err(ApiError::Forbidden("returns are opened by the retailer; a vendor marks them received".into()));
        }
        let input = json_body::<ReturnEnvelope>(request)?.body;
        // Its labels only when a return label is named; one id whatever the retries.
        let label_ids: Vec<u64> = match input.label_id {
            None => Vec::new(),
            Some(_) => {
                let labels = self.table.purchase_order_labels(po.retailer_id, po.id).await.map_err(Failure::from)?;
                labels.iter().filter(|label| label.state == LabelState::Ready).map(|label| label.id).collect()
            }
        };
        let new_id = *self.table.allocate_ids(1).await.map_err(Failure::from)?.start();
        for _ in 0..CREATE_ATTEMPTS {
            let existing = self.table.purchase_order_returns(po.retailer_id, po.id).await.map_err(Failure::from)?;
            let ret = draft_return(&po, &existing.returns, &label_ids, &input, new_id, (self.clock)())?;
            match self.table.create_return(&ret, existing.version).await {
                Ok(()) => {
                    tracing::info!(return_id = ret.id, purchase_order_id = %po.id, "return opened");
                    return Ok(json_response(StatusCode::CREATED, &json!({ "return": ReturnView::new(&ret) })));
                }
                // Another return of the order was made meanwhile: count it and check again.
                Err(TableError::Conflict(_)) => continue,
                Err(other) => return Err(Failure::from(other).into()),
            }
        }
        Err(Failure::from(TableError::Conflict("the purchase order's returns")).into())
    }

    /// `GET /returns.json`: oldest first, as purchase orders are; `search[state]` keeps one state (each page is filtered,
    /// so a page may show fewer than `per_page`).
    pub(crate) async fn list_returns(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let (paging, after) = page_request(request, principal)?;
        let state = match query_pairs(request).into_iter().find(|(key, _)| key == "search[state]") {
            None => None,
            Some((_, text)) if text.trim().is_empty() => None,
            Some((_, text)) => Some(ReturnState::parse(&text).ok_or_else(|| {
                ApiError::invalid("search[state]", "must be requested, authorized, received, refunded or closed")
            })?),
        };
        let page = self
            .table
            .list_returns(principal.retailer_id, principal.vendor_scope(), state, paging, after.as_ref())
            .await
            .map_err(Failure::from)?;
        let views: Vec<ReturnView> = page.records.iter().map(ReturnView::new).collect();
        let metadata = Metadata::for_page(paging, views.len(), &page);
        Ok(json_response(StatusCode::OK, &json!({ "returns": views, "metadata": metadata })))
    }

    pub(crate) async fn get_return(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let ret = self.visible_return(principal, id).await?;
        Ok(json_response(StatusCode::OK, &json!({ "return": ReturnView::new(&ret) })))
    }

    /// `PUT /returns/{id}.json` `{"return": {"state": "received"}}`: the retailer moves a return
    /// on; its vendor marks it received.
    pub(crate) async fn update_return(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let current = self.visible_return(principal, id).await?;
        let change = json_body::<ChangeEnvelope>(request)?.body;
        let Some(text) = change.state else {
            return Ok(json_response(StatusCode::OK, &json!({ "return": ReturnView::new(&current) })));
        };
        let to = ReturnState::parse(&text).ok_or_else(|| {
            ApiError::Invalid(ValidationErrors::single(
                "state",
                "must be requested, authorized, received, refunded or closed",
            ))
        })?;
        if to == current.state {
            return Ok(json_response(StatusCode::OK, &json!({ "return": ReturnView::new(&current) })));
        }
        let now = (self.clock)();
        let mut next = current.moved(to, !principal.is_retailer_user(), now)?;
        let store = self.table.channel_store(next.retailer_id, next.store_id).await.map_err(Failure::from)?;
        if store.is_some_and(|store| next.to_push_on_authorize(store.channel)) {
            // Opened at the channel once: the request is queued before the write that asks for it
            // (the exporter retries one that comes first).
            next.channel = ReturnSync::Pushing(shipsync_domain::cancellations::PushProgress::default());
            let update = ChannelUpdate::Return(ReturnRef {
                retailer_id: next.retailer_id,
                purchase_order_id: next.purchase_order_id,
                id: next.id,
            });
            shipsync_app::ports::ExportPlanner::queue_update(&self.planner, update).await?;
        }
        self.table.update_return(&next).await.map_err(Failure::from)?;
        tracing::info!(return_id = next.id, state = next.state.name(), "return moved on");
        Ok(json_response(StatusCode::OK, &json!({ "return": ReturnView::new(&next) })))
    }

    /// A return the caller may see: its retailer's, and for a vendor its own purchase orders'.
    async fn visible_return(&self, principal: &Principal, id: &str) -> Result<Return, ApiError> {
        let id: u64 = path_id(id, "return")?;
        match self.table.retailer_return(principal.retailer_id, id).await.map_err(Failure::from)? {
            Some(ret) if principal.can_see(ret.retailer_id, ret.vendor_id) => Ok(ret),
            _ => Err(ApiError::NotFound(format!("return {id} not found"))),
        }
    }
}
