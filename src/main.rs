//! The `chainview` command line.

use std::process::ExitCode;

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use color_eyre::eyre::{Result, WrapErr, eyre};

use chainview::app::unix_now;
use chainview::text::{Visible, visible};

/// `eprintln!` for messages that may quote outside text (a script's labels,
/// a broker's problem detail): control characters are shown, never sent.
/// `println!` for `chainview broker`: a closed standard output (the
/// terminal gone, a pipe whose reader quit) must not stop a running broker,
/// so write errors never end it; any other (a full disk, /dev/full) is said
/// once on standard error ([`banner_unwritten`]), since the banner holds the
/// URL and credentials.
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            banner_unwritten(&e);
        }
    }};
}

/// Says once that the broker's banner could not be written (not for a
/// closed pipe: the reader chose to go).
fn banner_unwritten(e: &std::io::Error) {
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if e.kind() != std::io::ErrorKind::BrokenPipe
        && !SAID.swap(true, std::sync::atomic::Ordering::Relaxed)
    {
        eprintln!(
            "chainview broker: cannot write its export lines to standard output: {e}; it keeps running"
        );
    }
}

macro_rules! report {
    ($($t:tt)*) => {
        eprintln!("{}", visible(&format!($($t)*)))
    };
}
use chainview::broker::embedded::{Config, EmbeddedBroker, EnsuredApp};

/// Standard output for a command's result, remembering the first write
/// error that matters: a closed pipe (`| head`, EPIPE) is the reader's
/// choice and ignored; anything else (a full disk, /dev/full, EIO) is
/// reported and exits 2 ([`output_failed`]).
struct Out<W> {
    inner: W,
    failed: std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>,
}

impl<W: Write> Out<W> {
    fn new(
        inner: W,
    ) -> (
        Self,
        std::rc::Rc<std::cell::RefCell<Option<std::io::Error>>>,
    ) {
        let failed = std::rc::Rc::default();
        (
            Out {
                inner,
                failed: std::rc::Rc::clone(&failed),
            },
            failed,
        )
    }

    fn note<T>(&self, r: std::io::Result<T>) -> std::io::Result<T> {
        if let Err(e) = &r
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            let mut f = self.failed.borrow_mut();
            if f.is_none() {
                *f = Some(std::io::Error::new(e.kind(), e.to_string()));
            }
        }
        r
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = self.inner.write(buf);
        self.note(r)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let r = self.inner.flush();
        self.note(r)
    }
}

/// Writes a command's whole output; Err only for a write error that
/// matters (not EPIPE).
fn emit(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    }
}

/// The report and exit code for output that could not be written.
fn output_failed(e: &std::io::Error) -> u8 {
    report!("chainview: cannot write to standard output: {e}");
    2
}
use chainview::scenario::replay::Replay;
use chainview::scenario::transcript::{self, Format};
use chainview::session::Settings;
use chainview::view::View;

const ABOUT: &str = "Terminal explorer for AgentWrit delegation chains";

const LONG_ABOUT: &str = "\
chainview shows who holds which AgentWrit authority, through which delegation
hops, and what the broker really answers.

With no broker configured it runs against an embedded, wire-compatible AgentWrit
broker on 127.0.0.1, so it works on a fresh machine.

ENVIRONMENT:
  AGENTWRIT_BROKER_URL     broker to use instead of the embedded one
  AGENTWRIT_CLIENT_ID      app credentials for that broker
  AGENTWRIT_CLIENT_SECRET
  AGENTWRIT_ADMIN_SECRET   admin secret (unlocks revoke, audit, app registration)
  SSL_CERT_FILE            CA certificates (PEM) to trust, when --ca-cert is not given
  CHAINVIEW_CLIENT_CERT    client certificate for an mtls broker (--client-cert)
  CHAINVIEW_CLIENT_KEY     its private key (--client-key)
  CHAINVIEW_CONTEXT        the named broker to use from the config file (--context)
  CHAINVIEW_CONFIG         the config file (--config; default
                           $XDG_CONFIG_HOME/chainview/config.toml)
  CHAINVIEW_REVALIDATE     seconds between live checks of every live token (default 5, 0 = off)
  CHAINVIEW_TOKEN_<LABEL>  read by exported scenarios' `import LABEL env=…` steps
  CHAINVIEW_LOG            log filter (e.g. info, debug); logs go to a file, never the terminal
  CHAINVIEW_LOG_FILE       the log file (default: chainview.log in the temporary directory)
  NO_COLOR                 draw without colors (every state also has a symbol)

KEYS (interactive; ? shows them all, per pane and mode):
{KEYS}

EXIT CODES (--script):
  0  every step ran and every expectation held
  1  an expectation failed (or a step could not run)
  2  the script or the command line is malformed (or over 4 MiB)
  3  the broker could not be reached or set up

EXIT CODES (interactive): 0 after q; 143, 129, 130 after SIGTERM, SIGHUP,
SIGINT from outside (the terminal is restored first); 3 without a terminal.

SCENARIOS: `chainview language` prints the scenario language (steps, options,
expectations); docs/scenarios.md has it with examples.

chainview broker: AGENTWRIT_DATA_DIR (or --data DIR) keeps the signing key,
apps, revocations and the audit trail across restarts; see `chainview broker
--help`.";

/// `chainview --version`: the crate's version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("CHAINVIEW_BUILD_COMMIT"),
    ")"
);

#[derive(Debug, Parser)]
#[command(name = "chainview", version = VERSION, about = ABOUT)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Replay a scenario headless (no terminal) and print a transcript; `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Transcript format for --script: readable text, one JSON object per step,
    /// or (no transcript) the final delegation tree as a Mermaid or DOT diagram.
    #[arg(long, value_enum, default_value = "text", requires = "script")]
    format: Format,
    /// With --script: print the rendered screen (WIDTHxHEIGHT, e.g. 120x40) after each step.
    #[arg(long, value_name = "WxH", value_parser = parse_size, requires = "script")]
    frames: Option<(u16, u16)>,
    /// With --script: print whole tokens in the transcript instead of their first 12 characters.
    #[arg(long, requires = "script")]
    reveal_secrets: bool,
    /// Broker to explore (interactive and --script); without it chainview starts its embedded broker on 127.0.0.1.
    #[arg(long, env = "AGENTWRIT_BROKER_URL", value_name = "URL")]
    broker: Option<String>,
    /// Seconds to wait for any one broker answer.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = parse_timeout)]
    timeout: f64,
    /// Interactive: ask the broker about every live token this often, so tokens
    /// that died elsewhere (revoked by another client, expired) show up; 0 turns it off.
    #[arg(
        long,
        env = "CHAINVIEW_REVALIDATE",
        default_value_t = 5.0,
        value_name = "SECS",
        value_parser = parse_interval
    )]
    revalidate: f64,
    /// Show times in UTC instead of the local zone (TZ, else the system's),
    /// and read zone-less --at/t times in UTC. JSON is always RFC 3339 UTC.
    #[arg(long, global = true)]
    utc: bool,
    /// Interactive: never change the broker — no agent is registered, nothing
    /// delegated, renewed, released or revoked (the keys say why). Without it,
    /// the first change to a broker that is not the embedded one asks first.
    #[arg(long)]
    read_only: bool,
    #[command(flatten)]
    tls: TlsClientArgs,
    #[command(flatten)]
    contexts: ContextArgs,
}

/// Named brokers from the config file.
#[derive(Debug, Args)]
#[command(next_help_heading = "Contexts (named brokers from the config file)")]
struct ContextArgs {
    /// Use the broker named NAME in the config file: its URL, CA, client
    /// certificate and where its secrets come from. Flags and AGENTWRIT_…/
    /// CHAINVIEW_CLIENT_… variables still win over what the context says.
    #[arg(long, env = "CHAINVIEW_CONTEXT", value_name = "NAME", global = true)]
    context: Option<String>,
    /// The config file (default: $XDG_CONFIG_HOME/chainview/config.toml, else
    /// ~/.config/chainview/config.toml).
    #[arg(long, env = "CHAINVIEW_CONFIG", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
}

/// How chainview trusts a TLS broker and proves itself to an mtls one.
/// Global: they work before or after `demo` (and are ignored by `broker`,
/// which serves TLS with its own --tls-cert/--tls-key/--client-ca).
#[derive(Debug, Args)]
#[command(
    next_help_heading = "Talking to a TLS broker (explorer, --script, demo; not `chainview broker`)"
)]
struct TlsClientArgs {
    /// Trust the CA certificates in this PEM file as well as the bundled web
    /// roots and the system store (repeatable). Without it, SSL_CERT_FILE is
    /// used if set, as the official SDK (httpx) does.
    #[arg(long = "ca-cert", value_name = "FILE", global = true)]
    ca_cert: Vec<PathBuf>,
    /// Client certificate (PEM chain) for a broker in mtls mode.
    #[arg(
        long,
        env = "CHAINVIEW_CLIENT_CERT",
        value_name = "FILE",
        global = true,
        requires = "client_key"
    )]
    client_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(
        long,
        env = "CHAINVIEW_CLIENT_KEY",
        value_name = "FILE",
        global = true,
        requires = "client_cert"
    )]
    client_key: Option<PathBuf>,
}

/// `chainview demo --broker URL …`: the same connection options as the
/// explorer, given after the subcommand (they override those before it).
/// Only `demo` has them: `broker` and `completions` do not talk to a broker.
#[derive(Debug, Args)]
struct DemoConnection {
    /// Broker to explore; without it chainview starts its embedded broker on 127.0.0.1.
    #[arg(long, value_name = "URL")]
    broker: Option<String>,
    /// Seconds to wait for any one broker answer.
    #[arg(long, value_name = "SECS", value_parser = parse_timeout)]
    timeout: Option<f64>,
    /// Ask the broker about every live token this often; 0 turns it off.
    #[arg(long, value_name = "SECS", value_parser = parse_interval)]
    revalidate: Option<f64>,
    /// Never change the broker: the scenario stops at its first step that would.
    #[arg(long)]
    read_only: bool,
}

/// The command definition, its long help carrying the keys from the one
/// keymap (the man page is made from it too).
fn command() -> clap::Command {
    use chainview::view::keymap;
    use clap::CommandFactory;
    let keys = keymap::summary(80);
    let observe_keys = keymap::summary_of(keymap::Mode::Observe, 80);
    Cli::command()
        .long_about(LONG_ABOUT.replace("{KEYS}", &keys))
        .mut_subcommand("observe", |c| {
            c.after_long_help(format!(
                "KEYS (interactive; ? shows them all, per pane):\n{observe_keys}"
            ))
        })
}

/// `chainview man [SUBCOMMAND]`: the manual page, from the clap definitions.
fn man(subcommand: Option<&str>) -> u8 {
    let mut cmd = command();
    cmd.build();
    let page = match subcommand {
        None => cmd,
        Some(name) => match cmd.find_subcommand(name) {
            Some(sub) => sub.clone().version(VERSION),
            None => {
                let names: Vec<&str> = cmd
                    .get_subcommands()
                    .map(|c| c.get_name())
                    .filter(|n| *n != "help")
                    .collect();
                report!(
                    "chainview: no subcommand '{name}'; the pages are: {}",
                    names.join(", ")
                );
                return 2;
            }
        },
    };
    let mut buf = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut buf) {
        report!("chainview: cannot render the manual page: {e}");
        return 3;
    }
    let _ = std::io::stdout().write_all(&buf);
    0
}

/// The command line.
fn parse_cli() -> Cli {
    use clap::FromArgMatches;
    let matches = match command().try_get_matches() {
        Ok(m) => m,
        Err(e) => clap_exit(e),
    };
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => clap_exit(e),
    }
}

/// clap's exit, except that `--help`/`--version` output that cannot be
/// written (other than into a closed pipe) is reported, exit 2.
fn clap_exit(e: clap::Error) -> ! {
    use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
    // On a terminal clap prints it (in colour); elsewhere the write is checked.
    if matches!(e.kind(), DisplayHelp | DisplayVersion) && !std::io::stdout().is_terminal() {
        let text = e.render().to_string();
        if let Err(err) = emit(text.as_bytes()) {
            std::process::exit(i32::from(output_failed(&err)));
        }
        std::process::exit(0);
    }
    e.exit()
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(0.0) => Ok(0.0),
        Ok(v) if v.is_finite() && (0.5..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected 0 (off) or a number of seconds between 0.5 and 3600, got '{s}'"
        )),
    }
}

fn parse_size(s: &str) -> Result<(u16, u16), String> {
    let bad = || {
        format!(
            "expected WIDTHxHEIGHT like 120x40 (at least {}x{}), got '{s}'",
            chainview::ui::MIN_WIDTH,
            chainview::ui::MIN_HEIGHT
        )
    };
    let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h) = (
        w.parse::<u16>().map_err(|_| bad())?,
        h.parse::<u16>().map_err(|_| bad())?,
    );
    if w > 1000 || h > 1000 || w < chainview::ui::MIN_WIDTH || h < chainview::ui::MIN_HEIGHT {
        return Err(bad());
    }
    Ok((w, h))
}

fn parse_timeout(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 3600.0 => Ok(v),
        Ok(0.0) => Err(
            "a timeout of 0 would fail every call; give a number of seconds above 0 (at most 3600)"
                .to_string(),
        ),
        _ => Err(format!(
            "expected a number of seconds above 0 and at most 3600, got '{s}'"
        )),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Step through a scenario interactively (default: the bundled deploy scenario).
    Demo {
        /// A `.chainview` scenario file.
        file: Option<PathBuf>,
        #[command(flatten)]
        conn: DemoConnection,
    },
    /// Print the scenario language: every step, option and expectation.
    Language,
    /// Print shell completions for chainview (e.g. `chainview completions bash > /etc/bash_completion.d/chainview`).
    Completions {
        /// bash, zsh, fish, powershell or elvish
        shell: clap_complete::Shell,
    },
    /// Run the embedded AgentWrit broker alone and print the `export` lines a client needs.
    ///
    /// Any AgentWrit client, the official Python SDK included, works against it
    /// unchanged. Stops cleanly on Ctrl-C or SIGTERM.
    Broker(BrokerArgs),
    /// Watch a broker's audit trail (admin) or a saved one and rebuild the
    /// delegation chains other clients made, with a timeline.
    ///
    /// Live: needs --broker URL (or AGENTWRIT_BROKER_URL) and
    /// AGENTWRIT_ADMIN_SECRET; polls GET /v1/audit/events for new events and
    /// checks the hash chain as it goes. Offline: --from FILE (as `audit dump`
    /// writes it, pages concatenated, or JSON lines), judged at its last event
    /// (or --at), never at the wall clock. With --print it prints the
    /// reconstruction and exits: 0 ok, 1 an integrity failure (the hash chain
    /// is broken, ids repeat or go backwards, the trail is cut short of its
    /// `total`, a broker whose pages do not add up, the read cap, a
    /// --checkpoint that does not match), 2 malformed input or usage, 3 the
    /// broker could not be reached or refused the admin secret.
    ///
    /// An unkeyed hash chain proves the trail is consistent, not that it is
    /// authentic: whoever can rewrite it can recompute it. --checkpoint is
    /// what catches a cut tail or a consistent rewrite.
    Observe(ObserveCli),
    /// The broker's audit trail (admin).
    Audit {
        #[command(subcommand)]
        what: AuditCommand,
    },
    /// Who can reach PATTERN: every agent holding a token with a grant that
    /// meets it, live, may (a status the trail cannot settle) or dead, with the
    /// path from the chain's root. PATTERN is a scope whose parts may be *
    /// (write:*:production). Exit 0, or 1 with --expect-none when anyone live
    /// or may holds it; 2 usage or malformed input; 3 the broker could not be
    /// reached.
    WhoCan(WhoCanCli),
    /// Least-privilege findings: wildcards handed down, hops that narrowed
    /// nothing, chains at the depth limit, re-rooted chains, tokens outliving
    /// their delegator, revocations that left survivors, escalation probing,
    /// revoked tokens presented … Exit 0, 1 when a finding not in the baseline
    /// is at or above --fail-on, 2 usage or malformed input, 3 unreachable.
    Check(CheckCli),
    /// What changed between two points of a trail (--at A --to B; by default
    /// its first and last events) or two trails (--from OLD --against NEW):
    /// agents that gained or lost reach, chains that appeared or ended, new
    /// findings. Exit 1 with --fail-on-new-access when anyone gained reach.
    Diff(DiffCli),
    /// The broker's checks for one token (a node id as observe shows it) and
    /// one scope, step by step: verification, expiry, each revocation check
    /// (jti, sub, task, chain root), the scope rule — ending in allowed,
    /// denied or unknown. Exit 0 allowed, 1 denied or unknown.
    Explain {
        node: String,
        scope: String,
        /// text, or json (JSON lines: checks, then the decision).
        #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
        format: JudgeFormat,
        #[command(flatten)]
        source: Source,
    },
    /// What a revocation would really do, by the broker's rule (it never
    /// cascades).
    WhatIf {
        #[command(subcommand)]
        what: WhatIfCommand,
    },
    /// The named brokers in the config file (see --context).
    ///
    /// A context table in config.toml names a broker's URL, CA file(s),
    /// client certificate and key, and where each secret comes from: an
    /// environment variable (admin_secret_env = "VAR") or a command whose
    /// output is the secret (admin_secret_cmd = ["pass", "show", "x"], run
    /// without a shell); never the secret itself. read_only = true allows
    /// only what reads the audit trail (observe, audit dump, check, diff,
    /// explain, who-can, what-if); production = true marks it in the status bar.
    Context {
        #[command(subcommand)]
        what: ContextCommand,
    },
    /// Print the manual page (roff, for man), made from these definitions:
    /// `chainview man > chainview.1 && man ./chainview.1`.
    Man {
        /// A subcommand's page instead, chainview-SUBCOMMAND(1) (e.g. observe).
        subcommand: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ContextCommand {
    /// List the contexts in the config file (* marks the one --context or CHAINVIEW_CONTEXT picks).
    List,
    /// Show one context (default: the one --context picks): its settings and
    /// where each secret comes from, never a secret.
    Show {
        /// The context to show.
        name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Save the broker's whole audit trail (every page, until `total`) as
    /// {"events":[…],"total":N}, for `observe --from`.
    ///
    /// The trail is checked as it is read (hash chain, ids that continue,
    /// the broker's `total`, the read cap): exit 1 when it fails, with the
    /// file still written up to where reading stopped.
    Dump {
        /// Write here instead of standard output (never overwrites).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Check the trail against this checkpoint (exit 1 when it is shorter
        /// or its hash there differs) and advance it when it passes; a first
        /// run creates it (JSON, 0600).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Read at most this many events (default 200000, about 64 MiB):
        /// past it reading stops, exit 1.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        max_events: Option<u64>,
        /// Broker to read (or AGENTWRIT_BROKER_URL); needs AGENTWRIT_ADMIN_SECRET.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
    },
}

mod cli;
use cli::{broker::*, context::*, judge::*, observe::*, script::*};

/// color-eyre's hooks: an error or a panic prints what happened and where,
/// then one short section saying where the log is and how to report it; the
/// backtrace only when `RUST_BACKTRACE` asks for it (color-eyre's rule), and
/// no environment section. The TUI's own panic hook, installed over this one
/// while the terminal is raw, restores the terminal first.
fn install_error_hooks() {
    let hooks = color_eyre::config::HookBuilder::default()
        .display_env_section(false)
        .panic_section(format!(
            "This is a bug in chainview {}. Please report it with this message and the command \
             you ran (tokens and secrets are never in it).\nA log of the run is written to {} \
             when CHAINVIEW_LOG is set (e.g. CHAINVIEW_LOG=debug).",
            env!("CARGO_PKG_VERSION"),
            chainview::logging::log_path().display()
        ));
    if let Err(e) = hooks.install() {
        report!("chainview: {e}");
    }
}

fn main() -> ExitCode {
    install_error_hooks();
    let mut cli = parse_cli();
    chainview::observe::when::show_utc(cli.utc);
    if let Err(e) = chainview::logging::init() {
        report!("chainview: logging is off: {e}");
    }
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            report!("chainview: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    // Commands that never talk to a broker, and `context`, which reads the
    // config file itself.
    match &cli.command {
        Some(Command::Context { what }) => return ExitCode::from(run_context(&cli, what)),
        Some(Command::Man { subcommand }) => return ExitCode::from(man(subcommand.as_deref())),
        _ => {}
    }
    let context = match chosen_context(&cli) {
        Ok(c) => c,
        Err(e) => {
            report!("chainview: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let context = context.as_ref();
    if let Some(path) = cli.script.clone() {
        let settings = match settings(&cli, context, true) {
            Ok(s) => s,
            Err(e) => {
                report!("chainview: {e}");
                return ExitCode::from(e.exit_code());
            }
        };
        let opts = ScriptOptions {
            format: cli.format,
            frames: cli.frames,
            reveal: cli.reveal_secrets,
        };
        // A signal ends the replay at once; the embedded broker's scratch
        // directory goes with it.
        return ExitCode::from(rt.block_on(async {
            tokio::select! {
                code = run_script(path, opts, settings) => code,
                code = stop_signal() => {
                    chainview::broker::embedded::remove_scratch_dirs();
                    code
                }
            }
        }));
    }
    match &cli.command {
        Some(Command::Observe(ObserveCli {
            broker: Some(b), ..
        }))
        | Some(Command::Audit {
            what: AuditCommand::Dump {
                broker: Some(b), ..
            },
        }) => cli.broker = Some(b.clone()),
        Some(Command::WhoCan(WhoCanCli { source, .. }))
        | Some(Command::Check(CheckCli { source, .. }))
        | Some(Command::Diff(DiffCli { source, .. }))
        | Some(Command::Explain { source, .. })
        | Some(Command::WhatIf {
            what: WhatIfCommand::Revoke { source, .. },
        }) if source.broker.is_some() => cli.broker = source.broker.clone(),
        _ => {}
    }
    if let Some(Command::Demo { conn, .. }) = &cli.command {
        if let Some(b) = &conn.broker {
            cli.broker = Some(b.clone());
        }
        if let Some(t) = conn.timeout {
            cli.timeout = t;
        }
        if let Some(r) = conn.revalidate {
            cli.revalidate = r;
        }
        cli.read_only |= conn.read_only;
    }
    let reads_only = reads_only(&cli.command);
    let settings = match settings(&cli, context, !reads_only) {
        Ok(s) => s,
        Err(e) => {
            report!("chainview: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let live = (cli.revalidate > 0.0).then(|| Duration::from_secs_f64(cli.revalidate));
    let read_only = cli.read_only;
    let result = rt.block_on(async {
        match cli.command {
            Some(Command::Broker(args)) => run_broker(args).await,
            Some(Command::Demo { file, .. }) => {
                interactive(settings, Some(file), live, read_only).await
            }
            Some(Command::Observe(args)) => run_observe(settings, args).await,
            Some(
                cmd @ (Command::WhoCan(_)
                | Command::Check(_)
                | Command::Diff(_)
                | Command::Explain { .. }
                | Command::WhatIf { .. }),
            ) => Ok(cli::judge::run(cmd, &settings).await),
            Some(Command::Audit {
                what:
                    AuditCommand::Dump {
                        out,
                        checkpoint,
                        max_events,
                        ..
                    },
            }) => Ok(chainview::watch::dump(
                &chainview::session::Settings {
                    audit_cap: max_events
                        .map(|n| {
                            chainview::worker::ReadCap::events(
                                usize::try_from(n).unwrap_or(usize::MAX),
                            )
                        })
                        .unwrap_or(settings.audit_cap),
                    ..settings
                },
                out.as_deref(),
                checkpoint.as_deref(),
            )
            .await
            .unwrap_or_else(|e| {
                report!("chainview: {e}");
                e.exit_code()
            })),
            Some(Command::Language) => Ok(emit(chainview::scenario::REFERENCE.as_bytes())
                .map_or_else(|e| output_failed(&e), |()| 0)),
            Some(Command::Context { .. } | Command::Man { .. }) => Ok(0),
            Some(Command::Completions { shell }) => {
                let mut cmd = <Cli as clap::CommandFactory>::command();
                let mut buf = Vec::new();
                clap_complete::generate(shell, &mut cmd, "chainview", &mut buf);
                // A closed pipe (e.g. `| head`) is not an error worth a report.
                Ok(emit(&buf).map_or_else(|e| output_failed(&e), |()| 0))
            }
            None => interactive(settings, None, live, read_only).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report!("chainview: {e:#}");
            ExitCode::from(3)
        }
    }
}

/// The interactive session: `demo` on a scenario (the bundled deploy one
/// by default); plain `chainview` on the embedded broker on the deploy
/// scenario too, and attached to another broker on none (it changes
/// nothing there until asked to).
async fn interactive(
    settings: Settings,
    demo: Option<Option<PathBuf>>,
    live: Option<Duration>,
    read_only: bool,
) -> Result<u8> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    if demo.is_none() && settings.broker_url.is_some() {
        return ended(chainview::tui::run(settings, None, no_color, live, read_only).await);
    }
    let (name, text) = match demo.as_ref().and_then(Option::as_ref) {
        Some(path) => match read_script(path) {
            Ok(x) => x,
            Err(e) => {
                report!("chainview: cannot read script {}: {e}", path.display());
                return Ok(2);
            }
        },
        None => (
            "deploy.chainview".to_string(),
            chainview::tui::DEPLOY_SCENARIO.to_string(),
        ),
    };
    let script = match chainview::scenario::parse(&name, &text) {
        Ok(s) => s,
        Err(errors) => {
            report!("{errors}");
            return Ok(2);
        }
    };
    ended(chainview::tui::run(settings, Some(script), no_color, live, read_only).await)
}

/// The exit code of an interactive session.
fn ended(r: Result<chainview::tui::Ended, chainview::tui::TuiError>) -> Result<u8> {
    match r {
        Ok(chainview::tui::Ended::Quit) => Ok(0),
        Ok(chainview::tui::Ended::Signal(code)) => Ok(code),
        Err(chainview::tui::TuiError::Session(e)) => {
            report!("chainview: {e}");
            Ok(3)
        }
        Err(e) => Err(e.into()),
    }
}

/// Where the broker is and how to reach it: flags and environment
/// variables first, then the context. `app_credentials`: fetch the app's
/// credentials from the context (what only reads needs only the admin
/// secret, so a command for the others is not run for them).
fn settings(
    cli: &Cli,
    context: Option<&chainview::config::Context>,
    app_credentials: bool,
) -> Result<Settings, ContextError> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let from_context = |source: Option<&chainview::config::Source>,
                        ctx: &chainview::config::Context,
                        what: &'static str|
     -> Result<Option<String>, ContextError> {
        match source {
            Some(s) => Ok(Some(s.fetch(&ctx.name, what)?)),
            None => Ok(None),
        }
    };
    let mut s = Settings {
        broker_url: cli.broker.clone().filter(|u| !u.is_empty()),
        client_id: env("AGENTWRIT_CLIENT_ID"),
        client_secret: env("AGENTWRIT_CLIENT_SECRET"),
        admin_secret: env("AGENTWRIT_ADMIN_SECRET"),
        timeout: Some(Duration::from_secs_f64(cli.timeout)),
        tls: chainview::broker::tls::ClientTls {
            ca_files: cli.tls.ca_cert.clone(),
            client_cert: cli.tls.client_cert.clone(),
            client_key: cli.tls.client_key.clone(),
        },
        audit_cap: chainview::worker::ReadCap::DEFAULT,
        context: None,
    };
    if let Some(ctx) = context {
        match &s.broker_url {
            Some(url) if url != &ctx.url => report!(
                "chainview: note: --broker/AGENTWRIT_BROKER_URL ({url}) wins over context '{}' ({}); the context's certificates and secrets go to it",
                ctx.name,
                ctx.url
            ),
            Some(_) => {}
            None => s.broker_url = Some(ctx.url.clone()),
        }
        if s.admin_secret.is_none() {
            s.admin_secret = from_context(ctx.admin_secret.as_ref(), ctx, "admin secret")?;
        }
        if app_credentials {
            if s.client_id.is_none() {
                s.client_id = from_context(ctx.client_id.as_ref(), ctx, "client id")?;
            }
            if s.client_secret.is_none() {
                s.client_secret = from_context(ctx.client_secret.as_ref(), ctx, "client secret")?;
            }
        }
        // The context's CAs are for its broker: they come before
        // SSL_CERT_FILE (a machine-wide setting), after --ca-cert.
        if s.tls.ca_files.is_empty() {
            s.tls.ca_files = ctx.ca_files.clone();
        }
        if s.tls.client_cert.is_none() {
            s.tls.client_cert = ctx.client_cert.clone();
            s.tls.client_key = ctx.client_key.clone();
        }
        s.context = Some(ctx.label());
    }
    if s.tls.ca_files.is_empty() {
        s.tls.ca_files = env("SSL_CERT_FILE")
            .map(PathBuf::from)
            .into_iter()
            .collect();
    }
    Ok(s)
}

/// Reads a script (a file or `-` for standard input), at most
/// `MAX_SCRIPT` bytes: a larger input (or an endless one like /dev/zero) is
/// refused without being read whole.
fn read_script(path: &PathBuf) -> std::io::Result<(String, String)> {
    use chainview::scenario::MAX_SCRIPT;
    let (name, reader): (String, Box<dyn Read>) = if path.as_os_str() == "-" {
        ("-".into(), Box::new(std::io::stdin()))
    } else {
        (
            path.display().to_string(),
            Box::new(std::fs::File::open(path)?),
        )
    };
    let bytes = chainview::scenario::read_at_most(reader, MAX_SCRIPT)?.ok_or_else(|| {
        std::io::Error::other(format!(
            "larger than {} MiB; a script may be at most that",
            MAX_SCRIPT >> 20
        ))
    })?;
    let text = String::from_utf8(bytes)
        .map_err(|e| std::io::Error::other(format!("not UTF-8 text ({e})")))?;
    Ok((name, text))
}
