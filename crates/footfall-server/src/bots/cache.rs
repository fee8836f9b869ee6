//! A small verdict cache for repeated User-Agents.
//!
//! Real traffic repeats a few hundred User-Agents (each browser release, each crawler), so
//! remembering recent verdicts turns most of them into a hash and a comparison. The cache is
//! direct-mapped: a fixed number of slots, each holding one User-Agent and its verdict,
//! chosen by a keyed hash; a new User-Agent simply replaces the slot's old one. Memory is
//! bounded by [`SLOTS`] × [`MAX_CACHED_LEN`] whatever clients send, nothing is evicted by a
//! scan, and slots are locked one by one, so threads rarely meet. The User-Agents stay in
//! memory only: never logged, counted or exported.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};

use super::kind::Verdict;

/// Slots in the cache: more than the distinct User-Agents a site sees in a busy minute,
/// small enough (at most 2 MiB with [`MAX_CACHED_LEN`]) to ignore.
const SLOTS: usize = 4096;

/// Longer User-Agents are judged each time: real browsers stay far below this, and it caps
/// what one slot can hold.
pub(super) const MAX_CACHED_LEN: usize = 512;

/// One remembered verdict.
struct Slot {
    hash: u64,
    user_agent: Box<str>,
    verdict: Verdict,
}

/// Recent verdicts, keyed by the whole User-Agent.
pub(super) struct VerdictCache {
    /// Keyed per process (SipHash), so a client cannot aim its User-Agents at one slot.
    hasher: RandomState,
    slots: Box<[Mutex<Option<Slot>>]>,
}

impl VerdictCache {
    pub(super) fn new() -> Self {
        VerdictCache {
            hasher: RandomState::new(),
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// The cached verdict on `user_agent`, or `judge`'s, which is then remembered.
    pub(super) fn get_or_judge(
        &self,
        user_agent: &str,
        judge: impl FnOnce(&str) -> Verdict,
    ) -> Verdict {
        if user_agent.len() > MAX_CACHED_LEN {
            return judge(user_agent);
        }
        let hash = self.hasher.hash_one(user_agent);
        // The modulo keeps the low bits, which SipHash spreads as well as the high ones.
        let slot = &self.slots[(hash % SLOTS as u64) as usize];
        // A poisoned slot only means a panic elsewhere while it was held; its content is a
        // whole entry or none, so it is still good.
        if let Some(cached) = slot.lock().unwrap_or_else(PoisonError::into_inner).as_ref()
            && cached.hash == hash
            && *cached.user_agent == *user_agent
        {
            return cached.verdict;
        }
        // Judged without holding the slot: another thread may judge the same User-Agent at
        // the same time, which costs a little work and no correctness.
        let verdict = judge(user_agent);
        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(Slot {
            hash,
            user_agent: user_agent.into(),
            verdict,
        });
        verdict
    }

    /// How many slots hold a verdict (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| {
                slot.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .is_some()
            })
            .count()
    }
}

impl std::fmt::Debug for VerdictCache {
    // No User-Agent is printed: they can help identify a person.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerdictCache")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::bots::kind::RobotKind;

    #[test]
    fn remembers_and_stays_bounded() {
        let cache = VerdictCache::new();
        let robot = Verdict::Robot(RobotKind::Other);
        assert_eq!(cache.get_or_judge("a/1", |_| robot), robot);
        // Cached: the judge is not asked again.
        assert_eq!(cache.get_or_judge("a/1", |_| panic!("judged twice")), robot);
        for n in 0..3 * SLOTS {
            cache.get_or_judge(&format!("client/{n}"), |_| Verdict::Human);
        }
        assert!(cache.len() <= SLOTS);
        // Too long to cache: judged every time.
        let long = "x".repeat(MAX_CACHED_LEN + 1);
        let mut judged = 0;
        for _ in 0..2 {
            cache.get_or_judge(&long, |_| {
                judged += 1;
                Verdict::Human
            });
        }
        assert_eq!(judged, 2);
    }
}
