//! `rehearse merge --json OUT FILES…` / `--junit OUT FILES…`: combines the outputs of
//! `rehearse chaos --shard i/n` runs into one.

use crate::cli::{CliError, Verdict};
use std::path::PathBuf;

/// Arguments of `rehearse merge`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Shard outputs: JSON-lines files (`--json`) or JUnit XML files (`--junit`).
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the merged JSON lines here.
    #[arg(long, conflicts_with = "junit")]
    pub json: Option<PathBuf>,
    /// Write the merged JUnit XML here.
    #[arg(long)]
    pub junit: Option<PathBuf>,
}

fn read(p: &PathBuf) -> Result<String, CliError> {
    std::fs::read_to_string(p).map_err(|e| CliError::new(format!("{}: {e}", p.display())))
}

/// Runs the command. Exit 1 when a merged JUnit file has failures.
pub fn run(args: Args) -> Result<Verdict, CliError> {
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
