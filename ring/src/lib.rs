//! ring crate (being written).
