//! Observe: the reconstruction against a trail recorded from the real broker
//! v2.0.0 (`tests/fixtures/real-broker-audit/`, a copy of the project's
//! shared fixture), checked against the transcripts of what caused it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/clean.rs"]
mod clean;

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
    // At evt-84 `ab` was the Bearer of the delegation to `abc`: alive then,
    // stated (its ttl is not in the trail, but its use is).
    assert_eq!(status(&o, ab, "evt-000084"), (Status::Live, false));
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

// ---- The binary: exit codes, a live broker, audit dump, diagrams. ----

use clean::run;

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn print_json_has_the_specified_fields_and_exits_0() {
    let f = fixture("audit.json");
    let (code, out, err) = run(
        &["observe", "--from", f.to_str().unwrap(), "--print", "json"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v = lines(&out);
    let node = v
        .iter()
        .find(|l| l["kind"] == "node" && l["event"] == "evt-000016")
        .unwrap();
    for k in [
        "id",
        "type",
        "agent",
        "from",
        "parent",
        "scope",
        "depth",
        "task",
        "orch",
        "status",
        "inferred",
        "event",
        "at",
        "jti",
        "chain_hash",
    ] {
        assert!(node.get(k).is_some(), "node lacks {k}: {node}");
    }
    assert_eq!(node["type"], "delegation");
    assert_eq!(node["depth"], 2);
    assert_eq!(
        node["jti"],
        Value::Null,
        "the trail does not carry a delegated jti"
    );
    let parent = v.iter().find(|l| l["id"] == node["parent"]).unwrap();
    assert_eq!(parent["event"], "evt-000015");
    assert_eq!(parent["agent"], node["from"]);
    let denied = v
        .iter()
        .find(|l| l["kind"] == "denied" && l["event"] == "evt-000014")
        .unwrap();
    for k in [
        "event",
        "at",
        "event_type",
        "agent",
        "from",
        "scope",
        "detail",
    ] {
        assert!(denied.get(k).is_some(), "denial lacks {k}");
    }
    assert_eq!(
        denied["scope"],
        serde_json::json!(["write:deploy:web-service"])
    );
    let summary = v.last().unwrap();
    assert_eq!(summary["kind"], "summary");
    assert_eq!(summary["events"], 136);
    assert_eq!(summary["hash_chain"], "consistent");
    assert_eq!(summary["first_broken"], Value::Null);
    assert_eq!(
        summary["nodes"],
        v.iter().filter(|l| l["kind"] == "node").count()
    );
    // --at: the state as of an event (the release of evt-000019 not yet seen).
    let (_, out, _) = run(
        &[
            "observe",
            "--from",
            f.to_str().unwrap(),
            "--print",
            "json",
            "--at",
            "evt-000018",
        ],
        &[],
    );
    let v = lines(&out);
    let orch = v.iter().find(|l| l["event"] == "evt-000006").unwrap();
    assert_eq!(orch["status"], "valid");
    assert_eq!(v.last().unwrap()["as_of"], "evt-000018");
}

#[test]
fn a_tampered_copy_exits_1_naming_the_event() {
    let text = std::fs::read_to_string(fixture("audit.json")).unwrap();
    let tampered = text.replacen(
        "requested=[read:data:payroll]",
        "requested=[read:data:other]",
        1,
    );
    assert_ne!(text, tampered);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("tampered.json");
    std::fs::write(&f, tampered).unwrap();
    let (code, out, err) = run(
        &["observe", "--from", f.to_str().unwrap(), "--print", "json"],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("BROKEN at evt-000062"), "{err}");
    let summary = lines(&out).pop().unwrap();
    assert_eq!(
        (
            summary["hash_chain"].as_str(),
            summary["first_broken"].as_str()
        ),
        (Some("broken"), Some("evt-000062"))
    );
}

#[test]
fn bad_input_and_usage_exit_2_with_nothing_half_printed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    let text = std::fs::read_to_string(fixture("audit.json")).unwrap();
    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    let (code, out, err) = run(
        &[
            "observe",
            "--from",
            bad.to_str().unwrap(),
            "--print",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "nothing printed: {out}");
    assert!(
        err.contains(&format!("{}:", bad.display())) && err.contains("not an audit trail"),
        "{err}"
    );
    let f = fixture("audit.json");
    let f = f.to_str().unwrap();
    for (args, says) in [
        (
            vec!["observe", "--from", "/no/such/file", "--print", "json"],
            "cannot read it",
        ),
        (
            vec![
                "observe",
                "--from",
                f,
                "--print",
                "json",
                "--at",
                "evt-999999",
            ],
            "no such event",
        ),
        (
            vec!["observe", "--from", f, "--print", "json", "--at", "noon"],
            "RFC 3339",
        ),
        (vec!["observe", "--print", "json"], "observe needs a trail"),
        (
            vec!["observe", "--from", f, "--print", "yaml"],
            "invalid value",
        ),
    ] {
        let (code, out, err) = run(&args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // The broker needs the admin secret.
    let (code, _, err) = run(
        &[
            "observe",
            "--broker",
            "http://127.0.0.1:9",
            "--print",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("AGENTWRIT_ADMIN_SECRET"), "{err}");
}

#[test]
fn an_unreachable_broker_exits_3() {
    let (code, _, err) = run(
        &[
            "observe",
            "--broker",
            "http://127.0.0.1:9",
            "--print",
            "json",
        ],
        &[("AGENTWRIT_ADMIN_SECRET", "some-admin-secret-here")],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("cannot reach the broker at http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn diagrams_draw_nodes_edges_and_refusals() {
    let f = fixture("audit.json");
    let f = f.to_str().unwrap();
    let (code, mmd, _) = run(
        &[
            "observe",
            "--from",
            f,
            "--print",
            "mermaid",
            "--at",
            "evt-000016",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(mmd.starts_with("flowchart LR\n"), "{mmd}");
    assert!(
        mmd.contains("n4 -->|\"−read:config:production −read:deploy:web-service\"| n5"),
        "{mmd}"
    );
    assert!(mmd.contains("n3 -.-> d0"), "{mmd}");
    assert!(
        mmd.contains(
            "d0[\"✗ d0 · push-v2.4.1/c8bc<br/>write:deploy:web-service<br/>denied at evt-000014"
        ),
        "{mmd}"
    );
    // A subgraph per orch, one per task inside it; the refusal sits with
    // the agent it was for.
    let push = mmd
        .find("subgraph task_0_2[\"task push-v2.4.1\"]")
        .expect(&mmd);
    assert!(mmd.starts_with("flowchart LR\n  subgraph orch_0[\"orch deploy-pipeline\"]\n"));
    assert!(
        mmd[push..]
            .find("d0[")
            .is_some_and(|d| d < mmd[push..].find("end").unwrap())
    );
    let (code, dot, _) = run(
        &[
            "observe",
            "--from",
            f,
            "--print",
            "dot",
            "--at",
            "evt-000016",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        dot.starts_with("digraph chainview {\n  rankdir=LR;"),
        "{dot}"
    );
    assert!(dot.contains("n3 -> d0 [style=dashed];"), "{dot}");
    assert!(
        dot.contains("subgraph cluster_o0 {\n    label=\"orch deploy-pipeline\";"),
        "{dot}"
    );
    assert!(
        dot.contains("subgraph cluster_o0_t0 {\n      label=\"task release-v2.4.1\";"),
        "{dot}"
    );
    assert!(dot.trim_end().ends_with('}'));
}

/// A broker, driven by another client (chainview's own --script, as the SDK
/// is in CI), observed headless; the saved trail reads back the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_broker_is_observed_and_dumped() {
    use chainview::broker::embedded::{Config, EmbeddedBroker};
    let secret = "observe-test-admin-secret";
    let broker = EmbeddedBroker::start(Config::with_admin_secret(secret))
        .await
        .unwrap();
    let url = broker.url();
    let env = [
        ("AGENTWRIT_BROKER_URL", url.as_str()),
        ("AGENTWRIT_ADMIN_SECRET", secret),
    ];
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/scenarios/deploy.chainview"
    );
    let (url2, env2) = (
        url.clone(),
        env.map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let result = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env2.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (code, _, err) = run(&["--script", script], &env);
        assert_eq!(code, 0, "{err}");
        let live = run(&["observe", "--print", "json"], &env);
        let dir = tempfile::tempdir().unwrap();
        let saved = dir.path().join("trail.json");
        let (code, _, err) = run(&["audit", "dump", "--out", saved.to_str().unwrap()], &env);
        assert_eq!(code, 0, "{err}");
        let (code, _, err) = run(&["audit", "dump", "--out", saved.to_str().unwrap()], &env);
        assert_eq!(code, 2, "never overwrites: {err}");
        // Observing logs in as admin: the dump holds the observer's own
        // admin_auth too. As of the live run's last event, the same forest.
        let as_of = lines(&live.1)
            .last()
            .map(|s| s["as_of"].as_str().unwrap_or("").to_string())
            .unwrap_or_default();
        let offline = run(
            &[
                "observe",
                "--from",
                saved.to_str().unwrap(),
                "--print",
                "json",
                "--at",
                &as_of,
            ],
            &[],
        );
        let wrong = run(
            &["observe", "--broker", &url2, "--print", "json"],
            &[("AGENTWRIT_ADMIN_SECRET", "not-the-admin-secret")],
        );
        (live, offline, wrong)
    })
    .await
    .unwrap();
    let ((code, out, err), offline, wrong) = result;
    assert_eq!(code, 0, "{err}");
    let v = lines(&out);
    let delegations: Vec<&Value> = v.iter().filter(|l| l["type"] == "delegation").collect();
    assert_eq!(delegations.len(), 3, "{out}");
    let hop2 = delegations.iter().find(|l| l["depth"] == 2).unwrap();
    assert_eq!(
        hop2["scope"],
        serde_json::json!(["write:deploy:web-service"])
    );
    let parent = v.iter().find(|l| l["id"] == hop2["parent"]).unwrap();
    assert_eq!(
        parent["scope"].as_array().unwrap().len(),
        3,
        "hop 2 hangs under the hop 1 that carries write"
    );
    assert_eq!(v.iter().filter(|l| l["kind"] == "denied").count(), 1);
    assert_eq!(v.last().unwrap()["hash_chain"], "consistent");
    assert_eq!(offline.0, 0, "{}", offline.2);
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.contains("\"kind\":\"summary\""))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        body(&offline.1),
        body(&out),
        "the dumped trail reads back the same"
    );
    assert_eq!(wrong.0, 3, "{}", wrong.2);
    assert!(
        wrong
            .2
            .contains("AGENTWRIT_ADMIN_SECRET does not match this broker"),
        "{}",
        wrong.2
    );
    broker.shutdown().await;
}

#[test]
fn script_format_mermaid_and_dot_draw_the_explorers_final_tree() {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/scenarios/deploy.chainview"
    );
    let (code, mmd, err) = run(&["--script", script, "--format", "mermaid"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(mmd.starts_with("flowchart LR\n"), "{mmd}");
    assert!(
        mmd.contains(
            "[\"✗ t4 · deployer (hop2)<br/>write:deploy:web-service<br/>refused 403 scope_violation\"]"
        ),
        "{mmd}"
    );
    assert!(
        mmd.contains(" -.->|\"refused\"| "),
        "a refusal is a dashed edge: {mmd}"
    );
    assert!(
        mmd.contains("−write:deploy:* ~read:config:*→production ~read:deploy:*→web-service"),
        "{mmd}"
    );
    let (code, dot, err) = run(&["--script", script, "--format", "dot"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(dot.contains("style=\"rounded,dashed\", color=red"), "{dot}");
    assert!(
        !dot.contains("CI/CD"),
        "no transcript, only the diagram: {dot}"
    );
}

#[test]
fn the_app_model_as_of_an_event_with_a_filter() {
    use chainview::app::TokenStatus;
    use chainview::observe::project::{Filter, app_at};
    let o = observed();
    let at = o.find("evt-000016").unwrap();
    let app = app_at(&o, at, "fixture", &Filter::default());
    // The deploy scenario's six tokens, and hop 2's refusal under hop 1.
    assert_eq!(app.agents.len(), 3);
    let refused: Vec<_> = app
        .tokens
        .iter()
        .filter(|t| matches!(app.status(t.id, 0), TokenStatus::Refused(_)))
        .collect();
    assert_eq!(refused.len(), 1);
    let parent = refused[0].parent().unwrap();
    assert_eq!(app.tokens[parent].label.as_deref(), Some("n3"));
    // The probe answers from the reconstruction: who can write to web-service?
    let rows = app.probe("write:deploy:web-service", o.events[at].ms / 1000);
    let permits: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(r.verdict, chainview::app::ProbeVerdict::Permits { .. }))
        .filter_map(|r| app.tokens[r.token].label.as_deref())
        .collect();
    assert_eq!(permits, ["n0", "n2", "n4"]);
    // Hop 2 itself: a delegation's ttl is not in the trail, so it may
    // permit (likely valid, as of its own event) — neither live nor dead.
    let may: Vec<&str> = rows
        .iter()
        .filter(|r| matches!(r.verdict, chainview::app::ProbeVerdict::MayPermit { .. }))
        .filter_map(|r| app.tokens[r.token].label.as_deref())
        .collect();
    assert_eq!(may, ["n5"]);
    // A filter keeps whole chains, and only the agents holding their tokens.
    let head = o.head().unwrap();
    let f = Filter {
        text: "revocation".into(),
    };
    let app = app_at(&o, head, "fixture", &f);
    assert!(
        app.agents
            .iter()
            .all(|a| a.agent_id.as_deref().unwrap().contains("/revocation/"))
    );
    assert_eq!(app.tokens.len(), 10, "4 registrations and 6 delegations");
}

/// A trail whose text carries escape sequences (a detail, an agent id, a
/// task): every output shows them, none sends them live.
#[test]
fn hostile_text_in_a_trail_never_reaches_the_terminal_live() {
    use chainview::broker::types::AuditEvent;
    let mut prev = "0".repeat(64);
    let mut events = Vec::new();
    let evil_agent = "spiffe://agentwrit.local/agent/o\u{1b}]0;PWNED\u{7}/t/0123456789abcdef";
    for (i, (ty, agent, task, detail)) in [
        ("agent_registered", evil_agent, "t\u{9b}2J", "Agent registered with scope [read:data:*]"),
        ("token_issued", evil_agent, "t\u{9b}2J", "Token issued, jti=abc, ttl=300"),
        (
            "scope_violation",
            evil_agent,
            "t\u{9b}2J",
            "scope_violation | required=admin:revoke:* | actual=read:data:* | path=/v1/\u{1b}[31mrevoke",
        ),
        ("admin_auth", "", "", "admin \u{1b}[2J authenticated \u{7f}\u{85}"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut e = AuditEvent {
            id: format!("evt-{:06}", i + 1),
            timestamp: format!("2026-11-26T10:00:0{i}Z"),
            event_type: ty.into(),
            agent_id: agent.into(),
            task_id: task.into(),
            detail: detail.into(),
            prev_hash: prev.clone(),
            ..AuditEvent::default()
        };
        e.hash = e.compute_hash();
        prev = e.hash.clone();
        events.push(e);
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("hostile.json");
    std::fs::write(
        &f,
        serde_json::json!({"events": events, "total": 4}).to_string(),
    )
    .unwrap();
    for format in ["text", "json", "mermaid", "dot"] {
        let (code, out, err) = run(
            &["observe", "--from", f.to_str().unwrap(), "--print", format],
            &[],
        );
        assert_eq!(code, 0, "{format}: {err}");
        let live: Vec<char> = out
            .chars()
            .filter(|c| c.is_control() && *c != '\n')
            .collect();
        assert!(
            live.is_empty(),
            "{format}: live controls {live:?} in:\n{out}"
        );
        assert!(
            err.chars().all(|c| !c.is_control() || c == '\n'),
            "{format} stderr: {err}"
        );
    }
}

#[test]
fn observe_help_lists_the_timeline_keys_from_the_keymap() {
    let (code, out, _) = run(&["observe", "--help"], &[]);
    assert_eq!(code, 0);
    for k in [
        "n/Space next event",
        "b previous event",
        "G last event",
        "t jump",
        "f filter",
        "q quit",
    ] {
        assert!(out.contains(k), "{k} in:\n{out}");
    }
    assert!(
        !out.contains("d delegate"),
        "explorer actions are not observe keys:\n{out}"
    );
}
