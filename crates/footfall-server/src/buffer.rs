//! The write-behind buffer: requests hand hits over without waiting for the store; one
//! task takes them in batches and keeps the store writing.
//!
//! # Keeping up
//!
//! The flusher takes every hit waiting, up to [`BufferConfig::batch_max`], as one batch:
//! when less than a batch is waiting it lets one flush interval gather more, and when it
//! is behind it takes a full batch at once. A batch is aggregated per site and day before
//! it reaches the store (one increment per counter, each visitor once per sketch), so the
//! deeper the queue, the cheaper each hit. Up to [`BufferConfig::max_in_flight`] batches
//! are written at a time (the store's own default: four on Redis, whose connections
//! pipeline them; two on the embedded store, where the next batch is planned while the
//! last one commits), so planning, the network and the store work side by side. A batch
//! is taken only once a slot is free, so while the store lags the backlog gathers into
//! the next batch instead of many small ones.
//!
//! # When the store cannot
//!
//! Memory is bounded by the channel's capacity plus the batches in flight. When the store
//! is down, each batch retries what certainly did not apply (never one that may already
//! have been applied: increments are not idempotent), the channel fills, and further hits
//! are dropped with the reason `buffer_full`, counted. A request never waits on the
//! store. Readiness turns false at half the capacity (see [`HitBuffer::is_backed_up`]),
//! before anything is dropped, so a load balancer can move traffic away.
//!
//! At shutdown the channel is closed, everything in it is written, and the whole stop is
//! bounded by [`BufferConfig::shutdown_grace`]: retries stop at the deadline whatever the
//! store does, and what was not written is logged and counted (`shutting_down`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use footfall::clock::Clock;
use footfall::counter::{self, Hit};
use footfall::store::Store;
use jiff::Timestamp;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::metrics::{self as m, DropReason};
use crate::sites::Sites;
use crate::store::AppStore;

/// How the buffer flushes.
#[derive(Clone, Copy, Debug)]
pub struct BufferConfig {
    /// Most hits held waiting for the store.
    pub capacity: usize,
    /// Most hits in one store batch.
    pub batch_max: usize,
    /// Longest a hit waits for company before its batch is written.
    pub flush_interval: Duration,
    /// Longest the stop may take to write what is buffered.
    pub shutdown_grace: Duration,
    /// Most batches being written at once; `None`: the store's own choice
    /// ([`AppStore::concurrent_batches`]).
    pub max_in_flight: Option<usize>,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            // 100,000 hits ≈ 10 MB: minutes of a provincial portal's peak while Redis
            // restarts.
            capacity: 100_000,
            // 20,000 hits: a fifth of the buffer, so a backlog drains in a few large
            // batches (the cost per hit falls as a batch gets more hits per site), while
            // one batch stays a few megabytes and a Redis pipeline of it well under the
            // store timeout.
            batch_max: 20_000,
            // 100 ms: invisible to readers, and the most a crash can lose.
            flush_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(10),
            max_in_flight: None,
        }
    }
}

/// The buffer is "backed up" (not ready) from this share of its capacity on.
const BACKED_UP_SHARE: f64 = 0.5;

/// The sending side, held by request handlers.
#[derive(Clone, Debug)]
pub struct HitBuffer {
    sender: mpsc::Sender<Hit>,
    capacity: usize,
    progress: Arc<Progress>,
}

/// What the flusher has taken and not yet finished writing, for the lag.
#[derive(Debug, Default)]
struct Progress {
    next_batch: AtomicU64,
    /// The oldest hit of each batch taken and not yet written, by batch number.
    pending: Mutex<BTreeMap<u64, Timestamp>>,
}

impl Progress {
    fn start(&self, oldest: Timestamp) -> u64 {
        let id = self.next_batch.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, oldest);
        id
    }

    fn finish(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn oldest(&self) -> Option<Timestamp> {
        self.lock().values().min().copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Timestamp>> {
        // One insert or remove at a time: a poisoned map is consistent.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HitBuffer {
    /// Queues a hit, or says why it was dropped.
    pub fn push(&self, hit: Hit) -> Result<(), DropReason> {
        match self.sender.try_send(hit) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => Err(DropReason::BufferFull),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(DropReason::ShuttingDown),
        }
    }

    /// Hits waiting.
    pub fn depth(&self) -> usize {
        self.capacity - self.sender.capacity()
    }

    /// The bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// True from half the capacity on: the store is not keeping up, and an instance in
    /// this state says it is not ready, well before it has to drop hits.
    pub fn is_backed_up(&self) -> bool {
        self.depth() as f64 >= self.capacity as f64 * BACKED_UP_SHARE
    }

    /// The flusher's lag at `now`: the age of the oldest hit taken from the buffer and not
    /// yet written (zero when it has nothing in hand). Hits still in the channel are
    /// younger than that, since it is first in, first out.
    pub fn lag(&self, now: Timestamp) -> Duration {
        self.progress
            .oldest()
            .and_then(|oldest| now.duration_since(oldest).try_into().ok())
            .unwrap_or_default()
    }
}

/// The flushing task's state.
#[derive(Debug)]
pub struct Flusher {
    receiver: mpsc::Receiver<Hit>,
    store: Arc<AppStore>,
    sites: Arc<Sites>,
    clock: Arc<dyn Clock>,
    config: BufferConfig,
    /// The stop's deadline, once the stop begins.
    shutdown: watch::Receiver<Option<Instant>>,
    progress: Arc<Progress>,
}

/// Creates a buffer and its flusher. Run the flusher with [`Flusher::run`]; it returns
/// after `shutdown` gives the stop's deadline and the buffer is flushed (or the deadline
/// passed).
pub fn channel(
    store: Arc<AppStore>,
    sites: Arc<Sites>,
    clock: Arc<dyn Clock>,
    config: BufferConfig,
    shutdown: watch::Receiver<Option<Instant>>,
) -> (HitBuffer, Flusher) {
    let (sender, receiver) = mpsc::channel(config.capacity.max(1));
    let progress = Arc::new(Progress::default());
    (
        HitBuffer {
            sender,
            capacity: config.capacity.max(1),
            progress: Arc::clone(&progress),
        },
        Flusher {
            receiver,
            store,
            sites,
            clock,
            config,
            shutdown,
            progress,
        },
    )
}

/// What a flusher did over its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlushTotals {
    /// Hits written.
    pub written: u64,
    /// Hits dropped after an ambiguous store failure (possibly written).
    pub possibly_lost: u64,
    /// Hits left unwritten at shutdown because the store did not come back in time
    /// (including batches still being written when the grace ran out, which may or may
    /// not have been applied).
    pub unflushed_at_shutdown: u64,
    /// Hits whose site was deleted before they were written.
    pub unknown_site: u64,
    /// Hits held back so long (a store down for more than a day) that their day was
    /// closed.
    pub too_old: u64,
    /// Batches taken from the buffer.
    pub batches: u64,
}

impl FlushTotals {
    fn add(&mut self, other: FlushTotals) {
        self.written += other.written;
        self.possibly_lost += other.possibly_lost;
        self.unflushed_at_shutdown += other.unflushed_at_shutdown;
        self.unknown_site += other.unknown_site;
        self.too_old += other.too_old;
        self.batches += other.batches;
    }
}

const RETRY_START: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// The shared parts a batch's writer needs.
#[derive(Clone, Debug)]
struct Writer {
    store: Arc<AppStore>,
    sites: Arc<Sites>,
    clock: Arc<dyn Clock>,
    progress: Arc<Progress>,
    /// Set once shutdown begins: the instant after which no retry starts.
    deadline: watch::Receiver<Option<Instant>>,
    /// Hits in batches being written, to count what a cut-off stop leaves behind.
    in_flight_hits: Arc<AtomicU64>,
}

impl Flusher {
    /// How many batches may be written at once.
    fn max_in_flight(&self) -> usize {
        self.config
            .max_in_flight
            .unwrap_or_else(|| self.store.concurrent_batches())
            .max(1)
    }

    /// Flushes until shutdown; returns what it did.
    pub async fn run(mut self) -> FlushTotals {
        let mut totals = FlushTotals::default();
        let slots = Arc::new(Semaphore::new(self.max_in_flight()));
        let (deadline_tx, deadline_rx) = watch::channel(None);
        let writer = Writer {
            store: Arc::clone(&self.store),
            sites: Arc::clone(&self.sites),
            clock: Arc::clone(&self.clock),
            progress: Arc::clone(&self.progress),
            deadline: deadline_rx,
            in_flight_hits: Arc::new(AtomicU64::new(0)),
        };
        let mut tasks: JoinSet<FlushTotals> = JoinSet::new();
        loop {
            while let Some(done) = tasks.try_join_next() {
                totals.add(done.unwrap_or_default());
            }
            // A free slot first, then the batch: while every slot is busy (the store is
            // slower than the traffic) hits gather in the channel, and the batch taken
            // when a slot frees up is as large as the backlog allows.
            let slot = tokio::select! {
                slot = Arc::clone(&slots).acquire_owned() => slot,
                _ = self.shutdown.wait_for(Option::is_some) => break,
            };
            let Ok(slot) = slot else { break };
            let Some(batch) = self.next_batch().await else {
                break;
            };
            let writer = writer.clone();
            tasks.spawn(async move {
                let _slot = slot;
                writer.write(batch).await
            });
        }

        // Shutdown: refuse new hits, write what is queued, all by the stop's deadline.
        let deadline = self
            .shutdown
            .borrow()
            .unwrap_or_else(|| Instant::now() + self.config.shutdown_grace);
        deadline_tx.send_replace(Some(deadline));
        self.receiver.close();
        let mut left_behind = 0u64;
        loop {
            let mut batch = Vec::new();
            self.receiver
                .recv_many(&mut batch, self.config.batch_max.max(1))
                .await;
            if batch.is_empty() {
                break;
            }
            let slot = tokio::time::timeout_at(deadline, Arc::clone(&slots).acquire_owned()).await;
            let Ok(Ok(slot)) = slot else {
                left_behind += batch.len() as u64 + self.drain_count();
                break;
            };
            let writer = writer.clone();
            tasks.spawn(async move {
                let _slot = slot;
                writer.write(batch).await
            });
        }
        loop {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(Some(done)) => totals.add(done.unwrap_or_default()),
                Ok(None) => break,
                Err(_) => {
                    // The grace is over: whatever is still being written may or may not
                    // reach the store; stop waiting for it.
                    tasks.abort_all();
                    left_behind += writer.in_flight_hits.swap(0, Ordering::SeqCst);
                    break;
                }
            }
        }
        m::hits_dropped(DropReason::ShuttingDown, left_behind);
        totals.unflushed_at_shutdown += left_behind;
        if totals.unflushed_at_shutdown > 0 {
            tracing::error!(
                hits = totals.unflushed_at_shutdown,
                grace_ms = self.config.shutdown_grace.as_millis() as u64,
                "stopping with hits not written: the store did not take them within the shutdown grace"
            );
        }
        totals
    }

    /// The next batch: every hit waiting, up to the batch bound, after waiting one flush
    /// interval for company when less than a batch is waiting. `None` once shutdown
    /// begins (what is then queued is the stop's to write).
    async fn next_batch(&mut self) -> Option<Vec<Hit>> {
        let batch_max = self.config.batch_max.max(1);
        let mut batch = Vec::new();
        tokio::select! {
            received = self.receiver.recv_many(&mut batch, batch_max) => {
                if received == 0 {
                    return None;
                }
            }
            _ = self.shutdown.wait_for(Option::is_some) => return None,
        }
        if batch.len() + self.receiver.len() < batch_max {
            // Less than a batch waiting: let the interval gather more, with one timer
            // rather than a wake-up per hit.
            tokio::select! {
                () = tokio::time::sleep(self.config.flush_interval) => {}
                _ = self.shutdown.wait_for(Option::is_some) => {}
            }
            while batch.len() < batch_max {
                match self.receiver.try_recv() {
                    Ok(hit) => batch.push(hit),
                    Err(_) => break,
                }
            }
        }
        Some(batch)
    }

    /// Empties the queue, returning how many hits it held.
    fn drain_count(&mut self) -> u64 {
        let mut count = 0;
        while self.receiver.try_recv().is_ok() {
            count += 1;
        }
        count
    }
}

impl Writer {
    /// Plans and writes one batch, retrying failures that certainly did not apply until
    /// it is written or the shutdown deadline passes; returns what became of its hits.
    async fn write(self, hits: Vec<Hit>) -> FlushTotals {
        let n_hits = hits.len() as u64;
        let Some(first) = hits.first() else {
            return FlushTotals::default();
        };
        let batch_id = self.progress.start(first.at);
        self.in_flight_hits.fetch_add(n_hits, Ordering::SeqCst);
        let totals = self.plan_and_apply(hits).await;
        self.in_flight_hits.fetch_sub(n_hits, Ordering::SeqCst);
        self.progress.finish(batch_id);
        totals
    }

    async fn plan_and_apply(&self, hits: Vec<Hit>) -> FlushTotals {
        let n_hits = hits.len() as u64;
        let mut totals = FlushTotals {
            batches: 1,
            ..FlushTotals::default()
        };
        // Planning is CPU work proportional to the batch: off the async workers.
        let registry = self.sites.snapshot();
        let now = self.clock.now();
        let planned = tokio::task::spawn_blocking(move || {
            counter::plan(&hits, |id| registry.get(id).map(|site| &site.rules), now)
        })
        .await;
        let plan = match planned {
            Ok(plan) => plan,
            Err(error) => {
                tracing::error!(error = %error, hits = n_hits, "planning a batch failed; its hits are lost");
                totals.possibly_lost = n_hits;
                m::hits_dropped(DropReason::StoreAmbiguous, n_hits);
                return totals;
            }
        };
        totals.unknown_site = plan.unknown_site as u64;
        totals.too_old = plan.too_old as u64;
        m::hits_dropped(DropReason::UnknownSite, totals.unknown_site);
        if totals.too_old > 0 {
            tracing::warn!(
                hits = totals.too_old,
                "dropping hits held back past the end of the day after theirs"
            );
            m::hits_dropped(DropReason::TooOld, totals.too_old);
        }
        let to_write = n_hits - totals.unknown_site - totals.too_old;
        if plan.batch.is_empty() {
            return totals;
        }
        let mut wait = RETRY_START;
        let mut deadline = self.deadline.clone();
        loop {
            let started = Instant::now();
            let result = self.store.apply(&plan.batch).await;
            m::store_operation("apply", started.elapsed(), result.is_ok());
            let error = match result {
                Ok(_) => {
                    m::flushed(to_write as usize, started.elapsed());
                    totals.written = to_write;
                    return totals;
                }
                Err(error) if error_is_ambiguous(&error) => {
                    tracing::error!(error = %error, hits = to_write, "store write failed ambiguously; hits may be lost");
                    m::hits_dropped(DropReason::StoreAmbiguous, to_write);
                    totals.possibly_lost = to_write;
                    return totals;
                }
                Err(error) => error,
            };
            let stop_at = *deadline.borrow();
            if stop_at.is_some_and(|at| Instant::now() + wait > at) {
                // Stopping, and the store is still refusing.
                tracing::warn!(error = %error, hits = to_write, "store write failed; no time left to retry before stopping");
                m::hits_dropped(DropReason::ShuttingDown, to_write);
                return FlushTotals {
                    unflushed_at_shutdown: to_write,
                    ..totals
                };
            }
            tracing::warn!(error = %error, hits = to_write, retry_in_ms = wait.as_millis() as u64, "store write failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                // A stop beginning while waiting re-checks the deadline at once.
                _ = deadline.changed(), if stop_at.is_none() => {}
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }
}

/// True unless the store certainly applied nothing. Only an unavailable store that never
/// received the batch is safe to retry; a rejected or partly applied batch (a script
/// error on one site of a cluster batch, say) may have counted some hits already, so it
/// is treated like an ambiguous failure: dropped and counted, never retried.
fn error_is_ambiguous(error: &footfall::store::StoreError) -> bool {
    !matches!(
        error,
        footfall::store::StoreError::Unavailable {
            ambiguous: false,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use footfall::SiteId;
    use footfall::clock::ManualClock;
    use footfall::identity::VisitorId;
    use footfall::store::conformance::fixtures;
    use footfall::store::{AnyStore, MemoryStore};

    use super::*;
    use crate::sites::{Site, SiteSettings};

    fn at() -> Timestamp {
        "2026-11-30T03:00:00Z".parse().expect("a timestamp")
    }

    fn setup(config: BufferConfig) -> (HitBuffer, Flusher, watch::Sender<Option<Instant>>) {
        let sites = Sites::new(["caukee", "soyte"].map(|id| {
            Site::from_settings(SiteSettings::new(id, &["example.vn"]), id).expect("a site")
        }));
        let (stop, stop_rx) = watch::channel(None);
        let (buffer, flusher) = channel(
            Arc::new(AnyStore::Memory(MemoryStore::new())),
            Arc::new(sites),
            Arc::new(ManualClock::new(at())),
            config,
            stop_rx,
        );
        (buffer, flusher, stop)
    }

    fn hit(n: u32) -> Hit {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_le_bytes());
        let site = SiteId::new(if n.is_multiple_of(3) {
            "soyte"
        } else {
            "caukee"
        })
        .expect("a site id");
        fixtures::hit(&site, at(), VisitorId::from_bytes(id))
    }

    /// A backlog (hits queued while the flusher was not running, as while a store is
    /// paused) is written in as few batches as the bound allows, not in interval-sized
    /// sips.
    #[tokio::test(start_paused = true)]
    async fn a_backlog_drains_in_full_batches() {
        let config = BufferConfig {
            capacity: 100_000,
            batch_max: 20_000,
            ..BufferConfig::default()
        };
        let (buffer, flusher, stop) = setup(config);
        for n in 0..45_000 {
            buffer.push(hit(n)).expect("room in the buffer");
        }
        let running = tokio::spawn(flusher.run());
        while buffer.depth() > 0 || buffer.lag(at()) > Duration::ZERO {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send_replace(Some(Instant::now() + Duration::from_secs(1)));
        let totals = running.await.expect("the flusher ends");
        assert_eq!(totals.written, 45_000);
        assert_eq!(totals.batches, 3, "{totals:?}");
        assert_eq!(totals.unflushed_at_shutdown, 0);
    }

    /// A trickle waits one flush interval for company: many hits, one batch.
    #[tokio::test(start_paused = true)]
    async fn a_trickle_is_gathered_for_one_interval() {
        let (buffer, flusher, stop) = setup(BufferConfig::default());
        let running = tokio::spawn(flusher.run());
        for n in 0..50 {
            buffer.push(hit(n)).expect("room in the buffer");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.send_replace(Some(Instant::now() + Duration::from_secs(1)));
        let totals = running.await.expect("the flusher ends");
        assert_eq!((totals.written, totals.batches), (50, 1), "{totals:?}");
    }

    /// Hits queued when the stop begins are written by the stop, and new ones are refused.
    #[tokio::test(start_paused = true)]
    async fn the_stop_writes_what_is_queued_and_refuses_the_rest() {
        let (buffer, flusher, stop) = setup(BufferConfig {
            flush_interval: Duration::from_secs(60),
            ..BufferConfig::default()
        });
        let running = tokio::spawn(flusher.run());
        for n in 0..100 {
            buffer.push(hit(n)).expect("room in the buffer");
        }
        tokio::task::yield_now().await;
        stop.send_replace(Some(Instant::now() + Duration::from_secs(1)));
        let totals = running.await.expect("the flusher ends");
        assert_eq!(totals.written, 100, "{totals:?}");
        assert_eq!(buffer.push(hit(1)), Err(DropReason::ShuttingDown));
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_hit_in_hand() {
        let (buffer, _flusher, _stop) = setup(BufferConfig::default());
        assert_eq!(buffer.lag(at()), Duration::ZERO);
        let first = buffer.progress.start(at());
        let second = buffer
            .progress
            .start(at() + jiff::SignedDuration::from_secs(2));
        let later = at() + jiff::SignedDuration::from_secs(5);
        assert_eq!(buffer.lag(later), Duration::from_secs(5));
        buffer.progress.finish(first);
        assert_eq!(buffer.lag(later), Duration::from_secs(3));
        buffer.progress.finish(second);
        assert_eq!(buffer.lag(later), Duration::ZERO);
    }

    #[test]
    fn backed_up_from_half_the_capacity() {
        let (buffer, _flusher, _stop) = setup(BufferConfig {
            capacity: 10,
            ..BufferConfig::default()
        });
        for n in 0..5 {
            assert!(!buffer.is_backed_up());
            buffer.push(hit(n)).expect("room in the buffer");
        }
        assert!(buffer.is_backed_up());
    }
}
