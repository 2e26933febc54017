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
    /// How the return stands with its channel: made there, or to be made there.
    #[serde(default, skip_serializing_if = "ReturnSync::is_none")]
    pub channel: ReturnSync,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A return's place at its channel. A return made in shipsync and authorized there is created
/// at a channel that takes returns (Shopify's `returnCreate`), once, like an export: a claim
/// before the call, the channel asked first after a claim that outlived its attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ReturnSync {
    /// Not at the channel (not authorized yet, or the channel takes no returns from shipsync).
    #[default]
    None,
    /// It came from the channel (a return the customer asked for there).
    FromChannel { channel_return_id: String },
    /// To be created at the channel.
    Pushing(crate::cancellations::PushProgress),
    /// The channel has it.
    Pushed { channel_return_id: String },
    /// The channel refused it, or it kept failing: listed for a person.
    PushFailed { message: String },
}

impl ReturnSync {
    pub fn is_none(&self) -> bool {
        *self == ReturnSync::None
    }

    pub fn name(&self) -> &'static str {
        match self {
            ReturnSync::None => "none",
            ReturnSync::FromChannel { .. } => "from_channel",
            ReturnSync::Pushing(_) => "pushing",
            ReturnSync::Pushed { .. } => "pushed",
            ReturnSync::PushFailed { .. } => "push_failed",
        }
    }

    /// The channel's id for the return, once it has one.
    pub fn channel_return_id(&self) -> Option<&str> {
        match self {
            ReturnSync::FromChannel { channel_return_id } | ReturnSync::Pushed { channel_return_id } => {
                Some(channel_return_id)
            }
            _ => None,
        }
    }
}

/// A return's push request, on the exporter's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRef {
    pub retailer_id: RetailerId,
    pub purchase_order_id: PurchaseOrderId,
    pub id: u64,
}

impl Return {
    /// Whether authorizing it now creates it at a channel of this kind: a return made in
    /// shipsync, on a channel that takes returns from shipsync (Shopify).
    pub fn to_push_on_authorize(&self, channel: crate::tenant::ChannelKind) -> bool {
        self.state == ReturnState::Authorized
            && self.channel == ReturnSync::None
            && channel == crate::tenant::ChannelKind::Shopify
    }

    /// The next version with its channel state.
    pub fn with_channel(&self, channel: ReturnSync, now: DateTime<Utc>) -> Return {
        let mut next = self.clone();
        next.channel = channel;
        next.updated_at = now;
        next.version += 1;
        next
    }

    /// What a delivered push request does now.
    pub fn decide_push(&self, now: DateTime<Utc>) -> crate::cancellations::PushAction {
        match &self.channel {
            ReturnSync::Pushing(progress) => progress.decide(now),
            other => crate::cancellations::PushAction::Skip(other.name()),
        }
    }

    /// Takes it for a channel call.
    pub fn claim_push(&self, now: DateTime<Utc>) -> Return {
        let progress = match &self.channel {
            ReturnSync::Pushing(progress) => progress.claimed(now),
            _ => crate::cancellations::PushProgress::default().claimed(now),
        };
        self.with_channel(ReturnSync::Pushing(progress), now)
    }

    /// The call failed in a way worth retrying; after its attempts a person must look.
    pub fn push_retry(&self, message: String, now: DateTime<Utc>) -> Return {
        let ReturnSync::Pushing(progress) = &self.channel else { return self.clone() };
        match progress.retried(message) {
            Ok(progress) => self.with_channel(ReturnSync::Pushing(progress), now),
            Err(message) => self.with_channel(ReturnSync::PushFailed { message }, now),
        }
    }

    /// The key of its order health problem (a push that failed).
    pub fn problem_key(id: u64) -> String {
        format!("return_push_failed:{id}")
    }

    /// Its order health problem while its push failed.
    pub fn problem(&self, now: DateTime<Utc>) -> Option<crate::orders::OrderProblem> {
        let ReturnSync::PushFailed { message } = &self.channel else { return None };
        Some(crate::orders::OrderProblem {
            key: Self::problem_key(self.id),
            kind: crate::orders::ProblemKind::ReturnPushFailed,
            order_id: None,
            store_id: self.store_id,
            channel_order_id: String::new(),
            order_number: self.purchase_order_number.clone(),
            reason: format!(
                "return {} of purchase order {} is authorized in shipsync but the channel did not take it ({message}): \
                 open it in the channel",
                self.id, self.purchase_order_number
            ),
            since: now,
        })
    }

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
        channel: ReturnSync::None,
        created_at: now,
        updated_at: now,
        version: 1,
    })
}

/// Where a return made in the channel stands there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelReturnStatus {
    /// The customer asked (Shopify's `REQUESTED`).
    Requested,
    /// Approved or opened (`OPEN`).
    Open,
    /// The merchant declined it.
    Declined,
    Canceled,
    Closed,
}

impl ChannelReturnStatus {
    /// The state a shipsync return takes for it.
    pub fn state(self) -> ReturnState {
        match self {
            ChannelReturnStatus::Requested => ReturnState::Requested,
            ChannelReturnStatus::Open => ReturnState::Authorized,
            ChannelReturnStatus::Declined | ChannelReturnStatus::Canceled | ChannelReturnStatus::Closed => {
                ReturnState::Closed
            }
        }
    }
}

/// A return made in a channel, as its webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncomingReturn {
    pub channel_return_id: String,
    /// Absent in some notices (Shopify's `returns/decline`): only a known return is moved then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_order_id: Option<crate::vocabulary::ChannelOrderId>,
    pub status: ChannelReturnStatus,
    /// Channel line item id and quantity (only in the notices that list them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lines: Vec<(String, u32)>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The move a channel's notice makes of a shipsync return: `None` when it is there already or
/// beyond (notices come more than once and out of order), or cannot go there.
pub fn channel_move(current: &Return, status: ChannelReturnStatus) -> Option<ReturnState> {
    let target = status.state();
    if current.state == target || current.state == ReturnState::Closed {
        return None;
    }
    match target {
        // Approved after it moved on in shipsync (received, say): nothing to do.
        ReturnState::Authorized if current.state != ReturnState::Requested => None,
        ReturnState::Requested => None,
        other => current.state.next().contains(&other).then_some(other),
    }
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

    #[test]
    fn a_channels_notices_move_a_return_forward_only_and_once() {
        let po = shipped(&[1, 0]);
        let requested = draft_return(&po, &[], &[], &input(&po, &[(0, 1)]), 1, DateTime::UNIX_EPOCH).expect("a return");
        assert_eq!(channel_move(&requested, ChannelReturnStatus::Open), Some(ReturnState::Authorized));
        assert_eq!(channel_move(&requested, ChannelReturnStatus::Requested), None);
        assert_eq!(channel_move(&requested, ChannelReturnStatus::Declined), Some(ReturnState::Closed));
        let received = requested
            .moved(ReturnState::Authorized, false, DateTime::UNIX_EPOCH)
            .and_then(|r| r.moved(ReturnState::Received, true, DateTime::UNIX_EPOCH))
            .expect("received");
        assert_eq!(channel_move(&received, ChannelReturnStatus::Open), None, "a late approval");
        assert_eq!(channel_move(&received, ChannelReturnStatus::Closed), Some(ReturnState::Closed));
        let closed = received.moved(ReturnState::Closed, false, DateTime::UNIX_EPOCH).expect("closed");
        assert_eq!(channel_move(&closed, ChannelReturnStatus::Closed), None);
    }

    #[test]
    fn an_authorized_return_made_in_shipsync_is_pushed_once() {
        let po = shipped(&[1, 0]);
        let now = DateTime::UNIX_EPOCH;
        let requested = draft_return(&po, &[], &[], &input(&po, &[(0, 1)]), 1, now).expect("a return");
        let authorized = requested.moved(ReturnState::Authorized, false, now).expect("authorized");
        assert!(authorized.to_push_on_authorize(crate::tenant::ChannelKind::Shopify));
        assert!(!authorized.to_push_on_authorize(crate::tenant::ChannelKind::Amazon));
        let pushing = authorized.with_channel(ReturnSync::Pushing(crate::cancellations::PushProgress::default()), now);
        use crate::cancellations::PushAction;
        assert_eq!(pushing.decide_push(now), PushAction::Push { check_first: false });
        let claimed = pushing.claim_push(now);
        assert_eq!(claimed.decide_push(now), PushAction::Busy);
        assert_eq!(claimed.decide_push(now + crate::export::CLAIM_TIMEOUT), PushAction::Push { check_first: true });
        let from_channel = authorized.with_channel(ReturnSync::FromChannel { channel_return_id: "R1".into() }, now);
        assert!(!from_channel.to_push_on_authorize(crate::tenant::ChannelKind::Shopify), "made there already");
        assert_eq!(from_channel.decide_push(now), PushAction::Skip("from_channel"));
    }
}
