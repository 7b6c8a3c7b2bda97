//! Detail of the selected node: decoded header and claims, chain records with
//! timestamps, separate badges for decoded / signature verified /
//! broker-validated / chain_hash, the raw token redacted until `t` reveals it.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{Theme, fit, hint, open_pane, status_symbol, ttl_text};
use crate::app::App;
use crate::view::{Focus, View};

fn badge(ok: Option<bool>, label: &str, t: Theme) -> Span<'static> {
    match ok {
        // A badge never wraps in its middle.
        Some(true) => Span::styled(super::unbroken(&format!("[✓ {label}]")) + " ", t.good()),
        Some(false) => Span::styled(super::unbroken(&format!("[✗ {label}]")) + " ", t.bad()),
        None => Span::styled(super::unbroken(&format!("[? {label}]")) + " ", t.dim()),
    }
}

/// Local time with the zone, or UTC with `--utc`.
fn time(ts: i64) -> String {
    crate::observe::when::stamp_secs(ts)
}

pub fn draw(f: &mut Frame, area: Rect, app: &App, view: &View, t: Theme, now: i64) {
    let inner = open_pane(f, area, view, Focus::Detail, " Detail ");
    let Some(id) = view.selected.filter(|id| *id < app.tokens.len()) else {
        f.render_widget(
            hint(
                "Select a token in the chain tree to see its header, claims and chain.",
                t,
            ),
            inner,
        );
        return;
    };
    let tok = &app.tokens[id];
    let agent = &app.agents[tok.holder];
    let status = tok.status_at(now);
    let mut lines: Vec<Line> = Vec::new();
    lines.push(Line::from(vec![
        Span::styled(
            format!("{} {}", status_symbol(&status), app.token_name(id)),
            t.strong(),
        ),
        Span::raw(format!(" held by {}", agent.name)),
    ]));
    let w = inner.width as usize;
    if let Some(aid) = &agent.agent_id {
        lines.push(Line::from(Span::styled(fit(aid, w), t.dim())));
    }
    let mut state = vec![Span::styled(status.reason(), t.status(&status))];
    if let Some(exp) = tok.exp() {
        state.push(Span::raw(if exp == crate::app::EXP_UNKNOWN {
            " · expiry not known".to_string()
        } else if exp >= now {
            format!(" · expires in {}", ttl_text(exp - now))
        } else {
            " · past its exp".to_string()
        }));
    }
    if tok.raw.is_some() || !tok.notes.is_empty() {
        state.push(Span::raw(format!(" · depth {}", app.depth(id))));
    }
    lines.push(Line::from(state));
    // Observe: where the token comes from in the trail, and what is inferred.
    for n in &tok.notes {
        let style = if n.starts_with("inferred") {
            t.warn()
        } else {
            t.dim()
        };
        lines.push(Line::from(Span::styled(n.clone(), style)));
    }
    badges(&mut lines, tok, t);
    token_lines(&mut lines, app, tok, &status, view.reveal, t);
    if let Some(raw) = &tok.raw
        && let Ok(d) = crate::jwt::decode(raw)
    {
        decoded_lines(&mut lines, app, tok, &d, w, t);
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((view.detail_offset, 0)),
        inner,
    );
}

/// decoded · signature · broker-validated · chain_hash.
fn badges(lines: &mut Vec<Line<'static>>, tok: &crate::app::TokenEntry, t: Theme) {
    let v = tok.verification.as_ref();
    let validated = tok.validated.as_ref();
    let validated_label = match validated {
        Some(v) => format!(
            "broker-validated {} {}",
            if v.valid { "valid" } else { "invalid" },
            chrono::DateTime::from_timestamp(v.at, 0)
                .map(|d| d.format("%H:%M:%S").to_string())
                .unwrap_or_default()
        ),
        None => "broker-validated: not yet (v)".into(),
    };
    if tok.raw.is_some() {
        lines.push(Line::from(vec![
            badge(tok.claims.as_ref().map(|_| true), "decoded", t),
            badge(
                v.map(|v| v.signature),
                if v.is_some() {
                    "signature verified"
                } else {
                    "signature: key unknown"
                },
                t,
            ),
            badge(validated.map(|v| v.valid), &validated_label, t),
            badge(v.and_then(|v| v.chain_hash), "chain_hash", t),
        ]));
    }
}

/// The token itself (redacted unless revealed), or why none was issued.
fn token_lines(
    lines: &mut Vec<Line<'static>>,
    app: &App,
    tok: &crate::app::TokenEntry,
    status: &crate::app::TokenStatus,
    reveal: bool,
    t: Theme,
) {
    match (&tok.raw, reveal) {
        (Some(raw), true) => lines.push(Line::from(vec![
            Span::styled("token ", t.dim()),
            Span::raw(raw.clone()),
        ])),
        (Some(_), false) => lines.push(Line::from(vec![
            Span::styled("token ", t.dim()),
            Span::raw(tok.redacted().unwrap_or_default()),
            Span::styled("  (t reveals)", t.dim()),
        ])),
        (None, _) if tok.claims.is_some() => known_lines(lines, app, tok, t),
        (None, _) => {
            lines.push(Line::from(Span::styled(
                format!("not issued · asked {}", tok.requested_scope.join(",")),
                t.dim(),
            )));
            if let (Some(p), crate::app::TokenStatus::Refused(_)) = (tok.parent(), status) {
                let parent = &app.tokens[p];
                lines.push(Line::from(Span::styled(
                    format!("{} holds {}", app.token_name(p), parent.scope().join(", ")),
                    t.accent(),
                )));
                for e in crate::scope::explain(&tok.requested_scope, parent.scope()) {
                    if let crate::scope::Verdict::Denied(d) = e.verdict {
                        lines.push(Line::from(vec![
                            Span::styled(format!("  ✗ {} ", e.requested), t.bad()),
                            Span::raw(format!("not held: {d}")),
                        ]));
                    }
                }
            }
        }
    }
}

/// A token known from an audit trail (observe, the merged view): its claims
/// as far as the trail tells, and its chain back to the root.
fn known_lines(lines: &mut Vec<Line<'static>>, app: &App, tok: &crate::app::TokenEntry, t: Theme) {
    let Some(c) = &tok.claims else { return };
    lines.push(Line::from(Span::styled(
        "claims, from the audit trail",
        t.accent(),
    )));
    lines.push(Line::from(format!("  sub {}", c.sub)));
    lines.push(Line::from(format!("  scope {}", c.scope.join(", "))));
    lines.push(Line::from(format!(
        "  orch_id {} · task_id {}",
        c.orch_id, c.task_id
    )));
    lines.push(Line::from(format!(
        "  jti {}",
        if c.jti.is_empty() {
            "(not in the trail)"
        } else {
            c.jti.as_str()
        }
    )));
    if c.delegation_chain.is_empty() {
        return;
    }
    lines.push(Line::from(Span::styled(
        format!("chain back to the root ({} hops)", c.delegation_chain.len()),
        t.accent(),
    )));
    for (i, r) in c.delegation_chain.iter().enumerate() {
        let who = app.agent_name(&r.agent).unwrap_or(&r.agent);
        lines.push(Line::from(format!(
            "  [{i}] {who} held {} · delegated at {}",
            r.scope.join(","),
            crate::observe::when::stamp_text(&r.delegated_at)
        )));
    }
}

/// Header, claims and the delegation chain with each record's signature.
fn decoded_lines(
    lines: &mut Vec<Line<'static>>,
    app: &App,
    tok: &crate::app::TokenEntry,
    d: &crate::jwt::Decoded,
    w: usize,
    t: Theme,
) {
    let v = tok.verification.as_ref();
    lines.push(Line::from(Span::styled("header", t.accent())));
    let kid = d
        .header
        .kid
        .as_deref()
        .map(|k| fit(k, 13))
        .unwrap_or_else(|| "-".into());
    lines.push(Line::from(format!(
        "  alg {} · typ {} · kid {kid}",
        d.header.alg, d.header.typ
    )));
    let c = &d.claims;
    lines.push(Line::from(Span::styled("claims", t.accent())));
    lines.push(Line::from(fit(&format!("  sub {}", c.sub), w)));
    lines.push(Line::from(format!("  scope {}", c.scope.join(", "))));
    lines.push(Line::from(format!("  iat {}", time(c.iat))));
    lines.push(Line::from(format!("  exp {}", time(c.exp))));
    lines.push(Line::from(format!(
        "  jti {} · iss \"{}\"",
        fit(&c.jti, 9),
        c.iss
    )));
    if !c.task_id.is_empty() || !c.orch_id.is_empty() {
        lines.push(Line::from(format!(
            "  orch_id {} · task_id {}",
            c.orch_id, c.task_id
        )));
    }
    if !c.aud.is_empty() {
        lines.push(Line::from(format!("  aud {}", c.aud.join(", "))));
    }
    if !c.delegation_chain.is_empty() {
        lines.push(Line::from(Span::styled(
            format!(
                "delegation_chain ({} records) · chain_hash {}…",
                c.delegation_chain.len(),
                &c.chain_hash.get(..12).unwrap_or("")
            ),
            t.accent(),
        )));
        let n = c.delegation_chain.len();
        for (i, r) in c.delegation_chain.iter().enumerate() {
            if n > crate::jwt::MAX_CHAIN && i >= crate::jwt::MAX_CHAIN {
                lines.push(Line::from(Span::styled(
                    format!(
                        "  … {} more records not shown — forged or foreign: {n} hops, a broker never issues more than {}",
                        n - i,
                        crate::jwt::MAX_CHAIN
                    ),
                    t.bad(),
                )));
                break;
            }
            let who = app.agent_name(&r.agent).unwrap_or(&r.agent);
            let sig = v.and_then(|v| v.records.get(i).copied());
            lines.push(Line::from(vec![
                Span::raw(format!(
                    "  [{i}] {who} held {} at {} ",
                    r.scope.join(","),
                    r.delegated_at
                )),
                match sig {
                    Some(true) => Span::styled("sig ✓", t.good()),
                    Some(false) => Span::styled("sig ✗", t.bad()),
                    None => Span::styled("sig ?", t.dim()),
                },
            ]));
        }
    }
}
