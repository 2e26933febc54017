//! Label requests: attach a label to a purchase order or a shipment, list them with links that
//! download them for a few minutes.

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shipsync_app::labels::{LabelDesk, ListedLabel};
use shipsync_domain::access::Principal;
use shipsync_domain::ids::{PurchaseOrderId, ShipmentId};
use shipsync_domain::labels::{LabelInput, LabelState};
use shipsync_domain::time::format_api_time;
use shipsync_files::{LabelBucket, RenderQueueSqs};
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, MAX_REQUEST_BYTES, json_body_within, json_response};
use shipsync_table::Table;

use crate::{ShipmentsApi, path_id};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LabelEnvelope {
    label: LabelInput,
}

/// A label as responses show it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub(crate) struct LabelView {
    id: u64,
    purchase_order_id: u64,
    shipment_id: Option<u64>,
    /// What the file is (`pdf` for a label sent as HTML).
    format: &'static str,
    /// `file` (as sent) or `html` (rendered to PDF by shipsync).
    source: &'static str,
    /// `ready`, `rendering` or `failed`.
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    tracking: Option<String>,
    carrier: Option<String>,
    size_bytes: u64,
    sha256: Option<String>,
    #[schemars(with = "String")]
    attached_by: shipsync_domain::labels::AttachedBy,
    created_at: String,
    /// A link that downloads the file, without credentials, until `download_url_expires_at`.
    download_url: Option<String>,
    download_url_expires_at: Option<String>,
}

impl LabelView {
    fn new(listed: &ListedLabel) -> Self {
        let label = &listed.label;
        Self {
            id: label.id,
            purchase_order_id: label.purchase_order_id.get(),
            shipment_id: label.shipment_id.map(|id| id.get()),
            format: label.format.name(),
            source: if label.rendered_from_html { "html" } else { "file" },
            state: label.state.name(),
            error: match &label.state {
                LabelState::Failed { message } => Some(message.clone()),
                _ => None,
            },
            tracking: label.tracking.as_ref().map(ToString::to_string),
            carrier: label.carrier.clone(),
            size_bytes: label.size_bytes,
            sha256: (!label.sha256.is_empty()).then(|| label.sha256.clone()),
            attached_by: label.attached_by,
            created_at: format_api_time(label.created_at),
            download_url: listed.download.as_ref().map(|(url, _)| url.clone()),
            download_url_expires_at: listed.download.as_ref().map(|(_, until)| format_api_time(*until)),
        }
    }
}

/// A purchase order's email, queued (`POST /purchase_orders/{id}/email.json`).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(crate) struct EmailView {
    purchase_order_id: u64,
    requested_at: String,
}

impl ShipmentsApi {
    fn label_desk(&self) -> Result<LabelDesk<Table, LabelBucket, RenderQueueSqs>, ApiError> {
        let (bucket, renders) = self.labels.clone().ok_or_else(|| {
            tracing::error!("a label request, but this deployment has no labels bucket");
            ApiError::Unavailable
        })?;
        Ok(LabelDesk::new(self.table.clone(), bucket, renders, self.clock.clone()))
    }

    pub(crate) async fn attach_purchase_order_label(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        let body = json_body_within::<LabelEnvelope>(request, MAX_REQUEST_BYTES)?;
        let listed = self.label_desk()?.attach_to_purchase_order(principal, id, &body.label).await?;
        Ok(json_response(StatusCode::CREATED, &json!({ "label": LabelView::new(&listed) })))
    }

    pub(crate) async fn attach_shipment_label(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let body = json_body_within::<LabelEnvelope>(request, MAX_REQUEST_BYTES)?;
        let listed = self.label_desk()?.attach_to_shipment(principal, id, &body.label).await?;
        Ok(json_response(StatusCode::CREATED, &json!({ "label": LabelView::new(&listed) })))
    }

    /// `POST /purchase_orders/{id}/email.json`: queues the purchase order's email to its vendor,
    /// with its labels (202).
    pub(crate) async fn email_purchase_order(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        let Some(queue) = self.mail.clone() else {
            return Err(ApiError::Invalid(shipsync_domain::ValidationErrors::single(
                "email",
                "this deployment sends no email: set the stack's MailFrom (a sender verified in SES)",
            )));
        };
        let desk = shipsync_app::mail::MailDesk::new(self.table.clone(), queue, self.clock.clone());
        let request = desk.request(principal, id).await?;
        Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({ "email": EmailView { purchase_order_id: id.get(), requested_at: format_api_time(request.requested_at) } }),
        ))
    }

    pub(crate) async fn purchase_order_labels(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        let labels = self.label_desk()?.purchase_order_labels(principal, id).await?;
        Ok(json_response(StatusCode::OK, &json!({ "labels": labels.iter().map(LabelView::new).collect::<Vec<_>>() })))
    }

    pub(crate) async fn shipment_labels(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let labels = self.label_desk()?.shipment_labels(principal, id).await?;
        Ok(json_response(StatusCode::OK, &json!({ "labels": labels.iter().map(LabelView::new).collect::<Vec<_>>() })))
    }
}
