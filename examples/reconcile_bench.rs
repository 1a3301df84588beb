//! Benchmark (not a test): reconcile over many pins on the embedded world, with some drift
//! (every 10th tag deleted, every 25th moved, every 101st pinned image archived). Prints the
//! AWS calls it takes, by operation, the wall time and the peak memory.
//!
//! `cargo run --release --example reconcile_bench` runs 10 000 pins in 500 repositories and
//! 10 000 pins in one repository with calls that take no time; `-- --latency-ms 50` gives
//! every call 50 ms (an AWS round trip) and runs 10 000 pins / 500 repositories, 100 000 pins
//! / 5 000 repositories and 10 000 pins in one, at the default concurrency
//! (`TAG_GUARD_RECONCILE_CONCURRENCY` changes it). For the repository with the most repairs it
//! also renders that repository's page alone and times the renderer.
//!
//! Memory: the peak RSS covers the embedded world too (every item, image and manifest), which
//! a Lambda does not hold. A counting allocator tells them apart: the run's own peak heap is
//! the highest heap during the run less the world as built and what the world kept of the run
//! (history, pages, ledger records, its call log).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use ecr_tag_guard::guard::status::Storage;
use ecr_tag_guard::guard::Scope;
use ecr_tag_guard::memory::{Image, Memory, Repo, State};
use ecr_tag_guard::registry::{keep_tag, RepoKey, DEFAULT_KEEP_PREFIX};
use ecr_tag_guard::service::Tuning;
use ecr_tag_guard::service::{Handler, Now};
use ecr_tag_guard::text::sha256_digest;
use serde_json::json;

/// Counts the heap the process holds, so the run's own memory can be told apart from the
/// embedded world's (which a Lambda does not hold: its world is AWS).
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let latency_ms: u64 = args
        .iter()
        .position(|a| a == "--latency-ms")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let concurrency = std::env::var("TAG_GUARD_RECONCILE_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(ecr_tag_guard::service::DEFAULT_RECONCILE_CONCURRENCY);
    // (repositories, pins in each)
    let sizes: &[(usize, usize)] = if latency_ms == 0 {
        &[(500, 20), (1, 10_000)]
    } else {
        &[(500, 20), (5000, 20), (1, 10_000)]
    };
    for &(repos, pins) in sizes {
        run(repos, pins, latency_ms, concurrency);
    }
}

/// Builds a world of `repos` repositories of `pins` pins each and reconciles it.
fn run(repos: usize, pins: usize, latency_ms: u64, concurrency: usize) {
    let mut state = State::default();
    let (mut deleted, mut moved, mut archived) = (0, 0, 0);
    for r in 0..repos {
        let key = RepoKey {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            name: format!("team-{r:03}/app"),
        };
        let mut repo = Repo::default();
        let stray = format!("{{\"mediaType\":\"m\",\"stray\":{r}}}");
        repo.images.insert(
            sha256_digest(stray.as_bytes()),
            Image {
                manifest: Some(stray.clone()),
                media_type: Some("m".into()),
                tags: BTreeSet::new(),
                storage: Storage::Standard,
                pushed_at: 0,
            },
        );
        for p in 0..pins {
            let body = format!("{{\"mediaType\":\"m\",\"repo\":{r},\"pin\":{p}}}");
            let digest = sha256_digest(body.as_bytes());
            let tag = format!("release-{p}");
            let n = r * pins + p;
            let mut tags: BTreeSet<String> =
                keep_tag(DEFAULT_KEEP_PREFIX, &digest).into_iter().collect();
            if n.is_multiple_of(10) {
                deleted += 1;
            } else if n.is_multiple_of(25) {
                moved += 1;
                if let Some(im) = repo.images.get_mut(&sha256_digest(stray.as_bytes())) {
                    im.tags.insert(tag.clone());
                }
            } else {
                tags.insert(tag.clone());
            }
            let storage = if n % 101 == 1 {
                archived += 1;
                Storage::Archived
            } else {
                Storage::Standard
            };
            repo.images.insert(
                digest.clone(),
                Image {
                    manifest: Some(body.clone()),
                    media_type: Some("m".into()),
                    tags,
                    storage,
                    pushed_at: n as i64,
                },
            );
            state.items.insert(
                (key.key(), tag.clone()),
                // Sealed, as the guard pinned it.
                ecr_tag_guard::memory::seal_item(&json!({"repository": key.key(), "tag": tag, "digest": digest, "manifest": body, "media_type": "m"})),
            );
        }
        state.repos.insert(key, repo);
    }
    state.latency = (latency_ms > 0).then(|| std::time::Duration::from_millis(latency_ms));
    let world = Memory::new(state);
    let handler = Handler {
        registry: world.clone(),
        images: world.clone(),
        pager: world.clone(),
        ledger: world.clone(),
        pin_key: world.clone(),
        scope: Scope::default(),
        tuning: Tuning {
            reconcile_concurrency: concurrency,
            ..Tuning::default()
        },
        dry_run: false,
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("no runtime: {e}"),
    };
    let world_rss = peak_rss_mib();
    let world_heap = LIVE.load(Ordering::Relaxed);
    PEAK.store(world_heap, Ordering::Relaxed);
    let start = Instant::now();
    let report = match rt.block_on(handler.reconcile(
        &Now::system(),
        &ecr_tag_guard::ports::NoTrail,
        &mut |_, _, _| {},
    )) {
        Ok(r) => r,
        Err(e) => return eprintln!("reconcile failed: {e}"),
    };
    let elapsed = start.elapsed();
    let peak_heap = PEAK.load(Ordering::Relaxed);
    let with_report = LIVE.load(Ordering::Relaxed);
    // What the world kept of the run (history, pages, ledger, the call log) is not the guard's.
    let (checked, ok, repairs, pages) = (
        report.checked,
        report.ok,
        report.repairs.len(),
        report.pages.len(),
    );
    let largest_page = report.pages.iter().map(|p| p.size()).max().unwrap_or(0);
    let render = render_time(&report);
    drop(report);
    let world_grew = LIVE.load(Ordering::Relaxed).saturating_sub(world_heap);
    let run_peak = peak_heap.saturating_sub(world_heap + world_grew);
    let report_size = with_report.saturating_sub(world_heap + world_grew);
    let mut calls: BTreeMap<String, usize> = BTreeMap::new();
    for c in &world.state().calls {
        *calls.entry(c.clone()).or_default() += 1;
    }
    println!(
        "reconcile bench: {} pins in {repos} repositories ({deleted} deleted, {moved} moved, {archived} archived), embedded world, {latency_ms} ms a call, {concurrency} at once",
        repos * pins
    );
    println!("{:<36}{:>10}", "measure", "value");
    println!(
        "{:<36}{:>10.1}",
        "wall time (ms)",
        elapsed.as_secs_f64() * 1000.0
    );
    println!("{:<36}{:>10}", "tags checked", checked);
    println!("{:<36}{:>10}", "ok", ok);
    println!("{:<36}{:>10}", "repairs", repairs);
    println!("{:<36}{:>10}", "pages", pages);
    println!("{:<36}{:>10}", "largest page (bytes)", largest_page);
    println!(
        "{:<36}{:>10}",
        "SNS limit less the margin (bytes)",
        ecr_tag_guard::page::PAGE_MAX_BYTES
    );
    if let Some((tags, ms, bytes)) = render {
        println!(
            "{:<36}{:>10.1}",
            format!("page renderer, {tags} tags (ms)"),
            ms
        );
        println!(
            "{:<36}{:>10}",
            format!("page renderer, {tags} tags (bytes)"),
            bytes
        );
    }
    for (op, n) in &calls {
        println!("{:<36}{:>10}", format!("calls {op}"), n);
    }
    let reads = ["ecr:BatchGetImage", "ecr:DescribeImages"]
        .iter()
        .map(|op| calls.get(*op).copied().unwrap_or(0))
        .sum::<usize>();
    println!(
        "{:<36}{:>10}",
        "ECR reads per repository",
        reads as f64 / repos as f64
    );
    println!(
        "{:<36}{:>10.1}",
        "peak RSS, the world built (MiB)", world_rss
    );
    println!(
        "{:<36}{:>10.1}",
        "peak RSS after the run (MiB)",
        peak_rss_mib()
    );
    println!("{:<36}{:>10.1}", "heap: the world (MiB)", mib(world_heap));
    println!(
        "{:<36}{:>10.1}",
        "heap: world kept of the run (MiB)",
        mib(world_grew)
    );
    println!(
        "{:<36}{:>10.1}",
        "heap: the run's own peak (MiB)",
        mib(run_peak)
    );
    println!(
        "{:<36}{:>10.1}",
        "heap: the final report (MiB)",
        mib(report_size)
    );
    println!();
}

/// Renders once more, alone and timed, the page of the repository with the most repairs
/// (the renderer's own cost): tags, milliseconds, bytes.
fn render_time(
    report: &ecr_tag_guard::service::reconcile::ReconcileReport,
) -> Option<(usize, f64, usize)> {
    use ecr_tag_guard::events::Incident;
    let mut by_repo: BTreeMap<String, Vec<&ecr_tag_guard::service::Handled>> = BTreeMap::new();
    for h in &report.repairs {
        by_repo
            .entry(h.decision.entry.repo.key())
            .or_default()
            .push(h);
    }
    let (_, most) = by_repo.into_iter().max_by_key(|(_, v)| v.len())?;
    let repo = most.first()?.decision.entry.repo.clone();
    let alarms: Vec<_> = most
        .iter()
        .filter_map(|h| {
            let a = ecr_tag_guard::page::report(&h.decision, h.outcome.as_ref()?, false)?;
            Some((&h.decision, a))
        })
        .collect();
    let incident = Incident::found(
        "reconcile-bench".into(),
        "reconcile",
        "2026-12-01T00:00:00Z",
        &repo,
        "reconcile (no event named the change)",
    );
    let start = Instant::now();
    let page = ecr_tag_guard::page::render_all(&incident, &alarms)?;
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    Some((alarms.len(), ms, page.size()))
}

/// The process's peak resident memory so far.
fn peak_rss_mib() -> f64 {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes the struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    usage.ru_maxrss as f64 / 1024.0
}
