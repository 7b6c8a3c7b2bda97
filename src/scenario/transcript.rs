//! Rendering step reports: a readable text transcript, and one JSON object
//! per step (field names documented in docs/scenarios.md, "JSON transcript").
//! Raw tokens never appear: only their redacted form.

use std::fmt::Write;

use serde_json::{Value, json};

use super::Keyword;
use super::report::{StepReport, StepResult};
use crate::app::Hop;
use crate::scope::Fate;
use crate::worker::Call;

/// Output format of `--script`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// No transcript: the final tree as a Mermaid flowchart.
    Mermaid,
    /// No transcript: the final tree as Graphviz DOT.
    Dot,
}

/// The run's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub steps: usize,
    pub ran: usize,
    pub refused: usize,
    pub errors: usize,
    pub expectations: usize,
    pub held: usize,
    pub failed: usize,
    pub not_run: usize,
    pub unreachable: Option<String>,
    pub millis: u128,
}

impl Summary {
    pub fn add(&mut self, r: &StepReport) {
        self.steps += 1;
        match &r.result {
            StepResult::NotRun => self.not_run += 1,
            StepResult::Unreachable(why) => {
                self.ran += 1;
                self.unreachable.get_or_insert_with(|| why.clone());
            }
            StepResult::Refused(_) => {
                self.ran += 1;
                self.refused += 1;
            }
            StepResult::Error(_) => {
                self.ran += 1;
                self.errors += 1;
            }
            StepResult::Ok => self.ran += 1,
        }
        if let Some(e) = &r.expectation {
            self.expectations += 1;
            if e.ok {
                self.held += 1;
            } else {
                self.failed += 1;
            }
        }
    }

    /// The documented exit code: 0 all held, 1 an expectation failed, 3 unreachable.
    pub fn exit_code(&self) -> u8 {
        if self.unreachable.is_some() {
            3
        } else if self.failed > 0 || self.errors > 0 {
            1
        } else {
            0
        }
    }
}

fn calls_line(calls: &[Call]) -> Option<String> {
    if calls.is_empty() {
        return None;
    }
    let parts: Vec<String> = calls
        .iter()
        .map(|c| match c.status {
            Some(s) => format!("{} {} {s}", c.method, c.path),
            None => format!("{} {} (no answer)", c.method, c.path),
        })
        .collect();
    Some(parts.join(", "))
}

fn fate_lines(h: &Hop, out: &mut String, indent: &str) {
    for (parent, fate) in &h.attenuation {
        match fate {
            Fate::Kept => {}
            Fate::Narrowed(to) => {
                let _ = writeln!(out, "{indent}narrowed {parent} → {}", to.join(", "));
            }
            Fate::Dropped => {
                let _ = writeln!(out, "{indent}dropped  {parent}");
            }
        }
    }
}

/// The chain as an indented tree, root first. A chain longer than any
/// broker issues is forged or foreign: its middle is summarised, and the
/// indentation never grows past the deepest real chain.
fn chain_text(chain: &[Hop], refused: bool, out: &mut String) {
    const SHOWN: usize = crate::jwt::MAX_CHAIN + 1;
    let long = chain.len() > SHOWN;
    out.push_str("    chain:\n");
    for (i, h) in chain.iter().enumerate() {
        let last = i + 1 == chain.len();
        if long && i >= 3 && !last {
            if i == 3 {
                let _ = writeln!(
                    out,
                    "      … {} hops not shown — forged or foreign: {} hops, a broker never issues more than {}",
                    chain.len() - 4,
                    chain.len() - 1,
                    crate::jwt::MAX_CHAIN
                );
            }
            continue;
        }
        let level = i.min(SHOWN);
        let pad = "   ".repeat(level.saturating_sub(1));
        let lead = if i == 0 {
            "      ".to_string()
        } else {
            format!("      {pad}└─ ")
        };
        let name = match (&h.label, last) {
            (Some(l), true) if l != &h.who => format!("{} ({l})", h.who),
            _ => h.who.clone(),
        };
        let verb = match (last, refused) {
            (true, true) => "would hold",
            (true, false) => "holds",
            _ => "held",
        };
        let mark = if last && refused { "  ✗ refused" } else { "" };
        let _ = writeln!(out, "{lead}{name} {verb} {}{mark}", h.scope.join(", "));
        let sub = format!(
            "      {}   ",
            "   ".repeat(level.saturating_sub(1)) + if i == 0 { "" } else { "   " }
        );
        fate_lines(h, out, &sub);
    }
}

/// The transcript's opening lines.
pub fn header_text(title: Option<&str>, file: &str, broker: &str) -> String {
    let mut out = String::new();
    match title {
        Some(t) => {
            let _ = writeln!(out, "chainview · {t} · {file}");
        }
        None => {
            let _ = writeln!(out, "chainview · {file}");
        }
    }
    let _ = writeln!(out, "broker: {broker}");
    out
}

/// One step as text.
pub fn step_text(r: &StepReport) -> String {
    let mut out = String::new();
    heading_text(r, &mut out);
    let refused = matches!(r.result, StepResult::Refused(_));
    tokens_text(r, &mut out);
    if !r.chain.is_empty() && r.chain.len() > 1 {
        chain_text(&r.chain, refused, &mut out);
    }
    if !r.not_held.is_empty() {
        out.push_str("    not held by the delegator:\n");
        for n in &r.not_held {
            let _ = writeln!(out, "      {} — {}", n.scope, n.reason);
        }
    }
    if let Some(p) = &r.probe {
        probe_text(p, &mut out);
    }
    fates_text(r, &mut out);
    if let Some(a) = &r.audit {
        audit_text(a, &mut out);
    }
    if let Some(e) = &r.expectation {
        let _ = writeln!(out, "    {} {}", if e.ok { "✓" } else { "✗" }, e.reason);
    }
    if let Some(w) = &r.warning {
        let _ = writeln!(out, "    ⚠ {w}");
    }
    if let Some(c) = calls_line(&r.calls) {
        let _ = writeln!(out, "    broker: {c}");
    }
    out
}

/// The step's line and how it ended.
fn heading_text(r: &StepReport, out: &mut String) {
    match (&r.say, &r.title) {
        (Some(t), _) => {
            let _ = writeln!(out, "\n[{}] line {}  » {t}", r.index, r.line);
        }
        (None, Some(t)) => {
            let _ = writeln!(out, "\n[{}] line {}  ══ {t} ══", r.index, r.line);
        }
        _ => {
            let _ = writeln!(out, "\n[{}] line {}  {}", r.index, r.line, r.source);
        }
    }
    match &r.result {
        StepResult::Ok => {}
        StepResult::Refused(b) => {
            let _ = writeln!(
                out,
                "    ✗ refused by the broker: {} {} — \"{}\"",
                b.status, b.error_code, b.detail
            );
        }
        StepResult::Error(e) => {
            let _ = writeln!(out, "    ✗ could not run: {e}");
        }
        StepResult::Unreachable(e) => {
            let _ = writeln!(out, "    ✗ broker unreachable: {e}");
        }
        StepResult::NotRun => {
            let _ = writeln!(out, "    – not run (the broker could not be reached)");
        }
    }
}

/// The tokens a step issued, refused, validated, renewed or released.
fn tokens_text(r: &StepReport, out: &mut String) {
    if r.kind == Keyword::Import {
        for t in &r.tokens {
            let _ = writeln!(
                out,
                "    ✓ {} imported: held by {} · depth {} · scope {}\n      token {} · the broker says {}",
                t.label,
                t.holder,
                t.depth,
                t.scope.join(", "),
                t.token.as_deref().unwrap_or("-"),
                t.status
            );
        }
    } else if !matches!(
        r.kind,
        Keyword::Validate | Keyword::Release | Keyword::Renew
    ) {
        for t in &r.tokens {
            if t.status == "refused" || t.status == "failed" {
                continue;
            }
            let who = match (&t.agent_id, r.kind) {
                (Some(id), Keyword::Agent) => format!("{} registered as {id}", t.holder),
                _ => format!("{} issued to {}", t.label, t.holder),
            };
            let _ = writeln!(
                out,
                "    ✓ {who}\n      token {} · expires in {} s · depth {} · scope {}",
                t.token.as_deref().unwrap_or("-"),
                t.expires_in.unwrap_or(0),
                t.depth,
                t.scope.join(", ")
            );
        }
    } else {
        for t in &r.tokens {
            let _ = writeln!(
                out,
                "    • {} ({}) is {} · token {} · scope {}",
                t.label,
                t.holder,
                t.status,
                t.token.as_deref().unwrap_or("-"),
                t.scope.join(", ")
            );
        }
    }
}

/// A probe table.
fn probe_text(p: &super::report::Probe, out: &mut String) {
    let _ = writeln!(out, "    probe {}:", p.scope);
    let widest = |of: fn(&super::report::ProbeLine) -> &str, min: usize| {
        p.rows
            .iter()
            .map(|r| of(r).chars().count())
            .fold(min, usize::max)
    };
    let w = widest(|r| &r.token, 5);
    let hw = widest(|r| &r.holder, 6);
    for row in &p.rows {
        let why = match (&row.by, &row.reason) {
            (Some(by), _) => format!("granted by {by}"),
            (None, Some(reason)) => reason.clone(),
            _ => String::new(),
        };
        let mark = match row.verdict {
            "permits" => "✓",
            "denies" => "✗",
            _ => "†",
        };
        let _ = writeln!(
            out,
            "      {mark} {:<w$}  {:<hw$}  {:<7}  {why}",
            row.token, row.holder, row.verdict
        );
    }
}

/// Which tokens died and which lived on after a revocation.
fn fates_text(r: &StepReport, out: &mut String) {
    if !r.fates.is_empty() {
        out.push_str("    after the revocation, the broker says:\n");
        for f in &r.fates {
            let said = match f.valid_after {
                Some(true) => "lives on",
                Some(false) => "dies",
                None if f.trail => "predicted to die; the audit trail will confirm",
                None => "unknown",
            };
            let agree = match (f.valid_after, f.predicted_dead) {
                (Some(v), dead) if v != dead => "",
                (None, _) => "",
                _ => "  (differs from the broker rule chainview knows!)",
            };
            let mark = if f.valid_after == Some(false) {
                "†"
            } else {
                "✓"
            };
            let _ = writeln!(out, "      {mark} {} ({}) {said}{agree}", f.label, f.holder);
        }
    }
    if r.kind == Keyword::Revoke
        && matches!(r.result, StepResult::Ok)
        && !r
            .fates
            .iter()
            .any(|f| f.valid_after == Some(false) || (f.trail && f.predicted_dead))
    {
        out.push_str("    nothing died: no live token matched this revocation");
        if r.source.split_whitespace().nth(1) == Some("chain") {
            out.push_str(
                " (a chain revocation names the root delegator of the chain; naming a mid-chain agent kills nothing)",
            );
        }
        out.push('\n');
    }
}

/// The audit events a step fetched.
fn audit_text(a: &super::report::AuditReport, out: &mut String) {
    let _ = writeln!(
        out,
        "    audit: {} of {} events match · hash chain {}",
        a.events.len(),
        a.read,
        a.chain
    );
    if let Some(cut) = &a.cut {
        let _ = writeln!(
            out,
            "    audit: CUT — read {cut}; the broker holds {}",
            a.total
        );
    }
    for e in &a.events {
        let _ = writeln!(
            out,
            "      {} {:<32} {:<8} {}{}",
            e.id,
            e.event_type,
            e.outcome,
            e.agent,
            if e.detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", e.detail)
            }
        );
    }
}

/// The closing line.
pub fn summary_text(s: &Summary) -> String {
    let mut out = String::new();
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    let _ = writeln!(
        out,
        "\n── {} ({} refused by the broker) · {}: {} held, {} failed{} · {} ms",
        n(s.steps, "step", "steps"),
        s.refused,
        n(s.expectations, "expectation", "expectations"),
        s.held,
        s.failed,
        if s.not_run > 0 {
            format!(" · {} not run", n(s.not_run, "step", "steps"))
        } else {
            String::new()
        },
        s.millis
    );
    if let Some(why) = &s.unreachable {
        let _ = writeln!(out, "stopped: the broker could not be reached: {why}");
    }
    out
}

fn hop_json(h: &Hop) -> Value {
    let mut narrowed = Vec::new();
    let mut dropped = Vec::new();
    for (p, f) in &h.attenuation {
        match f {
            Fate::Kept => {}
            Fate::Narrowed(to) => narrowed.push(json!({ "from": p, "to": to })),
            Fate::Dropped => dropped.push(json!(p)),
        }
    }
    json!({
        "agent": h.who,
        "agent_id": h.agent_id,
        "label": h.label,
        "scope": h.scope,
        "narrowed": narrowed,
        "dropped": dropped,
    })
}

/// One step as a JSON object.
pub fn step_json(r: &StepReport) -> Value {
    let broker = match &r.result {
        StepResult::Refused(b) => json!({
            "status": b.status, "error_code": b.error_code, "detail": b.detail, "request_id": b.request_id,
        }),
        _ => Value::Null,
    };
    let error = match &r.result {
        StepResult::Error(e) | StepResult::Unreachable(e) => json!(e),
        _ => Value::Null,
    };
    let mut v = json!({
        "step": r.index,
        "line": r.line,
        "kind": r.kind.as_str(),
        "source": r.source,
        "result": r.result.word(),
        "broker": broker,
        "error": error,
        "say": r.say,
        "title": r.title,
        "tokens": r.tokens.iter().map(|t| json!({
            "label": t.label, "holder": t.holder, "agent_id": t.agent_id, "token": t.token,
            "expires_in": t.expires_in, "scope": t.scope, "depth": t.depth, "status": t.status,
        })).collect::<Vec<_>>(),
        "chain": r.chain.iter().map(hop_json).collect::<Vec<_>>(),
        "not_held": r.not_held.iter().map(|n| json!({"scope": n.scope, "reason": n.reason})).collect::<Vec<_>>(),
        "probe": r.probe.as_ref().map(|p| json!({
            "scope": p.scope,
            "rows": p.rows.iter().map(|row| json!({
                "token": row.token, "holder": row.holder, "verdict": row.verdict, "by": row.by, "reason": row.reason,
            })).collect::<Vec<_>>(),
        })),
        "revocation": r.fates.iter().map(|f| json!({
            "token": f.label, "holder": f.holder, "valid_after": f.valid_after, "predicted_dead": f.predicted_dead,
        })).collect::<Vec<_>>(),
        "audit": r.audit.as_ref().map(|a| json!({
            "total": a.total,
            "read": a.read,
            "first": a.first,
            "whole": a.whole(),
            "cut": a.cut,
            "chain_ok": a.chain_ok,
            "chain": a.chain,
            "events": a.events.iter().map(|e| json!({
                "id": e.id, "event_type": e.event_type, "agent": e.agent,
                "outcome": e.outcome, "detail": e.detail,
            })).collect::<Vec<_>>(),
        })),
        "expectation": r.expectation.as_ref().map(|e| json!({"ok": e.ok, "reason": e.reason})),
        "calls": r.calls.iter().map(|c| json!({
            "method": c.method, "path": c.path, "status": c.status,
            "ms": (c.latency.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0,
            "error": c.error,
        })).collect::<Vec<_>>(),
    });
    // Only when there is one, so earlier consumers see no new key.
    if let Some(w) = &r.warning {
        v["warning"] = json!(w);
    }
    v
}

/// The closing JSON object (`"kind": "summary"`).
pub fn summary_json(s: &Summary) -> Value {
    json!({
        "kind": "summary",
        "steps": s.steps,
        "refused": s.refused,
        "errors": s.errors,
        "not_run": s.not_run,
        "expectations": s.expectations,
        "held": s.held,
        "failed": s.failed,
        "unreachable": s.unreachable,
        "exit_code": s.exit_code(),
        "ms": s.millis,
    })
}
