//! `chainview observe` and `chainview audit dump`: a broker's audit trail
//! (through the worker, the one owner of broker I/O) or a saved one, rebuilt
//! by [`crate::observe`], printed headless or shown in the terminal.
//!
//! Exit codes: 0 ok; 1 an integrity failure (the hash chain is broken, the
//! trail is cut short of its `total`, a broker whose pages do not add up,
//! the read cap, a checkpoint that does not match); 2 malformed input or
//! usage; 3 the broker could not be reached or refused the admin secret.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::broker::ClientError;
use crate::broker::types::AuditEvent;
use crate::observe::checkpoint::{self, Checkpoint};
use crate::observe::{Observed, load};
use crate::session::{self, Settings};
use crate::text::Visible;
use crate::worker::{self, Command, Outcome, Paging, WorkerHandle};

/// Pages asked for in one poll (1000 events each).
pub const POLL_PAGES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintFormat {
    Text,
    Json,
    Mermaid,
    Dot,
}

#[derive(Debug, Clone)]
pub struct ObserveArgs {
    pub from: Option<PathBuf>,
    pub print: Option<PrintFormat>,
    /// `evt-…` or an RFC 3339 time.
    pub at: Option<String>,
    pub interval: Duration,
    pub no_color: bool,
    /// `--checkpoint FILE`: checked against, advanced when the read passes.
    pub checkpoint: Option<PathBuf>,
    /// The judgment commands' `--script FILE` (see `judging`); observe itself
    /// reads a broker or `from`.
    pub script: Option<PathBuf>,
    /// `--filter`: the chains kept ([`crate::observe::select`]).
    pub filter: crate::observe::select::Select,
}

/// Why observing stopped early; each has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Load(#[from] load::LoadError),
    #[error("{0}")]
    Broker(String),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

impl WatchError {
    pub fn exit_code(&self) -> u8 {
        match self {
            WatchError::Usage(_) | WatchError::Load(_) => 2,
            WatchError::Broker(_) => 3,
            WatchError::Write { .. } | WatchError::Checkpoint(_) => 2,
        }
    }
}

const NEEDS_SOURCE: &str = "observe needs a trail: a broker (--broker URL or AGENTWRIT_BROKER_URL, with AGENTWRIT_ADMIN_SECRET) or a saved trail (--from FILE)";

/// A live broker's trail, fetched through a worker, and read through one
/// [`Paging`]: it stops — and says why — when ids do not continue, events
/// repeat, the chain breaks, the broker's pages do not add up to its
/// `total`, or the read passes the cap.
pub struct Live {
    pub worker: WorkerHandle,
    pub url: String,
    /// Events read so far (the next poll's offset).
    pub offset: usize,
    pub paging: Paging,
}

/// A batch of new events, each with whether its hash matched, and the
/// broker's total.
pub type Batch = (Vec<(AuditEvent, bool)>, i64);

impl Live {
    /// A worker for the configured broker, with the admin secret.
    pub async fn connect(settings: &Settings) -> Result<Live, WatchError> {
        if settings.broker_url.is_none() {
            return Err(WatchError::Usage(NEEDS_SOURCE.into()));
        }
        if settings.admin_secret.as_deref().is_none_or(str::is_empty) {
            return Err(WatchError::Usage(
                "observing a broker reads its audit trail, which needs the admin secret: set AGENTWRIT_ADMIN_SECRET".into(),
            ));
        }
        let target = session::connect(settings)
            .await
            .map_err(|e| WatchError::Broker(e.to_string()))?;
        Ok(Live {
            url: target.url.clone(),
            worker: worker::spawn(target.worker),
            offset: 0,
            paging: Paging::new(settings.audit_cap, 0),
        })
    }

    /// Asks for the events after those read so far (nothing once stopped).
    pub fn poll(&mut self) -> bool {
        if self.paging.stopped().is_some() {
            return false;
        }
        // No more pages than the cap leaves room for.
        let room = self.paging.cap().events.saturating_sub(self.offset);
        let pages = room
            .div_ceil(usize::try_from(worker::AUDIT_PAGE).unwrap_or(1000))
            .clamp(1, POLL_PAGES);
        self.worker.send(Command::AuditSince {
            offset: self.offset,
            pages,
        });
        true
    }

    /// Why reading stopped for good, in words naming the broker.
    pub fn stopped(&self) -> Option<String> {
        self.paging.stopped().map(|why| {
            let hint = if why.contains(" cap ") {
                " (--max-events raises it)"
            } else {
                ""
            };
            format!("{}: {why}{hint}", self.url)
        })
    }

    /// Takes an answer: the new events (in order, up to the first that
    /// breaks the rules) and the broker's total, or why there are none. An
    /// answer for an older offset is dropped.
    pub fn take(&mut self, outcome: Outcome) -> Option<Result<Batch, String>> {
        let Outcome::AuditSince { offset, result } = outcome else {
            return None;
        };
        if offset != self.offset {
            return None;
        }
        Some(match result {
            Ok((events, total)) => {
                let events = self.paging.take(events, total);
                self.offset += events.len();
                Ok((events, total))
            }
            Err(e) => Err(broker_words(&self.url, &e)),
        })
    }

    /// Whether the broker's total is not reached yet (and reading goes on).
    pub fn behind(&self) -> bool {
        self.paging.more()
    }

    /// Polls until the whole trail is read (or reading stops: see
    /// [`Live::stopped`]), handing each batch to `each`. The number of
    /// requests is bounded whatever the broker answers.
    pub async fn read_all(
        &mut self,
        mut each: impl FnMut(Vec<(AuditEvent, bool)>, i64) -> Result<(), WatchError>,
    ) -> Result<(), WatchError> {
        let max = Paging::max_pages(self.paging.cap()).div_ceil(POLL_PAGES) + 1;
        for _ in 0..max {
            if !self.poll() {
                return Ok(());
            }
            let answer = loop {
                let Some(ev) = self.worker.events.recv().await else {
                    return Err(WatchError::Broker("the broker worker stopped".into()));
                };
                if let Some(a) = self.take(ev.outcome) {
                    break a;
                }
            };
            let (events, total) = answer.map_err(WatchError::Broker)?;
            let got = events.len();
            each(events, total)?;
            if got == 0 || !self.paging.more() {
                return Ok(());
            }
        }
        self.paging.give_up(max * POLL_PAGES);
        Ok(())
    }

    /// What the read claims about the trail's total, for [`Observed::total`].
    pub fn total(&self) -> crate::observe::integrity::Total {
        crate::observe::integrity::Total {
            claimed: u64::try_from(self.paging.total()).unwrap_or(0),
            reached: self.offset as u64,
        }
    }
}

/// A broker failure in words, naming the broker.
pub fn broker_words(url: &str, e: &ClientError) -> String {
    match e {
        ClientError::Broker(b) if b.status == 401 || b.status == 403 => format!(
            "the broker at {url} refused the admin secret ({} {}: {})",
            b.status, b.error_code, b.detail
        ),
        e if e.is_unreachable() => format!("cannot reach the broker at {url}: {e}"),
        e => format!("the broker at {url} did not give its audit trail ({e})"),
    }
}

/// Reads the trail named by the arguments (checked against the checkpoint,
/// when one is given and exists).
pub async fn gather(settings: &Settings, args: &ObserveArgs) -> Result<Observed, WatchError> {
    let cp = match &args.checkpoint {
        Some(p) => checkpoint::load(p)?,
        None => None,
    };
    let watch = cp.as_ref().map(|c| (c.id.clone(), None));
    let mut o = match &args.from {
        Some(path) => read_file_watching(path.clone(), 0, watch).await?,
        None => {
            let mut live = Live::connect(settings).await?;
            let mut o = Observed::new();
            o.watch = watch;
            live.read_all(|events, _| {
                for (e, ok) in &events {
                    o.fold(&e.as_ref(), Some(*ok));
                }
                Ok(())
            })
            .await?;
            o.total = Some(live.total());
            o.stopped = live.stopped();
            // A live trail: at its head, statuses are judged now.
            o.now_ms = Some(chrono::Utc::now().timestamp_millis());
            o
        }
    };
    if let (Some(cp), Some(path)) = (&cp, &args.checkpoint) {
        o.checkpoint = Some(judge_checkpoint(&o, cp, path));
    }
    o.restrict(&args.filter);
    Ok(o)
}

/// The trail read against the checkpoint.
fn judge_checkpoint(o: &Observed, cp: &Checkpoint, path: &Path) -> Result<String, String> {
    let seen = o.watch.as_ref().and_then(|(_, h)| h.as_deref());
    checkpoint::judge(
        cp,
        &path.display().to_string(),
        o.events.first().map(|s| &*s.id),
        o.events.last().map(|s| &*s.id),
        seen,
    )
}

/// Advances the checkpoint to the last event read — only when the read
/// has no integrity failure (nothing is recorded from a trail not trusted).
fn advance_checkpoint(path: &Path, chain: &crate::rules::chain::Chain) -> Result<(), WatchError> {
    if let (Some(id), Some(hash)) = (chain.last_id(), chain.last_hash()) {
        checkpoint::save(path, &Checkpoint::new(id, hash))?;
    }
    Ok(())
}

/// A saved trail, read off the async threads, with progress on a terminal.
pub async fn read_file(path: PathBuf) -> Result<Observed, WatchError> {
    read_file_keeping(path, 0).await
}

/// [`read_file`], keeping the last `keep` events whole.
pub async fn read_file_keeping(path: PathBuf, keep: usize) -> Result<Observed, WatchError> {
    read_file_watching(path, keep, None).await
}

/// [`read_file_keeping`], noting the hash at a checkpoint's id.
async fn read_file_watching(
    path: PathBuf,
    keep: usize,
    watch: Option<(String, Option<String>)>,
) -> Result<Observed, WatchError> {
    let task = tokio::task::spawn_blocking(move || {
        use std::io::IsTerminal;
        let show = std::io::stderr().is_terminal();
        let mut o = Observed::keeping(keep);
        o.watch = watch;
        let mut last = 0;
        let mut progress = |done: usize, total: usize| {
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            if show && total > 8 << 20 && pct != last {
                last = pct;
                eprint!("\rreading {}: {pct}%", path.display());
            }
        };
        let r = load::read_file(&path, &mut o, &mut progress);
        if show && last > 0 {
            eprint!("\r\x1b[K");
        }
        r.map(|()| o)
    });
    match task.await {
        Ok(r) => Ok(r?),
        Err(e) => Err(WatchError::Usage(format!("reading the trail stopped: {e}"))),
    }
}

/// The event index `--at` names (the last event when not given), in the
/// one time syntax of [`crate::observe::when`].
pub fn resolve_at(o: &Observed, at: Option<&str>) -> Result<usize, WatchError> {
    resolve_flag(o, at, "--at")
}

/// [`resolve_at`] for a value typed at `flag` (`--to`, or the `t` key),
/// which its error names.
pub fn resolve_flag(o: &Observed, at: Option<&str>, flag: &str) -> Result<usize, WatchError> {
    let head = o
        .head()
        .ok_or_else(|| WatchError::Usage("the trail has no events".into()))?;
    match at {
        None => Ok(head),
        Some(at) => crate::observe::when::resolve(o, at, flag).map_err(WatchError::Usage),
    }
}

/// Prints the reconstruction as of `at` in `format`.
pub fn print(
    o: &Observed,
    at: usize,
    format: PrintFormat,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match format {
        PrintFormat::Json => crate::observe::print::json::write(o, at, &mut Visible::json(out)),
        PrintFormat::Text => crate::observe::print::text::write(o, at, &mut Visible::text(out)),
        PrintFormat::Mermaid => out.write_all(
            crate::diagram::mermaid::render(&crate::diagram::from_observed(o, at)).as_bytes(),
        ),
        PrintFormat::Dot => out.write_all(
            crate::diagram::dot::render(&crate::diagram::from_observed(o, at)).as_bytes(),
        ),
    }
}

/// `observe --print`: reads everything, then prints (nothing is printed
/// when the input is bad). Returns the exit code.
pub async fn print_headless(
    settings: &Settings,
    args: &ObserveArgs,
    format: PrintFormat,
) -> Result<u8, WatchError> {
    // Never freed: the process ends right after (freeing a million-event
    // reconstruction piece by piece takes longer than printing it).
    let o = std::mem::ManuallyDrop::new(gather(settings, args).await?);
    let failures = o.failures();
    if o.events.is_empty() && !failures.is_empty() {
        // Nothing to print, and the broker's answers do not add up.
        for f in &failures {
            eprintln!("chainview: {}", crate::text::visible(f));
        }
        return Ok(1);
    }
    let at = resolve_at(&o, args.at.as_deref())?;
    // The input was read whole and is sound: print as it is written.
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
    // A closed pipe (`| head`) is not worth a report; any other write
    // error (a full disk, /dev/full) is.
    if let Err(source) = print(&o, at, format, &mut out).and_then(|()| out.flush())
        && source.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(WatchError::Write {
            path: "standard output".into(),
            source,
        });
    }
    drop(out);
    let failures = o.failures();
    for f in &failures {
        tracing::warn!("observe: {f}");
        eprintln!("chainview: {}", crate::text::visible(f));
    }
    if !failures.is_empty() {
        return Ok(1);
    }
    if let Some(path) = &args.checkpoint {
        advance_checkpoint(path, &o.chain)?;
        if let Some(Ok(words)) = &o.checkpoint {
            eprintln!("chainview: the trail {}", crate::text::visible(words));
        }
    }
    Ok(0)
}

/// `audit dump`: the broker's whole trail as `{"events":[…],"total":N}`
/// (`N`: the broker's own total, so a dump cut short says so when read
/// back), written as it arrives (to `out`, or standard output), checked as
/// `observe` checks it: exit 1 when the chain breaks, the broker's pages
/// do not add up, the read cap is reached or the checkpoint does not match.
pub async fn dump(
    settings: &Settings,
    out: Option<&Path>,
    checkpoint_file: Option<&Path>,
) -> Result<u8, WatchError> {
    let cp = match checkpoint_file {
        Some(p) => checkpoint::load(p)?,
        None => None,
    };
    let mut live = Live::connect(settings).await?;
    let (mut sink, name): (Box<dyn Write>, String) = match out {
        Some(p) => {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .map_err(|source| WatchError::Write {
                    path: p.display().to_string(),
                    source,
                })?;
            (
                Box::new(std::io::BufWriter::new(f)),
                p.display().to_string(),
            )
        }
        None => (Box::new(std::io::stdout().lock()), "standard output".into()),
    };
    let werr = |source| WatchError::Write {
        path: name.clone(),
        source,
    };
    sink.write_all(b"{\"events\":[").map_err(werr)?;
    let mut n = 0usize;
    let mut total = 0;
    let mut seen: Option<String> = None;
    let mut first: Option<String> = None;
    live.read_all(|events, t| {
        total = t;
        for (e, _) in events {
            if first.is_none() {
                first = Some(e.id.clone());
            }
            if seen.is_none() && cp.as_ref().is_some_and(|c| c.id == e.id) {
                seen = Some(e.hash.clone());
            }
            let sep: &[u8] = if n == 0 { b"\n" } else { b",\n" };
            n += 1;
            let line = serde_json::to_vec(&e).unwrap_or_default();
            sink.write_all(sep)
                .and_then(|()| sink.write_all(&line))
                .map_err(werr)?;
        }
        Ok(())
    })
    .await?;
    write!(sink, "\n],\"total\":{total}}}\n")
        .and_then(|()| sink.flush())
        .map_err(werr)?;
    drop(sink);
    if out.is_some() {
        eprintln!(
            "chainview: saved {n} audit events (the broker reported {total}) to {}",
            crate::text::visible(&name)
        );
    }
    let chain = live.paging.chain().clone();
    let mut failures: Vec<String> = Vec::new();
    if let Some(b) = chain.broken() {
        failures.push(format!("the audit hash chain is {}", b.words()));
    }
    if let Some(why) = live.stopped() {
        failures.push(why);
    } else if let Some(c) = live.total().words() {
        failures.push(c);
    }
    let verdict = match (&cp, checkpoint_file) {
        (Some(cp), Some(path)) => Some(checkpoint::judge(
            cp,
            &path.display().to_string(),
            first.as_deref(),
            chain.last_id(),
            seen.as_deref(),
        )),
        _ => None,
    };
    if let Some(Err(why)) = &verdict {
        failures.push(format!("the trail {why}"));
    }
    for f in &failures {
        eprintln!("chainview: {}", crate::text::visible(f));
    }
    if !failures.is_empty() {
        return Ok(1);
    }
    eprintln!(
        "chainview: hash chain {}",
        crate::text::visible(&chain.words())
    );
    if let Some(path) = checkpoint_file {
        advance_checkpoint(path, &chain)?;
        if let Some(Ok(words)) = &verdict {
            eprintln!("chainview: the trail {}", crate::text::visible(words));
        }
    }
    Ok(0)
}

mod interactive;
pub use interactive::interactive;
