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

use tracing_subscriber::EnvFilter;

/// Where logs go when logging is on.
pub fn log_path() -> PathBuf {
    std::env::var_os("CHAINVIEW_LOG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("chainview.log"))
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
    let filter =
        EnvFilter::try_new(&filter).map_err(|e| format!("CHAINVIEW_LOG '{filter}': {e}"))?;
    let path = log_path();
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| format!("cannot open log file {}: {e}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .map_err(|e| e.to_string())?;
    Ok(Some(path))
}
