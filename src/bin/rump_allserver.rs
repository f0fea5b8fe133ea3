//! rump_allserver
fn main() {}
