//! Export planning on the API side: a new shipment's first plan, the manual export, and the
//! release of an order's waiting shipments once the whole order has shipped.

use http::StatusCode;
use serde_json::json;
use shipsync_domain::access::Principal;
use shipsync_domain::export::{Delivery, ExportReason, ExportRequest, ExportState, ExportWhen, scheduled};
use shipsync_domain::ids::{PurchaseOrderId, ShipmentId};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::ChannelStore;
use shipsync_http_api::{ApiError, ApiResponse, json_response, store_failure};
use shipsync_planner::PlanError;
use shipsync_table::TableError;
use tracing::{error, info};

use crate::dto::ShipmentView;
use crate::{ShipmentsApi, WRITE_ATTEMPTS, path_id};

/// A failure to queue or schedule: the caller should retry; nothing was recorded.
pub(crate) fn plan_error(failure: PlanError) -> ApiError {
    error!(error = ?failure, "could not plan an export");
    ApiError::Unavailable
}

impl ShipmentsApi {
    /// Delivers an export request now or at its time.
    pub(crate) async fn deliver(
        &self,
        id: ShipmentId,
        reason: ExportReason,
        delivery: Delivery,
    ) -> Result<(), ApiError> {
        self.planner.deliver(ExportRequest { shipment_id: id, reason }, delivery).await.map_err(plan_error)
    }

    /// Withdraws the plan of a write that lost its race (the transaction was cancelled: nothing
    /// was written), so that no schedule is left for a shipment or state that never was. Only
    /// after a definite failure: a write that merely timed out may have landed and keeps its plan.
    /// If withdrawing fails, the schedule fires and the exporter finds nothing due.
    pub(crate) async fn withdraw(&self, id: ShipmentId, reason: ExportReason, delivery: Delivery) {
        if let Err(failure) = self.planner.cancel(ExportRequest { shipment_id: id, reason }, delivery).await {
            tracing::warn!(error = ?failure, "could not withdraw the plan of a write that lost its race");
        }
    }

    /// `POST /shipments/{id}/export.json`: exports now, whatever the delay or the store's setting.
    pub(crate) async fn export_shipment(&self, principal: &Principal, id: &str) -> Result<ApiResponse, ApiError> {
        let id: ShipmentId = path_id(id, "shipment")?;
        let (retailer, _) = self.retailer(principal).await?;
        for _ in 0..WRITE_ATTEMPTS {
            let current = self.visible_shipment(principal, id).await?;
            self.check_manual_export(principal, &current).await?;
            let planned = current.export_now(self.now())?;
            // Queued before it is written, as creation does: a failure to queue answers 503 with
            // nothing written, and a crash between the two leaves a request that finds nothing
            // to do, never a shipment waiting for a request that never comes.
            self.deliver(id, ExportReason::Manual, Delivery::Now).await?;
            match self.table.update_shipment(&planned, None).await {
                Ok(()) => {
                    info!(shipment_id = %id, "manual export queued");
                    let view = ShipmentView::new(&planned, retailer.fees);
                    return Ok(json_response(StatusCode::ACCEPTED, &json!({ "shipment": view })));
                }
                Err(TableError::Conflict(_)) => continue,
                Err(other) => return Err(store_failure(other)),
            }
        }
        Err(store_failure(TableError::Conflict("shipment")))
    }

    /// Back Market: when an edit adds the last missing IMEI, the confirmation that waited for it
    /// (or failed for want of it) goes out now. The release is queued here, before the edit that
    /// carries it is written (in the same write), as creation does: a failure to queue answers
    /// 503 with nothing written.
    pub(crate) async fn release_on_imei(
        &self,
        before: &Shipment,
        after: Shipment,
        po: &PurchaseOrder,
    ) -> Result<Shipment, ApiError> {
        if before.missing_imeis().is_empty() || !after.missing_imeis().is_empty() {
            return Ok(after);
        }
        let store = self.channel_store_of(po).await?;
        let now = self.now();
        let waiting = match &after.export.state {
            ExportState::Scheduled { due_at } => *due_at > now,
            ExportState::Failed { .. } => true,
            _ => false,
        };
        if store.channel != shipsync_domain::tenant::ChannelKind::BackMarket || !waiting {
            return Ok(after);
        }
        let mut planned = after.export_now(now)?;
        // One write carries the edit and the release: the version the edit was given.
        planned.version = after.version;
        self.deliver(planned.id, ExportReason::Manual, Delivery::Now).await?;
        info!(shipment_id = %planned.id, "IMEI added: export released");
        Ok(planned)
    }

    /// The store a purchase order came from.
    pub(crate) async fn channel_store_of(&self, po: &PurchaseOrder) -> Result<ChannelStore, ApiError> {
        self.table.channel_store(po.retailer_id, po.store_id).await.map_err(store_failure)?.ok_or_else(|| {
            error!(purchase_order_id = %po.id, store_id = %po.store_id, "purchase order's store not found");
            ApiError::Internal
        })
    }

    /// After a shipment is written on a store that exports whole orders: if the order is now
    /// fully shipped, plans the export of every shipment that waited for it.
    pub(crate) async fn release_order_if_shipped(
        &self,
        po: &PurchaseOrder,
        store: &ChannelStore,
        just_created: &Shipment,
    ) -> Result<(), ApiError> {
        if store.export.export_when != ExportWhen::OrderFullyShipped {
            return Ok(());
        }
        let mut order_ids = match &po.channel_order_id {
            Some(channel_order) => {
                self.table
                    .channel_order(po.retailer_id, po.store_id, channel_order)
                    .await
                    .map_err(store_failure)?
                    .purchase_order_ids
            }
            None => Vec::new(),
        };
        if !order_ids.contains(&po.id) {
            order_ids.push(po.id);
        }
        // Read after our own write, consistently: whichever shipment completes the order sees it.
        for id in &order_ids {
            let complete = match self.table.purchase_order_now(*id).await.map_err(store_failure)? {
                Some(order) => order.is_fully_fulfilled(),
                None => true,
            };
            if !complete {
                return Ok(());
            }
        }
        info!(purchase_order_id = %po.id, orders = order_ids.len(), "order fully shipped: releasing its shipments");
        for id in order_ids {
            self.release_waiting_shipments(id, store, just_created).await?;
        }
        Ok(())
    }

    async fn release_waiting_shipments(
        &self,
        po: PurchaseOrderId,
        store: &ChannelStore,
        just_created: &Shipment,
    ) -> Result<(), ApiError> {
        let mut shipments = self.table.shipments_of_purchase_order(po).await.map_err(store_failure)?;
        // The index may not show the shipment written a moment ago yet.
        if just_created.purchase_order_id == po && !shipments.iter().any(|s| s.id == just_created.id) {
            shipments.push(just_created.clone());
        }
        for shipment in shipments.into_iter().filter(|s| s.export.state == ExportState::WaitingForOrder) {
            let mut current = shipment;
            for _ in 0..WRITE_ATTEMPTS {
                let now = self.now();
                let Some(released) = current.order_shipped(now, store.export.delay()) else { break };
                let ExportState::Scheduled { due_at } = released.export.state else { break };
                let delivery = scheduled(due_at, now).1.unwrap_or(Delivery::Now);
                // Planned before it is written: the exporter retries a request that comes early.
                self.deliver(released.id, ExportReason::OrderShipped, delivery).await?;
                match self.table.update_shipment(&released, None).await {
                    Ok(()) => break,
                    Err(TableError::Conflict(_)) => {
                        self.withdraw(released.id, ExportReason::OrderShipped, delivery).await;
                        match self.table.shipment(released.id).await.map_err(store_failure)? {
                            Some(fresh) => current = fresh,
                            None => break,
                        }
                    }
                    Err(other) => return Err(store_failure(other)),
                }
            }
        }
        Ok(())
    }
}
