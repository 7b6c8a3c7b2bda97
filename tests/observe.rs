//! Observe: the reconstruction against a trail recorded from the real broker
//! v2.0.0 (`tests/fixtures/real-broker-audit/`, a copy of the project's
//! shared fixture), checked against the transcripts of what caused it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use chainview::observe::{NodeKind, Observed, Status, load};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real-broker-audit")
        .join(name)
}

fn observed() -> Observed {
    let mut o = Observed::new();
    load::read_file(&fixture("audit.json"), &mut o, &mut |_, _| {}).unwrap();
    o
}

fn raw_events() -> Vec<Value> {
    let v: Value = serde_json::from_slice(&std::fs::read(fixture("audit.json")).unwrap()).unwrap();
    v["events"].as_array().unwrap().clone()
}

/// The node issued by this event.
fn node_of(o: &Observed, id: &str) -> usize {
    let k = o.events.iter().position(|s| &*s.id == id).unwrap();
    o.nodes
        .iter()
        .position(|n| n.event == k)
        .unwrap_or_else(|| panic!("no node from {id}"))
}

fn status(o: &Observed, node: usize, at: &str) -> (Status, bool) {
    let k = o.find(at).unwrap();
    let j = o.status(node, k);
    (j.status, j.inferred)
}

#[test]
fn every_delegation_and_registration_is_a_node_where_the_event_says() {
    let o = observed();
    assert_eq!(o.events.len(), 136);
    assert_eq!(o.first_broken, None);
    assert!(o.from_genesis);
    let mut delegations = 0;
    for (k, e) in raw_events().iter().enumerate() {
        let ty = e["event_type"].as_str().unwrap();
        let made: Vec<usize> = (0..o.nodes.len())
            .filter(|&n| o.nodes[n].event == k)
            .collect();
        match ty {
            "delegation_created" => {
                delegations += 1;
                assert_eq!(made.len(), 1, "{}", e["id"]);
                let n = &o.nodes[made[0]];
                assert_eq!(n.kind, NodeKind::Delegation);
                assert_eq!(
                    n.depth as i64,
                    e["deleg_depth"].as_i64().unwrap(),
                    "{}",
                    e["id"]
                );
                assert_eq!(o.agents[n.agent].spiffe, e["agent_id"].as_str().unwrap());
                let detail = e["detail"].as_str().unwrap();
                let from = &o.agents[n.from.unwrap()].spiffe;
                assert!(
                    detail.starts_with(&format!("delegation from {from} to ")),
                    "{detail}"
                );
                let p = &o.nodes[n.parent.unwrap()];
                assert_eq!(
                    p.agent,
                    n.from.unwrap(),
                    "{}: parent held by the delegator",
                    e["id"]
                );
                assert_eq!(p.depth + 1, n.depth, "{}", e["id"]);
                assert!(p.event < k);
                assert_eq!(n.chain_hash.as_deref(), e["deleg_chain_hash"].as_str());
                assert!(n.inferred.is_empty(), "{}: {:?}", e["id"], n.inferred);
            }
            "token_issued" => {
                assert_eq!(made.len(), 1, "{}", e["id"]);
                let n = &o.nodes[made[0]];
                assert_eq!(n.kind, NodeKind::Registration);
                let jti = n.jti.as_deref().unwrap();
                assert!(
                    e["detail"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("jti={jti},"))
                );
                assert_eq!(
                    n.ttl,
                    Some(300)
                        .filter(|_| !e["task_id"].as_str().unwrap().eq("a"))
                        .or(Some(600))
                );
            }
            "token_renewed" => assert_eq!(made.len(), 1),
            _ => assert!(made.is_empty(), "{} made a node", e["id"]),
        }
    }
    assert_eq!(delegations, 19);
}

#[test]
fn hop_two_hangs_under_the_hop_one_token_that_could_carry_it() {
    let o = observed();
    // deploy: hop 1 read-only (evt-13) was refused widening (evt-14); the
    // second hop 1 (evt-15) carries write:deploy:web-service, so hop 2
    // (evt-16) can only come from it.
    let hop2 = node_of(&o, "evt-000016");
    assert_eq!(o.nodes[hop2].parent, Some(node_of(&o, "evt-000015")));
    // The depth run: each hop under the previous one, depth 1..5.
    let chain: Vec<usize> = o.chain(node_of(&o, "evt-000048"));
    let ids: Vec<&str> = chain
        .iter()
        .map(|&n| &*o.events[o.nodes[n].event].id)
        .collect();
    assert_eq!(
        ids,
        [
            "evt-000025",
            "evt-000044",
            "evt-000045",
            "evt-000046",
            "evt-000047",
            "evt-000048"
        ]
    );
    // revocation: dc -> a (evt-91) comes from dc (evt-90), not bc (evt-87, read:data:z).
    assert_eq!(
        o.nodes[node_of(&o, "evt-000091")].parent,
        Some(node_of(&o, "evt-000090"))
    );
}

#[test]
fn revocations_follow_the_transcript() {
    let o = observed();
    let (a, b, c, d) = (
        node_of(&o, "evt-000073"),
        node_of(&o, "evt-000076"),
        node_of(&o, "evt-000079"),
        node_of(&o, "evt-000082"),
    );
    let (ab, abc, ab2, bc, dc, dca) = (
        node_of(&o, "evt-000083"),
        node_of(&o, "evt-000084"),
        node_of(&o, "evt-000086"),
        node_of(&o, "evt-000087"),
        node_of(&o, "evt-000090"),
        node_of(&o, "evt-000091"),
    );
    // Token level (evt-85) names a jti the trail never carried: which token
    // it was cannot be told, so `ab` is unknown (inferred), not revoked.
    assert_eq!(status(&o, ab, "evt-000085"), (Status::Unknown, true));
    assert_eq!(status(&o, ab, "evt-000084"), (Status::Live, true));
    // Agent level (evt-88): b's own token and ab2 (held by b) die — stated.
    assert_eq!(status(&o, b, "evt-000088"), (Status::Revoked, false));
    assert_eq!(status(&o, ab2, "evt-000088"), (Status::Revoked, false));
    assert_eq!(status(&o, ab, "evt-000088"), (Status::Revoked, false));
    assert_eq!(status(&o, bc, "evt-000088").0, Status::Live);
    // Task level (evt-89): a and abc (which inherits task-a) die; c, bc live.
    assert_eq!(status(&o, a, "evt-000089"), (Status::Revoked, false));
    assert_eq!(status(&o, abc, "evt-000089"), (Status::Revoked, false));
    assert_eq!(status(&o, c, "evt-000089"), (Status::Live, false));
    assert_eq!(status(&o, bc, "evt-000089").0, Status::Live);
    // Chain level (evt-92): dc and dca die; d's own token is spared.
    assert_eq!(status(&o, dc, "evt-000092"), (Status::Revoked, false));
    assert_eq!(status(&o, dca, "evt-000092"), (Status::Revoked, false));
    assert_eq!(status(&o, d, "evt-000092"), (Status::Live, false));
    // audit scenario: revoking the analyst kills hop1 (evt-119, held by it).
    assert_eq!(
        status(&o, node_of(&o, "evt-000119"), "evt-000121"),
        (Status::Revoked, false)
    );
}

#[test]
fn renewal_release_and_expiry_follow_the_transcript() {
    let o = observed();
    let a = node_of(&o, "evt-000098");
    let a2 = node_of(&o, "evt-000105");
    assert_eq!(o.nodes[a2].kind, NodeKind::Renewal);
    assert_eq!(o.nodes[a2].renews, Some(a));
    assert_eq!(o.nodes[a2].ttl, Some(600), "renewal keeps the lifetime");
    assert_eq!(status(&o, a, "evt-000105"), (Status::Renewed, false));
    assert_eq!(status(&o, a2, "evt-000105"), (Status::Live, false));
    assert_eq!(status(&o, a2, "evt-000106"), (Status::Released, false));
    // Registration tokens (ttl 300) issued at 15:20:25 have expired by
    // 15:21:14: judged at the event, never at the wall clock.
    let orch = node_of(&o, "evt-000006");
    assert_eq!(status(&o, orch, "evt-000016"), (Status::Live, false));
    assert_eq!(status(&o, orch, "evt-000019"), (Status::Released, false));
    let t1 = node_of(&o, "evt-000025");
    assert_eq!(status(&o, t1, "evt-000136"), (Status::Live, false));
    // "short" (ttl=1, evt-109) did expire, but a delegation's ttl is not in
    // the trail: live is all it can say, and it says it is inferred.
    assert_eq!(
        status(&o, node_of(&o, "evt-000109"), "evt-000136"),
        (Status::Live, true)
    );
}

#[test]
fn denials_sit_where_they_were_attempted() {
    let o = observed();
    let k = |id: &str| o.find(id).unwrap();
    let on = |id: &str| o.denials.iter().find(|d| d.event == k(id)).unwrap();
    // Hop 2 of the deploy scenario: attempted with hop 1 (read-only, evt-13).
    let d = on("evt-000014");
    assert_eq!(d.node, Some(node_of(&o, "evt-000013")));
    assert_eq!(d.requested, ["write:deploy:web-service"]);
    assert_eq!(
        d.allowed,
        ["read:config:production", "read:deploy:web-service"]
    );
    assert!(!d.node_inferred);
    // The seed program's hop 2 (evt-135) under its hop 1 (evt-134).
    assert_eq!(on("evt-000135").node, Some(node_of(&o, "evt-000134")));
    // Escalation: four refusals from the narrow token, counted per agent.
    let counts = o.denial_counts(o.head().unwrap());
    assert_eq!(counts[0].0, "refused escalation");
    assert!(counts[0].1.contains("escalation/helper"));
    assert_eq!(counts[0].2, 5);
    let presented: usize = counts
        .iter()
        .filter(|(c, _, _)| *c == "revoked token presented")
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(
        presented, 2,
        "the lifecycle scenario's released token, used twice"
    );
}

#[test]
fn a_changed_detail_is_named() {
    let text = std::fs::read_to_string(fixture("audit.json")).unwrap();
    let tampered = text.replacen(
        "scope=[read:data:reports] depth=2",
        "scope=[read:data:*] depth=2",
        1,
    );
    assert_ne!(text, tampered);
    let mut o = Observed::new();
    load::read_bytes(tampered.as_bytes(), "t.json", &mut o, &mut |_, _| {}).unwrap();
    assert_eq!(o.first_broken.unwrap().id, "evt-000066");
}
