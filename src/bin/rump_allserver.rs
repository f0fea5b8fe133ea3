//! The `rump_allserver` program (see `rump_server::entry`).

fn main() {
    rump_server::entry(rump_server::Program::AllServer)
}
