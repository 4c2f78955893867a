//! `rehearse import`'s library part: reads a live cluster (read-only) and writes a plan that
//! describes it (servers and their addresses, version, raft protocol, autopilot settings). The
//! target version and the `[execute]` section are the operator's to fill in. Every value from
//! the cluster goes through the TOML serializer, and the text is parsed back before it is
//! returned, so a server name cannot add a field, a server or a section.

use super::client::{Client, ClientError, Connection, Secret};
use super::cluster::LiveCluster;
use super::executor::{ExecError, discover};
use super::parse::go_duration_ms;
use crate::plan::{Plan, PlanError, check_server_address, check_server_name};
use rehearse_model::api::ApiError;
use rehearse_model::versions::Product;
use serde_json::Value;

/// Why no plan was written.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A server's API client could not be made (bad address, TLS files).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Neither product's settings reached the server.
    #[error(
        "{addr}: unreachable ({tried}): check --addr, that the server runs, and the TLS settings (NOMAD_CACERT/CONSUL_CACERT, client certificate and key)"
    )]
    Unreachable {
        /// The address.
        addr: String,
        /// What each product's settings met.
        tried: String,
    },
    /// The server answered as neither product.
    #[error("{addr}: neither a Nomad nor a Consul agent answered ({answers}); pass --product")]
    Unknown {
        /// The address.
        addr: String,
        /// What each product's endpoint answered.
        answers: String,
    },
    /// The servers could not be listed.
    #[error(transparent)]
    Discover(#[from] ExecError),
    /// A server name or address that a plan cannot hold safely.
    #[error(
        "{addr}: the cluster's server {server:?} cannot be written into a plan safely ({why}); no plan written"
    )]
    Unsafe {
        /// The address asked.
        addr: String,
        /// The server's name.
        server: String,
        /// The plan check's words.
        why: String,
    },
    /// No server's version could be read.
    #[error("no server answered /v1/agent/self")]
    NoAgent,
    /// The TOML serializer refused the document.
    #[error("cannot write the plan: {0}")]
    Serialize(#[from] toml::ser::Error),
    /// The written text does not parse as a plan.
    #[error("the cluster cannot be written as a plan: {0}; no plan written")]
    Unparsable(PlanError),
    /// The written plan parses to other servers than the cluster's.
    #[error("the imported plan does not read back as the cluster's servers; no plan written")]
    Mismatch,
}

/// Which product answers at `addr`, asked without any token: each product has an endpoint the
/// other lacks that needs no ACL token (Nomad's `/v1/regions`, Consul's
/// `/v1/catalog/datacenters`), so neither product's token is ever sent to the other's server.
/// Each product's TLS settings are tried (NOMAD_CACERT… or CONSUL_CACERT…): a server that
/// cannot be reached with one product's settings may be reached with the other's.
async fn detect(
    addr: &str,
    conn_of: &impl Fn(Product) -> Connection,
) -> Result<Product, ImportError> {
    let mut errors = Vec::new();
    let mut unreachable = Vec::new();
    for (p, path) in [
        (Product::Nomad, "/v1/regions"),
        (Product::Consul, "/v1/catalog/datacenters"),
    ] {
        let mut conn = conn_of(p);
        conn.token = Secret::default();
        let c = Client::new(addr, &conn)?;
        match c.get(path).await {
            Ok(a) if a.body.is_array() => return Ok(p),
            Ok(_) => errors.push(format!("{p}: unexpected answer to {path}")),
            Err(e @ ApiError::Unreachable { .. }) => {
                unreachable.push(format!("with {p}'s settings: {e}"));
            }
            Err(e) => errors.push(format!("as {p}: {e}")),
        }
    }
    if errors.is_empty() {
        return Err(ImportError::Unreachable {
            addr: addr.to_string(),
            tried: unreachable.join("; "),
        });
    }
    Err(ImportError::Unknown {
        addr: addr.to_string(),
        answers: errors.join("; "),
    })
}

/// Reads the cluster at `addr` (read-only) and returns the plan text. `product` is detected
/// when `None`; `conn_of` gives each product's connection settings (token, TLS), normally
/// [`Connection::from_env`]. Refuses (input error) a cluster whose server names or addresses
/// cannot be written into a plan safely.
pub async fn import(
    addr: &str,
    product: Option<Product>,
    conn_of: impl Fn(Product) -> Connection,
) -> Result<String, ImportError> {
    let product = match product {
        Some(p) => p,
        None => detect(addr, &conn_of).await?,
    };
    let conn = conn_of(product);
    let servers = discover(product, addr, &conn).await?;
    for (n, a) in &servers {
        let refuse = |why: String| ImportError::Unsafe {
            addr: addr.to_string(),
            server: n.clone(),
            why,
        };
        check_server_name(n).map_err(refuse)?;
        check_server_address(a).map_err(refuse)?;
    }
    let mut clients = Vec::new();
    for (n, a) in &servers {
        clients.push((n.clone(), Client::new(a, &conn)?));
    }
    let cluster = LiveCluster {
        product,
        servers: clients,
    };
    let text = render(addr, &cluster, &servers).await?;
    verify(&text, &servers)?;
    Ok(text)
}

/// The plan's `[cluster]` section, written by the TOML serializer (never by formatting values
/// into text: a name is data, whatever characters it has).
#[derive(serde::Serialize)]
struct ClusterDoc {
    cluster: ClusterOut,
}

#[derive(serde::Serialize)]
struct ClusterOut {
    product: String,
    version: String,
    raft_protocol: u8,
    servers: Vec<ServerOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    autopilot: Option<AutopilotOut>,
}

#[derive(serde::Serialize)]
struct ServerOut {
    name: String,
    address: String,
}

#[derive(serde::Serialize)]
struct AutopilotOut {
    cleanup_dead_servers: bool,
    last_contact_threshold: String,
    max_trailing_logs: u64,
    server_stabilization_time: String,
    min_quorum: u64,
}

#[derive(serde::Serialize)]
struct UpgradeDoc {
    upgrade: UpgradeOut,
}

#[derive(serde::Serialize)]
struct UpgradeOut {
    target: String,
}

fn autopilot_of(v: &Value) -> Option<AutopilotOut> {
    if !v.is_object() {
        return None;
    }
    let b = |k: &str| v.get(k).and_then(Value::as_bool).unwrap_or(true);
    let d = |k: &str| {
        let ms = v
            .get(k)
            .and_then(Value::as_str)
            .and_then(go_duration_ms)
            .unwrap_or(0);
        format!("{ms}ms")
    };
    let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some(AutopilotOut {
        cleanup_dead_servers: b("CleanupDeadServers"),
        last_contact_threshold: d("LastContactThreshold"),
        max_trailing_logs: n("MaxTrailingLogs"),
        server_stabilization_time: d("ServerStabilizationTime"),
        min_quorum: n("MinQuorum"),
    })
}

/// Text from the cluster made safe for a TOML comment (escaped, one line).
fn comment(text: &str) -> String {
    text.escape_debug().to_string()
}

async fn render(
    addr: &str,
    cluster: &LiveCluster,
    servers: &[(String, String)],
) -> Result<String, ImportError> {
    let view = cluster.observe().await;
    let versions: Vec<String> = view
        .agents
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok().map(|a| a.version.to_string()))
        .collect();
    let version = versions.first().cloned().ok_or(ImportError::NoAgent)?;
    let protocol = view
        .agents
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok().map(|a| a.raft.protocol_version))
        .max()
        .unwrap_or(3);
    let autopilot = cluster.servers[0]
        .1
        .get("/v1/operator/autopilot/configuration")
        .await
        .map(|a| a.body)
        .unwrap_or(Value::Null);
    let doc = ClusterDoc {
        cluster: ClusterOut {
            product: cluster.product.to_string(),
            version: version.clone(),
            raft_protocol: protocol,
            servers: servers
                .iter()
                .map(|(n, a)| ServerOut {
                    name: n.clone(),
                    address: a.clone(),
                })
                .collect(),
            autopilot: autopilot_of(&autopilot),
        },
    };
    let upgrade = UpgradeDoc {
        upgrade: UpgradeOut {
            target: version.clone(),
        },
    };
    let mut out = format!(
        "# Written by `rehearse import` from {} (read-only).\n",
        comment(addr)
    );
    if versions.iter().any(|v| *v != version) {
        out.push_str(&format!(
            "# WARNING: the servers run different versions: {}\n",
            comment(&versions.join(", "))
        ));
    }
    if let Some(l) = &view.leader {
        out.push_str(&format!("# Leader when imported: {}.\n", comment(l)));
    }
    out.push_str("# Edit upgrade.target, then add an [execute] section (see README).\n\n");
    out.push_str(&toml::to_string(&doc)?);
    out.push_str("\n# upgrade.target: edit, the version to install.\n");
    out.push_str(&toml::to_string(&upgrade)?);
    Ok(out)
}

/// The written plan must parse to exactly the cluster's servers and nothing else (a last
/// check that no name could add a field, a server or a section).
fn verify(text: &str, servers: &[(String, String)]) -> Result<(), ImportError> {
    let plan = Plan::from_str_named(text, "the imported plan").map_err(ImportError::Unparsable)?;
    let got: Vec<(&str, Option<&str>, bool)> = plan
        .cluster
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.address.as_deref(), s.client))
        .collect();
    let want: Vec<(&str, Option<&str>, bool)> = servers
        .iter()
        .map(|(n, a)| (n.as_str(), Some(a.as_str()), false))
        .collect();
    if got != want || plan.execute.is_some() {
        return Err(ImportError::Mismatch);
    }
    Ok(())
}
