//! Progress on stderr for the long commands (`check`, `report`, `calibrate`, as `explore`): on
//! a terminal one redrawn line, otherwise plain lines every `--progress-every` seconds and a
//! last one; stdout is untouched, so `--json` output still parses.

use std::process::Output;

use crate::rehearse;

/// stderr's `progress:` lines.
fn progress_lines(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stderr)
        .lines()
        .filter(|l| l.starts_with("progress: "))
        .map(str::to_string)
        .collect()
}

/// The `done/total` of a progress line.
fn counts(line: &str) -> (u64, u64) {
    let n = line["progress: ".len()..].split(' ').next().unwrap();
    let (a, b) = n.split_once('/').unwrap();
    (
        a.replace(',', "").parse().unwrap(),
        b.replace(',', "").parse().unwrap(),
    )
}

#[test]
fn check_prints_periodic_and_final_progress_lines_and_json_stdout_still_parses() {
    let o = rehearse(&[
        "check",
        "plans/nomad-3-servers.toml",
        "--seeds",
        "3",
        "--jobs",
        "1",
        "--progress-every",
        "0",
        "--json",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is the JSON document");
    assert_eq!(v["seeds"], 3);
    let lines = progress_lines(&o);
    // One line per seed (every 0 s), then the last line.
    let seen: Vec<(u64, u64)> = lines.iter().map(|l| counts(l)).collect();
    assert_eq!(seen, [(1, 3), (2, 3), (3, 3), (3, 3)], "{lines:?}");
    assert!(lines[0].contains(" seeds (33.3%)"), "{}", lines[0]);
    assert!(
        lines.iter().all(|l| !l.contains('\r')),
        "plain lines off a terminal"
    );
}

#[test]
fn report_counts_its_seeds_explorer_runs_and_recommendations() {
    let dir = std::env::temp_dir().join(format!("rehearse-progress-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let o = rehearse(&[
        "report",
        "plans/nomad-3-servers.toml",
        "-o",
        dir.to_str().unwrap(),
        "--seeds",
        "1",
        "--explore-seeds",
        "1",
        "--progress-every",
        "0",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lines = progress_lines(&o);
    assert!(lines.len() > 3, "{lines:?}");
    let seen: Vec<(u64, u64)> = lines.iter().map(|l| counts(l)).collect();
    // Never backwards, and the last line has everything done.
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "{seen:?}");
    let last = *seen.last().unwrap();
    assert_eq!(last.0, last.1, "{lines:?}");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("progress: "));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibrate_counts_trials_and_seeds_and_json_stdout_still_parses() {
    let o = rehearse(&[
        "calibrate",
        "--against",
        "consul",
        "--real",
        "tests/fixtures/calibration/consul-1.8.7.json",
        "--scenarios",
        "leader-kill,follower-restart",
        "--seeds",
        "2",
        "--progress-every",
        "0",
        "--json",
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("stdout is the JSON document");
    assert_eq!(v["seeds"], 2);
    let lines = progress_lines(&o);
    let seen: Vec<(u64, u64)> = lines.iter().map(|l| counts(l)).collect();
    // Recorded real trials: only the simulator's 2 seeds of each of 2 scenarios are run.
    assert_eq!(seen, [(1, 4), (2, 4), (3, 4), (4, 4), (4, 4)], "{lines:?}");
}
