//! The fuzzing harness: structure-aware mutations of the project's own inputs, fed to every
//! parser that reads user input, with the property that nothing panics and every input is
//! answered in bounded time. Plans and scenarios that still load also go through lint and a
//! one-seed rehearsal (what `rehearse check --seeds 1` and `rehearse chaos --seeds 1` do).
//!
//! Shared by the short run in the test suite (`tests/fuzz/mod.rs`) and the long run
//! (`examples/fuzz.rs`).

// Shared with examples/fuzz.rs, which reads the statistics this suite ignores.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use rehearse::chaos::scenario;
use rehearse::live::journal::{Installed, Journal};
use rehearse::plan::Plan;
use rehearse::procedure::ProcedureConfig;
use rehearse::rehearsal::{rehearse, sim_config};
use rehearse::report::ReportError;
use rehearse::report::render::Format;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The parsers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Plan files (`Plan::from_path`), then lint and one seed.
    Plan,
    /// Scenario files (`scenario::load`), then one seed.
    Scenario,
    /// Run journals (`Journal::read`).
    Journal,
    /// `rehearse chaos` run records, one a line (`rehearse replay` reads them).
    Records,
    /// Nomad/Consul HTTP answers (`live::parse`).
    Answer,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 5] = [
        Target::Plan,
        Target::Scenario,
        Target::Journal,
        Target::Records,
        Target::Answer,
    ];
}

/// Seed inputs of every target, read from the repository.
pub struct Corpus {
    root: PathBuf,
    plans: Vec<String>,
    /// (subdirectory under scenarios/, text)
    scenarios: Vec<(String, String)>,
    journals: Vec<String>,
    records: Vec<String>,
    answers: Vec<String>,
    /// A directory laid out like the repository (`plans` links to the real one), where
    /// mutated scenarios are written so that their `../../plans/…` paths resolve.
    work: PathBuf,
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

fn read_all(dir: &Path, ext: &str) -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    files(dir, ext, &mut paths);
    paths
        .into_iter()
        .filter_map(|p| Some((p.clone(), std::fs::read_to_string(&p).ok()?)))
        .collect()
}

impl Corpus {
    /// Reads the seeds under `root` (the repository) and prepares a scratch directory.
    pub fn load(root: &Path, scratch: &Path) -> Corpus {
        let plans = read_all(&root.join("plans"), "toml");
        let scenarios = read_all(&root.join("scenarios"), "toml")
            .into_iter()
            .map(|(p, t)| {
                let sub = p
                    .parent()
                    .and_then(Path::file_name)
                    .map_or("x".into(), |n| n.to_string_lossy().into_owned());
                (sub, t)
            })
            .collect();
        let answers = read_all(&root.join("tests/fixtures/nomad"), "json");
        let journals = read_all(&root.join("tests/fixtures/fuzz"), "jsonl");
        std::fs::create_dir_all(scratch.join("scenarios")).expect("scratch directory");
        let link = scratch.join("plans");
        if !link.exists() {
            std::os::unix::fs::symlink(root.join("plans"), &link).expect("link plans/");
        }
        let mut c = Corpus {
            root: root.to_path_buf(),
            plans: plans.into_iter().map(|(_, t)| t).collect(),
            scenarios,
            journals: journals.iter().map(|(_, t)| t.clone()).collect(),
            records: Vec::new(),
            answers: answers.into_iter().map(|(_, t)| t).collect(),
            work: scratch.to_path_buf(),
        };
        c.records = c.record_seeds();
        c
    }

    /// Run records as `rehearse chaos --json` holds them in `runs`, one a line, of two smoke
    /// scenarios (seed 1).
    fn record_seeds(&self) -> Vec<String> {
        let mut smoke = Vec::new();
        files(&self.root.join("scenarios/smoke"), "toml", &mut smoke);
        smoke
            .iter()
            .take(2)
            .filter_map(|p| scenario::load(p).ok())
            .map(|l| {
                let r = scenario::run(&l, Some(1..=1));
                r.runs
                    .iter()
                    .filter_map(|run| serde_json::to_string(run).ok())
                    .map(|line| line + "\n")
                    .collect()
            })
            .collect()
    }

    /// How many seeds a target has.
    pub fn seeds(&self, t: Target) -> usize {
        match t {
            Target::Plan => self.plans.len(),
            Target::Scenario => self.scenarios.len(),
            Target::Journal => self.journals.len(),
            Target::Records => self.records.len(),
            Target::Answer => self.answers.len(),
        }
    }

    fn seed(&self, t: Target, i: &Index) -> &str {
        let n = self.seeds(t).max(1);
        let k = i.index(n);
        match t {
            Target::Plan => self.plans.get(k),
            Target::Scenario => self.scenarios.get(k).map(|(_, s)| s),
            Target::Journal => self.journals.get(k),
            Target::Records => self.records.get(k),
            Target::Answer => self.answers.get(k),
        }
        .map_or("", String::as_str)
    }
}

/// Values that break parsers and simulators: extremes of every type, durations from nothing
/// to centuries, and strings that are too long, empty, or not what a field expects.
pub const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "16",
    "10001",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "0.0001",
    "\"0s\"",
    "\"1ns\"",
    "\"1ms\"",
    "\"1h\"",
    "\"5m\"",
    "\"1y\"",
    "\"1000h\"",
    "\"100000h\"",
    "\"18446744073709551615s\"",
    "\"\"",
    "\"permanent\"",
    "\"loss:leader:1:permanent\"",
    "\"crash:leader:0:1y\"",
    "\"pause:other:18446744073709551615:1s\"",
    "\"999999.99999.99999\"",
    "\"s1.global\"",
    "\"{host}\"",
    "\"\\u0000\"",
    "true",
    "[]",
    "{}",
    "[{ name = \"s1\" }]",
    "[\"a\", \"b\", \"c\"]",
];

/// Keys worth inserting, with the table they belong in ("" for the top level).
pub const KEYS: &[(&str, &str)] = &[
    ("", "seeds"),
    ("", "faults"),
    ("sim", "writes_per_sec"),
    ("sim", "state_entries"),
    ("sim", "snapshot_threshold"),
    ("sim", "snapshot_interval_s"),
    ("sim", "trailing_logs"),
    ("sim", "kill_timeout_s"),
    ("cluster", "raft_multiplier"),
    ("cluster.autopilot", "last_contact_threshold"),
    ("cluster.autopilot", "server_stabilization_time"),
    ("cluster.autopilot", "max_trailing_logs"),
    ("cluster.autopilot", "min_quorum"),
    ("clients", "count"),
    ("upgrade", "install_time"),
    ("upgrade", "parallel"),
    ("upgrade.gate", "stable_for"),
    ("upgrade.gate", "timeout"),
    ("upgrade.gate", "poll"),
    ("upgrade.drain", "deadline"),
    ("execute", "stop_timeout"),
];

/// One edit of an input.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Flip one bit of one byte.
    FlipBit(Index, u8),
    /// Cut the input short.
    Truncate(Index),
    /// Replace the value of a `key = value` line (TOML) or of a JSON value with an extreme.
    ReplaceValue(Index, Index),
    /// Duplicate a line (a duplicated key or record).
    DuplicateLine(Index),
    /// Remove a line (a missing key or record).
    RemoveLine(Index),
    /// Insert a known key with an extreme value into its table.
    InsertKey(Index, Index),
    /// Replace a random byte with a byte that is not valid UTF-8 on its own.
    BadUtf8(Index),
}

/// Any mutation.
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ReplaceValue(a, b)),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::ReplaceValue(a, b)),
        any::<Index>().prop_map(Mutation::DuplicateLine),
        any::<Index>().prop_map(Mutation::RemoveLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::InsertKey(a, b)),
        any::<Index>().prop_map(Mutation::BadUtf8),
    ]
}

/// One fuzz input: a target, a seed, and one to four mutations.
pub fn input(t: Target) -> impl Strategy<Value = (Target, Index, Vec<Mutation>)> {
    (any::<Index>(), prop::collection::vec(mutation(), 1..=4)).prop_map(move |(s, m)| (t, s, m))
}

fn lines_of(text: &str) -> Vec<String> {
    text.split_inclusive('\n').map(str::to_string).collect()
}

/// Applies a mutation to TOML or JSON-lines text.
pub fn apply(bytes: Vec<u8>, m: &Mutation, json: bool) -> Vec<u8> {
    let mut b = bytes;
    match m {
        Mutation::FlipBit(i, bit) if !b.is_empty() => {
            let k = i.index(b.len());
            b[k] ^= 1 << bit;
        }
        Mutation::Truncate(i) => b.truncate(i.index(b.len() + 1)),
        Mutation::BadUtf8(i) if !b.is_empty() => {
            let k = i.index(b.len());
            b[k] = 0xff;
        }
        Mutation::ReplaceValue(line, value) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            let v = EXTREMES[value.index(EXTREMES.len())];
            b = if json {
                replace_json(&text, line, v)
            } else {
                replace_toml(&text, line, v)
            }
            .into_bytes();
        }
        Mutation::DuplicateLine(i) | Mutation::RemoveLine(i) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            let mut lines = lines_of(&text);
            if !lines.is_empty() {
                let k = i.index(lines.len());
                if matches!(m, Mutation::DuplicateLine(_)) {
                    lines.insert(k, lines[k].clone());
                } else {
                    lines.remove(k);
                }
            }
            b = lines.concat().into_bytes();
        }
        Mutation::InsertKey(key, value) if !json => {
            let text = String::from_utf8_lossy(&b).into_owned();
            let (table, k) = KEYS[key.index(KEYS.len())];
            let v = EXTREMES[value.index(EXTREMES.len())];
            b = insert_key(&text, table, k, v).into_bytes();
        }
        _ => {}
    }
    b
}

/// Replaces the value of the `line`-th `key = value` line.
fn replace_toml(text: &str, line: &Index, v: &str) -> String {
    let mut lines = lines_of(text);
    let assignments: Vec<usize> = (0..lines.len())
        .filter(|&i| {
            let l = lines[i].trim_start();
            !l.starts_with('#') && !l.starts_with('[') && l.contains('=')
        })
        .collect();
    if assignments.is_empty() {
        return text.to_string();
    }
    let k = assignments[line.index(assignments.len())];
    if let Some((key, _)) = lines[k].split_once('=') {
        lines[k] = format!("{key}= {v}\n");
    }
    lines.concat()
}

/// Replaces one value in one JSON line with an extreme (TOML spellings become JSON ones).
fn replace_json(text: &str, pick: &Index, v: &str) -> String {
    let mut lines = lines_of(text);
    if lines.is_empty() {
        return text.to_string();
    }
    let k = pick.index(lines.len());
    let Ok(mut doc) = serde_json::from_str::<Value>(lines[k].trim_end()) else {
        return text.to_string();
    };
    let extreme: Value =
        serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.trim_matches('"').to_string()));
    let mut slots = 0usize;
    count_values(&doc, &mut slots);
    let target = pick.index(slots.max(1));
    let mut seen = 0usize;
    replace_nth(&mut doc, target, &mut seen, &extreme);
    lines[k] = format!("{doc}\n");
    lines.concat()
}

fn count_values(v: &Value, n: &mut usize) {
    *n += 1;
    match v {
        Value::Array(a) => a.iter().for_each(|x| count_values(x, n)),
        Value::Object(o) => o.values().for_each(|x| count_values(x, n)),
        _ => {}
    }
}

fn replace_nth(v: &mut Value, target: usize, seen: &mut usize, with: &Value) -> bool {
    if *seen == target {
        *v = with.clone();
        return true;
    }
    *seen += 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| replace_nth(x, target, seen, with)),
        Value::Object(o) => o.values_mut().any(|x| replace_nth(x, target, seen, with)),
        _ => false,
    }
}

/// Inserts `key = v` into `[table]` (after its header; a new table at the end if absent).
fn insert_key(text: &str, table: &str, key: &str, v: &str) -> String {
    let mut lines = lines_of(text);
    if table.is_empty() {
        lines.insert(0, format!("{key} = {v}\n"));
        return lines.concat();
    }
    let header = format!("[{table}]");
    match lines.iter().position(|l| l.trim() == header) {
        Some(i) => lines.insert(i + 1, format!("{key} = {v}\n")),
        None => lines.push(format!("\n{header}\n{key} = {v}\n")),
    }
    lines.concat()
}

/// What one input did, for the long run's statistics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Inputs the parser accepted.
    pub loaded: u64,
    /// Inputs that also ran lint and a one-seed rehearsal.
    pub simulated: u64,
}

/// Runs `f` on another thread and fails if it takes longer than `limit` (a hang) or panics.
pub fn bounded<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    let started = Instant::now();
    let h = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = h.join();
            Ok(v)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
            "{what}: no answer after {:?} (hang)",
            started.elapsed()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let why = h.join().err().map_or_else(String::new, |p| {
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            });
            Err(format!("{what}: panicked: {why}"))
        }
    }
}

/// Builds the mutated input of a case.
pub fn mutate(c: &Corpus, t: Target, seed: &Index, ms: &[Mutation]) -> Vec<u8> {
    let json = matches!(t, Target::Journal | Target::Records | Target::Answer);
    ms.iter().fold(c.seed(t, seed).as_bytes().to_vec(), |b, m| {
        apply(b, m, json)
    })
}

/// Feeds one input to its target; `Err` is a property violation (a panic, a hang, or a plan
/// that loads but cannot be simulated).
pub fn run_case(
    c: &Corpus,
    case: u64,
    t: Target,
    bytes: Vec<u8>,
    limit: Duration,
) -> Result<Stats, String> {
    let dir = c.work.join(format!("case-{}-{case}", std::process::id()));
    let what = format!("{t:?} input {:?}", String::from_utf8_lossy(&bytes));
    let result = match t {
        Target::Plan => {
            let path = dir.join("plan.toml");
            write(&path, &bytes);
            bounded(limit, &what, move || plan_case(&path))
        }
        Target::Scenario => {
            let path = c
                .work
                .join("scenarios/fuzz")
                .join(format!("case-{}-{case}.toml", std::process::id()));
            write(&path, &bytes);
            let p = path.clone();
            let r = bounded(limit, &what, move || scenario_case(&p));
            let _ = std::fs::remove_file(&path);
            r
        }
        Target::Journal => {
            let path = dir.join("journal.jsonl");
            write(&path, &bytes);
            bounded(limit, &what, move || journal_case(&path))
        }
        Target::Records => {
            let path = dir.join("records.jsonl");
            write(&path, &bytes);
            bounded(limit, &what, move || records_case(&path))
        }
        Target::Answer => bounded(limit, &what, move || answer_case(&bytes)),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result.and_then(|r| r.map_err(|e| format!("{what}: {e}")))
}

fn write(path: &Path, bytes: &[u8]) {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).expect("scratch directory");
    }
    std::fs::write(path, bytes).expect("write the case");
}

fn plan_case(path: &Path) -> Result<Stats, String> {
    let Ok(plan) = Plan::from_path(path) else {
        return Ok(Stats::default());
    };
    let _ = rehearse::plan::lint::lint(&plan);
    let cfg = ProcedureConfig::from_plan(&plan);
    // A plan that loads is a world the simulator accepts: `check` on it must not fail with
    // an error that names no file.
    rehearse(&cfg, sim_config(&plan, 1))
        .map_err(|e| format!("a plan that loads is not a valid world: {e}"))?;
    Ok(Stats {
        loaded: 1,
        simulated: 1,
    })
}

fn scenario_case(path: &Path) -> Result<Stats, String> {
    let Ok(l) = scenario::load(path) else {
        return Ok(Stats::default());
    };
    let _ = rehearse::plan::lint::lint(&l.plan);
    let _ = scenario::run(&l, Some(1..=1));
    Ok(Stats {
        loaded: 1,
        simulated: 1,
    })
}

fn journal_case(path: &Path) -> Result<Stats, String> {
    match Journal::read(path) {
        Ok(records) => {
            let _ = Installed::from_records(&records);
            // A journal that reads is reported on: the live report never panics on it, and
            // refuses only bad input (corrupt times), naming the journal.
            if !records.is_empty() {
                let rate = "2/year".parse().map_err(|e| format!("{e:?}"))?;
                match rehearse::report::live::build(&records, "journal", None, None, &rate) {
                    Ok(report) => {
                        for f in [Format::Markdown, Format::Json] {
                            rehearse::report::render::render(&report, f)
                                .map_err(|e| format!("live report: {e}"))?;
                        }
                    }
                    Err(ReportError::Journal(m)) if m.starts_with("journal journal: ") => {}
                    Err(e) => return Err(format!("live report: {e}")),
                }
            }
            Ok(Stats {
                loaded: 1,
                simulated: 0,
            })
        }
        Err(e) if e.message.contains("line") || e.message.contains("UTF-8") => Ok(Stats::default()),
        Err(e) => Err(format!("a journal error that names no line: {e}")),
    }
}

fn records_case(path: &Path) -> Result<Stats, String> {
    let args = rehearse::cmd::replay::Args {
        records: path.to_path_buf(),
        line: None,
        trace: None,
    };
    match rehearse::cmd::replay::run(args) {
        Ok(_) => Ok(Stats {
            loaded: 1,
            simulated: 1,
        }),
        Err(e) if e.message.contains(&path.display().to_string()) => Ok(Stats::default()),
        Err(e) => Err(format!("a replay error that names no records file: {e}")),
    }
}

include!("answer_shapes.rs");

fn answer_case(bytes: &[u8]) -> Result<Stats, String> {
    if !parse_every_answer_shape(bytes) {
        return Ok(Stats::default());
    }
    Ok(Stats {
        loaded: 1,
        simulated: 0,
    })
}
