//! Searches read a bounded amount: a filtered search examines at most its budget of index
//! entries a request, and `cursor` / `metadata.next_cursor` go on from where reading stopped.
//! A cursor only ever says where to start in the caller's own listing.

use base64::Engine;
use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::Value;
use shipsync_table::SearchCursor;

use crate::harness::{TestApp, errors, shipment_body};

/// Few enough that two dozen shipments are many.
const BUDGET: u64 = 5;

/// The positions (in creation order) of the shipments whose customer is Nora Needle.
const NEEDLES: [usize; 3] = [3, 13, 22];

struct Fixture {
    app: TestApp,
    /// Shipment ids in creation order, a minute apart.
    ids: Vec<u64>,
}

/// 24 shipments, one per purchase order; three of them for Nora Needle.
async fn fixture() -> Fixture {
    let app = TestApp::new().await.with_search_budget(BUDGET);
    let mut ids = Vec::new();
    for position in 0..24 {
        let customer = if NEEDLES.contains(&position) { "Nora Needle" } else { "Bill Smith" };
        let po = app.purchase_order(&app.vendor, &format!("PO-B{position}"), customer, &[1]).await;
        let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z0001"])).await;
        ids.push(shipment["id"].as_u64().expect("id"));
        app.advance(Duration::minutes(1));
    }
    Fixture { app, ids }
}

fn ids(json: &Value, list: &str) -> Vec<u64> {
    json[list].as_array().expect("list").iter().map(|s| s["id"].as_u64().expect("id")).collect()
}

fn next_cursor(json: &Value) -> Option<String> {
    json["metadata"]["next_cursor"].as_str().map(str::to_owned)
}

/// Follows `next_cursor` from `first` (a query answered already) to the end: every id seen, and
/// how many requests that took in all.
async fn walk(app: &TestApp, path: &str, query: &str, list: &str, first: &Value) -> (Vec<u64>, usize) {
    let mut seen = ids(first, list);
    let mut requests = 1;
    let mut cursor = next_cursor(first);
    while let Some(text) = cursor {
        let (status, page) = app.call(Method::GET, &format!("{path}?{query}&cursor={text}"), None).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        seen.extend(ids(&page, list));
        requests += 1;
        assert!(requests <= 20, "the walk does not end");
        cursor = next_cursor(&page);
    }
    (seen, requests)
}

#[tokio::test]
async fn a_rare_filter_stops_at_the_budget_and_cursors_find_each_match_once() {
    let f = fixture().await;
    let query = "search[customer_name]=needle&per_page=2";
    let (status, first) = f.app.call(Method::GET, &format!("/shipments.json?{query}"), None).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    // Five entries examined (the first five shipments): one match, not a full page, and no
    // knowing the total; the cursor goes on from the fifth. Page numbers know of no more (a
    // page-number walk ends here rather than asking for empty pages).
    assert_eq!(ids(&first, "shipments"), [f.ids[NEEDLES[0]]]);
    assert_eq!(first["metadata"]["total_count"], 1);
    assert_eq!(first["metadata"]["total_count_exact"], false);
    assert_eq!(first["metadata"]["has_next_page"], false);
    assert!(next_cursor(&first).is_some());

    let (found, requests) = walk(&f.app, "/shipments.json", query, "shipments", &first).await;
    let needles: Vec<u64> = NEEDLES.iter().map(|&position| f.ids[position]).collect();
    assert_eq!(found, needles, "every match once, in order");
    // 24 entries at five a request.
    assert_eq!(requests, 5);

    // A common value fills its page within the budget, as before.
    let (_, common) = f.app.call(Method::GET, "/shipments.json?search[customer_name]=smith&per_page=2", None).await;
    assert_eq!(ids(&common, "shipments"), f.ids[0..2]);
    let (found, _) =
        walk(&f.app, "/shipments.json", "search[customer_name]=smith&per_page=2", "shipments", &common).await;
    let smiths: Vec<u64> = (0..24).filter(|p| !NEEDLES.contains(p)).map(|p| f.ids[p]).collect();
    assert_eq!(found, smiths);
}

#[tokio::test]
async fn unfiltered_pages_read_as_before_and_cursors_walk_the_same_listing() {
    let f = fixture().await;
    // The budget is for filters: an unfiltered page reads itself and one page ahead, as before.
    let (_, third) = f.app.call(Method::GET, "/shipments.json?per_page=5&page=3", None).await;
    assert_eq!(ids(&third, "shipments"), f.ids[10..15]);
    assert_eq!(third["metadata"]["total_count"], 20);
    assert_eq!(third["metadata"]["total_count_exact"], false);
    assert_eq!(third["metadata"]["has_next_page"], true);
    let (_, last) = f.app.call(Method::GET, "/shipments.json?per_page=5&page=5", None).await;
    assert_eq!(ids(&last, "shipments"), f.ids[20..24]);
    assert_eq!(last["metadata"]["total_count"], 24);
    assert_eq!(last["metadata"]["total_count_exact"], true);
    assert_eq!(last["metadata"]["next_cursor"], Value::Null);

    // The first page's cursor leads to what page 2 shows; walking finds every shipment once.
    let (_, first) = f.app.call(Method::GET, "/shipments.json?per_page=5", None).await;
    let cursor = next_cursor(&first).expect("a cursor past a full page");
    let (_, second) = f.app.call(Method::GET, &format!("/shipments.json?per_page=5&cursor={cursor}"), None).await;
    assert_eq!(ids(&second, "shipments"), f.ids[5..10]);
    let (found, requests) = walk(&f.app, "/shipments.json", "per_page=5", "shipments", &first).await;
    assert_eq!(found, f.ids);
    assert_eq!(requests, 5);

    // Purchase orders list the same way.
    let (_, orders) = f.app.call(Method::GET, "/purchase_orders.json?per_page=10", None).await;
    let (found, requests) = walk(&f.app, "/purchase_orders.json", "per_page=10", "purchase_orders", &orders).await;
    assert_eq!(found.len(), 24);
    assert_eq!(found.iter().collect::<std::collections::BTreeSet<_>>().len(), 24);
    assert_eq!(requests, 3);
}

#[tokio::test]
async fn a_cursor_from_another_search_is_refused_and_never_reads_elsewhere() {
    let f = fixture().await;
    let invalid = vec!["cursor is not valid for this search".to_owned()];
    let (_, page) = f.app.call(Method::GET, "/shipments.json?per_page=2", None).await;
    let cursor = next_cursor(&page).expect("cursor");

    // Not one shipsync made: 422, never a panic.
    let encode = |text: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text);
    let wrong_shape = encode(r#"{"pk":"RETAILER#1"}"#);
    let profile =
        encode(r##"[1,"0123456789abcdef","2026-03-02T12:00:00.000000Z#0000000000000001","RETAILER#1","#PROFILE"]"##);
    let too_long = "A".repeat(600);
    let tampered = format!("{}x", &cursor[..cursor.len() - 1]);
    for bad in ["!!!!", "A", too_long.as_str(), wrong_shape.as_str(), profile.as_str(), tampered.as_str()] {
        let (status, json) = f.app.call(Method::GET, &format!("/shipments.json?cursor={bad}"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad} → {json}");
        assert_eq!(errors(&json), invalid, "{bad}");
    }
    let (status, json) = f.app.call(Method::GET, &format!("/shipments.json?cursor={cursor}&page=2"), None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(errors(&json)[0].starts_with("cursor cannot be combined with page"), "{json}");

    // Made for another listing: the vendor's own, another index, purchase orders, order health.
    let vendor = Some(&f.app.vendor_user);
    let (status, json) = f.app.call_as(vendor, Method::GET, &format!("/shipments.json?cursor={cursor}"), None).await;
    assert_eq!((status, errors(&json)), (StatusCode::UNPROCESSABLE_ENTITY, invalid.clone()));
    for path in [
        "/shipments.json?search[updated_at_min]=2026-03-02T12:00:00Z&",
        "/purchase_orders.json?",
        "/order_health.json?",
        "/exports/failed.json?",
    ] {
        let (status, json) = f.app.call(Method::GET, &format!("{path}cursor={cursor}"), None).await;
        assert_eq!((status, errors(&json)), (StatusCode::UNPROCESSABLE_ENTITY, invalid.clone()), "{path}");
    }

    // Another retailer on the same table: retailer A's cursor is refused outright.
    let other = f.app.another_tenant().await;
    let mut own = Vec::new();
    for number in ["PO-OTHER-1", "PO-OTHER-2", "PO-OTHER-3"] {
        other.advance(Duration::minutes(2));
        let po = other.purchase_order(&other.vendor, number, "Nora Needle", &[1]).await;
        let shipment = other.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z0002"])).await;
        own.push(shipment["id"].as_u64().expect("id"));
    }
    let (status, json) = other.call(Method::GET, &format!("/shipments.json?cursor={cursor}"), None).await;
    assert_eq!((status, errors(&json)), (StatusCode::UNPROCESSABLE_ENTITY, invalid.clone()));

    // Forged to pass the check (B's partition digest, A's keys): the position is A's entry, the
    // partition still B's, so B sees its own shipments after that place and nothing of A's.
    let (_, b_page) = other.call(Method::GET, "/shipments.json?per_page=1", None).await;
    let b_cursor = SearchCursor::decode(&next_cursor(&b_page).expect("B's cursor")).expect("decodes");
    let a_cursor = SearchCursor::decode(&cursor).expect("decodes");
    let forged = SearchCursor { partition: b_cursor.partition, ..a_cursor }.encode();
    let (status, json) = other.call(Method::GET, &format!("/shipments.json?cursor={forged}"), None).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let seen = ids(&json, "shipments");
    assert!(!seen.is_empty());
    assert!(seen.iter().all(|id| own.contains(id)), "{seen:?} are not all of {own:?}");
    assert!(seen.iter().all(|id| !f.ids.contains(id)));
}
