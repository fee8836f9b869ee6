//! Conversions every part of the embedded store shares: redb's errors into the store's,
//! and instants into the nanoseconds records keep.

use jiff::Timestamp;

use crate::store::StoreError;

/// A redb failure, as the store reports it.
pub(super) fn backend(error: impl Into<redb::Error>) -> StoreError {
    let error: redb::Error = error.into();
    StoreError::Backend {
        message: error.to_string(),
        source: Some(Box::new(error)),
    }
}

/// An instant as records keep it: nanoseconds since the Unix epoch.
pub(super) fn nanos(at: Timestamp) -> i128 {
    at.as_nanosecond()
}
