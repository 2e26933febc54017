//! Cancellations: the retailer cancels units of a purchase order (pushed to its channel once);
//! a vendor that cannot fulfil asks, and the retailer approves or declines where its store says so.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shipsync_app::Failure;
use shipsync_domain::access::Principal;
use shipsync_domain::cancellations::{Cancellation, CancellationInput, CancellationState};
use shipsync_domain::ids::PurchaseOrderId;
use shipsync_domain::time::format_api_time;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_body, json_response};

use crate::{ShipmentsApi, path_id};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancellationEnvelope {
    cancellation: CancellationInput,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct CancellationView {
    id: u64,
    purchase_order_id: u64,
    purchase_order_number: String,
    vendor_id: u64,
    state: &'static str,
    reason: &'static str,
    note: String,
    notify_customer: bool,
    #[schemars(with = "String")]
    requested_by: shipsync_domain::labels::AttachedBy,
    whole_order: bool,
    items: Vec<serde_json::Value>,
    /// The channel's ids once pushed; why not, when it failed or must be done at the channel.
    channel_ids: Vec<String>,
    channel_message: Option<String>,
    created_at: String,
    updated_at: String,
}

impl CancellationView {
    fn new(cancellation: &Cancellation) -> Self {
        let (channel_ids, channel_message) = match &cancellation.state {
            CancellationState::Pushed { channel_ids, .. } => (channel_ids.clone(), None),
            CancellationState::PushFailed { message, .. } => (Vec::new(), Some(message.clone())),
            CancellationState::CancelAtChannel { reason } => (Vec::new(), Some(reason.clone())),
            CancellationState::Pushing(progress) => (Vec::new(), progress.last_error.clone()),
            _ => (Vec::new(), None),
        };
        Self {
            id: cancellation.id,
            purchase_order_id: cancellation.purchase_order_id.get(),
            purchase_order_number: cancellation.purchase_order_number.clone(),
            vendor_id: cancellation.vendor_id.get(),
            state: cancellation.state.name(),
            reason: cancellation.reason.name(),
            note: cancellation.note.clone(),
            notify_customer: cancellation.notify_customer,
            requested_by: cancellation.requested_by,
            whole_order: cancellation.whole_order,
            items: cancellation
                .lines
                .iter()
                .map(|line| json!({"order_item_id": line.order_item_id.get(), "sku": line.sku, "quantity": line.quantity}))
                .collect(),
            channel_ids,
            channel_message,
            created_at: format_api_time(cancellation.created_at),
            updated_at: format_api_time(cancellation.updated_at),
        }
    }
}

fn one(status: StatusCode, cancellation: &Cancellation) -> ApiResponse {
    json_response(status, &json!({ "cancellation": CancellationView::new(cancellation) }))
}

/// A cancellation id from the path.
fn cancellation_id(id: &str) -> Result<u64, ApiError> {
    id.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| ApiError::NotFound(format!("cancellation {id:.40}")))
}

impl ShipmentsApi {
    /// `POST /purchase_orders/{id}/cancellations.json`.
    pub(crate) async fn create_cancellation(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        // Seen before the body is read: another tenant's order is not found, whatever is sent.
        self.desk.visible_purchase_order(principal, id).await?;
        let input = json_body::<CancellationEnvelope>(request)?.cancellation;
        let new_id = *self.table.allocate_ids(1).await.map_err(Failure::from)?.start();
        let cancellation = self.cancellations.request(principal, id, &input, new_id).await?;
        Ok(one(StatusCode::CREATED, &cancellation))
    }

    /// `GET /purchase_orders/{id}/cancellations.json`.
    pub(crate) async fn purchase_order_cancellations(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        let found = self.cancellations.of_purchase_order(principal, id).await?;
        let views: Vec<CancellationView> = found.iter().map(CancellationView::new).collect();
        Ok(json_response(StatusCode::OK, &json!({ "cancellations": views })))
    }

    /// `GET /cancellations/{id}.json`.
    pub(crate) async fn get_cancellation(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let found = self.cancellations.visible(principal, cancellation_id(id)?).await?;
        Ok(one(StatusCode::OK, &found))
    }

    /// `POST /cancellations/{id}/approve.json`, `/decline.json`, `/push.json` (retailer users).
    pub(crate) async fn decide_cancellation(
        &self,
        principal: &Principal,
        id: &str,
        decision: crate::Endpoint,
    ) -> Result<ApiResponse, ApiError> {
        let id = cancellation_id(id)?;
        // Not found before forbidden: a vendor learns nothing of another's cancellation.
        self.cancellations.visible(principal, id).await?;
        let decided = match decision {
            crate::Endpoint::ApproveCancellation => self.cancellations.approve(principal, id).await?,
            crate::Endpoint::DeclineCancellation => self.cancellations.decline(principal, id).await?,
            _ => self.cancellations.push_again(principal, id).await?,
        };
        Ok(one(StatusCode::OK, &decided))
    }
}
