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

/// Where a judgment reads the trail from (as `observe`).
#[derive(Debug, Args)]
struct Source {
    /// Read a saved trail instead of a broker.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Judge as of this event (evt-000123) or time (RFC 3339); default the last event.
    #[arg(long, value_name = "EVT|TIME")]
    at: Option<String>,
    /// Broker to read (or AGENTWRIT_BROKER_URL); needs AGENTWRIT_ADMIN_SECRET.
    #[arg(long, value_name = "URL", conflicts_with = "from")]
    broker: Option<String>,
    /// Replay this scenario on a fresh embedded broker and judge its trail
    /// (a delegation design checked in CI before it ships).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["from", "broker"])]
    script: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum JudgeFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct WhoCanCli {
    /// action:resource:identifier, each part a word or *.
    pattern: String,
    /// List dead holders too.
    #[arg(long)]
    all: bool,
    /// Exit 1 when any live or may holder exists (a CI guard).
    #[arg(long)]
    expect_none: bool,
    /// text, or json (JSON lines).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    format: JudgeFormat,
    #[command(flatten)]
    source: Source,
}

#[derive(Debug, Args)]
struct CheckCli {
    /// text, json (JSON lines: findings, then a summary), sarif (SARIF 2.1.0) or markdown.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    format: CheckFormatArg,
    /// Exit 1 when a finding is at least this severe: error, warning, note or never.
    #[arg(long, default_value = "warning", value_name = "LEVEL", value_parser = ["error", "warning", "note", "never"])]
    fail_on: String,
    /// Findings whose fingerprint is in this file (as --write-baseline writes it) are not counted.
    #[arg(long, value_name = "FILE")]
    baseline: Option<PathBuf>,
    /// Write every finding's fingerprint here (never overwrites), to accept them.
    #[arg(long, value_name = "FILE")]
    write_baseline: Option<PathBuf>,
    #[command(flatten)]
    source: Source,
}

#[derive(Debug, Args)]
struct DiffCli {
    /// The later point: an event (evt-000123) or time (RFC 3339); default the last event.
    #[arg(long, value_name = "EVT|TIME")]
    to: Option<String>,
    /// Compare with another saved trail (its last event, or --to there).
    #[arg(long, value_name = "FILE")]
    against: Option<PathBuf>,
    /// Exit 1 when any agent gained reach (a "no new access" gate).
    #[arg(long)]
    fail_on_new_access: bool,
    /// text, or json (JSON lines).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    format: JudgeFormat,
    #[command(flatten)]
    source: Source,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum CheckFormatArg {
    Text,
    Json,
    Sarif,
    Markdown,
}

#[derive(Debug, Subcommand)]
enum WhatIfCommand {
    /// What dies, what may die and what survives an entry (LEVEL token, agent,
    /// task or chain; TARGET as the broker takes it, or a node id such as n12
    /// from observe), and the entries that would kill the whole subtree.
    Revoke {
        level: String,
        target: String,
        /// text, or json (JSON lines: effects, then the plan).
        #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
        format: JudgeFormat,
        #[command(flatten)]
        source: Source,
    },
}

impl Source {
    fn args(&self) -> chainview::watch::ObserveArgs {
        chainview::watch::ObserveArgs {
            from: self.from.clone(),
            print: None,
            at: self.at.clone(),
            interval: Duration::from_secs(2),
            no_color: true,
            checkpoint: None,
            script: self.script.clone(),
        }
    }
}

impl JudgeFormat {
    fn format(self) -> chainview::judging::Format {
        match self {
            JudgeFormat::Text => chainview::judging::Format::Text,
            JudgeFormat::Json => chainview::judging::Format::Json,
        }
    }
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

#[derive(Debug, Args)]
struct ObserveCli {
    /// Read a saved trail instead of a broker.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,
    /// Print the reconstruction and exit: text (a tree), json (JSON lines:
    /// agents, nodes, denials, a summary), mermaid or dot (diagrams).
    #[arg(long, value_enum, value_name = "FORMAT")]
    print: Option<PrintArg>,
    /// The state as of this event (evt-000123) or time (RFC 3339); default the last event.
    #[arg(long, value_name = "EVT|TIME")]
    at: Option<String>,
    /// Broker to watch (or AGENTWRIT_BROKER_URL); needs AGENTWRIT_ADMIN_SECRET.
    #[arg(long, value_name = "URL", conflicts_with = "from")]
    broker: Option<String>,
    /// Seconds between polls of a live broker.
    #[arg(long, default_value_t = 2.0, value_name = "SECS", value_parser = parse_poll)]
    interval: f64,
    /// Check the trail against this checkpoint — the last event id and its
    /// hash as an earlier run saw them — and fail (exit 1) if the trail is
    /// shorter or its hash there differs (truncation, a consistent rewrite);
    /// advance it when the run passes. A first run creates it (JSON, 0600).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Read at most this many events from a broker (default 200000, about
    /// 64 MiB): past it the follower stops and says so (exit 1 with --print).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "from")]
    max_events: Option<u64>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PrintArg {
    Text,
    Json,
    Mermaid,
    Dot,
}

fn parse_poll(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.2..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a number of seconds between 0.2 and 3600, got '{s}'"
        )),
    }
}

async fn run_observe(settings: Settings, args: ObserveCli) -> Result<u8> {
    use chainview::watch::{ObserveArgs, PrintFormat};
    let format = args.print.map(|p| match p {
        PrintArg::Text => PrintFormat::Text,
        PrintArg::Json => PrintFormat::Json,
        PrintArg::Mermaid => PrintFormat::Mermaid,
        PrintArg::Dot => PrintFormat::Dot,
    });
    let opts = ObserveArgs {
        from: args.from,
        print: format,
        at: args.at,
        interval: Duration::from_secs_f64(args.interval),
        no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        checkpoint: args.checkpoint,
        script: None,
    };
    let mut settings = settings;
    if let Some(n) = args.max_events {
        settings.audit_cap =
            chainview::worker::ReadCap::events(usize::try_from(n).unwrap_or(usize::MAX));
    }
    let r = match format {
        Some(f) => chainview::watch::print_headless(&settings, &opts, f).await,
        None => chainview::watch::interactive(&settings, &opts).await,
    };
    Ok(r.unwrap_or_else(|e| {
        report!("chainview: {e}");
        e.exit_code()
    }))
}

#[derive(Debug, Args)]
struct BrokerArgs {
    /// TCP port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to bind. Keep the loopback default unless you know why not.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Admin secret, at least 16 characters; a random one is generated and printed when neither this nor the variable is set.
    #[arg(
        long,
        env = "AGENTWRIT_ADMIN_SECRET",
        hide_env_values = true,
        value_name = "SECRET"
    )]
    admin_secret: Option<String>,
    /// Register an app at start: NAME=SCOPE,SCOPE (repeatable). Its client id and
    /// secret are printed as export lines.
    #[arg(long = "app", value_name = "NAME=SCOPES", value_parser = parse_app)]
    apps: Vec<(String, Vec<String>)>,
    /// Answer 500 where the real v2.0.0 broker does for client errors (a delegate
    /// request without delegate_to/scope, a duplicate app name) instead of the
    /// documented 400/409.
    #[arg(long)]
    strict_500s: bool,
    /// Keep what the real broker keeps across restarts in DIR: the signing key
    /// (signing.key, PEM, 0600) and apps, revocations and the audit trail
    /// (broker.db, SQLite). Without it they live in a private temporary
    /// directory removed when the broker stops.
    #[arg(long, env = "AGENTWRIT_DATA_DIR", value_name = "DIR")]
    data: Option<PathBuf>,
    /// With --data: start over on purpose — delete the directory's signing
    /// key, apps, revocations and audit trail first. (A damaged directory is
    /// refused, never reset silently.)
    #[arg(long, requires = "data")]
    reset: bool,
    /// With --data: do not sync each commit to disk. Faster; an answered
    /// audit event still survives the broker being killed (kill -9), but a
    /// power loss or kernel crash may lose the last ones. Off by default:
    /// every audited request is answered only once its event is synced.
    #[arg(long, requires = "data")]
    power_loss_may_lose_events: bool,
    /// Take the client IP for rate limits from X-Forwarded-For. Only behind a
    /// reverse proxy that sets it: otherwise any client can pick its own IP.
    #[arg(long)]
    trust_proxy: bool,
    /// Connections served at once. Past it the longest-idle connection is
    /// closed to make room; a newcomer is refused only when all are busy.
    #[arg(long, default_value_t = 1024, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Serve HTTPS with this certificate (PEM chain), as the real broker does
    /// with AA_TLS_MODE=tls: TLS 1.2+ with AEAD suites only, and HSTS.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// With --tls-cert: require a client certificate signed by a CA in this PEM
    /// file (mtls, as AA_TLS_MODE=mtls with AA_TLS_CLIENT_CA).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    client_ca: Option<PathBuf>,
}

/// The shortest admin secret `chainview broker` accepts: secrets are checked
/// with SHA-256 (not bcrypt), so a short one could be guessed quickly.
const MIN_ADMIN_SECRET: usize = 16;

fn parse_app(s: &str) -> Result<(String, Vec<String>), String> {
    let (name, scopes) = s
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=SCOPE,SCOPE, got '{s}'"))?;
    let scopes: Vec<String> = scopes.split(',').map(str::to_string).collect();
    for sc in &scopes {
        chainview::scope::validate(sc).map_err(|e| e.to_string())?;
    }
    Ok((name.to_string(), scopes))
}

fn main() -> ExitCode {
    if let Err(e) = color_eyre::install() {
        report!("chainview: {e}");
    }
    let mut cli = parse_cli();
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
    let result = rt.block_on(async {
        match cli.command {
            Some(Command::Broker(args)) => run_broker(args).await,
            Some(Command::Demo { file, .. }) => interactive(settings, file, live).await,
            Some(Command::Observe(args)) => run_observe(settings, args).await,
            Some(Command::WhoCan(c)) => {
                let (src, format) = (c.source.args(), c.format.format());
                let r = chainview::judging::run_who_can(
                    &settings,
                    &src,
                    &c.pattern,
                    format,
                    c.all,
                    c.expect_none,
                );
                Ok(r.await.unwrap_or_else(|e| {
                    report!("chainview: {e}");
                    e.exit_code()
                }))
            }
            Some(Command::Explain {
                node,
                scope,
                format,
                source,
            }) => {
                let src = source.args();
                let r = chainview::judging::run_explain(
                    &settings,
                    &src,
                    &node,
                    &scope,
                    format.format(),
                );
                Ok(r.await.unwrap_or_else(|e| {
                    report!("chainview: {e}");
                    e.exit_code()
                }))
            }
            Some(Command::Diff(c)) => {
                let src = c.source.args();
                let r = chainview::judging::run_diff(
                    &settings,
                    &src,
                    c.to.as_deref(),
                    c.against.as_deref(),
                    c.format.format(),
                    c.fail_on_new_access,
                );
                Ok(r.await.unwrap_or_else(|e| {
                    report!("chainview: {e}");
                    e.exit_code()
                }))
            }
            Some(Command::Check(c)) => {
                use chainview::judging::{CheckFormat, CheckOptions};
                let src = c.source.args();
                let opts = CheckOptions {
                    format: match c.format {
                        CheckFormatArg::Text => CheckFormat::Text,
                        CheckFormatArg::Json => CheckFormat::Json,
                        CheckFormatArg::Sarif => CheckFormat::Sarif,
                        CheckFormatArg::Markdown => CheckFormat::Markdown,
                    },
                    fail_on: chainview::judge::check::Severity::parse(&c.fail_on),
                    baseline: c.baseline,
                    write_baseline: c.write_baseline,
                };
                let r = chainview::judging::run_check(&settings, &src, &opts);
                Ok(r.await.unwrap_or_else(|e| {
                    report!("chainview: {e}");
                    e.exit_code()
                }))
            }
            Some(Command::WhatIf {
                what:
                    WhatIfCommand::Revoke {
                        level,
                        target,
                        format,
                        source,
                    },
            }) => {
                let (src, format) = (source.args(), format.format());
                let r = chainview::judging::run_what_if(&settings, &src, &level, &target, format);
                Ok(r.await.unwrap_or_else(|e| {
                    report!("chainview: {e}");
                    e.exit_code()
                }))
            }
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
            None => interactive(settings, None, live).await,
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

/// The interactive session on a scenario (the bundled deploy one by default).
async fn interactive(
    settings: Settings,
    file: Option<PathBuf>,
    live: Option<Duration>,
) -> Result<u8> {
    let (name, text) = match &file {
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
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    match chainview::tui::run(settings, Some(script), no_color, live).await {
        Ok(chainview::tui::Ended::Quit) => Ok(0),
        Ok(chainview::tui::Ended::Signal(code)) => Ok(code),
        Err(chainview::tui::TuiError::Session(e)) => {
            report!("chainview: {e}");
            Ok(3)
        }
        Err(e) => Err(e.into()),
    }
}

/// Why a command-line problem with contexts stops chainview, and its exit code.
#[derive(Debug, thiserror::Error)]
enum ContextError {
    #[error(transparent)]
    Config(#[from] chainview::config::ConfigError),
    #[error(
        "context '{0}' is read_only: only the commands that read its audit trail run against it \
         (observe, audit dump, check, diff, explain, who-can, what-if); the explorer, demo and --script \
         register agents, delegate and revoke"
    )]
    ReadOnly(String),
}

impl ContextError {
    /// 3 when a secret could not be had (the broker cannot be set up), 2
    /// for a config file or command line to fix.
    fn exit_code(&self) -> u8 {
        use chainview::config::ConfigError as C;
        match self {
            ContextError::Config(C::EnvUnset { .. } | C::Command { .. }) => 3,
            _ => 2,
        }
    }
}

fn config_path(cli: &Cli) -> Result<PathBuf, chainview::config::ConfigError> {
    match &cli.contexts.config {
        Some(p) => Ok(p.clone()),
        None => chainview::config::default_path(),
    }
}

/// Whether the command only reads the broker (its audit trail, as admin):
/// what a read_only context allows, and what needs no app credentials.
fn reads_only(command: &Option<Command>) -> bool {
    matches!(
        command,
        Some(
            Command::Observe(_)
                | Command::Audit { .. }
                | Command::Check(_)
                | Command::Diff(_)
                | Command::Explain { .. }
                | Command::WhoCan(_)
                | Command::WhatIf { .. }
        )
    )
}

/// The context --context (or CHAINVIEW_CONTEXT) picks, if any, checked
/// against what the command does. The config file is read only then.
fn chosen_context(cli: &Cli) -> Result<Option<chainview::config::Context>, ContextError> {
    let Some(name) = cli.contexts.context.as_deref().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    // The embedded broker and the offline commands have no use for one.
    if matches!(
        cli.command,
        Some(Command::Broker(_) | Command::Language | Command::Completions { .. })
    ) {
        return Ok(None);
    }
    let file = chainview::config::load(&config_path(cli)?)?;
    let ctx = file.context(name)?.clone();
    let reads_only = reads_only(&cli.command);
    if ctx.read_only && !reads_only {
        return Err(ContextError::ReadOnly(ctx.name));
    }
    Ok(Some(ctx))
}

/// `chainview context list|show`.
fn run_context(cli: &Cli, what: &ContextCommand) -> u8 {
    let file = match config_path(cli).and_then(|p| chainview::config::load(&p)) {
        Ok(f) => f,
        Err(e) => {
            report!("chainview: {e}");
            return 2;
        }
    };
    let chosen = cli.contexts.context.as_deref().filter(|n| !n.is_empty());
    let out = match what {
        ContextCommand::List => {
            let mut out = String::new();
            for c in file.contexts.values() {
                let mut marks = Vec::new();
                if c.read_only {
                    marks.push("read-only");
                }
                if c.production {
                    marks.push("production");
                }
                out.push_str(&format!(
                    "{} {:<16} {}{}\n",
                    if chosen == Some(c.name.as_str()) {
                        "*"
                    } else {
                        " "
                    },
                    c.name,
                    c.url,
                    if marks.is_empty() {
                        String::new()
                    } else {
                        format!("  ({})", marks.join(", "))
                    }
                ));
            }
            if out.is_empty() {
                out = format!(
                    "# no contexts in {}: add a [context.NAME] table\n",
                    file.path.display()
                );
            }
            visible(&out).into_owned()
        }
        ContextCommand::Show { name } => {
            let Some(name) = name.as_deref().or(chosen) else {
                report!("chainview: name the context to show: chainview context show NAME");
                return 2;
            };
            match file.context(name) {
                Ok(c) => c.show(),
                Err(e) => {
                    report!("chainview: {e}");
                    return 2;
                }
            }
        }
    };
    let _ = std::io::stdout().write_all(out.as_bytes());
    0
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

/// `--script`: headless replay. Returns the documented exit code.
struct ScriptOptions {
    format: Format,
    frames: Option<(u16, u16)>,
    reveal: bool,
}

async fn run_script(path: PathBuf, opts: ScriptOptions, settings: Settings) -> u8 {
    let ScriptOptions {
        format,
        frames,
        reveal,
    } = opts;
    let started = Instant::now();
    let (file, text) = match read_script(&path) {
        Ok(x) => x,
        Err(e) => {
            report!("chainview: cannot read script {}: {e}", path.display());
            return 2;
        }
    };
    let script = match chainview::scenario::parse(&file, &text) {
        Ok(s) => s,
        Err(errors) => {
            report!("{errors}");
            return 2;
        }
    };
    let mut replay = match Replay::start(script, &settings).await {
        Ok(r) => r,
        Err(e) => {
            report!("chainview: {e}");
            if format == Format::Json {
                // A JSON consumer reads stdout: say why there, too.
                let summary = transcript::Summary {
                    unreachable: Some(e.to_string()),
                    millis: started.elapsed().as_millis(),
                    ..transcript::Summary::default()
                };
                let mut out = Visible::json(std::io::stdout().lock());
                let _ = writeln!(out, "{}", transcript::summary_json(&summary));
            }
            return 3;
        }
    };
    replay.reveal_secrets(reveal);
    let (stdout, failed) = Out::new(std::io::stdout().lock());
    let mut out = match format {
        Format::Json => Visible::json(stdout),
        _ => Visible::text(stdout),
    };
    if format == Format::Text {
        let title = replay.script().title().map(str::to_string);
        let header = transcript::header_text(title.as_deref(), &file, &replay.target.describe());
        let _ = write!(out, "{header}");
    }
    let mut view = frames.map(|_| View::new(Some(replay.script()), true));
    while let Some(report) = replay.next().await {
        let frame = match (&mut view, frames) {
            (Some(v), Some((w, h))) => {
                v.on_report(&replay.driver.app, &report);
                Some(chainview::ui::render_text(
                    &replay.driver.app,
                    v,
                    w,
                    h,
                    unix_now(),
                ))
            }
            _ => None,
        };
        let _ = match (format, frame) {
            (Format::Text, None) => write!(out, "{}", transcript::step_text(&report)),
            (Format::Text, Some(lines)) => writeln!(
                out,
                "\n── frame after step {} · line {} · {}",
                report.index, report.line, report.source
            )
            .and_then(|_| writeln!(out, "{}", lines.join("\n"))),
            (Format::Json, frame) => {
                let mut v = transcript::step_json(&report);
                if let Some(lines) = frame {
                    v["frame"] = serde_json::json!(lines);
                }
                writeln!(out, "{v}")
            }
            (Format::Mermaid | Format::Dot, _) => Ok(()),
        };
    }
    let graph = chainview::diagram::from_app(&replay.driver.app, unix_now());
    let mut summary = replay.finish().await;
    summary.millis = started.elapsed().as_millis();
    let _ = match format {
        Format::Text => write!(out, "{}", transcript::summary_text(&summary)),
        Format::Json => writeln!(out, "{}", transcript::summary_json(&summary)),
        Format::Mermaid => write!(out, "{}", chainview::diagram::mermaid::render(&graph)),
        Format::Dot => write!(out, "{}", chainview::diagram::dot::render(&graph)),
    };
    let _ = out.flush();
    drop(out);
    if let Some(e) = failed.borrow().as_ref() {
        return output_failed(e);
    }
    summary.exit_code()
}

async fn run_broker(args: BrokerArgs) -> Result<u8> {
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
const BROKER_EVENTS_UNWRITTEN: u8 = 4;

/// The embedded broker's configuration from `chainview broker`'s flags.
fn broker_config(args: &BrokerArgs) -> Result<Config> {
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
fn announce_restored(r: &chainview::broker::embedded::Restored, reset: bool, generated: bool) {
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
fn app_var(base: &str, name: &str, several: bool) -> String {
    if several {
        format!("{base}_{}", name.to_ascii_uppercase().replace('-', "_"))
    } else {
        base.to_string()
    }
}

/// `--app NAME=SCOPES`: each app registered (or found from an earlier run)
/// and its export lines. One app: `AGENTWRIT_CLIENT_ID`/`_SECRET`, what the
/// SDK reads; several: one block each, the variables suffixed with the name.
fn announce_apps(broker: &EmbeddedBroker, apps: &[(String, Vec<String>)]) -> Result<()> {
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
fn announce_tls(broker: &EmbeddedBroker, args: &BrokerArgs) {
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
fn stop_signal() -> impl std::future::Future<Output = u8> {
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
