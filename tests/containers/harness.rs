//! Real servers in locally built containers, driven by the executor in-process.
//!
//! Layout of one test cluster (everything labelled `rehearse.test=<label>`):
//! - a user-defined bridge network with a subnet of its own (`172.28.k.0/24`);
//! - per server a *sandbox*: a tiny container (`/bin/pause` of the `rehearse-consul` image)
//!   with a fixed IP on that network and the server's HTTP port published on
//!   `127.0.0.1:<port>`. It plays the host: it keeps the IP and the port while the server
//!   container on it is stopped, replaced or killed, so the servers' retry-join and raft
//!   addresses, and the executor's HTTP addresses, stay valid. (testcontainers cannot give a
//!   container a fixed IP; the sandbox is created with the docker CLI, as are the network and
//!   the volumes.) A partition is the sandbox disconnected from the network;
//! - per server a named volume mounted at the data dir, kept across replacement;
//! - per server the server container itself, created by testcontainers in the sandbox's
//!   network namespace (`network_mode = container:<sandbox>`), from the old or the new image.
//!
//! The executor reaches each server through the published port on 127.0.0.1 only: the tests
//! never send traffic from the host to a container address. The port is fixed per sandbox and
//! survives server restarts and network disconnect/reconnect (checked by the partition test).
//!
//! testcontainers runs a wait strategy only when it creates a container; after a restart of
//! the same container (`docker start`), [`TcControl`] re-checks readiness itself by waiting for
//! a new ready line in the container's log.
//!
//! Cleanup: testcontainers removes the server containers it created when their handles drop;
//! [`ContainerCluster`]'s `Drop` (which also runs when a test panics) drops them and then
//! removes everything labelled with the test's label: containers (`docker rm -f`), the network
//! and the volumes. A test process killed outright leaves its resources behind; the next run
//! removes those whose owning process is gone (`rehearse.pid`).

use rehearse::live::client::{Client, Connection};
use rehearse::live::control::{ControlError, ServerControl, Side};
use rehearse::live::executor::{ExecError, ExecOptions, ExecOutcome, ExecStats, execute_with};
use rehearse::live::journal::{Journal, Record};
use rehearse::live::probe::{self, Probe, ProbeReport};
use rehearse::plan::Plan;
use rehearse_model::versions::Product;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant};
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

/// The image whose `/bin/pause` runs the sandboxes (built by `.ci/build-images`).
const SANDBOX_IMAGE: &str = "rehearse-consul:old";
/// Label every resource of this suite carries.
const SUITE: &str = "rehearse.suite=containers";
/// Bound on creating or restarting one server container (its wait strategy included).
const STARTUP_S: u64 = 40;

/// One runtime for every container test: testcontainers shares one Docker client per process,
/// whose connections belong to the runtime that opened them, so per-test runtimes would leave
/// it with connections of a runtime already gone.
pub fn rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Runs `docker args…`; Ok(stdout) or Err(stderr).
pub fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run docker: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(format!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Builds (or finds cached) `rehearse-consul:old` and `:new` once per test process.
pub fn ensure_images() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/build-images");
        let st = Command::new("bash")
            .arg(script)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("run .ci/build-images");
        assert!(
            st.success(),
            ".ci/build-images failed: the container tests need Docker and the local images"
        );
        sweep_stale();
    });
}

/// Removes resources of this suite left by test processes that no longer exist.
fn sweep_stale() {
    let dead = |line: &str| -> Option<String> {
        let (id, pid) = line.split_once(' ')?;
        let pid: i32 = pid.trim().parse().ok()?;
        // SAFETY: kill with signal 0 only checks whether the process exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        (!alive).then(|| id.to_string())
    };
    let filter = format!("label={SUITE}");
    let fmt_pid = "{{.ID}} {{.Label \"rehearse.pid\"}}";
    if let Ok(out) = docker(&["ps", "-a", "--filter", &filter, "--format", fmt_pid]) {
        for id in out.lines().filter_map(dead) {
            let _ = docker(&["rm", "-f", &id]);
        }
    }
    if let Ok(out) = docker(&["network", "ls", "--filter", &filter, "--format", fmt_pid]) {
        for id in out.lines().filter_map(dead) {
            let _ = docker(&["network", "rm", &id]);
        }
    }
    let fmt_vol = "{{.Name}} {{.Label \"rehearse.pid\"}}";
    if let Ok(out) = docker(&["volume", "ls", "--filter", &filter, "--format", fmt_vol]) {
        for id in out.lines().filter_map(dead) {
            let _ = docker(&["volume", "rm", "-f", &id]);
        }
    }
}

/// What differs between products: images, versions, ports, arguments.
#[derive(Clone)]
pub struct Spec {
    /// Nomad or Consul.
    pub product: Product,
    /// `repo:tag` of the old and the new image.
    pub images: [String; 2],
    /// The versions they run (the plan's cluster.version and upgrade.target).
    pub versions: [String; 2],
    /// The HTTP API port inside the container.
    pub http_port: u16,
    /// A line the server prints on stdout once it runs (the wait strategy).
    pub ready_log: &'static str,
    /// Entrypoint override (the image's own when `None`).
    pub entrypoint: Option<&'static str>,
    /// Arguments of the server: (name, own IP, every server's IP).
    pub args: fn(&str, &str, &[String]) -> Vec<String>,
    /// Where the volume is mounted.
    pub data_dir: &'static str,
}

impl Spec {
    /// Consul 1.8.7 from the locally built images; the new one bakes in node_meta rev 2.
    pub fn consul() -> Spec {
        Spec {
            product: Product::Consul,
            images: ["rehearse-consul:old".into(), "rehearse-consul:new".into()],
            versions: ["1.8.7".into(), "1.8.7".into()],
            http_port: 8500,
            ready_log: "Consul agent running!",
            entrypoint: None,
            args: |name, ip, ips| {
                let mut a: Vec<String> = [
                    "agent",
                    "-server",
                    "-data-dir=/data",
                    "-config-dir=/etc/consul.d",
                    "-client=0.0.0.0",
                    "-log-level=info",
                ]
                .map(String::from)
                .to_vec();
                a.push(format!("-bootstrap-expect={}", ips.len()));
                a.push(format!("-node={name}"));
                a.push(format!("-bind={ip}"));
                a.extend(ips.iter().map(|i| format!("-retry-join={i}")));
                a
            },
            data_dir: "/data",
        }
    }

    /// Nomad from two `hashicorp/nomad` images (tags are the versions).
    pub fn nomad(old: &str, new: &str) -> Spec {
        let tag = |i: &str| i.rsplit_once(':').map_or("", |(_, t)| t).to_string();
        Spec {
            product: Product::Nomad,
            images: [old.into(), new.into()],
            versions: [tag(old), tag(new)],
            http_port: 4646,
            ready_log: "Nomad agent started!",
            entrypoint: Some("/bin/nomad"),
            args: |name, ip, ips| {
                let mut a: Vec<String> = ["agent", "-server", "-data-dir=/data"]
                    .map(String::from)
                    .to_vec();
                a.push(format!("-bootstrap-expect={}", ips.len()));
                a.push(format!("-node={name}"));
                a.push(format!("-bind={ip}"));
                a.extend(ips.iter().map(|i| format!("-retry-join={i}")));
                a
            },
            data_dir: "/data",
        }
    }
}

/// One server's fixed surroundings: its sandbox (IP, port) and its volume.
#[derive(Debug, Clone)]
pub struct Node {
    /// IP on the test network.
    pub ip: String,
    /// Published HTTP port on 127.0.0.1.
    pub port: u16,
    /// Sandbox container name.
    pub sandbox: String,
    /// Volume name.
    pub volume: String,
}

struct Slot {
    container: ContainerAsync<GenericImage>,
    side: Side,
}

/// The container node control: a `ServerControl` on testcontainers. Stop = `docker stop`
/// (SIGTERM, on which neither a Consul nor a Nomad server leaves the cluster by default; SIGKILL
/// after the plan's stop_timeout; the plan's stop_signal is not used: the Docker API this
/// machine speaks, 1.41, has no signal for stop); install of the other side = remove the
/// stopped container; start = a new container from that side's image on the same volume and
/// sandbox (or `docker start` of the existing one, readiness re-checked).
pub struct TcControl {
    spec: Spec,
    label: String,
    nodes: BTreeMap<String, Node>,
    slots: tokio::sync::Mutex<BTreeMap<String, Slot>>,
    stop_timeout_s: i32,
    /// Every container creation and restart: (server, "create old|new" / "restart").
    pub events: Mutex<Vec<(String, String)>>,
}

fn side_index(side: Side) -> usize {
    match side {
        Side::Current => 0,
        Side::Target => 1,
    }
}

impl TcControl {
    fn node(&self, server: &str) -> Result<&Node, String> {
        self.nodes
            .get(server)
            .ok_or_else(|| format!("unknown server {server}"))
    }

    fn event(&self, server: &str, what: String) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((server.to_string(), what));
    }

    async fn create(&self, server: &str, side: Side) -> Result<Slot, String> {
        let node = self.node(server)?;
        let image = &self.spec.images[side_index(side)];
        let (repo, tag) = image
            .rsplit_once(':')
            .ok_or_else(|| format!("image {image} has no tag"))?;
        let mut img = GenericImage::new(repo, tag)
            .with_wait_for(WaitFor::message_on_stdout(self.spec.ready_log));
        if let Some(ep) = self.spec.entrypoint {
            img = img.with_entrypoint(ep);
        }
        let ips: Vec<String> = self.nodes.values().map(|n| n.ip.clone()).collect();
        let sandbox = node.sandbox.clone();
        let n = self.events.lock().unwrap_or_else(|p| p.into_inner()).len();
        let container = img
            .with_cmd((self.spec.args)(server, &node.ip, &ips))
            .with_mount(Mount::volume_mount(&node.volume, self.spec.data_dir))
            .with_label("rehearse.suite", "containers")
            .with_label("rehearse.test", &self.label)
            .with_label("rehearse.pid", std::process::id().to_string())
            .with_container_name(format!("{}-{server}-{n}", self.label))
            .with_startup_timeout(Duration::from_secs(STARTUP_S))
            .with_host_config_modifier(move |hc| {
                // Join the sandbox's network namespace: its IP and published port. Docker
                // refuses port publishing and extra hosts in this mode.
                hc.network_mode = Some(format!("container:{sandbox}"));
                hc.publish_all_ports = Some(false);
                hc.port_bindings = None;
                hc.extra_hosts = None;
            })
            .start()
            .await
            .map_err(|e| format!("cannot start {server} from {image}: {e}"))?;
        let what = if side == Side::Current { "old" } else { "new" };
        self.event(server, format!("create {what}"));
        Ok(Slot { container, side })
    }

    /// `docker start` of an existing container, then the wait strategy again by hand: a new
    /// ready line in its log, within STARTUP_S, while it keeps running.
    async fn restart(&self, server: &str, slot: &Slot) -> Result<(), String> {
        let c = &slot.container;
        let count = |log: Vec<u8>| {
            String::from_utf8_lossy(&log)
                .matches(self.spec.ready_log)
                .count()
        };
        let before = count(c.stdout_to_vec().await.unwrap_or_default());
        c.start()
            .await
            .map_err(|e| format!("cannot restart {server}: {e}"))?;
        self.event(server, "restart".into());
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(STARTUP_S) {
            if count(c.stdout_to_vec().await.unwrap_or_default()) > before {
                return Ok(());
            }
            if !c.is_running().await.unwrap_or(false) {
                return Err(format!("{server} exited right after its restart"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!(
            "{server} did not print {:?} within {STARTUP_S} s of its restart",
            self.spec.ready_log
        ))
    }

    /// The side a server's container runs, if it has one.
    pub async fn side_of(&self, server: &str) -> Option<Side> {
        self.slots.lock().await.get(server).map(|s| s.side)
    }

    /// The container id of a server.
    pub async fn id_of(&self, server: &str) -> Result<String, String> {
        let slots = self.slots.lock().await;
        let s = slots
            .get(server)
            .ok_or_else(|| format!("{server} has no container"))?;
        Ok(s.container.id().to_string())
    }

    /// `docker pause`.
    pub async fn pause(&self, server: &str) -> Result<(), String> {
        let slots = self.slots.lock().await;
        let s = slots.get(server).ok_or("no container")?;
        s.container.pause().await.map_err(|e| e.to_string())
    }

    /// `docker unpause`.
    pub async fn unpause(&self, server: &str) -> Result<(), String> {
        let slots = self.slots.lock().await;
        let s = slots.get(server).ok_or("no container")?;
        s.container.unpause().await.map_err(|e| e.to_string())
    }

    /// `docker kill` (SIGKILL), waiting (≤ 10 s) until the container has stopped.
    pub async fn kill(&self, server: &str) -> Result<(), String> {
        let id = self.id_of(server).await?;
        docker(&["kill", &id])?;
        let t0 = Instant::now();
        while self
            .is_running(server, Side::Current)
            .await
            .map_err(|e| e.to_string())?
        {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err(format!("{server} still runs 10 s after docker kill"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Drops every container handle (testcontainers removes the containers).
    fn drop_all(&self) {
        let slots = std::mem::take(&mut *self.slots.blocking_lock());
        let _g = rt().enter();
        drop(slots);
    }
}

impl ServerControl for TcControl {
    async fn is_running(&self, server: &str, _side: Side) -> Result<bool, ControlError> {
        let slots = self.slots.lock().await;
        match slots.get(server) {
            Some(s) => s.container.is_running().await.map_err(backend),
            None => Ok(false),
        }
    }

    async fn stop(&self, server: &str, _side: Side) -> Result<(), ControlError> {
        let slots = self.slots.lock().await;
        let Some(s) = slots.get(server) else {
            return Ok(());
        };
        if !s.container.is_running().await.map_err(backend)? {
            return Ok(());
        }
        s.container
            .stop_with_timeout(Some(self.stop_timeout_s))
            .await
            .map_err(|e| backend(format!("cannot stop {server}: {e}")))
    }

    async fn install(&self, server: &str, side: Side) -> Result<(), ControlError> {
        let mut slots = self.slots.lock().await;
        let Some(s) = slots.get(server) else {
            return Ok(());
        };
        if s.side == side {
            return Ok(());
        }
        if s.container.is_running().await.map_err(backend)? {
            return Err(backend(format!(
                "{server} still runs: it cannot be replaced"
            )));
        }
        // Replacement: the stopped container goes; the volume stays for the next one.
        if let Some(old) = slots.remove(server) {
            old.container
                .rm()
                .await
                .map_err(|e| backend(format!("cannot remove {server}'s old container: {e}")))?;
        }
        Ok(())
    }

    async fn start(&self, server: &str, side: Side) -> Result<(), ControlError> {
        let mut slots = self.slots.lock().await;
        if let Some(s) = slots.get(server) {
            if s.container.is_running().await.map_err(backend)? {
                return Ok(());
            }
            if s.side == side {
                return Ok(self.restart(server, s).await?);
            }
            if let Some(old) = slots.remove(server) {
                old.container.rm().await.map_err(backend)?;
            }
        }
        let slot = self.create(server, side).await?;
        slots.insert(server.to_string(), slot);
        Ok(())
    }

    async fn upgrade_clients(&self) -> Result<Option<String>, ControlError> {
        Ok(None)
    }
}

/// A testcontainers failure as the executor sees it.
fn backend(e: impl ToString) -> ControlError {
    ControlError::Backend(e.to_string())
}

/// A chaos action through Docker.
#[derive(Debug, Clone)]
pub enum Chaos {
    /// `docker pause` a server.
    Pause(String),
    /// `docker kill` a server.
    Kill(String),
    /// `docker network disconnect` a server's sandbox (a full partition).
    Disconnect(String),
}

/// A running test cluster in containers.
pub struct ContainerCluster {
    /// Label of every resource of this cluster.
    pub label: String,
    net: String,
    /// Server name → surroundings.
    pub nodes: BTreeMap<String, Node>,
    dir: PathBuf,
    /// The plan (control = "container").
    pub plan: Plan,
    plan_text: String,
    /// The node control the executor drives.
    pub control: TcControl,
    clients: Vec<Client>,
    spec: Spec,
}

/// The label a cluster of this name gets in this process.
pub fn label_for(name: &str) -> String {
    format!("rehearse-ct-{name}-{}", std::process::id())
}

fn plan_text(spec: &Spec, nodes: &BTreeMap<String, Node>) -> String {
    let servers: Vec<String> = nodes
        .iter()
        .map(|(n, node)| {
            format!(
                "{{ name = \"{n}\", address = \"http://127.0.0.1:{}\" }}",
                node.port
            )
        })
        .collect();
    let product = match spec.product {
        Product::Consul => "consul",
        Product::Nomad => "nomad",
    };
    format!(
        r#"[cluster]
product = "{product}"
version = "{v0}"
raft_protocol = 3
servers = [{servers}]

[upgrade]
target = "{v1}"
allow_zero_tolerance = true

[upgrade.gate]
stable_for = "5s"
timeout = "30s"
poll = "500ms"

[execute]
control = "container"
stop_timeout = "30s"
probe = true

[execute.current]
vars = {{ image = "{i0}" }}

[execute.target]
vars = {{ image = "{i1}" }}
"#,
        v0 = spec.versions[0],
        v1 = spec.versions[1],
        servers = servers.join(", "),
        i0 = spec.images[0],
        i1 = spec.images[1],
    )
}

impl ContainerCluster {
    /// Creates the network, sandboxes and volumes, starts `n` servers on the old image and
    /// waits until autopilot is healthy. `k` picks the subnet and ports (distinct per test).
    pub fn start(name: &str, k: u8, n: usize, spec: Spec) -> ContainerCluster {
        ensure_images();
        let label = label_for(name);
        let (net, nodes) = (0..6u8)
            .find_map(|attempt| {
                let kk = k as u16 + 16 * attempt as u16;
                match create_surroundings(&label, kk, n, spec.http_port) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        eprintln!("{label}: subnet/ports {kk} unusable ({e}); trying another");
                        remove_by_label(&label);
                        None
                    }
                }
            })
            .expect("no free subnet and ports for the test network");
        let dir = std::env::temp_dir().join(&label);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let text = plan_text(&spec, &nodes);
        std::fs::write(dir.join("plan.toml"), &text).unwrap();
        let plan = Plan::from_str_named(&text, "container test plan").unwrap();
        let conn = Connection::new(spec.product);
        let clients = nodes
            .values()
            .map(|node| Client::new(&format!("http://127.0.0.1:{}", node.port), &conn).unwrap())
            .collect();
        let control = TcControl {
            spec: spec.clone(),
            label: label.clone(),
            nodes: nodes.clone(),
            slots: tokio::sync::Mutex::new(BTreeMap::new()),
            stop_timeout_s: plan
                .execute
                .as_ref()
                .map_or(30, |x| (x.stop_timeout / 1_000_000_000) as i32),
            events: Mutex::new(Vec::new()),
        };
        let c = ContainerCluster {
            label,
            net,
            nodes,
            dir,
            plan,
            plan_text: text,
            control,
            clients,
            spec,
        };
        // From here on, Drop cleans up whatever happens.
        rt().block_on(async {
            for s in c.names() {
                c.control.start(&s, Side::Current).await.unwrap();
            }
        });
        c.wait_healthy(1, Duration::from_secs(120));
        c
    }

    /// Server names.
    pub fn names(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    fn get(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        rt().block_on(self.clients[i].get(path))
            .ok()
            .map(|a| a.body)
    }

    /// Waits (at most `bound`) until autopilot reports healthy with at least `ft` failure
    /// tolerance; returns how long that took. On timeout it prints what each server reports
    /// (autopilot health, raft configuration, serf members) and the tail of each server's log,
    /// then panics: a failure in CI must be diagnosable from its output alone.
    pub fn wait_healthy(&self, ft: i64, bound: Duration) -> Duration {
        if let Some(took) = self.try_wait_healthy(ft, bound) {
            return took;
        }
        self.print_diagnostics();
        panic!(
            "{}: cluster not healthy within {} s",
            self.label,
            bound.as_secs()
        );
    }

    /// How long until autopilot reports healthy with at least `ft` failure tolerance, or None
    /// after `bound`.
    pub fn try_wait_healthy(&self, ft: i64, bound: Duration) -> Option<Duration> {
        let t0 = Instant::now();
        while t0.elapsed() < bound {
            for i in 0..self.nodes.len() {
                if let Some(h) = self.get(i, "/v1/operator/autopilot/health") {
                    let healthy = h["Healthy"].as_bool() == Some(true);
                    if healthy && h["FailureTolerance"].as_i64().unwrap_or(-1) >= ft {
                        return Some(t0.elapsed());
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        None
    }

    /// After a partition heals, as an operator would: wait for gossip to bring the isolated
    /// server back (at most `first`), and if it has not, ask every server to join the others
    /// (`PUT /v1/agent/join/<ip>`; a server the leader force-left while it was cut off stays
    /// "leaving" in serf until it joins again) and wait again (at most `then`). Returns the
    /// whole wait.
    pub fn wait_healthy_after_heal(&self, ft: i64, first: Duration, then: Duration) -> Duration {
        let t0 = Instant::now();
        if self.try_wait_healthy(ft, first).is_some() {
            return t0.elapsed();
        }
        println!(
            "not healthy {} s after the heal: joining every server to the others",
            first.as_secs()
        );
        let ips: Vec<String> = self.nodes.values().map(|n| n.ip.clone()).collect();
        for (i, _) in self.nodes.iter().enumerate() {
            for ip in &ips {
                let path = format!("/v1/agent/join/{ip}");
                let r = rt().block_on(self.clients[i].send(reqwest::Method::PUT, &path, None));
                println!(
                    "  server {i} join {ip}: {}",
                    if r.is_ok() { "ok" } else { "failed" }
                );
            }
        }
        self.wait_healthy(ft, then);
        t0.elapsed()
    }

    /// Prints every server's view and log tail (for a failing test's output).
    pub fn print_diagnostics(&self) {
        for (i, name) in self.names().iter().enumerate() {
            println!("--- {name}: what it reports");
            for path in [
                "/v1/operator/autopilot/health",
                "/v1/operator/raft/configuration",
                "/v1/agent/members",
            ] {
                match self.get(i, path) {
                    Some(v) => println!("{path}: {v}"),
                    None => println!("{path}: no answer"),
                }
            }
            match rt().block_on(self.control.id_of(name)) {
                Ok(id) => {
                    let state = docker(&["inspect", "--format", "{{.State.Status}}", &id]);
                    println!("container {id}: {state:?}");
                    match docker(&["logs", "--tail", "40", &id]) {
                        Ok(log) => println!("--- {name}: last log lines\n{log}"),
                        Err(e) => println!("--- {name}: no log: {e}"),
                    }
                }
                Err(e) => println!("{name}: {e}"),
            }
        }
    }

    /// The current leader's name (by its raft IP).
    pub fn leader(&self) -> String {
        for i in 0..self.nodes.len() {
            if let Some(l) = self.get(i, "/v1/status/leader") {
                let addr = l.as_str().unwrap_or("");
                let ip = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                if let Some((n, _)) = self.nodes.iter().find(|(_, node)| node.ip == ip) {
                    return n.clone();
                }
            }
        }
        panic!("no leader");
    }

    /// The journal the executor writes.
    pub fn journal(&self) -> PathBuf {
        self.dir.join("journal.jsonl")
    }

    /// The journal's records.
    pub fn records(&self) -> Vec<Record> {
        Journal::read(&self.journal()).unwrap()
    }

    fn opts(&self) -> ExecOptions {
        ExecOptions {
            apply: true,
            journal: self.journal(),
            snapshot_dir: self.dir.clone(),
            addr: self.clients[0].base.clone(),
            conn: Connection::new(self.spec.product),
        }
    }

    /// `execute --apply`, in-process, with this cluster's container control.
    pub fn execute(&self) -> Result<(ExecOutcome, ExecStats), ExecError> {
        let findings = rehearse::plan::lint::lint(&self.plan);
        assert!(
            !findings
                .iter()
                .any(|f| f.severity == rehearse::plan::lint::Severity::Error),
            "lint errors: {findings:?}"
        );
        let opts = self.opts();
        rt().block_on(execute_with(
            &self.plan,
            &self.plan_text,
            &opts,
            Some(&self.control),
        ))
    }

    /// `execute --apply` while watching the journal: the first time `when` returns a chaos
    /// action, it is carried out (through Docker) and the run goes on. Returns the run's result
    /// and the chaos carried out, if any.
    pub fn execute_with_chaos(
        &self,
        when: impl Fn(&[Record]) -> Option<Chaos>,
    ) -> (Result<(ExecOutcome, ExecStats), ExecError>, Option<Chaos>) {
        let opts = self.opts();
        rt().block_on(async {
            let exec = execute_with(&self.plan, &self.plan_text, &opts, Some(&self.control));
            let watch = async {
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(240) {
                    if let Ok(r) = Journal::read(&self.journal())
                        && let Some(c) = when(&r)
                    {
                        println!("chaos: {c:?}");
                        self.inject(&c).await;
                        return c;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                panic!("the journal never showed what the chaos waited for");
            };
            tokio::pin!(exec);
            tokio::pin!(watch);
            tokio::select! {
                out = &mut exec => (out, None),
                c = &mut watch => (exec.await, Some(c)),
            }
        })
    }

    /// `execute --apply`, dropped (as if rehearse were killed) the moment `when` holds for the
    /// journal. Returns whether it was dropped before it finished.
    pub fn execute_cancelled_when(&self, when: impl Fn(&[Record]) -> bool) -> bool {
        let opts = self.opts();
        rt().block_on(async {
            let exec = execute_with(&self.plan, &self.plan_text, &opts, Some(&self.control));
            let watch = async {
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_secs(240) {
                    if Journal::read(&self.journal()).is_ok_and(|r| when(&r)) {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("the journal never showed what the test waited for");
            };
            tokio::select! {
                _ = exec => false,
                _ = watch => true,
            }
        })
    }

    async fn inject(&self, c: &Chaos) {
        match c {
            Chaos::Pause(s) => self.control.pause(s).await.unwrap(),
            Chaos::Kill(s) => self.control.kill(s).await.unwrap(),
            Chaos::Disconnect(s) => {
                docker(&["network", "disconnect", &self.net, &self.nodes[s].sandbox]).unwrap();
            }
        }
    }

    /// Undoes a chaos action: unpause, restart (readiness re-checked), or reconnect the sandbox
    /// with its own IP.
    pub fn heal(&self, c: &Chaos) {
        match c {
            Chaos::Pause(s) => rt().block_on(self.control.unpause(s)).unwrap(),
            Chaos::Kill(s) => {
                let side = rt()
                    .block_on(self.control.side_of(s))
                    .unwrap_or(Side::Current);
                rt().block_on(self.control.start(s, side)).unwrap();
            }
            Chaos::Disconnect(s) => {
                let node = &self.nodes[s];
                docker(&[
                    "network",
                    "connect",
                    "--ip",
                    &node.ip,
                    &self.net,
                    &node.sandbox,
                ])
                .unwrap();
            }
        }
    }

    /// Every server's container runs the new image, and the server reports the target version
    /// (Consul: and the new image's baked-in node_meta rev 2).
    pub fn assert_all_on_target(&self) {
        for (i, name) in self.names().iter().enumerate() {
            let side = rt().block_on(self.control.side_of(name));
            assert_eq!(side, Some(Side::Target), "{name}'s container side");
            let id = rt().block_on(self.control.id_of(name)).unwrap();
            let image = docker(&["inspect", "--format", "{{.Config.Image}}", &id]).unwrap();
            assert_eq!(image, self.spec.images[1], "{name} runs {image}");
            let running = docker(&["inspect", "--format", "{{.State.Running}}", &id]).unwrap();
            assert_eq!(running, "true", "{name} runs");
            let me = self.get(i, "/v1/agent/self").expect("agent/self");
            if self.spec.product == Product::Consul {
                assert_eq!(me["Config"]["Version"], self.spec.versions[1].as_str());
                assert_eq!(
                    me["Meta"]["rehearse_rev"], "2",
                    "{name} runs the new image's config"
                );
            } else {
                let v = me["config"]["Version"]["Version"]
                    .as_str()
                    .unwrap_or_default();
                assert_eq!(v, self.spec.versions[1], "{name}'s Nomad version");
            }
        }
    }

    /// Each Consul server's node ID (kept in its data dir, so it survives a replacement only
    /// when the new container gets the old one's volume).
    pub fn node_ids(&self) -> Vec<String> {
        (0..self.nodes.len())
            .map(|i| {
                let me = self.get(i, "/v1/agent/self").expect("agent/self");
                me["Config"]["NodeID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// Starts the KV write probe (Consul).
    pub fn start_probe(&self) -> Probe {
        let _g = rt().enter();
        Probe::start(self.clients.clone(), 50, "test")
    }

    /// Stops the probe; returns the attempts and the read-back report.
    pub fn stop_probe(&self, p: Probe) -> (usize, ProbeReport) {
        let (run, attempts) = p.stop();
        let report = rt()
            .block_on(probe::verify(&self.clients, &run, &attempts))
            .expect("read the probe keys back");
        (attempts.len(), report)
    }

    /// Container creations and restarts of one server, in order.
    pub fn events_of(&self, server: &str) -> Vec<String> {
        self.control
            .events
            .lock()
            .unwrap()
            .iter()
            .filter(|(s, _)| s == server)
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// Creates the network `<label>-net` on 172.28.k.0/24 (k modulo 256), a volume and a sandbox
/// per server. Returns the network name and the nodes.
fn create_surroundings(
    label: &str,
    k: u16,
    n: usize,
    http_port: u16,
) -> Result<(String, BTreeMap<String, Node>), String> {
    let pid = std::process::id().to_string();
    let labels = [
        "--label".to_string(),
        SUITE.to_string(),
        "--label".to_string(),
        format!("rehearse.test={label}"),
        "--label".to_string(),
        format!("rehearse.pid={pid}"),
    ];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let net = format!("{label}-net");
    let octet = k % 256;
    let subnet = format!("172.28.{octet}.0/24");
    let mut args = vec!["network", "create", "--subnet", &subnet];
    args.extend(&labels);
    args.push(&net);
    docker(&args)?;
    let mut nodes = BTreeMap::new();
    for i in 0..n {
        let name = format!("s{}", i + 1);
        let ip = format!("172.28.{octet}.{}", 11 + i);
        let port = 28_500 + 10 * k + i as u16;
        let volume = format!("{label}-{name}-data");
        let mut args = vec!["volume", "create"];
        args.extend(&labels);
        args.push(&volume);
        docker(&args)?;
        let sandbox = format!("{label}-{name}-host");
        let publish = format!("127.0.0.1:{port}:{http_port}");
        let mut args = vec![
            "run",
            "-d",
            "--name",
            &sandbox,
            "--network",
            &net,
            "--ip",
            &ip,
            "-p",
            &publish,
            "--entrypoint",
            "/bin/pause",
        ];
        args.extend(&labels);
        args.push(SANDBOX_IMAGE);
        docker(&args)?;
        nodes.insert(
            name,
            Node {
                ip,
                port,
                sandbox,
                volume,
            },
        );
    }
    Ok((net, nodes))
}

/// Removes every container, network and volume labelled with `label`.
pub fn remove_by_label(label: &str) {
    let filter = format!("label=rehearse.test={label}");
    if let Ok(ids) = docker(&["ps", "-aq", "--filter", &filter]) {
        for id in ids.lines() {
            let _ = docker(&["rm", "-f", "-v", id]);
        }
    }
    if let Ok(ids) = docker(&["network", "ls", "-q", "--filter", &filter]) {
        for id in ids.lines() {
            let _ = docker(&["network", "rm", id]);
        }
    }
    if let Ok(ids) = docker(&["volume", "ls", "-q", "--filter", &filter]) {
        for id in ids.lines() {
            let _ = docker(&["volume", "rm", "-f", id]);
        }
    }
}

/// What is left with `label`: (containers, networks, volumes).
pub fn leftovers(label: &str) -> (usize, usize, usize) {
    let filter = format!("label=rehearse.test={label}");
    let count = |args: &[&str]| {
        docker(args)
            .map(|o| o.lines().filter(|l| !l.is_empty()).count())
            .unwrap_or(usize::MAX)
    };
    (
        count(&["ps", "-aq", "--filter", &filter]),
        count(&["network", "ls", "-q", "--filter", &filter]),
        count(&["volume", "ls", "-q", "--filter", &filter]),
    )
}

impl Drop for ContainerCluster {
    fn drop(&mut self) {
        self.control.drop_all();
        remove_by_label(&self.label);
        let left = leftovers(&self.label);
        if left != (0, 0, 0) {
            eprintln!(
                "{}: left behind (containers, networks, volumes) = {left:?}",
                self.label
            );
        }
        if std::thread::panicking() {
            eprintln!("kept {} for inspection", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
