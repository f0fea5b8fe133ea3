//! rump_server library (being written).
