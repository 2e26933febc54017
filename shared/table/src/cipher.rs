//! The credential cipher on AWS KMS: `Encrypt` and `Decrypt` under one key, with the store's
//! retailer and id as encryption context. The API's cipher is encrypt-only; IAM grants it no
//! `kms:Decrypt` either, so it fails closed twice.

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use shipsync_domain::secrets::{CipherError, CipherFuture, CredentialCipher, CredentialContext};

#[derive(Debug, Clone)]
pub struct KmsCipher {
    client: aws_sdk_kms::Client,
    key_id: String,
    can_decrypt: bool,
}

impl KmsCipher {
    /// Seals and opens (the functions that call channels or check webhook signatures).
    pub fn new(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { client, key_id: key_id.into(), can_decrypt: true }
    }

    /// Seals only (the API: credentials are write-only).
    pub fn encrypt_only(client: aws_sdk_kms::Client, key_id: impl Into<String>) -> Self {
        Self { client, key_id: key_id.into(), can_decrypt: false }
    }
}

/// KMS's answers that retrying cannot change.
const REFUSALS: &[&str] = &[
    "InvalidCiphertextException",
    "IncorrectKeyException",
    "AccessDeniedException",
    "NotFoundException",
    "DisabledException",
    "InvalidKeyUsageException",
    "KMSInvalidStateException",
];

fn kms_error<E, R>(operation: &'static str) -> impl FnOnce(SdkError<E, R>) -> CipherError
where
    E: ProvideErrorMetadata,
{
    move |error| {
        let code = error.code().unwrap_or("no code").to_owned();
        if REFUSALS.contains(&code.as_str()) {
            CipherError::Refused(format!("KMS {operation} refused: {code}"))
        } else {
            CipherError::Unavailable(format!("KMS {operation} failed: {code}"))
        }
    }
}

impl CredentialCipher for KmsCipher {
    fn encrypt<'a>(&'a self, context: CredentialContext, plaintext: &'a [u8]) -> CipherFuture<'a, Vec<u8>> {
        Box::pin(async move {
            let mut request = self.client.encrypt().key_id(&self.key_id).plaintext(Blob::new(plaintext));
            for (name, value) in context.pairs() {
                request = request.encryption_context(name, value);
            }
            let output = request.send().await.map_err(kms_error("Encrypt"))?;
            output
                .ciphertext_blob
                .map(Blob::into_inner)
                .ok_or_else(|| CipherError::Unavailable("KMS Encrypt returned no ciphertext".into()))
        })
    }

    fn decrypt<'a>(&'a self, context: CredentialContext, ciphertext: &'a [u8]) -> CipherFuture<'a, Vec<u8>> {
        Box::pin(async move {
            if !self.can_decrypt {
                return Err(CipherError::Refused("this function may not decrypt credentials".into()));
            }
            // Naming the key makes KMS refuse a ciphertext made under any other key.
            let mut request = self.client.decrypt().key_id(&self.key_id).ciphertext_blob(Blob::new(ciphertext));
            for (name, value) in context.pairs() {
                request = request.encryption_context(name, value);
            }
            let output = request.send().await.map_err(kms_error("Decrypt"))?;
            output
                .plaintext
                .map(Blob::into_inner)
                .ok_or_else(|| CipherError::Unavailable("KMS Decrypt returned no plaintext".into()))
        })
    }
}
