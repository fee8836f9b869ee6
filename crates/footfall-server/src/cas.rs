//! Read-modify-write of one store key over compare-and-swap, retried on a lost race:
//! how the registry and the audit log change documents several instances share.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use footfall::keys::Key;
use footfall::store::{Store, StoreError};
use jiff::Timestamp;

/// The most attempts of one read-modify-write. Admin edits are rare, so more than a few
/// lost races in a row means something is rewriting the key in a loop: give up and say
/// so rather than spin.
pub const MAX_CAS_ATTEMPTS: u32 = 12;

/// What one attempt of a [`read_modify_write`] decided.
#[derive(Debug)]
pub enum Step<T> {
    /// Write these bytes in place of what was read, then return the value.
    Write(Vec<u8>, T),
    /// Write nothing and return the value.
    Keep(T),
}

/// Why a [`read_modify_write`] failed.
#[derive(Debug)]
pub enum CasError<E> {
    /// The change function refused the current value.
    Rejected(E),
    /// The store failed.
    Store(StoreError),
    /// Every attempt lost the race against another writer.
    Contended {
        /// How many attempts were made.
        attempts: u32,
    },
}

impl<E> From<StoreError> for CasError<E> {
    fn from(error: StoreError) -> Self {
        CasError::Store(error)
    }
}

/// Reads `key`, lets `modify` decide on a new value, and writes it only if the key
/// still holds what was read; when another writer got there first, starts again from
/// its value, at most [`MAX_CAS_ATTEMPTS`] times, with a short random pause between
/// attempts so two instances racing do not stay in step.
///
/// `modify` runs once per attempt and must be a pure function of the value it is given.
pub async fn read_modify_write<S, T, E>(
    store: &S,
    key: &Key,
    now: Timestamp,
    modify: impl FnMut(Option<&[u8]>) -> Result<Step<T>, E>,
) -> Result<T, CasError<E>>
where
    S: Store + ?Sized,
{
    read_modify_write_pausing(store, key, now, backoff, modify).await
}

/// [`read_modify_write`] with the pause between attempts given (tests pass none, so
/// they never sleep).
pub(crate) async fn read_modify_write_pausing<S, T, E>(
    store: &S,
    key: &Key,
    now: Timestamp,
    pause: impl Fn(u32) -> Duration,
    mut modify: impl FnMut(Option<&[u8]>) -> Result<Step<T>, E>,
) -> Result<T, CasError<E>>
where
    S: Store + ?Sized,
{
    for attempt in 1..=MAX_CAS_ATTEMPTS {
        let current = store.get(key, now).await?;
        match modify(current.as_deref()).map_err(CasError::Rejected)? {
            Step::Keep(value) => return Ok(value),
            Step::Write(bytes, value) => {
                if store
                    .compare_and_swap(key, current.as_deref(), Some(&bytes), now)
                    .await?
                {
                    return Ok(value);
                }
            }
        }
        tracing::debug!(key = %key, attempt, "lost a compare-and-swap race; retrying");
        if attempt < MAX_CAS_ATTEMPTS {
            tokio::time::sleep(pause(attempt)).await;
        }
    }
    Err(CasError::Contended {
        attempts: MAX_CAS_ATTEMPTS,
    })
}

/// A random pause of up to 2^attempt ms (at most 64 ms): enough for the winner's write
/// to land, short enough that an admin request never waits long.
fn backoff(attempt: u32) -> Duration {
    let ceiling = 1u64 << attempt.min(6);
    // `RandomState` is seeded randomly per instance: jitter without a random-number crate.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    Duration::from_millis(1 + random % ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_short_and_bounded() {
        for attempt in 1..=MAX_CAS_ATTEMPTS {
            let pause = backoff(attempt);
            assert!(pause >= Duration::from_millis(1) && pause <= Duration::from_millis(65));
        }
    }
}
