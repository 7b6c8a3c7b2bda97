//! Names the commit `chainview --version` was built from: `git rev-parse
//! --short HEAD` when building from a git checkout of this crate, "commit
//! unknown" otherwise (a source tarball, no git installed).

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // Only this checkout's own commit: a source tree unpacked inside some
    // other git repository must not take that repository's HEAD.
    let ours = match (
        git(&["rev-parse", "--show-toplevel"]),
        std::env::var("CARGO_MANIFEST_DIR"),
    ) {
        (Some(top), Ok(dir)) => {
            let canon = |p: &str| std::fs::canonicalize(p).ok();
            canon(&top).is_some() && canon(&top) == canon(&dir)
        }
        _ => false,
    };
    let commit = if ours {
        git(&["rev-parse", "--short", "HEAD"])
    } else {
        None
    };
    // Built again when HEAD moves: a commit, a checkout (each updates the
    // reflog of HEAD; in a worktree these live in its own git directory).
    for file in ["HEAD", "logs/HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", file])
            && std::path::Path::new(&p).exists()
        {
            let p = std::path::Path::new(&p);
            let p = if p.is_relative() {
                std::env::current_dir()
                    .map(|d| d.join(p))
                    .unwrap_or(p.to_path_buf())
            } else {
                p.to_path_buf()
            };
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let shown = match commit {
        Some(c) if c.chars().all(|ch| ch.is_ascii_hexdigit()) => format!("commit {c}"),
        _ => "commit unknown".to_string(),
    };
    println!("cargo:rustc-env=CHAINVIEW_BUILD_COMMIT={shown}");
}
