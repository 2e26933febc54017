//! Shipping labels: files a retailer (or its integration) attaches to a purchase order for the
//! vendor to print, or a vendor attaches to its own shipment. A label arrives as base64 content
//! (`pdf`, `png`, `zpl`) or as `html`, which shipsync renders to PDF; the file itself is kept
//! outside the table (S3), the record here says what it is and where.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ValidationErrors;
use crate::ids::{PurchaseOrderId, RetailerId, ShipmentId, VendorId};
use crate::limits::{MAX_NAME_CHARS, check_length};
use crate::tracking::TrackingNumber;

/// The largest label file taken (decoded): a base64 body of it still fits API Gateway's and
/// Lambda's request limits (6 MB) with room for the rest of the request.
pub const MAX_LABEL_BYTES: usize = 4 * 1024 * 1024;
/// The largest HTML taken for rendering.
pub const MAX_LABEL_HTML_CHARS: usize = 1024 * 1024;
/// How long a label's download link works.
pub const DOWNLOAD_LINK_SECONDS: u64 = 300;

/// What a label file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelFormat {
    Pdf,
    Png,
    /// Zebra printer language (text).
    Zpl,
}

impl LabelFormat {
    pub fn name(self) -> &'static str {
        match self {
            LabelFormat::Pdf => "pdf",
            LabelFormat::Png => "png",
            LabelFormat::Zpl => "zpl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            LabelFormat::Pdf => "application/pdf",
            LabelFormat::Png => "image/png",
            LabelFormat::Zpl => "application/zpl",
        }
    }

    /// Whether `bytes` are a file of this format (by its signature), or why not.
    fn check(self, bytes: &[u8]) -> Result<(), String> {
        let ok = match self {
            LabelFormat::Pdf => bytes.starts_with(b"%PDF-"),
            LabelFormat::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            LabelFormat::Zpl => {
                std::str::from_utf8(bytes).is_ok_and(|text| text.contains("^XA") && text.contains("^XZ"))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(match self {
                LabelFormat::Pdf => "is not a PDF (it must start with %PDF-)".into(),
                LabelFormat::Png => "is not a PNG image".into(),
                LabelFormat::Zpl => "is not ZPL (text with ^XA ... ^XZ)".into(),
            })
        }
    }
}

/// Who attached a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachedBy {
    Retailer,
    Vendor,
}

/// Where a label's file stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum LabelState {
    /// Stored: it can be downloaded.
    Ready,
    /// HTML waiting to be rendered to PDF.
    Rendering,
    /// The HTML could not be rendered; a person must send it again.
    Failed { message: String },
}

impl LabelState {
    pub fn name(&self) -> &'static str {
        match self {
            LabelState::Ready => "ready",
            LabelState::Rendering => "rendering",
            LabelState::Failed { .. } => "failed",
        }
    }
}

/// A label as the table keeps it (the file is elsewhere, at [`Label::object_key`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub id: u64,
    pub retailer_id: RetailerId,
    pub purchase_order_id: PurchaseOrderId,
    /// Set when the label belongs to one shipment (a vendor's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipment_id: Option<ShipmentId>,
    /// The purchase order's vendor: the only vendor who sees it.
    pub vendor_id: VendorId,
    /// What is stored (HTML is stored as the PDF rendered from it).
    pub format: LabelFormat,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rendered_from_html: bool,
    #[serde(flatten)]
    pub state: LabelState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking: Option<TrackingNumber>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<String>,
    /// The stored file's size and SHA-256 (0 and empty while rendering).
    #[serde(default)]
    pub size_bytes: u64,
    #[serde(default)]
    pub sha256: String,
    pub attached_by: AttachedBy,
    pub created_at: DateTime<Utc>,
}

impl Label {
    /// Where its file is kept: under its retailer and purchase order, so a key names its tenant.
    pub fn object_key(&self) -> String {
        format!("labels/{}/{}/{}.{}", self.retailer_id, self.purchase_order_id, self.id, self.format.name())
    }

    /// Where the HTML waiting to be rendered is kept.
    pub fn html_key(&self) -> String {
        format!("labels/{}/{}/{}.html", self.retailer_id, self.purchase_order_id, self.id)
    }
}

/// The renderer's message: render this label's HTML (`sent_at`: when it was queued, so that a
/// message for a label not written yet is retried only for a while).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderRequest {
    pub retailer_id: RetailerId,
    pub purchase_order_id: PurchaseOrderId,
    pub label_id: u64,
    pub sent_at: DateTime<Utc>,
}

/// A label as a request sends it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelInput {
    /// `pdf`, `png`, `zpl` or `html`.
    pub format: Option<String>,
    /// The file, base64 (standard alphabet, padding optional): for `pdf`, `png` and `zpl`.
    pub content: Option<String>,
    /// The page to render to PDF: for `html`.
    pub html: Option<String>,
    /// The tracking number the label is for.
    pub tracking: Option<String>,
    /// The carrier the label is for.
    pub carrier: Option<String>,
}

/// What a checked label request stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelFile {
    /// A file as sent.
    File { format: LabelFormat, bytes: Vec<u8> },
    /// HTML to render to PDF.
    Html(String),
}

/// A checked label request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLabel {
    pub file: LabelFile,
    pub tracking: Option<TrackingNumber>,
    pub carrier: Option<String>,
}

impl NewLabel {
    /// Checks a request: its format and content agree (base64 that decodes to a file of that
    /// format, at most [`MAX_LABEL_BYTES`]; or HTML, at most [`MAX_LABEL_HTML_CHARS`]), and its
    /// tracking number and carrier are well formed. Each problem names its field.
    pub fn parse(input: &LabelInput) -> Result<NewLabel, ValidationErrors> {
        use base64::Engine;
        let mut errors = ValidationErrors::new();
        let format = input.format.as_deref().map(str::trim).map(str::to_ascii_lowercase);
        let file = match format.as_deref() {
            None | Some("") => {
                errors.push("format", "is required: pdf, png, zpl or html");
                None
            }
            Some("html") => {
                if input.content.is_some() {
                    errors.push("content", "is for pdf, png and zpl labels: send html as html");
                }
                match input.html.as_deref().map(str::trim) {
                    None | Some("") => {
                        errors.push("html", "is required for an html label");
                        None
                    }
                    Some(html) if html.chars().count() > MAX_LABEL_HTML_CHARS => {
                        errors.push("html", format!("must be at most {MAX_LABEL_HTML_CHARS} characters"));
                        None
                    }
                    Some(html) => Some(LabelFile::Html(html.to_owned())),
                }
            }
            Some(name) => {
                let format = match name {
                    "pdf" => Some(LabelFormat::Pdf),
                    "png" => Some(LabelFormat::Png),
                    "zpl" => Some(LabelFormat::Zpl),
                    _ => {
                        errors.push("format", format!("{name:.20?} is not one of pdf, png, zpl or html"));
                        None
                    }
                };
                if input.html.is_some() {
                    errors.push("html", "is for html labels only");
                }
                let content = input.content.as_deref().map(|text| text.split_whitespace().collect::<String>());
                match (format, content) {
                    (_, None) => {
                        errors.push("content", "is required: the file, base64");
                        None
                    }
                    (_, Some(text)) if text.len() > MAX_LABEL_BYTES / 3 * 4 + 4 => {
                        errors.push("content", format!("must be at most {} MB decoded", MAX_LABEL_BYTES >> 20));
                        None
                    }
                    (None, Some(_)) => None,
                    (Some(format), Some(text)) => {
                        let decoded =
                            base64::engine::general_purpose::STANDARD.decode(text.trim_end_matches('=')).or_else(
                                |_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text.trim_end_matches('=')),
                            );
                        match decoded {
                            Err(_) => {
                                errors.push("content", "is not base64");
                                None
                            }
                            Ok(bytes) if bytes.len() > MAX_LABEL_BYTES => {
                                errors.push("content", format!("must be at most {} MB decoded", MAX_LABEL_BYTES >> 20));
                                None
                            }
                            Ok(bytes) => match format.check(&bytes) {
                                Ok(()) => Some(LabelFile::File { format, bytes }),
                                Err(problem) => {
                                    errors.push("content", problem);
                                    None
                                }
                            },
                        }
                    }
                }
            }
        };
        let tracking = input
            .tracking
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .and_then(|text| TrackingNumber::parse(text).map_err(|problem| errors.push("tracking", problem)).ok());
        let carrier = input.carrier.as_deref().map(str::trim).filter(|text| !text.is_empty()).map(str::to_owned);
        if let Some(carrier) = &carrier {
            check_length(&mut errors, "carrier", carrier, MAX_NAME_CHARS);
        }
        errors.into_result(())?;
        let file = file.ok_or_else(|| ValidationErrors::single("format", "is required"))?;
        Ok(NewLabel { file, tracking, carrier })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn input(format: &str, content: Option<&[u8]>, html: Option<&str>) -> LabelInput {
        LabelInput {
            format: Some(format.into()),
            content: content.map(|bytes| base64::engine::general_purpose::STANDARD.encode(bytes)),
            html: html.map(str::to_owned),
            tracking: Some(" 1Z999AA10123456784 ".into()),
            carrier: Some("UPS".into()),
        }
    }

    fn fields(result: Result<NewLabel, ValidationErrors>) -> Vec<String> {
        result.err().map(|errors| errors.errors().iter().map(|e| e.field.clone()).collect()).unwrap_or_default()
    }

    #[test]
    fn files_are_taken_by_their_signature_and_html_as_text() {
        let pdf = NewLabel::parse(&input("PDF", Some(b"%PDF-1.7\n..."), None)).expect("a pdf");
        assert_eq!(pdf.file, LabelFile::File { format: LabelFormat::Pdf, bytes: b"%PDF-1.7\n...".to_vec() });
        assert_eq!(pdf.tracking.map(|t| t.to_string()).as_deref(), Some("1Z999AA10123456784"));
        assert!(NewLabel::parse(&input("png", Some(b"\x89PNG\r\n\x1a\nrest"), None)).is_ok());
        assert!(NewLabel::parse(&input("zpl", Some(b"^XA^FO50,50^FDHi^FS^XZ"), None)).is_ok());
        let html = NewLabel::parse(&input("html", None, Some("<p>Ship to</p>"))).expect("html");
        assert_eq!(html.file, LabelFile::Html("<p>Ship to</p>".into()));
    }

    #[test]
    fn a_file_that_is_not_what_it_says_or_not_base64_is_refused_by_field() {
        assert_eq!(fields(NewLabel::parse(&input("pdf", Some(b"<html>"), None))), ["content"]);
        assert_eq!(fields(NewLabel::parse(&input("zpl", Some(b"\xff\xfe"), None))), ["content"]);
        let mut not_base64 = input("pdf", None, None);
        not_base64.content = Some("%%%".into());
        assert_eq!(fields(NewLabel::parse(&not_base64)), ["content"]);
        assert_eq!(fields(NewLabel::parse(&input("gif", Some(b"GIF89a"), None))), ["format"]);
        assert_eq!(fields(NewLabel::parse(&input("html", Some(b"%PDF-"), None))), ["content", "html"]);
        assert_eq!(fields(NewLabel::parse(&input("pdf", None, Some("<p>")))), ["html", "content"]);
        let mut no_format = input("pdf", Some(b"%PDF-"), None);
        no_format.format = None;
        assert_eq!(fields(NewLabel::parse(&no_format)), ["format"]);
        let mut bad_tracking = input("pdf", Some(b"%PDF-"), None);
        bad_tracking.tracking = Some("tab\there".into());
        assert_eq!(fields(NewLabel::parse(&bad_tracking)), ["tracking"]);
        let huge = vec![b'%'; MAX_LABEL_BYTES + 1];
        assert_eq!(fields(NewLabel::parse(&input("pdf", Some(&huge), None))), ["content"]);
    }

    #[test]
    fn a_labels_file_is_kept_under_its_tenant_and_purchase_order() {
        let label = Label {
            id: 7,
            retailer_id: RetailerId::new_unchecked(3),
            purchase_order_id: PurchaseOrderId::new_unchecked(11),
            shipment_id: None,
            vendor_id: VendorId::new_unchecked(5),
            format: LabelFormat::Pdf,
            rendered_from_html: true,
            state: LabelState::Rendering,
            tracking: None,
            carrier: None,
            size_bytes: 0,
            sha256: String::new(),
            attached_by: AttachedBy::Retailer,
            created_at: DateTime::UNIX_EPOCH,
        };
        assert_eq!(label.object_key(), "labels/3/11/7.pdf");
        assert_eq!(label.html_key(), "labels/3/11/7.html");
        let stored = serde_json::to_value(&label).expect("json");
        assert_eq!(stored["state"], "rendering");
        assert_eq!(serde_json::from_value::<Label>(stored).expect("read back"), label);
    }
}
