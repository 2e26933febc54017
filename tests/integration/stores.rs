//! Store settings and vendor overrides: retailer users only, credentials never shown, settings
//! checked.

use http::{Method, StatusCode};
use serde_json::json;
use shipsync_domain::export::ExportSettings;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind};
use shipsync_tools::provision;

use crate::harness::{TestApp, errors};

#[tokio::test]
async fn stores_are_created_read_and_changed_with_write_only_credentials() {
    let app = TestApp::new().await;
    let body = json!({"store": {
        "name": "My Shopify", "channel": "shopify", "shop_domain": "my-shop.myshopify.com",
        "shipment_export_delay_minutes": 45, "send_tracking": false, "export_when": "order_fully_shipped",
        "carrier_mappings": [{"shipper_id": 17, "channel_carrier": "USPS", "tracking_url_template": "https://tools.usps.com/go/TrackConfirmAction?tLabels={tracking}"}],
        "credentials": {"access_token": "shpat_secret_value"}
    }});
    let (status, created) = app.call(Method::POST, "/stores.json", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let store = &created["store"];
    assert_eq!(store["export_shipments"], true, "defaults apply");
    assert_eq!(store["shipment_export_delay_minutes"], 45);
    assert_eq!(store["send_tracking"], false);
    assert_eq!(store["export_when"], "order_fully_shipped");
    assert_eq!(store["credentials_set"], true);
    assert!(!created.to_string().contains("shpat_secret_value"), "credentials are never shown");

    let uri = format!("/stores/{}.json", store["id"]);
    let (status, changed) = app
        .call(Method::PUT, &uri, Some(json!({"store": {"export_shipments": false, "export_when": "each_shipment"}})))
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["store"]["export_shipments"], false);
    assert_eq!(changed["store"]["shipment_export_delay_minutes"], 45, "what is not sent is kept");
    let (_, read) = app.call(Method::GET, &uri, None).await;
    assert_eq!(read["store"], changed["store"]);
    let (_, list) = app.call(Method::GET, "/stores.json", None).await;
    assert_eq!(list["stores"].as_array().map(Vec::len), Some(2));
    assert!(!list.to_string().contains("shpat_secret_value"));
}

#[tokio::test]
async fn bad_store_settings_are_refused_naming_the_field() {
    let app = TestApp::new().await;
    for (store, field) in [
        (json!({"channel": "shopify", "shop_domain": "x.myshopify.com"}), "name"),
        (json!({"name": "No channel"}), "channel"),
        (json!({"name": "Shop", "channel": "shopify"}), "shop_domain"),
        (json!({"name": "Local", "channel": "local"}), "channel"),
        (
            json!({"name": "S", "channel": "shopify", "shop_domain": "s", "shipment_export_delay_minutes": 20000}),
            "shipment_export_delay_minutes",
        ),
        (
            json!({"name": "S", "channel": "shopify", "shop_domain": "s", "carrier_mappings": [{"shipper_id": 999, "channel_carrier": "X"}]}),
            "carrier_mappings[0].shipper_id",
        ),
        (
            json!({"name": "S", "channel": "shopify", "shop_domain": "s", "credentials": {"password": "x"}}),
            "credentials",
        ),
        (json!({"name": "S", "channel": "shopify", "shop_domain": "s", "base_url": "file:///etc"}), "base_url"),
    ] {
        let (status, json) = app.call(Method::POST, "/stores.json", Some(json!({ "store": store }))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{store} → {json}");
        assert!(errors(&json).iter().any(|m| m.starts_with(field)), "{store} → {json}");
    }
    let (status, json) =
        app.call(Method::POST, "/stores.json", Some(json!({"store": {"name": "S", "channel": "myspace"}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    let (_, list) = app.call(Method::GET, "/stores.json", None).await;
    assert_eq!(list["stores"].as_array().map(Vec::len), Some(1), "nothing was created");
}

#[tokio::test]
async fn only_retailer_users_manage_stores_and_vendors() {
    let app = TestApp::new().await;
    let vendor = Some(&app.vendor_user);
    for (method, uri, body) in [
        (Method::GET, "/stores.json".to_owned(), None),
        (
            Method::POST,
            "/stores.json".to_owned(),
            Some(json!({"store": {"name": "Mine", "channel": "shopify", "shop_domain": "x"}})),
        ),
        (Method::GET, format!("/stores/{}.json", app.shop.id), None),
        (Method::PUT, format!("/vendors/{}.json", app.vendor.id), Some(json!({"vendor": {"notify_customer": false}}))),
        (Method::GET, "/exports/failed.json".to_owned(), None),
    ] {
        let (status, _) = app.call_as(vendor, method.clone(), &uri, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    let other = app.another_tenant().await;
    let (status, _) = app.call(Method::GET, &format!("/stores/{}.json", other.shop.id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/vendors/{}.json", other.vendor.id),
            Some(json!({"vendor": {"notify_customer": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, vendors) = app.call(Method::GET, "/vendors.json", None).await;
    assert_eq!(vendors["vendors"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn ship_confirmation_timing_follows_the_channel_and_never_is_for_amazon_only() {
    let app = TestApp::new().await;
    let create = |channel: &str, confirmation: Option<&str>| {
        let mut store =
            json!({"name": format!("{channel} store"), "channel": channel, "shop_domain": "s.myshopify.com"});
        if let Some(value) = confirmation {
            store["ship_confirmation"] = json!(value);
        }
        json!({ "store": store })
    };
    for (channel, expected) in [
        ("amazon", "tracking_movement"),
        ("ebay", "tracking_movement"),
        ("back_market", "tracking_movement"),
        ("shopify", "tracking_assigned"),
    ] {
        let (status, json) = app.call(Method::POST, "/stores.json", Some(create(channel, None))).await;
        assert_eq!(status, StatusCode::CREATED, "{json}");
        assert_eq!(json["store"]["ship_confirmation"], expected, "{channel}");
    }
    let (status, json) = app.call(Method::POST, "/stores.json", Some(create("amazon", Some("never")))).await;
    assert_eq!((status, json["store"]["ship_confirmation"].clone()), (StatusCode::CREATED, json!("never")));
    for channel in ["shopify", "ebay", "back_market"] {
        let (status, json) = app.call(Method::POST, "/stores.json", Some(create(channel, Some("never")))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{channel}");
        assert_eq!(errors(&json), ["ship_confirmation never is allowed for Amazon stores only"]);
    }
}

/// Credentials replace a store's whole: saved with them, a store must be able to work, so each
/// key its channel needs and lacks is named (and nothing is saved). A change without credentials
/// keeps the ones stored.
#[tokio::test]
async fn credentials_are_saved_only_with_every_key_their_channel_needs() {
    let app = TestApp::new().await;
    let create = |channel: &str, credentials: serde_json::Value| json!({"store": {"name": format!("{channel} store"), "channel": channel, "credentials": credentials}});
    for (store, missing) in [
        (create("ebay", json!({"ebay_client_id": "id", "ebay_client_secret": "s"})), vec!["credentials.refresh_token"]),
        (create("back_market", json!({})), vec!["credentials.api_token"]),
        (
            create("amazon", json!({"lwa_client_id": "id"})),
            vec!["credentials.lwa_client_secret", "credentials.refresh_token", "marketplace_id"],
        ),
        (
            json!({"store": {"name": "S", "channel": "shopify", "shop_domain": "s.myshopify.com",
                "credentials": {"webhook_secret": "w"}}}),
            vec!["credentials.access_token"],
        ),
    ] {
        let (status, json) = app.call(Method::POST, "/stores.json", Some(store.clone())).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{store} → {json}");
        let named: Vec<String> =
            errors(&json).iter().filter_map(|e| e.split_whitespace().next().map(str::to_owned)).collect();
        assert_eq!(named, missing, "{store} → {json}");
    }
    let (_, list) = app.call(Method::GET, "/stores.json", None).await;
    assert_eq!(list["stores"].as_array().map(Vec::len), Some(1), "nothing was created");

    // An Amazon store set up with its marketplace takes its three keys, and keeps them through a
    // change that sends none.
    let connection = ChannelConnection { marketplace_id: Some("ATVPDKIKX0DER".into()), ..ChannelConnection::default() };
    let amazon = provision::create_store(
        &app.table,
        app.retailer.id,
        "Amazon",
        ChannelKind::Amazon,
        ExportSettings::default(),
        connection,
    )
    .await
    .expect("store");
    let uri = format!("/stores/{}.json", amazon.id);
    let partial = json!({"store": {"credentials": {"lwa_client_id": "id", "refresh_token": "r"}}});
    let (status, json) = app.call(Method::PUT, &uri, Some(partial)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(errors(&json), ["credentials.lwa_client_secret is required for an Amazon store"]);
    let complete =
        json!({"store": {"credentials": {"lwa_client_id": "id", "lwa_client_secret": "s", "refresh_token": "r"}}});
    let (status, json) = app.call(Method::PUT, &uri, Some(complete)).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, json) = app.call(Method::PUT, &uri, Some(json!({"store": {"send_tracking": false}}))).await;
    assert_eq!((status, json["store"]["credentials_set"].clone()), (StatusCode::OK, json!(true)), "{json}");
    let kept = app.table.credentials(app.retailer.id, amazon.id).await.expect("open");
    assert_eq!(kept.0.get("lwa_client_secret").map(String::as_str), Some("s"));
}

#[tokio::test]
async fn an_update_applies_to_the_store_as_it_stands_not_to_a_copy_another_container_remembers() {
    let app = TestApp::new().await;
    let other_container = app.another_api_container();
    let uri = format!("/stores/{}.json", app.shop.id);
    // The other container reads the store, and remembers it for a minute.
    assert_eq!(app.call_on(&other_container, Method::GET, &uri, None).await.0, StatusCode::OK);
    let (status, _) = app.call(Method::PUT, &uri, Some(json!({"store": {"name": "Renamed"}}))).await;
    assert_eq!(status, StatusCode::OK);
    // The other container changes something else: the rename made elsewhere stays.
    let (status, json) =
        app.call_on(&other_container, Method::PUT, &uri, Some(json!({"store": {"send_tracking": false}}))).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["store"]["name"], "Renamed");
    let (_, now) = app.call(Method::GET, &uri, None).await;
    assert_eq!((now["store"]["name"].clone(), now["store"]["send_tracking"].clone()), (json!("Renamed"), json!(false)));
}
