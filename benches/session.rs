//! Footprint of the interactive session: runs the real `chainview demo`
//! (embedded broker included) in a tmux pane at 120x40, steps through the
//! whole deploy scenario, then measures resident memory and the CPU time used
//! while idle for 10 s. Needs tmux (skips with a message without it).
//!
//!     cargo bench --bench session
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::thread::sleep;
use std::time::Duration;

fn tmux(args: &[&str]) -> Option<String> {
    let out = Command::new("tmux").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn status_kb(pid: &str, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime in clock ticks.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn main() {
    if tmux(&["-V"]).is_none() {
        println!("session: tmux not found, skipped (apt-get install tmux)");
        return;
    }
    let bin = env!("CARGO_BIN_EXE_chainview");
    let name = format!("cv-bench-{}", std::process::id());
    let cmd = format!("NO_COLOR= {bin} demo");
    if tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "120",
        "-y",
        "40",
        &cmd,
    ])
    .is_none()
    {
        println!("session: could not start tmux");
        return;
    }
    sleep(Duration::from_millis(800));
    let Some(pid) =
        tmux(&["list-panes", "-t", &name, "-F", "#{pane_pid}"]).map(|s| s.trim().to_string())
    else {
        return;
    };
    let start_rss = status_kb(&pid, "VmRSS:").unwrap_or(0);
    for _ in 0..45 {
        tmux(&["send-keys", "-t", &name, "n"]);
        sleep(Duration::from_millis(40));
    }
    // Probe a scope, as a user would.
    tmux(&["send-keys", "-t", &name, "/"]);
    tmux(&["send-keys", "-t", &name, "write:deploy:payment-svc"]);
    tmux(&["send-keys", "-t", &name, "Escape"]);
    sleep(Duration::from_millis(500));
    let screen = tmux(&["capture-pane", "-p", "-t", &name]).unwrap_or_default();
    let finished = screen.contains("step 40/40");
    let t0 = cpu_ticks(&pid).unwrap_or(0);
    sleep(Duration::from_secs(10));
    let t1 = cpu_ticks(&pid).unwrap_or(0);
    let rss = status_kb(&pid, "VmRSS:").unwrap_or(0);
    let hwm = status_kb(&pid, "VmHWM:").unwrap_or(0);
    tmux(&["send-keys", "-t", &name, "q"]);
    sleep(Duration::from_millis(300));
    tmux(&["kill-session", "-t", &name]);
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let idle_cpu = (t1.saturating_sub(t0)) as f64 / ticks_per_sec / 10.0 * 100.0;
    println!(
        "session: scenario finished: {finished}; RSS at start {:.1} MB, after the scenario {:.1} MB (peak {:.1} MB); idle CPU over 10 s: {idle_cpu:.2}% of one core",
        start_rss as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}
