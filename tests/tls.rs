//! TLS and mtls, both ends: chainview's client against `chainview broker`
//! serving TLS, over real loopback connections, with certificates made in
//! the test. Each failure a user can meet has a test of its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chainview::broker::client::DEFAULT_TIMEOUT;
use chainview::broker::embedded::{Config, EmbeddedBroker};
use chainview::broker::tls::{ClientTls, ServerTls, TlsFailure};
use chainview::broker::{BrokerClient, ClientError};
use common::pki::Pki;

const DEPLOY: &str = "assets/scenarios/deploy.chainview";

async fn tls_broker(cert: &Path, key: &Path, client_ca: Option<&Path>) -> EmbeddedBroker {
    EmbeddedBroker::start(Config {
        tls: Some(ServerTls {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            client_ca: client_ca.map(Path::to_path_buf),
        }),
        ..Config::default()
    })
    .await
    .expect("broker starts with TLS")
}

fn trusting(pki: &Pki) -> ClientTls {
    ClientTls {
        ca_files: vec![pki.ca_pem.clone()],
        ..ClientTls::default()
    }
}

fn with_client_cert(pki: &Pki) -> ClientTls {
    ClientTls {
        ca_files: vec![pki.ca_pem.clone()],
        client_cert: Some(pki.client_cert.clone()),
        client_key: Some(pki.client_key.clone()),
    }
}

/// The health call's error, with the client options given.
async fn health_error(url: &str, opts: &ClientTls) -> ClientError {
    let client = BrokerClient::with_tls(url, DEFAULT_TIMEOUT, opts).expect("client");
    client.health().await.expect_err("the call must fail")
}

fn kind(e: &ClientError) -> &TlsFailure {
    match e {
        ClientError::Tls { kind, .. } => kind,
        other => panic!("expected a TLS failure, got {other:?}"),
    }
}

#[tokio::test]
async fn tls_broker_serves_https_and_a_trusting_client_reaches_it() {
    let pki = Pki::new();
    let b = tls_broker(&pki.server_cert, &pki.server_key, None).await;
    assert!(b.url().starts_with("https://127.0.0.1:"), "{}", b.url());
    assert!(b.certificate_fits_url());
    let client = BrokerClient::with_tls(&b.url(), DEFAULT_TIMEOUT, &trusting(&pki)).unwrap();
    let h = client.health().await.expect("health over TLS");
    assert_eq!(h.status, "ok");
}

#[tokio::test]
async fn untrusted_issuer_says_to_pass_the_ca() {
    let pki = Pki::new();
    let b = tls_broker(&pki.server_cert, &pki.server_key, None).await;
    let e = health_error(&b.url(), &ClientTls::default()).await;
    assert_eq!(kind(&e), &TlsFailure::UntrustedIssuer);
    let msg = e.to_string();
    assert!(msg.contains(&b.url()), "{msg}");
    assert!(msg.contains("pass the CA with --ca-cert"), "{msg}");
}

#[tokio::test]
async fn name_mismatch_names_what_the_certificate_holds() {
    let pki = Pki::new();
    let (cert, key) = pki.server("elsewhere", &["broker.internal", "10.9.8.7"], false);
    let b = tls_broker(&cert, &key, None).await;
    // Neither 127.0.0.1 nor localhost: the broker's URL cannot fit.
    assert!(!b.certificate_fits_url());
    let e = health_error(&b.url(), &trusting(&pki)).await;
    assert!(
        matches!(kind(&e), TlsFailure::NameMismatch { presented } if presented.iter().any(|n| n.contains("broker.internal"))),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("broker.internal"), "{msg}");
    assert!(msg.contains("not '127.0.0.1'"), "{msg}");
}

#[tokio::test]
async fn expired_certificate_is_named_expired() {
    let pki = Pki::new();
    let (cert, key) = pki.server("old", &["127.0.0.1"], true);
    let b = tls_broker(&cert, &key, None).await;
    let e = health_error(&b.url(), &trusting(&pki)).await;
    assert_eq!(kind(&e), &TlsFailure::Expired);
    assert!(e.to_string().contains("expired"), "{e}");
}

#[tokio::test]
async fn mtls_without_a_client_certificate_says_to_give_one() {
    let pki = Pki::new();
    let b = tls_broker(&pki.server_cert, &pki.server_key, Some(&pki.ca_pem)).await;
    let e = health_error(&b.url(), &trusting(&pki)).await;
    assert_eq!(kind(&e), &TlsFailure::ClientCertificateRequired);
    assert!(
        e.to_string()
            .contains("--client-cert FILE --client-key FILE"),
        "{e}"
    );
}

#[tokio::test]
async fn mtls_refuses_a_client_certificate_from_another_ca() {
    let pki = Pki::new();
    let b = tls_broker(&pki.server_cert, &pki.server_key, Some(&pki.ca_pem)).await;
    let (cert, key) = pki.stranger_client();
    let opts = ClientTls {
        ca_files: vec![pki.ca_pem.clone()],
        client_cert: Some(cert),
        client_key: Some(key),
    };
    let e = health_error(&b.url(), &opts).await;
    assert!(
        matches!(kind(&e), TlsFailure::ClientCertificateRefused { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("refused the client certificate"),
        "{e}"
    );
    // The right certificate gets in.
    let client =
        BrokerClient::with_tls(&b.url(), DEFAULT_TIMEOUT, &with_client_cert(&pki)).unwrap();
    client
        .health()
        .await
        .expect("mtls with the CA's client certificate");
}

#[tokio::test]
async fn plain_http_to_the_tls_port_says_use_https() {
    let pki = Pki::new();
    let b = tls_broker(&pki.server_cert, &pki.server_key, None).await;
    let plain = b.url().replace("https://", "http://");
    let e = health_error(&plain, &ClientTls::default()).await;
    assert_eq!(kind(&e), &TlsFailure::TlsOnly);
    assert!(e.to_string().contains("use https://127.0.0.1"), "{e}");
}

#[tokio::test]
async fn https_to_a_plain_port_says_use_http() {
    let b = EmbeddedBroker::start(Config::default()).await.unwrap();
    let tls = b.url().replace("http://", "https://");
    let e = health_error(&tls, &ClientTls::default()).await;
    assert_eq!(kind(&e), &TlsFailure::NotTls);
    assert!(e.to_string().contains("plain HTTP, not TLS"), "{e}");
}

#[tokio::test]
async fn bad_client_files_are_named() {
    let pki = Pki::new();
    let missing = pki.dir().join("nope.pem");
    let cases = [
        (
            ClientTls {
                ca_files: vec![missing.clone()],
                ..ClientTls::default()
            },
            "nope.pem: cannot read it",
        ),
        (
            ClientTls {
                ca_files: vec![pki.client_key.clone()],
                ..ClientTls::default()
            },
            "holds no certificate",
        ),
        (
            ClientTls {
                ca_files: vec![],
                client_cert: Some(pki.client_cert.clone()),
                client_key: Some(pki.server_key.clone()),
            },
            "does not fit the client certificate",
        ),
    ];
    for (opts, want) in cases {
        match BrokerClient::with_tls("https://127.0.0.1:1", DEFAULT_TIMEOUT, &opts) {
            Err(ClientError::TlsSetup(m)) => assert!(m.contains(want), "{m} / {want}"),
            other => panic!("expected a setup error for {want}, got {other:?}"),
        }
    }
}

// ── Through the binary: the "done when" ────────────────────────

fn chainview(args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chainview"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .env_remove("SSL_CERT_FILE")
        .env_remove("CHAINVIEW_CLIENT_CERT")
        .env_remove("CHAINVIEW_CLIENT_KEY")
        .stdin(std::process::Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("chainview runs")
}

/// The deploy scenario with `--script` against an mtls broker: passes with
/// the CA and a client certificate; exit 3 with the item-2 messages without
/// either.
#[tokio::test(flavor = "multi_thread")]
async fn deploy_script_over_mtls_and_its_failures() {
    let pki = Pki::new();
    let b = tls_broker(&pki.server_cert, &pki.server_key, Some(&pki.ca_pem)).await;
    let app = b
        .register_app(
            "tls-deploy",
            &[
                "read:config:*".to_string(),
                "read:deploy:*".to_string(),
                "write:deploy:*".to_string(),
            ],
        )
        .unwrap();
    let url = b.url();
    let secret = app.client_secret.clone().unwrap();
    let envs = [
        ("AGENTWRIT_CLIENT_ID", app.client_id.as_str()),
        ("AGENTWRIT_CLIENT_SECRET", secret.as_str()),
        ("AGENTWRIT_ADMIN_SECRET", b.admin_secret()),
    ];
    let ca = pki.ca_pem.to_str().unwrap();
    let (cc, ck) = (
        pki.client_cert.to_str().unwrap(),
        pki.client_key.to_str().unwrap(),
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["--broker", url.as_str(), "--script", DEPLOY];
        args.extend_from_slice(extra);
        let out = std::thread::scope(|s| s.spawn(|| chainview(&args, &envs)).join().unwrap());
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&["--ca-cert", ca, "--client-cert", cc, "--client-key", ck]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("19 expectations: 19 held, 0 failed"), "{out}");
    assert!(
        out.contains(&format!("broker: AgentWrit broker at {url}")),
        "{out}"
    );

    // The same through the environment (SSL_CERT_FILE, CHAINVIEW_CLIENT_*).
    let mut with_env = envs.to_vec();
    with_env.extend([
        ("SSL_CERT_FILE", ca),
        ("CHAINVIEW_CLIENT_CERT", cc),
        ("CHAINVIEW_CLIENT_KEY", ck),
    ]);
    let out = std::thread::scope(|s| {
        s.spawn(|| chainview(&["--broker", &url, "--script", DEPLOY], &with_env))
            .join()
            .unwrap()
    });
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, _, err) = run(&["--ca-cert", ca]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains(&url), "{err}");
    assert!(err.contains("asks for a client certificate"), "{err}");

    let (code, _, err) = run(&["--client-cert", cc, "--client-key", ck]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("pass the CA with --ca-cert"), "{err}");

    let (code, _, err) = run(&["--ca-cert", "/nonexistent/ca.pem"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("/nonexistent/ca.pem: cannot read it"), "{err}");

    // --client-cert without --client-key is a usage error.
    let (code, _, err) = run(&["--client-cert", cc]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--client-key"), "{err}");
    b.shutdown().await;
}

/// `chainview broker --tls-cert …`: HTTPS URL on its export line; bad files
/// are exit 3 naming the file.
#[test]
fn broker_command_serves_tls_and_names_bad_files() {
    let pki = Pki::new();
    let (cert, key, ca) = (
        pki.server_cert.to_str().unwrap(),
        pki.server_key.to_str().unwrap(),
        pki.ca_pem.to_str().unwrap(),
    );
    let bad = [
        (
            vec!["--tls-cert", "/nonexistent/cert.pem", "--tls-key", key],
            "/nonexistent/cert.pem: cannot read it",
        ),
        (
            vec!["--tls-cert", key, "--tls-key", key],
            "holds no certificate",
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", cert],
            "holds no usable private key",
        ),
        (
            vec![
                "--tls-cert",
                cert,
                "--tls-key",
                pki.client_key.to_str().unwrap(),
            ],
            "does not fit the certificate",
        ),
        (
            vec!["--tls-cert", cert, "--tls-key", key, "--client-ca", key],
            "client CA",
        ),
    ];
    for (args, want) in bad {
        let mut all = vec!["broker", "--port", "0"];
        all.extend(args);
        let out = chainview(&all, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{all:?}: {err}");
        assert!(err.contains(want), "{all:?}: {err}");
    }

    // A good one prints an https URL and answers with HSTS.
    let mut child = Command::new(env!("CARGO_BIN_EXE_chainview"))
        .args([
            "broker",
            "--port",
            "0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
            "--client-ca",
            ca,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let url = loop {
        let line = lines.next().expect("broker prints its URL").unwrap();
        if let Some(u) = line.strip_prefix("export AGENTWRIT_BROKER_URL=") {
            break u.to_string();
        }
    };
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let raw = rt.block_on(async {
        let c =
            BrokerClient::with_tls(&url, Duration::from_secs(5), &with_client_cert(&pki)).unwrap();
        c.send_raw(reqwest::Method::GET, "/v1/health", &[], None)
            .await
            .unwrap()
    });
    assert_eq!(raw.status, 200);
    assert_eq!(
        raw.header("strict-transport-security"),
        Some("max-age=63072000; includeSubDomains")
    );
    let _ = child.kill();
    let _ = child.wait();
}
