//! Shipment requests: create, read, update, search.

use http::StatusCode;
use serde_json::json;
use shipsync_domain::access::Principal;
use shipsync_domain::carrier::Carrier;
use shipsync_domain::export::ShipConfirmation;
use shipsync_domain::export::{ExportReason, ExportState, IMEI_WAIT, plan_new_export, scheduled};
use shipsync_domain::ids::{PurchaseOrderId, ShipmentId};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::search::{SearchScope, parse_shipment_query, plan_search};
use shipsync_domain::shipment::{Shipment, ShipmentContext, ShipmentInput, draft_new_shipment, draft_shipment_update};
use shipsync_domain::tenant::ChannelKind;
use shipsync_domain::tenant::Retailer;
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, json_body, json_response, query_pairs, store_failure};
use shipsync_table::TableError;
use tracing::info;

use crate::dto::{Metadata, PurchaseOrderView, ShipmentEnvelope, ShipmentView};
use crate::{ShipmentsApi, WRITE_ATTEMPTS, path_id};

impl ShipmentsApi {
    pub(crate) async fn create_shipment(
        &self,
        principal: &Principal,
        purchase_order_id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let purchase_order_id: PurchaseOrderId = path_id(purchase_order_id, "purchase order")?;
        let body: ShipmentEnvelope = json_body(request)?;
        let echoed = EchoedIds::of(&body);
        echoed.check(None, purchase_order_id)?;
        let input = body.shipment.into_input();
        refuse_export_fields_to_vendors(principal, &input, None)?;
        let (retailer, carriers) = self.retailer(principal).await?;
        let mut reserved_ids = None;
        let mut channel_store = None;
        for _ in 0..WRITE_ATTEMPTS {
            let mut po = self.visible_purchase_order(principal, purchase_order_id).await?;
            let store = match &channel_store {
                Some(store) => store,
                None => channel_store.insert(self.channel_store_of(&po).await?),
            };
            let now = self.now();
            let context = ShipmentContext { purchase_order: &po, carriers: &carriers, fees: retailer.fees, now };
            let draft = draft_new_shipment(context, &input)?;
            // The same request needs the same number of ids on every attempt: reserve them once.
            let ids = match &reserved_ids {
                Some(ids) => ids,
                None => reserved_ids.insert(self.table.allocate_ids(draft.ids_needed()).await.map_err(store_failure)?),
            };
            po.apply_fulfillment(&draft.fulfillment_change)?;
            let mut shipment = draft.finish(&mut ids.clone())?;
            po.version += 1;
            po.updated_at = now;
            let confirmation = store.export.confirmation(store.channel);
            let (mut export_state, mut delivery) = plan_new_export(&store.export, confirmation, input.export, now);
            // Back Market: a confirmation without its IMEI waits up to an hour for it.
            if store.channel == ChannelKind::BackMarket
                && !shipment.missing_imeis().is_empty()
                && let ExportState::Scheduled { due_at } = export_state
            {
                (export_state, delivery) = scheduled(due_at.max(now + IMEI_WAIT), now);
            }
            shipment.export.state = export_state;
            // Planned before the shipment is written, so that a shipment is never written without
            // its plan; the exporter retries a request that arrives before the shipment does.
            if let Some(delivery) = delivery {
                self.deliver(shipment.id, ExportReason::Scheduled, delivery).await?;
            }
            match self.table.create_shipment(&shipment, &po).await {
                Ok(()) => {
                    info!(shipment_id = %shipment.id, purchase_order_id = %po.id, export = shipment.export.state.name(), "shipment created");
                    if let Err(problem) = self.release_order_if_shipped(&po, store, &shipment).await {
                        // The shipment stands; its order's waiting shipments stay visible as waiting
                        // and can be exported by hand.
                        tracing::error!(shipment_id = %shipment.id, ?problem, "could not release the order's shipments");
                    }
                    let view = ShipmentView::new(&shipment, retailer.fees);
                    return Ok(json_response(StatusCode::CREATED, &json!({ "shipment": view })));
                }
                Err(TableError::Conflict(_)) => {
                    // Lost the race for the units: this attempt's plan must not outlive it.
                    if let Some(delivery) = delivery {
                        self.withdraw(shipment.id, ExportReason::Scheduled, delivery).await;
                    }
                    continue;
                }
                Err(other) => return Err(store_failure(other)),
            }
        }
        Err(store_failure(TableError::Conflict("purchase order")))
    }

    pub(crate) async fn get_shipment(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let (shipment, (retailer, _)) =
            tokio::try_join!(self.visible_shipment(principal, id), self.retailer(principal))?;
        let view = ShipmentView::new(&shipment, retailer.fees);
        Ok(json_response(StatusCode::OK, &json!({ "shipment": view })))
    }

    pub(crate) async fn update_shipment(
        &self,
        principal: &Principal,
        id: &str,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let body: ShipmentEnvelope = json_body(request)?;
        let echoed = EchoedIds::of(&body);
        let input = body.shipment.into_input();
        let (retailer, carriers) = self.retailer(principal).await?;
        let mut reserved_ids = None;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.visible_shipment(principal, id).await?;
            echoed.check(Some(id), current.purchase_order_id)?;
            refuse_export_fields_to_vendors(principal, &input, Some(&current))?;
            let mut po = self.visible_purchase_order(principal, current.purchase_order_id).await?;
            let now = self.now();
            let context = ShipmentContext { purchase_order: &po, carriers: &carriers, fees: retailer.fees, now };
            let draft = draft_shipment_update(&current, context, &input)?;
            if draft.is_unchanged_from(&current) {
                let view = ShipmentView::new(&current, retailer.fees);
                return Ok(json_response(StatusCode::OK, &json!({ "shipment": view })));
            }
            let mut ids = match (&reserved_ids, draft.ids_needed()) {
                (_, 0) => 0..=0,
                (Some(ids), _) => std::ops::RangeInclusive::clone(ids),
                (None, count) => {
                    reserved_ids.insert(self.table.allocate_ids(count).await.map_err(store_failure)?).clone()
                }
            };
            let changed_po = if draft.fulfillment_change.is_empty() {
                None
            } else {
                po.apply_fulfillment(&draft.fulfillment_change)?;
                po.version += 1;
                po.updated_at = now;
                Some(&po)
            };
            // Back Market: adding the last missing IMEI releases the waiting confirmation, queued
            // before this write, which carries both.
            let shipment = self.release_on_imei(&current, draft.finish(&mut ids)?, &po).await?;
            let fulfilment_changed = changed_po.is_some();
            match self.table.update_shipment(&shipment, changed_po).await {
                Ok(()) => {
                    info!(shipment_id = %shipment.id, "shipment updated");
                    // Units added by an edit can complete the order as well as a new shipment can.
                    if fulfilment_changed {
                        let store = self.channel_store_of(&po).await?;
                        if let Err(problem) = self.release_order_if_shipped(&po, &store, &shipment).await {
                            tracing::error!(shipment_id = %shipment.id, ?problem, "could not release the order's shipments");
                        }
                    }
                    let view = ShipmentView::new(&shipment, retailer.fees);
                    return Ok(json_response(StatusCode::OK, &json!({ "shipment": view })));
                }
                Err(TableError::Conflict(_)) => continue,
                Err(other) => return Err(store_failure(other)),
            }
        }
        Err(store_failure(TableError::Conflict("shipment")))
    }

    pub(crate) async fn search_shipments(
        &self,
        principal: &Principal,
        request: &ApiRequest,
    ) -> Result<ApiResponse, ApiError> {
        let query = parse_shipment_query(&query_pairs(request), principal.time_zone)?;
        let mut plan = plan_search(principal, &query.search);
        // A vendor id from the query is used only if it is one of the caller's retailer's vendors
        // (the index keys hold the retailer too; this makes the intent plain and costs one read).
        if let Some(vendor) = query.search.vendor_id
            && plan.scope != SearchScope::Nothing
            && self.table.vendor(principal.retailer_id, vendor).await.map_err(store_failure)?.is_none()
        {
            plan.scope = SearchScope::Nothing;
        }
        let (mut page, (retailer, _)) = tokio::try_join!(
            async { self.table.search_shipments(&plan, query.paging).await.map_err(store_failure) },
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
                self.table.retailer_purchase_orders(principal.retailer_id, &ids).await.map_err(store_failure)?;
            orders.retain(|po| principal.can_see_purchase_order(po));
            for (view, shipment) in views.iter_mut().zip(&page.records) {
                view.purchase_order =
                    orders.iter().find(|po| po.id == shipment.purchase_order_id).map(PurchaseOrderView::new);
            }
        }
        let metadata = Metadata::for_page(query.paging, views.len(), page.total_count);
        Ok(json_response(StatusCode::OK, &json!({ "shipments": views, "metadata": metadata })))
    }

    /// The caller's retailer and its carriers.
    pub(crate) async fn retailer(&self, principal: &Principal) -> Result<(Retailer, Vec<Carrier>), ApiError> {
        match self.table.retailer_with_carriers(principal.retailer_id).await.map_err(store_failure)? {
            Some(found) => Ok(found),
            None => {
                // An API user whose retailer is gone: a data problem, not the caller's.
                tracing::error!(retailer_id = %principal.retailer_id, "API user's retailer not found");
                Err(ApiError::Internal)
            }
        }
    }

    pub(crate) async fn visible_shipment(&self, principal: &Principal, id: ShipmentId) -> Result<Shipment, ApiError> {
        match self.table.retailer_shipment(principal.retailer_id, id).await.map_err(store_failure)? {
            Some(shipment) if principal.can_see(shipment.retailer_id, shipment.vendor_id) => Ok(shipment),
            _ => Err(ApiError::NotFound(format!("shipment {id} not found"))),
        }
    }

    pub(crate) async fn visible_purchase_order(
        &self,
        principal: &Principal,
        id: PurchaseOrderId,
    ) -> Result<PurchaseOrder, ApiError> {
        match self.table.retailer_purchase_order(principal.retailer_id, id).await.map_err(store_failure)? {
            Some(po) if principal.can_see_purchase_order(&po) => Ok(po),
            _ => Err(ApiError::NotFound(format!("purchase order {id} not found"))),
        }
    }
}

impl ShipmentsApi {
    /// What a manual export (`POST /shipments/{id}/export.json`) may not override: the role (a
    /// vendor may not push a retailer's shipment to its channel: 403) and a store that never
    /// sends ship confirmations (422).
    pub(crate) async fn check_manual_export(&self, principal: &Principal, shipment: &Shipment) -> Result<(), ApiError> {
        if !principal.is_retailer_user() {
            return Err(ApiError::Forbidden("export may be requested by retailer users only".into()));
        }
        let store = self
            .table
            .channel_store(shipment.retailer_id, shipment.store_id)
            .await
            .map_err(store_failure)?
            .ok_or(ApiError::Internal)?;
        if store.export.confirmation(store.channel) == ShipConfirmation::Never {
            return Err(ApiError::invalid(
                "export",
                format!(
                    "is not possible: store {} never sends ship confirmations (ship_confirmation is never)",
                    store.id
                ),
            ));
        }
        Ok(())
    }
}

/// `export` and `notify_customer` decide what a retailer's customer is told and when: a vendor
/// user may not set them (403 naming the field). On an update, sending back the value the
/// shipment already has is not setting it.
fn refuse_export_fields_to_vendors(
    principal: &Principal,
    input: &ShipmentInput,
    current: Option<&Shipment>,
) -> Result<(), ApiError> {
    if principal.is_retailer_user() {
        return Ok(());
    }
    let changes = |given: Option<bool>, current_value: Option<Option<bool>>| {
        given.is_some() && current_value.is_none_or(|value| value != given)
    };
    let mut refused = Vec::new();
    if changes(input.export, current.map(|s| s.export.export_override)) {
        refused.push("export");
    }
    if changes(input.notify_customer, current.map(|s| s.export.notify_override)) {
        refused.push("notify_customer");
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!("{} may be set by retailer users only", refused.join(" and "))))
}

/// Readonly ids a client may send back; they must be the record's own.
struct EchoedIds {
    shipment: Option<u64>,
    purchase_order: Option<u64>,
}

impl EchoedIds {
    fn of(body: &ShipmentEnvelope) -> Self {
        Self { shipment: body.shipment.id, purchase_order: body.shipment.purchase_order_id }
    }

    fn check(&self, shipment_id: Option<ShipmentId>, purchase_order_id: PurchaseOrderId) -> Result<(), ApiError> {
        if let Some(given) = self.shipment
            && shipment_id.is_none_or(|id| id.get() != given)
        {
            return Err(ApiError::invalid("id", "is readonly: assigned by shipsync"));
        }
        if let Some(given) = self.purchase_order
            && purchase_order_id.get() != given
        {
            return Err(ApiError::invalid("purchase_order_id", "is readonly: a shipment stays on its purchase order"));
        }
        Ok(())
    }
}
