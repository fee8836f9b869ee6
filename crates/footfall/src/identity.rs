//! Visitor identity (placeholder).
