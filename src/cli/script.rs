//! `--script FILE`: the headless replay and its transcript.

use crate::*;

/// `--script`: headless replay. Returns the documented exit code.
pub(crate) struct ScriptOptions {
    pub(crate) format: Format,
    pub(crate) frames: Option<(u16, u16)>,
    pub(crate) reveal: bool,
}

pub(crate) async fn run_script(path: PathBuf, opts: ScriptOptions, settings: Settings) -> u8 {
    let ScriptOptions {
        format,
        frames,
        reveal,
    } = opts;
    let started = Instant::now();
    let (file, text) = match read_script(&path) {
        Ok(x) => x,
        Err(e) => {
            report!("chainview: cannot read script {}: {e}", path.display());
            return 2;
        }
    };
    let script = match chainview::scenario::parse(&file, &text) {
        Ok(s) => s,
        Err(errors) => {
            report!("{errors}");
            return 2;
        }
    };
    let mut replay = match Replay::start(script, &settings).await {
        Ok(r) => r,
        Err(e) => {
            report!("chainview: {e}");
            if format == Format::Json {
                // A JSON consumer reads stdout: say why there, too.
                let summary = transcript::Summary {
                    unreachable: Some(e.to_string()),
                    millis: started.elapsed().as_millis(),
                    ..transcript::Summary::default()
                };
                let mut out = Visible::json(std::io::stdout().lock());
                let _ = writeln!(out, "{}", transcript::summary_json(&summary));
            }
            return 3;
        }
    };
    replay.reveal_secrets(reveal);
    let (stdout, failed) = Out::new(std::io::stdout().lock());
    let mut out = match format {
        Format::Json => Visible::json(stdout),
        _ => Visible::text(stdout),
    };
    if format == Format::Text {
        let title = replay.script().title().map(str::to_string);
        let header = transcript::header_text(title.as_deref(), &file, &replay.target.describe());
        let _ = write!(out, "{header}");
    }
    let mut view = frames.map(|_| View::new(Some(replay.script()), true));
    while let Some(report) = replay.next().await {
        let frame = match (&mut view, frames) {
            (Some(v), Some((w, h))) => {
                v.on_report(&replay.driver.app, &report);
                Some(chainview::ui::render_text(
                    &replay.driver.app,
                    v,
                    w,
                    h,
                    unix_now(),
                ))
            }
            _ => None,
        };
        let _ = match (format, frame) {
            (Format::Text, None) => write!(out, "{}", transcript::step_text(&report)),
            (Format::Text, Some(lines)) => writeln!(
                out,
                "\n── frame after step {} · line {} · {}",
                report.index, report.line, report.source
            )
            .and_then(|_| writeln!(out, "{}", lines.join("\n"))),
            (Format::Json, frame) => {
                let mut v = transcript::step_json(&report);
                if let Some(lines) = frame {
                    v["frame"] = serde_json::json!(lines);
                }
                writeln!(out, "{v}")
            }
            (Format::Mermaid | Format::Dot, _) => Ok(()),
        };
    }
    let graph = chainview::diagram::from_app(&replay.driver.app, unix_now());
    let mut summary = replay.finish().await;
    summary.millis = started.elapsed().as_millis();
    let _ = match format {
        Format::Text => write!(out, "{}", transcript::summary_text(&summary)),
        Format::Json => writeln!(out, "{}", transcript::summary_json(&summary)),
        Format::Mermaid => write!(out, "{}", chainview::diagram::mermaid::render(&graph)),
        Format::Dot => write!(out, "{}", chainview::diagram::dot::render(&graph)),
    };
    let _ = out.flush();
    drop(out);
    if let Some(e) = failed.borrow().as_ref() {
        return output_failed(e);
    }
    summary.exit_code()
}
