//! "What if I revoke": the revoke form's lines, before Enter — what dies,
//! what may die and what survives by the broker's real rule (it never
//! cascades), each with why, and the plan (the fewest entries that kill the
//! whole subtree, and what else each kills). In observe (read-only) the
//! same, with the exact commands to run it.

use ratatui::text::{Line, Span};

use super::{Theme, fit};
use crate::app::App;
use crate::judge::what_if::Effect;
use crate::view::View;

fn short(a: &str) -> String {
    crate::rules::spiffe::short(a, true)
}

/// A target as the lines show it (an agent by its name in the explorer, a
/// SPIFFE id shortened; the commands carry it whole).
fn shown(app: &App, target: &str) -> String {
    match app.agent_name(target) {
        Some(name) if !name.starts_with("spiffe://") => name.to_string(),
        _ if target.starts_with("spiffe://") => short(target),
        _ => target.to_string(),
    }
}

/// `why` with each SPIFFE id in it shortened (the lists are read, the
/// commands copied).
fn shorten_ids(app: &App, why: &str) -> String {
    why.split(' ')
        .map(|w| match w.find("spiffe://") {
            Some(i) => {
                let from = i + "spiffe://".len();
                let end = w[from..]
                    .find([',', ')', ':', ';'])
                    .map_or(w.len(), |e| from + e);
                format!("{}{}{}", &w[..i], shown(app, &w[i..end]), &w[end..])
            }
            None => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A node as the lines name it: the explorer's name for its token when it
/// is in the tree; otherwise (and in observe, whose tree shows node ids)
/// its node id and holder.
fn node_name(view: &View, app: &App, node: &str, agent: Option<&str>) -> String {
    match view.judgment.token_of(node) {
        Some(t) if !view.observing && t < app.tokens.len() => app.token_name(t),
        _ => match agent {
            Some(a) => format!("{node} {}", short(a)),
            None => node.to_string(),
        },
    }
}

/// The what-if lines for the open revoke form, in at most `room` rows of
/// `width` columns (the rows of each list are cut first, saying how many
/// are not shown).
pub fn lines(view: &View, app: &App, width: usize, room: usize, t: Theme) -> Vec<Line<'static>> {
    let j = &view.judgment;
    let Some(w) = &j.what_if else {
        return match &j.unavailable {
            Some(why) => vec![Line::from(Span::styled(
                format!("what if: not judged — {why}"),
                t.dim(),
            ))],
            None => Vec::new(),
        };
    };
    let target = match &w.target {
        Err(e) => {
            return vec![Line::from(Span::styled(
                fit(&format!("what if: {e}"), width),
                t.warn(),
            ))];
        }
        Ok(target) => target.clone(),
    };
    let as_of = j.as_of.clone().unwrap_or_default();
    let by =
        |kind: &str| -> Vec<&Effect> { w.effects.iter().filter(|e| e.effect == kind).collect() };
    let (dies, may, survives) = (by("dies"), by("may die"), by("survives"));
    let plan = w.plan.as_ref();
    let commands = view
        .observing
        .then(|| commands(w.level.as_str(), &target, &app.broker_url, &as_of));
    let names = |nodes: &[String]| -> String {
        nodes
            .iter()
            .map(|n| node_name(view, app, n, None))
            .collect::<Vec<_>>()
            .join(" ")
    };
    // Rows per list, lowered until everything fits; then only the
    // broker's route of the commands.
    let tries = (0..=8usize)
        .rev()
        .map(|cap| (cap, 3))
        .chain((0..=8usize).rev().map(|cap| (cap, 1)));
    for (cap, n_cmds) in tries {
        let mut out = Vec::new();
        out.push(Line::from(Span::styled(
            fit(
                &format!(
                    "What if: revoke {} {} · as of {as_of}, by the broker's rule",
                    w.level,
                    shown(app, &target)
                ),
                width,
            ),
            t.strong(),
        )));
        let list =
            |out: &mut Vec<Line<'static>>, name: &str, rows: &[&Effect], with_why: bool, style| {
                let names: Vec<String> = rows
                    .iter()
                    .map(|e| {
                        format!(
                            "{} (d{})",
                            node_name(view, app, &e.node, Some(&e.agent)),
                            e.depth
                        )
                    })
                    .collect();
                if !with_why || rows.is_empty() {
                    out.push(Line::from(Span::styled(
                        fit(
                            &format!("  {name} {}: {}", rows.len(), names.join(", ")),
                            width,
                        ),
                        style,
                    )));
                    return;
                }
                out.push(Line::from(Span::styled(
                    format!("  {name} {}:", rows.len()),
                    style,
                )));
                // "+1 more" would take the row the one row takes.
                let cap = if rows.len() <= cap + 1 {
                    rows.len()
                } else {
                    cap
                };
                for (e, n) in rows.iter().zip(&names).take(cap) {
                    out.push(Line::from(Span::raw(fit(
                        &format!("    {n} — {}", shorten_ids(app, &e.why)),
                        width,
                    ))));
                }
                if rows.len() > cap {
                    out.push(Line::from(Span::styled(
                        format!("    +{} more", rows.len() - cap),
                        t.dim(),
                    )));
                }
            };
        list(&mut out, "✗ dies", &dies, false, t.bad());
        list(&mut out, "◌ may die", &may, true, t.warn());
        list(&mut out, "⚠ survives", &survives, true, t.warn());
        if let Some(p) = plan {
            out.push(Line::from(Span::styled(
                "plan — the fewest revocations that kill the whole subtree:",
                t.strong(),
            )));
            for (i, e) in p.entries.iter().enumerate() {
                let kills = if e.kills.is_empty() {
                    "nothing live".to_string()
                } else {
                    names(&e.kills)
                };
                let also = if e.also_kills.is_empty() {
                    String::new()
                } else {
                    format!("; also kills {}", names(&e.also_kills))
                };
                out.push(Line::from(Span::raw(fit(
                    &format!(
                        "  {}. revoke {} {} — kills {kills}{also}",
                        i + 1,
                        e.level,
                        shown(app, &e.target)
                    ),
                    width,
                ))));
            }
            if !p.uncovered.is_empty() {
                out.push(Line::from(Span::styled(
                    fit(
                        &format!("  no entry reaches {}", names(&p.uncovered)),
                        width,
                    ),
                    t.warn(),
                )));
            }
        }
        if let Some(cmds) = &commands {
            out.push(Line::from(Span::styled(
                "read-only — to revoke, run one of (an admin Bearer token):",
                t.accent(),
            )));
            // Whole, never cut: they are to be copied (wrapped at the
            // width, so each takes the rows counted).
            for c in cmds.iter().take(n_cmds) {
                let chars: Vec<char> = format!("  {c}").chars().collect();
                for piece in chars.chunks(width.max(8)) {
                    out.push(Line::from(Span::raw(piece.iter().collect::<String>())));
                }
            }
        }
        let rows: usize = out
            .iter()
            .map(|l| l.width().max(1).div_ceil(width.max(1)))
            .sum();
        if rows <= room || (cap == 0 && n_cmds == 1) {
            return out;
        }
    }
    Vec::new()
}

/// The exact commands that carry the revocation out (observe never does):
/// the broker's route with its body, the explorer's action, and the
/// headless what-if over the same source.
pub fn commands(level: &str, target: &str, source: &str, as_of: &str) -> Vec<String> {
    let body = serde_json::json!({ "level": level, "target": target });
    let (broker, src) = match source.strip_prefix("file:") {
        Some(path) => ("URL".to_string(), format!("--from {path} --at {as_of}")),
        None => (source.to_string(), format!("--broker {source}")),
    };
    vec![
        format!("POST /v1/revoke {body}"),
        format!("in the explorer (chainview --broker {broker}): R, level {level}, target {target}"),
        format!("chainview what-if revoke {level} {target} {src}"),
    ]
}
