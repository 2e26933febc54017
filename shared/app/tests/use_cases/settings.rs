//! Channel store settings: every problem named by its field, nothing saved until all are right.

use std::collections::BTreeMap;

use shipsync_app::Failure;
use shipsync_app::settings::StoreSettings;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelKind, StoreChange};

use crate::fixtures::World;

fn credentials(pairs: &[(&str, &str)]) -> Option<ChannelCredentials> {
    Some(ChannelCredentials(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>()))
}

#[tokio::test]
async fn a_store_is_saved_only_when_it_can_work_and_each_problem_names_its_field() {
    let world = World::new();
    let settings = StoreSettings::new(world.table.clone(), false);
    let stores_before = world.table.records().channel_stores.len();
    let change = StoreChange { base_url: Some("https://evil.example".into()), ..StoreChange::default() };
    let refused = settings
        .create(
            &world.retailer_user(),
            "Amazon US",
            ChannelKind::Amazon,
            change,
            credentials(&[("lwa_client_id", "id")]),
        )
        .await;
    let Err(Failure::Invalid(errors)) = refused else { panic!("{refused:?}") };
    for field in ["base_url", "credentials.lwa_client_secret", "credentials.refresh_token", "marketplace_id"] {
        assert!(errors.mentions(field), "{field}: {errors}");
    }
    assert_eq!(world.table.records().channel_stores.len(), stores_before, "nothing saved");

    let change = StoreChange { shop_domain: Some("new-shop.myshopify.com".into()), ..StoreChange::default() };
    let saved = settings
        .create(
            &world.retailer_user(),
            " New shop ",
            ChannelKind::Shopify,
            change,
            credentials(&[("access_token", "shpat_1")]),
        )
        .await
        .expect("saved");
    assert_eq!(saved.store.name, "New shop");
    assert!(saved.credentials_set);
    let refused =
        settings.create(&world.vendor_user(), "Mine", ChannelKind::Shopify, StoreChange::default(), None).await;
    assert!(matches!(refused, Err(Failure::Forbidden(_))));
}

#[tokio::test]
async fn a_store_keeps_its_channel_and_its_credentials_when_a_change_leaves_them_out() {
    let world = World::new();
    let settings = StoreSettings::new(world.table.clone(), false);
    let current = settings.own_store(&world.retailer_user(), world.store).await.expect("the store");
    let refused =
        settings.update(&world.retailer_user(), &current, Some(ChannelKind::Ebay), StoreChange::default(), None).await;
    assert!(matches!(&refused, Err(Failure::Invalid(errors)) if errors.mentions("channel")), "{refused:?}");
    world
        .table
        .records()
        .credentials
        .insert((world.retailer, world.store), credentials(&[("access_token", "t")]).expect("some"));
    let change = StoreChange { shipment_export_delay_minutes: Some(30), ..StoreChange::default() };
    let saved = settings.update(&world.retailer_user(), &current, None, change, None).await.expect("saved");
    assert_eq!(saved.store.export.shipment_export_delay_minutes, 30);
    assert!(saved.credentials_set, "credentials left out are kept");
    let other = shipsync_domain::access::Principal {
        retailer_id: shipsync_domain::ids::RetailerId::new(77).expect("id"),
        ..world.retailer_user()
    };
    assert!(matches!(settings.own_store(&other, world.store).await, Err(Failure::NotFound(_))));
}

#[tokio::test]
async fn an_amazon_seller_is_one_stores_and_a_provider_needs_its_key() {
    let world = World::new();
    let settings = StoreSettings::new(world.table.clone(), false);
    let amazon = |seller: &str| StoreChange {
        marketplace_id: Some("ATVPDKIKX0DER".into()),
        seller_id: Some(seller.into()),
        ..StoreChange::default()
    };
    let keys = || credentials(&[("lwa_client_id", "id"), ("lwa_client_secret", "secret"), ("refresh_token", "Atzr")]);
    let user = world.retailer_user();
    let first = settings.create(&user, "Amazon US", ChannelKind::Amazon, amazon("A3TH9S8BH6GOGM"), keys()).await;
    let first = first.expect("the seller's first store");
    let stores_before = world.table.records().channel_stores.len();
    let credentials_before = world.table.records().credentials.len();
    let second = settings.create(&user, "Amazon again", ChannelKind::Amazon, amazon("A3TH9S8BH6GOGM"), keys()).await;
    let Err(Failure::Invalid(errors)) = second else { panic!("{second:?}") };
    assert!(errors.mentions("seller_id"), "{errors}");
    assert_eq!(world.table.records().channel_stores.len(), stores_before, "nothing saved");
    assert_eq!(world.table.records().credentials.len(), credentials_before, "no credentials written either");

    // The store itself may be saved again with its own seller; a provider without its key may not.
    let provider = StoreChange {
        tracking_provider: Some(Some(shipsync_domain::tracking::TrackingProvider::Easypost)),
        ..amazon("A3TH9S8BH6GOGM")
    };
    let refused = settings.update(&user, &first.store, None, provider.clone(), None).await;
    let Err(Failure::Invalid(errors)) = refused else { panic!("{refused:?}") };
    assert!(errors.mentions("credentials.tracking_api_key"), "{errors}");
    assert!(errors.mentions("credentials.tracking_webhook_secret"), "{errors}");
    let amazon_keys = [("lwa_client_id", "id"), ("lwa_client_secret", "secret"), ("refresh_token", "Atzr")];
    // The key without the secret its scans are signed with: refused too.
    let key_only = credentials(&[amazon_keys.as_slice(), &[("tracking_api_key", "EZAK")]].concat());
    let refused = settings.update(&user, &first.store, None, provider.clone(), key_only).await;
    let Err(Failure::Invalid(errors)) = refused else { panic!("{refused:?}") };
    assert_eq!(
        errors.errors().iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
        ["credentials.tracking_webhook_secret"]
    );
    let with_key = credentials(
        &[amazon_keys.as_slice(), &[("tracking_api_key", "EZAK"), ("tracking_webhook_secret", "whsec")]].concat(),
    );
    let saved = settings.update(&user, &first.store, None, provider, with_key).await.expect("saved with its key");
    assert_eq!(saved.store.tracking.provider, Some(shipsync_domain::tracking::TrackingProvider::Easypost));

    // Another provider does not inherit EasyPost's key.
    let shippo = StoreChange {
        tracking_provider: Some(Some(shipsync_domain::tracking::TrackingProvider::Shippo)),
        ..StoreChange::default()
    };
    let refused = settings.update(&user, &saved.store, None, shippo, None).await;
    let Err(Failure::Invalid(errors)) = refused else { panic!("{refused:?}") };
    assert!(errors.mentions("credentials.tracking_api_key"), "{errors}");
    assert!(errors.mentions("credentials.tracking_webhook_secret"), "nor its secret: {errors}");
}
