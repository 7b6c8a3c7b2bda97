//! `chainview broker --data DIR`: what survives a restart (spec §11), what a
//! crash can lose, and clear errors for a data directory that cannot be used.
//! Over real loopback HTTP; brokers restarted in-process on the same DIR, or
//! as the real binary where exit codes and kill -9 matter.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chainview::broker::embedded::{Config, EmbeddedBroker};
use chainview::broker::types::*;
use chainview::broker::{BrokerClient, BrokerError};
use common::{assert_refused, payload, uniq};
use ed25519_dalek::SigningKey;

const SECRET: &str = "persistence-admin-secret";

fn cfg(dir: &Path) -> Config {
    Config {
        data_dir: Some(dir.to_path_buf()),
        ..Config::with_admin_secret(SECRET)
    }
}

async fn start(dir: &Path) -> (EmbeddedBroker, BrokerClient, String) {
    let broker = EmbeddedBroker::start(cfg(dir))
        .await
        .expect("broker starts");
    let client = BrokerClient::new(&broker.url()).expect("url");
    let admin = client.admin_auth(SECRET).await.expect("admin").access_token;
    (broker, client, admin)
}

async fn whole_trail(client: &BrokerClient, admin: &str) -> Vec<AuditEvent> {
    let mut events = Vec::new();
    loop {
        let page = client
            .audit_events(
                admin,
                &AuditQuery {
                    limit: Some(1000),
                    offset: Some(events.len() as i64),
                    ..AuditQuery::default()
                },
            )
            .await
            .expect("audit page");
        let n = page.events.len();
        events.extend(page.events);
        if n == 0 || events.len() as i64 >= page.total {
            return events;
        }
    }
}

fn delegation(to: &str, scope: &str) -> DelegateRequest {
    DelegateRequest {
        delegate_to: to.to_string(),
        scope: vec![scope.to_string()],
        ttl: Some(600),
    }
}

/// Every row of spec §11, across one restart on the same directory.
#[tokio::test]
async fn restart_keeps_exactly_what_the_real_broker_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let scope = vec!["read:data:*".to_string()];

    // ---- before the restart
    let (broker, client, admin) = start(dir.path()).await;
    let key_before = broker.public_key();
    let app = client
        .create_app(
            &admin,
            &CreateAppRequest {
                name: format!("keep-{}", uniq()),
                scopes: scope.clone(),
                token_ttl: None,
            },
        )
        .await
        .unwrap();
    let app_secret = app.client_secret.clone().unwrap();
    let agent = client
        .create_agent(&admin, "orch", "task-kept", &scope, Some(3600))
        .await
        .unwrap();
    let target = client
        .create_agent(&admin, "orch", "task-target", &scope, Some(3600))
        .await
        .unwrap();
    let delegated = client
        .delegate(
            &agent.access_token,
            &delegation(&target.agent_id, "read:data:x"),
        )
        .await
        .unwrap();
    let doomed = client
        .create_agent(&admin, "orch", "task-doomed", &scope, Some(3600))
        .await
        .unwrap();
    client
        .revoke(&admin, RevokeLevel::Task, "task-doomed")
        .await
        .unwrap();
    let released = client
        .create_agent(&admin, "orch", "task-released", &scope, Some(3600))
        .await
        .unwrap();
    client.release(&released.access_token).await.unwrap();
    let unused_launch = client
        .admin_launch_token(
            &admin,
            &LaunchTokenRequest {
                agent_name: "later".into(),
                allowed_scope: scope.clone(),
                max_ttl: None,
                single_use: None,
                ttl: Some(600),
            },
        )
        .await
        .unwrap()
        .launch_token;
    let open_challenge = client.challenge().await.unwrap();
    // Exhaust the app-auth bucket of a wrong secret (3 then 429).
    for _ in 0..3 {
        assert!(client.app_auth(&app.client_id, "wrong").await.is_err());
    }
    assert_refused(
        client.app_auth(&app.client_id, "wrong").await,
        429,
        "rate_limited",
        "rate limit exceeded, try again later",
    );
    let trail_before = whole_trail(&client, &admin).await;
    let health = client.health().await.unwrap();
    assert!(health.db_connected);
    assert_eq!(health.audit_events_count, trail_before.len() as i64);
    broker.shutdown().await;

    // ---- after the restart
    let (broker, client, admin) = start(dir.path()).await;

    // Signing key (PEM file): same key, tokens stay verifiable.
    assert_eq!(broker.public_key(), key_before);
    assert!(client.validate(&agent.access_token).await.unwrap().valid);
    assert!(
        client
            .validate(&delegated.access_token)
            .await
            .unwrap()
            .valid
    );

    // Apps (SQLite): the credentials keep working.
    let tok = client.app_auth(&app.client_id, &app_secret).await;
    let tok = tok.expect("app credentials work after the restart");
    assert_eq!(
        payload(&tok.access_token)["sub"],
        format!("app:{}", app.app_id)
    );
    let apps = client.list_apps(&admin).await.unwrap();
    assert!(apps.apps.iter().any(|a| a.app_id == app.app_id));

    // Revocations (SQLite): still apply, also to tokens issued after.
    assert!(!client.validate(&doomed.access_token).await.unwrap().valid);
    assert!(!client.validate(&released.access_token).await.unwrap().valid);
    let reborn = client
        .create_agent(&admin, "orch", "task-doomed", &scope, Some(3600))
        .await
        .unwrap();
    assert!(
        !client.validate(&reborn.access_token).await.unwrap().valid,
        "a task revoked before the restart kills a token issued after it"
    );

    // Rate-limit buckets (memory): reset.
    assert_refused(
        client.app_auth(&app.client_id, "wrong").await,
        401,
        "unauthorized",
        "Authentication failed",
    );

    // Launch tokens (memory): gone.
    let key = SigningKey::from_bytes(&rand::random());
    let res = client
        .register_with_key(&unused_launch, &key, "orch", "late", &scope)
        .await;
    assert_refused(
        res,
        401,
        "unauthorized",
        "launch token: launch token not found",
    );

    // Nonces (memory): gone.
    let lt = client
        .admin_launch_token(
            &admin,
            &LaunchTokenRequest {
                agent_name: "n".into(),
                allowed_scope: scope.clone(),
                max_ttl: None,
                single_use: None,
                ttl: None,
            },
        )
        .await
        .unwrap()
        .launch_token;
    let req = client
        .registration(&lt, &key, &open_challenge, "orch", "late", &scope)
        .unwrap();
    assert_refused(
        client.register(&req).await,
        401,
        "unauthorized",
        "nonce: nonce not found or expired",
    );

    // Agent records (memory): delegating to an agent registered before → 404.
    let fresh = client
        .create_agent(&admin, "orch", "task-fresh", &scope, Some(3600))
        .await
        .unwrap();
    assert_refused(
        client
            .delegate(
                &fresh.access_token,
                &delegation(&target.agent_id, "read:data:x"),
            )
            .await,
        404,
        "not_found",
        "delegate agent not found",
    );

    // Audit events (SQLite): all there; ids and the hash chain continue.
    let trail = whole_trail(&client, &admin).await;
    assert_eq!(&trail[..trail_before.len()], &trail_before[..]);
    let first_new = &trail[trail_before.len()];
    assert_eq!(first_new.id, format!("evt-{:06}", trail_before.len() + 1));
    assert_eq!(first_new.prev_hash, trail_before.last().unwrap().hash);
    assert_eq!(verify_audit_chain(&trail), Ok(()));
    let health = client.health().await.unwrap();
    assert!(health.db_connected);
    assert_eq!(health.audit_events_count, trail.len() as i64);
    broker.shutdown().await;
}

/// Filters and paging run in SQL and agree with filtering the whole trail,
/// including events still queued for the writer.
#[tokio::test]
async fn audit_queries_filter_and_page_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, client, admin) = start(dir.path()).await;
    let scope = vec!["read:data:*".to_string()];
    for i in 0..5 {
        client
            .create_agent(&admin, "orch", &format!("q-{i}"), &scope, None)
            .await
            .unwrap();
    }
    assert!(broker.flush().await);
    // More after the flush: some of these may still be queued.
    for i in 5..8 {
        client
            .create_agent(&admin, "orch", &format!("q-{i}"), &scope, None)
            .await
            .unwrap();
    }
    let all = whole_trail(&client, &admin).await;
    assert_eq!(verify_audit_chain(&all), Ok(()));
    let want: Vec<&AuditEvent> = all
        .iter()
        .filter(|e| e.event_type == "agent_registered")
        .collect();
    assert_eq!(want.len(), 8);
    for (offset, limit) in [(0, 3), (3, 3), (6, 3), (2, 100), (8, 5)] {
        let page = client
            .audit_events(
                &admin,
                &AuditQuery {
                    event_type: Some("agent_registered".into()),
                    limit: Some(limit),
                    offset: Some(offset),
                    ..AuditQuery::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.total, 8);
        let got: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
        let expect: Vec<&str> = want
            .iter()
            .skip(offset as usize)
            .take(limit as usize)
            .map(|e| e.id.as_str())
            .collect();
        assert_eq!(got, expect, "offset {offset} limit {limit}");
    }
    let task = client
        .audit_events(
            &admin,
            &AuditQuery {
                task_id: Some("q-6".into()),
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(task.total, 2, "agent_registered + token_issued");
    let since = &want[4].timestamp;
    let recent = client
        .audit_events(
            &admin,
            &AuditQuery {
                event_type: Some("agent_registered".into()),
                since: Some(since.clone()),
                ..AuditQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(recent.total, 4);
    broker.shutdown().await;
}

// ---- the real binary: exit codes, messages, kill -9

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chainview")
}

/// Runs `chainview broker --data DIR` expecting it to refuse; returns stderr.
fn refused(dir: &Path) -> String {
    let out = Command::new(bin())
        .args(["broker", "--port", "0", "--data"])
        .arg(dir)
        .env("AGENTWRIT_ADMIN_SECRET", SECRET)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(3), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn unusable_data_directories_are_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();

    // A file where the directory should be.
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = refused(&file);
    assert!(
        err.contains("not-a-dir")
            && err.contains("cannot use this data directory")
            && err.contains("it exists and is not a directory")
            && !err.contains("os error"),
        "{err}"
    );

    // A directory nobody may create (even root cannot create under /proc).
    let err = refused(Path::new("/proc/chainview-no-such/data"));
    assert!(err.contains("/proc/chainview-no-such/data"), "{err}");

    // A corrupt database.
    let corrupt = tmp.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join("broker.db"), vec![0x5a; 8192]).unwrap();
    let err = refused(&corrupt);
    assert!(
        err.contains("broker.db") && err.contains("not a usable SQLite database"),
        "{err}"
    );

    // A key file of the wrong format.
    let badkey = tmp.path().join("badkey");
    std::fs::create_dir(&badkey).unwrap();
    std::fs::write(
        badkey.join("signing.key"),
        "-----BEGIN NONSENSE-----\nabc\n",
    )
    .unwrap();
    let err = refused(&badkey);
    assert!(
        err.contains("signing.key") && err.contains("PKCS#8 PEM"),
        "{err}"
    );

    // A database from a newer chainview.
    let newer = tmp.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    let conn = rusqlite::Connection::open(newer.join("broker.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = refused(&newer);
    assert!(
        err.contains("broker.db") && err.contains("schema version 99 is newer"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn the_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (broker, _, _) = start(dir.path()).await;
        broker.shutdown().await;
    });
    let mode = std::fs::metadata(dir.path().join("signing.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let pem = std::fs::read_to_string(dir.path().join("signing.key")).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"));
}

/// A broker process on DIR; returns it with its URL.
fn spawn_broker(dir: &Path, extra: &[&str]) -> (Child, String, Vec<String>) {
    let mut child = Command::new(bin())
        .args(["broker", "--port", "0", "--data"])
        .arg(dir)
        .args(extra)
        .env("AGENTWRIT_ADMIN_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut url = String::new();
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(u) = line.strip_prefix("export AGENTWRIT_BROKER_URL=") {
            url = u.to_string();
        }
        let done = line.starts_with("# press Ctrl-C");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(!url.is_empty(), "broker printed: {seen:?}");
    (child, url, seen)
}

#[test]
fn existing_apps_are_announced_without_their_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _, out1) = spawn_broker(dir.path(), &["--app", "keepme=read:data:*"]);
    first.kill().unwrap();
    first.wait().unwrap();
    let id_line = |out: &[String]| {
        out.iter()
            .find(|l| l.starts_with("export AGENTWRIT_CLIENT_ID="))
            .cloned()
            .unwrap()
    };
    assert!(
        out1.iter()
            .any(|l| l.starts_with("export AGENTWRIT_CLIENT_SECRET="))
    );
    let (mut second, _, out2) = spawn_broker(dir.path(), &["--app", "keepme=read:data:*"]);
    second.kill().unwrap();
    second.wait().unwrap();
    assert_eq!(id_line(&out1), id_line(&out2), "same app, same client id");
    assert!(
        !out2.iter().any(|l| l.contains("CLIENT_SECRET=")),
        "{out2:?}"
    );
    assert!(
        out2.iter().any(|l| l.contains("only a hash")),
        "says why the secret is not shown: {out2:?}"
    );
}

/// One client thread of the kill -9 trials: delegations, and every tenth
/// round a registration whose token is released, until the broker is gone.
/// Returns the delegations (chain hashes) and releases (jtis) it was
/// answered for.
fn acknowledged_until_killed(url: &str, t: usize) -> (Vec<String>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = BrokerClient::new(url).unwrap();
        let admin = client.admin_auth(SECRET).await.unwrap().access_token;
        let scope = vec!["read:data:*".to_string()];
        let task = format!("load-{t}");
        let from = client
            .create_agent(&admin, "orch", &task, &scope, Some(3600))
            .await
            .unwrap();
        let to = client
            .create_agent(&admin, "orch", &format!("{task}-to"), &scope, Some(3600))
            .await
            .unwrap();
        let (mut delegated, mut released) = (Vec::new(), Vec::new());
        for round in 0.. {
            if round % 10 == 9 {
                let Ok(a) = client
                    .create_agent(&admin, "orch", &task, &scope, Some(3600))
                    .await
                else {
                    break;
                };
                if client.release(&a.access_token).await.is_err() {
                    break;
                }
                released.push(
                    payload(&a.access_token)["jti"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
                continue;
            }
            let Ok(d) = client
                .delegate(&from.access_token, &delegation(&to.agent_id, "read:data:x"))
                .await
            else {
                break;
            };
            delegated.push(
                payload(&d.access_token)["chain_hash"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        (delegated, released)
    })
}

/// Answered means written: kill -9 in the middle of a load from 4 client
/// threads, five times on one directory; after each restart every
/// delegation and release the broker answered is in the trail, and the chain
/// verifies end to end.
#[test]
fn kill_9_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut report = Vec::new();
    for trial in 0..5 {
        let (mut child, url, _) = spawn_broker(dir.path(), &[]);
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let url = url.clone();
                std::thread::spawn(move || acknowledged_until_killed(&url, t))
            })
            .collect();
        // Kill once the load is well under way: the trail has grown by a
        // few hundred events since the start (waiting on a condition, not a
        // fixed time).
        rt.block_on(async {
            let client = BrokerClient::new(&url).unwrap();
            let start = client.health().await.unwrap().audit_events_count;
            loop {
                let now = client.health().await.unwrap().audit_events_count;
                if now > start + 400 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        // SIGKILL: no shutdown, no final flush.
        child.kill().unwrap();
        child.wait().unwrap();
        let (mut delegated, mut released) = (Vec::new(), Vec::new());
        for t in threads {
            let (d, r) = t.join().unwrap();
            delegated.extend(d);
            released.extend(r);
        }

        let (mut child, url, _) = spawn_broker(dir.path(), &[]);
        let trail = rt.block_on(async {
            let client = BrokerClient::new(&url).unwrap();
            let admin = client.admin_auth(SECRET).await.unwrap().access_token;
            whole_trail(&client, &admin).await
        });
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(
            verify_audit_chain(&trail),
            Ok(()),
            "trial {trial}: chain verifies after kill -9"
        );
        let kept: std::collections::HashSet<&str> = trail
            .iter()
            .filter(|e| e.event_type == "delegation_created")
            .map(|e| e.deleg_chain_hash.as_str())
            .collect();
        let released_kept: std::collections::HashSet<String> = trail
            .iter()
            .filter(|e| e.event_type == "token_released")
            .filter_map(|e| e.detail.strip_prefix("token released | jti="))
            .map(str::to_string)
            .collect();
        let lost = delegated
            .iter()
            .filter(|h| !kept.contains(h.as_str()))
            .count();
        let lost_releases = released
            .iter()
            .filter(|j| !released_kept.contains(*j))
            .count();
        assert!(
            delegated.len() > 50,
            "trial {trial}: only {} delegations",
            delegated.len()
        );
        assert!(!released.is_empty(), "trial {trial}: no release answered");
        assert_eq!(
            (lost, lost_releases),
            (0, 0),
            "trial {trial}: acknowledged events lost: {lost} of {} delegations, {lost_releases} of {} releases",
            delegated.len(),
            released.len()
        );
        report.push(format!("{}+{}", delegated.len(), released.len()));
    }
    eprintln!(
        "kill -9, 5 trials, 4 client threads: acknowledged delegations+releases per trial {}; 0 lost",
        report.join(", ")
    );
}

/// A broker whose standard output went away (the reader quit) keeps serving
/// and stops cleanly: printing into a closed pipe is not a reason to die.
#[cfg(unix)]
#[test]
fn a_closed_stdout_does_not_stop_the_broker() {
    let mut child = Command::new(bin())
        .args(["broker", "--port", "0"])
        .env("AGENTWRIT_ADMIN_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(u) = line.strip_prefix("export AGENTWRIT_BROKER_URL=") {
            break u.to_string();
        }
    };
    drop(lines);
    std::thread::sleep(Duration::from_millis(300));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let health = rt.block_on(async { BrokerClient::new(&url).unwrap().health().await });
    assert!(health.is_ok(), "{health:?}");
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two brokers on one data directory would interleave their audit ids: the
/// second is refused (exit 3, the directory named) while the first runs.
#[test]
fn a_data_directory_serves_one_broker_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, _, _) = spawn_broker(dir.path(), &[]);
    let err = refused(dir.path());
    assert!(err.contains("in use by another chainview broker"), "{err}");
    first.kill().unwrap();
    first.wait().unwrap();
    // Once it is gone (even killed), the directory is free again.
    let (mut again, _, _) = spawn_broker(dir.path(), &[]);
    again.kill().unwrap();
    again.wait().unwrap();
}

/// A directory with some history: an admin login, an app, a revocation.
fn populated(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (broker, client, admin) = start(dir).await;
        client
            .create_app(
                &admin,
                &CreateAppRequest {
                    name: "kept".into(),
                    scopes: vec!["read:data:*".into()],
                    token_ttl: None,
                },
            )
            .await
            .unwrap();
        client
            .revoke(&admin, RevokeLevel::Task, "gone")
            .await
            .unwrap();
        assert_eq!(broker.shutdown().await, 0);
    });
}

/// A damaged directory is refused with what is missing named (exit 3),
/// never a silent fresh start; `--reset` starts over on purpose.
#[test]
fn damaged_data_directories_are_refused_and_reset_starts_over() {
    let tmp = tempfile::tempdir().unwrap();
    let fresh = |name: &str| {
        let d = tmp.path().join(name);
        populated(&d);
        d
    };
    let sql = |d: &Path, q: &str| {
        let c = rusqlite::Connection::open(d.join("broker.db")).unwrap();
        c.execute_batch(q).unwrap();
    };

    // signing.key without broker.db.
    let d = fresh("no-db");
    for f in ["broker.db", "broker.db-wal", "broker.db-shm"] {
        let _ = std::fs::remove_file(d.join(f));
    }
    let err = refused(&d);
    assert!(
        err.contains("damaged")
            && err.contains("broker.db")
            && err.contains("missing")
            && err.contains("--reset"),
        "{err}"
    );
    assert!(
        !d.join("broker.db").exists(),
        "nothing created in its place"
    );

    // A 0-byte database.
    let d = fresh("empty-db");
    for f in ["broker.db-wal", "broker.db-shm"] {
        let _ = std::fs::remove_file(d.join(f));
    }
    std::fs::write(d.join("broker.db"), b"").unwrap();
    let err = refused(&d);
    assert!(err.contains("empty (0 bytes)"), "{err}");

    // A trail that does not start at genesis.
    let d = fresh("no-genesis");
    sql(&d, "DELETE FROM audit WHERE seq = 1;");
    let err = refused(&d);
    assert!(err.contains("does not start at genesis"), "{err}");

    // A head that does not verify.
    let d = fresh("bad-head");
    sql(
        &d,
        "UPDATE audit SET detail = 'edited' WHERE seq = (SELECT MAX(seq) FROM audit);",
    );
    let err = refused(&d);
    assert!(err.contains("does not match its hash"), "{err}");

    // A database with history but no key.
    let d = fresh("no-key");
    std::fs::remove_file(d.join("signing.key")).unwrap();
    let err = refused(&d);
    assert!(err.contains("signing.key is missing"), "{err}");

    // An empty key file, in words.
    let d = fresh("empty-key");
    std::fs::write(d.join("signing.key"), b"").unwrap();
    let err = refused(&d);
    assert!(err.contains("signing.key is empty"), "{err}");

    // --reset: on purpose, a new start.
    let (mut child, url, out) = spawn_broker(&d, &["--reset"]);
    assert!(
        out.iter().any(|l| l.contains("--reset: started over")),
        "{out:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let health = rt.block_on(async { BrokerClient::new(&url).unwrap().health().await.unwrap() });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(health.audit_events_count, 0, "the old trail is gone");
}

/// Runs `chainview broker` to its banner, then SIGTERM: (stdout lines,
/// stderr, exit code).
fn banner_of(
    dir: Option<&Path>,
    extra: &[&str],
    secret: Option<&str>,
) -> (Vec<String>, String, i32) {
    let mut cmd = Command::new(bin());
    cmd.args(["broker", "--port", "0"]);
    if let Some(d) = dir {
        cmd.arg("--data").arg(d);
    }
    cmd.args(extra).env_remove("AGENTWRIT_ADMIN_SECRET");
    if let Some(s) = secret {
        cmd.env("AGENTWRIT_ADMIN_SECRET", s);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("# press Ctrl-C");
        seen.push(line);
        if done {
            break;
        }
    }
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    seen.extend(lines.map_while(Result::ok));
    let out = child.wait_with_output().unwrap();
    (
        seen,
        String::from_utf8_lossy(&out.stderr).to_string(),
        out.status.code().unwrap_or(-1),
    )
}

#[test]
fn the_banner_says_what_was_restored_and_warns_of_another_admin_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (out, err, code) = banner_of(Some(dir.path()), &[], Some(SECRET));
    assert_eq!(code, 0, "{err}");
    assert!(out.iter().any(|l| l == "# new data directory"), "{out:?}");
    populated(dir.path());
    let (out, err, _) = banner_of(Some(dir.path()), &[], Some(SECRET));
    let restored = out.iter().find(|l| l.starts_with("# restored: ")).unwrap();
    assert!(
        restored.contains("audit events, 1 app, 1 revocation in force"),
        "{restored}"
    );
    assert!(!err.contains("warning"), "same secret, no warning: {err}");

    let (_, err, _) = banner_of(Some(dir.path()), &[], Some("another-admin-secret-entirely"));
    assert!(
        err.contains("admin secret differs") && err.contains("401"),
        "{err}"
    );
    let (_, err, _) = banner_of(Some(dir.path()), &[], None);
    assert!(
        err.contains("a new one was generated") && err.contains("401"),
        "{err}"
    );
}

#[test]
fn several_apps_get_one_export_block_each_one_app_prints_as_before() {
    let (out, _, _) = banner_of(
        None,
        &[
            "--app",
            "alpha-one=read:data:*",
            "--app",
            "beta=write:data:*",
        ],
        Some(SECRET),
    );
    let exports: Vec<&String> = out
        .iter()
        .filter(|l| l.starts_with("export AGENTWRIT_CLIENT"))
        .collect();
    let names: Vec<&str> = exports
        .iter()
        .map(|l| l.trim_start_matches("export ").split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "AGENTWRIT_CLIENT_ID_ALPHA_ONE",
            "AGENTWRIT_CLIENT_SECRET_ALPHA_ONE",
            "AGENTWRIT_CLIENT_ID_BETA",
            "AGENTWRIT_CLIENT_SECRET_BETA"
        ],
        "{out:?}"
    );
    assert!(out.iter().any(|l| l.starts_with("# app 'beta'")), "{out:?}");
    let (out, _, _) = banner_of(None, &["--app", "solo=read:data:*"], Some(SECRET));
    let exports: Vec<&String> = out
        .iter()
        .filter(|l| l.starts_with("export AGENTWRIT_CLIENT"))
        .collect();
    assert_eq!(exports.len(), 2, "{out:?}");
    assert!(
        exports[0].starts_with("export AGENTWRIT_CLIENT_ID="),
        "{out:?}"
    );
    assert!(
        exports[1].starts_with("export AGENTWRIT_CLIENT_SECRET="),
        "{out:?}"
    );
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop;
/// `None` (with a message) where mounting is not allowed.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (not root, or no mount permission)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends to a filler file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("filler"))
            .unwrap();
        for chunk in [1 << 16, 4096, 512, 1] {
            let buf = vec![0u8; chunk];
            while f.write_all(&buf).is_ok() {}
        }
        let _ = f.sync_all();
    }

    fn free(&self) {
        std::fs::remove_file(self.path().join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Sends audited requests (each a bad Bearer: a `token_auth_failed` event)
/// until one is refused with 503; returns that refusal.
async fn until_refused(client: &BrokerClient) -> BrokerError {
    for _ in 0..20_000 {
        match client.release("not-a-token").await {
            Err(e) if e.broker().is_some_and(|b| b.status == 503) => {
                return e.broker().unwrap().clone();
            }
            Err(e) if e.broker().is_some_and(|b| b.status == 401) => {}
            other => panic!("unexpected answer: {other:?}"),
        }
    }
    panic!("a full disk never refused a request");
}

/// A full disk: audited requests are refused with 503 naming the cause
/// (not answered and lost), health says `degraded` and why, the console
/// says so once with the path; freed space is used again without a
/// restart; a stop with events still unwritten says how many and exits 4.
#[test]
fn a_full_disk_refuses_audited_requests_and_recovers() {
    let Some(disk) = SmallDisk::mount("24m") else {
        return;
    };
    let data = disk.path().join("data");
    let logs = tempfile::tempdir().unwrap();
    let stderr_path = logs.path().join("stderr");
    let mut child = Command::new(bin())
        .args(["broker", "--port", "0", "--data"])
        .arg(&data)
        .env("AGENTWRIT_ADMIN_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(u) = line.strip_prefix("export AGENTWRIT_BROKER_URL=") {
            break u.to_string();
        }
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = BrokerClient::new(&url).unwrap();
    rt.block_on(async {
        client.admin_auth(SECRET).await.unwrap();
        disk.fill();
        let refusal = until_refused(&client).await;
        assert_eq!(refusal.error_code, "service_unavailable");
        assert!(refusal.detail.contains("disk is full"), "{refusal:?}");
        // Refused again, not answered: every audited request while full.
        let again = client.admin_auth(SECRET).await.unwrap_err();
        assert_eq!(again.broker().map(|b| b.status), Some(503), "{again:?}");
        let h = client.health().await.unwrap();
        assert_eq!(h.status, "degraded");
        assert!(
            h.reason.as_deref().unwrap_or("").contains("disk is full"),
            "{h:?}"
        );

        // Space freed: the broker resumes by itself.
        disk.free();
        let mut h = client.health().await.unwrap();
        for _ in 0..400 {
            if h.status == "ok" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            h = client.health().await.unwrap();
        }
        assert_eq!(h.status, "ok", "{h:?}");
        assert!(h.reason.is_none());
        client.admin_auth(SECRET).await.unwrap();

        // Full again, then stopped with events unwritten. A failed batch
        // gives back the WAL space it took, so the disk is topped up once
        // the writer fails, and refused again after that.
        disk.fill();
        until_refused(&client).await;
        disk.fill();
        until_refused(&client).await;
    });
    drop(lines);
    // SAFETY: a signal to our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    let err = std::fs::read_to_string(&stderr_path).unwrap();
    assert_eq!(status.code(), Some(4), "{err}");
    let db = data.join("broker.db").display().to_string();
    let told: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("audit events cannot be written"))
        .collect();
    // Once when it fills (not once per failed retry): twice here, or three
    // times if the top-up raced a retry that fitted in the space given back.
    assert!(
        (2..=3).contains(&told.len()),
        "once per time the disk filled: {err}"
    );
    assert!(
        told.iter()
            .all(|l| l.contains(&db) && l.contains("disk is full")),
        "{err}"
    );
    assert!(err.contains("written again"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains("could not be written to") && l.contains(&db)),
        "{err}"
    );
    eprintln!("full disk: the console said\n{err}");
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

/// The data directory is 0700 and every file in it 0600 (they hold the
/// trail and the secrets' hashes), also the scratch directory without
/// `--data`; a link where a file should be created is refused, not followed.
#[cfg(unix)]
#[test]
fn data_files_are_private_and_links_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (mut child, url, _) = spawn_broker(&dir, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        BrokerClient::new(&url)
            .unwrap()
            .admin_auth(SECRET)
            .await
            .unwrap();
    });
    assert_eq!(mode(&dir), 0o700);
    for f in [
        "broker.db",
        "broker.db-wal",
        "broker.db-shm",
        "broker.lock",
        "signing.key",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // The scratch directory of an in-process broker without --data.
    rt.block_on(async {
        let broker = EmbeddedBroker::start(Config::with_admin_secret(SECRET))
            .await
            .unwrap();
        let client = BrokerClient::new(&broker.url()).unwrap();
        client.admin_auth(SECRET).await.unwrap();
        let (db, persistent) = broker.database();
        assert!(!persistent);
        let scratch = db.parent().unwrap().to_path_buf();
        assert_eq!(mode(&scratch), 0o700);
        for f in ["broker.db", "broker.db-wal", "broker.db-shm"] {
            assert_eq!(mode(&scratch.join(f)), 0o600, "{f}");
        }
        broker.shutdown().await;
        assert!(!scratch.exists(), "removed at stop");
    });

    // Dangling links: refused by name, nothing created at their target.
    for name in ["broker.lock", "broker.db", "broker.db-wal", "signing.key"] {
        let d = tmp.path().join(format!("link-{name}"));
        std::fs::create_dir(&d).unwrap();
        let target = tmp.path().join(format!("target-of-{name}"));
        std::os::unix::fs::symlink(&target, d.join(name)).unwrap();
        let err = refused(&d);
        assert!(err.contains(name) && err.contains("symbolic link"), "{err}");
        assert!(!target.exists(), "{name}: the link was followed");
    }
    // The directory itself as a link.
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let link = tmp.path().join("link-dir");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = refused(&link);
    assert!(err.contains("symbolic link"), "{err}");
}

/// The scratch directory (no `--data`) is removed on SIGTERM, SIGHUP and
/// SIGINT, for `chainview broker` and for `--script`.
#[cfg(unix)]
#[test]
fn the_scratch_directory_goes_on_every_stop_signal() {
    let scratch_in = |tmp: &Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(tmp)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("chainview-broker-")
            })
            .collect()
    };
    let script_dir = tempfile::tempdir().unwrap();
    let script = script_dir.path().join("long.chainview");
    std::fs::write(
        &script,
        "app ceiling=read:data:*\nagent a orch=o task=t scope=read:data:*\nwait 1m\n",
    )
    .unwrap();
    for (sig, code) in [
        (libc::SIGTERM, 143),
        (libc::SIGHUP, 129),
        (libc::SIGINT, 130),
    ] {
        for mode in ["broker", "script"] {
            let tmp = tempfile::tempdir().unwrap();
            let mut cmd = Command::new(bin());
            if mode == "broker" {
                cmd.args(["broker", "--port", "0"]);
            } else {
                cmd.arg("--script").arg(&script);
            }
            let mut child = cmd
                .env("TMPDIR", tmp.path())
                .env("AGENTWRIT_ADMIN_SECRET", SECRET)
                .env_remove("AGENTWRIT_BROKER_URL")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            // Running: its scratch directory exists and the first output is out.
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let mut first = String::new();
            out.read_line(&mut first).unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            while scratch_in(tmp.path()).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert_eq!(
                scratch_in(tmp.path()).len(),
                1,
                "{mode}: one scratch directory"
            );
            // SAFETY: a signal to our own child.
            assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
            let status = child.wait().unwrap();
            drop(out);
            assert!(
                scratch_in(tmp.path()).is_empty(),
                "{mode}, signal {sig}: scratch directory left behind"
            );
            if mode == "script" {
                assert_eq!(status.code(), Some(code), "{mode}, signal {sig}");
            } else {
                assert_eq!(status.code(), Some(0), "{mode}, signal {sig}");
            }
        }
    }
}
