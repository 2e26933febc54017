//! Shipment requests: create, read, update, search, export on demand. Each handler parses the
//! request, calls its use case (`shipsync_app::shipments::ShipmentDesk`) and renders the result.

use http::StatusCode;
use serde_json::json;
use shipsync_app::Failure;
use shipsync_domain::access::Principal;
use shipsync_domain::carrier::Carrier;
use shipsync_domain::ids::{PurchaseOrderId, ShipmentId};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::search::{SearchScope, parse_shipment_query, plan_search};
use shipsync_domain::shipment::{EchoedIds, Shipment};
use shipsync_domain::tenant::Retailer;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_body, json_response, query_pairs};

use crate::dto::{Metadata, PurchaseOrderView, ShipmentEnvelope, ShipmentView};
use crate::{ShipmentsApi, path_id};

impl ShipmentsApi {
    pub(crate) async fn create_shipment(
        &self,
        principal: &Principal,
        purchase_order_id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let purchase_order_id: PurchaseOrderId = path_id(purchase_order_id, "purchase order")?;
        let body: ShipmentEnvelope = json_body(request)?;
        let echoed = echoed_ids(&body);
        let input = body.shipment.into_input();
        let written = self.desk.create(principal, purchase_order_id, &input, echoed).await?;
        let view = ShipmentView::new(&written.shipment, written.retailer.fees);
        Ok(json_response(StatusCode::CREATED, &json!({ "shipment": view })))
    }

    pub(crate) async fn get_shipment(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let (shipment, (retailer, _)) =
            tokio::try_join!(self.visible_shipment(principal, id), self.retailer(principal))?;
        let view = ShipmentView::new(&shipment, retailer.fees);
        Ok(json_response(StatusCode::OK, &json!({ "shipment": view })))
    }

    /// `GET /shipments/{id}/events.json`: its history, oldest first.
    pub(crate) async fn shipment_events(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let shipment = self.visible_shipment(principal, id).await?;
        let events = shipment
            .events
            .iter()
            .map(|event| crate::openapi::EventView {
                at: shipsync_domain::time::format_api_time(event.at),
                event: event.kind.name(),
                by: event.by.name(),
                export_state: event.state.clone(),
                due_at: event.due_at.map(shipsync_domain::time::format_api_time),
                detail: event.detail.clone(),
            })
            .collect();
        let kept = shipsync_domain::history::MAX_EVENTS;
        let body = crate::openapi::EventsBody {
            shipment_id: id.get(),
            events,
            metadata: crate::openapi::EventsMetadata { kept },
        };
        Ok(json_response(StatusCode::OK, &body))
    }

    pub(crate) async fn update_shipment(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let body: ShipmentEnvelope = json_body(request)?;
        let echoed = echoed_ids(&body);
        let input = body.shipment.into_input();
        let written = self.desk.update(principal, id, &input, echoed).await?;
        let view = ShipmentView::new(&written.shipment, written.retailer.fees);
        Ok(json_response(StatusCode::OK, &json!({ "shipment": view })))
    }

    /// `POST /shipments/{id}/export.json`: exports now, whatever the delay or the store's setting.
    pub(crate) async fn export_shipment(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let written = self.desk.export_now(principal, id).await?;
        let view = ShipmentView::new(&written.shipment, written.retailer.fees);
        Ok(json_response(StatusCode::ACCEPTED, &json!({ "shipment": view })))
    }

    pub(crate) async fn search_shipments(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let params = query_pairs(request);
        let query = parse_shipment_query(&params, principal.time_zone)?;
        let after = crate::purchase_orders::cursor_parameter(&params, query.paging)?;
        let mut plan = plan_search(principal, &query.search);
        // A vendor id from the query is used only if it is one of the caller's retailer's vendors
        // (the index keys hold the retailer too; this makes the intent plain and costs one read).
        if let Some(vendor) = query.search.vendor_id
            && plan.scope != SearchScope::Nothing
            && self.table.vendor(principal.retailer_id, vendor).await.map_err(Failure::from)?.is_none()
        {
            plan.scope = SearchScope::Nothing;
        }
        let (mut page, (retailer, _)) = tokio::try_join!(
            async {
                self.table
                    .search_shipments(&plan, query.paging, after.as_ref())
                    .await
                    .map_err(|e| ApiError::from(Failure::from(e)))
            },
            self.retailer(principal)
        )?;
        // A second line of defence: whatever the plan read, only what the caller may see goes out.
        page.records.retain(|shipment| principal.can_see(shipment.retailer_id, shipment.vendor_id));
        let mut views: Vec<ShipmentView> = page.records.iter().map(|s| ShipmentView::new(s, retailer.fees)).collect();
        if query.include_purchase_order && !page.records.is_empty() {
            let mut ids: Vec<PurchaseOrderId> = page.records.iter().map(|s| s.purchase_order_id).collect();
            ids.sort_unstable();
            ids.dedup();
            let mut orders =
                self.table.retailer_purchase_orders(principal.retailer_id, &ids).await.map_err(Failure::from)?;
            orders.retain(|po| principal.can_see_purchase_order(po));
            for (view, shipment) in views.iter_mut().zip(&page.records) {
                view.purchase_order =
                    orders.iter().find(|po| po.id == shipment.purchase_order_id).map(PurchaseOrderView::new);
            }
        }
        let metadata = Metadata::for_page(query.paging, views.len(), &page);
        Ok(json_response(StatusCode::OK, &json!({ "shipments": views, "metadata": metadata })))
    }

    /// The caller's retailer and its carriers.
    pub(crate) async fn retailer(&self, principal: &Principal) -> Result<(Retailer, Vec<Carrier>), ApiError> {
        Ok(self.desk.retailer(principal).await?)
    }

    pub(crate) async fn visible_shipment(&self, principal: &Principal, id: ShipmentId) -> Result<Shipment, ApiError> {
        Ok(self.desk.visible_shipment(principal, id).await?)
    }

    pub(crate) async fn visible_purchase_order(
        &self,
        principal: &Principal,
        id: PurchaseOrderId,
    ) -> Result<PurchaseOrder, ApiError> {
        Ok(self.desk.visible_purchase_order(principal, id).await?)
    }
}

/// Readonly ids a client may send back; the use case checks they are the record's own.
fn echoed_ids(body: &ShipmentEnvelope) -> EchoedIds {
    EchoedIds { shipment: body.shipment.id, purchase_order: body.shipment.purchase_order_id }
}
