//! `rehearse import [--addr URL] [--product nomad|consul] > plan.toml`: read-only. Writes a
//! plan describing the live cluster (servers and their addresses, version, raft protocol,
//! autopilot settings) for the operator to edit: the target version and the `[execute]`
//! section are theirs to fill in.

use crate::cli::{CliError, Verdict};
use crate::live::client::Connection;
use crate::live::import::import;
use rehearse_model::versions::Product;

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
