//! Property-based fuzzing of everything that reads outside input: events (every form replay
//! accepts), CloudTrail log files as `audit` reads them, registry items and rules, scenario
//! files, DynamoDB stream records. None may
//! panic, and an error names the input it is about. A short run is part of the test command;
//! `scripts/fuzz.sh MINUTES` runs them longer (set `PROPTEST_CASES`).

use std::path::Path;

use ecr_tag_guard::events::{self, input, stream};
use ecr_tag_guard::memory::Scenario;
use ecr_tag_guard::registry;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// Any JSON value, a few levels deep, with the keys and strings events and items use most.
fn json_value() -> impl Strategy<Value = Value> {
    let word = prop_oneof![
        Just("detail-type".to_string()),
        Just("detail".to_string()),
        Just("source".to_string()),
        Just("aws.ecr".to_string()),
        Just("eventName".to_string()),
        Just("PutImage".to_string()),
        Just("BatchDeleteImage".to_string()),
        Just("requestParameters".to_string()),
        Just("responseElements".to_string()),
        Just("imageIds".to_string()),
        Just("repository".to_string()),
        Just("tag".to_string()),
        Just("digest".to_string()),
        Just("Records".to_string()),
        Just("S".to_string()),
        Just("N".to_string()),
        "[a-zA-Z0-9:/._#-]{0,12}",
        any::<String>(),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        word.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// The project's own events, each with one field replaced by `v`.
fn mutated_events() -> impl Strategy<Value = Value> {
    let files: Vec<Value> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("events"))
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .filter(|p| !p.ends_with("scenario.json"))
                .flat_map(|p| ecr_tag_guard::files::load(&p).unwrap_or_default())
                .filter_map(|l| l.ok().map(|l| l.value))
                .collect()
        })
        .unwrap_or_default();
    let n = files.len().max(1);
    (0..n, json_value(), any::<u8>()).prop_map(move |(i, v, which)| {
        let mut ev = files.get(i).cloned().unwrap_or(Value::Null);
        mutate(&mut ev, v, which as usize);
        ev
    })
}

/// Replaces the `which`-th field met in a depth-first walk with `v`.
fn mutate(target: &mut Value, v: Value, which: usize) {
    fn walk(t: &mut Value, v: &mut Option<Value>, left: &mut usize) {
        let children: Vec<&mut Value> = match t {
            Value::Object(m) => m.values_mut().collect(),
            Value::Array(a) => a.iter_mut().collect(),
            _ => return,
        };
        for c in children {
            if v.is_none() {
                return;
            }
            if *left == 0 {
                *c = v.take().unwrap_or(Value::Null);
                return;
            }
            *left -= 1;
            walk(c, v, left);
        }
    }
    let mut left = which;
    walk(target, &mut Some(v), &mut left);
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn events_never_panic(v in prop_oneof![json_value(), mutated_events()]) {
        match events::parse(&v) {
            Ok(_) => {}
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn event_files_never_panic(text in prop_oneof![
        any::<String>(),
        json_value().prop_map(|v| v.to_string()),
        prop::collection::vec(json_value(), 0..4).prop_map(|vs| vs.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")),
    ]) {
        match input::split("fuzz.json", &text) {
            Ok(events) => {
                for e in events {
                    match e {
                        Ok(e) => {
                            let _ = events::parse(&e.value);
                        }
                        // A record that cannot be read names the file and its place in it.
                        Err(e) => prop_assert!(e.path.starts_with("fuzz.json"), "{}", e),
                    }
                }
            }
            Err(e) => prop_assert!(e.path.starts_with("fuzz.json"), "{}", e),
        }
    }

    #[test]
    fn audit_inputs_never_panic(
        records in prop::collection::vec(prop_oneof![json_value(), mutated_events()], 0..6),
        cut in any::<prop::sample::Index>(),
        noise in any::<Vec<u8>>(),
        gzip in any::<bool>(),
    ) {
        use ecr_tag_guard::audit::{scan::scan, Window};
        // A log file of these records, cut short somewhere, with bytes of noise after it.
        let text = json!({"Records": records}).to_string();
        let mut bytes = text.as_bytes()[..cut.index(text.len() + 1)].to_vec();
        bytes.extend_from_slice(&noise);
        if gzip {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).expect("gzip");
            bytes = gz.finish().expect("gzip");
        }
        let whole = scan("fuzz.json", text.as_bytes(), &Window::default());
        prop_assert_eq!(whole.records as usize, records.len());
        if !records.is_empty() {
            // A whole file's problems are its records', never the file's.
            prop_assert!(whole.problems.iter().all(|p| p.record.is_some()), "{:?}", whole.problems);
        }
        let s = scan("fuzz.json", bytes.as_slice(), &Window::default());
        prop_assert!(s.records as usize <= records.len() + noise.len());
        for p in &s.problems {
            prop_assert!(p.to_string().starts_with("fuzz.json"), "{}", p);
        }
    }

    #[test]
    fn registry_items_and_rules_never_panic(v in json_value()) {
        if let Err(bad) = registry::parse_item(&v) {
            prop_assert!(!bad.problems.is_empty());
        }
        if let Err(bad) = registry::parse_rule(&v) {
            prop_assert!(!bad.problems.is_empty());
        }
    }

    #[test]
    fn scenario_files_never_panic(v in json_value()) {
        if let Ok(s) = serde_json::from_value::<Scenario>(v) {
            if let Err(e) = s.into_state("fuzz.json") {
                prop_assert!(e.to_string().starts_with("fuzz.json"), "{}", e);
            }
        }
    }

    #[test]
    fn stream_records_never_panic(v in json_value(), image in json_value()) {
        let _ = stream::stream_records(&v);
        let batch = json!({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT",
            "dynamodb": {"SequenceNumber": "1", "NewImage": image}}]});
        let got = stream::stream_records(&batch).unwrap_or_default();
        prop_assert_eq!(got.len(), 1);
        if let Err((id, problem)) = &got[0] {
            prop_assert_eq!(id.as_str(), "1");
            prop_assert!(problem.starts_with("Records[0]"), "{}", problem);
        }
    }
}

/// Text an attacker would choose: line breaks, terminal escapes, bidirectional overrides,
/// zero-width characters, a header line of its own, multi-byte characters around byte 19.
fn hostile() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\u{1b}[31m".to_string()),
        Just("\u{202e}".to_string()),
        Just("\u{2066}".to_string()),
        Just("\u{200b}".to_string()),
        Just("\u{2028}".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{0}".to_string()),
        Just("\nInjected-Header: evil".to_string()),
        Just("sha256:0123456789aé".to_string()),
        Just("é".to_string()),
        "[a-z0-9:/._ -]{0,20}",
        any::<String>(),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// True when `s` holds a character no page may carry raw (`\n` separates the page's own
/// lines and is judged by the caller).
fn unsafe_in(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| c != '\n' && ecr_tag_guard::text::is_unsafe_char(c))
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever text reaches the renderer — from an event that slipped past parsing, an item,
    /// ECR's error message — the page carries it only cleaned: no control or reordering
    /// character, no line of its own, an ASCII subject within SNS's limit, JSON that parses.
    #[test]
    fn hostile_text_never_reaches_a_page_raw(
        texts in prop::collection::vec(hostile(), 10),
        outcome in 0usize..5,
    ) {
        use ecr_tag_guard::events::{Actor, Incident};
        use ecr_tag_guard::guard::{Action, Cause, Decision, Failure, Outcome};
        let item = json!({"repository": "123456789012/eu-west-1/web", "tag": "prod",
            "digest": format!("sha256:{}", "a".repeat(64))});
        let mut entry = registry::parse_item(&item).expect("item");
        entry.tag = texts[0].clone();
        entry.owner = Some(texts[1].clone());
        entry.notes = Some(texts[2].clone());
        let incident = Incident {
            event_id: texts[3].clone(),
            source: texts[4].clone(),
            time: texts[5].clone(),
            repo: entry.repo.clone(),
            actor: Actor::Principal { arn: texts[6].clone(), role_arn: None },
            changes: Vec::new(),
            note: None,
        };
        let d = Decision {
            tag: entry.tag.clone(),
            cause: Cause::Deleted { digest: Some(texts[7].clone()) },
            action: Action::Restore,
            why: texts[8].clone(),
            entry,
        };
        let outcome = match outcome {
            0 => Outcome::Restored,
            1 => Outcome::Refused { why: texts[9].clone() },
            2 => Outcome::Untrusted { why: texts[9].clone() },
            3 => Outcome::Failed { failure: Failure::Other, detail: texts[9].clone() },
            _ => Outcome::Alerted,
        };
        let alarm = ecr_tag_guard::page::report(&d, &outcome, false).expect("paged");
        let page = ecr_tag_guard::page::render(&incident, &d, &alarm);
        prop_assert!(page.subject.len() <= ecr_tag_guard::page::SUBJECT_MAX);
        prop_assert!(page.subject.chars().all(|c| c.is_ascii() && !c.is_ascii_control()), "{:?}", page.subject);
        prop_assert_eq!(unsafe_in(&page.message), None, "{:?}", page.message);
        for line in page.message.lines() {
            prop_assert!(!line.starts_with("Injected-Header"), "{:?}", page.message);
        }
        for v in page.attributes.values() {
            prop_assert!(!v.chars().any(ecr_tag_guard::text::is_unsafe_char), "{:?}", v);
        }
        let json = page.message.split("--- JSON ---\n").nth(1).expect("JSON part");
        prop_assert!(serde_json::from_str::<Value>(json).is_ok(), "{}", json);
        // The short-digest helper never splits a character, whatever it is given.
        let short = ecr_tag_guard::text::short_digest(&texts[7]);
        prop_assert!(texts[7].starts_with(short) && short.len() <= 19);
    }
}
