//! The fold's inference: which token an event was about when the trail
//! does not say (the delegator's token, the one renewed or released, a
//! revocation's candidates), with the broker's rules narrowing the
//! candidates and every guess marked — see the module docs of `observe`.

use super::*;

impl Observed {
    pub(super) fn delegated(
        &mut self,
        k: usize,
        e: &AuditRef<'_>,
        from: &str,
        to: &str,
        scope: &[&str],
        depth: i64,
    ) {
        let f = self.agent(from);
        let t = self.agent(to);
        let depth = usize::try_from(depth).unwrap_or(0).max(1);
        let ms = self.ms(k);
        let mut impossible = None;
        // No v2.0.0 broker issues a chain longer than MAX_DEPTH: such a node
        // is shown flagged, as a root, so no walk over chains goes deeper.
        if depth > crate::rules::limits::MAX_DEPTH {
            impossible = Some(format!(
                "depth {depth} is over the broker's limit of {}: no AgentWrit broker issues it",
                crate::rules::limits::MAX_DEPTH
            ));
        }
        let (parent, mut inferred) = if impossible.is_some() {
            (None, Vec::new())
        } else {
            let (p, why) =
                self.delegator_token(f, depth - 1, e, ms, |n| reread(scope, &n.scope).is_some());
            let p = match p {
                Some(p) => p,
                None => {
                    let p = self.unseen(f, depth - 1, k, e);
                    // An admin or app token (or an agent whose registration
                    // is not in the trail): its scope is not known, but it
                    // held at least what it passed on.
                    if self.nodes[p].scope.is_empty() {
                        self.nodes[p].scope = scope.iter().map(|s| s.to_string()).collect();
                    }
                    p
                }
            };
            (Some(p), why)
        };
        // The scope as the broker held it: a list that its parent covers
        // only when some items are read together (a scope whose identifier
        // holds spaces, printed by Go's %v as several) is read that way; one
        // no reading makes covered is flagged, and not shown as held.
        let (held, reread_note) = match parent {
            Some(p) => match reread(scope, &self.nodes[p].scope) {
                Some(r) if r.len() == scope.len() => (r, None),
                Some(r) => {
                    let note = format!(
                        "scope re-read as {} item(s): the trail's list [{}] is covered by its parent only so (Go's %v prints a scope with spaces as several)",
                        r.len(),
                        scope.join(" ")
                    );
                    (r, Some(note))
                }
                None => {
                    let parent_scope = self.nodes[p].scope.clone();
                    let (ok, not): (Vec<&str>, Vec<&str>) = scope
                        .iter()
                        .partition(|s| scope::is_subset(&[**s], &parent_scope));
                    impossible.get_or_insert(format!(
                        "its parent does not cover [{}]: the broker only issues covered scopes; not shown as held",
                        not.join(" ")
                    ));
                    (ok.iter().map(|s| s.to_string()).collect(), None)
                }
            },
            None => (scope.iter().map(|s| s.to_string()).collect(), None),
        };
        if let Some(p) = parent
            && inferred.is_empty()
        {
            self.used(p, k);
            self.narrow_renewal(p, k, |c| reread(scope, &c.scope).is_some());
        }
        inferred.extend(reread_note);
        let root = match parent {
            _ if depth == 1 => Some(f),
            Some(p) => self.nodes[p].root,
            None => None,
        };
        if root.is_none() {
            inferred.push("chain root unknown".into());
        }
        let node = self.blank(NodeKind::Delegation, t, k, e);
        self.add(Node {
            from: Some(f),
            parent,
            scope: held,
            depth,
            root,
            chain_hash: (!e.deleg_chain_hash.is_empty()).then(|| e.deleg_chain_hash.to_string()),
            inferred,
            impossible,
            ..node
        });
    }

    /// Token `id` — a renewal whose predecessor the trail does not name — was
    /// the Bearer of event `k`, which tells about its scope (`fits`): only
    /// candidates that fit can be what it renewed. One left: settled (it is
    /// the predecessor, renewed away then); several: the renewal takes the
    /// newest of them.
    fn narrow_renewal(&mut self, id: NodeId, k: usize, fits: impl Fn(&Node) -> bool) {
        let Some(d) = self.nodes[id].renews_doubt else {
            return;
        };
        let before = self.doubts[d].members.clone();
        let left: Vec<NodeId> = before
            .iter()
            .copied()
            .filter(|&c| fits(&self.nodes[c]))
            .collect();
        if left.is_empty() || left.len() == before.len() {
            return;
        }
        for &gone in before.iter().filter(|c| !left.contains(c)) {
            self.nodes[gone].doubts.retain(|&x| x != d);
        }
        self.doubts[d].members = left.clone();
        let renewal_event = self.doubts[d].event;
        let o = self.nodes[left[0]].clone();
        let n = &mut self.nodes[id];
        (n.from, n.scope, n.depth, n.root, n.ttl, n.chain_hash) =
            (o.from, o.scope, o.depth, o.root, o.ttl, o.chain_hash);
        if n.parent != o.parent {
            // The tree follows: the renewal hangs where its predecessor does.
            if let Some(old) = n.parent {
                self.nodes[old].children.retain(|&c| c != id);
            }
            if let Some(new) = o.parent {
                self.nodes[new].children.push(id);
            }
            self.nodes[id].parent = o.parent;
        }
        let n = &mut self.nodes[id];
        n.inferred
            .retain(|w| !w.starts_with("which token was renewed"));
        if let [one] = left.as_slice() {
            let one = *one;
            n.renews = Some(one);
            n.renews_doubt = None;
            self.nodes[one].doubts.retain(|&x| x != d);
            let guess = !self.from_genesis;
            self.end(one, renewal_event, EndHow::Renewed { by: id }, guess);
        } else {
            let names: Vec<String> = left.iter().map(|c| format!("n{c}")).collect();
            n.inferred.push(format!(
                "which token was renewed is not in the trail: one of {} (narrowed by what it was used for at {})",
                names.join(", "),
                self.events[k].id
            ));
        }
    }

    /// Records that token `id` was the Bearer of event `k` (so it was alive).
    fn used(&mut self, id: NodeId, k: usize) {
        let uses = &mut self.nodes[id].uses;
        if uses.last() == Some(&k) {
            return;
        }
        if uses.len() == USES_KEPT {
            uses.pop();
        }
        uses.push(k);
    }

    /// The token the delegator used: held by it at `depth`, carrying the
    /// event's task and orch (a delegated token inherits the delegator's),
    /// usable then, and passing `fits` (its scope covers what was passed on,
    /// or equals what the broker says it allowed). The only such token is
    /// taken; among several the newest is picked and marked inferred. The
    /// cheap checks run first; `fits` (K² in the scope's size) on at most
    /// [`SCOPE_CHECKS`] tokens, so per-event work stays bounded.
    fn delegator_token(
        &self,
        agent: AgentIx,
        depth: usize,
        e: &AuditRef<'_>,
        ms: i64,
        fits: impl Fn(&Node) -> bool,
    ) -> (Option<NodeId>, Vec<String>) {
        let (live, stale, capped) = self.find_held(
            agent,
            ms,
            |n| n.depth == depth && n.task == e.task_id && n.orch == e.orch_id,
            fits,
        );
        let partial = if self.from_genesis {
            None
        } else {
            Some("the trail does not start at the broker's first event: a token from before it may be the one used".to_string())
        };
        match (live.as_slice(), stale) {
            ([one], _) if !capped => (Some(*one), partial.into_iter().collect()),
            ([], None) => {
                let any = self.held(agent, |n| n.depth == depth && n.impossible.is_none());
                match any.first() {
                    Some(&n) => (
                        Some(n),
                        vec![format!(
                            "parent inferred: no token of the delegator at depth {depth} fits the event; took the newest of {}",
                            any.len()
                        )],
                    ),
                    None => (None, Vec::new()),
                }
            }
            ([], Some(n)) => (
                Some(n),
                vec![
                    "parent inferred: none of the fitting tokens was usable by the trail's account; took the newest"
                        .to_string(),
                ],
            ),
            (many, _) => (
                Some(many[0]),
                vec![format!(
                    "parent inferred: {}{} tokens of the delegator fit; took the newest",
                    if capped { "at least " } else { "" },
                    many.len()
                )],
            ),
        }
    }

    /// A token the trail never showed being issued (the trail starts later,
    /// or a page is missing): a placeholder so the chain still hangs together.
    fn unseen(&mut self, agent: AgentIx, depth: usize, k: usize, e: &AuditRef<'_>) -> NodeId {
        let kind = if depth == 0 {
            NodeKind::Registration
        } else {
            NodeKind::Delegation
        };
        let node = self.blank(kind, agent, k, e);
        self.add(Node {
            depth,
            scope: self.agents[agent].scope.clone(),
            inferred: vec!["not in the trail: a token the delegator must have held".into()],
            ..node
        })
    }

    /// The agent's tokens (newest first, among its newest [`HELD_SCAN`])
    /// that pass `cheap` and then `fits` — `fits` on at most
    /// [`SCOPE_CHECKS`] of them: the usable ones, the newest unusable one,
    /// and whether the search stopped at the cap.
    fn find_held(
        &self,
        agent: AgentIx,
        ms: i64,
        cheap: impl Fn(&Node) -> bool,
        fits: impl Fn(&Node) -> bool,
    ) -> (Vec<NodeId>, Option<NodeId>, bool) {
        let mut live = Vec::new();
        let mut checked = 0;
        let mut stale = None;
        let mut capped = false;
        for &n in self.agents[agent].nodes.iter().rev().take(HELD_SCAN) {
            let node = &self.nodes[n];
            if !cheap(node) || node.impossible.is_some() {
                continue;
            }
            if checked == SCOPE_CHECKS {
                capped = true;
                break;
            }
            checked += 1;
            if !fits(node) {
                continue;
            }
            if self.usable(n, ms) {
                live.push(n);
            } else {
                stale.get_or_insert(n);
            }
        }
        (live, stale, capped)
    }

    /// Opens a doubt over `members` (at most [`MAX_DOUBTS`]; over that none
    /// is marked and `None` comes back).
    fn doubt(&mut self, k: usize, kind: DoubtKind, members: Vec<NodeId>) -> Option<usize> {
        if members.is_empty() || members.len() > MAX_DOUBTS {
            return None;
        }
        let d = self.doubts.len();
        for &m in &members {
            let n = &mut self.nodes[m];
            if n.doubts.len() < DOUBTS_KEPT {
                n.doubts.push(d);
            } else {
                n.doubts_dropped += 1;
            }
        }
        self.doubts.push(Doubt {
            event: k,
            kind,
            members,
        });
        Some(d)
    }

    pub(super) fn renewed(
        &mut self,
        k: usize,
        e: &AuditRef<'_>,
        agent: &str,
        new_jti: Option<&str>,
    ) {
        let a = self.agent(agent);
        let ms = self.ms(k);
        let cands = self.held(a, |n| {
            n.task == e.task_id && n.orch == e.orch_id && n.impossible.is_none()
        });
        let cands: Vec<NodeId> = cands.into_iter().filter(|&n| self.usable(n, ms)).collect();
        let mut inferred = Vec::new();
        let partial = !self.from_genesis;
        let base = self.blank(NodeKind::Renewal, a, k, e);
        // What every candidate agrees on is a fact whichever was renewed.
        let agreed = cands.first().map(|&f| {
            let f = &self.nodes[f];
            cands.iter().all(|&c| {
                let c = &self.nodes[c];
                (
                    c.from,
                    c.parent,
                    &c.scope,
                    c.depth,
                    c.root,
                    c.ttl,
                    &c.chain_hash,
                ) == (
                    f.from,
                    f.parent,
                    &f.scope,
                    f.depth,
                    f.root,
                    f.ttl,
                    &f.chain_hash,
                )
            })
        });
        let node = match cands.first().map(|&o| &self.nodes[o]) {
            Some(o) => Node {
                from: o.from,
                parent: o.parent,
                renews: (cands.len() == 1).then_some(cands[0]),
                scope: o.scope.clone(),
                depth: o.depth,
                root: o.root,
                ttl: o.ttl,
                chain_hash: o.chain_hash.clone(),
                ..base
            },
            None => Node {
                scope: self.agents[a].scope.clone(),
                ..base
            },
        };
        match cands.len() {
            0 => inferred.push("renewed token not in the trail".into()),
            1 if partial => inferred.push(
                "the trail does not start at the broker's first event: a token from before it may be the one renewed".into(),
            ),
            1 => {}
            _ if agreed == Some(true) => {}
            n => inferred.push(format!(
                "which token was renewed is not in the trail (it names only the new jti): one of {n}; scope, depth and chain as of the newest, n{}",
                cands[0]
            )),
        }
        let id = self.add(Node {
            jti: new_jti.map(str::to_string),
            inferred,
            ..node
        });
        match cands.as_slice() {
            [one] if !partial => {
                self.used(*one, k);
                self.end(*one, k, EndHow::Renewed { by: id }, false);
            }
            [] => {}
            _ => {
                let d = self.doubt(k, DoubtKind::Renewed { by: id }, cands.clone());
                self.nodes[id].renews_doubt = d;
                if d.is_none() {
                    self.nodes[id].inferred.push(format!(
                        "renews one of {} tokens (too many to mark)",
                        cands.len()
                    ));
                }
            }
        }
    }

    pub(super) fn released(&mut self, k: usize, e: &AuditRef<'_>, agent: &str, jti: Option<&str>) {
        if let Some(&id) = jti.and_then(|j| self.by_jti.get(j)) {
            self.used(id, k);
            self.end(id, k, EndHow::Released, false);
            return;
        }
        let a = self.agent(agent);
        let ms = self.ms(k);
        let cands = self.held(a, |n| n.jti.is_none() && n.task == e.task_id);
        let cands: Vec<NodeId> = cands.into_iter().filter(|&n| self.usable(n, ms)).collect();
        match cands.as_slice() {
            // From the broker's first event every token is in the trail: the
            // only one it can be is it. Otherwise a guess.
            [one] => {
                let one = *one;
                let guess = !self.from_genesis;
                if !guess {
                    self.used(one, k);
                }
                self.end(one, k, EndHow::Released, guess);
                self.learn_jti(one, jti);
            }
            [] => self
                .notes
                .push((k, "released a token the trail never showed".to_string())),
            many => {
                let n = many.len();
                if self.doubt(k, DoubtKind::Released, many.to_vec()).is_none() {
                    self.notes.push((
                        k,
                        format!("released one of {n} tokens of the agent (too many to mark)"),
                    ));
                }
            }
        }
    }

    fn learn_jti(&mut self, id: NodeId, jti: Option<&str>) {
        if let Some(j) = jti {
            self.nodes[id].jti = Some(j.to_string());
            self.nodes[id]
                .inferred
                .push("jti learnt from a later event that named only the jti".into());
            self.by_jti.insert(j.to_string(), id);
        }
    }

    pub(super) fn revoked(&mut self, k: usize, level: RevokeLevel, target: &str) {
        self.entries[level as usize].insert(target.to_string(), k);
        let how = EndHow::Revoked {
            level,
            target: target.to_string(),
        };
        let hit: Vec<NodeId> = match level {
            RevokeLevel::Token => {
                if let Some(&id) = self.by_jti.get(target) {
                    vec![id]
                } else {
                    self.unknown_jti_revoked(k, target);
                    return;
                }
            }
            RevokeLevel::Agent => self
                .agent_named(target)
                .map(|a| self.agents[a].nodes.clone())
                .unwrap_or_default(),
            RevokeLevel::Task => self.by_task.get(target).cloned().unwrap_or_default(),
            RevokeLevel::Chain => self
                .agent_named(target)
                .map(|a| self.agents[a].rooted.clone())
                .unwrap_or_default(),
        };
        for id in hit {
            self.end(id, k, how.clone(), false);
        }
    }

    /// A token-level revocation of a jti the trail never named: perhaps one
    /// of the tokens whose jti is unknown (or a token before the trail, or
    /// none at all: the broker accepts any target). Each candidate is marked
    /// as perhaps revoked; a later use as Bearer clears it.
    fn unknown_jti_revoked(&mut self, k: usize, target: &str) {
        let ms = self.ms(k);
        // Oldest first: those past AA_MAX_TTL are dead whatever happened.
        while let Some(&n) = self.open_unknown.front() {
            if ms - self.nodes[n].ms > MAX_TTL * 1000 {
                self.open_unknown.pop_front();
            } else {
                break;
            }
        }
        let n = self.open_unknown.len();
        let cands: Vec<NodeId> = if n <= MAX_DOUBTS {
            self.open_unknown
                .iter()
                .copied()
                .filter(|&c| self.nodes[c].end.is_none())
                .collect()
        } else {
            Vec::new()
        };
        match cands.len() {
            0 if n == 0 => self.notes.push((
                k,
                format!("revoked jti {target}, a token the trail never showed"),
            )),
            0 => self.notes.push((k, format!("revoked jti {target}, one of up to {n} tokens whose jti the trail does not carry (none marked)"))),
            c => {
                self.notes.push((
                    k,
                    format!(
                        "revoked jti {target}: perhaps one of {c} tokens whose jti the trail does not carry"
                    ),
                ));
                self.doubt(k, DoubtKind::RevokedJti(target.to_string()), cands);
            }
        }
    }

    pub(super) fn denied(&mut self, k: usize, e: &AuditRef<'_>, d: Denied<'_>) {
        let ms = self.ms(k);
        let by = d.by.and_then(|b| self.agent_named(b));
        let (node, inferred) = match (e.event_type, by) {
            ("delegation_attenuation_violation", Some(a)) => {
                let depth = usize::try_from(e.deleg_depth).unwrap_or(0);
                let (n, why) =
                    self.delegator_token(a, depth, e, ms, |n| same_words(&n.scope, &d.allowed));
                (n, !why.is_empty())
            }
            ("scope_violation", Some(a)) => {
                // The Bearer's scope is `actual=`: depth is not in the event.
                let (live, stale, capped) = self.find_held(
                    a,
                    ms,
                    |n| n.task == e.task_id && n.orch == e.orch_id,
                    |n| same_words(&n.scope, &d.allowed),
                );
                match (live.as_slice(), stale) {
                    ([one], _) => (Some(*one), capped || !self.from_genesis),
                    ([first, ..], _) => (Some(*first), true),
                    ([], Some(n)) => (Some(n), true),
                    _ => (None, false),
                }
            }
            _ => (None, false),
        };
        if let Some(n) = node
            && !inferred
        {
            // The broker checked its Bearer before refusing: alive then, and
            // holding exactly `allowed`.
            self.used(n, k);
            self.narrow_renewal(n, k, |c| same_words(&c.scope, &d.allowed));
        }
        let i = self.denials.len();
        if let Some(n) = node {
            self.nodes[n].denials.push(i);
        }
        let own = |s: Option<&str>| s.map(str::to_string);
        self.denials.push(Denial {
            event: k,
            event_type: e.event_type.to_string(),
            by: own(d.by),
            target: own(d.target),
            requested: d.requested.iter().map(|s| s.to_string()).collect(),
            allowed: d.allowed.iter().map(|s| s.to_string()).collect(),
            path: own(d.path),
            reason: own(d.reason),
            detail: e.detail.to_string(),
            task: e.task_id.to_string(),
            orch: e.orch_id.to_string(),
            node,
            node_inferred: inferred,
        });
    }
}

/// Whether two scope lists hold the same words (Go's `%v` prints a scope
/// with spaces as several, so lists are compared word by word).
fn same_words<A: AsRef<str>, B: AsRef<str>>(a: &[A], b: &[B]) -> bool {
    let mut x: Vec<&str> = a
        .iter()
        .flat_map(|s| s.as_ref().split_whitespace())
        .collect();
    let mut y: Vec<&str> = b
        .iter()
        .flat_map(|s| s.as_ref().split_whitespace())
        .collect();
    if x.len() != y.len() {
        return false;
    }
    x.sort_unstable();
    y.sort_unstable();
    x == y
}

/// The one reading of a Go `%v` list (`items`, split at spaces) that
/// `parent` covers: the items as they are, or — when a scope's identifier
/// held spaces — consecutive items joined back with a space. `None` when no
/// reading is covered (or the list is too long to re-read).
pub fn reread(items: &[&str], parent: &[String]) -> Option<Vec<String>> {
    if scope::is_subset(items, parent) {
        return Some(items.iter().map(|s| s.to_string()).collect());
    }
    let n = items.len();
    if n > REREAD_MAX {
        return None;
    }
    // ok[i] = a covered reading of items[i..], the fewest joins first.
    let mut ok: Vec<Option<Vec<String>>> = vec![None; n + 1];
    ok[n] = Some(Vec::new());
    for i in (0..n).rev() {
        for j in (i + 1)..=n {
            let Some(rest) = &ok[j] else { continue };
            let joined = items[i..j].join(" ");
            if scope::is_subset(&[joined.as_str()], parent) {
                let mut v = vec![joined];
                v.extend(rest.iter().cloned());
                ok[i] = Some(v);
                break;
            }
        }
    }
    ok[0].take()
}
