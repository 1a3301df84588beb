//! `ecr-tag-guard`: the Lambda when `AWS_LAMBDA_RUNTIME_API` is set, the CLI otherwise.

use std::process::ExitCode;

fn main() -> ExitCode {
    let lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    ecr_tag_guard::cli::init_logging(lambda);
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
        rt.block_on(ecr_tag_guard::cli::main())
    }
}
