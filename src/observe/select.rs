//! `--filter KEY=VALUE`: the part of a reconstruction a headless print or
//! a judgment keeps (`observe --print`, `check`, `who-can`, `diff`).
//!
//! The rule, one for every format: a token is kept when it matches, and
//! with it every token above it (its parent, what it renewed, up to the
//! root), so each kept path is whole from its root. A refused attempt is
//! kept when it matches or was made with a token that matches (its token's
//! path is then kept too). An agent is listed when it matches or holds a
//! kept token. The same key given twice is an OR (`task=a --filter
//! task=b`), different keys an AND (`task=a --filter orch=o`). A value
//! ending in `*` matches as a prefix (`task=batch-*`).
//!
//! What matches which key: `task` and `orch`, the token's own task/orch or
//! those its holder registered with; `agent`, the holder's SPIFFE id, its
//! `orch/task/instance` or `task/instance` tail, its instance id, or the
//! short names the outputs show (`orch/task/0123`, `task/0123`); `app`,
//! the app id the holder registered through or that app's name. A refused
//! attempt matches by its task/orch, who tried and for whom.
//!
//! Statuses are still judged over the whole trail (a filter hides, never
//! changes what the trail says), and integrity failures are the trail's:
//! they are said whatever the filter.

use super::{AgentIx, Denial, NodeId, Observed};
use crate::rules::spiffe;

/// What a filter term looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    Task,
    Orch,
    Agent,
    App,
}

impl Key {
    pub const ALL: [Key; 4] = [Key::Task, Key::Orch, Key::Agent, Key::App];

    pub fn word(self) -> &'static str {
        match self {
            Key::Task => "task",
            Key::Orch => "orch",
            Key::Agent => "agent",
            Key::App => "app",
        }
    }
}

/// One `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub key: Key,
    pub value: String,
}

/// Why a `--filter` value is not a term.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("'{0}' is not KEY=VALUE (task=…, orch=…, agent=… or app=…)")]
    NotTerm(String),
    #[error("unknown key '{0}': expected task, orch, agent or app")]
    UnknownKey(String),
    #[error("{0}= needs a value")]
    Empty(&'static str),
}

impl std::str::FromStr for Term {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Term, FilterError> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| FilterError::NotTerm(crate::text::visible(s).into_owned()))?;
        let key = Key::ALL
            .into_iter()
            .find(|key| key.word() == k.trim())
            .ok_or_else(|| FilterError::UnknownKey(crate::text::visible(k).into_owned()))?;
        let value = v.trim();
        if value.is_empty() {
            return Err(FilterError::Empty(key.word()));
        }
        Ok(Term {
            key,
            value: value.to_string(),
        })
    }
}

/// The terms given, as a filter (none: everything is kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Select {
    terms: Vec<Term>,
}

/// What one token, refusal or agent can be matched by.
#[derive(Default)]
struct Subject<'a> {
    tasks: Vec<&'a str>,
    orchs: Vec<&'a str>,
    agents: Vec<&'a str>,
    apps: Vec<&'a str>,
}

fn meets(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

fn agent_meets(pattern: &str, id: &str) -> bool {
    if meets(pattern, id) {
        return true;
    }
    let Some(p) = spiffe::parts(id) else {
        return false;
    };
    let tail2 = format!("{}/{}", p.task, p.instance);
    let tail3 = format!("{}/{tail2}", p.orch);
    [
        p.instance,
        &tail2,
        &tail3,
        &spiffe::short(id, false),
        &spiffe::with_orch(id),
    ]
    .into_iter()
    .any(|v| meets(pattern, v))
}

impl Select {
    pub fn new(terms: Vec<Term>) -> Select {
        Select { terms }
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Every key given has a term the subject meets.
    fn keeps(&self, s: &Subject<'_>) -> bool {
        Key::ALL.into_iter().all(|key| {
            let mut terms = self.terms.iter().filter(|t| t.key == key).peekable();
            if terms.peek().is_none() {
                return true;
            }
            let values = match key {
                Key::Task => &s.tasks,
                Key::Orch => &s.orchs,
                Key::Agent => &s.agents,
                Key::App => &s.apps,
            };
            terms.any(|t| {
                values.iter().any(|v| match key {
                    Key::Agent => agent_meets(&t.value, v),
                    _ => meets(&t.value, v),
                })
            })
        })
    }
}

/// What a filter kept, by index (see the module's rule).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    nodes: Vec<bool>,
    denials: Vec<bool>,
    agents: Vec<bool>,
}

impl Observed {
    fn agent_subject<'a>(&'a self, s: &mut Subject<'a>, a: AgentIx) {
        let a = &self.agents[a];
        s.tasks.push(&a.task);
        s.orchs.push(&a.orch);
        s.agents.push(&a.spiffe);
        if let Some(app) = a.app.as_deref() {
            s.apps.push(app);
            if let Some(name) = self.apps.get(app) {
                s.apps.push(name);
            }
        }
    }

    fn node_subject(&self, i: NodeId) -> Subject<'_> {
        let n = &self.nodes[i];
        let mut s = Subject {
            tasks: vec![&n.task],
            orchs: vec![&n.orch],
            ..Subject::default()
        };
        self.agent_subject(&mut s, n.agent);
        s
    }

    fn denial_subject<'a>(&'a self, d: &'a Denial) -> Subject<'a> {
        let mut s = Subject {
            tasks: vec![&d.task],
            orchs: vec![&d.orch],
            ..Subject::default()
        };
        for who in [d.by.as_deref(), d.target.as_deref()].into_iter().flatten() {
            match self.agent_named(who) {
                Some(a) => self.agent_subject(&mut s, a),
                None => s.agents.push(who),
            }
        }
        s
    }

    /// Keeps only what `select` lets through (see the module's rule); an
    /// empty filter keeps everything.
    pub fn restrict(&mut self, select: &Select) {
        if select.is_empty() {
            self.selection = None;
            return;
        }
        let mut shown = Shown {
            nodes: vec![false; self.nodes.len()],
            denials: vec![false; self.denials.len()],
            agents: vec![false; self.agents.len()],
        };
        let mut matched = vec![false; self.nodes.len()];
        for (i, m) in matched.iter_mut().enumerate() {
            *m = select.keeps(&self.node_subject(i));
        }
        let mut seeds: Vec<NodeId> = (0..self.nodes.len()).filter(|&i| matched[i]).collect();
        for (k, d) in self.denials.iter().enumerate() {
            let by_node = d.node.is_some_and(|n| matched[n]);
            if by_node || select.keeps(&self.denial_subject(d)) {
                shown.denials[k] = true;
                seeds.extend(d.node);
            }
        }
        // Each seed with everything above it: its path stays whole.
        for seed in seeds {
            let mut stack = vec![seed];
            while let Some(i) = stack.pop() {
                if std::mem::replace(&mut shown.nodes[i], true) {
                    continue;
                }
                let n = &self.nodes[i];
                stack.extend(n.parent);
                stack.extend(n.renews);
            }
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if shown.nodes[i] {
                shown.agents[n.agent] = true;
            }
        }
        for a in 0..self.agents.len() {
            if !shown.agents[a] {
                let mut s = Subject::default();
                self.agent_subject(&mut s, a);
                shown.agents[a] = select.keeps(&s);
            }
        }
        self.selection = Some(shown);
    }

    /// Whether a filter keeps the node (always, without one).
    pub fn node_shown(&self, i: NodeId) -> bool {
        self.selection
            .as_ref()
            .is_none_or(|s| s.nodes.get(i).copied().unwrap_or(false))
    }

    /// Whether a filter keeps the refused attempt (always, without one).
    pub fn denial_shown(&self, d: usize) -> bool {
        self.selection
            .as_ref()
            .is_none_or(|s| s.denials.get(d).copied().unwrap_or(false))
    }

    /// Whether a filter keeps the agent (always, without one).
    pub fn agent_shown(&self, a: AgentIx) -> bool {
        self.selection
            .as_ref()
            .is_none_or(|s| s.agents.get(a).copied().unwrap_or(false))
    }

    /// The refused attempts made by event `at` that the filter keeps.
    pub fn denials_at(&self, at: usize) -> impl Iterator<Item = (usize, &Denial)> + '_ {
        self.denials
            .iter()
            .enumerate()
            .filter(move |(k, d)| d.event <= at && self.denial_shown(*k))
    }
}
