//! The order poller: orders changed since the cursor (less an overlap) are fetched page by page
//! from a wiremock Shopify and fed to the same processor as webhooks.

use chrono::Duration;
use http::Method;
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::tenant::FeeSettings;
use wiremock::matchers::{body_partial_json, body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::TestApp;

fn order(id: u64, number: &str, updated_at: &str, sku: &str) -> Value {
    json!({
        "id": format!("gid://shopify/Order/{id}"), "name": format!("#{number}"), "updatedAt": updated_at, "cancelledAt": null,
        "shippingAddress": {"name": "Polly Poll"}, "customer": {"firstName": "Polly", "lastName": "Poll"},
        "lineItems": {"nodes": [{"id": format!("gid://shopify/LineItem/{id}1"), "sku": sku, "name": sku, "quantity": 2, "currentQuantity": 2,
            "originalUnitPriceSet": {"shopMoney": {"amount": "10.0"}}}]}
    })
}

fn page(orders: Vec<Value>, next: Option<&str>) -> Value {
    json!({"data": {"orders": {"pageInfo": {"hasNextPage": next.is_some(), "endCursor": next}, "nodes": orders}}})
}

async fn graphql_variables(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter_map(|r| serde_json::from_slice::<Value>(&r.body).ok())
        .map(|body| body["variables"].clone())
        .collect()
}

#[tokio::test]
async fn orders_changed_since_the_cursor_are_fetched_and_processed() {
    let shopify = MockServer::start().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    app.call(
        Method::POST,
        "/products.json",
        Some(json!({"product": {"sku": "POLL-1", "vendor_id": app.vendor.id.get()}})),
    )
    .await;
    Mock::given(method("POST"))
        .and(path("/admin/api/2025-10/graphql.json"))
        .and(body_string_contains("ShipsyncOrders"))
        .and(body_partial_json(json!({"variables": {"after": "page-2"}})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![order(2, "2002", "2026-03-02T11:50:00Z", "POLL-1")], None)),
        )
        .with_priority(1)
        .mount(&shopify)
        .await;
    Mock::given(method("POST"))
        .and(path("/admin/api/2025-10/graphql.json"))
        .and(body_string_contains("ShipsyncOrders"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(page(vec![order(1, "2001", "2026-03-02T11:40:00Z", "POLL-1")], Some("page-2"))),
        )
        .with_priority(2)
        .mount(&shopify)
        .await;

    let report = app.poller.tick().await.expect("tick");
    assert_eq!((report.stores_polled, report.orders_queued), (1, 2), "{report:?}");
    app.run_orders().await;
    for number in ["2001", "2002"] {
        let po = app
            .store
            .purchase_order_by_number(app.retailer.id, &format!("{number}-V{}", app.vendor.id))
            .await
            .expect("read");
        assert_eq!(po.map(|po| po.items[0].quantity), Some(2), "{number}");
    }
    let first = graphql_variables(&shopify).await;
    assert_eq!(first[0], json!({"query": "updated_at:>='2026-03-01T12:00:00Z'", "after": null}));
    assert_eq!(first[1]["after"], "page-2");

    // Not again before the store's interval (10 minutes by default) has passed.
    app.advance(Duration::minutes(5));
    assert_eq!(app.poller.tick().await.expect("tick").stores_polled, 0);
    // Then from the newest change seen, less the overlap; orders seen before change nothing.
    app.advance(Duration::minutes(5));
    let report = app.poller.tick().await.expect("tick");
    assert_eq!(report.stores_polled, 1);
    let variables = graphql_variables(&shopify).await;
    assert_eq!(variables[2], json!({"query": "updated_at:>='2026-03-02T11:45:00Z'", "after": null}));
    app.run_orders().await;
    let (_, list) = app.call(Method::GET, "/purchase_orders.json", None).await;
    assert_eq!(list["metadata"]["total_count"], 2);

    // Polling off: the store is left alone.
    app.call(
        Method::PUT,
        &format!("/stores/{}.json", app.shop.id),
        Some(json!({"store": {"poll_orders_every_minutes": 0}})),
    )
    .await;
    app.advance(Duration::hours(1));
    assert_eq!(app.poller.tick().await.expect("tick").stores_polled, 0);
}
