//! client crate (being written).
