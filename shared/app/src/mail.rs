//! Purchase orders emailed to their vendors with their labels attached, when the retailer turns
//! it on for the vendor (`email_purchase_orders`, with the vendor's `email`): requested through
//! the API, sent by the mailer (SES, raw MIME), at most once per request.

use chrono::Duration;
use shipsync_domain::ValidationErrors;
use shipsync_domain::access::Principal;
use shipsync_domain::ids::PurchaseOrderId;
use shipsync_domain::labels::LabelState;
use shipsync_domain::mail::{Attachment, MailRequest, body_text, raw_message, subject};
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::time::Clock;
use tracing::{info, warn};

use crate::Failure;
use crate::ports::{LabelFiles, Labels, MailQueue, Mailer, Repositories, SentMail};

/// How long a request for a purchase order not written yet is retried: a new order's email is
/// queued just before the order is written, so it may arrive first.
pub const MISSING_ORDER_GRACE: Duration = Duration::minutes(5);

/// How long a mail waits for labels still being rendered before it goes without them.
pub const RENDERING_GRACE: Duration = Duration::minutes(10);

/// Asks for a purchase order's email (the API).
#[derive(Clone)]
pub struct MailDesk<R, Q> {
    repositories: R,
    queue: Q,
    clock: Clock,
}

impl<R: Repositories, Q: MailQueue> MailDesk<R, Q> {
    pub fn new(repositories: R, queue: Q, clock: Clock) -> Self {
        Self { repositories, queue, clock }
    }

    /// `POST /purchase_orders/{id}/email.json` (retailer users): queues the purchase order's
    /// email to its vendor, which the retailer must have turned on for the vendor.
    pub async fn request(&self, principal: &Principal, id: PurchaseOrderId) -> Result<MailRequest, Failure> {
        let po = crate::shipments::visible_purchase_order(&self.repositories, principal, id).await?;
        if !principal.is_retailer_user() {
            return Err(Failure::Forbidden("purchase orders are emailed to vendors by their retailer".into()));
        }
        let vendor = self
            .repositories
            .vendor(po.retailer_id, po.vendor_id)
            .await?
            .ok_or_else(|| Failure::NotFound(format!("vendor {}", po.vendor_id)))?;
        if !vendor.email_purchase_orders || vendor.email.is_none() {
            return Err(Failure::Invalid(ValidationErrors::single(
                "vendor",
                format!(
                    "{} does not take purchase orders by email: set its email and email_purchase_orders \
                     (PUT /vendors/{}.json)",
                    vendor.name, vendor.id
                ),
            )));
        }
        let request =
            MailRequest { retailer_id: po.retailer_id, purchase_order_id: po.id, requested_at: (self.clock)() };
        self.queue.queue_mail(&request).await?;
        info!(purchase_order_id = %po.id, vendor_id = %vendor.id, "purchase order email queued");
        Ok(request)
    }
}

/// Sends the emails (the mailer).
#[derive(Clone)]
pub struct PurchaseOrderMailer<R, F, M> {
    repositories: R,
    files: F,
    mailer: M,
    from: String,
    clock: Clock,
}

impl<R, F, M> PurchaseOrderMailer<R, F, M>
where
    R: Repositories + Labels + SentMail,
    F: LabelFiles,
    M: Mailer,
{
    pub fn new(repositories: R, files: F, mailer: M, from: String, clock: Clock) -> Self {
        Self { repositories, files, mailer, from, clock }
    }

    /// Sends one request's email, unless it was sent: the purchase order as it is now, its
    /// ready labels attached (waiting up to [`RENDERING_GRACE`] for any still rendering), to
    /// the vendor's address. A vendor that no longer takes emails is skipped.
    pub async fn send(&self, request: &MailRequest) -> Result<(), Failure> {
        if self.repositories.mail_sent(request).await? {
            info!(purchase_order_id = %request.purchase_order_id, "purchase order email already sent");
            return Ok(());
        }
        let Some(po) =
            self.repositories.retailer_purchase_order(request.retailer_id, request.purchase_order_id).await?
        else {
            // A new purchase order's email is queued just before the order is written.
            if (self.clock)() - request.requested_at < MISSING_ORDER_GRACE {
                return Err(Failure::retryable("purchase order not written yet"));
            }
            warn!(purchase_order_id = %request.purchase_order_id, "no such purchase order: email dropped");
            return Ok(());
        };
        let vendor = self.repositories.vendor(po.retailer_id, po.vendor_id).await?;
        let Some((vendor, to)) = vendor.and_then(|vendor| {
            let to = vendor.email.clone().filter(|_| vendor.email_purchase_orders)?;
            Some((vendor, to))
        }) else {
            warn!(purchase_order_id = %po.id, "the vendor takes no purchase orders by email (any more): dropped");
            return Ok(());
        };
        let labels = self.repositories.purchase_order_labels(po.retailer_id, po.id).await?;
        let rendering = labels.iter().any(|label| label.state == LabelState::Rendering);
        if rendering && (self.clock)() - request.requested_at < RENDERING_GRACE {
            return Err(Failure::retryable("labels of the purchase order are still being rendered"));
        }
        let mut attachments = Vec::new();
        for label in labels.iter().filter(|label| label.state == LabelState::Ready) {
            match self.files.get_file(&label.object_key()).await? {
                Some(bytes) => attachments.push(Attachment::of_label(&po, label, bytes)),
                None => warn!(label_id = label.id, "a ready label's file is gone: not attached"),
            }
        }
        let retailer =
            self.repositories.retailer_with_carriers(po.retailer_id).await?.map(|(retailer, _)| retailer.name);
        let raw = self.message(&po, retailer.as_deref().unwrap_or("your retailer"), &to, &attachments, request);
        let message_id = self.mailer.send_raw(&self.from, &to, raw).await?;
        self.repositories.record_mail_sent(request, &message_id).await?;
        info!(purchase_order_id = %po.id, vendor_id = %vendor.id, attachments = attachments.len(), %message_id, "purchase order emailed");
        Ok(())
    }

    fn message(
        &self,
        po: &PurchaseOrder,
        retailer: &str,
        to: &str,
        attachments: &[Attachment],
        request: &MailRequest,
    ) -> Vec<u8> {
        // `=_` never occurs in base64 or in these headers: a boundary no part can contain.
        let boundary = format!("=_shipsync_{}_{}", po.id, request.requested_at.timestamp_millis());
        raw_message(&self.from, to, &subject(po, retailer), &body_text(po, attachments), attachments, &boundary)
    }
}
