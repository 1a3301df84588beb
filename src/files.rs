//! What the commands are handed to read: files and folders walked (in name order, a trail's
//! layout recursively), plain or gzip, and standard input. The I/O beside the parsers: the
//! events a file holds are read by [`crate::events::input::split`], a log file's records by
//! `audit`'s scanner.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::events::input::{split, InputError, Loaded};

/// The name a directory's starting-state file has; [`expand`] leaves it out of the events.
pub const SCENARIO_FILE: &str = "scenario.json";

/// Expands files and directories into the list of event files, directories sorted by name
/// (only `.json`, `.jsonl`, `.ndjson` and `.gz` files, without [`SCENARIO_FILE`]).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    walk(paths, false)
}

/// [`expand`], directories recursively (a trail's layout on disk:
/// `AWSLogs/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/`): a directory's files by name, then its
/// subdirectories by name.
pub fn expand_all(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    walk(paths, true)
}

fn walk(paths: &[PathBuf], recursive: bool) -> Result<Vec<PathBuf>, InputError> {
    let mut out = Vec::new();
    for p in paths {
        if !p.is_dir() {
            out.push(p.clone());
            continue;
        }
        let entries = std::fs::read_dir(p).map_err(|e| io_err(p, e))?;
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        out.extend(
            children
                .iter()
                .filter(|f| f.is_file() && is_event_file(f))
                .cloned(),
        );
        if recursive {
            let dirs: Vec<PathBuf> = children.into_iter().filter(|c| c.is_dir()).collect();
            out.extend(walk(&dirs, true)?);
        }
    }
    Ok(out)
}

fn is_event_file(f: &Path) -> bool {
    let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name != SCENARIO_FILE
        && [".json", ".jsonl", ".ndjson", ".gz"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

fn io_err(p: &Path, e: std::io::Error) -> InputError {
    InputError {
        path: p.display().to_string(),
        problem: e.to_string(),
    }
}

/// The most a gzip file may inflate to by default (1 GiB): a larger one is refused, not read.
pub const MAX_INFLATED: u64 = 1 << 30;

/// Reads every event in one file (`-`: standard input; a gzip file inflated up to
/// [`MAX_INFLATED`]), each record on its own (see [`split`]).
pub fn load(path: &Path) -> Result<Vec<Result<Loaded, InputError>>, InputError> {
    load_bounded(path, MAX_INFLATED)
}

/// Reads every event in one file; a gzip file that inflates past `max_inflated` bytes is an
/// error naming the file and the bound.
pub fn load_bounded(
    path: &Path,
    max_inflated: u64,
) -> Result<Vec<Result<Loaded, InputError>>, InputError> {
    let raw = if path == Path::new("-") {
        let mut raw = Vec::new();
        std::io::stdin()
            .lock()
            .take(max_inflated.saturating_add(1))
            .read_to_end(&mut raw)
            .map_err(|e| io_err(path, e))?;
        raw
    } else {
        std::fs::read(path).map_err(|e| io_err(path, e))?
    };
    let text = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut s = String::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .take(max_inflated.saturating_add(1))
            .read_to_string(&mut s)
            .map_err(|e| InputError {
                path: path.display().to_string(),
                problem: format!("not a readable gzip file of UTF-8 text: {e}"),
            })?;
        if s.len() as u64 > max_inflated {
            return Err(InputError {
                path: path.display().to_string(),
                problem: format!(
                    "inflates to more than {max_inflated} bytes: not read (a CloudTrail log file is far smaller)"
                ),
            });
        }
        s
    } else {
        String::from_utf8(raw).map_err(|e| InputError {
            path: path.display().to_string(),
            problem: format!("not UTF-8 text: {e}"),
        })?
    };
    split(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(got: Vec<Result<Loaded, InputError>>) -> Vec<Loaded> {
        got.into_iter().map(|r| r.expect("read")).collect()
    }

    #[test]
    fn gzip_inflation_is_bounded() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("etg-bomb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("big.json.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let line = format!("{{\"x\":\"{}\"}}\n", "a".repeat(1000));
        for _ in 0..200 {
            gz.write_all(line.as_bytes()).unwrap();
        }
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        assert_eq!(ok(load_bounded(&path, 1 << 20).unwrap()).len(), 200);
        let e = load_bounded(&path, 10_000).unwrap_err();
        assert!(e.problem.contains("more than 10000 bytes"), "{}", e.problem);
        assert!(e.path.ends_with("big.json.gz"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gzip_is_read() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("etg-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.json.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(br#"{"Records":[{"eventName":"A"},{"eventName":"B"}]}"#)
            .unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap();
        let events = ok(load(&path).unwrap());
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].value["eventName"], "B");
        std::fs::write(&path, [0x1f, 0x8b, 0, 1, 2]).unwrap();
        assert!(load(&path).unwrap_err().problem.contains("gzip"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
