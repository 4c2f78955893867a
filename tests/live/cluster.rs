//! A real Consul 1.8.7 cluster of local processes for the executor tests: started through the
//! plan's own `[execute.process]` templates, on 127.0.0.x addresses of its own, with ACLs on
//! (a master token) so a wrong token can be tested. Dropped (also when a test fails): every
//! server is killed and its data dir removed.

use rehearse::live::client::Client;
use rehearse::live::journal::{Journal, Record};
use rehearse::live::local::{self, LocalConsul, LocalOptions};
use rehearse::live::probe::{self, Probe, ProbeReport};
use rehearse::procedure::Action;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ACL master token of every test cluster.
pub const TOKEN: &str = "rehearse-test-master-5be7c1";

/// Consul's binaries: the fetched one, copied twice as the "old" and the "new" install.
fn consul_root() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let fetched = repo.join(".cache/consul/usr/bin/consul");
    if !fetched.exists() {
        let st = Command::new("bash")
            .arg(repo.join(".ci/fetch-consul"))
            .stdout(Stdio::null())
            .status()
            .expect("run .ci/fetch-consul");
        assert!(
            st.success(),
            ".ci/fetch-consul failed: Consul 1.8.7 is needed for these tests"
        );
    }
    let root = repo.join(".cache/consul");
    for side in ["rehearse-old", "rehearse-new"] {
        let dst = root.join(side).join("consul");
        if !dst.exists() {
            std::fs::create_dir_all(root.join(side)).unwrap();
            let tmp = root.join(side).join(format!(
                "consul.{}.{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::copy(&fetched, &tmp).unwrap();
            std::fs::rename(&tmp, &dst).unwrap();
        }
    }
    root
}

/// An HTTP client of one Consul server (`http://ADDR:8500`-style URL) sending `token`.
pub fn consul_client(url: &str, token: &str) -> Client {
    let mut conn =
        rehearse::live::client::Connection::new(rehearse_model::versions::Product::Consul);
    conn.token = rehearse::live::client::Secret::new(Some(token.into()));
    Client::new(url, &conn).unwrap()
}

/// A fresh scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rehearse-live-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The plan of a test cluster (see `LocalConsul`): the old binary → the new one, rev 1 → 2.
pub fn plan_text(dir: &Path, root: &Path, base: u8, n: usize) -> String {
    local::plan_text(&options(dir, root, base, n))
}

fn options(dir: &Path, root: &Path, base: u8, n: usize) -> LocalOptions {
    options_tls(dir, root, base, n, false)
}

fn options_tls(dir: &Path, root: &Path, base: u8, n: usize, tls: bool) -> LocalOptions {
    options_with(dir, root, base, n, tls, (3, 3))
}

fn options_with(
    dir: &Path,
    root: &Path,
    base: u8,
    n: usize,
    tls: bool,
    raft_protocol: (u8, u8),
) -> LocalOptions {
    LocalOptions {
        binary: root.join("rehearse-old/consul"),
        target_binary: Some(root.join("rehearse-new/consul")),
        base,
        servers: n,
        token: Some(TOKEN.to_string()),
        dir: dir.to_path_buf(),
        upgrade_extra: "[upgrade.gate]\nstable_for = \"5s\"\ntimeout = \"40s\"\npoll = \"500ms\""
            .into(),
        probe: true,
        netns: false,
        tls,
        raft_protocol,
    }
}

/// A command's exit code and its output.
pub struct Out {
    /// Exit code.
    pub code: Option<i32>,
    /// stdout alone.
    pub stdout: String,
    /// stdout then stderr.
    pub text: String,
}

/// The CLI environment a test sets itself (anything inherited is removed).
const CLI_ENV: [&str; 6] = [
    "NOMAD_TOKEN",
    "CONSUL_HTTP_TOKEN",
    "CONSUL_CACERT",
    "CONSUL_CLIENT_CERT",
    "CONSUL_CLIENT_KEY",
    "CONSUL_TLS_SERVER_NAME",
];

/// Runs the rehearse binary.
pub fn rehearse_cmd(args: &[&str], token: Option<&str>) -> Out {
    rehearse_cmd_env(args, token, &[])
}

/// Runs the rehearse binary with extra environment (TLS files…).
pub fn rehearse_cmd_env(args: &[&str], token: Option<&str>, env: &[(&str, PathBuf)]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rehearse"));
    cmd.args(args);
    for v in CLI_ENV {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_os_str())));
    if let Some(t) = token {
        cmd.env("CONSUL_HTTP_TOKEN", t);
    }
    let o = cmd.output().expect("run rehearse");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).to_string(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

/// Waits at most `max_s` for a child to exit, killing it at the bound; its exit code (`None`:
/// killed, or ended by a signal).
pub fn wait_bounded(child: &mut Child, max_s: u64) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if t0.elapsed() > Duration::from_secs(max_s) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) for a spawned rehearse; kills it at the bound.
pub fn wait_output(child: &mut Child, max_s: u64) -> Out {
    let code = wait_bounded(child, max_s);
    let mut text = String::new();
    use std::io::Read;
    if let Some(mut o) = child.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    let stdout = text.clone();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    Out { code, stdout, text }
}

/// Each gate counted only health observed after the restart: between a start and the next
/// stop, the restarted server answered itself, and the next stop came at least `stable_ms`
/// after that first answer.
pub fn assert_fresh_gates(records: &[Record], stable_ms: u64) {
    let mut restarted: Option<(String, u64)> = None;
    let mut first_answer: Option<u64> = None;
    for r in records {
        match r {
            Record::ActionBegin {
                action: Action::Start { server },
                at_ms,
            } => {
                restarted = Some((server.clone(), *at_ms));
                first_answer = None;
            }
            Record::Observation { obs } => {
                if let Some((s, at)) = &restarted {
                    let own = obs.view.agents.iter().find(|(n, _)| n == s);
                    let answered = own.is_some_and(|(_, a)| a.is_ok());
                    if answered && obs.now_ms > *at && first_answer.is_none() {
                        first_answer = Some(obs.now_ms);
                    }
                }
            }
            Record::ActionBegin {
                action: Action::Stop { server },
                at_ms,
            } => {
                if let Some((s, _)) = &restarted {
                    let first = first_answer.unwrap_or_else(|| {
                        panic!("{server} stopped before {s} answered after its restart")
                    });
                    assert!(
                        at_ms - first >= stable_ms,
                        "{server} stopped {} ms after {s} first answered (< {stable_ms})",
                        at_ms - first
                    );
                }
            }
            _ => {}
        }
    }
}

/// A running test cluster.
pub struct ConsulCluster {
    local: Option<LocalConsul>,
    /// Environment rehearse needs to reach it (TLS files when it serves TLS).
    pub env: Vec<(&'static str, PathBuf)>,
    plan_path: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl ConsulCluster {
    /// Starts `n` servers on 127.0.0.{base}… and waits until autopilot is healthy.
    pub fn start(name: &str, base: u8, n: usize) -> ConsulCluster {
        ConsulCluster::start_with(name, base, n, false)
    }

    /// Like `start`, with the API on mutual TLS only when `tls`.
    pub fn start_with(name: &str, base: u8, n: usize, tls: bool) -> ConsulCluster {
        ConsulCluster::start_opts(name, base, n, tls, (3, 3))
    }

    /// Like `start`, the servers on raft protocol `raft_protocol.0` (`-raft-protocol`) and the
    /// plan's target setting `raft_protocol.1`; under protocol 2 it waits until every server
    /// is a voter instead of for autopilot health.
    pub fn start_protocol(
        name: &str,
        base: u8,
        n: usize,
        raft_protocol: (u8, u8),
    ) -> ConsulCluster {
        ConsulCluster::start_opts(name, base, n, false, raft_protocol)
    }

    fn start_opts(
        name: &str,
        base: u8,
        n: usize,
        tls: bool,
        raft_protocol: (u8, u8),
    ) -> ConsulCluster {
        let root = consul_root();
        let dir = scratch(name);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let local = rt
            .block_on(LocalConsul::start(options_with(
                &dir,
                &root,
                base,
                n,
                tls,
                raft_protocol,
            )))
            .unwrap();
        let plan_path = local.write_plan().unwrap();
        let env = if tls { local.tls_env() } else { Vec::new() };
        ConsulCluster {
            local: Some(local),
            env,
            plan_path,
            rt,
        }
    }

    fn l(&self) -> &LocalConsul {
        self.local.as_ref().unwrap()
    }

    fn clients(&self) -> Vec<Client> {
        self.l()
            .cluster
            .servers
            .iter()
            .map(|(_, c)| c.clone())
            .collect()
    }

    /// Server names.
    pub fn names(&self) -> Vec<String> {
        self.l().names()
    }

    /// Starts one server on the old (or new) install.
    pub fn start_server(&self, name: &str, target: bool) {
        self.rt
            .block_on(self.l().start_server(name, target))
            .unwrap();
    }

    /// Waits (≤ 90 s) until autopilot reports healthy with at least `ft` failure tolerance.
    pub fn wait_healthy(&self, ft: i64) {
        self.rt
            .block_on(self.l().wait_healthy(ft, Duration::from_secs(90)))
            .unwrap();
    }

    /// The raft configuration as the first answering server reports it.
    pub fn raft_configuration(&self) -> Option<rehearse_model::api::RaftConfiguration> {
        self.rt.block_on(self.l().raft_configuration())
    }

    /// The current leader's name.
    pub fn leader(&self) -> String {
        self.rt.block_on(self.l().leader()).expect("a leader")
    }

    /// The journal path `execute` uses.
    pub fn journal(&self) -> PathBuf {
        self.l().dir().join("journal.jsonl")
    }

    fn stats_path(&self) -> PathBuf {
        self.l().dir().join("stats.json")
    }

    fn exec_args<'a>(&'a self, extra: &[&'a str]) -> Vec<String> {
        let mut v = vec!["execute".to_string()];
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push(self.plan_path.display().to_string());
        v.push("--journal".into());
        v.push(self.journal().display().to_string());
        v.push("--stats".into());
        v.push(self.stats_path().display().to_string());
        v
    }

    /// Runs `rehearse execute … plan` with the right token.
    pub fn execute(&self, extra: &[&str]) -> Out {
        self.execute_with_token(extra, TOKEN)
    }

    /// Runs `rehearse execute … plan` with the given token.
    pub fn execute_with_token(&self, extra: &[&str], token: &str) -> Out {
        let args = self.exec_args(extra);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        rehearse_cmd_env(&refs, Some(token), &self.env)
    }

    /// Starts `rehearse execute` in the background (output to pipes).
    pub fn spawn_execute(&self, extra: &[&str]) -> Child {
        self.execute_command(extra).spawn().expect("spawn rehearse")
    }

    /// The `rehearse execute … plan` command `spawn_execute` runs, for tests that adjust it.
    pub fn execute_command(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rehearse"));
        cmd.args(self.exec_args(extra))
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .env("CONSUL_HTTP_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Polls the journal (≤ 180 s) until `f` finds what it looks for.
    pub fn wait_for_journal<T>(&self, f: impl Fn(&[Record]) -> Option<T>) -> T {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(180) {
            if let Ok(r) = Journal::read(&self.journal())
                && let Some(v) = f(&r)
            {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("the journal never showed what the test waited for");
    }

    /// The node names in the raft configuration, read through the first server that answers
    /// it (`None`: none did).
    pub fn raft_nodes(&self) -> Option<Vec<String>> {
        let l = self.l();
        for (_, c) in &l.cluster.servers {
            let read = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), l.cluster.raft_configuration(c)).await
            });
            if let Ok(Ok(r)) = read {
                return Some(r.servers.iter().map(|s| s.node.to_string()).collect());
            }
        }
        None
    }

    /// SIGKILL one server.
    pub fn kill(&self, name: &str) {
        self.l().kill(name);
    }

    /// SIGSTOP one server.
    pub fn pause(&self, name: &str) {
        self.l().pause(name);
    }

    /// SIGCONT one server.
    pub fn resume(&self, name: &str) {
        self.l().resume(name);
    }

    /// How many times a server's agent started (from its log).
    pub fn agent_starts(&self, name: &str) -> usize {
        let log = std::fs::read_to_string(self.l().server_dir(name).join("consul.log"))
            .unwrap_or_default();
        log.matches("Consul agent running!").count()
    }

    /// Every server runs the new binary with the new config (read through the API and /proc).
    pub fn assert_all_on_target(&self) {
        for (name, c) in &self.l().cluster.servers {
            let me = self
                .rt
                .block_on(c.get("/v1/agent/self"))
                .expect("agent/self")
                .body;
            assert_eq!(
                me["Meta"]["rehearse_rev"], "2",
                "{name} runs the new config"
            );
            let pid = self.l().pid(name).unwrap();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
            assert!(
                exe.ends_with("rehearse-new/consul"),
                "{name} runs {}",
                exe.display()
            );
        }
    }

    /// Each gate counted only health observed after the restart (see the test).
    pub fn assert_fresh_gates(&self, records: &[Record]) {
        assert_fresh_gates(records, 5_000);
    }

    /// Starts the KV write probe.
    pub fn start_probe(&self) -> Probe {
        let _g = self.rt.enter();
        Probe::start(self.clients(), 50, "test")
    }

    /// Stops the probe; returns the attempts and the read-back report.
    pub fn stop_probe(&self, p: Probe) -> (usize, ProbeReport) {
        let (run, attempts) = p.stop();
        let report = self
            .rt
            .block_on(probe::verify(&self.clients(), &run, &attempts))
            .expect("read the probe keys back");
        (attempts.len(), report)
    }

    /// `stats.total_ms` of the last execute.
    pub fn stats_total_ms(&self) -> u64 {
        let s: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.stats_path()).unwrap()).unwrap();
        s["stats"]["total_ms"].as_u64().unwrap_or(0)
    }
}

impl Drop for ConsulCluster {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(l) = &self.local
        {
            eprintln!("kept {} for inspection", l.dir().display());
        }
        // LocalConsul's drop kills every server (and removes the dir unless panicking).
        self.local.take();
    }
}
