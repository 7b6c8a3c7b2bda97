//! The reconstruction as the explorer's [`App`] model, as of an event: the
//! same views (agents, chain tree, detail, probe, audit) draw it. Tokens
//! carry claims built from the trail (no raw token: observe never holds
//! one); a refused delegation sits under the token it was attempted with,
//! refused with the broker's words; what is inferred is said in the notes.

use crate::app::{AgentEntry, App, AuditTrail, Known, TokenId, TokenKind, TokenStatus};
use crate::broker::BrokerError;
use crate::broker::types::{AuditEvent, RevokeLevel};
use crate::jwt::{Claims, DelegRecord};

use super::{EndHow, Liveness, NodeId, Observed, Status};

/// Which part of the trail to show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Substring of the task, orch, agent (SPIFFE id) or app id; empty: all.
    pub text: String,
}

impl Filter {
    fn keeps(&self, o: &Observed, id: NodeId) -> bool {
        if self.text.is_empty() {
            return true;
        }
        let n = &o.nodes[id];
        let a = &o.agents[n.agent];
        [n.task.as_str(), n.orch.as_str(), a.spiffe.as_str()]
            .into_iter()
            .chain(a.app.as_deref())
            .chain(n.from.map(|f| o.agents[f].spiffe.as_str()))
            .any(|s| s.contains(&self.text))
    }
}

/// The agent's name in the views: `task/0123` from its SPIFFE id.
pub fn agent_name(spiffe: &str) -> String {
    crate::rules::spiffe::short(spiffe, false)
}

/// The App as of event `at`, keeping the chains `filter` lets through (a
/// chain is kept whole when any of its tokens matches); the audit view
/// gets the events `o` keeps whole.
pub fn app_at(o: &Observed, at: usize, url: &str, filter: &Filter) -> App {
    let recent = &o.recent;
    let mut app = App::new(url, false, None);
    app.connected = true;
    app.admin = true;
    app.app = Some(crate::worker::AppInfo {
        app_id: None,
        client_id: "none (observing, admin)".into(),
        ceiling: None,
    });
    let ms = o.events.get(at).map(|s| s.ms).unwrap_or(0);
    // Agents in order of registration; with a filter, only those holding a
    // token it keeps (added as their first token is).
    let mut agent_of = vec![None; o.agents.len()];
    let add_agent = |app: &mut App, agent_of: &mut Vec<Option<usize>>, i: usize| -> usize {
        if let Some(a) = agent_of[i] {
            return a;
        }
        let a = &o.agents[i];
        let ix = app.agents.len();
        app.agents.push(AgentEntry {
            name: agent_name(&a.spiffe),
            agent_id: Some(a.spiffe.clone()),
            orch: a.orch.clone(),
            task: a.task.clone(),
            scope: a.scope.clone(),
            token: None,
        });
        agent_of[i] = Some(ix);
        ix
    };
    if filter.text.is_empty() {
        for (i, a) in o.agents.iter().enumerate() {
            if a.registered.is_some_and(|k| k <= at) {
                add_agent(&mut app, &mut agent_of, i);
            }
        }
    }
    // Whole chains: a root is kept when any token under it passes the filter.
    let keep_root = |root: NodeId| -> bool {
        let mut stack = vec![root];
        while let Some(n) = stack.pop() {
            if filter.keeps(o, n) {
                return true;
            }
            stack.extend(
                o.nodes[n]
                    .children
                    .iter()
                    .copied()
                    .filter(|&c| o.exists(c, at)),
            );
        }
        false
    };
    let mut token_of: Vec<Option<TokenId>> = vec![None; o.nodes.len()];
    app.tokens.reserve(o.nodes.len() + o.denials.len());
    for (i, n) in o.nodes.iter().enumerate() {
        if n.event > at {
            break;
        }
        let root = o.chain(i)[0];
        if !filter.text.is_empty() && !keep_root(root) {
            continue;
        }
        let holder = add_agent(&mut app, &mut agent_of, n.agent);
        let id = app.add_known(known(o, i, at, holder, &token_of, format!("n{i}"), false));
        token_of[i] = Some(id);
        if n.kind == super::NodeKind::Registration && app.agents[holder].token.is_none() {
            app.agents[holder].token = Some(id);
        }
        for &d in &n.denials {
            let d = &o.denials[d];
            if d.event > at {
                continue;
            }
            if d.event_type != "delegation_attenuation_violation" {
                // Not a token asked for: said on the token it was tried with.
                let (ty, id_) = (&d.event_type, &o.events[d.event].id);
                let what = d.requested.join(" ");
                app.tokens[id]
                    .notes
                    .push(format!("refused: {ty} at {id_} (asked {what})"));
                continue;
            }
            let to = d.target.as_deref().unwrap_or("(unknown)");
            let target = match o.agent_named(to) {
                Some(a) => add_agent(&mut app, &mut agent_of, a),
                None => app.outside_agent(to),
            };
            app.add_known(Known {
                holder: target,
                kind: TokenKind::Delegated { parent: id },
                label: format!("{} refused", o.events[d.event].id),
                claims: None,
                requested: d.requested.clone(),
                status: TokenStatus::Refused(BrokerError {
                    status: 403,
                    error_code: d.event_type.clone(),
                    detail: d.detail.clone(),
                    request_id: o.events[d.event].id.to_string(),
                }),
                foreign: false,
                notes: vec![format!(
                    "refused at {} ({}); attempted with n{}{}",
                    o.events[d.event].id,
                    super::when::stamp(o.events[d.event].ms),
                    d.node.unwrap_or_default(),
                    if d.node_inferred { " (inferred)" } else { "" }
                )],
            });
        }
    }
    let chain = match &o.first_broken {
        Some(b) if b.event <= at => Err(b.to_break()),
        _ => Ok(()),
    };
    // `recent` are the trail's last events: those up to `at` are shown.
    let first = o.events.len().saturating_sub(recent.len());
    let shown: Vec<AuditEvent> = recent
        .iter()
        .take((at + 1).saturating_sub(first))
        .cloned()
        .collect();
    app.audit = Some(Ok(AuditTrail {
        at: ms / 1000,
        events: shown,
        chain,
        total: Some(at as i64 + 1),
        first,
        stopped: o.stopped.clone(),
    }));
    app
}

/// A reconstructed node as a token of the App, as of event `at`:
/// `token_of` says which token each earlier node became (for its parent or
/// the token it renewed).
pub(crate) fn known(
    o: &Observed,
    i: NodeId,
    at: usize,
    holder: usize,
    token_of: &[Option<TokenId>],
    label: String,
    foreign: bool,
) -> Known {
    let n = &o.nodes[i];
    let mapped = |x: Option<NodeId>| x.and_then(|p| token_of.get(p).copied().flatten());
    let kind = match (mapped(n.renews), mapped(n.parent)) {
        (Some(of), _) => TokenKind::Renewal { of },
        (None, Some(parent)) => TokenKind::Delegated { parent },
        (None, None) if n.depth > 0 => TokenKind::Imported { parent: None },
        (None, None) => TokenKind::Registration,
    };
    let j = o.status(i, at);
    let whose = if foreign { "another client's " } else { "" };
    let mut notes = vec![format!(
        "issued at {} ({}): {whose}{}",
        o.events[n.event].id,
        super::when::stamp(o.events[n.event].ms),
        n.kind.word()
    )];
    if j.inferred
        || matches!(
            j.status,
            Status::Revoked | Status::Released | Status::Renewed
        )
    {
        notes.push(format!("status: {}", j.why));
    }
    if let Some(app_id) = &o.agents[n.agent].app {
        let name = o
            .apps
            .get(app_id)
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        notes.push(format!("holder registered through app {app_id}{name}"));
    }
    notes.extend(n.inferred.iter().map(|w| format!("inferred: {w}")));
    if n.jti.is_none() {
        notes.push("jti: not in the trail (v2.0.0 does not audit a delegated token's jti)".into());
    }
    Known {
        holder,
        kind,
        label,
        claims: Some(claims(o, i)),
        requested: n.scope.clone(),
        status: token_status(o, i, &j),
        notes,
        foreign,
    }
}

/// A node's judged status in the App's words.
pub(crate) fn token_status(o: &Observed, i: NodeId, j: &super::Judged) -> TokenStatus {
    match (j.status, j.liveness) {
        (Status::Live, Liveness::Live) => TokenStatus::Valid,
        (Status::Live, _) => TokenStatus::LikelyValid(j.why.clone()),
        (_, Liveness::Maybe) => TokenStatus::Unknown(j.why.clone()),
        _ => token_status_dead(o, i, j),
    }
}

/// A dead node's status in the App's words.
fn token_status_dead(o: &Observed, i: NodeId, j: &super::Judged) -> TokenStatus {
    match j.status {
        Status::Live => TokenStatus::Valid,
        Status::Expired => TokenStatus::Expired,
        Status::Released => TokenStatus::Released,
        Status::Renewed => TokenStatus::RenewedAway,
        Status::Unknown => TokenStatus::Unknown(j.why.clone()),
        Status::Revoked => match o.nodes[i].end.as_ref().map(|e| &e.how) {
            Some(EndHow::Revoked { level, target }) => TokenStatus::Revoked {
                level: *level,
                target: target.clone(),
            },
            _ => TokenStatus::Revoked {
                level: RevokeLevel::Token,
                target: String::new(),
            },
        },
    }
}

/// Claims as far as the trail tells: subject, scope, task, orch, jti when
/// known, issue time, expiry (far away when the ttl is unknown: the status
/// says what is known), and a delegation chain of the hops above it.
pub(crate) fn claims(o: &Observed, i: NodeId) -> Claims {
    let n = &o.nodes[i];
    let iat = n.ms / 1000;
    let chain = o.chain(i);
    let records: Vec<DelegRecord> = chain
        .windows(2)
        .map(|w| {
            let (p, c) = (&o.nodes[w[0]], &o.nodes[w[1]]);
            DelegRecord {
                agent: o.agents[p.agent].spiffe.clone(),
                scope: p.scope.clone(),
                delegated_at: o.events[c.event].timestamp.to_string(),
                signature: String::new(),
            }
        })
        .collect();
    // A renewal of a delegated token keeps its chain; the chain above a
    // placeholder is unknown.
    let records = if records.len() > n.depth {
        records[records.len() - n.depth..].to_vec()
    } else {
        records
    };
    Claims {
        sub: o.agents[n.agent].spiffe.clone(),
        scope: n.scope.clone(),
        task_id: n.task.to_string(),
        orch_id: n.orch.to_string(),
        jti: n.jti.clone().unwrap_or_default(),
        iat,
        nbf: iat,
        exp: n.ttl.map(|t| iat + t).unwrap_or(crate::app::EXP_UNKNOWN),
        delegation_chain: records,
        chain_hash: n.chain_hash.clone().unwrap_or_default(),
        ..Claims::default()
    }
}
