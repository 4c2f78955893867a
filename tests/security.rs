//! Regression tests for the security findings of issue #19: plan injection through
//! `rehearse import`, tokens sent along redirects or to the other product's server, unbounded
//! answers, a panic on an error body, 403 while a cluster has no leader, and shell injection
//! through command templates. HTTP servers are faked (`live::fake`).

use crate::live::fake::{FakeServer, Reply};
use rehearse::live::client::{Client, Connection, Secret};
use rehearse::live::control::{NodeControl, Side};
use rehearse::plan::Plan;
use rehearse_model::api::ApiError;
use rehearse_model::versions::Product;
use std::process::Command;

const NOMAD_TOKEN: &str = "nomad-secret-5e1f";
const CONSUL_TOKEN: &str = "consul-secret-77a2";

/// Server names that broke (or could break) a plan written by string formatting: quotes,
/// brackets, `=`, `#`, spaces, backslashes, TOML's multi-line quotes and Unicode.
const HOSTILE: [&str; 9] = [
    r#"s1", client = true }, { name = "evil"#,
    "[execute]",
    "control = \"command\"",
    "#not-a-comment",
    "with space",
    r"back\slash\u0041",
    "'single' \"\"\" triple",
    "ünïcødé 😀 名前",
    "]]} [[cluster_servers]] x=1",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `rehearse import` with both products' tokens set and nothing else from the environment.
fn import(addr: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rehearse"));
    cmd.args(["import", "--addr", addr]).args(extra);
    for (k, _) in std::env::vars() {
        if k.starts_with("NOMAD_") || k.starts_with("CONSUL_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("NOMAD_TOKEN", NOMAD_TOKEN)
        .env("CONSUL_HTTP_TOKEN", CONSUL_TOKEN);
    let o = cmd.output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn raft_configuration(product: Product, nodes: &[(&str, &str)]) -> String {
    let servers: Vec<serde_json::Value> = nodes
        .iter()
        .enumerate()
        .map(|(i, (node, address))| {
            let node = match product {
                Product::Nomad => format!("{node}.global"),
                Product::Consul => node.to_string(),
            };
            let proto = match product {
                Product::Nomad => "RaftProtocol",
                Product::Consul => "ProtocolVersion",
            };
            serde_json::json!({"ID": format!("id-{i}"), "Node": node, "Address": address,
                "Leader": i == 0, "Voter": true, proto: "3"})
        })
        .collect();
    serde_json::json!({"Index": 1, "Servers": servers}).to_string()
}

fn agent_self(product: Product) -> String {
    let raft = serde_json::json!({"applied_index": "10", "commit_index": "10",
        "last_contact": "0", "last_log_index": "10", "last_log_term": "2",
        "num_peers": "2", "protocol_version": "3", "state": "Leader", "term": "2"});
    match product {
        Product::Nomad => serde_json::json!({"config": {"Version": {"Version": "1.9.7"}},
            "member": {"Name": "x.global"}, "stats": {"raft": raft}}),
        Product::Consul => serde_json::json!({"Config": {"NodeName": "x", "Version": "1.8.7"},
            "Stats": {"raft": raft}}),
    }
    .to_string()
}

/// A fake server of `product` whose raft configuration lists `nodes` (name, raft address);
/// only the product's own detection endpoint exists, as on the real servers.
fn fake_cluster(product: Product, nodes: &[(&str, &str)]) -> FakeServer {
    let detect = match product {
        Product::Nomad => ("/v1/regions", Reply::json(200, r#"["global"]"#)),
        Product::Consul => ("/v1/catalog/datacenters", Reply::json(200, r#"["dc1"]"#)),
    };
    let autopilot = r#"{"CleanupDeadServers": true, "LastContactThreshold": "200ms",
        "MaxTrailingLogs": 250, "ServerStabilizationTime": "10s", "MinQuorum": 0}"#;
    FakeServer::start(
        "127.0.0.1",
        vec![
            detect,
            (
                "/v1/operator/raft/configuration",
                Reply::json(200, &raft_configuration(product, nodes)),
            ),
            ("/v1/status/leader", Reply::json(200, "\"127.0.0.1:8300\"")),
            ("/v1/agent/self", Reply::json(200, &agent_self(product))),
            (
                "/v1/operator/autopilot/configuration",
                Reply::json(200, autopilot),
            ),
        ],
    )
}

/// The token headers the fake server received, per header name.
fn tokens_seen(f: &FakeServer, header: &str) -> Vec<String> {
    f.requests()
        .iter()
        .filter_map(|r| r.header(header).map(str::to_string))
        .collect()
}

#[test]
fn import_writes_exactly_the_clusters_servers_whatever_their_names() {
    for product in [Product::Consul, Product::Nomad] {
        let nodes: Vec<(&str, &str)> = HOSTILE.iter().map(|n| (*n, "127.0.0.1:8300")).collect();
        let f = fake_cluster(product, &nodes);
        let (code, stdout, stderr) = import(&f.url(), &[]);
        assert_eq!(code, Some(0), "{product}: {stderr}");
        let plan = Plan::from_str_named(&stdout, "imported").unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = plan.cluster.servers.iter().map(|s| &*s.name).collect();
        assert_eq!(
            names, HOSTILE,
            "{product}: exactly the cluster's servers\n{stdout}"
        );
        for s in &plan.cluster.servers {
            assert_eq!(s.address.as_deref(), Some(&*f.url()), "{stdout}");
            assert!(!s.client, "{stdout}");
        }
        assert!(plan.execute.is_none(), "no [execute] section: {stdout}");
        assert_eq!(plan.cluster.product, product);
        assert_eq!(plan.upgrade.target, plan.cluster.version);
        // Detection sends no token; afterwards only the product's own token is sent.
        let (own, other) = match product {
            Product::Nomad => (("X-Nomad-Token", NOMAD_TOKEN), "X-Consul-Token"),
            Product::Consul => (("X-Consul-Token", CONSUL_TOKEN), "X-Nomad-Token"),
        };
        assert!(
            tokens_seen(&f, other).is_empty(),
            "{product}: other token sent"
        );
        let seen = tokens_seen(&f, own.0);
        assert!(!seen.is_empty() && seen.iter().all(|t| t == own.1));
        let detect = f
            .requests()
            .into_iter()
            .find(|r| r.path.starts_with("/v1/regions") || r.path.starts_with("/v1/catalog"))
            .expect("a detection request");
        assert!(detect.header(own.0).is_none(), "detection without a token");
    }
}

#[test]
fn import_refuses_a_cluster_it_cannot_write_safely() {
    let cases: [(&str, &str, &str); 4] = [
        (
            "s1\"\n[execute]\ncontrol = \"command\"",
            "127.0.0.1:8300",
            r#"s1\"\n[execute]"#,
        ),
        ("cr\rname", "127.0.0.1:8300", r"cr\rname"),
        ("bidi\u{202E}txt", "127.0.0.1:8300", "U+202E"),
        ("s2", "127.0.0.1\"\n[execute]\n:8300", "s2"),
    ];
    for (name, address, shown) in cases {
        let f = fake_cluster(
            Product::Consul,
            &[("ok", "127.0.0.1:8300"), (name, address)],
        );
        let (code, stdout, stderr) = import(&f.url(), &["--product", "consul"]);
        assert_eq!(code, Some(2), "{name:?}: {stdout}{stderr}");
        assert!(stdout.is_empty(), "no plan written: {stdout}");
        assert!(stderr.contains(shown), "{name:?} named: {stderr}");
        assert!(stderr.contains("no plan written"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn plans_refuse_control_characters_in_names_and_odd_addresses() {
    let plan = |servers: &str| {
        format!(
            "[cluster]\nproduct = \"nomad\"\nversion = \"1.9.7\"\n\nservers = [\n  {{ name = \"s1\" }},\n  {servers},\n]\n[upgrade]\ntarget = \"1.10.3\"\n"
        )
    };
    let refused = [
        (r#"{ name = "a\nb" }"#, "cluster.servers[1].name", "U+000A"),
        (
            r#"{ name = "a\u001b[2Jb" }"#,
            "cluster.servers[1].name",
            "U+001B",
        ),
        (
            r#"{ name = "a\u2028b" }"#,
            "cluster.servers[1].name",
            "U+2028",
        ),
        (
            r#"{ name = "s2", address = "http://h;reboot:4646" }"#,
            "cluster.servers[1].address",
            "host:port",
        ),
        (
            r#"{ name = "s2", address = "http://1.2.3.4:4646\n" }"#,
            "cluster.servers[1].address",
            "U+000A",
        ),
        (
            r#"{ name = "s2", address = "http://$(reboot):4646" }"#,
            "cluster.servers[1].address",
            "host:port",
        ),
    ];
    for (server, field, why) in refused {
        let e = Plan::from_str_named(&plan(server), "p.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("p.toml, line 7: "),
            "{server}: the line is named: {e}"
        );
        assert!(e.contains(field) && e.contains(why), "{server}: {e}");
    }
    for ok in [
        r#"{ name = "a \"b\" [c] = #d ünï", address = "https://n-1.example_x:4646" }"#,
        r#"{ name = "s2", address = "http://[fe80::1%eth0]:4646" }"#,
        r#"{ name = "s2", address = "10.0.0.2:4646" }"#,
    ] {
        Plan::from_str_named(&plan(ok), "p.toml").unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

fn consul_with_token() -> Connection {
    let mut c = Connection::new(Product::Consul);
    c.token = Secret::new(Some(CONSUL_TOKEN.into()));
    c
}

#[test]
fn redirects_are_not_followed_and_the_token_stays_home() {
    let elsewhere = FakeServer::start(
        "127.0.0.1",
        vec![("/v1/agent/self", Reply::json(200, "{}"))],
    );
    for status in [301, 302, 307, 308] {
        let target = format!("{}/v1/agent/self", elsewhere.url());
        let home = FakeServer::start(
            "127.0.0.1",
            vec![("/v1/agent/self", Reply::redirect(status, &target))],
        );
        let c = Client::new(&home.url(), &consul_with_token()).unwrap();
        let got = runtime().block_on(c.get("/v1/agent/self"));
        match got {
            Err(ApiError::Rejected { addr, message }) => {
                assert_eq!(&*addr, home.url());
                assert!(
                    message.contains("redirect") && message.contains(&target),
                    "{message}"
                );
                assert!(!message.contains(CONSUL_TOKEN));
            }
            other => panic!("{status}: {other:?}"),
        }
        assert_eq!(tokens_seen(&home, "X-Consul-Token"), [CONSUL_TOKEN]);
        assert_eq!(home.requests()[0].method, "GET");
    }
    assert!(
        elsewhere.requests().is_empty(),
        "nothing, and so no token, reached the other server: {:?}",
        elsewhere.requests()
    );
}

#[test]
fn an_endless_answer_is_cut_at_the_cap_and_snapshots_get_their_own() {
    let f = FakeServer::start(
        "127.0.0.1",
        vec![
            ("/v1/agent/self", Reply::endless()),
            ("/v1/snapshot", Reply::bytes(200, vec![7; 300 * 1024])),
            ("/v1/kv/big", Reply::bytes(200, vec![7; 300 * 1024])),
        ],
    );
    // The default cap, against a body that never ends.
    let c = Client::new(&f.url(), &Connection::new(Product::Consul)).unwrap();
    let started = std::time::Instant::now();
    match runtime().block_on(c.get("/v1/agent/self")) {
        Err(ApiError::Rejected { message, .. }) => {
            assert!(message.contains("larger than 64 MiB"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        started.elapsed().as_secs() < 4,
        "cut by the cap, not the timeout"
    );
    // Small caps: the snapshot endpoint has its own.
    let mut conn = Connection::new(Product::Consul);
    conn.max_body_bytes = 256 * 1024;
    conn.max_snapshot_bytes = 1 << 20;
    let c = Client::new(&f.url(), &conn).unwrap();
    let rt = runtime();
    let snap = rt.block_on(c.get("/v1/snapshot")).unwrap();
    assert_eq!(snap.bytes.len(), 300 * 1024);
    let big = rt.block_on(c.get("/v1/kv/big"));
    assert!(matches!(big, Err(ApiError::Rejected { .. })), "{big:?}");
}

#[test]
fn error_bodies_never_panic_whatever_their_bytes() {
    // A two-byte character across byte 200, a four-byte one, invalid UTF-8, a terminal escape.
    let mut bodies = vec![
        format!("{}é and more", "a".repeat(199)).into_bytes(),
        format!("{}😀", "b".repeat(198)).into_bytes(),
        [vec![b'c'; 199], vec![0xff, 0xfe, 0xc3], vec![b'd'; 50]].concat(),
        b"\x1b[2Jcleared".to_vec(),
    ];
    bodies.push(vec![0xe2; 1000]);
    for body in bodies {
        let f = FakeServer::start(
            "127.0.0.1",
            vec![("/v1/agent/self", Reply::bytes(500, body.clone()))],
        );
        let c = Client::new(&f.url(), &Connection::new(Product::Consul)).unwrap();
        match runtime().block_on(c.get("/v1/agent/self")) {
            Err(ApiError::Rejected { message, .. }) => {
                assert!(message.starts_with("HTTP 500: "), "{message}");
                assert!(message.chars().count() <= "HTTP 500: ".len() + 200);
                assert!(!message.contains('\u{1b}'), "{message:?}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn forbidden_without_a_leader_is_no_leader_not_a_bad_token() {
    let acl_not_found = || Reply::bytes(403, b"ACL not found".to_vec());
    let rt = runtime();
    // No leader: retried, then "no leader"; the leader is asked without the token.
    let f = FakeServer::start(
        "127.0.0.1",
        vec![
            ("/v1/agent/self", acl_not_found()),
            ("/v1/status/leader", Reply::json(200, "\"\"")),
        ],
    );
    let c = Client::new(&f.url(), &consul_with_token()).unwrap();
    let got = rt.block_on(c.get("/v1/agent/self"));
    assert!(matches!(got, Err(ApiError::NoLeader { .. })), "{got:?}");
    let reqs = f.requests();
    let tries = reqs.iter().filter(|r| r.path == "/v1/agent/self").count();
    assert_eq!(tries, 3, "retried within the connection's attempts");
    assert!(
        reqs.iter()
            .filter(|r| r.path.starts_with("/v1/status/leader"))
            .all(|r| r.header("X-Consul-Token").is_none())
    );
    // A leader is known: the token really was refused.
    let f = FakeServer::start(
        "127.0.0.1",
        vec![
            ("/v1/agent/self", acl_not_found()),
            ("/v1/status/leader", Reply::json(200, "\"127.0.0.1:8300\"")),
        ],
    );
    let c = Client::new(&f.url(), &consul_with_token()).unwrap();
    let got = rt.block_on(c.get("/v1/agent/self"));
    assert!(matches!(got, Err(ApiError::Forbidden { .. })), "{got:?}");
    // The leader is elected while the client retries: the answer comes through.
    let f = FakeServer::start(
        "127.0.0.1",
        vec![
            ("/v1/agent/self", acl_not_found()),
            ("/v1/agent/self", Reply::json(200, "{\"ok\": 1}")),
            ("/v1/status/leader", Reply::json(200, "\"\"")),
        ],
    );
    let c = Client::new(&f.url(), &consul_with_token()).unwrap();
    let got = rt.block_on(c.get("/v1/agent/self")).unwrap();
    assert_eq!(got.body["ok"], 1);
}

#[test]
fn names_in_command_templates_are_one_literal_word() {
    let dir = std::env::temp_dir().join(format!("rehearse-sec-quote-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let names = [
        "a'b; touch pwned1; '",
        "$(touch pwned2)",
        "`touch pwned3`",
        "\"; touch pwned4; \"",
        "\\\"; touch pwned5 #",
        "x\\'; touch pwned6",
        "plain-name",
    ];
    let servers: Vec<String> = names
        .iter()
        .map(|n| format!("{{ name = {} }}", toml::Value::String(n.to_string())))
        .collect();
    let d = dir.display();
    let text = format!(
        r#"[cluster]
product = "consul"
version = "1.8.7"
servers = [{}]
[upgrade]
target = "1.8.7"
[execute]
control = "command"
[execute.command]
status = "false"
stop = "true"
start = "cd {d} && printf '%s\n' {{name}} \"{{name}}\" '{{name}}' >> names"
"#,
        servers.join(", ")
    );
    let plan = Plan::from_str_named(&text, "q.toml").unwrap_or_else(|e| panic!("{e}"));
    let control = NodeControl::from_plan(&plan).unwrap();
    let rt = runtime();
    for n in names {
        rt.block_on(control.start(n, Side::Current))
            .unwrap_or_else(|e| panic!("{n}: {e}"));
    }
    let written = std::fs::read_to_string(dir.join("names")).unwrap();
    let want: String = names.iter().map(|n| format!("{n}\n{n}\n{n}\n")).collect();
    assert_eq!(written, want, "each name arrives as one literal word");
    let entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["names"], "no command ran");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Three fake Consul servers s1–s3 that know a leader; `agent_self(i)` is server i's answers
/// to `/v1/agent/self` (in order, the last repeats), `raft` its answer to the raft
/// configuration.
fn fake_servers(
    agent_self: impl Fn(usize) -> Vec<Reply>,
    raft: impl Fn(usize) -> Reply,
) -> Vec<FakeServer> {
    (0..3)
        .map(|i| {
            let mut routes = vec![
                ("/v1/status/leader", Reply::json(200, "\"127.0.0.1:8300\"")),
                ("/v1/operator/raft/configuration", raft(i)),
            ];
            routes.extend(agent_self(i).into_iter().map(|r| ("/v1/agent/self", r)));
            FakeServer::start("127.0.0.1", routes)
        })
        .collect()
}

/// `check_cluster` on a 3-server Consul plan whose servers are `fakes`, with a 2 s gate
/// timeout polled every 100 ms.
fn check_fakes(fakes: &[FakeServer]) -> Result<rehearse_model::contract::ClusterView, String> {
    let servers: Vec<String> = fakes
        .iter()
        .enumerate()
        .map(|(i, f)| format!("{{ name = \"s{}\", address = \"{}\" }}", i + 1, f.url()))
        .collect();
    let text = format!(
        "[cluster]\nproduct = \"consul\"\nversion = \"1.8.7\"\nservers = [{}]\n\n[upgrade]\ntarget = \"1.8.7\"\nallow_zero_tolerance = true\n\n[upgrade.gate]\ntimeout = \"2s\"\npoll = \"100ms\"\n",
        servers.join(", ")
    );
    let plan = Plan::from_str_named(&text, "plan.toml").unwrap();
    let cluster = rehearse::live::cluster::LiveCluster {
        product: Product::Consul,
        servers: fakes
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    format!("s{}", i + 1),
                    Client::new(&f.url(), &consul_with_token()).unwrap(),
                )
            })
            .collect(),
    };
    runtime()
        .block_on(rehearse::live::executor::check_cluster(&plan, &cluster))
        .map_err(|e| e.to_string())
}

/// A token is cluster-wide: a server that refuses it while the others accept it (a server
/// restarted moments ago, still replaying its log, as when a run is resumed right after it
/// stopped) is waited for, not taken for a bad token; a token every server refuses, or one
/// refused the raft configuration by a server that accepts it for its own read, is.
#[test]
fn a_token_one_restarting_server_refuses_while_the_others_accept_is_waited_for() {
    let raft = || {
        let nodes = [
            ("s1", "127.0.0.1:8300"),
            ("s2", "127.0.0.2:8300"),
            ("s3", "127.0.0.3:8300"),
        ];
        Reply::json(200, &raft_configuration(Product::Consul, &nodes))
    };
    let acl_not_found = || Reply::bytes(403, b"ACL not found".to_vec());
    let ok = || Reply::json(200, &agent_self(Product::Consul));
    // s2 refuses more times than one read retries (3 attempts), then accepts.
    let fakes = fake_servers(
        |i| match i {
            1 => vec![acl_not_found(); 5].into_iter().chain([ok()]).collect(),
            _ => vec![ok()],
        },
        |_| raft(),
    );
    let view = check_fakes(&fakes).expect("waited for s2, then went on");
    assert!(
        view.agents.iter().all(|(_, a)| a.is_ok()),
        "{:?}",
        view.agents
    );
    let asked = |f: &FakeServer| {
        f.requests()
            .iter()
            .filter(|r| r.path == "/v1/agent/self")
            .count()
    };
    assert_eq!(asked(&fakes[1]), 6, "s2 asked until it accepted");

    // Every server refuses the token: a bad token, said at once.
    let fakes = fake_servers(|_| vec![acl_not_found()], |_| raft());
    let t0 = std::time::Instant::now();
    let err = check_fakes(&fakes).unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    assert!(t0.elapsed().as_secs_f64() < 2.0, "not waited for");

    // The servers answer their own read but refuse the raft configuration: the token lacks
    // the operator rule, said at once.
    let fakes = fake_servers(|_| vec![ok()], |_| acl_not_found());
    let t0 = std::time::Instant::now();
    let err = check_fakes(&fakes).unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    assert!(t0.elapsed().as_secs_f64() < 2.0, "not waited for");

    // s2 never accepts the token: named once the gate timeout has passed.
    let fakes = fake_servers(
        |i| match i {
            1 => vec![acl_not_found()],
            _ => vec![ok()],
        },
        |_| raft(),
    );
    let err = check_fakes(&fakes).unwrap_err();
    assert!(
        err.contains("s2 still refuse the token after 2s") && !err.contains("s1"),
        "{err}"
    );
}
