//! The per-client rate limiter: governor's GCRA over a state store that tracks at most a
//! configured number of clients.
//!
//! governor's own keyed stores add every new key they are asked about, so a flood of
//! distinct sources grows them without bound, and the only way to bound them from
//! outside is to refuse everyone once they are full. This store keeps the clients it
//! already tracks working as usual and treats a new client as over its limit while the
//! store is full; the upkeep's pruning (`retain_recent`) frees clients idle for a whole
//! quota period.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use governor::clock::DefaultClock;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::{Quota, RateLimiter};

/// The service's limiter: one GCRA state per client key, at most `max_clients` of them.
pub type ClientRateLimiter = RateLimiter<IpAddr, BoundedStateStore<IpAddr>, DefaultClock>;

/// A limiter allowing `quota` per client, tracking at most `max_clients` clients.
pub fn client_rate_limiter(quota: Quota, max_clients: usize) -> ClientRateLimiter {
    RateLimiter::new(
        quota,
        BoundedStateStore::new(max_clients),
        DefaultClock::default(),
    )
}

/// GCRA states by key (each a theoretical arrival time in nanoseconds from the limiter's
/// start; 0 before the first decision), at most `max_keys` of them.
#[derive(Debug)]
pub struct BoundedStateStore<K: Hash + Eq> {
    states: DashMap<K, AtomicU64>,
    max_keys: usize,
}

impl<K: Hash + Eq> BoundedStateStore<K> {
    /// An empty store for at most `max_keys` keys (at least one).
    pub fn new(max_keys: usize) -> Self {
        BoundedStateStore {
            states: DashMap::new(),
            max_keys: max_keys.max(1),
        }
    }
}

/// A theoretical arrival time so far ahead that GCRA refuses every request measured
/// against it: what a client the full store cannot track is measured against.
const EXHAUSTED: u64 = u64::MAX;

impl<K: Hash + Eq + Clone> StateStore for BoundedStateStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, decide: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let state = match self.states.get(key) {
            Some(state) => state,
            None => {
                // Concurrent inserts may pass this check together and overshoot the bound
                // by at most the number of requests in flight.
                if self.states.len() >= self.max_keys {
                    return decide(Some(Nanos::from(EXHAUSTED))).map(|(outcome, _)| outcome);
                }
                self.states
                    .entry(key.clone())
                    .or_insert_with(|| AtomicU64::new(0))
                    .downgrade()
            }
        };
        // Decide on the state as read, and store the new one only if nobody changed it
        // meanwhile; otherwise decide again on what they stored.
        let mut current = state.load(Ordering::Acquire);
        loop {
            let previous = (current != 0).then(|| Nanos::from(current));
            let (outcome, next) = decide(previous)?;
            match state.compare_exchange_weak(
                current,
                next.as_u64(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(outcome),
                Err(stored) => current = stored,
            }
        }
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStateStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        let drop_below = drop_below.as_u64();
        self.states
            .retain(|_, state| state.load(Ordering::Acquire) >= drop_below);
    }

    fn shrink_to_fit(&self) {
        self.states.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    fn is_empty(&self) -> bool {
        self.states.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use std::time::Duration;

    use governor::clock::FakeRelativeClock;
    use governor::middleware::NoOpMiddleware;

    use super::*;

    type TestLimiter =
        RateLimiter<u32, BoundedStateStore<u32>, FakeRelativeClock, NoOpMiddleware<Nanos>>;

    fn limiter(per_minute: u32, max_clients: usize) -> (TestLimiter, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let quota = Quota::per_minute(NonZeroU32::new(per_minute).unwrap());
        let limiter = RateLimiter::new(quota, BoundedStateStore::new(max_clients), clock.clone());
        (limiter, clock)
    }

    #[test]
    fn each_client_gets_its_quota() {
        let (limiter, clock) = limiter(2, 10);
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&1).is_err(), "a third within the minute");
        assert!(
            limiter.check_key(&2).is_ok(),
            "another client has its own budget"
        );
        // Half a minute later one request's worth has come back.
        clock.advance(Duration::from_secs(30));
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&1).is_err());
    }

    #[test]
    fn when_full_known_clients_keep_working_and_new_ones_are_refused_untracked() {
        let (limiter, clock) = limiter(2, 2);
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&2).is_ok());
        for client in 3..100 {
            assert!(limiter.check_key(&client).is_err(), "client {client}");
        }
        assert_eq!(limiter.len(), 2, "refused clients are not tracked");
        assert!(
            limiter.check_key(&1).is_ok(),
            "a known client within its quota"
        );
        assert!(limiter.check_key(&1).is_err(), "…and still limited");

        // Once their budgets have fully come back, pruning frees their places.
        clock.advance(Duration::from_secs(120));
        limiter.retain_recent();
        assert_eq!(limiter.len(), 0);
        assert!(limiter.check_key(&3).is_ok());
    }

    #[test]
    fn pruning_keeps_clients_that_are_still_limited() {
        let (limiter, clock) = limiter(2, 10);
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&1).is_ok());
        assert!(limiter.check_key(&2).is_ok());
        clock.advance(Duration::from_secs(10));
        limiter.retain_recent();
        // Forgetting client 1 now would hand it a fresh budget.
        assert!(limiter.check_key(&1).is_err());
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn concurrent_decisions_never_exceed_the_quota() {
        let (limiter, _clock) = limiter(1000, 10);
        let limiter = Arc::new(limiter);
        let allowed: usize = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let limiter = Arc::clone(&limiter);
                    scope.spawn(move || (0..1000).filter(|_| limiter.check_key(&7).is_ok()).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(
            allowed, 1000,
            "the clock stands still: exactly the burst is allowed"
        );
    }
}
