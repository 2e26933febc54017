//! A per-container memory of the records that change rarely and are read on every request:
//! API users, retailers and their carriers, vendors, stores and their opened credentials.
//!
//! A warm Lambda container answers many requests; reading these each time was most of the
//! DynamoDB calls (and every KMS call) a shipment or a webhook cost. A record is kept for
//! [`SETTINGS_TTL`] at most, so a change made elsewhere (another container, the admin command)
//! reaches every container within that time; a change made through this table is seen at
//! once, since every settings write forgets what it replaces, a read the write overtook is not
//! kept, and records are read consistently. A read that is followed by a write of the same record
//! (a store's update) never comes from here.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::TableError;

/// How long a settings record read from the table is used before it is read again. A revoked
/// API key or a changed store setting takes at most this long to reach a warm container.
pub const SETTINGS_TTL: Duration = Duration::from_secs(60);

/// The most records kept; past it the memory starts over (a container serves few tenants).
const MAX_ENTRIES: usize = 4096;

type Entry = (Instant, Arc<dyn Any + Send + Sync>);

#[derive(Clone)]
pub(crate) struct SettingsCache {
    ttl: Duration,
    entries: Arc<Mutex<HashMap<String, Entry>>>,
    /// The latest forgets, numbered: a read that a forget of its key overtook may hold what the
    /// write replaced, so its answer is used but not kept.
    forgets: Arc<Mutex<Forgets>>,
}

/// Forgets numbered in order, the last [`FORGETS_KEPT`] with their prefixes.
#[derive(Default)]
struct Forgets {
    count: u64,
    recent: std::collections::VecDeque<(u64, String)>,
}

const FORGETS_KEPT: usize = 64;

impl Forgets {
    /// Whether a forget after the `since`-th may have matched `key` (yes when it is too long
    /// ago to tell).
    fn touched_since(&self, since: u64, key: &str) -> bool {
        if self.count == since {
            return false;
        }
        let oldest_known = self.recent.front().map_or(self.count, |(number, _)| *number);
        oldest_known > since + 1
            || self.recent.iter().any(|(number, prefix)| *number > since && key.starts_with(prefix.as_str()))
    }
}

impl std::fmt::Debug for SettingsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingsCache").field("ttl", &self.ttl).finish_non_exhaustive()
    }
}

impl SettingsCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, entries: Arc::default(), forgets: Arc::default() }
    }

    /// An empty memory with the same expiry.
    pub(crate) fn emptied(&self) -> Self {
        Self::new(self.ttl)
    }

    /// An empty memory with this expiry (the memory is never shared with the copy it came from).
    pub(crate) fn with_ttl(&self, ttl: Duration) -> Self {
        Self::new(ttl)
    }

    fn forgets(&self) -> std::sync::MutexGuard<'_, Forgets> {
        self.forgets.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lookup<T: Clone + Send + Sync + 'static>(&self, key: &str) -> Option<T> {
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (read_at, value) = entries.get(key)?;
        if read_at.elapsed() >= self.ttl {
            return None;
        }
        value.downcast_ref::<T>().cloned()
    }

    fn keep<T: Clone + Send + Sync + 'static>(&self, key: String, value: &T) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), Arc::new(value.clone())));
    }

    /// The value kept under `key` if it is fresh, else what `read` answers (then kept). Errors
    /// are never kept.
    pub(crate) async fn get_or_read<T, F, Fut>(&self, key: String, read: F) -> Result<T, TableError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, TableError>>,
    {
        if let Some(value) = self.lookup::<T>(&key) {
            return Ok(value);
        }
        let forgets_before = self.forgets().count;
        let value = read().await?;
        if !self.forgets().touched_since(forgets_before, &key) {
            self.keep(key, &value);
        }
        Ok(value)
    }

    /// As [`SettingsCache::get_or_read`] for a record that may not exist, keeping only a found
    /// one: a miss is asked again, so a record made a moment later is seen, and requests naming
    /// made-up ids (a probe of webhook URLs) cannot crowd out the records kept.
    pub(crate) async fn get_or_read_found<T, F, Fut>(&self, key: String, read: F) -> Result<Option<T>, TableError>
    where
        T: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, TableError>>,
    {
        if let Some(value) = self.lookup::<T>(&key) {
            return Ok(Some(value));
        }
        let forgets_before = self.forgets().count;
        let value = read().await?;
        if let Some(found) = &value
            && !self.forgets().touched_since(forgets_before, &key)
        {
            self.keep(key, found);
        }
        Ok(value)
    }

    /// Forgets every record whose key starts with `prefix` (a write replaced one of them).
    pub(crate) fn forget(&self, prefix: &str) {
        {
            let mut forgets = self.forgets();
            forgets.count += 1;
            let number = forgets.count;
            if forgets.recent.len() == FORGETS_KEPT {
                forgets.recent.pop_front();
            }
            forgets.recent.push_back((number, prefix.to_owned()));
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|key, _| !key.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    async fn read_counted(cache: &SettingsCache, key: &str, reads: &AtomicU32) -> u32 {
        cache
            .get_or_read(key.to_owned(), || async { Ok::<_, TableError>(reads.fetch_add(1, Ordering::SeqCst) + 1) })
            .await
            .expect("read")
    }

    #[tokio::test]
    async fn a_fresh_record_is_read_once_and_a_forgotten_one_again() {
        let cache = SettingsCache::new(Duration::from_secs(60));
        let reads = AtomicU32::new(0);
        assert_eq!(read_counted(&cache, "RETAILER#1/STORE#2", &reads).await, 1);
        assert_eq!(read_counted(&cache, "RETAILER#1/STORE#2", &reads).await, 1);
        cache.forget("RETAILER#1/");
        assert_eq!(read_counted(&cache, "RETAILER#1/STORE#2", &reads).await, 2);
    }

    #[tokio::test]
    async fn an_expired_record_is_read_again_and_a_zero_ttl_keeps_nothing() {
        let cache = SettingsCache::new(Duration::from_millis(20));
        let reads = AtomicU32::new(0);
        read_counted(&cache, "k", &reads).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(read_counted(&cache, "k", &reads).await, 2);
        let none = cache.with_ttl(Duration::ZERO);
        read_counted(&none, "k", &reads).await;
        assert_eq!(read_counted(&none, "k", &reads).await, 4);
    }

    #[tokio::test]
    async fn a_read_that_a_write_overtook_is_answered_but_not_kept() {
        let cache = SettingsCache::new(Duration::from_secs(60));
        let stale = cache
            .get_or_read("RETAILER#1/STORE#2".to_owned(), || async {
                // The write lands (and forgets) while this read is on its way.
                cache.forget("RETAILER#1/");
                Ok::<_, TableError>(1_u32)
            })
            .await;
        assert_eq!(stale.ok(), Some(1));
        let fresh = cache.get_or_read("RETAILER#1/STORE#2".to_owned(), || async { Ok::<_, TableError>(2_u32) }).await;
        assert_eq!(fresh.ok(), Some(2), "the overtaken answer was not kept");
        // A write elsewhere (another retailer) during a read does not stop it being kept.
        let kept = cache
            .get_or_read("RETAILER#1/STORE#3".to_owned(), || async {
                cache.forget("RETAILER#2/");
                Ok::<_, TableError>(3_u32)
            })
            .await;
        assert_eq!(kept.ok(), Some(3));
        let again = cache.get_or_read("RETAILER#1/STORE#3".to_owned(), || async { Ok::<_, TableError>(4_u32) }).await;
        assert_eq!(again.ok(), Some(3), "kept: no forget touched it");
    }

    #[tokio::test]
    async fn a_record_not_found_is_not_kept() {
        let cache = SettingsCache::new(Duration::from_secs(60));
        let missing = cache.get_or_read_found("STOREREF#9/STOREREF".to_owned(), || async { Ok(None::<u32>) }).await;
        assert_eq!(missing.ok(), Some(None));
        let made = cache.get_or_read_found("STOREREF#9/STOREREF".to_owned(), || async { Ok(Some(9_u32)) }).await;
        assert_eq!(made.ok(), Some(Some(9)), "the miss was asked again");
        let kept = cache.get_or_read_found("STOREREF#9/STOREREF".to_owned(), || async { Ok(Some(10_u32)) }).await;
        assert_eq!(kept.ok(), Some(Some(9)), "a found record is kept");
    }

    #[tokio::test]
    async fn errors_are_not_kept() {
        let cache = SettingsCache::new(Duration::from_secs(60));
        let failed: Result<u32, _> = cache
            .get_or_read("k".into(), || async {
                Err(TableError::Unavailable { operation: "GetItem", source: "down".into() })
            })
            .await;
        assert!(failed.is_err());
        let reads = AtomicU32::new(0);
        assert_eq!(read_counted(&cache, "k", &reads).await, 1);
    }
}
