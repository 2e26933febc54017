//! A purchase order emailed to its vendor, with its labels attached: the request the mailer
//! takes, and the message as raw MIME (what SES's raw send takes).

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{PurchaseOrderId, RetailerId};
use crate::labels::Label;
use crate::purchase_order::PurchaseOrder;

/// The mailer's message: email this purchase order to its vendor. `requested_at` names the
/// request: a redelivery of it is sent at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailRequest {
    pub retailer_id: RetailerId,
    pub purchase_order_id: PurchaseOrderId,
    pub requested_at: DateTime<Utc>,
}

/// One attached file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub file_name: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Attachment {
    /// A label's file, named by purchase order, label and tracking number.
    pub fn of_label(po: &PurchaseOrder, label: &Label, bytes: Vec<u8>) -> Self {
        let tracking = label.tracking.as_ref().map(|t| format!("-{}", safe_name(t.as_str()))).unwrap_or_default();
        Self {
            file_name: format!(
                "label-{}-{}{tracking}.{}",
                safe_name(&po.public_reference),
                label.id,
                label.format.name()
            ),
            content_type: label.format.content_type(),
            bytes,
        }
    }
}

/// Letters, digits, `-` and `_` of a text (anything else `_`): safe in a file name and a header.
fn safe_name(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(64).collect()
}

/// A header's text: one line, no control characters (nothing a value can inject).
fn header_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// The subject a purchase order is mailed under.
pub fn subject(po: &PurchaseOrder, retailer_name: &str) -> String {
    header_text(&format!("Purchase order {} from {retailer_name}", po.public_reference))
}

/// The message's text: the order, its items, and what is attached.
pub fn body_text(po: &PurchaseOrder, attachments: &[Attachment]) -> String {
    let mut text = format!(
        "Purchase order {}\nShip to: {}\n\nItems:\n",
        po.public_reference,
        po.customer_name.replace(['\r', '\n'], " ")
    );
    for item in &po.items {
        let name = item.name.replace(['\r', '\n'], " ");
        text.push_str(&format!("  {} x {} ({name})\n", item.quantity, item.sku));
    }
    if attachments.is_empty() {
        text.push_str("\nNo labels are attached yet.\n");
    } else {
        text.push_str(&format!("\nAttached: {} label(s) to print.\n", attachments.len()));
        for attachment in attachments {
            text.push_str(&format!("  {}\n", attachment.file_name));
        }
    }
    text
}

/// The message as raw MIME: a text part and one base64 part per attachment. `boundary` must not
/// appear in the parts (a random one does not, base64 and the text being what they are).
pub fn raw_message(
    from: &str,
    to: &str,
    subject: &str,
    text: &str,
    attachments: &[Attachment],
    boundary: &str,
) -> Vec<u8> {
    let encode = |bytes: &[u8]| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        // MIME's 76-character lines.
        encoded
            .as_bytes()
            .chunks(76)
            .map(|line| String::from_utf8_lossy(line).into_owned())
            .collect::<Vec<_>>()
            .join("\r\n")
    };
    let mut message = String::new();
    message.push_str(&format!("From: {}\r\n", header_text(from)));
    message.push_str(&format!("To: {}\r\n", header_text(to)));
    message.push_str(&format!("Subject: {}\r\n", header_text(subject)));
    message.push_str("MIME-Version: 1.0\r\n");
    message.push_str(&format!("Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"));
    message.push_str(&format!("--{boundary}\r\n"));
    message.push_str("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    message.push_str(&encode(text.as_bytes()));
    message.push_str("\r\n");
    for attachment in attachments {
        message.push_str(&format!("--{boundary}\r\n"));
        message.push_str(&format!(
            "Content-Type: {}; name=\"{}\"\r\nContent-Disposition: attachment; filename=\"{}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            attachment.content_type, attachment.file_name, attachment.file_name
        ));
        message.push_str(&encode(&attachment.bytes));
        message.push_str("\r\n");
    }
    message.push_str(&format!("--{boundary}--\r\n"));
    message.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_carries_its_text_and_attachments_and_no_injected_header() {
        let attachment = Attachment {
            file_name: "label-PO-1-7.pdf".into(),
            content_type: "application/pdf",
            bytes: b"%PDF-1.4".to_vec(),
        };
        let raw = raw_message(
            "labels@shipsync.example",
            "orders@acme.example",
            "Purchase order PO-1\r\nBcc: evil@example.com",
            "hello",
            std::slice::from_ref(&attachment),
            "b0undary",
        );
        let text = String::from_utf8(raw).expect("ASCII");
        assert!(text.contains("Subject: Purchase order PO-1Bcc: evil@example.com\r\n"), "{text}");
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(text.contains("Content-Disposition: attachment; filename=\"label-PO-1-7.pdf\""));
        assert!(text.contains("JVBERi0xLjQ="), "the PDF, base64: {text}");
        assert!(text.ends_with("--b0undary--\r\n"));
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(safe_name("S1-#1001/V2 \"x\""), "S1-_1001_V2__x_");
    }
}
