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

/// `who-can PATTERN`: exit 1 with `expect_none` when anyone live or may
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
    let o = gather(settings, src).await?;
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
    Ok(u8::from(expect_none && holders > 0))
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
    let o = gather(settings, src).await?;
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
    Ok(0)
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
            "{:<4} {} by {} ({})",
            a.status,
            with_orch(&a.agent),
            a.grants.join(" "),
            a.node
        )?;
        writeln!(w, "     path: {}", path.join(" → "))?;
        if a.status != "live" {
            writeln!(w, "     {}", a.status_why)?;
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
