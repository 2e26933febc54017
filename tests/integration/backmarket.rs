//! Back Market against a wiremock: a smartphone's confirmation waits up to an hour for its IMEI,
//! goes out as soon as an edit adds it, and without it is listed in order health instead of sent;
//! the order line is validated (state 2) before it is shipped (state 3) with the IMEI.

use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipsync_domain::export::{CarrierMapping, ExportSettings, ShipConfirmation};
use shipsync_domain::ids::CarrierId;
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::harness::{TestApp, shipment_body};

const IMEI: &str = "356938035643809";

/// The Back Market store registers its numbers with EasyPost (a wiremock) and hears their scans.
async fn tracked_by_easypost(app: &TestApp, easypost: &MockServer, store_id: shipsync_domain::ids::StoreId) {
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "trk_bm", "object": "Tracker"})))
        .mount(easypost)
        .await;
    let mut store = app.table.channel_store(app.retailer.id, store_id).await.expect("read").expect("store");
    store.tracking.provider = Some(shipsync_domain::tracking::TrackingProvider::Easypost);
    store.connection.tracking_base_url = Some(easypost.uri());
    let credentials = shipsync_domain::secrets::ChannelCredentials(
        [("api_token", "bm-token"), ("tracking_api_key", "ep-key"), ("tracking_webhook_secret", "ep-secret")]
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .into(),
    );
    shipsync_channels::validate_store_settings(&store, &credentials).expect("settings a retailer could save");
    app.table.save_channel_store(&store).await.expect("store");
    app.table.save_credentials(app.retailer.id, store_id, &credentials).await.expect("credentials");
}

async fn back_market_app(server: &MockServer, line_state: u64) -> (TestApp, PurchaseOrder) {
    back_market_app_confirming(server, line_state, Some(ShipConfirmation::TrackingAssigned)).await
}

async fn back_market_app_confirming(
    server: &MockServer,
    line_state: u64,
    confirmation: Option<ShipConfirmation>,
) -> (TestApp, PurchaseOrder) {
    let app = TestApp::new().await;
    let settings = ExportSettings {
        ship_confirmation: confirmation,
        carrier_mappings: vec![CarrierMapping {
            shipper_id: CarrierId::new_unchecked(1),
            channel_carrier: "UPS".into(),
            tracking_url_template: Some("https://www.ups.com/track?tracknum={tracking}".into()),
        }],
        ..ExportSettings::default()
    };
    let connection = ChannelConnection { base_url: Some(server.uri()), ..ChannelConnection::default() };
    let credentials = [("api_token", "bm-token")];
    let po = app
        .channel_order(
            ChannelKind::BackMarket,
            settings,
            connection,
            &credentials,
            "4567890",
            ("IPHONE-13-128", 1, "987"),
        )
        .await;
    Mock::given(method("GET"))
        .and(path("/ws/orders/4567890"))
        .and(header("authorization", "Basic bm-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order_id": 4567890, "state": 1,
            "orderlines": [{"id": 987, "listing": "IPHONE-13-128", "state": line_state, "quantity": 1}]})))
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/ws/orders/4567890"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(server)
        .await;
    (app, po)
}

async fn posts(server: &MockServer) -> Vec<Value> {
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    requests
        .iter()
        .filter(|r| r.method.as_str() == "POST")
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect()
}

fn shipped(code_field: &str, code: &str) -> Value {
    let mut body = json!({"order_id": 4567890, "new_state": 3, "sku": "IPHONE-13-128", "tracking_number": "1ZBM1",
        "tracking_url": "https://www.ups.com/track?tracknum=1ZBM1", "shipper": "UPS"});
    body[code_field] = json!(code);
    body
}

#[tokio::test]
async fn the_confirmation_waits_for_the_imei_and_goes_out_when_it_is_added() {
    let server = MockServer::start().await;
    let (app, po) = back_market_app(&server, 1).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZBM1"])).await;
    assert_eq!(shipment["export_due_at"], "2026-03-02T13:00:00.000Z", "an hour for the IMEI");
    app.advance(Duration::minutes(10));
    let item = &shipment["shipment_items_attributes"][0]["id"];
    let (status, json) = app
        .call(
            Method::PUT,
            &format!("/shipments/{}.json", shipment["id"]),
            Some(json!({"shipment": {"shipment_items_attributes": [{"id": item, "serial_codes": [IMEI]}]}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["shipment"]["export_due_at"], "2026-03-02T12:10:00.000Z", "released at once");
    app.run_exports().await;
    assert_eq!(
        posts(&server).await,
        [json!({"order_id": 4567890, "new_state": 2, "sku": "IPHONE-13-128"}), shipped("imei", IMEI)]
    );
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "exported");
}

#[tokio::test]
async fn without_its_imei_a_confirmation_is_listed_not_sent_until_the_imei_arrives() {
    let server = MockServer::start().await;
    let (app, po) = back_market_app(&server, 2).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZBM1"])).await;
    app.advance(Duration::minutes(60));
    app.run_exports().await;
    assert!(posts(&server).await.is_empty(), "nothing sent without the IMEI");
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["problems"][0]["kind"], "export_failed", "{health}");
    assert!(health["problems"][0]["reason"].as_str().is_some_and(|r| r.contains("IMEI of IPHONE-13-128")), "{health}");
    // A serial number is no IMEI: still not sent. The IMEI replacing it goes out; the line was
    // validated already.
    let item = &shipment["shipment_items_attributes"][0]["id"];
    for codes in [json!(["SN-ABC-1"]), json!([IMEI])] {
        let (status, json) = app
            .call(
                Method::PUT,
                &format!("/shipments/{}.json", shipment["id"]),
                Some(json!({"shipment": {"shipment_items_attributes": [{"id": item, "serial_codes": codes}]}})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{codes}: {json}");
        app.run_exports().await;
    }
    assert_eq!(posts(&server).await, [shipped("imei", IMEI)]);
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    assert_eq!(health["metadata"]["total_count"], 0);
}

#[tokio::test]
async fn on_movement_the_imei_must_be_there_by_the_first_scan_or_it_waits_listed() {
    let server = MockServer::start().await;
    // Back Market's default: confirm when the carrier reports movement.
    let (app, po) = back_market_app_confirming(&server, 2, None).await;
    // Scans come from the store's tracking provider, at its own webhook URL.
    let easypost = MockServer::start().await;
    tracked_by_easypost(&app, &easypost, po.store_id).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZBM1"])).await;
    assert_eq!(shipment["export_state"], "waiting_for_movement");
    app.run_exports().await;
    assert_eq!(easypost.received_requests().await.unwrap_or_default().len(), 1, "its number registered");
    // As the carrier webhook queues it: naming the store whose URL it came to.
    let scan = shipsync_domain::orders::ChannelEventMessage {
        retailer_id: Some(app.retailer.id),
        store_id: Some(po.store_id),
        source: "test scan".into(),
        event: shipsync_domain::orders::ChannelEvent::CarrierScanned {
            scan: shipsync_domain::tracking::CarrierScan {
                provider: "easypost".into(),
                event_id: "evt_bm".into(),
                tracking_number: shipsync_domain::tracking::TrackingNumber::parse("1ZBM1").expect("a tracking number"),
                status: shipsync_domain::tracking::TrackingStatus::InTransit,
                occurred_at: app.now(),
            },
        },
    };
    let body = serde_json::to_string(&scan).expect("json");
    app.aws.sqs.send_message().queue_url(&app.aws.order_queue_url).message_body(body).send().await.expect("send");
    app.run_orders().await;
    app.run_exports().await;
    assert!(posts(&server).await.is_empty(), "no confirmation without the IMEI");
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "export_failed");
    let item = &shipment["shipment_items_attributes"][0]["id"];
    app.call(
        Method::PUT,
        &format!("/shipments/{}.json", shipment["id"]),
        Some(json!({"shipment": {"shipment_items_attributes": [{"id": item, "serial_codes": [IMEI]}]}})),
    )
    .await;
    app.run_exports().await;
    assert_eq!(posts(&server).await, [shipped("imei", IMEI)]);
    let (_, state) = app.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(state["shipment"]["export_state"], "exported");
}
