//! The console's HTML, compiled into the binary: a page frame (navigation, one `h1`, the
//! session's sign-out form) and one function per page, each from the API's own JSON answer.
//! Every text from a record is escaped; the only style is the sheet below, whose colour pairs
//! [`PALETTE`] lists for the contrast check.

use serde_json::Value;
use shipsync_domain::access::Principal;

/// Escapes text for HTML (element content and quoted attributes).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// The foreground and background colours the sheet pairs (each must read at 4.5:1 or more).
pub const PALETTE: [(&str, &str, &str); 5] = [
    ("text", "#1b1b1f", "#ffffff"),
    ("link", "#0b4fad", "#ffffff"),
    ("button", "#ffffff", "#0b4fad"),
    ("failed badge", "#8a1111", "#fdecec"),
    ("header", "#ffffff", "#23262f"),
];

const STYLE: &str = "
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1b1b1f;background:#ffffff}
header{background:#23262f;color:#ffffff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center}
header a{color:#ffffff}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.25rem 1rem}
main{padding:1rem;max-width:72rem;margin:0 auto}
a{color:#0b4fad}
h1{font-size:1.5rem;margin:.5rem 0 1rem}
h2{font-size:1.2rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}
caption{text-align:left;font-weight:600;padding:.25rem 0}
th,td{border-bottom:1px solid #c9ccd3;padding:.4rem .5rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
button{font:inherit;color:#ffffff;background:#0b4fad;border:0;border-radius:4px;padding:.4rem .8rem;cursor:pointer}
button:focus,a:focus,input:focus{outline:3px solid #f2b600;outline-offset:2px}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
input[type=text],input[type=password],input[type=search]{font:inherit;width:100%;max-width:24rem;padding:.4rem;border:1px solid #6b6f7a;border-radius:4px}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.failed{color:#8a1111;background:#fdecec;padding:0 .3rem;border-radius:3px}
.note{padding:.5rem .75rem;border-left:4px solid #0b4fad;background:#f3f6fb}
.signout{margin-left:auto}
.signout button{background:transparent;color:#ffffff;text-decoration:underline;padding:0}
@media (max-width:40rem){thead{display:none}tr{display:block;border-bottom:2px solid #c9ccd3;padding:.25rem 0}td{display:block;border:0;padding:.15rem .5rem}td[data-label]::before{content:attr(data-label) ': ';font-weight:600}}
";

/// A page: its title (the `h1`), its body, and the session's navigation.
pub struct Page {
    title: String,
    body: String,
    nav: Option<(bool, String)>,
}

impl Page {
    pub fn new(title: &str, body: Option<String>) -> Self {
        Self { title: title.to_owned(), body: body.unwrap_or_default(), nav: None }
    }

    pub fn paragraph(mut self, text: &str) -> Self {
        self.body.push_str(&format!("<p>{}</p>", escape(text)));
        self
    }

    pub fn html(mut self, html: &str) -> Self {
        self.body.push_str(html);
        self
    }

    /// Shows the navigation for `principal` and the sign-out form.
    pub fn with_session(mut self, principal: &Principal, csrf: &str) -> Self {
        self.nav = Some((principal.is_retailer_user(), csrf.to_owned()));
        self
    }

    pub fn render(&self) -> String {
        let header = match &self.nav {
            Some((retailer, csrf)) => {
                let mut links = Vec::new();
                if *retailer {
                    links.push(("/console/health", "Order health"));
                    links.push(("/console/exports", "Exports"));
                }
                links.push(("/console/purchase-orders", "Purchase orders"));
                if *retailer {
                    links.push(("/console/stores", "Stores"));
                }
                let items: String =
                    links.iter().map(|(href, text)| format!("<li><a href=\"{href}\">{text}</a></li>")).collect();
                format!(
                    "<header><strong>shipsync</strong><nav aria-label=\"Main\"><ul>{items}</ul></nav>\
                     <form class=\"signout\" method=\"post\" action=\"/console/sign-out\">{}<button type=\"submit\">Sign out</button></form></header>",
                    csrf_field(csrf)
                )
            }
            None => "<header><strong>shipsync</strong></header>".to_owned(),
        };
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title} · shipsync</title><style>{STYLE}</style></head>\
             <body>{header}<main><h1>{title}</h1>{body}</main></body></html>",
            title = escape(&self.title),
            body = self.body,
        )
    }
}

fn csrf_field(csrf: &str) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", escape(csrf))
}

/// A button that posts to `action` with the session's token.
fn action_button(action: &str, label: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\">{}<button type=\"submit\">{}</button></form>",
        escape(action),
        csrf_field(csrf),
        escape(label)
    )
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn cell(label: &str, html: &str) -> String {
    format!("<td data-label=\"{}\">{html}</td>", escape(label))
}

fn table(caption: &str, headings: &[&str], rows: &[String], empty: &str) -> String {
    if rows.is_empty() {
        return format!("<h2>{}</h2><p>{}</p>", escape(caption), escape(empty));
    }
    let head: String = headings.iter().map(|h| format!("<th scope=\"col\">{}</th>", escape(h))).collect();
    format!(
        "<h2>{caption}</h2><table><caption class=\"visually-hidden\">{caption}</caption><thead><tr>{head}</tr></thead><tbody>{}</tbody></table>",
        rows.concat(),
        caption = escape(caption)
    )
}

/// The sign-in page, with what went wrong (if anything).
pub fn sign_in(problem: Option<&str>) -> String {
    let problem = problem.map(|p| format!("<p class=\"note\" role=\"alert\">{}</p>", escape(p))).unwrap_or_default();
    Page::new("Sign in", None)
        .html(&format!(
            "{problem}<form method=\"post\" action=\"/console/sign-in\">\
             <label for=\"api_key\">API key</label><input id=\"api_key\" name=\"api_key\" type=\"text\" autocomplete=\"username\" required>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
             <p><button type=\"submit\">Sign in</button></p></form>"
        ))
        .render()
}

/// A page that only says something.
pub fn message(title: &str, text: &str) -> String {
    Page::new(title, None).paragraph(text).html("<p><a href=\"/console/\">Back to the console</a></p>").render()
}

/// Order health: each open problem with what to do about it.
pub fn health(health: &Value, csrf: &str, done: Option<&str>) -> Page {
    let mut rows = Vec::new();
    for problem in health["problems"].as_array().into_iter().flatten() {
        let kind = text(&problem["kind"]);
        let mut actions = String::new();
        if let Some(shipment) = problem["shipment_id"].as_u64() {
            actions.push_str(&action_button(&format!("/console/shipments/{shipment}/export"), "Export now", csrf));
            actions.push_str(&format!("<a href=\"/console/shipments/{shipment}\">Shipment {shipment}</a>"));
        }
        if let Some(order) = problem["order_id"].as_u64() {
            actions.push_str(&action_button(&format!("/console/orders/{order}/reprocess"), "Reprocess order", csrf));
        }
        if let Some(cancellation) = problem["cancellation_id"].as_u64() {
            let path = |verb: &str| format!("/console/cancellations/{cancellation}/{verb}");
            match kind.as_str() {
                "cancellation_awaiting_approval" => {
                    actions.push_str(&action_button(&path("approve"), "Approve cancellation", csrf));
                    actions.push_str(&action_button(&path("decline"), "Decline cancellation", csrf));
                }
                "cancellation_push_failed" => {
                    actions.push_str(&action_button(&path("push"), "Send to the channel again", csrf));
                }
                _ => {}
            }
        }
        rows.push(format!(
            "<tr>{}{}{}{}{}</tr>",
            cell("Problem", &format!("<span class=\"failed\">{}</span>", escape(&kind))),
            cell("Order", &escape(&text(&problem["order_number"]))),
            cell("What happened", &escape(&text(&problem["reason"]))),
            cell("Since", &escape(&text(&problem["since"]))),
            cell("Action", &actions),
        ));
    }
    let note = match done {
        Some("reprocess") => "<p class=\"note\" role=\"status\">The order was applied again.</p>",
        Some("approve") => {
            "<p class=\"note\" role=\"status\">The cancellation was approved: its units are cancelled.</p>"
        }
        Some("decline") => "<p class=\"note\" role=\"status\">The cancellation was declined: nothing changed.</p>",
        Some("push") => "<p class=\"note\" role=\"status\">The cancellation goes to the channel again.</p>",
        _ => "",
    };
    let total = health["metadata"]["total_count"].as_u64().unwrap_or(rows.len() as u64);
    Page::new("Order health", None).html(note).html(&format!("<p>{total} open problem(s), oldest first.</p>")).html(
        &table(
            "Open problems",
            &["Problem", "Order", "What happened", "Since", "Action"],
            &rows,
            "Nothing needs you: every order is in order.",
        ),
    )
}

/// Why a shipment's export waits, in a person's words.
fn waiting_reason(shipment: &Value) -> Option<String> {
    let due = text(&shipment["export_due_at"]);
    let state = text(&shipment["export_state"]);
    let needs_imei = shipment["shipment_items_attributes"].as_array().into_iter().flatten().any(|item| {
        item["needs_imei"] == Value::Bool(true) && item["serial_codes"].as_array().is_none_or(Vec::is_empty)
    });
    Some(match state.as_str() {
        "scheduled" if needs_imei => format!("waiting for an IMEI (or until {due})"),
        "scheduled" => format!("the store's delay: due {due}"),
        "exporting" => "being exported now".to_owned(),
        "waiting_for_movement" => "waiting for the carrier's first scan".to_owned(),
        "waiting_for_order" => "waiting for the whole order to ship".to_owned(),
        "manual" => "automatic export is off: export it by hand".to_owned(),
        _ => return None,
    })
}

/// Exports: failed ones with the channel's message, waiting ones with why, dead-lettered events.
pub fn exports(failed: &Value, recent: &Value, health: &Value, csrf: &str) -> Page {
    let link = |shipment: &Value| {
        let id = text(&shipment["id"]);
        format!("<a href=\"/console/shipments/{}\">{}</a>", escape(&id), escape(&id))
    };
    let failed_rows: Vec<String> = failed["shipments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|shipment| {
            let id = text(&shipment["id"]);
            format!(
                "<tr>{}{}{}{}</tr>",
                cell("Shipment", &link(shipment)),
                cell("Purchase order", &escape(&text(&shipment["purchase_order_public_reference"]))),
                cell(
                    "The channel said",
                    &format!("<span class=\"failed\">{}</span>", escape(&text(&shipment["export_error"])))
                ),
                cell("Action", &action_button(&format!("/console/shipments/{id}/export"), "Export now", csrf)),
            )
        })
        .collect();
    let waiting_rows: Vec<String> = recent["shipments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|shipment| {
            let reason = waiting_reason(shipment)?;
            Some(format!(
                "<tr>{}{}{}{}</tr>",
                cell("Shipment", &link(shipment)),
                cell("Purchase order", &escape(&text(&shipment["purchase_order_public_reference"]))),
                cell("State", &escape(&text(&shipment["export_state"]))),
                cell("Waiting for", &escape(&reason)),
            ))
        })
        .collect();
    let dead_rows: Vec<String> = health["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|problem| problem["kind"] == "dead_lettered_event")
        .map(|problem| {
            format!(
                "<tr>{}{}</tr>",
                cell("Event", &escape(&text(&problem["reason"]))),
                cell("Since", &escape(&text(&problem["since"])))
            )
        })
        .collect();
    Page::new("Exports", None)
        .html(&table(
            "Failed exports",
            &["Shipment", "Purchase order", "The channel said", "Action"],
            &failed_rows,
            "No export has failed.",
        ))
        .html(&table(
            "Waiting exports (latest shipments)",
            &["Shipment", "Purchase order", "State", "Waiting for"],
            &waiting_rows,
            "No recent shipment is waiting.",
        ))
        .html(&table("Dead-lettered events", &["Event", "Since"], &dead_rows, "No event is in the dead-letter queue."))
}

/// One shipment: its details and its history.
pub fn shipment(shipment: &Value, events: &Value, csrf: &str, retailer: bool, done: Option<&str>) -> Page {
    let id = text(&shipment["id"]);
    let details = [
        ("Purchase order", text(&shipment["purchase_order_public_reference"])),
        ("Carrier", text(&shipment["shipper_name"])),
        (
            "Tracking",
            shipment["shipment_trackings_attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| text(&t["tracking"]))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("Export", text(&shipment["export_state"])),
        ("Due", text(&shipment["export_due_at"])),
        ("Channel's message", text(&shipment["export_error"])),
    ];
    let rows: String = details
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("<tr><th scope=\"row\">{}</th><td>{}</td></tr>", escape(name), escape(value)))
        .collect();
    let history: Vec<String> = events["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|event| {
            format!(
                "<tr>{}{}{}{}{}{}</tr>",
                cell("When", &escape(&text(&event["at"]))),
                cell("What", &escape(&text(&event["event"]))),
                cell("By", &escape(&text(&event["by"]))),
                cell("Export", &escape(&text(&event["export_state"]))),
                cell("Due", &escape(&text(&event["due_at"]))),
                cell("Detail", &escape(&text(&event["detail"]))),
            )
        })
        .collect();
    let exportable = !matches!(text(&shipment["export_state"]).as_str(), "exported" | "export_cancelled" | "not_sent");
    let action = if retailer && exportable {
        action_button(&format!("/console/shipments/{id}/export"), "Export now", csrf)
    } else {
        String::new()
    };
    let note = match done {
        Some("export") => {
            "<p class=\"note\" role=\"status\">Its export is planned for now: the exporter sends it in a moment.</p>"
        }
        _ => "",
    };
    Page::new(&format!("Shipment {id}"), None)
        .html(note)
        .html(&format!(
            "<table><caption class=\"visually-hidden\">Details</caption><tbody>{rows}</tbody></table>{action}"
        ))
        .html(&table("History", &["When", "What", "By", "Export", "Due", "Detail"], &history, "No history kept."))
}

/// Purchase orders, with a search by number.
pub fn purchase_orders(listed: &Value, number: Option<&str>) -> Page {
    let rows: Vec<String> = listed["purchase_orders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|po| {
            let items: Vec<String> = po["order_items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| {
                    format!(
                        "{} × {} ({} shipped, {} cancelled)",
                        text(&item["quantity"]),
                        text(&item["sku"]),
                        text(&item["quantity_fulfilled"]),
                        text(&item["quantity_cancelled"]),
                    )
                })
                .collect();
            format!(
                "<tr>{}{}{}{}</tr>",
                cell("Number", &escape(&text(&po["public_reference"]))),
                cell("Customer", &escape(&text(&po["customer_name"]))),
                cell("Items", &escape(&items.join("; "))),
                cell("Shipped", if po["fully_fulfilled"] == Value::Bool(true) { "all" } else { "not all" }),
            )
        })
        .collect();
    let search = format!(
        "<form method=\"get\" action=\"/console/purchase-orders\" role=\"search\">\
         <label for=\"number\">Purchase order number</label>\
         <input id=\"number\" name=\"number\" type=\"search\" value=\"{}\"> <button type=\"submit\">Search</button></form>",
        escape(number.unwrap_or_default())
    );
    Page::new("Purchase orders", None).html(&search).html(&table(
        "Purchase orders",
        &["Number", "Customer", "Items", "Shipped"],
        &rows,
        "No purchase order matches.",
    ))
}

/// Stores and their settings; never their credentials (the API shows only whether they are set).
pub fn stores(stores: &Value) -> Page {
    let rows: Vec<String> = stores["stores"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|store| {
            format!(
                "<tr>{}{}{}{}{}{}</tr>",
                cell("Store", &escape(&text(&store["name"]))),
                cell("Channel", &escape(&text(&store["channel"]))),
                cell(
                    "Exports",
                    &escape(&format!(
                        "{} after {} minutes",
                        text(&store["export_when"]),
                        text(&store["shipment_export_delay_minutes"])
                    ))
                ),
                cell("Confirms", &escape(&text(&store["ship_confirmation"]))),
                cell("Polls every", &escape(&format!("{} minutes", text(&store["poll_orders_every_minutes"])))),
                cell(
                    "Credentials",
                    if store["credentials_set"] == Value::Bool(true) {
                        "set"
                    } else {
                        "<span class=\"failed\">missing</span>"
                    }
                ),
            )
        })
        .collect();
    Page::new("Stores", None).html(&table(
        "Stores",
        &["Store", "Channel", "Exports", "Confirms", "Polls every", "Credentials"],
        &rows,
        "No store yet.",
    ))
}

/// WCAG's contrast ratio of two `#rrggbb` colours.
pub fn contrast(foreground: &str, background: &str) -> f64 {
    fn luminance(hex: &str) -> f64 {
        let channel = |range: std::ops::Range<usize>| {
            let value = f64::from(u8::from_str_radix(hex.get(range).unwrap_or("00"), 16).unwrap_or(0)) / 255.0;
            if value <= 0.039_28 { value / 12.92 } else { ((value + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * channel(1..3) + 0.7152 * channel(3..5) + 0.0722 * channel(5..7)
    }
    let (a, b) = (luminance(foreground), luminance(background));
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_colour_pair_reads_at_four_and_a_half_to_one_and_every_pair_is_in_the_sheet() {
        for (name, foreground, background) in PALETTE {
            let ratio = contrast(foreground, background);
            assert!(ratio >= 4.5, "{name}: {foreground} on {background} is {ratio:.2}:1");
            assert!(STYLE.contains(foreground) && STYLE.contains(background), "{name} is not the sheet's");
        }
        assert!((contrast("#000000", "#ffffff") - 21.0).abs() < 0.01);
    }

    #[test]
    fn record_text_is_escaped() {
        assert_eq!(escape("<script>\"a\"&'b'</script>"), "&lt;script&gt;&quot;a&quot;&amp;&#39;b&#39;&lt;/script&gt;");
        let page = Page::new("<b>", None).paragraph("<i>").render();
        assert!(!page.contains("<b>") && !page.contains("<i>"));
    }
}
