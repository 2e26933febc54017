//! Running exports against a channel in memory: once, never twice, whatever is delivered twice,
//! crashes under its claim, or is refused.

use std::collections::BTreeMap;
use std::time::Duration;

use shipsync_app::Failure;
use shipsync_app::exports::{ExportRun, RequestDelivery};
use shipsync_app::memory::{MemoryChannel, MemoryTable};
use shipsync_channels::ChannelError;
use shipsync_domain::export::{CLAIM_TIMEOUT, ExportReason, ExportRequest, ExportState};
use shipsync_domain::ids::ShipmentId;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::EchoedIds;

use crate::fixtures::{World, ship_all};

const DELIVERY: RequestDelivery = RequestDelivery { receives: 1, sent_at: None };

/// A world whose store has its Shopify token, one shipment due now, and an exporter on a channel in memory.
async fn due_shipment() -> (World, MemoryChannel, ExportRun<MemoryTable, MemoryChannel>, ShipmentId) {
    let world = World::new();
    world.table.records().credentials.insert(
        (world.retailer, world.store),
        ChannelCredentials(BTreeMap::from([("access_token".to_owned(), "shpat_test".to_owned())])),
    );
    let pos = world.purchase_orders().await;
    let written = world
        .desk
        .create(&world.retailer_user(), pos[0].id, &ship_all(&pos[0], "1Z999AA10123456784"), EchoedIds::default())
        .await
        .expect("created");
    let channel = MemoryChannel::new();
    let clock = world.clock();
    let run = ExportRun::new(world.table.clone(), channel.clone(), clock, 5);
    (world, channel, run, written.shipment.id)
}

fn request(id: ShipmentId) -> ExportRequest {
    ExportRequest { shipment_id: id, reason: ExportReason::Scheduled }
}

#[tokio::test]
async fn a_shipment_is_exported_once_however_often_its_request_comes() {
    let (world, channel, run, id) = due_shipment().await;
    run.run(request(id), DELIVERY).await.expect("exported");
    run.run(request(id), DELIVERY).await.expect("nothing left to do");
    let state = channel.state();
    assert_eq!(state.received.len(), 1);
    assert_eq!(state.received[0].tracking_numbers, ["1Z999AA10123456784"]);
    assert_eq!(state.received[0].lines[0].sku, "TENT");
    let shipment = world.table.records().shipments[&id].clone();
    assert!(matches!(shipment.export.state, ExportState::Exported { .. }), "{:?}", shipment.export.state);
}

#[tokio::test]
async fn an_attempt_that_died_under_its_claim_is_adopted_not_sent_again() {
    let (world, channel, run, id) = due_shipment().await;
    // The first attempt reached the channel and died before recording it: the claim stands.
    run.run(request(id), DELIVERY).await.expect("exported");
    {
        let mut records = world.table.records();
        let shipment = records.shipments.get_mut(&id).expect("shipment");
        shipment.export.state = ExportState::Exporting { claimed_at: world.now(), sweep_at: None };
    }
    let busy = run.run(request(id), DELIVERY).await;
    assert!(matches!(busy, Err(Failure::Retryable { .. })), "a live claim is left alone: {busy:?}");
    world.advance(CLAIM_TIMEOUT + chrono::Duration::seconds(1));
    run.run(request(id), DELIVERY).await.expect("adopted");
    assert_eq!(channel.state().received.len(), 1, "never sent twice");
    assert!(matches!(world.table.records().shipments[&id].export.state, ExportState::Exported { .. }));
}

#[tokio::test]
async fn a_channel_that_asks_to_wait_gets_its_wait_and_a_refusal_is_listed_for_a_person() {
    let (world, channel, run, id) = due_shipment().await;
    let wait = Duration::from_secs(120);
    channel.fail_with([ChannelError::Retryable { message: "slow down".into(), retry_after: Some(wait) }]);
    let outcome = run.run(request(id), DELIVERY).await;
    assert!(matches!(&outcome, Err(failure) if failure.retry_after() == Some(wait)), "{outcome:?}");
    let due = match world.table.records().shipments[&id].export.state {
        ExportState::Scheduled { due_at } => due_at,
        ref other => panic!("{other:?}"),
    };
    assert_eq!(due, world.now() + chrono::Duration::seconds(120), "not due before the channel's wait");

    channel.fail_with([ChannelError::permanent("unknown line item")]);
    world.advance(chrono::Duration::seconds(120));
    run.run(request(id), DELIVERY).await.expect("recorded, not retried");
    let shipment = world.table.records().shipments[&id].clone();
    assert!(matches!(&shipment.export.state, ExportState::Failed { .. }), "{:?}", shipment.export.state);
    assert!(channel.state().received.is_empty());
}

#[tokio::test]
async fn a_store_without_its_credentials_fails_the_export_naming_the_key() {
    let (world, channel, run, id) = due_shipment().await;
    world.table.records().credentials.clear();
    run.run(request(id), DELIVERY).await.expect("recorded, not retried");
    let shipment = world.table.records().shipments[&id].clone();
    assert!(
        matches!(&shipment.export.state, ExportState::Failed { message, .. } if message.contains("credentials.access_token")),
        "{:?}",
        shipment.export.state
    );
    assert_eq!(channel.state().calls, 0);
}

#[tokio::test]
async fn a_request_for_a_shipment_not_written_yet_comes_back() {
    let (_, _, run, _) = due_shipment().await;
    let missing = ShipmentId::new(999_999).expect("id");
    let outcome = run.run(request(missing), DELIVERY).await;
    assert!(matches!(outcome, Err(Failure::Retryable { .. })));
}
