//! The local stack's HTTP server: the README's curl, over a real socket, through the handler; and
//! the README's marketplace walk: an order at each fake marketplace polled into a purchase order,
//! shipped, its tracker registered at the fake EasyPost, a scan signed with the store's own secret
//! at the store's own URL, the fake's confirmation.

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
    let marketplaces = demo::fake_marketplaces(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        .expect("fake marketplaces");
    let demo = demo::seed(&table, shopify.url(), &marketplaces).await.expect("demo data");
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
    let create = format!(
        "POST /purchase_orders/{}/shipments.json HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        po.id,
        body.len()
    );
    let (status, response) = tokio::task::spawn_blocking(move || exchange(port, &create)).await.expect("join");
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

    // The README's return and cancellation walk, over the socket: a return authorized goes to the
    // fake Shopify as a return on the fulfillment's line item; a unit cancelled goes as a refund.
    let user = format!("{}:{}", demo.retailer_user.key, demo.retailer_user.password);
    let ret = format!(
        r#"{{"return": {{"items": [{{"order_item_id": {}, "quantity": 1}}], "reason": "arrived damaged"}}}}"#,
        po.items[0].id
    );
    let (status, opened) =
        send(port, request("POST", &format!("/purchase_orders/{}/returns.json", po.id), Some(&user), &[], &ret)).await;
    assert_eq!(status, 201, "{opened}");
    let authorize = r#"{"return": {"state": "authorized"}}"#;
    let uri = format!("/returns/{}.json", opened["return"]["id"]);
    let (status, authorized) = send(port, request("PUT", &uri, Some(&user), &[], authorize)).await;
    assert_eq!(
        (status, authorized["return"]["channel_sync"].clone()),
        (200, serde_json::json!("pushing")),
        "{authorized}"
    );
    let cancel = format!(
        r#"{{"cancellation": {{"items": [{{"order_item_id": {}, "quantity": 1}}], "reason": "out_of_stock"}}}}"#,
        po.items[1].id
    );
    let (status, cancelled) = send(
        port,
        request("POST", &format!("/purchase_orders/{}/cancellations.json", po.id), Some(&user), &[], &cancel),
    )
    .await;
    assert_eq!(status, 201, "{cancelled}");
    runner.deliver_batch().await.expect("deliver");
    let returns = shopify.returns();
    assert_eq!(returns.len(), 1, "the fake Shopify got the return");
    assert!(returns[0].lines[0].2.ends_with(&format!("[shipsync-return-{}]", opened["return"]["id"])), "{returns:?}");
    let cancellations = shopify.cancellations();
    assert_eq!(cancellations.len(), 1, "the fake Shopify got the cancellation");
    assert_eq!(cancellations[0].key, Some(format!("shipsync-cancellation-{}", cancelled["cancellation"]["id"])));
    let (_, read) = send(port, request("GET", &uri, Some(&user), &[], "")).await;
    assert_eq!(read["return"]["channel_sync"], serde_json::json!("pushed"), "{read}");

    let unauthenticated = "GET /shipments.json HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".to_owned();
    let (status, _) = tokio::task::spawn_blocking(move || exchange(port, &unauthenticated)).await.expect("join");
    assert_eq!(status, 401);
    server.abort();
}

/// An HTTP/1.1 request with a JSON body (`auth`: HTTP Basic `key:password`, and further headers).
fn request(method: &str, path: &str, auth: Option<&str>, headers: &[(&str, String)], body: &str) -> String {
    use base64::Engine;
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(auth) = auth {
        text.push_str(&format!("Authorization: Basic {}\r\n", base64::engine::general_purpose::STANDARD.encode(auth)));
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()));
    text
}

async fn send(port: u16, request: String) -> (u16, serde_json::Value) {
    let (status, body) = tokio::task::spawn_blocking(move || exchange(port, &request)).await.expect("join");
    (status, serde_json::from_str(&body).unwrap_or(serde_json::Value::Null))
}

/// The requests the fake marketplaces received since `seen` of them (sorted: stores are polled
/// side by side), moving `seen` past them.
fn calls_since(marketplaces: &shipsync_tools::fake_marketplaces::FakeMarketplaces, seen: &mut usize) -> Vec<String> {
    let calls = marketplaces.calls();
    let mut new: Vec<String> = calls.get(*seen..).unwrap_or_default().to_vec();
    *seen = calls.len();
    new.sort();
    new
}

/// Feeds both queues to their functions until neither has anything left.
async fn drain(runner: &Runner) {
    for _ in 0..20 {
        let orders = runner.deliver_order_events().await.expect("order queue");
        let exports = runner.deliver_batch().await.expect("export queue");
        if orders + exports == 0 {
            return;
        }
    }
    panic!("the queues never emptied");
}

/// The README's marketplace walk, for Amazon, eBay, Back Market and Walmart, with no admin step: the
/// demo's orders wait at the fake channels; the poller (as the local stack builds it) takes them
/// in, Back Market's line is accepted and Walmart's order acknowledged; each purchase order gets a shipment over the socket,
/// which waits for movement while its tracker is registered at the fake EasyPost; a scan signed
/// as EasyPost signs it releases it, and the fake channel receives exactly the confirmation.
/// A later poll reads the orders back with their shipments: nothing new, no problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_marketplace_order_goes_from_its_fake_channel_to_a_confirmation_there() {
    use shipsync_tools::fake_marketplaces::{Acceptance, Marketplace};

    let aws = fresh_aws().await;
    let table = aws.table.clone();
    let shopify =
        demo::fake_shopify(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")).expect("fake Shopify");
    let marketplaces = demo::fake_marketplaces(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        .expect("fake marketplaces");
    let demo = demo::seed(&table, shopify.url(), &marketplaces).await.expect("demo data");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    // Every function as the local stack builds it.
    let endpoints = ChannelEndpoints::honouring_store_overrides();
    let apps = LocalApps {
        api: ShipmentsApi::build(&aws.api_config(), &aws.sdk).allowing_store_base_url(),
        webhooks: ShopifyWebhooks::build(&aws.intake_config(), &aws.sdk),
        carrier_webhooks: carrier_webhooks::CarrierWebhooks::build(&aws.intake_config(), &aws.sdk),
    };
    let server = tokio::spawn(local_server::serve(listener, apps));
    let exporter = Exporter::build(&aws.exporter_config(), &aws.sdk).expect("exporter").with_endpoints(endpoints);
    let runner =
        Runner::new(aws.clone(), exporter, order_processor::OrderProcessor::build(&aws.processor_config(), &aws.sdk));
    let poller =
        order_poller::OrderPoller::build(&aws.intake_config(), &aws.sdk).expect("poller").with_endpoints(endpoints);

    let polled = poller.tick().await.expect("a tick");
    assert_eq!((polled.orders_queued, polled.failures.clone()), (7, vec![]), "{polled:?}");
    // What polling cost at each fake: a token and a page, and Back Market's and Walmart's
    // acceptance (the order read, then the line validated or the order acknowledged); Wish's
    // first token, renewed from the refresh token the store holds.
    let mut seen = 0;
    assert_eq!(
        calls_since(&marketplaces, &mut seen),
        [
            "GET /amazon/orders/2026-01-01/orders",
            "GET /backmarket/ws/orders",
            "GET /backmarket/ws/orders/4600001",
            "GET /ebay/sell/fulfillment/v1/order",
            "GET /groupon/get_orders",
            "GET /walmart/v3/orders",
            "GET /walmart/v3/orders/1796277083022",
            "GET /wish/api/v3/oauth/refresh_token",
            "GET /wish/api/v3/orders",
            "GET /woocommerce/wp-json/wc/v3/orders",
            "POST /amazon/auth/o2/token",
            "POST /backmarket/ws/orders/4600001",
            "POST /ebay/identity/v1/oauth2/token",
            "POST /groupon/mark_exported",
            "POST /walmart/v3/orders/1796277083022/acknowledge",
            "POST /walmart/v3/token",
        ]
    );
    // Stores are polled side by side: in either order.
    let mut accepted = marketplaces.acceptances();
    accepted.sort_by(|a, b| a.order_id.cmp(&b.order_id));
    assert_eq!(
        accepted,
        [
            Acceptance { order_id: "1796277083022".into(), sku: String::new() },
            Acceptance { order_id: "4600001".into(), sku: "PHONE-X".into() },
            Acceptance { order_id: "FFB7A681BE".into(), sku: "TENT-2P".into() },
        ]
    );
    drain(&runner).await;

    let auth = format!("{}:{}", demo.retailer_user.key, demo.retailer_user.password);
    for market in &demo.marketplaces {
        let name = market.marketplace.name();
        let po = table
            .purchase_order_by_number(demo.retailer.id, &market.purchase_order_number)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{name}: the poller made {}", market.purchase_order_number));
        let ordered: Vec<(&str, u32)> = po.items.iter().map(|item| (item.sku.as_str(), item.quantity)).collect();
        let at_channel: Vec<(&str, u32)> =
            market.order.lines.iter().map(|line| (line.sku.as_str(), line.quantity)).collect();
        assert_eq!(ordered, at_channel, "{name}");

        let body = demo::marketplace_shipment(market, &po).to_string();
        let path = format!("/purchase_orders/{}/shipments.json", po.id);
        let (status, created) = send(port, request("POST", &path, Some(&auth), &[], &body)).await;
        assert_eq!(status, 201, "{name}: {created}");
        assert_eq!(created["shipment"]["export_state"], "waiting_for_movement", "{name}");
        drain(&runner).await;
        assert_eq!(calls_since(&marketplaces, &mut seen), ["POST /easypost/v2/trackers"], "{name}: one registration");
        let registered: Vec<String> =
            marketplaces.trackers().into_iter().map(|tracker| tracker.tracking_code).collect();
        assert!(registered.contains(&market.tracking_number.to_owned()), "{name}: {registered:?}");
        assert!(
            marketplaces.confirmations().iter().all(|sent| sent.marketplace != market.marketplace),
            "{name}: nothing confirmed before the parcel moves"
        );

        let scan = serde_json::json!({"id": format!("evt_{}", market.tracking_number), "object": "Event",
            "description": "tracker.updated", "result": {"object": "Tracker", "tracking_code": market.tracking_number,
            "status": "in_transit", "updated_at": chrono::Utc::now().to_rfc3339()}})
        .to_string();
        let signature = carrier_webhooks::providers::sign(
            carrier_webhooks::Provider::EasyPost,
            scan.as_bytes(),
            &market.tracking_webhook_secret,
            chrono::Utc::now().timestamp(),
        );
        let header = carrier_webhooks::providers::signature_header(carrier_webhooks::Provider::EasyPost);
        let url = format!("/carrier_webhooks/easypost/{}", market.store.id);
        let (status, answer) = send(port, request("POST", &url, None, &[(header, signature)], &scan)).await;
        assert_eq!(status, 200, "{name}: {answer}");
        drain(&runner).await;

        // What the export cost at the channel (a token where the channel wants one).
        let export_calls = match market.marketplace {
            Marketplace::Amazon => vec![
                "POST /amazon/auth/o2/token".to_owned(),
                format!("POST /amazon/orders/v0/orders/{}/shipmentConfirmation", market.order.id),
            ],
            Marketplace::Ebay => vec![
                "POST /ebay/identity/v1/oauth2/token".to_owned(),
                format!("POST /ebay/sell/fulfillment/v1/order/{}/shipping_fulfillment", market.order.id),
            ],
            Marketplace::BackMarket => vec![
                format!("GET /backmarket/ws/orders/{}", market.order.id),
                format!("POST /backmarket/ws/orders/{}", market.order.id),
            ],
            Marketplace::Walmart => vec![
                format!("GET /walmart/v3/orders/{}", market.order.id),
                format!("POST /walmart/v3/orders/{}/shipping", market.order.id),
                "POST /walmart/v3/token".to_owned(),
            ],
            Marketplace::WooCommerce => vec![
                format!("GET /woocommerce/wp-json/wc/v3/orders/{}/fulfillments", market.order.id),
                format!("POST /woocommerce/wp-json/wc/v3/orders/{}/fulfillments", market.order.id),
            ],
            Marketplace::Groupon => vec!["POST /groupon/tracking_notification".to_owned()],
            Marketplace::Wish => vec![format!("PUT /wish/api/v3/orders/{}/tracking", market.order.id)],
            // Not polled: its orders are posted (its own test below).
            Marketplace::Custom => Vec::new(),
        };
        assert_eq!(calls_since(&marketplaces, &mut seen), export_calls, "{name}");
        let confirmed: Vec<_> =
            marketplaces.confirmations().into_iter().filter(|sent| sent.marketplace == market.marketplace).collect();
        let [sent] = confirmed.as_slice() else { panic!("{name}: one confirmation: {confirmed:?}") };
        assert_eq!(
            (sent.order_id.as_str(), sent.tracking_number.as_str()),
            (market.order.id.as_str(), market.tracking_number)
        );
        let lines: Vec<(String, u32)> =
            market.order.lines.iter().map(|line| (line.id.clone(), line.quantity)).collect();
        assert_eq!(sent.lines, lines, "{name}");
        match market.marketplace {
            Marketplace::Amazon => assert_eq!(sent.body["packageDetail"]["carrierCode"], "UPS"),
            Marketplace::Ebay => assert_eq!(sent.body["shippingCarrierCode"], "USPS"),
            Marketplace::BackMarket => {
                assert_eq!(sent.body["imei"], "356938035643809");
                assert_eq!(sent.body["shipper"], "DHL Express");
            }
            Marketplace::Walmart => {
                let status = &sent.body["orderShipment"]["orderLines"]["orderLine"][0]["orderLineStatuses"]["orderLineStatus"]
                    [0];
                assert_eq!(status["trackingInfo"]["carrierName"], serde_json::json!({"carrier": "USPS"}));
            }
            Marketplace::WooCommerce => {
                let meta = &sent.body["meta_data"];
                assert_eq!(meta[0], serde_json::json!({"key": "_items", "value": [{"item_id": 31, "qty": 2}]}));
                assert_eq!(meta[2], serde_json::json!({"key": "_shipment_provider", "value": "UPS"}));
            }
            Marketplace::Groupon => {
                assert_eq!(sent.carrier, "ups", "Groupon's own code for UPS");
            }
            Marketplace::Wish => {
                assert_eq!(sent.body["shipping_provider"], "UPS");
                assert_eq!(sent.body["origin_country"], "US", "the store's origin_country");
            }
            Marketplace::Custom => {}
        }
        let shipment = created["shipment"]["id"].as_u64().expect("an id");
        let (status, read) =
            send(port, request("GET", &format!("/shipments/{shipment}.json"), Some(&auth), &[], "")).await;
        assert_eq!(status, 200);
        assert_eq!(
            (read["shipment"]["export_state"].clone(), read["shipment"]["tracking_status"].clone()),
            (serde_json::json!("exported"), serde_json::json!("in_transit")),
            "{name}"
        );
    }

    // The next poll (ten minutes on) reads each order back with its shipment at the channel:
    // shipsync's own, so no new shipment, no problem, nothing sent again.
    let later = chrono::Utc::now() + chrono::Duration::minutes(11);
    let poller = poller.with_clock(std::sync::Arc::new(move || later));
    let polled = poller.tick().await.expect("a tick");
    // Groupon lists only lines not yet taken: its order is not read back.
    assert_eq!((polled.orders_queued, polled.failures.clone()), (6, vec![]), "read back: {polled:?}");
    drain(&runner).await;
    // Tokens still good; eBay's shipped order has its fulfillments read.
    assert_eq!(
        calls_since(&marketplaces, &mut seen),
        [
            "GET /amazon/orders/2026-01-01/orders",
            "GET /backmarket/ws/orders",
            "GET /ebay/sell/fulfillment/v1/order",
            "GET /ebay/sell/fulfillment/v1/order/12-04000-00001/shipping_fulfillment",
            "GET /groupon/get_orders",
            "GET /walmart/v3/orders",
            "GET /wish/api/v3/orders",
            "GET /woocommerce/wp-json/wc/v3/orders",
            "GET /woocommerce/wp-json/wc/v3/orders/7301/fulfillments",
        ]
    );
    for market in &demo.marketplaces {
        let po = table
            .purchase_order_by_number(demo.retailer.id, &market.purchase_order_number)
            .await
            .expect("read")
            .expect("a purchase order");
        let shipments = table.shipments_of_purchase_order(po.id).await.expect("read");
        assert_eq!(shipments.len(), 1, "{}: {shipments:?}", market.marketplace.name());
    }
    let (status, health) = send(port, request("GET", "/order_health.json", Some(&auth), &[], "")).await;
    assert_eq!(status, 200);
    assert_eq!(health["problems"], serde_json::json!([]), "{health}");
    assert_eq!(marketplaces.confirmations().len(), 7);
    server.abort();
}

/// The README's custom-channel walk: the demo's UntilGone store takes `tools/demo/custom_order.json`
/// posted over the socket and signed as `scripts/send-custom-webhook` signs it; the order becomes
/// a purchase order; a shipment on it goes (tracking assigned, no delay) to the fake receiver as one
/// signed POST, which the receiver checks; the same request again is taken as the one it has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_channels_order_comes_by_webhook_and_its_shipment_goes_to_its_receiver() {
    use shipsync_tools::fake_marketplaces::Marketplace;

    let aws = fresh_aws().await;
    let table = aws.table.clone();
    let shopify =
        demo::fake_shopify(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")).expect("fake Shopify");
    let marketplaces = demo::fake_marketplaces(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        .expect("fake marketplaces");
    let demo = demo::seed(&table, shopify.url(), &marketplaces).await.expect("demo data");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let apps = LocalApps {
        api: ShipmentsApi::build(&aws.api_config(), &aws.sdk).allowing_store_base_url(),
        webhooks: ShopifyWebhooks::build(&aws.intake_config(), &aws.sdk),
        carrier_webhooks: carrier_webhooks::CarrierWebhooks::build(&aws.intake_config(), &aws.sdk),
    };
    let server = tokio::spawn(local_server::serve(listener, apps));
    let exporter = Exporter::build(&aws.exporter_config(), &aws.sdk)
        .expect("exporter")
        .with_endpoints(ChannelEndpoints::honouring_store_overrides());
    let runner =
        Runner::new(aws.clone(), exporter, order_processor::OrderProcessor::build(&aws.processor_config(), &aws.sdk));

    let path = format!("{}/../tools/demo/custom_order.json", env!("CARGO_MANIFEST_DIR"));
    let order = std::fs::read_to_string(path).expect("the demo's order");
    let signature = shopify_webhooks::sign(order.as_bytes(), &demo.custom.webhook_secret);
    let url = format!("/webhooks/custom/{}", demo.custom.store.id);
    let headers = [("X-Shipsync-Hmac-Sha256", signature), ("X-Shipsync-Delivery-Id", "local-1".to_owned())];
    let (status, answer) = send(port, request("POST", &url, None, &headers, &order)).await;
    assert_eq!((status, answer), (200, serde_json::json!({"status": "queued"})));
    let forged = [("X-Shipsync-Hmac-Sha256", "Zm9yZ2Vk".to_owned()), ("X-Shipsync-Delivery-Id", "x".to_owned())];
    let (status, _) = send(port, request("POST", &url, None, &forged, &order)).await;
    assert_eq!(status, 401, "a forged signature is refused");
    drain(&runner).await;
    let po = table
        .purchase_order_by_number(demo.retailer.id, &demo.custom.purchase_order_number)
        .await
        .expect("read")
        .expect("the posted order made a purchase order");
    assert_eq!(po.customer_name, "Grace Hopper");

    let auth = format!("{}:{}", demo.retailer_user.key, demo.retailer_user.password);
    let body = serde_json::json!({"shipment": {"shipper_name": "UPS",
        "shipment_items_attributes": [{"order_item_id": po.items[0].id, "quantity": 1}],
        "shipment_trackings_attributes": [{"tracking": "1Z999AA10000007001"}]}})
    .to_string();
    let path = format!("/purchase_orders/{}/shipments.json", po.id);
    let (status, created) = send(port, request("POST", &path, Some(&auth), &[], &body)).await;
    assert_eq!(status, 201, "{created}");
    drain(&runner).await;
    let received: Vec<_> =
        marketplaces.confirmations().into_iter().filter(|sent| sent.marketplace == Marketplace::Custom).collect();
    let [sent] = received.as_slice() else { panic!("one shipment received: {received:?}") };
    assert_eq!((sent.order_id.as_str(), sent.tracking_number.as_str()), ("UG-7001", "1Z999AA10000007001"));
    assert_eq!(sent.lines, [("UG-7001-1".to_owned(), 1)]);
    let id = created["shipment"]["id"].as_u64().expect("an id");
    assert_eq!(sent.reference, shipsync_channels::idempotency_key(id));
    let (_, read) = send(port, request("GET", &format!("/shipments/{id}.json"), Some(&auth), &[], "")).await;
    assert_eq!(read["shipment"]["export_state"], "exported", "{read}");
    assert_eq!(read["shipment"]["exported_channel_ids"], serde_json::json!([sent.body["received_as"]]));

    // The README's label walk: a packing slip as HTML, rendered by the local stack's renderer
    // (Debian's Chromium), then downloaded through its link.
    let slip = serde_json::json!({"label": {"format": "html", "html": "<h1>Packing slip UG-7001</h1>"}}).to_string();
    let labels = format!("/purchase_orders/{}/labels.json", po.id);
    let (status, attached) = send(port, request("POST", &labels, Some(&auth), &[], &slip)).await;
    assert_eq!((status, attached["label"]["state"].clone()), (201, serde_json::json!("rendering")), "{attached}");
    for _ in 0..20 {
        if runner.deliver_renders().await.expect("render queue") == 0 {
            break;
        }
    }
    let (_, listed) = send(port, request("GET", &labels, Some(&auth), &[], "")).await;
    assert_eq!(listed["labels"][0]["state"], "ready", "{listed}");
    let link = listed["labels"][0]["download_url"].as_str().expect("a link");
    let http = shipsync_channels::http_client(std::time::Duration::from_secs(5)).expect("client");
    let pdf = http.get(link).send().await.expect("download").bytes().await.expect("body");
    assert!(pdf.starts_with(b"%PDF-"), "the slip as PDF");
    server.abort();
}

/// Every fake marketplace throttles in its channel's own shape, and each client reads the wait
/// it asks for: the demo store's first call after `throttle_next` is a retryable error with a
/// wait of about a second, and the call after it lists the store's order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_fake_marketplace_throttles_as_its_channel_does_and_its_client_waits_as_asked() {
    use shipsync_channels::{ChannelError, Channels};
    use shipsync_tools::fake_marketplaces::Marketplace;

    let aws = fresh_aws().await;
    let table = aws.table.clone();
    let shopify =
        demo::fake_shopify(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind")).expect("fake Shopify");
    let marketplaces = demo::fake_marketplaces(tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        .expect("fake marketplaces");
    let demo = demo::seed(&table, shopify.url(), &marketplaces).await.expect("demo data");
    let http = shipsync_channels::http_client(std::time::Duration::from_secs(5)).expect("client");
    let channels = Channels::new(http, ChannelEndpoints::honouring_store_overrides());
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    let mut throttled = Vec::new();
    for market in demo.marketplaces.iter().filter(|market| market.marketplace != Marketplace::Custom) {
        let name = market.marketplace.name();
        let mut credentials = table.credentials(demo.retailer.id, market.store.id).await.expect("credentials");
        if market.store.channel.shares_renewed_token() {
            credentials = channels.renew_credentials(&market.store, &credentials).await.expect("a Wish token");
        }
        let channel = channels.connect(&market.store, &credentials).expect("connected");
        marketplaces.throttle_next(market.marketplace, 1);
        match channel.orders_since(since, None).await {
            Err(ChannelError::Retryable { retry_after: Some(wait), message }) => {
                assert!(wait <= std::time::Duration::from_secs(2), "{name}: waits {wait:?} ({message})");
                throttled.push(name);
            }
            other => panic!("{name}: a throttled call is retried after the wait it asks for: {other:?}"),
        }
        let page = channel.orders_since(since, None).await.unwrap_or_else(|error| panic!("{name}: {error}"));
        assert!(page.orders.iter().any(|order| order.channel_order_id.as_str() == market.order.id), "{name}: {page:?}");
    }
    assert_eq!(throttled.len(), 7, "{throttled:?}");
}
