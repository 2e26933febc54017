//! Returns (RMAs): units of a purchase order coming back, never more than were shipped, moving
//! from `requested` through `authorized`, `received` and `refunded` to `closed`. The retailer
//! moves a return on; the vendor that receives the goods marks it `received`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationErrors;
use crate::ids::{OrderItemId, PurchaseOrderId, RetailerId, StoreId, VendorId};
use crate::purchase_order::PurchaseOrder;

/// The longest reason taken.
pub const MAX_REASON_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnState {
    Requested,
    Authorized,
    Received,
    Refunded,
    Closed,
}

impl ReturnState {
    pub const ALL: [ReturnState; 5] = [
        ReturnState::Requested,
        ReturnState::Authorized,
        ReturnState::Received,
        ReturnState::Refunded,
        ReturnState::Closed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReturnState::Requested => "requested",
            ReturnState::Authorized => "authorized",
            ReturnState::Received => "received",
            ReturnState::Refunded => "refunded",
            ReturnState::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.name() == text.trim())
    }

    /// The states a return may move to from this one.
    pub fn next(self) -> &'static [ReturnState] {
        match self {
            ReturnState::Requested => &[ReturnState::Authorized, ReturnState::Closed],
            ReturnState::Authorized => &[ReturnState::Received, ReturnState::Closed],
            ReturnState::Received => &[ReturnState::Refunded, ReturnState::Closed],
            ReturnState::Refunded => &[ReturnState::Closed],
            ReturnState::Closed => &[],
        }
    }
}

/// Units of one order item coming back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnLine {
    pub order_item_id: OrderItemId,
    pub sku: String,
    pub quantity: u32,
}

/// A state a return reached, when, and by whom (`retailer` or `vendor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnStep {
    pub state: ReturnState,
    pub at: DateTime<Utc>,
    pub by: crate::labels::AttachedBy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Return {
    pub id: u64,
    pub retailer_id: RetailerId,
    pub purchase_order_id: PurchaseOrderId,
    /// The purchase order's vendor: it receives the goods, and it alone of the vendors sees it.
    pub vendor_id: VendorId,
    pub store_id: StoreId,
    pub purchase_order_number: String,
    pub customer_name: String,
    pub lines: Vec<ReturnLine>,
    pub reason: String,
    pub state: ReturnState,
    /// A label attached to the purchase order for the goods to come back with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_id: Option<u64>,
    pub history: Vec<ReturnStep>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

impl Return {
    /// Whether its units count against what may still be returned: all but a return closed
    /// before any goods came back.
    pub fn counts(&self) -> bool {
        self.state != ReturnState::Closed || self.history.iter().any(|step| step.state == ReturnState::Received)
    }

    /// The return moved to `to` by the retailer, or by the vendor (which may only mark an
    /// authorized return `received`). Err: why not, naming `state`.
    pub fn moved(&self, to: ReturnState, by_vendor: bool, now: DateTime<Utc>) -> Result<Return, ValidationErrors> {
        if by_vendor && !(self.state == ReturnState::Authorized && to == ReturnState::Received) {
            return Err(ValidationErrors::single(
                "state",
                "a vendor may only mark an authorized return received; the retailer moves it otherwise",
            ));
        }
        if !self.state.next().contains(&to) {
            let allowed: Vec<&str> = self.state.next().iter().map(|state| state.name()).collect();
            return Err(ValidationErrors::single(
                "state",
                if allowed.is_empty() {
                    format!("the return is {}: it cannot move on", self.state.name())
                } else {
                    format!("cannot go from {} to {} (only to {})", self.state.name(), to.name(), allowed.join(" or "))
                },
            ));
        }
        let mut next = self.clone();
        next.state = to;
        next.history.push(ReturnStep {
            state: to,
            at: now,
            by: if by_vendor { crate::labels::AttachedBy::Vendor } else { crate::labels::AttachedBy::Retailer },
        });
        next.updated_at = now;
        next.version += 1;
        Ok(next)
    }
}

/// A return as a request sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnInput {
    pub items: Option<Vec<ReturnItemInput>>,
    pub reason: Option<String>,
    pub label_id: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnItemInput {
    pub order_item_id: Option<u64>,
    pub quantity: Option<i64>,
}

/// A new return of `po` (`existing`: its other returns; `label_ids`: its labels), checked: every
/// item is the order's, each quantity between 1 and what has shipped and not come back already,
/// a reason. Each problem names its field.
pub fn draft_return(
    po: &PurchaseOrder,
    existing: &[Return],
    label_ids: &[u64],
    input: &ReturnInput,
    id: u64,
    now: DateTime<Utc>,
) -> Result<Return, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut lines: Vec<ReturnLine> = Vec::new();
    match input.items.as_deref() {
        None | Some([]) => errors.push("items", "must list at least one item: its order_item_id and quantity"),
        Some(items) => {
            for (index, entry) in items.iter().enumerate() {
                let field = |name: &str| format!("items[{index}].{name}");
                let Some(item) = entry.order_item_id.and_then(|id| po.items.iter().find(|item| item.id.get() == id))
                else {
                    errors.push(field("order_item_id"), "is not an item of this purchase order");
                    continue;
                };
                let returned: u32 = existing
                    .iter()
                    .filter(|other| other.counts())
                    .flat_map(|other| &other.lines)
                    .chain(&lines)
                    .filter(|line| line.order_item_id == item.id)
                    .map(|line| line.quantity)
                    .sum();
                let returnable = item.quantity_fulfilled.saturating_sub(returned);
                match entry.quantity.and_then(|quantity| u32::try_from(quantity).ok()).filter(|quantity| *quantity > 0)
                {
                    Some(quantity) if quantity <= returnable => {
                        lines.push(ReturnLine { order_item_id: item.id, sku: item.sku.clone(), quantity });
                    }
                    Some(_) | None => errors.push(
                        field("quantity"),
                        format!(
                            "must be between 1 and {returnable}: {} shipped, {returned} already coming back",
                            item.quantity_fulfilled
                        ),
                    ),
                }
            }
        }
    }
    let reason = input.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        errors.push("reason", "is required");
    } else if reason.chars().count() > MAX_REASON_CHARS {
        errors.push("reason", format!("must be at most {MAX_REASON_CHARS} characters"));
    }
    if let Some(label) = input.label_id
        && !label_ids.contains(&label)
    {
        errors.push("label_id", "is not a label of this purchase order");
    }
    errors.into_result(())?;
    Ok(Return {
        id,
        retailer_id: po.retailer_id,
        purchase_order_id: po.id,
        vendor_id: po.vendor_id,
        store_id: po.store_id,
        purchase_order_number: po.public_reference.clone(),
        customer_name: po.customer_name.clone(),
        lines,
        reason: reason.to_owned(),
        state: ReturnState::Requested,
        label_id: input.label_id,
        history: vec![ReturnStep { state: ReturnState::Requested, at: now, by: crate::labels::AttachedBy::Retailer }],
        created_at: now,
        updated_at: now,
        version: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purchase_order::tests::order;

    fn shipped(quantities: &[u32]) -> PurchaseOrder {
        let mut po = order(&[3, 2]);
        for (item, shipped) in po.items.iter_mut().zip(quantities) {
            item.quantity_fulfilled = *shipped;
        }
        po
    }

    fn input(po: &PurchaseOrder, quantities: &[(usize, i64)]) -> ReturnInput {
        ReturnInput {
            items: Some(
                quantities
                    .iter()
                    .map(|(index, quantity)| ReturnItemInput {
                        order_item_id: Some(po.items[*index].id.get()),
                        quantity: Some(*quantity),
                    })
                    .collect(),
            ),
            reason: Some("damaged".into()),
            label_id: None,
        }
    }

    fn fields(result: Result<Return, ValidationErrors>) -> Vec<String> {
        result.err().map(|errors| errors.errors().iter().map(|e| e.field.clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn never_more_than_shipped_and_not_yet_coming_back() {
        let po = shipped(&[2, 0]);
        let first = draft_return(&po, &[], &[], &input(&po, &[(0, 2)]), 1, DateTime::UNIX_EPOCH).expect("two shipped");
        assert_eq!(first.state, ReturnState::Requested);
        assert_eq!(
            fields(draft_return(
                &po,
                std::slice::from_ref(&first),
                &[],
                &input(&po, &[(0, 1)]),
                2,
                DateTime::UNIX_EPOCH
            )),
            ["items[0].quantity"]
        );
        assert_eq!(
            fields(draft_return(&po, &[], &[], &input(&po, &[(1, 1)]), 2, DateTime::UNIX_EPOCH)),
            ["items[0].quantity"],
            "none shipped"
        );
        assert_eq!(
            fields(draft_return(&po, &[], &[], &input(&po, &[(0, 1), (0, 2)]), 2, DateTime::UNIX_EPOCH)),
            ["items[1].quantity"],
            "one request adds up too"
        );
        // A return closed before anything came back frees its units.
        let closed = first.moved(ReturnState::Closed, false, DateTime::UNIX_EPOCH).expect("closed");
        assert!(draft_return(&po, &[closed], &[], &input(&po, &[(0, 2)]), 2, DateTime::UNIX_EPOCH).is_ok());
        let mut blank = input(&po, &[(0, 1)]);
        blank.reason = Some(" ".into());
        blank.label_id = Some(9);
        assert_eq!(fields(draft_return(&po, &[], &[], &blank, 2, DateTime::UNIX_EPOCH)), ["reason", "label_id"]);
        assert_eq!(
            fields(draft_return(&po, &[], &[], &ReturnInput::default(), 2, DateTime::UNIX_EPOCH)),
            ["items", "reason"]
        );
    }

    #[test]
    fn states_move_forward_and_a_vendor_only_marks_received() {
        let po = shipped(&[1, 0]);
        let requested = draft_return(&po, &[], &[], &input(&po, &[(0, 1)]), 1, DateTime::UNIX_EPOCH).expect("a return");
        assert!(
            requested.moved(ReturnState::Authorized, true, DateTime::UNIX_EPOCH).is_err(),
            "not the vendor's to authorize"
        );
        assert!(requested.moved(ReturnState::Refunded, false, DateTime::UNIX_EPOCH).is_err(), "no skipping");
        let authorized = requested.moved(ReturnState::Authorized, false, DateTime::UNIX_EPOCH).expect("authorized");
        let received =
            authorized.moved(ReturnState::Received, true, DateTime::UNIX_EPOCH).expect("received by the vendor");
        assert_eq!(received.history.last().map(|step| step.by), Some(crate::labels::AttachedBy::Vendor));
        let closed = received
            .moved(ReturnState::Refunded, false, DateTime::UNIX_EPOCH)
            .and_then(|refunded| refunded.moved(ReturnState::Closed, false, DateTime::UNIX_EPOCH))
            .expect("closed");
        assert!(closed.counts(), "its goods came back");
        assert!(closed.moved(ReturnState::Requested, false, DateTime::UNIX_EPOCH).is_err());
        assert_eq!(closed.version, 5);
    }
}
