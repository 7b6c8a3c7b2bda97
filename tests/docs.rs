//! The front door holds: every relative link in README.md and docs/
//! resolves (the file, and the heading an `#anchor` names), and every
//! `chainview …` command shown in a ```sh block of the README names only
//! subcommands and flags that `--help` lists.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

const BIN: &str = env!("CARGO_BIN_EXE_chainview");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every Markdown file under docs/.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut out);
    out.sort();
    out
}

/// The text outside fenced code blocks, and the fenced blocks with their
/// language.
fn split(text: &str) -> (String, Vec<(String, String)>) {
    let mut prose = String::new();
    let mut blocks = Vec::new();
    let mut fence: Option<(String, String)> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match &mut fence {
            None if t.starts_with("```") => {
                fence = Some((t.trim_start_matches('`').trim().to_string(), String::new()))
            }
            None => {
                prose.push_str(line);
                prose.push('\n');
            }
            Some(_) if t.starts_with("```") => blocks.push(fence.take().unwrap()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
        }
    }
    (prose, blocks)
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let (prose, _) = split(text);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for line in prose.lines() {
        if let Some(h) = line.strip_prefix('#') {
            let h = h.trim_start_matches('#');
            let s = slug(h);
            let n = seen.entry(s.clone()).or_insert(0);
            out.push(if *n == 0 {
                s.clone()
            } else {
                format!("{s}-{n}")
            });
            *n += 1;
        }
    }
    out
}

/// `[text](target)` links in the prose (inline code spans left out).
fn links(prose: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose.lines() {
        // Drop `code spans`: a `[x](y)` inside one is not a link.
        let mut clean = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                clean.push_str(part);
            }
        }
        let mut rest = clean.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

fn broken_links() -> Vec<String> {
    let mut bad = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        let (prose, _) = split(&text);
        let name = page.strip_prefix(root()).unwrap().display().to_string();
        for link in links(&prose) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = match link.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                bad.push(format!("{name}: ({link}): no {}", target.display()));
                continue;
            }
            if let Some(a) = anchor {
                let t = std::fs::read_to_string(&target).unwrap_or_default();
                if !anchors(&t).iter().any(|x| x == a) {
                    bad.push(format!("{name}: ({link}): no heading with anchor #{a}"));
                }
            }
        }
    }
    bad
}

#[test]
fn every_relative_link_in_the_readme_and_docs_resolves() {
    assert!(pages().len() >= 8, "{:?}", pages());
    let bad = broken_links();
    assert!(bad.is_empty(), "broken links:\n{}", bad.join("\n"));
}

#[test]
fn the_link_checker_finds_a_broken_link_and_anchor() {
    let prose =
        "see [a](docs/observe.md#json-lines), `[not](a-link)` and [b](https://x.example/y)\n";
    assert_eq!(
        links(prose),
        vec!["docs/observe.md#json-lines", "https://x.example/y"]
    );
    assert_eq!(
        slug(" `chainview broker`, TLS, and the embedded broker"),
        "chainview-broker-tls-and-the-embedded-broker"
    );
    let a = anchors("# T\n## JSON lines\n```\n# not a heading\n```\n## JSON lines\n");
    assert_eq!(a, vec!["t", "json-lines", "json-lines-1"]);
}

/// `chainview [PATH…] --help`.
fn help(path: &[String]) -> String {
    let out = std::process::Command::new(BIN)
        .args(path)
        .arg("--help")
        .env_remove("CHAINVIEW_CONTEXT")
        .output()
        .unwrap();
    assert!(out.status.success(), "chainview {path:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands a help page lists.
fn subcommands(help: &str) -> Vec<String> {
    let Some(list) = help.split("Commands:\n").nth(1) else {
        return Vec::new();
    };
    list.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

/// Whether the help's usage line takes positional arguments.
fn takes_positionals(help: &str) -> bool {
    let usage = help.lines().find(|l| l.starts_with("Usage:")).unwrap_or("");
    usage.split_whitespace().skip(2).any(|w| {
        (w.starts_with('<') || w.starts_with("["))
            && !["[OPTIONS]", "[COMMAND]", "<COMMAND>"].contains(&w)
    })
}

/// What is wrong with one `chainview …` command line (the words after
/// `chainview`), if anything.
fn check_command(words: &[&str], cache: &mut HashMap<Vec<String>, String>) -> Option<String> {
    let mut path: Vec<String> = Vec::new();
    let mut after_flag = false;
    for w in words {
        let page = cache
            .entry(path.clone())
            .or_insert_with(|| help(&path))
            .clone();
        if w.starts_with("--") {
            let flag = w.split('=').next().unwrap();
            if !page.contains(&format!("{flag} ")) && !page.contains(&format!("{flag}\n")) {
                return Some(format!("`chainview {}` has no flag {flag}", path.join(" ")));
            }
            after_flag = !w.contains('=');
            continue;
        }
        if w.starts_with('-') {
            after_flag = false;
            continue;
        }
        if subcommands(&page).iter().any(|s| s == w) {
            path.push(w.to_string());
        } else if !after_flag && !takes_positionals(&page) {
            return Some(format!(
                "`chainview {}` has no subcommand '{w}' and takes no argument",
                path.join(" ")
            ));
        }
        after_flag = false;
    }
    None
}

/// Every `chainview …` in the README's sh blocks: the words of each command
/// (a line, or a part after `;`, `&&`, `|`), up to a comment or redirection.
fn readme_commands() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let (_, blocks) = split(&text);
    let mut out = Vec::new();
    for (lang, body) in blocks.iter().filter(|(l, _)| l == "sh") {
        let _ = lang;
        for line in body.lines() {
            let code = line.split(" #").next().unwrap_or("");
            for part in code.split(['|', ';', '&']) {
                let words: Vec<&str> = part.split_whitespace().collect();
                if words.first() != Some(&"chainview") {
                    continue;
                }
                let words: Vec<String> = words[1..]
                    .iter()
                    .take_while(|w| !w.starts_with('>') && !w.starts_with('<'))
                    .map(|w| w.trim_matches(['\'', '"']).to_string())
                    .collect();
                out.push(words);
            }
        }
    }
    out
}

#[test]
fn every_chainview_command_in_the_readme_exists_in_help() {
    let commands = readme_commands();
    assert!(commands.len() >= 15, "{commands:?}");
    let mut cache = HashMap::new();
    let bad: Vec<String> = commands
        .iter()
        .filter_map(|c| {
            let words: Vec<&str> = c.iter().map(String::as_str).collect();
            check_command(&words, &mut cache).map(|e| format!("chainview {}: {e}", c.join(" ")))
        })
        .collect();
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_command_checker_catches_what_does_not_exist() {
    let mut cache = HashMap::new();
    let mut check = |s: &str| check_command(&s.split_whitespace().collect::<Vec<_>>(), &mut cache);
    assert_eq!(check("observe --from t.json --print json --at evt-1"), None);
    assert_eq!(check("--context staging observe"), None);
    assert_eq!(check("demo assets/x.chainview"), None);
    assert_eq!(check("check --baseline b.json --format sarif"), None);
    assert_eq!(check("diff --from a.json --at evt-1 --to evt-2"), None);
    let e = check("lint --from a.json").unwrap();
    assert!(e.contains("no subcommand 'lint'"), "{e}");
    let e = check("observe --follow").unwrap();
    assert!(
        e.contains("`chainview observe` has no flag --follow"),
        "{e}"
    );
    let e = check("context frobnicate").unwrap();
    assert!(e.contains("no subcommand 'frobnicate'"), "{e}");
}
