//! Statuses as of an event: what ended a token (stated, or by
//! elimination), what may have, and the queries the views and the judgment
//! commands ask of the reconstruction (chains, roots, what an entry covers).

use super::*;

/// How an ending was settled by elimination, in words.
const USED_LATER: &str = ": the other candidates were used as Bearer later";
const COUNTED: &str = " or before: as many of the agent's tokens were released as could have been, one each, so each of them was";

impl Observed {
    /// Whether the node had been issued by event `at` (and a filter, if
    /// any, keeps it: see [`select`]).
    pub fn exists(&self, id: NodeId, at: usize) -> bool {
        self.nodes[id].event <= at && self.node_shown(id)
    }

    /// When statuses are judged as of event `at`: at that event's time, or —
    /// at the head of a live trail — now (see [`Observed::now_ms`]).
    pub fn judged_ms(&self, at: usize) -> i64 {
        let ms = self.events.get(at).map(|s| s.ms).unwrap_or(0);
        match self.now_ms {
            Some(now) if Some(at) == self.head() => now.max(ms),
            _ => ms,
        }
    }

    /// Whether statuses as of `at` are judged at the wall clock.
    pub fn judged_now(&self, at: usize) -> bool {
        self.now_ms.is_some() && Some(at) == self.head()
    }

    /// Whether token `id` was the Bearer of an accepted request after event
    /// `after`, up to event `at` (so whatever `after` did, it did not end it).
    fn used_between(&self, id: NodeId, after: usize, at: usize) -> bool {
        self.nodes[id].uses.iter().any(|&u| u > after && u <= at)
    }

    /// The doubts still open on token `id` as of `at` (not cleared by a
    /// later use): what may have ended it, with the other candidates.
    pub fn open_doubts(&self, id: NodeId, at: usize) -> impl Iterator<Item = usize> + '_ {
        self.nodes[id].doubts.iter().copied().filter(move |&d| {
            let g = &self.doubts[d];
            g.event <= at && !self.used_between(id, g.event, at)
        })
    }

    /// The tokens an entry `(level, target)` covers (spec §7.1), from the
    /// indexes — never a scan of every token. Agrees with `rules::covers`
    /// (tested).
    pub fn covered(&self, level: RevokeLevel, target: &str) -> Vec<NodeId> {
        let agent = || self.agent_named(target).map(|a| &self.agents[a]);
        let mut v: Vec<NodeId> = match level {
            RevokeLevel::Token => self.by_jti.get(target).copied().into_iter().collect(),
            RevokeLevel::Agent => agent().map(|a| a.nodes.clone()).unwrap_or_default(),
            RevokeLevel::Task => self.by_task.get(target).cloned().unwrap_or_default(),
            RevokeLevel::Chain => agent().map(|a| a.rooted.clone()).unwrap_or_default(),
        };
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every revocation entry the trail shows: (its latest event, level,
    /// target), in order of event.
    pub fn revocations(&self) -> impl Iterator<Item = (usize, RevokeLevel, &str)> + '_ {
        let mut v: Vec<(usize, RevokeLevel, &str)> = RevokeLevel::ALL
            .into_iter()
            .flat_map(|l| {
                self.entries[l as usize]
                    .iter()
                    .map(move |(t, &k)| (k, l, t.as_str()))
            })
            .collect();
        v.sort_unstable();
        v.into_iter()
    }

    /// The renewals that replaced token `id` (or may have: an unattributed
    /// renewal it is a candidate of).
    pub fn renewals_of(&self, id: NodeId) -> Vec<NodeId> {
        let n = &self.nodes[id];
        let named = match n.end.as_ref().map(|e| &e.how) {
            Some(EndHow::Renewed { by }) => Some(*by),
            _ => None,
        };
        let doubted = n.doubts.iter().filter_map(|&d| match self.doubts[d].kind {
            DoubtKind::Renewed { by } => Some(by),
            _ => None,
        });
        named.into_iter().chain(doubted).collect()
    }

    /// The doubt's candidates not cleared by a later use, as of `at`.
    pub fn doubt_left(&self, d: usize, at: usize) -> Vec<NodeId> {
        let g = &self.doubts[d];
        g.members
            .iter()
            .copied()
            .filter(|&m| !self.used_between(m, g.event, at))
            .collect()
    }

    /// The token a renewal replaced, as of `at`: the one the trail names, or
    /// the only candidate left when the others were used later.
    pub fn renews_at(&self, id: NodeId, at: usize) -> Option<NodeId> {
        let n = &self.nodes[id];
        n.renews.or_else(|| {
            let d = n.renews_doubt?;
            match self.doubt_left(d, at).as_slice() {
                [one] => Some(*one),
                _ => None,
            }
        })
    }

    /// The ending the trail gives a node as of `at`: its own, or — when all
    /// other candidates of a doubt were used later — that doubt's, by
    /// elimination (the earlier of the two).
    fn ending(&self, id: NodeId, at: usize) -> Option<(usize, EndHow, bool, Option<&'static str>)> {
        let n = &self.nodes[id];
        let own = n
            .end
            .as_ref()
            .filter(|e| e.event <= at)
            .map(|e| (e.event, e.how.clone(), e.inferred, None));
        let settled = n.doubts.iter().copied().find_map(|d| {
            let g = &self.doubts[d];
            if g.event > at || self.used_between(id, g.event, at) {
                return None;
            }
            let left = self.doubt_left(d, at);
            if left != [id] || matches!(g.kind, DoubtKind::RevokedJti(_)) {
                return None;
            }
            let how = match g.kind {
                DoubtKind::Renewed { by } => EndHow::Renewed { by },
                _ => EndHow::Released,
            };
            Some((g.event, how, false, Some(USED_LATER)))
        });
        let counted = self
            .released_by_count(id, at)
            .map(|k| (k, EndHow::Released, false, Some(COUNTED)));
        [own, settled, counted]
            .into_iter()
            .flatten()
            .min_by_key(|e| e.0)
    }

    /// Released by counting: the release events (not cleared by a later
    /// use) whose candidates all lie among this one's candidates, as many
    /// as those candidates. Each released one of them, a token is released
    /// once (each event names its own jti), so every candidate was
    /// released — by the latest of those events. Asked of small groups only.
    fn released_by_count(&self, id: NodeId, at: usize) -> Option<usize> {
        const GROUP: usize = 8;
        // Only when every token of the agent is in the trail (its
        // registration is): a release may be of a token from before it.
        self.agents[self.nodes[id].agent].registered?;
        self.open_doubts(id, at).find_map(|d| {
            if !matches!(self.doubts[d].kind, DoubtKind::Released) {
                return None;
            }
            let left = self.doubt_left(d, at);
            if left.len() > GROUP {
                return None;
            }
            let mut group: Vec<usize> = left
                .iter()
                .flat_map(|&m| self.nodes[m].doubts.iter().copied())
                .filter(|&e| {
                    let h = &self.doubts[e];
                    h.event <= at
                        && matches!(h.kind, DoubtKind::Released)
                        && self.doubt_left(e, at).iter().all(|x| left.contains(x))
                })
                .collect();
            group.sort_unstable();
            group.dedup();
            (group.len() >= left.len())
                .then(|| group.iter().map(|&e| self.doubts[e].event).max())
                .flatten()
        })
    }

    /// A node's status as of event `at`, judged at that event's time (or
    /// now, at the head of a live trail). A status the trail cannot settle
    /// is `inferred` (or `unknown`), never stated as fact.
    pub fn status(&self, id: NodeId, at: usize) -> Judged {
        let n = &self.nodes[id];
        let ms = self.judged_ms(at);
        // Doubts still open as of `at` (not cleared by a later use).
        let open: Vec<&Doubt> = self.open_doubts(id, at).map(|d| &self.doubts[d]).collect();
        let guessed = !n.inferred.is_empty() || n.impossible.is_some();
        if let Some((event, how, end_inferred, by_elimination)) = self.ending(id, at) {
            let by = &self.events[event].id;
            let (status, mut why) = match &how {
                EndHow::Revoked { level, target } => {
                    let when = if event == n.event {
                        "born revoked: entry"
                    } else {
                        "revoked"
                    };
                    (
                        Status::Revoked,
                        format!("{when} at level {level} (target {target}) by {by}"),
                    )
                }
                EndHow::Released => (Status::Released, format!("released at {by}")),
                EndHow::Renewed { by: new } => (
                    Status::Renewed,
                    format!(
                        "renewed at {by} (successor issued at {})",
                        self.events[self.nodes[*new].event].id
                    ),
                ),
            };
            if let Some(reason) = by_elimination {
                why.push_str(reason);
            }
            // An earlier doubt of another kind (renewed away before it was
            // revoked, say) leaves the kind of ending a guess — dead either way.
            let same_kind = |k: &DoubtKind| {
                matches!(
                    (k, &how),
                    (DoubtKind::RevokedJti(_), EndHow::Revoked { .. })
                        | (DoubtKind::Released, EndHow::Released)
                        | (DoubtKind::Renewed { .. }, EndHow::Renewed { .. })
                )
            };
            let earlier: Vec<&str> = open
                .iter()
                .filter(|g| g.event < event && !same_kind(&g.kind))
                .map(|g| &*self.events[g.event].id)
                .collect();
            let chain_guess = guessed
                && matches!(
                    how,
                    EndHow::Revoked {
                        level: RevokeLevel::Chain,
                        ..
                    }
                );
            if !earlier.is_empty() {
                why.push_str(&format!(
                    "; unless it had already ended at {} (the trail cannot tell)",
                    earlier.join(", ")
                ));
            }
            if end_inferred {
                why.push_str("; inferred: the event does not name this token");
            }
            if chain_guess {
                why.push_str("; inferred: its chain root is itself a guess");
            }
            let unsure = end_inferred || chain_guess;
            return Judged {
                status,
                inferred: unsure || !earlier.is_empty(),
                why,
                liveness: if unsure {
                    Liveness::Maybe
                } else {
                    Liveness::Dead
                },
            };
        }
        if !open.is_empty() {
            // At most three in words; the rest counted.
            const SAID: usize = 3;
            let more = open.len().saturating_sub(SAID) + n.doubts_dropped;
            let parts: Vec<String> = open
                .iter()
                .take(SAID)
                .map(|g| {
                    let id_ = &self.events[g.event].id;
                    let of = g.members.len();
                    match &g.kind {
                        DoubtKind::RevokedJti(j) => format!(
                            "perhaps revoked by {id_} (jti {j}, one of {of} tokens the trail carries no jti for)"
                        ),
                        DoubtKind::Released => {
                            format!("perhaps released at {id_} (one of {of} tokens of the agent)")
                        }
                        DoubtKind::Renewed { .. } => format!(
                            "perhaps renewed away at {id_} (the trail names only the new jti; one of {of} tokens of the agent)"
                        ),
                    }
                })
                .collect();
            let more = if more > 0 {
                format!("; and {more} more such events")
            } else {
                String::new()
            };
            return Judged::new(
                Status::Unknown,
                true,
                format!("unknown: {}{more}", parts.join("; ")),
            );
        }
        let age = ms - n.ms;
        let last_use = n
            .uses
            .iter()
            .rev()
            .find(|&&u| u <= at)
            .map(|&u| (u, self.events[u].ms));
        let guess_note = if guessed {
            "; inferred: its place in the chain is itself a guess"
        } else {
            ""
        };
        match n.ttl {
            Some(t) if age > t * 1000 => Judged::new(
                Status::Expired,
                false,
                format!("expired: issued with ttl {t}s"),
            ),
            Some(t) => Judged::new(
                Status::Live,
                guessed,
                format!("valid: ttl {t}s, {}s left{guess_note}", t - age / 1000),
            ),
            // Older than any token lives with the default AA_MAX_TTL: dead,
            // though the ttl itself is not in the trail.
            None if age > MAX_TTL * 1000 => Judged {
                status: Status::Expired,
                inferred: true,
                why: format!(
                    "expired: older than AA_MAX_TTL's default {MAX_TTL}s (its ttl is not in the trail)"
                ),
                liveness: Liveness::Dead,
            },
            None => match last_use {
                Some((u, u_ms)) if ms <= u_ms => Judged::new(
                    Status::Live,
                    guessed,
                    format!(
                        "valid: the Bearer of {} at this time{guess_note}",
                        self.events[u].id
                    ),
                ),
                _ if age <= DEFAULT_DELEGATION_TTL * 1000 => Judged::new(
                    Status::Live,
                    true,
                    format!(
                        "likely valid: younger than the default ttl {DEFAULT_DELEGATION_TTL}s, and the trail does not carry a delegation's ttl"
                    ),
                ),
                Some((u, _)) => Judged::new(
                    Status::Unknown,
                    true,
                    format!(
                        "unknown: its ttl is not in the trail; it was last used as Bearer at {} and is {}s old now",
                        self.events[u].id,
                        age / 1000
                    ),
                ),
                None => Judged::new(
                    Status::Unknown,
                    true,
                    format!(
                        "unknown: its ttl is not in the trail and it is older than the default {DEFAULT_DELEGATION_TTL}s ({}s old)",
                        age / 1000
                    ),
                ),
            },
        }
    }

    /// The chain from the root token down to `id` (each token's parent).
    pub fn chain(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = vec![id];
        let mut cur = id;
        while let Some(p) = self.nodes[cur].parent {
            if out.len() > self.nodes.len() {
                break;
            }
            out.push(p);
            cur = p;
        }
        out.reverse();
        out
    }

    /// Denials up to `at`, grouped by (class, agent), most frequent first.
    pub fn denial_counts(&self, at: usize) -> Vec<(&'static str, String, usize)> {
        let mut counts: HashMap<(&'static str, String), usize> = HashMap::default();
        for (_, d) in self.denials_at(at) {
            let who =
                d.by.clone()
                    .unwrap_or_else(|| d.path.clone().unwrap_or_else(|| "-".into()));
            *counts.entry((d.class(), who)).or_default() += 1;
        }
        let mut v: Vec<_> = counts.into_iter().map(|((c, w), n)| (c, w, n)).collect();
        v.sort_by(|a, b| {
            b.2.cmp(&a.2)
                .then_with(|| a.0.cmp(b.0))
                .then_with(|| a.1.cmp(&b.1))
        });
        v
    }

    /// Roots of the forest as of `at`: tokens with no parent.
    pub fn roots(&self, at: usize) -> impl Iterator<Item = NodeId> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(move |(i, n)| n.parent.is_none() && self.exists(*i, at))
            .map(|(i, _)| i)
    }
}
