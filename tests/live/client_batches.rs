//! The client phase in batches (`[upgrade.clients]`) against a fake Nomad API: the drain and
//! the eligibility of a client-only node go through `POST /v1/node/:id/…` as for servers
//! that are clients, and the client phase's reads find the nodes under a drain in
//! `GET /v1/nodes` with their allocations.

use super::fake::{FakeServer, Reply};
use rehearse::live::client::{Client, Connection};
use rehearse::live::cluster::LiveCluster;
use rehearse::procedure::{ClusterView, Readout, Reads};
use rehearse_model::versions::Product;

const C1: &str = "a1d3cbd6-1111-2222-3333-444455556666";
const C2: &str = "b2e4dce7-1111-2222-3333-444455556666";

/// Two servers of the plan (`s1`, `s2`; `s2` is also a client) and two client-only nodes:
/// `c1` draining with allocations still running, `c2` drained (complete, ineligible) with
/// none.
fn nomad() -> FakeServer {
    let nodes = format!(
        r#"[
  {{"ID": "f7476465-4d6e-c0de-26d0-e383c49be941", "Name": "s2", "Status": "ready",
    "SchedulingEligibility": "eligible", "Drain": false, "Version": "1.10.3"}},
  {{"ID": "{C1}", "Name": "c1", "Status": "ready", "SchedulingEligibility": "ineligible",
    "Drain": true, "Version": "1.9.7", "LastDrain": {{"Status": "draining"}}}},
  {{"ID": "{C2}", "Name": "c2", "Status": "ready", "SchedulingEligibility": "ineligible",
    "Drain": false, "Version": "1.9.7", "LastDrain": {{"Status": "complete"}}}},
  {{"ID": "c3c3", "Name": "c3", "Status": "ready", "SchedulingEligibility": "eligible",
    "Drain": false, "Version": "1.9.7"}}
]"#
    );
    let running = r#"[{"ID": "x", "ClientStatus": "running"}]"#;
    let drain_path = format!("/v1/node/{C1}/drain");
    let eligibility = format!("/v1/node/{C1}/eligibility");
    let c1_allocs = format!("/v1/node/{C1}/allocations");
    let c2_allocs = format!("/v1/node/{C2}/allocations");
    let s2_allocs = "/v1/node/f7476465-4d6e-c0de-26d0-e383c49be941/allocations";
    FakeServer::start(
        "127.0.0.1",
        vec![
            ("/v1/status/leader", Reply::json(200, "\"127.0.0.1:4647\"")),
            ("/v1/nodes", Reply::json(200, &nodes)),
            (drain_path.as_str(), Reply::json(200, "{}")),
            (eligibility.as_str(), Reply::json(200, "{}")),
            (c1_allocs.as_str(), Reply::json(200, running)),
            (c2_allocs.as_str(), Reply::json(200, "[]")),
            (s2_allocs, Reply::json(200, "[]")),
        ],
    )
}

fn cluster(f: &FakeServer) -> LiveCluster {
    let c = Client::new(&f.url(), &Connection::new(Product::Nomad)).unwrap();
    LiveCluster {
        product: Product::Nomad,
        servers: vec![("s1".into(), c)],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_client_is_drained_and_marked_eligible_through_the_node_api() {
    let f = nomad();
    let c = cluster(&f);
    let rt = runtime();
    rt.block_on(c.drain("c1", 300_000)).unwrap();
    rt.block_on(c.mark_eligible("c1")).unwrap();
    let posts: Vec<String> = f
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert_eq!(
        posts,
        [
            format!("/v1/node/{C1}/drain"),
            format!("/v1/node/{C1}/eligibility")
        ]
    );
    assert!(
        rt.block_on(c.mark_eligible("c9"))
            .unwrap_err()
            .contains("no client node named c9")
    );
}

#[test]
fn the_client_phase_reads_the_nodes_under_a_drain_and_their_allocations() {
    let f = nomad();
    let c = cluster(&f);
    let rt = runtime();
    let mut view = ClusterView::not_read(&["s1".into()], true);
    let reads = Reads {
        cluster: true,
        nodes: true,
        allocs: true,
        workload: false,
    };
    let deadline = c.observe_deadline();
    rt.block_on(c.read_clients(&mut view, reads, &["s2".to_string()], deadline));
    let drained: Vec<&str> = view.drained.iter().map(|d| &**d).collect();
    assert_eq!(drained, ["c2"], "c1 still drains; c3 is not under a drain");
    match &view.allocs_running {
        Readout::Read(Ok(r)) => assert_eq!(r.iter().map(|r| &**r).collect::<Vec<_>>(), ["c1"]),
        other => panic!("{other:?}"),
    }
    let Readout::Read(Ok(nodes)) = &view.nodes else {
        panic!("{:?}", view.nodes)
    };
    let eligible: Vec<bool> = nodes.iter().map(|n| n.eligible).collect();
    assert_eq!(eligible, [true, false, false, true]);
    // Outside the client phase only the servers that are clients are read.
    let mut view = ClusterView::not_read(&["s1".into()], true);
    let server_drain = Reads {
        nodes: false,
        ..reads
    };
    rt.block_on(c.read_clients(&mut view, server_drain, &["s2".to_string()], deadline));
    assert!(view.drained.is_empty());
    assert_eq!(view.allocs_running, Readout::Read(Ok(Vec::new())));
    assert!(
        !f.requests().iter().any(|r| r.path.contains("c3c3")),
        "a node under no drain is never asked for its allocations"
    );
}
