//! `ecr-tag-guard`: the Lambda when `AWS_LAMBDA_RUNTIME_API` is set, the CLI otherwise.

use std::process::ExitCode;

fn main() -> ExitCode {
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    ecr_tag_guard::logging::init_logging(lambda);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if lambda {
        match rt.block_on(ecr_tag_guard::lambda::run()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    } else {
        command_line(&rt)
    }
}

/// The commands (the default build).
#[cfg(feature = "cli")]
fn command_line(rt: &tokio::runtime::Runtime) -> ExitCode {
    rt.block_on(ecr_tag_guard::cli::main())
}

/// A build without the command line (the Lambda's) says so when run outside Lambda.
#[cfg(not(feature = "cli"))]
fn command_line(_rt: &tokio::runtime::Runtime) -> ExitCode {
    eprintln!("error: this build is the Lambda's (built without the `cli` feature): it runs only under the Lambda runtime (AWS_LAMBDA_RUNTIME_API)");
    ExitCode::from(2)
}
