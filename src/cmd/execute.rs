//! `rehearse execute plan.toml [--apply]`: run the rehearsed procedure on the live cluster.
//! A dry run by default (reads the cluster, runs the preflight, prints what it would do).
//! Exit 0 done (or dry run ready), 1 halted safely / interrupted / dry-run preflight not met,
//! 2 bad input (unreachable cluster, refused token, plan not matching the cluster): nothing done.

use super::{has_errors, load, print_findings};
use crate::cli::{CliError, Verdict};
use crate::live::client::Connection;
use crate::live::executor::{ExecError, ExecOptions, ExecOutcome, ExecStats, execute};
use crate::plan::lint::lint;
use rehearse_model::versions::Product;
use std::path::PathBuf;

/// Arguments of `rehearse execute`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file (with an `[execute]` section for `--apply`).
    pub plan: PathBuf,
    /// Act on the cluster. Without it, nothing is changed.
    #[arg(long)]
    pub apply: bool,
    /// Journal file (default: next to the plan, `<plan>.journal.jsonl`). A rerun resumes from it.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Where snapshots are saved (default: the journal's directory).
    #[arg(long)]
    pub snapshot_dir: Option<PathBuf>,
    /// Address used to discover servers the plan gives no address for (default: NOMAD_ADDR or
    /// CONSUL_HTTP_ADDR).
    #[arg(long)]
    pub addr: Option<String>,
    /// Write the outcome and measurements (total time, probe) as JSON to this file.
    #[arg(long)]
    pub stats: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let plan = load(&args.plan)?;
    let text = std::fs::read_to_string(&args.plan)
        .map_err(|e| CliError::new(format!("{}: {e}", args.plan.display())))?;
    let findings = lint(&plan);
    if has_errors(&findings) {
        print_findings(&findings);
        return Err(CliError::new(format!(
            "{}: the plan has lint errors; fix them (rehearse lint) before executing",
            args.plan.display()
        )));
    }
    let opts = exec_options(&args, plan.cluster.product);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::new(format!("cannot start the async runtime: {e}")))?;
    let (outcome, stats) = match rt.block_on(execute(&plan, &text, &opts)) {
        Ok(done) => done,
        Err(ExecError::Input(m)) => return Err(CliError::new(m)),
        // After the first action: not an input error, whatever the cause.
        Err(ExecError::Stopped(m)) => {
            eprintln!("error: {m}");
            return Ok(Verdict::Violated);
        }
    };
    let verdict = print_outcome(&outcome, &opts);
    if args.apply {
        print_stats(&stats);
    }
    if let Some(path) = &args.stats {
        let doc = serde_json::json!({
            "outcome": format!("{outcome:?}"),
            "completed": matches!(outcome, ExecOutcome::Done(_)),
            "stats": stats,
        });
        std::fs::write(path, doc.to_string())
            .map_err(|e| CliError::new(format!("--stats {}: {e}", path.display())))?;
    }
    Ok(verdict)
}

/// The journal (default: next to the plan), snapshot directory (default: the journal's) and
/// connection the arguments and environment give.
fn exec_options(args: &Args, product: Product) -> ExecOptions {
    let journal = args.journal.clone().unwrap_or_else(|| {
        let mut p = args.plan.clone().into_os_string();
        p.push(".journal.jsonl");
        PathBuf::from(p)
    });
    let snapshot_dir = args.snapshot_dir.clone().unwrap_or_else(|| {
        journal
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), PathBuf::from)
    });
    ExecOptions {
        apply: args.apply,
        journal,
        snapshot_dir,
        addr: args
            .addr
            .clone()
            .unwrap_or_else(|| Connection::env_addr(product)),
        conn: Connection::from_env(product),
    }
}

/// Prints how the run ended; the exit verdict.
fn print_outcome(outcome: &ExecOutcome, opts: &ExecOptions) -> Verdict {
    match outcome {
        ExecOutcome::DryRun { unmet } if unmet.is_empty() => Verdict::Ok,
        ExecOutcome::DryRun { .. } => Verdict::Violated,
        ExecOutcome::Done(s) => {
            out!(
                "done: upgraded {} (leader last: {})",
                s.order.join(", "),
                s.leader_last
            );
            for n in &s.notes {
                out!("note: {n}");
            }
            Verdict::Ok
        }
        ExecOutcome::AlreadyDone => {
            out!(
                "journal {} says this plan already completed; nothing to do (move the journal away to run it again)",
                opts.journal.display()
            );
            Verdict::Ok
        }
        ExecOutcome::Halted(h) => {
            out!("halted safely: {h}");
            out!(
                "fix the cause and rerun the same command: it resumes (servers already upgraded are not restarted)"
            );
            Verdict::Violated
        }
        ExecOutcome::Interrupted => {
            out!("interrupted: rerun the same command to resume");
            Verdict::Violated
        }
    }
}

/// This attempt's time and the write probe's summary.
fn print_stats(stats: &ExecStats) {
    out!("total time: {:.1}s", stats.total_ms as f64 / 1000.0);
    if let Some(p) = &stats.probe {
        out!(
            "write probe: {} attempted, {} acknowledged, longest unavailable {:.1}s (total {:.1}s), acknowledged writes lost: {}",
            p.attempted,
            p.acknowledged,
            p.longest_unavailable_ms as f64 / 1000.0,
            p.unavailable_ms as f64 / 1000.0,
            p.lost.len()
        );
    }
    if let Some(why) = &stats.probe_unverified {
        out!("write probe: acknowledged writes NOT verified: {why}");
    }
}
