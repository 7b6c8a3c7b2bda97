//! Contexts: named brokers from a config file.
//!
//! `$XDG_CONFIG_HOME/chainview/config.toml` (else
//! `~/.config/chainview/config.toml`, or `--config FILE`) holds one table per
//! broker:
//!
//! ```toml
//! [context.staging]
//! url = "https://broker.staging.example:8443"
//! ca_cert = "ca.pem"                     # or a list; relative to this file
//! client_cert = "~/.agentwrit/staging.pem"
//! client_key = "~/.agentwrit/staging.key"
//! client_id = "app-…"                    # or client_id_env / client_id_cmd
//! client_secret_env = "STAGING_CLIENT_SECRET"
//! admin_secret_cmd = ["pass", "show", "agentwrit/staging-admin"]
//! read_only = true
//! production = false
//! ```
//!
//! Secrets never live in the file: each is named by where it comes from, an
//! environment variable (`…_env`) or a command whose standard output is the
//! secret (`…_cmd`, run without a shell). A file that holds a secret-looking
//! key is refused, and so is one readable by group or others while it names
//! a private key, or writable by them while it names a command to run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The variable that picks a context when `--context` is not given.
pub const ENV_CONTEXT: &str = "CHAINVIEW_CONTEXT";

/// The keys a context table may hold.
const KNOWN_KEYS: &[&str] = &[
    "url",
    "ca_cert",
    "client_cert",
    "client_key",
    "client_id",
    "client_id_env",
    "client_id_cmd",
    "client_secret_env",
    "client_secret_cmd",
    "admin_secret_env",
    "admin_secret_cmd",
    "read_only",
    "production",
];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "no config file at {path}: chainview reads $XDG_CONFIG_HOME/chainview/config.toml (else ~/.config/chainview/config.toml) or the file given with --config"
    )]
    NotFound { path: PathBuf },
    #[error(
        "cannot tell where the config file is: neither XDG_CONFIG_HOME nor HOME is set; give one with --config FILE"
    )]
    NoPlace,
    #[error("cannot read the config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(
        "{path}: {place} has `{key}`, a secret written in the file; chainview never takes a secret from its config file. \
         Remove it and say where the secret comes from instead: {hint}"
    )]
    LiteralSecret {
        path: PathBuf,
        place: String,
        key: String,
        hint: String,
    },
    #[error(
        "{path} is readable by {who} (mode {mode:03o}) and names a private key ({place}, `{key}`): \
         whoever can read it learns which key file opens the broker and how its secrets are fetched. \
         Make it private with `chmod 600 {path}`"
    )]
    ReadableWithKey {
        path: PathBuf,
        who: &'static str,
        mode: u32,
        place: String,
        key: String,
    },
    #[error(
        "{path} is writable by {who} (mode {mode:03o}) and names a command chainview runs ({place}, `{key}`): \
         anyone who can write it can make chainview run their command. Make it private with `chmod 600 {path}`"
    )]
    WritableWithCommand {
        path: PathBuf,
        who: &'static str,
        mode: u32,
        place: String,
        key: String,
    },
    #[error("{path}: context '{context}': {what}")]
    Invalid {
        path: PathBuf,
        context: String,
        what: String,
    },
    #[error("no context '{name}' in {path}{}", known_list(known))]
    UnknownContext {
        name: String,
        path: PathBuf,
        known: Vec<String>,
    },
    #[error("context '{context}': the {what} comes from ${var}, which is not set (or empty)")]
    EnvUnset {
        context: String,
        what: &'static str,
        var: String,
    },
    #[error("context '{context}': the {what} comes from the command `{command}`, which {why}")]
    Command {
        context: String,
        what: &'static str,
        command: String,
        why: String,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        " (it has none: add a [context.NAME] table)".to_string()
    } else {
        format!(" (it has {})", known.join(", "))
    }
}

/// Where a value comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Written in the file (only for what is not a secret: the client id).
    Literal(String),
    /// The named environment variable.
    Env(String),
    /// The standard output of this command (program and arguments, no shell).
    Command(Vec<String>),
}

impl Source {
    /// Where the value comes from, never the value of a secret.
    pub fn describe(&self) -> String {
        match self {
            Source::Literal(v) => format!("the file: {v}"),
            Source::Env(v) => format!("${v}"),
            Source::Command(c) => format!("the output of `{}`", shown_command(c)),
        }
    }

    /// The value: the variable's, or the command's output less one trailing
    /// newline. A failing command is named with its exit status, never its
    /// output (which could hold the secret).
    pub fn fetch(&self, context: &str, what: &'static str) -> Result<String, ConfigError> {
        match self {
            Source::Literal(v) => Ok(v.clone()),
            Source::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::EnvUnset {
                    context: context.to_string(),
                    what,
                    var: var.clone(),
                }),
            Source::Command(argv) => run_secret_command(context, what, argv),
        }
    }
}

/// Outside text with its control characters shown, never sent.
fn shown(s: &str) -> String {
    crate::text::visible(s).into_owned()
}

fn shown_command(argv: &[String]) -> String {
    shown(&argv.join(" "))
}

fn run_secret_command(
    context: &str,
    what: &'static str,
    argv: &[String],
) -> Result<String, ConfigError> {
    let fail = |why: String| ConfigError::Command {
        context: context.to_string(),
        what,
        command: shown_command(argv),
        why,
    };
    let Some((program, args)) = argv.split_first() else {
        return Err(fail("is empty".into()));
    };
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| fail(format!("could not be started: {e}")))?;
    if !out.status.success() {
        return Err(fail(format!("failed ({})", out.status)));
    }
    let mut text = String::from_utf8(out.stdout)
        .map_err(|_| fail("printed something that is not UTF-8 text".into()))?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    if text.is_empty() {
        return Err(fail("printed nothing".into()));
    }
    Ok(text)
}

/// A named broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub name: String,
    pub url: String,
    /// CA certificates to trust (PEM), paths resolved against the file's folder.
    pub ca_files: Vec<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub client_id: Option<Source>,
    pub client_secret: Option<Source>,
    pub admin_secret: Option<Source>,
    /// Only commands that read (observe, audit dump) run against it.
    pub read_only: bool,
    /// Shown in a colour of its own.
    pub production: bool,
}

impl Context {
    /// What the status bar shows.
    pub fn label(&self) -> ContextLabel {
        ContextLabel {
            name: self.name.clone(),
            production: self.production,
        }
    }

    /// `chainview context show`: every setting and where each secret comes
    /// from, never a secret.
    pub fn show(&self) -> String {
        let path = |p: &Option<PathBuf>| match p {
            Some(p) => p.display().to_string(),
            None => "-".into(),
        };
        // Whether a variable is set here is said (never its value), so a
        // missing one shows before a command needs it.
        let source = |s: &Option<Source>| match s {
            Some(Source::Env(v)) if std::env::var_os(v).is_none_or(|x| x.is_empty()) => {
                format!("${v} (not set here)")
            }
            Some(Source::Env(v)) => format!("${v} (set)"),
            Some(s) => s.describe(),
            None => "- (AGENTWRIT_… variables only)".into(),
        };
        let cas = if self.ca_files.is_empty() {
            "- (the bundled web roots, the system store, SSL_CERT_FILE)".to_string()
        } else {
            self.ca_files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let lines = [
            format!("context        {}", self.name),
            format!("url            {}", self.url),
            format!("ca_cert        {cas}"),
            format!("client_cert    {}", path(&self.client_cert)),
            format!("client_key     {}", path(&self.client_key)),
            format!("client_id      {}", source(&self.client_id)),
            format!("client_secret  {}", source(&self.client_secret)),
            format!("admin_secret   {}", source(&self.admin_secret)),
            format!("read_only      {}", self.read_only),
            format!("production     {}", self.production),
        ];
        shown(&(lines.join("\n") + "\n"))
    }
}

/// The context's name for the status bar, and whether it is production.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextLabel {
    pub name: String,
    pub production: bool,
}

/// A config file, read and checked.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub contexts: BTreeMap<String, Context>,
}

impl ConfigFile {
    /// The context called `name`.
    pub fn context(&self, name: &str) -> Result<&Context, ConfigError> {
        self.contexts
            .get(name)
            .ok_or_else(|| ConfigError::UnknownContext {
                name: shown(name),
                path: self.path.clone(),
                known: self.contexts.keys().cloned().collect(),
            })
    }
}

/// Where the config file is when `--config` is not given:
/// `$XDG_CONFIG_HOME/chainview/config.toml`, else `$HOME/.config/…`.
pub fn default_path() -> Result<PathBuf, ConfigError> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    if let Some(x) = var("XDG_CONFIG_HOME") {
        return Ok(x.join("chainview").join("config.toml"));
    }
    var("HOME")
        .map(|h| h.join(".config").join("chainview").join("config.toml"))
        .ok_or(ConfigError::NoPlace)
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConfigError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let cfg = parse(path, &text)?;
    check_mode(&cfg, path)?;
    Ok(cfg)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    context: BTreeMap<String, RawContext>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(PathBuf),
    Many(Vec<PathBuf>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContext {
    url: Option<String>,
    ca_cert: Option<OneOrMany>,
    client_cert: Option<PathBuf>,
    client_key: Option<PathBuf>,
    client_id: Option<String>,
    client_id_env: Option<String>,
    client_id_cmd: Option<Vec<String>>,
    client_secret_env: Option<String>,
    client_secret_cmd: Option<Vec<String>>,
    admin_secret_env: Option<String>,
    admin_secret_cmd: Option<Vec<String>>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    production: bool,
}

/// Whether a key not known to chainview looks like it holds a secret.
fn secret_looking(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "password", "passwd", "token", "credential"]
        .iter()
        .any(|w| k.contains(w))
        || k == "key"
        || k == "api_key"
        || k == "private_key"
}

/// What to write instead of a secret under `key`.
fn hint_for(key: &str) -> String {
    let k = key.to_ascii_lowercase();
    let base = if k.contains("admin") {
        "admin_secret"
    } else if k.contains("client") || k.contains("app") {
        "client_secret"
    } else {
        "admin_secret"
    };
    format!(
        "{base}_env = \"NAME_OF_A_VARIABLE\" (an environment variable holding it) or \
         {base}_cmd = [\"pass\", \"show\", \"agentwrit/…\"] (a command that prints it, run without a shell)"
    )
}

/// Parses and checks the text of a config file (everything but its mode).
pub fn parse(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    let parse_error = |e: toml::de::Error| {
        // The message without toml's quoted source line, which could be
        // the line holding a secret.
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .unwrap_or(0);
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            message: e.message().trim().to_string(),
        }
    };
    let table: toml::Table = toml::from_str(text).map_err(parse_error)?;
    // Secrets first, by key, so the message says what to change before any
    // other complaint (and never quotes the value).
    for (key, value) in &table {
        if key != "context" && secret_looking(key) {
            return Err(ConfigError::LiteralSecret {
                path: path.to_path_buf(),
                place: "the top level".into(),
                key: shown(key),
                hint: hint_for(key),
            });
        }
        if key == "context"
            && let Some(contexts) = value.as_table()
        {
            for (name, ctx) in contexts {
                let Some(ctx) = ctx.as_table() else { continue };
                for k in ctx.keys() {
                    if !KNOWN_KEYS.contains(&k.as_str()) && secret_looking(k) {
                        return Err(ConfigError::LiteralSecret {
                            path: path.to_path_buf(),
                            place: format!("context '{}'", shown(name)),
                            key: shown(k),
                            hint: hint_for(k),
                        });
                    }
                }
            }
        }
    }
    let raw: RawFile = toml::from_str(text).map_err(parse_error)?;
    let base = path.parent().unwrap_or(Path::new("."));
    let mut contexts = BTreeMap::new();
    for (name, rc) in raw.context {
        let ctx = context_from(path, base, &name, rc)?;
        contexts.insert(name, ctx);
    }
    Ok(ConfigFile {
        path: path.to_path_buf(),
        contexts,
    })
}

fn context_from(
    path: &Path,
    base: &Path,
    name: &str,
    rc: RawContext,
) -> Result<Context, ConfigError> {
    let invalid = |what: String| ConfigError::Invalid {
        path: path.to_path_buf(),
        context: shown(name),
        what,
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            "a context name may hold only letters, digits, '-', '_' and '.'".into(),
        ));
    }
    let url = rc.url.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        invalid("has no url (the broker's, e.g. url = \"https://broker:8443\")".into())
    })?;
    let resolve = |p: PathBuf| resolve_path(base, p);
    let ca_files = match rc.ca_cert {
        None => Vec::new(),
        Some(OneOrMany::One(p)) => vec![resolve(p)],
        Some(OneOrMany::Many(ps)) => ps.into_iter().map(resolve).collect(),
    };
    if rc.client_cert.is_some() != rc.client_key.is_some() {
        return Err(invalid(
            "client_cert and client_key go together: give both or neither".into(),
        ));
    }
    let source = |what: &str,
                  literal: Option<String>,
                  env: Option<String>,
                  cmd: Option<Vec<String>>|
     -> Result<Option<Source>, ConfigError> {
        let given = [literal.is_some(), env.is_some(), cmd.is_some()]
            .iter()
            .filter(|x| **x)
            .count();
        if given > 1 {
            return Err(invalid(format!(
                "give one of {what}_env and {what}_cmd{}",
                if literal.is_some() {
                    format!(" and {what}")
                } else {
                    String::new()
                }
            )));
        }
        if let Some(v) = env {
            if !is_env_name(&v) {
                return Err(invalid(format!(
                    "{what}_env must be the NAME of an environment variable (letters, digits, '_'), not its value"
                )));
            }
            return Ok(Some(Source::Env(v)));
        }
        if let Some(c) = cmd {
            if c.first().is_none_or(|p| p.is_empty()) {
                return Err(invalid(format!(
                    "{what}_cmd must name a program: {what}_cmd = [\"pass\", \"show\", \"…\"]"
                )));
            }
            return Ok(Some(Source::Command(c)));
        }
        Ok(literal.map(Source::Literal))
    };
    Ok(Context {
        name: name.to_string(),
        url: url.trim().to_string(),
        ca_files,
        client_cert: rc.client_cert.map(resolve),
        client_key: rc.client_key.map(resolve),
        client_id: source(
            "client_id",
            rc.client_id,
            rc.client_id_env,
            rc.client_id_cmd,
        )?,
        client_secret: source(
            "client_secret",
            None,
            rc.client_secret_env,
            rc.client_secret_cmd,
        )?,
        admin_secret: source(
            "admin_secret",
            None,
            rc.admin_secret_env,
            rc.admin_secret_cmd,
        )?,
        read_only: rc.read_only,
        production: rc.production,
    })
}

fn is_env_name(v: &str) -> bool {
    let mut chars = v.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `~/x` from HOME; a relative path from the config file's folder.
fn resolve_path(base: &Path, p: PathBuf) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty())
    {
        return PathBuf::from(home).join(rest);
    }
    if p.is_relative() { base.join(p) } else { p }
}

/// A setting in the file: where it is ("context 'x'") and its key.
type Place = (String, String);

/// The first context naming a private key, and one naming a command.
fn key_and_command(cfg: &ConfigFile) -> (Option<Place>, Option<Place>) {
    let mut key = None;
    let mut command = None;
    for (name, c) in &cfg.contexts {
        if key.is_none() && c.client_key.is_some() {
            key = Some((format!("context '{name}'"), "client_key".to_string()));
        }
        if command.is_none() {
            for (what, s) in [
                ("client_id_cmd", &c.client_id),
                ("client_secret_cmd", &c.client_secret),
                ("admin_secret_cmd", &c.admin_secret),
            ] {
                if matches!(s, Some(Source::Command(_))) {
                    command = Some((format!("context '{name}'"), what.to_string()));
                    break;
                }
            }
        }
    }
    (key, command)
}

/// The permission rule, given the file's mode bits.
pub fn check_permissions(cfg: &ConfigFile, mode: u32) -> Result<(), ConfigError> {
    let who = |group: u32, other: u32| match (mode & group != 0, mode & other != 0) {
        (true, true) => Some("its group and others"),
        (true, false) => Some("its group"),
        (false, true) => Some("others"),
        (false, false) => None,
    };
    let (key, command) = key_and_command(cfg);
    if let (Some((place, key)), Some(who)) = (key, who(0o040, 0o004)) {
        return Err(ConfigError::ReadableWithKey {
            path: cfg.path.clone(),
            who,
            mode: mode & 0o777,
            place,
            key,
        });
    }
    if let (Some((place, key)), Some(who)) = (command, who(0o020, 0o002)) {
        return Err(ConfigError::WritableWithCommand {
            path: cfg.path.clone(),
            who,
            mode: mode & 0o777,
            place,
            key,
        });
    }
    Ok(())
}

#[cfg(unix)]
fn check_mode(cfg: &ConfigFile, path: &Path) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    check_permissions(cfg, meta.permissions().mode())
}

#[cfg(not(unix))]
fn check_mode(_cfg: &ConfigFile, _path: &Path) -> Result<(), ConfigError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parsed(text: &str) -> Result<ConfigFile, ConfigError> {
        parse(Path::new("/etc/cv/config.toml"), text)
    }

    const STAGING: &str = r#"
[context.staging]
url = "https://broker.staging:8443"
ca_cert = "ca.pem"
client_cert = "/keys/client.pem"
client_key = "/keys/client.key"
client_id = "app-123"
client_secret_env = "STAGING_SECRET"
admin_secret_cmd = ["pass", "show", "agentwrit/staging"]
read_only = true
production = true
"#;

    #[test]
    fn a_context_is_read_with_paths_resolved_and_sources_named() {
        let cfg = parsed(STAGING).unwrap();
        let c = cfg.context("staging").unwrap();
        assert_eq!(c.url, "https://broker.staging:8443");
        assert_eq!(c.ca_files, vec![PathBuf::from("/etc/cv/ca.pem")]);
        assert_eq!(c.client_key, Some(PathBuf::from("/keys/client.key")));
        assert_eq!(c.client_id, Some(Source::Literal("app-123".into())));
        assert_eq!(c.client_secret, Some(Source::Env("STAGING_SECRET".into())));
        assert_eq!(
            c.admin_secret,
            Some(Source::Command(vec![
                "pass".into(),
                "show".into(),
                "agentwrit/staging".into()
            ]))
        );
        assert!(c.read_only && c.production);
        let shown = c.show();
        assert!(
            shown.contains("client_secret  $STAGING_SECRET (not set here)"),
            "{shown}"
        );
        assert!(
            shown.contains("the output of `pass show agentwrit/staging`"),
            "{shown}"
        );
    }

    #[test]
    fn an_unknown_context_lists_the_known_ones() {
        let cfg = parsed(STAGING).unwrap();
        let e = cfg.context("prod").unwrap_err().to_string();
        assert!(e.contains("no context 'prod'"), "{e}");
        assert!(e.contains("(it has staging)"), "{e}");
    }

    #[test]
    fn a_literal_secret_is_refused_without_quoting_it() {
        for key in [
            "admin_secret",
            "client_secret",
            "password",
            "token",
            "AdminSecret",
        ] {
            let text = format!(
                "[context.dev]\nurl = \"http://127.0.0.1:8080\"\n{key} = \"hunter2-hunter2-hunter2\"\n"
            );
            let e = parsed(&text).unwrap_err().to_string();
            assert!(e.contains(&format!("context 'dev' has `{key}`")), "{e}");
            assert!(e.contains("_env = \"NAME_OF_A_VARIABLE\""), "{e}");
            assert!(e.contains("_cmd = [\"pass\""), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = parsed("admin_secret = \"x\"\n").unwrap_err().to_string();
        assert!(e.contains("the top level has `admin_secret`"), "{e}");
    }

    #[test]
    fn a_secret_value_in_an_env_field_is_refused_without_quoting_it() {
        let e = parsed("[context.dev]\nurl = \"http://x\"\nadmin_secret_env = \"s3cr3t-v@lue!\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("must be the NAME of an environment variable"),
            "{e}"
        );
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn a_syntax_error_gives_the_line_but_not_its_text() {
        let e = parsed("[context.dev]\nurl = \"http://x\"\nadmin_secret_env = hunter2\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn mistakes_are_named() {
        let e = parsed("[context.dev]\nca_cert = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("context 'dev': has no url"), "{e}");
        let e = parsed("[context.dev]\nurl = \"http://x\"\nclient_cert = \"c.pem\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("client_cert and client_key go together"), "{e}");
        let e = parsed(
            "[context.dev]\nurl = \"http://x\"\nadmin_secret_env = \"A\"\nadmin_secret_cmd = [\"b\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("give one of admin_secret_env and admin_secret_cmd"),
            "{e}"
        );
        let e = parsed("[context.dev]\nurl = \"http://x\"\nrea_only = true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rea_only"), "{e}");
    }

    #[test]
    fn permissions_refuse_a_readable_file_naming_a_key() {
        let cfg = parsed(STAGING).unwrap();
        assert!(check_permissions(&cfg, 0o100600).is_ok());
        assert!(check_permissions(&cfg, 0o100400).is_ok());
        let e = check_permissions(&cfg, 0o100644).unwrap_err().to_string();
        assert!(
            e.contains("readable by its group and others (mode 644)"),
            "{e}"
        );
        assert!(e.contains("context 'staging', `client_key`"), "{e}");
        assert!(e.contains("chmod 600 /etc/cv/config.toml"), "{e}");
        let e = check_permissions(&cfg, 0o100640).unwrap_err().to_string();
        assert!(e.contains("readable by its group (mode 640)"), "{e}");
        // No key: a readable file is fine, but not a writable one with a command.
        let nokey =
            parsed("[context.dev]\nurl = \"http://x\"\nadmin_secret_cmd = [\"pass\", \"x\"]\n")
                .unwrap();
        assert!(check_permissions(&nokey, 0o100644).is_ok());
        let e = check_permissions(&nokey, 0o100666).unwrap_err().to_string();
        assert!(e.contains("writable by its group and others"), "{e}");
        assert!(e.contains("admin_secret_cmd"), "{e}");
    }

    #[test]
    fn a_secret_command_loses_one_trailing_newline_and_failures_hide_output() {
        let cmd = |args: &[&str]| Source::Command(args.iter().map(|s| s.to_string()).collect());
        let s = cmd(&["printf", "abc\n\n"])
            .fetch("dev", "admin secret")
            .unwrap();
        assert_eq!(s, "abc\n");
        let s = cmd(&["printf", "abc\r\n"])
            .fetch("dev", "admin secret")
            .unwrap();
        assert_eq!(s, "abc");
        let e = cmd(&["sh", "-c", "echo out-$((40+2)); exit 3"])
            .fetch("dev", "admin secret")
            .unwrap_err()
            .to_string();
        assert!(e.contains("context 'dev'"), "{e}");
        assert!(e.contains("`sh -c echo out-$((40+2)); exit 3`"), "{e}");
        assert!(!e.contains("out-42"), "{e}");
        assert!(e.contains("failed (exit status: 3)"), "{e}");
        let e = cmd(&["/no/such/program"])
            .fetch("dev", "admin secret")
            .unwrap_err()
            .to_string();
        assert!(e.contains("could not be started"), "{e}");
        let e = cmd(&["true"])
            .fetch("dev", "admin secret")
            .unwrap_err()
            .to_string();
        assert!(e.contains("printed nothing"), "{e}");
        let e = Source::Env("CHAINVIEW_TEST_SURELY_UNSET".into())
            .fetch("dev", "admin secret")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "the admin secret comes from $CHAINVIEW_TEST_SURELY_UNSET, which is not set"
            ),
            "{e}"
        );
    }
}
