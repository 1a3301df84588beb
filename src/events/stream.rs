//! DynamoDB Stream records of the registry table (new images), read into plain JSON items:
//! the one DynamoDB-JSON reader of the project ([`number`] is shared with the SDK adapter).

use serde_json::{Map, Number, Value};

/// One stream record, as the guard needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamRecord {
    /// Its `SequenceNumber`: the id a partial-batch response names.
    pub id: String,
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    /// The item after the change, as plain JSON; `None` for a removal.
    pub item: Option<Value>,
}

/// The records of a DynamoDB Stream event; `None` when the event is not one. A record that
/// cannot be read is an `Err` with its id (when it has one) and the problem.
pub fn stream_records(event: &Value) -> Option<Vec<Result<StreamRecord, (String, String)>>> {
    let records = event.get("Records")?.as_array()?;
    let from_stream = records
        .iter()
        .any(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:dynamodb"));
    if !from_stream {
        return None;
    }
    Some(
        records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let ddb = r.get("dynamodb");
                let id = ddb
                    .and_then(|d| d.get("SequenceNumber"))
                    .and_then(Value::as_str)
                    .map(String::from)
                    .ok_or_else(|| {
                        (
                            String::new(),
                            format!("Records[{i}]: no dynamodb.SequenceNumber"),
                        )
                    })?;
                let event_name = r
                    .get("eventName")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let item = match ddb.and_then(|d| d.get("NewImage")) {
                    None | Some(Value::Null) => None,
                    Some(image) => Some(
                        plain_item(image)
                            .map_err(|e| (id.clone(), format!("Records[{i}]: {e}")))?,
                    ),
                };
                Ok(StreamRecord {
                    id,
                    event_name,
                    item,
                })
            })
            .collect(),
    )
}

/// A DynamoDB-JSON item (`{"name": {"S": "..."}}`) as plain JSON.
pub fn plain_item(image: &Value) -> Result<Value, String> {
    let obj = image.as_object().ok_or("NewImage is not an object")?;
    let mut out = Map::new();
    for (k, v) in obj {
        out.insert(
            k.clone(),
            plain(v).map_err(|e| format!("attribute {k}: {e}"))?,
        );
    }
    Ok(Value::Object(out))
}

fn plain(v: &Value) -> Result<Value, String> {
    let obj = v
        .as_object()
        .filter(|o| o.len() == 1)
        .ok_or("not a typed DynamoDB value")?;
    let (kind, inner) = obj.iter().next().ok_or("empty value")?;
    Ok(match (kind.as_str(), inner) {
        ("S", Value::String(s)) => Value::String(s.clone()),
        ("N", Value::String(n)) => number(n).ok_or_else(|| format!("N `{n}` is not a number"))?,
        ("BOOL", Value::Bool(b)) => Value::Bool(*b),
        ("NULL", _) => Value::Null,
        ("SS", Value::Array(a)) | ("NS", Value::Array(a)) => Value::Array(a.clone()),
        ("L", Value::Array(a)) => Value::Array(a.iter().map(plain).collect::<Result<_, _>>()?),
        ("M", m @ Value::Object(_)) => plain_item(m)?,
        (other, _) => return Err(format!("type {other} is not read")),
    })
}

/// A DynamoDB number (`N`, a decimal string) as JSON: a whole number when it is one, else a
/// float; `None` when it is not a number.
pub fn number(n: &str) -> Option<Value> {
    n.parse::<i64>().map(Value::from).ok().or_else(|| {
        n.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_read_the_same_whole_or_not() {
        assert_eq!(number("42"), Some(json!(42)));
        assert_eq!(number("-7"), Some(json!(-7)));
        assert_eq!(number("1.5"), Some(json!(1.5)));
        assert_eq!(number("1e3"), Some(json!(1000.0)));
        assert_eq!(number("x"), None);
        let item = plain_item(
            &json!({"keep": {"N": "3"}, "tag": {"S": "prod"}, "allow": {"L": [{"S": "a"}]}}),
        )
        .unwrap();
        assert_eq!(item, json!({"keep": 3, "tag": "prod", "allow": ["a"]}));
        assert!(plain_item(&json!({"keep": {"N": "three"}}))
            .unwrap_err()
            .contains("keep"));
    }
}
