//! Shipping label records: under their retailer and purchase order (the files are in S3).

use shipsync_domain::ids::{PurchaseOrderId, RetailerId};
use shipsync_domain::labels::Label;
use shipsync_domain::mail::MailRequest;

use crate::codec::item;
use crate::keys;
use crate::{Table, TableError};

impl Table {
    /// Writes a label's record whatever was there (its renderer rewrites it once rendered).
    pub async fn save_label(&self, label: &Label) -> Result<(), TableError> {
        let record = item(keys::labels(label.retailer_id, label.purchase_order_id), &keys::label(label.id), label)?;
        self.put(record).await
    }

    /// A purchase order's labels, oldest first.
    pub async fn purchase_order_labels(
        &self,
        retailer: RetailerId,
        po: PurchaseOrderId,
    ) -> Result<Vec<Label>, TableError> {
        self.partition_prefix(keys::labels(retailer, po), "LABEL#").await
    }

    /// One label, as it stands after every write so far.
    pub async fn label(&self, retailer: RetailerId, po: PurchaseOrderId, id: u64) -> Result<Option<Label>, TableError> {
        self.item_now(keys::labels(retailer, po), &keys::label(id)).await?.map(crate::codec::record).transpose()
    }

    /// Whether a purchase order's email request was sent.
    pub async fn mail_sent(&self, request: &MailRequest) -> Result<bool, TableError> {
        let pk = keys::labels(request.retailer_id, request.purchase_order_id);
        Ok(self.item_now(pk, &keys::mail_sent(request.requested_at.timestamp_millis())).await?.is_some())
    }

    /// Records that a purchase order's email request was sent, as `message_id`.
    pub async fn record_mail_sent(&self, request: &MailRequest, message_id: &str) -> Result<(), TableError> {
        #[derive(serde::Serialize)]
        struct Sent<'a> {
            message_id: &'a str,
        }
        let pk = keys::labels(request.retailer_id, request.purchase_order_id);
        let record = item(pk, &keys::mail_sent(request.requested_at.timestamp_millis()), &Sent { message_id })?;
        self.put(record).await
    }
}
