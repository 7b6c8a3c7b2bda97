//! `observe --from F --print json` at scale, as a ratio to Python's bare
//! `json.load` of the same file, measured back to back in one run (the
//! machine is shared: only a ratio measured in one run means anything).
//!
//!     cargo bench --bench observe_scale
//!
//! `CHAINVIEW_BENCH_EVENTS` (default 1,000,000) sets the trail's size;
//! `CHAINVIEW_BENCH_TRAIL=PATH` keeps the generated trail at PATH (and
//! reuses it when it is there already) instead of a temporary file;
//! `CHAINVIEW_BENCH_RUNS` (default 3) the runs of each command. The trail
//! is generated here, never checked in. Prints the machine's load first.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/trail.rs"]
mod trail;

use std::path::PathBuf;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test` runs benches with `--bench` absent: nothing to time then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n = env("CHAINVIEW_BENCH_EVENTS", 1_000_000);
    let runs = env("CHAINVIEW_BENCH_RUNS", 3).max(1);
    let mut _tmp = None;
    let path: PathBuf = match std::env::var_os("CHAINVIEW_BENCH_TRAIL") {
        Some(p) => {
            let p = PathBuf::from(p);
            if !p.exists() {
                let t = Instant::now();
                let f = trail::trail_file(n);
                std::fs::copy(f.path(), &p).unwrap();
                eprintln!("generated {n} events in {:.1?}", t.elapsed());
            }
            p
        }
        None => {
            let t = Instant::now();
            let f = trail::trail_file(n);
            eprintln!("generated {n} events in {:.1?}", t.elapsed());
            let p = f.path().to_path_buf();
            _tmp = Some(f);
            p
        }
    };
    let size = std::fs::metadata(&path).unwrap().len();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "trail: {} ({:.0} MB); load average: {}",
        path.display(),
        size as f64 / 1e6,
        load.trim()
    );
    // Warm the page cache for both.
    let _ = std::fs::read(&path);
    let bin = env!("CARGO_BIN_EXE_chainview");
    let file = path.to_str().unwrap();
    type Runs = Vec<(Duration, f64)>;
    let (mut ours, mut py): (Runs, Runs) = (vec![], vec![]);
    for _ in 0..runs {
        let (d, rss, ok) = trail::measure(
            std::process::Command::new("python3")
                .args(["-c", &format!("import json; json.load(open({file:?}))")]),
        );
        assert!(ok, "python3 failed");
        py.push((d, rss));
        let (d, rss, ok) = trail::measure(
            std::process::Command::new(bin).args(["observe", "--from", file, "--print", "json"]),
        );
        assert!(ok, "chainview failed");
        ours.push((d, rss));
        eprintln!(
            "  run: chainview {:.3} s ({:.0} MiB) · json.load {:.3} s ({:.0} MiB) · ratio {:.2}",
            ours.last().unwrap().0.as_secs_f64(),
            ours.last().unwrap().1,
            py.last().unwrap().0.as_secs_f64(),
            py.last().unwrap().1,
            ours.last().unwrap().0.as_secs_f64() / py.last().unwrap().0.as_secs_f64()
        );
    }
    let med = |v: &mut Runs| {
        v.sort_by_key(|x| x.0);
        v[v.len() / 2]
    };
    let (o, p) = (med(&mut ours), med(&mut py));
    let peak = ours.iter().map(|x| x.1).fold(0.0, f64::max);
    println!(
        "observe --from F --print json, {n} events: median {:.3} s vs json.load {:.3} s → {:.2}× (target ≤ 0.4×); peak RSS {peak:.0} MiB (target ≤ 400)",
        o.0.as_secs_f64(),
        p.0.as_secs_f64(),
        o.0.as_secs_f64() / p.0.as_secs_f64()
    );
}
