//! Reads the recorder needs beside the calls it records: item images (consistent GetItem),
//! a Query again without its filter (what it examined), and a table's key schema and indexes
//! (DescribeTable: the table as `shipsync_table::schema::create_table` made it). They are made
//! by an unrecorded client on a thread with its own runtime, so that the interceptor, which
//! cannot await, can wait for them on any runtime.

use std::collections::HashMap;
use std::sync::mpsc;

use aws_sdk_dynamodb::operation::query::QueryInput;
use aws_sdk_dynamodb::types::ProjectionType;

use super::Item;

/// An item as it stood (absent: there was none).
pub type Image = Option<Item>;

/// What an index copies of an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Projection {
    All,
    KeysOnly,
    Include(Vec<String>),
}

/// A global secondary index as the table declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexShape {
    pub name: String,
    pub key_names: Vec<String>,
    pub projection: Projection,
}

/// A table's key attributes and indexes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TableShape {
    pub key_names: Vec<String>,
    pub indexes: Vec<IndexShape>,
}

enum Request {
    Items(Vec<(String, Item)>, mpsc::Sender<Vec<Image>>),
    QuerySizes(Box<QueryInput>, mpsc::Sender<Vec<usize>>),
    Shape(String, mpsc::Sender<TableShape>),
}

pub struct ImageReader {
    requests: mpsc::Sender<Request>,
}

impl ImageReader {
    pub fn start(sdk: aws_config::SdkConfig) -> std::io::Result<Self> {
        let (requests, incoming) = mpsc::channel::<Request>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("cost-images".into()).spawn(move || {
            let client = runtime.block_on(async { aws_sdk_dynamodb::Client::new(&sdk) });
            for request in incoming {
                runtime.block_on(answer(&client, request));
            }
        })?;
        Ok(Self { requests })
    }

    /// The items at these keys now, in order (a failed read counts as absent).
    pub fn items(&self, keys: Vec<(String, Item)>) -> Vec<Image> {
        let count = keys.len();
        let (reply, answer) = mpsc::channel();
        if self.requests.send(Request::Items(keys, reply)).is_err() {
            return vec![None; count];
        }
        answer.recv().unwrap_or_else(|_| vec![None; count])
    }

    /// The sizes of the items `query` examines (every page it would read, as asked).
    pub fn query_sizes(&self, query: QueryInput) -> Vec<usize> {
        let (reply, answer) = mpsc::channel();
        if self.requests.send(Request::QuerySizes(Box::new(query), reply)).is_err() {
            return Vec::new();
        }
        answer.recv().unwrap_or_default()
    }

    pub fn shape(&self, table: &str) -> TableShape {
        let (reply, answer) = mpsc::channel();
        if self.requests.send(Request::Shape(table.to_owned(), reply)).is_err() {
            return TableShape::default();
        }
        answer.recv().unwrap_or_default()
    }
}

async fn answer(client: &aws_sdk_dynamodb::Client, request: Request) {
    match request {
        Request::Items(keys, reply) => {
            let mut images = Vec::with_capacity(keys.len());
            for (table, key) in keys {
                let read = client.get_item().table_name(table).set_key(Some(key)).consistent_read(true).send().await;
                images.push(read.ok().and_then(|output| output.item));
            }
            let _ = reply.send(images);
        }
        Request::QuerySizes(query, reply) => {
            let query = *query;
            let read = client
                .query()
                .set_table_name(query.table_name)
                .set_index_name(query.index_name)
                .set_key_condition_expression(query.key_condition_expression)
                .set_expression_attribute_names(query.expression_attribute_names)
                .set_expression_attribute_values(query.expression_attribute_values)
                .set_exclusive_start_key(query.exclusive_start_key)
                .set_limit(query.limit)
                .set_consistent_read(query.consistent_read)
                .set_scan_index_forward(query.scan_index_forward)
                .send()
                .await;
            let sizes =
                read.map(|output| output.items().iter().map(super::units::item_size).collect()).unwrap_or_default();
            let _ = reply.send(sizes);
        }
        Request::Shape(table, reply) => {
            let described = client.describe_table().table_name(table).send().await;
            let shape = described.ok().and_then(|output| output.table).map(|table| {
                let key_names = table.key_schema().iter().map(|k| k.attribute_name().to_owned()).collect();
                let indexes = table
                    .global_secondary_indexes()
                    .iter()
                    .map(|index| IndexShape {
                        name: index.index_name().unwrap_or_default().to_owned(),
                        key_names: index.key_schema().iter().map(|k| k.attribute_name().to_owned()).collect(),
                        projection: match index.projection() {
                            Some(p) if p.projection_type() == Some(&ProjectionType::All) => Projection::All,
                            Some(p) if p.projection_type() == Some(&ProjectionType::Include) => {
                                Projection::Include(p.non_key_attributes().to_vec())
                            }
                            _ => Projection::KeysOnly,
                        },
                    })
                    .collect();
                TableShape { key_names, indexes }
            });
            let _ = reply.send(shape.unwrap_or_default());
        }
    }
}

/// `query` without what narrows its answer but not what it examines (filter, projection, count),
/// keeping only the attribute names and values its key condition uses (DynamoDB refuses unused ones).
pub fn unfiltered(query: &QueryInput) -> QueryInput {
    let condition = query.key_condition_expression().unwrap_or_default().to_owned();
    let used = |placeholder: &String| {
        condition
            .match_indices(placeholder.as_str())
            .any(|(at, _)| !condition[at + placeholder.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_'))
    };
    let names: Option<HashMap<String, String>> = query
        .expression_attribute_names()
        .map(|names| names.iter().filter(|(k, _)| used(k)).map(|(k, v)| (k.clone(), v.clone())).collect());
    let values = query
        .expression_attribute_values()
        .map(|values| values.iter().filter(|(k, _)| used(k)).map(|(k, v)| (k.clone(), v.clone())).collect());
    let mut replay = query.clone();
    replay.filter_expression = None;
    replay.projection_expression = None;
    replay.attributes_to_get = None;
    replay.select = None;
    replay.expression_attribute_names = names.filter(|n| !n.is_empty());
    replay.expression_attribute_values = values.filter(|v: &HashMap<_, _>| !v.is_empty());
    replay
}
