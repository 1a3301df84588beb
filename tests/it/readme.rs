//! Every command line the README shows is run by the binary, in the README's order, so the
//! README cannot drift from the binary: against moto (a world in the account moto gives the
//! test's credentials, with the `tag-guard` table and a `team/web` repository) or on the
//! embedded world where the line says `--state`. A line that can run is run (exit 0, or 1 for
//! "something to look at"; never 2, a refused command line); a synopsis (placeholders, `|`
//! alternatives, `...`) is checked to name real commands, with its optional `[...]` parts
//! dropped and run when nothing else is left to fill in.

use std::path::Path;
use std::process::Output;

use crate::util::*;

/// The README's command lines, continuation lines joined, comments cut.
fn readme_lines() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let mut out = Vec::new();
    let (mut in_code, mut pending) = (false, String::new());
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if !in_code {
            continue;
        }
        let l = line.trim();
        if pending.is_empty()
            && !l.starts_with("ecr-tag-guard ")
            && !l.starts_with("cargo run -q -- ")
        {
            continue;
        }
        let l = l
            .strip_prefix("cargo run -q -- ")
            .map_or(l.to_string(), |r| format!("ecr-tag-guard {r}"));
        match l.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(&l);
                out.push(cut_comment(&pending));
                pending.clear();
            }
        }
    }
    out
}

/// The line without a trailing `# comment` (a `#` after whitespace, outside quotes).
fn cut_comment(line: &str) -> String {
    let mut quoted = false;
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '#' && !quoted && prev.is_whitespace() {
            return line[..i].trim().to_string();
        }
        prev = c;
    }
    line.trim().to_string()
}

/// The line with every optional `[...]` part dropped.
fn required_part(line: &str) -> String {
    let (mut depth, mut out) = (0, String::new());
    for c in line.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A word for the reader to fill in: `NAME`, `REPO`, `PATH...`, `P.json`.
fn is_placeholder(word: &str) -> bool {
    let w = word.trim_end_matches("...");
    let (head, ext) = w.split_once('.').unwrap_or((w, ""));
    !head.is_empty()
        && head.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && head
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && ext.chars().all(|c| c.is_ascii_lowercase())
}

/// Splits a command line as a POSIX shell would for these lines: words, single quotes.
fn words(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

fn run(url: &str, w: &World, tmp: &Path, args: &[String]) -> Output {
    binary_on_moto(url)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TAG_GUARD_TABLE", &w.table)
        .env("TAG_GUARD_TOPIC_ARN", &w.topic_arn)
        .env("TAG_GUARD_PIN_KEY", &w.pin_key)
        .env("TMPDIR", tmp)
        .args(args)
        .output()
        .expect("run")
}

#[tokio::test]
async fn every_command_line_in_the_readme_runs() {
    let Some(w) = World::in_account("123456789012").await else {
        return;
    };
    let url = World::url().expect("moto");
    w.create_repo("team/web", false).await;
    w.push(
        "team/web",
        &manifest("readme-1"),
        DOCKER,
        Some("prod.latest"),
    )
    .await;
    w.create_repo("team/scratch", false).await;
    let tmp = std::env::temp_dir().join(format!("etg-readme-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("tmp");
    let lines = readme_lines();
    assert!(lines.len() >= 20, "{lines:?}");
    let (mut ran, mut checked) = (0, 0);
    for line in &lines {
        let line = line.replace("/tmp/", &format!("{}/", tmp.display()));
        let required = required_part(&line);
        let alternatives: Vec<&str> = required.split('|').map(str::trim).collect();
        let synopsis = alternatives.len() > 1
            || required.contains('(')
            || words(&required).iter().any(|w| is_placeholder(w));
        if synopsis {
            // The command each alternative names exists.
            for alt in alternatives {
                let mut path: Vec<String> = words(alt)
                    .into_iter()
                    .skip_while(|w| w == "ecr-tag-guard")
                    .take_while(|w| {
                        !w.starts_with('-') && !is_placeholder(w) && !w.starts_with('(')
                    })
                    .collect();
                path.push("--help".into());
                let o = run(&url, &w, &tmp, &path);
                assert!(
                    o.status.success(),
                    "{line}: {path:?} is not a command: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            checked += 1;
            continue;
        }
        let mut args: Vec<String> = words(&required).into_iter().skip(1).collect();
        if args.first().map(String::as_str) == Some("drill") {
            // No guard is deployed here: the drill runs every step, finds no restore within
            // its time, cleans up and says so.
            args.extend(["--timeout".into(), "1".into()]);
            let o = run(&url, &w, &tmp, &args);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(
                text.contains("cleaned up") && text.contains("did not put"),
                "{line}:\n{text}"
            );
            ran += 1;
            continue;
        }
        let o = run(&url, &w, &tmp, &args);
        let code = o.status.code();
        assert!(
            matches!(code, Some(0 | 1)),
            "README line `{line}` exited {code:?}:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        ran += 1;
    }
    assert!(ran >= 15 && checked >= 4, "ran {ran}, checked {checked}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_readme_reader_joins_lines_cuts_comments_and_spots_synopses() {
    assert_eq!(
        cut_comment("ecr-tag-guard list   # the tags"),
        "ecr-tag-guard list"
    );
    assert_eq!(
        cut_comment("ecr-tag-guard rule add x --pattern '^a#b' --keep 1"),
        "ecr-tag-guard rule add x --pattern '^a#b' --keep 1"
    );
    assert_eq!(
        required_part("ecr-tag-guard list [--json]"),
        "ecr-tag-guard list"
    );
    assert!(is_placeholder("NAME") && is_placeholder("PATH...") && is_placeholder("P.json"));
    assert!(
        !is_placeholder("team/web") && !is_placeholder("--json") && !is_placeholder("prod.latest")
    );
    assert_eq!(words("a 'b c' d"), ["a", "b c", "d"]);
}
