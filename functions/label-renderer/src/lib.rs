//! The label renderer: takes HTML labels off the render queue and hands each to
//! [`LabelRendering`] (shipsync-app), which turns it into the label's PDF with headless Chromium
//! ([`Chromium`]). A label's page can reach nothing and run nothing: Chromium's every request
//! goes to a proxy that is not there, the page carries a Content-Security-Policy that allows no
//! script and no resource but inline styles and `data:` images, and a `<meta http-equiv=refresh>`
//! (which could navigate to a local file) is taken out; it is stopped after [`RENDER_TIMEOUT`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use shipsync_app::Failure;
use shipsync_app::labels::LabelRendering;
use shipsync_app::ports::HtmlToPdf;
use shipsync_domain::labels::RenderRequest;
use shipsync_domain::time::{Clock, system_clock};
use shipsync_files::LabelBucket;
use shipsync_platform::{ConfigError, required_env};
use shipsync_table::{CredentialAccess, Table};

/// The longest one page may take to render.
pub const RENDER_TIMEOUT: Duration = Duration::from_secs(30);

/// Where Debian installs Chromium (the local stack and the tests); the container image sets
/// `SHIPSYNC_CHROMIUM`.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The renderer's settings.
#[derive(Debug, Clone)]
pub struct RendererConfig {
    /// `SHIPSYNC_TABLE`
    pub table_name: String,
    /// `SHIPSYNC_LABELS_BUCKET`
    pub labels_bucket: String,
    /// `SHIPSYNC_CHROMIUM`, else [`DEFAULT_CHROMIUM`].
    pub chromium: PathBuf,
}

impl RendererConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: required_env("SHIPSYNC_TABLE")?,
            labels_bucket: required_env("SHIPSYNC_LABELS_BUCKET")?,
            chromium: chromium_path(),
        })
    }
}

/// Chromium's path: `SHIPSYNC_CHROMIUM`, else [`DEFAULT_CHROMIUM`].
pub fn chromium_path() -> PathBuf {
    std::env::var_os("SHIPSYNC_CHROMIUM").map_or_else(|| PathBuf::from(DEFAULT_CHROMIUM), PathBuf::from)
}

/// Headless Chromium, one process per page.
#[derive(Debug, Clone)]
pub struct Chromium {
    path: PathBuf,
}

impl Chromium {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The flags every page is printed with: headless, sandboxed by the container rather than
    /// by Chromium (Lambda allows no user namespaces), no network (a dead proxy for every
    /// address, loopback included), no background services, no header or footer.
    fn arguments(&self, dir: &Path) -> Vec<String> {
        vec![
            "--headless".into(),
            "--no-sandbox".into(),
            "--no-zygote".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--no-first-run".into(),
            "--proxy-server=http://127.0.0.1:9".into(),
            "--proxy-bypass-list=<-loopback>".into(),
            "--no-pdf-header-footer".into(),
            format!("--user-data-dir={}", dir.join("profile").display()),
            format!("--crash-dumps-dir={}", dir.join("crashes").display()),
            format!("--print-to-pdf={}", dir.join("label.pdf").display()),
            format!("file://{}", dir.join("label.html").display()),
        ]
    }

    async fn print(&self, dir: &Path, html: &str) -> Result<Vec<u8>, Failure> {
        tokio::fs::write(dir.join("label.html"), confined_page(html))
            .await
            .map_err(|error| Failure::retryable(format!("writing the label's page: {error}")))?;
        let mut command = tokio::process::Command::new(&self.path);
        command
            .args(self.arguments(dir))
            .env("HOME", dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|error| Failure::retryable(format!("starting Chromium at {}: {error}", self.path.display())))?;
        let output = match tokio::time::timeout(RENDER_TIMEOUT, child.wait_with_output()).await {
            Ok(output) => output.map_err(|error| Failure::retryable(format!("running Chromium: {error}")))?,
            Err(_) => {
                return Err(Failure::permanent(format!("the page took over {} s to render", RENDER_TIMEOUT.as_secs())));
            }
        };
        let pdf = tokio::fs::read(dir.join("label.pdf")).await.ok().filter(|pdf| !pdf.is_empty());
        match pdf {
            Some(pdf) => Ok(pdf),
            None => {
                let said = String::from_utf8_lossy(&output.stderr);
                let last = said
                    .lines()
                    .rev()
                    .find(|line| !line.trim().is_empty() && !line.contains("dbus"))
                    .unwrap_or_default();
                let message = format!("the page could not be rendered to PDF ({}): {last:.300}", output.status);
                // Chromium that crashed or was stopped may print the page on another try; one that
                // ended cleanly and printed nothing will not.
                if output.status.success() {
                    Err(Failure::permanent(message))
                } else {
                    Err(Failure::retryable(message))
                }
            }
        }
    }
}

/// The policy every label page is rendered under: inline styles and `data:` images and fonts,
/// nothing else (no script, no frame, no file, no address).
const PAGE_POLICY: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:\">";

/// A label's page as Chromium opens it: [`PAGE_POLICY`] first, so it governs everything after
/// it, and no `<meta http-equiv=refresh>` (a navigation the policy does not govern).
pub fn confined_page(html: &str) -> String {
    let mut page = String::with_capacity(PAGE_POLICY.len() + html.len());
    page.push_str(PAGE_POLICY);
    let lower = html.to_ascii_lowercase();
    let mut copied = 0;
    let mut from = 0;
    while let Some(start) = lower[from..].find("<meta").map(|at| at + from) {
        let end = lower[start..].find('>').map_or(lower.len(), |at| start + at + 1);
        let tag = &lower[start..end];
        if tag.contains("http-equiv") && tag.contains("refresh") {
            page.push_str(&html[copied..start]);
            copied = end;
        }
        from = end;
    }
    page.push_str(&html[copied..]);
    page
}

impl HtmlToPdf for Chromium {
    /// Renders in a directory of its own, removed afterwards.
    async fn render_pdf(&self, html: &str) -> Result<Vec<u8>, Failure> {
        let mut suffix = [0u8; 8];
        getrandom::fill(&mut suffix).map_err(|error| Failure::retryable(format!("no randomness: {error}")))?;
        let name: String = suffix.iter().map(|byte| format!("{byte:02x}")).collect();
        let dir = std::env::temp_dir().join(format!("shipsync-label-{name}"));
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|error| Failure::retryable(format!("a directory to render in: {error}")))?;
        let rendered = self.print(&dir, html).await;
        if let Err(error) = tokio::fs::remove_dir_all(&dir).await {
            tracing::warn!(%error, dir = %dir.display(), "could not remove a render's directory");
        }
        rendered
    }
}

/// The renderer as deployed.
pub type Rendering = LabelRendering<Table, LabelBucket, Chromium>;

#[derive(Clone)]
pub struct LabelRenderer {
    rendering: Rendering,
}

impl LabelRenderer {
    /// As deployed: the table (no credentials), the labels bucket, Chromium.
    pub fn build(config: &RendererConfig, aws: &aws_config::SdkConfig) -> Self {
        let table = Table::connect(aws, &config.table_name, CredentialAccess::None);
        let bucket = LabelBucket::connect(aws, &config.labels_bucket);
        Self::new(table, bucket, Chromium::new(&config.chromium), system_clock())
    }

    pub fn new(table: Table, bucket: LabelBucket, chromium: Chromium, clock: Clock) -> Self {
        Self { rendering: LabelRendering::new(table, bucket, chromium, clock) }
    }

    /// Renders each queued label; the records that fail come back (and end in the dead-letter
    /// queue after the queue's receives).
    pub async fn handle(&self, batch: SqsEvent) -> SqsBatchResponse {
        let rendering = &self.rendering;
        shipsync_platform::for_each_record(batch, "label-renderer", async |message| {
            let body = message.body.as_deref().unwrap_or_default();
            let request: RenderRequest = serde_json::from_str(body)
                .map_err(|error| Failure::permanent(format!("not a render request: {error}")))?;
            // Boxed: the nested futures are deep enough to exceed the compiler's layout limit.
            Box::pin(rendering.render(&request)).await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_gets_the_policy_first_and_loses_its_refreshes() {
        let page = confined_page(
            "<META HTTP-EQUIV='Refresh' content='0;url=file:///etc/passwd'><p>Ship</p><meta charset=utf-8>",
        );
        assert!(page.starts_with(PAGE_POLICY));
        assert!(!page.to_ascii_lowercase().contains("refresh"), "{page}");
        assert!(page.ends_with("<p>Ship</p><meta charset=utf-8>"), "{page}");
        assert!(confined_page("<p>a > b</p><meta").ends_with("<p>a > b</p><meta"));
    }
}
