//! Channel credentials are sealed before they are stored: the port a cipher (KMS in AWS)
//! implements, and the encryption context that binds a sealed credential to its store, so a
//! ciphertext copied to another store's record (or another tenant's) cannot be opened there.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::ids::{RetailerId, StoreId};

/// KMS refuses to encrypt more than this many bytes at once: the sealed credentials of one store
/// (their JSON) must fit.
pub const MAX_SEALED_BYTES: usize = 4096;

/// What a sealed secret is for. Webhook secrets are sealed apart from the channel's API
/// credentials, so the internet-facing webhook function may open only them (its IAM grant names
/// the purpose), never a store's access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretPurpose {
    /// Tokens and keys for calling the channel's API (exporter, poller).
    Channel,
    /// The secrets a channel signs its webhooks with (the webhook function).
    Webhook,
}

impl SecretPurpose {
    pub fn name(self) -> &'static str {
        match self {
            SecretPurpose::Channel => "channel",
            SecretPurpose::Webhook => "webhook",
        }
    }

    /// Which purpose a credential of this name serves.
    pub fn of(credential_name: &str) -> Self {
        if WEBHOOK_SECRET_NAMES.contains(&credential_name) { SecretPurpose::Webhook } else { SecretPurpose::Channel }
    }
}

/// The credentials that verify webhooks: the channel's (the current secret and the one being
/// rotated out) and the store's carrier-tracking provider's, which signs the scans posted to the
/// store's own carrier webhook URL.
pub const WEBHOOK_SECRET_NAMES: [&str; 3] = ["webhook_secret", "previous_webhook_secret", TRACKING_WEBHOOK_SECRET_NAME];

/// The store credential its carrier-tracking provider signs scans with (any channel's store).
pub const TRACKING_WEBHOOK_SECRET_NAME: &str = "tracking_webhook_secret";

/// Whose secrets a ciphertext holds, and for what. Sealing and opening must name the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialContext {
    /// A store's secrets: its channel's API credentials or its webhook secrets (a carrier
    /// provider's included: each store signs with its own, never one for the deployment).
    ChannelStore { retailer_id: RetailerId, store_id: StoreId, purpose: SecretPurpose },
}

impl CredentialContext {
    pub const RETAILER_KEY: &'static str = "retailer_id";
    pub const STORE_KEY: &'static str = "store_id";
    pub const PURPOSE_KEY: &'static str = "purpose";

    pub fn store(retailer_id: RetailerId, store_id: StoreId, purpose: SecretPurpose) -> Self {
        CredentialContext::ChannelStore { retailer_id, store_id, purpose }
    }

    /// The encryption context: the names the key policy and IAM conditions refer to.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        match self {
            CredentialContext::ChannelStore { retailer_id, store_id, purpose } => vec![
                (Self::RETAILER_KEY, retailer_id.to_string()),
                (Self::STORE_KEY, store_id.to_string()),
                (Self::PURPOSE_KEY, purpose.name().to_owned()),
            ],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The ciphertext does not open for this context or key, or this process may not open it:
    /// retrying cannot help.
    #[error("{0}")]
    Refused(String),
    /// The cipher service failed or could not be reached: worth retrying.
    #[error("{0}")]
    Unavailable(String),
}

pub type CipherFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, CipherError>> + Send + 'a>>;

/// Seals and opens channel credentials. Functions that only store credentials (the API) get a
/// cipher that cannot open them.
pub trait CredentialCipher: fmt::Debug + Send + Sync {
    fn encrypt<'a>(&'a self, context: CredentialContext, plaintext: &'a [u8]) -> CipherFuture<'a, Vec<u8>>;
    fn decrypt<'a>(&'a self, context: CredentialContext, ciphertext: &'a [u8]) -> CipherFuture<'a, Vec<u8>>;
}

/// A store's channel credentials. Kept in their own record, sealed with the store's cipher, and
/// opened only by the functions that call channels or check webhook signatures.
#[derive(Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChannelCredentials(pub std::collections::BTreeMap<String, String>);

impl ChannelCredentials {
    /// The secret the store's carrier-tracking provider signs the scans posted to the store's
    /// carrier webhook URL with (from its opened webhook secrets); an empty one counts as none,
    /// since anyone could sign with it.
    pub fn tracking_webhook_secret(&self) -> Option<&str> {
        self.0.get(TRACKING_WEBHOOK_SECRET_NAME).map(String::as_str).filter(|secret| !secret.trim().is_empty())
    }
}

/// Names only: a credential's value is never logged.
impl std::fmt::Debug for ChannelCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Bounds a store's new credentials: few, bounded values (of the names the channel `known`s),
/// small enough together to be sealed (KMS encrypts at most 4 KiB). Which names a channel takes
/// is the channel's to say. Errors name `credentials` or `credentials.<name>`, never a value.
pub fn check_credential_limits(known: &[&str], credentials: &ChannelCredentials, errors: &mut crate::ValidationErrors) {
    use crate::limits::{MAX_CREDENTIAL_VALUE_CHARS, MAX_CREDENTIALS};
    if credentials.0.len() > MAX_CREDENTIALS {
        errors.push("credentials", format!("must have at most {MAX_CREDENTIALS} entries"));
    }
    for (name, value) in &credentials.0 {
        if known.contains(&name.as_str()) && value.chars().count() > MAX_CREDENTIAL_VALUE_CHARS {
            errors.push(
                format!("credentials.{name}"),
                format!("must be at most {MAX_CREDENTIAL_VALUE_CHARS} characters"),
            );
        }
    }
    let sealed_size = serde_json::to_vec(&credentials.0).map_or(usize::MAX, |json| json.len());
    if sealed_size > MAX_SEALED_BYTES {
        errors.push("credentials", format!("must be at most {MAX_SEALED_BYTES} bytes together"));
    }
}
