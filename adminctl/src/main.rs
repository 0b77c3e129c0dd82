//! The `adminctl` binary (everything is in the library).

fn main() -> std::process::ExitCode {
    adminctl::main()
}
