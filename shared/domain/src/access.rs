//! API users, their roles and what each may see.
//!
//! Credentials are a key (public, the Basic-auth user name) and a password that shipsync
//! generates with 256 bits of randomness. Only a salted SHA-256 digest of the password is stored.
//! A slow password hash (argon2, bcrypt) protects guessable human passwords; a random 256-bit
//! secret cannot be guessed, so a fast digest is as safe and keeps every request cheap.

use crate::ids::{RetailerId, VendorId};
use crate::purchase_order::PurchaseOrder;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every issued API key starts with this, followed by [`API_KEY_HEX_DIGITS`] lower-case hex digits.
pub const API_KEY_PREFIX: &str = "ak_";
/// How many random hex digits follow the prefix of an issued API key (80 bits).
pub const API_KEY_HEX_DIGITS: usize = 20;
/// How much of a rejected key a log may show: enough to tell keys apart, not enough to use one.
pub const LOGGED_KEY_CHARS: usize = 8;

/// Whether a key has the shape shipsync issues. Anything else cannot name a user, so it is
/// refused before any lookup (no read is spent on garbage, and nothing odd reaches a key).
pub fn has_issued_key_shape(key: &str) -> bool {
    key.strip_prefix(API_KEY_PREFIX).is_some_and(|digits| {
        digits.len() == API_KEY_HEX_DIGITS && digits.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A key as logs may show it: its first few characters, never the whole of a long or odd one.
pub fn key_for_log(key: &str) -> String {
    let shown: String = key.chars().take(LOGGED_KEY_CHARS).collect();
    if shown.len() < key.len() { format!("{shown}…") } else { shown }
}

/// What an API user may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Role {
    /// Sees everything of its retailer.
    Retailer,
    /// Sees only its own vendor's purchase orders and shipments.
    Vendor { vendor_id: VendorId },
}

/// A stored API user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiUser {
    pub key: String,
    pub retailer_id: RetailerId,
    #[serde(flatten)]
    pub role: Role,
    /// Times without a zone in this user's requests are read in this zone.
    pub time_zone: String,
    pub password_salt: String,
    pub password_digest: String,
}

impl ApiUser {
    /// Checks a password against the stored digest, in time that does not depend on where they differ.
    pub fn password_matches(&self, password: &str) -> bool {
        let computed = password_digest(&self.password_salt, password);
        constant_time_eq(computed.as_bytes(), self.password_digest.as_bytes())
    }

    /// The authenticated caller this user becomes.
    pub fn principal(&self) -> Principal {
        Principal {
            retailer_id: self.retailer_id,
            role: self.role,
            // A stored zone that no longer parses falls back to UTC rather than locking the user out.
            time_zone: self.time_zone.parse().unwrap_or(Tz::UTC),
        }
    }
}

/// The salted digest stored in place of a password.
pub fn password_digest(salt: &str, password: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update([0u8]);
    hasher.update(password.as_bytes());
    to_hex(&hasher.finalize())
}

/// Lower-case hexadecimal of some bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Compares secrets (digests, signatures) in time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks a time zone name (IANA, e.g. `America/New_York`).
pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| format!("{name:?} is not an IANA time zone name"))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub retailer_id: RetailerId,
    pub role: Role,
    pub time_zone: Tz,
}

impl Principal {
    /// The vendor this caller is limited to, if it is a vendor user.
    pub fn vendor_scope(&self) -> Option<VendorId> {
        match self.role {
            Role::Retailer => None,
            Role::Vendor { vendor_id } => Some(vendor_id),
        }
    }

    /// Whether the caller may see records of this retailer and vendor. Anything else is "not found".
    pub fn can_see(&self, retailer_id: RetailerId, vendor_id: VendorId) -> bool {
        retailer_id == self.retailer_id && self.vendor_scope().is_none_or(|own| own == vendor_id)
    }

    pub fn can_see_purchase_order(&self, purchase_order: &PurchaseOrder) -> bool {
        self.can_see(purchase_order.retailer_id, purchase_order.vendor_id)
    }

    pub fn is_retailer_user(&self) -> bool {
        self.role == Role::Retailer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> ApiUser {
        ApiUser {
            key: "key".into(),
            retailer_id: RetailerId::new_unchecked(10),
            role,
            time_zone: "Europe/Paris".into(),
            password_salt: "salt".into(),
            password_digest: password_digest("salt", "s3cret"),
        }
    }

    #[test]
    fn only_the_right_password_matches() {
        let user = user(Role::Retailer);
        assert!(user.password_matches("s3cret"));
        assert!(!user.password_matches("s3cret "));
        assert!(!user.password_matches(""));
    }

    #[test]
    fn only_issued_key_shapes_pass() {
        assert!(has_issued_key_shape("ak_0123456789abcdef0123"));
        for bad in
            ["", "ak_", "ak_nobody", "ak_0123456789ABCDEF0123", "ak_0123456789abcdef01234", "bk_0123456789abcdef0123"]
        {
            assert!(!has_issued_key_shape(bad), "{bad}");
        }
        assert_eq!(key_for_log("ak_0123456789abcdef0123"), "ak_01234…");
        assert_eq!(key_for_log("short"), "short");
        assert_eq!(key_for_log(&"é".repeat(5000)).chars().count(), LOGGED_KEY_CHARS + 1);
    }

    #[test]
    fn vendors_see_only_their_own_records() {
        let vendor = VendorId::new_unchecked(5);
        let other = VendorId::new_unchecked(6);
        let retailer = RetailerId::new_unchecked(10);
        let elsewhere = RetailerId::new_unchecked(11);
        let vendor_user = user(Role::Vendor { vendor_id: vendor }).principal();
        assert!(vendor_user.can_see(retailer, vendor));
        assert!(!vendor_user.can_see(retailer, other));
        assert!(!vendor_user.can_see(elsewhere, vendor));
        let retailer_user = user(Role::Retailer).principal();
        assert!(retailer_user.can_see(retailer, other));
        assert!(!retailer_user.can_see(elsewhere, other));
        assert_eq!(retailer_user.time_zone, Tz::Europe__Paris);
    }
}
