//! Exporting shipments to their sales channel: when, with which notification, and the state
//! machine that makes sure a shipment reaches its channel once and never twice.

use crate::limits::{MAX_CARRIER_MAPPINGS, MAX_CARRIER_NAME_CHARS, MAX_URL_CHARS, check_length};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationErrors;
use crate::ids::{CarrierId, ShipmentId};
use crate::shipment::Shipment;
use crate::tracking::TrackingNumber;

/// The longest export delay a store may set: a week.
pub const MAX_EXPORT_DELAY_MINUTES: u32 = 10_080;

/// How long an export attempt may hold its claim before another attempt may take over (and
/// must first ask the channel whether the first one got through). Longer than the exporter's
/// Lambda timeout, so a live attempt is never taken over.
pub const CLAIM_TIMEOUT: Duration = Duration::seconds(120);

/// How long a Back Market confirmation waits for a missing IMEI (under `tracking_assigned`).
pub const IMEI_WAIT: Duration = Duration::minutes(60);

/// A delivery earlier than this before the due time is early (a stale plan): it is skipped.
pub const EARLY_TOLERANCE: Duration = Duration::seconds(60);

/// How long after its due time a scheduled export may still be on its way (a schedule firing,
/// a queued retry coming back after the queue's visibility timeout) before the sweeper
/// re-queues it. Longer than the export queue's visibility timeout (6 minutes), so an export
/// that is being retried normally is not queued twice.
pub const SWEEP_GRACE: Duration = Duration::minutes(15);

/// When a store's shipments go out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportWhen {
    /// Each shipment, after the store's delay.
    #[default]
    EachShipment,
    /// All of an order's shipments, once the whole order is shipped (ShopCtrl's mode).
    OrderFullyShipped,
}

/// When a store's channel gets its ship confirmation (the marketplaces' "send ship confirmations").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShipConfirmation {
    /// Once the shipment and its tracking exist (after the store's delay).
    TrackingAssigned,
    /// Once the carrier first reports the parcel moving.
    TrackingMovement,
    /// Never (Amazon only: labels bought through Amazon need no confirmation).
    Never,
}

impl ShipConfirmation {
    /// The default for a channel: marketplaces wait for movement, as their sellers expect.
    pub fn default_for(channel: crate::tenant::ChannelKind) -> Self {
        use crate::tenant::ChannelKind;
        match channel {
            // Groupon pays only once the carrier has the parcel.
            ChannelKind::Amazon
            | ChannelKind::Ebay
            | ChannelKind::BackMarket
            | ChannelKind::Walmart
            | ChannelKind::Groupon
            | ChannelKind::Wish => ShipConfirmation::TrackingMovement,
            // A custom channel is whatever the seller connects: it goes out once tracking is
            // assigned unless the store asks to wait for movement.
            ChannelKind::Shopify | ChannelKind::WooCommerce | ChannelKind::Custom => ShipConfirmation::TrackingAssigned,
        }
    }
}

/// How one of our carriers is named on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarrierMapping {
    pub shipper_id: CarrierId,
    /// The channel's carrier name or code (Shopify: the company, case-sensitive).
    pub channel_carrier: String,
    /// A tracking URL with `{tracking}` where the number goes.
    #[serde(default)]
    pub tracking_url_template: Option<String>,
}

/// A store's shipment export settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportSettings {
    pub export_shipments: bool,
    pub shipment_export_delay_minutes: u32,
    /// Whether the channel notifies the customer.
    pub send_tracking: bool,
    pub export_when: ExportWhen,
    pub carrier_mappings: Vec<CarrierMapping>,
    /// `None` follows the channel's default ([`ShipConfirmation::default_for`]).
    #[serde(default)]
    pub ship_confirmation: Option<ShipConfirmation>,
}

impl Default for ExportSettings {
    fn default() -> Self {
        Self {
            export_shipments: true,
            shipment_export_delay_minutes: 0,
            send_tracking: true,
            export_when: ExportWhen::EachShipment,
            carrier_mappings: Vec::new(),
            ship_confirmation: None,
        }
    }
}

impl ExportSettings {
    pub fn delay(&self) -> Duration {
        Duration::minutes(i64::from(self.shipment_export_delay_minutes))
    }

    /// When the store's channel gets ship confirmations.
    pub fn confirmation(&self, channel: crate::tenant::ChannelKind) -> ShipConfirmation {
        self.ship_confirmation.unwrap_or_else(|| ShipConfirmation::default_for(channel))
    }

    /// Checks the settings against the store's channel.
    pub fn validate_for(&self, channel: crate::tenant::ChannelKind) -> Result<(), ValidationErrors> {
        let mut errors = match self.validate() {
            Ok(()) => ValidationErrors::new(),
            Err(errors) => errors,
        };
        if self.ship_confirmation == Some(ShipConfirmation::Never) && channel != crate::tenant::ChannelKind::Amazon {
            errors.push("ship_confirmation", "never is allowed for Amazon stores only");
        }
        errors.into_result(())
    }

    pub fn mapping_for(&self, carrier: CarrierId) -> Option<&CarrierMapping> {
        self.carrier_mappings.iter().find(|mapping| mapping.shipper_id == carrier)
    }

    /// Checks settings a request gives.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        if self.shipment_export_delay_minutes > MAX_EXPORT_DELAY_MINUTES {
            errors
                .push("shipment_export_delay_minutes", format!("must be at most {MAX_EXPORT_DELAY_MINUTES} (a week)"));
        }
        let mut seen = Vec::new();
        if self.carrier_mappings.len() > MAX_CARRIER_MAPPINGS {
            errors.push("carrier_mappings", format!("must have at most {MAX_CARRIER_MAPPINGS} mappings"));
        }
        for (index, mapping) in self.carrier_mappings.iter().enumerate() {
            let field = format!("carrier_mappings[{index}]");
            if mapping.channel_carrier.trim().is_empty() {
                errors.push(format!("{field}.channel_carrier"), "must not be blank");
            }
            check_length(
                &mut errors,
                &format!("{field}.channel_carrier"),
                &mapping.channel_carrier,
                MAX_CARRIER_NAME_CHARS,
            );
            if let Some(template) = &mapping.tracking_url_template {
                check_length(&mut errors, &format!("{field}.tracking_url_template"), template, MAX_URL_CHARS);
            }
            if let Some(template) = &mapping.tracking_url_template
                && !(template.starts_with("https://") || template.starts_with("http://"))
            {
                errors.push(format!("{field}.tracking_url_template"), "must be an http(s) URL");
            }
            if seen.contains(&mapping.shipper_id) {
                errors.push(format!("{field}.shipper_id"), format!("{} is mapped more than once", mapping.shipper_id));
            }
            seen.push(mapping.shipper_id);
        }
        errors.into_result(())
    }
}

/// A tracking URL from a template: `{tracking}` becomes the number.
pub fn tracking_url(template: &str, number: &str) -> String {
    template.replace("{tracking}", number)
}

/// Where a shipment's export stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ExportState {
    /// Automatic export is off for it: it goes out only when someone exports it.
    #[default]
    Manual,
    /// Planned to go out at `due_at`.
    Scheduled { due_at: DateTime<Utc> },
    /// Waits until its order is fully shipped.
    WaitingForOrder,
    /// An attempt is under way (or died: after [`CLAIM_TIMEOUT`], another may take over).
    /// `sweep_at` is the sweeper's time of the state it was claimed from, kept so that taking
    /// the claim does not move the shipment's entry in the sweeper's index (two index writes
    /// saved on every export); a dead attempt is redelivered by its queue meanwhile.
    Exporting {
        claimed_at: DateTime<Utc>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sweep_at: Option<DateTime<Utc>>,
    },
    /// The channel has it.
    Exported { exported_at: DateTime<Utc>, channel_ids: Vec<String>, notified_customer: bool },
    /// The channel refused it, or it kept failing; it waits for a person.
    Failed { failed_at: DateTime<Utc>, message: String },
    /// It will not go out: its order or items were cancelled at the channel, or someone made the
    /// same shipment in the channel and it was linked instead.
    Cancelled { cancelled_at: DateTime<Utc>, reason: String },
    /// Waits for the carrier to report the parcel moving (the store confirms on movement).
    WaitingForMovement(MovementWatch),
    /// The store sends no ship confirmations (Amazon's "never").
    NotSent,
}

impl ExportState {
    /// When the sweeper must re-queue a shipment still in this state: a scheduled export
    /// [`SWEEP_GRACE`] after it was due, an attempt once its claim expired. `None` for every
    /// state that waits for something else (a person, its order, the carrier) or is settled.
    pub fn sweep_at(&self) -> Option<DateTime<Utc>> {
        match self {
            ExportState::Scheduled { due_at } => Some(*due_at + SWEEP_GRACE),
            ExportState::Exporting { claimed_at, sweep_at } => Some(sweep_at.unwrap_or(*claimed_at + CLAIM_TIMEOUT)),
            ExportState::WaitingForMovement(watch) => watch.sweep_at(),
            _ => None,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ExportState::Manual => "manual",
            ExportState::Scheduled { .. } => "scheduled",
            ExportState::WaitingForOrder => "waiting_for_order",
            ExportState::Exporting { .. } => "exporting",
            ExportState::Exported { .. } => "exported",
            ExportState::Failed { .. } => "export_failed",
            ExportState::Cancelled { .. } => "export_cancelled",
            ExportState::WaitingForMovement(_) => "waiting_for_movement",
            ExportState::NotSent => "not_sent",
        }
    }
}

/// What a shipment waiting for its first scan still needs: its tracking numbers registered with
/// the store's tracking provider (so that the scan comes at all), and a look from a person if
/// the scan does not come in time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MovementWatch {
    /// Since when it waits.
    pub since: Option<DateTime<Utc>>,
    /// When the wait is too long (the store's `movement_timeout_hours` after `since`).
    pub deadline: Option<DateTime<Utc>>,
    /// Tracking numbers still to register with the store's tracking provider.
    pub unregistered: Vec<TrackingNumber>,
    /// The deadline passed and order health lists it (it waits for a scan or a person).
    pub timed_out: bool,
    /// Registration attempts that failed for a reason worth retrying.
    pub attempts: u32,
    /// When registration is tried again after such a failure.
    pub retry_at: Option<DateTime<Utc>>,
}

/// Registration attempts before the numbers are listed in order health instead of retried.
pub const MAX_TRACKER_ATTEMPTS: u32 = 5;

impl MovementWatch {
    /// When the sweeper must look at it: registrations are due at once (a lost delivery is
    /// re-queued after [`SWEEP_GRACE`]), the deadline when it comes; nothing once it timed out.
    fn sweep_at(&self) -> Option<DateTime<Utc>> {
        if self.timed_out {
            return None;
        }
        let registration =
            (!self.unregistered.is_empty()).then(|| self.retry_at.or(self.since).unwrap_or_default() + SWEEP_GRACE);
        match (registration, self.deadline) {
            (Some(registration), Some(deadline)) => Some(registration.min(deadline)),
            (registration, deadline) => registration.or(deadline),
        }
    }
}

/// A new shipment waiting for movement under the store's tracking settings: its numbers are to
/// be registered (delivered to the exporter at once) if the store names a provider, and it is
/// watched until the store's movement timeout. Other plans are returned as they are.
pub fn watch_for_movement(
    plan: (ExportState, Option<Delivery>),
    tracking: &crate::tenant::TrackingSettings,
    shipment: &Shipment,
    now: DateTime<Utc>,
) -> (ExportState, Option<Delivery>) {
    let ExportState::WaitingForMovement(_) = plan.0 else { return plan };
    let unregistered: Vec<TrackingNumber> = if tracking.provider.is_some() {
        shipment.trackings.iter().map(|t| t.tracking.clone()).collect()
    } else {
        Vec::new()
    };
    let delivery = (!unregistered.is_empty()).then_some(Delivery::Now);
    let watch = MovementWatch {
        since: Some(now),
        deadline: Some(now + Duration::hours(i64::from(tracking.movement_timeout_hours))),
        unregistered,
        timed_out: false,
        attempts: 0,
        retry_at: None,
    };
    (ExportState::WaitingForMovement(watch), delivery)
}

/// A shipment's export: its state, the overrides given when it was created, and its attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShipmentExport {
    pub state: ExportState,
    /// `Some(false)`: never export automatically; `Some(true)`: export even if the store does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_override: Option<bool>,
    /// Overrides the vendor's and the store's notification setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_override: Option<bool>,
    /// Attempts that reached the point of calling the channel.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// The last retryable problem, for people watching a slow export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Tracking numbers corrected after the export, still to be sent (Walmart's window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<TrackingCorrection>,
}

/// Tracking numbers corrected after a shipment's export, for a channel that takes corrections
/// within a window (Walmart: 4 hours): each record's number the channel holds, to be replaced by
/// the record's number now. Sent once, like an export: a send takes it (`sending_since`), and a
/// send that may have reached the channel is checked against what the channel shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackingCorrection {
    pub requested_at: DateTime<Utc>,
    /// The records corrected, each with the number the channel holds for it.
    pub channel_holds: Vec<(crate::ids::TrackingId, TrackingNumber)>,
    /// A send under way since then (or one that died: after [`CLAIM_TIMEOUT`], another may go).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sending_since: Option<DateTime<Utc>>,
    /// Sends started: after the first, the channel may have it already.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// The channel refused it for good, with its reason: a person must look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl ShipmentExport {
    /// The channel's ids it holds for the shipment, as one text.
    fn state_channel_ids(&self) -> String {
        match &self.state {
            ExportState::Exported { channel_ids, .. } => channel_ids.join(", "),
            _ => String::new(),
        }
    }
}

impl TrackingCorrection {
    /// The number the channel holds for a corrected record.
    pub fn holds(&self, id: crate::ids::TrackingId) -> Option<TrackingNumber> {
        self.channel_holds.iter().find(|(held, _)| *held == id).map(|(_, number)| number.clone())
    }
}

// Stored records leave out what says nothing (absent reads back as the default): a shipment is
// written several times in its life, and DynamoDB charges each write by the started kilobyte.
fn is_zero(value: &u32) -> bool {
    *value == 0
}

/// How a planned export is delivered to the exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Queued at once.
    Now,
    /// By a one-time schedule at this time.
    At(DateTime<Utc>),
}

/// Back Market asks for each smartphone's IMEI: a new shipment on a Back Market store that lacks
/// one has its planned export held up to [`IMEI_WAIT`] for it (a later edit that adds it
/// releases the export, see [`imei_completes_export`]).
pub fn hold_for_imei(
    channel: crate::tenant::ChannelKind,
    shipment: &Shipment,
    plan: (ExportState, Option<Delivery>),
    now: DateTime<Utc>,
) -> (ExportState, Option<Delivery>) {
    match plan.0 {
        ExportState::Scheduled { due_at }
            if channel == crate::tenant::ChannelKind::BackMarket && !shipment.missing_imeis().is_empty() =>
        {
            scheduled(due_at.max(now + IMEI_WAIT), now)
        }
        _ => plan,
    }
}

/// Whether an edit (`before` to `after`) that adds a Back Market shipment's last missing IMEI
/// releases its export now: the confirmation that waited for it, or failed for want of it.
pub fn imei_completes_export(
    channel: crate::tenant::ChannelKind,
    before: &Shipment,
    after: &Shipment,
    now: DateTime<Utc>,
) -> bool {
    let waiting = match &after.export.state {
        ExportState::Scheduled { due_at } => *due_at > now,
        ExportState::Failed { .. } => true,
        _ => false,
    };
    channel == crate::tenant::ChannelKind::BackMarket
        && waiting
        && !before.missing_imeis().is_empty()
        && after.missing_imeis().is_empty()
}

/// Plans the export of a new shipment: its first state and how it is delivered, if at all.
pub fn plan_new_export(
    settings: &ExportSettings,
    confirmation: ShipConfirmation,
    export_override: Option<bool>,
    created_at: DateTime<Utc>,
) -> (ExportState, Option<Delivery>) {
    if confirmation == ShipConfirmation::Never {
        return (ExportState::NotSent, None);
    }
    if !export_override.unwrap_or(settings.export_shipments) {
        return (ExportState::Manual, None);
    }
    if confirmation == ShipConfirmation::TrackingMovement {
        let watch = MovementWatch { since: Some(created_at), ..MovementWatch::default() };
        return (ExportState::WaitingForMovement(watch), None);
    }
    match settings.export_when {
        ExportWhen::OrderFullyShipped => (ExportState::WaitingForOrder, None),
        ExportWhen::EachShipment => scheduled(created_at + settings.delay(), created_at),
    }
}

/// An export due at `due_at`, delivered now if it is due already.
pub fn scheduled(due_at: DateTime<Utc>, now: DateTime<Utc>) -> (ExportState, Option<Delivery>) {
    let delivery = if due_at <= now { Delivery::Now } else { Delivery::At(due_at) };
    (ExportState::Scheduled { due_at }, Some(delivery))
}

/// Whether the channel notifies the customer: the shipment's override, else the vendor's, else the store's.
pub fn notify_customer(shipment: Option<bool>, vendor: Option<bool>, store_send_tracking: bool) -> bool {
    shipment.or(vendor).unwrap_or(store_send_tracking)
}

/// Why the exporter was asked to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportReason {
    /// The planned time came.
    Scheduled,
    /// Someone asked for it (`POST /shipments/{id}/export.json`).
    Manual,
    /// Its order became fully shipped.
    OrderShipped,
    /// The sweeper found it overdue (its delivery was lost) or its claim expired.
    Overdue,
}

/// The message on the export queue (also the schedules' input).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub shipment_id: ShipmentId,
    pub reason: ExportReason,
}

/// What the exporter does with a delivered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportAction {
    /// Claim it and export. With `check_channel_first`, an earlier attempt may have reached
    /// the channel: ask the channel for the shipment before creating it.
    Export { check_channel_first: bool },
    /// Another attempt holds a fresh claim: try again later.
    Busy,
    /// Nothing to do, and why (already exported, not due, waiting for a person...).
    Skip(&'static str),
    /// Register these tracking numbers with the store's tracking provider.
    RegisterTrackers(Vec<TrackingNumber>),
    /// It waited for its first scan past the store's movement timeout.
    MovementTimedOut,
    /// Its tracking numbers were corrected after the export: take the correction and send it.
    /// With `check_channel_first`, an earlier send may have reached the channel.
    CorrectTracking { check_channel_first: bool },
}

/// Decides what to do with a delivered export request, from the shipment as it is now.
pub fn decide_export(shipment: &Shipment, now: DateTime<Utc>) -> ExportAction {
    let check_channel_first = shipment.export.attempts > 0;
    match &shipment.export.state {
        ExportState::Exported { .. } => match &shipment.export.correction {
            Some(correction) if correction.refused.is_some() => {
                ExportAction::Skip("the channel refused its tracking correction: waiting for a person")
            }
            Some(TrackingCorrection { sending_since: Some(since), .. }) if now - *since < CLAIM_TIMEOUT => {
                ExportAction::Busy
            }
            Some(correction) => ExportAction::CorrectTracking { check_channel_first: correction.attempts > 0 },
            None => ExportAction::Skip("already exported"),
        },
        ExportState::Manual => ExportAction::Skip("automatic export is off: waiting for a manual export"),
        ExportState::WaitingForOrder => ExportAction::Skip("waiting for the order to be fully shipped"),
        ExportState::Failed { .. } => ExportAction::Skip("export failed: waiting for a manual export"),
        ExportState::Cancelled { .. } => ExportAction::Skip("export cancelled"),
        // The deadline first: a registration that keeps failing must not hide a parcel that never moved.
        ExportState::WaitingForMovement(watch) if !watch.timed_out && watch.deadline.is_some_and(|d| d <= now) => {
            ExportAction::MovementTimedOut
        }
        ExportState::WaitingForMovement(watch)
            if !watch.timed_out
                && !watch.unregistered.is_empty()
                && watch.retry_at.is_none_or(|at| at <= now + EARLY_TOLERANCE) =>
        {
            ExportAction::RegisterTrackers(watch.unregistered.clone())
        }
        ExportState::WaitingForMovement(_) => ExportAction::Skip("waiting for the carrier to report movement"),
        ExportState::NotSent => ExportAction::Skip("the store sends no ship confirmations"),
        ExportState::Scheduled { due_at } if *due_at > now + EARLY_TOLERANCE => {
            ExportAction::Skip("not due yet: the plan changed")
        }
        ExportState::Scheduled { .. } => ExportAction::Export { check_channel_first },
        ExportState::Exporting { claimed_at, .. } if now - *claimed_at < CLAIM_TIMEOUT => ExportAction::Busy,
        ExportState::Exporting { .. } => ExportAction::Export { check_channel_first: true },
    }
}

impl Shipment {
    /// Records what happened, with the export's state and due time as they now stand.
    pub fn record(
        &mut self,
        kind: crate::history::EventKind,
        by: crate::history::Actor,
        at: DateTime<Utc>,
        detail: Option<String>,
    ) {
        let mut event = crate::history::ShipmentEvent::new(at, kind, by);
        event.state = Some(self.export.state.name().to_owned());
        event.due_at = match &self.export.state {
            ExportState::Scheduled { due_at } => Some(*due_at),
            _ => None,
        };
        if let Some(detail) = detail {
            event = event.detail(detail);
        }
        crate::history::append(&mut self.events, event);
    }

    /// This version with what happened recorded (see [`Shipment::record`]).
    fn recorded(
        mut self,
        kind: crate::history::EventKind,
        by: crate::history::Actor,
        at: DateTime<Utc>,
        detail: Option<String>,
    ) -> Shipment {
        self.record(kind, by, at, detail);
        self
    }

    /// The next version of this shipment with a new export state. `updated_at` stays: it says
    /// when the shipment's details last changed (Duoplane's meaning); the export keeps its own
    /// times. Leaving it also leaves every listing index entry as it is, so an export's writes
    /// touch the shipment's item and the sweeper's index only.
    fn with_export_state(&self, state: ExportState, _now: DateTime<Utc>) -> Shipment {
        let mut next = self.clone();
        next.export.state = state;
        next.version += 1;
        next
    }

    /// Takes its tracking correction for a send.
    pub fn claim_correction(&self, now: DateTime<Utc>) -> Shipment {
        let mut next = self.clone();
        if let Some(correction) = &mut next.export.correction {
            correction.sending_since = Some(now);
            correction.attempts += 1;
        }
        next.version += 1;
        next.recorded(crate::history::EventKind::CorrectionClaimed, crate::history::Actor::Exporter, now, None)
    }

    /// Lets the next delivery send the taken correction again (this send failed, and may or may
    /// not have reached the channel).
    pub fn correction_retry(&self, message: String, now: DateTime<Utc>) -> Shipment {
        let mut next = self.clone();
        if let Some(correction) = &mut next.export.correction {
            correction.sending_since = None;
        }
        next.export.last_error = Some(message.clone());
        next.version += 1;
        next.recorded(crate::history::EventKind::CorrectionRetried, crate::history::Actor::Exporter, now, Some(message))
    }

    /// Records that the channel holds `sent` (each corrected record's number as sent), as
    /// `channel_ids` name them. The correction `sent` came from ends; one made meanwhile stays,
    /// with what the channel now holds for the records it shares with it (and none left to send
    /// for a record whose number is what was sent).
    pub fn correction_sent_as(
        &self,
        taken: &TrackingCorrection,
        sent: &[(crate::ids::TrackingId, TrackingNumber)],
        channel_ids: Vec<String>,
        now: DateTime<Utc>,
    ) -> Shipment {
        let mut next = self.clone();
        next.export.correction = match next.export.correction.take() {
            Some(pending) if pending.requested_at != taken.requested_at => {
                let mut holds = pending.channel_holds;
                for (id, number) in sent {
                    match holds.iter_mut().find(|(held, _)| held == id) {
                        Some((_, holding)) => *holding = number.clone(),
                        None => holds.push((*id, number.clone())),
                    }
                }
                holds.retain(|(id, holding)| {
                    self.trackings.iter().any(|tracking| tracking.id == *id && !tracking.tracking.same_parcel(holding))
                });
                (!holds.is_empty()).then_some(TrackingCorrection {
                    channel_holds: holds,
                    sending_since: None,
                    ..pending
                })
            }
            _ => None,
        };
        let detail = channel_ids.join(", ");
        if let ExportState::Exported { channel_ids: held, .. } = &mut next.export.state {
            *held = channel_ids;
        }
        next.version += 1;
        next.recorded(crate::history::EventKind::CorrectionSent, crate::history::Actor::Exporter, now, Some(detail))
    }

    /// Records that the channel refused the correction for good.
    pub fn correction_refused(&self, message: String, now: DateTime<Utc>) -> Shipment {
        let mut next = self.clone();
        if let Some(correction) = &mut next.export.correction {
            correction.sending_since = None;
            correction.refused = Some(message.clone());
        }
        next.version += 1;
        next.recorded(crate::history::EventKind::CorrectionRefused, crate::history::Actor::Exporter, now, Some(message))
    }

    /// Takes the shipment for an export attempt.
    pub fn claim_export(&self, now: DateTime<Utc>) -> Shipment {
        let sweep_at = self.export.state.sweep_at();
        let mut next = self.with_export_state(ExportState::Exporting { claimed_at: now, sweep_at }, now);
        next.export.attempts += 1;
        let attempt = next.export.attempts;
        next.recorded(
            crate::history::EventKind::Claimed,
            crate::history::Actor::Exporter,
            now,
            Some(format!("attempt {attempt}")),
        )
    }

    /// Records that the channel has the shipment: from now on its shipping details are locked.
    pub fn exported(&self, now: DateTime<Utc>, channel_ids: Vec<String>, notified_customer: bool) -> Shipment {
        self.exported_as(crate::history::EventKind::Exported, now, channel_ids, notified_customer)
    }

    /// [`Shipment::exported`], recording that a retry found the channel had it (adopted).
    pub fn adopted(&self, now: DateTime<Utc>, channel_ids: Vec<String>, notified_customer: bool) -> Shipment {
        self.exported_as(crate::history::EventKind::Adopted, now, channel_ids, notified_customer)
    }

    fn exported_as(
        &self,
        kind: crate::history::EventKind,
        now: DateTime<Utc>,
        channel_ids: Vec<String>,
        notified_customer: bool,
    ) -> Shipment {
        let detail = channel_ids.join(", ");
        let mut next =
            self.with_export_state(ExportState::Exported { exported_at: now, channel_ids, notified_customer }, now);
        next.sync.exported_at = Some(now);
        next.export.last_error = None;
        next.recorded(kind, crate::history::Actor::Exporter, now, Some(detail))
    }

    /// A new shipment that stands for a fulfillment made in the channel: the channel has it
    /// already, so it starts exported (its first version) and shipsync never exports it.
    pub fn arrived_from_channel(mut self, now: DateTime<Utc>, channel_fulfillment_id: String) -> Shipment {
        self.export.state = ExportState::Exported {
            exported_at: now,
            channel_ids: vec![channel_fulfillment_id],
            notified_customer: false,
        };
        self.sync.exported_at = Some(now);
        let detail = format!("made in the channel as {}", self.export.state_channel_ids());
        self.recorded(
            crate::history::EventKind::ArrivedFromChannel,
            crate::history::Actor::OrderProcessor,
            now,
            Some(detail),
        )
    }

    /// Records a problem worth retrying: due again at once, with the problem kept for people.
    pub fn export_retry(&self, now: DateTime<Utc>, message: String) -> Shipment {
        self.export_retry_at(now, now, message)
    }

    /// Records a problem worth retrying no earlier than `due_at` (the wait the channel asked
    /// for), so that the sweeper does not re-queue it before then.
    pub fn export_retry_at(&self, now: DateTime<Utc>, due_at: DateTime<Utc>, message: String) -> Shipment {
        let mut next = self.with_export_state(ExportState::Scheduled { due_at: due_at.max(now) }, now);
        next.export.last_error = Some(message.clone());
        next.recorded(crate::history::EventKind::Retried, crate::history::Actor::Exporter, now, Some(message))
    }

    /// Records that the export failed for good: it waits for a person.
    pub fn export_failed(&self, now: DateTime<Utc>, message: String) -> Shipment {
        self.with_export_state(ExportState::Failed { failed_at: now, message: message.clone() }, now).recorded(
            crate::history::EventKind::Failed,
            crate::history::Actor::Exporter,
            now,
            Some(message),
        )
    }

    /// Plans an export now at someone's request; refused once exported.
    pub fn export_now(&self, now: DateTime<Utc>) -> Result<Shipment, ValidationErrors> {
        match self.export.state {
            ExportState::Exported { .. } => {
                Err(ValidationErrors::single("export", "the shipment has already been exported to its channel"))
            }
            ExportState::Cancelled { ref reason, .. } => {
                Err(ValidationErrors::single("export", format!("is cancelled: {reason}")))
            }
            ExportState::Exporting { claimed_at, .. } if now - claimed_at < CLAIM_TIMEOUT => {
                Err(ValidationErrors::single("export", "the shipment is being exported right now"))
            }
            _ => Ok(self.with_export_state(ExportState::Scheduled { due_at: now }, now).recorded(
                crate::history::EventKind::Planned,
                crate::history::Actor::RetailerUser,
                now,
                Some("export now, at a person's request".into()),
            )),
        }
    }

    /// Stops a planned export for good, saying why; `None` if it is exported or being exported.
    pub fn cancel_export(&self, now: DateTime<Utc>, reason: String) -> Option<Shipment> {
        match self.export.state {
            ExportState::Exported { .. } | ExportState::Exporting { .. } | ExportState::Cancelled { .. } => None,
            _ => Some(
                self.with_export_state(ExportState::Cancelled { cancelled_at: now, reason: reason.clone() }, now)
                    .recorded(
                        crate::history::EventKind::Cancelled,
                        crate::history::Actor::OrderProcessor,
                        now,
                        Some(reason),
                    ),
            ),
        }
    }

    /// Records that the channel already has this shipment because someone made it there (linked
    /// by reverse sync): it is never exported, and its shipping details lock as if it were.
    pub fn linked_to_channel(&self, now: DateTime<Utc>, channel_id: String) -> Shipment {
        let detail = format!("linked to {channel_id}, made in the channel");
        let mut next = self.with_export_state(
            ExportState::Exported { exported_at: now, channel_ids: vec![channel_id], notified_customer: false },
            now,
        );
        next.sync.exported_at = Some(now);
        next.recorded(crate::history::EventKind::Linked, crate::history::Actor::OrderProcessor, now, Some(detail))
    }

    /// Records what the carrier reports, never going back (a late pre-transit never undoes
    /// in-transit). Returns the next version, and whether its export is now due: the store
    /// waited for movement and the parcel moves.
    pub fn carrier_scan(
        &self,
        status: crate::tracking::TrackingStatus,
        occurred_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<(Shipment, bool)> {
        if self.tracking_status.is_some_and(|current| current.rank() >= status.rank()) {
            return None;
        }
        let release = matches!(self.export.state, ExportState::WaitingForMovement(_)) && status.is_moving();
        let state = if release { ExportState::Scheduled { due_at: now } } else { self.export.state.clone() };
        let mut next = self.with_export_state(state, now);
        next.tracking_status = Some(status);
        next.tracking_status_at = Some(occurred_at);
        let kind = if release { crate::history::EventKind::ReleasedByScan } else { crate::history::EventKind::Scanned };
        let next = next.recorded(
            kind,
            crate::history::Actor::OrderProcessor,
            now,
            Some(format!("{status:?} at {occurred_at}")),
        );
        Some((next, release))
    }

    /// Records that these numbers are registered with the tracking provider (or were refused
    /// for good, which a person sees in order health): they are not registered again.
    /// `None`: no longer waiting for movement, or nothing of them left to register.
    pub fn trackers_settled(&self, numbers: &[TrackingNumber], now: DateTime<Utc>) -> Option<Shipment> {
        let ExportState::WaitingForMovement(watch) = &self.export.state else { return None };
        let settled = |number: &TrackingNumber| numbers.iter().any(|done| done.same_parcel(number));
        if !watch.unregistered.iter().any(settled) {
            return None;
        }
        let mut watch = watch.clone();
        watch.unregistered.retain(|number| !settled(number));
        let detail = numbers.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        Some(self.with_export_state(ExportState::WaitingForMovement(watch), now).recorded(
            crate::history::EventKind::TrackersRegistered,
            crate::history::Actor::Exporter,
            now,
            Some(detail),
        ))
    }

    /// Tracking numbers an edit added to a shipment still waiting for movement are to be
    /// registered too (when the store names a provider), and those it removed are not.
    /// `None` when that changes nothing.
    pub fn watch_new_trackings(
        &self,
        before: &Shipment,
        tracking: &crate::tenant::TrackingSettings,
    ) -> Option<Shipment> {
        let ExportState::WaitingForMovement(watch) = &self.export.state else { return None };
        // A number the edit removed (or replaced) is not registered any more.
        let kept: Vec<TrackingNumber> = watch
            .unregistered
            .iter()
            .filter(|queued| self.trackings.iter().any(|t| t.tracking.same_parcel(queued)))
            .cloned()
            .collect();
        let dropped = kept.len() != watch.unregistered.len();
        let watch = MovementWatch { unregistered: kept, ..watch.clone() };
        if tracking.provider.is_none() {
            return dropped.then(|| {
                let mut next = self.clone();
                next.export.state = ExportState::WaitingForMovement(watch);
                next
            });
        }
        let added: Vec<TrackingNumber> = self
            .trackings
            .iter()
            .map(|t| &t.tracking)
            .filter(|number| !before.trackings.iter().any(|old| old.tracking.same_parcel(number)))
            .filter(|number| !watch.unregistered.iter().any(|queued| queued.same_parcel(number)))
            .cloned()
            .collect();
        if added.is_empty() && !dropped {
            return None;
        }
        let mut next = self.clone();
        let mut watch = watch;
        watch.unregistered.extend(added);
        next.export.state = ExportState::WaitingForMovement(watch);
        Some(next)
    }

    /// Records a registration attempt that failed for a reason worth retrying: tried again no
    /// earlier than `wait` from now (the sweeper delivers it then).
    pub fn trackers_retry(&self, now: DateTime<Utc>, wait: Duration) -> Option<Shipment> {
        let ExportState::WaitingForMovement(watch) = &self.export.state else { return None };
        let watch = MovementWatch { attempts: watch.attempts + 1, retry_at: Some(now + wait), ..watch.clone() };
        let detail = format!("registration tried again after {} minutes", wait.num_minutes());
        Some(self.with_export_state(ExportState::WaitingForMovement(watch), now).recorded(
            crate::history::EventKind::TrackersRetry,
            crate::history::Actor::Exporter,
            now,
            Some(detail),
        ))
    }

    /// Records that it waited past its deadline and order health lists it.
    pub fn movement_timed_out(&self, now: DateTime<Utc>) -> Option<Shipment> {
        let ExportState::WaitingForMovement(watch) = &self.export.state else { return None };
        let watch = MovementWatch { timed_out: true, ..watch.clone() };
        Some(self.with_export_state(ExportState::WaitingForMovement(watch), now).recorded(
            crate::history::EventKind::MovementTimedOut,
            crate::history::Actor::Exporter,
            now,
            None,
        ))
    }

    /// Plans the export of a shipment that waited for its order, `delay` after the order was shipped.
    pub fn order_shipped(&self, now: DateTime<Utc>, delay: Duration) -> Option<Shipment> {
        (self.export.state == ExportState::WaitingForOrder).then(|| {
            self.with_export_state(ExportState::Scheduled { due_at: now + delay }, now).recorded(
                crate::history::EventKind::Planned,
                crate::history::Actor::Shipsync,
                now,
                Some("its order is fully shipped".into()),
            )
        })
    }
}

#[cfg(test)]
mod tests;
