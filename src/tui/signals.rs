//! Signals from outside the terminal: each ends the session like `q`.

/// SIGTERM, SIGHUP and SIGINT from outside (Ctrl-C as a key arrives as a
/// key in raw mode): each ends the session like `q`, terminal restored.
pub(crate) struct Signals {
    #[cfg(unix)]
    sigs: Option<[(tokio::signal::unix::Signal, u8); 3]>,
}

impl Signals {
    pub(crate) fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let sigs = (|| {
                Some([
                    (signal(SignalKind::terminate()).ok()?, 143),
                    (signal(SignalKind::hangup()).ok()?, 129),
                    (signal(SignalKind::interrupt()).ok()?, 130),
                ])
            })();
            Signals { sigs }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// No handlers (a session driven without a terminal, in tests).
    pub(crate) fn none() -> Self {
        #[cfg(unix)]
        {
            Signals { sigs: None }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The exit code of the next signal; pending forever without handlers.
    pub(crate) async fn recv(&mut self) -> u8 {
        #[cfg(unix)]
        if let Some([(a, ca), (b, cb), (c, cc)]) = self.sigs.as_mut() {
            return tokio::select! {
                _ = a.recv() => *ca,
                _ = b.recv() => *cb,
                _ = c.recv() => *cc,
            };
        }
        std::future::pending().await
    }
}
