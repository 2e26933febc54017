//! Shipments through the API's use cases: planned before written, lost races withdrawn and
//! retried, roles refused before anything is written, whole orders released once.

use shipsync_app::Failure;
use shipsync_domain::export::{Delivery, ExportReason, ExportState, ExportWhen, ShipConfirmation};
use shipsync_domain::shipment::EchoedIds;

use crate::fixtures::{World, ship_all};

#[tokio::test]
async fn a_new_shipment_is_planned_before_it_is_written_and_a_lost_race_withdraws_its_plan() {
    let world = World::new();
    let pos = world.purchase_orders().await;
    world.table.lose_next_writes(1);
    let written = world
        .desk
        .create(&world.retailer_user(), pos[0].id, &ship_all(&pos[0], "1Z999AA10123456784"), EchoedIds::default())
        .await
        .expect("created");

    let log = world.planner.log();
    assert_eq!(log.delivered.len(), 2, "planned on each attempt");
    assert_eq!(log.cancelled, log.delivered[..1], "the losing attempt's plan is withdrawn");
    drop(log);
    let standing = world.planner.standing();
    assert_eq!(standing.len(), 1);
    assert_eq!(standing[0].0.shipment_id, written.shipment.id, "one id reserved, kept across attempts");
    assert_eq!(standing[0].1, Delivery::Now);
    let records = world.table.records();
    assert_eq!(records.shipments.len(), 1);
    assert!(records.purchase_orders[&pos[0].id].is_fully_fulfilled());
}

#[tokio::test]
async fn when_the_planner_is_down_nothing_is_written() {
    let world = World::new();
    let pos = world.purchase_orders().await;
    world.planner.log().failures_to_inject = 1;
    let refused =
        world.desk.create(&world.retailer_user(), pos[0].id, &ship_all(&pos[0], "1Z1"), EchoedIds::default()).await;
    assert!(matches!(refused, Err(Failure::Retryable { .. })), "{refused:?}");
    assert!(world.table.records().shipments.is_empty());
}

#[tokio::test]
async fn vendors_may_not_decide_exports_and_echoed_ids_must_be_the_records_own() {
    let world = World::new();
    let pos = world.purchase_orders().await;
    let mut input = ship_all(&pos[0], "1Z1");
    input.export = Some(false);
    let refused = world.desk.create(&world.vendor_user(), pos[0].id, &input, EchoedIds::default()).await;
    assert!(matches!(&refused, Err(Failure::Forbidden(reason)) if reason.contains("export")), "{refused:?}");

    let echoed = EchoedIds { shipment: None, purchase_order: Some(pos[1].id.get()) };
    let refused = world.desk.create(&world.retailer_user(), pos[0].id, &ship_all(&pos[0], "1Z1"), echoed).await;
    assert!(matches!(&refused, Err(Failure::Invalid(errors)) if errors.mentions("purchase_order_id")), "{refused:?}");
    assert!(world.table.records().shipments.is_empty());
    assert!(world.planner.log().delivered.is_empty());

    // Another vendor's purchase order does not exist for this vendor.
    let hidden =
        world.desk.create(&world.vendor_user(), pos[1].id, &ship_all(&pos[1], "1Z2"), EchoedIds::default()).await;
    assert!(matches!(hidden, Err(Failure::NotFound(_))));
}

#[tokio::test]
async fn a_store_that_exports_whole_orders_releases_them_once_the_last_unit_ships() {
    let world = World::new();
    world.store_settings(|export| export.export_when = ExportWhen::OrderFullyShipped);
    let pos = world.purchase_orders().await;
    let user = world.retailer_user();
    let first =
        world.desk.create(&user, pos[0].id, &ship_all(&pos[0], "1Z1"), EchoedIds::default()).await.expect("first");
    assert_eq!(first.shipment.export.state, ExportState::WaitingForOrder);
    assert!(world.planner.standing().is_empty(), "nothing planned while the order is incomplete");

    let second =
        world.desk.create(&user, pos[1].id, &ship_all(&pos[1], "1Z2"), EchoedIds::default()).await.expect("second");
    let standing = world.planner.standing();
    assert!(standing.iter().all(|(request, _)| request.reason == ExportReason::OrderShipped));
    let mut released: Vec<_> = standing.iter().map(|(request, _)| request.shipment_id).collect();
    released.sort();
    assert_eq!(released, [first.shipment.id, second.shipment.id], "both released, each once");
    let records = world.table.records();
    assert!(records.shipments.values().all(|s| matches!(s.export.state, ExportState::Scheduled { .. })));
}

#[tokio::test]
async fn a_manual_export_is_for_retailer_users_and_stores_that_send_confirmations() {
    let world = World::new();
    world.store_settings(|export| export.export_shipments = false);
    let pos = world.purchase_orders().await;
    let written = world
        .desk
        .create(&world.retailer_user(), pos[0].id, &ship_all(&pos[0], "1Z1"), EchoedIds::default())
        .await
        .expect("created");
    let id = written.shipment.id;
    assert!(matches!(world.desk.export_now(&world.vendor_user(), id).await, Err(Failure::Forbidden(_))));

    world.store_settings(|export| export.ship_confirmation = Some(ShipConfirmation::Never));
    let refused = world.desk.export_now(&world.retailer_user(), id).await;
    assert!(matches!(&refused, Err(Failure::Invalid(errors)) if errors.mentions("export")), "{refused:?}");

    world.store_settings(|export| export.ship_confirmation = None);
    let exported = world.desk.export_now(&world.retailer_user(), id).await.expect("queued");
    assert_eq!(
        world.planner.standing().last().map(|(r, d)| (r.shipment_id, r.reason, *d)),
        Some((id, ExportReason::Manual, Delivery::Now))
    );
    assert_eq!(exported.shipment.version, written.shipment.version + 1);
}

#[tokio::test]
async fn a_back_market_confirmation_waits_for_its_imei_and_goes_when_an_edit_adds_it() {
    let world = World::new();
    world.table.records().channel_stores.get_mut(&(world.retailer, world.store)).expect("store").channel =
        shipsync_domain::tenant::ChannelKind::BackMarket;
    // Confirmed when the tracking is assigned (Back Market's default waits for movement).
    world.store_settings(|export| export.ship_confirmation = Some(ShipConfirmation::TrackingAssigned));
    let pos = world.purchase_orders().await;
    // Back Market said the line is a phone: its unit needs an IMEI.
    world.table.records().purchase_orders.get_mut(&pos[0].id).expect("po").items[0].needs_imei = true;
    let user = world.retailer_user();
    let written =
        world.desk.create(&user, pos[0].id, &ship_all(&pos[0], "1Z1"), EchoedIds::default()).await.expect("created");
    let held = world.now() + shipsync_domain::export::IMEI_WAIT;
    assert_eq!(written.shipment.export.state, ExportState::Scheduled { due_at: held }, "held an hour for the IMEI");

    let item = &written.shipment.items[0];
    let edit = shipsync_domain::shipment::ShipmentInput {
        items: Some(vec![shipsync_domain::shipment::ItemInput {
            id: Some(item.id.get()),
            serial_codes: Some(vec!["356938035643809".into()]),
            ..Default::default()
        }]),
        ..Default::default()
    };
    let edited = world.desk.update(&user, written.shipment.id, &edit, EchoedIds::default()).await.expect("edited");
    assert!(matches!(edited.shipment.export.state, ExportState::Scheduled { due_at } if due_at <= world.now()));
    let last = world.planner.standing().last().map(|(request, delivery)| (request.reason, *delivery));
    assert_eq!(last, Some((ExportReason::Manual, Delivery::Now)), "released at once");
}
