//! The module graph is a DAG, layered as design.md says: every `crate::…`
//! (and `super::…`) path in src/ may name only its own layer or those
//! below it, and only the broker itself, the session set-up and the binary
//! may name `broker::embedded`. A new upward import fails this test, so the
//! rule holds without anyone having to remember it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

/// Bottom to top. A module may use its own layer and those below.
const LAYERS: &[&[&str]] = &[
    &["text", "logging", "config"],
    &["scope", "jwt", "rules"],
    &["broker"],
    &["protocol"],
    &["worker"],
    &["session"],
    &["app"],
    &["observe"],
    &["scenario"],
    &["judge"],
    &["export", "diagram"],
    &["view"],
    &["ui"],
    &["tui", "watch", "judging"],
    &["main", "lib", "cli"],
];

/// Who may name the embedded broker: itself, the session set-up, the binary.
const EMBEDDED_USERS: &[&str] = &["broker::embedded", "session", "main"];

fn layer(module: &str) -> Option<usize> {
    let top = module.split("::").next().unwrap_or(module);
    LAYERS.iter().position(|l| l.contains(&top))
}

/// `src/scenario/steps.rs` → `scenario::steps`; `src/app/mod.rs` → `app`.
fn module_of(path: &str) -> String {
    let p = path.trim_start_matches("src/").trim_end_matches(".rs");
    let p = p.strip_suffix("/mod").unwrap_or(p);
    p.replace('/', "::")
}

/// The crate-level module paths a line names: `crate::a::b`, the items of
/// `crate::{a, b::c}`, and `super::x` resolved against `module`.
fn named(line: &str, module: &str) -> Vec<String> {
    let mut out = Vec::new();
    let code = line.trim_start();
    if code.starts_with("//") {
        return out;
    }
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let item = item.trim();
                if !item.is_empty() {
                    out.push(path_head(item));
                }
            }
        } else {
            out.push(path_head(after));
        }
        rest = after;
    }
    // `super::…`: the module's parent, whether the module is a file
    // (`a/b.rs` → `a`) or a folder (`a/mod.rs` → the crate root).
    let parts: Vec<&str> = module.split("::").collect();
    let mut rest = code;
    while let Some(i) = rest.find("super::") {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = &rest[i + "super::".len()..];
        if before_ok {
            let mut base = parts.clone();
            base.pop();
            let mut tail = after;
            while let Some(t) = tail.strip_prefix("super::") {
                base.pop();
                tail = t;
            }
            let heads: Vec<String> = if let Some(group) = tail.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                group[..end]
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(path_head)
                    .collect()
            } else {
                vec![path_head(tail)]
            };
            for h in heads {
                let mut full = base.clone();
                full.push(&h);
                out.push(full.join("::"));
            }
            rest = tail;
            continue;
        }
        rest = after;
    }
    out
}

/// The module part of a path: identifiers up to the first non-module
/// segment (`broker::embedded::Config` → `broker::embedded`; names starting
/// with a capital letter or holding no `::` end it).
fn path_head(p: &str) -> String {
    let mut segs = Vec::new();
    for seg in p.split("::") {
        let ident: String = seg
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() || ident.starts_with(|c: char| c.is_ascii_uppercase()) {
            break;
        }
        let whole = ident.len() == seg.len();
        segs.push(ident);
        if !whole {
            break;
        }
    }
    segs.join("::")
}

/// Every import in `files` (path, text) that runs up the layers or names
/// the embedded broker from outside.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, text) in files {
        let module = module_of(path);
        let Some(own) = layer(&module) else {
            out.push(format!(
                "{path}: module '{module}' is in no layer (add it to LAYERS)"
            ));
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            for target in named(line, &module) {
                if target.is_empty() {
                    continue;
                }
                let Some(theirs) = layer(&target) else {
                    continue;
                };
                if theirs > own {
                    out.push(format!(
                        "{path}:{}: '{module}' (layer {own}) uses '{target}' (layer {theirs}), which is above it",
                        n + 1
                    ));
                }
                if (target == "broker::embedded" || target.starts_with("broker::embedded::"))
                    && !EMBEDDED_USERS
                        .iter()
                        .any(|u| module == *u || module.starts_with(&format!("{u}::")))
                {
                    out.push(format!(
                        "{path}:{}: '{module}' uses the embedded broker; only {EMBEDDED_USERS:?} may",
                        n + 1
                    ));
                }
            }
        }
    }
    out
}

fn source_files() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                walk(&p, root, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    walk(&root.join("src"), root, &mut out);
    out.sort();
    out
}

#[test]
fn no_module_imports_up_the_layers() {
    let files = source_files();
    assert!(files.len() > 30, "found only {} files", files.len());
    let v = violations(&files);
    assert!(
        v.is_empty(),
        "imports that run up the layers:\n{}",
        v.join("\n")
    );
}

#[test]
fn the_checker_catches_an_upward_import() {
    let file = |path: &str, text: &str| (path.to_string(), text.to_string());
    // The app state using the engine above it: caught, with the line.
    let v = violations(&[file(
        "src/app/mod.rs",
        "use crate::jwt;\nuse crate::scenario::report::StepReport;\n",
    )]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("src/app/mod.rs:2"), "{v:?}");
    assert!(v[0].contains("'scenario::report'"), "{v:?}");
    // In a group, and through `super`.
    let v = violations(&[
        file("src/worker.rs", "use crate::{broker::types, app::App};\n"),
        file("src/scenario/steps.rs", "use super::super::ui::draw;\n"),
    ]);
    assert_eq!(v.len(), 2, "{v:?}");
    // Client code naming the embedded broker.
    let v = violations(&[file(
        "src/scenario/parser.rs",
        "use crate::broker::embedded::valid_segment;\n",
    )]);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("embedded broker"), "{v:?}");
    // Downward, sideways, comments and the session's use of the broker: fine.
    let v = violations(&[
        file(
            "src/ui/detail.rs",
            "use crate::app::App;\nuse super::Theme;\n",
        ),
        file("src/scenario/steps.rs", "use super::runner::Next;\n"),
        file("src/protocol.rs", "/// see [`App`](crate::app::App)\n"),
        file(
            "src/session.rs",
            "use crate::broker::embedded::EmbeddedBroker;\n",
        ),
    ]);
    assert!(v.is_empty(), "{v:?}");
}

/// Import circles between the files of one folder: `a.rs` naming `b` and
/// `b.rs` naming `a` (directly or round a longer loop). Each is a list of
/// the modules on the loop, in order. Comments are skipped, test modules
/// inside a file count (they are code of that file too).
fn circles(files: &[(String, String)]) -> Vec<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(p)).collect();
    // Edges between siblings: `folder::a` → `folder::b`, where the name is
    // `folder::b` or anything inside it.
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let module = module_of(path);
        let Some((folder, _)) = module.rsplit_once("::") else {
            continue;
        };
        for line in text.lines() {
            for target in named(line, &module) {
                let Some(rest) = target.strip_prefix(&format!("{folder}::")) else {
                    continue;
                };
                let sibling = format!("{folder}::{}", rest.split("::").next().unwrap_or(rest));
                if sibling != module && modules.contains(&sibling) {
                    edges.entry(module.clone()).or_default().insert(sibling);
                }
            }
        }
    }
    // Every elementary loop found by a depth-first walk from each module,
    // reported once (starting at its smallest member).
    fn walk(
        at: &str,
        start: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        out: &mut BTreeSet<Vec<String>>,
    ) {
        for next in edges.get(at).into_iter().flatten() {
            if next == start {
                out.insert(path.clone());
            } else if next.as_str() > start && !path.contains(next) {
                path.push(next.clone());
                walk(next, start, edges, path, out);
                path.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    for m in edges.keys() {
        walk(m, m, &edges, &mut vec![m.clone()], &mut out);
    }
    out.into_iter().collect()
}

#[test]
fn no_import_circle_inside_a_folder() {
    let found = circles(&source_files());
    assert!(
        found.is_empty(),
        "files of one folder that import each other (move what both need into a third file):\n{}",
        found
            .iter()
            .map(|c| format!("  {} → {}", c.join(" → "), c[0]))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_checker_catches_a_circle_inside_a_folder() {
    let file = |path: &str, text: &str| (path.to_string(), text.to_string());
    // Two siblings naming each other, one through `super`, one through `crate`.
    let c = circles(&[
        file("src/scenario/runner.rs", "use super::steps::begin;\n"),
        file(
            "src/scenario/steps.rs",
            "use crate::scenario::runner::Ctx;\n",
        ),
        file("src/scenario/mod.rs", "pub mod runner;\npub mod steps;\n"),
    ]);
    assert_eq!(
        c,
        vec![vec![
            "scenario::runner".to_string(),
            "scenario::steps".to_string()
        ]]
    );
    // A longer loop, and a grouped import.
    let c = circles(&[
        file("src/broker/embedded/a.rs", "use super::{b::X, State};\n"),
        file("src/broker/embedded/b.rs", "use super::c::Y;\n"),
        file("src/broker/embedded/c.rs", "use super::a;\n"),
    ]);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].len(), 3, "{c:?}");
    // One way only, a file and its parent, and comments: no circle.
    let c = circles(&[
        file(
            "src/scenario/runner.rs",
            "use super::steps::begin;\nuse super::Script;\n",
        ),
        file(
            "src/scenario/steps.rs",
            "// see super::runner::Runner\n/// [`R`](super::runner::Runner)\n",
        ),
        file("src/scenario/mod.rs", "use runner::Runner;\n"),
    ]);
    assert!(c.is_empty(), "{c:?}");
}
