//! The fold and the statuses over trails built event by event.
use super::*;
use crate::broker::types::AuditEvent;

/// A trail built event by event, with a valid hash chain.
#[derive(Default)]
struct Trail {
    events: Vec<AuditEvent>,
    /// Seconds after 2026-12-01T00:00:00Z of the next event.
    t: i64,
}

impl Trail {
    fn push(&mut self, ty: &str, agent: &str, task: &str, detail: &str, depth: i64) {
        let n = self.events.len() + 1;
        let ts = chrono::DateTime::from_timestamp(1_764_547_200 + self.t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut e = AuditEvent {
            id: format!("evt-{n:06}"),
            timestamp: ts,
            event_type: ty.into(),
            agent_id: agent.into(),
            task_id: task.into(),
            orch_id: if task.is_empty() {
                String::new()
            } else {
                "o".into()
            },
            detail: detail.into(),
            outcome: "success".into(),
            deleg_depth: depth,
            prev_hash: self
                .events
                .last()
                .map(|p| p.hash.clone())
                .unwrap_or_else(|| "0".repeat(64)),
            ..AuditEvent::default()
        };
        if ty == "delegation_created" {
            e.deleg_chain_hash = format!("{n:064x}");
        }
        e.hash = e.compute_hash();
        self.events.push(e);
    }
    fn register(&mut self, agent: &str, task: &str, scope: &str, jti: &str) {
        self.push(
            "agent_registered",
            agent,
            task,
            &format!("Agent registered with scope [{scope}]"),
            0,
        );
        self.push(
            "token_issued",
            agent,
            task,
            &format!("Token issued, jti={jti}, ttl=300"),
            0,
        );
    }
    fn delegate(&mut self, from: &str, to: &str, task: &str, scope: &str, depth: i64) {
        self.push(
            "delegation_created",
            to,
            task,
            &format!("delegation from {from} to {to} scope=[{scope}] depth={depth}"),
            depth,
        );
    }
    fn observed(&self) -> Observed {
        let mut o = Observed::new();
        for e in &self.events {
            o.fold(&e.as_ref(), None);
        }
        o
    }
}

fn spiffe(task: &str, inst: &str) -> String {
    format!("spiffe://agentwrit.local/agent/o/{task}/{inst}")
}

#[test]
fn a_chain_deeper_than_the_broker_allows_is_flagged_and_printed_without_recursion() {
    let mut t = Trail::default();
    let names: Vec<String> = (0..20_001)
        .map(|i| spiffe("t", &format!("{i:016x}")))
        .collect();
    t.register(&names[0], "t", "read:x:*", "j0");
    for d in 1..=20_000 {
        t.delegate(&names[d - 1], &names[d], "t", "read:x:*", d as i64);
    }
    let o = t.observed();
    let head = o.head().unwrap();
    let impossible = o.nodes.iter().filter(|n| n.impossible.is_some()).count();
    assert_eq!(impossible, 20_000 - 5, "every hop past depth 5 is flagged");
    // No chain is longer than the broker's limit.
    assert!(
        o.nodes
            .iter()
            .enumerate()
            .all(|(i, _)| o.chain(i).len() <= 6)
    );
    let mut out = Vec::new();
    crate::observe::print::text::write(&o, head, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("IMPOSSIBLE: depth 6 is over the broker's limit of 5"));
}

#[test]
fn a_scope_with_spaces_is_never_shown_as_privileges_its_parent_does_not_hold() {
    let mut t = Trail::default();
    let (a, b) = (spiffe("t", "aaaaaaaa"), spiffe("t", "bbbbbbbb"));
    t.register(&a, "t", "read:x:*", "ja");
    t.register(&b, "t", "read:y:*", "jb");
    // One scope to the broker (its identifier holds spaces), three in Go's %v.
    t.delegate(&a, &b, "t", "read:x:a write:x:* admin:revoke:*", 1);
    // And one no reading of which its parent (read:x:b) covers.
    let c = spiffe("t", "cccccccc");
    t.register(&c, "t", "read:x:b", "jc");
    t.delegate(&c, &b, "t", "read:x:b admin:revoke:*", 1);
    let o = t.observed();
    let d1 = &o.nodes[2];
    assert_eq!(d1.scope, ["read:x:a write:x:* admin:revoke:*"]);
    assert!(d1.impossible.is_none());
    assert!(
        d1.inferred.iter().any(|w| w.contains("re-read")),
        "{:?}",
        d1.inferred
    );
    let d2 = &o.nodes[4];
    assert_eq!(d2.scope, ["read:x:b"], "the uncovered scope is not held");
    assert!(d2.impossible.as_deref().unwrap().contains("admin:revoke:*"));
    for n in [d1, d2] {
        assert!(!scope::is_subset(&["admin:revoke:*"], &n.scope));
    }
}

#[test]
fn unknown_is_never_dead_and_a_use_as_bearer_settles_it() {
    let mut t = Trail::default();
    let (a, b, c) = (spiffe("t", "a"), spiffe("t", "b"), spiffe("t", "c"));
    t.register(&a, "t", "read:x:*", "ja");
    t.register(&b, "t", "read:x:*", "jb");
    t.register(&c, "t", "read:x:*", "jc");
    t.delegate(&a, &b, "t", "read:x:*", 1);
    t.t += 61;
    t.push("admin_auth", "", "", "admin authenticated as admin", 0);
    let o = t.observed();
    let ab = 3;
    let j = o.status(ab, o.head().unwrap());
    assert_eq!(
        (j.status, j.liveness),
        (Status::Unknown, Liveness::Maybe),
        "{j:?}"
    );
    // It is the Bearer of a delegation 61 s on: valid then, stated.
    t.delegate(&b, &c, "t", "read:x:y", 2);
    let o = t.observed();
    let j = o.status(ab, o.head().unwrap());
    assert_eq!(
        (j.status, j.inferred, j.liveness),
        (Status::Live, false, Liveness::Live),
        "{j:?}"
    );
}

#[test]
fn as_many_releases_as_candidates_release_every_candidate() {
    let mut t = Trail::default();
    let (a, b) = (spiffe("t", "a"), spiffe("t", "b"));
    t.register(&a, "t", "read:x:*", "ja");
    t.register(&b, "t", "read:x:*", "jb");
    t.delegate(&a, &b, "t", "read:x:y", 1);
    t.delegate(&a, &b, "t", "read:x:z", 1);
    let (ab1, ab2) = (2, 3);
    // Two releases by b of tokens whose jti the trail never carried.
    t.push("token_released", &b, "t", "token released | jti=k1", 0);
    let o = t.observed();
    let head = o.head().unwrap();
    for n in [ab1, ab2] {
        let j = o.status(n, head);
        assert_eq!(j.liveness, Liveness::Maybe, "one of two: {j:?}");
    }
    t.push("token_released", &b, "t", "token released | jti=k2", 0);
    let o = t.observed();
    let head = o.head().unwrap();
    for n in [ab1, ab2] {
        let j = o.status(n, head);
        assert_eq!(
            (j.status, j.inferred, j.liveness),
            (Status::Released, false, Liveness::Dead),
            "two of two: {j:?}"
        );
        // As of the first release, still only perhaps.
        assert_eq!(o.status(n, head - 1).liveness, Liveness::Maybe);
    }
    // An agent whose registration is not in the trail may have released a
    // token from before it: no counting then.
    let mut t = Trail::default();
    let c = spiffe("t", "c");
    t.register(&a, "t", "read:x:*", "ja");
    t.delegate(&a, &c, "t", "read:x:y", 1);
    t.delegate(&a, &c, "t", "read:x:z", 1);
    t.push("token_released", &c, "t", "token released | jti=k1", 0);
    t.push("token_released", &c, "t", "token released | jti=k2", 0);
    let o = t.observed();
    for (i, n) in o.nodes.iter().enumerate().filter(|(_, n)| n.depth == 1) {
        let j = o.status(i, o.head().unwrap());
        assert_eq!(j.liveness, Liveness::Maybe, "{:?} {j:?}", n.scope);
    }
}

#[test]
fn at_the_head_of_a_live_trail_statuses_are_judged_now() {
    let mut t = Trail::default();
    let a = spiffe("t", "a");
    t.register(&a, "t", "read:x:*", "ja");
    let mut o = t.observed();
    let head = o.head().unwrap();
    assert_eq!(o.status(0, head).status, Status::Live);
    // Ten minutes after the last event (ttl 300): expired, though no event came.
    o.now_ms = Some(o.events[head].ms + 600_000);
    assert!(o.judged_now(head));
    assert_eq!(o.status(0, head).status, Status::Expired);
    // Stepped back: as of the event shown.
    t.push("admin_auth", "", "", "admin authenticated as admin", 0);
    let mut o = t.observed();
    o.now_ms = Some(o.events[0].ms + 600_000);
    let head = o.head().unwrap();
    assert_eq!(o.status(0, head).status, Status::Expired, "the head, now");
    assert_eq!(
        o.status(0, 1).status,
        Status::Live,
        "stepped back: as of evt-2"
    );
}

#[test]
fn an_agent_with_thousands_of_tokens_costs_bounded_work_per_event() {
    let mut t = Trail::default();
    let scopes: Vec<String> = (0..50).map(|i| format!("read:r{i}:*")).collect();
    let all = scopes.join(" ");
    let a = spiffe("t", "a");
    t.push(
        "agent_registered",
        &a,
        "t",
        &format!("Agent registered with scope [{all}]"),
        0,
    );
    for i in 0..4096 {
        t.push(
            "token_issued",
            &a,
            "t",
            &format!("Token issued, jti=j{i}, ttl=300"),
            0,
        );
    }
    for i in 0..100 {
        let to = spiffe("u", &format!("{i:08}"));
        t.delegate(&a, &to, "t", &all, 1);
    }
    let o = t.observed();
    // Each delegation hangs under one of a's tokens, marked as a pick.
    let d = o.nodes.last().unwrap();
    assert!(d.parent.is_some());
    assert!(
        d.inferred.iter().any(|w| w.contains("at least")),
        "{:?}",
        d.inferred
    );
}

/// §7.1 in one place: what observe's indexed lookups end is exactly
/// what `rules::covers` says, whatever the order of entries and tokens.
#[test]
fn observes_indexed_revocations_agree_with_covers() {
    use crate::rules::covers;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % m
    };
    for _ in 0..40 {
        let mut t = Trail::default();
        let agents: Vec<String> = (0..4)
            .map(|i| spiffe(&format!("t{i}"), &format!("{i}")))
            .collect();
        for (i, a) in agents.iter().enumerate() {
            t.register(a, &format!("t{i}"), "read:x:*", &format!("j{i}"));
        }
        let mut entries = Vec::new();
        for _ in 0..12 {
            match next(3) {
                0 => {
                    let (f, to) = (next(4) as usize, next(4) as usize);
                    let task = format!("t{f}");
                    t.delegate(&agents[f], &agents[to], &task, "read:x:*", 1);
                }
                _ => {
                    let level = RevokeLevel::ALL[next(4) as usize];
                    let target = match level {
                        RevokeLevel::Token => format!("j{}", next(4)),
                        RevokeLevel::Task => format!("t{}", next(4)),
                        _ => agents[next(4) as usize].clone(),
                    };
                    t.push(
                        "token_revoked",
                        &target,
                        "",
                        &format!("revoked at level={level} target={target}"),
                        0,
                    );
                    entries.push((level, target));
                }
            }
        }
        let o = t.observed();
        let head = o.head().unwrap();
        for (i, n) in o.nodes.iter().enumerate() {
            let s = o.subject(n);
            let want = entries.iter().any(|(l, tg)| covers(*l, tg, &s));
            for (l, tg) in &entries {
                assert_eq!(
                    o.covered(*l, tg).contains(&i),
                    covers(*l, tg, &s),
                    "covered({l}, {tg}) for n{i}"
                );
            }
            let got = matches!(
                n.end,
                Some(End {
                    how: EndHow::Revoked { .. },
                    ..
                })
            );
            assert_eq!(got, want, "n{i} {s:?} entries {entries:?}");
            if want {
                assert_eq!(o.status(i, head).status, Status::Revoked);
            }
        }
    }
}
