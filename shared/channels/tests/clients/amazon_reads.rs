//! Amazon's Orders API v2026-01-01 against a local fake: the exact searchOrders and getOrder
//! requests, how its orders, cancel requests and packages read, ORDER_CHANGE notifications, and
//! a confirmation that sends each package its own lines and the shipping method.

use std::time::Duration;

use serde_json::{Value, json};
use shipsync_channels::{
    AmazonClient, AmazonCredentials, AmazonOrderChange, Channel, ChannelError, ExportLine, ExportOrder, TokenCache,
    parse_amazon_order_change,
};
use shipsync_domain::orders::{IncomingFulfillment, IncomingLine};
use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use wiremock::matchers::{body_string_contains, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SEARCH: &str = "/orders/2026-01-01/orders";
const INCLUDED: &str = "BUYER,RECIPIENT,CANCELLATION,FULFILLMENT,PACKAGES";

pub(crate) fn amazon(server: &MockServer) -> AmazonClient {
    let credentials = AmazonCredentials {
        client_id: "amzn-id".into(),
        client_secret: "amzn-secret".into(),
        refresh_token: "Atzr".into(),
    };
    let token_url = format!("{}/auth/o2/token", server.uri());
    AmazonClient::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        Some(&server.uri()),
        Some(&token_url),
        "ATVPDKIKX0DER".into(),
        credentials,
        TokenCache::default(),
    )
}

/// Login with Amazon grants `Atza|1` once for the refresh token.
async fn lwa(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/auth/o2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=Atzr"))
        .and(body_string_contains("client_id=amzn-id"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"access_token": "Atza|1", "expires_in": 3600})))
        .expect(1)
        .mount(server)
        .await;
}

fn id(text: &str) -> ChannelOrderId {
    ChannelOrderId::parse(text).expect("an order id")
}

fn tracking(number: &str) -> TrackingNumber {
    TrackingNumber::parse(number).expect("a tracking number")
}

fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
    text.parse().expect("a time")
}

fn item(id: &str, sku: &str, ordered: u32) -> Value {
    json!({"orderItemId": id, "quantityOrdered": ordered,
           "product": {"asin": "B0", "sellerSku": sku, "title": format!("Item {sku}"),
                       "price": {"unitPrice": {"amount": "19.99", "currencyCode": "USD"}}}})
}

/// An unshipped order of two lines (2 + 1 units), shipped to Jane Roe.
fn two_lines(updated: &str) -> Value {
    json!({"orderId": "111-0000001-0000001", "createdTime": "2026-03-01T10:00:00Z", "lastUpdatedTime": updated,
           "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER"},
           "fulfillment": {"fulfillmentStatus": "UNSHIPPED", "fulfilledBy": "MERCHANT"},
           "recipient": {"deliveryAddress": {"name": "Jane Roe"}},
           "buyer": {"buyerName": "J. Roe"},
           "orderItems": [item("OI-1", "SKU-1", 2), item("OI-2", "SKU-2", 1)]})
}

/// searchOrders as shipsync must call it: merchant orders of the store's marketplace updated after `after`.
fn search(after: &str) -> wiremock::MockBuilder {
    Mock::given(method("GET"))
        .and(path(SEARCH))
        .and(header("x-amz-access-token", "Atza|1"))
        .and(query_param("lastUpdatedAfter", after))
        .and(query_param("marketplaceIds", "ATVPDKIKX0DER"))
        .and(query_param("fulfilledBy", "MERCHANT"))
        .and(query_param("fulfillmentStatuses", "UNSHIPPED,PARTIALLY_SHIPPED,SHIPPED,CANCELLED"))
        .and(query_param("maxResultsPerPage", "100"))
        .and(query_param("includedData", INCLUDED))
}

#[tokio::test]
async fn a_page_of_orders_reads_lines_cancellations_requests_and_packages() {
    let server = MockServer::start().await;
    lwa(&server).await;
    let mut cancelled = two_lines("2026-03-02T09:00:00Z");
    cancelled["orderId"] = json!("111-0000002-0000002");
    cancelled["fulfillment"]["fulfillmentStatus"] = json!("CANCELLED");
    let mut requested = two_lines("2026-03-02T09:30:00Z");
    requested["orderId"] = json!("111-0000003-0000003");
    requested["orderItems"][1]["cancellation"] =
        json!({"cancellationRequest": {"requester": "BUYER", "cancelReason": "Ordered by mistake"}});
    let mut shipped = two_lines("2026-03-02T10:00:00Z");
    shipped["orderId"] = json!("111-0000004-0000004");
    shipped["fulfillment"]["fulfillmentStatus"] = json!("PARTIALLY_SHIPPED");
    shipped["packages"] = json!([
        {"packageReferenceId": "1", "carrier": "UPS", "trackingNumber": "1Z999AA10123456784",
         "packageStatus": {"status": "IN_TRANSIT"}, "packageItems": [{"orderItemId": "OI-1", "quantity": 2}]},
        {"packageReferenceId": "2", "carrier": "UPS", "trackingNumber": "1Z999AA10123456785",
         "packageStatus": {"status": "CANCELLED"}, "packageItems": [{"orderItemId": "OI-2", "quantity": 1}]}
    ]);
    // One item cancelled before any of it shipped.
    shipped["orderItems"][1]["fulfillment"] = json!({"quantityFulfilled": 0, "quantityUnfulfilled": 0});
    shipped["orderItems"][1]["cancellation"] =
        json!({"cancellationExecution": {"cancelledBy": "MERCHANT", "cancelReason": "NoInventory"}});
    search("2026-03-02T08:00:00Z")
        .and(query_param_is_missing("paginationToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "orders": [two_lines("2026-03-02T08:30:00Z"), cancelled, requested, shipped],
            "lastUpdatedBefore": "2026-03-02T11:00:00Z"
        })))
        .expect(1)
        .mount(&server)
        .await;

    let page = amazon(&server).orders_since(at("2026-03-02T08:00:00Z"), None).await.expect("a page");
    assert_eq!(page.next, None, "no nextToken: the last page");
    assert!(page.unreadable.is_empty());
    let [first, cancelled, requested, shipped] = page.orders.as_slice() else { panic!("four orders: {page:?}") };
    assert_eq!(first.channel_order_id, id("111-0000001-0000001"));
    assert_eq!(first.number, "111-0000001-0000001");
    assert_eq!(first.customer_name, "Jane Roe", "the recipient's name comes first");
    assert_eq!(first.updated_at, at("2026-03-02T08:30:00Z"));
    assert_eq!(
        first.lines,
        [
            IncomingLine {
                channel_line_item_id: "OI-1".into(),
                sku: Sku::received("SKU-1"),
                name: "Item SKU-1".into(),
                quantity: 2,
                unit_price: Some("19.99".parse().unwrap()),
                awaiting_acceptance: false,
                needs_imei: false,
            },
            IncomingLine {
                channel_line_item_id: "OI-2".into(),
                sku: Sku::received("SKU-2"),
                name: "Item SKU-2".into(),
                quantity: 1,
                unit_price: Some("19.99".parse().unwrap()),
                awaiting_acceptance: false,
                needs_imei: false,
            },
        ]
    );
    assert!(!first.cancelled && first.cancel_requested.is_none() && first.fulfillments.is_empty());
    assert!(cancelled.cancelled);
    assert_eq!(requested.cancel_requested.as_deref(), Some("buyer asked to cancel: Ordered by mistake"));
    assert!(!requested.cancelled);
    assert_eq!(shipped.lines[1].quantity, 0, "an executed cancellation leaves what shipped: nothing");
    assert_eq!(
        shipped.fulfillments,
        [
            IncomingFulfillment {
                channel_fulfillment_id: "1".into(),
                channel_order_id: id("111-0000004-0000004"),
                lines: vec![("OI-1".into(), 2)],
                tracking_numbers: vec![tracking("1Z999AA10123456784")],
                tracking_company: Some("UPS".into()),
                cancelled: false,
            },
            IncomingFulfillment {
                channel_fulfillment_id: "2".into(),
                channel_order_id: id("111-0000004-0000004"),
                lines: vec![("OI-2".into(), 1)],
                tracking_numbers: vec![tracking("1Z999AA10123456785")],
                tracking_company: Some("UPS".into()),
                cancelled: true,
            },
        ]
    );
}

#[tokio::test]
async fn pages_follow_the_next_token_and_an_unreadable_order_is_kept_with_its_reason() {
    let server = MockServer::start().await;
    lwa(&server).await;
    let broken = json!({"orderId": "111-0000009-0000009", "lastUpdatedTime": "yesterday", "orderItems": []});
    search("2026-03-02T08:00:00Z")
        .and(query_param_is_missing("paginationToken"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "orders": [two_lines("2026-03-02T08:30:00Z"), broken.clone()], "pagination": {"nextToken": "page+2/=="}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let mut later = two_lines("2026-03-02T09:30:00Z");
    later["orderId"] = json!("111-0000005-0000005");
    search("2026-03-02T08:00:00Z")
        .and(query_param("paginationToken", "page+2/=="))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [later]})))
        .expect(1)
        .mount(&server)
        .await;
    let client = amazon(&server);
    let since = at("2026-03-02T08:00:00Z");
    let first = client.orders_since(since, None).await.expect("page 1");
    assert_eq!(first.orders.len(), 1);
    assert_eq!(first.unreadable.len(), 1, "the broken order is listed, not dropped");
    assert_eq!(first.unreadable[0].node, broken);
    assert_eq!(first.unreadable[0].reason, "lastUpdatedTime is not a time");
    assert_eq!(first.next.as_deref(), Some("page+2/=="));
    let second = client.orders_since(since, first.next.as_deref()).await.expect("page 2");
    assert_eq!(second.orders[0].channel_order_id, id("111-0000005-0000005"));
    assert_eq!(second.next, None);
}

#[tokio::test]
async fn an_order_updated_twice_reads_as_two_versions_in_two_polls() {
    let server = MockServer::start().await;
    lwa(&server).await;
    search("2026-03-02T08:00:00Z")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [two_lines("2026-03-02T08:30:00Z")]})))
        .mount(&server)
        .await;
    let mut changed = two_lines("2026-03-02T09:45:00Z");
    changed["orderItems"][1]["cancellation"] =
        json!({"cancellationExecution": {"cancelledBy": "BUYER", "cancelReason": "Ordered by mistake"}});
    search("2026-03-02T08:30:00Z")
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"orders": [changed]})))
        .mount(&server)
        .await;
    let client = amazon(&server);
    let first = client.orders_since(at("2026-03-02T08:00:00Z"), None).await.expect("poll 1");
    let second = client.orders_since(at("2026-03-02T08:30:00Z"), None).await.expect("poll 2");
    let (before, after) = (&first.orders[0], &second.orders[0]);
    assert_eq!(before.channel_order_id, after.channel_order_id);
    assert!(after.updated_at > before.updated_at);
    assert_eq!((before.lines[1].quantity, after.lines[1].quantity), (1, 0), "OI-2 cancelled in between");
    assert_eq!(after.lines[0].quantity, 2);
}

#[tokio::test]
async fn throttled_reads_are_retryable_after_the_wait_amazon_asks() {
    let server = MockServer::start().await;
    lwa(&server).await;
    Mock::given(method("GET"))
        .and(path(SEARCH))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(json!({"errors": [{"code": "QuotaExceeded", "message": "You exceeded your quota"}]})),
        )
        .mount(&server)
        .await;
    let error = amazon(&server).orders_since(at("2026-03-02T08:00:00Z"), None).await.expect_err("throttled");
    let ChannelError::Retryable { retry_after, .. } = error else { panic!("retryable: {error:?}") };
    assert_eq!(retry_after, Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn one_order_and_its_packages_come_from_get_order() {
    let server = MockServer::start().await;
    lwa(&server).await;
    let mut order = two_lines("2026-03-02T10:00:00Z");
    order["packages"] = json!([{"packageReferenceId": "1012000", "carrier": "USPS", "trackingNumber": "9400 1000",
        "packageStatus": {"status": "SHIPPED"}, "packageItems": [{"orderItemId": "OI-2", "quantity": 1}]}]);
    Mock::given(method("GET"))
        .and(path(format!("{SEARCH}/111-0000001-0000001")))
        .and(header("x-amz-access-token", "Atza|1"))
        .and(query_param("includedData", INCLUDED))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"order": order})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{SEARCH}/111-0000000-0000000")))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"errors": [{"code": "NotFound"}]})))
        .mount(&server)
        .await;
    let client = amazon(&server);
    let read = client.order(&id("111-0000001-0000001")).await.expect("read").expect("known");
    assert_eq!(read.lines.len(), 2);
    let package = IncomingFulfillment {
        channel_fulfillment_id: "1012000".into(),
        channel_order_id: id("111-0000001-0000001"),
        lines: vec![("OI-2".into(), 1)],
        tracking_numbers: vec![tracking("9400 1000")],
        tracking_company: Some("USPS".into()),
        cancelled: false,
    };
    assert_eq!(read.fulfillments, std::slice::from_ref(&package));
    assert_eq!(client.fulfillments(&id("111-0000001-0000001")).await.expect("listed"), [package]);
    assert_eq!(client.order(&id("111-0000000-0000000")).await.expect("read"), None, "404: Amazon does not know it");
}

fn notification() -> Value {
    json!({
        "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
        "EventTime": "2026-03-02T10:00:00.000Z",
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel", "SellerId": "A3TH9S8BH6GOGM", "AmazonOrderId": "111-0000001-0000001",
            "OrderChangeType": "BuyerRequestedChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": "2026-03-02T09:59:00.000Z", "ChangeReason": "BuyerRequestedCancel"},
            "Summary": {"MarketplaceId": "ATVPDKIKX0DER", "OrderStatus": "Unshipped", "FulfillmentType": "MFN",
                        "OrderItems": [{"OrderItemId": "OI-1", "SellerSKU": "SKU-1", "Quantity": 2, "IsBuyerRequestedCancel": true}]}
        }},
        "NotificationMetadata": {"ApplicationId": "amzn1.sellerapps.app.1", "SubscriptionId": "sub-1",
                                 "PublishTime": "2026-03-02T10:00:01.000Z", "NotificationId": "n-0001"}
    })
}

#[test]
fn order_change_notifications_name_the_order_to_read() {
    let expected = AmazonOrderChange {
        notification_id: "n-0001".into(),
        seller_id: "A3TH9S8BH6GOGM".into(),
        marketplace_id: "ATVPDKIKX0DER".into(),
        amazon_order_id: id("111-0000001-0000001"),
    };
    assert_eq!(parse_amazon_order_change(&notification().to_string()), Ok(expected.clone()));
    let bridged = json!({"detail-type": "ORDER_CHANGE", "source": "aws.partner/sellingpartnerapi.amazon.com",
                         "detail": notification()});
    assert_eq!(parse_amazon_order_change(&bridged.to_string()), Ok(expected), "EventBridge's envelope");
    let mut missing = notification();
    missing["Payload"]["OrderChangeNotification"]["AmazonOrderId"] = Value::Null;
    assert_eq!(
        parse_amazon_order_change(&missing.to_string()),
        Err("Payload.OrderChangeNotification.AmazonOrderId is required".into())
    );
    let mut other = notification();
    other["NotificationType"] = json!("ANY_OFFER_CHANGED");
    assert!(parse_amazon_order_change(&other.to_string()).is_err_and(|e| e.contains("ANY_OFFER_CHANGED")));
    assert_eq!(parse_amazon_order_change("<xml/>"), Err("the notification is not JSON".into()));
}

#[tokio::test]
async fn each_package_is_confirmed_with_its_own_lines_and_the_shipping_method() {
    let server = MockServer::start().await;
    lwa(&server).await;
    Mock::given(method("POST"))
        .and(path("/orders/v0/orders/111-0000001-0000001/shipmentConfirmation"))
        .and(header("x-amz-access-token", "Atza|1"))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let line = |id: &str, quantity, package: &str| ExportLine {
        channel_line_item_id: id.into(),
        quantity,
        sku: format!("SKU-{id}"),
        serial_codes: vec![],
        package: Some(tracking(package)),
        needs_imei: false,
    };
    let order = ExportOrder {
        shipment_id: 1012,
        shipped_at: at("2026-03-02T12:00:00Z"),
        channel_order_id: id("111-0000001-0000001"),
        // Both units of OI-1 in the second box: a round-robin spread would split them.
        lines: vec![line("OI-1", 2, "1ZB"), line("OI-2", 1, "1ZA")],
        tracking_numbers: vec![tracking("1ZA"), tracking("1ZB")],
        carrier: "UPS".into(),
        carrier_code: Some("UPS".into()),
        tracking_urls: vec![],
        notify_customer: true,
        shipping_method: Some("UPS Ground".into()),
    };
    let fulfillment = amazon(&server).export(&order, false).await.expect("confirmed");
    assert_eq!(fulfillment.channel_ids, ["1012000", "1012001"]);
    let requests: Vec<Request> = server.received_requests().await.unwrap_or_default();
    let bodies: Vec<Value> = requests
        .iter()
        .filter(|request| request.url.path().ends_with("shipmentConfirmation"))
        .map(|request| serde_json::from_slice(&request.body).expect("JSON"))
        .collect();
    let detail = |reference: &str, tracking: &str, items: Value| {
        json!({"marketplaceId": "ATVPDKIKX0DER", "packageDetail": {
            "packageReferenceId": reference, "carrierCode": "UPS", "trackingNumber": tracking,
            "shipDate": "2026-03-02T12:00:00Z", "shippingMethod": "UPS Ground", "orderItems": items}})
    };
    assert_eq!(
        bodies,
        [
            detail("1012000", "1ZA", json!([{"orderItemId": "OI-2", "quantity": 1}])),
            detail("1012001", "1ZB", json!([{"orderItemId": "OI-1", "quantity": 2}])),
        ]
    );
}

#[tokio::test]
async fn a_pending_order_is_not_read_until_amazon_lets_it_ship() {
    let server = MockServer::start().await;
    lwa(&server).await;
    let mut pending = two_lines("2026-03-02T10:00:00Z");
    pending["fulfillment"]["fulfillmentStatus"] = json!("PENDING");
    Mock::given(method("GET"))
        .and(path(format!("{SEARCH}/111-0000001-0000001")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "order": pending })))
        .mount(&server)
        .await;
    let read = amazon(&server).order(&id("111-0000001-0000001")).await.expect("read");
    assert_eq!(read, None, "unpaid: nothing to ship yet (its next notification or poll brings it)");
}
