//! `chainview observe` and `chainview audit dump`: a broker's audit trail
//! (through the worker, the one owner of broker I/O) or a saved one, rebuilt
//! by [`crate::observe`], printed headless or shown in the terminal.
//!
//! Exit codes: 0 ok; 1 the hash chain is broken; 2 malformed input or
//! usage; 3 the broker could not be reached or refused the admin secret.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::broker::ClientError;
use crate::broker::types::AuditEvent;
use crate::observe::{Observed, load};
use crate::session::{self, Settings};
use crate::text::Visible;
use crate::worker::{self, Command, Outcome, WorkerHandle};

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
}

impl WatchError {
    pub fn exit_code(&self) -> u8 {
        match self {
            WatchError::Usage(_) | WatchError::Load(_) => 2,
            WatchError::Broker(_) => 3,
            WatchError::Write { .. } => 2,
        }
    }
}

const NEEDS_SOURCE: &str = "observe needs a trail: a broker (--broker URL or AGENTWRIT_BROKER_URL, with AGENTWRIT_ADMIN_SECRET) or a saved trail (--from FILE)";

/// A live broker's trail, fetched through a worker.
pub struct Live {
    pub worker: WorkerHandle,
    pub url: String,
    /// Events read so far (the next poll's offset).
    pub offset: usize,
}

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
        })
    }

    /// Asks for the events after those read so far.
    pub fn poll(&mut self) {
        self.worker.send(Command::AuditSince {
            offset: self.offset,
            pages: POLL_PAGES,
        });
    }

    /// Takes an answer: the new events (in order) and the broker's total,
    /// or why there are none. An answer for an older offset is dropped.
    pub fn take(&mut self, outcome: Outcome) -> Option<Result<(Vec<AuditEvent>, i64), String>> {
        let Outcome::AuditSince { offset, result } = outcome else {
            return None;
        };
        if offset != self.offset {
            return None;
        }
        Some(match result {
            Ok((events, total)) => {
                self.offset += events.len();
                Ok((events, total))
            }
            Err(e) => Err(broker_words(&self.url, &e)),
        })
    }

    /// Polls until the whole trail is read, handing each batch to `each`.
    pub async fn read_all(
        &mut self,
        mut each: impl FnMut(Vec<AuditEvent>, i64) -> Result<(), WatchError>,
    ) -> Result<(), WatchError> {
        loop {
            self.poll();
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
            if got == 0 || self.offset as i64 >= total {
                return Ok(());
            }
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

/// Reads the trail named by the arguments.
pub async fn gather(settings: &Settings, args: &ObserveArgs) -> Result<Observed, WatchError> {
    match &args.from {
        Some(path) => read_file(path.clone()).await,
        None => {
            let mut live = Live::connect(settings).await?;
            let mut o = Observed::new();
            live.read_all(|events, _| {
                for e in &events {
                    o.fold(&e.as_ref(), None);
                }
                Ok(())
            })
            .await?;
            Ok(o)
        }
    }
}

/// A saved trail, read off the async threads, with progress on a terminal.
pub async fn read_file(path: PathBuf) -> Result<Observed, WatchError> {
    read_file_keeping(path, 0).await
}

/// [`read_file`], keeping the last `keep` events whole.
pub async fn read_file_keeping(path: PathBuf, keep: usize) -> Result<Observed, WatchError> {
    let task = tokio::task::spawn_blocking(move || {
        use std::io::IsTerminal;
        let show = std::io::stderr().is_terminal();
        let mut o = Observed::keeping(keep);
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

/// The event index `--at` names (the last event when not given).
pub fn resolve_at(o: &Observed, at: Option<&str>) -> Result<usize, WatchError> {
    let head = o
        .head()
        .ok_or_else(|| WatchError::Usage("the trail has no events".into()))?;
    let Some(at) = at else { return Ok(head) };
    if at.starts_with("evt-") {
        return o.find(at).ok_or_else(|| {
            WatchError::Usage(format!(
                "--at {at}: no such event in the trail ({} … {})",
                o.events[0].id, o.events[head].id
            ))
        });
    }
    if chrono::DateTime::parse_from_rfc3339(at).is_err() {
        return Err(WatchError::Usage(format!(
            "--at {at}: expected an event id (evt-000123) or an RFC 3339 time (2026-11-26T15:20:49Z)"
        )));
    }
    o.find(at).ok_or_else(|| {
        WatchError::Usage(format!(
            "--at {at}: before the trail's first event ({})",
            o.events[0].timestamp
        ))
    })
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
    let o = gather(settings, args).await?;
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
    if let Some(b) = &o.first_broken {
        tracing::warn!("audit hash chain {}", b.words());
        eprintln!(
            "chainview: the audit hash chain is {}",
            crate::text::visible(&b.words())
        );
        return Ok(1);
    }
    Ok(0)
}

/// `audit dump`: the broker's whole trail as `{"events":[…],"total":N}`,
/// written as it arrives (to `out`, or standard output).
pub async fn dump(settings: &Settings, out: Option<&Path>) -> Result<u8, WatchError> {
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
    live.read_all(|events, t| {
        total = t;
        for e in events {
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
    write!(sink, "\n],\"total\":{n}}}\n")
        .and_then(|()| sink.flush())
        .map_err(werr)?;
    if out.is_some() {
        eprintln!(
            "chainview: saved {n} audit events (the broker reported {total}) to {}",
            crate::text::visible(&name)
        );
    }
    Ok(0)
}

/// Events kept whole for the audit view of the interactive observer.
const KEEP_RECENT: usize = 10_000;

/// The interactive observer: the explorer's views over the reconstruction,
/// a timeline (n/b/g/G/t), live polling without a key pressed.
struct Observer {
    o: Observed,
    /// The event shown; `follow` keeps it at the head as events arrive.
    at: usize,
    follow: bool,
    filter: crate::observe::project::Filter,
    source: String,
    app: crate::app::App,
    view: crate::view::View,
    probe: crate::ui::ProbeCache,
    live: Option<Live>,
    polling: bool,
    generation: u64,
    /// The narration line as of the event shown (a prompt replaces it while typed).
    narration: Option<String>,
}

impl Observer {
    /// The App and the panes' text as of `at`.
    fn rebuild(&mut self) {
        use crate::observe::print::text::short;
        self.at = match self.o.head() {
            Some(h) if self.follow => h,
            Some(h) => self.at.min(h),
            None => 0,
        };
        let selected = self.view.selected;
        let mut app = if self.o.events.is_empty() {
            let mut a = crate::app::App::new(&self.source, false, None);
            a.connected = self.live.is_none() || self.generation > 0;
            a
        } else {
            crate::observe::project::app_at(&self.o, self.at, &self.source, &self.filter)
        };
        // Views cache by generation: a rebuilt App must never reuse a number.
        self.generation += app.generation + 1;
        app.generation = self.generation;
        app.connection_error = self.app.connection_error.clone();
        self.view.selected = selected.filter(|&t| t < app.tokens.len());
        let old = std::mem::replace(&mut self.app, app);
        // Freeing a big App piece by piece takes longer than building it:
        // off the loop, so a timeline step does not wait for it.
        if old.tokens.len() > 10_000 {
            std::thread::spawn(move || drop(old));
        }
        let Some(stamp) = self.o.events.get(self.at) else {
            self.view.as_of = Some("no events yet".into());
            self.view.narration = Some(format!(
                "Observing {}: waiting for audit events…",
                self.source
            ));
            return;
        };
        let mode = if self.follow {
            if self.live.is_some() {
                "live"
            } else {
                "last event"
            }
        } else {
            "stepped back · G follows"
        };
        self.view.as_of = Some(format!("as of {} · {} · {mode}", stamp.id, stamp.clock()));
        let chain = match &self.o.first_broken {
            None => format!("hash chain verified over {} events", self.o.events.len()),
            Some(b) => b.words(),
        };
        // The first broken link stays in sight (red), wherever the timeline is.
        self.view.alarm = self.o.first_broken.as_ref().map(|b| b.words());
        let filter = if self.filter.text.is_empty() {
            String::new()
        } else {
            format!(" · filter '{}'", self.filter.text)
        };
        self.narration = Some(format!(
            "Observing {} · event {} of {} · {chain}{filter}",
            self.source.trim_start_matches("file:"),
            self.at + 1,
            self.o.events.len()
        ));
        self.view.side = self
            .o
            .denial_counts(self.at)
            .into_iter()
            .map(|(class, who, n)| format!("{n:>3} {class} · {}", short(&who)))
            .collect();
    }

    fn fold(&mut self, events: Vec<AuditEvent>) {
        for e in &events {
            self.o.fold(&e.as_ref(), None);
        }
    }
}

/// The interactive observer (in the terminal).
pub async fn interactive(settings: &Settings, args: &ObserveArgs) -> Result<u8, WatchError> {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(WatchError::Usage(
            "observe needs a terminal (standard input and output); --print works without one"
                .into(),
        ));
    }
    let (o, live, source) = match &args.from {
        Some(path) => (
            read_file_keeping(path.clone(), KEEP_RECENT).await?,
            None,
            format!("file:{}", path.display()),
        ),
        None => {
            let live = Live::connect(settings).await?;
            let url = live.url.clone();
            (Observed::keeping(KEEP_RECENT), Some(live), url)
        }
    };
    let mut view = crate::view::View::new(None, args.no_color);
    view.observing = true;
    let mut obs = Observer {
        o,
        at: 0,
        follow: true,
        filter: crate::observe::project::Filter::default(),
        source,
        app: crate::app::App::default(),
        view,
        probe: crate::ui::ProbeCache::default(),
        live,
        polling: false,
        generation: 0,
        narration: None,
    };
    if let Some(at) = &args.at {
        obs.at = resolve_at(&obs.o, Some(at))?;
        obs.follow = false;
    }
    obs.rebuild();
    let mut signals = crate::tui::Signals::new();
    let mut terminal = crate::tui::init_terminal().map_err(|e| WatchError::Usage(e.to_string()))?;
    let r = observe_loop(&mut terminal, &mut obs, &mut signals, args.interval).await;
    crate::tui::restore();
    r
}

async fn observe_loop(
    terminal: &mut ratatui::DefaultTerminal,
    s: &mut Observer,
    signals: &mut crate::tui::Signals,
    interval: Duration,
) -> Result<u8, WatchError> {
    use crate::view::Action;
    use crossterm::event::{Event as TermEvent, EventStream};
    use futures::StreamExt;
    let io_err = |e: std::io::Error| WatchError::Usage(format!("the terminal failed: {e}"));
    let mut events = EventStream::new();
    let mut poll = tokio::time::interval(interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let now =
            s.o.events
                .get(s.at)
                .map(|e| e.ms / 1000)
                .unwrap_or_else(crate::app::unix_now);
        s.view.narration = match &s.view.jump {
            Some(typed) if s.view.filtering => Some(format!(
                "Filter (task, orch, agent or app; empty shows all): {}▏",
                typed.value()
            )),
            Some(typed) => Some(format!(
                "Jump to (evt-000123, 123, 15:20:49 or an RFC 3339 time): {}▏",
                typed.value()
            )),
            None => s.narration.clone(),
        };
        terminal
            .draw(|f| crate::ui::draw(f, &s.app, &mut s.view, &mut s.probe, now))
            .map_err(io_err)?;
        let action = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(TermEvent::Key(k))) => s.view.handle_key(&s.app, k),
                Some(Ok(TermEvent::Mouse(m))) => s.view.handle_mouse(&s.app, m),
                Some(Ok(TermEvent::Paste(text))) => {
                    s.view.handle_paste(&text);
                    Action::None
                }
                Some(Ok(_)) => Action::None,
                Some(Err(e)) => return Err(io_err(e)),
                None => Action::Quit,
            },
            Some(ev) = async {
                match s.live.as_mut() {
                    Some(l) => l.worker.events.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                let taken = s.live.as_mut().and_then(|l| l.take(ev.outcome));
                if let Some(answer) = taken {
                    s.polling = false;
                    match answer {
                        Ok((events, total)) => {
                            s.app.connection_error = None;
                            let more = !events.is_empty() && (s.o.events.len() + events.len()) < usize::try_from(total).unwrap_or(0);
                            if !events.is_empty() || s.generation == 0 {
                                s.fold(events);
                                s.generation = s.generation.max(1);
                                if more {
                                    // Catching up with a long trail: say how far,
                                    // rebuild the views once it is read.
                                    s.narration = Some(format!(
                                        "Reading the trail of {}: {} of {total} events…",
                                        s.source,
                                        s.o.events.len()
                                    ));
                                } else {
                                    s.rebuild();
                                }
                            }
                            if more {
                                // A long trail: the next pages at once.
                                if let Some(l) = s.live.as_mut() {
                                    l.poll();
                                    s.polling = true;
                                }
                            }
                        }
                        Err(why) => {
                            s.app.connection_error = Some(why);
                        }
                    }
                }
                Action::None
            }
            _ = poll.tick() => {
                if !s.polling && let Some(l) = s.live.as_mut() {
                    l.poll();
                    s.polling = true;
                }
                Action::None
            }
            code = signals.recv() => return Ok(code),
        };
        let head = s.o.head().unwrap_or(0);
        match action {
            Action::Quit => return Ok(0),
            Action::NextEvent => {
                s.at = (s.at + 1).min(head);
                s.follow = s.at == head;
                s.rebuild();
            }
            Action::PrevEvent => {
                s.at = s.at.saturating_sub(1);
                s.follow = false;
                s.rebuild();
            }
            Action::FirstEvent => {
                s.at = 0;
                s.follow = false;
                s.rebuild();
            }
            Action::FollowHead => {
                s.follow = true;
                s.rebuild();
            }
            Action::Jump => {
                let typed = s
                    .view
                    .jump
                    .take()
                    .map(|i| i.value().trim().to_string())
                    .unwrap_or_default();
                if s.view.filtering {
                    s.filter.text = typed;
                    s.view.selected = None;
                    s.rebuild();
                    continue;
                }
                match jump_target(&s.o, &typed) {
                    Ok(k) => {
                        s.at = k;
                        s.follow = false;
                        s.rebuild();
                    }
                    Err(e) => s.view.message = Some(e.to_string()),
                }
            }
            Action::FetchAudit | Action::Cancel | Action::None => {}
            _ => {
                s.view.message =
                    Some("observe only watches: actions are in the explorer (chainview)".into())
            }
        }
    }
}

/// Where `t` goes: an event id (`evt-000123` or just `123`), an RFC 3339
/// time, or a time of day (`15:20:49`) on the trail's day.
fn jump_target(o: &Observed, typed: &str) -> Result<usize, WatchError> {
    if let Ok(n) = typed.parse::<u64>() {
        return resolve_at(o, Some(&format!("evt-{n:06}")));
    }
    if typed.len() <= 12 && typed.contains(':') && !typed.contains('T') {
        let day = o
            .events
            .first()
            .map(|e| e.timestamp.get(..10).unwrap_or(""))
            .unwrap_or("");
        return resolve_at(o, Some(&format!("{day}T{typed}Z")));
    }
    resolve_at(o, Some(typed))
}
