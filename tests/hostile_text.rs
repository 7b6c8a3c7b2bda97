//! Hostile text never reaches the terminal live, on every text output path:
//! the text transcript (title, say, probe, imported claims, the audit step,
//! a broker's problem detail), `--frames` headers, JSON lines, stderr.
//! Also: whole tokens in echoed script lines, and oversized scripts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chainview::broker::BrokerClient;
use chainview::broker::embedded::{Config, EmbeddedBroker};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_chainview"));
    c.env_remove("AGENTWRIT_BROKER_URL")
        .env_remove("AGENTWRIT_CLIENT_ID")
        .env_remove("AGENTWRIT_CLIENT_SECRET")
        .env_remove("AGENTWRIT_ADMIN_SECRET")
        .stdin(Stdio::null());
    c
}

fn script(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new()
        .suffix(".chainview")
        .tempfile()
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

/// No ESC, BEL or C1 control (nor any other control but \n and \t).
fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let live: Vec<char> = text
        .chars()
        .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
        .collect();
    assert!(
        live.is_empty(),
        "{what}: live controls {live:?} in:\n{text}"
    );
}

/// An unsigned token whose claims carry escape sequences.
fn hostile_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(
        r#"{"iss":"","sub":"spiffe://x/\u001b]0;PWNED\u0007","aud":[],"exp":4102444800,"nbf":1,"iat":1,"jti":"j\u009b2J","scope":["read:data:\u001b[2J"],"task_id":"t","orch_id":"o"}"#,
    );
    format!("{header}.{claims}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]))
}

const EVIL: &str = "title \"x\u{1b}]0;PWNED\u{7}\"\nsay \"hi \u{9b}31m there \u{1b}[2J\"\nprobe read:data:\u{1b}[31m\n";

fn run(args: &[&str], file: &tempfile::NamedTempFile) -> Output {
    bin()
        .arg("--script")
        .arg(file.path())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn script_text_is_shown_not_executed() {
    let f = script(EVIL);
    let text = run(&[], &f);
    assert_clean("text transcript", &text.stdout);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("x\\e]0;PWNED\\a"), "{out}");
    assert!(out.contains("\\u{9b}31m"), "{out}");
    let frames = run(&["--frames", "80x24"], &f);
    assert_clean("frames", &frames.stdout);
    let json = run(&["--format", "json"], &f);
    assert_clean("json", &json.stdout);
    for line in String::from_utf8_lossy(&json.stdout).lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("JSON lines stay JSON");
    }
}

#[test]
fn parse_errors_on_stderr_are_shown_not_executed() {
    let f = script("validate bad\u{1b}]0;PWNED\u{7}label\n");
    let out = run(&[], &f);
    assert_eq!(out.status.code(), Some(2));
    assert_clean("stderr", &out.stderr);
    assert!(String::from_utf8_lossy(&out.stderr).contains("\\e]0;PWNED\\a"));
}

#[test]
fn imported_tokens_are_redacted_and_their_claims_shown_safely() {
    let tok = hostile_token();
    let f = script(&format!("import x token={tok}\n"));
    for args in [
        &[][..],
        &["--format", "json"][..],
        &["--frames", "100x30"][..],
    ] {
        let out = run(args, &f);
        assert_clean(&format!("import {args:?}"), &out.stdout);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            !stdout.contains(&tok),
            "{args:?}: whole token echoed:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("token={}…", &tok[..12])),
            "{args:?}:\n{stdout}"
        );
    }
    let out = run(&["--reveal-secrets"], &f);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&tok),
        "asked to reveal"
    );
}

#[test]
fn oversized_scripts_are_refused_with_exit_2() {
    let out = bin().args(["--script", "/dev/zero"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("larger than 4 MiB"));
    let long = format!("say \"{}\"\n", "a".repeat((1 << 20) + 2048));
    let f = script(&long);
    let out = run(&[], &f);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":1:1: line is") && err.contains("at most"),
        "{err}"
    );
}

/// A client_id any unauthenticated client can plant in the broker's audit
/// trail, printed by the `audit` step.
#[test]
fn planted_audit_details_are_shown_not_executed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let secret = "hostile-text-admin-secret";
    let (broker, id, app_secret) = rt.block_on(async {
        let broker = EmbeddedBroker::start(Config::with_admin_secret(secret))
            .await
            .unwrap();
        let app = broker
            .register_app("hostile", &["read:data:*".to_string()])
            .unwrap();
        let client = BrokerClient::new(&broker.url()).unwrap();
        let _ = client
            .app_auth("evil\u{1b}]0;PWNED\u{7}\u{9b}2J", "x")
            .await;
        (broker, app.client_id, app.client_secret.unwrap())
    });
    let f = script("audit type=app_auth_failed\n");
    let out = bin()
        .arg("--script")
        .arg(f.path())
        .args(["--broker", &broker.url()])
        .env("AGENTWRIT_CLIENT_ID", &id)
        .env("AGENTWRIT_CLIENT_SECRET", &app_secret)
        .env("AGENTWRIT_ADMIN_SECRET", secret)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("evil\\e]0;PWNED"), "{stdout}");
    assert_clean("audit step", &out.stdout);
    rt.block_on(broker.shutdown());
}

/// A broker answering every request with a problem whose fields carry
/// escape sequences.
#[test]
fn a_hostile_brokers_words_are_shown_not_executed() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let Ok((mut s, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = s.read(&mut buf).await;
                let body = r#"{"type":"urn:agentwrit:error:x","title":"Bad","status":401,"detail":"no \u001b]0;PWNED\u0007 \u009b2J","instance":"/","error_code":"bad\u001b[31m","request_id":"r"}"#;
                let resp = format!(
                    "HTTP/1.1 401 Unauthorized\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    let f = script("app ceiling=read:data:*\nagent a scope=read:data:*\n");
    let out = bin()
        .arg("--script")
        .arg(f.path())
        .args(["--broker", &format!("http://{addr}")])
        .env("AGENTWRIT_CLIENT_ID", "id")
        .env("AGENTWRIT_CLIENT_SECRET", "secret")
        .output()
        .unwrap();
    assert_clean("stdout", &out.stdout);
    assert_clean("stderr", &out.stderr);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        all.contains("\\e]0;PWNED") || all.contains("\\e[31m"),
        "{all}"
    );
}

/// An unsigned token with `hops` delegation records, padded with a filler
/// claim to at least `min_len` bytes.
fn long_chain_token(hops: usize, min_len: usize) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"EdDSA","typ":"JWT"}"#);
    let rec = |i: usize| {
        format!(
            r#"{{"agent":"spiffe://agentwrit.local/agent/o/t/h{i}","scope":["read:data:*"],"delegated_at":"2026-01-01T00:00:00Z","signature":"{}"}}"#,
            "ab".repeat(64)
        )
    };
    let chain: Vec<String> = (0..hops).map(rec).collect();
    let mut claims = format!(
        r#"{{"iss":"","sub":"spiffe://agentwrit.local/agent/o/t/last","aud":[],"exp":4102444800,"nbf":1,"iat":1,"jti":"j{hops}","scope":["read:data:x"],"task_id":"t","orch_id":"o","delegation_chain":[{}],"chain_hash":"00"}}"#,
        chain.join(",")
    );
    let make = |claims: &str| {
        format!(
            "{header}.{}.{}",
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode([7u8; 64])
        )
    };
    let tok = make(&claims);
    if tok.len() >= min_len {
        return tok;
    }
    // A filler claim, grown until the token is min_len to min_len + 3 bytes.
    let mut pad = ((min_len - tok.len()) * 3 / 4).saturating_sub(16);
    claims.insert_str(1, r#""pad":"","#);
    loop {
        let padded = claims.replacen(r#""pad":"""#, &format!(r#""pad":"{}""#, "p".repeat(pad)), 1);
        let tok = make(&padded);
        if tok.len() >= min_len {
            return tok;
        }
        pad += 1;
    }
}

#[test]
fn a_forged_chain_of_thousands_of_hops_prints_a_bounded_transcript() {
    let tok = long_chain_token(3000, 0);
    assert!(tok.len() > 500_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.jwt");
    std::fs::write(&path, &tok).unwrap();
    let f = script(&format!("import long file={}\n", path.display()));
    for args in [&[][..], &["--frames", "120x40"][..]] {
        let out = run(args, &f);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.len() < 30_000,
            "{args:?}: {} bytes of transcript",
            stdout.len()
        );
        if args.is_empty() {
            assert!(stdout.contains("forged or foreign"), "{stdout}");
        }
    }
}

#[test]
fn tokens_past_the_brokers_limit_are_refused_and_413_is_not_pending() {
    let dir = tempfile::tempdir().unwrap();
    // Over 1 MiB: refused by chainview before anything is sent.
    let big = dir.path().join("big.jwt");
    std::fs::write(&big, long_chain_token(1, (1 << 20) + 100)).unwrap();
    let f = script(&format!("import big file={}\n", big.display()));
    let out = run(&[], &f);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("larger than any token a broker accepts"),
        "{stdout}"
    );
    // Just under 1 MiB: chainview takes it, the broker answers 413 (the
    // JSON body around it is over its limit): refused, not pending.
    let near = dir.path().join("near.jwt");
    let tok = long_chain_token(1, (1 << 20) - 4);
    assert!(
        tok.len() <= 1 << 20 && tok.len() + 12 > 1 << 20,
        "{}",
        tok.len()
    );
    std::fs::write(&near, tok).unwrap();
    let f = script(&format!("import near file={}\n", near.display()));
    let out = run(&["--format", "json"], &f);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("413"), "{stdout}");
    assert!(!stdout.contains(r#""status":"pending""#), "{stdout}");
}

/// Issue 12: a token held by an agent chainview does not know shows its
/// label first, and the holder in the short `task/inst…` form (it used to
/// show the full SPIFFE id first, hiding the label).
#[test]
fn an_orphan_import_shows_its_label_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orphan.jwt");
    std::fs::write(&path, long_chain_token(1, 0)).unwrap();
    let f = script(&format!("import stray file={}\n", path.display()));
    let out = run(&["--frames", "120x40"], &f);
    let frame = String::from_utf8_lossy(&out.stdout);
    // (`…` only where something was cut: this instance is 4 characters.)
    assert!(frame.contains("stray · t/last "), "{frame}");
    assert!(
        !frame.contains("│· spiffe://"),
        "agents pane shows the full id:\n{frame}"
    );
}
