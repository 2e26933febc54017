//! Order intake: orders, cancellations, channel fulfillments, delivered twice, raced and retried.

use shipsync_app::Failure;
use shipsync_domain::export::ExportState;
use shipsync_domain::orders::{ChannelEvent, IncomingFulfillment, ProblemKind};

use crate::fixtures::World;

#[tokio::test]
async fn an_order_splits_into_one_purchase_order_per_vendor_and_a_second_delivery_changes_nothing() {
    let world = World::new();
    let order = world.order(true);
    let first = world.intake.apply_order(world.retailer, world.store, &order, false).await.expect("applied");
    assert_eq!(first.purchase_orders.len(), 2);
    assert_eq!(first.unknown_lines, 1);
    let problems: Vec<_> = world.table.records().problems.values().map(|p| p.kind).collect();
    assert_eq!(problems, [ProblemKind::UnknownSku]);

    let again = world.intake.apply_order(world.retailer, world.store, &order, false).await.expect("applied");
    assert!(again.stale, "the same version is not applied twice");
    let records = world.table.records();
    assert_eq!(records.purchase_orders.len(), 2);
    let numbers: Vec<&str> = records.purchase_orders.values().map(|po| po.public_reference.as_str()).collect();
    assert_eq!(
        numbers,
        [format!("S{}-1001-V{}", world.store, world.vendor), format!("S{}-1001-V{}", world.store, world.other_vendor)]
    );
}

#[tokio::test]
async fn an_order_that_loses_races_is_read_again_and_applied_once() {
    let world = World::new();
    world.table.lose_next_writes(2);
    let applied =
        world.intake.apply_order(world.retailer, world.store, &world.order(false), false).await.expect("applied");
    assert_eq!(applied.purchase_orders.len(), 2);
    assert_eq!(world.table.records().purchase_orders.len(), 2, "no purchase order made twice by the retries");
}

#[tokio::test]
async fn an_older_version_is_ignored_and_a_cancellation_cancels_every_unit() {
    let world = World::new();
    let order = world.order(false);
    world.intake.apply_order(world.retailer, world.store, &order, false).await.expect("applied");
    let mut cancelled = order.clone();
    cancelled.cancelled = true;
    cancelled.updated_at = order.updated_at + chrono::Duration::minutes(5);
    world.intake.apply_order(world.retailer, world.store, &cancelled, false).await.expect("cancelled");
    let stale = world.intake.apply_order(world.retailer, world.store, &order, false).await.expect("ignored");
    assert!(stale.stale);
    let records = world.table.records();
    let items: Vec<(u32, u32)> = records
        .purchase_orders
        .values()
        .flat_map(|po| po.items.iter().map(|i| (i.quantity, i.quantity_cancelled)))
        .collect();
    assert_eq!(items, [(0, 1), (0, 2)], "every unit cancelled, and the older version restored none");
}

#[tokio::test]
async fn a_channel_fulfillment_becomes_one_exported_shipment_however_often_it_comes() {
    let world = World::new();
    world.intake.apply_order(world.retailer, world.store, &world.order(false), false).await.expect("applied");
    let fulfillment = IncomingFulfillment {
        channel_fulfillment_id: "F1".into(),
        channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("9001").expect("an order id"),
        lines: vec![("L1".into(), 1)],
        tracking_numbers: vec![
            shipsync_domain::tracking::TrackingNumber::parse("1Z999AA10123456784").expect("a tracking number"),
        ],
        tracking_company: Some("UPS".into()),
        cancelled: false,
    };
    let body = world.message(ChannelEvent::FulfillmentChanged { fulfillment: fulfillment.clone() });
    world.intake.apply_message(&body, &World::first_delivery()).await.expect("applied");
    // Delivered again, and a racing update that lost its first write.
    world.intake.apply_message(&body, &World::first_delivery()).await.expect("applied again");
    world.table.lose_next_writes(1);
    world.intake.reverse_sync(world.retailer, world.store, &fulfillment).await.expect("applied once more");

    let records = world.table.records();
    assert_eq!(records.shipments.len(), 1);
    let shipment = records.shipments.values().next().expect("a shipment");
    assert!(
        matches!(&shipment.export.state, ExportState::Exported { channel_ids, .. } if channel_ids == &["F1".to_owned()])
    );
    assert_eq!(shipment.version, 1, "it arrives exported; nothing exports it");
    assert!(world.planner.standing().is_empty(), "a shipment the channel made is never exported");
}

#[tokio::test]
async fn an_event_that_can_never_apply_is_kept_and_listed_not_retried() {
    let world = World::new();
    let mut order = world.order(false);
    order.lines[0].quantity = 0;
    order.channel_order_id = shipsync_domain::vocabulary::ChannelOrderId::received("");
    let body = world.message(ChannelEvent::OrderChanged { order });
    world.intake.apply_message(&body, &World::first_delivery()).await.expect("kept, not retried");
    let records = world.table.records();
    let problem = records.problems.values().next().expect("listed");
    assert_eq!(problem.kind, ProblemKind::UnapplicablePayload);
    assert_eq!(records.kept_payloads.values().next().map(Vec::len), Some(body.len()));
}

#[tokio::test]
async fn reprocessing_another_retailers_order_finds_nothing() {
    let world = World::new();
    let applied =
        world.intake.apply_order(world.retailer, world.store, &world.order(true), false).await.expect("applied");
    let other = shipsync_domain::ids::RetailerId::new(77).expect("id");
    let refused = world.intake.reprocess(other, applied.order_id).await;
    assert!(matches!(refused, Err(Failure::NotFound(_))), "{refused:?}");
    let (record, again) = world.intake.reprocess(world.retailer, applied.order_id).await.expect("reprocessed");
    assert_eq!(record.number, "1001");
    assert_eq!(again.purchase_orders.len(), 2);
}
