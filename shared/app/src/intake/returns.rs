//! Returns made in a channel (Shopify's `returns/*` notices): taken once per purchase order
//! they span, as shipsync returns marked as the channel's, and moved on as later notices say.

use std::collections::BTreeMap;

use shipsync_domain::ids::{OrderItemId, PurchaseOrderId, RetailerId, StoreId};
use shipsync_domain::orders::{OrderProblem, ProblemKind};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::returns::{
    ChannelReturnStatus, IncomingReturn, ReturnInput, ReturnItemInput, ReturnState, ReturnSync, channel_move,
    draft_return,
};
use tracing::{info, warn};

use super::OrderIntake;
use crate::Failure;
use crate::optimistic::retry_on_conflict;
use crate::ports::{ExportPlanner, Repositories};

impl<R: Repositories, P: ExportPlanner> OrderIntake<R, P> {
    /// Applies a channel's return notice: a return shipsync does not hold yet is taken (one per
    /// purchase order whose units it names; units that did not ship in shipsync are listed for a
    /// person instead), and every return made of it moves on as the notice says. Notices come
    /// more than once and in any order: each step is taken once, and never backwards.
    pub async fn apply_return(
        &self,
        retailer: RetailerId,
        store: StoreId,
        incoming: &IncomingReturn,
    ) -> Result<(), Failure> {
        let mut known = self.repositories.channel_returns(retailer, store, &incoming.channel_return_id).await?;
        let opens = matches!(incoming.status, ChannelReturnStatus::Requested | ChannelReturnStatus::Open);
        if opens
            && !incoming.lines.is_empty()
            && let Some(order) = &incoming.channel_order_id
        {
            let ids = self.repositories.channel_order_purchase_orders(retailer, store, order).await?;
            let mut orders = Vec::new();
            for id in ids {
                if let Some(po) = self.repositories.purchase_order_now(id).await? {
                    orders.push(po);
                }
            }
            let mut groups: BTreeMap<PurchaseOrderId, Vec<(OrderItemId, u32)>> = BTreeMap::new();
            for (line, quantity) in &incoming.lines {
                let found = orders.iter().find_map(|po| {
                    po.items
                        .iter()
                        .find(|item| item.channel_line_item_id.as_deref() == Some(line))
                        .map(|item| (po.id, item.id))
                });
                match found {
                    Some((po, item)) => groups.entry(po).or_default().push((item, *quantity)),
                    None => {
                        let reason = format!("its line {line} is on no purchase order of this store");
                        return self.ignore_return(retailer, store, incoming, None, &reason).await;
                    }
                }
            }
            for (po_id, items) in groups {
                if known.iter().any(|ret| ret.purchase_order_id == po_id) {
                    continue;
                }
                let Some(po) = orders.iter().find(|po| po.id == po_id) else { continue };
                if let Some(created) = self.take_return(po, &items, incoming).await? {
                    known.push(created);
                }
            }
        }
        if known.is_empty() {
            info!(channel_return = %incoming.channel_return_id, status = ?incoming.status, "a notice of a return shipsync does not hold: nothing to move");
        }
        for ret in known {
            let id = ret.id;
            retry_on_conflict(|| async {
                let Some(current) = self.repositories.retailer_return(retailer, id).await? else { return Ok(()) };
                let Some(to) = channel_move(&current, incoming.status) else { return Ok(()) };
                let moved = current.moved(to, false, self.now())?;
                self.repositories.update_return(&moved).await?;
                info!(return_id = id, state = to.name(), "return moved as its channel says");
                Ok(())
            })
            .await?;
        }
        Ok(())
    }

    /// Takes a channel's return for one purchase order: `None` when its units cannot come back
    /// in shipsync (listed for a person) or another delivery took it meanwhile.
    async fn take_return(
        &self,
        po: &PurchaseOrder,
        items: &[(OrderItemId, u32)],
        incoming: &IncomingReturn,
    ) -> Result<Option<shipsync_domain::returns::Return>, Failure> {
        let id = *self.repositories.allocate_ids(1).await?.start();
        let input = ReturnInput {
            items: Some(
                items
                    .iter()
                    .map(|(item, quantity)| ReturnItemInput {
                        order_item_id: Some(item.get()),
                        quantity: Some(i64::from(*quantity)),
                    })
                    .collect(),
            ),
            reason: Some(incoming.reason.clone()),
            label_id: None,
        };
        retry_on_conflict(|| async {
            let (existing, version) = self.repositories.purchase_order_returns(po.retailer_id, po.id).await?;
            let now = self.now();
            let mut ret = match draft_return(po, &existing, &[], &input, id, now) {
                Ok(ret) => ret,
                Err(errors) => {
                    let reason = format!("shipsync cannot take it back: {errors}");
                    self.ignore_return(po.retailer_id, po.store_id, incoming, Some(po), &reason).await?;
                    return Ok(None);
                }
            };
            ret.channel = ReturnSync::FromChannel { channel_return_id: incoming.channel_return_id.clone() };
            if incoming.status.state() == ReturnState::Authorized {
                ret = ret.moved(ReturnState::Authorized, false, now)?;
            }
            match self.repositories.create_return(&ret, version).await {
                Ok(()) => {
                    info!(return_id = ret.id, purchase_order_id = %po.id, channel_return = %incoming.channel_return_id, "return taken from the channel");
                    Ok(Some(ret))
                }
                // Another delivery of the notice took it first.
                Err(Failure::Exists(_)) => Ok(None),
                Err(other) => Err(other),
            }
        })
        .await
    }

    /// Lists a channel's return shipsync cannot take, with why.
    async fn ignore_return(
        &self,
        retailer: RetailerId,
        store: StoreId,
        incoming: &IncomingReturn,
        po: Option<&PurchaseOrder>,
        reason: &str,
    ) -> Result<(), Failure> {
        let problem = OrderProblem {
            key: format!("channel_return_ignored:{store}:{}", incoming.channel_return_id),
            kind: ProblemKind::ChannelReturnIgnored,
            order_id: None,
            store_id: store,
            channel_order_id: incoming.channel_order_id.as_ref().map(ToString::to_string).unwrap_or_default(),
            order_number: po.map(|po| po.public_reference.clone()).unwrap_or_default(),
            reason: format!(
                "return {} made in the channel is not in shipsync: {reason}. Make it by hand \
                 (POST /purchase_orders/{{id}}/returns.json) once its units shipped",
                incoming.channel_return_id
            ),
            since: self.now(),
        };
        warn!(channel_return = %incoming.channel_return_id, %reason, "a channel's return ignored: listed");
        self.repositories.put_problem(retailer, &problem).await
    }
}
