//! Purchase order requests: list and read, with items and fulfilled quantities.

use http::StatusCode;
use serde_json::json;
use shipsync_app::Failure;
use shipsync_domain::access::Principal;
use shipsync_domain::ids::PurchaseOrderId;
use shipsync_domain::search::{Paging, parse_shipment_query};
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_response, query_pairs};
use shipsync_table::SearchCursor;

use crate::dto::{Metadata, PurchaseOrderView};
use crate::{ShipmentsApi, path_id};

impl ShipmentsApi {
    pub(crate) async fn list_purchase_orders(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let (paging, after) = page_request(request, principal)?;
        let page = self
            .table
            .list_purchase_orders(principal.retailer_id, principal.vendor_scope(), paging, after.as_ref())
            .await
            .map_err(Failure::from)?;
        let views: Vec<PurchaseOrderView> = page.records.iter().map(PurchaseOrderView::new).collect();
        let metadata = Metadata::for_page(paging, views.len(), &page);
        Ok(json_response(StatusCode::OK, &json!({ "purchase_orders": views, "metadata": metadata })))
    }

    pub(crate) async fn get_purchase_order(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: PurchaseOrderId = path_id(id, "purchase order")?;
        let po = self.visible_purchase_order(principal, id).await?;
        Ok(json_response(StatusCode::OK, &json!({ "purchase_order": PurchaseOrderView::new(&po) })))
    }
}

/// `page`, `per_page` and `cursor`, read as for shipments; search filters are not offered here.
pub(crate) fn page_request(
    request: &ApiRequest,
    principal: &Principal,
) -> Result<(Paging, Option<SearchCursor>), ApiError> {
    let params: Vec<(String, String)> = query_pairs(request)
        .into_iter()
        .filter(|(key, _)| key == "page" || key == "per_page" || key == "cursor")
        .collect();
    let paging = parse_shipment_query(&params, principal.time_zone)?.paging;
    Ok((paging, cursor_parameter(&params, paging)?))
}

/// The `cursor` parameter: where an earlier page said to go on from (empty: none). A page
/// number past the first cannot be combined with it: the cursor already says where to start.
pub(crate) fn cursor_parameter(params: &[(String, String)], paging: Paging) -> Result<Option<SearchCursor>, ApiError> {
    let Some(text) = params.iter().find(|(key, _)| key == "cursor").map(|(_, value)| value.trim()) else {
        return Ok(None);
    };
    if text.is_empty() {
        return Ok(None);
    }
    if paging.page > 1 {
        return Err(ApiError::invalid(
            "cursor",
            "cannot be combined with page (leave page out to go on from a cursor)",
        ));
    }
    SearchCursor::decode(text).map(Some).map_err(|invalid| ApiError::Invalid(invalid.into()))
}
