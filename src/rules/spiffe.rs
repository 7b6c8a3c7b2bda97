//! The short name of a SPIFFE id (`spiffe://domain/agent/orch/task/instance`,
//! spec §5.3), cut by characters, never by bytes.

/// The parts of an agent's SPIFFE id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts<'a> {
    pub orch: &'a str,
    pub task: &'a str,
    pub instance: &'a str,
}

/// `spiffe://domain/…/orch/task/instance` → its parts (the orch is empty
/// when the path is only `task/instance`); anything else → `None`.
pub fn parts(id: &str) -> Option<Parts<'_>> {
    let rest = id.strip_prefix("spiffe://")?;
    let (_, path) = rest.split_once('/')?;
    let mut segs = path.rsplitn(4, '/');
    let instance = segs.next()?;
    let task = segs.next()?;
    let orch = segs.next().unwrap_or("");
    let orch = if orch == "agent" && segs.next().is_none() {
        ""
    } else {
        orch
    };
    Some(Parts {
        orch,
        task,
        instance,
    })
}

/// The first `n` characters of `s`, and whether anything was left out.
fn prefix(s: &str, n: usize) -> (&str, bool) {
    match s.char_indices().nth(n) {
        Some((i, _)) => (&s[..i], true),
        None => (s, false),
    }
}

/// `task/0123` (the instance cut to 4 characters; `…` after it when `ellipsis`
/// and something was cut). An id that is not an agent's SPIFFE id is itself.
pub fn short(id: &str, ellipsis: bool) -> String {
    match parts(id) {
        Some(p) => {
            let (inst, cut) = prefix(p.instance, 4);
            let dots = if ellipsis && cut { "…" } else { "" };
            format!("{}/{inst}{dots}", p.task)
        }
        None => id.to_string(),
    }
}

/// `orch/task/0123`: the short name with the orch in front.
pub fn with_orch(id: &str) -> String {
    match parts(id) {
        Some(p) if !p.orch.is_empty() => {
            let (inst, _) = prefix(p.instance, 4);
            format!("{}/{}/{inst}", p.orch, p.task)
        }
        Some(p) => {
            let (inst, _) = prefix(p.instance, 4);
            format!("{}/{inst}", p.task)
        }
        None => id.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_cut_by_characters() {
        let id = "spiffe://agentwrit.local/agent/deploy-pipeline/release-v2.4.1/0a4ac040259ba6e3";
        assert_eq!(short(id, false), "release-v2.4.1/0a4a");
        assert_eq!(short(id, true), "release-v2.4.1/0a4a…");
        assert_eq!(with_orch(id), "deploy-pipeline/release-v2.4.1/0a4a");
        // A non-ASCII instance is cut between characters, never inside one.
        let odd = "spiffe://d/agent/o/t/ééééé";
        assert_eq!(short(odd, true), "t/éééé…");
        assert_eq!(with_orch(odd), "o/t/éééé");
        assert_eq!(short("admin", true), "admin");
        assert_eq!(short("spiffe://d/x", true), "spiffe://d/x");
        assert_eq!(with_orch("spiffe://d/agent/t/0123456"), "t/0123");
    }
}
