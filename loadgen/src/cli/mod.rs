//! The binary's command line (declared by `main.rs`, not part of the library): the
//! arguments (`args`), what the subcommands share (`common`), the subcommands (`commands`).
//! May import the `loadgen` library; the library never imports it.

pub mod args;
pub mod commands;
pub mod common;
