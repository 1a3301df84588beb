//! Reading event files for replay: an EventBridge event, a bare CloudTrail record, a CloudTrail
//! log file (`{"Records": [...]}`), a JSON array, or JSON lines of any of these; plain or gzip.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// One event read from a file, with a label that says where it came from (`file#index`).
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `path`, or `path#N` when the file holds several events (N counts from 0).
    pub label: String,
    /// The event as JSON.
    pub value: Value,
    /// What replay does with it on the embedded world.
    pub step: Step,
}

/// What replay does with one event on the embedded world. A story file separates when a
/// change happens from when its event is delivered by wrapping an event as
/// `{"replay": "apply", "event": {...}}` (the change happens now, its event comes later or
/// never) or `{"replay": "deliver", "event": {...}}` (the event arrives, its change is not
/// made again). Against AWS, `apply` entries are skipped: the change happened there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Make the change, then deliver the event (a plain event).
    Both,
    /// Make the change only.
    Apply,
    /// Deliver the event only.
    Deliver,
}

/// A file that could not be read or is not JSON of a known layout.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct InputError {
    /// The file (and record) at fault.
    pub path: String,
    /// What is wrong with it.
    pub problem: String,
}

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

/// Reads every event in one file (a gzip file inflated up to [`MAX_INFLATED`]).
pub fn load(path: &Path) -> Result<Vec<Loaded>, InputError> {
    load_bounded(path, MAX_INFLATED)
}

/// Reads every event in one file; a gzip file that inflates past `max_inflated` bytes is an
/// error naming the file and the bound.
pub fn load_bounded(path: &Path, max_inflated: u64) -> Result<Vec<Loaded>, InputError> {
    let raw = std::fs::read(path).map_err(|e| io_err(path, e))?;
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

/// Splits text into events; `name` labels them.
pub fn split(name: &str, text: &str) -> Result<Vec<Loaded>, InputError> {
    let err = |problem: String| InputError {
        path: name.to_string(),
        problem,
    };
    let values: Vec<Value> = match serde_json::from_str::<Value>(text) {
        Ok(v) => vec![v],
        Err(whole) => {
            // Not one JSON document: try JSON lines, naming the first bad line.
            let mut vs = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v = serde_json::from_str(line).map_err(|e| {
                    if i == 0 {
                        err(format!("not JSON: {whole}"))
                    } else {
                        err(format!("line {}: not JSON: {e}", i + 1))
                    }
                })?;
                vs.push(v);
            }
            if vs.is_empty() {
                return Err(err("empty file: no event in it".into()));
            }
            vs
        }
    };
    let mut events = Vec::new();
    for v in values {
        flatten(v, &mut events);
    }
    let many = events.len() > 1;
    events
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let label = if many {
                format!("{name}#{i}")
            } else {
                name.to_string()
            };
            let (step, value) = unwrap_step(value).map_err(|problem| InputError {
                path: label.clone(),
                problem,
            })?;
            Ok(Loaded { label, value, step })
        })
        .collect()
}

/// Reads a `{"replay": STEP, "event": EVENT}` wrapper; anything else is a plain event.
pub(crate) fn unwrap_step(v: Value) -> Result<(Step, Value), String> {
    let wrapped = v
        .as_object()
        .is_some_and(|o| o.len() == 2 && o.contains_key("replay") && o.contains_key("event"));
    if !wrapped {
        return Ok((Step::Both, v));
    }
    let Value::Object(mut o) = v else {
        return Ok((Step::Both, v));
    };
    let step = match o.get("replay").and_then(Value::as_str) {
        Some("apply") => Step::Apply,
        Some("deliver") => Step::Deliver,
        other => {
            return Err(format!(
                "`replay` is {}: it must be \"apply\" (make the change, deliver the event later) or \"deliver\" (deliver the event, change nothing)",
                other.map_or("not a string".to_string(), |s| format!("`{}`", crate::text::clean(s, 40)))
            ))
        }
    };
    Ok((step, o.remove("event").unwrap_or(Value::Null)))
}

/// Arrays and CloudTrail log files hold several events; anything else is one.
fn flatten(v: Value, out: &mut Vec<Value>) {
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out)),
        Value::Object(mut obj)
            if obj.len() == 1 && obj.get("Records").is_some_and(Value::is_array) =>
        {
            if let Some(Value::Array(records)) = obj.remove("Records") {
                out.extend(records);
            }
        }
        other => out.push(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_object_array_log_file_and_lines() {
        assert_eq!(split("a", r#"{"x":1}"#).unwrap().len(), 1);
        let arr = split("a", r#"[{"x":1},{"x":2}]"#).unwrap();
        assert_eq!(arr[1].label, "a#1");
        assert_eq!(
            split("a", r#"{"Records":[{"x":1},{"x":2},{"x":3}]}"#)
                .unwrap()
                .len(),
            3
        );
        let lines = split("a", "{\"x\":1}\n\n{\"Records\":[{\"y\":1}]}\n").unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].value["y"], 1);
    }

    #[test]
    fn a_story_step_says_when_a_change_happens_and_when_its_event_arrives() {
        let got = split(
            "s.json",
            r#"[{"replay":"apply","event":{"x":1}},{"replay":"deliver","event":{"x":2}},{"x":3}]"#,
        )
        .unwrap();
        let steps: Vec<(Step, i64)> = got
            .iter()
            .map(|l| (l.step, l.value["x"].as_i64().unwrap_or(0)))
            .collect();
        assert_eq!(
            steps,
            vec![(Step::Apply, 1), (Step::Deliver, 2), (Step::Both, 3)]
        );
        let e = split("s.json", r#"[{"x":1},{"replay":"later","event":{}}]"#).unwrap_err();
        assert_eq!(e.path, "s.json#1");
        assert!(e.problem.contains("`later`"), "{}", e.problem);
    }

    #[test]
    fn bad_input_names_the_place() {
        let e = split("f.json", "{\"x\":1}\n{oops\n").unwrap_err();
        assert_eq!(e.path, "f.json");
        assert!(e.problem.starts_with("line 2: not JSON"), "{}", e.problem);
        let e = split("f.json", "   \n").unwrap_err();
        assert!(e.problem.contains("empty"), "{}", e.problem);
        let e = split("f.json", "{\"x\":").unwrap_err();
        assert!(e.problem.starts_with("not JSON"), "{}", e.problem);
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
        assert_eq!(load_bounded(&path, 1 << 20).unwrap().len(), 200);
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
        let events = load(&path).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].value["eventName"], "B");
        std::fs::write(&path, [0x1f, 0x8b, 0, 1, 2]).unwrap();
        assert!(load(&path).unwrap_err().problem.contains("gzip"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
