//! The binary's exit codes and messages: 0 ok, 1 unsafe, 2 bad input.

use std::process::{Command, Output};

use crate::rehearse;

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
    let findings = v["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["id"] == "R003"));
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

/// A server-client stopped without a drain: lint R017, and `check` judges every seed "lost
/// allocations" (not safe, not quorum loss) and exits 1; the same plan with the drain on is
/// clean.
#[test]
fn check_reports_lost_allocations_when_a_server_client_is_not_drained() {
    let plan = "plans/incidents/nomad-server-client-no-drain.toml";
    let o = rehearse(&["check", plan, "--seeds", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("R017"), "{t}");
    assert!(t.contains("LOST ALLOCATIONS 2, UNSAFE 0"), "{t}");
    assert!(t.contains("lost allocations: stopped s3"), "{t}");
    assert!(!t.contains("quorum lost"), "{t}");
    let ok = rehearse(&["check", "plans/nomad-5-servers.toml", "--seeds", "2"]);
    let t = text(&ok);
    assert!(t.contains("LOST ALLOCATIONS 0, UNSAFE 0"), "{t}");
    assert_eq!(ok.status.code(), Some(0), "{t}");
}

/// A drain deadline shorter than a job's kill_timeout: lint R018, and `check` judges every
/// seed "lost allocations" (the deadline stopped s3's remaining allocations at once); the same
/// plan with a deadline long enough for the migrations is lint-clean and completes.
#[test]
fn check_reports_allocations_stopped_by_a_short_drain_deadline() {
    let plan = "plans/incidents/nomad-drain-deadline-short.toml";
    let o = rehearse(&["check", plan, "--seeds", "2"]);
    let t = text(&o);
    assert!(t.contains("R018"), "{t}");
    assert!(t.contains("LOST ALLOCATIONS 2, UNSAFE 0"), "{t}");
    assert!(
        t.contains("drain deadline reached on s3") && t.contains("2 allocations of web"),
        "{t}"
    );
    let lint = rehearse(&["lint", "--json", plan]);
    let v: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
    let ids: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["id"].as_str())
        .collect();
    assert_eq!(ids, vec!["R018"]);
    let ok = rehearse(&[
        "check",
        "plans/incidents/nomad-drain-deadline-long.toml",
        "--seeds",
        "2",
    ]);
    let t = text(&ok);
    assert!(t.contains("lint: no findings"), "{t}");
    assert!(
        t.contains("completed 2, halted safely 0, LOST ALLOCATIONS 0"),
        "{t}"
    );
    assert_eq!(ok.status.code(), Some(0), "{t}");
}

/// Every client restarted at once without a drain and down two minutes: lint R019, and
/// `check` judges every seed "lost allocations" naming the clients the leader marked down;
/// the same plan one client at a time, each drained, completes. `execute` refuses the plan
/// without the per-client templates before anything is touched (exit 2, naming the field).
#[test]
fn check_reports_clients_lost_when_restarted_at_once_without_a_drain() {
    let plan = "plans/incidents/nomad-clients-all-at-once.toml";
    let o = rehearse(&["check", plan, "--seeds", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("R019"), "{t}");
    assert!(t.contains("LOST ALLOCATIONS 2, UNSAFE 0"), "{t}");
    assert!(t.contains("lost allocations: stopped client c1"), "{t}");
    let ok = rehearse(&[
        "check",
        "plans/incidents/nomad-clients-in-batches.toml",
        "--seeds",
        "2",
    ]);
    let t = text(&ok);
    assert!(!t.contains("R019"), "{t}");
    assert!(
        t.contains("completed 2, halted safely 0, LOST ALLOCATIONS 0"),
        "{t}"
    );
    let with_execute = std::fs::read_to_string("plans/incidents/nomad-clients-in-batches.toml")
        .unwrap()
        .replacen(
            "[[jobs]]",
            "[execute]\ncontrol = \"command\"\n[execute.command]\nstop = \"true\"\nstart = \"true\"\nstatus = \"true\"\n\n[[jobs]]",
            1,
        );
    let path = temp_plan("clients-batches-execute.toml", &with_execute);
    let e = rehearse(&["execute", path.to_str().unwrap(), "--apply"]);
    let t = text(&e);
    assert_eq!(e.status.code(), Some(2), "{t}");
    assert!(t.contains("execute.command.stop_client"), "{t}");
}

/// A raft protocol 2 → 3 roll: lint is clean (both versions run both protocols, R008 quiet),
/// and `check` completes every seed, listing how each server came back: under a UUID Raft ID,
/// as a voter while a server still ran protocol 2, the last one as a non-voter; health derived
/// while autopilot answered HTTP 500.
#[test]
fn check_rehearses_a_raft_protocol_2_to_3_roll() {
    let plan = "plans/incidents/nomad-1.3-raft-protocol-2-to-3.toml";
    let o = rehearse(&["check", plan, "--seeds", "4"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("lint: no findings"), "{t}");
    assert!(t.contains("completed 4, halted safely 0"), "{t}");
    assert!(t.contains("raft protocol roll (seed 1):"), "{t}");
    assert_eq!(
        t.matches("removed server with duplicate address").count(),
        3,
        "{t}"
    );
    assert_eq!(
        t.matches("as a voter (servers on raft protocol 2 remain)")
            .count(),
        2,
        "{t}"
    );
    assert_eq!(t.matches("as a non-voter").count(), 1, "{t}");
    assert!(
        t.contains("health derived from the raft configuration"),
        "{t}"
    );
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

/// The 3-server example plan with `from` replaced by `to`, in a temp file.
fn plan_with(name: &str, from: &str, to: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string("plans/nomad-3-servers.toml").unwrap();
    assert!(text.contains(from), "{from}");
    temp_plan(name, &text.replacen(from, to, 1))
}

/// A scenario in a temp directory laid out like scenarios/x/, with `../../plans` linked to
/// the real plans.
fn temp_scenario(name: &str, body: &str) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("rehearse-cli-scn-{}", std::process::id()));
    let dir = root.join("scenarios").join("x");
    std::fs::create_dir_all(&dir).unwrap();
    let link = root.join("plans");
    if !link.exists() {
        std::os::unix::fs::symlink(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("plans"),
            &link,
        )
        .unwrap();
    }
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// Exit 2, no panic, and every needle in the message.
fn bad_input(args: &[&str], needles: &[&str]) {
    let o = rehearse(args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
    assert!(!t.contains("panicked"), "{args:?}: {t}");
    for n in needles {
        assert!(t.contains(n), "{args:?}: {n:?} missing from {t}");
    }
}

#[test]
fn a_write_rate_beyond_the_limit_names_the_scenario_line_and_field() {
    // Issue #19: 10,000 writes/s under a permanent loss fault panicked ("pending writes
    // unbounded"), 3,000/s ran for minutes.
    let body = "name = \"x\"\nplan = \"../../plans/nomad-3-servers.toml\"\nfaults = [\"loss:leader:1:permanent\"]\nseeds = 1\nexpect = \"safe\"\n[sim]\nwrites_per_sec = 10000.0\n";
    let p = temp_scenario("rate.toml", body);
    let p = p.to_str().unwrap();
    bad_input(&["chaos", p], &[p, "line 7", "sim.writes_per_sec"]);
}

#[test]
fn counts_beyond_the_limits_are_refused_at_load() {
    let p = plan_with("clients.toml", "count = 10", "count = 10001");
    let p = p.to_str().unwrap();
    for cmd in ["lint", "check", "explore", "report"] {
        bad_input(&[cmd, p], &[p, "line 15", "clients.count", "10001"]);
    }
    let servers: String = (0..1000)
        .map(|i| format!("{{ name = \"n{i}\" }},"))
        .collect();
    let p = plan_with(
        "servers.toml",
        "  { name = \"s1\", address = \"http://10.0.0.1:4646\" },",
        &servers,
    );
    let p = p.to_str().unwrap();
    bad_input(
        &["lint", p],
        &[p, "line 8", "cluster.servers", "1002 servers"],
    );
}

#[test]
fn huge_seed_counts_and_wrapping_seed_ranges_are_refused() {
    let huge = "9223372036854775807";
    let plan = "plans/nomad-3-servers.toml";
    bad_input(&["check", plan, "--seeds", huge], &["--seeds", "limit"]);
    bad_input(&["explore", plan, "--seeds", huge], &["--seeds", "limit"]);
    bad_input(&["chaos", "scenarios/smoke", "--seeds", huge], &["--seeds"]);
    let out = std::env::temp_dir().join(format!("rehearse-cli-rep-{}", std::process::id()));
    let out = out.to_str().unwrap();
    bad_input(&["report", plan, "-o", out, "--seeds", huge], &["--seeds"]);
    bad_input(
        &["report", plan, "-o", out, "--explore-seeds", huge],
        &["--explore-seeds"],
    );
    // Issue #19: this wrapped to an empty range and reported "safe" on 0 seeds.
    let max = "18446744073709551615";
    let args = ["check", plan, "--variant", "two-at-a-time", "--seed", max];
    bad_input(&[&args[..], &["--seeds", "1"]].concat(), &["--seed", max]);
    bad_input(&[&args[..], &["--seeds", "4"]].concat(), &["--seed", max]);
    let body = format!(
        "name = \"x\"\nplan = \"../../plans/nomad-3-servers.toml\"\nseeds = {huge}\nexpect = \"safe\"\n"
    );
    let p = temp_scenario("seeds.toml", &body);
    let p = p.to_str().unwrap();
    bad_input(&["chaos", p], &[p, "line 3", "seeds"]);
}

#[test]
fn durations_beyond_the_limits_name_the_file_line_and_field() {
    for (from, to, line, field) in [
        (
            "parallel = 1",
            "parallel = 1\ninstall_time = \"1000h\"",
            "line 24",
            "upgrade.install_time",
        ),
        (
            "poll = \"2s\"",
            "poll = \"1y\"",
            "line 31",
            "upgrade.gate.poll",
        ),
        (
            "timeout = \"2m\"",
            "timeout = \"10000h\"",
            "line 30",
            "upgrade.gate.timeout",
        ),
    ] {
        let p = plan_with("long.toml", from, to);
        let p = p.to_str().unwrap();
        bad_input(&["check", p], &[p, line, field]);
    }
    bad_input(
        &["simulate", "--duration", "100000h"],
        &["--duration", "limit"],
    );
    bad_input(&["simulate", "--write-rate", "1e9"], &["--write-rate"]);
    let body = "name = \"x\"\nplan = \"../../plans/nomad-3-servers.toml\"\nfaults = [\"crash:leader:1:1y\"]\nexpect = \"safe\"\n";
    let p = temp_scenario("fault.toml", body);
    let p = p.to_str().unwrap();
    bad_input(&["chaos", p], &[p, "faults[0]", "limit"]);
}

#[test]
fn a_stable_for_shorter_than_a_health_refresh_is_an_error_printed_exactly() {
    let p = plan_with(
        "stable.toml",
        "stable_for = \"10s\"",
        "stable_for = \"1ms\"",
    );
    let o = rehearse(&["lint", p.to_str().unwrap()]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("R010") && t.contains("stable_for 1ms"), "{t}");
    assert!(!t.contains("stable_for 0s"), "{t}");
}

#[test]
fn invalid_utf8_names_the_file_offset_and_line() {
    let text = std::fs::read("plans/nomad-3-servers.toml").unwrap();
    let mut bad = text.clone();
    let at = text.windows(8).position(|w| w == b"[upgrade").unwrap();
    bad[at + 1] = 0xff;
    let p = temp_plan("utf8.toml", "");
    std::fs::write(&p, &bad).unwrap();
    let p = p.to_str().unwrap();
    let line = format!(
        "line {}",
        1 + text[..at].iter().filter(|&&b| b == b'\n').count()
    );
    bad_input(
        &["lint", p],
        &[p, &line, &format!("byte offset {}", at + 1)],
    );
    let s = temp_scenario("utf8.toml", "name = \"\u{e9}\"\n");
    let mut bytes = std::fs::read(&s).unwrap();
    bytes[8] = 0xff;
    std::fs::write(&s, bytes).unwrap();
    let s = s.to_str().unwrap();
    bad_input(&["chaos", s], &[s, "line 1", "byte offset 8"]);
}

#[test]
fn replay_errors_name_the_records_file_line_and_field() {
    let rec = r#"{"scenario":"x","file":"no/such/scenario.toml","scenario_hash":"0","seed":1,"class":"unsafe","trace_hash":"0"}"#;
    let p = temp_plan("records.jsonl", &format!("\n{rec}\n"));
    let p = p.to_str().unwrap();
    bad_input(
        &["replay", p],
        &[&format!("{p}:2"), "field file", "no/such/scenario.toml"],
    );
    let p = temp_plan(
        "records2.jsonl",
        &rec.replace("\"seed\":1", "\"seed\":\"one\""),
    );
    let p = p.to_str().unwrap();
    bad_input(&["replay", p], &[&format!("{p}:1"), "field seed"]);
}

#[test]
fn journal_errors_name_the_line_and_the_field() {
    let dir = std::env::temp_dir().join(format!("rehearse-cli-journal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let j = dir.join("journal.jsonl");
    let begin = r#"{"record":"begin","attempt":1,"plan_sha256":"ab","rehearse":"0","at_ms":1,"already_upgraded":[]}"#;
    let bad = r#"{"record":"action_end","at_ms":2,"result":"Maybe"}"#;
    std::fs::write(&j, format!("{begin}\n{bad}\n{begin}\n")).unwrap();
    let j = j.to_str().unwrap();
    let out = dir.join("out");
    bad_input(
        &["report", "--journal", j, "-o", out.to_str().unwrap()],
        &[j, "line 2", "field result"],
    );
}

/// Every key that names a hash, anywhere in a document, with its value.
fn hashes<'a>(v: &'a serde_json::Value, out: &mut Vec<(String, &'a serde_json::Value)>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k.ends_with("hash") {
                    out.push((k.clone(), x));
                }
                hashes(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| hashes(x, out)),
        _ => {}
    }
}

/// Stdout is one JSON document (nothing else) with `schema_version` 1 and every hash a string
/// of hex digits; returns it.
fn json_doc(args: &[&str]) -> serde_json::Value {
    let o = rehearse(args);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{args:?}: {}",
        text(&o)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: stdout is not one JSON document: {e}\n{}",
            text(&o)
        )
    });
    assert_eq!(v["schema_version"], 1, "{args:?}");
    let mut found = Vec::new();
    hashes(&v, &mut found);
    for (k, h) in found {
        let s = h
            .as_str()
            .unwrap_or_else(|| panic!("{args:?}: {k} is not a string: {h}"));
        assert!(
            s.chars().all(|c| c.is_ascii_hexdigit()),
            "{args:?}: {k} = {s}"
        );
        if k == "trace_hash" || k == "scenario_hash" {
            assert_eq!(s.len(), 16, "{args:?}: {k} = {s}");
        }
    }
    v
}

#[test]
fn every_command_with_machine_output_prints_one_versioned_json_document_on_stdout() {
    json_doc(&["lint", "plans/nomad-risky.toml", "--json"]);
    let c = json_doc(&[
        "check",
        "plans/nomad-3-servers.toml",
        "--seeds",
        "2",
        "--json",
    ]);
    assert!(c["outcomes"][0]["trace_hash"].is_string());
    let e = json_doc(&[
        "explore",
        "plans/nomad-3-servers.toml",
        "--seeds",
        "1",
        "--fault",
        "crash:leader:1:30s",
        "--json",
    ]);
    assert_eq!(e["totals"]["runs"], 1);
    let ch = json_doc(&["chaos", "scenarios/smoke", "--seeds", "1", "--json"]);
    assert!(ch["runs"][0]["trace_hash"].is_string());
    json_doc(&[
        "calibrate",
        "--against",
        "consul",
        "--real",
        "tests/fixtures/calibration/consul-1.8.7.json",
        "--scenarios",
        "leader-kill",
        "--seeds",
        "1",
        "--json",
    ]);
    // merge: chaos shards' documents into one.
    let dir = std::env::temp_dir().join(format!("rehearse-cli-json-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shard = dir.join("shard.json");
    let o = rehearse(&[
        "chaos",
        "scenarios/smoke",
        "--seeds",
        "1",
        "--json-out",
        shard.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // --json-out keeps the human text on stdout.
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("passed"),
        "{}",
        text(&o)
    );
    let m = json_doc(&[
        "merge",
        shard.to_str().unwrap(),
        shard.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(
        m["runs"].as_array().unwrap().len(),
        2 * ch["runs"].as_array().unwrap().len()
    );
}

#[test]
fn json_out_writes_the_document_and_keeps_the_summary_on_stdout() {
    let dir = std::env::temp_dir().join(format!("rehearse-cli-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("explore.json");
    let o = rehearse(&[
        "explore",
        "plans/nomad-3-servers.toml",
        "--seeds",
        "1",
        "--fault",
        "crash:leader:1:30s",
        "--json-out",
        f.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("explored plans/nomad-3-servers.toml"));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["totals"]["runs"], 1);
}

#[test]
fn check_junit_fails_each_unsafe_seed_with_its_replay_line_and_counts_the_seeds_not_listed() {
    let dir = std::env::temp_dir().join(format!("rehearse-cli-junit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("check.xml");
    let args = [
        "check",
        "plans/nomad-3-servers.toml",
        "--variant",
        "two-at-a-time",
        "--seeds",
        "8",
        "--junit",
        f.to_str().unwrap(),
    ];
    let o = rehearse(&args);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let xml = std::fs::read_to_string(&f).unwrap();
    let r = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!((r.tests, r.failures), (8, 8), "{xml}");
    let case = &r.test_suites[0].test_cases[0];
    assert_eq!(
        case.classname.as_ref().map(|c| c.as_str()),
        Some("rehearse.check.nomad-3-servers")
    );
    let quick_junit::TestCaseStatus::NonSuccess { description, .. } = &case.status else {
        panic!("seed 1 passed: {xml}");
    };
    let body = description.as_ref().map(|d| d.as_str()).unwrap_or("");
    assert!(body.contains("seed 1: unsafe: quorum lost"), "{body}");
    assert!(
        body.contains(
            "replay: rehearse check plans/nomad-3-servers.toml --seeds 1 --seed 1 --variant two-at-a-time"
        ),
        "{body}"
    );
    // Five seeds are listed; the summary says how many it left out, the JSON lists them all.
    let human = String::from_utf8_lossy(&o.stdout);
    assert!(human.contains("... and 3 more unsafe seeds"), "{human}");
    let v = json_doc(
        &args[..6]
            .iter()
            .copied()
            .chain(["--json"])
            .collect::<Vec<_>>(),
    );
    assert_eq!(v["not_completed"].as_array().unwrap().len(), 8);
    assert_eq!(v["unsafe"], 8);
}

#[test]
fn chaos_and_explore_junit_classnames_carry_no_file_extension() {
    let dir = std::env::temp_dir().join(format!("rehearse-cli-junit2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (c, e) = (dir.join("chaos.xml"), dir.join("explore.xml"));
    let o = rehearse(&[
        "chaos",
        "scenarios/smoke",
        "--seeds",
        "1",
        "--junit",
        c.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = rehearse(&[
        "explore",
        "plans/nomad-3-servers.toml",
        "--seeds",
        "1",
        "--variant",
        "two-at-a-time",
        "--fault",
        "crash:leader:1:30s",
        "--junit",
        e.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    for f in [c, e] {
        let xml = std::fs::read_to_string(&f).unwrap();
        let r = quick_junit::Report::deserialize_from_str(&xml).unwrap();
        for case in r.test_suites.iter().flat_map(|s| &s.test_cases) {
            let class = case.classname.as_ref().unwrap().as_str();
            assert!(
                class.starts_with("rehearse.") && !class.contains("toml"),
                "{class}"
            );
        }
    }
    let xml = std::fs::read_to_string(dir.join("explore.xml")).unwrap();
    assert!(
        xml.contains("replay: rehearse explore plans/nomad-3-servers.toml --seeds 1 --seed 1 --fault crash:leader:1:30s --variant two-at-a-time"),
        "{xml}"
    );
}
