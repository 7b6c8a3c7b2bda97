//! `chainview observe`: its arguments, headless or interactive.

use crate::*;

#[derive(Debug, Args)]
pub(crate) struct ObserveCli {
    /// Read a saved trail instead of a broker.
    #[arg(long, value_name = "FILE")]
    pub(crate) from: Option<PathBuf>,
    /// Print the reconstruction and exit: text (a tree), json (JSON lines:
    /// agents, nodes, denials, a summary), mermaid or dot (diagrams).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub(crate) print: Option<PrintArg>,
    /// The state as of this event (evt-000123 or 123) or time (15:20:49 on
    /// the trail's day, 2026-11-26 15:20:49 local, or RFC 3339); default the
    /// last event (docs/observe.md#times).
    #[arg(long, value_name = "EVT|TIME")]
    pub(crate) at: Option<String>,
    /// Broker to watch (or AGENTWRIT_BROKER_URL); needs AGENTWRIT_ADMIN_SECRET.
    #[arg(long, value_name = "URL", conflicts_with = "from")]
    pub(crate) broker: Option<String>,
    /// Keep only these chains: task=…, orch=…, agent=… or app=… (repeatable;
    /// the same key again is an OR, different keys an AND; a value ending
    /// in * is a prefix). A token is kept when it matches, with every token
    /// above it, so each path is whole from its root (docs/observe.md).
    #[arg(long, value_name = "KEY=VALUE", requires = "print")]
    pub(crate) filter: Vec<chainview::observe::select::Term>,
    /// Seconds between polls of a live broker.
    #[arg(long, default_value_t = 2.0, value_name = "SECS", value_parser = parse_poll)]
    pub(crate) interval: f64,
    /// Check the trail against this checkpoint — the last event id and its
    /// hash as an earlier run saw them — and fail (exit 1) if the trail is
    /// shorter or its hash there differs (truncation, a consistent rewrite);
    /// advance it when the run passes. A first run creates it (JSON, 0600).
    #[arg(long, value_name = "FILE")]
    pub(crate) checkpoint: Option<PathBuf>,
    /// Read at most this many events from a broker (default 200000, about
    /// 64 MiB): past it the follower stops and says so (exit 1 with --print).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "from")]
    pub(crate) max_events: Option<u64>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum PrintArg {
    Text,
    Json,
    Mermaid,
    Dot,
}

pub(crate) fn parse_poll(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.2..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "expected a number of seconds between 0.2 and 3600, got '{s}'"
        )),
    }
}

pub(crate) async fn run_observe(settings: Settings, args: ObserveCli) -> Result<u8> {
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
        filter: chainview::observe::select::Select::new(args.filter),
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
