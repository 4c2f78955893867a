//! `rehearse import [--addr URL] [--product nomad|consul] > plan.toml`: read-only. Writes a
//! plan describing the live cluster (servers and their addresses, version, raft protocol,
//! autopilot settings) for the operator to edit: the target version and the `[execute]`
//! section are theirs to fill in.

use crate::cli::{CliError, Verdict};
use crate::live::client::{Client, Connection, Secret};
use crate::live::cluster::LiveCluster;
use crate::live::executor::discover;
use crate::live::parse::go_duration_ms;
use crate::plan::{Plan, check_server_address, check_server_name};
use rehearse_model::api::ApiError;
use rehearse_model::versions::Product;
use serde_json::Value;

/// Arguments of `rehearse import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A server's HTTP address (default: NOMAD_ADDR, else CONSUL_HTTP_ADDR, else Nomad's default).
    #[arg(long)]
    pub addr: Option<String>,
    /// Product (default: detected without a token, from an endpoint only that product has).
    #[arg(long, value_enum)]
    pub product: Option<ProductArg>,
}

/// `--product` values.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum ProductArg {
    /// HashiCorp Nomad.
    Nomad,
    /// HashiCorp Consul.
    Consul,
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    let addr = args.addr.unwrap_or_else(default_addr);
    let product = args.product.map(|p| match p {
        ProductArg::Nomad => Product::Nomad,
        ProductArg::Consul => Product::Consul,
    });
    let text = rt
        .block_on(import(&addr, product, Connection::from_env))
        .map_err(CliError::new)?;
    out!("{}", text.trim_end_matches('\n'));
    Ok(Verdict::Ok)
}

fn default_addr() -> String {
    ["NOMAD_ADDR", "CONSUL_HTTP_ADDR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| Connection::env_addr(Product::Nomad))
}

/// Which product answers at `addr`, asked without any token: each product has an endpoint the
/// other lacks that needs no ACL token (Nomad's `/v1/regions`, Consul's
/// `/v1/catalog/datacenters`), so neither product's token is ever sent to the other's server.
/// Each product's TLS settings are tried (NOMAD_CACERT… or CONSUL_CACERT…): a server that
/// cannot be reached with one product's settings may be reached with the other's.
async fn detect(addr: &str, conn_of: &impl Fn(Product) -> Connection) -> Result<Product, String> {
    let mut errors = Vec::new();
    let mut unreachable = Vec::new();
    for (p, path) in [
        (Product::Nomad, "/v1/regions"),
        (Product::Consul, "/v1/catalog/datacenters"),
    ] {
        let mut conn = conn_of(p);
        conn.token = Secret::default();
        let c = Client::new(addr, &conn).map_err(|e| e.0)?;
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
        return Err(format!(
            "{addr}: unreachable ({}): check --addr, that the server runs, and the TLS settings (NOMAD_CACERT/CONSUL_CACERT, client certificate and key)",
            unreachable.join("; ")
        ));
    }
    Err(format!(
        "{addr}: neither a Nomad nor a Consul agent answered ({}); pass --product",
        errors.join("; ")
    ))
}

/// Reads the cluster at `addr` (read-only) and returns the plan text. `product` is detected
/// when `None`; `conn_of` gives each product's connection settings (token, TLS), normally
/// [`Connection::from_env`]. Refuses (input error) a cluster whose server names or addresses
/// cannot be written into a plan safely.
pub async fn import(
    addr: &str,
    product: Option<Product>,
    conn_of: impl Fn(Product) -> Connection,
) -> Result<String, String> {
    let product = match product {
        Some(p) => p,
        None => detect(addr, &conn_of).await?,
    };
    let conn = conn_of(product);
    let servers = discover(product, addr, &conn)
        .await
        .map_err(|e| e.to_string())?;
    for (n, a) in &servers {
        let refuse = |why: String| {
            format!(
                "{addr}: the cluster's server {n:?} cannot be written into a plan safely ({why}); no plan written"
            )
        };
        check_server_name(n).map_err(refuse)?;
        check_server_address(a).map_err(refuse)?;
    }
    let mut clients = Vec::new();
    for (n, a) in &servers {
        clients.push((n.clone(), Client::new(a, &conn).map_err(|e| e.0)?));
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
) -> Result<String, String> {
    let view = cluster.observe().await;
    let versions: Vec<String> = view
        .agents
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok().map(|a| a.version.to_string()))
        .collect();
    let version = versions
        .first()
        .cloned()
        .ok_or("no server answered /v1/agent/self")?;
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
    let ser = |e: toml::ser::Error| format!("cannot write the plan: {e}");
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
    out.push_str(&toml::to_string(&doc).map_err(ser)?);
    out.push_str("\n# upgrade.target: edit, the version to install.\n");
    out.push_str(&toml::to_string(&upgrade).map_err(ser)?);
    Ok(out)
}

/// The written plan must parse to exactly the cluster's servers and nothing else (a last
/// check that no name could add a field, a server or a section).
fn verify(text: &str, servers: &[(String, String)]) -> Result<(), String> {
    let plan = Plan::from_str_named(text, "the imported plan")
        .map_err(|e| format!("the cluster cannot be written as a plan: {e}; no plan written"))?;
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
        return Err(
            "the imported plan does not read back as the cluster's servers; no plan written".into(),
        );
    }
    Ok(())
}
