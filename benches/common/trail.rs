//! The synthetic trail the observe benches read: a valid hash chain that
//! looks like a busy broker's (see benches/observe.rs). Deterministic.

use std::io::Write;
use std::time::{Duration, Instant};

use chainview::broker::types::AuditEvent;

/// A small deterministic generator (xorshift), so every run sees the same trail.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

struct Agent {
    spiffe: String,
    task: String,
    orch: String,
    jti: String,
}

/// A token that can delegate: holder, task/orch it carries, depth, scope.
#[derive(Clone)]
struct Tok {
    holder: usize,
    task: String,
    orch: String,
    depth: i64,
    scope: Vec<String>,
}

/// Writes `n` events as one page to `w`; returns the events' count.
pub fn synthetic_trail(n: usize, w: &mut dyn Write) -> usize {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut agents: Vec<Agent> = Vec::new();
    let mut toks: Vec<Tok> = Vec::new();
    let mut prev = "0".repeat(64);
    let start = 1_785_000_000_000i64; // ms
    let mut k = 0usize;
    let mut jti_n = 0u64;
    w.write_all(b"{\"events\":[").unwrap();
    let push = |mut e: AuditEvent, w: &mut dyn Write, prev: &mut String, k: &mut usize| {
        *k += 1;
        e.id = format!("evt-{:06}", *k);
        let ms = start + (*k as i64) * 7;
        let t = chrono::DateTime::from_timestamp_millis(ms).unwrap();
        e.timestamp = t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        e.prev_hash = std::mem::take(prev);
        e.hash = e.compute_hash();
        *prev = e.hash.clone();
        if *k > 1 {
            w.write_all(b",\n").unwrap();
        }
        serde_json::to_writer(&mut *w, &e).unwrap();
    };
    let scopes = [
        "read:data:*",
        "write:data:*",
        "read:logs:*",
        "read:config:*",
    ];
    while k < n {
        let roll = rng.below(100);
        let ev = |ty: &str| AuditEvent {
            event_type: ty.into(),
            outcome: "success".into(),
            ..AuditEvent::default()
        };
        if agents.len() < 20 || roll < 14 {
            // An agent registers: launch token, registration, token.
            let i = agents.len();
            let orch = format!("orch-{}", i % 97);
            let task = format!("task-{}", i % 5003);
            let spiffe = format!(
                "spiffe://agentwrit.local/agent/{orch}/{task}/{:016x}",
                rng.next()
            );
            jti_n += 1;
            let jti = format!("{jti_n:032x}");
            let scope: Vec<String> = scopes[..1 + rng.below(4)]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let list = scope.join(" ");
            push(
                AuditEvent {
                    detail: format!(
                        "launch token issued for agent={orch}/{task} scope=[{list}] max_ttl=3600 created_by=admin"
                    ),
                    ..ev("launch_token_issued")
                },
                w,
                &mut prev,
                &mut k,
            );
            for (ty, detail) in [
                (
                    "agent_registered",
                    format!(
                        "Agent registered with scope [{list}] app_id=app-bench-00000{}",
                        i % 7
                    ),
                ),
                (
                    "token_issued",
                    format!(
                        "Token issued, jti={jti}, ttl=3600 app_id=app-bench-00000{}",
                        i % 7
                    ),
                ),
            ] {
                push(
                    AuditEvent {
                        agent_id: spiffe.clone(),
                        task_id: task.clone(),
                        orch_id: orch.clone(),
                        detail,
                        ..ev(ty)
                    },
                    w,
                    &mut prev,
                    &mut k,
                );
            }
            toks.push(Tok {
                holder: i,
                task: task.clone(),
                orch: orch.clone(),
                depth: 0,
                scope,
            });
            agents.push(Agent {
                spiffe,
                task,
                orch,
                jti,
            });
            if toks.len() > 200_000 {
                toks.drain(..100_000);
            }
            continue;
        }
        let recent = toks.len().saturating_sub(5000);
        let t = toks[recent + rng.below(toks.len() - recent)].clone();
        let a = &agents[t.holder];
        let to = rng.below(agents.len());
        let target = &agents[to];
        match roll {
            14..=49 if t.depth < 5 => {
                // A delegation of one scope held (narrowed half the time).
                let s = &t.scope[rng.below(t.scope.len())];
                let scope = if rng.below(2) == 0 {
                    s.replace('*', &format!("r{}", rng.below(50)))
                } else {
                    s.clone()
                };
                push(
                    AuditEvent {
                        agent_id: target.spiffe.clone(),
                        task_id: t.task.clone(),
                        orch_id: t.orch.clone(),
                        detail: format!(
                            "delegation from {} to {} scope=[{scope}] depth={}",
                            a.spiffe,
                            target.spiffe,
                            t.depth + 1
                        ),
                        deleg_depth: t.depth + 1,
                        deleg_chain_hash: format!("{:064x}", rng.next()),
                        ..ev("delegation_created")
                    },
                    w,
                    &mut prev,
                    &mut k,
                );
                toks.push(Tok {
                    holder: to,
                    task: t.task,
                    orch: t.orch,
                    depth: t.depth + 1,
                    scope: vec![scope],
                });
            }
            14..=59 => push(
                AuditEvent {
                    agent_id: a.spiffe.clone(),
                    task_id: t.task.clone(),
                    orch_id: t.orch.clone(),
                    detail: format!(
                        "delegation_attenuation_violation | delegator={} | target={} | requested=[admin:revoke:*] | allowed=[{}]",
                        a.spiffe,
                        target.spiffe,
                        t.scope.join(" ")
                    ),
                    deleg_depth: t.depth,
                    outcome: "denied".into(),
                    ..ev("delegation_attenuation_violation")
                },
                w,
                &mut prev,
                &mut k,
            ),
            60..=66 => {
                jti_n += 1;
                push(
                    AuditEvent {
                        agent_id: a.spiffe.clone(),
                        task_id: a.task.clone(),
                        orch_id: a.orch.clone(),
                        detail: format!(
                            "token renewed for agent={} new_jti={jti_n:032x}",
                            a.spiffe
                        ),
                        ..ev("token_renewed")
                    },
                    w,
                    &mut prev,
                    &mut k,
                );
            }
            67..=73 => push(
                AuditEvent {
                    agent_id: a.spiffe.clone(),
                    task_id: a.task.clone(),
                    orch_id: a.orch.clone(),
                    detail: format!("token released | jti={}", a.jti),
                    ..ev("token_released")
                },
                w,
                &mut prev,
                &mut k,
            ),
            74..=76 => {
                let (level, target) = match rng.below(4) {
                    0 => ("token", a.jti.clone()),
                    1 => ("agent", a.spiffe.clone()),
                    2 => ("task", t.task.clone()),
                    _ => ("chain", a.spiffe.clone()),
                };
                push(
                    AuditEvent {
                        agent_id: target.clone(),
                        detail: format!("revoked at level={level} target={target}"),
                        ..ev("token_revoked")
                    },
                    w,
                    &mut prev,
                    &mut k,
                );
            }
            77..=83 => push(
                AuditEvent {
                    agent_id: a.spiffe.clone(),
                    task_id: t.task.clone(),
                    orch_id: t.orch.clone(),
                    resource: "/v1/revoke".into(),
                    detail: format!(
                        "scope_violation | required=admin:revoke:* | actual={} | path=/v1/revoke",
                        t.scope.join(",")
                    ),
                    outcome: "denied".into(),
                    ..ev("scope_violation")
                },
                w,
                &mut prev,
                &mut k,
            ),
            84..=89 => push(
                AuditEvent {
                    resource: "/v1/delegate".into(),
                    detail: "token verification failed: token has been revoked | path=/v1/delegate"
                        .into(),
                    outcome: "denied".into(),
                    ..ev("token_auth_failed")
                },
                w,
                &mut prev,
                &mut k,
            ),
            _ => push(
                AuditEvent {
                    detail: "admin authenticated as admin".into(),
                    ..ev("admin_auth")
                },
                w,
                &mut prev,
                &mut k,
            ),
        }
    }
    write!(w, "\n],\"total\":{k},\"offset\":0,\"limit\":{k}}}").unwrap();
    k
}

/// Writes `n` events as one page to a new temporary file.
pub fn trail_file(n: usize) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f.reopen().unwrap());
    synthetic_trail(n, &mut w);
    w.flush().unwrap();
    f
}

/// Wall time and peak RSS (MiB) of a child process, through /usr/bin/time
/// when there is one (a child forked from this big process would otherwise
/// start with its pages counted).
pub fn measure(cmd: &mut std::process::Command) -> (Duration, f64, bool) {
    if std::path::Path::new("/usr/bin/time").exists() {
        let mut timed = std::process::Command::new("/usr/bin/time");
        timed
            .arg("-f")
            .arg("%M")
            .arg(cmd.get_program())
            .args(cmd.get_args());
        let t = Instant::now();
        let out = timed.stdout(std::process::Stdio::null()).output().unwrap();
        let d = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        let kb: f64 = err
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0.0);
        return (d, kb / 1024.0, out.status.success());
    }
    let t = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let _ = child.try_wait();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    (t.elapsed(), usage.ru_maxrss as f64 / 1024.0, ok)
}
