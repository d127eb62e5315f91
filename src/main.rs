//! The `surety` binary: the command line only; the library does the work.

fn main() -> std::process::ExitCode {
    surety::cli::main()
}
