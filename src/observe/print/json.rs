//! JSON lines: agents, then one line per token node, one per denial, and a
//! summary last. Lines are serialized from borrowed structs (a million-event
//! trail prints hundreds of thousands of lines).

use std::io::{self, Write};

use serde::Serialize;

use crate::observe::{DoubtKind, Liveness, NodeKind, Observed};

#[derive(Serialize)]
struct AgentLine<'a> {
    kind: &'static str,
    id: String,
    agent: &'a str,
    task: &'a str,
    orch: &'a str,
    scope: &'a [String],
    app: Option<&'a str>,
    event: Option<&'a str>,
}

#[derive(Serialize)]
struct NodeLine<'a> {
    kind: &'static str,
    id: String,
    #[serde(rename = "type")]
    ty: &'static str,
    agent: &'a str,
    from: Option<&'a str>,
    parent: Option<String>,
    renews: Option<String>,
    scope: &'a [String],
    depth: usize,
    task: &'a str,
    orch: &'a str,
    root: Option<&'a str>,
    status: &'static str,
    status_why: String,
    /// `live`, `maybe` (a status the trail cannot settle: may permit) or `dead`.
    liveness: &'static str,
    /// Its parent (or the token it renewed) is a guess, or sits under one.
    link_inferred: bool,
    /// Its status is a guess (or unknown).
    status_inferred: bool,
    /// `link_inferred || status_inferred`.
    inferred: bool,
    inferred_why: Vec<&'a str>,
    /// Why no AgentWrit broker could have issued it as the trail shows it.
    impossible: Option<&'a str>,
    /// For a renewal whose predecessor the trail cannot tell: the candidates left.
    renews_candidates: Vec<String>,
    /// Events that may have ended it (the trail does not say which token
    /// they ended): each with what it did and the candidates still left.
    perhaps_ended: Vec<Perhaps<'a>>,
    event: &'a str,
    at: &'a str,
    ttl: Option<i64>,
    jti: Option<&'a str>,
    chain_hash: Option<&'a str>,
    app: Option<&'a str>,
    ended_by: Option<&'a str>,
    /// Built from an event before the first break of the hash chain
    /// (false: at or after it — nothing about it can be relied on).
    consistent: bool,
}

#[derive(Serialize)]
struct Perhaps<'a> {
    event: &'a str,
    /// `revoked`, `released` or `renewed`.
    how: &'static str,
    candidates: Vec<String>,
}

#[derive(Serialize)]
struct DeniedLine<'a> {
    kind: &'static str,
    event: &'a str,
    at: &'a str,
    event_type: &'a str,
    class: &'static str,
    agent: Option<&'a str>,
    from: Option<&'a str>,
    scope: &'a [String],
    allowed: &'a [String],
    path: Option<&'a str>,
    reason: Option<&'a str>,
    detail: &'a str,
    task: &'a str,
    orch: &'a str,
    node: Option<String>,
    node_inferred: bool,
}

/// The version of the JSON lines' schemas (docs/schema/observe-*.schema.json).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Summary<'a> {
    kind: &'static str,
    /// docs/schema/: fields are only added under one version.
    schema_version: u32,
    events: usize,
    events_read: usize,
    as_of: &'a str,
    as_of_time: &'a str,
    agents: usize,
    nodes: usize,
    registrations: usize,
    delegations: usize,
    renewals: usize,
    /// Tokens by liveness as of the event: live, may be live (unknown or
    /// inferred), dead.
    live: usize,
    maybe: usize,
    dead: usize,
    /// `now` (the head of a live trail, judged at the wall clock) or `event`
    /// (judged at the time of `as_of`).
    judged_at: &'static str,
    denied: usize,
    /// `consistent` (what an unkeyed chain proves: not authenticity) or `broken`.
    hash_chain: &'static str,
    /// The chain check in words.
    chain: String,
    first_broken: Option<&'a str>,
    from_genesis: bool,
    /// The `total` the source gave (a page's, a dump's), if any.
    total: Option<u64>,
    /// The events read do not reach that total.
    tail_cut: bool,
    /// `ok`, or `failed` (exit 1): a broken chain, a cut tail, a read that
    /// stopped early, a checkpoint that does not match.
    integrity: &'static str,
    failures: Vec<String>,
    /// "matches checkpoint …" or why not, with --checkpoint.
    checkpoint: Option<&'a str>,
    notes: Vec<&'a str>,
}

/// One line, handed to `w` whole (the writer that keeps control characters
/// out of the terminal takes whole UTF-8 per write).
fn line<T: Serialize>(w: &mut dyn Write, v: &T) -> io::Result<()> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        serde_json::to_writer(&mut *buf, v).map_err(io::Error::other)?;
        buf.push(b'\n');
        w.write_all(buf)
    })
}

pub fn write(o: &Observed, at: usize, w: &mut dyn Write) -> io::Result<()> {
    let id = |k: usize| &*o.events[k].id;
    let mut agents = 0;
    for (i, a) in o.agents.iter().enumerate() {
        let registered = a.registered.is_some_and(|k| k <= at);
        agents += usize::from(registered);
        if !registered && a.nodes.first().is_none_or(|&n| o.nodes[n].event > at) {
            continue;
        }
        line(
            w,
            &AgentLine {
                kind: "agent",
                id: format!("a{i}"),
                agent: &a.spiffe,
                task: &a.task,
                orch: &a.orch,
                scope: &a.scope,
                app: a.app.as_deref(),
                event: a.registered.map(id),
            },
        )?;
    }
    let mut counts = [0usize; 3];
    let mut alive = [0usize; 3];
    for (i, n) in o.nodes.iter().enumerate().filter(|(_, n)| n.event <= at) {
        counts[n.kind as usize] += 1;
        let j = o.status(i, at);
        let link_inferred = !n.inferred.is_empty() || n.renews_doubt.is_some();
        let mut why: Vec<&str> = n.inferred.iter().map(String::as_str).collect();
        if j.inferred {
            why.push(&j.why);
        }
        let renews = o.renews_at(i, at);
        let renews_candidates = match (renews, n.renews_doubt) {
            (None, Some(d)) => o
                .doubt_left(d, at)
                .into_iter()
                .map(|c| format!("n{c}"))
                .collect(),
            _ => Vec::new(),
        };
        let liveness = j.liveness.key();
        alive[j.liveness as usize] += 1;
        let perhaps_ended = o
            .open_doubts(i, at)
            .map(|d| Perhaps {
                event: id(o.doubts[d].event),
                how: match o.doubts[d].kind {
                    DoubtKind::RevokedJti(_) => "revoked",
                    DoubtKind::Released => "released",
                    DoubtKind::Renewed { .. } => "renewed",
                },
                candidates: o
                    .doubt_left(d, at)
                    .into_iter()
                    .map(|c| format!("n{c}"))
                    .collect(),
            })
            .collect();
        line(
            w,
            &NodeLine {
                kind: "node",
                id: format!("n{i}"),
                ty: n.kind.word(),
                agent: &o.agents[n.agent].spiffe,
                from: n.from.map(|f| o.agents[f].spiffe.as_str()),
                parent: n.parent.map(|p| format!("n{p}")),
                renews: renews.map(|p| format!("n{p}")),
                scope: &n.scope,
                depth: n.depth,
                task: &n.task,
                orch: &n.orch,
                root: n.root.map(|r| o.agents[r].spiffe.as_str()),
                status: j.status.word(),
                status_why: j.why.clone(),
                liveness,
                link_inferred,
                status_inferred: j.inferred,
                inferred: link_inferred || j.inferred,
                inferred_why: why,
                impossible: n.impossible.as_deref(),
                renews_candidates,
                perhaps_ended,
                event: id(n.event),
                at: &o.events[n.event].timestamp,
                ttl: n.ttl,
                jti: n.jti.as_deref(),
                chain_hash: n.chain_hash.as_deref(),
                app: o.agents[n.agent].app.as_deref(),
                ended_by: n
                    .end
                    .as_ref()
                    .filter(|e| e.event <= at)
                    .map(|e| id(e.event)),
                consistent: o.consistent_at(n.event),
            },
        )?;
    }
    let mut denied = 0;
    for d in o.denials.iter().filter(|d| d.event <= at) {
        denied += 1;
        let delegation = d.event_type == "delegation_attenuation_violation";
        line(
            w,
            &DeniedLine {
                kind: "denied",
                event: id(d.event),
                at: &o.events[d.event].timestamp,
                event_type: &d.event_type,
                class: d.class(),
                agent: if delegation {
                    d.target.as_deref()
                } else {
                    d.by.as_deref()
                },
                from: d.by.as_deref().filter(|_| delegation),
                scope: &d.requested,
                allowed: &d.allowed,
                path: d.path.as_deref(),
                reason: d.reason.as_deref(),
                detail: &d.detail,
                task: &d.task,
                orch: &d.orch,
                node: d.node.map(|n| format!("n{n}")),
                node_inferred: d.node_inferred,
            },
        )?;
    }
    let kind = |k: NodeKind| counts[k as usize];
    let failures = o.failures();
    let notes: Vec<String> = o
        .integrity_notes()
        .into_iter()
        .chain(
            o.notes
                .iter()
                .filter(|(k, _)| *k <= at)
                .map(|(_, n)| n.clone()),
        )
        .collect();
    line(
        w,
        &Summary {
            kind: "summary",
            schema_version: SCHEMA_VERSION,
            events: at + 1,
            events_read: o.events.len(),
            as_of: id(at),
            as_of_time: &o.events[at].timestamp,
            agents,
            nodes: counts.iter().sum(),
            registrations: kind(NodeKind::Registration),
            delegations: kind(NodeKind::Delegation),
            renewals: kind(NodeKind::Renewal),
            live: alive[Liveness::Live as usize],
            maybe: alive[Liveness::Maybe as usize],
            dead: alive[Liveness::Dead as usize],
            judged_at: if o.judged_now(at) { "now" } else { "event" },
            denied,
            hash_chain: if o.first_broken.is_some() {
                "broken"
            } else {
                "consistent"
            },
            chain: o.chain_words(),
            first_broken: o.first_broken.as_ref().map(|b| b.id.as_str()),
            from_genesis: o.from_genesis,
            total: o.total.map(|t| t.claimed),
            tail_cut: o.total.is_some_and(|t| t.reached < t.claimed),
            integrity: if failures.is_empty() { "ok" } else { "failed" },
            failures,
            checkpoint: o.checkpoint.as_ref().map(|c| match c {
                Ok(w) | Err(w) => w.as_str(),
            }),
            notes: notes.iter().map(String::as_str).collect(),
        },
    )
}
