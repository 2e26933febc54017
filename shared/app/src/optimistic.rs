//! The one optimistic-update loop: read, apply a change, write on condition that nothing changed
//! since the read; on a conflict, all of it again, at most [`WRITE_ATTEMPTS`] times.

use crate::Failure;

/// How many times work that lost a race is read and tried again before giving up.
pub const WRITE_ATTEMPTS: usize = 5;

/// Runs `attempt` until it does not end in [`Failure::Conflict`], at most [`WRITE_ATTEMPTS`]
/// times; the last conflict is returned. Each attempt must read what it changes afresh.
///
/// (A closure returning a future rather than an async closure: the futures of async closures
/// are not yet provably `Send`, which every Lambda and the local server need.)
pub async fn retry_on_conflict<T, Attempt>(mut attempt: impl FnMut() -> Attempt) -> Result<T, Failure>
where
    Attempt: std::future::Future<Output = Result<T, Failure>>,
{
    let mut last = None;
    for _ in 0..WRITE_ATTEMPTS {
        match attempt().await {
            Err(Failure::Conflict(what)) => last = Some(what),
            other => return other,
        }
    }
    Err(Failure::Conflict(last.unwrap_or_default()))
}

/// A record as a read before the loop found it: the first attempt works on that copy, each later
/// one (after a conflict) reads it again.
pub(crate) struct AsFound<T>(std::sync::Mutex<Option<T>>);

impl<T> AsFound<T> {
    pub(crate) fn new(found: T) -> Self {
        Self(std::sync::Mutex::new(Some(found)))
    }

    /// The copy found, on the first call; afterwards what `read_again` reads (`None`: it is gone).
    pub(crate) async fn current<F>(&self, read_again: impl FnOnce() -> F) -> Result<Option<T>, Failure>
    where
        F: std::future::Future<Output = Result<Option<T>, Failure>>,
    {
        let first = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        match first {
            Some(found) => Ok(Some(found)),
            None => read_again().await,
        }
    }
}

/// Ids reserved on the first attempt and kept for the others: a request needs the same ids
/// whichever attempt wins.
pub(crate) async fn reserve_once<F>(
    reserved: &std::sync::OnceLock<std::ops::RangeInclusive<u64>>,
    reserve: impl FnOnce() -> F,
) -> Result<std::ops::RangeInclusive<u64>, Failure>
where
    F: std::future::Future<Output = Result<std::ops::RangeInclusive<u64>, Failure>>,
{
    if let Some(ids) = reserved.get() {
        return Ok(ids.clone());
    }
    let ids = reserve().await?;
    Ok(reserved.get_or_init(|| ids).clone())
}

/// For queued work: a conflict that outlasted every attempt is worth delivering again later,
/// saying what kept changing.
pub fn kept_changing(what: impl std::fmt::Display) -> impl FnOnce(Failure) -> Failure {
    move |failure| match failure {
        Failure::Conflict(_) => Failure::retryable(format!("{what} kept changing")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conflicts_are_retried_up_to_the_limit_and_other_outcomes_end_at_once() {
        let mut calls = 0;
        let outcome: Result<(), Failure> = retry_on_conflict(|| {
            calls += 1;
            async { Err(Failure::Conflict("shipment".into())) }
        })
        .await;
        assert!(matches!(outcome, Err(Failure::Conflict(what)) if what == "shipment"));
        assert_eq!(calls, WRITE_ATTEMPTS);

        let mut calls = 0;
        let outcome = retry_on_conflict(|| {
            calls += 1;
            let calls = calls;
            async move { if calls < 3 { Err(Failure::Conflict("order".into())) } else { Ok(calls) } }
        })
        .await;
        assert_eq!(outcome.ok(), Some(3));

        let mut calls = 0;
        let outcome: Result<(), Failure> = retry_on_conflict(|| {
            calls += 1;
            async { Err(Failure::retryable("down")) }
        })
        .await;
        assert!(matches!(outcome, Err(Failure::Retryable { .. })));
        assert_eq!(calls, 1);
    }
}
