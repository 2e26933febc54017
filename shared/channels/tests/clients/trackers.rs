//! Tracker registration against local fakes of EasyPost, AfterShip and Shippo: the exact request
//! each provider receives, a number already tracked counting as registered, errors that say
//! whether a retry can help, and a fixed deployment never sending a key to a store's address.

use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;
use shipsync_channels::{AFTERSHIP_API_VERSION, ChannelEndpoints, ChannelError, Channels, Registered, SettingsError};
use shipsync_domain::carrier::StandardCarrier;
use shipsync_domain::ids::{RetailerId, StoreId};
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, ChannelStore};
use shipsync_domain::tracking::{TrackingNumber, TrackingProvider};
use wiremock::matchers::{any, basic_auth, body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "tracking-key-1";

fn store(provider: Option<TrackingProvider>, connection: ChannelConnection) -> ChannelStore {
    let mut store =
        ChannelStore::new(StoreId::new_unchecked(7), RetailerId::new_unchecked(1), "Store", ChannelKind::Ebay);
    store.connection = connection;
    store.tracking.provider = provider;
    store
}

fn with_key() -> ChannelCredentials {
    ChannelCredentials([("tracking_api_key".to_owned(), KEY.to_owned())].into_iter().collect())
}

fn number(text: &str) -> TrackingNumber {
    TrackingNumber::parse(text).expect("a tracking number")
}

/// The store's tracker, at the fake, in a deployment that honours store overrides.
fn tracker(provider: TrackingProvider, server: &MockServer) -> Box<dyn shipsync_channels::TrackerRegistry> {
    let connection = ChannelConnection { tracking_base_url: Some(server.uri()), ..ChannelConnection::default() };
    Channels::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        ChannelEndpoints::honouring_store_overrides(),
    )
    .trackers(&store(Some(provider), connection), &with_key())
    .expect("settings that work")
    .expect("a provider")
}

fn registered(tracker_id: Option<&str>, already_registered: bool) -> Registered {
    Registered { tracker_id: tracker_id.map(str::to_owned), already_registered }
}

#[tokio::test]
async fn easypost_receives_the_code_the_carrier_and_the_key_as_basic_user() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .and(basic_auth(KEY, ""))
        .and(body_json(json!({ "tracker": { "tracking_code": "9400111899223197428490", "carrier": "USPS" } })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "trk_1", "object": "Tracker" })))
        .expect(1)
        .mount(&server)
        .await;
    // Without a standard carrier, none is sent: EasyPost detects it.
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .and(basic_auth(KEY, ""))
        .and(body_json(json!({ "tracker": { "tracking_code": "1Z999AA10123456784" } })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "id": "trk_2", "object": "Tracker" })))
        .expect(1)
        .mount(&server)
        .await;
    let easypost = tracker(TrackingProvider::Easypost, &server);
    assert_eq!(easypost.provider(), TrackingProvider::Easypost);
    let usps = easypost.register(&number("9400111899223197428490"), Some(StandardCarrier::Usps)).await;
    assert_eq!(usps, Ok(registered(Some("trk_1"), false)));
    assert_eq!(easypost.register(&number("1Z999AA10123456784"), None).await, Ok(registered(Some("trk_2"), false)));
}

#[tokio::test]
async fn easypost_answering_with_its_existing_tracker_is_a_registration() {
    let server = MockServer::start().await;
    let existing = json!({
        "id": "trk_old", "object": "Tracker", "tracking_code": "1Z999AA10123456784", "carrier": "UPS",
        "status": "in_transit", "created_at": "2026-10-01T10:00:00Z"
    });
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .and(body_json(json!({ "tracker": { "tracking_code": "1Z999AA10123456784", "carrier": "UPS" } })))
        .respond_with(ResponseTemplate::new(200).set_body_json(existing))
        .expect(2)
        .mount(&server)
        .await;
    let easypost = tracker(TrackingProvider::Easypost, &server);
    for _ in 0..2 {
        let again = easypost.register(&number("1Z999AA10123456784"), Some(StandardCarrier::Ups)).await;
        assert_eq!(again, Ok(registered(Some("trk_old"), false)));
    }
}

#[tokio::test]
async fn easypost_refusing_a_number_is_permanent_with_its_message() {
    let server = MockServer::start().await;
    let refusal = json!({ "error": {
        "code": "TRACKER.CREATE.ERROR", "message": "Tracking code does not belong to the carrier", "errors": []
    }});
    Mock::given(method("POST"))
        .and(path("/v2/trackers"))
        .respond_with(ResponseTemplate::new(422).set_body_json(refusal))
        .mount(&server)
        .await;
    let error =
        tracker(TrackingProvider::Easypost, &server).register(&number("XX1"), Some(StandardCarrier::FedEx)).await;
    assert_eq!(
        error,
        Err(ChannelError::permanent(
            "EasyPost answered HTTP 422 for tracking number XX1: Tracking code does not belong to the carrier \
             (TRACKER.CREATE.ERROR)"
        ))
    );
}

#[tokio::test]
async fn aftership_receives_the_number_the_slug_and_its_key_header_at_the_pinned_version() {
    let server = MockServer::start().await;
    let trackings = format!("/tracking/{AFTERSHIP_API_VERSION}/trackings");
    assert_eq!(trackings, "/tracking/2026-07/trackings");
    Mock::given(method("POST"))
        .and(path(trackings.as_str()))
        .and(header("as-api-key", KEY))
        .and(body_json(json!({ "tracking_number": "JD014600006281230889", "slug": "dhl" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "meta": { "code": 201 }, "data": { "id": "as_1", "tracking_number": "JD014600006281230889" }
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(trackings.as_str()))
        .and(header("as-api-key", KEY))
        .and(body_json(json!({ "tracking_number": "1Z999AA10123456784" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({ "meta": { "code": 201 }, "data": {} })))
        .expect(1)
        .mount(&server)
        .await;
    let aftership = tracker(TrackingProvider::Aftership, &server);
    let dhl = aftership.register(&number("JD014600006281230889"), Some(StandardCarrier::DhlExpress)).await;
    assert_eq!(dhl, Ok(registered(Some("as_1"), false)));
    assert_eq!(aftership.register(&number("1Z999AA10123456784"), None).await, Ok(registered(None, false)));
}

#[tokio::test]
async fn aftership_already_tracking_the_number_is_a_registration() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/tracking/2026-07/trackings"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "meta": { "code": 4003, "message": "Tracking already exists.", "type": "BadRequest" },
            "data": { "tracking": { "id": "as_existing", "slug": "ups" } }
        })))
        .expect(1)
        .mount(&server)
        .await;
    let again =
        tracker(TrackingProvider::Aftership, &server).register(&number("1Z1"), Some(StandardCarrier::Ups)).await;
    assert_eq!(again, Ok(registered(Some("as_existing"), true)));
}

#[tokio::test]
async fn aftership_refusing_a_number_slug_or_key_is_permanent() {
    for (status, code, message, expected) in [
        (400, 4005, "The value of `tracking_number` is invalid.", "[4005] (the number is not one AfterShip can track)"),
        (400, 4017, "Tracking number is invalid.", "[4017]"),
        (400, 4010, "The value of `slug` is invalid.", "[4010] (the carrier is not one AfterShip knows)"),
        (400, 4012, "Cannot detect courier.", "[4012] (AfterShip cannot tell the carrier"),
        (401, 401, "Invalid API key.", "Invalid API key. [401]"),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/tracking/2026-07/trackings"))
            .respond_with(ResponseTemplate::new(status).set_body_json(json!({
                "meta": { "code": code, "message": message, "type": "BadRequest" }, "data": {}
            })))
            .mount(&server)
            .await;
        let result = tracker(TrackingProvider::Aftership, &server).register(&number("BAD-1"), None).await;
        match result {
            Err(ChannelError::Permanent { message: said }) => {
                assert!(said.starts_with(&format!("AfterShip answered HTTP {status} for tracking number BAD-1: ")));
                assert!(said.contains(message) && said.contains(expected), "{said}");
            }
            other => panic!("{code}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn shippo_receives_the_carrier_the_number_and_its_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/tracks/"))
        .and(header("authorization", format!("ShippoToken {KEY}").as_str()))
        .and(body_json(json!({ "carrier": "dhl_ecommerce", "tracking_number": "GM2951173225174494" })))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "carrier": "dhl_ecommerce", "tracking_number": "GM2951173225174494", "tracking_status": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let shippo = tracker(TrackingProvider::Shippo, &server);
    let registered_now = shippo.register(&number("GM2951173225174494"), Some(StandardCarrier::DhlEcommerce)).await;
    assert_eq!(registered_now, Ok(registered(None, false)));
}

#[tokio::test]
async fn shippo_without_a_carrier_is_refused_before_any_request() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(201)).expect(0).mount(&server).await;
    let refused = tracker(TrackingProvider::Shippo, &server).register(&number("LX123456789CN"), None).await;
    match refused {
        Err(ChannelError::Permanent { message }) => {
            assert!(message.starts_with("Shippo needs the carrier to track LX123456789CN"), "{message}");
            assert!(message.contains("EasyPost or AfterShip"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable_with_the_wait_asked_for() {
    let answers = [
        (TrackingProvider::Easypost, "/v2/trackers"),
        (TrackingProvider::Aftership, "/tracking/2026-07/trackings"),
        (TrackingProvider::Shippo, "/tracks/"),
    ];
    for (provider, endpoint) in answers {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path(endpoint))
            .respond_with(
                ResponseTemplate::new(429)
                    .insert_header("retry-after", "7")
                    .set_body_json(json!({ "meta": { "code": 429, "message": "Too many requests" } })),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(endpoint))
            .respond_with(ResponseTemplate::new(500).set_body_string("<html>upstream error</html>"))
            .mount(&server)
            .await;
        let registry = tracker(provider, &server);
        let limited = registry.register(&number("1Z999AA10123456784"), Some(StandardCarrier::Ups)).await;
        assert!(
            matches!(&limited, Err(ChannelError::Retryable { retry_after: Some(wait), .. }) if *wait == Duration::from_secs(7)),
            "{provider:?}: {limited:?}"
        );
        let failed = registry.register(&number("1Z999AA10123456784"), Some(StandardCarrier::Ups)).await;
        match failed {
            Err(ChannelError::Retryable { message, retry_after: None }) => {
                assert!(message.contains("HTTP 500") && message.contains("upstream error"), "{message}");
            }
            other => panic!("{provider:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn no_answer_crashes_a_tracker() {
    let bodies = ["", "not json", "[]", "null", r#"{"error":"x","meta":7,"data":[1]}"#, r#"{"meta":{"code":"4003"}}"#];
    for provider in [TrackingProvider::Easypost, TrackingProvider::Aftership, TrackingProvider::Shippo] {
        for status in [200, 201, 400, 404, 409, 503] {
            for body in bodies {
                let server = MockServer::start().await;
                Mock::given(any())
                    .respond_with(ResponseTemplate::new(status).set_body_string(body))
                    .mount(&server)
                    .await;
                let answer = tracker(provider, &server).register(&number("1Z1"), Some(StandardCarrier::FedEx)).await;
                match answer {
                    Ok(done) => assert!(status < 300 && done.tracker_id.is_none(), "{provider:?} {status} {body}"),
                    Err(ChannelError::Retryable { .. }) => assert_eq!(status, 503),
                    Err(ChannelError::Permanent { .. }) => assert!((400..500).contains(&status)),
                    Err(other) => panic!("{other:?}"),
                }
            }
        }
    }
}

#[tokio::test]
async fn a_key_no_header_can_carry_is_the_stores_to_fix_and_is_never_sent() {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(201)).expect(0).mount(&server).await;
    let connection = ChannelConnection { tracking_base_url: Some(server.uri()), ..ChannelConnection::default() };
    let broken = ChannelCredentials([("tracking_api_key".to_owned(), "key\nX-Injected: 1".to_owned())].into());
    let channels = Channels::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        ChannelEndpoints::honouring_store_overrides(),
    );
    for provider in [TrackingProvider::Aftership, TrackingProvider::Shippo] {
        let registry =
            channels.trackers(&store(Some(provider), connection.clone()), &broken).expect("ok").expect("one");
        let refused = registry.register(&number("1Z1"), Some(StandardCarrier::Ups)).await;
        match refused {
            Err(ChannelError::Permanent { message }) => {
                assert!(message.contains("credentials.tracking_api_key") && !message.contains("Injected"), "{message}")
            }
            other => panic!("{provider:?}: {other:?}"),
        }
    }
}

#[test]
fn a_store_connects_to_its_tracker_only_with_a_provider_and_its_key() {
    let channels = Channels::new(
        shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("HTTP client"),
        ChannelEndpoints::fixed(),
    );
    let none = channels.trackers(&store(None, ChannelConnection::default()), &with_key());
    assert!(matches!(none, Ok(None)));
    let keyless = channels.trackers(
        &store(Some(TrackingProvider::Aftership), ChannelConnection::default()),
        &ChannelCredentials::default(),
    );
    match keyless {
        Err(SettingsError::Invalid(errors)) => assert_eq!(
            errors.to_string(),
            "credentials.tracking_api_key is required for a store that registers tracking numbers with aftership"
        ),
        other => panic!("{:?}", other.map(|found| found.map(|tracker| tracker.provider()))),
    }
}

/// A fixed deployment (every Lambda) sends a store's registrations to the provider's own host,
/// never to the store's `tracking_base_url`: the providers' hosts are resolved here to a local
/// listener, so the test sees the connection arrive there (and nothing leaves the machine).
#[tokio::test]
async fn a_fixed_deployment_never_sends_to_a_stores_tracking_base_url() {
    let store_fake = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(201)).expect(0).mount(&store_fake).await;
    let provider_hosts = TcpListener::bind("127.0.0.1:0").expect("a local port");
    provider_hosts.set_nonblocking(true).expect("non-blocking");
    let local = provider_hosts.local_addr().expect("its address");
    let http = shipsync_channels::http_client_builder()
        .expect("TLS")
        .resolve("api.easypost.com", local)
        .resolve("api.aftership.com", local)
        .resolve("api.goshippo.com", local)
        .timeout(Duration::from_millis(500))
        .build()
        .expect("a client");
    let channels = Channels::new(http, ChannelEndpoints::fixed());
    let connection = ChannelConnection { tracking_base_url: Some(store_fake.uri()), ..ChannelConnection::default() };
    for provider in [TrackingProvider::Easypost, TrackingProvider::Aftership, TrackingProvider::Shippo] {
        let registry =
            channels.trackers(&store(Some(provider), connection.clone()), &with_key()).expect("settings").expect("one");
        let unanswered = registry.register(&number("1Z999AA10123456784"), Some(StandardCarrier::Ups)).await;
        // The listener never answers its TLS handshake: the request times out, worth a retry.
        assert!(matches!(unanswered, Err(ChannelError::Retryable { .. })), "{provider:?}: {unanswered:?}");
        assert!(provider_hosts.accept().is_ok(), "{provider:?} was not called at its own host");
    }
}
