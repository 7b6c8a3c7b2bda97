//! Rendering benchmarks (criterion), on a TestBackend:
//!
//! * a probe keystroke recomputed and the whole frame drawn, with 10,000 tokens;
//! * a whole frame with 1,000 agents, each with a delegation chain of depth 5;
//! * a keystroke in the delegate form and in the revoke form (which predicts
//!   the dying tokens over all 10,000) with the whole frame drawn;
//! * folding a live check's 10,000 answers into the state.
//!
//!     cargo bench --bench render
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use std::time::Duration;

use chainview::app::{App, unix_now};
use chainview::broker::client::Agent;
use chainview::broker::types::{DelegateResponse, ValidateResponse};
use chainview::jwt::{self, Claims, DelegRecord};
use chainview::ui::{self, ProbeCache};
use chainview::view::form::FormKind;
use chainview::view::{Focus, View};
use chainview::worker::{Call, Event, Outcome};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SCOPES: [&str; 3] = ["read:config:*", "read:deploy:*", "write:deploy:*"];

/// `agents` agents, each with a chain of `depth` delegations below its registration token.
fn synthetic(agents: usize, depth: usize) -> App {
    let key = SigningKey::from_bytes(&[3u8; 32]);
    let kid = jwt::kid(&key.verifying_key());
    let mut app = App::new("http://127.0.0.1:1", true, None);
    let exp = unix_now() + 3600;
    let ev = |outcome| Event {
        request: 0,
        calls: vec![],
        outcome,
    };
    for a in 0..agents {
        let scope: Vec<String> = SCOPES.iter().map(|s| s.to_string()).collect();
        let name = format!("agent-{a}");
        let sub = format!("spiffe://agentwrit.local/agent/bench/t{a}/{a:016x}");
        let (agent, tok) = app.begin_agent(&name, "bench", &format!("t{a}"), &scope, None);
        let claims = Claims {
            sub: sub.clone(),
            exp,
            iat: exp - 3600,
            nbf: exp - 3600,
            jti: format!("{a:032x}"),
            scope: scope.clone(),
            task_id: format!("t{a}"),
            orch_id: "bench".into(),
            ..Claims::default()
        };
        app.apply(
            &ev(Outcome::AgentCreated {
                agent,
                token: tok,
                result: Ok(Agent {
                    agent_id: sub.clone(),
                    access_token: jwt::sign(&claims, &key, &kid),
                    expires_in: 3600,
                    scope: scope.clone(),
                    task_id: claims.task_id.clone(),
                    orch_id: "bench".into(),
                    key: key.clone(),
                }),
            }),
            unix_now(),
        );
        let mut parent = tok;
        let mut chain: Vec<DelegRecord> = Vec::new();
        let mut held = scope.clone();
        for d in 1..=depth {
            let narrowed: Vec<String> = held
                .iter()
                .map(|s| s.replace(":*", &format!(":svc-{d}")))
                .collect();
            chain.push(DelegRecord {
                agent: sub.clone(),
                scope: held.clone(),
                delegated_at: "2026-11-26T00:00:00Z".into(),
                signature: String::new(),
            });
            let id = app.begin_delegation(parent, agent, &narrowed, &format!("a{a}-hop{d}"), None);
            let c = Claims {
                sub: sub.clone(),
                exp,
                iat: exp - 60,
                nbf: exp - 60,
                jti: format!("{a:016x}{d:016x}"),
                scope: narrowed.clone(),
                task_id: format!("t{a}"),
                orch_id: "bench".into(),
                delegation_chain: chain.clone(),
                chain_hash: jwt::chain_hash(&chain),
                ..Claims::default()
            };
            app.apply(
                &ev(Outcome::Delegated {
                    token: id,
                    result: Ok(DelegateResponse {
                        access_token: jwt::sign(&c, &key, &kid),
                        expires_in: 60,
                        delegation_chain: chain.clone(),
                    }),
                }),
                unix_now(),
            );
            parent = id;
            held = narrowed;
        }
    }
    app
}

fn bench(c: &mut Criterion) {
    let now = unix_now();
    // 10,000 tokens: 2,000 agents with chains of depth 4.
    let app = synthetic(2000, 4);
    assert_eq!(app.tokens.len(), 10_000);
    let mut view = View::new(None, false);
    view.select_token(&app, 5_000);
    view.focus = Focus::Probe;
    view.lower = Focus::Probe;
    let mut cache = ProbeCache::default();
    let mut term = Terminal::new(TestBackend::new(120, 40)).expect("test backend");
    let inputs = ["write:deploy:svc-2", "write:deploy:svc-3"];
    let mut i = 0usize;
    c.bench_function("probe keystroke + frame, 10,000 tokens (120x40)", |b| {
        b.iter(|| {
            i += 1;
            view.probe = tui_input::Input::new(inputs[i % 2].to_string());
            term.draw(|f| ui::draw(f, &app, &mut view, &mut cache, now))
                .expect("draw");
            black_box(cache.permits);
        })
    });

    // The delegate form from a depth-2 token, a scope typed: checked + frame.
    view.focus = Focus::Tree;
    let scopes = ["read:config:svc-2", "write:deploy:svc-2,read:config:svc-9"];
    view.open_form(&app, FormKind::Delegate { from: 5_002 });
    assert!(view.form.is_some());
    c.bench_function(
        "delegate form keystroke + frame, 10,000 tokens (120x40)",
        |b| {
            b.iter(|| {
                i += 1;
                if let Some(f) = view.form.as_mut() {
                    f.fields[1].input = tui_input::Input::new(scopes[i % 2].to_string());
                }
                term.draw(|f| ui::draw(f, &app, &mut view, &mut cache, now))
                    .expect("draw");
            })
        },
    );
    view.form = None;
    view.open_form(
        &app,
        FormKind::Revoke {
            selected: Some(5_000),
        },
    );
    let targets = ["agent-1000", "agent-1001"];
    c.bench_function(
        "revoke form keystroke + frame, 10,000 tokens (120x40)",
        |b| {
            b.iter(|| {
                i += 1;
                if let Some(f) = view.form.as_mut() {
                    f.fields[0].choice = 1; // agent level
                    f.fields[1].input = tui_input::Input::new(targets[i % 2].to_string());
                }
                term.draw(|f| ui::draw(f, &app, &mut view, &mut cache, now))
                    .expect("draw");
            })
        },
    );

    // A live check's answers (all still valid) folded into the state.
    let mut live_app = synthetic(2000, 4);
    let answers: Vec<_> = live_app
        .live_tokens()
        .into_iter()
        .map(|(id, _)| {
            (
                id,
                Call {
                    method: "POST".into(),
                    path: "/v1/token/validate".into(),
                    status: Some(200),
                    latency: Duration::from_micros(300),
                    error: None,
                },
                Ok(ValidateResponse {
                    valid: true,
                    claims: None,
                    error: None,
                }),
            )
        })
        .collect();
    assert_eq!(answers.len(), 10_000);
    let ev = Event {
        request: 1,
        calls: vec![],
        outcome: Outcome::Revalidated(answers),
    };
    c.bench_function("live check: fold 10,000 answers", |b| {
        b.iter(|| live_app.apply(black_box(&ev), unix_now()))
    });

    // 1,000 agents with chains of depth 5.
    let app = synthetic(1000, 5);
    let mut view = View::new(None, false);
    view.select_token(&app, 3_000);
    let mut cache = ProbeCache::default();
    c.bench_function("frame, 1,000 agents with depth-5 chains (120x40)", |b| {
        b.iter(|| {
            term.draw(|f| ui::draw(f, &app, &mut view, &mut cache, now))
                .expect("draw");
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
