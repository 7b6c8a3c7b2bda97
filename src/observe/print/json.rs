//! JSON lines: agents, then one line per token node, one per denial, and a
//! summary last. Lines are serialized from borrowed structs (a million-event
//! trail prints hundreds of thousands of lines).

use std::io::{self, Write};

use serde::Serialize;

use crate::observe::{DoubtKind, Liveness, NodeKind, Observed};

/// `n12` (a node), `a3` (an agent): written straight into the line, no
/// string allocated for it.
#[derive(Clone, Copy)]
struct Ref(char, usize);

impl Serialize for Ref {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}{}", self.0, self.1))
    }
}

fn node(i: usize) -> Ref {
    Ref('n', i)
}

/// Lines are rendered in chunks of this many items, on both cores, and
/// written in order.
const CHUNK: usize = 4096;

#[derive(Serialize)]
struct AgentLine<'a> {
    kind: &'static str,
    id: Ref,
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
    id: Ref,
    #[serde(rename = "type")]
    ty: &'static str,
    agent: &'a str,
    from: Option<&'a str>,
    parent: Option<Ref>,
    renews: Option<Ref>,
    scope: &'a [String],
    depth: usize,
    task: &'a str,
    orch: &'a str,
    root: Option<&'a str>,
    status: &'static str,
    status_why: &'a str,
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
    renews_candidates: Vec<Ref>,
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
    candidates: Vec<Ref>,
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
    node: Option<Ref>,
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

/// One line, appended to `buf` (a chunk of whole lines, handed to the
/// writer whole: the writer that keeps control characters out of the
/// terminal takes whole UTF-8 per write).
fn line<T: Serialize>(buf: &mut Vec<u8>, v: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *buf, v).map_err(io::Error::other)?;
    buf.push(b'\n');
    Ok(())
}

/// What the summary counts, summed over the chunks.
#[derive(Default, Clone, Copy)]
struct Tally {
    agents: usize,
    counts: [usize; 3],
    alive: [usize; 3],
    denied: usize,
}

impl Tally {
    fn add(&mut self, t: Tally) {
        self.agents += t.agents;
        self.denied += t.denied;
        for i in 0..3 {
            self.counts[i] += t.counts[i];
            self.alive[i] += t.alive[i];
        }
    }
}

/// A run of agents, nodes or denials to render.
#[derive(Clone, Copy)]
enum Part {
    Agents(usize, usize),
    Nodes(usize, usize),
    Denials(usize, usize),
}

fn parts(o: &Observed) -> Vec<Part> {
    let mut v = Vec::new();
    let mut cut = |n: usize, f: fn(usize, usize) -> Part| {
        let mut i = 0;
        while i < n {
            let j = (i + CHUNK).min(n);
            v.push(f(i, j));
            i = j;
        }
    };
    cut(o.agents.len(), Part::Agents);
    cut(o.nodes.len(), Part::Nodes);
    cut(o.denials.len(), Part::Denials);
    v
}

fn render(o: &Observed, at: usize, part: Part, buf: &mut Vec<u8>) -> io::Result<Tally> {
    let mut t = Tally::default();
    match part {
        Part::Agents(a, b) => agents(o, at, a, b, buf, &mut t)?,
        Part::Nodes(a, b) => nodes(o, at, a, b, buf, &mut t)?,
        Part::Denials(a, b) => denials(o, at, a, b, buf, &mut t)?,
    }
    Ok(t)
}

/// Agents, then nodes, then denials, then the summary. The chunks are
/// rendered alternately here and on a second thread, and written in order
/// (the output is the same as one thread's).
pub fn write(o: &Observed, at: usize, w: &mut dyn Write) -> io::Result<()> {
    let parts = parts(o);
    let mut tally = Tally::default();
    if parts.len() <= 1 {
        let mut buf = Vec::new();
        for &p in &parts {
            tally.add(render(o, at, p, &mut buf)?);
        }
        w.write_all(&buf)?;
    } else {
        std::thread::scope(|s| -> io::Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<(Vec<u8>, Tally)>>(2);
            let (back_tx, back_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let odd: Vec<Part> = parts.iter().skip(1).step_by(2).copied().collect();
            s.spawn(move || {
                for p in odd {
                    let mut buf = back_rx.try_recv().unwrap_or_default();
                    buf.clear();
                    let r = render(o, at, p, &mut buf).map(|t| (buf, t));
                    if tx.send(r).is_err() {
                        return;
                    }
                }
            });
            let mut mine = Vec::new();
            for (i, &p) in parts.iter().enumerate().step_by(2) {
                mine.clear();
                tally.add(render(o, at, p, &mut mine)?);
                w.write_all(&mine)?;
                if i + 1 < parts.len() {
                    let (buf, t) = rx
                        .recv()
                        .map_err(|_| io::Error::other("the printing thread stopped"))??;
                    tally.add(t);
                    w.write_all(&buf)?;
                    let _ = back_tx.send(buf);
                }
            }
            Ok(())
        })?;
    }
    summary(o, at, &tally, w)
}

fn agents(
    o: &Observed,
    at: usize,
    from: usize,
    to: usize,
    buf: &mut Vec<u8>,
    t: &mut Tally,
) -> io::Result<()> {
    let id = |k: usize| &*o.events[k].id;
    for (i, a) in o.agents.iter().enumerate().take(to).skip(from) {
        if !o.agent_shown(i) {
            continue;
        }
        let registered = a.registered.is_some_and(|k| k <= at);
        t.agents += usize::from(registered);
        if !registered && a.nodes.first().is_none_or(|&n| o.nodes[n].event > at) {
            continue;
        }
        line(
            buf,
            &AgentLine {
                kind: "agent",
                id: Ref('a', i),
                agent: &a.spiffe,
                task: &a.task,
                orch: &a.orch,
                scope: &a.scope,
                app: a.app.as_deref(),
                event: a.registered.map(id),
            },
        )?;
    }
    Ok(())
}

fn nodes(
    o: &Observed,
    at: usize,
    from: usize,
    to: usize,
    buf: &mut Vec<u8>,
    t: &mut Tally,
) -> io::Result<()> {
    let id = |k: usize| &*o.events[k].id;
    for (i, n) in o
        .nodes
        .iter()
        .enumerate()
        .take(to)
        .skip(from)
        .filter(|(i, _)| o.exists(*i, at))
    {
        t.counts[n.kind as usize] += 1;
        let j = o.status(i, at);
        let link_inferred = !n.inferred.is_empty() || n.renews_doubt.is_some();
        let mut why: Vec<&str> = n.inferred.iter().map(String::as_str).collect();
        if j.inferred {
            why.push(&j.why);
        }
        let renews = o.renews_at(i, at);
        let renews_candidates = match (renews, n.renews_doubt) {
            (None, Some(d)) => o.doubt_left(d, at).into_iter().map(node).collect(),
            _ => Vec::new(),
        };
        let liveness = j.liveness.key();
        t.alive[j.liveness as usize] += 1;
        let perhaps_ended = o
            .open_doubts(i, at)
            .map(|d| Perhaps {
                event: id(o.doubts[d].event),
                how: match o.doubts[d].kind {
                    DoubtKind::RevokedJti(_) => "revoked",
                    DoubtKind::Released => "released",
                    DoubtKind::Renewed { .. } => "renewed",
                },
                candidates: o.doubt_left(d, at).into_iter().map(node).collect(),
            })
            .collect();
        line(
            buf,
            &NodeLine {
                kind: "node",
                id: node(i),
                ty: n.kind.word(),
                agent: &o.agents[n.agent].spiffe,
                from: n.from.map(|f| o.agents[f].spiffe.as_str()),
                parent: n.parent.map(node),
                renews: renews.map(node),
                scope: &n.scope,
                depth: n.depth,
                task: &n.task,
                orch: &n.orch,
                root: n.root.map(|r| o.agents[r].spiffe.as_str()),
                status: j.status.word(),
                status_why: &j.why,
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
    Ok(())
}

fn denials(
    o: &Observed,
    at: usize,
    from: usize,
    to: usize,
    buf: &mut Vec<u8>,
    t: &mut Tally,
) -> io::Result<()> {
    let id = |k: usize| &*o.events[k].id;
    for (_, d) in o.denials[from..to]
        .iter()
        .enumerate()
        .map(|(k, d)| (from + k, d))
        .filter(|(k, d)| d.event <= at && o.denial_shown(*k))
    {
        t.denied += 1;
        let delegation = d.event_type == "delegation_attenuation_violation";
        line(
            buf,
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
                node: d.node.map(node),
                node_inferred: d.node_inferred,
            },
        )?;
    }
    Ok(())
}

fn summary(o: &Observed, at: usize, t: &Tally, w: &mut dyn Write) -> io::Result<()> {
    let id = |k: usize| &*o.events[k].id;
    let kind = |k: NodeKind| t.counts[k as usize];
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
    let mut buf = Vec::new();
    line(
        &mut buf,
        &Summary {
            kind: "summary",
            schema_version: SCHEMA_VERSION,
            events: at + 1,
            events_read: o.events.len(),
            as_of: id(at),
            as_of_time: &o.events[at].timestamp,
            agents: t.agents,
            nodes: t.counts.iter().sum(),
            registrations: kind(NodeKind::Registration),
            delegations: kind(NodeKind::Delegation),
            renewals: kind(NodeKind::Renewal),
            live: t.alive[Liveness::Live as usize],
            maybe: t.alive[Liveness::Maybe as usize],
            dead: t.alive[Liveness::Dead as usize],
            judged_at: if o.judged_now(at) { "now" } else { "event" },
            denied: t.denied,
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
    )?;
    w.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::types::AuditRef;

    /// Enough agents and tokens for several chunks on both threads.
    fn big() -> Observed {
        let mut o = Observed::new();
        let n = CHUNK * 2 + 17;
        for i in 0..n {
            let agent = format!("spiffe://agentwrit.local/agent/o/t{i}/{i:016x}");
            let id1 = format!("evt-{:06}", 2 * i + 1);
            let id2 = format!("evt-{:06}", 2 * i + 2);
            let jti = format!("jti={i:032x}, ttl=60");
            for (id, ty, detail) in [
                (
                    &id1,
                    "agent_registered",
                    "Agent registered with scope [read:data:*]",
                ),
                (&id2, "token_issued", &*format!("Token issued, {jti}")),
            ] {
                o.fold(
                    &AuditRef {
                        id,
                        timestamp: "2026-07-25T10:00:00.000Z",
                        event_type: ty,
                        agent_id: &agent,
                        task_id: "t",
                        orch_id: "o",
                        detail,
                        outcome: "success",
                        ..AuditRef::default()
                    },
                    Some(true),
                );
            }
        }
        o
    }

    #[test]
    fn chunks_on_two_threads_print_what_one_thread_would() {
        let o = big();
        let at = o.head().unwrap();
        let mut threaded = Vec::new();
        write(&o, at, &mut threaded).unwrap();
        let mut one = Vec::new();
        let mut t = Tally::default();
        let parts = parts(&o);
        assert!(parts.len() > 4, "several chunks");
        for p in parts {
            t.add(render(&o, at, p, &mut one).unwrap());
        }
        summary(&o, at, &t, &mut one).unwrap();
        assert_eq!(threaded, one);
        let text = String::from_utf8(threaded).unwrap();
        let ids: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("{\"kind\":\"node\""))
            .map(|l| l.split('"').nth(7).unwrap())
            .collect();
        assert_eq!(ids.len(), o.nodes.len());
        assert!(ids.iter().enumerate().all(|(i, id)| *id == format!("n{i}")));
        let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        assert_eq!(last["nodes"], o.nodes.len());
        assert_eq!(last["agents"], o.agents.len());
    }
}
