//! The signals that interrupt `rehearse execute`: Ctrl-C (SIGINT) and SIGTERM alike.
//!
//! A service manager, `timeout` or a CI runner stops a process with SIGTERM. Without a handler
//! the process would die mid-action; with one, the executor finishes the action in flight,
//! journals the interruption and exits 1, and a rerun resumes, exactly as after Ctrl-C.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// Listeners for SIGINT and SIGTERM, registered when created (a signal sent after `new`
/// returns is never lost, even before `recv` is polled).
pub struct Interrupts {
    int: Signal,
    term: Signal,
}

impl Interrupts {
    /// Registers both listeners. Needs a tokio runtime with I/O enabled.
    pub fn new() -> std::io::Result<Self> {
        Ok(Interrupts {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next SIGINT or SIGTERM and names it.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
        }
    }
}

/// Waits for the first SIGINT or SIGTERM; `None` when the listeners cannot be registered (then
/// the signals keep their default effect, as before any handler existed).
pub async fn interrupted() -> Option<&'static str> {
    let mut s = Interrupts::new().ok()?;
    Some(s.recv().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raise(sig: libc::c_int) {
        // SAFETY: kill(2) on our own pid with a signal that has a registered handler.
        let rc = unsafe { libc::kill(libc::getpid(), sig) };
        assert_eq!(rc, 0);
    }

    #[test]
    fn sigterm_and_sigint_are_both_reported_as_interrupts() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut s = Interrupts::new().unwrap();
            raise(libc::SIGTERM);
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), s.recv()).await;
            assert_eq!(got, Ok("SIGTERM"));
            raise(libc::SIGINT);
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), s.recv()).await;
            assert_eq!(got, Ok("SIGINT"));
        });
    }
}
