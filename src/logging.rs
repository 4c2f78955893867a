//! Logging through tracing-subscriber, stamped with *simulated* time while a simulation runs.

use std::sync::atomic::{AtomicU64, Ordering};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// `u64::MAX` means "no simulation running": stamp with `-`.
static SIM_TIME_NS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Sets the simulated clock shown in log lines (called by drivers as they advance the world).
pub fn set_sim_time_ns(ns: u64) {
    SIM_TIME_NS.store(ns, Ordering::Relaxed);
}

/// Prints the simulated time as `t=12.345s`.
struct SimClock;

impl FormatTime for SimClock {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        match SIM_TIME_NS.load(Ordering::Relaxed) {
            u64::MAX => write!(w, "t=-"),
            ns => write!(w, "t={:.3}s", ns as f64 / 1e9),
        }
    }
}

/// Installs the subscriber on stderr. `verbosity` 0 = warnings, 1 = info, 2+ = debug;
/// `RUST_LOG` overrides. Safe to call twice (the second call is a no-op).
pub fn init(verbosity: u8) {
    let level = match verbosity {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // The TLS verifier logs every failed handshake as an ERROR of its own; rehearse
        // reports the failure itself, naming the address (and `import` tries each
        // product's TLS settings in turn, so one failure there is expected).
        let quiet = if verbosity >= 2 { "debug" } else { "off" };
        tracing_subscriber::EnvFilter::new(format!("{level},rustls_platform_verifier={quiet}"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(SimClock)
        .with_writer(std::io::stderr)
        .try_init();
}
