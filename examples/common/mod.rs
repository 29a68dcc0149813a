//! What the examples share.

use std::process::ExitCode;

/// The exit of an example's `run`: the error's message (it names the file or value at
/// fault) rather than the `Debug` form that `main` returning `Result` prints.
pub fn exit(result: siamese::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
