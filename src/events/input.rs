//! Reading the events a text holds, for replay: an EventBridge event, a bare CloudTrail
//! record, a CloudTrail log file (`{"Records": [...]}`), a JSON array, or JSON lines of any of
//! these, and the carriers operators hold an event in. Files, folders, standard input and
//! gzip are [`crate::files`]' (this floor only parses).

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

/// Splits text into events, each record on its own (`name` labels them, `NAME#INDEX` when
/// there are several): a record that cannot be read is an error naming it and its problem,
/// and the others are still read. The carriers operators hold an event in are opened (see
/// [`open_carriers`]). `Err` only when the text holds no record at all.
pub fn split(name: &str, text: &str) -> Result<Vec<Result<Loaded, InputError>>, InputError> {
    let mut items: Vec<Result<Value, String>> = Vec::new();
    let mut stopped = None;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let json_lines = lines
        .next()
        .is_some_and(|(_, l)| serde_json::from_str::<Value>(l).is_ok())
        && lines.next().is_some();
    match serde_json::from_str::<Value>(text) {
        // One document: an event, an array, a log file, a carrier.
        Ok(v) => open_carriers(v, 0, &mut items),
        // JSON lines: each line on its own.
        Err(_) if json_lines => {
            for (n, line) in text
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                match serde_json::from_str::<Value>(line) {
                    Ok(v) => open_carriers(v, 0, &mut items),
                    Err(e) => items.push(Err(format!("line {}: not JSON: {e}", n + 1))),
                }
            }
        }
        // One document with a record no parser takes whole (cut off, nested too deep): its
        // records one by one, as audit reads them.
        Err(_) => {
            let read = crate::records::split(text.as_bytes(), |_, record| match record {
                Ok(bytes) => match serde_json::from_slice::<Value>(bytes) {
                    Ok(v) => open_carriers(v, 0, &mut items),
                    Err(e) => items.push(Err(format!("not JSON: {e}"))),
                },
                Err(why) => items.push(Err(why)),
            });
            stopped = read.stopped;
        }
    }
    if items.is_empty() {
        return Err(InputError {
            path: name.to_string(),
            problem: match stopped {
                Some(why) => format!("not JSON: {why}"),
                None => "empty file: no event in it".into(),
            },
        });
    }
    if let Some(why) = stopped {
        items.push(Err(format!("the rest of the file is not read: {why}")));
    }
    let many = items.len() > 1;
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let label = if many {
                format!("{name}#{i}")
            } else {
                name.to_string()
            };
            let err = |problem: String| InputError {
                path: label.clone(),
                problem,
            };
            let (step, value) = unwrap_step(item.map_err(&err)?).map_err(&err)?;
            Ok(Loaded { label, value, step })
        })
        .collect())
}

/// How deep carriers are opened (an SNS notification in an SQS message in a Lambda
/// destination record is three).
const CARRIERS_MAX: usize = 4;

/// Opens what an event arrives in when an operator hands it over, pushing each event it
/// holds (or why one cannot be read) onto `out`:
/// * an array, and a CloudTrail log file's `{"Records": [...]}`: each element;
/// * a Lambda asynchronous invocation's destination record (`requestPayload` beside
///   `requestContext` / `responseContext`): the original event;
/// * an `aws sqs receive-message` answer (`{"Messages": [...]}`): each message;
/// * an SQS message (`Body` beside `MessageId` / `ReceiptHandle`), and a Lambda SQS event
///   record (`eventSource: aws:sqs`, `body`): its body, read as JSON;
/// * an SNS notification (`Type: Notification`, `Message`), and a Lambda SNS event record
///   (`Sns.Message`): its message, read as JSON;
/// * anything else: itself (an event, a story step).
pub fn open_carriers(v: Value, depth: usize, out: &mut Vec<Result<Value, String>>) {
    if depth > CARRIERS_MAX {
        out.push(Ok(v));
        return;
    }
    let text_field = |v: &Value, f: &str| v.get(f).and_then(Value::as_str).map(String::from);
    let inner = |text: Option<String>, what: &str, out: &mut Vec<Result<Value, String>>| match text
    {
        Some(t) => match serde_json::from_str::<Value>(&t) {
            Ok(v) => open_carriers(v, depth + 1, out),
            Err(e) => out.push(Err(format!("{what} is not JSON: {e}"))),
        },
        None => out.push(Err(format!("{what} is not a string"))),
    };
    match v {
        Value::Array(items) => items
            .into_iter()
            .for_each(|i| open_carriers(i, depth + 1, out)),
        Value::Object(mut o) if o.len() == 1 && o.get("Records").is_some_and(Value::is_array) => {
            if let Some(Value::Array(records)) = o.remove("Records") {
                records
                    .into_iter()
                    .for_each(|r| open_carriers(r, depth + 1, out));
            }
        }
        Value::Object(mut o)
            if o.contains_key("requestPayload")
                && (o.contains_key("requestContext") || o.contains_key("responseContext")) =>
        {
            let payload = o.remove("requestPayload").unwrap_or(Value::Null);
            open_carriers(payload, depth + 1, out);
        }
        Value::Object(mut o) if o.get("Messages").is_some_and(Value::is_array) => {
            if let Some(Value::Array(messages)) = o.remove("Messages") {
                messages
                    .into_iter()
                    .for_each(|m| open_carriers(m, depth + 1, out));
            }
        }
        v if v.get("Body").is_some()
            && (v.get("MessageId").is_some() || v.get("ReceiptHandle").is_some()) =>
        {
            inner(text_field(&v, "Body"), "the SQS message's Body", out);
        }
        v if v.get("eventSource").and_then(Value::as_str) == Some("aws:sqs") => {
            inner(text_field(&v, "body"), "the SQS record's body", out);
        }
        v if v.get("Type").and_then(Value::as_str) == Some("Notification")
            && v.get("Message").is_some() =>
        {
            inner(
                text_field(&v, "Message"),
                "the SNS notification's Message",
                out,
            );
        }
        v if v.get("EventSource").and_then(Value::as_str) == Some("aws:sns") => {
            let message = v
                .get("Sns")
                .and_then(|s| s.get("Message"))
                .and_then(Value::as_str)
                .map(String::from);
            inner(message, "the SNS record's Message", out);
        }
        other => out.push(Ok(other)),
    }
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The events read, failing on a record that could not be.
    fn ok(got: Vec<Result<Loaded, InputError>>) -> Vec<Loaded> {
        got.into_iter().map(|r| r.expect("readable")).collect()
    }

    #[test]
    fn one_object_array_log_file_and_lines() {
        assert_eq!(ok(split("a", r#"{"x":1}"#).unwrap()).len(), 1);
        let arr = ok(split("a", r#"[{"x":1},{"x":2}]"#).unwrap());
        assert_eq!(arr[1].label, "a#1");
        assert_eq!(
            ok(split("a", r#"{"Records":[{"x":1},{"x":2},{"x":3}]}"#).unwrap()).len(),
            3
        );
        let lines = ok(split("a", "{\"x\":1}\n\n{\"Records\":[{\"y\":1}]}\n").unwrap());
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].value["y"], 1);
    }

    #[test]
    fn a_story_step_says_when_a_change_happens_and_when_its_event_arrives() {
        let got = ok(split(
            "s.json",
            r#"[{"replay":"apply","event":{"x":1}},{"replay":"deliver","event":{"x":2}},{"x":3}]"#,
        )
        .unwrap());
        let steps: Vec<(Step, i64)> = got
            .iter()
            .map(|l| (l.step, l.value["x"].as_i64().unwrap_or(0)))
            .collect();
        assert_eq!(
            steps,
            vec![(Step::Apply, 1), (Step::Deliver, 2), (Step::Both, 3)]
        );
        let got = split("s.json", r#"[{"x":1},{"replay":"later","event":{}}]"#).unwrap();
        assert!(got[0].is_ok(), "the good step is still read");
        let e = got[1].as_ref().unwrap_err();
        assert_eq!(e.path, "s.json#1");
        assert!(e.problem.contains("`later`"), "{}", e.problem);
    }

    #[test]
    fn one_bad_record_is_named_and_the_others_are_read() {
        // JSON lines with a cut-off last line.
        let got = split("f.jsonl", "{\"x\":1}\n{\"x\":2}\n{\"x\":").unwrap();
        assert!(got[0].is_ok() && got[1].is_ok(), "{got:?}");
        let e = got.last().unwrap().as_ref().unwrap_err();
        assert_eq!(e.path, "f.jsonl#2");
        assert!(e.problem.starts_with("line 3: not JSON"), "{}", e.problem);
        // A log file with one record nested past what a parser takes.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let log =
            format!(r#"{{"Records":[{{"eventName":"A"}},{{"x":{deep}}},{{"eventName":"C"}}]}}"#);
        let got = split("log.json", &log).unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got[0].as_ref().unwrap().value["eventName"], "A");
        assert!(
            got[1].as_ref().unwrap_err().problem.contains("not JSON"),
            "{got:?}"
        );
        assert_eq!(got[1].as_ref().unwrap_err().path, "log.json#1");
        assert_eq!(got[2].as_ref().unwrap().value["eventName"], "C");
    }

    #[test]
    fn the_carriers_operators_hold_an_event_in_are_opened() {
        let event = json!({"id": "e-1", "detail-type": "ECR Image Action", "detail": {"x": 1}});
        let text = event.to_string();
        let destination = json!({"version": "1.0", "timestamp": "2026-11-21T03:00:00Z",
            "requestContext": {"requestId": "r", "condition": "RetriesExhausted"},
            "requestPayload": event, "responseContext": {"statusCode": 200}});
        let sqs_answer = json!({"Messages": [
            {"MessageId": "m1", "ReceiptHandle": "h1", "Body": text},
            {"MessageId": "m2", "ReceiptHandle": "h2", "Body": json!({"Type": "Notification", "TopicArn": "t", "Message": text}).to_string()},
            {"MessageId": "m3", "ReceiptHandle": "h3", "Body": "not json"}
        ]});
        let lambda_sqs =
            json!({"Records": [{"eventSource": "aws:sqs", "messageId": "m", "body": text}]});
        let lambda_sns = json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": text}}]});
        for (name, input, good) in [
            ("destination", destination.to_string(), 1),
            ("receive-message", sqs_answer.to_string(), 2),
            ("lambda-sqs", lambda_sqs.to_string(), 1),
            ("lambda-sns", lambda_sns.to_string(), 1),
        ] {
            let got = split(name, &input).unwrap();
            let events: Vec<&Loaded> = got.iter().filter_map(|r| r.as_ref().ok()).collect();
            assert_eq!(events.len(), good, "{name}: {got:?}");
            assert!(events.iter().all(|e| e.value == event), "{name}: {got:?}");
        }
        let got = split("receive-message", &sqs_answer.to_string()).unwrap();
        let e = got[2].as_ref().unwrap_err();
        assert_eq!(e.path, "receive-message#2");
        assert!(e.problem.contains("Body is not JSON"), "{}", e.problem);
    }

    #[test]
    fn bad_input_names_the_place() {
        let got = split("f.json", "{\"x\":1}\n{oops\n").unwrap();
        assert!(got[0].is_ok());
        let e = got[1].as_ref().unwrap_err();
        assert_eq!(e.path, "f.json#1");
        let e = split("f.json", "   \n").unwrap_err();
        assert!(e.problem.contains("empty"), "{}", e.problem);
        let e = split("f.json", "oops").unwrap_err();
        assert!(e.problem.starts_with("not JSON"), "{}", e.problem);
    }
}
