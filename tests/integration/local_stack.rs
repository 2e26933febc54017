//! The local stack's HTTP server: the README's curl, over a real socket, through the handler.

use std::io::{Read, Write};

use exporter::Exporter;
use shipments_api::ShipmentsApi;
use shipsync_channels::ChannelEndpoints;
use shipsync_tools::local_server::LocalApps;
use shipsync_tools::runner::Runner;
use shipsync_tools::{demo, local_server};
use shopify_webhooks::ShopifyWebhooks;

use crate::harness::fresh_aws;

/// One HTTP/1.1 exchange over a plain socket; returns the status code and body.
fn exchange(port: u16, request: &str) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let status = response.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_data_and_the_readme_curl_give_a_201() {
    let aws = fresh_aws().await;
    let table = aws.table.clone();
    assert!(table.is_empty().await.expect("read"));
    let shopify_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let shopify = demo::fake_shopify(shopify_listener).expect("fake Shopify");
    let demo = demo::seed(&table, shopify.url()).await.expect("demo data");
    assert!(!table.is_empty().await.expect("read"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let apps = LocalApps {
        api: ShipmentsApi::new(table.clone(), aws.export_planner()),
        webhooks: ShopifyWebhooks::new(table.clone(), aws.sqs.clone(), aws.order_queue_url.clone()),
        carrier_webhooks: carrier_webhooks::CarrierWebhooks::new(table, aws.sqs.clone(), aws.order_queue_url.clone()),
    };
    let server = tokio::spawn(local_server::serve(listener, apps));

    let po = &demo.purchase_orders[0];
    let body = format!(
        r#"{{"shipment": {{"shipper_name": "UPS", "shipment_items_attributes": [{{"order_item_id": {}, "quantity": 1}}], "shipment_trackings_attributes": [{{"tracking": "1Z999AA10123456784"}}]}}}}"#,
        po.items[0].id
    );
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", demo.retailer_user.key, demo.retailer_user.password));
    let request = format!(
        "POST /purchase_orders/{}/shipments.json HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        po.id,
        body.len()
    );
    let (status, response) = tokio::task::spawn_blocking(move || exchange(port, &request)).await.expect("join");
    assert_eq!(status, 201, "{response}");
    assert!(response.contains("1Z999AA10123456784"));

    // The demo store exports to the fake Shopify: export it now and let the runner deliver.
    let id: u64 =
        serde_json::from_str::<serde_json::Value>(&response).expect("json")["shipment"]["id"].as_u64().expect("id");
    let export = format!(
        "POST /shipments/{id}/export.json HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let (status, response) = tokio::task::spawn_blocking(move || exchange(port, &export)).await.expect("join");
    assert_eq!(status, 202, "{response}");
    // As the local stack builds it: a store's base_url (the fake Shopify's) is honoured.
    let exporter = Exporter::build(&aws.exporter_config(), &aws.sdk)
        .expect("exporter")
        .with_endpoints(ChannelEndpoints::honouring_store_overrides());
    let runner = Runner::new(
        aws.clone(),
        exporter,
        order_processor::OrderProcessor::new(aws.table.clone(), aws.export_planner()),
    );
    assert!(runner.deliver_batch().await.expect("deliver") >= 1);
    let received = shopify.fulfillments();
    let recorded = received.first().expect("the fake Shopify got it");
    assert_eq!(recorded.tracking_numbers, ["1Z999AA10123456784"]);
    assert_eq!(recorded.lines[0].sku, "TENT-2P");

    let unauthenticated = "GET /shipments.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_owned();
    let (status, _) = tokio::task::spawn_blocking(move || exchange(port, &unauthenticated)).await.expect("join");
    assert_eq!(status, 401);
    server.abort();
}
