// Included (`include!`) by the fuzz harness and by the AFL++ answer target
// (fuzz/afl/src/bin/answer.rs), so both feed an answer to the same parsers.

/// Feeds `bytes` to every parser of the live driver's HTTP answers (leader, members, Raft
/// configuration, autopilot health, agent self, scheduler configuration, node endpoints, jobs,
/// metrics, Go durations, RFC 3339 times). Returns whether the bytes were JSON at all.
fn parse_every_answer_shape(bytes: &[u8]) -> bool {
    use rehearse::live::parse;
    use rehearse_model::versions::Product;
    let text = String::from_utf8_lossy(bytes);
    for word in text.split(['"', ',', ' ']).take(64) {
        let _ = parse::go_duration_ms(word);
        let _ = parse::rfc3339_ms(word);
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let _ = parse::leader(&v);
    let _ = parse::members(&v);
    let _ = parse::raft_configuration(&v);
    let _ = parse::autopilot_health(&v);
    let _ = parse::agent_self(Product::Nomad, &v);
    let _ = parse::agent_self(Product::Consul, &v);
    let _ = parse::scheduler_config(&v);
    let _ = parse::node_id(&v, "s1");
    let _ = parse::node_drained(&v, "s1");
    if let Ok(stubs) = parse::job_stubs(&v) {
        let counts = parse::job_group_counts(&v).unwrap_or_default();
        for s in &stubs {
            let _ = parse::job_state(s, &counts, u32::MAX);
        }
    }
    let _ = parse::job_group_counts(&v);
    let _ = parse::eligible_ready_nodes(&v);
    let _ = parse::broker_stats(&v);
    true
}
