//! `rehearse simulate`: run the simulated cluster for a while and summarise what happened.

use crate::cli::{CliError, Verdict, parse_duration_ns};
use rehearse_model::time::SEC;
use rehearse_model::versions::{Product, Version};
use rehearse_sim::{SimConfig, SimTime, World};
use std::io::Write;
use std::path::PathBuf;

/// Arguments of `rehearse simulate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Number of servers.
    #[arg(long, default_value_t = 3)]
    pub servers: usize,
    /// Simulated duration, e.g. 10m.
    #[arg(long, default_value = "10m")]
    pub duration: String,
    /// The seed; the same seed replays the same run.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Product whose defaults to use.
    #[arg(long, value_enum, default_value_t = ProductArg::Nomad)]
    pub product: ProductArg,
    /// Server version (Nomad default 1.9.7; Consul is always 1.8.7).
    #[arg(long)]
    pub version: Option<String>,
    /// raft_multiplier (1–10); default per product.
    #[arg(long)]
    pub raft_multiplier: Option<u32>,
    /// Job registrations per simulated second.
    #[arg(long, default_value_t = 10.0)]
    pub write_rate: f64,
    /// Kill -9 the leader at this simulated time, e.g. 60s.
    #[arg(long)]
    pub crash_leader_at: Option<String>,
    /// Write the trace as JSON lines to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
}

/// Product choice on the command line.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductArg {
    /// Nomad servers.
    Nomad,
    /// Consul servers.
    Consul,
}

/// Builds the simulation config from the flags, naming the flag on error.
pub fn sim_config(args: &Args) -> Result<SimConfig, CliError> {
    if args.servers == 0 {
        return Err(CliError::new("--servers: must be at least 1"));
    }
    let mut cfg = match args.product {
        ProductArg::Nomad => {
            let v = match &args.version {
                Some(v) => v
                    .parse::<Version>()
                    .map_err(|e| CliError::new(format!("--version: {e}")))?,
                None => Version::new(1, 9, 7),
            };
            SimConfig::nomad(args.servers, v, args.seed)
        }
        ProductArg::Consul => SimConfig::consul(args.servers, args.seed),
    };
    if let Some(m) = args.raft_multiplier {
        cfg.raft_multiplier = m;
    }
    let max_rate = crate::bounds::MAX_WRITES_PER_SEC;
    if !(args.write_rate.is_finite() && (0.0..=max_rate).contains(&args.write_rate)) {
        return Err(CliError::new(format!(
            "--write-rate: {} is not between 0 and {max_rate}",
            args.write_rate
        )));
    }
    cfg.workload.writes_per_sec = args.write_rate;
    cfg.validate().map_err(|e| CliError::new(e.to_string()))?;
    Ok(cfg)
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let duration_ns = parse_duration_ns("--duration", &args.duration)?;
    if duration_ns > crate::bounds::MAX_SIMULATE_NS {
        return Err(CliError::new(format!(
            "--duration: {} is longer than the limit of {}",
            crate::bounds::fmt_ns(duration_ns),
            crate::bounds::fmt_ns(crate::bounds::MAX_SIMULATE_NS)
        )));
    }
    let crash_at = args
        .crash_leader_at
        .as_deref()
        .map(|t| parse_duration_ns("--crash-leader-at", t))
        .transpose()?;
    let cfg = sim_config(&args)?;
    let product = cfg.product;
    let mut world = World::new(cfg).map_err(|e| CliError::new(e.to_string()))?;
    if let Some(at) = crash_at.filter(|&at| at < duration_ns) {
        world.run_until(SimTime(at));
        crate::logging::set_sim_time_ns(at);
        match world.leader() {
            Some(l) => {
                tracing::info!(server = world.server_name(l), "kill -9 the leader");
                world.crash(l);
            }
            None => tracing::warn!("no leader to crash at the requested time"),
        }
    }
    world.run_until(SimTime(duration_ns));
    crate::logging::set_sim_time_ns(duration_ns);
    if let Some(path) = &args.trace {
        write_trace(&world, path)?;
    }
    print_summary(&world, &args, product);
    if world.violations().is_empty() {
        Ok(Verdict::Ok)
    } else {
        Ok(Verdict::Violated)
    }
}

fn write_trace(world: &World, path: &PathBuf) -> Result<(), CliError> {
    let file = std::fs::File::create(path)
        .map_err(|e| CliError::new(format!("--trace {}: {e}", path.display())))?;
    let mut out = std::io::BufWriter::new(file);
    world
        .trace_log()
        .write_jsonl(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new(format!("--trace {}: {e}", path.display())))
}

fn print_summary(world: &World, args: &Args, product: Product) {
    let m = world.metrics();
    let w = world.workload();
    let secs = world.now().as_nanos() as f64 / SEC as f64;
    out!(
        "simulated {product} cluster: {} servers, {secs:.0}s, seed {}",
        args.servers,
        args.seed
    );
    out!("  elections started      {}", m.elections);
    out!("  leader changes         {}", m.leader_changes);
    out!(
        "  time without a leader  {:.3}s",
        m.no_leader_ns as f64 / 1e9
    );
    out!(
        "  time without quorum    {:.3}s",
        m.quorum_lost_ns as f64 / 1e9
    );
    out!(
        "  writes                 {} submitted, {} acknowledged, {} failed, {} acknowledged-then-lost",
        w.submitted,
        w.acked,
        w.failed,
        w.lost_acked
    );
    out!("  invariant violations   {}", world.violations().len());
    for v in world.violations() {
        out!("    {} at {}: {}", v.invariant, v.at, v.detail);
    }
    out!("  trace hash             {:016x}", world.trace_hash());
    if !world.violations().is_empty() {
        out!("replay: {}", replay_line(args));
    }
}

/// The one line that reproduces this run.
fn replay_line(a: &Args) -> String {
    let mut s = format!(
        "rehearse simulate --servers {} --duration {} --seed {} --write-rate {}",
        a.servers, a.duration, a.seed, a.write_rate
    );
    if a.product == ProductArg::Consul {
        s.push_str(" --product consul");
    }
    if let Some(v) = &a.version {
        s.push_str(&format!(" --version {v}"));
    }
    if let Some(m) = a.raft_multiplier {
        s.push_str(&format!(" --raft-multiplier {m}"));
    }
    if let Some(t) = &a.crash_leader_at {
        s.push_str(&format!(" --crash-leader-at {t}"));
    }
    s
}
