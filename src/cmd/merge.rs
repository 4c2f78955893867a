//! `rehearse merge FILES… [--json] [--json-out OUT] [--junit OUT]`: combines the outputs of
//! sharded runs into one. Explore shards (`explore --shard i/n --out FILE`) are checked to be
//! every shard of one sweep exactly once and merged into the summary, document and JUnit the
//! whole sweep run in one process gives; chaos shards' `--json-out` documents into one
//! document; chaos shards' `--junit` files into one JUnit file.

use crate::chaos::shard::{UnitRecord, check_set, junit, read_shard, sum};
use crate::chaos::summary::summary;
use crate::cli::{CliError, Verdict};
use crate::output::{JsonArgs, read_junit, write_junit};
use std::path::PathBuf;

/// Arguments of `rehearse merge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Shard outputs: `explore --out` files, or chaos `--json-out` documents (or JSON-lines
    /// record files), or chaos `--junit` files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// The merged document: the totals and findings (explore), or the scenarios and runs
    /// (chaos documents), or the test counts (JUnit files).
    #[command(flatten)]
    pub out: JsonArgs,
    /// Write the merged JUnit XML here (explore shards, or chaos JUnit files).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}

fn read(p: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(p).map_err(|e| CliError::new(format!("{}: {e}", p.display())))
}

/// Runs the command. Exit 1 when a merged JUnit file or chaos document has failures, or a
/// merged sweep has an unsafe run.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    args.out.route_human_text();
    if explore_shards(&args.inputs)? {
        return merge_sweep(&args);
    }
    let xml =
        |p: &PathBuf| -> Result<bool, CliError> { Ok(read(p)?.trim_start().starts_with('<')) };
    let first_xml = xml(&args.inputs[0])?;
    for p in &args.inputs[1..] {
        if xml(p)? != first_xml {
            return Err(CliError::new(format!(
                "{}: {} unlike {}: merge JUnit files or JSON documents, not both",
                p.display(),
                if first_xml {
                    "not JUnit XML"
                } else {
                    "JUnit XML"
                },
                args.inputs[0].display()
            )));
        }
    }
    if first_xml {
        merge_junit(&args)
    } else {
        merge_chaos_json(&args)
    }
}

/// Chaos shards' JUnit files into one suite.
fn merge_junit(args: &Args) -> Result<Verdict, CliError> {
    if args.junit.is_none() && !args.out.wanted() {
        return Err(CliError::new("JUnit inputs: give --junit OUT (or --json)"));
    }
    let mut suite = quick_junit::TestSuite::new("scenarios");
    let mut name = None;
    for p in &args.inputs {
        let r = read_junit(p)?;
        name = name.or(r.name.clone());
        for s in r.test_suites {
            suite.add_test_cases(s.test_cases);
        }
    }
    let (tests, failures) = (suite.tests, suite.failures + suite.errors);
    let mut report =
        quick_junit::Report::new(name.map_or_else(|| "rehearse chaos".into(), |n| n.into_string()));
    report.add_test_suite(suite);
    if let Some(out) = &args.junit {
        write_junit(out, &report)?;
    }
    out!("{tests} test cases, {failures} failed");
    args.out
        .emit(serde_json::json!({"tests": tests, "failures": failures}))?;
    Ok(if failures == 0 {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
}

/// Chaos shards' JSON documents (or JSON-lines record files) into one document.
fn merge_chaos_json(args: &Args) -> Result<Verdict, CliError> {
    if args.junit.is_some() {
        return Err(CliError::new(
            "--junit: chaos JSON inputs hold no JUnit; merge the shards' --junit files",
        ));
    }
    if !args.out.wanted() {
        return Err(CliError::new("JSON inputs: give --json or --json-out OUT"));
    }
    let (mut scenarios, mut runs) = (Vec::new(), Vec::new());
    for p in &args.inputs {
        let text = read(p)?;
        if let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(r) = doc.get("runs").and_then(|r| r.as_array())
        {
            runs.extend(r.iter().cloned());
            if let Some(s) = doc.get("scenarios").and_then(|s| s.as_array()) {
                scenarios.extend(s.iter().cloned());
            }
            continue;
        }
        for (i, l) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let v = serde_json::from_str::<serde_json::Value>(l)
                .map_err(|e| CliError::new(format!("{}:{}: {e}", p.display(), i + 1)))?;
            runs.push(v);
        }
    }
    let failed = scenarios.iter().filter(|s| s["passed"] == false).count();
    out!(
        "{} scenarios ({failed} failed), {} runs",
        scenarios.len(),
        runs.len()
    );
    args.out.emit(serde_json::json!({
        "passed": scenarios.len() - failed,
        "failed": failed,
        "scenarios": scenarios,
        "runs": runs,
    }))?;
    Ok(if failed == 0 {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
}

/// Whether the inputs are `explore --out` shards (first line a `sweep` line); every input must
/// then be one.
fn explore_shards(inputs: &[PathBuf]) -> Result<bool, CliError> {
    let first_line = |p: &PathBuf| -> Result<bool, CliError> {
        let text = read(p)?;
        let line = text.lines().next().unwrap_or("");
        Ok(serde_json::from_str::<serde_json::Value>(line)
            .is_ok_and(|v| v.get("type").and_then(|t| t.as_str()) == Some("sweep")))
    };
    let Some(first) = inputs.first() else {
        return Ok(false);
    };
    if !first_line(first)? {
        return Ok(false);
    }
    for p in &inputs[1..] {
        if !first_line(p)? {
            return Err(CliError::new(format!(
                "{}: not an explore shard (line 1 is not a `sweep` line), unlike {}",
                p.display(),
                first.display()
            )));
        }
    }
    Ok(true)
}

/// Merges explore shards: checks, sums, prints the summary, writes --json and --junit.
fn merge_sweep(args: &Args) -> Result<Verdict, CliError> {
    let mut files = Vec::new();
    for p in &args.inputs {
        let f = read_shard(p).map_err(CliError::new)?;
        files.push((p.display().to_string(), f));
    }
    let files = check_set(files).map_err(CliError::new)?;
    let sweep = files[0].1.sweep.clone();
    let units: Vec<&UnitRecord> = files.iter().flat_map(|(_, f)| &f.units).collect();
    let mut seen = std::collections::BTreeSet::new();
    for (name, f) in &files {
        for u in &f.units {
            if !seen.insert((u.seed, u.step)) {
                return Err(CliError::new(format!(
                    "{name}: unit seed {} step {} is in another shard too",
                    u.seed, u.step
                )));
            }
        }
    }
    let (mut t, how) = sum(units.iter().copied());
    t.simulated = files.iter().filter_map(|(_, f)| f.done).map(|d| d.0).sum();
    out!("{}", summary(&sweep, &t, &how).trim_end_matches('\n'));
    let wall: Vec<String> = files
        .iter()
        .filter_map(|(_, f)| f.done)
        .map(|d| format!("{:.1}", d.1))
        .collect();
    eprintln!(
        "  work: {} shards, {} runs simulated in all, shard wall times {} s",
        files.len(),
        t.simulated,
        wall.join(" ")
    );
    args.out
        .emit(serde_json::json!({"sweep": sweep, "totals": t, "how": how}))?;
    if let Some(path) = &args.junit {
        let mut ordered = units.clone();
        ordered.sort_by_key(|u| (u.seed, u.step));
        write_junit(path, &junit(&sweep, &ordered))?;
    }
    Ok(if t.unsafe_runs == 0 {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
}
