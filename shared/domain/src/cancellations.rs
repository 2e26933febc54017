//! Merchant-driven cancellations: units of a purchase order that will not ship, cancelled in
//! shipsync at once and pushed to the order's channel exactly once. A vendor that cannot fulfil
//! asks for one; its store says whether that goes through at once or waits for the retailer.
//!
//! Pushing is once-only like an export: a claim (`sending_since`) before the channel call, a
//! claim that outlived its attempt makes the next one ask the channel first, and the pushed state
//! ends every later delivery.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationErrors;
use crate::export::CLAIM_TIMEOUT;
use crate::ids::{OrderItemId, PurchaseOrderId, RetailerId, StoreId, VendorId};
use crate::labels::AttachedBy;
use crate::purchase_order::PurchaseOrder;
use crate::tenant::ChannelKind;
use crate::vocabulary::ChannelOrderId;

/// The longest note taken.
pub const MAX_NOTE_CHARS: usize = 500;

/// Channel calls a push may start before it is marked failed for a person.
pub const MAX_PUSH_ATTEMPTS: u32 = 8;

/// Why units are cancelled, in the words every channel maps to its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The vendor cannot ship them (out of stock, discontinued).
    OutOfStock,
    /// The customer asked the retailer to cancel.
    CustomerRequested,
    /// The address cannot be shipped to.
    AddressUndeliverable,
    /// The price was wrong.
    PricingError,
    /// The order looks fraudulent.
    Fraud,
    Other,
}

impl CancelReason {
    pub const ALL: [CancelReason; 6] = [
        CancelReason::OutOfStock,
        CancelReason::CustomerRequested,
        CancelReason::AddressUndeliverable,
        CancelReason::PricingError,
        CancelReason::Fraud,
        CancelReason::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CancelReason::OutOfStock => "out_of_stock",
            CancelReason::CustomerRequested => "customer_requested",
            CancelReason::AddressUndeliverable => "address_undeliverable",
            CancelReason::PricingError => "pricing_error",
            CancelReason::Fraud => "fraud",
            CancelReason::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|reason| reason.name() == text.trim())
    }
}

/// What a channel can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelSupport {
    /// Units of single lines (Shopify, Walmart).
    Lines,
    /// The whole order only (eBay's Post-Order API, WooCommerce's status, Wish's refund).
    WholeOrder,
    /// No cancellation call: done in the channel's own back office (Back Market, Groupon, Amazon).
    None,
}

/// What shipsync pushes to each channel (see the README's channel table for the calls).
pub fn cancel_support(channel: ChannelKind) -> CancelSupport {
    match channel {
        ChannelKind::Shopify | ChannelKind::Walmart | ChannelKind::Custom => CancelSupport::Lines,
        ChannelKind::WooCommerce | ChannelKind::Ebay | ChannelKind::Wish => CancelSupport::WholeOrder,
        _ => CancelSupport::None,
    }
}

/// Why a channel's cancellations are made in the channel by a person.
fn not_pushed_because(channel: ChannelKind) -> &'static str {
    match channel {
        ChannelKind::Amazon => {
            "Amazon's cancelOrder was removed from the public Orders model (2026-05-27) and shipsync does not send \
             acknowledgement feeds"
        }
        ChannelKind::BackMarket | ChannelKind::Groupon => "its seller API documents no cancellation call",
        _ => "the channel takes no cancellation from shipsync",
    }
}

/// Units of one order item cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelLine {
    pub order_item_id: OrderItemId,
    pub sku: String,
    pub quantity: u32,
    /// The line's id in the channel (absent for a purchase order made by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_line_item_id: Option<String>,
    /// The item's units cancelled in all once this cancellation is applied: what a channel that
    /// counts cancelled units per line (Walmart) shows once it has this one, so that a retry
    /// sends only what it does not show yet.
    #[serde(default)]
    pub cancelled_after: u32,
}

/// Where a cancellation stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum CancellationState {
    /// A vendor asked; the retailer approves or declines it. No unit is cancelled yet.
    AwaitingApproval,
    /// The retailer declined the vendor's request: nothing changed.
    Declined { at: DateTime<Utc> },
    /// The units are cancelled in shipsync and the channel is to be told.
    Pushing(PushProgress),
    /// The channel has it.
    Pushed { at: DateTime<Utc>, channel_ids: Vec<String>, adopted: bool },
    /// The channel refused it, or it kept failing: listed in order health for a person.
    PushFailed { at: DateTime<Utc>, message: String },
    /// Cancelled in shipsync; the channel cannot take it by API, so a person cancels it there
    /// (listed in order health with what to do).
    CancelAtChannel { reason: String },
    /// Cancelled in shipsync; the purchase order has no channel order to tell.
    Local,
}

impl CancellationState {
    pub fn name(&self) -> &'static str {
        match self {
            CancellationState::AwaitingApproval => "awaiting_approval",
            CancellationState::Declined { .. } => "declined",
            CancellationState::Pushing(_) => "pushing",
            CancellationState::Pushed { .. } => "pushed",
            CancellationState::PushFailed { .. } => "push_failed",
            CancellationState::CancelAtChannel { .. } => "cancel_at_channel",
            CancellationState::Local => "local",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    pub id: u64,
    pub retailer_id: RetailerId,
    pub purchase_order_id: PurchaseOrderId,
    pub purchase_order_number: String,
    pub vendor_id: VendorId,
    pub store_id: StoreId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_order_id: Option<ChannelOrderId>,
    pub lines: Vec<CancelLine>,
    pub reason: CancelReason,
    #[serde(default)]
    pub note: String,
    /// Whether the channel tells the customer (where it can).
    pub notify_customer: bool,
    pub requested_by: AttachedBy,
    /// Every unit of the channel order is cancelled and nothing of it shipped: the channel
    /// cancels the order itself (set when the units are cancelled).
    #[serde(default)]
    pub whole_order: bool,
    pub state: CancellationState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: u64,
}

/// A cancellation as a request sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationInput {
    pub items: Option<Vec<CancelItemInput>>,
    pub reason: Option<String>,
    pub note: Option<String>,
    pub notify_customer: Option<bool>,
}

/// Units of one order item, as a request names them (as for returns).
pub type CancelItemInput = crate::returns::ReturnItemInput;

/// Checks that `lines` can still be cancelled on `po`: each quantity at most what is neither
/// shipped (in a shipment) nor cancelled.
fn check_cancellable(po: &PurchaseOrder, lines: &[CancelLine]) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    for (index, line) in lines.iter().enumerate() {
        let asked: u32 =
            lines[..=index].iter().filter(|l| l.order_item_id == line.order_item_id).map(|l| l.quantity).sum();
        let open = po.item(line.order_item_id).map_or(0, |item| item.unfulfilled());
        if asked > open {
            errors.push(
                format!("items[{index}].quantity"),
                format!("must be between 1 and {open}: only units in no shipment and not cancelled can be cancelled"),
            );
        }
    }
    errors.into_result(())
}

/// A new cancellation of `po`, checked: every item the order's, each quantity between 1 and the
/// units still open, a known reason. A vendor's request waits for approval when `needs_approval`.
pub fn draft_cancellation(
    po: &PurchaseOrder,
    input: &CancellationInput,
    by: AttachedBy,
    needs_approval: bool,
    store_notifies: bool,
    id: u64,
    now: DateTime<Utc>,
) -> Result<Cancellation, ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let mut lines = Vec::new();
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
                match entry.quantity.and_then(|quantity| u32::try_from(quantity).ok()).filter(|q| *q > 0) {
                    Some(quantity) => lines.push(CancelLine {
                        order_item_id: item.id,
                        sku: item.sku.clone(),
                        quantity,
                        channel_line_item_id: item.channel_line_item_id.clone(),
                        cancelled_after: 0,
                    }),
                    None => errors.push(field("quantity"), format!("must be between 1 and {}", item.unfulfilled())),
                }
            }
        }
    }
    if errors.is_empty()
        && let Err(more) = check_cancellable(po, &lines)
    {
        for error in more.errors() {
            errors.push(error.field.clone(), error.message.clone());
        }
    }
    let reason = match input.reason.as_deref().map(str::trim) {
        None | Some("") => {
            errors.push(
                "reason",
                "is required: out_of_stock, customer_requested, address_undeliverable, pricing_error, fraud or other",
            );
            CancelReason::Other
        }
        Some(text) => CancelReason::parse(text).unwrap_or_else(|| {
            errors.push(
                "reason",
                "must be out_of_stock, customer_requested, address_undeliverable, pricing_error, fraud or other",
            );
            CancelReason::Other
        }),
    };
    let note = input.note.as_deref().map(str::trim).unwrap_or_default().to_owned();
    if note.chars().count() > MAX_NOTE_CHARS {
        errors.push("note", format!("must be at most {MAX_NOTE_CHARS} characters"));
    }
    if by == AttachedBy::Vendor && input.notify_customer.is_some() {
        errors.push("notify_customer", "is the retailer's to set");
    }
    errors.into_result(())?;
    Ok(Cancellation {
        id,
        retailer_id: po.retailer_id,
        purchase_order_id: po.id,
        purchase_order_number: po.public_reference.clone(),
        vendor_id: po.vendor_id,
        store_id: po.store_id,
        channel_order_id: po.channel_order_id.clone(),
        lines,
        reason,
        note,
        notify_customer: input.notify_customer.unwrap_or(store_notifies),
        requested_by: by,
        whole_order: false,
        state: if by == AttachedBy::Vendor && needs_approval {
            CancellationState::AwaitingApproval
        } else {
            CancellationState::Pushing(PushProgress::default())
        },
        created_at: now,
        updated_at: now,
        version: 1,
    })
}

/// What pushing a cancellation of this channel's order means, once its units are cancelled.
/// `others`: the channel order's other purchase orders, as they stand.
pub fn push_plan(
    cancellation: &Cancellation,
    po_after: &PurchaseOrder,
    others: &[PurchaseOrder],
    channel: ChannelKind,
) -> (bool, CancellationState) {
    let nothing_left =
        |po: &PurchaseOrder| po.items.iter().all(|item| item.quantity == 0 && item.quantity_fulfilled == 0);
    let whole = nothing_left(po_after) && others.iter().filter(|other| other.id != po_after.id).all(nothing_left);
    let state = if cancellation.channel_order_id.is_none()
        || cancellation.lines.iter().any(|line| line.channel_line_item_id.is_none())
    {
        CancellationState::Local
    } else {
        match (cancel_support(channel), whole) {
            (CancelSupport::Lines, _) | (CancelSupport::WholeOrder, true) => {
                CancellationState::Pushing(PushProgress::default())
            }
            (CancelSupport::WholeOrder, false) => CancellationState::CancelAtChannel {
                reason: format!(
                    "{} cancels whole orders only and units of this order remain or shipped: cancel these units in {} itself",
                    channel.name(),
                    channel.name()
                ),
            },
            (CancelSupport::None, _) => CancellationState::CancelAtChannel {
                reason: format!(
                    "{} is not told by shipsync ({}): cancel these units in {} itself",
                    channel.name(),
                    not_pushed_because(channel),
                    channel.name()
                ),
            },
        }
    };
    (whole, state)
}

impl Cancellation {
    /// Its units cancelled on `po`: the next version of the purchase order, or why not (units
    /// shipped or cancelled since it was asked for).
    pub fn apply_to(&self, po: &PurchaseOrder, now: DateTime<Utc>) -> Result<PurchaseOrder, ValidationErrors> {
        check_cancellable(po, &self.lines)?;
        let mut next = po.clone();
        for line in &self.lines {
            if let Some(item) = next.items.iter_mut().find(|item| item.id == line.order_item_id) {
                item.quantity -= line.quantity;
                item.quantity_cancelled += line.quantity;
            }
        }
        next.updated_at = now;
        next.version += 1;
        Ok(next)
    }

    /// Records, on each line, the item's units cancelled in all once applied (`after`: the
    /// purchase order with it applied).
    pub fn record_totals(&mut self, after: &PurchaseOrder) {
        for line in &mut self.lines {
            line.cancelled_after = after.item(line.order_item_id).map_or(0, |item| item.quantity_cancelled);
        }
    }

    /// The next version in `state`.
    pub fn with_state(&self, state: CancellationState, now: DateTime<Utc>) -> Cancellation {
        let mut next = self.clone();
        next.state = state;
        next.updated_at = now;
        next.version += 1;
        next
    }

    /// What a delivered push request does now.
    pub fn decide_push(&self, now: DateTime<Utc>) -> PushAction {
        match &self.state {
            CancellationState::Pushing(progress) => progress.decide(now),
            _ => PushAction::Skip(self.state.name()),
        }
    }

    /// Takes it for a channel call.
    pub fn claim_push(&self, now: DateTime<Utc>) -> Cancellation {
        let progress = match &self.state {
            CancellationState::Pushing(progress) => progress.claimed(now),
            _ => PushProgress::default().claimed(now),
        };
        self.with_state(CancellationState::Pushing(progress), now)
    }

    /// The call failed in a way worth retrying: the next delivery tries again (asking first),
    /// unless it has been tried [`MAX_PUSH_ATTEMPTS`] times, when a person must look.
    pub fn push_retry(&self, message: String, now: DateTime<Utc>) -> Cancellation {
        let CancellationState::Pushing(progress) = &self.state else { return self.clone() };
        match progress.retried(message) {
            Ok(progress) => self.with_state(CancellationState::Pushing(progress), now),
            Err(message) => self.with_state(CancellationState::PushFailed { at: now, message }, now),
        }
    }

    /// The retailer asks for another try after a failure: pushed again, the channel asked first.
    pub fn push_again(&self, now: DateTime<Utc>) -> Result<Cancellation, ValidationErrors> {
        match &self.state {
            CancellationState::PushFailed { .. } => Ok(self
                .with_state(CancellationState::Pushing(PushProgress { attempts: 1, ..PushProgress::default() }), now)),
            other => Err(ValidationErrors::single(
                "state",
                format!("only a cancellation whose push failed can be pushed again; this one is {}", other.name()),
            )),
        }
    }

    /// The problem order health lists for it while a person must act, if any.
    pub fn problem_reason(&self) -> Option<String> {
        let units =
            self.lines.iter().map(|line| format!("{} × {}", line.quantity, line.sku)).collect::<Vec<_>>().join(", ");
        let what = format!("cancellation {} of purchase order {} ({units})", self.id, self.purchase_order_number);
        match &self.state {
            CancellationState::AwaitingApproval => Some(format!(
                "the vendor asks for {what}: approve it (POST /cancellations/{}/approve.json) or decline it",
                self.id
            )),
            CancellationState::PushFailed { message, .. } => Some(format!(
                "{what} is cancelled in shipsync but the channel did not take it ({message}): fix the cause, then \
                 POST /cancellations/{}/push.json, or cancel it in the channel",
                self.id
            )),
            CancellationState::CancelAtChannel { reason } => Some(format!("{what}: {reason}")),
            _ => None,
        }
    }

    /// The key of its order health problem.
    pub fn problem_key(id: u64) -> String {
        format!("cancellation:{id}")
    }

    /// How its order health problem changes from `before` (`None`: it is new) to this version:
    /// listed while a person must act, cleared once nobody need, and left alone otherwise (a
    /// push's own writes touch no problem they did not make).
    pub fn problem_update(&self, before: Option<&Cancellation>, now: DateTime<Utc>) -> ProblemUpdate {
        match self.problem(now) {
            Some(problem) => ProblemUpdate::List(problem),
            None if before.is_some_and(|before| before.problem(now).is_some()) => ProblemUpdate::Clear,
            None => ProblemUpdate::Unchanged,
        }
    }

    /// Its order health problem while a person must act; `None` once nobody need.
    pub fn problem(&self, now: DateTime<Utc>) -> Option<crate::orders::OrderProblem> {
        use crate::orders::ProblemKind;
        let kind = match self.state {
            CancellationState::AwaitingApproval => ProblemKind::CancellationAwaitingApproval,
            CancellationState::PushFailed { .. } => ProblemKind::CancellationPushFailed,
            CancellationState::CancelAtChannel { .. } => ProblemKind::CancelAtChannel,
            _ => return None,
        };
        Some(crate::orders::OrderProblem {
            key: Self::problem_key(self.id),
            kind,
            order_id: None,
            store_id: self.store_id,
            channel_order_id: self.channel_order_id.as_ref().map(ToString::to_string).unwrap_or_default(),
            order_number: self.purchase_order_number.clone(),
            reason: self.problem_reason()?,
            since: now,
        })
    }
}

/// What a cancellation's write does to its order health problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemUpdate {
    Unchanged,
    List(crate::orders::OrderProblem),
    Clear,
}

/// A change a channel must be told of once (a cancellation, a return), while it is being told:
/// a call under way since `sending_since` (or one that died: after [`CLAIM_TIMEOUT`], another
/// may go, asking the channel first), the calls started, and the last retryable problem.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushProgress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_since: Option<DateTime<Utc>>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl PushProgress {
    /// What a delivered push request does now.
    pub fn decide(&self, now: DateTime<Utc>) -> PushAction {
        match self.sending_since {
            Some(since) if now - since < CLAIM_TIMEOUT => PushAction::Busy,
            _ => PushAction::Push { check_first: self.attempts > 0 },
        }
    }

    /// Taken for a channel call.
    pub fn claimed(&self, now: DateTime<Utc>) -> PushProgress {
        PushProgress { sending_since: Some(now), attempts: self.attempts + 1, last_error: self.last_error.clone() }
    }

    /// A call failed in a way worth retrying: the next delivery tries again (asking first);
    /// `Err` with what a person reads once it has been tried [`MAX_PUSH_ATTEMPTS`] times.
    pub fn retried(&self, message: String) -> Result<PushProgress, String> {
        if self.attempts >= MAX_PUSH_ATTEMPTS {
            return Err(format!("{} attempts failed, the last: {message}", self.attempts));
        }
        Ok(PushProgress { sending_since: None, attempts: self.attempts, last_error: Some(message) })
    }
}

/// What the exporter does with a cancellation's push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushAction {
    /// Claim it and call the channel; with `check_first`, an earlier call may have reached it.
    Push { check_first: bool },
    /// Another attempt holds a fresh claim.
    Busy,
    /// Nothing to push (the state named).
    Skip(&'static str),
}

/// A message on the exporter's queue that is not an export request: a change to an order that
/// its channel must be told of, once (`{"cancellation": {...}}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelUpdate {
    Cancellation(CancellationRef),
    /// A return authorized in shipsync, to open at its channel.
    Return(crate::returns::ReturnRef),
}

/// A cancellation's push request, on the exporter's queue beside export requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRef {
    pub retailer_id: RetailerId,
    pub purchase_order_id: PurchaseOrderId,
    pub id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purchase_order::tests::order;

    fn input(po: &PurchaseOrder, quantities: &[(usize, i64)]) -> CancellationInput {
        CancellationInput {
            items: Some(
                quantities
                    .iter()
                    .map(|(index, quantity)| CancelItemInput {
                        order_item_id: Some(po.items[*index].id.get()),
                        quantity: Some(*quantity),
                    })
                    .collect(),
            ),
            reason: Some("out_of_stock".into()),
            note: None,
            notify_customer: None,
        }
    }

    fn fields(result: Result<Cancellation, ValidationErrors>) -> Vec<String> {
        result.err().map(|errors| errors.errors().iter().map(|e| e.field.clone()).collect()).unwrap_or_default()
    }

    fn draft(po: &PurchaseOrder, input: &CancellationInput, by: AttachedBy) -> Result<Cancellation, ValidationErrors> {
        draft_cancellation(po, input, by, true, true, 9, DateTime::UNIX_EPOCH)
    }

    #[test]
    fn only_open_units_are_cancelled_and_the_order_keeps_count() {
        let mut po = order(&[3, 2]);
        po.items[0].quantity_fulfilled = 1;
        assert_eq!(fields(draft(&po, &input(&po, &[(0, 3)]), AttachedBy::Retailer)), ["items[0].quantity"]);
        assert_eq!(fields(draft(&po, &input(&po, &[(0, 1), (0, 2)]), AttachedBy::Retailer)), ["items[1].quantity"]);
        assert_eq!(fields(draft(&po, &input(&po, &[(1, 0)]), AttachedBy::Retailer)), ["items[0].quantity"]);
        let mut bad = input(&po, &[(0, 1)]);
        bad.reason = Some("bored".into());
        bad.note = Some("x".repeat(MAX_NOTE_CHARS + 1));
        assert_eq!(fields(draft(&po, &bad, AttachedBy::Retailer)), ["reason", "note"]);
        assert_eq!(fields(draft(&po, &CancellationInput::default(), AttachedBy::Retailer)), ["items", "reason"]);

        let cancellation = draft(&po, &input(&po, &[(0, 2), (1, 1)]), AttachedBy::Retailer).expect("open units");
        assert_eq!(cancellation.state.name(), "pushing");
        let after = cancellation.apply_to(&po, DateTime::UNIX_EPOCH).expect("applied");
        assert_eq!((after.items[0].quantity, after.items[0].quantity_cancelled), (1, 2));
        assert_eq!((after.items[1].quantity, after.items[1].quantity_cancelled), (1, 1));
        assert_eq!(after.version, po.version + 1);
        assert!(cancellation.apply_to(&after, DateTime::UNIX_EPOCH).is_err(), "the same units cannot go twice");
    }

    #[test]
    fn a_vendor_asks_and_waits_unless_the_store_passes_it_through() {
        let po = order(&[1]);
        let asked = draft(&po, &input(&po, &[(0, 1)]), AttachedBy::Vendor).expect("asked");
        assert_eq!(asked.state, CancellationState::AwaitingApproval);
        assert!(asked.problem_reason().is_some_and(|reason| reason.contains("approve")));
        let through =
            draft_cancellation(&po, &input(&po, &[(0, 1)]), AttachedBy::Vendor, false, true, 9, DateTime::UNIX_EPOCH)
                .expect("through");
        assert_eq!(through.state.name(), "pushing");
        let mut notify = input(&po, &[(0, 1)]);
        notify.notify_customer = Some(false);
        assert_eq!(fields(draft(&po, &notify, AttachedBy::Vendor)), ["notify_customer"]);
    }

    #[test]
    fn whole_orders_only_channels_take_only_whole_orders() {
        let mut po = order(&[2, 1]);
        for item in &mut po.items {
            item.channel_line_item_id = Some(format!("L{}", item.id));
        }
        let part = draft(&po, &input(&po, &[(0, 1)]), AttachedBy::Retailer).expect("part");
        let after = part.apply_to(&po, DateTime::UNIX_EPOCH).expect("applied");
        let mut recorded = part.clone();
        recorded.record_totals(&after);
        assert_eq!(recorded.lines[0].cancelled_after, 1);
        assert_eq!(push_plan(&part, &after, &[], ChannelKind::WooCommerce).1.name(), "cancel_at_channel");
        assert_eq!(push_plan(&part, &after, &[], ChannelKind::Shopify), (false, part.state.clone()));
        assert_eq!(push_plan(&part, &after, &[], ChannelKind::BackMarket).1.name(), "cancel_at_channel");
        let all = draft(&po, &input(&po, &[(0, 2), (1, 1)]), AttachedBy::Retailer).expect("all");
        let after = all.apply_to(&po, DateTime::UNIX_EPOCH).expect("applied");
        assert!(push_plan(&all, &after, &[], ChannelKind::WooCommerce).0);
        assert_eq!(push_plan(&all, &after, &[], ChannelKind::WooCommerce).1.name(), "pushing");
        let mut other = order(&[1]);
        other.id = PurchaseOrderId::new_unchecked(999);
        assert!(!push_plan(&all, &after, &[other], ChannelKind::WooCommerce).0, "another vendor's units remain");
        let mut manual = order(&[1]);
        manual.channel_order_id = None;
        let local = draft(&manual, &input(&manual, &[(0, 1)]), AttachedBy::Retailer).expect("local");
        assert_eq!(push_plan(&local, &manual, &[], ChannelKind::Shopify).1, CancellationState::Local);
    }

    #[test]
    fn a_push_is_claimed_retried_asking_first_and_failed_after_its_attempts() {
        let po = order(&[1]);
        let now = DateTime::UNIX_EPOCH;
        let mut cancellation = draft(&po, &input(&po, &[(0, 1)]), AttachedBy::Retailer).expect("drafted");
        assert_eq!(cancellation.decide_push(now), PushAction::Push { check_first: false });
        cancellation = cancellation.claim_push(now);
        assert_eq!(cancellation.decide_push(now), PushAction::Busy);
        assert_eq!(cancellation.decide_push(now + CLAIM_TIMEOUT), PushAction::Push { check_first: true });
        for _ in 1..MAX_PUSH_ATTEMPTS {
            cancellation = cancellation.push_retry("503".into(), now).claim_push(now);
        }
        let failed = cancellation.push_retry("503".into(), now);
        assert_eq!(failed.state.name(), "push_failed");
        assert_eq!(failed.decide_push(now), PushAction::Skip("push_failed"));
        let again = failed.push_again(now).expect("again");
        assert_eq!(again.decide_push(now), PushAction::Push { check_first: true });
        assert!(again.push_again(now).is_err());
    }
}
