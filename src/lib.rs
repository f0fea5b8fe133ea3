//! `rump_server`, `rump_allserver` and `rump.halt`: the programs around the kernel.
//!
//! One library, three thin binaries; every binary dispatches on the name it was started
//! under, so an installed `rump.halt` link to any of them works (Cargo cannot name a binary
//! with a dot). See ARCHITECTURE.md for the map.

pub mod cli;
pub mod components;
pub mod daemon;
pub mod disklabel;
pub mod drives;
pub mod drivespec;
pub mod extcomp;
pub mod fault;
pub mod halt;
pub mod hosterr;
pub mod hostfile;
pub mod listen;
pub mod loophost;
pub mod main_server;
pub mod server;
pub mod session;
pub mod sockin;

/// Which program to run when the name the binary was started under says nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Program {
    Server,
    AllServer,
    Halt,
}

/// Entry point of every binary: picks the program from `argv[0]`, else `default`.
pub fn entry(default: Program) -> ! {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let name = std::path::Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let program = match name.as_str() {
        "rump.halt" | "rump_halt" => Program::Halt,
        "rump_allserver" => Program::AllServer,
        "rump_server" => Program::Server,
        _ => default,
    };
    match program {
        Program::Halt => halt::main(),
        Program::Server => main_server::main(cli::Flavor::Minimal, "rump_server"),
        Program::AllServer => main_server::main(cli::Flavor::All, "rump_allserver"),
    }
}
