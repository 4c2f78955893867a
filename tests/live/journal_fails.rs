//! A journal that cannot be written after the run has begun acting: `execute` stops with
//! exit 1 (the cluster may have changed, so it is not an input error), and the same command
//! rerun with a writable journal resumes and completes the upgrade.

use super::cluster::{self, ConsulCluster};
use super::{actions, first_finished};
use rehearse::live::journal::Journal;
use std::os::unix::process::CommandExt;

/// Caps how large a file the process `pid` may write (RLIMIT_FSIZE): any write past `bytes`
/// fails with EFBIG from then on.
fn cap_file_size(pid: u32, bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes as libc::rlim_t,
        rlim_max: bytes as libc::rlim_t,
    };
    // SAFETY: prlimit reads `lim` and writes nothing when the old-limit pointer is null.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_journal_write_failing_mid_run_exits_1_and_the_rerun_resumes() {
    let c = ConsulCluster::start("journalfail", 112, 3);
    let mut cmd = c.execute_command(&["--apply"]);
    // A write past the size limit must fail with EFBIG rather than kill the process with
    // SIGXFSZ, as a full disk would: ignore the signal in the child (the disposition survives
    // exec).
    // SAFETY: only `signal`, which is async-signal-safe, runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn rehearse");
    let stopped = c.wait_for_journal(|recs| first_finished(recs, "stop"));
    // From here on the journal cannot grow: its next record fails to be written.
    let size = std::fs::metadata(c.journal()).unwrap().len();
    cap_file_size(child.id(), size);
    let out = cluster::wait_output(&mut child, 240);
    println!("{}", out.text);
    assert_eq!(
        out.code,
        Some(1),
        "a journal failing after the first action is not an input error (exit 2 means nothing changed):\n{}",
        out.text
    );
    assert!(
        out.text.contains("the cluster may have changed")
            && out.text.contains("rerun the same command to resume"),
        "the message says what happened and what to do:\n{}",
        out.text
    );
    let recs = Journal::read(&c.journal()).expect("the journal stays readable");
    assert!(
        actions(&recs)
            .iter()
            .any(|a| a.0 == "stop" && a.1 == stopped),
        "the journal holds the stop that was done"
    );

    // The same command, with a journal that can be written, resumes from what it holds.
    let again = c.execute(&["--apply"]);
    println!("{}", again.text);
    assert_eq!(again.code, Some(0), "{}", again.text);
    assert!(again.text.contains("resuming"), "{}", again.text);
    let recs = Journal::read(&c.journal()).unwrap();
    let acts = actions(&recs);
    for n in c.names() {
        let stops = acts.iter().filter(|a| a.0 == "stop" && a.1 == n).count();
        assert_eq!(stops, 1, "{n} stopped once over both runs: {acts:?}");
    }
    c.assert_all_on_target();
}
