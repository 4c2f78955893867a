//! Contract: a check the procedure needs that the live driver cannot read halts the run,
//! naming what could not be read; it never passes silently (issue #16). Real Consul 1.8.7
//! with ACLs: the run's token loses its `operator` rule (the Raft configuration and autopilot
//! health) after the first server has been upgraded.

use super::cluster::{self, ConsulCluster, TOKEN};
use super::first_in_gate;
use rehearse::live::client::Client;
use rehearse::live::journal::{Journal, Record};
use rehearse::procedure::Action;
use std::time::{Duration, Instant};

/// Rules of the run's token: what `execute` needs (agent and operator reads, snapshots, the
/// write probe's keys), with or without operator access.
fn rules(operator_read: bool) -> String {
    let operator = if operator_read {
        "operator = \"write\"\n"
    } else {
        ""
    };
    format!(
        "acl = \"write\"\n{operator}agent_prefix \"\" {{ policy = \"read\" }}\nnode_prefix \"\" {{ policy = \"read\" }}\nkey_prefix \"\" {{ policy = \"write\" }}\nservice_prefix \"\" {{ policy = \"read\" }}\n"
    )
}

/// PUT a JSON body with the master token; the answer's body. Right after a cluster starts,
/// Consul's ACL system is still in legacy mode for a few seconds: asked again (≤ 30 s).
fn put(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let bytes = serde_json::to_vec(&body).unwrap();
        match rt.block_on(client.send(reqwest::Method::PUT, path, Some(bytes))) {
            Ok(a) => return a.body,
            Err(e) if e.to_string().contains("legacy mode") && t0.elapsed().as_secs() < 30 => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => panic!("PUT {path}: {e}"),
        }
    }
}

#[test]
fn a_read_the_gate_needs_that_becomes_forbidden_halts_naming_it() {
    let c = ConsulCluster::start("unreadable", 202, 3);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin = cluster::consul_client("http://127.0.0.202:8500", TOKEN);
    let policy = put(
        &rt,
        &admin,
        "/v1/acl/policy",
        serde_json::json!({"Name": "rehearse-run", "Rules": rules(true)}),
    );
    let policy_id = policy["ID"].as_str().expect("policy ID").to_string();
    let token = put(
        &rt,
        &admin,
        "/v1/acl/token",
        serde_json::json!({"Description": "rehearse run", "Policies": [{"ID": policy_id}]}),
    );
    let secret = token["SecretID"].as_str().expect("SecretID").to_string();

    // A follower resolves tokens of the new ACL system only once it has left legacy mode
    // (its agent endpoints answer 403 until then): wait for every server (≤ 60 s).
    for i in 0..3 {
        let server = cluster::consul_client(&format!("http://127.0.0.{}:8500", 202 + i), &secret);
        let t0 = Instant::now();
        while rt.block_on(server.get("/v1/agent/self")).is_err() {
            assert!(
                t0.elapsed().as_secs() < 60,
                "server {i} never accepted the token"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    // The token is enough for the whole run: the dry run passes with it.
    let dry = c.execute_with_token(&[], &secret);
    assert_eq!(dry.code, Some(0), "{}", dry.text);
    let mut cmd = c.execute_command(&["--apply"]);
    cmd.env("CONSUL_HTTP_TOKEN", &secret);
    let mut child = cmd.spawn().expect("spawn rehearse");
    let first = c.wait_for_journal(first_in_gate);
    // Through a server that is not the one just restarted.
    let other = c.names().iter().position(|n| *n != first).unwrap();
    let admin = cluster::consul_client(&format!("http://127.0.0.{}:8500", 202 + other), TOKEN);
    put(
        &rt,
        &admin,
        &format!("/v1/acl/policy/{policy_id}"),
        serde_json::json!({"Name": "rehearse-run", "Rules": rules(false)}),
    );
    let out = cluster::wait_output(&mut child, 240);
    println!("{}", out.text);
    assert!(!out.text.contains(&secret), "the token is never printed");
    // Halted, not refused as bad input: the cluster had changed (one server upgraded), so the
    // exit is 1 and the journal resumes.
    assert_eq!(out.code, Some(1), "{}", out.text);
    assert!(out.text.contains("halted safely"), "{}", out.text);
    let halt = out
        .text
        .lines()
        .find(|l| l.starts_with("halted safely"))
        .unwrap_or_default();
    for list in ["raft configuration: ", "autopilot health: "] {
        assert!(
            halt.split("; ")
                .any(|u| u.contains(list) && u.contains("permission denied")),
            "the halt names {list}and why:\n{}",
            out.text
        );
    }
    assert!(!halt.contains("not a voter"), "{halt}");
    let records = Journal::read(&c.journal()).unwrap();
    let stops: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::ActionBegin {
                action: Action::Stop { server },
                ..
            } => Some(server.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        stops,
        vec![first.as_str()],
        "no server stopped after the reads failed"
    );

    // With the permission back, the same command resumes and completes.
    put(
        &rt,
        &admin,
        &format!("/v1/acl/policy/{policy_id}"),
        serde_json::json!({"Name": "rehearse-run", "Rules": rules(true)}),
    );
    let mut cmd = c.execute_command(&["--apply"]);
    cmd.env("CONSUL_HTTP_TOKEN", &secret);
    let mut child = cmd.spawn().expect("spawn rehearse");
    let rerun = cluster::wait_output(&mut child, 300);
    println!("{}", rerun.text);
    assert_eq!(rerun.code, Some(0), "{}", rerun.text);
    c.assert_all_on_target();
}
