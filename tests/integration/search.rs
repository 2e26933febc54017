//! `GET /shipments.json`: every search parameter, time zones, pagination and the embedded
//! purchase order.

use chrono::Duration;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, errors, shipment_body};

struct Fixture {
    app: TestApp,
    /// Shipment ids in creation order, an hour apart from 12:00Z.
    ids: Vec<u64>,
}

/// Five shipments: two on Bill Smith's order, one on Ada Lovelace's (both vendor A), two on
/// Grace Hopper's (vendor B); the first one is re-invoiced five hours in.
async fn fixture() -> Fixture {
    let app = TestApp::new().await;
    let bill = app.purchase_order(&app.vendor, "PO-S1", "Bill Smith", &[5]).await;
    let ada = app.purchase_order(&app.vendor, "PO-S2", "Ada Lovelace", &[5]).await;
    let grace = app.purchase_order(&app.other_vendor, "PO-S3", "Grace Hopper", &[5]).await;
    let mut ids = Vec::new();
    for (po, tracking, invoice) in [
        (&bill, "1Z1234", Some("INV-1")),
        (&bill, "9400111", None),
        (&ada, "1ZABC", None),
        (&grace, "ZZ1", None),
        (&grace, "ZZ 2", None),
    ] {
        let mut body = shipment_body(&[(po.items[0].id.get(), 1)], &[tracking]);
        if let Some(invoice) = invoice {
            body["shipment"]["vendor_invoice_reference"] = json!(invoice);
        }
        let shipment = app.create_shipment(po, body).await;
        ids.push(shipment["id"].as_u64().expect("id"));
        app.advance(Duration::hours(1));
    }
    // Now 17:00Z: the first shipment gets a new invoice reference.
    let (status, _) = app
        .call(
            Method::PUT,
            &format!("/shipments/{}.json", ids[0]),
            Some(json!({"shipment": {"vendor_invoice_reference": "INV-9"}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    Fixture { app, ids }
}

impl Fixture {
    /// The ids a search returns, as positions in `ids` (0 = first created).
    async fn positions(&self, query: &str) -> Vec<usize> {
        self.positions_as(None, query).await
    }

    async fn positions_as(&self, user: Option<&shipsync_tools::provision::Credentials>, query: &str) -> Vec<usize> {
        let user = user.unwrap_or(&self.app.retailer_user);
        let (status, json) = self.app.call_as(Some(user), Method::GET, &format!("/shipments.json?{query}"), None).await;
        assert_eq!(status, StatusCode::OK, "{query} → {json}");
        let found: Vec<usize> = json["shipments"]
            .as_array()
            .expect("shipments")
            .iter()
            .map(|s| self.ids.iter().position(|id| Some(*id) == s["id"].as_u64()).expect("known id"))
            .collect();
        assert_eq!(json["metadata"]["total_count"], found.len(), "{query}");
        found
    }
}

#[tokio::test]
async fn every_search_parameter_filters() {
    let f = fixture().await;
    let vendor_b = f.app.other_vendor.id;
    let retailer = f.app.retailer.id;
    let cases: Vec<(String, Vec<usize>)> = vec![
        (String::new(), vec![0, 1, 2, 3, 4]),
        ("search[purchase_order_number]=PO-S1".into(), vec![0, 1]),
        ("search[purchase_order_number]=PO-NONE".into(), vec![]),
        ("search[customer_name]=B%20Smi".into(), vec![0, 1]),
        ("search[customer_name]=lovelace".into(), vec![2]),
        ("search[vendor_invoice_reference]=INV-9".into(), vec![0]),
        ("search[vendor_invoice_reference]=INV-1".into(), vec![]),
        ("search[tracking]=1Z".into(), vec![0, 2]),
        ("search[tracking]=1z12".into(), vec![0]),
        ("search[tracking]=ZZ2".into(), vec![4]),
        (format!("search[vendor_id]={vendor_b}"), vec![3, 4]),
        (format!("search[retailer_id]={retailer}"), vec![0, 1, 2, 3, 4]),
        ("search[created_at_min]=2026-03-02T13:00:00Z".into(), vec![1, 2, 3, 4]),
        ("search[created_at_max]=2026-03-02T14:00:00Z".into(), vec![0, 1, 2]),
        ("search[created_at_min]=2026-03-02T13:00:00Z&search[created_at_max]=2026-03-02T14:00:00Z".into(), vec![1, 2]),
        ("search[created_at_min]=2026-03-02T08:30:00-05:00".into(), vec![2, 3, 4]),
        ("search[updated_at_min]=2026-03-02T17:00:00Z".into(), vec![0]),
        ("search[updated_at_max]=2026-03-02T13:00:00Z".into(), vec![1]),
        ("search[invoiced_at_min]=2026-03-02T16:00:00Z".into(), vec![0]),
        ("search[invoiced_at_max]=2026-03-02T16:00:00Z".into(), vec![]),
        ("search[customer_name]=smith&search[tracking]=94".into(), vec![1]),
        (format!("search[vendor_id]={vendor_b}&search[created_at_max]=2026-03-02T15:00:00Z"), vec![3]),
        ("search[purchase_order_number]=PO-S1&search[updated_at_min]=2026-03-02T17:00:00Z".into(), vec![0]),
        ("search[created_at_min]=2026-03-02T16:00:00Z&search[created_at_max]=2026-03-02T13:00:00Z".into(), vec![]),
    ];
    for (query, expected) in cases {
        assert_eq!(f.positions(&query).await, expected, "{query}");
    }
}

#[tokio::test]
async fn times_without_a_zone_are_in_the_users_time_zone() {
    let f = fixture().await;
    // The vendor user is in New York: 09:00 there is 14:00Z, when the third shipment was created.
    let vendor = Some(&f.app.vendor_user);
    assert_eq!(f.positions_as(vendor, "search[created_at_min]=2026-03-02T09:00:00").await, [2]);
    assert_eq!(f.positions_as(vendor, "search[created_at_min]=2026-03-02T09:00:00Z").await, [0, 1, 2]);
    // The retailer user is in UTC.
    assert_eq!(f.positions("search[created_at_min]=2026-03-02T14:00:00").await, [2, 3, 4]);
    assert_eq!(f.positions("search[created_at_max]=2026-03-02").await, Vec::<usize>::new());
}

#[tokio::test]
async fn pages_split_the_results() {
    let f = fixture().await;
    let page = |n: u32| {
        let app = &f.app;
        async move { app.call(Method::GET, &format!("/shipments.json?per_page=2&page={n}"), None).await.1 }
    };
    let ids = |json: &Value| {
        json["shipments"].as_array().expect("list").iter().map(|s| s["id"].as_u64().expect("id")).collect::<Vec<_>>()
    };
    // A page reads at most one more page of matches past itself: the first page counts four and
    // knows there are more, the last reads to the end and knows the total.
    let first = page(1).await;
    assert_eq!(ids(&first), &f.ids[0..2]);
    let mut metadata = first["metadata"].clone();
    let cursor = metadata.as_object_mut().and_then(|m| m.remove("next_cursor")).expect("next_cursor");
    assert!(cursor.is_string(), "a full page with more past it hands out a cursor");
    assert_eq!(
        metadata,
        json!({"total_count": 4, "total_count_exact": false, "has_next_page": true, "page": 1, "per_page": 2})
    );
    let second = page(2).await;
    assert_eq!(ids(&second), &f.ids[2..4]);
    let third = page(3).await;
    assert_eq!(ids(&third), &f.ids[4..5]);
    assert_eq!(
        third["metadata"],
        json!({"total_count": 5, "total_count_exact": true, "has_next_page": false, "page": 3, "per_page": 2,
               "next_cursor": null})
    );
    let beyond = page(4).await;
    assert_eq!(ids(&beyond), Vec::<u64>::new());
    assert_eq!(beyond["metadata"]["total_count"], 5);
    let (_, default) = f.app.call(Method::GET, "/shipments.json", None).await;
    assert_eq!(default["metadata"]["per_page"], 250);
}

#[tokio::test]
async fn the_purchase_order_is_embedded_on_request() {
    let f = fixture().await;
    for flag in ["1", "true"] {
        let (_, json) = f
            .app
            .call(
                Method::GET,
                &format!("/shipments.json?include_shipment_purchase_order={flag}&search[purchase_order_number]=PO-S1"),
                None,
            )
            .await;
        let shipments = json["shipments"].as_array().expect("list");
        assert_eq!(shipments.len(), 2);
        for shipment in shipments {
            assert_eq!(shipment["purchase_order"]["public_reference"], "PO-S1");
            assert_eq!(shipment["purchase_order"]["customer_name"], "Bill Smith");
            assert_eq!(shipment["purchase_order"]["order_items"][0]["quantity_fulfilled"], 2);
        }
    }
    let (_, json) = f.app.call(Method::GET, "/shipments.json", None).await;
    assert!(json["shipments"][0].get("purchase_order").is_none());
}

#[tokio::test]
async fn bad_search_parameters_answer_422_naming_them() {
    let f = fixture().await;
    for (query, field) in [
        ("search[created_at_min]=yesterday", "search[created_at_min]"),
        ("search[updated_at_max]=2026-02-30", "search[updated_at_max]"),
        ("search[vendor_id]=abc", "search[vendor_id]"),
        ("search[colour]=red", "search[colour]"),
        ("per_page=0", "per_page"),
        ("page=-1", "page"),
        ("include_shipment_purchase_order=maybe", "include_shipment_purchase_order"),
    ] {
        let (status, json) = f.app.call(Method::GET, &format!("/shipments.json?{query}"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(errors(&json)[0].starts_with(field), "{query} → {json}");
    }
}
