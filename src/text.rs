//! Small text helpers shared by several floors: digests and untrusted strings.

use sha2::{Digest as _, Sha256};

/// `sha256:` followed by the lowercase hex SHA-256 of `bytes`: the digest ECR gives a manifest.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// True when `s` has the form of an ECR image digest: `sha256:` and 64 lowercase hex digits.
pub fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The first 12 hex digits of a digest, for short human output (`sha256:0123456789ab`): at
/// most its first 19 bytes, never splitting a character (text that is no digest is cut at
/// the last whole character before byte 19).
pub fn short_digest(digest: &str) -> &str {
    let mut end = digest.len().min(19);
    while !digest.is_char_boundary(end) {
        end -= 1;
    }
    &digest[..end]
}

/// True for a character that must not reach a page, a subject, a log line or a history
/// record as it is: control characters, line and paragraph separators, and the invisible
/// formatting characters that reorder or hide text (bidirectional overrides and isolates,
/// zero-width characters, the byte-order mark).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// Text from an event or an item made safe for a page, a log line or a history record:
/// every [`is_unsafe_char`] becomes `?`, and anything past `max` characters is cut and
/// marked with `...`.
pub fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if is_unsafe_char(c) { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

/// True when `s` needs no cleaning: no [`is_unsafe_char`] and at most `max` characters.
pub fn is_clean(s: &str, max: usize) -> bool {
    s.chars().nth(max).is_none() && !s.chars().any(is_unsafe_char)
}

/// A point in time as epoch seconds, from RFC 3339 text (`2025-01-31T12:00:00Z`, the AWS
/// CLI's `2025-01-31T12:00:00.123000+00:00`) or a number of epoch seconds (the AWS CLI v1's
/// form, fractions allowed). `None` when it is neither.
pub fn parse_time(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
        serde_json::Value::String(s) => s.trim().parse::<i64>().ok().or_else(|| {
            time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
                .ok()
                .map(|t| t.unix_timestamp())
        }),
        _ => None,
    }
}

/// Matches `text` against a glob where `*` stands for any run of characters (also none) and
/// `?` for exactly one; everything else matches itself. Used for ARN globs in `allow`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one back-tracking point for the last `*` seen.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Says on the process's own stderr, past the test harness's capture, that a test skipped
/// part of its work (a folder that comes with CI, not with a clone): seen in every run.
#[cfg(test)]
pub(crate) fn say_skipped(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_in_the_forms_aws_prints() {
        use serde_json::json;
        for v in [
            json!("2025-01-31T12:00:00Z"),
            json!("2025-01-31T12:00:00.000000+00:00"),
            json!("2025-01-31T13:00:00+01:00"),
            json!(1738324800),
            json!(1738324800.25),
            json!("1738324800"),
        ] {
            assert_eq!(super::parse_time(&v), Some(1738324800), "{v}");
        }
        for v in [json!("yesterday"), json!(null), json!([1])] {
            assert_eq!(super::parse_time(&v), None, "{v}");
        }
    }

    use super::*;

    #[test]
    fn digest_of_known_bytes() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(is_digest(&sha256_digest(b"x")));
    }

    #[test]
    fn digest_shape() {
        assert!(!is_digest(
            "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234"
        ));
        assert!(!is_digest(&format!("sha256:{}", "A".repeat(64))));
        assert!(!is_digest(&format!("sha512:{}", "a".repeat(64))));
        assert!(is_digest(&format!("sha256:{}", "a".repeat(64))));
    }

    #[test]
    fn clean_replaces_controls_and_cuts() {
        assert_eq!(clean("a\nb\u{1b}[31m", 100), "a?b?[31m");
        assert_eq!(clean("abcdef", 3), "abc...");
        assert_eq!(
            short_digest("sha256:0123456789abcdef"),
            "sha256:0123456789ab"
        );
        assert_eq!(short_digest("x"), "x");
        // Byte 19 inside a character: cut before it, never the whole string.
        let hostile = "sha256:0123456789aé\nInjected-Header: evil";
        assert_eq!(short_digest(hostile), "sha256:0123456789a");
        assert_eq!(short_digest("ééééééééééééé"), "ééééééééé");
    }

    #[test]
    fn clean_hides_reordering_and_line_breaking_characters() {
        let s = "a\u{202E}b\u{2066}c\u{200B}d\u{2028}e\u{FEFF}f\rg";
        assert_eq!(clean(s, 100), "a?b?c?d?e?f?g");
        assert!(!is_clean(s, 100));
        assert!(is_clean("prod.latest", 20));
        assert!(!is_clean("prod.latest", 5));
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "arn:aws:iam::*:role/deploy-*",
            "arn:aws:iam::123:role/deploy-prod"
        ));
        assert!(!glob_match(
            "arn:aws:iam::*:role/deploy-*",
            "arn:aws:iam::123:role/admin"
        ));
        assert!(glob_match("*", ""));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("*a*b", "xxaxxb"));
        assert!(!glob_match("*a*b", "xxaxxbx"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }
}
