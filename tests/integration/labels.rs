//! Shipping labels against moto's S3 and SQS: a retailer's PDF on a purchase order is stored
//! encrypted in the private bucket and downloaded through a short-lived link by its vendor alone;
//! a vendor's ZPL on its own shipment; an HTML label rendered to a one-page PDF by the renderer
//! (Debian's Chromium) with its text, without reaching the network or running its script, once
//! however often its request is delivered; bad input refused by field, storing nothing.

use base64::Engine;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, shipment_body};

/// A minimal one-page PDF.
const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj \
3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 288 432]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";

fn encoded(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn download(url: &str) -> (u16, Vec<u8>) {
    let http = shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("a client");
    let response = http.get(url).send().await.expect("the link answers");
    (response.status().as_u16(), response.bytes().await.expect("a body").to_vec())
}

async fn objects(app: &TestApp) -> Vec<String> {
    let listed = app.aws.s3().list_objects_v2().bucket(&app.aws.labels_bucket).send().await.expect("list");
    listed.contents().iter().filter_map(|object| object.key().map(str::to_owned)).collect()
}

#[tokio::test]
async fn a_retailers_pdf_is_stored_encrypted_and_downloaded_by_its_vendor_alone() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "LBL-1", "Ada Lovelace", &[2]).await;
    let body = json!({"label": {"format": "pdf", "content": encoded(PDF), "tracking": "1Z999AA10123456784", "carrier": "UPS"}});
    let (status, created) =
        app.call(Method::POST, &format!("/purchase_orders/{}/labels.json", po.id), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let label = &created["label"];
    assert_eq!(
        (label["format"].clone(), label["source"].clone(), label["state"].clone(), label["attached_by"].clone()),
        (json!("pdf"), json!("file"), json!("ready"), json!("retailer"))
    );
    assert_eq!(
        (label["size_bytes"].clone(), label["tracking"].clone()),
        (json!(PDF.len()), json!("1Z999AA10123456784"))
    );
    let url = label["download_url"].as_str().expect("a download link");
    assert!(url.contains("X-Amz-Expires=300"), "a link for five minutes: {url}");
    assert_eq!(download(url).await, (200, PDF.to_vec()), "the file as sent, without credentials");

    // In the bucket: under the tenant and purchase order, encrypted at rest, and nothing else.
    let key = format!("labels/{}/{}/{}.pdf", app.retailer.id, po.id, label["id"]);
    assert_eq!(objects(&app).await, std::slice::from_ref(&key));
    let head = app.aws.s3().head_object().bucket(&app.aws.labels_bucket).key(&key).send().await.expect("head");
    assert_eq!(head.server_side_encryption().map(|sse| sse.as_str()), Some("AES256"));
    assert_eq!(head.content_type(), Some("application/pdf"));

    // Its vendor sees it; the other vendor cannot reach the purchase order at all.
    let path = format!("/purchase_orders/{}/labels.json", po.id);
    let (status, listed) = app.call_as(Some(&app.vendor_user), Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["labels"].as_array().map(Vec::len), Some(1));
    let other = app.purchase_order(&app.other_vendor, "LBL-2", "Grace Hopper", &[1]).await;
    let (status, _) = app
        .call_as(Some(&app.vendor_user), Method::GET, &format!("/purchase_orders/{}/labels.json", other.id), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A vendor attaches labels to its own shipments, not to the purchase order.
    let body = json!({"label": {"format": "pdf", "content": encoded(PDF)}});
    let (status, refused) = app.call_as(Some(&app.vendor_user), Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");

    // Bad input names its field and stores nothing.
    for (label, field) in [
        (json!({"format": "pdf", "content": encoded(b"<html>not a pdf</html>")}), "content"),
        (json!({"format": "pdf", "content": "not base64!"}), "content"),
        (json!({"format": "gif", "content": encoded(b"GIF89a")}), "format"),
        (json!({"content": encoded(PDF)}), "format"),
        (json!({"format": "html"}), "html"),
    ] {
        let (status, refused) = app.call(Method::POST, &path, Some(json!({"label": label}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{label}: {refused}");
        assert!(refused.to_string().contains(field), "{label}: {refused}");
    }
    let (status, refused) = app.call(Method::POST, &path, Some(json!({"label": {"format": "pdf", "x": 1}}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown field: {refused}");
    assert_eq!(objects(&app).await.len(), 1, "nothing stored for refused requests");
    let (_, listed) = app.call(Method::GET, &path, None).await;
    assert_eq!(listed["labels"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_vendor_attaches_its_own_label_to_its_shipment() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "LBL-3", "Ada Lovelace", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZLABEL0001"])).await;
    let path = format!("/shipments/{}/labels.json", shipment["id"]);
    let zpl = b"^XA^FO50,50^ADN,36,20^FD1ZLABEL0001^FS^XZ";
    let body = json!({"label": {"format": "zpl", "content": encoded(zpl), "tracking": "1zlabel0001"}});
    let (status, created) = app.call_as(Some(&app.vendor_user), Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["label"]["attached_by"], "vendor");
    assert_eq!(created["label"]["carrier"], "UPS", "the shipment's carrier");
    assert_eq!(created["label"]["shipment_id"], shipment["id"]);
    let url = created["label"]["download_url"].as_str().expect("a link");
    assert_eq!(download(url).await, (200, zpl.to_vec()));
    let body = json!({"label": {"format": "zpl", "content": encoded(zpl), "tracking": "1ZSOMEONEELSE"}});
    let (status, refused) = app.call_as(Some(&app.vendor_user), Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("tracking"), "{refused}");
    let (status, listed) = app.call(Method::GET, &path, None).await;
    assert_eq!((status, listed["labels"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)), "{listed}");
    let (_, on_po) = app.call(Method::GET, &format!("/purchase_orders/{}/labels.json", po.id), None).await;
    assert_eq!(on_po["labels"].as_array().map(Vec::len), Some(1), "a shipment's labels are its order's too");
}

/// Runs a program of poppler-utils on a PDF; its output.
fn poppler(program: &str, pdf: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("shipsync-pdf-{}-{}", std::process::id(), pdf.len()));
    std::fs::create_dir_all(&dir).expect("a directory");
    let file = dir.join("label.pdf");
    std::fs::write(&file, pdf).expect("write the PDF");
    // pdftotext writes to its second argument (`-`: standard output); pdfinfo takes one.
    let mut command = std::process::Command::new(program);
    command.arg(&file);
    if program == "pdftotext" {
        command.arg("-");
    }
    let output = command.output();
    let _ = std::fs::remove_dir_all(&dir);
    let output =
        output.unwrap_or_else(|error| panic!("{program} (poppler-utils, installed by scripts/setup): {error}"));
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[tokio::test]
async fn an_html_label_is_rendered_once_to_a_pdf_with_its_text_and_nothing_it_asks_for() {
    let app = TestApp::new().await;
    let watcher = MockServer::start().await;
    Mock::given(any()).respond_with(ResponseTemplate::new(200)).mount(&watcher).await;
    let po = app.purchase_order(&app.vendor, "LBL-4", "Ada Lovelace", &[1]).await;
    let html = format!(
        "<html><head><style>h1 {{ font-family: sans-serif; }}</style></head><body>\
         <h1>SHIP TO Ada Lovelace</h1><p>Purchase order LBL-4</p>\
         <img src=\"{0}/pixel.png\"><iframe src=\"file:///etc/hostname\"></iframe>\
         <script>document.write('SCRIPT RAN'); fetch('{0}/beacon');</script></body></html>",
        watcher.uri()
    );
    let path = format!("/purchase_orders/{}/labels.json", po.id);
    let body = json!({"label": {"format": "html", "html": html, "tracking": "1ZHTML0001", "carrier": "UPS"}});
    let (status, created) = app.call(Method::POST, &path, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(
        (created["label"]["state"].clone(), created["label"]["download_url"].clone()),
        (json!("rendering"), Value::Null)
    );

    assert_eq!(app.run_renders().await, 1);
    let (_, listed) = app.call(Method::GET, &path, None).await;
    let label = &listed["labels"][0];
    assert_eq!(
        (label["state"].clone(), label["format"].clone(), label["source"].clone()),
        (json!("ready"), json!("pdf"), json!("html")),
        "{listed}"
    );
    let (status, pdf) = download(label["download_url"].as_str().expect("a link")).await;
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF-"), "a PDF");
    let info = poppler("pdfinfo", &pdf);
    assert!(info.lines().any(|line| line.starts_with("Pages:") && line.ends_with(" 1")), "one page: {info}");
    let text = poppler("pdftotext", &pdf);
    assert!(text.contains("SHIP TO Ada Lovelace") && text.contains("LBL-4"), "its text: {text}");
    assert!(!text.contains("SCRIPT RAN"), "its script did not run: {text}");
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    assert!(hostname.trim().is_empty() || !text.contains(hostname.trim()), "no local file in it: {text}");
    assert!(watcher.received_requests().await.unwrap_or_default().is_empty(), "the page reached nothing");
    assert_eq!(
        objects(&app).await,
        [format!("labels/{}/{}/{}.pdf", app.retailer.id, po.id, label["id"])],
        "its HTML removed"
    );

    // The same request delivered again changes nothing: the label is rendered.
    let request = json!({"retailer_id": app.retailer.id, "purchase_order_id": po.id, "label_id": label["id"],
        "sent_at": chrono::Utc::now().to_rfc3339()});
    app.aws
        .sqs
        .send_message()
        .queue_url(&app.aws.render_queue_url)
        .message_body(request.to_string())
        .send()
        .await
        .expect("send again");
    assert_eq!(app.run_renders().await, 1);
    let (_, again) = app.call(Method::GET, &path, None).await;
    assert_eq!(again["labels"][0]["sha256"], label["sha256"], "not rendered twice");
}

/// The raw messages moto's SES holds (its `/moto-api/data.json`): sender, recipients, MIME.
async fn sent_mail() -> Vec<Value> {
    let http = shipsync_channels::http_client(std::time::Duration::from_secs(10)).expect("a client");
    let url = format!("{}/moto-api/data.json", crate::harness::moto().endpoint);
    let data: Value = http.get(url).send().await.expect("moto's data").json().await.expect("JSON");
    data["ses"]["RawMessage"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_purchase_order_is_emailed_to_its_vendor_with_its_labels_once_when_the_retailer_turns_it_on() {
    let app = TestApp::new().await;
    let po = app.purchase_order(&app.vendor, "LBL-MAIL-1", "Ada Lovelace", &[1]).await;
    let labels = format!("/purchase_orders/{}/labels.json", po.id);
    let body = json!({"label": {"format": "pdf", "content": encoded(PDF), "tracking": "1ZMAIL0001"}});
    let (status, _) = app.call(Method::POST, &labels, Some(body)).await;
    assert_eq!(status, StatusCode::CREATED);
    let email = format!("/purchase_orders/{}/email.json", po.id);
    // Not until the retailer turns it on for the vendor, with an address.
    let (status, refused) = app.call(Method::POST, &email, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused.to_string().contains("email_purchase_orders"), "{refused}");
    let vendor = format!("/vendors/{}.json", app.vendor.id);
    let (status, refused) =
        app.call(Method::PUT, &vendor, Some(json!({"vendor": {"email_purchase_orders": true}}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an address first: {refused}");
    let (status, refused) = app
        .call(Method::PUT, &vendor, Some(json!({"vendor": {"email": "not an address", "email_purchase_orders": true}})))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let address = format!("orders-{}@acme.example", app.vendor.id);
    let on = json!({"vendor": {"email": address, "email_purchase_orders": true}});
    let (status, saved) = app.call(Method::PUT, &vendor, Some(on)).await;
    assert_eq!((status, saved["vendor"]["email"].clone()), (StatusCode::OK, json!(address)), "{saved}");
    // Only the retailer sends it, and only for its own purchase orders.
    let (status, _) = app.call_as(Some(&app.vendor_user), Method::POST, &email, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, queued) = app.call(Method::POST, &email, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    let before = sent_mail().await.len();
    // Delivered twice (the queue's at least once): one email.
    // Waiting a little: an emulator under load may answer an immediate receive with nothing.
    let message = app
        .aws
        .sqs
        .receive_message()
        .queue_url(&app.aws.mail_queue_url)
        .wait_time_seconds(5)
        .send()
        .await
        .expect("receive");
    assert_eq!(message.messages().len(), 1, "the queued request: {message:?}");
    let request = message.messages()[0].body().expect("a body").to_owned();
    app.aws
        .sqs
        .change_message_visibility()
        .queue_url(&app.aws.mail_queue_url)
        .receipt_handle(message.messages()[0].receipt_handle().expect("a handle"))
        .visibility_timeout(0)
        .send()
        .await
        .expect("release");
    app.aws.sqs.send_message().queue_url(&app.aws.mail_queue_url).message_body(request).send().await.expect("again");
    assert_eq!(app.run_mail().await, 2);
    let sent: Vec<Value> = sent_mail()
        .await
        .into_iter()
        .skip(before)
        .filter(|message| message["destinations"].to_string().contains(&address))
        .collect();
    let [message] = sent.as_slice() else { panic!("one email to the vendor: {sent:?}") };
    assert_eq!(message["source"], shipsync_tools::local_aws::LOCAL_MAIL_FROM);
    let raw = message["raw_data"].as_str().expect("MIME");
    assert!(raw.contains(&format!("To: {address}\r\n")), "{raw}");
    assert!(raw.contains("Subject: Purchase order LBL-MAIL-1 from "), "{raw}");
    assert!(raw.contains("Content-Type: application/pdf"), "{raw}");
    assert!(raw.contains("-1ZMAIL0001.pdf\""), "the label, named by its tracking number: {raw}");
    assert!(raw.contains(&encoded(PDF)[..60]), "the PDF itself, base64: {raw}");
}

#[tokio::test]
async fn a_new_purchase_order_from_a_channel_is_emailed_once_to_a_vendor_that_takes_them() {
    let app = TestApp::new().await;
    let address = format!("new-orders-{}@acme.example", app.vendor.id);
    let on = json!({"vendor": {"email": address, "email_purchase_orders": true}});
    let (status, _) = app.call(Method::PUT, &format!("/vendors/{}.json", app.vendor.id), Some(on)).await;
    assert_eq!(status, StatusCode::OK);
    // The processor shares this test's table and its settings memory, which a deployed one
    // (another container) would not: it reads the vendor afresh.
    app.table.forget_settings(app.retailer.id);
    for sku in ["IPOD-342-N", "IPOD-342-P", "WRAP-1"] {
        let product = json!({"product": {"sku": sku, "vendor_id": app.vendor.id.get()}});
        assert_eq!(app.call(Method::POST, "/products.json", Some(product)).await.0, StatusCode::CREATED);
    }
    let path = format!("{}/fixtures/shopify/orders_create.json", env!("CARGO_MANIFEST_DIR"));
    let order: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
    let before = sent_mail().await.len();
    // The order comes twice (webhook retries): one purchase order, one email.
    for delivery in ["mail-1", "mail-2"] {
        let (status, _) = crate::webhooks::deliver_signed(&app, "orders/create", &order, delivery).await;
        assert_eq!(status, StatusCode::OK);
        app.run_orders().await;
    }
    let (_, orders) = app.call(Method::GET, "/purchase_orders.json", None).await;
    assert_eq!(orders["purchase_orders"].as_array().map(Vec::len), Some(1), "one purchase order: {orders}");
    assert_eq!(app.run_mail().await, 1, "one request queued");
    let sent: Vec<Value> = sent_mail()
        .await
        .into_iter()
        .skip(before)
        .filter(|message| message["destinations"].to_string().contains(&address))
        .collect();
    let [message] = sent.as_slice() else { panic!("one email to the vendor: {sent:?}") };
    let raw = message["raw_data"].as_str().expect("MIME");
    assert!(raw.contains("Subject: Purchase order S"), "the new purchase order: {raw}");
    let body = raw.split("Content-Transfer-Encoding: base64\r\n\r\n").nth(1).and_then(|part| part.split("--=_").next());
    let text = body
        .map(|part| part.split_whitespace().collect::<String>())
        .and_then(|part| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, part).ok());
    let text = String::from_utf8(text.unwrap_or_default()).unwrap_or_default();
    assert!(text.contains("1 x IPOD-342-N"), "its items: {text}");
}
