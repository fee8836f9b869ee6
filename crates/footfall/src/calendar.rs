//! Site calendars (placeholder).
