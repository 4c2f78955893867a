//! A local Consul cluster of real processes on 127.0.0.x, for calibration against the
//! simulator and for tests: each server with its own address and data dir, started and stopped
//! through the same `[execute.process]` node control that `rehearse execute` uses. Dropping it
//! kills every server and removes its directory.

use super::client::{Client, ClientError, Connection, Secret};
use super::cluster::LiveCluster;
use super::control::{ControlError, NodeControl, Side, alive};
use crate::plan::{Plan, PlanError};
use rehearse_model::api::AutopilotHealth;
use rehearse_model::versions::Product;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of a local cluster.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Consul binary of the current install.
    pub binary: PathBuf,
    /// Consul binary of the target install (default: the same).
    pub target_binary: Option<PathBuf>,
    /// Last octet of the first server's 127.0.0.x address.
    pub base: u8,
    /// Servers.
    pub servers: usize,
    /// ACL master token (ACLs off when `None`).
    pub token: Option<String>,
    /// Scratch directory (created; removed on drop).
    pub dir: PathBuf,
    /// Extra plan text appended to `[upgrade]` (gate settings…).
    pub upgrade_extra: String,
    /// Write a KV probe during `execute`.
    pub probe: bool,
    /// Run each server in a network namespace of its own (10.77.{base}.1x behind a bridge), so
    /// a server can be cut off the network (`partition`). Needs root (`ip netns`).
    pub netns: bool,
    /// Serve the HTTP API over mutual TLS only (HTTPS on 8501, plain HTTP off), with a CA and
    /// certificates made by `consul tls` in `dir/tls` (see [`LocalConsul::tls_env`]).
    pub tls: bool,
    /// Raft protocol the servers run now and the one the plan's target sets
    /// (`upgrade.target_raft_protocol`); (3, 3) is Consul's default and adds nothing to the
    /// plan. Other values pass `-raft-protocol` to every server.
    pub raft_protocol: (u8, u8),
}

/// Why a local cluster could not be set up or driven.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// A directory could not be made.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A program (consul, ip, iptables) could not be run at all.
    #[error("cannot run {program}: {source}")]
    Run {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A setup command exited non-zero.
    #[error("{command}: {stderr}")]
    Command {
        /// The command as run (`consul tls ca create`, `ip link add …`).
        command: String,
        /// Its stderr.
        stderr: String,
    },
    /// The generated plan did not parse.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The generated plan has no `[execute]` section.
    #[error("plan without [execute]")]
    NoExecute,
    /// A server's API client could not be made.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Starting or stopping a server failed.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// `partition`/`heal` on a cluster started without network namespaces.
    #[error("partitions need a cluster started with netns")]
    NoNetns,
    /// A server name that is not s1…sN.
    #[error("unknown server {0}")]
    UnknownServer(String),
    /// The cluster did not come up in time.
    #[error("local Consul cluster in {}: {what} within {secs} s", dir.display())]
    NotReady {
        /// The cluster's directory.
        dir: PathBuf,
        /// What it did not reach.
        what: &'static str,
        /// How long rehearse waited.
        secs: u64,
    },
}

/// `cannot create {path}`.
fn create_dir(path: &Path) -> Result<(), LocalError> {
    std::fs::create_dir_all(path).map_err(|source| LocalError::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}

/// `cannot write {path}`.
fn write(path: PathBuf, text: impl AsRef<[u8]>) -> Result<(), LocalError> {
    std::fs::write(&path, text).map_err(|source| LocalError::Write { path, source })
}

/// Runs a setup program (`label` names it in errors); Err with its stderr when it exits non-zero.
fn run(program: &Path, label: &str, args: &[&str], dir: Option<&Path>) -> Result<(), LocalError> {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let out = cmd.output().map_err(|source| LocalError::Run {
        program: program.display().to_string(),
        source,
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(LocalError::Command {
        command: format!("{label} {}", args.join(" ")),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// A running local Consul cluster.
#[derive(Debug)]
pub struct LocalConsul {
    /// Options it was started with.
    pub opts: LocalOptions,
    /// The plan that describes it (with an `[execute]` section).
    pub plan_text: String,
    control: NodeControl,
    /// Clients of every server, in order s1…sN.
    pub cluster: LiveCluster,
}

fn ip(o: &LocalOptions, i: usize) -> String {
    if o.netns {
        format!("10.77.{}.{}", o.base, 10 + i)
    } else {
        format!("127.0.0.{}", o.base as usize + i)
    }
}

/// The API address of server `i`.
fn api_addr(o: &LocalOptions, i: usize) -> String {
    if o.tls {
        format!("https://{}:8501", ip(o, i))
    } else {
        format!("http://{}:8500", ip(o, i))
    }
}

/// Makes a CA, one server certificate (valid for `server.dc1.consul`, localhost and every
/// server's IP) and one client certificate with Consul's own `consul tls` commands, and the
/// agent configuration that serves the API over HTTPS only and requires a client certificate.
fn make_tls(o: &LocalOptions) -> Result<(), LocalError> {
    let dir = o.dir.join("tls");
    create_dir(&dir)?;
    let ips: Vec<String> = (0..o.servers)
        .map(|i| format!("-additional-ipaddress={}", ip(o, i)))
        .collect();
    let mut server = vec!["tls", "cert", "create", "-server", "-dc", "dc1"];
    server.extend(ips.iter().map(String::as_str));
    for args in [
        &["tls", "ca", "create"][..],
        &server[..],
        &["tls", "cert", "create", "-client", "-dc", "dc1"][..],
    ] {
        run(&o.binary, "consul", args, Some(&dir))?;
    }
    let d = dir.display();
    let cfg = format!(
        r#"{{"ports": {{"http": -1, "https": 8501}},
"ca_file": "{d}/consul-agent-ca.pem",
"cert_file": "{d}/dc1-server-consul-0.pem",
"key_file": "{d}/dc1-server-consul-0-key.pem",
"verify_incoming_https": true}}"#
    );
    write(o.dir.join("tls.json"), cfg)
}

/// Names of the network namespace and the host side of the veth pair of server `i` (0-based).
fn netns_names(base: u8, i: usize) -> (String, String, String) {
    (
        format!("rh{base}-s{}", i + 1),
        format!("rh{base}s{}h", i + 1),
        format!("rh{base}s{}n", i + 1),
    )
}

fn bridge_name(base: u8) -> String {
    format!("rhb{base}")
}

/// Runs `ip …`; Err with its stderr.
fn ip_cmd(args: &[&str]) -> Result<(), LocalError> {
    run(Path::new("ip"), "ip", args, None)
}

/// A bridge 10.77.{base}.1/24 and one namespace per server, wired to it by a veth pair.
fn setup_netns(base: u8, n: usize) -> Result<(), LocalError> {
    teardown_netns(base, n);
    let br = bridge_name(base);
    ip_cmd(&["link", "add", &br, "type", "bridge"])?;
    ip_cmd(&["addr", "add", &format!("10.77.{base}.1/24"), "dev", &br])?;
    ip_cmd(&["link", "set", &br, "up"])?;
    // With br_netfilter loaded, bridged frames go through iptables' FORWARD chain, whose policy
    // Docker sets to DROP: let this bridge's own traffic through (removed in teardown).
    let _ = iptables(&["-I", "FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT"]);
    for i in 0..n {
        let (ns, host, inner) = netns_names(base, i);
        ip_cmd(&["netns", "add", &ns])?;
        ip_cmd(&["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
        ip_cmd(&["link", "set", &inner, "netns", &ns])?;
        ip_cmd(&["link", "set", &host, "master", &br])?;
        ip_cmd(&["link", "set", &host, "up"])?;
        let addr = format!("10.77.{base}.{}/24", 10 + i);
        ip_cmd(&["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
        ip_cmd(&["-n", &ns, "link", "set", &inner, "up"])?;
        ip_cmd(&["-n", &ns, "link", "set", "lo", "up"])?;
    }
    Ok(())
}

/// Removes what `setup_netns` made (errors ignored: parts may be gone already).
fn teardown_netns(base: u8, n: usize) {
    for i in 0..n {
        let (ns, host, _) = netns_names(base, i);
        let _ = ip_cmd(&["link", "del", &host]);
        let _ = ip_cmd(&["netns", "del", &ns]);
    }
    let br = bridge_name(base);
    while iptables(&["-D", "FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT"]).is_ok() {}
    let _ = ip_cmd(&["link", "del", &br]);
}

/// Runs `iptables …` (absent iptables: Err, and the bridge may still forward).
fn iptables(args: &[&str]) -> Result<(), LocalError> {
    run(Path::new("iptables"), "iptables", args, None)
}

/// The argv prefix that starts a server in its network namespace: through `ip netns exec`,
/// which execs it, so the pid in the pid file is the server's own.
fn netns_prefix(o: &LocalOptions) -> String {
    if o.netns {
        format!("\"ip\", \"netns\", \"exec\", \"rh{}-{{name}}\", ", o.base)
    } else {
        String::new()
    }
}

/// The `-config-file` arguments of the ACL and TLS settings, as argv items.
fn config_files(o: &LocalOptions) -> String {
    let d = o.dir.display();
    let acl = if o.token.is_some() {
        format!("\"-config-file={d}/acl.json\", ")
    } else {
        String::new()
    };
    if o.tls {
        format!("{acl}\"-config-file={d}/tls.json\", ")
    } else {
        acl
    }
}

/// The plan of a local cluster: a rolling change from the current to the target binary with a
/// new node-meta value (rev 1 → 2), both visible through the API afterwards.
pub fn plan_text(o: &LocalOptions) -> String {
    let n = o.servers;
    let servers: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "{{ name = \"s{}\", address = \"{}\" }}",
                i + 1,
                api_addr(o, i)
            )
        })
        .collect();
    let joins: Vec<String> = (0..n)
        .map(|i| format!("\"-retry-join={}\"", ip(o, i)))
        .collect();
    let prefix = netns_prefix(o);
    let d = o.dir.display();
    let acl = config_files(o);
    let target = o.target_binary.as_ref().unwrap_or(&o.binary);
    let (proto, target_proto) = o.raft_protocol;
    let (proto_arg, target_proto) = if o.raft_protocol == (3, 3) {
        (String::new(), String::new())
    } else {
        (
            "\"-raft-protocol={raft_protocol}\", ".to_string(),
            format!("target_raft_protocol = {target_proto}\n"),
        )
    };
    format!(
        r#"[cluster]
product = "consul"
version = "1.8.7"
raft_protocol = {proto}
servers = [{servers}]

[upgrade]
target = "1.8.7"
{target_proto}allow_zero_tolerance = {zero}
{extra}

[execute]
control = "process"
stop_signal = "SIGINT"
stop_timeout = "30s"
probe = {probe}

[execute.process]
argv = [{prefix}"{{binary}}", "agent", "-server", "-bootstrap-expect={n}", "-node={{name}}",
        "-bind={{host}}", "-client={{host}}", "-data-dir={d}/{{name}}/data", {proto_arg}{acl}
        {joins}, "-node-meta=rehearse_rev:{{rev}}", "-log-level=info"]
pid_file = "{d}/{{name}}/pid"
log_file = "{d}/{{name}}/consul.log"

[execute.current]
binary = "{current}"
vars = {{ rev = "1" }}

[execute.target]
binary = "{target}"
vars = {{ rev = "2" }}
"#,
        servers = servers.join(", "),
        zero = n <= 3,
        extra = o.upgrade_extra,
        probe = o.probe,
        joins = joins.join(", "),
        current = o.binary.display(),
        target = target.display(),
    )
}

impl LocalConsul {
    /// Starts every server and waits (≤ 90 s) until autopilot is healthy.
    pub async fn start(opts: LocalOptions) -> Result<LocalConsul, LocalError> {
        let _ = std::fs::remove_dir_all(&opts.dir);
        create_dir(&opts.dir)?;
        if let Some(t) = &opts.token {
            let acl = format!(
                r#"{{"primary_datacenter":"dc1","acl":{{"enabled":true,"default_policy":"deny","tokens":{{"master":"{t}","agent":"{t}"}}}}}}"#
            );
            write(opts.dir.join("acl.json"), acl)?;
        }
        if opts.netns {
            setup_netns(opts.base, opts.servers)?;
        }
        if opts.tls {
            make_tls(&opts)?;
        }
        let text = plan_text(&opts);
        let plan = Plan::from_str_named(&text, "local cluster plan")?;
        let control = NodeControl::from_plan(&plan).ok_or(LocalError::NoExecute)?;
        let mut conn = Connection::new(Product::Consul);
        conn.token = Secret::new(opts.token.clone());
        conn.timeout_ms = 2000;
        conn.attempts = 1;
        if opts.tls {
            let t = opts.dir.join("tls");
            conn.tls.ca_cert = Some(t.join("consul-agent-ca.pem"));
            conn.tls.client_cert = Some(t.join("dc1-client-consul-0.pem"));
            conn.tls.client_key = Some(t.join("dc1-client-consul-0-key.pem"));
        }
        let mut servers = Vec::new();
        for i in 0..opts.servers {
            let c = Client::new(&api_addr(&opts, i), &conn)?;
            servers.push((format!("s{}", i + 1), c));
        }
        let local = LocalConsul {
            opts,
            plan_text: text,
            control,
            cluster: LiveCluster {
                product: Product::Consul,
                servers,
            },
        };
        for s in local.names() {
            local.start_server(&s, false).await?;
        }
        if local.opts.raft_protocol.0 < 3 {
            // Autopilot health answers HTTP 500 under raft protocol 2.
            local.wait_voters(Duration::from_secs(90)).await?;
        } else {
            let ft = i64::from(local.opts.servers >= 3);
            local.wait_healthy(ft, Duration::from_secs(90)).await?;
        }
        Ok(local)
    }

    /// Server names s1…sN.
    pub fn names(&self) -> Vec<String> {
        (1..=self.opts.servers).map(|i| format!("s{i}")).collect()
    }

    /// The directory of one server.
    pub fn server_dir(&self, name: &str) -> PathBuf {
        self.opts.dir.join(name)
    }

    /// Starts a server on the current (or target) install; no-op when it runs.
    pub async fn start_server(&self, name: &str, target: bool) -> Result<(), LocalError> {
        let side = if target { Side::Target } else { Side::Current };
        Ok(self.control.start(name, side).await?)
    }

    /// Stops a server gracefully (SIGINT: no leave) and waits until it has exited.
    pub async fn stop_server(&self, name: &str) -> Result<(), LocalError> {
        Ok(self.control.stop(name, Side::Current).await?)
    }

    /// The pid of a server, from its pid file.
    pub fn pid(&self, name: &str) -> Option<i32> {
        std::fs::read_to_string(self.server_dir(name).join("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn signal(&self, name: &str, sig: i32) {
        if let Some(pid) = self.pid(name) {
            // SAFETY: kill(2) on a server process this cluster started.
            unsafe {
                libc::kill(pid, sig);
            }
        }
    }

    /// SIGKILL a server and wait (≤ 10 s) until it is gone.
    pub fn kill(&self, name: &str) {
        self.signal(name, libc::SIGKILL);
        let t0 = Instant::now();
        while self.pid(name).is_some_and(alive) && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGSTOP a server.
    pub fn pause(&self, name: &str) {
        self.signal(name, libc::SIGSTOP);
    }

    /// SIGCONT a server.
    pub fn resume(&self, name: &str) {
        self.signal(name, libc::SIGCONT);
    }

    /// The leader a given server reports (`None`: none known or no answer).
    pub async fn leader_seen_by(&self, name: &str) -> Option<String> {
        let c = self.cluster.client(name)?;
        let a = c.get("/v1/status/leader").await.ok()?;
        let addr = a.body.as_str()?.to_string();
        self.name_of(&addr)
    }

    /// The leader any server reports.
    pub async fn leader(&self) -> Option<String> {
        for n in self.names() {
            if let Some(l) = self.leader_seen_by(&n).await {
                return Some(l);
            }
        }
        None
    }

    fn name_of(&self, raft_addr: &str) -> Option<String> {
        let host = raft_addr.split(':').next().filter(|h| !h.is_empty())?;
        (0..self.opts.servers)
            .find(|&i| ip(&self.opts, i) == host)
            .map(|i| format!("s{}", i + 1))
    }

    /// Cuts a server off the network (its veth link goes down); needs `netns`.
    pub fn partition(&self, name: &str) -> Result<(), LocalError> {
        self.link(name, "down")
    }

    /// Reconnects a partitioned server.
    pub fn heal(&self, name: &str) -> Result<(), LocalError> {
        self.link(name, "up")
    }

    fn link(&self, name: &str, state: &str) -> Result<(), LocalError> {
        if !self.opts.netns {
            return Err(LocalError::NoNetns);
        }
        let i = self
            .names()
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| LocalError::UnknownServer(name.to_string()))?;
        let (_, host, _) = netns_names(self.opts.base, i);
        ip_cmd(&["link", "set", &host, state])
    }

    /// Autopilot health as the first answering server reports it.
    pub async fn health(&self) -> Option<AutopilotHealth> {
        for (_, c) in &self.cluster.servers {
            if let Ok(a) = c.get("/v1/operator/autopilot/health").await
                && let Ok(h) = super::parse::autopilot_health(&a.body)
            {
                return Some(h);
            }
        }
        None
    }

    /// The raft configuration as the first answering server reports it.
    pub async fn raft_configuration(&self) -> Option<rehearse_model::api::RaftConfiguration> {
        for (_, c) in &self.cluster.servers {
            if let Ok(r) = self.cluster.raft_configuration(c).await {
                return Some(r);
            }
        }
        None
    }

    /// Waits until the raft configuration lists every server as a voter, one of them the
    /// leader (what a protocol-2 cluster offers instead of autopilot health).
    pub async fn wait_voters(&self, max: Duration) -> Result<(), LocalError> {
        let t0 = Instant::now();
        while t0.elapsed() < max {
            if let Some(r) = self.raft_configuration().await
                && r.servers.len() == self.opts.servers
                && r.servers.iter().all(|s| s.voter)
                && r.servers.iter().any(|s| s.leader)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.not_ready("not every server a voter", max))
    }

    /// Waits until autopilot reports healthy with failure tolerance ≥ `ft`.
    pub async fn wait_healthy(&self, ft: i64, max: Duration) -> Result<(), LocalError> {
        let t0 = Instant::now();
        while t0.elapsed() < max {
            if self
                .health()
                .await
                .is_some_and(|h| h.healthy && h.failure_tolerance >= ft)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(self.not_ready("not healthy", max))
    }

    fn not_ready(&self, what: &'static str, max: Duration) -> LocalError {
        LocalError::NotReady {
            dir: self.opts.dir.clone(),
            what,
            secs: max.as_secs(),
        }
    }

    /// Writes the plan next to the servers and returns its path.
    pub fn write_plan(&self) -> Result<PathBuf, LocalError> {
        let p = self.opts.dir.join("plan.toml");
        write(p.clone(), &self.plan_text)?;
        Ok(p)
    }

    /// With `tls`: the environment the `consul` CLI (and rehearse) reads to reach this cluster
    /// over mutual TLS: `CONSUL_CACERT`, `CONSUL_CLIENT_CERT`, `CONSUL_CLIENT_KEY`.
    pub fn tls_env(&self) -> Vec<(&'static str, PathBuf)> {
        let t = self.opts.dir.join("tls");
        vec![
            ("CONSUL_CACERT", t.join("consul-agent-ca.pem")),
            ("CONSUL_CLIENT_CERT", t.join("dc1-client-consul-0.pem")),
            ("CONSUL_CLIENT_KEY", t.join("dc1-client-consul-0-key.pem")),
        ]
    }

    /// The scratch directory.
    pub fn dir(&self) -> &Path {
        &self.opts.dir
    }
}

impl Drop for LocalConsul {
    fn drop(&mut self) {
        for name in self.names() {
            if let Some(pid) = self.pid(&name) {
                // SAFETY: kill(2) on a server process this cluster started.
                unsafe {
                    libc::kill(pid, libc::SIGCONT);
                    libc::kill(pid, libc::SIGKILL);
                }
                let t0 = Instant::now();
                while alive(pid) && t0.elapsed() < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        if self.opts.netns {
            teardown_netns(self.opts.base, self.opts.servers);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.opts.dir);
        }
    }
}
