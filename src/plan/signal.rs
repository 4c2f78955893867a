//! Stop-signal names as a plan spells them (`execute.stop_signal`).
//!
//! Here rather than in `live::control`, which sends them: the plan validates the name when it
//! is read, and the plan must not depend on the live drivers.

/// The signal number of `SIGINT`, `TERM`, `9`, …
pub fn signal_number(name: &str) -> Option<i32> {
    let n = name.trim().to_ascii_uppercase();
    let n = n.strip_prefix("SIG").unwrap_or(&n);
    Some(match n {
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "KILL" => libc::SIGKILL,
        "QUIT" => libc::SIGQUIT,
        "HUP" => libc::SIGHUP,
        other => return other.parse().ok().filter(|s| (1..=64).contains(s)),
    })
}

#[cfg(test)]
mod tests {
    use super::signal_number;

    #[test]
    fn signals() {
        assert_eq!(signal_number("SIGINT"), Some(libc::SIGINT));
        assert_eq!(signal_number("term"), Some(libc::SIGTERM));
        assert_eq!(signal_number("9"), Some(9));
        assert_eq!(signal_number("SIGNOPE"), None);
    }
}
