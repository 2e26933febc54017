//! A cost model that is measured, not guessed: every AWS call a flow makes is recorded by an SDK
//! interceptor on the DynamoDB, SQS, Scheduler and KMS clients ([`Recorder`]), priced by
//! DynamoDB's documented unit rules ([`units`]) and the on-demand price list ([`prices`]), flow
//! by flow ([`flows`]).
//!
//! Item images. DynamoDB charges a write by the larger of the item before and after it, and an
//! index write by whether the item's index keys and projected attributes changed, so each write
//! needs both images. moto answers `ReturnConsumedCapacity` with a constant (1.0 a call, whatever
//! was written: `include_consumed_capacity` in moto's `dynamodb/responses.py`), so the recorder
//! takes the images itself: a consistent GetItem of every key a write names, just before the
//! write is sent and just after it is answered, made by a second, unrecorded client on a thread of
//! its own ([`images`]). The interceptor waits for it, so it works on any Tokio runtime; its time
//! is kept apart ([`Recorder::overhead`]) so that handler durations can leave it out.

pub mod flows;
mod images;
pub mod prices;
pub mod units;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::batch_get_item::{BatchGetItemInput, BatchGetItemOutput};
use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemInput;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemInput;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::operation::put_item::PutItemInput;
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::scan::{ScanInput, ScanOutput};
use aws_sdk_dynamodb::operation::transact_get_items::{TransactGetItemsInput, TransactGetItemsOutput};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemInput;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::operation::receive_message::ReceiveMessageOutput;
use aws_sdk_sqs::operation::send_message::SendMessageInput;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchInput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

pub use images::TableShape;
use images::{Image, ImageReader};

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Who made a call: one of shipsync's functions, or AWS itself on its behalf (a schedule firing
/// into its queue, Lambda's SQS event source receiving and deleting messages), which the local
/// runner does here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Function,
    Aws,
}

/// One index's entry for an item: its key (`index pk|index sk`) and size.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry {
    pub key: String,
    pub size: usize,
}

/// What a write did to one index.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexWrite {
    pub index: String,
    pub before: Option<IndexEntry>,
    pub after: Option<IndexEntry>,
    /// The entry kept its key and a projected attribute changed.
    pub projected_changed: bool,
}

/// One item a write named: its key, its size before and after (absent: no item), and what
/// happened to each index.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemWrite {
    pub key: String,
    pub size_before: Option<usize>,
    pub size_after: Option<usize>,
    pub indexes: Vec<IndexWrite>,
    /// A transaction's ConditionCheck: read and checked, not changed.
    pub condition_check: bool,
}

/// What a Query or Scan read: DynamoDB charges by every item it examined, before any filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanRead {
    pub scanned_count: usize,
    pub scanned_bytes: usize,
    pub returned: usize,
}

/// One AWS call as the recorder saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The flow's step when it was made (`shipments-api`, `exporter`, ...).
    pub phase: String,
    pub origin: Origin,
    /// `DynamoDB`, `SQS`, `Scheduler`, `KMS`.
    pub service: String,
    pub operation: String,
    pub table: Option<String>,
    pub index: Option<String>,
    pub transactional: bool,
    pub consistent: bool,
    pub failed: bool,
    pub writes: Vec<ItemWrite>,
    /// Sizes of the items a GetItem, BatchGetItem or TransactGetItems named (0: not found).
    pub items_read: Vec<usize>,
    pub scan: Option<ScanRead>,
    /// Message bytes sent or received (SQS bills each 64 KB chunk as a request).
    pub payload_bytes: usize,
}

struct State {
    calls: Mutex<Vec<Call>>,
    phase: Mutex<String>,
    overhead: Mutex<Duration>,
    images: ImageReader,
    shapes: Mutex<HashMap<String, TableShape>>,
}

/// Records the calls of every client made by [`Recorder::dynamodb`] and friends (and of a
/// [`crate::local_aws::LocalAws::recorded`] deployment). Cheap to clone; clones share the record.
#[derive(Clone)]
pub struct Recorder {
    state: Arc<State>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("calls", &lock(&self.state.calls).len()).finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Recorder {
    /// A recorder whose item images are read with unrecorded clients made from `sdk`.
    pub fn new(sdk: &aws_config::SdkConfig) -> Result<Self, std::io::Error> {
        Ok(Self {
            state: Arc::new(State {
                calls: Mutex::default(),
                phase: Mutex::new("setup".into()),
                overhead: Mutex::default(),
                images: ImageReader::start(sdk.clone())?,
                shapes: Mutex::default(),
            }),
        })
    }

    /// The interceptor to attach to a client: its calls are recorded as `origin`'s.
    pub fn interceptor(&self, origin: Origin) -> RecordingInterceptor {
        RecordingInterceptor { recorder: self.clone(), origin }
    }

    pub fn dynamodb(&self, sdk: &aws_config::SdkConfig, origin: Origin) -> aws_sdk_dynamodb::Client {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(self.interceptor(origin)).build();
        aws_sdk_dynamodb::Client::from_conf(config)
    }

    pub fn sqs(&self, sdk: &aws_config::SdkConfig, origin: Origin) -> aws_sdk_sqs::Client {
        let config = aws_sdk_sqs::config::Builder::from(sdk).interceptor(self.interceptor(origin)).build();
        aws_sdk_sqs::Client::from_conf(config)
    }

    pub fn scheduler(&self, sdk: &aws_config::SdkConfig, origin: Origin) -> aws_sdk_scheduler::Client {
        let config = aws_sdk_scheduler::config::Builder::from(sdk).interceptor(self.interceptor(origin)).build();
        aws_sdk_scheduler::Client::from_conf(config)
    }

    pub fn kms(&self, sdk: &aws_config::SdkConfig, origin: Origin) -> aws_sdk_kms::Client {
        let config = aws_sdk_kms::config::Builder::from(sdk).interceptor(self.interceptor(origin)).build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// Names the flow step the calls from now on belong to.
    pub fn set_phase(&self, phase: &str) {
        *lock(&self.state.phase) = phase.to_owned();
    }

    /// The calls recorded since the last `take`, oldest first.
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *lock(&self.state.calls))
    }

    /// Time spent reading item images so far: not the functions' time.
    pub fn overhead(&self) -> Duration {
        *lock(&self.state.overhead)
    }

    fn shape(&self, table: &str) -> TableShape {
        if let Some(shape) = lock(&self.state.shapes).get(table) {
            return shape.clone();
        }
        let shape = self.state.images.shape(table);
        lock(&self.state.shapes).insert(table.to_owned(), shape.clone());
        shape
    }

    /// Runs `read` counting its time as the recorder's, not the function's.
    fn timed<T>(&self, read: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let value = read();
        *lock(&self.state.overhead) += started.elapsed();
        value
    }
}

/// The SDK interceptor: notes each call's request before it is sent (with the images of the
/// items it will write) and completes the record once it is answered.
#[derive(Clone)]
pub struct RecordingInterceptor {
    recorder: Recorder,
    origin: Origin,
}

impl std::fmt::Debug for RecordingInterceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingInterceptor").field("origin", &self.origin).finish()
    }
}

/// A write's target: the table, the item's key, and whether it is only a condition check.
#[derive(Debug, Clone)]
struct Target {
    table: String,
    key: Item,
    condition_check: bool,
}

/// A call between its request and its answer, kept in the operation's config bag.
#[derive(Debug, Clone)]
struct Pending {
    call: Call,
    targets: Vec<Target>,
    before: Vec<Image>,
    /// A Query with a filter, a projection or a count: read again without them to learn what
    /// it examined.
    replay: Option<QueryInput>,
    /// Keys a BatchGetItem asked for.
    keys_asked: usize,
}

impl Storable for Pending {
    type Storer = StoreReplace<Self>;
}

fn service_name(service: &str) -> String {
    match service.to_ascii_lowercase().as_str() {
        "dynamodb" => "DynamoDB".into(),
        "sqs" => "SQS".into(),
        "scheduler" => "Scheduler".into(),
        "kms" => "KMS".into(),
        other => other.to_owned(),
    }
}

/// The key attributes of `item` (its table's key schema).
fn key_of(item: &Item, shape: &TableShape) -> Item {
    shape.key_names.iter().filter_map(|name| item.get(name).map(|value| (name.clone(), value.clone()))).collect()
}

impl Intercept for RecordingInterceptor {
    fn name(&self) -> &'static str {
        "shipsync-cost-recorder"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = cfg
            .load::<Metadata>()
            .map(|metadata| (service_name(metadata.service()), metadata.name().to_owned()))
            .unwrap_or_else(|| ("unknown".into(), "unknown".into()));
        let phase = lock(&self.recorder.state.phase).clone();
        let mut pending = Pending {
            call: Call {
                phase,
                origin: self.origin,
                service,
                operation,
                table: None,
                index: None,
                transactional: false,
                consistent: false,
                failed: false,
                writes: Vec::new(),
                items_read: Vec::new(),
                scan: None,
                payload_bytes: 0,
            },
            targets: Vec::new(),
            before: Vec::new(),
            replay: None,
            keys_asked: 0,
        };
        self.describe_request(context.input(), &mut pending);
        if !pending.targets.is_empty() {
            let keys: Vec<(String, Item)> = pending.targets.iter().map(|t| (t.table.clone(), t.key.clone())).collect();
            pending.before = self.recorder.timed(|| self.recorder.state.images.items(keys));
        }
        cfg.interceptor_state().store_put(pending);
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(mut pending) = cfg.load::<Pending>().cloned() else { return Ok(()) };
        match context.inner().output_or_error() {
            Some(Ok(output)) => self.describe_answer(output, &mut pending),
            Some(Err(_)) | None => pending.call.failed = true,
        }
        if !pending.targets.is_empty() {
            let keys: Vec<(String, Item)> = pending.targets.iter().map(|t| (t.table.clone(), t.key.clone())).collect();
            let after = self.recorder.timed(|| self.recorder.state.images.items(keys));
            for ((target, before), after) in pending.targets.iter().zip(&pending.before).zip(after) {
                let shape = self.recorder.shape(&target.table);
                pending.call.writes.push(units::item_write(
                    &shape,
                    &target.key,
                    before.as_ref(),
                    after.as_ref(),
                    target.condition_check,
                ));
            }
        }
        lock(&self.recorder.state.calls).push(pending.call);
        Ok(())
    }
}

impl RecordingInterceptor {
    fn target(&self, table: &str, key: Item, condition_check: bool) -> Target {
        Target { table: table.to_owned(), key, condition_check }
    }

    /// What the request will read or write, before it is sent.
    fn describe_request(
        &self,
        input: &aws_smithy_runtime_api::client::interceptors::context::Input,
        pending: &mut Pending,
    ) {
        let call = &mut pending.call;
        if let Some(put) = input.downcast_ref::<PutItemInput>() {
            let table = put.table_name().unwrap_or_default();
            let shape = self.recorder.shape(table);
            call.table = Some(table.to_owned());
            let key = key_of(put.item().unwrap_or(&Item::new()), &shape);
            pending.targets.push(self.target(table, key, false));
        } else if let Some(update) = input.downcast_ref::<UpdateItemInput>() {
            let table = update.table_name().unwrap_or_default();
            call.table = Some(table.to_owned());
            pending.targets.push(self.target(table, update.key().cloned().unwrap_or_default(), false));
        } else if let Some(delete) = input.downcast_ref::<DeleteItemInput>() {
            let table = delete.table_name().unwrap_or_default();
            call.table = Some(table.to_owned());
            pending.targets.push(self.target(table, delete.key().cloned().unwrap_or_default(), false));
        } else if let Some(transaction) = input.downcast_ref::<TransactWriteItemsInput>() {
            call.transactional = true;
            for item in transaction.transact_items() {
                if let Some(put) = item.put() {
                    let shape = self.recorder.shape(put.table_name());
                    call.table.get_or_insert_with(|| put.table_name().to_owned());
                    pending.targets.push(self.target(put.table_name(), key_of(put.item(), &shape), false));
                } else if let Some(update) = item.update() {
                    call.table.get_or_insert_with(|| update.table_name().to_owned());
                    pending.targets.push(self.target(update.table_name(), update.key().clone(), false));
                } else if let Some(delete) = item.delete() {
                    call.table.get_or_insert_with(|| delete.table_name().to_owned());
                    pending.targets.push(self.target(delete.table_name(), delete.key().clone(), false));
                } else if let Some(check) = item.condition_check() {
                    call.table.get_or_insert_with(|| check.table_name().to_owned());
                    pending.targets.push(self.target(check.table_name(), check.key().clone(), true));
                }
            }
        } else if let Some(batch) = input.downcast_ref::<BatchWriteItemInput>() {
            for (table, requests) in batch.request_items().into_iter().flatten() {
                let shape = self.recorder.shape(table);
                call.table = Some(table.clone());
                for request in requests {
                    if let Some(put) = request.put_request() {
                        pending.targets.push(self.target(table, key_of(put.item(), &shape), false));
                    } else if let Some(delete) = request.delete_request() {
                        pending.targets.push(self.target(table, delete.key().clone(), false));
                    }
                }
            }
        } else if let Some(get) = input.downcast_ref::<GetItemInput>() {
            call.table = get.table_name().map(str::to_owned);
            call.consistent = get.consistent_read().unwrap_or(false);
        } else if let Some(batch) = input.downcast_ref::<BatchGetItemInput>() {
            for (table, keys) in batch.request_items().into_iter().flatten() {
                call.table = Some(table.clone());
                call.consistent = keys.consistent_read().unwrap_or(false);
                pending.keys_asked += keys.keys().len();
            }
        } else if let Some(transaction) = input.downcast_ref::<TransactGetItemsInput>() {
            call.transactional = true;
            call.consistent = true;
            pending.keys_asked = transaction.transact_items().len();
            call.table = transaction.transact_items().first().and_then(|i| i.get()).map(|g| g.table_name().to_owned());
        } else if let Some(query) = input.downcast_ref::<QueryInput>() {
            call.table = query.table_name().map(str::to_owned);
            call.index = query.index_name().map(str::to_owned);
            call.consistent = query.consistent_read().unwrap_or(false);
            let narrowed = query.filter_expression().is_some()
                || query.projection_expression().is_some()
                || !query.attributes_to_get().is_empty()
                || query.select().is_some();
            if narrowed {
                pending.replay = Some(images::unfiltered(query));
            }
        } else if let Some(scan) = input.downcast_ref::<ScanInput>() {
            call.table = scan.table_name().map(str::to_owned);
            call.index = scan.index_name().map(str::to_owned);
            call.consistent = scan.consistent_read().unwrap_or(false);
        } else if let Some(send) = input.downcast_ref::<SendMessageInput>() {
            call.payload_bytes = send.message_body().map_or(0, str::len);
        } else if let Some(batch) = input.downcast_ref::<SendMessageBatchInput>() {
            call.payload_bytes = batch.entries().iter().map(|entry| entry.message_body().len()).sum();
        }
    }

    /// What the answer read.
    fn describe_answer(
        &self,
        output: &aws_smithy_runtime_api::client::interceptors::context::Output,
        pending: &mut Pending,
    ) {
        let call = &mut pending.call;
        if let Some(get) = output.downcast_ref::<GetItemOutput>() {
            call.items_read.push(get.item().map_or(0, units::item_size));
        } else if let Some(batch) = output.downcast_ref::<BatchGetItemOutput>() {
            let found: Vec<usize> = batch
                .responses()
                .into_iter()
                .flatten()
                .flat_map(|(_, items)| items.iter().map(units::item_size))
                .collect();
            // Keys asked for and not found still cost their minimum, as a GetItem's would.
            let missing = pending.keys_asked.saturating_sub(found.len());
            call.items_read = found;
            call.items_read.extend(std::iter::repeat_n(0, missing));
        } else if let Some(transaction) = output.downcast_ref::<TransactGetItemsOutput>() {
            call.items_read =
                transaction.responses().iter().map(|response| response.item().map_or(0, units::item_size)).collect();
        } else if let Some(query) = output.downcast_ref::<QueryOutput>() {
            let returned = query.items().len();
            let scanned_bytes = match &pending.replay {
                Some(replay) => {
                    let sizes = self.recorder.timed(|| self.recorder.state.images.query_sizes(replay.clone()));
                    sizes.iter().sum()
                }
                None => query.items().iter().map(units::item_size).sum(),
            };
            call.scan = Some(ScanRead {
                scanned_count: usize::try_from(query.scanned_count()).unwrap_or(0),
                scanned_bytes,
                returned,
            });
        } else if let Some(scan) = output.downcast_ref::<ScanOutput>() {
            call.scan = Some(ScanRead {
                scanned_count: usize::try_from(scan.scanned_count()).unwrap_or(0),
                scanned_bytes: scan.items().iter().map(units::item_size).sum(),
                returned: scan.items().len(),
            });
        } else if let Some(received) = output.downcast_ref::<ReceiveMessageOutput>() {
            call.payload_bytes = received.messages().iter().map(|m| m.body().map_or(0, str::len)).sum();
        }
    }
}
