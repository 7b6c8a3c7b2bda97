//! Diagrams of a delegation forest — the explorer's own, or one rebuilt from
//! an audit trail — as Mermaid (`flowchart`) and Graphviz DOT, one file per
//! format. Nodes carry the holder, the scope and the status; edges carry
//! what the hop dropped or narrowed; refusals are dashed edges to the
//! attempt.

pub mod dot;
pub mod mermaid;

use crate::app::{App, TokenStatus};
use crate::observe::project::agent_name;
use crate::observe::{Liveness, Observed};
use crate::scope;

/// A forest, ready to draw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// A key unique in the graph (`n12`, `d3`).
    pub key: String,
    pub holder: String,
    /// The holder's orch and task: the clusters (DOT) or subgraphs
    /// (Mermaid) it is drawn in; empty when unknown.
    pub orch: String,
    pub task: String,
    pub scope: Vec<String>,
    /// The status word (`live`, `revoked`, … or `denied` for a refused attempt).
    pub status: String,
    /// Something about it is inferred, not stated by the broker.
    pub inferred: bool,
    /// Dead, refused or denied: drawn greyed or red.
    pub dead: bool,
    /// A status the trail cannot settle (may permit): drawn dotted, amber.
    pub maybe: bool,
    pub refused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub label: String,
    /// A refusal (or an inferred link): dashed.
    pub dashed: bool,
}

/// The explorer's tree as of `now`.
pub fn from_app(app: &App, now: i64) -> Graph {
    let mut g = Graph::default();
    for t in &app.tokens {
        let status = t.status_at(now);
        let refused = matches!(status, TokenStatus::Refused(_) | TokenStatus::Failed(_));
        let agent = app.agents.get(t.holder);
        let who = agent.map(|a| a.name.clone()).unwrap_or_default();
        g.nodes.push(Node {
            key: format!("t{}", t.id),
            holder: match &t.label {
                Some(l) if *l != who => format!("{who} ({l})"),
                _ => who,
            },
            orch: agent.map(|a| a.orch.clone()).unwrap_or_default(),
            task: agent.map(|a| a.task.clone()).unwrap_or_default(),
            scope: t.scope().to_vec(),
            status: match &status {
                TokenStatus::Refused(b) => format!("refused {} {}", b.status, b.error_code),
                s => s.word().to_string(),
            },
            inferred: false,
            dead: status.is_dead(),
            maybe: status.liveness() == crate::app::Liveness::Maybe,
            refused,
        });
        if let Some(p) = t.tree_parent(&app.tokens) {
            g.edges.push(Edge {
                from: format!("t{p}"),
                to: format!("t{}", t.id),
                label: if refused {
                    "refused".to_string()
                } else {
                    scope::hop_words(app.tokens[p].scope(), t.scope())
                },
                dashed: refused,
            });
        }
    }
    g
}

/// A reconstruction as of event `at`.
pub fn from_observed(o: &Observed, at: usize) -> Graph {
    let mut g = Graph::default();
    for (i, n) in o.nodes.iter().enumerate().filter(|(i, _)| o.exists(*i, at)) {
        let j = o.status(i, at);
        let (orch, task) = place(o, &o.agents[n.agent].spiffe, &n.orch, &n.task);
        g.nodes.push(Node {
            key: format!("n{i}"),
            holder: agent_name(&o.agents[n.agent].spiffe),
            orch,
            task,
            scope: n.scope.clone(),
            status: match j.liveness {
                Liveness::Maybe => format!("{}? (may permit)", j.status.word()),
                _ if j.inferred => format!("{}?", j.status.word()),
                _ => j.status.word().to_string(),
            },
            inferred: j.inferred || !n.inferred.is_empty(),
            dead: j.liveness == Liveness::Dead,
            maybe: j.liveness == Liveness::Maybe,
            refused: false,
        });
        let from = n.parent.or(n.renews);
        if let Some(p) = from {
            let label = match n.renews {
                Some(_) => "renewal".to_string(),
                None => scope::hop_words(&o.nodes[p].scope, &n.scope),
            };
            g.edges.push(Edge {
                from: format!("n{p}"),
                to: format!("n{i}"),
                label,
                dashed: !n.inferred.is_empty(),
            });
        }
    }
    for (i, d) in o.denials_at(at) {
        let Some(p) = d.node else { continue };
        let (orch, task) = place(o, d.target.as_deref().unwrap_or(""), &d.orch, &d.task);
        g.nodes.push(Node {
            key: format!("d{i}"),
            holder: d
                .target
                .as_deref()
                .map(agent_name)
                .unwrap_or_else(|| "?".into()),
            orch,
            task,
            scope: d.requested.clone(),
            // The event on the node, not the edge: many refusals from one
            // token stay legible.
            status: format!("denied at {} ({})", o.events[d.event].id, d.event_type),
            inferred: d.node_inferred,
            dead: true,
            maybe: false,
            refused: true,
        });
        g.edges.push(Edge {
            from: format!("n{p}"),
            to: format!("d{i}"),
            label: String::new(),
            dashed: true,
        });
    }
    g
}

/// The orch and task an agent is drawn under: those it registered with,
/// else those its SPIFFE id names, else the event's.
fn place(o: &Observed, spiffe: &str, orch: &str, task: &str) -> (String, String) {
    if let Some(a) = o.agent_named(spiffe).map(|a| &o.agents[a])
        && (!a.orch.is_empty() || !a.task.is_empty())
    {
        return (a.orch.clone(), a.task.clone());
    }
    match crate::rules::spiffe::parts(spiffe) {
        Some(p) => (p.orch.to_string(), p.task.to_string()),
        None => (orch.to_string(), task.to_string()),
    }
}

/// An orch's tasks, each with the indexes of its nodes.
pub type Cluster<'a> = (&'a str, Vec<(&'a str, Vec<usize>)>);

/// The nodes by orch, then by task within it, each in order of first
/// appearance: `(orch, [(task, [node index])])`.
pub fn clusters(g: &Graph) -> Vec<Cluster<'_>> {
    let mut out: Vec<Cluster<'_>> = Vec::new();
    let mut orchs: rustc_hash::FxHashMap<&str, usize> = Default::default();
    let mut tasks: rustc_hash::FxHashMap<(usize, &str), usize> = Default::default();
    for (i, n) in g.nodes.iter().enumerate() {
        let o = *orchs.entry(&n.orch).or_insert_with(|| {
            out.push((&n.orch, Vec::new()));
            out.len() - 1
        });
        let list = &mut out[o].1;
        let t = *tasks.entry((o, &n.task)).or_insert_with(|| {
            list.push((&n.task, Vec::new()));
            list.len() - 1
        });
        list[t].1.push(i);
    }
    out
}

/// Characters a label may hold: control characters never reach a diagram.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}
