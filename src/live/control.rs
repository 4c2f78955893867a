//! Node control: stopping, installing and starting the real servers.
//!
//! Two backends, chosen per plan (`[execute]`): `process` (rehearse starts the server command
//! itself, keeps its pid in a pid file, stops it with a chosen signal and escalates to SIGKILL
//! after `stop_timeout`, as systemd does) and `command` (shell templates such as ssh + systemctl).
//! Both answer "is it running?", which makes every action idempotent: a run resumed from its
//! journal never stops or starts a server twice.
//!
//! The executor drives any backend through [`ServerControl`]; a program that embeds rehearse can
//! bring its own (the container tests drive testcontainers in-process this way, see
//! `tests/containers/`).

use crate::plan::signal::signal_number;
use crate::plan::{ControlKind, Execute, Install, Plan};
use rehearse_model::versions::Version;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Which installation a server runs (or will run at its next start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// `[execute.current]`.
    Current,
    /// `[execute.target]`.
    Target,
}

/// Why `NodeControl` cannot act on a `control = "container"` plan.
pub const CONTAINER_IN_PROCESS: &str = "execute.control = \"container\" is rehearse's in-process container backend (a program that embeds rehearse, such as its testcontainers tests, brings the control); `rehearse execute --apply` cannot drive it. On your own Docker hosts use control = \"command\" with docker CLI templates (see README: Containers)";

/// Why a node-control backend could not stop, install or start a server.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// A `control = "container"` plan outside a program that brings its own control.
    #[error("{}", CONTAINER_IN_PROCESS)]
    ContainerInProcess,
    /// The plan lacks the section its `control` kind needs (`execute.command`, `execute.process`).
    #[error("{0} is missing")]
    MissingSection(&'static str),
    /// `[execute.process]` without a `pid_file`.
    #[error("no pid_file")]
    NoPidFile,
    /// The stop command returned but `status` still says running after `stop_timeout`.
    #[error("{server} still running {waited_ms} ms after the stop command")]
    StillRunning {
        /// The server.
        server: String,
        /// How long rehearse polled `status` (ms).
        waited_ms: u64,
    },
    /// A directory for a pid or log file could not be made.
    #[error("cannot create {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A server's log file could not be opened (or its handle duplicated for stderr).
    #[error("cannot open {}: {source}", path.display())]
    OpenLog {
        /// The log file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server process could not be started.
    #[error("cannot start {server}: {program}: {source}")]
    Spawn {
        /// The server.
        server: String,
        /// `argv[0]`.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The pid file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WritePid {
        /// The pid file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// kill(2) failed.
    #[error("cannot signal pid {pid}: {source}")]
    Signal {
        /// The process.
        pid: i32,
        /// Why.
        source: std::io::Error,
    },
    /// `sh` itself could not be run.
    #[error("cannot run sh: {0}")]
    Shell(#[source] std::io::Error),
    /// A command template exited non-zero.
    #[error("`{command}` exited with {status}: {stderr}")]
    Command {
        /// The expanded command.
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// The last line of its stderr.
        stderr: String,
    },
    /// A backend brought by an embedding program failed (its own words).
    #[error("{0}")]
    Backend(String),
}

impl From<String> for ControlError {
    fn from(message: String) -> Self {
        ControlError::Backend(message)
    }
}

/// What the executor needs from a node-control backend. Every method is idempotent: `stop` of a
/// stopped server and `start` of a running one do nothing, so a run resumed from its journal can
/// finish the action that was in flight without repeating it.
// Plain `async fn`: the executor awaits these on its own task, so no `Send` bound is needed.
#[allow(async_fn_in_trait)]
pub trait ServerControl {
    /// Whether the server runs (on either side).
    async fn is_running(&self, server: &str, side: Side) -> Result<bool, ControlError>;
    /// Stops a server (no-op when it is not running).
    async fn stop(&self, server: &str, side: Side) -> Result<(), ControlError>;
    /// Installs `side` on a stopped server; the next `start` runs it.
    async fn install(&self, server: &str, side: Side) -> Result<(), ControlError>;
    /// Starts a server on `side` (no-op when it already runs).
    async fn start(&self, server: &str, side: Side) -> Result<(), ControlError>;
    /// Upgrades the client nodes, if the backend knows how: `Some(note)` when it did.
    async fn upgrade_clients(&self) -> Result<Option<String>, ControlError>;
    /// Stops, installs the target on, or starts one client node (`[upgrade.clients]`). A
    /// backend without per-client control refuses.
    async fn client(&self, op: ClientOp, client: &str) -> Result<(), ControlError> {
        let _ = (op, client);
        Err(ControlError::Backend(
            "this node control has no per-client commands".into(),
        ))
    }
}

/// What `ServerControl::client` does to a client node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOp {
    /// `execute.command.stop_client`.
    Stop,
    /// `execute.command.install_client` (nothing when the plan has none).
    Install,
    /// `execute.command.start_client`.
    Start,
}

impl ServerControl for NodeControl {
    async fn is_running(&self, server: &str, side: Side) -> Result<bool, ControlError> {
        NodeControl::is_running(self, server, side).await
    }
    async fn stop(&self, server: &str, side: Side) -> Result<(), ControlError> {
        NodeControl::stop(self, server, side).await
    }
    async fn install(&self, server: &str, side: Side) -> Result<(), ControlError> {
        NodeControl::install(self, server, side).await
    }
    async fn start(&self, server: &str, side: Side) -> Result<(), ControlError> {
        NodeControl::start(self, server, side).await
    }
    async fn upgrade_clients(&self) -> Result<Option<String>, ControlError> {
        NodeControl::upgrade_clients(self).await
    }
    async fn client(&self, op: ClientOp, client: &str) -> Result<(), ControlError> {
        NodeControl::client(self, op, client).await
    }
}

/// Controls the servers of one plan: the `process` and `command` backends (for `container`
/// it only expands templates; the embedding program brings the control).
#[derive(Debug, Clone)]
pub struct NodeControl {
    x: Execute,
    /// Per server: the placeholders shared by both sides (name, host).
    base_vars: BTreeMap<String, BTreeMap<String, String>>,
    versions: [(Version, u8); 2],
}

impl NodeControl {
    /// The control a plan describes; `None` when it has no `[execute]` section.
    pub fn from_plan(plan: &Plan) -> Option<NodeControl> {
        let x = plan.execute.clone()?;
        let mut base_vars = BTreeMap::new();
        for s in &plan.cluster.servers {
            let mut v = BTreeMap::new();
            v.insert("name".to_string(), s.name.clone());
            let host = s.address.as_deref().map(host_of).unwrap_or_default();
            v.insert("host".to_string(), host);
            base_vars.insert(s.name.clone(), v);
        }
        let target_proto = plan
            .upgrade
            .target_raft_protocol
            .unwrap_or(plan.cluster.raft_protocol);
        Some(NodeControl {
            x,
            base_vars,
            versions: [
                (plan.cluster.version, plan.cluster.raft_protocol),
                (plan.upgrade.target, target_proto),
            ],
        })
    }

    fn vars(&self, server: &str, side: Side) -> BTreeMap<String, String> {
        let mut v = self.base_vars.get(server).cloned().unwrap_or_default();
        let (install, (version, proto)): (&Install, _) = match side {
            Side::Current => (&self.x.current, self.versions[0]),
            Side::Target => (&self.x.target, self.versions[1]),
        };
        v.insert("version".into(), version.to_string());
        v.insert("raft_protocol".into(), proto.to_string());
        if let Some(b) = &install.binary {
            v.insert("binary".into(), b.clone());
        }
        for (k, val) in &install.vars {
            v.insert(k.clone(), val.clone());
        }
        v
    }

    /// A template with the placeholders of `server` on `side` filled in, as they are (for the
    /// process backend's argv and file names, which no shell reads).
    pub fn expand(&self, template: &str, server: &str, side: Side) -> String {
        fill(template, &self.vars(server, side), false)
    }

    /// A command template with the placeholders filled in for `sh -c`. The values that come
    /// from the cluster rather than from the plan's own `[execute]` section (`{name}`,
    /// `{host}`) are quoted for the place they stand in, so whatever characters a server's
    /// name has, it stays one literal word and cannot add a command. The plan's own `binary`
    /// and `vars` are its author's shell text (a var may hold several arguments) and go in as
    /// written.
    ///
    /// The quoting protects the local `sh -c` only: a template that hands a value to a second
    /// shell (`ssh host "… {name}"`) has that shell read it again.
    pub fn expand_shell(&self, template: &str, server: &str, side: Side) -> String {
        fill(template, &self.vars(server, side), true)
    }

    fn stop_signal(&self) -> i32 {
        // Validated with the plan; SIGINT is the safe default for servers (no leave).
        signal_number(&self.x.stop_signal).unwrap_or(libc::SIGINT)
    }

    /// Whether the server's process runs.
    pub async fn is_running(&self, server: &str, side: Side) -> Result<bool, ControlError> {
        match self.x.control {
            ControlKind::Process => Ok(self.pid(server, side).is_some_and(alive)),
            ControlKind::Command => {
                let c = self.command()?;
                Ok(shell(&self.expand_shell(&c.status, server, side))
                    .await
                    .is_ok())
            }
            ControlKind::Container => Err(ControlError::ContainerInProcess),
        }
    }

    /// The kind of control the plan asks for.
    pub fn kind(&self) -> ControlKind {
        self.x.control
    }

    /// Stops a server (no-op when it is not running).
    pub async fn stop(&self, server: &str, side: Side) -> Result<(), ControlError> {
        if !self.is_running(server, side).await? {
            tracing::info!("{server} is not running: nothing to stop");
            return Ok(());
        }
        match self.x.control {
            ControlKind::Process => self.stop_process(server, side).await,
            ControlKind::Command => {
                let c = self.command()?;
                shell(&self.expand_shell(&c.stop, server, side)).await?;
                self.wait_stopped(server, side).await
            }
            ControlKind::Container => Err(ControlError::ContainerInProcess),
        }
    }

    /// A stop command may return before the process has exited (`kill`, a non-blocking
    /// `systemctl --no-block`): poll `status` until it says stopped, within `stop_timeout`.
    async fn wait_stopped(&self, server: &str, side: Side) -> Result<(), ControlError> {
        let deadline_ms = self.x.stop_timeout / 1_000_000;
        let mut waited_ms = 0;
        while self.is_running(server, side).await? {
            if waited_ms >= deadline_ms {
                return Err(ControlError::StillRunning {
                    server: server.to_string(),
                    waited_ms: deadline_ms,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            waited_ms += 100;
        }
        Ok(())
    }

    async fn stop_process(&self, server: &str, side: Side) -> Result<(), ControlError> {
        let Some(pid) = self.pid(server, side) else {
            return Ok(());
        };
        signal(pid, self.stop_signal())?;
        let deadline_ms = self.x.stop_timeout / 1_000_000;
        let mut waited_ms = 0;
        while alive(pid) {
            if waited_ms >= deadline_ms {
                tracing::warn!(
                    "{server} (pid {pid}) still running after {deadline_ms} ms: SIGKILL"
                );
                signal(pid, libc::SIGKILL)?;
                wait_gone(pid, 5_000).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited_ms += 50;
        }
        Ok(())
    }

    /// Installs `side` on a stopped server (command backend: the `install` template; process
    /// backend: the next start uses that side's binary and variables).
    pub async fn install(&self, server: &str, side: Side) -> Result<(), ControlError> {
        match (&self.x.control, &self.x.command) {
            (ControlKind::Command, Some(c)) => match &c.install {
                Some(t) => shell(&self.expand_shell(t, server, side)).await,
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Starts a server on `side` (no-op when it already runs).
    pub async fn start(&self, server: &str, side: Side) -> Result<(), ControlError> {
        if self.is_running(server, side).await? {
            tracing::info!("{server} already runs: not started again");
            return Ok(());
        }
        match self.x.control {
            ControlKind::Process => self.spawn(server, side),
            ControlKind::Command => {
                let c = self.command()?;
                shell(&self.expand_shell(&c.start, server, side)).await
            }
            ControlKind::Container => Err(ControlError::ContainerInProcess),
        }
    }

    /// Runs the client-upgrade template, if the plan has one.
    pub async fn upgrade_clients(&self) -> Result<Option<String>, ControlError> {
        match self
            .x
            .command
            .as_ref()
            .and_then(|c| c.upgrade_clients.as_ref())
        {
            Some(t) => {
                let any = self.base_vars.keys().next().cloned().unwrap_or_default();
                shell(&self.expand_shell(t, &any, Side::Target)).await?;
                Ok(Some(
                    "clients upgraded by execute.command.upgrade_clients".into(),
                ))
            }
            None => Ok(None),
        }
    }

    /// Runs the plan's template for `op` on client node `client`: `{client}` is its name
    /// (quoted like `{name}`), `{version}`, `{binary}` and the vars are the target's.
    pub async fn client(&self, op: ClientOp, client: &str) -> Result<(), ControlError> {
        let c = self.command()?;
        let (field, t) = match op {
            ClientOp::Stop => ("execute.command.stop_client", &c.stop_client),
            ClientOp::Install => ("execute.command.install_client", &c.install_client),
            ClientOp::Start => ("execute.command.start_client", &c.start_client),
        };
        let Some(t) = t else {
            return match op {
                ClientOp::Install => Ok(()),
                _ => Err(ControlError::MissingSection(field)),
            };
        };
        let mut vars = self.vars("", Side::Target);
        vars.insert("client".into(), client.to_string());
        shell(&fill(t, &vars, true)).await
    }

    fn command(&self) -> Result<&crate::plan::CommandControl, ControlError> {
        self.x
            .command
            .as_ref()
            .ok_or(ControlError::MissingSection("execute.command"))
    }

    fn pid_file(&self, server: &str, side: Side) -> Option<PathBuf> {
        let p = self.x.process.as_ref()?;
        Some(PathBuf::from(self.expand(&p.pid_file, server, side)))
    }

    fn pid(&self, server: &str, side: Side) -> Option<i32> {
        let text = std::fs::read_to_string(self.pid_file(server, side)?).ok()?;
        text.trim().parse().ok().filter(|p: &i32| *p > 1)
    }

    fn spawn(&self, server: &str, side: Side) -> Result<(), ControlError> {
        let p = self
            .x
            .process
            .as_ref()
            .ok_or(ControlError::MissingSection("execute.process"))?;
        let argv: Vec<String> = p
            .argv
            .iter()
            .map(|a| self.expand(a, server, side))
            .collect();
        let log_path = PathBuf::from(self.expand(&p.log_file, server, side));
        let pid_path = self.pid_file(server, side).ok_or(ControlError::NoPidFile)?;
        for path in [&log_path, &pid_path] {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|source| ControlError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .and_then(|log| Ok((log.try_clone()?, log)))
            .map_err(|source| ControlError::OpenLog {
                path: log_path.clone(),
                source,
            })?;
        let (log2, log) = log;
        let mut cmd = std::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .stderr(log2);
        // Its own session: the server outlives rehearse (a crash or Ctrl-C of rehearse must not
        // take a server down with it).
        // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| ControlError::Spawn {
            server: server.to_string(),
            program: argv[0].clone(),
            source,
        })?;
        let pid = child.id();
        std::fs::write(&pid_path, format!("{pid}\n")).map_err(|source| ControlError::WritePid {
            path: pid_path.clone(),
            source,
        })?;
        // Reap it when it exits, so a stopped server does not linger as a zombie that still
        // answers kill(pid, 0).
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        tracing::info!("started {server} (pid {pid}): {}", argv.join(" "));
        Ok(())
    }
}

/// Placeholders whose values come from the cluster (through the plan's server list) and are
/// quoted in shell commands.
const QUOTED_KEYS: [&str; 3] = ["name", "host", "client"];

/// Where a placeholder stands in a shell command.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Quoting {
    /// Outside quotes.
    Bare,
    /// Inside `'…'`.
    Single,
    /// Inside `"…"`.
    Double,
}

/// Fills `{key}` placeholders in one pass (a value that contains `{…}` is never expanded
/// again). With `shell`, the values of [`QUOTED_KEYS`] are quoted for where they stand; the
/// quote state is tracked through `'…'`, `"…"` and backslash escapes as `sh` reads them.
fn fill(template: &str, vars: &BTreeMap<String, String>, shell: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut state = Quoting::Bare;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '{'
            && let Some(end) = rest.find('}')
            && let Some(v) = vars.get(&rest[1..end])
        {
            let quote = shell && QUOTED_KEYS.contains(&&rest[1..end]);
            out.push_str(&if quote {
                shell_quote(v, state)
            } else {
                v.clone()
            });
            rest = &rest[end + 1..];
            continue;
        }
        let mut taken = c.len_utf8();
        state = match (state, c) {
            (Quoting::Bare, '\\') | (Quoting::Double, '\\') => {
                // The escaped character is copied as it is.
                taken += rest[1..].chars().next().map_or(0, char::len_utf8);
                state
            }
            (Quoting::Bare, '\'') => Quoting::Single,
            (Quoting::Bare, '"') => Quoting::Double,
            (Quoting::Single, '\'') | (Quoting::Double, '"') => Quoting::Bare,
            (s, _) => s,
        };
        out.push_str(&rest[..taken]);
        rest = &rest[taken..];
    }
    out
}

/// `value` as literal text at a place in a shell command in state `state`.
fn shell_quote(value: &str, state: Quoting) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    match state {
        Quoting::Bare if !value.is_empty() && value.chars().all(safe) => value.to_string(),
        Quoting::Bare => format!("'{}'", value.replace('\'', r"'\''")),
        // Close the quote, an escaped quote, open again.
        Quoting::Single => value.replace('\'', r"'\''"),
        // Inside "…" only $ ` " \ are special, and a backslash makes each literal.
        Quoting::Double => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '$' | '`' | '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
    }
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence.
    let exists = unsafe { libc::kill(pid, 0) } == 0;
    if !exists {
        return false;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state is the field after the parenthesised command name.
    let state = stat
        .rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next());
    state != Some("Z")
}

fn signal(pid: i32, sig: i32) -> Result<(), ControlError> {
    // SAFETY: plain kill(2) on a pid we started (or were told about by the pid file).
    if unsafe { libc::kill(pid, sig) } == 0 {
        Ok(())
    } else {
        Err(ControlError::Signal {
            pid,
            source: std::io::Error::last_os_error(),
        })
    }
}

async fn wait_gone(pid: i32, max_ms: u64) {
    let mut waited = 0;
    while alive(pid) && waited < max_ms {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 50;
    }
}

/// Runs `sh -c cmd`; Err with its output when it exits non-zero.
async fn shell(cmd: &str) -> Result<(), ControlError> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(ControlError::Shell)?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(ControlError::Command {
        command: cmd.to_string(),
        status: out.status,
        stderr: stderr.lines().last().unwrap_or("").to_string(),
    })
}

/// The host part of `http://host:port`.
pub fn host_of(addr: &str) -> String {
    let rest = addr.split("://").nth(1).unwrap_or(addr);
    let host_port = rest.split('/').next().unwrap_or(rest);
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => host_port.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(dir: &std::path::Path) -> Plan {
        Plan::from_str_named(&plan_text(dir), "t").unwrap()
    }

    fn plan_text(dir: &std::path::Path) -> String {
        let d = dir.display();
        format!(
            r#"[cluster]
product = "nomad"
version = "1.9.7"
servers = [{{ name = "s1", address = "http://127.0.0.1:4646" }}]
[upgrade]
target = "1.10.3"
[execute]
control = "command"
stop_timeout = "5s"
[execute.command]
start = "sleep 30 >/dev/null 2>&1 & echo $! > {d}/{{name}}.pid; echo {{version}} {{marker}} >> {d}/starts"
stop = "kill $(cat {d}/{{name}}.pid)"
status = "kill -0 $(cat {d}/{{name}}.pid 2>/dev/null) 2>/dev/null"
install = "echo {{host}} {{version}} >> {d}/installs"
[execute.current]
vars = {{ marker = "old" }}
[execute.target]
vars = {{ marker = "new" }}
"#
        )
    }

    #[test]
    fn command_backend_is_idempotent_and_fills_placeholders() {
        let dir = std::env::temp_dir().join(format!("rehearse-ctl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let c = NodeControl::from_plan(&plan(&dir)).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            assert!(!c.is_running("s1", Side::Current).await.unwrap());
            c.start("s1", Side::Current).await.unwrap();
            assert!(c.is_running("s1", Side::Current).await.unwrap());
            c.start("s1", Side::Current).await.unwrap(); // already runs: no second start
            c.stop("s1", Side::Current).await.unwrap();
            assert!(!c.is_running("s1", Side::Current).await.unwrap());
            c.stop("s1", Side::Current).await.unwrap(); // already stopped: no-op
            c.install("s1", Side::Target).await.unwrap();
            c.start("s1", Side::Target).await.unwrap();
            c.stop("s1", Side::Target).await.unwrap();
        });
        let starts = std::fs::read_to_string(dir.join("starts")).unwrap();
        assert_eq!(starts, "1.9.7 old\n1.10.3 new\n");
        let installs = std::fs::read_to_string(dir.join("installs")).unwrap();
        assert_eq!(installs, "127.0.0.1 1.10.3\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn client_templates_get_the_clients_name_quoted_and_the_targets_values() {
        let dir = std::env::temp_dir().join(format!("rehearse-ctl-c-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        let text = plan_text(&dir).replace(
            "[execute.current]",
            &format!(
                "stop_client = \"echo stop {{client}} >> {d}/clients\"\nstart_client = \"echo start {{client}} {{version}} {{marker}} >> {d}/clients\"\n[execute.current]"
            ),
        );
        let text = text.replace("[execute]", "[upgrade.clients]\n[execute]");
        let p = Plan::from_str_named(&text, "t").unwrap();
        let c = NodeControl::from_plan(&p).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            c.client(ClientOp::Stop, "c1; rm -rf x").await.unwrap();
            // No install_client template: nothing to run.
            c.client(ClientOp::Install, "c1; rm -rf x").await.unwrap();
            c.client(ClientOp::Start, "c1; rm -rf x").await.unwrap();
        });
        let lines = std::fs::read_to_string(dir.join("clients")).unwrap();
        assert_eq!(lines, "stop c1; rm -rf x\nstart c1; rm -rf x 1.10.3 new\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn cluster_values_are_quoted_for_where_they_stand() {
        let vars: BTreeMap<String, String> = [
            ("name", "a'b $(x) \"c\" `d` \\e"),
            ("host", "h1"),
            ("binary", "/opt/bin/nomad -dev"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let t = "run {name} \"{name}\" '{name}' {host} {binary} \\'{host}";
        assert_eq!(
            fill(t, &vars, true),
            r#"run 'a'\''b $(x) "c" `d` \e' "a'b \$(x) \"c\" \`d\` \\e" 'a'\''b $(x) "c" `d` \e' h1 /opt/bin/nomad -dev \'h1"#
        );
        // Without `shell` (argv, file names) and for the plan's own values: as written, and a
        // value's own braces are not expanded again.
        let mut v2 = vars.clone();
        v2.insert("name".into(), "{binary}".into());
        assert_eq!(
            fill("{name}/{binary}", &v2, false),
            "{binary}//opt/bin/nomad -dev"
        );
        assert_eq!(shell_quote("", Quoting::Bare), "''");
        assert_eq!(shell_quote("s1-a.b:c", Quoting::Bare), "s1-a.b:c");
    }

    #[test]
    fn hosts() {
        assert_eq!(host_of("https://10.0.0.1:4646"), "10.0.0.1");
        assert_eq!(host_of("n1.example:4646"), "n1.example");
    }
}
