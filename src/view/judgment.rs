//! Judgment in the panes: the findings of `check`, "who can" for a pattern
//! typed in the probe, and "what if I revoke" for the revoke form, over the
//! audit trail rebuilt (observe's reconstruction; in the explorer the trail
//! the merged view reads), as of the event shown. The loops call
//! [`refresh`] before each frame; it recomputes only what changed (the
//! trail, the event shown, the question). Pure: no I/O.

use rustc_hash::FxHashMap;

use super::{Action, Focus, View, form::FormKind, keymap::Mode, keymap::Verb};
use crate::app::{App, TokenId};
use crate::judge::check::{Finding, Severity, check};
use crate::judge::what_if::{Effect, Plan, resolve_target, what_if};
use crate::judge::who_can::{Access, Pattern, who_can};
use crate::observe::Observed;
use crate::rules::RevokeLevel;

/// A finding and the token of the tree it is about (`None`: not in the
/// tree — no node, or another client's token while the merged view is off).
#[derive(Debug, Clone)]
pub struct FindingRow {
    pub finding: Finding,
    pub token: Option<TokenId>,
}

/// One agent's reach, with the tokens of the tree for it and its path.
#[derive(Debug, Clone)]
pub struct WhoRow {
    pub access: Access,
    pub token: Option<TokenId>,
    /// The path's hops (root first) as tokens of the tree.
    pub path: Vec<Option<TokenId>>,
}

/// The answer to "what if I revoke" for the revoke form.
#[derive(Debug, Clone)]
pub struct WhatIf {
    pub level: RevokeLevel,
    /// The target as the broker takes it, or why there is none.
    pub target: Result<String, String>,
    pub effects: Vec<Effect>,
    pub plan: Option<Plan>,
}

/// What the trail and the event shown are (a change recomputes).
type DataKey = (usize, usize, u64, usize);

/// The judgment state of the panes.
#[derive(Debug, Default)]
pub struct Judgment {
    /// The event judged as of; `None`: no trail (yet).
    pub as_of: Option<String>,
    /// Why nothing is judged (no admin secret, the trail not read yet).
    pub unavailable: Option<String>,
    pub findings: Vec<FindingRow>,
    /// The worst severity of the findings on each token, for the tree.
    pub marks: FxHashMap<TokenId, Severity>,
    /// The selected finding, and the first shown.
    pub sel: usize,
    pub offset: usize,
    /// The probe answers "who can" (`W`) rather than per token (`/`).
    pub who_mode: bool,
    /// The pattern asked and the answer (or what is wrong with the pattern).
    pub who: Option<(String, Result<Vec<WhoRow>, String>)>,
    pub who_sel: usize,
    /// The revoke form's level and target, answered.
    pub what_if: Option<WhatIf>,
    /// The path highlighted in the tree (a who-can row's, root first).
    pub path: Vec<TokenId>,
    data_key: Option<DataKey>,
    who_key: Option<(String, DataKey)>,
    what_key: Option<(RevokeLevel, String, DataKey)>,
    node_token: Vec<Option<TokenId>>,
}

impl Judgment {
    /// Whether the probe's `text` is a who-can question: asked with `W`, or
    /// a pattern whose action or resource is `*` (a scope a broker would
    /// read literally, so never a useful scope question).
    pub fn asks_who(&self, text: &str) -> bool {
        let mut parts = text.trim().splitn(3, ':');
        let (a, r) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        self.who_mode || a == "*" || r == "*"
    }

    /// The who-can rows shown (when the answer is one).
    pub fn who_rows(&self) -> &[WhoRow] {
        match &self.who {
            Some((_, Ok(rows))) => rows,
            _ => &[],
        }
    }

    /// The token of node `nN` in the tree.
    pub fn token_of(&self, node: &str) -> Option<TokenId> {
        let n = node.strip_prefix('n')?.parse::<usize>().ok()?;
        self.node_token.get(n).copied().flatten()
    }
}

/// Which token of the App each node of `o` is: in observe the projection's
/// `nN`; in the explorer its own tokens by jti or chain hash (as the merged
/// view recognises them) and other clients' as `other nN`.
fn node_tokens(app: &App, o: &Observed, observing: bool) -> Vec<Option<TokenId>> {
    let mut map: Vec<Option<TokenId>> = vec![None; o.nodes.len()];
    let node = |l: &str| l.strip_prefix('n').and_then(|d| d.parse::<usize>().ok());
    let mut own: FxHashMap<&str, TokenId> = FxHashMap::default();
    for t in &app.tokens {
        let label = t.label.as_deref().unwrap_or("");
        let n = if observing {
            node(label)
        } else if t.foreign {
            label.strip_prefix("other ").and_then(node)
        } else {
            None
        };
        if let Some(n) = n.filter(|&n| n < map.len()) {
            map[n] = Some(t.id);
        } else if !observing
            && !t.foreign
            && let Some(c) = &t.claims
        {
            for k in [c.jti.as_str(), c.chain_hash.as_str()] {
                if !k.is_empty() {
                    own.insert(k, t.id);
                }
            }
        }
    }
    if !observing {
        for (i, n) in o.nodes.iter().enumerate() {
            let key = n.jti.as_deref().or(n.chain_hash.as_deref());
            if map[i].is_none()
                && let Some(&t) = key.and_then(|k| own.get(k))
            {
                map[i] = Some(t);
            }
        }
    }
    map
}

/// Says why nothing is judged (and drops what was).
pub fn unavailable(view: &mut View, why: &str) {
    view.judgment = Judgment {
        who_mode: view.judgment.who_mode,
        unavailable: Some(why.to_string()),
        ..Judgment::default()
    };
}

/// Brings the judgment up to date with the trail `o` as of `at` and with
/// the questions the view asks (the probe's pattern, the revoke form).
pub fn refresh(view: &mut View, app: &App, o: &Observed, at: usize) {
    let j = &mut view.judgment;
    j.unavailable = None;
    if o.events.is_empty() {
        j.unavailable = Some("no audit events yet".into());
        return;
    }
    let at = at.min(o.events.len() - 1);
    let key: DataKey = (o.events.len(), at, app.generation, app.tokens.len());
    if j.data_key != Some(key) {
        j.data_key = Some(key);
        j.node_token = node_tokens(app, o, view.observing);
        j.as_of = Some(o.events[at].id.to_string());
        let rows: Vec<FindingRow> = check(o, at)
            .into_iter()
            .map(|f| {
                // A finding on no node (a revocation that left survivors):
                // the first node its message names.
                let token = f.node.as_deref().and_then(|n| j.token_of(n)).or_else(|| {
                    f.message
                        .split_whitespace()
                        .find_map(|w| j.token_of(w.trim_end_matches([',', ':', ')'])))
                });
                FindingRow { finding: f, token }
            })
            .collect();
        j.marks.clear();
        for r in &rows {
            if let (Some(t), Some(_)) = (r.token, &r.finding.node) {
                let m = j.marks.entry(t).or_insert(r.finding.severity);
                *m = (*m).max(r.finding.severity);
            }
        }
        j.findings = rows;
        j.sel = j.sel.min(j.findings.len().saturating_sub(1));
    }
    // Who can: the probe's text, when it is a who-can question.
    let text = view.probe.value().trim().to_string();
    if j.asks_who(&text) && !text.is_empty() {
        if j.who_key.as_ref() != Some(&(text.clone(), key)) {
            // Another question: the path of the last answer goes.
            if j.who_key.as_ref().is_some_and(|(t, _)| *t != text) {
                j.path.clear();
            }
            j.who_key = Some((text.clone(), key));
            let answer = Pattern::parse(&text).map(|p| {
                who_can(o, at, &p, true)
                    .into_iter()
                    .map(|a| WhoRow {
                        token: j.token_of(&a.node),
                        path: a.path.iter().map(|h| j.token_of(&h.node)).collect(),
                        access: a,
                    })
                    .collect::<Vec<_>>()
            });
            j.who_sel = j
                .who_sel
                .min(answer.as_ref().map_or(0, |r| r.len().saturating_sub(1)));
            let answer = answer.map(|mut rows| {
                if !view.observing {
                    own_who(app, &mut rows);
                }
                rows
            });
            j.who = Some((text, answer));
        }
    } else {
        if j.who.is_some() {
            j.path.clear();
        }
        j.who = None;
        j.who_key = None;
    }
    // What if: the revoke form's level and target.
    let asked = view.form.as_ref().and_then(|f| match f.kind {
        FormKind::Revoke { .. } => {
            RevokeLevel::parse(f.value("level")).map(|l| (l, f.value("target").trim().to_string()))
        }
        _ => None,
    });
    match asked {
        Some((level, typed)) => {
            if j.what_key.as_ref() != Some(&(level, typed.clone(), key)) {
                j.what_key = Some((level, typed.clone(), key));
                let mut w = answer_what_if(app, o, at, level, &typed);
                if !view.observing {
                    own_effects(app, j, &mut w);
                }
                j.what_if = Some(w);
            }
        }
        None => {
            j.what_if = None;
            j.what_key = None;
        }
    }
}

/// Whether the explorer's own token `t` is valid by the broker's answers
/// (issue, validate, the live check), which the trail cannot settle for a
/// delegation (its ttl is not audited).
fn own_valid(app: &App, t: Option<TokenId>) -> bool {
    t.and_then(|t| app.tokens.get(t)).is_some_and(|tok| {
        !tok.foreign && tok.status_at(crate::app::unix_now()) == crate::app::TokenStatus::Valid
    })
}

/// In the explorer, a "may" the trail leaves on one of its own tokens the
/// broker has answered for: live (and live first, as who-can orders).
fn own_who(app: &App, rows: &mut [WhoRow]) {
    for r in rows.iter_mut() {
        if r.access.status == "maybe" && own_valid(app, r.token) {
            r.access.status = "live";
            r.access.status_why = "valid: the broker's answer for the explorer's own token".into();
        }
    }
    let rank = |s: &str| ["live", "maybe", "dead"].iter().position(|x| *x == s);
    rows.sort_by_key(|r| rank(r.access.status));
}

/// In the explorer, "may die" on one of its own tokens the broker says is
/// valid: it dies.
fn own_effects(app: &App, j: &Judgment, w: &mut WhatIf) {
    for e in &mut w.effects {
        if e.effect == "may die" && own_valid(app, j.token_of(&e.node)) {
            e.effect = "dies";
            if let Some(i) = e.why.find("; unsure") {
                e.why.truncate(i);
            }
            e.why.push_str(" (valid by the broker's answer)");
        }
    }
}

/// The what-if for a target as typed in the form (a label, agent name,
/// task, SPIFFE id, jti or node id).
fn answer_what_if(app: &App, o: &Observed, at: usize, level: RevokeLevel, typed: &str) -> WhatIf {
    let none = |why: String| WhatIf {
        level,
        target: Err(why),
        effects: Vec::new(),
        plan: None,
    };
    if typed.is_empty() {
        return none("type a target".into());
    }
    // The explorer's names (labels, agent names) as the broker takes them;
    // anything else (a node id, a SPIFFE id, a jti, a task) as typed.
    let wire = app
        .revoke_target(level, typed)
        .unwrap_or_else(|_| typed.to_string());
    match resolve_target(o, level, &wire) {
        Err(e) => none(e),
        Ok(target) => {
            let (effects, plan) = what_if(o, at, level, &target);
            WhatIf {
                level,
                target: Ok(target),
                effects,
                plan: Some(plan),
            }
        }
    }
}

impl View {
    /// The judgment's keys (findings, who can, the observer's what-if);
    /// `None`: not one of them.
    pub(super) fn judgment_verb(&mut self, app: &App, mode: Mode, verb: Verb) -> Option<Action> {
        let who = self.judgment.asks_who(self.probe.value()) && !self.probe.value().is_empty();
        match (mode, verb) {
            (Mode::Normal | Mode::Observe, Verb::Findings) => self.set_focus(Focus::Findings),
            (Mode::Normal | Mode::Observe, Verb::WhoCan) => {
                // A new question: the scope asked before is not a pattern.
                if !self.judgment.who_mode {
                    self.probe = tui_input::Input::default();
                    self.probe_offset = 0;
                }
                self.judgment.who_mode = true;
                self.start_probe();
            }
            (Mode::Normal | Mode::Observe, Verb::OpenProbe) => {
                self.judgment.who_mode = false;
                self.start_probe();
            }
            (Mode::Observe, Verb::WhatIf) => self.open_form(
                app,
                FormKind::Revoke {
                    selected: self.selected,
                },
            ),
            (Mode::Normal | Mode::Observe, Verb::Up | Verb::Down | Verb::Enter)
                if self.focus == Focus::Findings =>
            {
                let j = &mut self.judgment;
                let last = j.findings.len().saturating_sub(1);
                match verb {
                    Verb::Up => j.sel = j.sel.saturating_sub(1),
                    Verb::Down => j.sel = (j.sel + 1).min(last),
                    _ => self.jump_to_finding(app),
                }
            }
            (Mode::Probe, Verb::Up | Verb::Down) if who => {
                let j = &mut self.judgment;
                let last = j.who_rows().len().saturating_sub(1);
                j.who_sel = if verb == Verb::Up {
                    j.who_sel.saturating_sub(1)
                } else {
                    (j.who_sel + 1).min(last)
                };
            }
            (Mode::Probe, Verb::Enter) if who => self.jump_to_holder(app),
            (Mode::Probe, Verb::Enter) => {}
            _ => return None,
        }
        Some(Action::None)
    }

    /// Enter on a finding: its node selected in the tree, its help said.
    fn jump_to_finding(&mut self, app: &App) {
        let Some(row) = self.judgment.findings.get(self.judgment.sel).cloned() else {
            return;
        };
        let f = &row.finding;
        let what = match (&f.node, row.token) {
            (_, Some(t)) if t < app.tokens.len() => {
                let name = app.token_name(t);
                self.judgment.path.clear();
                self.select_token(app, t);
                format!("{} on {name}", f.rule)
            }
            (Some(n), _) => format!(
                "{} on {n}: another client's token, not in the tree (O shows other clients' chains)",
                f.rule
            ),
            (None, _) => f.rule.to_string(),
        };
        self.message = Some(format!("{what} — fix: {}", f.help));
        self.lower = Focus::Findings;
    }

    /// Enter on a who-can row: its holder's token selected, the path from
    /// the root highlighted in the tree.
    fn jump_to_holder(&mut self, app: &App) {
        let Some(row) = self.judgment.who_rows().get(self.judgment.who_sel).cloned() else {
            return;
        };
        let a = &row.access;
        let short = |s: &str| match app.agent_name(s) {
            Some(n) if !n.starts_with("spiffe://") => n.to_string(),
            _ => crate::rules::spiffe::short(s, true),
        };
        match row.token.filter(|&t| t < app.tokens.len()) {
            Some(t) => {
                self.judgment.path = row.path.iter().flatten().copied().collect();
                self.select_token(app, t);
                let hops: Vec<String> = a.path.iter().map(|h| short(&h.agent)).collect();
                self.message = Some(format!(
                    "{} {} by {} — path {}",
                    a.status,
                    short(&a.agent),
                    a.grants.join(" "),
                    hops.join(" → ")
                ));
            }
            None => {
                self.message = Some(format!(
                    "{} ({}) is another client's token, not in the tree: O shows other clients' chains",
                    a.node,
                    short(&a.agent)
                ))
            }
        }
    }
}
