//! JSON lines: agents, then one line per token node, one per denial, and a
//! summary last.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::observe::{NodeKind, Observed};

fn id_of(o: &Observed, k: usize) -> &str {
    &o.events[k].id
}

/// One node as of event `at`.
pub fn node(o: &Observed, i: usize, at: usize) -> Value {
    let n = &o.nodes[i];
    let j = o.status(i, at);
    let mut why = n.inferred.clone();
    if j.inferred {
        why.push(j.why.clone());
    }
    json!({
        "kind": "node",
        "id": format!("n{i}"),
        "type": n.kind.word(),
        "agent": o.agents[n.agent].spiffe,
        "from": n.from.map(|f| o.agents[f].spiffe.as_str()),
        "parent": n.parent.map(|p| format!("n{p}")),
        "renews": n.renews.map(|p| format!("n{p}")),
        "scope": n.scope,
        "depth": n.depth,
        "task": n.task,
        "orch": n.orch,
        "root": n.root.map(|r| o.agents[r].spiffe.as_str()),
        "status": j.status.word(),
        "status_why": j.why,
        "inferred": !why.is_empty(),
        "inferred_why": why,
        "event": id_of(o, n.event),
        "at": o.events[n.event].timestamp,
        "ttl": n.ttl,
        "jti": n.jti,
        "chain_hash": n.chain_hash,
        "app": o.agents[n.agent].app,
        "ended_by": n.end.as_ref().filter(|e| e.event <= at).map(|e| id_of(o, e.event)),
    })
}

pub fn write(o: &Observed, at: usize, w: &mut dyn Write) -> io::Result<()> {
    for (i, a) in o.agents.iter().enumerate() {
        let seen = a.registered.is_some_and(|k| k <= at)
            || a.nodes.first().is_some_and(|&n| o.nodes[n].event <= at);
        if !seen {
            continue;
        }
        let line = json!({
            "kind": "agent",
            "id": format!("a{i}"),
            "agent": a.spiffe,
            "task": a.task,
            "orch": a.orch,
            "scope": a.scope,
            "app": a.app,
            "event": a.registered.map(|k| id_of(o, k)),
        });
        writeln!(w, "{line}")?;
    }
    let mut nodes = 0;
    for i in (0..o.nodes.len()).filter(|&i| o.exists(i, at)) {
        nodes += 1;
        writeln!(w, "{}", node(o, i, at))?;
    }
    let mut denied = 0;
    for d in o.denials.iter().filter(|d| d.event <= at) {
        denied += 1;
        let line = json!({
            "kind": "denied",
            "event": id_of(o, d.event),
            "at": o.events[d.event].timestamp,
            "event_type": d.event_type,
            "class": d.class(),
            "agent": d.target.as_deref().filter(|_| d.event_type == "delegation_attenuation_violation").or(d.by.as_deref()),
            "from": d.by.as_deref().filter(|_| d.event_type == "delegation_attenuation_violation"),
            "scope": d.requested,
            "allowed": d.allowed,
            "path": d.path,
            "reason": d.reason,
            "detail": d.detail,
            "task": d.task,
            "orch": d.orch,
            "node": d.node.map(|n| format!("n{n}")),
            "node_inferred": d.node_inferred,
        });
        writeln!(w, "{line}")?;
    }
    let agents = o
        .agents
        .iter()
        .filter(|a| a.registered.is_some_and(|k| k <= at))
        .count();
    let summary = json!({
        "kind": "summary",
        "events": at + 1,
        "events_read": o.events.len(),
        "as_of": id_of(o, at),
        "as_of_time": o.events[at].timestamp,
        "agents": agents,
        "nodes": nodes,
        "registrations": count(o, at, NodeKind::Registration),
        "delegations": count(o, at, NodeKind::Delegation),
        "renewals": count(o, at, NodeKind::Renewal),
        "denied": denied,
        "hash_chain": if o.first_broken.is_some() { "broken" } else { "ok" },
        "first_broken": o.first_broken.as_ref().map(|b| b.id.as_str()),
        "from_genesis": o.from_genesis,
        "notes": o.notes.iter().filter(|(k, _)| *k <= at).map(|(_, n)| n).collect::<Vec<_>>(),
    });
    writeln!(w, "{summary}")
}

fn count(o: &Observed, at: usize, kind: NodeKind) -> usize {
    o.nodes
        .iter()
        .filter(|n| n.event <= at && n.kind == kind)
        .count()
}
