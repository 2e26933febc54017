//! The console: server-rendered pages for the people who fix stuck orders, at `/console/`.
//! Each page is a view of the API's own answers for the signed-in API user (the same handlers,
//! so the same roles: a vendor sees its own), rendered to HTML here with no script at all.
//! Sign-in takes an API key and password and sets a signed, expiring session cookie
//! (`HttpOnly`, `Secure`, `SameSite=Strict`); every form carries a CSRF token derived from it.

pub mod render;
pub mod session;

use bytes::Bytes;
use http::{Method, StatusCode, header};
use serde_json::Value;
use shipsync_app::Failure;
use shipsync_domain::access::{Principal, has_issued_key_shape, key_for_log};
use shipsync_http_api::{ApiError, ApiRequest, ApiResponse, form_pairs, query_pairs};
use tracing::warn;

use self::render::{Page, escape};
use self::session::{COOKIE, SESSION_SECONDS, Session, Sessions, fingerprint};
use crate::ShipmentsApi;

/// A signed-in caller: who, and the session its forms belong to.
struct SignedIn {
    principal: Principal,
    session: Session,
}

fn html(status: StatusCode, body: String) -> ApiResponse {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/html; charset=utf-8"));
    // No script, frame, font or image from anywhere: the pages are their own HTML and CSS.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    response
}

fn redirect(to: &str) -> ApiResponse {
    let mut response = html(StatusCode::SEE_OTHER, String::new());
    if let Ok(location) = header::HeaderValue::from_str(to) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}

/// Whether a posted form came from this console: a browser names the page's origin on every
/// form post, and it must be this host (the sign-in form too, so no site can sign a person in
/// as someone else). A post naming no origin (not a browser's) is left to the CSRF token.
fn same_origin(request: &ApiRequest) -> bool {
    let Some(origin) = request.headers().get(header::ORIGIN).and_then(|value| value.to_str().ok()) else {
        return true;
    };
    let host = request.headers().get(header::HOST).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest).trim_end_matches('/');
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn cookie_value(request: &ApiRequest) -> Option<String> {
    request.headers().get_all(header::COOKIE).iter().filter_map(|value| value.to_str().ok()).find_map(|cookies| {
        cookies.split(';').find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.to_owned())
        })
    })
}

fn set_cookie(value: &str, max_age: i64) -> header::HeaderValue {
    let cookie = format!("{COOKIE}={value}; Path=/console; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict");
    header::HeaderValue::from_str(&cookie).unwrap_or_else(|_| header::HeaderValue::from_static(""))
}

/// A request to one of the API's own handlers, as the console makes it.
fn internal(uri: &str) -> ApiRequest {
    let mut request = http::Request::new(Bytes::new());
    if let Ok(uri) = uri.parse() {
        *request.uri_mut() = uri;
    }
    request
}

/// An API answer as JSON, or the error it was.
fn answer(result: Result<ApiResponse, ApiError>) -> Result<Value, ApiError> {
    let response = result?;
    Ok(serde_json::from_str(response.body()).unwrap_or(Value::Null))
}

impl ShipmentsApi {
    /// Answers a `/console` request.
    pub(crate) async fn console(&self, request: &ApiRequest) -> ApiResponse {
        let Some(sessions) = self.console_sessions.clone() else {
            let page = Page::new("Console not configured", None)
                .paragraph("This deployment has no console secret (SHIPSYNC_CONSOLE_SECRET): the console is off.");
            return html(StatusCode::SERVICE_UNAVAILABLE, page.render());
        };
        if request.method() == Method::POST && !same_origin(request) {
            warn!("console form posted from another site: refused");
            return html(
                StatusCode::FORBIDDEN,
                render::message("Not from here", "That form did not come from this console."),
            );
        }
        let path = request.uri().path().trim_end_matches('/').to_owned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).skip(1).collect();
        let method = request.method().clone();
        if segments.as_slice() == ["sign-in"] {
            return match method {
                Method::GET => html(StatusCode::OK, render::sign_in(None)),
                Method::POST => Box::pin(self.sign_in(&sessions, request)).await,
                _ => html(StatusCode::METHOD_NOT_ALLOWED, render::message("Not allowed", "That is not allowed here.")),
            };
        }
        let Some(signed_in) = self.signed_in(&sessions, request).await else {
            return redirect("/console/sign-in");
        };
        let csrf = sessions.csrf(&signed_in.session);
        if method == Method::POST {
            let form = form_pairs(request);
            let token = form.iter().find(|(name, _)| name == "csrf").map(|(_, value)| value.as_str()).unwrap_or("");
            if !sessions.csrf_matches(&signed_in.session, token) {
                warn!("console form without its session's CSRF token: refused");
                let page = render::message(
                    "Form expired",
                    "This form is not from your session: reload the page and try again.",
                );
                return html(StatusCode::FORBIDDEN, page);
            }
        }
        let principal = &signed_in.principal;
        let outcome = match (method.clone(), segments.as_slice()) {
            (Method::GET, []) => {
                return redirect(if principal.is_retailer_user() {
                    "/console/health"
                } else {
                    "/console/purchase-orders"
                });
            }
            (Method::POST, ["sign-out"]) => {
                let mut response = redirect("/console/sign-in");
                response.headers_mut().insert(header::SET_COOKIE, set_cookie("", 0));
                return response;
            }
            (Method::GET, ["health"]) => Box::pin(self.health_page(principal, &csrf, request)).await,
            (Method::GET, ["exports"]) => Box::pin(self.exports_page(principal, &csrf)).await,
            (Method::GET, ["shipments", id]) => Box::pin(self.shipment_page(principal, &csrf, id, request)).await,
            (Method::GET, ["purchase-orders"]) => Box::pin(self.purchase_orders_page(principal, request)).await,
            (Method::GET, ["stores"]) => Box::pin(self.stores_page(principal)).await,
            (Method::POST, ["shipments", id, "export"]) => {
                let done = Box::pin(self.export_shipment(principal, id)).await;
                return self.after_action(done, &format!("/console/shipments/{}?done=export", escape(id)));
            }
            (Method::POST, ["orders", id, "reprocess"]) => {
                let done = Box::pin(self.reprocess_order(principal, id)).await;
                return self.after_action(done, "/console/health?done=reprocess");
            }
            (Method::POST, ["cancellations", id, verb @ ("approve" | "decline" | "push")]) => {
                let endpoint = match *verb {
                    "approve" => crate::Endpoint::ApproveCancellation,
                    "decline" => crate::Endpoint::DeclineCancellation,
                    _ => crate::Endpoint::PushCancellation,
                };
                let done = Box::pin(self.decide_cancellation(principal, id, endpoint)).await;
                return self.after_action(done, &format!("/console/health?done={verb}"));
            }
            _ => Err(ApiError::NotFound("no such page".into())),
        };
        match outcome {
            Ok(page) => html(StatusCode::OK, page.with_session(principal, &csrf).render()),
            Err(error) => self.error_page(error, principal, &csrf),
        }
    }

    /// The caller of a request with a valid session cookie: its API user as it is now (a user
    /// removed, or whose password changed, is signed out).
    async fn signed_in(&self, sessions: &Sessions, request: &ApiRequest) -> Option<SignedIn> {
        let cookie = cookie_value(request)?;
        let session = sessions.open(&cookie, (self.clock)().timestamp())?;
        let user = self.table.api_user(&session.k).await.ok()??;
        (fingerprint(&user.password_digest) == session.f).then(|| SignedIn { principal: user.principal(), session })
    }

    async fn sign_in(&self, sessions: &Sessions, request: &ApiRequest) -> ApiResponse {
        let form = form_pairs(request);
        let field = |name: &str| form.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim().to_owned());
        let (Some(key), Some(password)) = (field("api_key"), field("password")) else {
            return html(StatusCode::UNPROCESSABLE_ENTITY, render::sign_in(Some("Enter your API key and password.")));
        };
        let lookup = if has_issued_key_shape(&key) { self.table.api_user(&key).await } else { Ok(None) };
        let user = match lookup {
            Ok(user) => user.filter(|user| user.password_matches(&password)),
            Err(error) => {
                let error = ApiError::from(Failure::from(error));
                return html(
                    error.status(),
                    render::sign_in(Some("shipsync could not check that just now: try again.")),
                );
            }
        };
        let Some(user) = user else {
            warn!(api_key = %key_for_log(&key), "console sign-in refused");
            return html(StatusCode::UNAUTHORIZED, render::sign_in(Some("That API key and password do not match.")));
        };
        let Some(nonce) = session::nonce() else {
            return html(StatusCode::SERVICE_UNAVAILABLE, render::sign_in(Some("Try again in a moment.")));
        };
        let session = Session {
            k: user.key.clone(),
            e: (self.clock)().timestamp() + SESSION_SECONDS,
            n: nonce,
            f: fingerprint(&user.password_digest),
        };
        let mut response = redirect("/console/");
        response.headers_mut().insert(header::SET_COOKIE, set_cookie(&sessions.seal(&session), SESSION_SECONDS));
        response
    }

    fn after_action(&self, done: Result<ApiResponse, ApiError>, back: &str) -> ApiResponse {
        match done {
            Ok(_) => redirect(back),
            Err(error) => {
                let (status, text) = (error.status(), error.messages().join("; "));
                html(status, render::message("That did not work", &text))
            }
        }
    }

    fn error_page(&self, error: ApiError, principal: &Principal, csrf: &str) -> ApiResponse {
        let status = error.status();
        let text = match error {
            ApiError::NotFound(_) => "There is nothing here, or nothing you may see.".to_owned(),
            ApiError::Forbidden(reason) => reason,
            other => other.messages().join("; "),
        };
        let page = Page::new("Not here", None).paragraph(&text).with_session(principal, csrf);
        html(status, page.render())
    }

    async fn health_page(&self, principal: &Principal, csrf: &str, request: &ApiRequest) -> Result<Page, ApiError> {
        let health = answer(self.order_health(principal, &internal("/order_health.json?per_page=100")).await)?;
        let done = query_pairs(request).into_iter().find(|(key, _)| key == "done").map(|(_, value)| value);
        Ok(render::health(&health, csrf, done.as_deref()))
    }

    async fn exports_page(&self, principal: &Principal, csrf: &str) -> Result<Page, ApiError> {
        let failed = answer(self.failed_exports(principal, &internal("/exports/failed.json?per_page=100")).await)?;
        let recent = answer(self.search_shipments(principal, &internal("/shipments.json?per_page=100")).await)?;
        let health = answer(self.order_health(principal, &internal("/order_health.json?per_page=100")).await)?;
        Ok(render::exports(&failed, &recent, &health, csrf))
    }

    async fn shipment_page(
        &self,
        principal: &Principal,
        csrf: &str,
        id: &str,
        request: &ApiRequest,
    ) -> Result<Page, ApiError> {
        let shipment = answer(self.get_shipment(principal, id).await)?;
        let events = answer(self.shipment_events(principal, id).await)?;
        let done = query_pairs(request).into_iter().find(|(key, _)| key == "done").map(|(_, value)| value);
        Ok(render::shipment(&shipment["shipment"], &events, csrf, principal.is_retailer_user(), done.as_deref()))
    }

    async fn purchase_orders_page(&self, principal: &Principal, request: &ApiRequest) -> Result<Page, ApiError> {
        let number = query_pairs(request).into_iter().find(|(key, _)| key == "number").map(|(_, value)| value);
        let listed = match number.as_deref().map(str::trim).filter(|number| !number.is_empty()) {
            Some(number) => {
                let found =
                    self.table.purchase_order_by_number(principal.retailer_id, number).await.map_err(Failure::from)?;
                let visible = found.filter(|po| principal.can_see_purchase_order(po));
                serde_json::json!({ "purchase_orders": visible.iter().map(crate::dto::PurchaseOrderView::new).collect::<Vec<_>>() })
            }
            None => {
                answer(self.list_purchase_orders(principal, &internal("/purchase_orders.json?per_page=100")).await)?
            }
        };
        Ok(render::purchase_orders(&listed, number.as_deref()))
    }

    async fn stores_page(&self, principal: &Principal) -> Result<Page, ApiError> {
        let stores = answer(self.list_stores(principal).await)?;
        Ok(render::stores(&stores))
    }
}
