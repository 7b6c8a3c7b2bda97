//! Diagnostic logging with `tracing`, to a file only — never to the terminal,
//! where it would break the TUI. Off unless `CHAINVIEW_LOG` is set.
//!
//! * `CHAINVIEW_LOG` — the filter, e.g. `info`, `debug`, `chainview=debug`.
//! * `CHAINVIEW_LOG_FILE` — where to write (default: `chainview.log` in the
//!   system temporary directory).
//!
//! Log lines carry methods, paths, statuses, labels and redacted tokens —
//! never a whole token or secret.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Where logs go when logging is on.
pub fn log_path() -> PathBuf {
    std::env::var_os("CHAINVIEW_LOG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("chainview.log"))
}

/// Opens the log for appending: created 0600, and never through a symbolic
/// link (in a shared temporary directory anyone could plant one pointing at
/// a file of yours).
pub fn open_private(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut opts = OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NOFOLLOW: fail (ELOOP) rather than follow a link at `path`.
        opts.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    opts.open(path).map_err(|e| {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            std::io::Error::other("it is a symbolic link; refusing to follow it")
        } else {
            e
        }
    })
}

/// Starts file logging if `CHAINVIEW_LOG` is set. Returns the file, or an
/// error message to show (logging problems never stop chainview).
pub fn init() -> Result<Option<PathBuf>, String> {
    let Some(filter) = std::env::var("CHAINVIEW_LOG")
        .ok()
        .filter(|f| !f.is_empty())
    else {
        return Ok(None);
    };
    // `info`, `chainview=debug`, `chainview::worker=trace,warn`: targets
    // and levels (no regular expressions, so no regex engine is linked).
    let targets: Targets = filter
        .parse()
        .map_err(|e| format!("CHAINVIEW_LOG '{filter}': {e}"))?;
    let path = log_path();
    let file =
        open_private(&path).map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(Mutex::new(file))
        .with_ansi(false);
    tracing_subscriber::registry()
        .with(fmt)
        .with(targets)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(Some(path))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn log_files_are_private_and_links_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chainview.log");
        open_private(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let target = dir.path().join("victim");
        std::fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = open_private(&link).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }
}
