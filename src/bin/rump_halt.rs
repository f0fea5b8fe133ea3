//! rump_halt
fn main() {}
