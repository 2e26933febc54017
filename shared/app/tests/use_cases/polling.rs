//! Polling through the channel port: due stores fetched and their orders queued, the cursor
//! moved only after, a failing store listed and the others unharmed.

use std::collections::BTreeMap;

use shipsync_app::memory::{MemoryChannel, MemoryEventQueue, MemoryTable};
use shipsync_app::polling::{OVERLAP, OrderPolling, poll_problem_key};
use shipsync_channels::ChannelError;
use shipsync_domain::orders::{ChannelEvent, PolledStore, ProblemKind};
use shipsync_domain::secrets::ChannelCredentials;

use crate::fixtures::World;

type Polling = OrderPolling<MemoryTable, MemoryChannel, MemoryEventQueue>;

/// The world's Shopify store on the poller's list, polled every 10 minutes, with its token.
fn polling(world: &World) -> (Polling, MemoryChannel, MemoryEventQueue) {
    {
        let mut records = world.table.records();
        records.polled_stores.push(PolledStore { retailer_id: world.retailer, store_id: world.store });
        records.credentials.insert(
            (world.retailer, world.store),
            ChannelCredentials(BTreeMap::from([("access_token".to_owned(), "shpat_test".to_owned())])),
        );
        let store = records.channel_stores.get_mut(&(world.retailer, world.store)).expect("store");
        store.ingestion.poll_orders_every_minutes = 10;
    }
    let (channel, queue) = (MemoryChannel::new(), MemoryEventQueue::new());
    (OrderPolling::new(world.table.clone(), channel.clone(), queue.clone(), world.clock()), channel, queue)
}

#[tokio::test]
async fn a_due_store_has_its_changed_orders_queued_and_its_cursor_moved_after() {
    let world = World::new();
    let (polling, channel, queue) = polling(&world);
    let order = world.order(false);
    channel.state().orders = vec![order.clone()];
    let report = polling.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued, report.failures.len()), (1, 1, 0), "{report:?}");
    let events = queue.events();
    assert!(matches!(&events[0].event, ChannelEvent::OrderChanged { order: queued } if *queued == order));
    assert_eq!(events[0].store_id, Some(world.store));
    let state = world.table.records().poll_states[&world.store].clone();
    assert_eq!(state.cursor, Some(order.updated_at));

    // Not due again for 10 minutes; then fetched from the cursor less the overlap.
    let again = polling.tick().await.expect("tick");
    assert_eq!(again.stores_polled, 0);
    world.advance(chrono::Duration::minutes(10));
    polling.tick().await.expect("tick");
    assert_eq!(queue.events().len(), 2, "the overlap fetches it again; the processor ignores the version");
    assert!(OVERLAP > chrono::Duration::zero());
}

#[tokio::test]
async fn a_failing_store_is_listed_keeps_its_cursor_and_is_cleared_when_it_recovers() {
    let world = World::new();
    let (polling, channel, queue) = polling(&world);
    channel.state().orders_failure = Some(ChannelError::retryable("Shopify is down"));
    let report = polling.tick().await.expect("tick");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(report.failures[0].contains("Shopify is down"), "{report:?}");
    let key = poll_problem_key(world.store);
    assert_eq!(world.table.records().problems[&(world.retailer, key.clone())].kind, ProblemKind::PollFailed);
    assert_eq!(world.table.records().poll_states[&world.store].cursor, None, "the cursor stays");
    assert!(queue.events().is_empty());

    channel.state().orders_failure = None;
    world.advance(chrono::Duration::minutes(10));
    let report = polling.tick().await.expect("tick");
    assert!(report.failures.is_empty(), "{report:?}");
    assert!(!world.table.records().problems.contains_key(&(world.retailer, key)), "cleared once it works");
}

#[tokio::test]
async fn a_backlog_longer_than_a_tick_resumes_where_it_stopped_and_moves_the_cursor_only_at_its_end() {
    let world = World::new();
    let (polling, channel, queue) = polling(&world);
    let polling = polling.with_pages_per_tick(2);
    // Five orders, newest first (a channel need not list oldest first), two a page.
    let orders: Vec<_> = (0..5)
        .map(|n| {
            let mut order = world.order(false);
            order.channel_order_id = shipsync_domain::vocabulary::ChannelOrderId::parse(&format!("90{n}")).expect("id");
            order.number = format!("10{n}");
            order.updated_at = world.now() - chrono::Duration::minutes(n);
            order
        })
        .collect();
    {
        let mut state = channel.state();
        state.orders = orders.clone();
        state.page_size = Some(2);
    }
    polling.tick().await.expect("tick");
    assert_eq!(queue.events().len(), 4, "two pages this tick");
    let state = world.table.records().poll_states[&world.store].clone();
    assert_eq!(state.cursor, None, "the listing is unfinished: the cursor stays");
    let resume = state.resume.expect("where to go on");
    assert_eq!(resume.page, "4");
    assert_eq!(resume.newest, Some(world.now()));

    world.advance(chrono::Duration::minutes(10));
    polling.tick().await.expect("tick");
    assert_eq!(queue.events().len(), 5, "the last page, not the first again");
    let listings = channel.state().listings.clone();
    assert_eq!(listings[2], (resume.since, Some("4".into())), "resumed with the same filters");
    let state = world.table.records().poll_states[&world.store].clone();
    assert_eq!(state.resume, None);
    assert_eq!(state.cursor, Some(orders[0].updated_at), "the newest change read, once all was read");
}
