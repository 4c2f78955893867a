//! Shared command-line conventions: exit codes and the error a subcommand returns.
//!
//! Exit codes carry meaning (ripgrep style): 0 ok, 1 a property was violated or risk is above the
//! threshold, 2 bad input or usage. Each subcommand lives in `crate::cmd::<name>` with a
//! `clap::Args` struct and `fn run(args) -> Result<Verdict, CliError>`.

use std::fmt;

/// What a subcommand concluded when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Everything held: exit 0.
    Ok,
    /// A property was violated, a plan is unsafe, or risk is above threshold: exit 1.
    Violated,
}

impl Verdict {
    /// The process exit code for this verdict.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Violated => 1,
        }
    }
}

/// An error a user can cause (bad file, bad flag, unreachable cluster, bad token): exit 2.
/// The message names the file/line/field or the address, and what to do.
#[derive(Debug)]
pub struct CliError {
    /// Human-readable message, printed as `error: {message}`.
    pub message: String,
}

impl CliError {
    /// Builds a usage/input error from a message or a library error (its `Display` text).
    pub fn new(message: impl fmt::Display) -> Self {
        CliError {
            message: message.to_string(),
        }
    }

    /// The process exit code for input errors.
    pub const EXIT_CODE: u8 = 2;
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Parses a human duration such as `10m`, `30s`, `250ms` into nanoseconds, naming the flag on error.
pub fn parse_duration_ns(flag: &str, text: &str) -> Result<u64, CliError> {
    let d = humantime::parse_duration(text.trim()).map_err(|e| {
        CliError::new(format!(
            "{flag}: cannot parse duration {text:?}: {e} (examples: 30s, 10m, 250ms)"
        ))
    })?;
    u64::try_from(d.as_nanos())
        .map_err(|_| CliError::new(format!("{flag}: duration {text:?} is too long")))
}

/// Writes one line to stdout, ignoring a closed or failing stdout (see [`crate::out!`]).
pub fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if HUMAN_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        let mut o = std::io::stderr().lock();
        let _ = o.write_fmt(args).and_then(|()| o.write_all(b"\n"));
        return;
    }
    let mut o = std::io::stdout().lock();
    let _ = o.write_fmt(args).and_then(|()| o.write_all(b"\n"));
}

/// Whether [`crate::out!`] writes to stderr: set while a command prints its JSON document on
/// stdout (`--json`), so that stdout is that document alone.
static HUMAN_TO_STDERR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sends the human text ([`crate::out!`]) to stderr (`true`) or stdout (`false`).
pub fn human_to_stderr(yes: bool) {
    HUMAN_TO_STDERR.store(yes, std::sync::atomic::Ordering::Relaxed);
}
