//! `chainview broker`: its arguments, start-up banner and shutdown.

use crate::*;

#[derive(Debug, Args)]
pub(crate) struct BrokerArgs {
    /// TCP port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub(crate) port: u16,
    /// Address to bind. Keep the loopback default unless you know why not.
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) bind: String,
    /// Admin secret, at least 16 characters; a random one is generated and printed when neither this nor the variable is set.
    #[arg(
        long,
        env = "AGENTWRIT_ADMIN_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    pub(crate) admin_secret: Option<String>,
    /// Register an app at start: NAME=SCOPE,SCOPE (repeatable). Its client id and
    /// secret are printed as export lines.
    #[arg(long = "app", value_name = "NAME=SCOPES", value_parser = parse_app)]
    pub(crate) apps: Vec<(String, Vec<String>)>,
    /// Answer 500 where the real v2.0.0 broker does for client errors (a delegate
    /// request without delegate_to/scope, a duplicate app name) instead of the
    /// documented 400/409.
    #[arg(long)]
    pub(crate) strict_500s: bool,
    /// Keep what the real broker keeps across restarts in DIR: the signing key
    /// (signing.key, PEM, 0600) and apps, revocations and the audit trail
    /// (broker.db, SQLite). Without it they live in a private temporary
    /// directory removed when the broker stops.
    #[arg(long, env = "AGENTWRIT_DATA_DIR", value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// With --data: start over on purpose — delete the directory's signing
    /// key, apps, revocations and audit trail first. (A damaged directory is
    /// refused, never reset silently.)
    #[arg(long, requires = "data")]
    pub(crate) reset: bool,
    /// With --data: do not sync each commit to disk. Faster; an answered
    /// audit event still survives the broker being killed (kill -9), but a
    /// power loss or kernel crash may lose the last ones. Off by default:
    /// every audited request is answered only once its event is synced.
    #[arg(long, requires = "data")]
    pub(crate) power_loss_may_lose_events: bool,
    /// Take the client IP for rate limits from X-Forwarded-For. Only behind a
    /// reverse proxy that sets it: otherwise any client can pick its own IP.
    #[arg(long)]
    pub(crate) trust_proxy: bool,
    /// Connections served at once. Past it the longest-idle connection is
    /// closed to make room; a newcomer is refused only when all are busy.
    #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: u32,
    /// Serve HTTPS with this certificate (PEM chain), as the real broker does
    /// with AA_TLS_MODE=tls: TLS 1.2+ with AEAD suites only, and HSTS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// With --tls-cert: require a client certificate signed by a CA in this PEM
    /// file (mtls, as AA_TLS_MODE=mtls with AA_TLS_CLIENT_CA).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) client_ca: Option<PathBuf>,
}

/// The shortest admin secret `chainview broker` accepts: secrets are checked
/// with SHA-256 (not bcrypt), so a short one could be guessed quickly.
pub(crate) const MIN_ADMIN_SECRET: usize = 16;

pub(crate) fn parse_app(s: &str) -> Result<(String, Vec<String>), String> {
    let (name, scopes) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=SCOPE,SCOPE, got '{s}'"))?;
    let scopes: Vec<String> = scopes.split(',').map(str::to_string).collect();
    for sc in &scopes {
        chainview::scope::validate(sc).map_err(|e| e.to_string())?;
    }
    Ok((name.to_string(), scopes))
}

pub(crate) async fn run_broker(args: BrokerArgs) -> Result<u8> {
    let generated = args.admin_secret.is_none();
    let cfg = broker_config(&args)?;
    // A handler that panics is answered with a 500 (the broker catches it per
    // request); say so in one line instead of a full report.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        report!("chainview broker: internal error{at}; the request was answered 500");
    }));
    // From here on, a signal stops the broker cleanly (scratch directory
    // removed, audit trail written) whenever it comes.
    let stop = stop_signal();
    let bind = format!("{}:{}", args.bind, args.port);
    let mut cfg = cfg;
    cfg.console = Some(chainview::broker::embedded::Console(std::sync::Arc::new(
        |line: &str| report!("{line}"),
    )));
    let broker = EmbeddedBroker::start_on(&bind, cfg)
        .await
        .wrap_err("cannot start the embedded broker")?;
    say!(
        "# chainview: embedded AgentWrit broker (wire-compatible with v2.0.0) on {}",
        broker.url()
    );
    let (db, persistent) = broker.database();
    if persistent {
        say!(
            "# data: {} (signing key, apps, revocations and audit trail kept across restarts)",
            db.display()
        );
    }
    if let Some(r) = broker.restored() {
        announce_restored(r, args.reset, generated);
    }
    announce_tls(&broker, &args);
    say!("export AGENTWRIT_BROKER_URL={}", broker.url());
    announce_apps(&broker, &args.apps)?;
    // What start-up recorded (app registrations) is on disk before the
    // credentials are printed.
    broker.flush().await;
    if generated {
        say!(
            "# generated admin secret (set AGENTWRIT_ADMIN_SECRET or --admin-secret to choose one):"
        );
        say!("export AGENTWRIT_ADMIN_SECRET={}", broker.admin_secret());
    }
    say!("# press Ctrl-C to stop");
    stop.await;
    say!("# stopping");
    let (db, _) = broker.database();
    let db = db.to_path_buf();
    let unwritten = broker.shutdown().await;
    if unwritten > 0 {
        report!(
            "chainview broker: {unwritten} audit event{} could not be written to {} ({} refused with 503); the trail on disk ends before {}",
            if unwritten == 1 { "" } else { "s" },
            db.display(),
            if unwritten == 1 {
                "its request was"
            } else {
                "their requests were"
            },
            if unwritten == 1 { "it" } else { "them" }
        );
        return Ok(BROKER_EVENTS_UNWRITTEN);
    }
    Ok(0)
}

/// `chainview broker`'s exit code when it stops with audit events it could
/// not write (a full disk).
pub(crate) const BROKER_EVENTS_UNWRITTEN: u8 = 4;

/// The embedded broker's configuration from `chainview broker`'s flags.
pub(crate) fn broker_config(args: &BrokerArgs) -> Result<Config> {
    let mut cfg = match args.admin_secret.clone() {
        Some(s) if s.chars().count() < MIN_ADMIN_SECRET => {
            return Err(eyre!(
                "the admin secret must be at least {MIN_ADMIN_SECRET} characters (it has {}): \
                 the embedded broker checks it with SHA-256, so a short one is quickly guessed; \
                 leave AGENTWRIT_ADMIN_SECRET and --admin-secret unset to get a generated one",
                s.chars().count()
            ));
        }
        Some(s) => Config::with_admin_secret(s),
        None => Config::default(),
    };
    cfg.strict_500s = args.strict_500s;
    cfg.data_dir = args.data.clone();
    cfg.reset = args.reset;
    cfg.power_loss_may_lose_events = args.power_loss_may_lose_events;
    cfg.trust_proxy = args.trust_proxy;
    cfg.max_connections = args.max_connections as usize;
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        cfg.tls = Some(chainview::broker::tls::ServerTls {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: args.client_ca.clone(),
        });
    }
    Ok(cfg)
}

/// What a data directory held: one banner line, and a warning when the
/// admin secret is not the one it was last run with.
pub(crate) fn announce_restored(
    r: &chainview::broker::embedded::Restored,
    reset: bool,
    generated: bool,
) {
    let plural = |n: u64, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
    if reset {
        say!(
            "# --reset: started over (the earlier signing key, apps, revocations and audit trail were deleted)"
        );
    } else if r.events == 0 && r.apps == 0 && r.revocations == 0 {
        say!("# new data directory");
    } else {
        say!(
            "# restored: {}, {}, {} in force",
            plural(r.events, "audit event"),
            plural(r.apps as u64, "app"),
            plural(r.revocations as u64, "revocation")
        );
    }
    if r.admin_secret_changed {
        if generated {
            report!(
                "chainview broker: warning: no admin secret was given, so a new one was generated; \
                 admin clients using the one this data directory was last run with now get 401 \
                 (set AGENTWRIT_ADMIN_SECRET or --admin-secret to keep using it)"
            );
        } else {
            report!(
                "chainview broker: warning: the admin secret differs from the one this data directory \
                 was last run with; admin clients using the old one now get 401 (admin tokens issued \
                 before stay valid until they expire)"
            );
        }
    }
}

/// The shell variable for an app's credential when several `--app` are
/// given: `AGENTWRIT_CLIENT_ID_WEATHER_BOT` for `weather-bot` (app names are
/// lowercase letters, digits and hyphens, so no two collide).
pub(crate) fn app_var(base: &str, name: &str, several: bool) -> String {
    if several {
        format!("{base}_{}", name.to_ascii_uppercase().replace('-', "_"))
    } else {
        base.to_string()
    }
}

/// `--app NAME=SCOPES`: each app registered (or found from an earlier run)
/// and its export lines. One app: `AGENTWRIT_CLIENT_ID`/`_SECRET`, what the
/// SDK reads; several: one block each, the variables suffixed with the name.
pub(crate) fn announce_apps(broker: &EmbeddedBroker, apps: &[(String, Vec<String>)]) -> Result<()> {
    let several = apps.len() > 1;
    if several {
        say!(
            "# {} apps: each block's variables end with the app's name; set AGENTWRIT_CLIENT_ID/AGENTWRIT_CLIENT_SECRET from the one a client should use",
            apps.len()
        );
    }
    for (name, scopes) in apps {
        let id_var = app_var("AGENTWRIT_CLIENT_ID", name, several);
        let secret_var = app_var("AGENTWRIT_CLIENT_SECRET", name, several);
        match broker.ensure_app(name, scopes)? {
            EnsuredApp::Created(app) => {
                say!(
                    "# app '{name}' ({}) with ceiling {}",
                    app.app_id,
                    scopes.join(",")
                );
                say!("export {id_var}={}", app.client_id);
                say!(
                    "export {secret_var}={}",
                    app.client_secret.unwrap_or_default()
                );
            }
            EnsuredApp::Existing {
                app,
                ceiling_differs,
            } => {
                say!(
                    "# app '{name}' ({}) kept from an earlier run, ceiling {}",
                    app.app_id,
                    app.scopes.clone().unwrap_or_default().join(",")
                );
                if ceiling_differs {
                    say!(
                        "# note: --app asked for ceiling {}; the stored one is kept (change it with PUT /v1/admin/apps/{})",
                        scopes.join(","),
                        app.app_id
                    );
                }
                say!("export {id_var}={}", app.client_id);
                say!(
                    "# its client secret was shown when the app was created; the broker keeps only a hash of it"
                );
            }
        }
    }
    Ok(())
}

/// What TLS the broker serves, and whether its URL fits the certificate.
pub(crate) fn announce_tls(broker: &EmbeddedBroker, args: &BrokerArgs) {
    if let Some(tls) = &args.tls_cert {
        say!(
            "# TLS: certificate {}{}",
            tls.display(),
            match &args.client_ca {
                Some(ca) => format!(
                    "; mtls: clients need a certificate signed by {}",
                    ca.display()
                ),
                None => String::new(),
            }
        );
        if !broker.certificate_fits_url() {
            say!(
                "# note: the certificate holds neither {} nor localhost; clients must connect by a name it holds",
                args.bind
            );
        }
    }
}

/// Waits for SIGTERM, SIGHUP or SIGINT (Ctrl-C); resolves to the exit code a
/// shell reports for it (128 + its number). The handlers are installed when
/// this is called, not when it is first polled, so a signal that arrives in
/// between is not lost.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = u8> {
    #[cfg(unix)]
    let sigs = {
        use tokio::signal::unix::{SignalKind, signal};
        (|| {
            Some((
                signal(SignalKind::terminate()).ok()?,
                signal(SignalKind::hangup()).ok()?,
                signal(SignalKind::interrupt()).ok()?,
            ))
        })()
    };
    async move {
        #[cfg(unix)]
        if let Some((mut term, mut hup, mut int)) = sigs {
            return tokio::select! {
                _ = term.recv() => 143,
                _ = hup.recv() => 129,
                _ = int.recv() => 130,
            };
        }
        let _ = tokio::signal::ctrl_c().await;
        130
    }
}
