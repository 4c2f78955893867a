//! A restarted ACL cluster without a leader answers a good token with 403 "ACL not found";
//! rehearse must call that "no leader yet", not a bad token (issue #19).

use super::cluster::{ConsulCluster, TOKEN, rehearse_cmd};
use rehearse_model::api::ApiError;
use std::time::{Duration, Instant};

#[test]
fn a_restarted_acl_cluster_without_a_leader_is_not_a_bad_token() {
    let c = ConsulCluster::start("noleader", 82, 3);
    let names = c.names();
    for n in &names {
        c.kill(n);
    }
    // One server of three back: it cannot elect a leader.
    c.start_server(&names[0], false);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = super::cluster::consul_client("http://127.0.0.82:8500", TOKEN);
    let t0 = Instant::now();
    while rt.block_on(client.get("/v1/status/leader")).is_err() {
        assert!(t0.elapsed() < Duration::from_secs(30), "the server answers");
        std::thread::sleep(Duration::from_millis(100));
    }
    // What Consul answers: 403 for the good token (it cannot resolve tokens without a leader).
    let raw = rt
        .block_on(
            reqwest::Client::new()
                .get("http://127.0.0.82:8500/v1/agent/self")
                .header("X-Consul-Token", TOKEN)
                .send(),
        )
        .unwrap();
    assert_eq!(raw.status().as_u16(), 403, "Consul refuses the good token");
    let got = rt.block_on(client.get("/v1/agent/self"));
    assert!(
        matches!(got, Err(ApiError::NoLeader { .. })),
        "no leader, not a bad token: {got:?}"
    );
    let out = rehearse_cmd(
        &[
            "import",
            "--addr",
            "http://127.0.0.82:8500",
            "--product",
            "consul",
        ],
        Some(TOKEN),
    );
    assert_eq!(out.code, Some(2), "{}", out.text);
    assert!(!out.text.contains("permission denied"), "{}", out.text);
    // With a quorum back the same token works.
    c.start_server(&names[1], false);
    c.start_server(&names[2], false);
    c.wait_healthy(1);
    let out = rehearse_cmd(&["import", "--addr", "http://127.0.0.82:8500"], Some(TOKEN));
    assert_eq!(out.code, Some(0), "{}", out.text);
}
