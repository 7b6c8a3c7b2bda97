//! What each step kind does, as a small state machine: `begin` returns the
//! commands to send (with what to do with the answers), a wait, or the end.
//! No I/O and no waiting here: the [`Runner`](super::runner::Runner) sends
//! and routes answers, the caller's loop keeps drawing.

use std::time::Duration;

use super::report::{
    ExpectResult, Fate, NotHeld, StepReport, StepResult, audit_report, outcome_result, probe_table,
    token_view, worst,
};
use super::{ClaimCheck, Cmp, Expectation, ImportSource, Status, StepKind};
use crate::app::{App, TokenId, TokenStatus, unix_now};
use crate::broker::types::RevokeLevel;
use crate::scope;
use crate::worker::{Command, Event, Outcome, Secret};

/// What a step does next: a small state machine, one transition per answer.
pub enum Next {
    /// Send these commands; when every answer is in, go on with them.
    Send(Vec<Command>, Then),
    /// Wait this long (a `wait` step); checked on tick, never slept on.
    Sleep(Duration),
    /// The step is over.
    Done(StepResult),
}

/// The rest of a step, given the answers it waited for (in arrival order).
pub type Then = Box<dyn FnOnce(&mut Ctx<'_>, Vec<Event>) -> Next + Send>;

/// What a step may touch while it runs.
pub struct Ctx<'a> {
    pub app: &'a mut App,
    pub r: &'a mut StepReport,
    pub(crate) app_ready: &'a mut bool,
    /// The ceiling for an app set up on demand: every scope the script's agents ask for.
    pub(crate) default_ceiling: &'a [String],
}

/// The first transition of a step.
pub(crate) fn begin(ctx: &mut Ctx<'_>, kind: &StepKind, line: usize) -> Next {
    match kind {
        StepKind::Title(t) => {
            ctx.r.title = Some(t.clone());
            Next::Done(StepResult::Ok)
        }
        StepKind::Say(t) => {
            ctx.r.say = Some(t.clone());
            Next::Done(StepResult::Ok)
        }
        StepKind::App { ceiling } => {
            let asked = ceiling.clone();
            with_app(ctx, Some(ceiling.clone()), move |ctx| {
                ctx.r.warning = ceiling_warning(ctx.app, &asked);
                Next::Done(StepResult::Ok)
            })
        }
        StepKind::Agent { .. } => agent(ctx, kind.clone(), line),
        StepKind::Delegate { .. } => delegate(ctx, kind, line),
        StepKind::Validate(labels) => {
            each(ctx, labels, |token, raw| Command::Validate { token, raw })
        }
        StepKind::Renew { label, new_label } => renew(ctx, label, new_label.as_deref(), line),
        StepKind::Release(labels) => {
            each(ctx, labels, |token, raw| Command::Release { token, raw })
        }
        StepKind::Revoke { level, target } => revoke(ctx, *level, target),
        StepKind::Probe(s) => {
            ctx.r.probe = Some(probe_table(ctx.app, s, unix_now()));
            Next::Done(StepResult::Ok)
        }
        StepKind::Wait(d) => Next::Sleep(*d),
        StepKind::Import { label, source } => import(ctx, label, source, line),
        StepKind::Audit(f) => {
            let f = f.clone();
            Next::Send(
                vec![Command::Audit],
                Box::new(
                    move |ctx, evs| match outcome_result(evs.into_iter().next()).0 {
                        StepResult::Ok => {
                            ctx.r.audit = audit_report(ctx.app, &f);
                            Next::Done(StepResult::Ok)
                        }
                        other => Next::Done(other),
                    },
                ),
            )
        }
        StepKind::Expect(e) => expect(ctx, e),
    }
}

/// When the app's real ceiling does not cover the scenario's: every agent
/// step asking for the rest will be refused, so say it at the `app` step.
fn ceiling_warning(app: &App, asked: &[String]) -> Option<String> {
    let info = app.app.as_ref()?;
    let Some(real) = &info.ceiling else {
        return Some(format!(
            "the app's real ceiling could not be read (that needs AGENTWRIT_ADMIN_SECRET); if agent steps are refused with \"requested scopes exceed app ceiling\", it does not cover {}",
            asked.join(",")
        ));
    };
    let missing: Vec<&str> = asked
        .iter()
        .filter(|s| !scope::is_subset(std::slice::from_ref(*s), real))
        .map(String::as_str)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the app's ceiling is {}: it does not cover {} — agent steps asking for that will be refused",
            real.join(","),
            missing.join(",")
        )
    })
}

/// The one answer a single command waited for.
fn one(evs: Vec<Event>) -> Option<Event> {
    evs.into_iter().next()
}

/// Runs `then` once the app session exists, setting it up first when needed
/// (or always, with an explicit ceiling).
fn with_app(
    ctx: &mut Ctx<'_>,
    ceiling: Option<Vec<String>>,
    then: impl FnOnce(&mut Ctx<'_>) -> Next + Send + 'static,
) -> Next {
    if *ctx.app_ready && ceiling.is_none() {
        return then(ctx);
    }
    let ceiling = ceiling.unwrap_or_else(|| ctx.default_ceiling.to_vec());
    let name = format!("chainview-{}", crate::broker::types::short_id());
    Next::Send(
        vec![Command::SetupApp { name, ceiling }],
        Box::new(move |ctx, evs| match one(evs).map(|e| e.outcome) {
            Some(Outcome::AppReady(Ok(_))) => {
                *ctx.app_ready = true;
                then(ctx)
            }
            Some(Outcome::AppReady(Err(e))) if e.is_unreachable() => Next::Done(
                StepResult::Unreachable(format!("setting up the app failed: {e}")),
            ),
            // Reached, but refused (a wrong admin secret, say): each step
            // that needs the app says why, rather than being skipped.
            Some(Outcome::AppReady(Err(e))) => {
                Next::Done(StepResult::Error(format!("setting up the app failed: {e}")))
            }
            None => Next::Done(StepResult::Unreachable("the broker worker stopped".into())),
            Some(_) => Next::Done(StepResult::Error("unexpected worker answer".into())),
        }),
    )
}

fn agent(ctx: &mut Ctx<'_>, kind: StepKind, line: usize) -> Next {
    with_app(ctx, None, move |ctx| {
        let StepKind::Agent {
            name,
            orch,
            task,
            scope,
            ttl,
        } = kind
        else {
            return Next::Done(StepResult::Error("not an agent step".into()));
        };
        let (agent, token) = ctx.app.begin_agent(&name, &orch, &task, &scope, Some(line));
        let cmd = Command::CreateAgent {
            agent,
            token,
            orch,
            task,
            scope,
            ttl,
        };
        Next::Send(
            vec![cmd],
            Box::new(move |ctx, evs| {
                ctx.r.tokens.push(token_view(ctx.app, token, unix_now()));
                Next::Done(outcome_result(one(evs)).0)
            }),
        )
    })
}

/// The raw token behind a label, if it was issued.
fn live_raw(app: &App, label: &str) -> Result<(TokenId, Secret), StepResult> {
    let id = *app
        .labels
        .get(label)
        .ok_or_else(|| StepResult::Error(format!("unknown token '{label}'")))?;
    let t = &app.tokens[id];
    match (&t.raw, t.status_at(unix_now())) {
        (Some(raw), _) => Ok((id, Secret(raw.clone()))),
        (None, s) => Err(StepResult::Error(format!(
            "'{label}' holds no token: {}",
            s.reason()
        ))),
    }
}

fn delegate(ctx: &mut Ctx<'_>, kind: &StepKind, line: usize) -> Next {
    let StepKind::Delegate {
        from,
        to,
        scope: want,
        ttl,
        label,
    } = kind
    else {
        return Next::Done(StepResult::Error("not a delegate step".into()));
    };
    let (parent, bearer) = match live_raw(ctx.app, from) {
        Ok(x) => x,
        Err(e) => return Next::Done(e),
    };
    let app = &mut *ctx.app;
    let (to_id, to_agent) = if to.starts_with("spiffe://") {
        let id = app.outside_agent(to);
        (id, &app.agents[id])
    } else {
        match app.agent_by_name(to) {
            Some(x) => x,
            None => return Next::Done(StepResult::Error(format!("unknown agent '{to}'"))),
        }
    };
    let Some(spiffe) = to_agent.agent_id.clone() else {
        return Next::Done(StepResult::Error(format!(
            "agent '{to}' is not registered (its registration failed)"
        )));
    };
    let token = app.begin_delegation(parent, to_id, want, label, Some(line));
    let cmd = Command::Delegate {
        token,
        bearer,
        to: spiffe,
        scope: want.clone(),
        ttl: *ttl,
    };
    let want = want.clone();
    Next::Send(
        vec![cmd],
        Box::new(move |ctx, evs| {
            let (res, _) = outcome_result(one(evs));
            ctx.r.tokens.push(token_view(ctx.app, token, unix_now()));
            ctx.r.chain = ctx.app.chain(token);
            if let StepResult::Refused(b) = &res
                && b.error_code == "scope_violation"
                && b.detail.contains("scope")
            {
                let held = ctx.app.tokens[parent].scope().to_vec();
                ctx.r.not_held = not_held(&want, &held);
            }
            Next::Done(res)
        }),
    )
}

/// The requested scopes the delegator did not hold, with why.
fn not_held(want: &[String], held: &[String]) -> Vec<NotHeld> {
    scope::explain(want, held)
        .into_iter()
        .filter_map(|e| match e.verdict {
            scope::Verdict::Denied(d) => Some(NotHeld {
                scope: e.requested,
                reason: d.to_string(),
            }),
            scope::Verdict::Covered { .. } => None,
        })
        .collect()
}

/// One command per labelled token at once (validate, release); each token
/// reported afterwards.
fn each(ctx: &mut Ctx<'_>, labels: &[String], make: impl Fn(TokenId, Secret) -> Command) -> Next {
    let mut ids = Vec::new();
    let mut cmds = Vec::new();
    for l in labels {
        match live_raw(ctx.app, l) {
            Ok((token, raw)) => {
                ids.push(token);
                cmds.push(make(token, raw));
            }
            Err(e) => return Next::Done(e),
        }
    }
    Next::Send(
        cmds,
        Box::new(move |ctx, evs| {
            for id in ids {
                ctx.r.tokens.push(token_view(ctx.app, id, unix_now()));
            }
            Next::Done(worst(evs))
        }),
    )
}

fn renew(ctx: &mut Ctx<'_>, label: &str, new_label: Option<&str>, line: usize) -> Next {
    let (old, raw) = match live_raw(ctx.app, label) {
        Ok(x) => x,
        Err(e) => return Next::Done(e),
    };
    let new = ctx.app.begin_renewal(old, new_label, Some(line));
    Next::Send(
        vec![Command::Renew { old, new, raw }],
        Box::new(move |ctx, evs| {
            let (res, _) = outcome_result(one(evs));
            ctx.r.tokens.push(token_view(ctx.app, old, unix_now()));
            ctx.r.tokens.push(token_view(ctx.app, new, unix_now()));
            Next::Done(res)
        }),
    )
}

/// Revokes, then asks the broker about every token that was alive: which
/// die, which live on.
fn revoke(ctx: &mut Ctx<'_>, level: RevokeLevel, target: &str) -> Next {
    let wire_target = match ctx.app.revoke_target(level, target) {
        Ok(t) => t,
        Err(e) => return Next::Done(StepResult::Error(e)),
    };
    let before = ctx.app.live_tokens();
    // What spec §7.1 predicts, of every live token shown (another client's
    // too: the merged view's, which the trail is to confirm).
    let predicted = ctx.app.would_revoke(level, &wire_target);
    Next::Send(
        vec![Command::Revoke {
            level,
            target: wire_target,
        }],
        Box::new(move |_, evs| {
            let (res, _) = outcome_result(one(evs));
            if res != StepResult::Ok {
                return Next::Done(res);
            }
            let ids: Vec<TokenId> = before.iter().map(|(id, _)| *id).collect();
            let cmds: Vec<Command> = before
                .into_iter()
                .map(|(token, raw)| Command::Validate { token, raw })
                .collect();
            Next::Send(
                cmds,
                Box::new(move |ctx, evs| {
                    let worst = worst(evs);
                    let asked_ids: std::collections::HashSet<TokenId> =
                        ids.iter().copied().collect();
                    let dying: std::collections::HashSet<TokenId> =
                        predicted.iter().copied().collect();
                    let trail = predicted
                        .iter()
                        .copied()
                        .filter(|id| !asked_ids.contains(id));
                    let asked = ids.iter().copied().map(|id| (id, false));
                    for (id, trail) in asked.chain(trail.map(|id| (id, true))) {
                        let t = &ctx.app.tokens[id];
                        ctx.r.fates.push(Fate {
                            token: id,
                            label: ctx.app.token_name(id),
                            holder: ctx.app.agents[t.holder].name.clone(),
                            valid_after: if trail {
                                None
                            } else {
                                t.validated.as_ref().map(|v| v.valid)
                            },
                            predicted_dead: dying.contains(&id),
                            unsure: t.liveness_at(crate::app::unix_now())
                                == crate::app::Liveness::Maybe,
                            trail,
                        });
                    }
                    Next::Done(worst)
                }),
            )
        }),
    )
}

fn import(ctx: &mut Ctx<'_>, label: &str, source: &ImportSource, line: usize) -> Next {
    let raw = match source {
        ImportSource::Token(t) => t.clone(),
        ImportSource::Env(v) => match std::env::var(v) {
            Ok(t) => t,
            Err(_) => {
                return Next::Done(StepResult::Error(format!(
                    "environment variable {v} is not set (it should hold the token to import as '{label}')"
                )));
            }
        },
        ImportSource::File(p) => match read_token_file(p) {
            Ok(t) => t,
            Err(e) => return Next::Done(StepResult::Error(format!("cannot read {p}: {e}"))),
        },
    };
    let id = match ctx.app.import(label, &raw, Some(line)) {
        Ok(id) => id,
        Err(e) => return Next::Done(StepResult::Error(format!("import rejected: {e}"))),
    };
    let cmd = Command::Validate {
        token: id,
        raw: Secret(raw.trim().to_string()),
    };
    Next::Send(
        vec![cmd],
        Box::new(move |ctx, evs| {
            let (res, _) = outcome_result(one(evs));
            ctx.r.tokens.push(token_view(ctx.app, id, unix_now()));
            ctx.r.chain = ctx.app.chain(id);
            Next::Done(res)
        }),
    )
}

/// Reads a token file, at most one byte past the largest token taken in, so
/// that `/dev/zero` or a huge file is refused without being read whole.
fn read_token_file(path: &str) -> std::io::Result<String> {
    // A token, plus one byte for a trailing newline.
    let bytes = super::read_at_most(std::fs::File::open(path)?, crate::jwt::MAX_TOKEN + 1)?
        .ok_or_else(|| std::io::Error::other("larger than any token a broker accepts (1 MiB)"))?;
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("not UTF-8 text"))
}

// ── expect ─────────────────────────────────────────────────────────────

/// Records an expectation's verdict (with what was asked for when it fails).
fn judged(ctx: &mut Ctx<'_>, e: &Expectation, mut x: ExpectResult) -> Next {
    if !x.ok {
        x.reason = format!(
            "{}; expected {}",
            x.reason,
            super::write::expectation_text(e)
        );
    }
    ctx.r.expectation = Some(x);
    Next::Done(StepResult::Ok)
}

fn verdict(ok: bool, reason: String) -> ExpectResult {
    ExpectResult { ok, reason }
}

/// Judges an expectation. Status and audit expectations ask the broker first.
fn expect(ctx: &mut Ctx<'_>, e: &Expectation) -> Next {
    match e {
        Expectation::Audit { .. } => {
            let e = e.clone();
            Next::Send(
                vec![Command::Audit],
                Box::new(move |ctx, evs| match expect_audit(ctx.app, &e, evs) {
                    Ok(x) => judged(ctx, &e, x),
                    Err(unreachable) => Next::Done(unreachable),
                }),
            )
        }
        Expectation::Permits { label, scope: s } | Expectation::Denies { label, scope: s } => {
            let want_permit = matches!(e, Expectation::Permits { .. });
            let x = expect_permits(ctx.app, label, s, want_permit);
            judged(ctx, e, x)
        }
        Expectation::Denied { .. } => {
            let x = expect_denied(ctx.app, e);
            judged(ctx, e, x)
        }
        Expectation::Token { label, status, .. } => {
            let Some(id) = ctx.app.labels.get(label).copied() else {
                return judged(ctx, e, verdict(false, format!("unknown token '{label}'")));
            };
            let raw = ctx.app.tokens[id].raw.clone();
            let e = e.clone();
            match (status, raw) {
                // Ask the broker now: the expectation is about what it says.
                (Some(_), Some(raw)) => Next::Send(
                    vec![Command::Validate {
                        token: id,
                        raw: Secret(raw),
                    }],
                    Box::new(move |ctx, evs| {
                        let (res, ev) = outcome_result(one(evs));
                        if let StepResult::Unreachable(_) = res {
                            return Next::Done(res);
                        }
                        let says = match ev.map(|e| e.outcome) {
                            Some(Outcome::Validated { result: Ok(v), .. }) => Some(v.valid),
                            _ => None,
                        };
                        let x = expect_token(ctx.app, &e, id, says);
                        judged(ctx, &e, x)
                    }),
                ),
                _ => {
                    let x = expect_token(ctx.app, &e, id, None);
                    judged(ctx, &e, x)
                }
            }
        }
    }
}

fn expect_audit(app: &App, e: &Expectation, evs: Vec<Event>) -> Result<ExpectResult, StepResult> {
    let Expectation::Audit { filter, cmp, count } = e else {
        return Ok(verdict(false, "not an audit expectation".into()));
    };
    match outcome_result(one(evs)).0 {
        StepResult::Ok => {}
        StepResult::Unreachable(u) => return Err(StepResult::Unreachable(u)),
        other => {
            let why = match other {
                StepResult::Refused(b) => format!("{} {}: {}", b.status, b.error_code, b.detail),
                StepResult::Error(e) => e,
                o => o.word().to_string(),
            };
            return Ok(verdict(
                false,
                format!("the audit trail could not be read: {why}"),
            ));
        }
    }
    let Some(rep) = audit_report(app, filter) else {
        return Ok(verdict(false, "no audit trail".into()));
    };
    let n = rep.events.len();
    let what = filter.event_type.as_deref().unwrap_or("audit");
    let s = if n == 1 { "" } else { "s" };
    let want = format!("want count{}{count}", cmp.as_str());
    let Some(cut) = &rep.cut else {
        return Ok(verdict(
            cmp.holds(n, *count) && rep.chain_ok,
            format!(
                "{n} matching {what} event{s} of {} ({want}); hash chain {}",
                rep.read, rep.chain
            ),
        ));
    };
    // Only part of the trail was read: the whole trail holds at least the
    // n seen here, so `>=` can hold and `<=`/`=` can fail on it, nothing else.
    let (ok, judged) = match cmp {
        Cmp::Ge if n >= *count => (true, "judged on the events read: the rest can only add"),
        Cmp::Le | Cmp::Eq if n > *count => {
            (false, "judged on the events read: the rest can only add")
        }
        _ => (false, "cannot be judged: the events not read may hold more"),
    };
    Ok(verdict(
        ok && rep.chain_ok,
        format!(
            "{n} matching {what} event{s} in {cut} ({want}; {judged}); hash chain {}",
            rep.chain
        ),
    ))
}

fn expect_permits(app: &App, label: &str, s: &str, want_permit: bool) -> ExpectResult {
    let Some(t) = app.token(label) else {
        return verdict(false, format!("unknown token '{label}'"));
    };
    let status = t.status_at(unix_now());
    let (permits, why) = if status.is_dead() {
        (
            false,
            format!(
                "{label} is {}: a dead token permits nothing",
                status.reason()
            ),
        )
    } else {
        match scope::explain_one(s, t.scope()) {
            scope::Verdict::Covered { by } => {
                (true, format!("{label} permits {s} (granted by {by})"))
            }
            scope::Verdict::Denied(d) => (false, format!("{label} denies {s}: {d}")),
        }
    };
    verdict(permits == want_permit, why)
}

fn expect_denied(app: &App, e: &Expectation) -> ExpectResult {
    let Expectation::Denied {
        label,
        status,
        code,
        detail,
    } = e
    else {
        return verdict(false, "not a refusal expectation".into());
    };
    let Some(t) = app.token(label) else {
        return verdict(false, format!("unknown token '{label}'"));
    };
    match t.status_at(unix_now()) {
        TokenStatus::Refused(b) => {
            let ok = status.is_none_or(|s| s == b.status)
                && code.as_deref().is_none_or(|c| c == b.error_code)
                && detail.as_deref().is_none_or(|d| d == b.detail);
            verdict(
                ok,
                format!(
                    "{label} was refused: {} {} \"{}\"",
                    b.status, b.error_code, b.detail
                ),
            )
        }
        other => verdict(
            false,
            format!("{label} was not refused: it is {}", other.reason()),
        ),
    }
}

/// A token expectation: the broker's word on its status (asked just
/// before), then each claim check.
fn expect_token(
    app: &App,
    e: &Expectation,
    id: TokenId,
    broker_says: Option<bool>,
) -> ExpectResult {
    let Expectation::Token {
        label,
        status,
        checks,
    } = e
    else {
        return verdict(false, "not a token expectation".into());
    };
    let mut reasons = Vec::new();
    let mut ok = true;
    if let Some(want) = status {
        let st = app.status(id, unix_now());
        let (good, why) = judge_status(*want, broker_says, &st);
        ok &= good;
        reasons.push(why);
    }
    let t = &app.tokens[id];
    for check in checks {
        let Some(c) = &t.claims else {
            ok = false;
            reasons.push(format!(
                "{label} has no claims ({})",
                t.status_at(unix_now()).reason()
            ));
            break;
        };
        let (good, why) = claim_check(app, c, check);
        ok &= good;
        reasons.push(why);
    }
    verdict(ok, format!("{label}: {}", reasons.join("; ")))
}

fn claim_check(app: &App, c: &crate::jwt::Claims, check: &ClaimCheck) -> (bool, String) {
    match check {
        ClaimCheck::Scope(want) => (&c.scope == want, format!("scope {}", c.scope.join(","))),
        ClaimCheck::Ttl(want) => (c.exp - c.iat == *want, format!("ttl {} s", c.exp - c.iat)),
        ClaimCheck::Depth(want) => (c.depth() == *want, format!("depth {}", c.depth())),
        ClaimCheck::Chain(want) => {
            let names: Vec<String> = c
                .delegation_chain
                .iter()
                .map(|rec| {
                    app.agent_name(&rec.agent)
                        .map(str::to_string)
                        .unwrap_or_else(|| rec.agent.clone())
                })
                .collect();
            let shown: Vec<String> = c
                .delegation_chain
                .iter()
                .zip(&names)
                .map(|(rec, n)| format!("{n} (held {})", rec.scope.join(",")))
                .collect();
            (
                &names == want,
                format!(
                    "chain {}",
                    if shown.is_empty() {
                        "empty".into()
                    } else {
                        shown.join(" → ")
                    }
                ),
            )
        }
    }
}

/// Judges a status expectation from the broker's `validate` answer and the known cause.
fn judge_status(want: Status, broker_valid: Option<bool>, st: &TokenStatus) -> (bool, String) {
    let said = match broker_valid {
        Some(true) => "the broker says valid".to_string(),
        Some(false) => format!(
            "the broker says invalid; chainview knows it is {}",
            st.reason()
        ),
        None => format!("never issued: {}", st.reason()),
    };
    let good = match want {
        Status::Valid => broker_valid == Some(true),
        Status::Invalid => broker_valid != Some(true),
        Status::Released => broker_valid == Some(false) && *st == TokenStatus::Released,
        Status::Revoked => {
            broker_valid == Some(false)
                && matches!(st, TokenStatus::Revoked { .. } | TokenStatus::RenewedAway)
        }
        Status::Expired => broker_valid == Some(false) && *st == TokenStatus::Expired,
    };
    (good, said)
}
