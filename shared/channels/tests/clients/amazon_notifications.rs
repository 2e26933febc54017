//! Subscribing a seller to `ORDER_CHANGE`: the queue made a destination with a grantless token
//! (reused when it exists), the seller subscribed with its own token (kept when it exists), and
//! a subscription to another destination refused with what to do.

use serde_json::json;
use shipsync_channels::ChannelError;

use crate::amazon_reads::amazon;
use wiremock::matchers::{body_partial_json, body_string_contains, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const QUEUE: &str = "arn:aws:sqs:us-east-1:123456789012:shipsync-AmazonNotificationQueue-1";

/// Login with Amazon: a grantless token for the notifications scope, and the seller's token.
async fn tokens(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/auth/o2/token"))
        .and(body_string_contains("grant_type=client_credentials"))
        .and(body_string_contains("scope=sellingpartnerapi%3A%3Anotifications"))
        .and(body_string_contains("client_id=amzn-id"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": "Atc|grantless", "expires_in": 3600})),
        )
        .mount(server)
        .await;
    Mock::given(method("POST"))
        .and(path("/auth/o2/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"access_token": "Atza|seller", "expires_in": 3600})),
        )
        .mount(server)
        .await;
}

fn subscribe() -> wiremock::MockBuilder {
    Mock::given(method("POST"))
        .and(path("/notifications/v1/subscriptions/ORDER_CHANGE"))
        .and(header("x-amz-access-token", "Atza|seller"))
        .and(body_partial_json(json!({"payloadVersion": "1.0", "destinationId": "dest-1",
            "processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE",
                "orderChangeTypes": ["OrderStatusChange", "BuyerRequestedChange"]}}})))
}

#[tokio::test]
async fn a_new_seller_gets_a_destination_for_the_queue_and_a_subscription() {
    let server = MockServer::start().await;
    tokens(&server).await;
    Mock::given(method("GET"))
        .and(path("/notifications/v1/destinations"))
        .and(header("x-amz-access-token", "Atc|grantless"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"payload": []})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/notifications/v1/destinations"))
        .and(header("x-amz-access-token", "Atc|grantless"))
        .and(body_partial_json(json!({"resourceSpecification": {"sqs": {"arn": QUEUE}}})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"payload": {"destinationId": "dest-1", "name": "shipsync",
            "resource": {"sqs": {"arn": QUEUE}}}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    subscribe()
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"payload": {"subscriptionId": "sub-1",
            "payloadVersion": "1.0", "destinationId": "dest-1"}})))
        .expect(1)
        .mount(&server)
        .await;
    let made = amazon(&server).subscribe_order_changes(QUEUE).await.expect("subscribed");
    assert_eq!((made.destination_id.as_str(), made.subscription_id.as_str()), ("dest-1", "sub-1"));
    assert!(!made.already_subscribed);
}

#[tokio::test]
async fn subscribing_again_reuses_the_destination_and_keeps_the_subscription() {
    let server = MockServer::start().await;
    tokens(&server).await;
    Mock::given(method("GET"))
        .and(path("/notifications/v1/destinations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"payload": [
            {"destinationId": "dest-0", "name": "other", "resource": {"sqs": {"arn": "arn:aws:sqs:us-east-1:1:other"}}},
            {"destinationId": "dest-1", "name": "shipsync", "resource": {"sqs": {"arn": QUEUE}}}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/notifications/v1/destinations"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    subscribe()
        .respond_with(
            ResponseTemplate::new(409).set_body_json(json!({"errors": [{"code": "Conflict", "message": "exists"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/notifications/v1/subscriptions/ORDER_CHANGE"))
        .and(header("x-amz-access-token", "Atza|seller"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"payload": {"subscriptionId": "sub-1", "destinationId": "dest-1"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let kept = amazon(&server).subscribe_order_changes(QUEUE).await.expect("kept");
    assert_eq!(kept.subscription_id, "sub-1");
    assert!(kept.already_subscribed);
}

#[tokio::test]
async fn a_subscription_to_another_destination_is_refused_with_what_to_do() {
    let server = MockServer::start().await;
    tokens(&server).await;
    Mock::given(method("GET"))
        .and(path("/notifications/v1/destinations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"payload": [
            {"destinationId": "dest-1", "resource": {"sqs": {"arn": QUEUE}}}]})))
        .mount(&server)
        .await;
    subscribe().respond_with(ResponseTemplate::new(409)).mount(&server).await;
    Mock::given(method("GET"))
        .and(path("/notifications/v1/subscriptions/ORDER_CHANGE"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"payload": {"subscriptionId": "sub-9", "destinationId": "dest-9"}})),
        )
        .mount(&server)
        .await;
    let refused = amazon(&server).subscribe_order_changes(QUEUE).await;
    assert!(
        matches!(&refused, Err(ChannelError::Permanent { message }) if message.contains("dest-9") && message.contains("deleteSubscriptionById")),
        "{refused:?}"
    );
}
