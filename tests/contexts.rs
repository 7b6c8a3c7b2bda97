//! Contexts: named brokers from a config file, through the binary. An mtls
//! `chainview` broker reached with the context's CA and client certificate
//! and the admin secret from a command; the config files chainview refuses,
//! each with its message; `context list|show`; read-only contexts; the
//! context in the status bar.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::clean;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

const DEPLOY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/assets/scenarios/deploy.chainview"
);

use clean::run;

fn write_config(dir: &Path, text: &str, mode: u32) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path.to_str().unwrap().to_string()
}

fn lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The issue's test: `chainview --context staging observe --print json`
/// reaches an mtls broker with the context's CA and client certificate, the
/// admin secret printed by a command; the app's secret comes from a named
/// variable for the `--script` that made the chains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_reaches_an_mtls_broker_with_its_certificates_and_a_secret_from_a_command() {
    let env = common::Env::tls(true).await;
    let pki = env.pki.as_ref().unwrap();
    let (app, _) = env
        .app(&["read:config:*", "read:deploy:*", "write:deploy:*"])
        .await;
    let url = env.client.base_url().to_string();
    let dir = tempfile::tempdir().unwrap();
    // The secret lives in its own file; the command prints it (with the
    // trailing newline a password manager prints, which is dropped).
    let secret_file = dir.path().join("admin-secret");
    std::fs::write(&secret_file, format!("{}\n", env.admin_secret)).unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[context.staging]
url = "{url}"
ca_cert = "{ca}"
client_cert = "{cert}"
client_key = "{key}"
client_id = "{client_id}"
client_secret_env = "STAGING_APP_SECRET"
admin_secret_cmd = ["cat", "{secret}"]

[context.nocert]
url = "{url}"
ca_cert = "{ca}"
admin_secret_cmd = ["cat", "{secret}"]

[context.broken]
url = "{url}"
ca_cert = "{ca}"
admin_secret_cmd = ["sh", "-c", "echo half-a-secret; exit 7"]
"#,
            ca = pki.ca_pem.display(),
            cert = pki.client_cert.display(),
            key = pki.client_key.display(),
            client_id = app.client_id,
            secret = secret_file.display(),
        ),
        0o600,
    );
    let app_secret = app.client_secret.clone().unwrap();
    let result = tokio::task::spawn_blocking(move || {
        let with = |ctx: &'static str| vec!["--config", config.as_str(), "--context", ctx];
        let mut args = with("staging");
        args.extend(["--script", DEPLOY]);
        let script = run(&args, &[("STAGING_APP_SECRET", app_secret.as_str())]);
        let mut args = with("staging");
        args.extend(["observe", "--print", "json"]);
        let observed = run(&args, &[]);
        // CHAINVIEW_CONTEXT picks it as --context does.
        let by_env = run(
            &["--config", &config, "observe", "--print", "json"],
            &[("CHAINVIEW_CONTEXT", "staging")],
        );
        let saved = config.replace("config.toml", "trail.json");
        let mut args = with("staging");
        args.extend(["audit", "dump", "--out", saved.as_str()]);
        let dumped = run(&args, &[]);
        let dump = std::fs::read_to_string(&saved).unwrap_or_default();
        let mut args = with("nocert");
        args.extend(["observe", "--print", "json"]);
        let nocert = run(&args, &[]);
        let mut args = with("broken");
        args.extend(["observe", "--print", "json"]);
        let broken = run(&args, &[]);
        (script, observed, by_env, (dumped, dump), nocert, broken)
    })
    .await
    .unwrap();
    let (script, observed, by_env, (dumped, dump), nocert, broken) = result;
    // audit dump through the context, too.
    assert_eq!(dumped.0, 0, "{}", dumped.2);
    assert!(dump.contains("delegation_created"), "{dump}");
    assert_eq!(script.0, 0, "{}{}", script.1, script.2);
    // The transcript says which broker, by its context too.
    assert!(
        script
            .1
            .contains(&format!("AgentWrit broker at {url} (context staging)")),
        "{}",
        script.1
    );
    let (code, out, err) = observed;
    assert_eq!(code, 0, "{err}");
    let v = lines(&out);
    let delegations = v.iter().filter(|l| l["type"] == "delegation").count();
    assert_eq!(delegations, 3, "the deploy chain, rebuilt: {out}");
    assert!(v.last().unwrap()["kind"] == "summary", "{out}");
    assert_eq!(by_env.0, 0, "{}", by_env.2);
    assert_eq!(
        lines(&by_env.1)
            .iter()
            .filter(|l| l["type"] == "delegation")
            .count(),
        3,
        "{}",
        by_env.1
    );
    // Without the client certificate the same broker refuses: it is the
    // context's certificate that got through.
    assert_eq!(nocert.0, 3, "{}", nocert.2);
    assert!(nocert.2.contains("--client-cert"), "{}", nocert.2);
    // A failing command: named with the context and the command, exit 3,
    // and nothing it printed is repeated.
    assert_eq!(broken.0, 3, "{}", broken.2);
    assert!(
        broken.2.contains(
            "context 'broken': the admin secret comes from the command `sh -c echo half-a-secret; exit 7`, which failed (exit status: 7)"
        ),
        "{}",
        broken.2
    );
    assert_eq!(broken.2.matches("half-a-secret").count(), 1, "{}", broken.2);
}

#[test]
fn a_config_with_a_secret_in_it_is_refused_saying_what_to_write_instead() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[context.staging]\nurl = \"https://127.0.0.1:1\"\nadmin_secret = \"correct-horse-battery\"\n",
        0o600,
    );
    let (code, out, err) = run(
        &[
            "--config",
            &config,
            "--context",
            "staging",
            "observe",
            "--print",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("context 'staging' has `admin_secret`, a secret written in the file"),
        "{err}"
    );
    assert!(
        err.contains("admin_secret_env = \"NAME_OF_A_VARIABLE\""),
        "{err}"
    );
    assert!(
        err.contains("admin_secret_cmd = [\"pass\", \"show\""),
        "{err}"
    );
    assert!(
        !err.contains("correct-horse"),
        "the secret is never repeated: {err}"
    );
    // `context list` reads the same file and refuses it the same way.
    let (code, _, err) = run(&["--config", &config, "context", "list"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("a secret written in the file"), "{err}");
}

#[test]
fn a_group_readable_config_naming_a_key_is_refused_with_the_chmod_fix() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[context.staging]\nurl = \"https://127.0.0.1:1\"\n\
                client_cert = \"client.pem\"\nclient_key = \"client.key\"\n";
    let config = write_config(dir.path(), text, 0o640);
    let (code, _, err) = run(
        &[
            "--config",
            &config,
            "--context",
            "staging",
            "observe",
            "--print",
            "json",
        ],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "{config} is readable by its group (mode 640) and names a private key (context 'staging', `client_key`)"
        )),
        "{err}"
    );
    assert!(
        err.contains("learns which key file opens the broker"),
        "{err}"
    );
    assert!(err.contains(&format!("chmod 600 {config}")), "{err}");
    // Made private, it is read (and the broker, which is not there, is what fails).
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (code, _, err) = run(&["--config", &config, "context", "list"], &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn context_list_and_show_name_where_secrets_come_from_never_the_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        r#"
[context.dev]
url = "http://127.0.0.1:8080"
admin_secret_env = "DEV_ADMIN"

[context.prod]
url = "https://broker.example:8443"
ca_cert = ["ca.pem", "/etc/other-ca.pem"]
client_id_cmd = ["pass", "show", "agentwrit/prod-id"]
client_secret_cmd = ["pass", "show", "agentwrit/prod-secret"]
admin_secret_cmd = ["pass", "show", "agentwrit/prod-admin"]
read_only = true
production = true
"#,
        0o644,
    );
    let (code, out, err) = run(
        &["--config", &config, "--context", "prod", "context", "list"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let list: Vec<&str> = out.lines().collect();
    assert_eq!(list.len(), 2, "{out}");
    assert!(list[0].starts_with("  dev "), "{out}");
    assert!(list[0].ends_with("http://127.0.0.1:8080"), "{out}");
    assert!(list[1].starts_with("* prod "), "{out}");
    assert!(
        list[1].ends_with("https://broker.example:8443  (read-only, production)"),
        "{out}"
    );
    let (code, out, err) = run(
        &["--config", &config, "context", "show", "dev"],
        &[("DEV_ADMIN", "dev-admin-secret-value")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin_secret   $DEV_ADMIN (set)"), "{out}");
    assert!(!out.contains("dev-admin-secret-value"), "{out}");
    let (code, out, _) = run(
        &["--config", &config, "--context", "prod", "context", "show"],
        &[],
    );
    assert_eq!(code, 0);
    let ca = dir.path().join("ca.pem");
    assert!(
        out.contains(&format!(
            "ca_cert        {}, /etc/other-ca.pem",
            ca.display()
        )),
        "relative to the config file: {out}"
    );
    assert!(
        out.contains("admin_secret   the output of `pass show agentwrit/prod-admin`"),
        "{out}"
    );
    assert!(out.contains("read_only      true"), "{out}");
    let (code, _, err) = run(&["--config", &config, "context", "show", "qa"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("no context 'qa'"), "{err}");
    assert!(err.contains("(it has dev, prod)"), "{err}");
}

#[test]
fn a_read_only_context_runs_observe_but_not_the_explorer_or_a_script() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[context.prod]\nurl = \"http://127.0.0.1:9\"\nread_only = true\n",
        0o600,
    );
    for args in [vec!["--script", DEPLOY], vec!["demo"], vec![]] {
        let mut all = vec!["--config", config.as_str(), "--context", "prod"];
        all.extend(args.iter().copied());
        let (code, _, err) = run(&all, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("context 'prod' is read_only: only the commands that read its audit trail run against it (observe, audit dump, check, diff, explain, who-can, what-if)"),
            "{args:?}: {err}"
        );
    }
    // What only reads is let through (and needs the admin secret it was not given).
    for args in [
        vec!["observe", "--print", "json"],
        vec!["check"],
        vec!["diff"],
        vec!["explain", "n0", "read:data:x"],
        vec!["who-can", "write:*:production"],
        vec!["what-if", "revoke", "agent", "n0"],
    ] {
        let mut all = vec!["--config", config.as_str(), "--context", "prod"];
        all.extend(args.iter().copied());
        let (code, _, err) = run(&all, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("needs the admin secret"), "{args:?}: {err}");
    }
}

#[test]
fn flags_and_variables_win_over_the_context() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[context.dev]\nurl = \"http://127.0.0.1:9\"\nadmin_secret_cmd = [\"false\"]\n",
        0o600,
    );
    // AGENTWRIT_ADMIN_SECRET set: the context's (failing) command is not run;
    // --broker wins over its url, and chainview says so.
    let (code, _, err) = run(
        &[
            "--config",
            &config,
            "--context",
            "dev",
            "observe",
            "--broker",
            "http://127.0.0.1:1",
            "--print",
            "json",
        ],
        &[("AGENTWRIT_ADMIN_SECRET", "from-the-environment")],
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("(http://127.0.0.1:1) wins over context 'dev' (http://127.0.0.1:9)"),
        "{err}"
    );
    assert!(!err.contains("`false`"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[test]
fn the_status_bar_names_the_context_and_marks_production() {
    use chainview::config::ContextLabel;
    let app = chainview::app::App::new("https://broker.example:8443", false, None);
    for (production, want) in [
        (false, "context staging https://broker.example:8443"),
        (true, "▲ prod (production) https://broker.example:8443"),
    ] {
        let mut view = chainview::view::View::new(None, true);
        view.context = Some(ContextLabel {
            name: if production { "prod" } else { "staging" }.into(),
            production,
        });
        let screen = chainview::ui::render_text(&app, &mut view, 160, 30, 0);
        assert!(
            screen[0].contains(&want.replace(" https", " broker https")),
            "{}",
            screen[0]
        );
    }
    // In colour: production in a colour of its own (red, reversed), another
    // context in the accent colour.
    use ratatui::style::{Color, Modifier};
    for (production, first, fg, reversed) in [
        (true, "▲", Color::Red, true),
        (false, "context", Color::Cyan, false),
    ] {
        let mut view = chainview::view::View::new(None, false);
        view.context = Some(ContextLabel {
            name: "ctx".into(),
            production,
        });
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 30)).unwrap();
        let mut cache = chainview::ui::ProbeCache::default();
        term.draw(|f| chainview::ui::draw(f, &app, &mut view, &mut cache, 0))
            .unwrap();
        let buf = term.backend().buffer().clone();
        let row: String = (0..160).map(|x| buf[(x, 0)].symbol().to_string()).collect();
        let at = row.find(first).unwrap_or_else(|| panic!("{row}"));
        let x = row[..at].chars().count() as u16;
        let cell = &buf[(x, 0)];
        assert_eq!(cell.fg, fg, "{row}");
        assert_eq!(
            cell.modifier.contains(Modifier::REVERSED),
            reversed,
            "{row}"
        );
    }
}

/// Without --config: $XDG_CONFIG_HOME/chainview/config.toml, else
/// ~/.config/chainview/config.toml; a missing file is named.
#[test]
fn the_config_file_is_found_in_the_xdg_place_then_under_home() {
    let xdg = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    for (dir, name) in [
        (xdg.path().join("chainview"), "from-xdg"),
        (home.path().join(".config/chainview"), "from-home"),
    ] {
        std::fs::create_dir_all(&dir).unwrap();
        write_config(
            &dir,
            &format!("[context.{name}]\nurl = \"http://127.0.0.1:9\"\n"),
            0o600,
        );
    }
    let xdg_s = xdg.path().to_str().unwrap();
    let home_s = home.path().to_str().unwrap();
    let (code, out, err) = run(
        &["context", "list"],
        &[("XDG_CONFIG_HOME", xdg_s), ("HOME", home_s)],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("from-xdg") && !out.contains("from-home"),
        "{out}"
    );
    let (code, out, err) = run(&["context", "list"], &[("HOME", home_s)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from-home"), "{out}");
    let empty = tempfile::tempdir().unwrap();
    let (code, _, err) = run(
        &["--context", "x", "observe", "--print", "json"],
        &[("HOME", empty.path().to_str().unwrap())],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "no config file at {}/.config/chainview/config.toml",
            empty.path().display()
        )),
        "{err}"
    );
}
