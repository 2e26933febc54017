//! Purchase order requests: list and read, with items and fulfilled quantities.

use http::StatusCode;
use serde_json::json;
use shipsync_app::Failure;
use shipsync_domain::access::Principal;
use shipsync_domain::ids::PurchaseOrderId;
use shipsync_domain::search::{Paging, parse_shipment_query};
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_response, query_pairs};

use crate::dto::{Metadata, PurchaseOrderView};
use crate::{ShipmentsApi, path_id};

impl ShipmentsApi {
    pub(crate) async fn list_purchase_orders(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let paging = paging(request, principal)?;
        let page = self
            .table
            .list_purchase_orders(principal.retailer_id, principal.vendor_scope(), paging)
            .await
            .map_err(Failure::from)?;
        let views: Vec<PurchaseOrderView> = page.records.iter().map(PurchaseOrderView::new).collect();
        let metadata = Metadata::for_page(paging, views.len(), page.total_count, page.total_count_exact);
        Ok(json_response(StatusCode::OK, &json!({ "purchase_orders": views, "metadata": metadata })))
    }

    pub(crate) async fn get_purchase_order(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        let po = self.visible_purchase_order(principal, id).await?;
        Ok(json_response(StatusCode::OK, &json!({ "purchase_order": PurchaseOrderView::new(&po) })))
    }
}

/// `page` and `per_page`, read as for shipments; search filters are not offered here.
pub(crate) fn paging(request: &ApiRequest, principal: &Principal) -> Result<Paging, ApiError> {
    let params: Vec<(String, String)> =
        query_pairs(request).into_iter().filter(|(key, _)| key == "page" || key == "per_page").collect();
    Ok(parse_shipment_query(&params, principal.time_zone)?.paging)
}
