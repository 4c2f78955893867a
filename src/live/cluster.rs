//! A live cluster seen through its servers' HTTP APIs: one `ClusterView` per observation, and
//! the operator actions that go through the API (snapshot, transfer, drain).
//!
//! Every server is asked concurrently, so a paused server (which accepts the connection and
//! never answers) costs one request timeout per observation, not one per endpoint.
//!
//! Nomad's workload plane (jobs, their allocation counts, the eval broker) is read only when
//! the procedure asks (`Reads::workload`: the preflight and the verification), through the
//! leader, within the observation's deadline (`read_workload`).

use super::client::{Answer, Client};
use super::parse;
use crate::procedure::{ClusterView, Readout, Reads, base};
use rehearse_model::api::{
    AgentSelf, ApiError, RaftConfiguration, SharedStr, SnapshotInfo, Workload,
};
use rehearse_model::versions::{Product, Version};
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::time::Instant;

/// How long a snapshot refused for a configuration entry not applied yet is asked again.
const SNAPSHOT_RETRY_FOR: Duration = Duration::from_secs(10);
/// How often it is asked again.
const SNAPSHOT_RETRY_EVERY: Duration = Duration::from_millis(250);

/// Whether a refused snapshot is hashicorp/raft's transient "the newest configuration entry is
/// not applied yet" (raft's `takeSnapshot`), which passes once the leader applies it.
fn configuration_not_applied(e: &ApiError) -> bool {
    matches!(e, ApiError::Rejected { message, .. }
        if message.contains("cannot take snapshot now")
            && message.contains("configuration entry"))
}

/// The servers of one cluster, by plan name.
#[derive(Debug, Clone)]
pub struct LiveCluster {
    /// Nomad or Consul.
    pub product: Product,
    /// (plan name, client) in plan order.
    pub servers: Vec<(String, Client)>,
}

/// Whether an error answer is autopilot's refusal under raft protocol 2 (Consul and Nomad
/// both answer HTTP 500 "all servers must have raft_protocol set to 3 in order to use this
/// endpoint").
pub fn needs_protocol_3(message: &str) -> bool {
    message.starts_with("HTTP 500") && message.contains("raft_protocol set to 3")
}

fn bad_answer(c: &Client, e: parse::ParseError) -> ApiError {
    ApiError::Rejected {
        addr: c.base.as_str().into(),
        message: e.to_string(),
    }
}

impl LiveCluster {
    fn paths(&self) -> Paths {
        match self.product {
            Product::Nomad => Paths {
                snapshot: "/v1/operator/snapshot",
            },
            Product::Consul => Paths {
                snapshot: "/v1/snapshot",
            },
        }
    }

    /// The client of a server by plan name.
    pub fn client(&self, name: &str) -> Option<&Client> {
        self.servers.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    async fn leader_of(c: &Client) -> Result<Option<String>, ApiError> {
        let a = c.get("/v1/status/leader").await?;
        parse::leader(&a.body).map_err(|e| bad_answer(c, e))
    }

    /// When an observation starting now must be over: one request timeout and a second more.
    /// A paused server accepts connections and never answers, so without one deadline for
    /// the whole observation every round of reads that reaches it waits out its own timeout
    /// (three rounds took 12.5 s with the leader paused, hashicorp-style gray failure).
    pub fn observe_deadline(&self) -> Instant {
        let timeout_ms = self
            .servers
            .first()
            .map_or(4_000, |(_, c)| c.connection().timeout_ms);
        Instant::now() + Duration::from_millis(timeout_ms.saturating_add(1_000))
    }

    /// Reads the whole cluster once, by `observe_deadline`. `drained` and `write_accepted`
    /// are the caller's to fill.
    pub async fn observe(&self) -> ClusterView {
        self.observe_until(self.observe_deadline()).await
    }

    /// Reads the whole cluster once; a read with no answer by `deadline` is `Unreachable`.
    /// Every server's leader and own state at once, then the cluster endpoints (which need a
    /// server to ask) at once.
    pub async fn observe_until(&self, deadline: Instant) -> ClusterView {
        let (leaders, agents) = tokio::join!(
            futures_join_all(
                self.servers
                    .iter()
                    .map(|(_, c)| by(deadline, c, Self::leader_of(c)))
            ),
            futures_join_all(
                self.servers
                    .iter()
                    .map(|(_, c)| by(deadline, c, self.agent_self(c)))
            ),
        );
        // Ask a server that knows a leader (it forwards to it); else the first that answers.
        let pick = leaders
            .iter()
            .position(|l| matches!(l, Ok(Some(_))))
            .or_else(|| leaders.iter().position(|l| l.is_ok()));
        let leader_addr = pick.and_then(|i| leaders[i].clone().ok().flatten());
        let Some(i) = pick else {
            let err = leaders
                .into_iter()
                .find_map(Result::err)
                .unwrap_or_else(|| ApiError::Unreachable {
                    addr: "cluster".into(),
                    why: "no servers".into(),
                });
            return self.view_without_api(err, agents);
        };
        let via = &self.servers[i].1;
        let nomad = self.product == Product::Nomad;
        let (members, raft, health, scheduler) = tokio::join!(
            by(deadline, via, self.members(via)),
            by(deadline, via, self.raft_configuration(via)),
            by(deadline, via, self.health(via)),
            async {
                match nomad {
                    true => Some(by(deadline, via, self.scheduler(via)).await),
                    false => None,
                }
            },
        );
        let leader = leader_addr.and_then(|a| self.name_of_address(&a, raft.as_ref().ok()));
        ClusterView {
            leader,
            members,
            raft,
            health,
            agents: self.named(agents),
            scheduler,
            drained: Vec::new(),
            write_accepted: None,
            nodes: not_read(self.product),
            allocs_running: not_read(self.product),
            workload: not_read(self.product),
        }
    }

    fn named(
        &self,
        agents: Vec<Result<AgentSelf, ApiError>>,
    ) -> Vec<(SharedStr, Result<AgentSelf, ApiError>)> {
        self.servers
            .iter()
            .map(|(n, _)| SharedStr::from(n))
            .zip(agents)
            .collect()
    }

    fn view_without_api(
        &self,
        err: ApiError,
        agents: Vec<Result<AgentSelf, ApiError>>,
    ) -> ClusterView {
        ClusterView {
            leader: None,
            members: Err(err.clone()),
            raft: Err(err.clone()),
            health: Err(err.clone()),
            agents: self.named(agents),
            scheduler: (self.product == Product::Nomad).then_some(Err(err)),
            drained: Vec::new(),
            write_accepted: None,
            nodes: not_read(self.product),
            allocs_running: not_read(self.product),
            workload: not_read(self.product),
        }
    }

    /// Maps a leader's RPC address to its plan name through the raft configuration.
    fn name_of_address(&self, addr: &str, raft: Option<&RaftConfiguration>) -> Option<SharedStr> {
        let node = raft?.servers.iter().find(|s| s.address == addr)?;
        let name = base(&node.node);
        self.servers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(n, _)| SharedStr::from(n))
            .or_else(|| Some(name.into()))
    }

    /// `GET /v1/agent/self` of one server.
    pub async fn agent_self(&self, c: &Client) -> Result<AgentSelf, ApiError> {
        let a = c.get("/v1/agent/self").await?;
        parse::agent_self(self.product, &a.body).map_err(|e| bad_answer(c, e))
    }

    async fn members(&self, c: &Client) -> Result<Vec<rehearse_model::api::Member>, ApiError> {
        let a = c.get("/v1/agent/members").await?;
        parse::members(&a.body).map_err(|e| bad_answer(c, e))
    }

    /// `GET /v1/operator/raft/configuration` through one server.
    pub async fn raft_configuration(&self, c: &Client) -> Result<RaftConfiguration, ApiError> {
        let a = c.get("/v1/operator/raft/configuration").await?;
        parse::raft_configuration(&a.body).map_err(|e| bad_answer(c, e))
    }

    /// Autopilot health. Under raft protocol 2 the endpoint answers HTTP 500 "all servers must
    /// have raft_protocol set to 3 in order to use this endpoint": that is `Unsupported`, and
    /// the procedure derives health from the raft configuration and each server's own stats,
    /// which every observation reads anyway (`procedure::derived`).
    async fn health(&self, c: &Client) -> Result<rehearse_model::api::AutopilotHealth, ApiError> {
        let a = match c.get("/v1/operator/autopilot/health").await {
            Err(ApiError::Rejected { addr, message }) if needs_protocol_3(&message) => {
                return Err(ApiError::Unsupported {
                    addr,
                    what: format!(
                        "autopilot health needs raft protocol 3 on every server ({message})"
                    ),
                });
            }
            other => other?,
        };
        if a.body.is_null() {
            return Err(ApiError::Unsupported {
                addr: c.base.as_str().into(),
                what: format!("autopilot health answered HTTP {} without a body", a.status),
            });
        }
        parse::autopilot_health(&a.body).map_err(|e| bad_answer(c, e))
    }

    async fn scheduler(
        &self,
        c: &Client,
    ) -> Result<rehearse_model::api::SchedulerConfig, ApiError> {
        let a = c.get("/v1/operator/scheduler/configuration").await?;
        parse::scheduler_config(&a.body).map_err(|e| bad_answer(c, e))
    }

    /// The first server that answers, preferring one that knows a leader.
    async fn any_answering(&self) -> Result<&Client, ApiError> {
        let leaders = futures_join_all(self.servers.iter().map(|(_, c)| Self::leader_of(c))).await;
        let i = leaders
            .iter()
            .position(|l| matches!(l, Ok(Some(_))))
            .ok_or_else(|| {
                leaders
                    .into_iter()
                    .find_map(Result::err)
                    .unwrap_or(ApiError::NoLeader {
                        addr: "every server".into(),
                    })
            })?;
        Ok(&self.servers[i].1)
    }

    /// `any_answering`, or `Unreachable` if no server has answered by `deadline`.
    async fn answering_by(&self, deadline: Instant) -> Result<&Client, ApiError> {
        tokio::time::timeout_at(deadline, self.any_answering())
            .await
            .unwrap_or_else(|_| {
                Err(ApiError::Unreachable {
                    addr: "cluster".into(),
                    why: "no server answered before the observation's deadline".into(),
                })
            })
    }

    /// Saves a snapshot into `dir`, verifying the `Digest` header against the body.
    ///
    /// hashicorp/raft refuses a snapshot while the newest configuration entry (a server added
    /// or removed) is not applied yet ("cannot take snapshot now, wait until the configuration
    /// entry at N has been applied"). That happens right after a removed server re-joins, and
    /// it passes within milliseconds: such a refusal is asked again, every
    /// `SNAPSHOT_RETRY_EVERY`, for at most `SNAPSHOT_RETRY_FOR`.
    pub async fn save_snapshot(&self, dir: &Path) -> Result<(SnapshotInfo, PathBuf), String> {
        let started = Instant::now();
        let (c, a) = loop {
            let c = self.any_answering().await.map_err(|e| e.to_string())?;
            match c.get(self.paths().snapshot).await {
                Ok(a) => break (c, a),
                Err(e)
                    if configuration_not_applied(&e)
                        && started.elapsed() + SNAPSHOT_RETRY_EVERY <= SNAPSHOT_RETRY_FOR =>
                {
                    eprintln!("    {e}: asking again");
                    tokio::time::sleep(SNAPSHOT_RETRY_EVERY).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        };
        let digest = verify_digest(&a)?;
        let meta = super::archive::verify_archive(&a.bytes)?;
        let index = meta.index;
        let leader = self.agent_self(c).await.map_err(|e| e.to_string())?;
        let info = SnapshotInfo {
            index,
            term: meta.term,
            format: 0,
            written_by: leader.version,
            digest,
            size_bytes: a.bytes.len() as u64,
        };
        let path = dir.join(format!("snapshot-{index}.snap"));
        std::fs::write(&path, &a.bytes)
            .map_err(|e| format!("cannot write snapshot {}: {e}", path.display()))?;
        Ok((info, path))
    }

    /// Restores a snapshot file (forwarded to the leader).
    pub async fn restore_snapshot(&self, path: &Path) -> Result<(), String> {
        let bytes = std::fs::read(path)
            .map_err(|e| format!("cannot read snapshot {}: {e}", path.display()))?;
        let c = self.any_answering().await.map_err(|e| e.to_string())?;
        c.send(reqwest::Method::PUT, self.paths().snapshot, Some(bytes))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Moves leadership away from `from` (Nomad 1.7+; Consul 1.8 has no such endpoint).
    pub async fn transfer_leadership(&self, from: &str) -> Result<(), String> {
        let c = self.client(from).ok_or(format!("unknown server {from}"))?;
        let path = match self.product {
            Product::Nomad => "/v1/operator/raft/transfer-leadership",
            Product::Consul => return Err("Consul 1.8 has no leadership-transfer API".into()),
        };
        c.send(reqwest::Method::PUT, path, None)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Starts draining the Nomad client that runs on server `name` (found by node name).
    pub async fn drain(&self, name: &str, deadline_ms: u64) -> Result<(), String> {
        let id = self.node_id(name).await?;
        let body = serde_json::json!({
            "DrainSpec": {"Deadline": deadline_ms.saturating_mul(1_000_000), "IgnoreSystemJobs": false},
            "MarkEligible": false,
        });
        self.post_node(&id, "drain", &body).await
    }

    /// Marks client node `name` eligible for placements again (`POST
    /// /v1/node/:id/eligibility`): its drain left it ineligible.
    pub async fn mark_eligible(&self, name: &str) -> Result<(), String> {
        let id = self.node_id(name).await?;
        let body = serde_json::json!({ "NodeID": id, "Eligibility": "eligible" });
        self.post_node(&id, "eligibility", &body).await
    }

    /// `POST /v1/node/:id/WHAT` with `body`, to any server that answers.
    async fn post_node(
        &self,
        id: &str,
        what: &str,
        body: &serde_json::Value,
    ) -> Result<(), String> {
        let c = self.any_answering().await.map_err(|e| e.to_string())?;
        let path = format!("/v1/node/{id}/{what}");
        c.send(
            reqwest::Method::POST,
            &path,
            Some(body.to_string().into_bytes()),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    async fn node_id(&self, name: &str) -> Result<String, String> {
        let c = self.any_answering().await.map_err(|e| e.to_string())?;
        let a = c.get("/v1/nodes").await.map_err(|e| e.to_string())?;
        parse::node_id(&a.body, name).ok_or(format!("no client node named {name}"))
    }

    /// Fills the view's client reads (Nomad): which of the servers that are also clients
    /// (`clients`, plan names) have finished draining, and — when `reads` asks — the client
    /// node list and which of those servers still run allocations. One `GET /v1/nodes`, then
    /// the allocations of every such server at once.
    pub async fn read_clients(
        &self,
        view: &mut ClusterView,
        reads: Reads,
        clients: &[String],
        deadline: Instant,
    ) {
        if self.product != Product::Nomad || (clients.is_empty() && !reads.nodes) {
            return;
        }
        let listed = match self.answering_by(deadline).await {
            Ok(c) => by(deadline, c, c.get("/v1/nodes")).await.map(|a| a.body),
            Err(e) => Err(e),
        };
        let body = match listed {
            Ok(b) => b,
            Err(e) => {
                if reads.nodes {
                    view.nodes = Readout::Read(Err(e.clone()));
                }
                if reads.allocs {
                    view.allocs_running = Readout::Read(Err(e));
                }
                return;
            }
        };
        // In the client phase (the node list is read), client-only nodes under a drain count
        // too: the procedure drains them itself (`[upgrade.clients]`).
        let mut clients = clients.to_vec();
        if reads.nodes {
            for n in parse::nodes_under_drain(&body) {
                if !clients.contains(&n) {
                    clients.push(n);
                }
            }
        }
        let clients = &clients[..];
        view.drained = clients
            .iter()
            .filter(|n| parse::node_drained(&body, n))
            .map(SharedStr::from)
            .collect();
        if reads.nodes {
            view.nodes =
                Readout::Read(parse::nodes(&body).map_err(|e| rejected_at("GET /v1/nodes", e)));
        }
        if reads.allocs {
            view.allocs_running =
                Readout::Read(self.allocs_running(&body, clients, deadline).await);
        }
    }

    /// The servers among `clients` whose client node still runs allocations. A server whose
    /// node is not registered runs none; any unreadable answer makes the whole read an error
    /// (the procedure waits: never stop on a list that could not be read).
    async fn allocs_running(
        &self,
        nodes: &serde_json::Value,
        clients: &[String],
        deadline: Instant,
    ) -> Result<Vec<SharedStr>, ApiError> {
        let c = self.answering_by(deadline).await?;
        let ids: Vec<(&String, String)> = clients
            .iter()
            .filter_map(|n| parse::node_id(nodes, n).map(|id| (n, id)))
            .collect();
        let answers = futures_join_all(ids.iter().map(|(_, id)| async move {
            let path = format!("/v1/node/{id}/allocations");
            let a = by(deadline, c, c.get(&path)).await?;
            parse::allocations_running(&a.body).map_err(|e| bad_answer(c, e))
        }))
        .await;
        let mut out = Vec::new();
        for ((name, _), n) in ids.iter().zip(answers) {
            if n? > 0 {
                out.push(SharedStr::from(name.as_str()));
            }
        }
        Ok(out)
    }

    /// Fills the view's workload when `reads` asks (Nomad): every job's desired, running and
    /// queued allocations and the eval broker's gauges, through the leader the view found
    /// (`GET /v1/metrics` is the agent's own, and only the leader's broker is enabled). Any
    /// read unanswered by `deadline` or not understood makes the whole readout an error (the
    /// verification waits, then halts naming it). Consul has no workload: `NotApplicable`.
    pub async fn read_workload(&self, view: &mut ClusterView, reads: Reads, deadline: Instant) {
        if self.product != Product::Nomad || !reads.workload {
            return;
        }
        let leader = view.leader.as_deref().and_then(|l| self.client(l));
        view.workload = Readout::Read(match leader {
            Some(c) => self.workload(c, deadline).await,
            None => Err(ApiError::NoLeader {
                addr: "the servers of the plan".into(),
            }),
        });
    }

    /// `GET /v1/jobs` and `GET /v1/metrics` at once, then every live job's task groups (and
    /// the nodes, when a system job needs their count) at once.
    async fn workload(&self, c: &Client, deadline: Instant) -> Result<Workload, ApiError> {
        let at = |path: &'static str| move |e: parse::ParseError| rejected_at(path, e);
        let (listed, metrics) = tokio::join!(
            by(deadline, c, c.get("/v1/jobs?namespace=*")),
            by(deadline, c, c.get("/v1/metrics")),
        );
        let stubs = parse::job_stubs(&listed?.body).map_err(at("GET /v1/jobs"))?;
        let broker = parse::broker_stats(&metrics?.body).map_err(at("GET /v1/metrics"))?;
        let per_node = stubs.iter().any(|s| s.per_node && !s.dead);
        let (nodes, counts) = tokio::join!(
            async {
                if !per_node {
                    return Ok(0);
                }
                let a = by(deadline, c, c.get("/v1/nodes")).await?;
                parse::eligible_ready_nodes(&a.body).map_err(at("GET /v1/nodes"))
            },
            futures_join_all(stubs.iter().map(|s| Self::group_counts(c, s, deadline))),
        );
        let nodes = nodes?;
        let jobs = stubs
            .iter()
            .zip(counts)
            .map(|(s, n)| Ok(parse::job_state(s, &n?, nodes)))
            .collect::<Result<_, ApiError>>()?;
        Ok(Workload { jobs, broker })
    }

    /// `GET /v1/job/:id` of one job: its task groups' counts (none read for a dead job, which
    /// wants nothing).
    async fn group_counts(
        c: &Client,
        job: &parse::JobStub,
        deadline: Instant,
    ) -> Result<Vec<(String, u32)>, ApiError> {
        if job.dead {
            return Ok(Vec::new());
        }
        let path = format!(
            "/v1/job/{}?namespace={}",
            parse::url_encode(&job.id),
            parse::url_encode(&job.namespace)
        );
        let a = by(deadline, c, c.get(&path)).await?;
        parse::job_group_counts(&a.body).map_err(|e| rejected_at("GET /v1/job/:id", e))
    }

    /// Versions every server reports about itself (for verification and import).
    pub async fn versions(&self) -> Vec<(String, Result<Version, ApiError>)> {
        let agents = futures_join_all(self.servers.iter().map(|(_, c)| self.agent_self(c))).await;
        self.named(agents)
            .into_iter()
            .map(|(n, a)| (n.to_string(), a.map(|a| a.version)))
            .collect()
    }
}

/// An answer not understood, naming the endpoint (`GET /v1/jobs: unexpected answer: …`).
fn rejected_at(endpoint: &str, e: parse::ParseError) -> ApiError {
    ApiError::Rejected {
        addr: endpoint.into(),
        message: e.to_string(),
    }
}

struct Paths {
    snapshot: &'static str,
}

/// `read`, or `Unreachable` if it has no answer by `deadline`.
pub async fn by<T>(
    deadline: Instant,
    c: &Client,
    read: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    tokio::time::timeout_at(deadline, read)
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::Unreachable {
                addr: c.base.as_str().into(),
                why: "no answer before the observation's deadline".into(),
            })
        })
}

/// What a view holds for a client read before it is made: Consul has no clients at all.
fn not_read<T>(product: Product) -> Readout<T> {
    match product {
        Product::Nomad => Readout::NotRead,
        Product::Consul => Readout::NotApplicable,
    }
}

/// Checks `Digest: sha-256=<base64>` (Nomad) against the body when the header is present;
/// returns the body's digest either way (the archive's own checksums are checked separately).
fn verify_digest(a: &Answer) -> Result<String, String> {
    use base64::Engine;
    let got = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&a.bytes));
    let Some(header) = a.digest.as_deref() else {
        return Ok(got);
    };
    let want = header
        .strip_prefix("sha-256=")
        .ok_or(format!("unexpected Digest header {header:?}"))?;
    if got != want {
        return Err(format!(
            "snapshot digest mismatch: header {want}, body {got} (the download was corrupted)"
        ));
    }
    Ok(got)
}

/// Runs futures concurrently and collects their results in order (no extra crate needed).
pub async fn futures_join_all<F, T>(futs: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T>,
{
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<T>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod snapshot_tests {
    use super::*;

    fn rejected(message: &str) -> ApiError {
        ApiError::Rejected {
            addr: "http://127.0.0.1:8500".into(),
            message: message.into(),
        }
    }

    #[test]
    fn only_a_configuration_entry_not_applied_yet_is_asked_again() {
        // As Consul 1.8.7 answered right after a removed server re-joined.
        assert!(configuration_not_applied(&rejected(
            "HTTP 500: Raft error when taking snapshot: cannot take snapshot now, wait until the configuration entry at 619 has been applied (have applied 618)"
        )));
        for other in [
            "HTTP 500: Raft error when taking snapshot: nothing new to snapshot",
            "HTTP 500: failed to open snapshot",
            "HTTP 400: Bad request",
        ] {
            assert!(!configuration_not_applied(&rejected(other)), "{other}");
        }
        assert!(!configuration_not_applied(&ApiError::NoLeader {
            addr: "x".into()
        }));
    }
}

/// `read_workload` against a fake Nomad HTTP API on loopback: which server it asks, which
/// paths, and how answers become the readout.
#[cfg(test)]
mod workload_tests {
    use super::*;
    use crate::live::client::Connection;
    use rehearse_model::api::JobType;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves `answer(path)` (HTTP 200, JSON) to every request; returns its address and the
    /// paths asked so far.
    async fn fake_nomad(
        answer: fn(&str) -> serde_json::Value,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split(' ').nth(1).unwrap_or("").to_string();
                    let body = answer(&path).to_string();
                    log.lock().unwrap().push(path);
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        (addr, asked)
    }

    fn nomad_answers(path: &str) -> serde_json::Value {
        let summary = |running: u32| {
            serde_json::json!({"Queued": 0, "Complete": 0, "Failed": 0, "Running": running,
                               "Starting": 0, "Lost": 0})
        };
        let gauge =
            |name: &str, v: f64| serde_json::json!({"Labels": {}, "Name": name, "Value": v});
        match path {
            "/v1/jobs?namespace=*" => serde_json::json!([
                {"ID": "web/api", "Namespace": "team a", "Type": "service", "Status": "running",
                 "JobSummary": {"Summary": {"api": summary(2)}}},
                {"ID": "logs", "Namespace": "default", "Type": "system", "Status": "running",
                 "JobSummary": {"Summary": {"ship": summary(1)}}}
            ]),
            "/v1/job/web%2Fapi?namespace=team%20a" => {
                serde_json::json!({"ID": "web/api", "TaskGroups": [{"Name": "api", "Count": 3}]})
            }
            "/v1/job/logs?namespace=default" => {
                serde_json::json!({"ID": "logs", "TaskGroups": [{"Name": "ship", "Count": 1}]})
            }
            "/v1/nodes" => serde_json::json!([
                {"Name": "c1", "Status": "ready", "SchedulingEligibility": "eligible"},
                {"Name": "c2", "Status": "ready", "SchedulingEligibility": "eligible"}
            ]),
            "/v1/metrics" => serde_json::json!({"Gauges": [
                gauge("nomad.nomad.broker.total_ready", 0.0),
                gauge("nomad.nomad.broker.total_unacked", 1.0),
                gauge("nomad.nomad.broker.total_blocked", 0.0),
                gauge("nomad.nomad.blocked_evals.total_blocked", 0.0)
            ]}),
            _ => serde_json::Value::Null,
        }
    }

    /// A follower whose metrics have no broker gauges (its broker is disabled).
    fn follower_answers(path: &str) -> serde_json::Value {
        match path {
            "/v1/metrics" => serde_json::json!({"Gauges": []}),
            p => nomad_answers(p),
        }
    }

    async fn cluster(product: Product) -> (LiveCluster, Arc<Mutex<Vec<String>>>) {
        let (follower, _) = fake_nomad(follower_answers).await;
        let (leader, asked) = fake_nomad(nomad_answers).await;
        let conn = Connection::new(product);
        let servers = [("s1", follower), ("s2", leader)]
            .into_iter()
            .map(|(n, a)| (n.to_string(), Client::new(&a, &conn).unwrap()))
            .collect();
        (LiveCluster { product, servers }, asked)
    }

    fn view(leader: Option<&str>, product: Product) -> ClusterView {
        let names = [SharedStr::from("s1"), SharedStr::from("s2")];
        let mut v = ClusterView::not_read(&names, product == Product::Nomad);
        v.leader = leader.map(SharedStr::from);
        v.workload = not_read(product);
        v
    }

    const ASK: Reads = Reads {
        cluster: true,
        nodes: false,
        allocs: false,
        workload: true,
    };

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[tokio::test]
    async fn the_leader_is_asked_for_every_job_and_its_broker() {
        let (c, asked) = cluster(Product::Nomad).await;
        let mut v = view(Some("s2"), Product::Nomad);
        c.read_workload(&mut v, ASK, soon()).await;
        let Readout::Read(Ok(w)) = &v.workload else {
            panic!("{:?}", v.workload)
        };
        let jobs: Vec<(&str, JobType, u32, u32)> = w
            .jobs
            .iter()
            .map(|j| (&*j.name, j.kind, j.desired, j.running))
            .collect();
        assert_eq!(
            jobs,
            vec![
                ("web/api", JobType::Service, 3, 2),
                ("logs", JobType::System, 2, 1)
            ]
        );
        assert_eq!((w.broker.unacked, w.broker.backlog()), (1, 1));
        let mut paths = asked.lock().unwrap().clone();
        paths.sort();
        assert_eq!(
            paths,
            [
                "/v1/job/logs?namespace=default",
                "/v1/job/web%2Fapi?namespace=team%20a",
                "/v1/jobs?namespace=*",
                "/v1/metrics",
                "/v1/nodes"
            ]
        );
    }

    #[tokio::test]
    async fn a_follower_without_broker_gauges_is_an_error_naming_the_gauge() {
        let (c, _) = cluster(Product::Nomad).await;
        // The view's leader is s1, which answers like a follower: no broker gauges.
        let mut v = view(Some("s1"), Product::Nomad);
        c.read_workload(&mut v, ASK, soon()).await;
        let Readout::Read(Err(e)) = &v.workload else {
            panic!("{:?}", v.workload)
        };
        let text = e.to_string();
        assert!(
            text.starts_with("GET /v1/metrics: ")
                && text.contains("\"nomad.nomad.broker.total_ready\""),
            "{text}"
        );
    }

    #[tokio::test]
    async fn no_leader_no_question_or_consul_leave_the_readout_as_it_was() {
        let (c, asked) = cluster(Product::Nomad).await;
        let mut v = view(None, Product::Nomad);
        c.read_workload(&mut v, ASK, soon()).await;
        assert!(
            matches!(&v.workload, Readout::Read(Err(ApiError::NoLeader { .. }))),
            "{:?}",
            v.workload
        );
        let mut v = view(Some("s2"), Product::Nomad);
        let not_asked = Reads {
            workload: false,
            ..ASK
        };
        c.read_workload(&mut v, not_asked, soon()).await;
        assert!(matches!(v.workload, Readout::NotRead));
        let (consul, _) = cluster(Product::Consul).await;
        let mut v = view(Some("s2"), Product::Consul);
        consul.read_workload(&mut v, ASK, soon()).await;
        assert!(matches!(v.workload, Readout::NotApplicable));
        assert!(asked.lock().unwrap().is_empty());
    }
}
