//! Nothing a channel answers can crash a function: every channel client, driven by a local fake
//! that answers every request with arbitrary statuses, headers and bodies, returns `Ok` or `Err`
//! (a panic fails the property), and any wait it reports is at most `MAX_CHANNEL_WAIT`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};
use shipsync_channels::{
    AmazonClient, AmazonCredentials, BackMarketClient, Channel, ChannelError, EbayClient, EbayCredentials, ExportLine,
    ExportOrder, Fulfillment, GrouponClient, MAX_CHANNEL_WAIT, ShopifyClient, TokenCache, WalmartClient,
    WalmartCredentials, WishClient, WishCredentials, WooCommerceClient,
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// One answer of the fake channel.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// Answers the requests in order with a script of answers; the last one repeats.
struct Script {
    answers: Vec<Answer>,
    next: AtomicUsize,
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let index = self.next.fetch_add(1, Ordering::SeqCst).min(self.answers.len() - 1);
        let answer = &self.answers[index];
        let mut template = ResponseTemplate::new(answer.status).set_body_raw(answer.body.clone(), "application/json");
        for (name, value) in &answer.headers {
            template = template.insert_header(*name, value.as_str());
        }
        template
    }
}

/// The keys the clients read, so that random JSON reaches deep into their parsing.
const KEYS: &[&str] = &[
    "data",
    "order",
    "orders",
    "fulfillments",
    "fulfillmentOrders",
    "nodes",
    "id",
    "status",
    "trackingInfo",
    "number",
    "fulfillmentLineItems",
    "quantity",
    "lineItem",
    "lineItems",
    "assignedLocation",
    "location",
    "remainingQuantity",
    "fulfillmentCreate",
    "fulfillment",
    "userErrors",
    "message",
    "errors",
    "extensions",
    "code",
    "cost",
    "requestedQueryCost",
    "throttleStatus",
    "currentlyAvailable",
    "restoreRate",
    "pageInfo",
    "hasNextPage",
    "endCursor",
    "updatedAt",
    "name",
    "cancelledAt",
    "sku",
    "currentQuantity",
    "access_token",
    "expires_in",
    "fulfillmentId",
    "shipmentTrackingNumber",
    "orderlines",
    "state",
    "listing",
    // Walmart's
    "list",
    "meta",
    "nextCursor",
    "elements",
    "purchaseOrderId",
    "orderDate",
    "orderLines",
    "orderLine",
    "lineNumber",
    "orderLineQuantity",
    "amount",
    "orderLineStatuses",
    "orderLineStatus",
    "statusQuantity",
    "statusDate",
    "item",
    "trackingNumber",
    "carrierName",
    "charges",
    "charge",
    "chargeType",
    "chargeAmount",
    "intentToCancel",
    "shippingInfo",
    "methodCode",
    // WooCommerce's
    "line_items",
    "date_modified_gmt",
    "meta_data",
    "key",
    "value",
    "item_id",
    "qty",
    "tracking_id",
    "tracking_number",
    "is_fulfilled",
    "date_deleted",
    // Groupon's
    "success",
    "reason",
    "orderid",
    "ci_lineitemid",
    // Wish's
    "code",
    "data",
    "state",
    "updated_at",
    "product_information",
    "order_payment",
    "general_payment_details",
    "product_quantity",
    "tracking_information",
    "access_token",
    "expiry_time",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(1e20), Just(-1e20), Just(f64::MAX), Just(-0.5), Just(0.0), Just(3.5), Just(1e-300)]
            .prop_map(Value::from),
        (0u64..4).prop_map(Value::from),
        prop_oneof![
            Just("gid://shopify/LineItem/1"),
            Just("gid://shopify/FulfillmentOrder/1"),
            Just("1"),
            Just("L1"),
            Just("1Z001"),
            Just("1Z-001"),
            Just("OPEN"),
            Just("IN_PROGRESS"),
            Just("CANCELLED"),
            Just("THROTTLED"),
            Just("INTERNAL_SERVER_ERROR"),
            Just("ACCESS_DENIED"),
            Just("Throttled"),
            Just("SKU-1"),
            Just("2026-01-05T10:00:00Z"),
            Just("not a date"),
            Just(""),
            Just("é日本"),
            Just("Created"),
            Just("Acknowledged"),
            Just("Shipped"),
            Just("PRODUCT"),
            Just("?limit=200&soIndex=200"),
            Just("1772449200000"),
        ]
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..5).prop_map(|entries| {
                Value::Object(entries.into_iter().map(|(key, value)| (key.to_owned(), value)).collect())
            }),
        ]
    })
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => json_value().prop_map(|value| value.to_string()),
        1 => "\\PC{0,40}",
        1 => Just(String::new()),
        // A token the clients accept, with an arbitrary lifetime, so that the calls after it run.
        2 => leaf().prop_map(|expires| json!({"access_token": "token", "expires_in": expires}).to_string()),
    ]
}

fn header() -> impl Strategy<Value = (&'static str, String)> {
    let name = prop::sample::select(vec!["retry-after", "x-amzn-ratelimit-limit", "location", "content-type"]);
    let value = prop_oneof![
        Just("1e20".to_owned()),
        Just("-5".to_owned()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        Just("-inf".to_owned()),
        Just("0".to_owned()),
        Just("1.5".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("Wed, 21 Oct 2015 07:28:00 GMT".to_owned()),
        Just("Fri, 31 Dec 9999 23:59:59 GMT".to_owned()),
        Just("/sell/fulfillment/v1/order/1/shipping_fulfillment/".to_owned()),
        "[ -~]{0,20}",
    ];
    (name, value)
}

fn answer() -> impl Strategy<Value = Answer> {
    let status = prop_oneof![
        Just(200u16),
        Just(201),
        Just(204),
        Just(400),
        Just(401),
        Just(403),
        Just(404),
        Just(422),
        Just(429),
        Just(500),
        Just(503),
        200u16..=599,
    ];
    (status, prop::collection::vec(header(), 0..3), body()).prop_map(|(status, headers, body)| Answer {
        status,
        headers,
        body,
    })
}

fn export_order() -> impl Strategy<Value = ExportOrder> {
    let line = (
        prop::sample::select(vec!["1", "gid://shopify/LineItem/1", "L1", "987"]),
        0u32..4,
        prop::sample::select(vec!["SKU-1", "IPHONE"]),
        prop::collection::vec(prop::sample::select(vec!["356938035643809", "SN-1"]), 0..2),
    )
        .prop_map(|(id, quantity, sku, codes)| ExportLine {
            channel_line_item_id: id.to_owned(),
            quantity,
            sku: sku.to_owned(),
            serial_codes: codes.into_iter().map(str::to_owned).collect(),
            package: None,
            needs_imei: false,
        });
    (
        prop::collection::vec(line, 0..3),
        prop::collection::vec(prop::sample::select(vec!["1Z001", "1Z-001", "T2"]), 0..3),
        any::<bool>(),
    )
        .prop_map(|(lines, numbers, code)| ExportOrder {
            shipment_id: 1012,
            shipped_at: chrono::Utc::now(),
            channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id"),
            lines,
            tracking_numbers: numbers
                .into_iter()
                .map(|n| shipsync_domain::tracking::TrackingNumber::parse(n).expect("a tracking number"))
                .collect(),
            carrier: "UPS".into(),
            carrier_code: code.then(|| "UPS".to_owned()),
            tracking_urls: vec![],
            notify_customer: true,
            shipping_method: None,
        })
}

/// Which client and call a case drives.
#[derive(Debug, Clone, Copy)]
enum Call {
    ShopifyExport {
        check_existing: bool,
    },
    ShopifyOrders,
    ShopifyFulfillments,
    Amazon,
    Ebay {
        check_existing: bool,
    },
    EbayFulfillments,
    BackMarket,
    Walmart,
    /// Walmart's acknowledgment of an order's lines.
    WalmartAcceptance,
    /// Walmart's tracking correction (`PARTIAL_UPDATE`).
    WalmartCorrection,
    WooCommerce,
    Groupon,
    Wish,
    /// Wish's token renewal.
    WishRenewal,
    /// A page of the orders a marketplace changed (Amazon, eBay, Back Market, Walmart).
    Orders(Marketplace),
}

#[derive(Debug, Clone, Copy)]
enum Marketplace {
    Amazon,
    Ebay,
    BackMarket,
    Walmart,
    WooCommerce,
    Groupon,
    Wish,
}

fn wish(http: reqwest::Client, uri: &str) -> WishClient {
    let credentials = WishCredentials {
        client_id: "c".into(),
        client_secret: "s".into(),
        refresh_token: "r".into(),
        access_token: Some("a".into()),
        expires_at: None,
    };
    WishClient::new(http, Some(uri), credentials, "US")
}

fn walmart(http: reqwest::Client, uri: &str, tokens: TokenCache) -> WalmartClient {
    let credentials = WalmartCredentials { client_id: "id".into(), client_secret: "s".into() };
    WalmartClient::new(http, Some(uri), credentials, tokens)
}

/// Runs one call against a fake that answers with `answers`; returns what the client returned.
async fn drive(call: Call, answers: Vec<Answer>, order: &ExportOrder) -> Result<(), ChannelError> {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(Script { answers, next: AtomicUsize::new(0) })
        .mount(&server)
        .await;
    let http = shipsync_channels::http_client_builder().unwrap().timeout(Duration::from_secs(5)).build().unwrap();
    let uri = server.uri();
    let tokens = TokenCache::default();
    let fulfilled = |result: Result<Fulfillment, ChannelError>| result.map(|_| ());
    match call {
        Call::ShopifyExport { check_existing } => {
            let client = ShopifyClient::new(http, "shop.myshopify.com", Some(&uri), "token".into());
            fulfilled(client.export(order, check_existing).await)
        }
        Call::ShopifyOrders => {
            let client = ShopifyClient::new(http, "shop.myshopify.com", Some(&uri), "token".into());
            client.orders_since(chrono::Utc::now(), None).await.map(|_| ())
        }
        Call::ShopifyFulfillments => {
            let client = ShopifyClient::new(http, "shop.myshopify.com", Some(&uri), "token".into());
            client
                .fulfillments(&shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id"))
                .await
                .map(|_| ())
        }
        Call::Amazon => {
            let credentials =
                AmazonCredentials { client_id: "id".into(), client_secret: "s".into(), refresh_token: "r".into() };
            let token_url = format!("{uri}/auth/o2/token");
            let client = AmazonClient::new(http, Some(&uri), Some(&token_url), "ATV".into(), credentials, tokens);
            fulfilled(client.export(order, false).await)
        }
        Call::Ebay { check_existing } => {
            let credentials =
                EbayCredentials { client_id: "id".into(), client_secret: "s".into(), refresh_token: "r".into() };
            let client = EbayClient::new(http, Some(&uri), None, credentials, tokens);
            fulfilled(client.export(order, check_existing).await)
        }
        Call::EbayFulfillments => {
            let credentials =
                EbayCredentials { client_id: "id".into(), client_secret: "s".into(), refresh_token: "r".into() };
            let client = EbayClient::new(http, Some(&uri), None, credentials, tokens);
            client
                .fulfillments(&shipsync_domain::vocabulary::ChannelOrderId::parse("12-34").expect("an order id"))
                .await
                .map(|_| ())
        }
        Call::BackMarket => {
            let client = BackMarketClient::new(http, Some(&uri), "token".into());
            fulfilled(client.export(order, false).await)
        }
        Call::Walmart => fulfilled(walmart(http, &uri, tokens).export(order, false).await),
        Call::WalmartCorrection => {
            let replaced: Vec<_> = order
                .tracking_numbers
                .iter()
                .map(|number| (shipsync_domain::tracking::TrackingNumber::parse("1ZOLD0001").unwrap(), number.clone()))
                .collect();
            walmart(http, &uri, tokens).correct_tracking(order, &replaced, true).await.map(|_| ())
        }
        Call::Groupon => {
            fulfilled(GrouponClient::new(http, Some(&uri), "1".into(), "t".into()).export(order, false).await)
        }
        Call::Wish => fulfilled(wish(http, &uri).export(order, true).await),
        Call::WishRenewal => {
            let stored = shipsync_domain::secrets::ChannelCredentials::default();
            wish(http, &uri).renew(&stored).await.map(|renewed| assert!(renewed.0.contains_key("access_token")))
        }
        Call::WooCommerce => {
            fulfilled(WooCommerceClient::new(http, &uri, "ck".into(), "cs".into()).export(order, false).await)
        }
        Call::WalmartAcceptance => {
            let line = shipsync_domain::orders::IncomingLine {
                channel_line_item_id: "1".into(),
                sku: None,
                name: String::new(),
                quantity: 1,
                unit_price: None,
                awaiting_acceptance: true,
                needs_imei: false,
            };
            let id = shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id");
            walmart(http, &uri, tokens).accept_lines(&id, &[line]).await
        }
        Call::Orders(marketplace) => {
            let client: Box<dyn Channel> = match marketplace {
                Marketplace::Amazon => {
                    let credentials = AmazonCredentials {
                        client_id: "id".into(),
                        client_secret: "s".into(),
                        refresh_token: "r".into(),
                    };
                    let token_url = format!("{uri}/auth/o2/token");
                    Box::new(AmazonClient::new(http, Some(&uri), Some(&token_url), "ATV".into(), credentials, tokens))
                }
                Marketplace::Ebay => {
                    let credentials = EbayCredentials {
                        client_id: "id".into(),
                        client_secret: "s".into(),
                        refresh_token: "r".into(),
                    };
                    Box::new(EbayClient::new(http, Some(&uri), None, credentials, tokens))
                }
                Marketplace::BackMarket => Box::new(BackMarketClient::new(http, Some(&uri), "token".into())),
                Marketplace::Walmart => Box::new(walmart(http, &uri, tokens)),
                Marketplace::WooCommerce => Box::new(WooCommerceClient::new(http, &uri, "ck".into(), "cs".into())),
                Marketplace::Groupon => Box::new(GrouponClient::new(http, Some(&uri), "1".into(), "t".into())),
                Marketplace::Wish => Box::new(wish(http, &uri)),
            };
            client.orders_since(chrono::Utc::now(), None).await.map(|_| ())
        }
    }
}

fn check(call: Call, answers: Vec<Answer>, order: ExportOrder) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // A panic inside fails the case (and proptest shrinks it); returning at all is the property.
    let result = runtime.block_on(drive(call, answers, &order));
    if let Err(ChannelError::Retryable { retry_after: Some(wait), .. }) = &result {
        prop_assert!(*wait <= MAX_CHANNEL_WAIT, "{call:?} asked to wait {wait:?}");
    }
    Ok(())
}

fn answers() -> impl Strategy<Value = Vec<Answer>> {
    prop::collection::vec(answer(), 1..5)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn shopify_export_survives_any_answer(answers in answers(), order in export_order(), check_existing: bool) {
        check(Call::ShopifyExport { check_existing }, answers, order)?;
    }

    #[test]
    fn shopify_order_listing_survives_any_answer(answers in answers()) {
        check(Call::ShopifyOrders, answers, export_order_fixed())?;
    }

    #[test]
    fn fulfillment_listings_survive_any_answer(answers in answers(), ebay: bool) {
        let call = if ebay { Call::EbayFulfillments } else { Call::ShopifyFulfillments };
        check(call, answers, export_order_fixed())?;
    }

    #[test]
    fn amazon_export_and_token_survive_any_answer(answers in answers(), order in export_order()) {
        check(Call::Amazon, answers, order)?;
    }

    #[test]
    fn ebay_export_listing_and_token_survive_any_answer(answers in answers(), order in export_order(), check_existing: bool) {
        check(Call::Ebay { check_existing }, answers, order)?;
    }

    #[test]
    fn marketplace_order_listings_survive_any_answer(answers in answers(), which in 0u8..7) {
        let marketplace = [
            Marketplace::Amazon,
            Marketplace::Ebay,
            Marketplace::BackMarket,
            Marketplace::Walmart,
            Marketplace::WooCommerce,
            Marketplace::Groupon,
            Marketplace::Wish,
        ][usize::from(which)];
        check(Call::Orders(marketplace), answers, export_order_fixed())?;
    }

    #[test]
    fn walmart_export_acceptance_and_token_survive_any_answer(answers in answers(), order in export_order(), accept: bool) {
        check(if accept { Call::WalmartAcceptance } else { Call::Walmart }, answers, order)?;
    }

    #[test]
    fn walmart_tracking_correction_survives_any_answer(answers in answers(), order in export_order()) {
        check(Call::WalmartCorrection, answers, order)?;
    }

    #[test]
    fn woocommerce_export_survives_any_answer(answers in answers(), order in export_order()) {
        check(Call::WooCommerce, answers, order)?;
    }

    #[test]
    fn wish_export_survives_any_answer(answers in answers(), order in export_order()) {
        check(Call::Wish, answers, order)?;
    }

    #[test]
    fn wish_token_renewal_survives_any_answer(answers in answers()) {
        check(Call::WishRenewal, answers, export_order_fixed())?;
    }

    #[test]
    fn groupon_export_survives_any_answer(answers in answers(), order in export_order()) {
        check(Call::Groupon, answers, order)?;
    }

    #[test]
    fn back_market_export_survives_any_answer(answers in answers(), order in export_order()) {
        check(Call::BackMarket, answers, order)?;
    }
}

fn export_order_fixed() -> ExportOrder {
    ExportOrder {
        shipment_id: 1,
        shipped_at: chrono::Utc::now(),
        channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id"),
        lines: vec![],
        tracking_numbers: vec![],
        carrier: "UPS".into(),
        carrier_code: None,
        tracking_urls: vec![],
        notify_customer: false,
        shipping_method: None,
    }
}

/// The answers found by hand that crashed a function before: each must now be a clean error.
#[test]
fn known_crashers_are_errors() {
    let crashers = [
        (Call::ShopifyExport { check_existing: false }, 429, vec![("retry-after", "1e20")], "{}".to_owned()),
        (Call::BackMarket, 503, vec![("retry-after", "1e300")], "{}".to_owned()),
        (Call::Ebay { check_existing: false }, 429, vec![("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")], String::new()),
        (Call::Amazon, 429, vec![("x-amzn-ratelimit-limit", "0")], String::new()),
        // A token that "lasts" u64::MAX seconds used to overflow the clock.
        (Call::Amazon, 200, vec![], json!({"access_token": "t", "expires_in": u64::MAX}).to_string()),
        (
            Call::ShopifyExport { check_existing: false },
            200,
            vec![],
            json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                   "extensions": {"cost": {"requestedQueryCost": 1e300, "throttleStatus": {"currentlyAvailable": 0, "restoreRate": 1e-300}}}})
            .to_string(),
        ),
    ];
    let order = ExportOrder {
        shipment_id: 1012,
        shipped_at: chrono::Utc::now(),
        channel_order_id: shipsync_domain::vocabulary::ChannelOrderId::parse("1").expect("an order id"),
        lines: vec![ExportLine {
            channel_line_item_id: "1".into(),
            quantity: 1,
            sku: "SKU-1".into(),
            serial_codes: vec!["356938035643809".into()],
            package: None,
            needs_imei: false,
        }],
        tracking_numbers: vec![],
        carrier: "UPS".into(),
        carrier_code: None,
        tracking_urls: vec![],
        notify_customer: false,
        shipping_method: None,
    };
    for (call, status, headers, body) in crashers {
        let answer = Answer {
            status,
            headers: headers.into_iter().map(|(name, value)| (name, value.to_owned())).collect(),
            body,
        };
        let answers = vec![answer.clone(), answer];
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let result = runtime.block_on(drive(call, answers, &order));
        if let Err(ChannelError::Retryable { retry_after: Some(wait), .. }) = &result {
            assert!(*wait <= MAX_CHANNEL_WAIT, "{call:?}: {wait:?}");
        }
    }
}

/// Every wait goes through one clamp.
#[test]
fn waits_are_clamped() {
    use shipsync_channels::channel_wait;
    assert_eq!(channel_wait(1e20), Some(MAX_CHANNEL_WAIT));
    assert_eq!(channel_wait(f64::INFINITY), Some(MAX_CHANNEL_WAIT));
    assert_eq!(channel_wait(-3.0), Some(Duration::ZERO));
    assert_eq!(channel_wait(f64::NEG_INFINITY), Some(Duration::ZERO));
    assert_eq!(channel_wait(f64::NAN), None);
    assert_eq!(channel_wait(2.5), Some(Duration::from_millis(2500)));
}
