use super::*;
use crate::carrier::default_carriers;
use crate::purchase_order::tests::order;
use proptest::prelude::*;

fn context<'a>(po: &'a PurchaseOrder, carriers: &'a [Carrier]) -> ShipmentContext<'a> {
    ShipmentContext {
        purchase_order: po,
        carriers,
        fees: FeeSettings::default(),
        now: DateTime::UNIX_EPOCH,
        tracking_corrections: None,
    }
}

fn item(order_item_id: OrderItemId, quantity: i64) -> ItemInput {
    ItemInput { order_item_id: Some(order_item_id.get()), quantity: Some(quantity), ..ItemInput::default() }
}

fn tracking(number: &str) -> TrackingInput {
    TrackingInput { tracking: Some(number.into()), ..TrackingInput::default() }
}

fn request(po: &PurchaseOrder, quantities: &[i64]) -> ShipmentInput {
    ShipmentInput {
        shipper_name: Some("UPS".into()),
        items: Some(po.items.iter().zip(quantities).map(|(i, q)| item(i.id, *q)).collect()),
        trackings: Some(vec![tracking("1Z1234"), tracking("5678")]),
        ..ShipmentInput::default()
    }
}

fn create(po: &PurchaseOrder, input: &ShipmentInput) -> Result<Shipment, ValidationErrors> {
    let carriers = default_carriers();
    let draft = draft_new_shipment(context(po, &carriers), input)?;
    draft.finish(&mut (500..))
}

fn fields(result: Result<impl std::fmt::Debug, ValidationErrors>) -> Vec<String> {
    match result {
        Ok(value) => panic!("expected errors, got {value:?}"),
        Err(errors) => errors.errors().iter().map(|e| e.field.clone()).collect(),
    }
}

#[test]
fn the_sample_request_creates_a_shipment() {
    let po = order(&[1, 2]);
    let mut input = request(&po, &[1, 2]);
    input.vendor_shipping_cost = Patch::Set(String::new());
    input.vendor_invoice_reference = Patch::Set("AB1234".into());
    input.shipper_shipping_cost = Patch::Set("5.0".into());
    let carriers = default_carriers();
    let draft = draft_new_shipment(context(&po, &carriers), &input).unwrap();
    assert_eq!(draft.ids_needed(), 5);
    assert_eq!(draft.fulfillment_change, FulfillmentChange::from([(po.items[0].id, 1), (po.items[1].id, 2)]));
    let shipment = draft.finish(&mut (500..)).unwrap();
    assert_eq!(shipment.id.get(), 500);
    assert_eq!(shipment.items.iter().map(|i| i.id.get()).collect::<Vec<_>>(), [501, 502]);
    assert_eq!(shipment.trackings.iter().map(|t| t.id.get()).collect::<Vec<_>>(), [503, 504]);
    assert_eq!(shipment.carrier.id.get(), 1);
    assert_eq!(shipment.costs.vendor_shipping, None);
    assert_eq!(shipment.costs.shipper_shipping, Some(Decimal::new(5, 0)));
    assert_eq!(shipment.invoiced_at, Some(DateTime::UNIX_EPOCH));
    assert_eq!(shipment.items[0].order_item_name, "Item 0");
    assert_eq!(shipment.items[0].cost, Some(Decimal::new(1250, 2)));
}

#[test]
fn items_and_trackings_are_required() {
    let po = order(&[1]);
    let input = ShipmentInput { shipper_id: Some(1), items: Some(vec![]), ..ShipmentInput::default() };
    assert_eq!(fields(create(&po, &input)), [ITEMS, TRACKINGS]);
}

#[test]
fn exactly_one_existing_carrier_is_required() {
    let po = order(&[1]);
    let mut input = request(&po, &[1]);
    input.shipper_name = None;
    assert_eq!(fields(create(&po, &input)), ["shipper_id"]);
    input.shipper_id = Some(1);
    input.shipper_scac_code = Some("UPSN".into());
    assert_eq!(fields(create(&po, &input)), ["shipper_id"]);
    input.shipper_id = None;
    assert_eq!(create(&po, &input).map(|s| s.carrier.id.get()), Ok(1));
    input.shipper_scac_code = Some("NOPE".into());
    assert_eq!(fields(create(&po, &input)), ["shipper_scac_code"]);
    input.shipper_scac_code = None;
    input.shipper_name = Some("Pony Express".into());
    assert_eq!(fields(create(&po, &input)), ["shipper_name"]);
    input.shipper_name = Some("  ".into());
    input.shipper_id = Some(0);
    assert_eq!(fields(create(&po, &input)), ["shipper_id"]);
}

#[test]
fn items_must_be_on_the_purchase_order_and_unfulfilled() {
    let po = order(&[1, 2]);
    let mut input = request(&po, &[1, 3]);
    assert_eq!(fields(create(&po, &input)), [format!("{ITEMS}[1].quantity")]);
    input = request(&po, &[0, 1]);
    assert_eq!(fields(create(&po, &input)), [format!("{ITEMS}[0].quantity")]);
    input = request(&po, &[1, 1]);
    if let Some(items) = input.items.as_mut() {
        items[1].order_item_id = Some(999_999);
        items.push(item(po.items[0].id, 1));
    }
    assert_eq!(fields(create(&po, &input)), [format!("{ITEMS}[1].order_item_id"), format!("{ITEMS}[2].order_item_id")]);
}

#[test]
fn costs_accept_numbers_text_and_blank_but_not_nonsense() {
    let po = order(&[1]);
    let mut input = request(&po, &[1]);
    input.vendor_handling_cost = Patch::Set("abc".into());
    input.vendor_tax_cost = Patch::Set("-2".into());
    assert_eq!(fields(create(&po, &input)), ["vendor_handling_cost", "vendor_tax_cost"]);
    input.vendor_handling_cost = Patch::Set("2.5".into());
    input.vendor_tax_cost = Patch::Clear;
    let shipment = create(&po, &input).unwrap();
    assert_eq!(shipment.costs.vendor_handling, Some(Decimal::new(25, 1)));
}

#[test]
fn fees_that_are_off_cannot_be_set() {
    let po = order(&[1]);
    let carriers = default_carriers();
    let mut input = request(&po, &[1]);
    input.vendor_tax_cost = Patch::Set("1.00".into());
    input.vendor_shipping_cost = Patch::Set(String::new());
    let fees = FeeSettings { shipping: false, handling: true, tax: false };
    let result = draft_new_shipment(ShipmentContext { fees, ..context(&po, &carriers) }, &input);
    assert_eq!(fields(result), ["vendor_tax_cost"]);
}

#[test]
fn tracking_numbers_and_serial_codes_are_checked() {
    let po = order(&[2]);
    let mut input = request(&po, &[2]);
    input.trackings = Some(vec![tracking("1Z1"), tracking(" 1z1 "), tracking(" ")]);
    assert_eq!(fields(create(&po, &input)), [format!("{TRACKINGS}[2].tracking"), TRACKINGS.to_owned()]);
    input.trackings = Some(vec![tracking("1Z1")]);
    if let Some(items) = input.items.as_mut() {
        items[0].serial_codes = Some(vec!["A".into(), "B".into(), "C".into()]);
    }
    assert_eq!(fields(create(&po, &input)), [format!("{ITEMS}[0].serial_codes")]);
    if let Some(items) = input.items.as_mut() {
        items[0].serial_codes = Some(vec!["356938035643809".into(), " 356938035643810 ".into()]);
    }
    let shipment = create(&po, &input).unwrap();
    assert_eq!(shipment.items[0].serial_codes, ["356938035643809", "356938035643810"]);
}

#[test]
fn one_parcel_written_with_other_spacing_is_a_duplicate() {
    let po = order(&[2]);
    let mut input = request(&po, &[2]);
    input.trackings = Some(vec![tracking("1Z999AA1"), tracking("1z 999aa1")]);
    assert_eq!(fields(create(&po, &input)), [TRACKINGS.to_owned()]);
}

fn existing(po: &mut PurchaseOrder, quantities: &[i64]) -> Shipment {
    let shipment = create(po, &request(po, quantities)).unwrap();
    po.apply_fulfillment(&fulfillment_change(&[], &shipment.items)).unwrap();
    shipment
}

fn update(po: &PurchaseOrder, shipment: &Shipment, input: &ShipmentInput) -> Result<Shipment, ValidationErrors> {
    let carriers = default_carriers();
    let draft = draft_shipment_update(shipment, context(po, &carriers), input)?;
    draft.finish(&mut (900..))
}

#[test]
fn updates_change_add_and_remove_items_and_trackings() {
    let mut po = order(&[3, 2]);
    let shipment = existing(&mut po, &[1]);
    let input = ShipmentInput {
        shipper_id: Some(2),
        items: Some(vec![
            ItemInput { id: Some(shipment.items[0].id.get()), quantity: Some(3), ..ItemInput::default() },
            item(po.items[1].id, 2),
        ]),
        trackings: Some(vec![
            TrackingInput { id: Some(shipment.trackings[0].id.get()), destroy: true, ..TrackingInput::default() },
            TrackingInput { id: Some(shipment.trackings[1].id.get()), tracking: Some("9999".into()), destroy: false },
            tracking("NEW1"),
        ]),
        ..ShipmentInput::default()
    };
    let carriers = default_carriers();
    let draft = draft_shipment_update(&shipment, context(&po, &carriers), &input).unwrap();
    assert_eq!(draft.fulfillment_change, FulfillmentChange::from([(po.items[0].id, 2), (po.items[1].id, 2)]));
    assert_eq!(draft.ids_needed(), 2);
    let updated = draft.finish(&mut (900..)).unwrap();
    assert_eq!(updated.carrier.id.get(), 2);
    assert_eq!(
        updated.items.iter().map(|i| (i.id.get(), i.quantity)).collect::<Vec<_>>(),
        [(shipment.items[0].id.get(), 3), (900, 2)]
    );
    assert_eq!(
        updated.trackings.iter().map(|t| (t.id.get(), t.tracking.as_str())).collect::<Vec<_>>(),
        [(shipment.trackings[1].id.get(), "9999"), (901, "NEW1")]
    );
    assert_eq!(updated.version, shipment.version + 1);
}

#[test]
fn updates_cannot_overfulfil_or_empty_a_shipment() {
    let mut po = order(&[3]);
    let shipment = existing(&mut po, &[2]);
    let grow = ShipmentInput {
        items: Some(vec![ItemInput {
            id: Some(shipment.items[0].id.get()),
            quantity: Some(4),
            ..ItemInput::default()
        }]),
        ..ShipmentInput::default()
    };
    let errors = update(&po, &shipment, &grow).unwrap_err();
    assert_eq!(
        errors.messages(),
        [format!("{ITEMS}[0].quantity 4 exceeds the 3 still unfulfilled of order item {}", po.items[0].id)]
    );
    let empty = ShipmentInput {
        items: Some(vec![ItemInput { id: Some(shipment.items[0].id.get()), destroy: true, ..ItemInput::default() }]),
        trackings: Some(
            shipment
                .trackings
                .iter()
                .map(|t| TrackingInput { id: Some(t.id.get()), destroy: true, tracking: None })
                .collect(),
        ),
        ..ShipmentInput::default()
    };
    assert_eq!(fields(update(&po, &shipment, &empty)), [ITEMS, TRACKINGS]);
    let unknown = ShipmentInput {
        items: Some(vec![ItemInput { id: Some(1), quantity: Some(1), ..ItemInput::default() }]),
        ..ShipmentInput::default()
    };
    assert_eq!(fields(update(&po, &shipment, &unknown)), [format!("{ITEMS}[0].id")]);
}

#[test]
fn exported_shipments_lock_carrier_items_and_trackings() {
    let mut po = order(&[3]);
    let mut shipment = existing(&mut po, &[1]);
    shipment.sync.exported_at = Some(DateTime::UNIX_EPOCH);
    let change_all = ShipmentInput {
        shipper_id: Some(2),
        items: Some(vec![ItemInput {
            id: Some(shipment.items[0].id.get()),
            quantity: Some(2),
            ..ItemInput::default()
        }]),
        trackings: Some(vec![tracking("EXTRA")]),
        vendor_invoice_reference: Patch::Set("INV-1".into()),
        ..ShipmentInput::default()
    };
    assert_eq!(fields(update(&po, &shipment, &change_all)), ["shipper_id", ITEMS, TRACKINGS]);
    // Sending the locked fields unchanged, and changing an unlocked one, is fine.
    let same = ShipmentInput {
        shipper_name: Some("ups".into()),
        items: Some(vec![ItemInput {
            id: Some(shipment.items[0].id.get()),
            quantity: Some(1),
            ..ItemInput::default()
        }]),
        vendor_invoice_reference: Patch::Set("INV-1".into()),
        ..ShipmentInput::default()
    };
    let updated = update(&po, &shipment, &same).unwrap();
    assert_eq!(updated.vendor_invoice_reference.as_deref(), Some("INV-1"));
}

#[test]
fn a_started_export_locks_carrier_items_and_trackings_until_the_end() {
    let mut po = order(&[3]);
    let created = existing(&mut po, &[1]);
    // The first attempt claimed it, then its answer was lost (retry planned) or it failed.
    let now = DateTime::UNIX_EPOCH;
    let claimed = created.claim_export(now);
    let after_retry = claimed.export_retry(now, "timed out".into());
    let after_failure = claimed.export_failed(now, "refused".into());
    let change_all = ShipmentInput {
        shipper_id: Some(2),
        items: Some(vec![ItemInput { id: Some(created.items[0].id.get()), quantity: Some(2), ..ItemInput::default() }]),
        trackings: Some(vec![tracking("EXTRA")]),
        ..ShipmentInput::default()
    };
    assert!(update(&po, &created, &change_all).is_ok(), "before any attempt, all may change");
    for shipment in [&claimed, &after_retry, &after_failure] {
        assert_eq!(
            fields(update(&po, shipment, &change_all)),
            ["shipper_id", ITEMS, TRACKINGS],
            "{:?}",
            shipment.export
        );
        assert!(shipment.shipping_details_lock().is_some());
    }
    let errors = update(&po, &after_retry, &change_all).unwrap_err();
    assert!(
        errors.messages()[0]
            .contains("is readonly: an export to its channel has started, and the channel may have it already"),
        "{errors:?}"
    );
    // Removing an item or a tracking number is a change too.
    let remove_tracking = ShipmentInput {
        trackings: Some(vec![TrackingInput {
            id: Some(after_retry.trackings[1].id.get()),
            destroy: true,
            tracking: None,
        }]),
        ..ShipmentInput::default()
    };
    assert_eq!(fields(update(&po, &after_retry, &remove_tracking)), [TRACKINGS]);
    // The IMEI a waiting Back Market confirmation needs may still be added, but not changed.
    let add_imei = ShipmentInput {
        items: Some(vec![ItemInput {
            id: Some(after_failure.items[0].id.get()),
            serial_codes: Some(vec!["356938035643809".into()]),
            ..ItemInput::default()
        }]),
        ..ShipmentInput::default()
    };
    let with_imei = update(&po, &after_failure, &add_imei).unwrap();
    assert_eq!(with_imei.items[0].serial_codes, ["356938035643809"]);
    let change_imei = ShipmentInput {
        items: Some(vec![ItemInput {
            id: Some(with_imei.items[0].id.get()),
            serial_codes: Some(vec!["356938035643810".into()]),
            ..ItemInput::default()
        }]),
        ..ShipmentInput::default()
    };
    assert_eq!(fields(update(&po, &with_imei, &change_imei)), [ITEMS]);

    // An item still lacking the IMEI its channel asks for was never sent: a serial number given
    // by mistake may be replaced by the IMEI, which then stays.
    let mut po = order(&[1]);
    po.items[0].needs_imei = true;
    let failed = existing(&mut po, &[1]).claim_export(now).export_failed(now, "needs the IMEI".into());
    let codes = |shipment: &Shipment, codes: &[&str]| ShipmentInput {
        items: Some(vec![ItemInput {
            id: Some(shipment.items[0].id.get()),
            serial_codes: Some(codes.iter().map(|code| (*code).to_owned()).collect()),
            ..ItemInput::default()
        }]),
        ..ShipmentInput::default()
    };
    let with_serial = update(&po, &failed, &codes(&failed, &["SN-ABC-1"])).unwrap();
    let with_imei = update(&po, &with_serial, &codes(&with_serial, &["356938035643809"])).unwrap();
    assert_eq!(with_imei.items[0].serial_codes, ["356938035643809"]);
    assert_eq!(fields(update(&po, &with_imei, &codes(&with_imei, &["356938035643817"]))), [ITEMS]);
}

#[test]
fn accounting_sync_locks_costs_and_invoice_references() {
    let mut po = order(&[3]);
    let mut shipment = existing(&mut po, &[1]);
    shipment.sync.accounting_synced_at = Some(DateTime::UNIX_EPOCH);
    let input = ShipmentInput {
        vendor_shipping_cost: Patch::Set("3.5".into()),
        shipper_invoice_reference: Patch::Set("C-1".into()),
        trackings: Some(vec![tracking("EXTRA")]),
        ..ShipmentInput::default()
    };
    assert_eq!(fields(update(&po, &shipment, &input)), ["vendor_shipping_cost", "shipper_invoice_reference"]);
}

#[test]
fn an_empty_update_changes_nothing() {
    let mut po = order(&[3]);
    let shipment = existing(&mut po, &[1]);
    let carriers = default_carriers();
    let draft = draft_shipment_update(&shipment, context(&po, &carriers), &ShipmentInput::default()).unwrap();
    assert!(draft.is_unchanged_from(&shipment));
    assert!(draft.fulfillment_change.is_empty());
}

proptest! {
    /// A create succeeds exactly when every quantity is between 1 and what is unfulfilled, and
    /// then never fulfils more than was ordered.
    #[test]
    fn creates_respect_unfulfilled_quantities(
        ordered in prop::collection::vec(1u32..5, 1..4),
        already in prop::collection::vec(0u32..5, 4),
        requested in prop::collection::vec(-1i64..7, 4),
    ) {
        let mut po = order(&ordered);
        for (item, done) in po.items.iter_mut().zip(&already) {
            item.quantity_fulfilled = (*done).min(item.quantity);
        }
        let input = request(&po, &requested);
        let valid = po.items.iter().zip(&requested).all(|(item, q)| *q >= 1 && *q <= i64::from(item.unfulfilled()));
        let result = create(&po, &input);
        prop_assert_eq!(result.is_ok(), valid);
        if let Ok(shipment) = result {
            let mut after = po.clone();
            prop_assert!(after.apply_fulfillment(&fulfillment_change(&[], &shipment.items)).is_ok());
            prop_assert!(after.items.iter().all(|item| item.quantity_fulfilled <= item.quantity));
        }
    }

    /// After any sequence of accepted updates, each order item's fulfilled quantity equals what
    /// the shipment holds of it, and never exceeds what was ordered.
    #[test]
    fn updates_keep_fulfilled_quantities_consistent(
        ordered in prop::collection::vec(1u32..5, 1..4),
        steps in prop::collection::vec((0usize..4, 0i64..6, any::<bool>()), 1..12),
    ) {
        let mut po = order(&ordered);
        let mut shipment = existing(&mut po, &[1]);
        for (index, quantity, remove) in steps {
            let Some(order_item) = po.items.get(index % po.items.len()).cloned() else { continue };
            let entry = match shipment.items.iter().find(|i| i.order_item_id == order_item.id) {
                Some(current) => ItemInput { id: Some(current.id.get()), quantity: Some(quantity), destroy: remove, ..ItemInput::default() },
                None => item(order_item.id, quantity),
            };
            let input = ShipmentInput { items: Some(vec![entry]), ..ShipmentInput::default() };
            let carriers = default_carriers();
            if let Ok(draft) = draft_shipment_update(&shipment, context(&po, &carriers), &input) {
                let change = draft.fulfillment_change.clone();
                prop_assert!(po.apply_fulfillment(&change).is_ok());
                shipment = draft.finish(&mut (10_000..)).unwrap();
            }
            for order_item in &po.items {
                let held: u32 = shipment.items.iter().filter(|i| i.order_item_id == order_item.id).map(|i| i.quantity).sum();
                prop_assert_eq!(order_item.quantity_fulfilled, held);
                prop_assert!(order_item.quantity_fulfilled <= order_item.quantity);
            }
            prop_assert!(!shipment.items.is_empty());
        }
    }
}

fn in_package(order_item_id: OrderItemId, quantity: i64, package: &str) -> ItemInput {
    ItemInput { package_tracking: Some(package.into()), ..item(order_item_id, quantity) }
}

#[test]
fn items_are_assigned_to_packages_all_or_none_and_only_to_the_shipments_own() {
    let po = order(&[3, 1]);
    let (first, second) = (po.items[0].id, po.items[1].id);
    let mut input = request(&po, &[]);
    // One order item split over both packages, once per package.
    input.items =
        Some(vec![in_package(first, 2, "1Z1234"), in_package(first, 1, "5678"), in_package(second, 1, "5678")]);
    let shipment = create(&po, &input).expect("packed");
    let packages: Vec<_> = shipment.items.iter().map(|i| i.package.as_ref().map(|p| p.as_str().to_owned())).collect();
    assert_eq!(packages, [Some("1Z1234".into()), Some("5678".into()), Some("5678".into())]);

    input.items = Some(vec![in_package(first, 2, "1Z1234"), in_package(first, 1, "1z 1234")]);
    assert_eq!(fields(create(&po, &input)), ["shipment_items_attributes[1].order_item_id"], "once per package");
    input.items = Some(vec![in_package(first, 1, "1Z1234"), item(second, 1)]);
    assert_eq!(fields(create(&po, &input)), ["shipment_items_attributes"], "all or none");
    input.items = Some(vec![in_package(first, 1, "NOT-OURS")]);
    assert_eq!(fields(create(&po, &input)), ["shipment_items_attributes[0].package_tracking"]);
    input.items = Some(vec![in_package(first, 4, "1Z1234")]);
    assert_eq!(fields(create(&po, &input)), ["shipment_items_attributes[0].quantity"], "quantities still count");
}

#[test]
fn a_shipping_method_is_kept_trimmed_and_bounded() {
    let po = order(&[1]);
    let mut input = request(&po, &[1]);
    input.shipping_method = Patch::Set("  Ground ".into());
    assert_eq!(create(&po, &input).expect("created").shipping_method.as_deref(), Some("Ground"));
    input.shipping_method = Patch::Set("x".repeat(MAX_SHIPPING_METHOD_LENGTH + 1));
    assert_eq!(fields(create(&po, &input)), ["shipping_method"]);
    input.shipping_method = Patch::Set("Ground\nExpress".into());
    assert_eq!(fields(create(&po, &input)), ["shipping_method"]);
}

#[test]
fn an_imei_is_missing_only_where_the_channel_asks_for_one_per_unit() {
    let mut po = order(&[2, 1]);
    po.items[0].needs_imei = true;
    let shipment = create(&po, &request(&po, &[2, 1])).expect("created");
    assert!(shipment.items[0].needs_imei && !shipment.items[1].needs_imei, "copied from the order line");
    assert_eq!(shipment.missing_imeis(), ["SKU-0"], "a single unit without a code is not a phone by itself");
    assert!(lacks_imei(true, 2, &["356938035643809".into()]), "one code for two phones");
    assert!(!lacks_imei(true, 2, &["356938035643809".into(), "356938035643817".into()]));
    assert!(!lacks_imei(false, 1, &[]));
    assert!(lacks_imei(true, 1, &["SN-ABC-1".into()]), "a serial number is no IMEI");
    assert!(lacks_imei(true, 1, &["35693803564380".into()]), "14 digits are no IMEI");
}

/// A channel that takes corrections (Walmart: 4 hours) lets an exported shipment's numbers be
/// replaced in place within its window; each correction remembers what the channel holds, a
/// number set back needs none, and after the window (or for any other change) the lock holds.
#[test]
fn tracking_is_corrected_in_place_within_the_channels_window_only() {
    let mut po = order(&[3]);
    let created = existing(&mut po, &[1]);
    let exported_at = DateTime::UNIX_EPOCH + chrono::Duration::hours(1);
    let shipment = created.exported(exported_at, vec!["1Z999AA10000000101".into()], true);
    let held = shipment.trackings[0].tracking.clone();
    let carriers = default_carriers();
    let within = |now_hours: i64| ShipmentContext {
        now: DateTime::UNIX_EPOCH + chrono::Duration::hours(now_hours),
        tracking_corrections: Some(chrono::Duration::hours(4)),
        ..context(&po, &carriers)
    };
    let correct = |to: &str| ShipmentInput {
        trackings: Some(vec![TrackingInput {
            id: Some(shipment.trackings[0].id.get()),
            tracking: Some(to.into()),
            ..TrackingInput::default()
        }]),
        ..ShipmentInput::default()
    };
    let corrected =
        draft_shipment_update(&shipment, within(3), &correct("1ZCORRECTED1")).unwrap().finish(&mut (900..)).unwrap();
    let pending = corrected.export.correction.clone().expect("a correction to send");
    assert_eq!(pending.channel_holds, [(shipment.trackings[0].id, held.clone())]);
    // Corrected again before it was sent: the channel still holds the first number.
    let again =
        draft_shipment_update(&corrected, within(3), &correct("1ZCORRECTED2")).unwrap().finish(&mut (900..)).unwrap();
    assert_eq!(again.export.correction.expect("pending").channel_holds, [(shipment.trackings[0].id, held.clone())]);
    // Set back to what the channel holds: nothing to send.
    let back = draft_shipment_update(&corrected, within(3), &correct(held.as_str())).unwrap().finish(&mut (900..));
    assert_eq!(back.unwrap().export.correction, None);
    // After the window, or on a channel without one, the number is readonly.
    let late = draft_shipment_update(&shipment, within(5), &correct("1ZCORRECTED1")).unwrap_err();
    assert!(late.messages()[0].contains("took tracking corrections until 1970-01-01T05:00:00Z"), "{late:?}");
    assert_eq!(fields(update(&po, &shipment, &correct("1ZCORRECTED1"))), [TRACKINGS]);
    // A number added is no correction.
    let added = ShipmentInput { trackings: Some(vec![tracking("1ZADDED")]), ..ShipmentInput::default() };
    assert_eq!(fields(draft_shipment_update(&shipment, within(3), &added).map(|_| ())), [TRACKINGS]);

    // Sent while a newer correction came: the newer stays, holding what was sent.
    let sent = corrected.correction_sent_as(
        &pending,
        &[(shipment.trackings[0].id, TrackingNumber::parse("1ZCORRECTED1").unwrap())],
        vec![],
        DateTime::UNIX_EPOCH,
    );
    assert_eq!(sent.export.correction, None, "the one sent ends");
    let mut newer = corrected.clone();
    newer.trackings[0].tracking = TrackingNumber::parse("1ZCORRECTED2").unwrap();
    newer.export.correction = Some(crate::export::TrackingCorrection {
        requested_at: exported_at + chrono::Duration::minutes(150),
        ..pending.clone()
    });
    let kept = newer.correction_sent_as(
        &pending,
        &[(shipment.trackings[0].id, TrackingNumber::parse("1ZCORRECTED1").unwrap())],
        vec![],
        DateTime::UNIX_EPOCH,
    );
    assert_eq!(
        kept.export.correction.expect("the newer stays").channel_holds,
        [(shipment.trackings[0].id, TrackingNumber::parse("1ZCORRECTED1").unwrap())]
    );
}
