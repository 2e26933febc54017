//! Administration of a shipsync deployment: tenants, carriers, API users and purchase orders.
//! Talks to the table named by SHIPSYNC_TABLE with the usual AWS credentials.

use std::process::ExitCode;

use rust_decimal::Decimal;
use shipsync_domain::export::ExportSettings;
use shipsync_domain::purchase_order::{NewOrderItem, NewPurchaseOrder};
use shipsync_domain::tenant::{ChannelConnection, ChannelKind, FeeSettings};
use shipsync_table::schema::create_table;
use shipsync_table::{KmsCipher, Table};
use shipsync_tools::args::Args;
use shipsync_tools::provision;

const USAGE: &str =
    "usage: shipsync-admin COMMAND [options]   (table: SHIPSYNC_TABLE or --table; --endpoint URL for an emulator)
  openapi          writes the API's OpenAPI 3.1 document (generated from the code) to docs/openapi.json,
                   or to --out FILE (no table needed)
  create-table
  create-retailer  --name NAME [--no-shipping-fees] [--no-handling-fees] [--no-tax]
  create-vendor    --retailer ID --name NAME
  create-store     --retailer ID --name NAME --channel shopify|amazon|ebay|back_market|walmart [--shop-domain X.myshopify.com] [--marketplace-id ATVPDKIKX0DER] [--sandbox (eBay)]
                   (then set export settings and credentials with PUT /stores/{id}.json)
  create-carrier   --retailer ID --name NAME [--scac CODE]
  create-api-user  --retailer ID [--vendor ID] [--time-zone Area/City]
  kept-payload     --retailer ID --key PROBLEM_KEY --out FILE   (a payload order health lists as unapplicable)
  create-purchase-order --retailer ID --vendor ID --store ID --number PO-1 --customer NAME
                   --item SKU,QUANTITY,NAME[,COST[,CHANNEL_LINE_ITEM_ID]] (repeat --item per line)
  seal-credentials [--key-id KEY]   (KEY: the stack's credentials key, else SHIPSYNC_CREDENTIALS_KEY_ID)
                   seals credentials stored in plaintext by a version before encryption at rest
  show             --pk PK --sk SK   (a record as JSON, e.g. --pk SHIPMENT#1007 --sk SHIPMENT; shipments and
                   purchase orders are stored deflated, so the console shows their data as binary)
  rekey-vendor-listings   (once, on a table written before vendor listings held the retailer)
  link-purchase-order-shipments   (once, on a table written before purchase orders listed their
                   shipments; run it before deploying a template without the by_purchase_order index)
  rekey-tracking-numbers  (once, on a table written before tracking-number records held the store)
  subscribe-amazon --retailer ID --store ID --queue-arn ARN [--key-id KEY]
                   subscribes the Amazon store's seller to ORDER_CHANGE notifications delivered to the
                   stack's AmazonNotificationQueueArn (safe to repeat)";

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("shipsync-admin: {message}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<String, String> {
    let args = Args::parse(std::env::args().skip(1))?;
    if args.command.as_deref() == Some("openapi") {
        let out = args.value("out").unwrap_or("docs/openapi.json").to_owned();
        std::fs::write(&out, shipments_api::openapi::document_text()).map_err(|e| format!("writing {out}: {e}"))?;
        return Ok(format!("OpenAPI document written to {out}"));
    }
    let table = match args.value("table") {
        Some(table) => table.to_owned(),
        None => shipsync_platform::required_env("SHIPSYNC_TABLE").map_err(|e| e.to_string())?,
    };
    let store = match args.value("endpoint") {
        Some(endpoint) => shipsync_tools::store_at(endpoint, &table).await,
        None => Table::new(
            shipsync_platform::dynamodb_client(&shipsync_platform::aws_sdk_config().await.map_err(|e| e.to_string())?),
            &table,
        ),
    };
    let failed = |error: provision::ProvisionError| error.to_string();
    match args.command.as_deref() {
        Some("create-table") => {
            create_table(store.client(), &table).await.map_err(|e| format!("{e:?}"))?;
            Ok(format!("table {table} ready"))
        }
        Some("create-retailer") => {
            let fees = FeeSettings {
                shipping: !args.flag("no-shipping-fees"),
                handling: !args.flag("no-handling-fees"),
                tax: !args.flag("no-tax"),
            };
            let retailer = provision::create_retailer(&store, args.required("name")?, fees).await.map_err(failed)?;
            Ok(format!("retailer {} created", retailer.id))
        }
        Some("create-vendor") => {
            let vendor = provision::create_vendor(&store, args.required_parsed("retailer")?, args.required("name")?)
                .await
                .map_err(failed)?;
            Ok(format!("vendor {} created", vendor.id))
        }
        Some("create-store") => {
            let channel: ChannelKind =
                serde_json::from_value(serde_json::Value::String(args.required("channel")?.to_owned()))
                    .map_err(|_| format!("--channel must be {}", ChannelKind::offered()))?;
            let connection = ChannelConnection {
                shop_domain: args.value("shop-domain").map(str::to_owned),
                marketplace_id: args.value("marketplace-id").map(str::to_owned),
                sandbox: args.flag("sandbox"),
                ..ChannelConnection::default()
            };
            let created = provision::create_store(
                &store,
                args.required_parsed("retailer")?,
                args.required("name")?,
                channel,
                ExportSettings::default(),
                connection,
            )
            .await
            .map_err(failed)?;
            Ok(format!("store {} created", created.id))
        }
        Some("seal-credentials") => {
            let store = store.with_cipher(std::sync::Arc::new(encrypting_cipher(&args).await?));
            let sealed = store.seal_plaintext_credentials().await.map_err(|e| e.to_string())?;
            Ok(format!("credentials of {sealed} store(s) sealed"))
        }
        Some("create-carrier") => {
            let carrier = provision::create_carrier(
                &store,
                args.required_parsed("retailer")?,
                args.required("name")?,
                args.value("scac"),
            )
            .await
            .map_err(failed)?;
            Ok(format!("carrier {} created", carrier.id))
        }
        Some("create-api-user") => {
            let vendor = match args.value("vendor") {
                Some(_) => Some(args.required_parsed("vendor")?),
                None => None,
            };
            let zone = args.value("time-zone").unwrap_or("UTC");
            let credentials = provision::create_api_user(&store, args.required_parsed("retailer")?, vendor, zone)
                .await
                .map_err(failed)?;
            Ok(format!(
                "API key: {}\nPassword: {}\n(the password is shown only now: shipsync keeps only a digest of it)",
                credentials.key, credentials.password
            ))
        }
        Some("kept-payload") => {
            let key = args.required("key")?;
            let (kept, bytes) = store
                .kept_payload(args.required_parsed("retailer")?, key)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no payload is kept as {key}"))?;
            let out = args.required("out")?;
            std::fs::write(out, &bytes).map_err(|e| format!("writing {out}: {e}"))?;
            Ok(format!(
                "{} bytes written to {out}: the payload received at {} ({})",
                bytes.len(),
                kept.received_at,
                kept.describe()
            ))
        }
        Some("create-purchase-order") => {
            let items = args.values("item").iter().map(|text| parse_item(text)).collect::<Result<Vec<_>, _>>()?;
            let order = NewPurchaseOrder {
                retailer_id: args.required_parsed("retailer")?,
                vendor_id: args.required_parsed("vendor")?,
                store_id: args.required_parsed("store")?,
                public_reference: args.required("number")?.to_owned(),
                channel_order_id: args
                    .value("channel-order-id")
                    .map(shipsync_domain::vocabulary::ChannelOrderId::parse)
                    .transpose()
                    .map_err(|problem| format!("--channel-order-id {problem}"))?,
                customer_name: args.required("customer")?.to_owned(),
                items,
            };
            let po = provision::create_purchase_order(&store, order).await.map_err(failed)?;
            let lines: Vec<String> =
                po.items.iter().map(|i| format!("  order item {} {} x{}", i.id, i.sku, i.quantity)).collect();
            Ok(format!("purchase order {} created\n{}", po.id, lines.join("\n")))
        }
        Some("subscribe-amazon") => {
            let (retailer, store_id) = (args.required_parsed("retailer")?, args.required_parsed("store")?);
            let table = store.with_cipher(std::sync::Arc::new(kms_cipher(&args, true).await?));
            let record = table
                .channel_store(retailer, store_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("retailer {retailer} has no store {store_id}"))?;
            if record.channel != ChannelKind::Amazon {
                return Err(format!("store {store_id} is a {} store, not an Amazon one", record.channel.name()));
            }
            let opened = table.credentials(retailer, store_id).await.map_err(|e| e.to_string())?;
            let credentials =
                shipsync_channels::AmazonCredentials::from_credentials(&opened).map_err(|e| e.to_string())?;
            let marketplace = record.connection.marketplace_id.clone().ok_or("the store has no marketplace_id")?;
            // An emulator deployment (--endpoint) honours the store's fake Amazon; AWS never does.
            let endpoints = if args.value("endpoint").is_some() {
                shipsync_channels::ChannelEndpoints::honouring_store_overrides()
            } else {
                shipsync_channels::ChannelEndpoints::fixed()
            };
            let http = shipsync_channels::http_client(std::time::Duration::from_secs(20)).map_err(|e| e.to_string())?;
            let amazon = endpoints
                .amazon_client(http, &record.connection, marketplace, credentials, Default::default())
                .map_err(|e| e.to_string())?;
            let made = amazon.subscribe_order_changes(args.required("queue-arn")?).await.map_err(|e| e.to_string())?;
            let seller = record.connection.seller_id.as_deref().unwrap_or("(set the store's seller_id to route them)");
            Ok(format!(
                "ORDER_CHANGE notifications of seller {seller} go to destination {} (subscription {}{})",
                made.destination_id,
                made.subscription_id,
                if made.already_subscribed { ", already in place" } else { "" }
            ))
        }
        Some("show") => {
            let (pk, sk) = (args.required("pk")?, args.required("sk")?);
            match store.record_json(pk, sk).await.map_err(|e| e.to_string())? {
                Some(record) => serde_json::to_string_pretty(&record).map_err(|e| e.to_string()),
                None => Err(format!("no record {pk} / {sk}")),
            }
        }
        Some("link-purchase-order-shipments") => {
            let linked = store.link_purchase_order_shipments().await.map_err(|e| e.to_string())?;
            Ok(format!("{linked} shipments linked to their purchase orders"))
        }
        Some("rekey-vendor-listings") => {
            let count = store.rekey_vendor_listings().await.map_err(|e| e.to_string())?;
            Ok(format!("{count} records now listed under their retailer and vendor"))
        }
        Some("rekey-tracking-numbers") => {
            let count = store.rekey_tracking_numbers().await.map_err(|e| e.to_string())?;
            Ok(format!("{count} tracking-number records now under their shipment's store"))
        }
        Some(other) => Err(format!("unknown command {other:?}")),
        None => Err("a command is required".to_owned()),
    }
}

/// A cipher that seals with the stack's credentials key (`--key-id`, else
/// `SHIPSYNC_CREDENTIALS_KEY_ID`); `--endpoint` points it at an emulator.
async fn encrypting_cipher(args: &Args) -> Result<KmsCipher, String> {
    kms_cipher(args, false).await
}

/// The stack's credentials key, sealing only, or opening too (`open`: an administrator's own
/// AWS credentials must allow `kms:Decrypt` on it).
async fn kms_cipher(args: &Args, open: bool) -> Result<KmsCipher, String> {
    let key_id = match args.value("key-id") {
        Some(key) => key.to_owned(),
        None => shipsync_platform::required_env("SHIPSYNC_CREDENTIALS_KEY_ID").map_err(|e| e.to_string())?,
    };
    let kms = match args.value("endpoint") {
        Some(endpoint) => aws_sdk_kms::Client::new(&shipsync_tools::local_aws::sdk_config(endpoint).await),
        None => aws_sdk_kms::Client::new(&shipsync_platform::aws_sdk_config().await.map_err(|e| e.to_string())?),
    };
    Ok(if open { KmsCipher::new(kms, key_id) } else { KmsCipher::encrypt_only(kms, key_id) })
}

fn parse_item(text: &str) -> Result<NewOrderItem, String> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    let [sku, quantity, name, rest @ ..] = fields.as_slice() else {
        return Err(format!("--item {text:?}: expected SKU,QUANTITY,NAME[,COST[,CHANNEL_LINE_ITEM_ID]]"));
    };
    let quantity = quantity.parse().map_err(|_| format!("--item {text:?}: quantity must be a whole number"))?;
    let cost = match rest.first() {
        Some(cost) if !cost.is_empty() => {
            Some(cost.parse::<Decimal>().map_err(|_| format!("--item {text:?}: bad cost"))?)
        }
        _ => None,
    };
    Ok(NewOrderItem {
        sku: (*sku).to_owned(),
        name: (*name).to_owned(),
        quantity,
        cost,
        channel_line_item_id: rest.get(1).map(|s| (*s).to_owned()),
        needs_imei: false,
    })
}
