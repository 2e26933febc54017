use super::*;
use crate::carrier::default_carriers;
use crate::ids::{RetailerId, StoreId};
use crate::purchase_order::NewPurchaseOrder;
use crate::shipment::{ItemInput, ShipmentContext, ShipmentInput, TrackingInput, draft_new_shipment};
use crate::tenant::FeeSettings;
use crate::vocabulary::ChannelOrderId;

fn line(id: &str, sku: Option<&str>, quantity: u32) -> IncomingLine {
    IncomingLine {
        channel_line_item_id: id.into(),
        sku: sku.map(|sku| Sku::received(sku).expect("a SKU")),
        name: format!("line {id}"),
        quantity,
        unit_price: None,
        awaiting_acceptance: false,
        needs_imei: false,
    }
}

fn order(lines: Vec<IncomingLine>) -> IncomingOrder {
    IncomingOrder {
        channel_order_id: ChannelOrderId::received("820982911946154508"),
        number: "1001".into(),
        customer_name: "Bill Smith".into(),
        updated_at: DateTime::UNIX_EPOCH,
        cancelled: false,
        lines,
        cancel_requested: None,
        fulfillments: Vec::new(),
    }
}

fn vendor(id: u64) -> VendorId {
    VendorId::new_unchecked(id)
}

fn catalog(sku: &Sku) -> Option<Product> {
    let vendor_id = match sku.as_str() {
        "A1" | "A2" => vendor(1),
        "B1" => vendor(2),
        _ => return None,
    };
    Some(Product { sku: sku.clone(), vendor_id, name: sku.to_string(), cost: Some(Decimal::new(500, 2)) })
}

fn purchase_order(vendor_id: VendorId, lines: &[(IncomingLine, Option<Decimal>)], first_id: u64) -> PurchaseOrder {
    NewPurchaseOrder {
        retailer_id: RetailerId::new_unchecked(1),
        vendor_id,
        store_id: StoreId::new_unchecked(2),
        public_reference: purchase_order_number(StoreId::new_unchecked(2), "#1001", vendor_id),
        channel_order_id: Some(ChannelOrderId::parse("820982911946154508").expect("an order id")),
        customer_name: "Bill Smith".into(),
        items: new_items(None, lines),
    }
    .build(first_id.., DateTime::UNIX_EPOCH)
    .unwrap()
}

#[test]
fn an_order_splits_by_vendor_and_keeps_unknown_skus_apart() {
    let incoming = order(vec![
        line("1", Some("A1"), 1),
        line("2", Some("B1"), 2),
        line("3", Some("A2"), 1),
        line("4", Some("ZZ"), 1),
        line("5", None, 1),
    ]);
    let split = split_order(&incoming, catalog);
    assert_eq!(split.by_vendor.keys().copied().collect::<Vec<_>>(), [vendor(1), vendor(2)]);
    assert_eq!(
        split.by_vendor[&vendor(1)].iter().map(|(l, _)| l.channel_line_item_id.as_str()).collect::<Vec<_>>(),
        ["1", "3"]
    );
    assert_eq!(split.unknown.iter().map(|l| l.channel_line_item_id.as_str()).collect::<Vec<_>>(), ["4", "5"]);
    assert_eq!(purchase_order_number(StoreId::new_unchecked(4), "#1001", vendor(7)), "S4-1001-V7");
    // Two stores of one retailer, both with an order #1001: two numbers.
    assert_ne!(
        purchase_order_number(StoreId::new_unchecked(4), "1001", vendor(7)),
        purchase_order_number(StoreId::new_unchecked(5), "1001", vendor(7))
    );
}

#[test]
fn only_new_lines_become_new_items() {
    let lines = vec![(line("1", Some("A1"), 1), None), (line("3", Some("A2"), 2), None)];
    let po = purchase_order(vendor(1), &lines[..1], 10);
    let added = new_items(Some(&po), &lines);
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].channel_line_item_id.as_deref(), Some("3"));
}

#[test]
fn later_versions_cancel_removed_quantities_but_never_what_shipped() {
    let lines = vec![(line("1", Some("A1"), 3), None), (line("3", Some("A2"), 2), None)];
    let mut po = purchase_order(vendor(1), &lines, 10);
    po.items[0].quantity_fulfilled = 2;
    // The customer removed line 3 (quantity 0) and one unit of line 1: only one unit of line 1 was unshipped.
    let newer = order(vec![line("1", Some("A1"), 1), line("3", Some("A2"), 0)]);
    assert!(apply_order_changes(&mut po, &newer, DateTime::UNIX_EPOCH));
    assert_eq!((po.items[0].quantity, po.items[0].quantity_cancelled), (2, 1));
    assert_eq!((po.items[1].quantity, po.items[1].quantity_cancelled), (0, 2));
    assert!(po.is_fully_fulfilled());
    assert!(!apply_order_changes(&mut po, &newer, DateTime::UNIX_EPOCH), "the same version changes nothing");
    let cancelled = IncomingOrder { cancelled: true, ..newer };
    assert!(!apply_order_changes(&mut po, &cancelled, DateTime::UNIX_EPOCH), "nothing unshipped is left");
}

#[test]
fn a_line_the_order_does_not_carry_is_never_cancelled() {
    let lines = vec![(line("1", Some("A1"), 3), None), (line("3", Some("A2"), 2), None)];
    let mut po = purchase_order(vendor(1), &lines, 10);
    // A version that lists only line 1 (say, the first page of a long order's lines).
    let partial = order(vec![line("1", Some("A1"), 3)]);
    assert!(!apply_order_changes(&mut po, &partial, DateTime::UNIX_EPOCH));
    assert_eq!((po.items[1].quantity, po.items[1].quantity_cancelled), (2, 0));
    assert_eq!(wanted_quantity(&partial, Some("3")), None);
    assert_eq!(wanted_quantity(&IncomingOrder { cancelled: true, ..partial }, Some("3")), Some(0));
}

#[test]
fn orders_whose_texts_do_not_fit_a_key_are_not_applicable() {
    assert_eq!(check_applicable(&order(vec![line("1", Some("A1"), 1)])), Ok(()));
    let long_sku = "S".repeat(MAX_SKU_BYTES + 1);
    let problem = check_applicable(&order(vec![line("1", Some(&long_sku), 1)])).unwrap_err();
    assert!(problem.contains("lines[0].sku"), "{problem}");
    let long_number = IncomingOrder { number: "9".repeat(MAX_ID_BYTES + 1), ..order(vec![]) };
    assert!(check_applicable(&long_number).unwrap_err().contains("number"));
    assert!(
        check_applicable(&IncomingOrder { channel_order_id: ChannelOrderId::received(" "), ..order(vec![]) }).is_err()
    );
}

fn shipment_of(po: &PurchaseOrder, items: &[(usize, i64)], numbers: &[&str]) -> Shipment {
    let carriers = default_carriers();
    let input = ShipmentInput {
        shipper_id: Some(1),
        items: Some(
            items
                .iter()
                .map(|(i, q)| ItemInput {
                    order_item_id: Some(po.items[*i].id.get()),
                    quantity: Some(*q),
                    ..ItemInput::default()
                })
                .collect(),
        ),
        trackings: Some(
            numbers.iter().map(|n| TrackingInput { tracking: Some((*n).into()), ..TrackingInput::default() }).collect(),
        ),
        ..ShipmentInput::default()
    };
    let context = ShipmentContext {
        purchase_order: po,
        carriers: &carriers,
        fees: FeeSettings::default(),
        now: DateTime::UNIX_EPOCH,
        tracking_corrections: None,
    };
    draft_new_shipment(context, &input).and_then(|d| d.finish(&mut (900..))).unwrap()
}

fn fulfillment(lines: &[(&str, u32)], numbers: &[&str]) -> IncomingFulfillment {
    IncomingFulfillment {
        channel_fulfillment_id: "255858046".into(),
        channel_order_id: ChannelOrderId::received("820982911946154508"),
        lines: lines.iter().map(|(id, q)| ((*id).to_owned(), *q)).collect(),
        tracking_numbers: numbers.iter().map(|n| TrackingNumber::parse(n).expect("a tracking number")).collect(),
        tracking_company: Some("UPS".into()),
        cancelled: false,
    }
}

#[test]
fn reverse_sync_follows_duoplanes_rules() {
    let a = purchase_order(vendor(1), &[(line("1", Some("A1"), 2), None), (line("3", Some("A2"), 1), None)], 10);
    let b = purchase_order(vendor(2), &[(line("2", Some("B1"), 1), None)], 20);
    let orders = [a.clone(), b];
    let planned = shipment_of(&a, &[(0, 2)], &["1Z9"]);

    // An unexported shipment that matches exactly is linked.
    assert_eq!(
        match_fulfillment(&fulfillment(&[("1", 2)], &["1z9"]), &orders, std::slice::from_ref(&planned)),
        ReverseSync::Link(planned.id)
    );
    // One that shipsync exported is known, by the channel's id or, before that is recorded, by its claim.
    let exported =
        planned.claim_export(DateTime::UNIX_EPOCH).exported(DateTime::UNIX_EPOCH, vec!["255858046".into()], true);
    assert_eq!(
        match_fulfillment(&fulfillment(&[("1", 2)], &["1Z9"]), &orders, std::slice::from_ref(&exported)),
        ReverseSync::Known(planned.id)
    );
    let exporting = planned.claim_export(DateTime::UNIX_EPOCH);
    assert_eq!(
        match_fulfillment(&fulfillment(&[("1", 2)], &["1Z9"]), &orders, std::slice::from_ref(&exporting)),
        ReverseSync::Known(planned.id)
    );
    // No exact match, one purchase order, unfulfilled: create it.
    assert_eq!(
        match_fulfillment(&fulfillment(&[("1", 1), ("3", 1)], &["NEW"]), &orders, std::slice::from_ref(&planned)),
        ReverseSync::Create { purchase_order_id: a.id, items: vec![(a.items[0].id, 1), (a.items[1].id, 1)] }
    );
    // Several purchase orders, or more than is unfulfilled, or unknown lines: ignored, with the reason.
    assert!(
        matches!(match_fulfillment(&fulfillment(&[("1", 1), ("2", 1)], &["X"]), &orders, &[]), ReverseSync::Ignore(why) if why.contains("several purchase orders"))
    );
    let mut shipped = a.clone();
    shipped.items[0].quantity_fulfilled = 2;
    assert!(
        matches!(match_fulfillment(&fulfillment(&[("1", 1)], &["X"]), &[shipped], &[]), ReverseSync::Ignore(why) if why.contains("already fulfilled"))
    );
    assert!(
        matches!(match_fulfillment(&fulfillment(&[("99", 1)], &["X"]), &orders, &[]), ReverseSync::Ignore(why) if why.contains("no purchase order"))
    );
}

#[test]
fn one_location_of_an_export_still_being_recorded_is_ours() {
    // Two lines at two locations: the exporter makes one fulfillment per location, each with
    // every tracking number. The first location's webhook arrives before the ids are recorded.
    let a = purchase_order(vendor(1), &[(line("1", Some("A1"), 2), None), (line("3", Some("A2"), 1), None)], 10);
    let orders = [a.clone()];
    let planned = shipment_of(&a, &[(0, 2), (1, 1)], &["1Z9", "1Z8"]);
    let first_location = fulfillment(&[("1", 2)], &["1z8", "1Z9"]);
    let exporting = planned.claim_export(DateTime::UNIX_EPOCH);
    assert_eq!(
        match_fulfillment(&first_location, &orders, std::slice::from_ref(&exporting)),
        ReverseSync::Known(planned.id)
    );
    // Also after the attempt's answer was lost and a retry is planned.
    let retrying = exporting.export_retry(DateTime::UNIX_EPOCH, "timed out".into());
    assert_eq!(
        match_fulfillment(&first_location, &orders, std::slice::from_ref(&retrying)),
        ReverseSync::Known(planned.id)
    );
    // One package of it (a marketplace confirms each package alone, by its own number): ours too.
    let one_package = fulfillment(&[("1", 1)], &["1Z9"]);
    assert_eq!(
        match_fulfillment(&one_package, &orders, std::slice::from_ref(&retrying)),
        ReverseSync::Known(planned.id)
    );
    // Not ours: other tracking numbers, more than the shipment holds, or nothing started yet.
    let other_tracking = fulfillment(&[("1", 1)], &["1Z7"]);
    assert!(!matches!(
        match_fulfillment(&other_tracking, &orders, std::slice::from_ref(&exporting)),
        ReverseSync::Known(_)
    ));
    let mut bigger = a.clone();
    bigger.items[0].quantity = 5;
    let more = fulfillment(&[("1", 3)], &["1Z8", "1Z9"]);
    assert!(!matches!(match_fulfillment(&more, &[bigger], std::slice::from_ref(&exporting)), ReverseSync::Known(_)));
    assert!(!matches!(
        match_fulfillment(&first_location, &orders, std::slice::from_ref(&planned)),
        ReverseSync::Known(_)
    ));
}

#[test]
fn a_version_is_stale_unless_it_is_newer_or_changes_the_cancellation_at_the_same_time() {
    let at = |text: &str| text.parse::<chrono::DateTime<chrono::Utc>>().expect("time");
    let version = |time: &str, cancelled: bool| IncomingOrder {
        channel_order_id: crate::vocabulary::ChannelOrderId::received("1"),
        number: "1".into(),
        customer_name: String::new(),
        updated_at: at(time),
        cancelled,
        lines: Vec::new(),
        cancel_requested: None,
        fulfillments: Vec::new(),
    };
    let applied = version("2026-03-02T12:00:00Z", false);
    assert!(is_stale_version(&applied, &version("2026-03-02T11:00:00Z", true)), "older");
    assert!(is_stale_version(&applied, &version("2026-03-02T12:00:00Z", false)), "the same");
    assert!(
        !is_stale_version(&applied, &version("2026-03-02T12:00:00Z", true)),
        "a cancellation stamped the same time"
    );
    assert!(!is_stale_version(&applied, &version("2026-03-02T12:00:01Z", false)), "newer");
}
