//! `y` and `Y`: the selected token to the clipboard (OSC 52, through the
//! terminal) or to a file of its own.

use std::io;

use super::Session;

/// `y`: the selected token to the clipboard, through the terminal.
pub(super) fn copy_token(s: &mut Session, id: crate::app::TokenId) {
    if let Some(raw) = s.driver.app.tokens.get(id).and_then(|t| t.raw.clone()) {
        use std::io::Write as _;
        let mut out = io::stdout();
        let sent = out
            .write_all(osc52(&raw).as_bytes())
            .and_then(|_| out.flush());
        let name = s.driver.app.token_name(id);
        s.view.message = Some(match sent {
            Ok(()) => format!(
                "copied {name}'s token (OSC 52; if your terminal does not allow it, Y saves it to a file)"
            ),
            Err(e) => format!("could not copy: {e}"),
        });
    }
}

/// `Y`: the selected token to a file.
pub(super) fn save_selected(s: &mut Session, id: crate::app::TokenId) {
    if let Some(raw) = s.driver.app.tokens.get(id).and_then(|t| t.raw.clone()) {
        let name = s.driver.app.token_name(id);
        s.view.message = Some(match save_token(&name, &raw, std::path::Path::new(".")) {
            Ok(path) => format!("saved {name}'s token to {} (0600)", path.display()),
            Err(e) => format!("could not save the token: {e}"),
        });
    }
}

/// The OSC 52 sequence that asks the terminal to put `text` on the
/// clipboard (works over ssh; tmux passes it on with `set-clipboard on`).
pub(super) fn osc52(text: &str) -> String {
    use base64::Engine;
    format!(
        "\x1b]52;c;{}\x07",
        base64::engine::general_purpose::STANDARD.encode(text)
    )
}

/// Writes a token to `DIR/NAME.jwt` (owner-only), never over an existing
/// file (`NAME-2.jwt`, …). Returns the path.
pub(super) fn save_token(
    name: &str,
    raw: &str,
    dir: &std::path::Path,
) -> io::Result<std::path::PathBuf> {
    use std::io::Write as _;
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    for n in 1..1000 {
        let file = if n == 1 {
            format!("{safe}.jwt")
        } else {
            format!("{safe}-{n}.jwt")
        };
        let path = dir.join(file);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        match opts.open(&path) {
            Ok(mut f) => {
                f.write_all(raw.as_bytes())?;
                f.write_all(b"\n")?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("too many saved tokens with that name"))
}
