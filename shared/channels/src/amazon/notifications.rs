//! Amazon's `ORDER_CHANGE` notifications, subscribed to once per seller: the deployment's SQS
//! queue becomes an SP-API destination (a grantless call, with the app's own credentials; an
//! existing destination for the queue is reused), and the seller subscribes to `ORDER_CHANGE`
//! with it (an existing subscription is kept). Both steps are safe to repeat.

use serde_json::{Value, json};

use super::AmazonClient;
use crate::{ChannelError, first_error_message, success_body, transport_error};

/// The scope of the grantless token the destination calls need.
const NOTIFICATIONS_SCOPE: &str = "sellingpartnerapi::notifications";

/// The order changes shipsync acts on: status changes (cancellations included) and buyers'
/// requests (to cancel); `DeliveryTipChange` is left out.
const ORDER_CHANGE_TYPES: [&str; 2] = ["OrderStatusChange", "BuyerRequestedChange"];

/// What the subscription is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderChangeSubscription {
    pub destination_id: String,
    pub subscription_id: String,
    /// Whether both already existed (nothing was created).
    pub already_subscribed: bool,
}

impl AmazonClient {
    /// Subscribes the store's seller to `ORDER_CHANGE` notifications delivered to `queue_arn`.
    pub async fn subscribe_order_changes(&self, queue_arn: &str) -> Result<OrderChangeSubscription, ChannelError> {
        let grantless = self.grantless_token().await?;
        let (destination_id, destination_existed) = self.destination_for(queue_arn, &grantless).await?;
        let url = format!("{}/notifications/v1/subscriptions/ORDER_CHANGE", self.endpoint);
        let body = json!({
            "payloadVersion": "1.0",
            "destinationId": destination_id,
            "processingDirective": {"eventFilter": {"eventFilterType": "ORDER_CHANGE", "orderChangeTypes": ORDER_CHANGE_TYPES}},
        });
        let token = self.access_token().await?;
        let response = self
            .http
            .post(&url)
            .header("x-amz-access-token", &token)
            .json(&body)
            .send()
            .await
            .map_err(|error| transport_error(&error))?;
        // 409: the seller is subscribed already; its subscription is read instead.
        let (created, answer) = if response.status() == reqwest::StatusCode::CONFLICT {
            (false, self.call(reqwest::Method::GET, &url, &token, None).await?)
        } else {
            let text = success_body(response, |text| format!("Amazon: {}", first_error_message(text))).await?;
            (true, parse(&text)?)
        };
        let subscription_id = text_at(&answer, "subscriptionId")?;
        let found = text_at(&answer, "destinationId").unwrap_or_else(|_| destination_id.clone());
        if !created && found != destination_id {
            return Err(ChannelError::permanent(format!(
                "the seller is already subscribed to ORDER_CHANGE with destination {found}, not {destination_id}: \
                 delete that subscription (deleteSubscriptionById) and subscribe again"
            )));
        }
        Ok(OrderChangeSubscription {
            destination_id,
            subscription_id,
            already_subscribed: destination_existed && !created,
        })
    }

    /// The destination for the queue: an existing one, else a new one. Returns whether it existed.
    async fn destination_for(&self, queue_arn: &str, grantless: &str) -> Result<(String, bool), ChannelError> {
        let url = format!("{}/notifications/v1/destinations", self.endpoint);
        let listed = self.call(reqwest::Method::GET, &url, grantless, None).await?;
        let existing = listed
            .as_array()
            .into_iter()
            .flatten()
            .find(|destination| destination["resource"]["sqs"]["arn"].as_str() == Some(queue_arn));
        if let Some(destination) = existing {
            return Ok((text_at(destination, "destinationId")?, true));
        }
        let body = json!({"name": "shipsync", "resourceSpecification": {"sqs": {"arn": queue_arn}}});
        let created = self.call(reqwest::Method::POST, &url, grantless, Some(body)).await?;
        Ok((text_at(&created, "destinationId")?, false))
    }

    /// A call to the Notifications API: its `payload`.
    async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: &str,
        body: Option<Value>,
    ) -> Result<Value, ChannelError> {
        let mut request = self.http.request(method, url).header("x-amz-access-token", token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|error| transport_error(&error))?;
        let text = success_body(response, |text| format!("Amazon: {}", first_error_message(text))).await?;
        parse(&text)
    }

    /// A grantless token for the app itself (no seller): what destinations need.
    async fn grantless_token(&self) -> Result<String, ChannelError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("scope", NOTIFICATIONS_SCOPE),
            ("client_id", self.credentials.client_id.as_str()),
            ("client_secret", self.credentials.client_secret.as_str()),
        ];
        // Used once per subscription: not worth caching.
        Ok(self.login_with_amazon(&form).await?.0)
    }
}

/// The `payload` of a Notifications API answer.
fn parse(text: &str) -> Result<Value, ChannelError> {
    let body: Value = serde_json::from_str(text)
        .map_err(|_| ChannelError::retryable(format!("Amazon answered something that is not JSON: {text:.200}")))?;
    Ok(body["payload"].clone())
}

fn text_at(value: &Value, field: &str) -> Result<String, ChannelError> {
    value[field]
        .as_str()
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| ChannelError::permanent(format!("Amazon's answer has no {field}")))
}
