//! Binary edge of `tfops`: argv[0] dispatch, argument parsing, exit codes.
//! Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    helm_tfops::cli::main_with_args(std::env::args_os().collect())
}
