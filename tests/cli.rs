//! The binary's exit codes and messages: 0 ok, 1 unsafe, 2 bad input.

use std::process::{Command, Output};

fn rehearse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run rehearse")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn temp_plan(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rehearse-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn lint_exit_codes() {
    assert_eq!(
        rehearse(&["lint", "plans/nomad-5-servers.toml"])
            .status
            .code(),
        Some(0)
    );
    let risky = rehearse(&["lint", "plans/nomad-risky.toml"]);
    assert_eq!(risky.status.code(), Some(1));
    assert!(text(&risky).contains("R005"));
    let json = rehearse(&["lint", "--json", "plans/nomad-risky.toml"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().any(|f| f["id"] == "R003"));
    assert_eq!(
        rehearse(&["lint", "no/such/plan.toml"]).status.code(),
        Some(2)
    );
}

#[test]
fn an_unknown_field_names_the_field_and_line_and_exits_2() {
    let p = temp_plan(
        "typo.toml",
        "[cluster]\nproduct = \"nomad\"\nversion = \"1.9.7\"\nservers = [{ name = \"s1\" }]\n[upgrade]\ntarget = \"1.10.3\"\nsnapshot_frist = true\n",
    );
    for cmd in ["lint", "check"] {
        let o = rehearse(&[cmd, p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let t = text(&o);
        assert!(t.contains("snapshot_frist") && t.contains("line 7"), "{t}");
        assert!(!t.contains("panicked"), "{t}");
    }
}

#[test]
fn an_impossible_version_exits_2_naming_the_field() {
    let p = temp_plan(
        "version.toml",
        "[cluster]\nproduct = \"nomad\"\nversion = \"1.9.7\"\nservers = [{ name = \"s1\" }]\n[upgrade]\ntarget = \"7.0.0\"\n",
    );
    let o = rehearse(&["check", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("upgrade.target"), "{}", text(&o));
}

#[test]
fn check_passes_a_safe_plan_and_fails_a_broken_procedure_with_a_replay_line() {
    let ok = rehearse(&["check", "plans/nomad-3-servers.toml", "--seeds", "8"]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let bad = rehearse(&[
        "check",
        "plans/nomad-reboot-3-servers.toml",
        "--seeds",
        "8",
        "--variant",
        "no-voter-wait",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let t = text(&bad);
    assert!(t.contains("UNSAFE") && t.contains("quorum lost"), "{t}");
    let replay = t
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay: "))
        .expect("a replay line");
    // The replay line reproduces the failure.
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let again = rehearse(&args);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again).contains("UNSAFE"));
}

#[test]
fn simulate_summarises_and_rejects_bad_input() {
    let o = rehearse(&[
        "simulate",
        "--servers",
        "5",
        "--duration",
        "2m",
        "--crash-leader-at",
        "30s",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let t = text(&o);
    assert!(
        t.contains("leader changes         1") && t.contains("invariant violations   0"),
        "{t}"
    );
    assert_eq!(
        rehearse(&["simulate", "--servers", "0"]).status.code(),
        Some(2)
    );
    let d = rehearse(&["simulate", "--duration", "ten minutes"]);
    assert_eq!(d.status.code(), Some(2));
    assert!(text(&d).contains("--duration"));
    assert_eq!(rehearse(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn the_same_seed_gives_the_same_trace_from_the_cli() {
    let run = || {
        let o = rehearse(&[
            "simulate",
            "--duration",
            "3m",
            "--seed",
            "42",
            "--crash-leader-at",
            "60s",
        ]);
        let t = text(&o);
        t.lines()
            .find(|l| l.contains("trace hash"))
            .unwrap()
            .to_string()
    };
    assert_eq!(run(), run());
}

#[test]
fn a_closed_stdout_does_not_panic() {
    // `rehearse … | head -1`: the reader goes away; the command still finishes with its own
    // exit code (Rust ignores SIGPIPE, so a plain println! would panic with exit 101).
    for args in [
        &[
            "simulate",
            "--servers",
            "3",
            "--duration",
            "2m",
            "--seed",
            "1",
        ][..],
        &["lint", "plans/nomad-3-servers.toml"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rehearse"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run rehearse");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("wait");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}
