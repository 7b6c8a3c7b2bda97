//! The interactive observer: the explorer's views over the reconstruction
//! as of an event, the timeline keys, live polling without a key pressed.

use super::*;

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
    /// `--checkpoint`: its file and what it holds (`None` for a first run).
    checkpoint: Option<(PathBuf, Checkpoint)>,
}

impl Observer {
    /// The App and the panes' text as of `at`.
    fn rebuild(&mut self) {
        use crate::observe::print::text::short;
        // Live means now: at the head of a live trail statuses are judged at
        // the wall clock (and TTLs tick); stepped back or offline, as of the
        // event shown.
        self.o.now_ms = self
            .live
            .is_some()
            .then(|| chrono::Utc::now().timestamp_millis());
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
                "live · judged now"
            } else {
                "last event · judged as of it"
            }
        } else if self.live.is_some() {
            "stepped back · judged as of it · G follows"
        } else {
            "stepped back · judged as of it · G: last event"
        };
        self.view.as_of = Some(format!("as of {} · {} · {mode}", stamp.id, stamp.clock()));
        self.judge_checkpoint();
        let chain = match &self.o.first_broken {
            None => format!(
                "hash chain {}",
                crate::rules::chain::consistent_short(
                    self.o.events.len(),
                    self.o.events.first().map(|s| &*s.id),
                )
            ),
            Some(b) => b.words(),
        };
        let chain = match &self.o.checkpoint {
            Some(Ok(_)) => format!("{chain} · matches checkpoint"),
            _ => chain,
        };
        // The first integrity failure (a broken link, a reading stopped,
        // a checkpoint that does not match) stays in sight (red), wherever
        // the timeline is.
        self.view.alarm = self.o.failures().into_iter().next();
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

    fn fold(&mut self, events: Vec<(AuditEvent, bool)>) {
        for (e, ok) in &events {
            self.o.fold(&e.as_ref(), Some(*ok));
        }
        if let Some(l) = &self.live {
            self.o.stopped = l.stopped();
            self.o.total = Some(l.total());
        }
    }

    /// The checkpoint's verdict, as soon as it can be told: when its event
    /// has been read, or (for a shorter trail) once the trail is read whole.
    fn judge_checkpoint(&mut self) {
        let Some((path, cp)) = &self.checkpoint else {
            return;
        };
        let seen = self.o.watch.as_ref().is_some_and(|(_, h)| h.is_some());
        let caught_up = self.live.as_ref().is_none_or(|l| !l.behind());
        if seen || (caught_up && !self.o.events.is_empty()) {
            self.o.checkpoint = Some(judge_checkpoint(&self.o, cp, path));
        }
    }

    /// At the end of the session: the integrity failures (exit 1), or the
    /// checkpoint advanced to what was seen.
    fn finish(&mut self) -> Result<u8, WatchError> {
        self.judge_checkpoint();
        let failures = self.o.failures();
        for f in &failures {
            eprintln!("chainview: {}", crate::text::visible(f));
        }
        if !failures.is_empty() {
            return Ok(1);
        }
        if let Some((path, _)) = &self.checkpoint {
            advance_checkpoint(path, &self.o.chain)?;
        }
        Ok(0)
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
    let checkpoint = match &args.checkpoint {
        Some(p) => checkpoint::load(p)?.map(|cp| (p.clone(), cp)),
        None => None,
    };
    let watch = checkpoint.as_ref().map(|(_, c)| (c.id.clone(), None));
    let (o, live, source) = match &args.from {
        Some(path) => (
            read_file_watching(path.clone(), KEEP_RECENT, watch).await?,
            None,
            format!("file:{}", path.display()),
        ),
        None => {
            let live = Live::connect(settings).await?;
            let url = live.url.clone();
            let mut o = Observed::keeping(KEEP_RECENT);
            o.watch = watch;
            (o, Some(live), url)
        }
    };
    let mut view = crate::view::View::new(None, args.no_color);
    view.observing = true;
    view.context = settings.context.clone();
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
        checkpoint,
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
    match r {
        // A first run with --checkpoint saves one even with nothing to check.
        Ok(0) if args.checkpoint.is_some() || !obs.o.failures().is_empty() => obs.finish(),
        r => r,
    }
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
    // A redraw each second at the live head, so TTLs tick with no new events.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // At the live head the clock is now (countdowns tick); otherwise
        // the time of the event shown.
        let now = if s.o.judged_now(s.at) {
            crate::app::unix_now()
        } else {
            s.o.events
                .get(s.at)
                .map(|e| e.ms / 1000)
                .unwrap_or_else(crate::app::unix_now)
        };
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
        crate::view::judgment::refresh(&mut s.view, &s.app, &s.o, s.at);
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
                            let more = !events.is_empty() && s.live.as_ref().is_some_and(Live::behind);
                            let stopped = s.live.as_ref().is_some_and(|l| l.stopped().is_some())
                                && s.o.stopped.is_none();
                            if !events.is_empty() || s.generation == 0 || stopped {
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
                                    s.polling = l.poll();
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
            _ = tick.tick(), if s.o.judged_now(s.at) => Action::None,
            _ = poll.tick() => {
                if !s.polling && let Some(l) = s.live.as_mut() {
                    s.polling = l.poll();
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
                    // The matches from the top: the old scroll may be past them.
                    s.view.selected = None;
                    s.view.tree.offset = 0;
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

/// Where `t` goes: the same forms as `--at` ([`crate::observe::when`]).
fn jump_target(o: &Observed, typed: &str) -> Result<usize, WatchError> {
    super::resolve_flag(o, Some(typed), "t")
}
