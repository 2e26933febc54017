//! Tenant isolation, route by route. The routes come from the router's own table, so a route
//! added without an isolation case fails `every_route_keeps_other_tenants_and_vendors_out`.
//! Also: vendor users may not force exports, and a store that never confirms is not exported by
//! hand either.

use std::collections::BTreeSet;

use http::{Method, StatusCode};
use serde_json::{Value, json};
use shipments_api::ShipmentsApi;
use shipsync_domain::export::{ExportSettings, ExportState, ShipConfirmation};
use shipsync_domain::ids::ShipmentId;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind};
use shipsync_tools::provision::Credentials;

use crate::harness::{SHOPIFY_WEBHOOK_SECRET, TestApp, errors, shipment_body};

/// Text of the protected records that must never reach another tenant or vendor.
const SECRET_CUSTOMER: &str = "Secret Customer";
const SECRET_PO: &str = "PO-SECRET";
const SECRET_TRACKING: &str = "SECRETTRACK1";
const SECRET_INVOICE: &str = "SECRET-INVOICE";
const SECRET_SKU: &str = "SECRET-SKU";

/// What a caller should get from a route: the statuses allowed. Whatever the status, the body
/// never holds a protected id or text.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// 404: the record is as absent as one that does not exist.
    NotFound,
    /// 403: the caller's role may not use the route at all.
    Forbidden,
    /// 422: an id in the body is refused as not the caller's.
    Invalid,
    /// 200 or 201: the caller's own records only.
    OwnOnly,
}

impl Expect {
    fn allows(self, status: StatusCode) -> bool {
        match self {
            Expect::NotFound => status == StatusCode::NOT_FOUND,
            Expect::Forbidden => status == StatusCode::FORBIDDEN,
            Expect::Invalid => status == StatusCode::UNPROCESSABLE_ENTITY,
            Expect::OwnOnly => status == StatusCode::OK || status == StatusCode::CREATED,
        }
    }
}

/// One route's isolation case: the requests to send (a route may take several query variants)
/// and what each caller gets.
struct Case {
    method: Method,
    path: &'static str,
    uris: Vec<String>,
    body: Option<Value>,
    stranger: Expect,
    other_vendor: Expect,
}

/// Tenant A's records that the callers try to reach.
struct Protected {
    shipment: ShipmentId,
    purchase_order: u64,
    order_item: u64,
    return_id: u64,
    cancellation_id: u64,
    ids: BTreeSet<u64>,
    /// The subset a vendor user of tenant A (another vendor) must not see.
    vendor_ids: BTreeSet<u64>,
}

/// Every id-bearing query parameter, set to the protected tenant's and vendor's ids.
fn foreign_query(app: &TestApp) -> String {
    format!(
        "search[vendor_id]={v}&search[retailer_id]={r}&vendor_id={v}&retailer_id={r}&store_id={s}&include_shipment_purchase_order=1",
        v = app.other_vendor.id,
        r = app.retailer.id,
        s = app.shop.id,
    )
}

async fn protected_records(app: &TestApp) -> (Protected, u64) {
    let po = app.purchase_order(&app.other_vendor, SECRET_PO, SECRET_CUSTOMER, &[2]).await;
    let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &[SECRET_TRACKING]);
    body["shipment"]["vendor_invoice_reference"] = json!(SECRET_INVOICE);
    let shipment = app.create_shipment(&po, body).await;
    let shipment_id = ShipmentId::new_unchecked(shipment["id"].as_u64().expect("id"));
    // A failed export, so that failed exports and order health have something to leak.
    let mut stored = app.table.shipment(shipment_id).await.expect("read").expect("shipment");
    stored.export.state = ExportState::Failed { message: format!("{SECRET_CUSTOMER} refused"), failed_at: app.now() };
    stored.version += 1;
    app.table.update_shipment(&stored, None).await.expect("fail the export");
    let (status, json) = app
        .call(
            Method::POST,
            "/products.json",
            Some(json!({"product": {"sku": SECRET_SKU, "vendor_id": app.other_vendor.id.get(), "name": SECRET_SKU}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    let order_id = order_with_unknown_sku(app).await;
    let (status, opened) = app
        .call(
            Method::POST,
            &format!("/purchase_orders/{}/returns.json", po.id),
            Some(json!({"return": {"items": [{"order_item_id": po.items[0].id.get(), "quantity": 1}],
                "reason": format!("{SECRET_CUSTOMER} changed her mind")}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let return_id = opened["return"]["id"].as_u64().expect("a return id");
    let (status, cancelled) = app
        .call(
            Method::POST,
            &format!("/purchase_orders/{}/cancellations.json", po.id),
            Some(json!({"cancellation": {"items": [{"order_item_id": po.items[0].id.get(), "quantity": 1}],
                "reason": "fraud", "note": format!("{SECRET_CUSTOMER} is a fraud")}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cancelled}");
    let cancellation_id = cancelled["cancellation"]["id"].as_u64().expect("a cancellation id");
    let ids = BTreeSet::from([
        app.retailer.id.get(),
        app.vendor.id.get(),
        app.other_vendor.id.get(),
        app.shop.id.get(),
        po.id.get(),
        po.items[0].id.get(),
        shipment_id.get(),
        order_id,
        return_id,
        cancellation_id,
    ]);
    let vendor_ids = BTreeSet::from([
        app.other_vendor.id.get(),
        po.id.get(),
        po.items[0].id.get(),
        shipment_id.get(),
        return_id,
        cancellation_id,
    ]);
    let protected = Protected {
        shipment: shipment_id,
        purchase_order: po.id.get(),
        order_item: po.items[0].id.get(),
        return_id,
        cancellation_id,
        ids,
        vendor_ids,
    };
    (protected, order_id)
}

/// A Shopify order whose SKUs tenant A does not know: an order record and an order health problem.
async fn order_with_unknown_sku(app: &TestApp) -> u64 {
    let path = format!("{}/fixtures/shopify/orders_create.json", env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read_to_string(path).expect("fixture");
    let signature = shopify_webhooks::sign(body.as_bytes(), SHOPIFY_WEBHOOK_SECRET);
    let request = http::Request::builder()
        .method(Method::POST)
        .uri(format!("/webhooks/shopify/{}", app.shop.id))
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-webhook-id", "isolation-order")
        .header("x-shopify-shop-domain", "test-shop.myshopify.com")
        .header("x-shopify-hmac-sha256", signature)
        .body(bytes::Bytes::from(body))
        .expect("request");
    let response = app.webhooks.handle(request).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.body());
    app.run_orders().await;
    let (_, health) = app.call(Method::GET, "/order_health.json", None).await;
    health["problems"]
        .as_array()
        .and_then(|problems| problems.iter().find_map(|p| p["order_id"].as_u64()))
        .unwrap_or_else(|| panic!("an order problem: {health}"))
}

/// Every number under a key that names a record's id (`id`, `vendor_id`, ...), anywhere in a
/// body. Carrier ids (`shipper_id`) are shared by every retailer, so they are not records.
fn ids_in(value: &Value, found: &mut BTreeSet<u64>) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields {
                if (key == "id" || key.ends_with("_id"))
                    && key != "shipper_id"
                    && let Some(id) = field.as_u64().or_else(|| field.as_str().and_then(|s| s.parse().ok()))
                {
                    found.insert(id);
                }
                ids_in(field, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| ids_in(item, found)),
        _ => {}
    }
}

fn cases(app: &TestApp, protected: &Protected, order_id: u64) -> Vec<Case> {
    let query = foreign_query(app);
    let shipment = protected.shipment;
    let po = protected.purchase_order;
    let return_id = protected.return_id;
    let cancellation = protected.cancellation_id;
    let update = json!({"shipment": {"vendor_invoice_reference": "X", "export": true}});
    // ZPL, base64: "^XA^FDX^FS^XZ".
    let label = json!({"label": {"format": "zpl", "content": "XlhBXkZEWF5GU15YWg==", "tracking": SECRET_TRACKING}});
    let list = |path: &str| {
        vec![
            path.to_owned(),
            format!("{path}?{query}"),
            format!("{path}?search[purchase_order_number]={SECRET_PO}&include_shipment_purchase_order=1"),
            format!("{path}?search[customer_name]=Secret&search[tracking]={SECRET_TRACKING}"),
            format!(
                "{path}?search[vendor_invoice_reference]={SECRET_INVOICE}&search[vendor_id]={}",
                app.other_vendor.id
            ),
        ]
    };
    use Expect::{Forbidden, Invalid, NotFound, OwnOnly};
    let case = |method: Method, path: &'static str, uris: Vec<String>, body: Option<Value>, stranger, other_vendor| {
        Case { method, path, uris, body, stranger, other_vendor }
    };
    vec![
        case(
            Method::POST,
            "/purchase_orders/{id}/shipments.json",
            vec![format!("/purchase_orders/{po}/shipments.json?{query}")],
            Some(shipment_body(&[(protected.order_item, 1)], &["T-1"])),
            NotFound,
            NotFound,
        ),
        case(Method::GET, "/purchase_orders.json", list("/purchase_orders.json"), None, OwnOnly, OwnOnly),
        case(
            Method::GET,
            "/purchase_orders/{id}.json",
            vec![format!("/purchase_orders/{po}.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(Method::GET, "/shipments.json", list("/shipments.json"), None, OwnOnly, OwnOnly),
        case(
            Method::GET,
            "/shipments/{id}.json",
            vec![format!("/shipments/{shipment}.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::PUT,
            "/shipments/{id}.json",
            vec![format!("/shipments/{shipment}.json?{query}")],
            Some(update.clone()),
            NotFound,
            NotFound,
        ),
        case(
            Method::PATCH,
            "/shipments/{id}.json",
            vec![format!("/shipments/{shipment}.json?{query}")],
            Some(update),
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/shipments/{id}/export.json",
            vec![format!("/shipments/{shipment}/export.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/stores.json",
            vec![format!("/stores.json?{query}")],
            Some(
                json!({"store": {"name": "Mine", "channel": "shopify", "shop_domain": "mine.myshopify.com", "retailer_id": app.retailer.id.get(), "id": app.shop.id.get()}}),
            ),
            OwnOnly,
            Forbidden,
        ),
        case(Method::GET, "/stores.json", list("/stores.json"), None, OwnOnly, Forbidden),
        case(
            Method::GET,
            "/stores/{id}.json",
            vec![format!("/stores/{}.json?{query}", app.shop.id)],
            None,
            NotFound,
            Forbidden,
        ),
        case(
            Method::PUT,
            "/stores/{id}.json",
            vec![format!("/stores/{}.json?{query}", app.shop.id)],
            Some(json!({"store": {"name": "Taken"}})),
            NotFound,
            Forbidden,
        ),
        case(
            Method::PATCH,
            "/stores/{id}.json",
            vec![format!("/stores/{}.json?{query}", app.shop.id)],
            Some(json!({"store": {"name": "Taken"}})),
            NotFound,
            Forbidden,
        ),
        case(Method::GET, "/vendors.json", list("/vendors.json"), None, OwnOnly, Forbidden),
        case(
            Method::PUT,
            "/vendors/{id}.json",
            vec![format!("/vendors/{}.json?{query}", app.other_vendor.id)],
            Some(json!({"vendor": {"notify_customer": false}})),
            NotFound,
            Forbidden,
        ),
        case(
            Method::PATCH,
            "/vendors/{id}.json",
            vec![format!("/vendors/{}.json?{query}", app.other_vendor.id)],
            Some(json!({"vendor": {"notify_customer": false}})),
            NotFound,
            Forbidden,
        ),
        case(Method::GET, "/exports/failed.json", list("/exports/failed.json"), None, OwnOnly, Forbidden),
        case(
            Method::POST,
            "/products.json",
            vec![format!("/products.json?{query}")],
            Some(json!({"product": {"sku": "MINE-1", "vendor_id": app.other_vendor.id.get()}})),
            Invalid,
            Forbidden,
        ),
        case(Method::GET, "/products.json", list("/products.json"), None, OwnOnly, Forbidden),
        case(Method::GET, "/order_health.json", list("/order_health.json"), None, OwnOnly, Forbidden),
        case(
            Method::POST,
            "/orders/{id}/reprocess.json",
            vec![format!("/orders/{order_id}/reprocess.json?{query}")],
            None,
            NotFound,
            Forbidden,
        ),
        case(
            Method::POST,
            "/purchase_orders/{id}/labels.json",
            vec![format!("/purchase_orders/{po}/labels.json?{query}")],
            Some(label.clone()),
            NotFound,
            NotFound,
        ),
        case(
            Method::GET,
            "/purchase_orders/{id}/labels.json",
            vec![format!("/purchase_orders/{po}/labels.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/shipments/{id}/labels.json",
            vec![format!("/shipments/{shipment}/labels.json?{query}")],
            Some(label),
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/purchase_orders/{id}/returns.json",
            vec![format!("/purchase_orders/{po}/returns.json?{query}")],
            Some(json!({"return": {"items": [{"order_item_id": protected.order_item, "quantity": 1}], "reason": "x"}})),
            NotFound,
            NotFound,
        ),
        case(Method::GET, "/returns.json", list("/returns.json"), None, OwnOnly, OwnOnly),
        case(
            Method::GET,
            "/returns/{id}.json",
            vec![format!("/returns/{return_id}.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::PUT,
            "/returns/{id}.json",
            vec![format!("/returns/{return_id}.json?{query}")],
            Some(json!({"return": {"state": "closed"}})),
            NotFound,
            NotFound,
        ),
        case(
            Method::PATCH,
            "/returns/{id}.json",
            vec![format!("/returns/{return_id}.json?{query}")],
            Some(json!({"return": {"state": "closed"}})),
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/purchase_orders/{id}/email.json",
            vec![format!("/purchase_orders/{po}/email.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::GET,
            "/shipments/{id}/events.json",
            vec![format!("/shipments/{shipment}/events.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::GET,
            "/shipments/{id}/labels.json",
            vec![format!("/shipments/{shipment}/labels.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/purchase_orders/{id}/cancellations.json",
            vec![format!("/purchase_orders/{po}/cancellations.json?{query}")],
            Some(json!({"cancellation": {"items": [{"order_item_id": protected.order_item, "quantity": 1}],
                "reason": "other"}})),
            NotFound,
            NotFound,
        ),
        case(
            Method::GET,
            "/purchase_orders/{id}/cancellations.json",
            vec![format!("/purchase_orders/{po}/cancellations.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::GET,
            "/cancellations/{id}.json",
            vec![format!("/cancellations/{cancellation}.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/cancellations/{id}/approve.json",
            vec![format!("/cancellations/{cancellation}/approve.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/cancellations/{id}/decline.json",
            vec![format!("/cancellations/{cancellation}/decline.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
        case(
            Method::POST,
            "/cancellations/{id}/push.json",
            vec![format!("/cancellations/{cancellation}/push.json?{query}")],
            None,
            NotFound,
            NotFound,
        ),
    ]
}

#[tokio::test]
async fn every_route_keeps_other_tenants_and_vendors_out() {
    let app = TestApp::new().await;
    let stranger = app.another_tenant().await;
    let (protected, order_id) = protected_records(&app).await;
    // Each caller has records of its own, so that its lists are not trivially empty.
    let theirs = stranger.purchase_order(&stranger.vendor, "PO-THEIRS", "Stranger Customer", &[1]).await;
    stranger.create_shipment(&theirs, shipment_body(&[(theirs.items[0].id.get(), 1)], &["OWN-1"])).await;
    let own = app.purchase_order(&app.vendor, "PO-OWN", "Own Customer", &[1]).await;
    app.create_shipment(&own, shipment_body(&[(own.items[0].id.get(), 1)], &["OWN-2"])).await;
    let before = app.table.shipment(protected.shipment).await.expect("read").expect("shipment");

    let cases = cases(&app, &protected, order_id);
    for case in &cases {
        assert!(
            ShipmentsApi::routes().iter().any(|route| route.method == case.method && route.path == case.path),
            "isolation case for {} {} names no route",
            case.method,
            case.path
        );
    }
    type Caller<'a> = (&'a str, &'a Credentials, &'a BTreeSet<u64>, fn(&Case) -> Expect);
    let callers: [Caller; 2] = [
        ("a retailer user of another tenant", &stranger.retailer_user, &protected.ids, |case| case.stranger),
        ("a vendor user of another vendor", &app.vendor_user, &protected.vendor_ids, |case| case.other_vendor),
    ];
    let secrets = [SECRET_CUSTOMER, SECRET_PO, SECRET_TRACKING, SECRET_INVOICE, SECRET_SKU];
    for route in ShipmentsApi::routes() {
        let case = cases
            .iter()
            .find(|case| case.method == route.method && case.path == route.path)
            .unwrap_or_else(|| panic!("{} {} has no isolation case: add one here", route.method, route.path));
        for (who, user, forbidden_ids, expected) in callers {
            let expect = expected(case);
            for uri in &case.uris {
                let (status, json) = app.call_as(Some(user), case.method.clone(), uri, case.body.clone()).await;
                let context = format!("{who}: {} {uri} answered {status}: {json}", case.method);
                assert!(expect.allows(status), "expected {expect:?}; {context}");
                let text = json.to_string();
                for secret in secrets {
                    assert!(!text.contains(secret), "{secret} leaked; {context}");
                }
                let mut ids = BTreeSet::new();
                ids_in(&json, &mut ids);
                let leaked: Vec<&u64> = ids.intersection(forbidden_ids).collect();
                assert!(leaked.is_empty(), "ids {leaked:?} leaked; {context}");
            }
        }
    }

    // Nothing the callers sent changed tenant A's records.
    let after = app.table.shipment(protected.shipment).await.expect("read").expect("shipment");
    assert_eq!(after, before);
    let shop = app.table.channel_store(app.retailer.id, app.shop.id).await.expect("read").expect("store");
    assert_eq!(shop.name, app.shop.name);
    let vendor = app.table.vendor(app.retailer.id, app.other_vendor.id).await.expect("read").expect("vendor");
    assert_eq!(vendor.notify_customer, app.other_vendor.notify_customer);
}

/// The reported leak, on its own: a retailer of another tenant searching by a vendor id of A.
#[tokio::test]
async fn a_search_by_another_tenants_vendor_finds_nothing() {
    let app = TestApp::new().await;
    let stranger = app.another_tenant().await;
    let po = app.purchase_order(&app.vendor, "PO-1", SECRET_CUSTOMER, &[1]).await;
    app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["T-1"])).await;
    for query in [
        format!("search[vendor_id]={}&include_shipment_purchase_order=1", app.vendor.id),
        format!("search[vendor_id]={}&search[retailer_id]={}", app.vendor.id, stranger.retailer.id),
        format!("search[vendor_id]={}&search[created_at_min]=2020-01-01", app.vendor.id),
    ] {
        let (status, json) =
            app.call_as(Some(&stranger.retailer_user), Method::GET, &format!("/shipments.json?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(json["metadata"]["total_count"], 0, "{query}: {json}");
        assert!(!json.to_string().contains(SECRET_CUSTOMER));
    }
    // The owner still finds it by the same search.
    let (_, json) = app.call(Method::GET, &format!("/shipments.json?search[vendor_id]={}", app.vendor.id), None).await;
    assert_eq!(json["metadata"]["total_count"], 1, "{json}");
}

#[tokio::test]
async fn vendor_users_may_not_force_exports_or_set_export_fields() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-V", "Vendor Customer", &[3]).await;
    let item = po.items[0].id.get();
    let vendor = Some(&app.vendor_user);
    let create = format!("/purchase_orders/{}/shipments.json", po.id);
    for (field, value) in [("export", true), ("notify_customer", false)] {
        let mut body = shipment_body(&[(item, 1)], &["V-1"]);
        body["shipment"][field] = json!(value);
        let (status, json) = app.call_as(vendor, Method::POST, &create, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
        assert_eq!(errors(&json), [format!("{field} may be set by retailer users only")]);
    }
    let (status, created) =
        app.call_as(vendor, Method::POST, &create, Some(shipment_body(&[(item, 1)], &["V-1"]))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let shipment = &created["shipment"];
    let uri = format!("/shipments/{}.json", shipment["id"]);
    let (status, json) =
        app.call_as(vendor, Method::PUT, &uri, Some(json!({"shipment": {"notify_customer": true}}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert!(errors(&json)[0].starts_with("notify_customer"), "{json}");
    // Sending back what it read is not setting anything.
    let echoed = json!({"shipment": {"export": shipment["export"], "notify_customer": shipment["notify_customer"], "vendor_invoice_reference": "INV-1"}});
    let (status, json) = app.call_as(vendor, Method::PUT, &uri, Some(echoed)).await;
    assert_eq!(status, StatusCode::OK, "{json}");

    let export = format!("/shipments/{}/export.json", shipment["id"]);
    let (status, json) = app.call_as(vendor, Method::POST, &export, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{json}");
    assert!(errors(&json)[0].starts_with("export"), "{json}");
    let (status, json) = app.call(Method::POST, &export, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "the retailer may: {json}");
}

#[tokio::test]
async fn a_manual_export_to_a_store_that_never_confirms_answers_422() {
    let app = TestApp::new().await;
    let settings = ExportSettings { ship_confirmation: Some(ShipConfirmation::Never), ..ExportSettings::default() };
    let connection = ChannelConnection { marketplace_id: Some("ATVPDKIKX0DER".into()), ..ChannelConnection::default() };
    let po = app
        .channel_order(ChannelKind::Amazon, settings, connection, &[], "113-0000000-0000000", ("AMZ-1", 1, "1"))
        .await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1Z999"])).await;
    let uri = format!("/shipments/{}/export.json", shipment["id"]);
    let (status, json) = app.call(Method::POST, &uri, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert!(errors(&json)[0].contains("never"), "{json}");
    let stored = app.table.shipment(ShipmentId::new_unchecked(shipment["id"].as_u64().expect("id"))).await;
    assert_eq!(stored.expect("read").expect("shipment").export.state, ExportState::NotSent);
    assert_eq!(app.run_exports().await, 0, "nothing was queued");
}

/// Records written before the vendor listing keys held the retailer are re-keyed once by
/// `shipsync-admin rekey-vendor-listings`; until then they are missing from vendor listings.
#[tokio::test]
async fn old_vendor_listing_keys_are_rekeyed_once() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "PO-OLD", "Old Customer", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["OLD-1"])).await;
    let old_style = [
        (format!("PO#{}", po.id), "PO", format!("VENDOR#{}#POS", app.vendor.id)),
        (format!("SHIPMENT#{}", shipment["id"]), "SHIPMENT", format!("VENDOR#{}#SHIPMENTS", app.vendor.id)),
    ];
    for (pk, sk, listing) in &old_style {
        app.table
            .client()
            .update_item()
            .table_name(app.table.table_name())
            .key("pk", AttributeValue::S(pk.clone()))
            .key("sk", AttributeValue::S((*sk).to_owned()))
            .update_expression("SET gsi2pk = :old")
            .expression_attribute_values(":old", AttributeValue::S(listing.clone()))
            .send()
            .await
            .expect("write an old-style key");
    }
    let vendor = Some(&app.vendor_user);
    let counts = || async {
        let (_, shipments) = app.call_as(vendor, Method::GET, "/shipments.json", None).await;
        let (_, orders) = app.call_as(vendor, Method::GET, "/purchase_orders.json", None).await;
        (shipments["metadata"]["total_count"].clone(), orders["metadata"]["total_count"].clone())
    };
    assert_eq!(counts().await, (json!(0), json!(0)), "old keys are not listed");
    assert_eq!(app.table.rekey_vendor_listings().await.expect("rekey"), 2);
    assert_eq!(counts().await, (json!(1), json!(1)));
    assert_eq!(app.table.rekey_vendor_listings().await.expect("rekey again"), 0);
}
