//! The table as the use cases see it: every repository port of `shipsync-app`, each a call of
//! the table's own methods, with [`TableError`] mapped once into the application's [`Failure`].

use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use std::collections::HashMap;
use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use shipsync_app::Failure;
use shipsync_app::ports::{Ids, Labels, Orders, PurchaseOrders, SentMail, Settings, Shipments};
use shipsync_domain::ValidationErrors;
use shipsync_domain::carrier::Carrier;
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, ShipmentId, StoreId, VendorId};
use shipsync_domain::orders::{KeptPayload, OrderProblem, OrderRecord, Product};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::{ChannelStore, Retailer, Vendor};

use crate::{Table, TableError};

impl From<TableError> for Failure {
    fn from(error: TableError) -> Self {
        match error {
            TableError::Conflict(what) => Failure::Conflict(what.to_owned()),
            TableError::AlreadyExists(what) => Failure::Exists(what),
            TableError::TooLarge { ref reason, .. } => {
                tracing::warn!(%error, "record too large for the table");
                Failure::Invalid(ValidationErrors::single(
                    "base",
                    format!("does not fit in DynamoDB ({reason}): shorten or split it"),
                ))
            }
            TableError::InvalidCursor(invalid) => Failure::Invalid(invalid.into()),
            TableError::Corrupt { .. } | TableError::Rejected { .. } => Failure::Permanent {
                reason: "the table refused or could not read a record".into(),
                cause: Some(Box::new(error)),
            },
            TableError::Unavailable { .. } => Failure::Retryable {
                reason: "the table is unavailable".into(),
                after: None,
                cause: Some(Box::new(error)),
            },
        }
    }
}

impl Shipments for Table {
    async fn shipment(&self, id: ShipmentId) -> Result<Option<Shipment>, Failure> {
        Ok(Table::shipment(self, id).await?)
    }
    async fn retailer_shipment(&self, retailer: RetailerId, id: ShipmentId) -> Result<Option<Shipment>, Failure> {
        Ok(Table::retailer_shipment(self, retailer, id).await?)
    }
    async fn create_shipment(&self, shipment: &Shipment, po: &PurchaseOrder) -> Result<(), Failure> {
        Ok(Table::create_shipment(self, shipment, po).await?)
    }
    async fn create_shipment_from_channel(
        &self,
        shipment: &Shipment,
        po: &PurchaseOrder,
        store: StoreId,
        channel_fulfillment_id: &str,
    ) -> Result<(), Failure> {
        Ok(Table::create_shipment_from_channel(self, shipment, po, store, channel_fulfillment_id).await?)
    }
    async fn update_shipment(&self, shipment: &Shipment, po: Option<&PurchaseOrder>) -> Result<(), Failure> {
        Ok(Table::update_shipment(self, shipment, po).await?)
    }
    async fn update_shipment_state(&self, shipment: &Shipment) -> Result<(), Failure> {
        Ok(Table::update_shipment_state(self, shipment).await?)
    }
    async fn shipments_of_purchase_order(&self, po: PurchaseOrderId) -> Result<Vec<Shipment>, Failure> {
        Ok(Table::shipments_of_purchase_order(self, po).await?)
    }
    async fn shipments_by_tracking(&self, store: StoreId, number: &TrackingNumber) -> Result<Vec<Shipment>, Failure> {
        Ok(Table::shipments_by_tracking(self, store, number).await?)
    }
    async fn channel_fulfillment_applied(
        &self,
        store: StoreId,
        channel_id: &str,
    ) -> Result<Option<ShipmentId>, Failure> {
        Ok(Table::channel_fulfillment_applied(self, store, channel_id).await?)
    }
}

impl PurchaseOrders for Table {
    async fn purchase_order(&self, id: PurchaseOrderId) -> Result<Option<PurchaseOrder>, Failure> {
        Ok(Table::purchase_order(self, id).await?)
    }
    async fn purchase_order_now(&self, id: PurchaseOrderId) -> Result<Option<PurchaseOrder>, Failure> {
        Ok(Table::purchase_order_now(self, id).await?)
    }
    async fn retailer_purchase_order(
        &self,
        retailer: RetailerId,
        id: PurchaseOrderId,
    ) -> Result<Option<PurchaseOrder>, Failure> {
        Ok(Table::retailer_purchase_order(self, retailer, id).await?)
    }
    async fn purchase_orders(&self, ids: &[PurchaseOrderId]) -> Result<Vec<PurchaseOrder>, Failure> {
        Ok(Table::purchase_orders(self, ids).await?)
    }
    async fn create_purchase_order(&self, po: &PurchaseOrder) -> Result<(), Failure> {
        Ok(Table::create_purchase_order(self, po).await?)
    }
    async fn update_purchase_order(&self, po: &PurchaseOrder) -> Result<(), Failure> {
        Ok(Table::update_purchase_order(self, po).await?)
    }
    async fn channel_order_purchase_orders(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> Result<Vec<PurchaseOrderId>, Failure> {
        Ok(Table::channel_order(self, retailer, store, channel_order_id).await?.purchase_order_ids)
    }
}

impl Orders for Table {
    async fn order_record(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> Result<(Option<OrderRecord>, Vec<PurchaseOrderId>), Failure> {
        Ok(Table::order_record(self, retailer, store, channel_order_id).await?)
    }
    async fn retailer_order_record(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> Result<Option<(OrderRecord, Vec<PurchaseOrderId>)>, Failure> {
        Ok(Table::retailer_order_record_by_id(self, retailer, id).await?)
    }
    async fn save_order_record(&self, record: &OrderRecord) -> Result<(), Failure> {
        Ok(Table::save_order_record(self, record).await?)
    }
    async fn products_by_sku(&self, retailer: RetailerId, skus: &[Sku]) -> Result<HashMap<Sku, Product>, Failure> {
        Ok(Table::products_by_sku(self, retailer, skus).await?)
    }
    async fn put_problem(&self, retailer: RetailerId, problem: &OrderProblem) -> Result<(), Failure> {
        Ok(Table::put_problem(self, retailer, problem).await?)
    }
    async fn problems_with_prefix(&self, retailer: RetailerId, key_prefix: &str) -> Result<Vec<OrderProblem>, Failure> {
        Ok(Table::problems_with_prefix(self, retailer, key_prefix).await?)
    }
    async fn delete_problem(&self, retailer: RetailerId, key: &str) -> Result<(), Failure> {
        Ok(Table::delete_problem(self, retailer, key).await?)
    }
    async fn keep_payload(
        &self,
        retailer: RetailerId,
        problem_key: &str,
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<KeptPayload, Failure> {
        Ok(Table::keep_payload(self, retailer, problem_key, body, received_at).await?)
    }
}

impl Settings for Table {
    fn forget_settings(&self, retailer: RetailerId) {
        Table::forget_settings(self, retailer);
    }
    async fn retailer_with_carriers(&self, retailer: RetailerId) -> Result<Option<(Retailer, Vec<Carrier>)>, Failure> {
        Ok(Table::retailer_with_carriers(self, retailer).await?)
    }
    async fn channel_store(&self, retailer: RetailerId, store: StoreId) -> Result<Option<ChannelStore>, Failure> {
        Ok(Table::channel_store(self, retailer, store).await?)
    }
    async fn vendor(&self, retailer: RetailerId, vendor: VendorId) -> Result<Option<Vendor>, Failure> {
        Ok(Table::vendor(self, retailer, vendor).await?)
    }
    async fn put_carrier(&self, retailer: RetailerId, carrier: &Carrier) -> Result<(), Failure> {
        Ok(Table::put_carrier(self, retailer, carrier).await?)
    }
    async fn save_channel_store(&self, store: &ChannelStore) -> Result<(), Failure> {
        match Table::save_channel_store(self, store).await {
            // The only record a store save claims: its Amazon seller, taken by another store meanwhile.
            Err(TableError::AlreadyExists(what)) => Err(Failure::Invalid(shipsync_domain::ValidationErrors::single(
                "seller_id",
                format!("is taken: {what}"),
            ))),
            other => Ok(other?),
        }
    }
    async fn save_credentials(
        &self,
        retailer: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
    ) -> Result<(), Failure> {
        Ok(Table::save_credentials(self, retailer, store, credentials).await?)
    }
    async fn lease_credential_renewal(
        &self,
        retailer: RetailerId,
        store: StoreId,
        now: chrono::DateTime<chrono::Utc>,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, Failure> {
        Ok(Table::lease_credential_renewal(self, retailer, store, now, until).await?)
    }
    async fn release_credential_renewal(
        &self,
        retailer: RetailerId,
        store: StoreId,
        lease: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Failure> {
        Ok(Table::release_credential_renewal(self, retailer, store, lease).await?)
    }
    async fn save_renewed_credentials(
        &self,
        retailer: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
        lease: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, Failure> {
        Ok(Table::save_renewed_credentials(self, retailer, store, credentials, lease).await?)
    }
    async fn credentials_set(&self, retailer: RetailerId, store: StoreId) -> Result<bool, Failure> {
        Ok(!Table::credential_names(self, retailer, store).await?.is_empty())
    }
    async fn credential_names(&self, retailer: RetailerId, store: StoreId) -> Result<Vec<String>, Failure> {
        Ok(Table::credential_names(self, retailer, store).await?)
    }
    async fn credentials(&self, retailer: RetailerId, store: StoreId) -> Result<ChannelCredentials, Failure> {
        match Table::credentials(self, retailer, store).await {
            Ok(credentials) => Ok(credentials),
            // Sealed for another store or under another key: a retry cannot help.
            Err(TableError::Corrupt { reason, .. }) => Err(Failure::permanent(format!(
                "store {store}'s credentials cannot be opened ({reason}): set them again"
            ))),
            Err(error) => Err(error.into()),
        }
    }
}

impl shipsync_app::ports::PollStates for Table {
    async fn polled_stores(&self) -> Result<Vec<shipsync_domain::orders::PolledStore>, Failure> {
        Ok(Table::polled_stores(self).await?)
    }
    async fn poll_state(&self, store: StoreId) -> Result<shipsync_domain::orders::PollState, Failure> {
        Ok(Table::poll_state(self, store).await?)
    }
    async fn save_poll_state(&self, store: StoreId, state: &shipsync_domain::orders::PollState) -> Result<(), Failure> {
        Ok(Table::save_poll_state(self, store, state).await?)
    }
    async fn amazon_store(
        &self,
        seller_id: &str,
        marketplace_id: &str,
    ) -> Result<Option<shipsync_domain::orders::PolledStore>, Failure> {
        Ok(Table::amazon_store(self, seller_id, marketplace_id).await?)
    }
}

impl Ids for Table {
    async fn allocate_ids(&self, count: usize) -> Result<RangeInclusive<u64>, Failure> {
        Ok(Table::allocate_ids(self, count).await?)
    }
}

impl Labels for Table {
    async fn save_label(&self, label: &shipsync_domain::labels::Label) -> Result<(), Failure> {
        Ok(Table::save_label(self, label).await?)
    }
    async fn purchase_order_labels(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> Result<Vec<shipsync_domain::labels::Label>, Failure> {
        Ok(Table::purchase_order_labels(self, retailer, po).await?)
    }
    async fn label(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
        id: u64,
    ) -> Result<Option<shipsync_domain::labels::Label>, Failure> {
        Ok(Table::label(self, retailer, po, id).await?)
    }
}

impl SentMail for Table {
    async fn mail_sent(&self, request: &shipsync_domain::mail::MailRequest) -> Result<bool, Failure> {
        Ok(Table::mail_sent(self, request).await?)
    }
    async fn record_mail_sent(
        &self,
        request: &shipsync_domain::mail::MailRequest,
        message_id: &str,
    ) -> Result<(), Failure> {
        Ok(Table::record_mail_sent(self, request, message_id).await?)
    }
}

impl shipsync_app::ports::Cancellations for Table {
    async fn save_cancellation(
        &self,
        cancellation: &shipsync_domain::cancellations::Cancellation,
        po: Option<&PurchaseOrder>,
        problem: &shipsync_domain::cancellations::ProblemUpdate,
    ) -> Result<(), Failure> {
        Ok(Table::save_cancellation(self, cancellation, po, problem).await?)
    }
    async fn cancellation(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
        id: u64,
    ) -> Result<Option<shipsync_domain::cancellations::Cancellation>, Failure> {
        Ok(Table::cancellation(self, retailer, po, id).await?)
    }
    async fn retailer_cancellation(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> Result<Option<shipsync_domain::cancellations::Cancellation>, Failure> {
        Ok(Table::retailer_cancellation(self, retailer, id).await?)
    }
    async fn purchase_order_cancellations(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> Result<Vec<shipsync_domain::cancellations::Cancellation>, Failure> {
        Ok(Table::purchase_order_cancellations(self, retailer, po).await?)
    }
}

impl shipsync_app::ports::Returns for Table {
    async fn purchase_order_returns(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> Result<(Vec<shipsync_domain::returns::Return>, u64), Failure> {
        let found = Table::purchase_order_returns(self, retailer, po).await?;
        Ok((found.returns, found.version))
    }
    async fn create_return(&self, ret: &shipsync_domain::returns::Return, read_version: u64) -> Result<(), Failure> {
        Ok(Table::create_return(self, ret, read_version).await?)
    }
    async fn update_return(&self, ret: &shipsync_domain::returns::Return) -> Result<(), Failure> {
        Ok(Table::update_return(self, ret).await?)
    }
    async fn channel_returns(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_return_id: &str,
    ) -> Result<Vec<shipsync_domain::returns::Return>, Failure> {
        Ok(Table::channel_returns(self, retailer, store, channel_return_id).await?)
    }
    async fn retailer_return(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> Result<Option<shipsync_domain::returns::Return>, Failure> {
        Ok(Table::retailer_return(self, retailer, id).await?)
    }
}
