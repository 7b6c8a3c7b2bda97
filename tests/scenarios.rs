//! `chainview --script`: every bundled scenario, golden transcripts, malformed
//! scripts with their exact messages, and each documented exit code. Runs the
//! real binary against its embedded broker (or an external one started here).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use chainview::broker::embedded::{Config, EmbeddedBroker};

const BIN: &str = env!("CARGO_BIN_EXE_chainview");

fn chainview(args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .env_remove("AGENTWRIT_ADMIN_SECRET")
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("chainview runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("chainview finishes")
}

fn script(name: &str) -> String {
    format!("{}/assets/scenarios/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The `--frames` screen printed after step `n`.
fn frame_after(out: &str, n: usize) -> String {
    out.split(&format!("── frame after step {n} "))
        .nth(1)
        .and_then(|f| f.split(&format!("── frame after step {} ", n + 1)).next())
        .unwrap_or_else(|| panic!("no frame after step {n}"))
        .to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run_bundled(name: &str) -> String {
    let o = chainview(&["--script", &script(name)], None, &[]);
    let out = stdout(&o);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{name} failed:\n{out}\n{}",
        stderr(&o)
    );
    assert!(out.contains(" failed · "), "{out}");
    assert!(out.contains(", 0 failed"), "{out}");
    out
}

#[test]
fn deploy_scenario_shows_hop2_refused_then_repaired() {
    let out = run_bundled("deploy.chainview");
    assert!(out.contains(
        "✗ refused by the broker: 403 scope_violation — \"delegated scope exceeds delegator scope\""
    ));
    assert!(out.contains("write:deploy:web-service — no grant has this action"));
    assert!(out.contains("19 expectations: 19 held, 0 failed"));
}

#[test]
fn depth_limit_scenario() {
    let out = run_bundled("depth-limit.chainview");
    assert!(out.contains("403 scope_violation — \"delegation depth limit exceeded\""));
}

#[test]
fn escalation_scenario() {
    let out = run_bundled("escalation.chainview");
    assert!(out.contains("404 not_found — \"delegate agent not found\""));
    assert_eq!(out.matches("✗ refused by the broker: 403").count(), 5);
}

#[test]
fn revocation_scenario() {
    let out = run_bundled("revocation.chainview");
    assert!(out.contains("after the revocation, the broker says:"));
    assert!(!out.contains("differs from the broker rule"), "{out}");
}

#[test]
fn lifecycle_scenario() {
    let out = run_bundled("lifecycle.chainview");
    assert!(out.contains("401 unauthorized — \"token verification failed\""));
}

#[test]
fn deploy_transcript_text_golden() {
    let out = run_bundled("deploy.chainview");
    insta::with_settings!({ filters => common::transcript_filters() }, {
        insta::assert_snapshot!("deploy_text", out);
    });
}

#[test]
fn deploy_transcript_json_golden() {
    let o = chainview(
        &["--script", &script("deploy.chainview"), "--format", "json"],
        None,
        &[],
    );
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    // Every line is one JSON object with the documented fields.
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        if v["kind"] != "summary" {
            for key in [
                "step",
                "line",
                "kind",
                "source",
                "result",
                "broker",
                "tokens",
                "chain",
                "expectation",
                "calls",
            ] {
                assert!(v.get(key).is_some(), "missing {key} in {line}");
            }
        }
    }
    insta::with_settings!({ filters => common::transcript_filters() }, {
        insta::assert_snapshot!("deploy_json", out);
    });
}

#[test]
fn script_from_standard_input() {
    let text =
        "app ceiling=read:data:*\nagent a scope=read:data:*\nexpect a valid scope=read:data:*\n";
    let o = chainview(&["--script", "-"], Some(text), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("chainview · -"));
}

/// Malformed scripts, each with its exact message on standard error and exit 2.
#[test]
fn malformed_scripts_give_exact_errors() {
    let cases: &[(&str, &str)] = &[
        (
            "agent analyst scope=read:data:*\nvalidate analist\n",
            "-:2:10: unknown token 'analist' — did you mean 'analyst'?",
        ),
        (
            "delegat a -> b scope=a:b:c as=x\n",
            "-:1:1: unknown step 'delegat' — did you mean 'delegate'?",
        ),
        (
            "validate hop1\n",
            "-:1:10: unknown token 'hop1' — no token is defined before line 1",
        ),
        (
            "agent a scope=read:data:x,read:data\n",
            "-:1:27: malformed scope 'read:data': expected action:resource:identifier (found only one colon)",
        ),
        (
            "agent a scope=read:data:* ttl=0\n",
            "-:1:31: ttl must be a positive whole number of seconds, got '0'",
        ),
        (
            "agent a scope=read:data:* ttl=ten\n",
            "-:1:31: ttl must be a positive whole number of seconds, got 'ten'",
        ),
        (
            "agent a scope=read:data:*\nagent a scope=read:data:*\n",
            "-:2:7: duplicate label 'a' (first defined on line 1)",
        ),
        (
            "agent a scope=read:data:*\nagent b scope=read:data:*\ndelegate a -> b scope=read:data:x as=a\n",
            "-:3:38: duplicate label 'a' (first defined on line 1)",
        ),
        (
            "agent a scope=read:data:*\ndelegate a -> b scope=read:data:x as=h\n",
            "-:2:15: unknown agent 'b' (known: a)",
        ),
        (
            "agent a scope=read:data:*\nagent b scope=read:data:*\ndelegate a b scope=read:data:x as=h\n",
            "-:3:12: expected '->', found 'b'",
        ),
        (
            "agent a scope=read:data:*\nagent b scope=read:data:*\ndelegate a -> b scope=read:data:x\n",
            "-:3:1: delegate needs as=LABEL to name the delegated token",
        ),
        (
            "say hello\n",
            "-:1:5: expected a quoted text after 'say', like say \"…\"",
        ),
        (
            "agent a scope=read:data:*\nexpect a vaild\n",
            "-:2:10: unknown expectation 'vaild' (expected valid, invalid, released, revoked, expired, denied, or scope=/depth=/chain=/ttl=) — did you mean 'valid'?",
        ),
        (
            "agent a scope=read:data:*\nrevoke agnt a\n",
            "-:2:8: unknown revocation level 'agnt' (expected token, agent, task or chain) — did you mean 'agent'?",
        ),
        (
            "probe read::x\n",
            "-:1:7: malformed scope 'read::x': the resource part is empty",
        ),
        (
            "wait forever\n",
            "-:1:6: bad duration 'forever': expected a number with ms, s or m, like 2s",
        ),
    ];
    for (text, want) in cases {
        let o = chainview(&["--script", "-"], Some(text), &[]);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert_eq!(stderr(&o).trim_end(), *want, "for script:\n{text}");
        assert!(stdout(&o).is_empty(), "nothing runs for a malformed script");
    }
}

#[test]
fn exit_code_1_when_an_expectation_fails() {
    let text = "agent a scope=read:data:*\nexpect permits a write:data:x\nexpect a valid\n";
    let o = chainview(&["--script", "-"], Some(text), &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("✗ a denies write:data:x: no grant has this action (closest: read:data:*)"),
        "{out}"
    );
    assert!(out.contains("2 expectations: 1 held, 1 failed"), "{out}");
}

#[test]
fn exit_code_2_for_a_bad_command_line_or_missing_file() {
    let o = chainview(&["--script", "x.chainview", "--format", "xml"], None, &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = chainview(&["--script", "/nonexistent/x.chainview"], None, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("chainview: cannot read script /nonexistent/x.chainview:"));
}

#[test]
fn exit_code_3_when_the_broker_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let o = chainview(
        &["--script", &script("deploy.chainview"), "--broker", &url],
        None,
        &[
            ("AGENTWRIT_CLIENT_ID", "x"),
            ("AGENTWRIT_CLIENT_SECRET", "y"),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(
        err.contains("cannot reach the broker") && err.contains(&url),
        "{err}"
    );
}

#[test]
fn exit_code_3_when_revocation_lacks_the_admin_secret_on_an_external_broker() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt
        .block_on(EmbeddedBroker::start(Config::default()))
        .unwrap();
    let app = broker
        .register_app("ext", &["read:data:*".to_string()])
        .unwrap();
    let o = chainview(
        &[
            "--script",
            &script("revocation.chainview"),
            "--broker",
            &broker.url(),
        ],
        None,
        &[
            ("AGENTWRIT_CLIENT_ID", &app.client_id),
            (
                "AGENTWRIT_CLIENT_SECRET",
                app.client_secret.as_deref().unwrap(),
            ),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains(
            "needs the broker's admin secret: set AGENTWRIT_ADMIN_SECRET. Nothing was run."
        )
    );
    assert!(stdout(&o).is_empty());
    // With the secret, the same scenario runs against the external broker.
    let o = chainview(
        &[
            "--script",
            &script("revocation.chainview"),
            "--broker",
            &broker.url(),
        ],
        None,
        &[
            ("AGENTWRIT_CLIENT_ID", &app.client_id),
            (
                "AGENTWRIT_CLIENT_SECRET",
                app.client_secret.as_deref().unwrap(),
            ),
            ("AGENTWRIT_ADMIN_SECRET", broker.admin_secret()),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    rt.block_on(broker.shutdown());
}

#[test]
fn transcripts_never_contain_a_whole_token() {
    for name in [
        "deploy.chainview",
        "lifecycle.chainview",
        "revocation.chainview",
    ] {
        for format in ["text", "json"] {
            let o = chainview(&["--script", &script(name), "--format", format], None, &[]);
            let out = stdout(&o);
            // A whole compact JWT has two dots between base64url runs.
            let re =
                regex_lite::Regex::new(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.").unwrap();
            assert!(!re.is_match(&out), "{name} {format} leaks a token");
        }
    }
}

#[test]
fn shell_completions_and_version() {
    for shell in ["bash", "zsh", "fish"] {
        let o = chainview(&["completions", shell], None, &[]);
        assert_eq!(o.status.code(), Some(0));
        assert!(stdout(&o).contains("--script"), "{shell}");
    }
    let o = chainview(&["completions", "nosh"], None, &[]);
    assert_eq!(o.status.code(), Some(2));
    // --help names every flag and environment variable, and the action keys.
    let help = stdout(&chainview(&["--help"], None, &[]));
    for want in [
        "--script",
        "--format",
        "--frames",
        "--reveal-secrets",
        "--broker",
        "--timeout",
        "--revalidate",
        "AGENTWRIT_BROKER_URL",
        "AGENTWRIT_CLIENT_ID",
        "AGENTWRIT_CLIENT_SECRET",
        "AGENTWRIT_ADMIN_SECRET",
        "CHAINVIEW_REVALIDATE",
        "CHAINVIEW_TOKEN_<LABEL>",
        "CHAINVIEW_LOG",
        "CHAINVIEW_LOG_FILE",
        "CHAINVIEW_CONTEXT",
        "CHAINVIEW_CONFIG",
        "--context",
        "--config",
        "NO_COLOR",
    ] {
        assert!(help.contains(want), "--help lacks {want}");
    }
    // Every key of the explorer, from the one keymap the key bar and help also render.
    for b in chainview::view::keymap::KEYMAP {
        if b.modes == [chainview::view::keymap::Mode::Normal]
            && b.focus.is_none()
            && !b.label.is_empty()
        {
            let want = format!("{} {}", b.label, b.what);
            assert!(help.contains(&want), "--help lacks the key {want}");
        }
    }
    // The version names the commit it was built from (build.rs), or says it
    // is unknown outside a git checkout.
    let o = chainview(&["--version"], None, &[]);
    let head = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let commit = match head {
        Some(h) => format!("commit {h}"),
        None => "commit unknown".to_string(),
    };
    assert_eq!(
        stdout(&o).trim(),
        format!("chainview {} ({commit})", env!("CARGO_PKG_VERSION"))
    );
}

/// `chainview man`: a roff manual page made from the clap definitions, so
/// it names what --help names (the options, the subcommands, the version).
#[test]
fn man_prints_a_manual_page_from_the_command_definitions() {
    let o = chainview(&["man"], None, &[]);
    assert_eq!(o.status.code(), Some(0));
    let page = stdout(&o);
    assert!(page.contains(".TH chainview 1"), "{page}");
    assert!(
        page.contains(&format!("chainview {} (commit", env!("CARGO_PKG_VERSION"))),
        "{page}"
    );
    assert!(page.contains(".SH NAME"), "{page}");
    assert!(
        page.contains("chainview \\- Terminal explorer for AgentWrit delegation chains"),
        "{page}"
    );
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for want in [
        "\\-\\-script",
        "\\-\\-context",
        "chainview\\-observe",
        "chainview\\-man",
        "AGENTWRIT_ADMIN_SECRET",
    ] {
        assert!(page.contains(want), "the page lacks {want}:\n{page}");
    }
    // The pages it refers to, chainview-observe(1) and the others, too.
    let o = chainview(&["man", "observe"], None, &[]);
    assert_eq!(o.status.code(), Some(0));
    let page = stdout(&o);
    assert!(page.contains(".TH chainview-observe 1"), "{page}");
    assert!(page.contains("\\fBchainview observe\\fR"), "{page}");
    assert!(page.contains("\\-\\-from"), "{page}");
    let o = chainview(&["man", "nope"], None, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no subcommand 'nope'; the pages are: demo,")
    );
}

#[test]
fn audit_scenario_counts_events_and_checks_the_hash_chain() {
    let out = run_bundled("audit.chainview");
    assert!(out.contains("audit: 4 of "), "{out}");
    assert!(
        out.contains("delegation_attenuation_violation denied   analyst"),
        "{out}"
    );
    assert!(out.contains(
        "✓ 1 matching delegation_attenuation_violation event of 11 (want count=1); hash chain consistent over 11 events from the broker's first (evt-000001) — an unkeyed hash chain proves consistency, not authenticity"
    ), "{out}");
    assert!(out.contains("6 expectations: 6 held, 0 failed"), "{out}");
    // A count that does not hold fails the run (exit 1) and says what was found.
    let o = chainview(
        &["--script", "-"],
        Some(&format!(
            "{}expect audit token_revoked agent=orchestrator count>=1\n",
            std::fs::read_to_string(script("audit.chainview")).unwrap()
        )),
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains(
        "✗ 0 matching token_revoked events of 12 (want count>=1); hash chain consistent over 12 events from the broker's first (evt-000001) — an unkeyed hash chain proves consistency, not authenticity"
    ), "{}", stdout(&o));
}

/// `import` reads a token from elsewhere (here: issued by another client of
/// an external broker), validates it, and later steps can delegate from it.
#[test]
fn import_step_from_env_then_delegate_onward_on_an_external_broker() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt
        .block_on(EmbeddedBroker::start(Config::default()))
        .unwrap();
    let app = broker
        .register_app("pipeline", &["read:data:*".to_string()])
        .unwrap();
    let secret = app.client_secret.clone().unwrap();
    let client = chainview::broker::BrokerClient::new(&broker.url()).unwrap();
    let token = rt.block_on(async {
        let app_token = client
            .app_auth(&app.client_id, &secret)
            .await
            .unwrap()
            .access_token;
        client
            .create_agent(
                &app_token,
                "pipeline",
                "ingest",
                &["read:data:x".to_string()],
                None,
            )
            .await
            .unwrap()
            .access_token
    });
    let text = "import ext env=CHAINVIEW_TOKEN_EXT\n\
        expect ext valid scope=read:data:x depth=0\n\
        agent helper orch=pipeline task=help scope=read:data:*\n\
        delegate ext -> helper scope=read:data:x ttl=30 as=onward\n\
        expect onward valid depth=1 scope=read:data:x\n\
        import stale token=eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4IiwiZXhwIjoxLCJqdGkiOiJ5In0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
        expect stale invalid\n";
    let env = [
        ("AGENTWRIT_CLIENT_ID", app.client_id.as_str()),
        ("AGENTWRIT_CLIENT_SECRET", secret.as_str()),
        ("CHAINVIEW_TOKEN_EXT", token.as_str()),
    ];
    let o = chainview(
        &["--script", "-", "--broker", &broker.url()],
        Some(text),
        &env,
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(
        out.contains("✓ ext imported: held by spiffe://agentwrit.local/agent/pipeline/ingest/"),
        "{out}"
    );
    assert!(out.contains("the broker says valid"), "{out}");
    assert!(
        out.contains("✓ onward: the broker says valid; depth 1"),
        "{out}"
    );
    assert!(out.contains("✓ stale imported"), "{out}");
    assert!(out.contains("the broker says invalid"), "{out}");
    assert!(
        !out.contains(&token),
        "the imported token is never printed whole"
    );
    rt.block_on(broker.shutdown());
}

#[test]
fn import_errors_are_reported_and_the_run_goes_on() {
    let text = "import a token=garbage\n\
        import b token=eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4IiwiZXhwIjoxLCJqdGkiOiJ5In0.AAAA\n\
        import c env=CHAINVIEW_TEST_UNSET_VARIABLE\n\
        import d file=/nonexistent/chainview.jwt\n\
        say \"still running\"\n";
    let o = chainview(&["--script", "-"], Some(text), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    for want in [
        "✗ could not run: import rejected: not an AgentWrit token: not a JWT: expected 3 dot-separated parts, found 1",
        "✗ could not run: import rejected: the token looks truncated: signature must be 64 bytes, found 3",
        "✗ could not run: environment variable CHAINVIEW_TEST_UNSET_VARIABLE is not set",
        "✗ could not run: cannot read /nonexistent/chainview.jwt",
        "» still running",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn malformed_import_and_audit_lines() {
    for (text, want) in [
        (
            "import t\n",
            "-:1:10: import needs one of token=JWT, env=VARIABLE or file=PATH",
        ),
        (
            "import t env=A file=B\n",
            "-:1:16: import takes exactly one of token=, env= or file=",
        ),
        (
            "import t tokn=x\n",
            "-:1:10: unknown option 'tokn=' — did you mean 'token='?",
        ),
        (
            "audit typ=x\n",
            "-:1:7: unknown option 'typ=' — did you mean 'type='?",
        ),
        (
            "expect audit token_revoked\n",
            "-:1:28: expect audit needs a count, like count>=1",
        ),
        (
            "expect audit token_revoked count>1\n",
            "-:1:28: bad count 'count>1': write count>=N, count=N or count<=N",
        ),
        (
            "expect audti x count=1\n",
            "-:1:8: unknown expectation 'audti' — did you mean 'audit'?",
        ),
        ("audit agent=nobody\n", "-:1:13: unknown agent 'nobody'"),
    ] {
        let o = chainview(&["--script", "-"], Some(text), &[]);
        assert_eq!(o.status.code(), Some(2), "{text}");
        assert!(stderr(&o).contains(want), "{text}: {}", stderr(&o));
    }
}

/// Issue 12: a refused renewal leaves the label on the token it tried to
/// replace (it used to take the label over: "never issued: refused").
#[test]
fn a_refused_renewal_keeps_the_label_on_the_original() {
    let text = "app ceiling=read:data:*\nagent a scope=read:data:*\nrelease a\nrenew a\nexpect a released\nexpect a invalid\n";
    let o = chainview(&["--script", "-"], Some(text), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
    assert!(!out.contains("(before renewal)"), "{out}");
    assert!(!out.contains("never issued"), "{out}");
}

/// Issue 12: the first cause wins — a token that expired before a
/// revocation is reported expired, not revoked.
#[test]
fn a_token_expired_before_a_revocation_stays_expired() {
    let text = "app ceiling=read:data:*\nagent a scope=read:data:*\nagent b scope=read:data:*\ndelegate a -> b scope=read:data:x ttl=1 as=short\nwait 2s\nrevoke chain a\nexpect short expired\n";
    let o = chainview(&["--script", "-"], Some(text), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}{}", stderr(&o));
}

/// Issue 12: a refused hop has the depth it was asked at (hop 2 of the deploy
/// scenario is a depth-2 request), not 0.
#[test]
fn a_refused_hop_has_its_depth() {
    let o = chainview(
        &["--script", &script("deploy.chainview"), "--format", "json"],
        None,
        &[],
    );
    let hop2 = stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|v| v["tokens"].as_array().cloned().unwrap_or_default())
        .find(|t| t["label"] == "hop2")
        .expect("hop2 reported");
    assert_eq!(hop2["depth"], 2, "{hop2}");
}

/// Issue 12: with `--format json`, a broker unreachable at start is also
/// reported on stdout as the closing summary line.
#[test]
fn json_consumers_learn_why_the_broker_was_unreachable() {
    let o = chainview(
        &[
            "--script",
            &script("deploy.chainview"),
            "--format",
            "json",
            "--broker",
            "http://127.0.0.1:9",
        ],
        None,
        &[
            ("AGENTWRIT_CLIENT_ID", "id"),
            ("AGENTWRIT_CLIENT_SECRET", "secret"),
        ],
    );
    assert_eq!(o.status.code(), Some(3));
    let out = stdout(&o);
    let last: serde_json::Value =
        serde_json::from_str(out.lines().last().expect("a line")).unwrap();
    assert_eq!(last["kind"], "summary");
    assert_eq!(last["exit_code"], 3);
    assert!(
        last["unreachable"]
            .as_str()
            .is_some_and(|w| w.contains("127.0.0.1:9")),
        "{last}"
    );
}

/// Issue 12: sizes and timeouts that cannot work are refused up front, with
/// words that say why.
#[test]
fn frames_below_80x24_and_a_zero_timeout_are_refused_up_front() {
    let o = chainview(
        &["--script", &script("deploy.chainview"), "--frames", "60x20"],
        None,
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("at least 80x24"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let o = chainview(
        &["--script", &script("deploy.chainview"), "--timeout", "0"],
        None,
        &[],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("a timeout of 0 would fail every call"),
        "{}",
        stderr(&o)
    );
}

/// Issue 12: a failed expectation says what was found and what was expected.
#[test]
fn a_failed_expectation_shows_both_values() {
    let text = "app ceiling=read:data:*\nagent a scope=read:data:*\nexpect a invalid\nexpect a valid scope=read:data:x\n";
    let o = chainview(&["--script", "-"], Some(text), &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("the broker says valid; expected a invalid"),
        "{out}"
    );
    assert!(out.contains("expected a valid scope=read:data:x"), "{out}");
}

/// Issue 12: a revocation that kills nothing says so, and for a chain
/// revocation says why a mid-chain agent matches nothing.
#[test]
fn a_revocation_that_matches_nothing_says_so() {
    let text = "app ceiling=read:data:*\nagent a scope=read:data:*\nagent b scope=read:data:*\nagent c scope=read:data:*\ndelegate a -> b scope=read:data:x as=h1\ndelegate h1 -> c scope=read:data:x as=h2\nrevoke chain b\nexpect h2 valid\nrevoke chain a\nexpect h2 revoked\n";
    let o = chainview(&["--script", "-"], Some(text), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert_eq!(out.matches("nothing died").count(), 1, "{out}");
    assert!(
        out.contains("names the root delegator of the chain"),
        "{out}"
    );
}

/// Issue 12: `broker --help` and `completions --help` do not list connection
/// options that do nothing there; `demo --help` does, and they work there.
#[test]
fn connection_options_appear_only_where_they_work() {
    for sub in ["broker", "completions"] {
        let o = chainview(&[sub, "--help"], None, &[]);
        let help = stdout(&o);
        for flag in ["--broker", "--timeout", "--revalidate"] {
            assert!(!help.contains(flag), "{sub} --help lists {flag}:\n{help}");
        }
    }
    let help = stdout(&chainview(&["demo", "--help"], None, &[]));
    for flag in ["--broker", "--timeout", "--revalidate"] {
        assert!(help.contains(flag), "demo --help lacks {flag}");
    }
}

/// Issue 12: an admin secret that does not match the broker (e.g. after it
/// restarted with another) is named as the cause on every step that needs
/// it, instead of "unreachable" and steps skipped without a reason.
#[test]
fn a_wrong_admin_secret_is_named_on_the_step() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt.block_on(async {
        chainview::broker::embedded::EmbeddedBroker::start(
            chainview::broker::embedded::Config::with_admin_secret("the-real-admin-secret"),
        )
        .await
        .unwrap()
    });
    let app = broker
        .register_app("wrong-secret", &["read:data:*".to_string()])
        .unwrap();
    let text = "app ceiling=read:data:*\nagent a scope=read:data:*\naudit\nrevoke agent a\n";
    let o = chainview(
        &["--script", "-", "--broker", &broker.url()],
        Some(text),
        &[
            ("AGENTWRIT_CLIENT_ID", &app.client_id),
            (
                "AGENTWRIT_CLIENT_SECRET",
                app.client_secret.as_deref().unwrap(),
            ),
            ("AGENTWRIT_ADMIN_SECRET", "not-the-admin-secret"),
        ],
    );
    let out = stdout(&o);
    assert!(
        out.matches("admin login refused (401 unauthorized): AGENTWRIT_ADMIN_SECRET does not match this broker").count() >= 2,
        "{out}{}",
        stderr(&o)
    );
    assert!(!out.contains("unreachable"), "{out}");
    rt.block_on(broker.shutdown());
}

/// Issue 12: "1 step", not "1 steps".
#[test]
fn counts_agree_with_their_nouns() {
    let o = chainview(&["--script", "-"], Some("say \"one\"\n"), &[]);
    let one = stdout(&o);
    assert!(
        one.contains("── 1 step (") && one.contains("0 expectations:"),
        "{one}"
    );
}

/// Issue 12: the tree shows narrowing, not only dropping: hop1-fixed narrows
/// three grants of the orchestrator's.
#[test]
fn the_tree_shows_what_a_hop_narrowed() {
    let o = chainview(
        &[
            "--script",
            &script("deploy.chainview"),
            "--frames",
            "200x60",
        ],
        None,
        &[],
    );
    let out = stdout(&o);
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("(hop1-fixed)"))
        .expect("hop1-fixed drawn");
    for m in [
        "~read:config:*→production",
        "~read:deploy:*→web-service",
        "~write:deploy:*→web-service",
    ] {
        assert!(line.contains(m), "{m} missing: {line}");
    }
}

/// Issue 12 item 20: after a renewal the agents pane shows what the agent
/// holds now (the valid renewed token), not the renewed-away original.
#[test]
fn the_agents_pane_follows_a_renewal() {
    let o = chainview(
        &["--script", "-", "--frames", "120x40"],
        Some("agent reader scope=read:data:*\nrenew reader\n"),
        &[],
    );
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    let last = out.rsplit("── frame after step").next().unwrap();
    let row = last
        .lines()
        .find(|l| l.contains("reader") && l.starts_with('│'))
        .expect("the agent's row");
    assert!(row.contains("✓ reader valid"), "{row}");
    assert!(!row.contains("renewed"), "{row}");
}

/// Issue 12 item 7: narration is wrapped whole, not cut mid-sentence (step
/// 13 at 120x40).
#[test]
fn narration_is_shown_whole() {
    let o = chainview(
        &[
            "--script",
            &script("deploy.chainview"),
            "--frames",
            "120x40",
        ],
        None,
        &[],
    );
    let out = stdout(&o);
    let frame = frame_after(&out, 13);
    assert!(
        frame.contains("(\"Success! Chain depth: 2\") is wrong."),
        "{frame}"
    );
}

/// Issue 12 item 6 (and its "done when"): at 120x40 the hop-2 screen shows
/// every scope, the refusal's code and detail, and `? help`, uncut — the tree
/// keeps the width it has at 100 columns; anything cut ends with "…".
#[test]
fn hop2_at_120x40_is_shown_uncut() {
    let o = chainview(
        &[
            "--script",
            &script("deploy.chainview"),
            "--frames",
            "120x40",
        ],
        None,
        &[],
    );
    let out = stdout(&o);
    let frame = frame_after(&out, 12);
    for want in [
        "read:config:*,read:deploy:*,write:deploy:*",
        "read:config:production,read:deploy:web-service",
        "✗ deployer (hop2) REFUSED 403 scope_violation",
        "delegated scope exceeds delegator scope",
        "? help q quit",
    ] {
        assert!(frame.contains(want), "{want} missing:\n{frame}");
    }
    // The tree's rows end inside the pane, with … where cut.
    for l in frame.lines().filter(|l| l.contains('┃')) {
        let inner: String = l.split('┃').nth(1).unwrap_or("").to_string();
        let trimmed = inner.trim_end();
        if trimmed.chars().count() + 1 >= inner.chars().count() && !trimmed.is_empty() {
            assert!(trimmed.ends_with('…'), "cut without …: {l}");
        }
    }
}

/// Issue 12 item 13: on an external broker whose app ceiling does not cover
/// the scenario's, the `app` step says so (with the admin secret it reads
/// the real ceiling; without, it says it could not).
#[test]
fn an_app_ceiling_that_does_not_cover_the_scenario_is_warned_about() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let broker = rt
        .block_on(EmbeddedBroker::start(Config::default()))
        .unwrap();
    let app = broker
        .register_app("narrow", &["read:data:*".to_string()])
        .unwrap();
    let secret = app.client_secret.clone().unwrap();
    let run = |admin: Option<&str>| {
        let mut env = vec![
            ("AGENTWRIT_CLIENT_ID", app.client_id.as_str()),
            ("AGENTWRIT_CLIENT_SECRET", secret.as_str()),
        ];
        if let Some(a) = admin {
            env.push(("AGENTWRIT_ADMIN_SECRET", a));
        }
        let o = chainview(
            &[
                "--script",
                &script("deploy.chainview"),
                "--broker",
                &broker.url(),
            ],
            None,
            &env,
        );
        stdout(&o)
    };
    let out = run(Some(broker.admin_secret()));
    let app_step = out
        .split("\n[2] ")
        .nth(1)
        .and_then(|s| s.split("\n[3] ").next())
        .expect("the app step");
    assert!(
        app_step.contains(
            "⚠ the app's ceiling is read:data:*: it does not cover read:config:*,read:deploy:*,write:deploy:*"
        ),
        "{app_step}"
    );
    let out = run(None);
    assert!(
        out.contains(
            "⚠ the app's real ceiling could not be read (that needs AGENTWRIT_ADMIN_SECRET)"
        ),
        "{out}"
    );
}
