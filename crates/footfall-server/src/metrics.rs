//! The service's metrics, named once here. Label values come only from the closed sets
//! below (drop reasons, operations, route templates), so the number of series is fixed.

use std::time::Duration;

/// Why a hit was not counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// A robot's User-Agent.
    Bot,
    /// A prefetch or prerender.
    Prefetch,
    /// `Origin`/`Referer` not among the site's hostnames (or absent).
    ForeignOrigin,
    /// The browser asked not to be tracked and the site respects it.
    DoNotTrack,
    /// Over the per-address rate limit.
    RateLimited,
    /// The write buffer is full (the store is slow or down).
    BufferFull,
    /// The service is shutting down.
    ShuttingDown,
    /// The store failed in a way that may or may not have written the hits.
    StoreAmbiguous,
    /// The site was removed between acceptance and flush.
    UnknownSite,
    /// No salt could be had from the store to derive the visitor id.
    SaltUnavailable,
    /// A `HEAD` request.
    Head,
}

impl DropReason {
    /// Every reason, for touching the series at start-up.
    pub const ALL: [DropReason; 11] = [
        DropReason::Bot,
        DropReason::Prefetch,
        DropReason::ForeignOrigin,
        DropReason::DoNotTrack,
        DropReason::RateLimited,
        DropReason::BufferFull,
        DropReason::ShuttingDown,
        DropReason::StoreAmbiguous,
        DropReason::UnknownSite,
        DropReason::SaltUnavailable,
        DropReason::Head,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Bot => "bot",
            DropReason::Prefetch => "prefetch",
            DropReason::ForeignOrigin => "foreign_origin",
            DropReason::DoNotTrack => "do_not_track",
            DropReason::RateLimited => "rate_limited",
            DropReason::BufferFull => "buffer_full",
            DropReason::ShuttingDown => "shutting_down",
            DropReason::StoreAmbiguous => "store_ambiguous",
            DropReason::UnknownSite => "unknown_site",
            DropReason::SaltUnavailable => "salt_unavailable",
            DropReason::Head => "head",
        }
    }
}

/// A hit accepted into the buffer.
pub fn hit_accepted() {
    metrics::counter!("footfall_hits_accepted_total").increment(1);
}

/// Hits dropped for `reason`.
pub fn hits_dropped(reason: DropReason, count: u64) {
    metrics::counter!("footfall_hits_dropped_total", "reason" => reason.as_str()).increment(count);
}

/// The buffer's current depth.
pub fn buffer_depth(depth: usize) {
    metrics::gauge!("footfall_buffer_hits").set(depth as f64);
}

/// A store operation's outcome and latency.
pub fn store_operation(operation: &'static str, took: Duration, ok: bool) {
    metrics::histogram!("footfall_store_operation_duration_seconds", "operation" => operation)
        .record(took.as_secs_f64());
    if !ok {
        metrics::counter!("footfall_store_errors_total", "operation" => operation).increment(1);
    }
}

/// A flushed batch.
pub fn flushed(hits: usize, took: Duration) {
    metrics::histogram!("footfall_flush_batch_hits").record(hits as f64);
    metrics::histogram!("footfall_flush_duration_seconds").record(took.as_secs_f64());
    metrics::counter!("footfall_hits_written_total").increment(hits as u64);
}

/// A counts read served from the cache (`hit`) or not.
pub fn cache_lookup(hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!("footfall_cache_lookups_total", "outcome" => outcome).increment(1);
}
