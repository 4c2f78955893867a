//! `rehearse merge --json OUT FILES…` / `--junit OUT FILES…`: combines the outputs of
//! `rehearse chaos --shard i/n` runs into one; and `rehearse merge SHARDS… [--json OUT]
//! [--junit OUT]`: combines the `--out` files of `rehearse explore --shard i/n` runs, after
//! checking they are every shard of one sweep exactly once, and prints the summary the whole
//! sweep run in one process prints.

use crate::chaos::shard::{UnitRecord, check_set, junit, read_shard, sum};
use crate::cli::{CliError, Verdict};
use crate::cmd::explore::summary;
use std::path::PathBuf;

/// Arguments of `rehearse merge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Shard outputs: `explore --out` files, or for chaos JSON-lines files (`--json`) or JUnit
    /// XML files (`--junit`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the merged JSON lines here (chaos), or the merged totals and findings (explore).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the merged JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

fn read(p: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(p).map_err(|e| CliError::new(format!("{}: {e}", p.display())))
}

/// Runs the command. Exit 1 when a merged JUnit file has failures, or a merged sweep has an
/// unsafe run.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    if explore_shards(&args.inputs)? {
        return merge_sweep(&args);
    }
    if args.json.is_some() && args.junit.is_some() {
        return Err(CliError::new(
            "chaos outputs: give --json OUT or --junit OUT, not both",
        ));
    }
    if let Some(out) = &args.json {
        let mut all = String::new();
        for p in &args.inputs {
            for (i, l) in read(p)?
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                serde_json::from_str::<serde_json::Value>(l)
                    .map_err(|e| CliError::new(format!("{}:{}: {e}", p.display(), i + 1)))?;
                all.push_str(l);
                all.push('\n');
            }
        }
        std::fs::write(out, all)
            .map_err(|e| CliError::new(format!("--json {}: {e}", out.display())))?;
        return Ok(Verdict::Ok);
    }
    let out = args
        .junit
        .as_ref()
        .ok_or_else(|| CliError::new("give --json OUT or --junit OUT"))?;
    let (mut cases, mut tests, mut failures) = (String::new(), 0usize, 0usize);
    for p in &args.inputs {
        let x = read(p)?;
        let start = x
            .find("<testcase ")
            .ok_or_else(|| CliError::new(format!("{}: no test cases", p.display())));
        let Ok(start) = start else { continue };
        let end = x
            .rfind("</testsuite>")
            .ok_or_else(|| CliError::new(format!("{}: not rehearse JUnit", p.display())))?;
        let body = &x[start..end];
        tests += body.matches("<testcase ").count();
        failures += body.matches("<failure ").count();
        cases.push_str(body);
    }
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rehearse chaos\" tests=\"{tests}\" failures=\"{failures}\">\n<testsuite name=\"scenarios\" tests=\"{tests}\" failures=\"{failures}\">\n{cases}</testsuite>\n</testsuites>\n"
    );
    std::fs::write(out, xml)
        .map_err(|e| CliError::new(format!("--junit {}: {e}", out.display())))?;
    out!("{tests} test cases, {failures} failed");
    Ok(if failures == 0 {
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
    print!("{}", summary(&sweep, &t, &how));
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
    if let Some(path) = &args.json {
        let v = serde_json::json!({"sweep": sweep, "totals": t, "how": how});
        let text = serde_json::to_string_pretty(&v).map_err(|e| CliError::new(e.to_string()))?;
        std::fs::write(path, text)
            .map_err(|e| CliError::new(format!("--json {}: {e}", path.display())))?;
    }
    if let Some(path) = &args.junit {
        let mut ordered = units.clone();
        ordered.sort_by_key(|u| (u.seed, u.step));
        std::fs::write(path, junit(&sweep, &ordered))
            .map_err(|e| CliError::new(format!("--junit {}: {e}", path.display())))?;
    }
    Ok(if t.unsafe_runs == 0 {
        Verdict::Ok
    } else {
        Verdict::Violated
    })
}
