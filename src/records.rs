//! Splitting a stream of JSON into records without parsing them (`audit` reads trails with it,
//! `replay` its inputs).
//!
//! A CloudTrail log file is one JSON object, `{"Records": [ ... ]}`, of a few thousand
//! records; replay inputs are also single events, arrays of events and JSON lines. [`split`]
//! reads any of these through a small buffer and hands each record's bytes to a callback as
//! soon as its closing brace is read: it tracks only strings and brackets, so it never holds
//! more than one record (at most [`MAX_RECORD`] bytes) and one read chunk, whatever the
//! file's size. Whether a record is JSON at all is left to whoever parses it.

use std::io::Read;

/// The largest record kept (8 MiB; CloudTrail's are a few KiB): a larger one is skipped and
/// reported, so one huge value cannot grow the buffer without bound.
pub const MAX_RECORD: usize = 8 << 20;

/// How much is read at a time.
const CHUNK: usize = 256 << 10;

/// The bytes that open or close something inside a record: quotes and brackets.
static STRUCTURAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'"' as usize] = true;
    t[b'{' as usize] = true;
    t[b'}' as usize] = true;
    t[b'[' as usize] = true;
    t[b']' as usize] = true;
    t
};

/// What a file held, as far as it could be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// Records handed out (good or not).
    pub records: u64,
    /// Why reading stopped early (the file is not JSON past some point, is truncated, or the
    /// read failed); records before it were handed out.
    pub stopped: Option<String>,
}

/// Reads `reader` to its end and calls `each(index, record)` for every record: the elements
/// of a top-level array or of a leading `"Records"` array, else each top-level value (one
/// event, or JSON lines). `record` is the record's bytes, or why it was skipped (too large,
/// not an object). Index counts from 0 across the file.
pub fn split<R: Read>(reader: R, each: impl FnMut(u64, Result<&[u8], String>)) -> Split {
    let mut s = Splitter {
        reader,
        buf: Vec::with_capacity(2 * CHUNK),
        scratch: vec![0; CHUNK].into_boxed_slice(),
        pos: 0,
        offset: 0,
        eof: false,
        stack: Vec::new(),
        records_at: None,
        record: None,
        in_string: false,
        escaped: false,
        in_scalar: false,
        index: 0,
        saw_value: false,
        each,
    };
    let stopped = s.run().err();
    Split {
        records: s.index,
        stopped,
    }
}

/// Where the record being read starts.
#[derive(Clone, Copy)]
enum Record {
    /// At this byte of the buffer.
    At(usize),
    /// Too large: its bytes are dropped as they are read.
    Skipping,
}

struct Splitter<R, F> {
    reader: R,
    buf: Vec<u8>,
    /// Where a read lands before it joins `buf`.
    scratch: Box<[u8]>,
    /// The next byte to look at.
    pos: usize,
    /// How many bytes were dropped from the front of `buf` so far (for error positions).
    offset: u64,
    eof: bool,
    /// The open brackets.
    stack: Vec<u8>,
    /// The depth of the array whose elements are records (`None`: top-level values are).
    records_at: Option<usize>,
    record: Option<Record>,
    in_string: bool,
    escaped: bool,
    /// Stepping over a scalar where a record belongs.
    in_scalar: bool,
    index: u64,
    /// Whether any top-level value was read (an empty `"Records"` array is not an empty file).
    saw_value: bool,
    each: F,
}

impl<R: Read, F: FnMut(u64, Result<&[u8], String>)> Splitter<R, F> {
    fn run(&mut self) -> Result<(), String> {
        loop {
            if self.pos >= self.buf.len() && !self.fill()? {
                return self.at_end();
            }
            if self.in_string {
                self.string();
                continue;
            }
            if self.in_scalar {
                self.scalar_rest();
                continue;
            }
            if self.record.is_some() {
                self.in_record()?;
                continue;
            }
            let b = self.buf[self.pos];
            if b.is_ascii_whitespace() {
                self.pos += 1;
                continue;
            }
            let depth = self.stack.len();
            if self.record.is_none() && Some(depth) == self.records_at {
                self.between_records(b)?;
            } else if self.record.is_none() && depth == 0 {
                self.top_level(b)?;
            } else {
                self.inside(b)?;
            }
        }
    }

    /// Reads more; `false` at the end of the input. Keeps the record being read.
    fn fill(&mut self) -> Result<bool, String> {
        if self.eof {
            return Ok(false);
        }
        let keep = match self.record {
            Some(Record::At(start)) => start,
            _ => self.pos,
        };
        // Drop what is read and no longer needed, once it is half the buffer (so a record
        // in progress is not moved on every small read).
        if keep > 0 && keep >= self.buf.len() / 2 {
            self.buf.drain(..keep);
            self.offset += keep as u64;
            self.pos -= keep;
            if let Some(Record::At(start)) = &mut self.record {
                *start -= keep;
            }
        }
        let n = loop {
            match self.reader.read(&mut self.scratch) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read failed: {e}")),
            }
        };
        self.buf.extend_from_slice(&self.scratch[..n]);
        if n == 0 {
            self.eof = true;
        }
        if let Some(Record::At(start)) = self.record {
            if self.buf.len() - start > MAX_RECORD {
                // Drop what is held of it and go on tracking its brackets only.
                self.record = Some(Record::Skipping);
                self.offset += self.pos as u64;
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
        }
        Ok(n > 0)
    }

    fn at_end(&mut self) -> Result<(), String> {
        if self.record.is_some() || !self.stack.is_empty() {
            return Err(format!(
                "the file ends inside record {} (truncated?)",
                self.index
            ));
        }
        if self.index == 0 && !self.saw_value {
            return Err("empty: no record in it".into());
        }
        Ok(())
    }

    /// Skips to the end of the string the cursor is in.
    fn string(&mut self) {
        let rest = &self.buf[self.pos..];
        if self.escaped {
            self.escaped = false;
            self.pos += 1;
            return;
        }
        match memchr::memchr2(b'"', b'\\', rest) {
            None => self.pos = self.buf.len(),
            Some(i) if rest[i] == b'"' => {
                self.in_string = false;
                self.pos += i + 1;
            }
            Some(i) => {
                self.escaped = true;
                self.pos += i + 1;
            }
        }
    }

    fn not_json(&self, b: u8, what: &str) -> String {
        format!(
            "not JSON at byte {}: `{}` where {what} was expected",
            self.offset + self.pos as u64,
            char::from(b).escape_default()
        )
    }

    /// Between two top-level values: an object or an array starts.
    fn top_level(&mut self, b: u8) -> Result<(), String> {
        self.saw_value = true;
        match b {
            b'{' => {
                if self.records_key()? {
                    self.stack.extend_from_slice(b"{[");
                    self.records_at = Some(2);
                } else {
                    self.start_record();
                }
                Ok(())
            }
            b'[' => {
                self.stack.push(b'[');
                self.pos += 1;
                self.records_at = Some(1);
                Ok(())
            }
            _ => Err(self.not_json(b, "an object or an array")),
        }
    }

    /// At a top-level `{`: whether `"Records": [` follows; if so, moves past the `[`.
    fn records_key(&mut self) -> Result<bool, String> {
        const KEY: &[u8] = b"\"Records\"";
        // Enough bytes to see the key with some whitespace around it.
        while self.buf.len() - self.pos < 64 && !self.eof {
            self.fill()?;
        }
        let rest = &self.buf[self.pos + 1..];
        let skip_ws = |i: usize| {
            i + rest[i..]
                .iter()
                .take_while(|c| c.is_ascii_whitespace())
                .count()
        };
        let i = skip_ws(0);
        if !rest[i..].starts_with(KEY) {
            return Ok(false);
        }
        let i = skip_ws(i + KEY.len());
        if rest.get(i) != Some(&b':') {
            return Ok(false);
        }
        let i = skip_ws(i + 1);
        if rest.get(i) != Some(&b'[') {
            return Ok(false);
        }
        self.pos += 1 + i + 1;
        Ok(true)
    }

    fn start_record(&mut self) {
        self.record = Some(Record::At(self.pos));
        self.stack.push(self.buf[self.pos]);
        self.pos += 1;
    }

    /// In the records array, between records.
    fn between_records(&mut self, b: u8) -> Result<(), String> {
        match b {
            b',' => self.pos += 1,
            b']' => {
                self.stack.pop();
                self.records_at = None;
                self.pos += 1;
            }
            b'{' | b'[' => self.start_record(),
            b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => {
                // A scalar where a record belongs: reported, then stepped over.
                let index = self.index;
                self.index += 1;
                (self.each)(index, Err("not an object".into()));
                self.skip_scalar();
            }
            _ => return Err(self.not_json(b, "a record")),
        }
        Ok(())
    }

    /// Steps over a scalar in an array (to the next `,` or `]` outside a string).
    fn skip_scalar(&mut self) {
        if self.buf[self.pos] == b'"' {
            self.in_string = true;
            self.pos += 1;
            return;
        }
        self.in_scalar = true;
        self.scalar_rest();
    }

    /// Steps over the rest of a scalar, which may go on past the buffer's end.
    fn scalar_rest(&mut self) {
        while self.pos < self.buf.len() {
            if matches!(self.buf[self.pos], b',' | b']') || self.buf[self.pos].is_ascii_whitespace()
            {
                self.in_scalar = false;
                return;
            }
            self.pos += 1;
        }
    }

    /// Inside a record, or inside the rest of a `{"Records": [...], ...}` object.
    fn inside(&mut self, b: u8) -> Result<(), String> {
        match b {
            b'"' => self.in_string = true,
            b'{' | b'[' => self.stack.push(b),
            b'}' | b']' => {
                let open = if b == b'}' { b'{' } else { b'[' };
                if self.stack.pop() != Some(open) {
                    return Err(self.not_json(b, "a matching bracket"));
                }
                let done =
                    self.record.is_some() && Some(self.stack.len()) == self.depth_of_records();
                if done {
                    self.pos += 1;
                    self.finish_record();
                    return Ok(());
                }
            }
            // Anything else (keys' colons, commas, numbers, literals, whitespace): skipped to
            // the next byte that can open or close something, in one pass.
            _ => {
                let rest = &self.buf[self.pos..];
                let n = rest
                    .iter()
                    .position(|&c| STRUCTURAL[usize::from(c)])
                    .unwrap_or(rest.len());
                self.pos += n;
                return Ok(());
            }
        }
        self.pos += 1;
        Ok(())
    }

    /// Inside a record: runs through the buffer in one tight loop (strings skipped with a
    /// byte search, everything but quotes and brackets in a table lookup each) until the record
    /// closes or the buffer ends. Nearly all of a trail's bytes go through here.
    fn in_record(&mut self) -> Result<(), String> {
        let done_at = self.depth_of_records();
        let len = self.buf.len();
        let mut i = self.pos;
        while i < len {
            let c = self.buf[i];
            if !STRUCTURAL[usize::from(c)] {
                i += 1;
                continue;
            }
            match c {
                b'"' => {
                    let mut j = i + 1;
                    loop {
                        match memchr::memchr2(b'"', b'\\', &self.buf[j..]) {
                            None => {
                                // The string goes on past the buffer: `string` takes it up.
                                self.in_string = true;
                                self.pos = len;
                                return Ok(());
                            }
                            Some(k) if self.buf[j + k] == b'"' => {
                                i = j + k + 1;
                                break;
                            }
                            Some(k) if j + k + 1 >= len => {
                                self.in_string = true;
                                self.escaped = true;
                                self.pos = len;
                                return Ok(());
                            }
                            Some(k) => j += k + 2,
                        }
                    }
                }
                b'{' | b'[' => {
                    self.stack.push(c);
                    i += 1;
                }
                _ => {
                    let open = if c == b'}' { b'{' } else { b'[' };
                    if self.stack.pop() != Some(open) {
                        self.pos = i;
                        return Err(self.not_json(c, "a matching bracket"));
                    }
                    i += 1;
                    if Some(self.stack.len()) == done_at {
                        self.pos = i;
                        self.finish_record();
                        return Ok(());
                    }
                }
            }
        }
        self.pos = len;
        Ok(())
    }

    /// The depth records sit at: in their array, or at the top.
    fn depth_of_records(&self) -> Option<usize> {
        Some(self.records_at.unwrap_or(0))
    }

    fn finish_record(&mut self) {
        let index = self.index;
        self.index += 1;
        match self.record.take() {
            Some(Record::At(start)) => (self.each)(index, Ok(&self.buf[start..self.pos])),
            _ => (self.each)(
                index,
                Err(format!("larger than {} MiB: skipped", MAX_RECORD >> 20)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record as text (or its problem), and how the file ended.
    fn records(input: &[u8]) -> (Vec<String>, Option<String>) {
        let mut got = Vec::new();
        let s = split(input, |i, r| {
            got.push(match r {
                Ok(b) => format!("{i}:{}", String::from_utf8_lossy(b)),
                Err(e) => format!("{i}!{e}"),
            })
        });
        assert_eq!(s.records as usize, got.len());
        (got, s.stopped)
    }

    #[test]
    fn a_log_file_an_array_an_event_and_lines() {
        let (r, end) = records(br#"{"Records":[{"a":1},{"b":[2,{"c":"}"}]}]}"#);
        assert_eq!(r, vec![r#"0:{"a":1}"#, r#"1:{"b":[2,{"c":"}"}]}"#]);
        assert_eq!(end, None);
        let (r, _) = records(b" [ {\"a\":1} ,\n {\"b\":2} ] ");
        assert_eq!(r, vec![r#"0:{"a":1}"#, r#"1:{"b":2}"#]);
        let (r, _) = records(br#"{"detail-type":"x","detail":{"Records":[1]}}"#);
        assert_eq!(r, vec![r#"0:{"detail-type":"x","detail":{"Records":[1]}}"#]);
        let (r, _) = records(b"{\"a\":1}\n{\"Records\" : [ {\"b\":2} ]}\n{\"c\":\"\\\"}\"}\n");
        assert_eq!(r, vec![r#"0:{"a":1}"#, r#"1:{"b":2}"#, r#"2:{"c":"\"}"}"#]);
    }

    #[test]
    fn strings_hold_anything() {
        let (r, end) = records(br#"{"Records":[{"a":"[{\\\"]}"},{"b":"\u005d"}]}"#);
        assert_eq!(r.len(), 2, "{r:?}");
        assert_eq!(end, None);
    }

    #[test]
    fn records_across_chunk_boundaries() {
        // Many records, each long enough that chunks end inside strings and escapes.
        let mut text = String::from("{\"Records\":[");
        for i in 0..2000 {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&format!(
                "{{\"i\":{i},\"s\":\"{}\\\"x\"}}",
                "y".repeat(i % 700)
            ));
        }
        text.push_str("]}");
        let mut n = 0;
        let s = split(Dribble(text.as_bytes()), |i, r| {
            let v: serde_json::Value = serde_json::from_slice(r.unwrap()).unwrap();
            assert_eq!(v["i"], i);
            n += 1;
        });
        assert_eq!((n, s.records, s.stopped), (2000, 2000, None));
    }

    /// A reader that returns a few bytes at a time.
    struct Dribble<'a>(&'a [u8]);

    impl Read for Dribble<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.len().min(out.len()).min(7);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_scalar_where_a_record_belongs_is_one_problem_however_it_is_read() {
        let text = br#"[12345678901234567890, true ,{"a":1},"a long string here"]"#;
        let mut got = Vec::new();
        let s = split(Dribble(text), |i, r| got.push((i, r.map(|b| b.to_vec()))));
        assert_eq!(
            s,
            Split {
                records: 4,
                stopped: None
            }
        );
        assert_eq!(got[2], (2, Ok(br#"{"a":1}"#.to_vec())));
        assert_eq!(got[3], (3, Err("not an object".to_string())));
    }

    #[test]
    fn bad_input_is_named_and_what_came_before_is_kept() {
        let (r, end) = records(br#"{"Records":[{"a":1},{"b":"#);
        assert_eq!(r, vec![r#"0:{"a":1}"#]);
        assert_eq!(
            end.as_deref(),
            Some("the file ends inside record 1 (truncated?)")
        );
        let (r, end) = records(br#"{"Records":[{"a":1},7,"x",{"b":2}]}"#);
        assert_eq!(
            r,
            vec![
                r#"0:{"a":1}"#,
                "1!not an object",
                "2!not an object",
                r#"3:{"b":2}"#
            ]
        );
        assert_eq!(end, None);
        let (_, end) = records(b"hello");
        assert!(end.unwrap().contains("not JSON at byte 0"));
        let (r, end) = records(br#"{"Records":[{"a":1]}]}"#);
        assert!(r.is_empty());
        assert!(end.unwrap().contains("matching bracket"));
        let (_, end) = records(b"  \n");
        assert_eq!(end.as_deref(), Some("empty: no record in it"));
        let (r, end) = records(br#"{"Records": []}"#);
        assert_eq!(
            (r.len(), end),
            (0, None),
            "a log file of no records is not empty"
        );
    }

    #[test]
    fn a_record_too_large_is_skipped_and_memory_stays_bounded() {
        let big = "x".repeat(MAX_RECORD + CHUNK * 2);
        let text = format!(r#"{{"Records":[{{"a":1}},{{"big":"{big}"}},{{"c":3}}]}}"#);
        let (r, end) = records(text.as_bytes());
        assert_eq!(r[0], r#"0:{"a":1}"#);
        assert!(r[1].starts_with("1!larger than 8 MiB"), "{}", &r[1][..40]);
        assert_eq!(r[2], r#"2:{"c":3}"#);
        assert_eq!(end, None);
    }
}
