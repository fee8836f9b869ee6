//! The write-behind buffer: requests hand hits over without waiting for the store; one
//! task flushes them in batches.
//!
//! Memory is bounded by the channel's capacity plus the one batch being flushed. When the
//! store is down, the flusher keeps retrying its batch (never one that may already have
//! been applied), the channel fills, and further hits are dropped with the reason
//! `buffer_full`, counted. A request never waits on the store.

use std::sync::Arc;
use std::time::Duration;

use footfall::clock::Clock;
use footfall::counter::{self, Hit};
use footfall::store::Store;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::metrics::{self as m, DropReason};
use crate::sites::Sites;
use crate::state::AppStore;

/// How the buffer flushes.
#[derive(Clone, Copy, Debug)]
pub struct BufferConfig {
    /// Most hits held waiting for the store.
    pub capacity: usize,
    /// Most hits in one store batch.
    pub batch_max: usize,
    /// Longest a hit waits before its batch is flushed.
    pub flush_interval: Duration,
    /// Longest the final flush may take at shutdown.
    pub shutdown_grace: Duration,
}

impl Default for BufferConfig {
    fn default() -> Self {
        BufferConfig {
            // 100,000 hits ≈ 10 MB: minutes of a provincial portal's peak while Redis
            // restarts.
            capacity: 100_000,
            // 1,000 hits per batch: Redis cost per hit is flat beyond a few hundred.
            batch_max: 1_000,
            // 100 ms: invisible to readers, and the most a crash can lose.
            flush_interval: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// The sending side, held by request handlers.
#[derive(Clone, Debug)]
pub struct HitBuffer {
    sender: mpsc::Sender<Hit>,
    capacity: usize,
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
}

/// The flushing task's state.
#[derive(Debug)]
pub struct Flusher {
    receiver: mpsc::Receiver<Hit>,
    store: Arc<AppStore>,
    sites: Arc<Sites>,
    clock: Arc<dyn Clock>,
    config: BufferConfig,
    shutdown: watch::Receiver<bool>,
}

/// Creates a buffer and its flusher. Run the flusher with [`Flusher::run`]; it returns
/// after `shutdown` turns true and the buffer is flushed (or the grace ran out).
pub fn channel(
    store: Arc<AppStore>,
    sites: Arc<Sites>,
    clock: Arc<dyn Clock>,
    config: BufferConfig,
    shutdown: watch::Receiver<bool>,
) -> (HitBuffer, Flusher) {
    let (sender, receiver) = mpsc::channel(config.capacity.max(1));
    (
        HitBuffer {
            sender,
            capacity: config.capacity.max(1),
        },
        Flusher {
            receiver,
            store,
            sites,
            clock,
            config,
            shutdown,
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
    /// Hits left unwritten at shutdown because the store did not come back in time.
    pub unflushed_at_shutdown: u64,
}

const RETRY_START: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Flusher {
    /// Flushes until shutdown; returns what it did.
    pub async fn run(mut self) -> FlushTotals {
        let mut totals = FlushTotals::default();
        let mut batch: Vec<Hit> = Vec::with_capacity(self.config.batch_max);
        let mut shutting_down = false;
        loop {
            if !shutting_down {
                shutting_down = self.fill(&mut batch).await;
                if shutting_down {
                    // Refuse new hits; what is queued still gets written.
                    self.receiver.close();
                }
            }
            if shutting_down {
                let room = self.config.batch_max - batch.len();
                if room > 0 {
                    self.receiver.recv_many(&mut batch, room).await;
                }
                if batch.is_empty() {
                    return totals;
                }
            }
            if batch.is_empty() {
                continue;
            }
            let deadline = shutting_down.then(|| Instant::now() + self.config.shutdown_grace);
            self.flush(&mut batch, &mut totals, deadline).await;
            if !batch.is_empty() {
                // Only at shutdown does a flush give up with hits in hand.
                totals.unflushed_at_shutdown += batch.len() as u64 + self.drain_count();
                m::hits_dropped(DropReason::ShuttingDown, totals.unflushed_at_shutdown);
                return totals;
            }
        }
    }

    /// Empties the queue, returning how many hits it held.
    fn drain_count(&mut self) -> u64 {
        let mut count = 0;
        while self.receiver.try_recv().is_ok() {
            count += 1;
        }
        count
    }

    /// Waits for hits until the batch is full or the flush interval after the first hit
    /// has passed. Returns true when shutdown was requested.
    async fn fill(&mut self, batch: &mut Vec<Hit>) -> bool {
        let room = self.config.batch_max - batch.len();
        if batch.is_empty() {
            tokio::select! {
                received = self.receiver.recv_many(batch, room) => {
                    if received == 0 {
                        return true;
                    }
                }
                _ = self.shutdown.wait_for(|stop| *stop) => return true,
            }
        }
        let deadline = tokio::time::sleep(self.config.flush_interval);
        tokio::pin!(deadline);
        while batch.len() < self.config.batch_max {
            let room = self.config.batch_max - batch.len();
            tokio::select! {
                received = self.receiver.recv_many(batch, room) => {
                    if received == 0 {
                        return true;
                    }
                }
                _ = &mut deadline => break,
                _ = self.shutdown.wait_for(|stop| *stop) => return true,
            }
        }
        false
    }

    /// Writes the batch, retrying failures that certainly did not apply. On return the
    /// batch is empty unless `deadline` passed first.
    async fn flush(
        &mut self,
        batch: &mut Vec<Hit>,
        totals: &mut FlushTotals,
        deadline: Option<Instant>,
    ) {
        let mut wait = RETRY_START;
        loop {
            let now = self.clock.now();
            let started = Instant::now();
            let result = record(&self.store, &self.sites, batch, now).await;
            m::store_operation("apply", started.elapsed(), result.is_ok());
            match result {
                Ok(unknown) => {
                    let written = batch.len() as u64 - unknown;
                    totals.written += written;
                    m::flushed(batch.len(), started.elapsed());
                    if unknown > 0 {
                        m::hits_dropped(DropReason::UnknownSite, unknown);
                    }
                    batch.clear();
                    return;
                }
                Err(error) if error_is_ambiguous(&error) => {
                    tracing::error!(error = %error, hits = batch.len(), "store write failed ambiguously; hits may be lost");
                    totals.possibly_lost += batch.len() as u64;
                    m::hits_dropped(DropReason::StoreAmbiguous, batch.len() as u64);
                    batch.clear();
                    return;
                }
                Err(error) => {
                    tracing::warn!(error = %error, hits = batch.len(), retry_in_ms = wait.as_millis() as u64, "store write failed; retrying");
                }
            }
            if deadline.is_some_and(|d| Instant::now() + wait > d) {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // At shutdown, stop waiting between retries only when the grace is over.
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => return,
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }
}

/// True unless the store certainly applied nothing. Only an unavailable store that never
/// received the batch is safe to retry; a rejected or partly applied batch (a script
/// error on one site of a cluster batch, say) may have counted some hits already, so it
/// is treated like an ambiguous failure: dropped and counted, never retried.
fn error_is_ambiguous(error: &footfall::Error) -> bool {
    !matches!(
        error,
        footfall::Error::Store(footfall::store::StoreError::Unavailable {
            ambiguous: false,
            ..
        })
    )
}

/// Plans and applies one batch; returns how many hits had no site.
async fn record(
    store: &AppStore,
    sites: &Sites,
    batch: &[Hit],
    now: jiff::Timestamp,
) -> Result<u64, footfall::Error> {
    // One consistent view of the registry for the whole batch.
    let registry = sites.snapshot();
    let plan = counter::plan(batch, |id| registry.get(id).map(|site| &site.rules), now);
    if !plan.batch.is_empty() {
        store.apply(&plan.batch).await?;
    }
    Ok(plan.unknown_site as u64)
}
