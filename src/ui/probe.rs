//! Scope probe: type a scope; every token is listed as permits (and by which
//! grant), may permit (its status is one the trail cannot settle, and a
//! grant covers the scope), denies (and why, from `scope::explain`), or dead
//! (permits nothing).
//! Malformed input is flagged inline. Verdicts are recomputed on every
//! keystroke without allocating; only the visible rows are formatted.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{Theme, fit, open_pane, status_symbol};
use crate::app::{App, TokenId};
use crate::scope::{self, Scope, VerdictIdx};
use crate::view::{Focus, View};

/// A verdict by index, resolved to text only when shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compact {
    Permits(usize),
    /// Covered by this grant, but the token's status is unsure.
    MayPermit(usize),
    Denies(VerdictIdx),
    Dead,
}

/// One token's grants, pre-parsed into a contiguous arena.
#[derive(Debug, Clone, Copy)]
struct Indexed {
    id: TokenId,
    /// Known dead whatever the time (released, revoked, refused, …).
    dead: bool,
    /// A status the trail cannot settle (may permit, never counted dead).
    maybe: bool,
    /// Dead once `now > exp` (for a token whose ttl is unknown: once it is
    /// older than `AA_MAX_TTL`).
    exp: Option<i64>,
    /// Range in `grants`.
    first: u32,
    count: u32,
}

/// Byte offsets of a grant's parts in the arena; `None` when malformed.
type GrantSpan = Option<[u32; 4]>;

/// Probe results for the current input, recomputed when the input, the
/// state or the second changes. The tokens' grants are parsed once per state
/// change into a compact index, so a keystroke only compares bytes.
#[derive(Debug, Default)]
pub struct ProbeCache {
    key: Option<(String, u64, i64)>,
    index_gen: Option<u64>,
    index: Vec<Indexed>,
    grants: Vec<GrantSpan>,
    arena: String,
    pub rows: Vec<(TokenId, Compact)>,
    pub permits: usize,
    pub may_permit: usize,
    pub denies: usize,
    pub dead: usize,
    pub error: Option<String>,
}

impl ProbeCache {
    fn reindex(&mut self, app: &App) {
        self.index_gen = Some(app.generation);
        self.index.clear();
        self.grants.clear();
        self.arena.clear();
        for t in &app.tokens {
            if !t.probe_candidate() || !app.shown(t) {
                continue;
            }
            // The status apart from expiry (which the keystroke checks against `now`).
            let status = t.status_at(i64::MIN);
            let first = self.grants.len() as u32;
            for g in t.scope() {
                let base = self.arena.len() as u32;
                let span = Scope::parse(g).ok().map(|s| {
                    let a = base + s.action.len() as u32;
                    let r = a + 1 + s.resource.len() as u32;
                    [base, a, r, base + g.len() as u32]
                });
                self.arena.push_str(g);
                self.grants.push(span);
            }
            let exp = match (t.exp(), &t.claims) {
                (Some(crate::app::EXP_UNKNOWN), Some(c)) => {
                    Some(c.iat + crate::rules::limits::MAX_TTL)
                }
                (e, _) => e,
            };
            self.index.push(Indexed {
                id: t.id,
                dead: status.is_dead(),
                maybe: status.liveness() == crate::app::Liveness::Maybe,
                exp,
                first,
                count: self.grants.len() as u32 - first,
            });
        }
    }

    fn scope_at(&self, span: GrantSpan) -> Option<Scope<'_>> {
        span.map(|[s, a, r, e]| Scope {
            action: &self.arena[s as usize..a as usize],
            resource: &self.arena[a as usize + 1..r as usize],
            identifier: &self.arena[r as usize + 1..e as usize],
        })
    }

    pub fn update(&mut self, app: &App, input: &str, now: i64) {
        let key = (input.to_string(), app.generation, now);
        if self.key.as_ref() == Some(&key) {
            return;
        }
        self.key = Some(key);
        if self.index_gen != Some(app.generation) {
            self.reindex(app);
        }
        self.rows.clear();
        self.permits = 0;
        self.may_permit = 0;
        self.denies = 0;
        self.dead = 0;
        self.error = None;
        let input = input.trim();
        if input.is_empty() {
            return;
        }
        let req = match Scope::parse(input) {
            Ok(r) => r,
            Err(e) => {
                self.error = Some(e.to_string());
                return;
            }
        };
        let mut rows = std::mem::take(&mut self.rows);
        rows.reserve(self.index.len());
        for t in &self.index {
            let c = if t.dead || t.exp.is_some_and(|e| now > e) {
                self.dead += 1;
                Compact::Dead
            } else {
                let spans = &self.grants[t.first as usize..(t.first + t.count) as usize];
                match scope::explain_iter(&req, spans.iter().map(|g| self.scope_at(*g))) {
                    VerdictIdx::Covered(i) if t.maybe => {
                        self.may_permit += 1;
                        Compact::MayPermit(i)
                    }
                    VerdictIdx::Covered(i) => {
                        self.permits += 1;
                        Compact::Permits(i)
                    }
                    other => {
                        self.denies += 1;
                        Compact::Denies(other)
                    }
                }
            };
            rows.push((t.id, c));
        }
        rows.sort_by_key(|(_, c)| match c {
            Compact::Permits(_) => 0,
            Compact::MayPermit(_) => 1,
            Compact::Denies(_) => 2,
            Compact::Dead => 3,
        });
        self.rows = rows;
    }
}

pub fn draw(
    f: &mut Frame,
    area: Rect,
    app: &App,
    view: &mut View,
    cache: &mut ProbeCache,
    t: Theme,
    now: i64,
) {
    if view.judgment.asks_who(view.probe.value()) {
        return super::who_can::draw(f, area, app, view, t);
    }
    let inner = open_pane(f, area, view, Focus::Probe, " Scope probe (/) ");
    if inner.height < 2 {
        return;
    }
    let input = view.probe.value().to_string();
    cache.update(app, &input, now);
    let prompt = "scope › ";
    let typing = view.focus == Focus::Probe && view.typing;
    let shown = if input.is_empty() && !typing {
        Span::styled(
            "press / and type a scope, e.g. write:deploy:payment-svc",
            t.dim(),
        )
    } else if view.probe_selected {
        // Selected: what is typed next replaces it.
        Span::styled(input.clone(), t.strong().add_modifier(Modifier::REVERSED))
    } else {
        Span::styled(input.clone(), t.strong())
    };
    f.render_widget(
        Paragraph::new(Line::from(vec![Span::styled(prompt, t.accent()), shown])),
        Rect { height: 1, ..inner },
    );
    if typing {
        let x = inner.x + prompt.chars().count() as u16 + view.probe.visual_cursor() as u16;
        f.set_cursor_position(Position::new(
            x.min(inner.right().saturating_sub(1)),
            inner.y,
        ));
    }
    summary_line(f, inner, cache, &input, t);
    let rows_area = Rect {
        y: inner.y + 2,
        height: inner.height.saturating_sub(2),
        ..inner
    };
    let h = rows_area.height as usize;
    let max_off = cache.rows.len().saturating_sub(h);
    view.probe_offset = view.probe_offset.min(max_off);
    let w = rows_area.width as usize;
    let lines: Vec<Line> = cache.rows[view.probe_offset..]
        .iter()
        .take(h)
        .map(|(id, c)| row_line(app, *id, c, w, t, now))
        .collect();
    f.render_widget(Paragraph::new(lines), rows_area);
}

/// "✓ n permit · ✗ n deny · n dead", or what is wrong with the input.
fn summary_line(f: &mut Frame, inner: Rect, cache: &ProbeCache, input: &str, t: Theme) {
    let summary = match &cache.error {
        Some(e) => Line::from(Span::styled(format!("✗ {e}"), t.bad())),
        None if input.trim().is_empty() => Line::from(Span::styled(
            "per token: permits · may permit · denies · dead",
            t.dim(),
        )),
        None => Line::from(vec![
            Span::styled(format!("✓ {} permit", cache.permits), t.good()),
            Span::raw(" · "),
            // Only tokens whose status the trail cannot settle may permit
            // (observe): said when there are any.
            Span::styled(
                if cache.may_permit > 0 {
                    format!("≈ {} may permit · ", cache.may_permit)
                } else {
                    String::new()
                },
                t.warn(),
            ),
            Span::styled(format!("✗ {} deny", cache.denies), t.bad()),
            Span::raw(" · "),
            // No status symbol: "dead" gathers every cause († is revoked only).
            Span::styled(format!("{} dead", cache.dead), t.dead()),
        ]),
    };
    f.render_widget(
        Paragraph::new(summary),
        Rect {
            y: inner.y + 1,
            height: 1,
            ..inner
        },
    );
}

/// One token's verdict: permits (by which grant), denies (why), or dead.
fn row_line(app: &App, id: TokenId, c: &Compact, w: usize, t: Theme, now: i64) -> Line<'static> {
    let tok = &app.tokens[id];
    let holder = &app.agents[tok.holder].name;
    let name = match &tok.label {
        Some(l) if l != holder => format!("{l} ({holder})"),
        _ => holder.clone(),
    };
    let (mark, word, why, style) = match c {
        Compact::Permits(i) => ("✓", "permits", format!("by {}", tok.scope()[*i]), t.good()),
        Compact::MayPermit(i) => {
            let s = tok.status_at(now);
            (
                status_symbol(&s),
                "may",
                format!("by {} — {}, so perhaps", tok.scope()[*i], s.word()),
                t.warn(),
            )
        }
        Compact::Denies(v) => {
            let why = match v.resolve(tok.scope()) {
                scope::Verdict::Denied(d) => d.to_string(),
                scope::Verdict::Covered { by } => format!("by {by}"),
            };
            ("✗", "denies", why, t.bad())
        }
        Compact::Dead => {
            let s = tok.status_at(now);
            (
                status_symbol(&s),
                "dead",
                format!("{} — permits nothing", s.word()),
                t.dead(),
            )
        }
    };
    let nw = (w / 3).clamp(8, 18);
    let text = format!("{word:<7} {:<nw$} {why}", fit(&name, nw));
    Line::from(vec![
        Span::styled(format!("{mark} "), style),
        Span::raw(fit(&text, w.saturating_sub(2))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The panel and the `probe` step list the same tokens: here an imported
    /// token not yet validated (the panel listed it, the step did not).
    #[test]
    fn panel_and_step_list_the_same_tokens() {
        let mut app = App::new("http://127.0.0.1:1", false, None);
        let claims = crate::jwt::Claims {
            sub: "spiffe://agentwrit.local/agent/o/t/x".into(),
            jti: "j1".into(),
            exp: crate::app::unix_now() + 300,
            scope: vec!["read:data:*".into()],
            ..Default::default()
        };
        let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let raw = crate::jwt::sign(&claims, &key, "k");
        app.import("imp", &raw, None).expect("imports");
        let now = crate::app::unix_now();
        let step: Vec<TokenId> = app
            .probe("read:data:a", now)
            .iter()
            .map(|r| r.token)
            .collect();
        let mut cache = ProbeCache::default();
        cache.update(&app, "read:data:a", now);
        let panel: Vec<TokenId> = cache.rows.iter().map(|(id, _)| *id).collect();
        assert_eq!(step, panel);
        assert_eq!(panel.len(), 1);
    }
}
