//! What the use cases need from the outside world, each a small trait: one repository per
//! aggregate, the export planner, the channel gateway. The DynamoDB table (`shipsync-table`),
//! the SQS/Scheduler planner (`shipsync-planner`) and the channel clients (`shipsync-channels`)
//! implement them when deployed; `memory` implements every one in memory for the fast tests.
//!
//! Every read is keyed or conditioned on the tenant where a caller names the record; writes are
//! conditional on the version read, and lose with [`Failure::Conflict`].

use shipsync_domain::tracking::TrackingNumber;
use shipsync_domain::vocabulary::{ChannelOrderId, Sku};
use std::collections::HashMap;
use std::future::Future;
use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use shipsync_domain::carrier::{Carrier, StandardCarrier};
use shipsync_domain::export::{Delivery, ExportRequest};
use shipsync_domain::ids::{PurchaseOrderId, RetailerId, ShipmentId, StoreId, VendorId};
use shipsync_domain::orders::{KeptPayload, OrderProblem, OrderRecord, PollState, PolledStore, Product};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::tenant::{ChannelStore, Retailer, Vendor};

use crate::Failure;

/// A result that comes later, and can cross threads (Lambda's runtime is multi-threaded).
pub trait Pending<T>: Future<Output = Result<T, Failure>> + Send {}
impl<T, F: Future<Output = Result<T, Failure>> + Send> Pending<T> for F {}

/// Shipments.
pub trait Shipments: Send + Sync {
    /// A shipment by id, whoever's: for internal work (exports, scans) that carries the id.
    fn shipment(&self, id: ShipmentId) -> impl Pending<Option<Shipment>>;
    /// A shipment of this retailer: another retailer's is as absent as a missing one.
    fn retailer_shipment(&self, retailer: RetailerId, id: ShipmentId) -> impl Pending<Option<Shipment>>;
    /// Writes a new shipment and its purchase order's new fulfilled quantities in one
    /// transaction, on condition that the purchase order is unchanged since it was read.
    fn create_shipment(&self, shipment: &Shipment, po: &PurchaseOrder) -> impl Pending<()>;
    /// As `create_shipment`, for a shipment a channel fulfillment stands for, recording that the
    /// fulfillment is applied in the same transaction (so it is applied once).
    fn create_shipment_from_channel(
        &self,
        shipment: &Shipment,
        po: &PurchaseOrder,
        store: StoreId,
        channel_fulfillment_id: &str,
    ) -> impl Pending<()>;
    /// Writes a changed shipment (and its purchase order, if the change moved units), on
    /// condition that neither changed since it was read (`version - 1`).
    fn update_shipment(&self, shipment: &Shipment, po: Option<&PurchaseOrder>) -> impl Pending<()>;
    /// Writes a shipment whose items and tracking numbers did not change (its export state, its
    /// carrier status, its link to the channel), on condition that it did not change since it
    /// was read: one item, so one plain conditional write instead of a transaction.
    fn update_shipment_state(&self, shipment: &Shipment) -> impl Pending<()>;
    fn shipments_of_purchase_order(&self, po: PurchaseOrderId) -> impl Pending<Vec<Shipment>>;
    /// The shipments of one store carrying this tracking number (a carrier scan is posted to
    /// one store's URL, signed with that store's secret: it reaches no other store's shipments).
    fn shipments_by_tracking(&self, store: StoreId, number: &TrackingNumber) -> impl Pending<Vec<Shipment>>;
    /// The shipment a channel fulfillment was applied as, if it was: read consistently.
    fn channel_fulfillment_applied(&self, store: StoreId, channel_id: &str) -> impl Pending<Option<ShipmentId>>;
}

/// Purchase orders, and the channel orders that group them.
pub trait PurchaseOrders: Send + Sync {
    fn purchase_order(&self, id: PurchaseOrderId) -> impl Pending<Option<PurchaseOrder>>;
    /// A purchase order as it stands after every write so far (a consistent read).
    fn purchase_order_now(&self, id: PurchaseOrderId) -> impl Pending<Option<PurchaseOrder>>;
    /// A purchase order of this retailer: another retailer's is as absent as a missing one.
    fn retailer_purchase_order(&self, retailer: RetailerId, id: PurchaseOrderId)
    -> impl Pending<Option<PurchaseOrder>>;
    fn purchase_orders(&self, ids: &[PurchaseOrderId]) -> impl Pending<Vec<PurchaseOrder>>;
    /// Writes a new purchase order; [`Failure::Exists`] if its number is taken.
    fn create_purchase_order(&self, po: &PurchaseOrder) -> impl Pending<()>;
    /// Writes a changed purchase order if nobody changed it since it was read.
    fn update_purchase_order(&self, po: &PurchaseOrder) -> impl Pending<()>;
    /// The purchase orders one channel order was split into, read consistently.
    fn channel_order_purchase_orders(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> impl Pending<Vec<PurchaseOrderId>>;
}

/// Channel orders as applied, the products that route their lines, and the problems a person
/// must look at (order health).
pub trait Orders: Send + Sync {
    /// A channel order's record and its purchase orders, read consistently.
    fn order_record(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_order_id: &ChannelOrderId,
    ) -> impl Pending<(Option<OrderRecord>, Vec<PurchaseOrderId>)>;
    /// The order record shipsync id `id` names, if it is this retailer's.
    fn retailer_order_record(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> impl Pending<Option<(OrderRecord, Vec<PurchaseOrderId>)>>;
    /// Writes an order record if nobody wrote it since `record.version - 1`.
    fn save_order_record(&self, record: &OrderRecord) -> impl Pending<()>;
    /// The products of these SKUs; unknown SKUs are absent.
    fn products_by_sku(&self, retailer: RetailerId, skus: &[Sku]) -> impl Pending<HashMap<Sku, Product>>;
    fn put_problem(&self, retailer: RetailerId, problem: &OrderProblem) -> impl Pending<()>;
    fn problems_with_prefix(&self, retailer: RetailerId, key_prefix: &str) -> impl Pending<Vec<OrderProblem>>;
    fn delete_problem(&self, retailer: RetailerId, key: &str) -> impl Pending<()>;
    /// Keeps a payload that cannot be applied, for a person, beside its problem.
    fn keep_payload(
        &self,
        retailer: RetailerId,
        problem_key: &str,
        body: &[u8],
        received_at: DateTime<Utc>,
    ) -> impl Pending<KeptPayload>;
}

/// A retailer's settings: its fees and carriers, channel stores, vendors and their credentials.
pub trait Settings: Send + Sync {
    fn retailer_with_carriers(&self, retailer: RetailerId) -> impl Pending<Option<(Retailer, Vec<Carrier>)>>;
    fn channel_store(&self, retailer: RetailerId, store: StoreId) -> impl Pending<Option<ChannelStore>>;
    fn vendor(&self, retailer: RetailerId, vendor: VendorId) -> impl Pending<Option<Vendor>>;
    /// Adds a carrier; [`Failure::Exists`] if its id is taken.
    fn put_carrier(&self, retailer: RetailerId, carrier: &Carrier) -> impl Pending<()>;
    fn save_channel_store(&self, store: &ChannelStore) -> impl Pending<()>;
    /// Seals and stores a channel store's credentials, replacing the stored ones whole.
    fn save_credentials(
        &self,
        retailer: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
    ) -> impl Pending<()>;
    /// Whether a channel store has credentials, from their names alone (the API cannot open them).
    fn credentials_set(&self, retailer: RetailerId, store: StoreId) -> impl Pending<bool>;
    /// The names of a channel store's stored credentials (readable without opening them).
    fn credential_names(&self, retailer: RetailerId, store: StoreId) -> impl Pending<Vec<String>>;
    /// A store's channel credentials, opened; [`Failure::Permanent`] if they cannot be (sealed
    /// for another store, under another key): a person must set them again.
    fn credentials(&self, retailer: RetailerId, store: StoreId) -> impl Pending<ChannelCredentials>;
    /// Takes the renewal of a store's shared channel token (Wish's) until `until`, unless another
    /// container holds it (`Ok(false)`): one renewal at a time, since each revokes the tokens
    /// issued before it.
    fn lease_credential_renewal(
        &self,
        retailer: RetailerId,
        store: StoreId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Pending<bool>;
    /// Ends a lease taken until `lease` without storing anything (the renewal failed), so that
    /// the next tick may try at once; a lease no longer this container's is left alone.
    fn release_credential_renewal(
        &self,
        retailer: RetailerId,
        store: StoreId,
        lease: DateTime<Utc>,
    ) -> impl Pending<()>;
    /// Stores renewed channel credentials in place of the stored ones (the webhook secrets stay),
    /// while the lease taken until `lease` is still this container's; `Ok(false)`: it is not,
    /// and nothing was stored.
    fn save_renewed_credentials(
        &self,
        retailer: RetailerId,
        store: StoreId,
        credentials: &ChannelCredentials,
        lease: DateTime<Utc>,
    ) -> impl Pending<bool>;
    /// Forgets what this container remembers of a retailer's settings (its profile, carriers,
    /// vendors, stores and their credentials), so that the next reads see the table: before a
    /// refusal that the remembered copy caused is reported, it is checked against the current one.
    fn forget_settings(&self, retailer: RetailerId);
}

/// New ids, unique across every record kind.
pub trait Ids: Send + Sync {
    fn allocate_ids(&self, count: usize) -> impl Pending<RangeInclusive<u64>>;
}

/// Where polling stands: the stores to poll, and each one's cursor.
pub trait PollStates: Send + Sync {
    /// Every channel store on the poller's list, with its retailer.
    fn polled_stores(&self) -> impl Pending<Vec<PolledStore>>;
    fn poll_state(&self, store: StoreId) -> impl Pending<PollState>;
    fn save_poll_state(&self, store: StoreId, state: &PollState) -> impl Pending<()>;
    /// The Amazon store of a seller in a marketplace (what an `ORDER_CHANGE` notification names).
    fn amazon_store(&self, seller_id: &str, marketplace_id: &str) -> impl Pending<Option<PolledStore>>;
}

/// Everything a use case may read or write, in one value (the table, or memory).
pub trait Repositories:
    Shipments + PurchaseOrders + Orders + Settings + Ids + PollStates + Returns + Clone + 'static
{
}

/// Returns (RMAs): under their retailer and purchase order.
pub trait Returns: Send + Sync {
    /// A purchase order's returns as they stand after every write, and its return counter's version.
    fn purchase_order_returns(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> impl Pending<(Vec<shipsync_domain::returns::Return>, u64)>;
    /// A new return, moving the order's counter on from `read_version` (`Conflict` when
    /// another return came first); one from a channel is taken once (`Exists` after).
    fn create_return(&self, ret: &shipsync_domain::returns::Return, read_version: u64) -> impl Pending<()>;
    /// Replaces a return if nobody changed it since it was read.
    fn update_return(&self, ret: &shipsync_domain::returns::Return) -> impl Pending<()>;
    /// The returns made of a channel's return.
    fn channel_returns(
        &self,
        retailer: RetailerId,
        store: StoreId,
        channel_return_id: &str,
    ) -> impl Pending<Vec<shipsync_domain::returns::Return>>;
    /// A return of this retailer by id.
    fn retailer_return(&self, retailer: RetailerId, id: u64) -> impl Pending<Option<shipsync_domain::returns::Return>>;
}
impl<T: Shipments + PurchaseOrders + Orders + Settings + Ids + PollStates + Returns + Clone + 'static> Repositories
    for T
{
}

/// The order processor's queue: channel events, applied in any order, at least once.
pub trait EventQueue: Send + Sync {
    /// Queues a serialized `ChannelEventMessage`.
    fn queue_event(&self, body: String) -> impl Pending<()>;
}

/// Connects a channel store to its channel and its tracking provider: the HTTP clients when
/// deployed, a double in tests.
pub trait ChannelGateway: Send + Sync {
    fn connect(
        &self,
        store: &ChannelStore,
        credentials: &ChannelCredentials,
    ) -> Result<Box<dyn shipsync_channels::Channel>, shipsync_channels::SettingsError>;

    /// Registers a tracking number with the store's tracking provider, so that its scans come
    /// to shipsync; registering a number twice is not an error. `Ok(false)`: the store names no
    /// provider.
    fn register_tracker<'a>(
        &'a self,
        store: &'a ChannelStore,
        credentials: &'a ChannelCredentials,
        number: &'a TrackingNumber,
        carrier: Option<StandardCarrier>,
    ) -> impl Pending<bool> + 'a;

    /// When the store's credentials hold a token shipsync must renew by (Wish's); `None`: never.
    fn renew_by(&self, _store: &ChannelStore, _credentials: &ChannelCredentials) -> Option<DateTime<Utc>> {
        None
    }

    /// Renews that token at the channel: the credentials to store in place of `credentials`.
    fn renew_credentials<'a>(
        &'a self,
        store: &'a ChannelStore,
        _credentials: &'a ChannelCredentials,
    ) -> impl Pending<ChannelCredentials> + 'a {
        let channel = store.channel.name();
        async move { Err(Failure::permanent(format!("a {channel} store's credentials are not renewed"))) }
    }
}

impl ChannelGateway for shipsync_channels::Channels {
    fn connect(
        &self,
        store: &ChannelStore,
        credentials: &ChannelCredentials,
    ) -> Result<Box<dyn shipsync_channels::Channel>, shipsync_channels::SettingsError> {
        shipsync_channels::Channels::connect(self, store, credentials)
    }

    fn register_tracker<'a>(
        &'a self,
        store: &'a ChannelStore,
        credentials: &'a ChannelCredentials,
        number: &'a TrackingNumber,
        carrier: Option<StandardCarrier>,
    ) -> impl Pending<bool> + 'a {
        async move {
            let Some(registry) = self.trackers(store, credentials)? else { return Ok(false) };
            registry.register(number, carrier).await?;
            Ok(true)
        }
    }

    fn renew_by(&self, store: &ChannelStore, credentials: &ChannelCredentials) -> Option<DateTime<Utc>> {
        shipsync_channels::Channels::renew_by(self, store, credentials)
    }

    fn renew_credentials<'a>(
        &'a self,
        store: &'a ChannelStore,
        credentials: &'a ChannelCredentials,
    ) -> impl Pending<ChannelCredentials> + 'a {
        async move { Ok(shipsync_channels::Channels::renew_credentials(self, store, credentials).await?) }
    }
}

/// Queues a purchase order's email for the vendor mailer (the order intake emails a new purchase
/// order to a vendor that takes them). A function, so that the intake needs no further type.
pub type MailSender = std::sync::Arc<
    dyn Fn(shipsync_domain::mail::MailRequest) -> std::pin::Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>
        + Send
        + Sync,
>;

/// A [`MailSender`] that puts each request as JSON on `queue` (the mail queue).
pub fn mail_sender<Q: EventQueue + Clone + 'static>(queue: Q) -> MailSender {
    std::sync::Arc::new(move |request| {
        let queue = queue.clone();
        Box::pin(async move {
            let body = serde_json::to_string(&request).map_err(|error| Failure::permanent(error.to_string()))?;
            queue.queue_event(body).await
        })
    })
}

/// Delivers export requests to the exporter: now, or at a time.
pub trait ExportPlanner: Send + Sync {
    fn deliver(&self, request: ExportRequest, delivery: Delivery) -> impl Pending<()>;
    /// Withdraws a planned delivery (a write that lost its race must not leave its plan).
    fn cancel(&self, request: ExportRequest, delivery: Delivery) -> impl Pending<()>;
    /// Queues a change its channel must be told of (a cancellation to push) for the exporter.
    fn queue_update(&self, update: shipsync_domain::cancellations::ChannelUpdate) -> impl Pending<()>;
}

/// Cancellation records (the table): under their retailer and purchase order.
pub trait Cancellations: Send + Sync {
    /// Writes a cancellation with the purchase order it changes and its order health problem,
    /// all or nothing; `Conflict` when either changed since it was read.
    fn save_cancellation(
        &self,
        cancellation: &shipsync_domain::cancellations::Cancellation,
        po: Option<&PurchaseOrder>,
        problem: &shipsync_domain::cancellations::ProblemUpdate,
    ) -> impl Pending<()>;
    fn cancellation(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
        id: u64,
    ) -> impl Pending<Option<shipsync_domain::cancellations::Cancellation>>;
    fn retailer_cancellation(
        &self,
        retailer: RetailerId,
        id: u64,
    ) -> impl Pending<Option<shipsync_domain::cancellations::Cancellation>>;
    fn purchase_order_cancellations(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> impl Pending<Vec<shipsync_domain::cancellations::Cancellation>>;
}

/// Label records (the table): under their retailer and purchase order.
pub trait Labels: Send + Sync {
    fn save_label(&self, label: &shipsync_domain::labels::Label) -> impl Pending<()>;
    /// Every label of a purchase order (its own and its shipments').
    fn purchase_order_labels(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> impl Pending<Vec<shipsync_domain::labels::Label>>;
    fn label(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
        id: u64,
    ) -> impl Pending<Option<shipsync_domain::labels::Label>>;
}

/// Where label files are kept (S3): private, each reached by a short-lived link.
pub trait LabelFiles: Send + Sync {
    fn put_file(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> impl Pending<()>;
    /// `None`: no such file.
    fn get_file(&self, key: &str) -> impl Pending<Option<Vec<u8>>>;
    fn delete_file(&self, key: &str) -> impl Pending<()>;
    /// A link that downloads the file for `seconds`, signed by this function's role.
    fn download_link(&self, key: &str, seconds: u64) -> impl Pending<String>;
}

/// Hands HTML labels to the renderer (a queue).
pub trait RenderQueue: Send + Sync {
    fn queue_render(&self, request: &shipsync_domain::labels::RenderRequest) -> impl Pending<()>;
}

/// Turns a label's HTML into a PDF (headless Chromium).
pub trait HtmlToPdf: Send + Sync {
    fn render_pdf(&self, html: &str) -> impl Pending<Vec<u8>>;
}

/// Purchase orders emailed to vendors: the requests' queue, and what was sent.
pub trait MailQueue: Send + Sync {
    fn queue_mail(&self, request: &shipsync_domain::mail::MailRequest) -> impl Pending<()>;
}

/// Sends an email as raw MIME (SES).
pub trait Mailer: Send + Sync {
    /// The provider's id for the message.
    fn send_raw(&self, from: &str, to: &str, raw: Vec<u8>) -> impl Pending<String>;
}

/// Which mail requests were sent (so that a redelivered one is not sent again).
pub trait SentMail: Send + Sync {
    fn mail_sent(&self, request: &shipsync_domain::mail::MailRequest) -> impl Pending<bool>;
    fn record_mail_sent(&self, request: &shipsync_domain::mail::MailRequest, message_id: &str) -> impl Pending<()>;
}
