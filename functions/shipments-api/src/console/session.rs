//! Console sessions: a signed cookie naming the API user, when it expires, a nonce the forms'
//! CSRF tokens are made from, and a fingerprint of the user's password digest (a changed
//! password ends every session). Signed with HMAC-SHA256 under the deployment's console secret.

use base64::Engine;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};

/// The cookie's name.
pub const COOKIE: &str = "shipsync_session";

/// How long a session lasts: a working day.
pub const SESSION_SECONDS: i64 = 8 * 3600;

/// The shortest console secret taken.
pub const MIN_SECRET_BYTES: usize = 32;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The API user's key.
    pub k: String,
    /// Expires at (Unix seconds).
    pub e: i64,
    /// A random nonce: the forms' CSRF token is derived from it.
    pub n: String,
    /// The first 16 hex characters of the SHA-256 of the user's password digest.
    pub f: String,
}

/// Signs and checks sessions and CSRF tokens.
#[derive(Clone)]
pub struct Sessions {
    secret: Vec<u8>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions { secret: <hidden> }")
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The fingerprint a session keeps of a password digest.
pub fn fingerprint(password_digest: &str) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(password_digest.as_bytes()))[..16].to_owned()
}

impl Sessions {
    /// `None` for a secret too short to sign with.
    pub fn new(secret: &str) -> Option<Self> {
        (secret.len() >= MIN_SECRET_BYTES).then(|| Self { secret: secret.as_bytes().to_vec() })
    }

    fn mac(&self, purpose: &str, text: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.secret).unwrap_or_else(|_| unreachable_key());
        mac.update(purpose.as_bytes());
        mac.update(b"\n");
        mac.update(text.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// The cookie's value for a session: `<base64 JSON>.<hex HMAC>`.
    pub fn seal(&self, session: &Session) -> String {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(session).unwrap_or_default());
        let signature = self.mac("session", &payload);
        format!("{payload}.{signature}")
    }

    /// The session a cookie value holds, if its signature checks and it has not expired.
    pub fn open(&self, value: &str, now: i64) -> Option<Session> {
        let (payload, signature) = value.split_once('.')?;
        if !constant_time_eq(self.mac("session", payload).as_bytes(), signature.as_bytes()) {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
        let session: Session = serde_json::from_slice(&bytes).ok()?;
        (session.e > now).then_some(session)
    }

    /// The CSRF token the session's forms carry.
    pub fn csrf(&self, session: &Session) -> String {
        self.mac("csrf", &session.n)
    }

    /// Whether a form's token is the session's.
    pub fn csrf_matches(&self, session: &Session, token: &str) -> bool {
        constant_time_eq(self.csrf(session).as_bytes(), token.as_bytes())
    }
}

// HMAC takes a key of any length: this cannot happen.
#[cold]
fn unreachable_key() -> HmacSha256 {
    HmacSha256::new_from_slice(b"shipsync").unwrap_or_else(|_| std::process::abort())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random nonce (hex), from the operating system.
pub fn nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opens_only_unaltered_unexpired_and_under_its_secret() {
        let sessions = Sessions::new(&"s".repeat(32)).expect("a long enough secret");
        assert!(Sessions::new("short").is_none());
        let session = Session { k: "key".into(), e: 1_000, n: "abc".into(), f: fingerprint("digest") };
        let sealed = sessions.seal(&session);
        assert_eq!(sessions.open(&sealed, 999), Some(session.clone()));
        assert_eq!(sessions.open(&sealed, 1_000), None, "expired");
        let other = Sessions::new(&"t".repeat(32)).expect("secret");
        assert_eq!(other.open(&sealed, 0), None, "another deployment's secret");
        let (payload, signature) = sealed.split_once('.').expect("two parts");
        let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&Session { k: "admin".into(), ..session.clone() }).expect("json"));
        assert_eq!(sessions.open(&format!("{forged}.{signature}"), 0), None, "a changed payload");
        assert_eq!(sessions.open(payload, 0), None);
        assert!(sessions.csrf_matches(&session, &sessions.csrf(&session)));
        assert!(!sessions.csrf_matches(&session, "0"));
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
