//! Shipping labels: attached to a purchase order by its retailer, or to a shipment by the
//! retailer or the shipment's vendor; listed with short-lived download links; HTML rendered to
//! PDF by the renderer. Files go to [`LabelFiles`] (S3), records to [`Labels`] (the table), both
//! under the caller's retailer and the purchase order it may see.

use chrono::{DateTime, Duration, Utc};
use shipsync_domain::access::Principal;
use shipsync_domain::ids::{PurchaseOrderId, ShipmentId};
use shipsync_domain::labels::{
    AttachedBy, DOWNLOAD_LINK_SECONDS, Label, LabelFile, LabelFormat, LabelInput, LabelState, NewLabel, RenderRequest,
};
use shipsync_domain::orders::sha256_hex;
use shipsync_domain::purchase_order::PurchaseOrder;
use shipsync_domain::shipment::Shipment;
use shipsync_domain::time::Clock;
use shipsync_domain::{ValidationErrors, labels};
use tracing::{info, warn};

use crate::Failure;
use crate::ports::{HtmlToPdf, LabelFiles, Labels, RenderQueue, Repositories};

/// How long a render request for a label not written yet is retried (it is queued just before
/// the label is written).
pub const MISSING_LABEL_GRACE: Duration = Duration::minutes(5);

/// A label with, when its file is ready, a link that downloads it and when that link stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedLabel {
    pub label: Label,
    pub download: Option<(String, DateTime<Utc>)>,
}

/// The label use cases of the API.
#[derive(Clone)]
pub struct LabelDesk<R, F, Q> {
    repositories: R,
    files: F,
    renders: Q,
    clock: Clock,
}

impl<R, F, Q> LabelDesk<R, F, Q>
where
    R: Repositories + Labels,
    F: LabelFiles,
    Q: RenderQueue,
{
    pub fn new(repositories: R, files: F, renders: Q, clock: Clock) -> Self {
        Self { repositories, files, renders, clock }
    }

    /// `POST /purchase_orders/{id}/labels.json`: the retailer's labels for the vendor to print.
    pub async fn attach_to_purchase_order(
        &self,
        principal: &Principal,
        id: PurchaseOrderId,
        input: &LabelInput,
    ) -> Result<ListedLabel, Failure> {
        let po = self.visible_purchase_order(principal, id).await?;
        if !principal.is_retailer_user() {
            return Err(Failure::Forbidden(
                "a purchase order's labels are attached by its retailer; a vendor attaches its own to its shipment \
                 (POST /shipments/{id}/labels.json)"
                    .into(),
            ));
        }
        let new = NewLabel::parse(input)?;
        self.attach(principal, &po, None, new).await
    }

    /// `POST /shipments/{id}/labels.json`: by the retailer or the shipment's vendor. A tracking
    /// number given must be one of the shipment's; the carrier defaults to the shipment's.
    pub async fn attach_to_shipment(
        &self,
        principal: &Principal,
        id: ShipmentId,
        input: &LabelInput,
    ) -> Result<ListedLabel, Failure> {
        let shipment = self.visible_shipment(principal, id).await?;
        let po = self.visible_purchase_order(principal, shipment.purchase_order_id).await?;
        let mut new = NewLabel::parse(input)?;
        if let Some(tracking) = &new.tracking
            && !shipment.trackings.iter().any(|own| own.tracking.same_parcel(tracking))
        {
            return Err(Failure::Invalid(ValidationErrors::single(
                "tracking",
                format!("{:.40?} is not a tracking number of shipment {id}", tracking.as_str()),
            )));
        }
        new.carrier = new.carrier.or_else(|| Some(shipment.carrier.name.clone()));
        self.attach(principal, &po, Some(&shipment), new).await
    }

    /// A purchase order's labels (its own and its shipments'), oldest first.
    pub async fn purchase_order_labels(
        &self,
        principal: &Principal,
        id: PurchaseOrderId,
    ) -> Result<Vec<ListedLabel>, Failure> {
        let po = self.visible_purchase_order(principal, id).await?;
        let labels = self.repositories.purchase_order_labels(po.retailer_id, po.id).await?;
        self.listed(labels).await
    }

    /// A shipment's labels.
    pub async fn shipment_labels(&self, principal: &Principal, id: ShipmentId) -> Result<Vec<ListedLabel>, Failure> {
        let shipment = self.visible_shipment(principal, id).await?;
        let labels = self.repositories.purchase_order_labels(shipment.retailer_id, shipment.purchase_order_id).await?;
        let own = labels.into_iter().filter(|label| label.shipment_id == Some(id)).collect();
        self.listed(own).await
    }

    async fn listed(&self, labels: Vec<Label>) -> Result<Vec<ListedLabel>, Failure> {
        let mut listed = Vec::with_capacity(labels.len());
        for label in labels {
            listed.push(self.with_link(label).await?);
        }
        Ok(listed)
    }

    async fn with_link(&self, label: Label) -> Result<ListedLabel, Failure> {
        let download = match label.state {
            LabelState::Ready => {
                let link = self.files.download_link(&label.object_key(), DOWNLOAD_LINK_SECONDS).await?;
                let seconds = i64::try_from(DOWNLOAD_LINK_SECONDS).unwrap_or(i64::MAX);
                Some((link, (self.clock)() + Duration::seconds(seconds)))
            }
            _ => None,
        };
        Ok(ListedLabel { label, download })
    }

    /// Stores the file (or the HTML, and queues its rendering) before the record that points at
    /// it: a record never names a file that is not there. A file left by a write that failed
    /// after it is never listed, and the bucket's lifecycle rule removes it.
    async fn attach(
        &self,
        principal: &Principal,
        po: &PurchaseOrder,
        shipment: Option<&Shipment>,
        new: NewLabel,
    ) -> Result<ListedLabel, Failure> {
        let id = *self.repositories.allocate_ids(1).await?.start();
        let now = (self.clock)();
        let (format, rendered_from_html) = match &new.file {
            LabelFile::File { format, .. } => (*format, false),
            LabelFile::Html(_) => (LabelFormat::Pdf, true),
        };
        let mut label = Label {
            id,
            retailer_id: po.retailer_id,
            purchase_order_id: po.id,
            shipment_id: shipment.map(|shipment| shipment.id),
            vendor_id: po.vendor_id,
            format,
            rendered_from_html,
            state: LabelState::Rendering,
            tracking: new.tracking,
            carrier: new.carrier,
            size_bytes: 0,
            sha256: String::new(),
            attached_by: if principal.is_retailer_user() { AttachedBy::Retailer } else { AttachedBy::Vendor },
            created_at: now,
        };
        match new.file {
            LabelFile::File { format, bytes } => {
                label.size_bytes = bytes.len() as u64;
                label.sha256 = sha256_hex(&bytes);
                label.state = LabelState::Ready;
                self.files.put_file(&label.object_key(), bytes, format.content_type()).await?;
            }
            LabelFile::Html(html) => {
                self.files.put_file(&label.html_key(), html.into_bytes(), "text/html; charset=utf-8").await?;
                let request = RenderRequest {
                    retailer_id: label.retailer_id,
                    purchase_order_id: label.purchase_order_id,
                    label_id: label.id,
                    sent_at: now,
                };
                self.renders.queue_render(&request).await?;
            }
        }
        self.repositories.save_label(&label).await?;
        info!(label_id = label.id, purchase_order_id = %po.id, state = label.state.name(), "label attached");
        self.with_link(label).await
    }

    async fn visible_purchase_order(
        &self,
        principal: &Principal,
        id: PurchaseOrderId,
    ) -> Result<PurchaseOrder, Failure> {
        crate::shipments::visible_purchase_order(&self.repositories, principal, id).await
    }

    async fn visible_shipment(&self, principal: &Principal, id: ShipmentId) -> Result<Shipment, Failure> {
        crate::shipments::visible_shipment(&self.repositories, principal, id).await
    }
}

/// The renderer: turns a label's HTML into its PDF, once.
#[derive(Clone)]
pub struct LabelRendering<R, F, H> {
    repositories: R,
    files: F,
    renderer: H,
    clock: Clock,
}

impl<R, F, H> LabelRendering<R, F, H>
where
    R: Labels,
    F: LabelFiles,
    H: HtmlToPdf,
{
    pub fn new(repositories: R, files: F, renderer: H, clock: Clock) -> Self {
        Self { repositories, files, renderer, clock }
    }

    /// Renders one label. Delivered twice, the second finds it ready and does nothing; a crash
    /// after the PDF is stored renders again and stores the same. A page that cannot be
    /// rendered marks the label failed, with why; a failure that may pass is retried.
    pub async fn render(&self, request: &RenderRequest) -> Result<(), Failure> {
        let found = self.repositories.label(request.retailer_id, request.purchase_order_id, request.label_id).await?;
        let Some(mut label) = found else {
            if (self.clock)() - request.sent_at < MISSING_LABEL_GRACE {
                return Err(Failure::retryable("label not written yet"));
            }
            warn!(label_id = request.label_id, "render request for a label that does not exist: dropped");
            return Ok(());
        };
        if label.state != LabelState::Rendering {
            info!(label_id = label.id, state = label.state.name(), "nothing to render");
            return Ok(());
        }
        let Some(html) = self.files.get_file(&label.html_key()).await? else {
            return self.fail(label, "its HTML is gone: attach the label again".into()).await;
        };
        let html = String::from_utf8_lossy(&html).into_owned();
        let pdf = match self.renderer.render_pdf(&html).await {
            Ok(pdf) => pdf,
            Err(Failure::Permanent { reason, .. }) => return self.fail(label, reason).await,
            Err(other) => return Err(other),
        };
        if !pdf.starts_with(b"%PDF-") || pdf.len() > labels::MAX_LABEL_BYTES {
            return self.fail(label, format!("the renderer made no usable PDF ({} bytes)", pdf.len())).await;
        }
        label.size_bytes = pdf.len() as u64;
        label.sha256 = sha256_hex(&pdf);
        self.files.put_file(&label.object_key(), pdf, LabelFormat::Pdf.content_type()).await?;
        label.state = LabelState::Ready;
        self.repositories.save_label(&label).await?;
        // The source is not needed once its PDF is listed; a failure here leaves it to the lifecycle rule.
        if let Err(failure) = self.files.delete_file(&label.html_key()).await {
            warn!(label_id = label.id, error = %failure.chain(), "could not delete a rendered label's HTML");
        }
        info!(label_id = label.id, bytes = label.size_bytes, "label rendered");
        Ok(())
    }

    async fn fail(&self, mut label: Label, message: String) -> Result<(), Failure> {
        warn!(label_id = label.id, %message, "label not rendered");
        label.state = LabelState::Failed { message };
        self.repositories.save_label(&label).await
    }
}
