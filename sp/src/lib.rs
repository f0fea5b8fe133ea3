//! sp crate (being written).
