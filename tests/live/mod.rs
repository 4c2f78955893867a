//! The real executor against real Consul 1.8.7 servers on 127.0.0.x (processes started and
//! stopped by the tests themselves, each cluster with its own addresses and data dirs).
//! Consul is fetched by `.ci/fetch-consul` when it is missing; a failure to get it fails the
//! tests (they are never skipped).

mod client_batches;
pub(crate) mod cluster;
pub(crate) mod fake;
mod gray;
mod journal_fails;
mod no_leader;
mod nomad_shapes;
mod protocol;
mod unreadable;
mod walkthrough;

use cluster::{ConsulCluster, rehearse_cmd};
use rehearse::live::journal::{Journal, Record};
use rehearse::procedure::{Action, ActionResult};

/// Every Stop/Start action in the journal, in order: (kind, server, at_ms).
pub(crate) fn actions(records: &[Record]) -> Vec<(String, String, u64)> {
    let mut out = Vec::new();
    for r in records {
        if let Record::ActionBegin { action, at_ms } = r {
            match action {
                Action::Stop { server } => out.push(("stop".into(), server.clone(), *at_ms)),
                Action::Start { server } => out.push(("start".into(), server.clone(), *at_ms)),
                _ => {}
            }
        }
    }
    out
}

/// The first server the executor started again, once its start has finished (it is in its
/// A finished 3-server rolling upgrade in the journal: every server stopped once, each stop
/// followed by its start, followers first and `leader` last.
pub(crate) fn assert_rolled_in_order(records: &[Record], leader: &str) {
    let acts = actions(records);
    let of = |kind: &str| -> Vec<&str> {
        acts.iter()
            .filter(|a| a.0 == kind)
            .map(|a| a.1.as_str())
            .collect()
    };
    let (stops, starts) = (of("stop"), of("start"));
    assert_eq!(stops.len(), 3, "every server stopped once: {acts:?}");
    assert_eq!(stops, starts, "each stop followed by its start: {acts:?}");
    let mut uniq = stops.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), 3, "no server twice: {stops:?}");
    assert_eq!(stops[2], leader, "the leader last");
}

/// gate from then on).
pub(crate) fn first_in_gate(recs: &[Record]) -> Option<String> {
    first_finished(recs, "start")
}

/// The server of the first `kind` ("stop" or "start") action, once that action has finished
/// with Ok.
pub(crate) fn first_finished(recs: &[Record], kind: &str) -> Option<String> {
    let is_kind = |a: &Action| match a {
        Action::Stop { .. } => kind == "stop",
        Action::Start { .. } => kind == "start",
        _ => false,
    };
    let at = recs
        .iter()
        .position(|r| matches!(r, Record::ActionBegin { action, .. } if is_kind(action)))?;
    let ended = recs[at..].iter().any(|r| {
        matches!(
            r,
            Record::ActionEnd {
                result: ActionResult::Ok,
                ..
            }
        )
    });
    let server = actions(recs).into_iter().find(|a| a.0 == kind)?.1;
    ended.then_some(server)
}

#[test]
fn rolling_upgrade_completes_followers_first_leader_last_with_fresh_gates() {
    let c = ConsulCluster::start("rolling", 2, 3);
    let leader = c.leader();
    let probe = c.start_probe();
    let out = c.execute(&["--apply"]);
    let (attempts, report) = c.stop_probe(probe);
    println!("{}", out.text);
    assert_eq!(out.code, Some(0), "execute failed:\n{}", out.text);

    let records = Journal::read(&c.journal()).unwrap();
    assert_rolled_in_order(&records, &leader);

    // Each gate passed on health observed after that server's restart: between a start and
    // the next stop, the restarted server answered itself on the new binary, and the next
    // stop came at least stable_for after that answer.
    c.assert_fresh_gates(&records);

    // The real change was rolled: every server runs the new binary with the new config.
    c.assert_all_on_target();
    assert!(
        report.lost.is_empty(),
        "acknowledged writes lost: {:?}",
        report.lost
    );
    assert!(attempts > 50, "the probe ran: {attempts} writes");
    println!(
        "measured: total {:.1}s; probe {} writes, {} acknowledged, longest unavailable {:.2}s, total unavailable {:.2}s",
        c.stats_total_ms() as f64 / 1000.0,
        report.attempted,
        report.acknowledged,
        report.longest_unavailable_ms as f64 / 1000.0,
        report.unavailable_ms as f64 / 1000.0
    );
    // The rerun finds the journal complete and does nothing.
    let again = c.execute(&["--apply"]);
    assert_eq!(again.code, Some(0), "{}", again.text);
    assert!(again.text.contains("already completed"), "{}", again.text);
}

#[test]
fn second_server_killed_during_an_upgrade_halts_then_the_rerun_resumes() {
    let c = ConsulCluster::start("kill", 12, 3);
    let leader = c.leader();
    let mut child = c.spawn_execute(&["--apply"]);
    // Wait until the first server has been started again (it is in its gate), then SIGKILL
    // another follower.
    let first = c.wait_for_journal(|recs| {
        actions(recs)
            .iter()
            .find(|a| a.0 == "start")
            .map(|a| a.1.clone())
    });
    let victim = c
        .names()
        .into_iter()
        .find(|n| *n != first && *n != leader)
        .unwrap();
    c.kill(&victim);
    let out = cluster::wait_output(&mut child, 240);
    println!("{}", out.text);
    assert_eq!(out.code, Some(1), "halts: {}", out.text);
    assert!(out.text.contains("halted safely"), "{}", out.text);
    let records = Journal::read(&c.journal()).unwrap();
    let stops: Vec<String> = actions(&records)
        .into_iter()
        .filter(|a| a.0 == "stop")
        .map(|a| a.1)
        .collect();
    assert_eq!(stops, vec![first.clone()], "no other server was stopped");

    // The killed server returns; the rerun does not restart the upgraded one again.
    c.start_server(&victim, false);
    c.wait_healthy(1);
    let rerun = c.execute(&["--apply"]);
    println!("{}", rerun.text);
    assert_eq!(rerun.code, Some(0), "{}", rerun.text);
    let records = Journal::read(&c.journal()).unwrap();
    let stops: Vec<String> = actions(&records)
        .into_iter()
        .filter(|a| a.0 == "stop")
        .map(|a| a.1)
        .collect();
    assert_eq!(
        stops.len(),
        3,
        "each server stopped once over both runs: {stops:?}"
    );
    assert_eq!(stops.iter().filter(|s| **s == first).count(), 1);
    c.assert_all_on_target();
}

#[test]
fn server_paused_during_its_gate_times_out_and_halts() {
    let c = ConsulCluster::start("pause", 22, 3);
    let mut child = c.spawn_execute(&["--apply"]);
    // Pause the first server as soon as rehearse has started it again (it is in its gate).
    let first = c.wait_for_journal(first_in_gate);
    c.pause(&first);
    let out = cluster::wait_output(&mut child, 240);
    c.resume(&first);
    println!("{}", out.text);
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(out.text.contains("gate timed out for"), "{}", out.text);
    let records = Journal::read(&c.journal()).unwrap();
    let stops = actions(&records)
        .into_iter()
        .filter(|a| a.0 == "stop")
        .count();
    assert_eq!(stops, 1, "nothing else was stopped");
}

#[test]
fn rehearse_killed_mid_step_resumes_from_the_journal_without_double_actions() {
    let c = ConsulCluster::start("resume", 32, 3);
    let mut child = c.spawn_execute(&["--apply"]);
    // Kill rehearse as soon as it has begun stopping the second server.
    c.wait_for_journal(|recs| {
        let n = actions(recs).iter().filter(|a| a.0 == "stop").count();
        (n >= 2).then_some(())
    });
    child.kill().unwrap();
    let _ = child.wait();
    let out = c.execute(&["--apply"]);
    println!("{}", out.text);
    assert_eq!(out.code, Some(0), "{}", out.text);
    assert!(out.text.contains("resuming"), "{}", out.text);
    let records = Journal::read(&c.journal()).unwrap();
    let acts = actions(&records);
    for n in c.names() {
        let stops = acts.iter().filter(|a| a.0 == "stop" && a.1 == n).count();
        assert_eq!(stops, 1, "{n} stopped once: {acts:?}");
    }
    // Each server process was started exactly twice: by the test, then once by rehearse.
    for n in c.names() {
        assert_eq!(c.agent_starts(&n), 2, "{n} started twice in all");
    }
    c.assert_all_on_target();
}

#[test]
fn five_server_rolling_upgrade_and_input_errors() {
    let c = ConsulCluster::start("five", 42, 5);
    // Bad token: exit 2, nothing changed, and the token is not printed.
    let bad = c.execute_with_token(&["--apply"], "not-the-token-93f1");
    assert_eq!(bad.code, Some(2), "{}", bad.text);
    assert!(bad.text.contains("permission denied"), "{}", bad.text);
    assert!(!bad.text.contains("not-the-token-93f1"));
    assert!(!c.journal().exists(), "nothing journaled");
    // Import (read-only) writes a plan that parses and names every server.
    let imported = rehearse_cmd(
        &["import", "--addr", "http://127.0.0.42:8500"],
        Some(cluster::TOKEN),
    );
    assert_eq!(imported.code, Some(0), "{}", imported.text);
    let plan = rehearse::plan::Plan::from_str_named(&imported.text, "imported").unwrap();
    assert_eq!(plan.cluster.servers.len(), 5);
    assert_eq!(plan.cluster.version.to_string(), "1.8.7");
    assert!(plan.cluster.servers.iter().all(|s| s.address.is_some()));
    // Dry run: reads, prints, changes nothing.
    let dry = c.execute(&[]);
    assert_eq!(dry.code, Some(0), "{}", dry.text);
    assert!(dry.text.contains("preflight: ok"), "{}", dry.text);
    assert!(!c.journal().exists());
    let out = c.execute(&["--apply"]);
    println!("{}", out.text);
    assert_eq!(out.code, Some(0), "{}", out.text);
    c.assert_all_on_target();
    let journal = std::fs::read_to_string(c.journal()).unwrap();
    assert!(
        !journal.contains(cluster::TOKEN),
        "the token never reaches the journal"
    );
    assert!(!out.text.contains(cluster::TOKEN));
}

#[test]
fn mutual_tls_cluster_import_refusals_and_rolling_upgrade() {
    // The API on HTTPS only, a client certificate required (verify_incoming_https), the
    // certificates made by `consul tls`; rehearse reads them from CONSUL_CACERT,
    // CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY as the consul CLI does.
    let c = ConsulCluster::start_with("tls", 72, 3, true);
    let addr = "https://127.0.0.72:8501";
    let import = |env: &[(&str, std::path::PathBuf)]| {
        cluster::rehearse_cmd_env(&["import", "--addr", addr], Some(cluster::TOKEN), env)
    };
    let ok = import(&c.env);
    assert_eq!(ok.code, Some(0), "{}", ok.text);
    let plan = rehearse::plan::Plan::from_str_named(&ok.stdout, "imported").unwrap();
    assert_eq!(plan.cluster.servers.len(), 3);
    assert!(
        plan.cluster.servers.iter().all(|s| s
            .address
            .as_deref()
            .is_some_and(|a| a.starts_with("https://"))),
        "{}",
        ok.text
    );
    // Without the CA the server's certificate is not trusted; without the client certificate
    // the server refuses the handshake. Both: exit 2, the address named, nothing else done.
    for (what, env) in [
        ("no CA", &c.env[1..]),
        ("no client certificate", &c.env[..1]),
    ] {
        let o = import(env);
        assert_eq!(o.code, Some(2), "{what}: {}", o.text);
        assert!(o.text.contains("127.0.0.72:8501"), "{what}: {}", o.text);
        assert!(!o.text.contains("panicked"), "{what}: {}", o.text);
    }
    // Verification against the certificate's name (CONSUL_TLS_SERVER_NAME) while connecting
    // to the address given.
    let mut named = c.env.clone();
    named.push(("CONSUL_TLS_SERVER_NAME", "server.dc1.consul".into()));
    let o = import(&named);
    assert_eq!(o.code, Some(0), "server name: {}", o.text);
    // The whole rolling upgrade over mutual TLS, probe included.
    let out = c.execute(&["--apply"]);
    println!("{}", out.text);
    assert_eq!(out.code, Some(0), "{}", out.text);
    c.assert_all_on_target();
    let records = Journal::read(&c.journal()).unwrap();
    c.assert_fresh_gates(&records);
}

#[test]
fn unreachable_cluster_and_wrong_address_are_input_errors() {
    // Nothing listens on 127.0.0.250: connection refused, exit 2, nothing journaled.
    let dir = cluster::scratch("unreachable");
    let plan = dir.join("plan.toml");
    std::fs::write(
        &plan,
        cluster::plan_text(&dir, std::path::Path::new("/bin/false"), 250, 3),
    )
    .unwrap();
    let out = rehearse_cmd(&["execute", "--apply", plan.to_str().unwrap()], None);
    assert_eq!(out.code, Some(2), "{}", out.text);
    assert!(out.text.contains("cannot reach any server"), "{}", out.text);
    assert!(!dir.join("plan.toml.journal.jsonl").exists());
    let out = rehearse_cmd(&["import", "--addr", "http://127.0.0.250:8500"], None);
    assert_eq!(out.code, Some(2), "{}", out.text);
    assert!(
        out.text.contains("127.0.0.250:8500: unreachable"),
        "{}",
        out.text
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibrate_runs_real_consul_trials_beside_the_simulator() {
    // One real trial of the fastest scenario keeps the real side of `rehearse calibrate` from
    // rotting; the full table is produced by hand (README) and pinned by tests/calibration.rs.
    let json = cluster::scratch("calibrate").join("cal.json");
    let out = rehearse_cmd(
        &[
            "calibrate",
            "--against",
            "consul",
            "--trials",
            "1",
            "--seeds",
            "4",
            "--scenarios",
            "restart-within-refresh",
            "--base-octet",
            "52",
            "--consul",
            &format!(
                "{}/.cache/consul/usr/bin/consul",
                env!("CARGO_MANIFEST_DIR")
            ),
            "--json-out",
            json.to_str().unwrap(),
        ],
        None,
    );
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.text);
    assert!(
        out.text.contains("| restart-within-refresh |"),
        "{}",
        out.text
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["runs"][0]["real"].as_array().unwrap().len(), 1);
    assert_eq!(doc["runs"][0]["sim"].as_array().unwrap().len(), 4);
}

#[test]
fn ctrl_c_finishes_the_action_in_flight_halts_and_the_rerun_resumes() {
    let c = ConsulCluster::start("ctrlc", 62, 3);
    let mut child = c.spawn_execute(&["--apply"]);
    // Interrupt (SIGINT, as Ctrl-C sends) while the first server is in its gate.
    c.wait_for_journal(|recs| {
        let at = recs.iter().position(|r| {
            matches!(
                r,
                Record::ActionBegin {
                    action: Action::Start { .. },
                    ..
                }
            )
        })?;
        recs[at..]
            .iter()
            .any(|r| matches!(r, Record::ActionEnd { .. }))
            .then_some(())
    });
    // SAFETY: kill(2) on the rehearse process this test spawned.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = cluster::wait_output(&mut child, 120);
    println!("{}", out.text);
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(out.text.contains("interrupted"), "{}", out.text);
    let records = Journal::read(&c.journal()).unwrap();
    assert!(
        records
            .iter()
            .any(|r| matches!(r, Record::Interrupted { .. }))
    );
    let stops = actions(&records)
        .into_iter()
        .filter(|a| a.0 == "stop")
        .count();
    assert_eq!(stops, 1, "halted before touching another server");
    let rerun = c.execute(&["--apply"]);
    println!("{}", rerun.text);
    assert_eq!(rerun.code, Some(0), "{}", rerun.text);
    assert!(rerun.text.contains("resuming"), "{}", rerun.text);
    for n in c.names() {
        assert_eq!(c.agent_starts(&n), 2, "{n} started once by rehearse in all");
    }
    c.assert_all_on_target();
}
