//! The `wavessm` binary.

fn main() -> std::process::ExitCode {
    wavessm::cli::main()
}
