//! `rehearse import [--addr URL] [--product nomad|consul] > plan.toml`: read-only. Writes a
//! plan describing the live cluster (servers and their addresses, version, raft protocol,
//! autopilot settings) for the operator to edit: the target version and the `[execute]`
//! section are theirs to fill in.

use crate::cli::{CliError, Verdict};
use crate::live::client::{Client, Connection};
use crate::live::cluster::LiveCluster;
use crate::live::executor::discover;
use crate::live::parse::go_duration_ms;
use rehearse_model::versions::Product;
use serde_json::Value;
use std::fmt::Write;

/// Arguments of `rehearse import`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A server's HTTP address (default: NOMAD_ADDR, else CONSUL_HTTP_ADDR, else Nomad's default).
    #[arg(long)]
    pub addr: Option<String>,
    /// Product (default: detected from `/v1/agent/self`).
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
    let text = rt.block_on(import(args)).map_err(CliError::new)?;
    out!("{}", text.trim_end_matches('\n'));
    Ok(Verdict::Ok)
}

fn default_addr() -> String {
    ["NOMAD_ADDR", "CONSUL_HTTP_ADDR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|a| !a.is_empty()))
        .unwrap_or_else(|| Connection::env_addr(Product::Nomad))
}

async fn detect(addr: &str) -> Result<Product, String> {
    // Each product's token header is tried in turn (Consul ignores X-Nomad-Token and the
    // reverse), so a cluster with ACLs answers the one whose token is set.
    // Each product's TLS settings too (NOMAD_CACERT… or CONSUL_CACERT…): a server that cannot
    // be reached with one product's settings may be reached with the other's.
    let mut errors = Vec::new();
    let mut unreachable = Vec::new();
    for p in [Product::Nomad, Product::Consul] {
        let c = Client::new(addr, &Connection::from_env(p)).map_err(|e| e.0)?;
        match c.get("/v1/agent/self").await {
            Ok(a) if a.body.get("config").is_some() => return Ok(Product::Nomad),
            Ok(a) if a.body.get("Config").is_some() => return Ok(Product::Consul),
            Ok(_) => errors.push(format!("{p}: unexpected /v1/agent/self")),
            Err(e @ rehearse_model::api::ApiError::Unreachable { .. }) => {
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
        "{addr}: neither a Nomad nor a Consul agent answered /v1/agent/self ({}); set NOMAD_TOKEN or CONSUL_HTTP_TOKEN, or pass --product",
        errors.join("; ")
    ))
}

async fn import(args: Args) -> Result<String, String> {
    let addr = args.addr.unwrap_or_else(default_addr);
    let product = match args.product {
        Some(ProductArg::Nomad) => Product::Nomad,
        Some(ProductArg::Consul) => Product::Consul,
        None => detect(&addr).await?,
    };
    let conn = Connection::from_env(product);
    let servers = discover(product, &addr, &conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut clients = Vec::new();
    for (n, a) in &servers {
        clients.push((n.clone(), Client::new(a, &conn).map_err(|e| e.0)?));
    }
    let cluster = LiveCluster {
        product,
        servers: clients,
    };
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
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Written by `rehearse import` from {addr} (read-only)."
    );
    if versions.iter().any(|v| *v != version) {
        let _ = writeln!(
            out,
            "# WARNING: the servers run different versions: {versions:?}"
        );
    }
    if let Some(l) = &view.leader {
        let _ = writeln!(out, "# Leader when imported: {l}.");
    }
    let _ = writeln!(
        out,
        "# Edit upgrade.target, then add an [execute] section (see README).\n"
    );
    let _ = writeln!(
        out,
        "[cluster]\nproduct = \"{product}\"\nversion = \"{version}\"\nraft_protocol = {protocol}"
    );
    let _ = writeln!(out, "servers = [");
    for (n, a) in &servers {
        let _ = writeln!(out, "  {{ name = \"{n}\", address = \"{a}\" }},");
    }
    let _ = writeln!(out, "]\n");
    if autopilot.is_object() {
        let _ = writeln!(out, "[cluster.autopilot]");
        let b = |k: &str| autopilot.get(k).and_then(Value::as_bool).unwrap_or(true);
        let d = |k: &str| {
            autopilot
                .get(k)
                .and_then(Value::as_str)
                .and_then(go_duration_ms)
                .unwrap_or(0)
        };
        let n = |k: &str| autopilot.get(k).and_then(Value::as_u64).unwrap_or(0);
        let _ = writeln!(out, "cleanup_dead_servers = {}", b("CleanupDeadServers"));
        let _ = writeln!(
            out,
            "last_contact_threshold = \"{}ms\"",
            d("LastContactThreshold")
        );
        let _ = writeln!(out, "max_trailing_logs = {}", n("MaxTrailingLogs"));
        let _ = writeln!(
            out,
            "server_stabilization_time = \"{}ms\"",
            d("ServerStabilizationTime")
        );
        let _ = writeln!(out, "min_quorum = {}\n", n("MinQuorum"));
    }
    let _ = writeln!(
        out,
        "[upgrade]\ntarget = \"{version}\"   # edit: the version to install"
    );
    Ok(out)
}
