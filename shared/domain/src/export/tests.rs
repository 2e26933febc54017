use super::*;
use crate::carrier::default_carriers;
use crate::purchase_order::tests::order;
use crate::shipment::{ItemInput, ShipmentContext, ShipmentInput, TrackingInput, draft_new_shipment};
use crate::tenant::FeeSettings;

fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::UNIX_EPOCH + Duration::minutes(minutes)
}

fn shipment() -> Shipment {
    let po = order(&[1]);
    let carriers = default_carriers();
    let input = ShipmentInput {
        shipper_id: Some(1),
        items: Some(vec![ItemInput {
            order_item_id: Some(po.items[0].id.get()),
            quantity: Some(1),
            ..ItemInput::default()
        }]),
        trackings: Some(vec![TrackingInput { tracking: Some("1Z".into()), ..TrackingInput::default() }]),
        ..ShipmentInput::default()
    };
    let context = ShipmentContext {
        purchase_order: &po,
        carriers: &carriers,
        fees: FeeSettings::default(),
        now: at(0),
        tracking_corrections: None,
    };
    draft_new_shipment(context, &input).and_then(|d| d.finish(&mut (1..))).unwrap()
}

#[test]
fn new_exports_follow_the_store_unless_the_shipment_overrides() {
    let mut settings = ExportSettings::default();
    assert_eq!(
        plan_new_export(&settings, ShipConfirmation::TrackingAssigned, None, at(0)),
        (ExportState::Scheduled { due_at: at(0) }, Some(Delivery::Now))
    );
    settings.shipment_export_delay_minutes = 30;
    assert_eq!(
        plan_new_export(&settings, ShipConfirmation::TrackingAssigned, None, at(0)),
        (ExportState::Scheduled { due_at: at(30) }, Some(Delivery::At(at(30))))
    );
    assert_eq!(
        plan_new_export(&settings, ShipConfirmation::TrackingAssigned, Some(false), at(0)),
        (ExportState::Manual, None)
    );
    settings.export_shipments = false;
    assert_eq!(
        plan_new_export(&settings, ShipConfirmation::TrackingAssigned, None, at(0)),
        (ExportState::Manual, None)
    );
    assert_eq!(
        plan_new_export(&settings, ShipConfirmation::TrackingAssigned, Some(true), at(0)).0,
        ExportState::Scheduled { due_at: at(30) }
    );
    settings.export_shipments = true;
    settings.export_when = ExportWhen::OrderFullyShipped;
    assert_eq!(
        plan_new_export(&settings, ShipConfirmation::TrackingAssigned, None, at(0)),
        (ExportState::WaitingForOrder, None)
    );
}

#[test]
fn notification_is_the_shipments_then_the_vendors_then_the_stores() {
    assert!(notify_customer(None, None, true));
    assert!(!notify_customer(None, None, false));
    assert!(!notify_customer(None, Some(false), true));
    assert!(notify_customer(None, Some(true), false));
    assert!(notify_customer(Some(true), Some(false), false));
    assert!(!notify_customer(Some(false), Some(true), true));
}

#[test]
fn the_exporter_exports_only_what_is_due_and_not_yet_exported() {
    let mut s = shipment();
    assert_eq!(decide_export(&s, at(0)), ExportAction::Skip("automatic export is off: waiting for a manual export"));
    s.export.state = ExportState::Scheduled { due_at: at(30) };
    assert_eq!(decide_export(&s, at(10)), ExportAction::Skip("not due yet: the plan changed"));
    assert_eq!(decide_export(&s, at(30)), ExportAction::Export { check_channel_first: false });
    let claimed = s.claim_export(at(30));
    assert_eq!(claimed.export.attempts, 1);
    assert_eq!(claimed.version, s.version + 1);
    assert_eq!(decide_export(&claimed, at(31)), ExportAction::Busy);
    // A claim older than the timeout died somewhere: take over, but ask the channel first.
    assert_eq!(decide_export(&claimed, at(33)), ExportAction::Export { check_channel_first: true });
    let retry = claimed.export_retry(at(31), "HTTP 503".into());
    assert_eq!(decide_export(&retry, at(31)), ExportAction::Export { check_channel_first: true });
    let exported = claimed.exported(at(31), vec!["gid://shopify/Fulfillment/1".into()], true);
    assert_eq!(exported.sync.exported_at, Some(at(31)));
    assert_eq!(decide_export(&exported, at(40)), ExportAction::Skip("already exported"));
    let failed = claimed.export_failed(at(31), "invalid".into());
    assert_eq!(decide_export(&failed, at(40)), ExportAction::Skip("export failed: waiting for a manual export"));
}

#[test]
fn a_manual_export_is_refused_once_exported() {
    let s = shipment();
    let planned = s.export_now(at(5)).unwrap();
    assert_eq!(planned.export.state, ExportState::Scheduled { due_at: at(5) });
    let exported = planned.claim_export(at(5)).exported(at(5), vec![], false);
    assert!(exported.export_now(at(6)).is_err());
    let busy = planned.claim_export(at(5));
    assert!(busy.export_now(at(6)).is_err());
    assert!(busy.export_now(at(10)).is_ok(), "a dead claim does not block a manual export");
    let failed = busy.export_failed(at(6), "no".into());
    assert!(failed.export_now(at(7)).is_ok());
}

#[test]
fn waiting_shipments_are_planned_when_the_order_ships() {
    let mut s = shipment();
    assert_eq!(s.order_shipped(at(1), Duration::zero()), None);
    s.export.state = ExportState::WaitingForOrder;
    let planned = s.order_shipped(at(1), Duration::minutes(10)).unwrap();
    assert_eq!(planned.export.state, ExportState::Scheduled { due_at: at(11) });
}

#[test]
fn settings_are_checked() {
    let mut settings =
        ExportSettings { shipment_export_delay_minutes: MAX_EXPORT_DELAY_MINUTES + 1, ..ExportSettings::default() };
    let mapping = CarrierMapping {
        shipper_id: CarrierId::new_unchecked(1),
        channel_carrier: " ".into(),
        tracking_url_template: Some("ftp://x".into()),
    };
    settings.carrier_mappings = vec![mapping.clone(), mapping];
    let errors = settings.validate().unwrap_err();
    let fields: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "shipment_export_delay_minutes",
            "carrier_mappings[0].channel_carrier",
            "carrier_mappings[0].tracking_url_template",
            "carrier_mappings[1].channel_carrier",
            "carrier_mappings[1].tracking_url_template",
            "carrier_mappings[1].shipper_id"
        ]
    );
    assert_eq!(tracking_url("https://t.example/{tracking}", "1Z9"), "https://t.example/1Z9");
}

#[test]
fn marketplaces_wait_for_movement_and_only_amazon_may_never_confirm() {
    use crate::tenant::ChannelKind;
    use crate::tracking::TrackingStatus;
    let settings = ExportSettings::default();
    assert_eq!(settings.confirmation(ChannelKind::Amazon), ShipConfirmation::TrackingMovement);
    assert_eq!(settings.confirmation(ChannelKind::BackMarket), ShipConfirmation::TrackingMovement);
    assert_eq!(settings.confirmation(ChannelKind::Shopify), ShipConfirmation::TrackingAssigned);
    let never = ExportSettings { ship_confirmation: Some(ShipConfirmation::Never), ..ExportSettings::default() };
    assert!(never.validate_for(ChannelKind::Amazon).is_ok());
    assert!(never.validate_for(ChannelKind::Ebay).is_err());
    assert_eq!(plan_new_export(&never, ShipConfirmation::Never, None, at(0)), (ExportState::NotSent, None));
    let waiting = plan_new_export(&settings, ShipConfirmation::TrackingMovement, None, at(0));
    let watch = MovementWatch { since: Some(at(0)), ..MovementWatch::default() };
    assert_eq!(waiting, (ExportState::WaitingForMovement(watch.clone()), None));

    let mut s = shipment();
    s.export.state = ExportState::WaitingForMovement(watch);
    let (pre, release) = s.carrier_scan(TrackingStatus::PreTransit, at(1), at(1)).unwrap();
    assert!(!release);
    let (moving, release) = pre.carrier_scan(TrackingStatus::InTransit, at(2), at(2)).unwrap();
    assert!(release);
    assert_eq!(moving.export.state, ExportState::Scheduled { due_at: at(2) });
    assert!(
        moving.carrier_scan(TrackingStatus::PreTransit, at(3), at(3)).is_none(),
        "a late pre-transit changes nothing"
    );
    // A missed first scan: delivered still counts as movement.
    let (_, release) = pre.carrier_scan(TrackingStatus::Delivered, at(4), at(4)).unwrap();
    assert!(release);
}

#[test]
fn only_scheduled_and_claimed_exports_are_swept_after_their_time() {
    assert_eq!(ExportState::Scheduled { due_at: at(30) }.sweep_at(), Some(at(30) + SWEEP_GRACE));
    assert_eq!(ExportState::Exporting { claimed_at: at(10), sweep_at: None }.sweep_at(), Some(at(10) + CLAIM_TIMEOUT));
    // A claim keeps the sweeper's time of the state it was claimed from: its index entry stays.
    let scheduled = ExportState::Scheduled { due_at: at(10) };
    let mut scheduled_shipment = shipment();
    scheduled_shipment.export.state = scheduled.clone();
    assert_eq!(scheduled_shipment.claim_export(at(11)).export.state.sweep_at(), scheduled.sweep_at());
    let settled = [
        ExportState::Manual,
        ExportState::WaitingForOrder,
        ExportState::WaitingForMovement(MovementWatch::default()),
        ExportState::WaitingForMovement(MovementWatch {
            deadline: Some(at(5)),
            timed_out: true,
            ..MovementWatch::default()
        }),
        ExportState::NotSent,
        ExportState::Exported { exported_at: at(1), channel_ids: vec![], notified_customer: false },
        ExportState::Failed { failed_at: at(1), message: "no".into() },
        ExportState::Cancelled { cancelled_at: at(1), reason: "no".into() },
    ];
    for state in settled {
        assert_eq!(state.sweep_at(), None, "{state:?}");
    }
    // A retry the channel asked to delay is not due (nor swept) before the wait is over.
    let s = shipment().claim_export(at(0));
    assert_eq!(s.export_retry_at(at(1), at(61), "429".into()).export.state, ExportState::Scheduled { due_at: at(61) });
    assert_eq!(s.export_retry_at(at(1), at(0), "429".into()).export.state, ExportState::Scheduled { due_at: at(1) });
}

#[test]
fn a_shipment_waiting_for_movement_registers_its_numbers_then_times_out_once() {
    use crate::tenant::TrackingSettings;
    use crate::tracking::{TrackingNumber, TrackingProvider};
    let settings = ExportSettings::default();
    let plan = plan_new_export(&settings, ShipConfirmation::TrackingMovement, None, at(0));
    let s = shipment();
    let numbers: Vec<TrackingNumber> = s.trackings.iter().map(|t| t.tracking.clone()).collect();
    assert!(!numbers.is_empty());

    // No provider: nothing to register, only the deadline is watched.
    let quiet = watch_for_movement(plan.clone(), &TrackingSettings::default(), &s, at(0));
    let ExportState::WaitingForMovement(watch) = &quiet.0 else { panic!("waits: {quiet:?}") };
    assert!(watch.unregistered.is_empty());
    assert_eq!(quiet.1, None, "nothing to deliver now");
    assert_eq!(quiet.0.sweep_at(), Some(at(0) + Duration::hours(72)), "the default timeout");

    let tracking = TrackingSettings {
        provider: Some(TrackingProvider::Easypost),
        movement_timeout_hours: 24,
        ..TrackingSettings::default()
    };
    let (state, delivery) = watch_for_movement(plan, &tracking, &s, at(0));
    assert_eq!(delivery, Some(Delivery::Now), "registration goes out at once");
    assert_eq!(state.sweep_at(), Some(at(0) + SWEEP_GRACE), "a lost registration is swept");
    let mut waiting = s.clone();
    waiting.export.state = state;
    assert_eq!(decide_export(&waiting, at(1)), ExportAction::RegisterTrackers(numbers.clone()));

    let registered = waiting.trackers_settled(&numbers, at(1)).expect("registered");
    assert!(registered.trackers_settled(&numbers, at(2)).is_none(), "settled once");
    assert_eq!(registered.export.state.sweep_at(), Some(at(0) + Duration::hours(24)), "then the deadline");
    assert!(matches!(decide_export(&registered, at(60)), ExportAction::Skip(_)), "before the deadline");
    let late = at(0) + Duration::hours(25);
    assert_eq!(decide_export(&registered, late), ExportAction::MovementTimedOut);
    let listed = registered.movement_timed_out(late).expect("times out");
    assert!(matches!(decide_export(&listed, late), ExportAction::Skip(_)), "listed once");
    assert_eq!(listed.export.state.sweep_at(), None);

    // An edit adding a package registers only the new number.
    let mut edited = registered.clone();
    edited.trackings.push(crate::shipment::Tracking {
        id: crate::ids::TrackingId::new_unchecked(99),
        tracking: TrackingNumber::parse("NEW1").expect("a number"),
    });
    let watched = edited.watch_new_trackings(&registered, &tracking).expect("a new number");
    assert_eq!(
        decide_export(&watched, at(2)),
        ExportAction::RegisterTrackers(vec![TrackingNumber::parse("NEW1").unwrap()])
    );
    assert!(edited.watch_new_trackings(&registered, &TrackingSettings::default()).is_none(), "no provider");
}

#[test]
fn a_waiting_record_written_before_the_watch_existed_still_reads() {
    let old: ExportState = serde_json::from_str(r#"{"state":"waiting_for_movement"}"#).expect("reads");
    assert_eq!(old, ExportState::WaitingForMovement(MovementWatch::default()));
    assert_eq!(old.sweep_at(), None);
}
