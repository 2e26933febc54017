//! Channel credentials: sealed at rest with KMS (moto's) and bound to their store, write-only
//! through the API, and sent only to each channel's own hosts: a store's `base_url` is refused by
//! the API and ignored by the exporter and the poller unless the deployment honours it (the local
//! stack and these tests' harness, never a Lambda).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;
use carrier_webhooks::Provider;
use exporter::Exporter;
use http::{Method, StatusCode};
use order_poller::OrderPoller;
use order_processor::OrderProcessor;
use serde_json::json;
use shipments_api::ShipmentsApi;
use shipsync_channels::ShopifyWebhookSecrets;
use shipsync_domain::export::{ExportSettings, ShipConfirmation};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, FeeSettings};
use shipsync_domain::tracking::TrackingProvider;
use shipsync_table::TableError;
use shipsync_tools::provision;
use shipsync_tools::runner::Runner;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{SHOPIFY_TOKEN, SHOPIFY_WEBHOOK_SECRET, TestApp, errors, shipment_body};

/// Every attribute of every item of the test's table, as text (binary values lossily).
async fn table_text(app: &TestApp) -> String {
    let mut text = String::new();
    let mut start = None;
    loop {
        let page = app
            .table
            .client()
            .scan()
            .table_name(app.table.table_name())
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        for item in page.items() {
            text.push_str(&format!("{item:?}"));
            for value in item.values() {
                if let AttributeValue::B(blob) = value {
                    text.push_str(&String::from_utf8_lossy(blob.as_ref()));
                }
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return text;
        }
    }
}

fn credentials_key(retailer: impl std::fmt::Display, store: impl std::fmt::Display) -> [(String, AttributeValue); 2] {
    [
        ("pk".to_owned(), AttributeValue::S(format!("RETAILER#{retailer}"))),
        ("sk".to_owned(), AttributeValue::S(format!("STORESECRET#{store}"))),
    ]
}

#[tokio::test]
async fn stored_credentials_hold_no_plaintext_secret() {
    let app = TestApp::new().await;
    let secret = "shpat_plaintext_must_not_be_stored_4711";
    let webhook_secret = "whsec_plaintext_must_not_be_stored_0815";
    let tracking_key = "EZAK_plaintext_must_not_be_stored_5150";
    let carrier_secret = "easypost_plaintext_must_not_be_stored_1234";
    let body = json!({"store": {"name": "Sealed", "channel": "shopify", "shop_domain": "sealed.myshopify.com",
        "tracking_provider": "easypost",
        "credentials": {"access_token": secret, "webhook_secret": webhook_secret,
            "tracking_api_key": tracking_key, "tracking_webhook_secret": carrier_secret}}});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");

    let stored = table_text(&app).await;
    for plaintext in [secret, webhook_secret, SHOPIFY_TOKEN, SHOPIFY_WEBHOOK_SECRET, tracking_key, carrier_secret] {
        assert!(!stored.contains(plaintext), "the table holds {plaintext} in plaintext");
    }
    // Sealed, not lost: the functions that may decrypt open them again.
    let id = created["store"]["id"].as_u64().expect("id");
    let store_id = shipsync_domain::ids::StoreId::new_unchecked(id);
    let opened = app.table.credentials(app.retailer.id, store_id).await.expect("open");
    assert_eq!(opened.0.get("access_token").map(String::as_str), Some(secret));
    assert_eq!(opened.0.get("tracking_api_key").map(String::as_str), Some(tracking_key));
    let webhook_secrets = app.table.webhook_credentials(app.retailer.id, store_id).await.expect("open");
    assert_eq!(ShopifyWebhookSecrets::from_credentials(&webhook_secrets).accepted(), [webhook_secret]);
    // The carrier provider's secret is a webhook secret: sealed with them, apart from the API's keys.
    assert_eq!(webhook_secrets.tracking_webhook_secret(), Some(carrier_secret));
    assert_eq!(opened.tracking_webhook_secret(), None, "not among the API credentials");
    assert!(!webhook_secrets.0.contains_key("tracking_api_key"), "the API key is not a webhook secret");
    let raw = app
        .table
        .client()
        .get_item()
        .table_name(app.table.table_name())
        .set_key(Some(credentials_key(app.retailer.id, id).into_iter().collect()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the credentials record");
    assert!(matches!(raw.get("ciphertext"), Some(AttributeValue::B(_))), "{raw:?}");
    assert!(matches!(raw.get("webhook_ciphertext"), Some(AttributeValue::B(_))), "{raw:?}");
}

#[tokio::test]
async fn credentials_sealed_for_one_store_do_not_open_for_another() {
    let app = TestApp::new().await;
    let other = app.another_tenant().await;
    let second = provision::create_store(
        &app.table,
        app.retailer.id,
        "Second",
        ChannelKind::Shopify,
        ExportSettings::default(),
        ChannelConnection { shop_domain: Some("second.myshopify.com".into()), ..ChannelConnection::default() },
    )
    .await
    .expect("store");
    let sealed = app
        .table
        .client()
        .get_item()
        .table_name(app.table.table_name())
        .set_key(Some(credentials_key(app.retailer.id, app.shop.id).into_iter().collect()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the shop's credentials");
    // Someone with write access to the table copies the shop's sealed credentials to another
    // store of the same retailer, and to another tenant's store.
    for (retailer, store) in [(app.retailer.id, second.id), (other.retailer.id, other.shop.id)] {
        let mut copy = sealed.clone();
        copy.extend(credentials_key(retailer, store));
        app.table
            .client()
            .put_item()
            .table_name(app.table.table_name())
            .set_item(Some(copy))
            .send()
            .await
            .expect("put");
        let opened = app.table.credentials(retailer, store).await;
        assert!(matches!(opened, Err(TableError::Corrupt { .. })), "store {store} opened another's: {opened:?}");
    }
    // The shop's own still open.
    let own = app.table.credentials(app.retailer.id, app.shop.id).await.expect("own");
    assert_eq!(own.0.get("access_token").map(String::as_str), Some(SHOPIFY_TOKEN));
}

/// The webhook function answers the internet: it may open a store's webhook secrets and nothing
/// else. The two are sealed apart, under contexts that name their purpose (the template's grants
/// name it too), so the channel's ciphertext does not open as webhook secrets.
#[tokio::test]
async fn webhook_secrets_are_sealed_apart_from_the_api_credentials() {
    let app = TestApp::new().await;
    let secrets = app.table.webhook_credentials(app.retailer.id, app.shop.id).await.expect("open");
    assert_eq!(ShopifyWebhookSecrets::from_credentials(&secrets).accepted(), [SHOPIFY_WEBHOOK_SECRET]);
    let channel = app.table.credentials(app.retailer.id, app.shop.id).await.expect("open");
    assert_eq!(channel.0.keys().collect::<Vec<_>>(), ["access_token"], "no webhook secret among the API's");
    // The API credentials' ciphertext put where the webhook secrets belong does not open.
    let key: std::collections::HashMap<_, _> = credentials_key(app.retailer.id, app.shop.id).into_iter().collect();
    let mut sealed = app
        .table
        .client()
        .get_item()
        .table_name(app.table.table_name())
        .set_key(Some(key))
        .send()
        .await
        .expect("get")
        .item
        .expect("the shop's credentials");
    let channel_ciphertext = sealed.get("ciphertext").cloned().expect("sealed API credentials");
    sealed.insert("webhook_ciphertext".into(), channel_ciphertext);
    app.table.client().put_item().table_name(app.table.table_name()).set_item(Some(sealed)).send().await.expect("put");
    // Read as a container that has not opened them before would (this one remembers them).
    let fresh = app.table.clone().with_settings_ttl(std::time::Duration::ZERO);
    let opened = fresh.webhook_credentials(app.retailer.id, app.shop.id).await;
    assert!(
        matches!(opened, Err(TableError::Corrupt { .. })),
        "the API credentials opened as webhook secrets: {opened:?}"
    );
}

#[tokio::test]
async fn the_api_seals_credentials_but_cannot_open_them() {
    let app = TestApp::new().await;
    let api_store = app.aws.encrypt_only_table();
    let opened = api_store.credentials(app.retailer.id, app.shop.id).await;
    assert!(opened.is_err(), "the API's store opened credentials: {opened:?}");
    let fresh = ChannelCredentials([("access_token".to_owned(), "shpat_from_the_api".to_owned())].into());
    api_store.save_credentials(app.retailer.id, app.shop.id, &fresh).await.expect("seal");
    let opened = app.table.credentials(app.retailer.id, app.shop.id).await.expect("open");
    assert_eq!(opened, fresh);
    assert_eq!(format!("{opened:?}"), r#"{"access_token"}"#, "debug output names, never values");
    // What the opening table remembers is not the sealing one's to hand out.
    let another_api_store = app.aws.encrypt_only_table();
    let opened = another_api_store.credentials(app.retailer.id, app.shop.id).await;
    assert!(opened.is_err(), "the API's store handed out credentials another copy opened: {opened:?}");
}

#[tokio::test]
async fn write_only_credentials_never_appear_in_any_response() {
    let app = TestApp::new().await;
    let secret = "shpat_write_only_value_1234";
    let create = json!({"store": {"name": "W", "channel": "shopify", "shop_domain": "w.myshopify.com",
        "credentials": {"access_token": secret, "webhook_secret": "whsec_write_only_value"}}});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(create)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let uri = format!("/stores/{}.json", created["store"]["id"]);
    let mut responses = vec![created.clone()];
    responses.push(app.call(Method::GET, &uri, None).await.1);
    responses.push(app.call(Method::GET, "/stores.json", None).await.1);
    let update = json!({"store": {"credentials": {"access_token": "shpat_second_value_5678"}}});
    let (status, updated) = app.call(Method::PUT, &uri, Some(update)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    responses.push(updated);
    // Refused credentials are not echoed either.
    let refused =
        json!({"store": {"credentials": {"access_token": "shpat_refused_value_9", "password": "hunter2-value"}}});
    let (status, refusal) = app.call(Method::PUT, &uri, Some(refused)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refusal}");
    assert!(errors(&refusal).iter().any(|e| e.starts_with("credentials.password")), "{refusal}");
    responses.push(refusal);
    for response in &responses {
        let text = response.to_string();
        for value in [secret, "whsec_write_only_value", "shpat_second_value_5678", "shpat_refused_value_9", "hunter2"] {
            assert!(!text.contains(value), "{value} shown in {text}");
        }
        assert!(!text.contains("ciphertext"), "{text}");
    }
    assert_eq!(responses[1]["store"]["credentials_set"], true);
}

#[tokio::test]
async fn credentials_are_bounded_so_they_can_be_sealed() {
    let app = TestApp::new().await;
    let uri = format!("/stores/{}.json", app.shop.id);
    let long = "x".repeat(shipsync_domain::limits::MAX_CREDENTIAL_VALUE_CHARS + 1);
    for (credentials, field) in [
        (json!({"access_token": long}), "credentials.access_token"),
        (
            json!({"access_token": "a", "webhook_secret": "s".repeat(2000), "previous_webhook_secret": "p".repeat(2100)}),
            "credentials",
        ),
        (json!({"access_token": "a", "api_token": "b"}), "credentials.api_token"),
    ] {
        let (status, json) = app.call(Method::PUT, &uri, Some(json!({"store": {"credentials": credentials}}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
        assert!(errors(&json).iter().any(|e| e.starts_with(field)), "{field}: {json}");
    }
    let kept = app.table.credentials(app.retailer.id, app.shop.id).await.expect("open");
    assert_eq!(kept.0.get("access_token").map(String::as_str), Some(SHOPIFY_TOKEN), "nothing changed");
}

#[tokio::test]
async fn a_stores_base_url_is_refused_unless_the_deployment_honours_it() {
    let app = TestApp::new().await;
    let store = json!({"store": {"name": "S", "channel": "back_market", "base_url": "https://attacker.example"}});
    let (status, json) = app.call(Method::POST, "/stores.json", Some(store.clone())).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(errors(&json), ["base_url cannot be set: each channel's address is fixed"]);
    let uri = format!("/stores/{}.json", app.shop.id);
    let (status, json) =
        app.call(Method::PUT, &uri, Some(json!({"store": {"base_url": "http://169.254.169.254/latest"}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert!(errors(&json)[0].starts_with("base_url"), "{json}");
    let (_, read) = app.call(Method::GET, &uri, None).await;
    assert_eq!(read["store"]["base_url"], serde_json::Value::Null, "nothing changed");

    // A deployment for local fakes (the local stack) accepts it.
    let local = ShipmentsApi::new(app.aws.encrypt_only_table(), app.aws.export_planner()).allowing_store_base_url();
    let local_app = TestApp { api: local, ..app };
    let (status, json) = local_app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["store"]["base_url"], "https://attacker.example");
}

#[tokio::test]
async fn a_shop_domain_must_be_a_shopify_shops_host() {
    let app = TestApp::new().await;
    for domain in [
        "attacker.example",
        "https://x.myshopify.com",
        "x.myshopify.com:8443",
        "x.myshopify.com/admin",
        "x.myshopify.com.",
        "x.myshopify.com.attacker.example",
        "attacker.example@x.myshopify.com",
        "attacker.example#.myshopify.com",
        "a.b.myshopify.com",
        "127.0.0.1",
    ] {
        let store = json!({"store": {"name": "S", "channel": "shopify", "shop_domain": domain}});
        let (status, json) = app.call(Method::POST, "/stores.json", Some(store)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{domain}: {json}");
        assert_eq!(
            errors(&json),
            ["shop_domain must be a Shopify shop's host such as my-shop.myshopify.com"],
            "{domain}"
        );
        let (status, _) = app
            .call(
                Method::PUT,
                &format!("/stores/{}.json", app.shop.id),
                Some(json!({"store": {"shop_domain": domain}})),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{domain}");
    }
    let store = json!({"store": {"name": "S", "channel": "shopify", "shop_domain": "My-Shop.myshopify.com"}});
    let (status, json) = app.call(Method::POST, "/stores.json", Some(store)).await;
    assert_eq!(status, StatusCode::CREATED, "{json}");
    assert_eq!(json["store"]["shop_domain"], "my-shop.myshopify.com");
    let sandbox =
        json!({"store": {"name": "S", "channel": "shopify", "shop_domain": "s.myshopify.com", "sandbox": true}});
    let (status, json) = app.call(Method::POST, "/stores.json", Some(sandbox)).await;
    assert_eq!(
        (status, errors(&json)),
        (StatusCode::UNPROCESSABLE_ENTITY, vec!["sandbox only eBay stores have a sandbox".to_owned()])
    );
    let (status, json) = app
        .call(Method::POST, "/stores.json", Some(json!({"store": {"name": "E", "channel": "ebay", "sandbox": true}})))
        .await;
    assert_eq!((status, json["store"]["sandbox"].clone()), (StatusCode::CREATED, json!(true)));
}

/// A channel's real host, resolved to a local socket that counts connections and closes them:
/// proof that a call went to the channel's own host without leaving the machine.
struct FixedHost {
    name: &'static str,
    address: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl FixedHost {
    async fn start(name: &'static str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listen");
        let address = listener.local_addr().expect("address");
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { name, address, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// An HTTP client that reaches these hosts locally (and nothing else by name).
fn client_for(hosts: &[&FixedHost]) -> reqwest::Client {
    let mut builder = shipsync_channels::http_client_builder().expect("TLS").timeout(std::time::Duration::from_secs(2));
    for host in hosts {
        builder = builder.resolve(host.name, host.address);
    }
    builder.build().expect("client")
}

#[tokio::test]
async fn the_exporter_sends_credentials_only_to_each_channels_own_host() {
    let app = TestApp::new().await;
    let attacker = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(500)).mount(&attacker).await;
    let evil = |connection: ChannelConnection| ChannelConnection {
        base_url: Some(attacker.uri()),
        auth_url: Some(format!("{}/token", attacker.uri())),
        ..connection
    };
    let settings =
        ExportSettings { ship_confirmation: Some(ShipConfirmation::TrackingAssigned), ..ExportSettings::default() };
    let shopify = FixedHost::start("victim-shop.myshopify.com").await;
    let amazon = FixedHost::start("api.amazon.com").await;
    let ebay = FixedHost::start("api.ebay.com").await;
    let ebay_sandbox = FixedHost::start("api.sandbox.ebay.com").await;
    let back_market = FixedHost::start("www.backmarket.fr").await;
    let walmart = FixedHost::start("marketplace.walmartapis.com").await;
    let groupon = FixedHost::start("scm.commerceinterface.com").await;
    let wish = FixedHost::start("merchant.wish.com").await;
    let ebay_credentials =
        [("ebay_client_id", "id"), ("ebay_client_secret", "ebay-secret"), ("refresh_token", "ebay-refresh")];
    let stores = [
        (
            ChannelKind::Shopify,
            ChannelConnection { shop_domain: Some("victim-shop.myshopify.com".into()), ..ChannelConnection::default() },
            vec![("access_token", "shpat_victim")],
            "1001",
            &shopify,
        ),
        (
            ChannelKind::Amazon,
            ChannelConnection { marketplace_id: Some("ATVPDKIKX0DER".into()), ..ChannelConnection::default() },
            vec![("lwa_client_id", "lwa-id"), ("lwa_client_secret", "lwa-secret"), ("refresh_token", "lwa-refresh")],
            "111-2222222-3333333",
            &amazon,
        ),
        (ChannelKind::Ebay, ChannelConnection::default(), ebay_credentials.to_vec(), "12-1-1", &ebay),
        (
            ChannelKind::Ebay,
            ChannelConnection { sandbox: true, ..ChannelConnection::default() },
            ebay_credentials.to_vec(),
            "12-1-2",
            &ebay_sandbox,
        ),
        (
            ChannelKind::BackMarket,
            ChannelConnection::default(),
            vec![("api_token", "bm-token")],
            "5550001",
            &back_market,
        ),
        (
            ChannelKind::Walmart,
            ChannelConnection::default(),
            vec![("walmart_client_id", "wm-id"), ("walmart_client_secret", "wm-secret")],
            "1796277083099",
            &walmart,
        ),
        (
            ChannelKind::Groupon,
            ChannelConnection::default(),
            vec![("supplier_id", "4242"), ("token", "gr-token")],
            "GRP-9",
            &groupon,
        ),
        (
            ChannelKind::Wish,
            ChannelConnection { origin_country: Some("US".into()), ..ChannelConnection::default() },
            vec![
                ("wish_client_id", "wi-id"),
                ("wish_client_secret", "wi-secret"),
                ("refresh_token", "wi-refresh"),
                ("access_token", "wi-access"),
                ("access_token_expires_at", "2099-01-01T00:00:00Z"),
            ],
            "5f1a0c2e9b1d4a0012ab9999",
            &wish,
        ),
    ];
    for (channel, connection, credentials, order, _) in &stores {
        let po = app
            .channel_order(
                *channel,
                settings.clone(),
                evil(connection.clone()),
                credentials,
                order,
                ("SKU-1", 2, "line-1"),
            )
            .await;
        app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 2)], &[&format!("1Z{order}")])).await;
    }

    // As deployed: fixed endpoints (the exporter's default).
    let hosts: Vec<&FixedHost> = stores.iter().map(|store| store.4).collect();
    let exporter =
        Exporter::new(app.table.clone(), app.aws.sqs.clone(), client_for(&hosts), &app.aws.exporter_config());
    let runner =
        Runner::new(app.aws.clone(), exporter, OrderProcessor::new(app.table.clone(), app.aws.export_planner()));
    let mut delivered = 0;
    for _ in 0..5 {
        delivered += runner.deliver_batch().await.expect("deliver");
        if delivered >= stores.len() {
            break;
        }
    }
    assert!(delivered >= stores.len(), "{delivered} deliveries");
    let received = attacker.received_requests().await.unwrap_or_default();
    assert!(received.is_empty(), "credentials went to a store's base_url: {:?}", received.first());
    for host in hosts {
        assert!(host.connections() >= 1, "nothing reached {}", host.name);
    }
}

#[tokio::test]
async fn the_poller_sends_the_shops_token_only_to_the_shops_host() {
    let attacker = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(500)).mount(&attacker).await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&attacker.uri())).await;
    let shop = FixedHost::start("test-shop.myshopify.com").await;
    let poller =
        OrderPoller::new(app.table.clone(), app.aws.sqs.clone(), client_for(&[&shop]), app.aws.order_queue_url.clone());
    let report = poller.tick().await.expect("tick");
    assert_eq!(report.failures.len(), 1, "{report:?}");
    assert!(attacker.received_requests().await.unwrap_or_default().is_empty(), "the token went to the base_url");
    assert!(shop.connections() >= 1, "nothing reached the shop's host");
}

fn template() -> serde_yaml::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("template")).expect("parse template")
}

/// The KMS actions each function's policies grant, with the statement that grants them.
fn kms_grants(function: &serde_yaml::Value) -> Vec<(String, serde_yaml::Value)> {
    let mut grants = Vec::new();
    for policy in function["Properties"]["Policies"].as_sequence().into_iter().flatten() {
        for statement in policy["Statement"].as_sequence().into_iter().flatten() {
            let actions = match &statement["Action"] {
                serde_yaml::Value::String(action) => vec![action.clone()],
                serde_yaml::Value::Sequence(list) => {
                    list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect()
                }
                _ => Vec::new(),
            };
            for action in actions.into_iter().filter(|action| action.starts_with("kms:")) {
                grants.push((action, statement.clone()));
            }
        }
    }
    grants
}

/// A KMS action a function is granted, and the purpose it is limited to.
type KmsGrant = (&'static str, Option<&'static str>);

/// Only the API seals credentials (and the order poller, the channel tokens it renews: Wish's),
/// and only the functions that call channels or check webhook signatures open them.
#[test]
fn only_the_api_and_token_renewals_encrypt_and_only_functions_that_call_channels_or_check_webhooks_decrypt() {
    let template = template();
    let resources = template["Resources"].as_mapping().expect("resources");
    let key = &template["Resources"]["CredentialsKey"];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    assert_eq!(template["Resources"]["CredentialsKeyAlias"]["Type"], "AWS::KMS::Alias");
    // (function, its grants on the key in the template's order: action, the purpose it is
    // limited to; the API seals both kinds).
    let expected: [(&str, &[KmsGrant]); 5] = [
        ("ShipmentsApi", &[("kms:Encrypt", None)]),
        ("Exporter", &[("kms:Decrypt", Some("channel"))]),
        ("OrderPoller", &[("kms:Decrypt", Some("channel")), ("kms:Encrypt", Some("channel"))]),
        ("ShopifyWebhooks", &[("kms:Decrypt", Some("webhook"))]),
        // A store's carrier secret is one of its webhook secrets: no deployment-wide one.
        ("CarrierWebhooks", &[("kms:Decrypt", Some("webhook"))]),
    ];
    for (name, function) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::Serverless::Function") {
        let name = name.as_str().expect("name");
        let grants = kms_grants(function);
        let environment = &function["Properties"]["Environment"]["Variables"];
        match expected.iter().find(|(function, _)| *function == name) {
            Some((_, wanted)) => {
                let actions: Vec<&str> = grants.iter().map(|(a, _)| a.as_str()).collect();
                let wanted_actions: Vec<&str> = wanted.iter().map(|(action, _)| *action).collect();
                assert_eq!(actions, wanted_actions, "{name}");
                for ((_, statement), (action, purpose)) in grants.iter().zip(wanted.iter()) {
                    assert!(
                        format!("{:?}", statement["Resource"]).contains("CredentialsKey.Arn"),
                        "{name} {action}: only the key"
                    );
                    let conditions = &statement["Condition"];
                    // Every secret is bound to its store.
                    let keys = ["retailer_id", "store_id", "purpose"];
                    assert_eq!(
                        conditions["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"],
                        serde_yaml::to_value(keys).expect("yaml"),
                        "{name} {action}"
                    );
                    for key in keys {
                        assert_eq!(
                            conditions["Null"][format!("kms:EncryptionContext:{key}")],
                            "false",
                            "{name} {action}: {key}"
                        );
                    }
                    let limited = conditions["StringEquals"]["kms:EncryptionContext:purpose"].as_str();
                    assert_eq!(limited, *purpose, "{name} {action}: only what it needs");
                }
                assert!(!environment["SHIPSYNC_CREDENTIALS_KEY_ID"].is_null(), "{name} needs the key id");
            }
            None => {
                assert!(grants.is_empty(), "{name} may not use the credentials key: {grants:?}");
                assert!(environment["SHIPSYNC_CREDENTIALS_KEY_ID"].is_null(), "{name}");
            }
        }
        // No deployed function may honour a store's base_url.
        assert!(environment["SHIPSYNC_ALLOW_STORE_BASE_URL"].is_null(), "{name}");
    }
}

#[tokio::test]
async fn credentials_stored_in_plaintext_by_an_earlier_version_are_refused_until_sealed() {
    let app = TestApp::new().await;
    let legacy = "shpat_legacy_plaintext_31337";
    let mut item: std::collections::HashMap<String, AttributeValue> =
        credentials_key(app.retailer.id, app.shop.id).into_iter().collect();
    item.insert(
        "data".into(),
        AttributeValue::M([("access_token".to_owned(), AttributeValue::S(legacy.to_owned()))].into()),
    );
    app.table.client().put_item().table_name(app.table.table_name()).set_item(Some(item)).send().await.expect("put");
    let refused = app.table.credentials(app.retailer.id, app.shop.id).await;
    assert!(matches!(refused, Err(TableError::Corrupt { .. })), "plaintext was used: {refused:?}");

    // `shipsync-admin seal-credentials` does this with an encrypt-only cipher.
    let sealed = app.aws.encrypt_only_table().seal_plaintext_credentials().await.expect("seal");
    assert_eq!(sealed, 1);
    assert!(!table_text(&app).await.contains(legacy), "still in plaintext");
    let opened = app.table.credentials(app.retailer.id, app.shop.id).await.expect("open");
    assert_eq!(opened.0.get("access_token").map(String::as_str), Some(legacy));
    assert_eq!(app.aws.encrypt_only_table().seal_plaintext_credentials().await.expect("again"), 0, "idempotent");
}

/// Two tenants' stores that confirm on movement, each registering with EasyPost and signing its
/// scans with its own secret.
async fn two_tracked_tenants() -> (TestApp, TestApp, MockServer) {
    let app = TestApp::new().await;
    let other = app.another_tenant().await;
    let tracker = MockServer::start().await;
    for (tenant, secret) in [(&app, STORE_A_SECRET), (&other, STORE_B_SECRET)] {
        let moving = json!({"store": {"ship_confirmation": "tracking_movement"}});
        let (status, json) = tenant.call(Method::PUT, &format!("/stores/{}.json", tenant.shop.id), Some(moving)).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        tenant.track_with(TrackingProvider::Easypost, &tracker.uri(), secret).await;
    }
    (app, other, tracker)
}

const STORE_A_SECRET: &str = "store-a-easypost-secret";
const STORE_B_SECRET: &str = "store-b-easypost-secret";

fn easypost_scan(event: &str, tracking: &str) -> serde_json::Value {
    json!({"id": event, "object": "Event", "description": "tracker.updated",
        "result": {"id": "trk_1", "object": "Tracker", "tracking_code": tracking, "status": "in_transit",
            "updated_at": "2026-03-02T13:00:00Z"}})
}

async fn tracking_state(tenant: &TestApp, shipment: &serde_json::Value) -> (serde_json::Value, serde_json::Value) {
    let (status, read) = tenant.call(Method::GET, &format!("/shipments/{}.json", shipment["id"]), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    (read["shipment"]["tracking_status"].clone(), read["shipment"]["export_state"].clone())
}

/// The flaw of one secret per provider for the whole deployment: any tenant could sign a scan for
/// another's parcel. A store's URL takes only scans signed with that store's own secret.
#[tokio::test]
async fn a_scan_signed_with_one_stores_secret_is_refused_at_another_stores_url() {
    let (app, other, _tracker) = two_tracked_tenants().await;
    let po = other.purchase_order(&other.vendor, "B-1", "Theirs", &[1]).await;
    let theirs = other.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZB0001"])).await;
    assert_eq!(theirs["export_state"], "waiting_for_movement");

    let forged = easypost_scan("evt_forged", "1ZB0001");
    let (status, answer) = app.post_scan(Provider::EasyPost, other.shop.id, Some(STORE_A_SECRET), &forged).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(!answer.to_string().contains(&app.shop.id.to_string()), "says nothing of store A: {answer}");
    assert_eq!(app.run_orders().await, 0, "nothing queued");
    assert_eq!(tracking_state(&other, &theirs).await, (json!(null), json!("waiting_for_movement")));

    // Signed with B's own secret, at B's URL, the same scan moves B's parcel.
    let (status, _) = app.post_scan(Provider::EasyPost, other.shop.id, Some(STORE_B_SECRET), &forged).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.run_orders().await, 1);
    assert_eq!(tracking_state(&other, &theirs).await, (json!("in_transit"), json!("scheduled")));
}

/// A scan reaches only the shipments of the store whose URL it came to: a tracking number that
/// only another store's shipment carries, or that both carry, changes nothing at the other store.
#[tokio::test]
async fn a_scan_at_one_stores_url_changes_nothing_at_another_store() {
    let (app, other, _tracker) = two_tracked_tenants().await;
    let po = other.purchase_order(&other.vendor, "B-2", "Theirs", &[1]).await;
    let theirs =
        other.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZB0002", "SHARED02"])).await;
    let po = app.purchase_order(&app.vendor, "A-2", "Ours", &[1]).await;
    let ours = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["SHARED02"])).await;

    // Signed rightly by store A, for a number only store B's shipment carries: accepted, applied
    // to A's shipments (none carries it), and nothing at B.
    let only_theirs = easypost_scan("evt_b_only", "1ZB0002");
    let (status, _) = app.post_scan(Provider::EasyPost, app.shop.id, Some(STORE_A_SECRET), &only_theirs).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.run_orders().await, 1);
    assert_eq!(tracking_state(&other, &theirs).await, (json!(null), json!("waiting_for_movement")));

    // A number both carry: A's parcel moves, B's does not.
    let shared = easypost_scan("evt_shared", "SHARED02");
    let (status, _) = app.post_scan(Provider::EasyPost, app.shop.id, Some(STORE_A_SECRET), &shared).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.run_orders().await, 1);
    assert_eq!(tracking_state(&app, &ours).await, (json!("in_transit"), json!("scheduled")));
    assert_eq!(tracking_state(&other, &theirs).await, (json!(null), json!("waiting_for_movement")));
}

/// A store that names a tracking provider must give the secret its provider signs scans with,
/// checked with its tracking settings; nothing is saved without it.
#[tokio::test]
async fn a_tracking_provider_without_its_webhook_secret_is_refused() {
    let app = TestApp::new().await;
    let path = format!("/stores/{}.json", app.shop.id);
    let without = json!({"store": {"tracking_provider": "aftership",
        "credentials": {"access_token": SHOPIFY_TOKEN, "tracking_api_key": "as_key"}}});
    let (status, json) = app.call(Method::PUT, &path, Some(without)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(
        errors(&json),
        ["credentials.tracking_webhook_secret is required for a store that registers tracking numbers with \
          aftership (the secret its webhooks to /carrier_webhooks/aftership/<store id> are signed with)"]
    );
    let blank = json!({"store": {"tracking_provider": "aftership", "credentials": {"access_token": SHOPIFY_TOKEN,
        "tracking_api_key": "as_key", "tracking_webhook_secret": " "}}});
    let (status, json) = app.call(Method::PUT, &path, Some(blank)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert!(
        errors(&json).iter().any(|error| error.starts_with("credentials.tracking_webhook_secret must not be blank"))
    );
    let stored = app.table.channel_store(app.retailer.id, app.shop.id).await.expect("read").expect("store");
    assert_eq!(stored.tracking.provider, None, "nothing saved");

    let with = json!({"store": {"tracking_provider": "aftership", "credentials": {"access_token": SHOPIFY_TOKEN,
        "tracking_api_key": "as_key", "tracking_webhook_secret": "as_secret"}}});
    let (status, json) = app.call(Method::PUT, &path, Some(with)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let opened = app.table.webhook_credentials(app.retailer.id, app.shop.id).await.expect("open");
    assert_eq!(opened.tracking_webhook_secret(), Some("as_secret"));
}
