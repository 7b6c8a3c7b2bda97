//! Issue 26: observe states nothing wrong as fact. A workload like the SDK
//! programs' — delegated tokens renewed, renew-then-release, revocations at
//! all four levels, revoked and released tokens presented again, two agents
//! sharing a task so renewals are ambiguous — runs against a broker over
//! real loopback HTTP, keeping every token the broker answered with. Then
//! `chainview observe --print json` rebuilds it from the audit trail, and
//! every node is checked against the JWTs: whatever it does not mark as
//! inferred must be true, and a token used later as Bearer is settled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;

use chainview::broker::ClientError;
use chainview::broker::types::RevokeLevel;
use common::Env;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_chainview");

/// What the programs know of a token the broker gave them.
#[derive(Debug, Clone)]
struct Truth {
    raw: String,
    jti: String,
    sub: String,
    scope: Vec<String>,
    depth: usize,
    chain_hash: String,
    /// The token it was delegated from (the Bearer of the delegation), or —
    /// for a renewal — the token it replaced.
    from: Option<usize>,
    renewal: bool,
    /// How it ended, as the programs did it (None: it should be valid).
    fate: Option<&'static str>,
}

#[derive(Default)]
struct Book {
    tokens: Vec<Truth>,
    /// Refused delegations: the token they were attempted with.
    refused_with: Vec<usize>,
}

impl Book {
    fn add(&mut self, raw: &str, from: Option<usize>, renewal: bool) -> usize {
        let c = chainview::jwt::decode(raw).unwrap().claims;
        self.tokens.push(Truth {
            raw: raw.to_string(),
            jti: c.jti.clone(),
            sub: c.sub.clone(),
            scope: c.scope.clone(),
            depth: c.delegation_chain.len(),
            chain_hash: c.chain_hash.clone(),
            from,
            renewal,
            fate: None,
        });
        self.tokens.len() - 1
    }
    fn raw(&self, i: usize) -> &str {
        &self.tokens[i].raw
    }
    fn end(&mut self, i: usize, how: &'static str) {
        self.tokens[i].fate.get_or_insert(how);
    }
}

async fn delegate(env: &Env, b: &mut Book, from: usize, to: &str, scope: &[&str]) -> usize {
    let r = env
        .delegate(b.raw(from), to, scope, Some(900))
        .await
        .expect("delegation accepted");
    b.add(&r.access_token, Some(from), false)
}

async fn renew(env: &Env, b: &mut Book, old: usize) -> usize {
    let r = env.client.renew(b.raw(old)).await.expect("renewed");
    b.end(old, "renewed");
    b.add(&r.access_token, Some(old), true)
}

#[tokio::test]
async fn observe_states_nothing_wrong_as_fact() {
    let env = Env::new().await;
    let admin = env.admin().await;
    let agent = |task: &'static str| {
        let admin = admin.clone();
        let env = &env;
        async move {
            env.client
                .create_agent(
                    &admin,
                    "truth",
                    task,
                    &["read:data:*".into(), "write:data:*".into()],
                    Some(900),
                )
                .await
                .expect("agent")
        }
    };
    let (a, bb, c, d, e) = (
        agent("task-a").await,
        agent("task-b").await,
        agent("task-c").await,
        agent("task-d").await,
        // Shares task-a with a: renewals of its tokens are ambiguous.
        agent("task-a").await,
    );
    let mut b = Book::default();
    let ta = b.add(&a.access_token, None, false);
    let tb = b.add(&bb.access_token, None, false);
    let tc = b.add(&c.access_token, None, false);
    let td = b.add(&d.access_token, None, false);
    let te = b.add(&e.access_token, None, false);

    // Chains a → b → c, a → b → d (through a renewal of the middle hop).
    let ab = delegate(
        &env,
        &mut b,
        ta,
        &bb.agent_id,
        &["read:data:x", "write:data:x"],
    )
    .await;
    let abc = delegate(&env, &mut b, ab, &c.agent_id, &["read:data:x"]).await;
    let ab2 = renew(&env, &mut b, ab).await;
    let abd = delegate(&env, &mut b, ab2, &d.agent_id, &["write:data:x"]).await;
    // A widening refused, attempted with the renewed hop.
    let wide = env
        .delegate(b.raw(ab2), &c.agent_id, &["write:data:*"], None)
        .await;
    assert!(matches!(wide, Err(ClientError::Broker(_))), "{wide:?}");
    b.refused_with.push(ab2);
    // e (same task as a) delegates to b; then renews its own token and the delegated one.
    let eb = delegate(&env, &mut b, te, &bb.agent_id, &["read:data:y"]).await;
    let te2 = renew(&env, &mut b, te).await;
    let eb2 = renew(&env, &mut b, eb).await;
    let _ebc = delegate(&env, &mut b, eb2, &c.agent_id, &["read:data:y"]).await;
    // Renew then release.
    let ta2 = renew(&env, &mut b, ta).await;
    env.client.release(b.raw(ta2)).await.expect("released");
    b.end(ta2, "released");
    // A released token presented again: refused.
    assert!(env.client.release(b.raw(ta2)).await.is_err());
    // Token level: abc's jti (the trail never carried it).
    env.client
        .revoke(&admin, RevokeLevel::Token, &b.tokens[abc].jti)
        .await
        .unwrap();
    b.end(abc, "revoked");
    // The revoked token presented as Bearer: refused.
    assert!(
        env.delegate(b.raw(abc), &d.agent_id, &["read:data:x"], None)
            .await
            .is_err()
    );
    // Agent level: d (its own token and abd, which it holds).
    env.client
        .revoke(&admin, RevokeLevel::Agent, &d.agent_id)
        .await
        .unwrap();
    b.end(td, "revoked");
    b.end(abd, "revoked");
    // Task level: task-c (c's own token; ebc and abc carry task-a/task-b's).
    env.client
        .revoke(&admin, RevokeLevel::Task, "task-c")
        .await
        .unwrap();
    b.end(tc, "revoked");
    // Chain level: rooted at e: eb2 and ebc (eb was renewed away before).
    env.client
        .revoke(&admin, RevokeLevel::Chain, &e.agent_id)
        .await
        .unwrap();
    for (i, t) in b.tokens.clone().iter().enumerate() {
        let c = chainview::jwt::decode(&t.raw).unwrap().claims;
        if c.delegation_chain.first().map(|r| r.agent.as_str()) == Some(e.agent_id.as_str()) {
            b.end(i, "revoked");
        }
    }
    // Two minutes pass (the embedded broker's clock): ttl=900 delegations
    // are still valid — observe may say unknown, never dead.
    env.pass(std::time::Duration::from_secs(120)).await;
    let _ = env.admin().await;
    let _ = (tb, te2, eb);

    // Ground truth from the broker itself, at the end.
    for t in &b.tokens {
        let valid = env.valid(&t.raw).await;
        assert_eq!(valid, t.fate.is_none(), "the workload's own book: {t:?}");
    }

    let url = env.client.base_url().to_string();
    let secret = env.admin_secret.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(["observe", "--print", "json"])
            .env("AGENTWRIT_BROKER_URL", &url)
            .env("AGENTWRIT_ADMIN_SECRET", &secret)
            .env_remove("AGENTWRIT_CLIENT_ID")
            .env_remove("AGENTWRIT_CLIENT_SECRET")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    check(&b, &lines);
}

/// Every node against the book.
fn check(b: &Book, lines: &[Value]) {
    let nodes: HashMap<&str, &Value> = lines
        .iter()
        .filter(|l| l["kind"] == "node")
        .map(|l| (l["id"].as_str().unwrap(), l))
        .collect();
    // Node → the token it is: by jti (registrations, renewals) or by chain
    // hash (a delegation: the first token with that chain).
    let truth_of = |n: &Value| -> Option<usize> {
        if let Some(j) = n["jti"].as_str() {
            return b.tokens.iter().position(|t| t.jti == j);
        }
        let h = n["chain_hash"].as_str()?;
        b.tokens
            .iter()
            .position(|t| t.chain_hash == h && !t.renewal)
    };
    let mut seen = vec![false; b.tokens.len()];
    let mut facts = 0;
    for n in nodes.values() {
        let Some(t) = truth_of(n) else {
            // Only a placeholder may be a token the book does not hold.
            assert!(
                n["inferred"] == true,
                "a node that is no token, as fact: {n}"
            );
            continue;
        };
        seen[t] = true;
        let truth = &b.tokens[t];
        let id = n["id"].as_str().unwrap();
        assert_eq!(n["agent"], truth.sub.as_str(), "{id}: holder");
        if n["link_inferred"] == false {
            facts += 1;
            assert_eq!(n["depth"], truth.depth, "{id}: depth stated as fact");
            let mut got: Vec<&str> = n["scope"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            got.sort();
            let mut want: Vec<&str> = truth.scope.iter().map(String::as_str).collect();
            want.sort();
            assert_eq!(got, want, "{id}: scope stated as fact");
            let link = if truth.renewal { "renews" } else { "parent" };
            let linked = n[link].as_str().map(|p| truth_of(nodes[p]));
            match (truth.renewal, truth.from) {
                (true, Some(prev)) => {
                    assert_eq!(linked, Some(Some(prev)), "{id}: renews, stated as fact")
                }
                (false, Some(parent)) => {
                    assert_eq!(linked, Some(Some(parent)), "{id}: parent, stated as fact")
                }
                (_, None) => assert_eq!(n["parent"], Value::Null, "{id}: a root"),
            }
        }
        let status = n["status"].as_str().unwrap();
        let liveness = n["liveness"].as_str().unwrap();
        match liveness {
            "live" => assert!(truth.fate.is_none(), "{id}: live, but {:?}", truth.fate),
            "dead" => assert!(truth.fate.is_some(), "{id}: dead, but valid"),
            _ => {}
        }
        if n["status_inferred"] == false {
            match truth.fate {
                None => assert_eq!(status, "valid", "{id}: stated {status}, but valid"),
                Some(fate) => assert_eq!(status, fate, "{id}: stated {status}, but {fate}"),
            }
        }
    }
    assert!(seen.iter().all(|s| *s), "every token is a node: {seen:?}");
    if std::env::var_os("TRUTH_DUMP").is_some() {
        for l in lines.iter().filter(|l| l["kind"] == "node") {
            eprintln!(
                "{} {} renews={} parent={} {} {} link_inf={} st_inf={} why={}",
                l["id"],
                l["type"],
                l["renews"],
                l["parent"],
                l["status"],
                l["liveness"],
                l["link_inferred"],
                l["status_inferred"],
                l["status_why"]
            );
        }
    }
    assert!(
        facts > b.tokens.len() / 2,
        "mostly facts, not guesses: {facts}"
    );
    // Refusals: where stated as fact, under the token they were tried with.
    let refused: Vec<&Value> = lines
        .iter()
        .filter(|l| l["kind"] == "denied" && l["event_type"] == "delegation_attenuation_violation")
        .collect();
    assert_eq!(refused.len(), b.refused_with.len());
    for (d, &with) in refused.iter().zip(&b.refused_with) {
        if d["node_inferred"] == false {
            let n = nodes[d["node"].as_str().unwrap()];
            assert_eq!(truth_of(n), Some(with), "refusal placed as fact: {d}");
        }
    }
    // The ttl=900 delegations that are still valid two minutes on: never dead.
    for n in nodes.values() {
        if let Some(t) = truth_of(n)
            && b.tokens[t].fate.is_none()
        {
            assert_ne!(n["liveness"], "dead", "valid, shown dead: {n}");
        }
    }
}
