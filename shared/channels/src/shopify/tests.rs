use super::*;

fn order_with(fulfillment_orders: Value) -> Value {
    json!({ "fulfillmentOrders": { "nodes": fulfillment_orders } })
}

fn fulfillment_order(id: &str, status: &str, location: &str, lines: &[(&str, &str, u64)]) -> Value {
    json!({
        "id": id,
        "status": status,
        "assignedLocation": { "location": { "id": location } },
        "lineItems": { "nodes": lines.iter().map(|(item, line, remaining)| json!({
            "id": item, "remainingQuantity": remaining, "lineItem": { "id": line }
        })).collect::<Vec<_>>() }
    })
}

#[test]
fn quantities_come_from_open_fulfillment_orders_grouped_by_location() {
    let order = order_with(json!([
        fulfillment_order("FO1", "CLOSED", "L1", &[("FOL0", "LI1", 5)]),
        fulfillment_order("FO2", "OPEN", "L1", &[("FOL1", "LI1", 1), ("FOL2", "LI2", 3)]),
        fulfillment_order("FO3", "IN_PROGRESS", "L2", &[("FOL3", "LI1", 2)]),
    ]));
    let needed = BTreeMap::from([("LI1".to_owned(), 2), ("LI2".to_owned(), 2)]);
    let allocation = allocate(&order, &needed).unwrap();
    assert_eq!(allocation["L1"]["FO2"], [("FOL1".to_owned(), 1), ("FOL2".to_owned(), 2)]);
    assert_eq!(allocation["L2"]["FO3"], [("FOL3".to_owned(), 1)]);
    assert!(!allocation["L1"].contains_key("FO1"), "closed fulfillment orders are left alone");
}

#[test]
fn missing_quantities_are_a_permanent_error() {
    let order = order_with(json!([fulfillment_order("FO2", "OPEN", "L1", &[("FOL1", "LI1", 1)])]));
    let needed = BTreeMap::from([("LI1".to_owned(), 2)]);
    assert!(matches!(allocate(&order, &needed), Err(ChannelError::Permanent { .. })));
}

#[test]
fn ids_become_global_ids_and_throttles_a_wait() {
    assert_eq!(gid("Order", "123"), "gid://shopify/Order/123");
    assert_eq!(gid("Order", "gid://shopify/Order/9"), "gid://shopify/Order/9");
    let cost = json!({"requestedQueryCost": 52, "throttleStatus": {"maximumAvailable": 1000, "currentlyAvailable": 2, "restoreRate": 50}});
    assert_eq!(throttle_wait(&cost), Some(Duration::from_secs(1)));
    let cost = json!({"requestedQueryCost": 502, "throttleStatus": {"currentlyAvailable": 2, "restoreRate": 50}});
    assert_eq!(throttle_wait(&cost), Some(Duration::from_secs(10)));
    assert_eq!(throttle_wait(&json!({})), None);
}
