//! The marketplace path in memory: orders that carry the channel's own shipments and buyers'
//! cancellation requests, lines accepted once routed, a notified order read and queued, tracking
//! numbers registered once, and a shipment that waits too long for its first scan.

use std::collections::BTreeMap;

use chrono::Duration;
use shipsync_app::exports::{ExportRun, RequestDelivery};
use shipsync_app::memory::{MemoryChannel, MemoryEventQueue, MemoryTable};
use shipsync_app::polling::OrderPolling;
use shipsync_channels::ChannelError;
use shipsync_domain::export::{ExportReason, ExportRequest, ExportState, ShipConfirmation};
use shipsync_domain::ids::ShipmentId;
use shipsync_domain::orders::{ChannelEvent, IncomingFulfillment, OrderProblem, PolledStore, ProblemKind};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::{EchoedIds, TrackingInput};
use shipsync_domain::tracking::{CarrierScan, TrackingNumber, TrackingProvider, TrackingStatus};
use shipsync_domain::vocabulary::ChannelOrderId;

use crate::fixtures::{World, ship_all};

const DELIVERY: RequestDelivery = RequestDelivery { receives: 1, sent_at: None };

fn number(text: &str) -> TrackingNumber {
    TrackingNumber::parse(text).expect("a tracking number")
}

fn problems(world: &World, kind: ProblemKind) -> Vec<OrderProblem> {
    world.table.records().problems.values().filter(|p| p.kind == kind).cloned().collect()
}

/// The world's store confirming on movement, registering with EasyPost, with its keys.
fn on_movement(world: &World, timeout_hours: u32, export_anyway: bool) -> ExportRun<MemoryTable, MemoryChannel> {
    world.store_settings(|export| export.ship_confirmation = Some(ShipConfirmation::TrackingMovement));
    {
        let mut records = world.table.records();
        let store = records.channel_stores.get_mut(&(world.retailer, world.store)).expect("store");
        store.tracking.provider = Some(TrackingProvider::Easypost);
        store.tracking.movement_timeout_hours = timeout_hours;
        store.tracking.export_after_movement_timeout = export_anyway;
        records.credentials.insert(
            (world.retailer, world.store),
            ChannelCredentials(BTreeMap::from([
                ("access_token".to_owned(), "shpat_test".to_owned()),
                ("tracking_api_key".to_owned(), "EZAK_test".to_owned()),
            ])),
        );
    }
    ExportRun::new(world.table.clone(), MemoryChannel::new(), world.clock(), 5)
}

async fn ship_tent(world: &World, tracking: &str) -> ShipmentId {
    let pos = world.purchase_orders().await;
    let input = ship_all(&pos[0], tracking);
    world
        .desk
        .create(&world.retailer_user(), pos[0].id, &input, EchoedIds::default())
        .await
        .expect("created")
        .shipment
        .id
}

fn request(id: ShipmentId) -> ExportRequest {
    ExportRequest { shipment_id: id, reason: ExportReason::Scheduled }
}

#[tokio::test]
async fn tracking_numbers_are_registered_once_at_creation_and_when_an_edit_adds_one() {
    let world = World::new();
    let run = on_movement(&world, 72, false);
    let channel = MemoryChannel::new();
    let run = run.with_channels(channel.clone());
    let id = ship_tent(&world, "1Z999AA10123456784").await;
    let delivered = world.planner.log().delivered.clone();
    assert!(delivered.iter().any(|(r, _)| r.shipment_id == id), "registration queued at creation: {delivered:?}");

    run.run(request(id), DELIVERY).await.expect("registered");
    run.run(request(id), DELIVERY).await.expect("a second delivery registers nothing");
    assert_eq!(channel.state().trackers, ["1Z999AA10123456784"]);
    assert!(channel.state().received.is_empty(), "not confirmed: it waits for movement");

    let edit = shipsync_domain::shipment::ShipmentInput {
        trackings: Some(vec![TrackingInput { tracking: Some("1Z999AA10123456785".into()), ..Default::default() }]),
        ..Default::default()
    };
    world.desk.update(&world.retailer_user(), id, &edit, EchoedIds::default()).await.expect("edited");
    run.run(request(id), DELIVERY).await.expect("registered");
    assert_eq!(channel.state().trackers, ["1Z999AA10123456784", "1Z999AA10123456785"], "only the new one");
}

#[tokio::test]
async fn a_provider_outage_is_retried_and_a_refused_number_is_listed_not_retried() {
    let world = World::new();
    let channel = MemoryChannel::new();
    let run = on_movement(&world, 72, false).with_channels(channel.clone());
    let id = ship_tent(&world, "1Z999AA10123456784").await;
    channel.state().tracker_failures.push_back(ChannelError::retryable("EasyPost answered HTTP 503"));
    run.run(request(id), DELIVERY).await.expect("the attempt is recorded");
    let shipment = world.table.records().shipments[&id].clone();
    assert!(
        matches!(&shipment.export.state, ExportState::WaitingForMovement(w) if w.unregistered.len() == 1 && w.attempts == 1),
        "still to register, tried again later: {:?}",
        shipment.export.state
    );
    assert_eq!(
        shipment.export.state.sweep_at(),
        Some(world.now() + Duration::minutes(5) + shipsync_domain::export::SWEEP_GRACE)
    );
    run.run(request(id), DELIVERY).await.expect("not due yet");
    assert!(channel.state().trackers.is_empty(), "the provider is not hammered");
    world.advance(Duration::minutes(5));
    channel.state().tracker_failures.push_back(ChannelError::permanent("tracking_code is invalid"));
    run.run(request(id), DELIVERY).await.expect("settled");
    let listed = problems(&world, ProblemKind::TrackerRefused);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].reason.contains("1Z999AA10123456784"), "{}", listed[0].reason);
    run.run(request(id), DELIVERY).await.expect("nothing left");
    assert!(channel.state().trackers.is_empty());
}

#[tokio::test]
async fn a_provider_down_for_every_attempt_lists_the_number_and_never_hides_the_deadline() {
    let world = World::new();
    let channel = MemoryChannel::new();
    let run = on_movement(&world, 72, false).with_channels(channel.clone());
    let id = ship_tent(&world, "1Z999AA10123456784").await;
    for _ in 0..shipsync_domain::export::MAX_TRACKER_ATTEMPTS {
        channel.state().tracker_failures.push_back(ChannelError::retryable("EasyPost answered HTTP 503"));
        run.run(request(id), DELIVERY).await.expect("recorded");
        world.advance(Duration::hours(1));
    }
    let listed = problems(&world, ProblemKind::TrackerRefused);
    assert_eq!(listed.len(), 1, "listed after the last attempt");
    assert!(listed[0].reason.contains("5 attempts failed"), "{}", listed[0].reason);
    let shipment = world.table.records().shipments[&id].clone();
    assert!(matches!(&shipment.export.state, ExportState::WaitingForMovement(w) if w.unregistered.is_empty()));
    // The deadline still comes, registration or not.
    world.advance(Duration::hours(72));
    run.run(request(id), DELIVERY).await.expect("timed out");
    assert_eq!(problems(&world, ProblemKind::NoCarrierScan).len(), 1);
}

#[tokio::test]
async fn a_shipment_without_a_scan_is_listed_once_at_its_deadline_and_cleared_when_it_moves() {
    let world = World::new();
    let channel = MemoryChannel::new();
    let run = on_movement(&world, 24, false).with_channels(channel.clone());
    let id = ship_tent(&world, "1Z999AA10123456784").await;
    run.run(request(id), DELIVERY).await.expect("registered");
    world.advance(Duration::hours(25));
    run.run(request(id), DELIVERY).await.expect("listed");
    run.run(request(id), DELIVERY).await.expect("listed once");
    let listed = problems(&world, ProblemKind::NoCarrierScan);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].reason.contains("for 25 hours"), "{}", listed[0].reason);
    assert!(channel.state().received.is_empty(), "the store does not confirm without a scan");

    let scan = CarrierScan {
        provider: "easypost".into(),
        event_id: "evt_1".into(),
        tracking_number: number("1Z999AA10123456784"),
        status: TrackingStatus::InTransit,
        occurred_at: world.now(),
    };
    // The same number posted to another store's URL reaches none of this store's shipments.
    let another_store = shipsync_domain::ids::StoreId::new_unchecked(world.store.get() + 1000);
    world.intake.apply_scan(another_store, &scan).await.expect("scan elsewhere");
    assert_eq!(problems(&world, ProblemKind::NoCarrierScan).len(), 1, "another store's scan moves nothing here");
    world.intake.apply_scan(world.store, &scan).await.expect("scan");
    assert!(problems(&world, ProblemKind::NoCarrierScan).is_empty(), "it moved: the problem is settled");
    run.run(request(id), DELIVERY).await.expect("exported");
    assert_eq!(channel.state().received.len(), 1);
}

#[tokio::test]
async fn a_store_that_says_so_confirms_after_the_timeout_without_a_scan() {
    let world = World::new();
    let channel = MemoryChannel::new();
    let run = on_movement(&world, 24, true).with_channels(channel.clone());
    let id = ship_tent(&world, "1Z999AA10123456784").await;
    run.run(request(id), DELIVERY).await.expect("registered");
    world.advance(Duration::hours(25));
    run.run(request(id), DELIVERY).await.expect("exported");
    assert_eq!(channel.state().received.len(), 1);
    assert!(problems(&world, ProblemKind::NoCarrierScan).is_empty());
    let shipment = world.table.records().shipments[&id].clone();
    assert!(matches!(shipment.export.state, ExportState::Exported { .. }), "{:?}", shipment.export.state);
}

#[tokio::test]
async fn an_order_carrying_a_channel_shipment_makes_it_once_however_often_it_comes() {
    let world = World::new();
    let mut order = world.order(false);
    order.fulfillments = vec![IncomingFulfillment {
        channel_fulfillment_id: "PKG-1".into(),
        channel_order_id: order.channel_order_id.clone(),
        lines: vec![("L1".into(), 1)],
        tracking_numbers: vec![number("1Z999AA10123456784")],
        tracking_company: Some("UPS".into()),
        cancelled: false,
    }];
    let body = world.message(ChannelEvent::OrderChanged { order: order.clone() });
    world.intake.apply_message(&body, &World::first_delivery()).await.expect("applied");
    world.intake.apply_message(&body, &World::first_delivery()).await.expect("applied again");
    let shipments: Vec<_> = world.table.records().shipments.values().cloned().collect();
    assert_eq!(shipments.len(), 1, "one shipment for the channel's package");
    assert!(
        matches!(&shipments[0].export.state, ExportState::Exported { channel_ids, .. } if channel_ids == &["PKG-1"])
    );
    assert_eq!(shipments[0].items[0].sku, "TENT");
}

#[tokio::test]
async fn a_buyers_cancellation_request_is_listed_until_the_order_no_longer_asks() {
    let world = World::new();
    let mut order = world.order(false);
    order.cancel_requested = Some("ordered by mistake".into());
    let apply = |order: &shipsync_domain::orders::IncomingOrder| {
        world.message(ChannelEvent::OrderChanged { order: order.clone() })
    };
    world.intake.apply_message(&apply(&order), &World::first_delivery()).await.expect("applied");
    let listed = problems(&world, ProblemKind::CancelRequested);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].reason.contains("ordered by mistake"));
    world.advance(Duration::minutes(5));
    order.updated_at = world.now();
    order.cancelled = true;
    order.cancel_requested = None;
    world.intake.apply_message(&apply(&order), &World::first_delivery()).await.expect("applied");
    assert!(problems(&world, ProblemKind::CancelRequested).is_empty(), "cancelled: settled");
}

#[tokio::test]
async fn polled_lines_awaiting_acceptance_are_accepted_once_routed_and_a_notified_order_is_queued() {
    let world = World::new();
    {
        let mut records = world.table.records();
        records.polled_stores.push(PolledStore { retailer_id: world.retailer, store_id: world.store });
        records.credentials.insert(
            (world.retailer, world.store),
            ChannelCredentials(BTreeMap::from([("access_token".to_owned(), "shpat_test".to_owned())])),
        );
    }
    let (channel, queue) = (MemoryChannel::new(), MemoryEventQueue::new());
    let polling = OrderPolling::new(world.table.clone(), channel.clone(), queue.clone(), world.clock());
    let mut order = world.order(true);
    for line in &mut order.lines {
        line.awaiting_acceptance = true;
    }
    channel.state().orders = vec![order.clone()];
    polling.tick().await.expect("tick");
    let accepted: Vec<String> = channel.state().accepted.iter().map(|(_, line)| line.clone()).collect();
    assert_eq!(accepted, ["L1", "L2"], "the unknown SKU's line is not accepted");
    assert_eq!(queue.events().len(), 1);

    let store = PolledStore { retailer_id: world.retailer, store_id: world.store };
    let id = ChannelOrderId::parse("9001").expect("an id");
    assert!(polling.refresh_notified_order(store.clone(), &id, "notification").await.expect("read"));
    let events = queue.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].source, "shopify notification");
    let unknown = ChannelOrderId::parse("404").expect("an id");
    assert!(!polling.refresh_notified_order(store, &unknown, "notification").await.expect("read"));
}
