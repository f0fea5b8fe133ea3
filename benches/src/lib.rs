//! Shared timing helpers for the micro-benchmarks.
