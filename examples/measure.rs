//! Runs a command and prints, as one JSON line, its wall time and peak RSS. Used by
//! `scripts/bench.py`: measuring from this small process keeps the bench's own (Python)
//! memory out of the child's peak RSS, which Linux would otherwise count from before `exec`.
//!
//! Usage: `cargo run --release --example measure -- COMMAND [ARGS...]`

use std::process::{Command, ExitCode};
use std::time::Instant;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        eprintln!("usage: measure COMMAND [ARGS...]");
        return ExitCode::from(2);
    };
    let start = Instant::now();
    let output = match Command::new(cmd).args(rest).output() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("measure: cannot run {cmd}: {e}");
            return ExitCode::from(2);
        }
    };
    let wall_ms = start.elapsed().as_secs_f64() * 1000.0;
    // SAFETY: getrusage only writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let max_rss_kb = match unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) } {
        0 => usage.ru_maxrss,
        _ => -1,
    };
    println!(
        "{}",
        serde_json::json!({
            "wall_ms": wall_ms,
            "max_rss_kb": max_rss_kb,
            "status": output.status.code(),
            "stdout": String::from_utf8_lossy(&output.stdout),
            "stderr": String::from_utf8_lossy(&output.stderr),
        })
    );
    ExitCode::SUCCESS
}
