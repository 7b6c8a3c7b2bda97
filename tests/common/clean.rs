//! The chainview binary run as a user would, with none of the broker,
//! context, config or TLS settings of whoever runs the tests leaking in.

const BIN: &str = env!("CARGO_BIN_EXE_chainview");

/// Settings chainview reads from the environment.
const SETTINGS: [&str; 10] = [
    "AGENTWRIT_BROKER_URL",
    "AGENTWRIT_CLIENT_ID",
    "AGENTWRIT_CLIENT_SECRET",
    "AGENTWRIT_ADMIN_SECRET",
    "SSL_CERT_FILE",
    "CHAINVIEW_CLIENT_CERT",
    "CHAINVIEW_CLIENT_KEY",
    "CHAINVIEW_CONTEXT",
    "CHAINVIEW_CONFIG",
    "XDG_CONFIG_HOME",
];

/// Runs chainview with `args`, stdin closed, only `env` set of its settings:
/// (exit code, stdout, stderr).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(BIN);
    cmd.args(args).stdin(std::process::Stdio::null());
    for v in SETTINGS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
