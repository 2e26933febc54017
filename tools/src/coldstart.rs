//! Cold starts measured from outside, as Lambda sees them: each function's release binary is
//! started against a fake Lambda Runtime API served here, handed one realistic first event that
//! makes its real AWS calls (against a local moto), and timed; an empty `lambda_http` function
//! built the same way is the yardstick. Sizes are the stripped binary and its deflated size (what
//! Lambda's zip of it holds).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::orders::Product;
use shipsync_domain::secrets::ChannelCredentials;
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, FeeSettings};
use shopify_webhooks::ShopifyWebhooks;
use tokio::sync::oneshot;

use crate::fake_shopify::FakeShopify;
use crate::local_aws::LocalAws;
use crate::provision;

/// How long one function may take to start and answer its first event before the run fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);
/// The memory the template gives every function (Lambda reads it from the environment).
const MEMORY_MB: &str = "128";
const SHOPIFY_SECRET: &str = "coldstart-secret";
const SHOPIFY_ACCESS_TOKEN: &str = "shpat_coldstart";
const SHIPPO_TOKEN: &str = "coldstart-shippo-token";

/// What a function is handed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FirstEvent {
    /// Any HTTP request (the empty function).
    AnyRequest,
    /// An authenticated shipment search.
    ApiSearch,
    /// A signed Shopify `orders/create` delivery.
    ShopifyDelivery,
    /// A Shippo tracking update (token in the URL).
    CarrierDelivery,
    /// An export request from the export queue.
    ExportMessage,
    /// A channel event from the order queue (one the Shopify webhook queued).
    OrderMessage,
    /// An EventBridge Scheduler tick.
    ScheduledTick,
}

/// The functions measured, in the table's order: the empty one first.
const FUNCTIONS: &[(&str, FirstEvent)] = &[
    ("empty-function", FirstEvent::AnyRequest),
    ("shipments-api", FirstEvent::ApiSearch),
    ("shopify-webhooks", FirstEvent::ShopifyDelivery),
    ("carrier-webhooks", FirstEvent::CarrierDelivery),
    ("order-processor", FirstEvent::OrderMessage),
    ("exporter", FirstEvent::ExportMessage),
    ("order-poller", FirstEvent::ScheduledTick),
    ("sweeper", FirstEvent::ScheduledTick),
];

/// One cold start.
#[derive(Debug, Clone, Copy)]
struct ColdStart {
    /// Spawn to the first `GET .../invocation/next`.
    init: Duration,
    /// The event handed over to its response posted.
    first_event: Duration,
    /// Resident set and its peak after the first response, in KiB.
    rss_kib: u64,
    peak_kib: u64,
}

/// One row of the table: medians over the runs.
struct Row {
    function: &'static str,
    binary_bytes: u64,
    zip_bytes: u64,
    init: Duration,
    first_event: Duration,
    rss_kib: u64,
    peak_kib: u64,
    answer: String,
}

/// Measures every function in `release_dir` (`cargo build --release` output), `runs` cold
/// starts each, against the moto at `aws_endpoint`, and returns the table.
pub async fn cold_start_report(release_dir: &Path, runs: usize, aws_endpoint: &str) -> Result<String, String> {
    let runs = runs.max(1);
    let world = World::create(aws_endpoint).await?;
    let mut rows = Vec::new();
    for (function, event) in FUNCTIONS {
        let binary = release_dir.join(function);
        let bytes =
            std::fs::read(&binary).map_err(|e| format!("{}: {e} (build it with --release)", binary.display()))?;
        let zip_bytes = zipped_size(&bytes);
        let mut samples = Vec::with_capacity(runs);
        let mut answer = String::new();
        for run in 0..runs {
            let payload = world.first_event(*event, run).await?;
            let (sample, outcome) = cold_start(&binary, &world.environment(function, aws_endpoint), payload).await?;
            samples.push(sample);
            answer = outcome;
        }
        rows.push(Row {
            function,
            binary_bytes: bytes.len() as u64,
            zip_bytes,
            init: median(samples.iter().map(|s| s.init)),
            first_event: median(samples.iter().map(|s| s.first_event)),
            rss_kib: median(samples.iter().map(|s| s.rss_kib)),
            peak_kib: median(samples.iter().map(|s| s.peak_kib)),
            answer,
        });
    }
    Ok(render(&rows, runs))
}

fn median<T: Ord + Copy + Default>(values: impl Iterator<Item = T>) -> T {
    let mut values: Vec<T> = values.collect();
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// The size of a zip holding the binary alone: deflate at zip's default level, plus the local and
/// central headers and the end record (30 + 46 + 22 bytes and the name twice).
fn zipped_size(binary: &[u8]) -> u64 {
    let deflated = miniz_oxide::deflate::compress_to_vec(binary, 6).len().min(binary.len());
    (deflated + 30 + 46 + 22 + 2 * "bootstrap".len()) as u64
}

fn render(rows: &[Row], runs: usize) -> String {
    let mb = |bytes: u64| bytes as f64 / 1_000_000.0;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let baseline = rows.first().map(|row| row.init).unwrap_or_default();
    let mut out = format!(
        "Cold starts (median of {runs}; release build, this machine's architecture; first event with its real AWS calls on a local moto)\n"
    );
    out.push_str(&format!(
        "{:<18} {:>9} {:>7} {:>8} {:>6} {:>10} {:>7} {:>8}  {}\n",
        "function", "binary MB", "zip MB", "init ms", "x empty", "1st evt ms", "RSS MB", "peak MB", "first answer"
    ));
    for row in rows {
        let ratio = if baseline.is_zero() { 0.0 } else { row.init.as_secs_f64() / baseline.as_secs_f64() };
        out.push_str(&format!(
            "{:<18} {:>9.2} {:>7.2} {:>8.1} {:>6.1}x {:>10.1} {:>7.1} {:>8.1}  {}\n",
            row.function,
            mb(row.binary_bytes),
            mb(row.zip_bytes),
            ms(row.init),
            ratio,
            ms(row.first_event),
            row.rss_kib as f64 * 1024.0 / 1_000_000.0,
            row.peak_kib as f64 * 1024.0 / 1_000_000.0,
            row.answer,
        ));
    }
    out
}

/// The local deployment the functions run against, with one retailer, a Shopify store, an API
/// user and a carrier webhook secret, so that each first event does what it does in production.
struct World {
    aws: LocalAws,
    store_id: String,
    api_authorization: String,
    webhooks: ShopifyWebhooks,
    /// Served while the functions run.
    _shopify: FakeShopify,
}

impl World {
    async fn create(endpoint: &str) -> Result<Self, String> {
        let aws = LocalAws::provision(endpoint, "shipsync-coldstart", 30).await.map_err(|e| e.to_string())?;
        let table = aws.table.clone();
        let failed = |e: provision::ProvisionError| e.to_string();
        let retailer =
            provision::create_retailer(&table, "Cold start", FeeSettings::default()).await.map_err(failed)?;
        let vendor = provision::create_vendor(&table, retailer.id, "Vendor").await.map_err(failed)?;
        // The store's shop is a local fake (plain HTTP): the poller's tick lists its orders there.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let shopify = FakeShopify::start(listener, SHOPIFY_ACCESS_TOKEN).map_err(|e| e.to_string())?;
        let connection = ChannelConnection {
            shop_domain: Some("coldstart.myshopify.com".into()),
            base_url: Some(shopify.url().to_owned()),
            ..ChannelConnection::default()
        };
        let shop = provision::create_store(
            &table,
            retailer.id,
            "Shop",
            ChannelKind::Shopify,
            ExportSettings::default(),
            connection,
        )
        .await
        .map_err(failed)?;
        // Its scans come from Shippo, at its own carrier webhook URL, with its own secret.
        let mut shop = shop;
        shop.tracking.provider = Some(shipsync_domain::tracking::TrackingProvider::Shippo);
        table.save_channel_store(&shop).await.map_err(|e| e.to_string())?;
        let credentials = ChannelCredentials(
            [
                ("webhook_secret".to_owned(), SHOPIFY_SECRET.to_owned()),
                ("access_token".to_owned(), SHOPIFY_ACCESS_TOKEN.to_owned()),
                ("tracking_api_key".to_owned(), "coldstart-shippo-key".to_owned()),
                ("tracking_webhook_secret".to_owned(), SHIPPO_TOKEN.to_owned()),
            ]
            .into(),
        );
        table.save_credentials(retailer.id, shop.id, &credentials).await.map_err(|e| e.to_string())?;
        let product = Product {
            sku: shipsync_domain::vocabulary::Sku::parse("COLD-1")?,
            vendor_id: vendor.id,
            name: "Cold item".into(),
            cost: None,
        };
        table.save_product(retailer.id, &product).await.map_err(|e| e.to_string())?;
        let user = provision::create_api_user(&table, retailer.id, None, "UTC").await.map_err(failed)?;
        let api_authorization = format!(
            "Basic {}",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                format!("{}:{}", user.key, user.password)
            )
        );
        let webhooks = ShopifyWebhooks::new(table, aws.sqs.clone(), aws.order_queue_url.clone());
        Ok(Self { store_id: shop.id.to_string(), api_authorization, webhooks, aws, _shopify: shopify })
    }

    /// The environment the template gives the function, pointed at the local moto, with the
    /// variables the Lambda service sets.
    fn environment(&self, function: &str, endpoint: &str) -> Vec<(&'static str, String)> {
        let planner = &self.aws.planner;
        vec![
            ("AWS_LAMBDA_FUNCTION_NAME", format!("shipsync-{function}")),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", MEMORY_MB.into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/shipsync-{function}")),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/22/[$LATEST]coldstart".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "local".into()),
            ("AWS_SECRET_ACCESS_KEY", "local".into()),
            ("AWS_ENDPOINT_URL", endpoint.into()),
            ("SHIPSYNC_TABLE", self.aws.table.table_name().into()),
            ("SHIPSYNC_CREDENTIALS_KEY_ID", self.aws.credentials_key_id.clone()),
            ("SHIPSYNC_ORDER_QUEUE_URL", self.aws.order_queue_url.clone()),
            ("SHIPSYNC_EXPORT_QUEUE_URL", planner.queue_url.clone()),
            ("SHIPSYNC_EXPORTER_ARN", planner.exporter_arn.clone()),
            ("SHIPSYNC_SCHEDULE_GROUP", planner.schedule_group.clone()),
            ("SHIPSYNC_SCHEDULER_ROLE_ARN", planner.scheduler_role_arn.clone()),
            ("SHIPSYNC_SCHEDULE_DLQ_ARN", planner.schedule_dead_letter_arn.clone()),
            ("SHIPSYNC_EXPORT_MAX_RECEIVES", crate::local_aws::MAX_RECEIVES.to_string()),
        ]
    }

    /// The first event of run `run` (ids differ per run, so no run is a repeat of another).
    async fn first_event(&self, event: FirstEvent, run: usize) -> Result<Vec<u8>, String> {
        let tag = format!("{}-{run}", std::process::id());
        let value = match event {
            FirstEvent::AnyRequest => http_event("GET", "/", "", &[], ""),
            FirstEvent::ApiSearch => {
                http_event("GET", "/shipments.json", "per_page=50", &[("authorization", &self.api_authorization)], "")
            }
            FirstEvent::ShopifyDelivery => {
                let body = shopify_order(&tag, run);
                let signature = shopify_webhooks::sign(body.as_bytes(), SHOPIFY_SECRET);
                let headers = shopify_headers(&tag, &signature);
                let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                http_event("POST", &format!("/webhooks/shopify/{}", self.store_id), "", &headers, &body)
            }
            FirstEvent::CarrierDelivery => {
                let body = json!({
                    "event": "track_updated", "test": false,
                    "data": {"carrier": "ups", "tracking_number": format!("1ZCOLD{run:04}"),
                        "tracking_status": {"status": "TRANSIT", "status_details": "",
                            "status_date": format!("2026-11-22T07:{:02}:00Z", run % 60)}}
                })
                .to_string();
                let query = format!("token={SHIPPO_TOKEN}");
                let path = format!("/carrier_webhooks/shippo/{}", self.store_id);
                http_event("POST", &path, &query, &[("content-type", "application/json")], &body)
            }
            FirstEvent::OrderMessage => {
                // Its own delivery id and order: the Shopify webhook's runs used `tag` already.
                let body = self.queued_order_event(&format!("order-{tag}"), 1000 + run).await?;
                sqs_event(&self.aws.order_queue_arn, &tag, &body)
            }
            FirstEvent::ExportMessage => {
                // A shipment the table does not hold: the exporter reads it and lets the message go.
                let body = json!({"shipment_id": 900_000_000 + run, "reason": "scheduled"}).to_string();
                sqs_event(&self.aws.export_queue_arn, &tag, &body)
            }
            FirstEvent::ScheduledTick => json!({
                "version": "0", "id": tag, "detail-type": "Scheduled Event", "source": "aws.scheduler",
                "account": "123456789012", "time": "2026-11-22T07:00:00Z", "region": "us-east-1",
                "resources": ["arn:aws:scheduler:us-east-1:123456789012:schedule/default/shipsync-tick"], "detail": {}
            }),
        };
        serde_json::to_vec(&value).map_err(|e| e.to_string())
    }

    /// A channel event as the Shopify webhook queues it: delivered in-process, then read back
    /// from the order queue (the one naming this run's order; others there are left alone).
    async fn queued_order_event(&self, tag: &str, run: usize) -> Result<String, String> {
        let sqs = &self.aws.sqs;
        let queue = &self.aws.order_queue_url;
        let body = shopify_order(tag, run);
        let signature = shopify_webhooks::sign(body.as_bytes(), SHOPIFY_SECRET);
        let mut request = Request::builder().method(Method::POST).uri(format!("/webhooks/shopify/{}", self.store_id));
        for (name, value) in shopify_headers(tag, &signature) {
            request = request.header(name, value);
        }
        let request = request.body(Bytes::from(body)).map_err(|e| e.to_string())?;
        let response = self.webhooks.handle(request).await;
        if !response.status().is_success() {
            return Err(format!("the Shopify webhook refused the order event: {}", response.status()));
        }
        let answer = response.body().clone();
        // The queued event names its delivery (`shopify webhook <id>`).
        let order_name = format!("coldstart-{tag}");
        for _ in 0..20 {
            let received = sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .map_err(|e| format!("{e:?}"))?;
            for message in received.messages() {
                if let Some(body) = message.body().filter(|body| body.contains(&order_name)) {
                    return Ok(body.to_owned());
                }
            }
        }
        Err(format!("the Shopify webhook's event {order_name} ({answer}) never reached the order queue"))
    }
}

fn shopify_order(tag: &str, run: usize) -> String {
    json!({
        "id": 700_000_000 + run, "name": format!("#C{tag}"), "updated_at": "2026-11-22T07:00:00Z",
        "cancelled_at": null, "shipping_address": {"name": "Cold Customer"},
        "line_items": [{"id": 600_000_000 + run, "sku": "COLD-1", "name": "Cold item", "quantity": 1, "current_quantity": 1}]
    })
    .to_string()
}

fn shopify_headers(tag: &str, signature: &str) -> Vec<(&'static str, String)> {
    vec![
        ("content-type", "application/json".into()),
        ("x-shopify-topic", "orders/create".into()),
        ("x-shopify-shop-domain", "coldstart.myshopify.com".into()),
        ("x-shopify-webhook-id", format!("coldstart-{tag}")),
        ("x-shopify-hmac-sha256", signature.to_owned()),
    ]
}

/// An API Gateway HTTP API (payload 2.0) event.
fn http_event(method: &str, path: &str, query: &str, headers: &[(&str, &str)], body: &str) -> Value {
    let mut header_map = serde_json::Map::new();
    header_map.insert("host".into(), json!("shipsync.execute-api.us-east-1.amazonaws.com"));
    header_map.insert("user-agent".into(), json!("shipsync-bench"));
    for (name, value) in headers {
        header_map.insert((*name).to_owned(), json!(value));
    }
    json!({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
        "headers": header_map,
        "requestContext": {
            "accountId": "123456789012", "apiId": "shipsync", "domainName": "shipsync.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "shipsync", "requestId": "coldstart", "routeKey": "$default", "stage": "$default",
            "time": "22/Nov/2026:07:00:00 +0000", "timeEpoch": 1_795_330_800_000_u64,
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": "shipsync-bench"}
        },
        "body": body, "isBase64Encoded": false
    })
}

/// An SQS batch of one message, as Lambda's event source mapping delivers it.
fn sqs_event(queue_arn: &str, tag: &str, body: &str) -> Value {
    json!({"Records": [{
        "messageId": format!("coldstart-{tag}"), "receiptHandle": format!("handle-{tag}"), "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795330800000",
            "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1795330800001"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn, "awsRegion": "us-east-1"
    }]})
}

/// What the fake Runtime API saw of one function's first invocation.
struct Invocation {
    event: Bytes,
    spawned: Instant,
    first_poll: Option<Instant>,
    handed: Option<Instant>,
    answered: Option<oneshot::Sender<(Instant, String)>>,
}

/// Starts the binary against a fresh fake Runtime API and times its start and first event.
async fn cold_start(
    binary: &Path,
    environment: &[(&str, String)],
    event: Vec<u8>,
) -> Result<(ColdStart, String), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (answered, answer) = oneshot::channel();
    let invocation = Arc::new(Mutex::new(Invocation {
        event: Bytes::from(event),
        spawned: Instant::now(),
        first_poll: None,
        handed: None,
        answered: Some(answered),
    }));
    let server = tokio::spawn(serve_runtime_api(listener, invocation.clone()));
    let result = run_once(binary, environment, address, &invocation, answer).await;
    server.abort();
    result
}

async fn run_once(
    binary: &Path,
    environment: &[(&str, String)],
    address: SocketAddr,
    invocation: &Arc<Mutex<Invocation>>,
    answer: oneshot::Receiver<(Instant, String)>,
) -> Result<(ColdStart, String), String> {
    let mut command = tokio::process::Command::new(binary);
    command
        .env_clear()
        .envs(environment.iter().map(|(name, value)| (*name, value.as_str())))
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let spawned = Instant::now();
    lock(invocation).spawned = spawned;
    let mut child = command.spawn().map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id().ok_or("the function exited at once")?;
    let answered = tokio::select! {
        answered = tokio::time::timeout(RUN_TIMEOUT, answer) => answered,
        status = child.wait() => return Err(format!("{} exited before answering: {status:?}", binary.display())),
    };
    let (answered_at, outcome) = match answered {
        Ok(Ok(answer)) => answer,
        _ => return Err(format!("{} did not answer its first event within {RUN_TIMEOUT:?}", binary.display())),
    };
    let (rss_kib, peak_kib) = memory_of(pid)?;
    let _ = child.kill().await;
    let invocation = lock(invocation);
    let (Some(first_poll), Some(handed)) = (invocation.first_poll, invocation.handed) else {
        return Err("answered without being handed an event".into());
    };
    let sample = ColdStart {
        init: first_poll.duration_since(invocation.spawned),
        first_event: answered_at.duration_since(handed),
        rss_kib,
        peak_kib,
    };
    Ok((sample, outcome))
}

fn lock(invocation: &Mutex<Invocation>) -> std::sync::MutexGuard<'_, Invocation> {
    invocation.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `VmRSS` and `VmHWM` (KiB) from `/proc/<pid>/status`.
fn memory_of(pid: u32) -> Result<(u64, u64), String> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

async fn serve_runtime_api(listener: tokio::net::TcpListener, invocation: Arc<Mutex<Invocation>>) {
    // Every connection task ends with this one (aborted), so none outlives the run.
    let mut connections = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        let invocation = invocation.clone();
        let service = hyper::service::service_fn(move |request| runtime_api(request, invocation.clone()));
        connections.spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// The Runtime API's three routes a function uses: the next invocation (the first is the event;
/// later ones wait, as Lambda's do when no event comes), and its response or error.
async fn runtime_api(
    request: Request<Incoming>,
    invocation: Arc<Mutex<Invocation>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_owned();
    if request.method() == Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let now = Instant::now();
        let event = {
            let mut invocation = lock(&invocation);
            if invocation.first_poll.is_some() {
                None
            } else {
                invocation.first_poll = Some(now);
                invocation.handed = Some(Instant::now());
                Some(invocation.event.clone())
            }
        };
        let Some(event) = event else {
            std::future::pending::<()>().await;
            return Ok(plain(StatusCode::NO_CONTENT, ""));
        };
        let deadline_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|since| since + Duration::from_secs(60))
            .unwrap_or_default()
            .as_millis();
        let response = Response::builder()
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", "coldstart-request")
            .header("lambda-runtime-deadline-ms", deadline_ms.to_string())
            .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:123456789012:function:coldstart")
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0")
            .body(Full::new(event))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, ""));
        return Ok(response);
    }
    let answered = Instant::now();
    let is_error = path.ends_with("/error");
    let is_answer = path.starts_with("/2018-06-01/runtime/invocation/") && (path.ends_with("/response") || is_error);
    let is_init_error = path == "/2018-06-01/runtime/init/error";
    let body = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    if is_answer || is_init_error {
        let outcome = if is_answer && !is_error { summarize(&body) } else { format!("error: {}", summarize(&body)) };
        if let Some(sender) = lock(&invocation).answered.take() {
            let _ = sender.send((answered, outcome));
        }
        return Ok(plain(StatusCode::ACCEPTED, r#"{"status":"OK"}"#));
    }
    Ok(plain(StatusCode::NOT_FOUND, ""))
}

/// A short account of a function's answer: the status of an HTTP response, or the JSON itself.
fn summarize(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => match (value.get("statusCode"), value.get("errorMessage").and_then(Value::as_str)) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(message)) => clip(message.as_bytes()),
            (None, None) => clip(body),
        },
        Err(_) => clip(body),
    }
}

fn clip(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(120).collect()
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = status;
    response
}
