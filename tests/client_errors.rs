//! Client error paths over real sockets: nothing listening, a listener that
//! never answers, and servers answering a non-JSON 500 or a 2xx with garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use chainview::broker::{BrokerClient, ClientError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A one-shot HTTP server on loopback that answers every request with `response`.
async fn canned(response: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn refused_connection_names_the_url() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = BrokerClient::new(&url).unwrap();
    let err = client.health().await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Connect { url: u, .. } if u.starts_with(&url)),
        "{err:?}"
    );
    assert!(err.is_unreachable());
    assert!(err.to_string().contains(&url), "{err}");
}

#[tokio::test]
async fn silent_listener_times_out_within_the_configured_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accept and hold connections without ever answering.
    let hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            socks.push(s);
        }
    });
    let client = BrokerClient::with_timeout(&url, Duration::from_millis(300)).unwrap();
    let start = Instant::now();
    let err = client.validate("x").await.unwrap_err();
    let took = start.elapsed();
    assert!(
        matches!(&err, ClientError::Timeout { after, .. } if *after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    assert!(err.to_string().contains(&url));
    hold.abort();
}

#[tokio::test]
async fn non_json_500_is_unexpected_not_a_panic() {
    let url = canned("HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/html\r\ncontent-length: 14\r\nconnection: close\r\n\r\n<h1>oops</h1>\n").await;
    let client = BrokerClient::new(&url).unwrap();
    let err = client.renew("tok").await.unwrap_err();
    match &err {
        ClientError::Unexpected {
            status, snippet, ..
        } => {
            assert_eq!(*status, 500);
            assert_eq!(snippet, "<h1>oops</h1>");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn problem_with_unknown_fields_is_a_typed_broker_error() {
    let body = r#"{"type":"urn:agentwrit:error:forbidden","title":"Forbidden","status":403,"detail":"nope","instance":"/v1/delegate","error_code":"forbidden","request_id":"r1","extra":{"x":1}}"#;
    let resp: &'static str = Box::leak(
        format!("HTTP/1.1 403 Forbidden\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).into_boxed_str(),
    );
    let url = canned(resp).await;
    let client = BrokerClient::new(&url).unwrap();
    let err = client.validate("x").await.unwrap_err();
    let b = err.broker().expect("typed broker error");
    assert_eq!(
        (
            b.status,
            b.error_code.as_str(),
            b.detail.as_str(),
            b.request_id.as_str()
        ),
        (403, "forbidden", "nope", "r1")
    );
}

#[tokio::test]
async fn truncated_json_on_success_is_a_decode_error() {
    let url = canned("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\nconnection: close\r\n\r\n{\"valid\":tru").await;
    let client = BrokerClient::new(&url).unwrap();
    let err = client.validate("x").await.unwrap_err();
    assert!(
        matches!(
            err,
            ClientError::Decode {
                status: 200,
                expected: "validation result",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn bad_urls_are_rejected_up_front() {
    for bad in ["", "localhost:8080", "ftp://x", "http://"] {
        assert!(
            matches!(BrokerClient::new(bad), Err(ClientError::InvalidUrl(_))),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn create_agent_rejects_bad_segments_before_any_request() {
    // Nothing listens here: a request would fail with Connect, not InvalidInput.
    let client = BrokerClient::new("http://127.0.0.1:9").unwrap();
    let err = client
        .create_agent("tok", "bad id", "t", &["read:data:*".into()], None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ClientError::InvalidInput(ref m) if m.contains("orch_id 'bad id'")),
        "{err:?}"
    );
}

/// A broker that streams an endless answer: the client stops at 16 MiB with
/// a typed error instead of holding it all.
#[tokio::test]
async fn an_endless_answer_is_cut_off() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{\"status\":\"")
            .await;
        let chunk = vec![b'a'; 1 << 16];
        // Up to 64 MiB, far past the cap; the client hangs up first.
        for _ in 0..1024 {
            if s.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let client = BrokerClient::new(&format!("http://{addr}")).unwrap();
    let err = client.health().await.unwrap_err();
    assert!(err.to_string().contains("at most 16 MiB"), "{err}");
}

/// The event log shows what the broker really answered: a broker that
/// answers a release with 200 (not the usual 204) is logged as 200 — by the
/// client's own record and through the worker.
#[tokio::test]
async fn calls_carry_the_real_status() {
    use chainview::worker::{Command, Outcome, Secret, WorkerConfig};
    let url = canned("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let client = BrokerClient::new(&url).unwrap();
    let (r, seen) = chainview::broker::client::recording(client.release("t.o.k")).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (
            seen[0].method.as_str(),
            seen[0].path.as_str(),
            seen[0].status
        ),
        ("POST", "/v1/token/release", Some(200))
    );
    let mut w = chainview::worker::spawn(WorkerConfig {
        client,
        admin_secret: None,
        app_credentials: None,
        audit_cap: Default::default(),
    });
    let id = w.send(Command::Release {
        token: 0,
        raw: Secret("t.o.k".into()),
    });
    let ev = w.events.recv().await.unwrap();
    assert_eq!(ev.request, id);
    assert!(matches!(
        ev.outcome,
        Outcome::Released { result: Ok(()), .. }
    ));
    assert_eq!(ev.calls.len(), 1);
    assert_eq!(ev.calls[0].status, Some(200), "{:?}", ev.calls);
}

/// A broker URL that redirects (307, 308, 301 …): the client reports it as
/// what it is and re-sends nothing — the secrets in the body never reach
/// the other origin.
#[tokio::test]
async fn a_redirect_is_reported_and_nothing_is_re_sent() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Where the redirect points: counts what reaches it.
    let other = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_addr = other.local_addr().unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let r = reached.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = other.accept().await {
            r.fetch_add(1, Ordering::SeqCst);
            let _ = sock
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                .await;
        }
    });
    for status in [
        "307 Temporary Redirect",
        "308 Permanent Redirect",
        "301 Moved Permanently",
    ] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let n = requests.clone();
        let answer = format!(
            "HTTP/1.1 {status}\r\nLocation: http://{other_addr}/v1/admin/auth\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            }
        });
        let client = BrokerClient::new(&url).unwrap();
        let err = client
            .admin_auth("a-secret-that-must-stay-here")
            .await
            .unwrap_err();
        let code = &status[..3];
        assert!(matches!(err, ClientError::Redirect { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains(&format!(
                "answered {code} to http://{other_addr}/v1/admin/auth"
            )) && msg.contains("AgentWrit never redirects; check the URL"),
            "{msg}"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 1, "{status}: sent once");
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing went to the redirect's target"
    );
}

/// Answers that are not the JSON expected, said in words that point at the
/// cause (they used to read "expected value at line 1 column 1").
#[tokio::test]
async fn odd_answers_are_explained() {
    let empty = canned("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let err = BrokerClient::new(&empty)
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the body is empty"), "{err}");

    let gzip = canned(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\nabcd",
    )
    .await;
    let err = BrokerClient::new(&gzip)
        .unwrap()
        .health()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("compressed (Content-Encoding: gzip)"),
        "{err}"
    );

    // A raw newline inside a string: named, and placed where it is.
    let newline = canned(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 23\r\n\r\n{\"status\":\"o\nk\",\"x\":1}\n",
    )
    .await;
    let err = BrokerClient::new(&newline)
        .unwrap()
        .health()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("raw control character (U+000A) inside a JSON string")
            && msg.contains("line 1, column 13 (byte 12)"),
        "{msg}"
    );
}

/// A broker that answered, however oddly, was reached: only transport
/// failures make the rest of a script "not run (the broker could not be
/// reached)".
#[test]
fn an_odd_answer_is_not_unreachable() {
    use chainview::worker::Outcome;
    let odd = ClientError::Decode {
        url: "http://127.0.0.1:1/v1/delegate".into(),
        status: 200,
        expected: "delegation response",
        reason: "the body is empty".into(),
    };
    let delegated = |e: ClientError| Outcome::Delegated {
        token: Default::default(),
        result: Err(e),
    };
    assert!(delegated(odd).unreachable().is_none());
    let teapot = ClientError::Unexpected {
        url: "http://127.0.0.1:1/v1/delegate".into(),
        status: 418,
        snippet: "I'm a teapot".into(),
    };
    assert!(delegated(teapot).unreachable().is_none());
    let gone = ClientError::Connect {
        url: "http://127.0.0.1:1".into(),
        reason: "refused".into(),
    };
    assert!(delegated(gone).unreachable().is_some());
}

/// A 401 on a later admin call (the broker restarted with a new key, so the
/// cached admin token no longer verifies) drops the token and logs in again,
/// once, instead of failing every poll until the token would have expired.
#[tokio::test]
async fn a_refused_admin_token_is_dropped_and_the_worker_logs_in_again() {
    use chainview::broker::embedded::{Config, EmbeddedBroker};
    use chainview::worker::{Command, Outcome, Secret, WorkerConfig};
    const SECRET: &str = "worker-relogin-admin-secret";
    let first = EmbeddedBroker::start(Config::with_admin_secret(SECRET))
        .await
        .unwrap();
    let addr = first.addr();
    let mut w = chainview::worker::spawn(WorkerConfig {
        client: BrokerClient::new(&first.url()).unwrap(),
        admin_secret: Some(Secret(SECRET.into())),
        app_credentials: None,
        audit_cap: Default::default(),
    });
    w.send(Command::Audit);
    let ev = w.events.recv().await.unwrap();
    assert!(
        matches!(ev.outcome, Outcome::Audit(Ok(_))),
        "{:?}",
        ev.outcome
    );
    // Same address, new broker: a new signing key, so the old token is refused.
    first.shutdown().await;
    let second = EmbeddedBroker::start_on(&addr.to_string(), Config::with_admin_secret(SECRET))
        .await
        .unwrap();
    w.send(Command::Audit);
    let ev = w.events.recv().await.unwrap();
    assert!(
        matches!(ev.outcome, Outcome::Audit(Ok(_))),
        "{:?}",
        ev.outcome
    );
    let statuses: Vec<Option<u16>> = ev.calls.iter().map(|c| c.status).collect();
    assert_eq!(
        statuses,
        [Some(401), Some(200), Some(200)],
        "refused, logged in again, asked again: {:?}",
        ev.calls
    );
    second.shutdown().await;
}
