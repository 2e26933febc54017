//! The console in a real browser: Debian's Chromium driven over WebDriver (chromedriver) against
//! the local server, signing in, seeing a failed export in order health, pressing "Export now"
//! and seeing it exported in the shipment's history; every page checked for labels, headings and
//! language, and at phone width for sideways scrolling; a form without its session's token, a
//! forged cookie and a vendor's way to the retailer's pages refused. Screenshots go to
//! `target/console-screenshots/`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use shipsync_domain::export::ExportSettings;
use shipsync_domain::tenant::FeeSettings;
use shipsync_tools::local_server::{self, LocalApps};
use wiremock::matchers::{body_string_contains, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::harness::{TestApp, shipment_body};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const SECRET: &str = "console-test-secret-0123456789abcdef0123456789";

/// A headless Chromium session through chromedriver, stopped when dropped.
struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    async fn start() -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver; scripts/setup installs it)");
        let http = shipsync_channels::http_client(Duration::from_secs(60)).expect("an HTTP client");
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"]}}}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("a WebDriver session")
            .json()
            .await
            .expect("JSON");
        let id = created["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {created}"));
        Browser { http, session: format!("{base}/session/{id}"), driver }
    }

    async fn command(&self, verb: reqwest::Method, path: &str, body: Value) -> Value {
        let request = self.http.request(verb, format!("{}{path}", self.session));
        let request = if body.is_null() { request } else { request.json(&body) };
        let answer: Value = request.send().await.expect("WebDriver").json().await.expect("JSON");
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.command(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    async fn find(&self, css: &str) -> String {
        let found =
            self.command(reqwest::Method::POST, "/element", json!({"using": "css selector", "value": css})).await;
        found[ELEMENT].as_str().unwrap_or_else(|| panic!("no {css} on the page: {found}")).to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/value"), json!({"text": text})).await;
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.command(reqwest::Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    async fn source(&self) -> String {
        self.command(reqwest::Method::GET, "/source", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    async fn url(&self) -> String {
        self.command(reqwest::Method::GET, "/url", Value::Null).await.as_str().unwrap_or_default().to_owned()
    }

    /// The page's address once it has one that `matches` (a click's navigation may still be on
    /// its way when the click returns), or the last one seen after five seconds.
    async fn url_once(&self, matches: impl Fn(&str) -> bool) -> String {
        let mut url = self.url().await;
        for _ in 0..50 {
            if matches(&url) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            url = self.url().await;
        }
        url
    }

    async fn script(&self, script: &str) -> Value {
        self.command(reqwest::Method::POST, "/execute/sync", json!({"script": script, "args": []})).await
    }

    async fn resize(&self, width: u32, height: u32) {
        self.command(reqwest::Method::POST, "/window/rect", json!({"width": width, "height": height})).await;
    }

    async fn cookie(&self, name: &str) -> Value {
        self.command(reqwest::Method::GET, &format!("/cookie/{name}"), Value::Null).await
    }

    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let shot = self.command(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let png = base64::engine::general_purpose::STANDARD.decode(shot.as_str().unwrap_or_default()).expect("PNG");
        let dir = format!("{}/../target/console-screenshots", env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(format!("{dir}/{name}.png"), png).expect("screenshot");
    }

    async fn quit(&self) {
        let _ = self.http.delete(&self.session).send().await;
    }
}

/// An automated accessibility check of a page's HTML: its language, one `h1`, no heading
/// level skipped, every visible field labelled, every button named.
fn accessible(page: &str) -> Result<(), String> {
    let lower = page.to_ascii_lowercase();
    if !lower.contains("<html lang=\"en\"") {
        return Err("the page names no language".into());
    }
    let mut levels = Vec::new();
    for (index, _) in lower.match_indices("<h") {
        if let Some(level) = lower[index + 2..].chars().next().and_then(|c| c.to_digit(10)) {
            levels.push(level);
        }
    }
    if levels.iter().filter(|level| **level == 1).count() != 1 {
        return Err(format!("not exactly one h1: {levels:?}"));
    }
    for pair in levels.windows(2) {
        if pair[1] > pair[0] + 1 {
            return Err(format!("a heading level skipped: {levels:?}"));
        }
    }
    for (index, _) in lower.match_indices("<input") {
        let tag = &lower[index..lower[index..].find('>').map_or(lower.len(), |end| index + end)];
        if tag.contains("type=\"hidden\"") {
            continue;
        }
        let id = tag.split("id=\"").nth(1).and_then(|rest| rest.split('"').next());
        match id {
            Some(id) if lower.contains(&format!("<label for=\"{id}\"")) => {}
            _ => return Err(format!("a field without its label: {tag}")),
        }
    }
    for (index, _) in lower.match_indices("<button") {
        let rest = &lower[index..];
        let text = rest.split('>').nth(1).and_then(|inner| inner.split("</button").next()).unwrap_or_default();
        if text.trim().is_empty() {
            return Err("a button without a name".into());
        }
    }
    Ok(())
}

async fn shopify_refusing_once() -> MockServer {
    let shopify = MockServer::start().await;
    let order = json!({"data": {"order": {"id": "gid://shopify/Order/CON-1", "fulfillments": [], "fulfillmentOrders": {"nodes": [
        {"id": "gid://shopify/FulfillmentOrder/1", "status": "OPEN", "assignedLocation": {"location": {"id": "gid://shopify/Location/1"}},
         "lineItems": {"nodes": [{"id": "gid://shopify/FulfillmentOrderLineItem/0", "remainingQuantity": 1, "lineItem": {"id": "gid://shopify/LineItem/0"}}]}}]}}}});
    Mock::given(method("POST"))
        .and(body_string_contains("ShipsyncOrder"))
        .respond_with(ResponseTemplate::new(200).set_body_json(order))
        .mount(&shopify)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"fulfillmentCreate": {
            "fulfillment": null, "userErrors": [{"field": ["trackingInfo"], "message": "Tracking company is not valid"}]}}})))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&shopify)
        .await;
    Mock::given(method("POST"))
        .and(body_string_contains("ShipsyncFulfillmentCreate"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": {"fulfillmentCreate": {
            "fulfillment": {"id": "gid://shopify/Fulfillment/77", "status": "SUCCESS"}, "userErrors": []}}})))
        .with_priority(2)
        .mount(&shopify)
        .await;
    shopify
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_signs_in_sees_a_failed_export_and_exports_it_again_in_the_browser() {
    let shopify = shopify_refusing_once().await;
    let app = TestApp::with(FeeSettings::default(), ExportSettings::default(), Some(&shopify.uri())).await;
    let po = app.purchase_order(&app.vendor, "CON-1", "Ada Lovelace", &[1]).await;
    let shipment = app.create_shipment(&po, shipment_body(&[(po.items[0].id.get(), 1)], &["1ZCONSOLE01"])).await;
    app.run_exports().await;
    let id = shipment["id"].as_u64().expect("an id");
    let (_, read) = app.call(http::Method::GET, &format!("/shipments/{id}.json"), None).await;
    assert_eq!(read["shipment"]["export_state"], json!("export_failed"), "{read}");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://127.0.0.1:{}", listener.local_addr().expect("addr").port());
    let apps = LocalApps {
        api: app.api.clone().with_console_secret(SECRET),
        webhooks: app.webhooks.clone(),
        carrier_webhooks: carrier_webhooks::CarrierWebhooks::new(
            app.table.clone(),
            app.aws.sqs.clone(),
            app.aws.order_queue_url.clone(),
        ),
    };
    let server = tokio::spawn(local_server::serve(listener, apps));

    let browser = Browser::start().await;
    browser.go(&format!("{base}/console/")).await;
    let url = browser.url_once(|url| url.ends_with("/console/sign-in")).await;
    assert!(url.ends_with("/console/sign-in"), "signed out: to the sign-in page, not {url}");
    accessible(&browser.source().await).expect("the sign-in page");
    browser.type_into("#api_key", &app.retailer_user.key).await;
    browser.type_into("#password", "not the password").await;
    browser.click("form[action='/console/sign-in'] button").await;
    let mut refused = browser.source().await;
    for _ in 0..50 {
        if refused.contains("do not match") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        refused = browser.source().await;
    }
    assert!(refused.contains("do not match"), "a wrong password is told plainly");
    browser.type_into("#api_key", &app.retailer_user.key).await;
    browser.type_into("#password", &app.retailer_user.password).await;
    browser.click("form[action='/console/sign-in'] button").await;
    let url = browser.url_once(|url| url.ends_with("/console/health")).await;
    assert!(url.ends_with("/console/health"), "{url}");
    let cookie = browser.cookie(shipsync_session_name()).await;
    assert_eq!(
        (cookie["httpOnly"].clone(), cookie["secure"].clone(), cookie["sameSite"].clone()),
        (json!(true), json!(true), json!("Strict")),
        "{cookie}"
    );
    let health = browser.source().await;
    accessible(&health).expect("order health");
    assert!(health.contains("export_failed") && health.contains("Tracking company is not valid"), "{health}");
    browser.screenshot("order-health").await;

    // Export now, from order health; the exporter runs; the history shows it exported.
    browser.click(&format!("form[action='/console/shipments/{id}/export'] button")).await;
    let url = browser.url_once(|url| url.contains(&format!("/console/shipments/{id}"))).await;
    assert!(url.contains(&format!("/console/shipments/{id}")), "{url}");
    app.run_exports().await;
    browser.go(&format!("{base}/console/shipments/{id}")).await;
    let page = browser.source().await;
    accessible(&page).expect("the shipment page");
    assert!(page.contains("exported") && page.contains("gid://shopify/Fulfillment/77"), "{page}");
    assert!(page.contains("failed") && page.contains("retailer_user"), "its history, with who: {page}");
    browser.screenshot("shipment-history").await;

    // A vendor's cancellation waits in order health; the retailer approves it there.
    let other = app.purchase_order(&app.vendor, "CON-2", "Alan Turing", &[1]).await;
    let asked = json!({"cancellation": {"items": [{"order_item_id": other.items[0].id.get(), "quantity": 1}],
        "reason": "out_of_stock"}});
    let uri = format!("/purchase_orders/{}/cancellations.json", other.id);
    let (_, asked) = app.call_as(Some(&app.vendor_user), http::Method::POST, &uri, Some(asked)).await;
    let cancellation = asked["cancellation"]["id"].as_u64().expect("a cancellation");
    browser.go(&format!("{base}/console/health")).await;
    assert!(browser.source().await.contains("cancellation_awaiting_approval"));
    browser.click(&format!("form[action='/console/cancellations/{cancellation}/approve'] button")).await;
    let url = browser.url_once(|url| url.contains("done=approve")).await;
    assert!(url.contains("done=approve"), "{url}");
    let approved = browser.source().await;
    assert!(approved.contains("was approved") && !approved.contains("cancellation_awaiting_approval"), "{approved}");
    let (_, read) = app.call(http::Method::GET, &format!("/cancellations/{cancellation}.json"), None).await;
    assert_eq!(read["cancellation"]["state"], json!("pushing"), "{read}");

    for (path, heading) in [
        ("/console/exports", "Exports"),
        ("/console/purchase-orders?number=CON-1", "Purchase orders"),
        ("/console/stores", "Stores"),
    ] {
        browser.go(&format!("{base}{path}")).await;
        let page = browser.source().await;
        accessible(&page).unwrap_or_else(|problem| panic!("{path}: {problem}"));
        assert!(page.contains(&format!("<h1>{heading}</h1>")), "{path}: {page}");
    }
    assert!(browser.source().await.contains("Credentials"), "stores show whether credentials are set");
    assert!(!browser.source().await.contains(crate::harness::SHOPIFY_TOKEN), "never the credentials themselves");

    // Phone width: nothing scrolls sideways.
    browser.resize(390, 844).await;
    for path in ["/console/health", "/console/exports", &format!("/console/shipments/{id}")] {
        browser.go(&format!("{base}{path}")).await;
        let fits = browser.script("return document.documentElement.scrollWidth <= window.innerWidth;").await;
        assert_eq!(fits, json!(true), "{path} scrolls sideways at phone width");
    }
    browser.go(&format!("{base}/console/health")).await;
    browser.screenshot("order-health-phone").await;

    // A form posted without the session's token, and a forged cookie, are refused.
    let session = cookie["value"].as_str().unwrap_or_default().to_owned();
    // Redirects are not followed: the answer itself is checked.
    let http = shipsync_channels::http_client(Duration::from_secs(10)).expect("client");
    let posted = http
        .post(format!("{base}/console/shipments/{id}/export"))
        .header("cookie", format!("{}={session}", shipsync_session_name()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=forged")
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status().as_u16(), 403);
    let elsewhere = http
        .post(format!("{base}/console/sign-in"))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("api_key={}&password={}", app.retailer_user.key, app.retailer_user.password))
        .send()
        .await
        .expect("post");
    assert_eq!(elsewhere.status().as_u16(), 403, "a sign-in posted from another site");
    assert!(elsewhere.headers().get("set-cookie").is_none());
    let forged = http
        .get(format!("{base}/console/health"))
        .header("cookie", format!("{}={}x", shipsync_session_name(), session))
        .send()
        .await
        .expect("get");
    assert_eq!((forged.status().as_u16(), forged.headers()["location"].to_str().ok()), (303, Some("/console/sign-in")));

    // Another tenant signed in sees none of this tenant's records, and can change none of them.
    let stranger = app.another_tenant().await;
    let signed_in = http
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("api_key={}&password={}", stranger.retailer_user.key, stranger.retailer_user.password))
        .send()
        .await
        .expect("sign in");
    let cookie =
        signed_in.headers()["set-cookie"].to_str().expect("a cookie").split(';').next().unwrap_or_default().to_owned();
    let page = |path: String| {
        let (http, cookie, url) = (http.clone(), cookie.clone(), format!("{base}{path}"));
        async move {
            let answer = http.get(url).header("cookie", cookie).send().await.expect("get");
            (answer.status().as_u16(), answer.text().await.unwrap_or_default())
        }
    };
    let (status, theirs) = page(format!("/console/shipments/{id}")).await;
    assert_eq!(status, 404, "another tenant's shipment is not found: {theirs}");
    for path in [
        format!("/console/shipments/{id}"),
        "/console/purchase-orders?number=CON-1".into(),
        "/console/health".into(),
        "/console/exports".into(),
    ] {
        let (_, text) = page(path.clone()).await;
        // The search form shows the number searched for; the records are what must not show.
        assert!(!text.contains("1ZCONSOLE01") && !text.contains("Ada Lovelace"), "{path} leaked: {text}");
    }
    let (_, searched) = page("/console/purchase-orders?number=CON-1".into()).await;
    assert!(searched.contains("No purchase order matches"), "{searched}");
    let planned = |history: &Value| {
        history["events"].as_array().map_or(0, |events| events.iter().filter(|e| e["event"] == "planned").count())
    };
    let (_, before) = app.call(http::Method::GET, &format!("/shipments/{id}/events.json"), None).await;
    let (_, health) = page("/console/health".into()).await;
    let csrf =
        health.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a form token");
    let export = http
        .post(format!("{base}/console/shipments/{id}/export"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .expect("post");
    assert_eq!(export.status().as_u16(), 404, "another tenant's shipment cannot be exported");
    let (_, after) = app.call(http::Method::GET, &format!("/shipments/{id}/events.json"), None).await;
    assert_eq!(planned(&after), planned(&before), "no export planned by the stranger");
    let (_, again) = app.call(http::Method::GET, &format!("/shipments/{id}.json"), None).await;
    assert_eq!(again["shipment"]["export_state"], json!("exported"), "unchanged by the stranger");

    // Signed out, then in as the vendor: its purchase orders, not the retailer's pages.
    browser.resize(1280, 900).await;
    browser.click("form[action='/console/sign-out'] button").await;
    let url = browser.url_once(|url| url.ends_with("/console/sign-in")).await;
    assert!(url.ends_with("/console/sign-in"), "{url}");
    browser.type_into("#api_key", &app.vendor_user.key).await;
    browser.type_into("#password", &app.vendor_user.password).await;
    browser.click("form[action='/console/sign-in'] button").await;
    let url = browser.url_once(|url| url.ends_with("/console/purchase-orders")).await;
    assert!(url.ends_with("/console/purchase-orders"), "{url}");
    assert!(browser.source().await.contains("CON-1"));
    browser.go(&format!("{base}/console/health")).await;
    assert!(!browser.source().await.contains("Tracking company"), "order health is the retailer's");
    browser.quit().await;
    server.abort();
}

fn shipsync_session_name() -> &'static str {
    shipments_api::console::session::COOKIE
}
