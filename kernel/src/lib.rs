//! kernel crate (being written).
