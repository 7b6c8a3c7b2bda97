//! The judgment commands: `who-can` and `what-if revoke`, over the same
//! sources as `observe` (a live broker or a saved trail, `--at`), printed
//! as text or JSON lines. The answers come from [`crate::judge`]; this file
//! only gathers the trail and writes them.

use std::io::Write;

use crate::judge::what_if::{Effect, Plan, resolve_target, what_if};
use crate::judge::who_can::{Access, Pattern, who_can};
use crate::rules::RevokeLevel;
use crate::rules::spiffe::with_orch;
use crate::session::Settings;
use crate::text::Visible;
use crate::watch::{ObserveArgs, WatchError, gather, resolve_at};

/// How a judgment is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// `who-can PATTERN`: exit 1 with `expect_none` when anyone live or maybe
/// holds it.
pub async fn run_who_can(
    settings: &Settings,
    src: &ObserveArgs,
    pattern: &str,
    format: Format,
    all: bool,
    expect_none: bool,
) -> Result<u8, WatchError> {
    let p = Pattern::parse(pattern).map_err(WatchError::Usage)?;
    let o = source(settings, src).await?;
    let at = resolve_at(&o, src.at.as_deref())?;
    let rows = who_can(&o, at, &p, all);
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    let r = match format {
        Format::Json => json_lines(&mut out, &rows),
        Format::Text => who_can_text(&mut Visible::text(&mut out), pattern, &rows),
    };
    finish(r.and_then(|()| out.flush()))?;
    let holders = rows.iter().filter(|a| a.status != "dead").count();
    Ok(u8::from(
        (expect_none && holders > 0) | integrity_failed(&o),
    ))
}

/// `what-if revoke LEVEL TARGET`.
pub async fn run_what_if(
    settings: &Settings,
    src: &ObserveArgs,
    level: &str,
    target: &str,
    format: Format,
) -> Result<u8, WatchError> {
    let level = RevokeLevel::parse(level).ok_or_else(|| {
        WatchError::Usage(format!(
            "'{level}' is not a revocation level: token, agent, task or chain"
        ))
    })?;
    let o = source(settings, src).await?;
    let at = resolve_at(&o, src.at.as_deref())?;
    let target = resolve_target(&o, level, target).map_err(WatchError::Usage)?;
    let (effects, plan) = what_if(&o, at, level, &target);
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    let r = match format {
        Format::Json => json_lines(&mut out, &effects).and_then(|()| json_lines(&mut out, &[plan])),
        Format::Text => what_if_text(&mut Visible::text(&mut out), &effects, &plan),
    };
    finish(r.and_then(|()| out.flush()))?;
    Ok(u8::from(integrity_failed(&o)))
}

/// The trail a judgment reads: `--from`, a live broker, or `--script FILE`:
/// the scenario replayed on a fresh embedded broker (so a team can judge
/// its delegation design in CI before it ships), its trail read back. The
/// script's own expectations are not judged here (`chainview --script`
/// does that).
async fn source(
    settings: &Settings,
    src: &ObserveArgs,
) -> Result<crate::observe::Observed, WatchError> {
    sourced(settings, src).await.map(|(o, _)| o)
}

/// The script's line that made each event of a `--script` trail (`None`
/// for another source): events are read back after every step, so each is
/// known to come from the step just run.
type EventLines = Option<Vec<usize>>;

async fn sourced(
    settings: &Settings,
    src: &ObserveArgs,
) -> Result<(crate::observe::Observed, EventLines), WatchError> {
    let Some(path) = &src.script else {
        return gather(settings, src).await.map(|o| (o, None));
    };
    let usage = |e: String| WatchError::Usage(format!("--script {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(|e| usage(e.to_string()))?;
    let bytes = crate::scenario::read_at_most(file, crate::scenario::MAX_SCRIPT)
        .map_err(|e| usage(e.to_string()))?
        .ok_or_else(|| usage("larger than a script may be".into()))?;
    let text = String::from_utf8(bytes).map_err(|_| usage("not UTF-8 text".into()))?;
    let name = path.display().to_string();
    let script =
        crate::scenario::parse(&name, &text).map_err(|e| WatchError::Usage(e.to_string()))?;
    let embedded = Settings {
        broker_url: None,
        ..settings.clone()
    };
    let mut replay = crate::scenario::replay::Replay::start(script, &embedded)
        .await
        .map_err(|e| WatchError::Broker(e.to_string()))?;
    let trail = Settings {
        broker_url: Some(replay.target.url.clone()),
        admin_secret: replay
            .target
            .worker
            .admin_secret
            .as_ref()
            .map(|s| s.0.clone()),
        ..settings.clone()
    };
    let read = async {
        let mut live = crate::watch::Live::connect(&trail).await?;
        let mut o = crate::observe::Observed::new();
        let mut lines = Vec::new();
        // What the start made (the app), then each step's events.
        let mut line = 1;
        loop {
            live.read_all(|events, _| {
                for (e, ok) in &events {
                    o.fold(&e.as_ref(), Some(*ok));
                    lines.push(line);
                }
                Ok(())
            })
            .await?;
            match replay.next().await {
                Some(step) => line = step.line.max(1),
                None => break,
            }
        }
        o.total = Some(live.total());
        o.stopped = live.stopped();
        o.now_ms = Some(chrono::Utc::now().timestamp_millis());
        Ok::<_, WatchError>((o, Some(lines)))
    };
    let r = read.await;
    replay.finish().await;
    r
}

/// The trail's integrity failures (a broken chain, a cut tail, ids that do
/// not continue, a checkpoint that does not match), said on standard error:
/// a judgment over such a trail exits 1 whatever it found.
fn integrity_failed(o: &crate::observe::Observed) -> bool {
    let failures = o.failures();
    for f in &failures {
        eprintln!(
            "chainview: {} — the judgment above is over a trail that does not hold",
            crate::text::visible(f)
        );
    }
    !failures.is_empty()
}

/// A closed pipe (`| head`) is not worth a report; any other write error is.
fn finish(r: std::io::Result<()>) -> Result<(), WatchError> {
    match r {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(WatchError::Write {
            path: "standard output".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn json_lines<T: serde::Serialize>(w: &mut dyn Write, rows: &[T]) -> std::io::Result<()> {
    let mut w = Visible::json(w);
    for r in rows {
        let mut line = serde_json::to_vec(r).map_err(std::io::Error::other)?;
        line.push(b'\n');
        w.write_all(&line)?;
    }
    Ok(())
}

fn who_can_text(w: &mut dyn Write, pattern: &str, rows: &[Access]) -> std::io::Result<()> {
    if rows.is_empty() {
        return writeln!(w, "nobody holds a token meeting {pattern}");
    }
    for a in rows {
        let path: Vec<String> = a
            .path
            .iter()
            .map(|h| format!("{} [{}]", with_orch(&h.agent), h.scope.join(" ")))
            .collect();
        writeln!(
            w,
            "{:<5} {} by {} ({})",
            a.status,
            with_orch(&a.agent),
            a.grants.join(" "),
            a.node
        )?;
        writeln!(w, "      path: {}", path.join(" → "))?;
        if a.status != "live" {
            writeln!(w, "      {}", a.status_why)?;
        }
    }
    Ok(())
}

fn what_if_text(w: &mut dyn Write, effects: &[Effect], plan: &Plan) -> std::io::Result<()> {
    writeln!(w, "revoke {} {}:", plan.level, plan.target)?;
    for kind in ["dies", "may die", "survives"] {
        let these: Vec<&Effect> = effects.iter().filter(|e| e.effect == kind).collect();
        writeln!(w, "  {kind}: {}", these.len())?;
        for e in these {
            writeln!(
                w,
                "    {} {} d{} — {}",
                e.node,
                with_orch(&e.agent),
                e.depth,
                e.why
            )?;
        }
    }
    writeln!(w, "plan (the whole subtree):")?;
    for e in &plan.entries {
        let also = if e.also_kills.is_empty() {
            String::new()
        } else {
            format!("; also kills {}", e.also_kills.join(" "))
        };
        writeln!(
            w,
            "  revoke {} {} — kills {}{also}",
            e.level,
            e.target,
            if e.kills.is_empty() {
                "nothing live".to_string()
            } else {
                e.kills.join(" ")
            }
        )?;
    }
    if !plan.uncovered.is_empty() {
        writeln!(w, "  no entry reaches {}", plan.uncovered.join(" "))?;
    }
    for n in &plan.notes {
        writeln!(w, "note: {n}")?;
    }
    Ok(())
}

/// How `check` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckFormat {
    Text,
    Json,
    Sarif,
    Markdown,
}

/// What `check` is told besides its source.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    pub format: CheckFormat,
    /// Exit 1 when a counted finding is at least this severe (`None`: never).
    pub fail_on: Option<crate::judge::check::Severity>,
    pub baseline: Option<std::path::PathBuf>,
    pub write_baseline: Option<std::path::PathBuf>,
}

/// A baseline: the fingerprints of findings accepted once.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Baseline {
    fingerprints: Vec<String>,
}

#[derive(serde::Serialize)]
struct CheckSummary<'a> {
    kind: &'static str,
    /// docs/schema/check-summary.schema.json (one version for all schemas).
    schema_version: u32,
    findings: usize,
    counted: usize,
    baselined: usize,
    errors: usize,
    warnings: usize,
    notes: usize,
    fail_on: &'static str,
    as_of: &'a str,
}

/// `check`: findings, exit 1 when any not in the baseline is at or above
/// `fail_on`.
pub async fn run_check(
    settings: &Settings,
    src: &ObserveArgs,
    opts: &CheckOptions,
) -> Result<u8, WatchError> {
    use crate::judge::check::{Severity, check};
    use crate::judge::report;
    let baseline = match &opts.baseline {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| WatchError::Usage(format!("--baseline {}: {e}", p.display())))?;
            serde_json::from_str::<Baseline>(&text).map_err(|e| {
                WatchError::Usage(format!(
                    "--baseline {}: not a baseline ({{\"fingerprints\":[…]}}, as --write-baseline writes): {e}",
                    p.display()
                ))
            })?
        }
        None => Baseline::default(),
    };
    let (o, event_lines) = sourced(settings, src).await?;
    let at = resolve_at(&o, src.at.as_deref())?;
    let all = check(&o, at);
    let (accepted, counted): (Vec<_>, Vec<_>) = all
        .iter()
        .cloned()
        .partition(|f| baseline.fingerprints.contains(&f.fingerprint));
    if let Some(p) = &opts.write_baseline {
        let b = Baseline {
            fingerprints: all.iter().map(|f| f.fingerprint.clone()).collect(),
        };
        let body = serde_json::to_vec_pretty(&b).map_err(std::io::Error::other);
        let written = body.and_then(|b| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .and_then(|mut f| f.write_all(&b))
        });
        written.map_err(|e| WatchError::Write {
            path: format!("{} (never overwritten)", p.display()),
            source: e,
        })?;
    }
    let source = src
        .from
        .as_ref()
        .or(src.script.as_ref())
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| settings.broker_url.clone().unwrap_or_default());
    let count = |s: Severity| counted.iter().filter(|f| f.severity == s).count();
    let summary = CheckSummary {
        kind: "summary",
        schema_version: crate::observe::print::json::SCHEMA_VERSION,
        findings: all.len(),
        counted: counted.len(),
        baselined: accepted.len(),
        errors: count(Severity::Error),
        warnings: count(Severity::Warning),
        notes: count(Severity::Note),
        fail_on: opts.fail_on.map(Severity::word).unwrap_or("never"),
        as_of: &o.events[at].id,
    };
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    let r = match opts.format {
        CheckFormat::Json => {
            json_lines(&mut out, &counted).and_then(|()| json_lines(&mut out, &[summary]))
        }
        CheckFormat::Text => {
            let mut w = Visible::text(&mut out);
            w.write_all(report::text::render(&counted).as_bytes())
                .and_then(|()| {
                    writeln!(
                        w,
                        "{} findings ({} errors, {} warnings, {} notes){}",
                        counted.len(),
                        summary.errors,
                        summary.warnings,
                        summary.notes,
                        if accepted.is_empty() {
                            String::new()
                        } else {
                            format!(", {} in the baseline", accepted.len())
                        }
                    )
                })
        }
        CheckFormat::Sarif => {
            let script = src.script.as_deref().zip(event_lines.as_deref());
            let places = script.map(|(path, lines)| report::sarif::Script {
                uri: report::sarif::uri(path),
                lines: counted.iter().map(|f| finding_line(&o, f, lines)).collect(),
            });
            let log = report::sarif::render(&counted, &source, places.as_ref());
            serde_json::to_vec_pretty(&log)
                .map_err(std::io::Error::other)
                .and_then(|b| Visible::json(&mut out).write_all(&b))
        }
        CheckFormat::Markdown => Visible::text(&mut out)
            .write_all(report::markdown::render(&counted, &source).as_bytes()),
    };
    finish(r.and_then(|()| out.flush()))?;
    let failing = opts
        .fail_on
        .is_some_and(|t| counted.iter().any(|f| f.severity >= t));
    Ok(u8::from(failing | integrity_failed(&o)))
}

/// The script line that made a finding's event (its node's issuing event
/// first, else the event it names).
fn finding_line(
    o: &crate::observe::Observed,
    f: &crate::judge::check::Finding,
    lines: &[usize],
) -> Option<usize> {
    let by_node = f
        .node
        .as_deref()
        .and_then(|n| n.strip_prefix('n')?.parse::<usize>().ok())
        .and_then(|n| o.nodes.get(n))
        .map(|n| n.event);
    let by_event = || {
        let id = f.event.as_deref()?;
        o.events.iter().rposition(|e| &*e.id == id)
    };
    by_node
        .or_else(by_event)
        .and_then(|k| lines.get(k).copied())
}

/// `diff`: from the source as of `--at` (default its first event) to `--to`
/// (default its last), or to the last event of `against`. Exit 1 with
/// `fail_on_new_access` when any agent gained reach.
pub async fn run_diff(
    settings: &Settings,
    src: &ObserveArgs,
    to: Option<&str>,
    against: Option<&std::path::Path>,
    format: Format,
    fail_on_new_access: bool,
) -> Result<u8, WatchError> {
    let a = source(settings, src).await?;
    let at_a = match src.at.as_deref() {
        Some(_) => resolve_at(&a, src.at.as_deref())?,
        None if against.is_some() => resolve_at(&a, None)?,
        None => 0,
    };
    let b = match against {
        Some(p) => {
            let mut b = crate::watch::read_file(p.to_path_buf()).await?;
            b.restrict(&src.filter);
            Some(b)
        }
        None => None,
    };
    let (later, at_b) = match &b {
        Some(b) => (b, crate::watch::resolve_flag(b, to, "--to")?),
        None => (&a, crate::watch::resolve_flag(&a, to, "--to")?),
    };
    let changes = crate::judge::diff::diff(&a, at_a, later, at_b);
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    let r = match format {
        Format::Json => json_lines(&mut out, &changes),
        Format::Text => {
            let mut w = Visible::text(&mut out);
            (|| {
                writeln!(
                    w,
                    "from {} ({}) to {} ({}){}:",
                    a.events[at_a].id,
                    crate::observe::when::stamp(a.events[at_a].ms),
                    later.events[at_b].id,
                    crate::observe::when::stamp(later.events[at_b].ms),
                    if b.is_some() {
                        " (the other trail)"
                    } else {
                        ""
                    }
                )?;
                if changes.is_empty() {
                    writeln!(w, "  nothing changed")?;
                }
                for c in &changes {
                    writeln!(w, "  {:<12} {}", c.kind, c.message)?;
                }
                Ok(())
            })()
        }
    };
    finish(r.and_then(|()| out.flush()))?;
    let gained = changes.iter().any(|c| c.kind == "gained");
    let broken = integrity_failed(&a) | b.as_ref().is_some_and(integrity_failed);
    Ok(u8::from((fail_on_new_access && gained) | broken))
}

/// `explain NODE SCOPE`: the broker's checks for that token and scope, as
/// of `--at`. Exit 0 allowed, 1 denied or unknown.
pub async fn run_explain(
    settings: &Settings,
    src: &ObserveArgs,
    node: &str,
    requested: &str,
    format: Format,
) -> Result<u8, WatchError> {
    let o = source(settings, src).await?;
    let at = resolve_at(&o, src.at.as_deref())?;
    let id = node
        .strip_prefix('n')
        .and_then(|d| d.parse::<usize>().ok())
        .filter(|&i| i < o.nodes.len() && o.exists(i, at))
        .ok_or_else(|| {
            WatchError::Usage(format!(
                "'{node}' is not a node of the trail as of {} (node ids as observe --print shows them: n0 … n{})",
                o.events[at].id,
                o.nodes.len().saturating_sub(1)
            ))
        })?;
    let (checks, decision) = crate::judge::explain::explain(&o, id, at, requested);
    let out = std::io::stdout().lock();
    let mut out = std::io::BufWriter::new(out);
    let r = match format {
        Format::Json => {
            json_lines(&mut out, &checks).and_then(|()| json_lines(&mut out, &[&decision]))
        }
        Format::Text => {
            let mut w = Visible::text(&mut out);
            (|| {
                writeln!(
                    w,
                    "{} ({}) for {requested}, as of {} ({}):",
                    decision.node,
                    with_orch(&o.agents[o.nodes[id].agent].spiffe),
                    o.events[at].id,
                    crate::observe::when::stamp(o.events[at].ms)
                )?;
                for c in &checks {
                    let mark = match c.result {
                        "pass" => "✓",
                        "fail" => "✗",
                        _ => "?",
                    };
                    writeln!(w, "  {mark} {:<20} {}", c.check, c.why)?;
                }
                writeln!(w, "→ {}: {}", decision.decision, decision.why)
            })()
        }
    };
    finish(r.and_then(|()| out.flush()))?;
    Ok(u8::from(
        decision.decision != "allowed" || integrity_failed(&o),
    ))
}
