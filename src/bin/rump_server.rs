//! rump_server
fn main() {}
