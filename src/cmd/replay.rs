//! `rehearse replay RECORDS [--line N] [--trace FILE]`: re-runs a run recorded by
//! `rehearse chaos --json`/`--json-out` exactly, checks the scenario has not changed since (its hash) and
//! that the trace hash is the same, and can write the full trace.

use crate::chaos::FaultHooks;
use crate::chaos::explore::classify;
use crate::chaos::scenario::load;
use crate::cli::{CliError, Verdict};
use crate::rehearsal::rehearse_with;
use std::path::PathBuf;

/// Arguments of `rehearse replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run records: a `rehearse chaos --json-out` document (or its `--json` stdout), or a
    /// JSON-lines file with one record a line.
    pub records: PathBuf,
    /// Which record (1-based: the line, or the place in the document's `runs`; default: the
    /// first unsafe one, else the first).
    #[arg(long)]
    pub line: Option<usize>,
    /// Write the replayed run's trace as JSON lines to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    let name = args.records.display().to_string();
    let text = crate::bounds::read_text(&args.records).map_err(CliError::new)?;
    let records = parse_records(&name, &text)?;
    let pick = match args.line {
        Some(n) => records.iter().find(|(i, _)| *i == n),
        None => records
            .iter()
            .find(|(_, r)| r["class"] == "unsafe")
            .or(records.first()),
    };
    let (line, rec) = pick.ok_or_else(|| CliError::new(format!("{name}: no such record")))?;
    let field = |k: &str| {
        rec[k].as_str().map(str::to_string).ok_or_else(|| {
            CliError::new(format!("{name}:{line}: field {k}: missing or not a string"))
        })
    };
    let file = PathBuf::from(field("file")?);
    let seed = rec["seed"].as_u64().ok_or_else(|| {
        CliError::new(format!(
            "{name}:{line}: field seed: missing or not a number"
        ))
    })?;
    // The record names the scenario file: its errors name the record too.
    let l = load(&file).map_err(|e| CliError::new(format!("{name}:{line}: field file: {e}")))?;
    let recorded_hash = field("scenario_hash")?;
    if format!("{:016x}", l.hash) != recorded_hash {
        return Err(CliError::new(format!(
            "{name}:{line}: field scenario_hash: {}: the scenario or its plan changed since the record (hash {recorded_hash}); cannot replay exactly",
            file.display()
        )));
    }
    let cfg = l.procedure();
    let mut hooks = FaultHooks::new(l.faults.clone());
    hooks.keep_trace = args.trace.is_some();
    let o = rehearse_with(&cfg, l.sim_config(seed), &mut hooks)
        .map_err(|e| CliError::new(e.to_string()))?;
    let trace_hash = format!("{:016x}", o.trace_hash);
    let same = trace_hash == field("trace_hash")?;
    out!(
        "replayed {} seed {seed}: {:?}, trace {trace_hash} ({})",
        l.scenario.name,
        classify(&o),
        if same { "identical" } else { "DIFFERENT" }
    );
    for step in &o.steps {
        out!(
            "  {:>8.1}s  {:<10} {}",
            step.at_ms as f64 / 1e3,
            format!("{:?}", step.phase),
            step.action
        );
    }
    if let Some(path) = &args.trace {
        std::fs::write(path, &hooks.trace_jsonl)
            .map_err(|e| CliError::new(format!("--trace {}: {e}", path.display())))?;
    }
    Ok(if same { Verdict::Ok } else { Verdict::Violated })
}

/// The run records in `text`, each with its number (its place in `runs`, or its line).
fn parse_records(name: &str, text: &str) -> Result<Vec<(usize, serde_json::Value)>, CliError> {
    // A `chaos --json` document holds its records in `runs` (numbered from 1); older files
    // are JSON lines, one record a line.
    let doc = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("runs").and_then(|r| r.as_array()).cloned());
    match doc {
        Some(runs) => Ok(runs
            .into_iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
            .collect()),
        None => lines(name, text),
    }
}

/// Records of a JSON-lines file, with their line numbers.
fn lines(name: &str, text: &str) -> Result<Vec<(usize, serde_json::Value)>, CliError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map(|v| (i + 1, v)).map_err(|e| {
                let what = crate::bounds::json_error(l, &e);
                CliError::new(format!("{name}:{}: not a run record: {what}", i + 1))
            })
        })
        .collect()
}
