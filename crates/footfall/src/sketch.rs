//! Redis-compatible HyperLogLog (placeholder).
