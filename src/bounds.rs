//! Limits on what a user can hand the simulator, checked where the input is read.
//!
//! Every number and duration that reaches the simulator has an upper bound here: the cost of a
//! simulated run grows with the simulated time it covers (about 3 MB and 20 ms of work per
//! simulated hour of a steady 3-server cluster), with the write rate and with the number of
//! nodes, so an unbounded value turns a typo (`"1000h"`, `10001` clients) into minutes of work,
//! gigabytes of memory or an abort. The limits are generous next to real upgrades (a reboot
//! takes minutes, Nomad's default drain deadline is one hour) and small enough that the worst
//! plan still rehearses one seed in seconds.
//!
//! The checks return `(field, message)` like `Plan::validate`; `line_of` finds the field's line
//! in the file's text so that every message can name the file, the line and the field.

use crate::chaos::scenario::SimOverrides;
use crate::plan::Plan;
use std::ops::Range;
use std::path::Path;

const SEC: u64 = 1_000_000_000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;

/// Most seeds one command may rehearse (`--seeds`, `--explore-seeds`, a scenario's `seeds`):
/// each seed's outcome is kept until the summary, and at about a second a seed a larger count
/// would not finish in a day anyway.
pub const MAX_SEEDS: u64 = 100_000;
/// Largest plan, scenario, journal or records file read (bytes): real ones are a few KB; a
/// bigger file is a mistake, and parsing it whole would hold it in memory several times.
pub const MAX_INPUT_BYTES: u64 = 16 << 20;
/// Longest server down time for an install (`upgrade.install_time`): a reboot or a package
/// install takes minutes; longer is an outage, not an upgrade step.
pub const MAX_INSTALL_NS: u64 = HOUR;
/// Longest gate wait (`upgrade.gate.timeout`), drain deadline (`upgrade.drain.deadline`,
/// Nomad's own default is one hour) and workload settle time (`upgrade.verify.settle`).
pub const MAX_WAIT_NS: u64 = HOUR;
/// Longest gate poll interval: a gate that looks less often than this sees nothing.
pub const MAX_POLL_NS: u64 = 5 * MIN;
/// Longest autopilot timer (`last_contact_threshold`, `server_stabilization_time`) and
/// `execute.stop_timeout`.
pub const MAX_TIMER_NS: u64 = HOUR;
/// Shortest non-zero `upgrade.gate.stable_for` that lint accepts. Autopilot refreshes server
/// health every 2 s (Nomad and Consul `ServerHealthInterval`): a gate that needs health for
/// less than one refresh can pass on the value computed before the restart (a server is
/// reported healthy for up to 2 s after it went down, and again before it has caught up), so
/// it does not show the restarted server is healthy. `0` is the explicit "first answer wins"
/// setting, reported by lint R010 like this.
pub const MIN_STABLE_FOR_NS: u64 = 2 * SEC;
/// Largest `upgrade.verify.max_eval_backlog`: Nomad's broker holds every evaluation in the
/// leader's memory, and a million waiting is an outage, not a bound.
pub const MAX_EVAL_BACKLOG: u64 = 1_000_000;
/// Most jobs in a plan, and most groups in one job: a plan lists the jobs whose drain and
/// recovery matter, not a whole cluster's catalogue.
pub const MAX_JOBS: u64 = 1_000;
/// Longest simulated time of `rehearse simulate --duration`: 30 days (the simulator's memory
/// stays flat in simulated time; a 30-day run of 5 servers at 10 writes/s takes seconds).
pub const MAX_SIMULATE_NS: u64 = 30 * 24 * HOUR;
/// Highest write rate (writes per simulated second): Nomad clusters register jobs and
/// evaluations at tens to hundreds a second; every write is simulated one by one.
pub const MAX_WRITES_PER_SEC: f64 = 1_000.0;
/// Largest FSM at the start (`sim.state_entries`): InstallSnapshot time grows with it.
pub const MAX_STATE_ENTRIES: u64 = 100_000_000;
/// Largest raft log count setting (`snapshot_threshold`, `trailing_logs`, autopilot
/// `max_trailing_logs`).
pub const MAX_LOG_ENTRIES: u64 = 1_000_000_000;
/// Longest `sim.snapshot_interval_s` and `sim.kill_timeout_s`, in seconds.
pub const MAX_SIM_SECS: u64 = 24 * 3_600;
/// Longest span of a journal's records, first to last (ms): a year. Attempts can be days
/// apart (a halt, a fix, a rerun); a longer span means corrupt times, and the live report's
/// sums of milliseconds (and nanoseconds) stay far from overflowing below it.
pub const MAX_JOURNAL_SPAN_MS: u64 = 366 * 24 * HOUR / 1_000_000;
/// Longest fault duration (`kind:target:step:duration`), in seconds; `permanent` is the
/// unbounded form.
pub const MAX_FAULT_SECS: u64 = 24 * 3_600;

type Bad = (String, String);

fn too_big(field: &str, what: String) -> Result<(), Bad> {
    Err((field.to_string(), what))
}

/// A duration field at most `max_ns`.
fn duration(field: &str, ns: u64, max_ns: u64) -> Result<(), Bad> {
    if ns > max_ns {
        return too_big(
            field,
            format!(
                "{} is longer than the limit of {}",
                fmt_ns(ns),
                fmt_ns(max_ns)
            ),
        );
    }
    Ok(())
}

/// A count at most `max`.
fn count(field: &str, n: u64, max: u64) -> Result<(), Bad> {
    if n > max {
        return too_big(field, format!("{n} is more than the limit of {max}"));
    }
    Ok(())
}

/// Checks a parsed plan's numbers and durations against the limits, naming the field.
pub fn plan(p: &Plan) -> Result<(), Bad> {
    // The server count is checked by `Plan::validate` (before its per-server checks).
    plan_autopilot(p)?;
    let max_nodes = rehearse_sim::clients::MAX_NODES as u64;
    count("clients.count", p.clients.count as u64, max_nodes)?;
    plan_upgrade(p)?;
    if let Some(x) = &p.execute {
        duration("execute.stop_timeout", x.stop_timeout, MAX_TIMER_NS)?;
    }
    plan_jobs(p)
}

/// Checks the plan's `[cluster.autopilot]` timers and counts against the limits.
fn plan_autopilot(p: &Plan) -> Result<(), Bad> {
    let max_servers = rehearse_sim::world::MAX_SERVERS as u64;
    let a = &p.cluster.autopilot;
    duration(
        "cluster.autopilot.last_contact_threshold",
        a.last_contact_threshold,
        MAX_TIMER_NS,
    )?;
    duration(
        "cluster.autopilot.server_stabilization_time",
        a.server_stabilization_time,
        MAX_TIMER_NS,
    )?;
    count(
        "cluster.autopilot.max_trailing_logs",
        a.max_trailing_logs,
        MAX_LOG_ENTRIES,
    )?;
    count(
        "cluster.autopilot.min_quorum",
        a.min_quorum as u64,
        max_servers,
    )
}

/// Checks the plan's `[upgrade]` numbers and durations, client batches included.
fn plan_upgrade(p: &Plan) -> Result<(), Bad> {
    let max_servers = rehearse_sim::world::MAX_SERVERS as u64;
    let max_nodes = rehearse_sim::clients::MAX_NODES as u64;
    let u = &p.upgrade;
    count("upgrade.parallel", u.parallel as u64, max_servers)?;
    duration("upgrade.install_time", u.install_time, MAX_INSTALL_NS)?;
    duration("upgrade.gate.stable_for", u.gate.stable_for, MAX_WAIT_NS)?;
    duration("upgrade.gate.timeout", u.gate.timeout, MAX_WAIT_NS)?;
    duration("upgrade.gate.poll", u.gate.poll, MAX_POLL_NS)?;
    duration("upgrade.drain.deadline", u.drain.deadline, MAX_WAIT_NS)?;
    duration("upgrade.verify.settle", u.verify.settle, MAX_WAIT_NS)?;
    if let Some(c) = &u.clients {
        count(
            "upgrade.clients.max_parallel",
            c.max_parallel as u64,
            max_nodes,
        )?;
        let deadline = c.drain_deadline.unwrap_or(0);
        duration("upgrade.clients.drain_deadline", deadline, MAX_WAIT_NS)?;
        let install = c.install_time.unwrap_or(0);
        duration("upgrade.clients.install_time", install, MAX_INSTALL_NS)?;
    }
    count(
        "upgrade.verify.max_eval_backlog",
        u.verify.max_eval_backlog,
        MAX_EVAL_BACKLOG,
    )
}

/// Checks the plan's job count and each job's groups (count, kill timeout, migrate stanza).
fn plan_jobs(p: &Plan) -> Result<(), Bad> {
    let max_nodes = rehearse_sim::clients::MAX_NODES as u64;
    count("jobs", p.jobs.len() as u64, MAX_JOBS)?;
    for (i, j) in p.jobs.iter().enumerate() {
        count(
            &format!("jobs[{i}].groups"),
            j.groups.len() as u64,
            MAX_JOBS,
        )?;
        for (k, g) in j.groups.iter().enumerate() {
            let at = format!("jobs[{i}].groups[{k}]");
            count(&format!("{at}.count"), g.count as u64, max_nodes)?;
            duration(&format!("{at}.kill_timeout"), g.kill_timeout, MAX_WAIT_NS)?;
            if let Some(m) = &g.migrate {
                count(
                    &format!("{at}.migrate.max_parallel"),
                    m.max_parallel as u64,
                    max_nodes,
                )?;
                duration(
                    &format!("{at}.migrate.min_healthy_time"),
                    m.min_healthy_time,
                    MAX_WAIT_NS,
                )?;
                duration(
                    &format!("{at}.migrate.healthy_deadline"),
                    m.healthy_deadline,
                    MAX_WAIT_NS,
                )?;
            }
        }
    }
    Ok(())
}

/// Checks a scenario's `[sim]` overrides against the limits, naming the field.
pub fn sim_overrides(o: &SimOverrides) -> Result<(), Bad> {
    if let Some(w) = o.writes_per_sec
        && !(w.is_finite() && (0.0..=MAX_WRITES_PER_SEC).contains(&w))
    {
        return too_big(
            "sim.writes_per_sec",
            format!("{w} is not between 0 and {MAX_WRITES_PER_SEC}"),
        );
    }
    let fields = [
        ("sim.state_entries", o.state_entries, MAX_STATE_ENTRIES),
        (
            "sim.snapshot_threshold",
            o.snapshot_threshold,
            MAX_LOG_ENTRIES,
        ),
        ("sim.trailing_logs", o.trailing_logs, MAX_LOG_ENTRIES),
        (
            "sim.snapshot_interval_s",
            o.snapshot_interval_s,
            MAX_SIM_SECS,
        ),
        ("sim.kill_timeout_s", o.kill_timeout_s, MAX_SIM_SECS),
    ];
    for (field, v, max) in fields {
        count(field, v.unwrap_or(0), max)?;
    }
    // The simulator's own bound on `num_schedulers` (`WorkloadPlaneConfig::validate`).
    let workers = o.upgraded_num_schedulers.unwrap_or(0);
    count("sim.upgraded_num_schedulers", u64::from(workers), 64)?;
    Ok(())
}

/// Why a seed range is refused (each names the flag).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedRangeError {
    /// A count of 0.
    #[error("{flag}: must be at least 1")]
    Zero {
        /// The count's flag.
        flag: String,
    },
    /// More than [`MAX_SEEDS`].
    #[error("{flag}: {count} is more than the limit of {} seeds", MAX_SEEDS)]
    TooMany {
        /// The count's flag.
        flag: String,
        /// The count.
        count: u64,
    },
    /// A range past `u64::MAX`.
    #[error(
        "--seed {first} with {flag} {count}: the seeds would run past {}; use a smaller --seed",
        u64::MAX
    )]
    Wraps {
        /// `--seed`.
        first: u64,
        /// The count's flag.
        flag: String,
        /// The count.
        count: u64,
    },
}

/// The seeds `first..first+count`, refusing a count of 0, more than `MAX_SEEDS`, or a range
/// past `u64::MAX` (a wrapped range would rehearse no seed and report "safe").
pub fn seed_range(first: u64, count: u64, flag: &str) -> Result<Range<u64>, SeedRangeError> {
    let flag = flag.to_string();
    if count == 0 {
        return Err(SeedRangeError::Zero { flag });
    }
    if count > MAX_SEEDS {
        return Err(SeedRangeError::TooMany { flag, count });
    }
    let end = first
        .checked_add(count)
        .ok_or(SeedRangeError::Wraps { first, flag, count })?;
    Ok(first..end)
}

/// A duration in nanoseconds as the shortest exact text (`1ms`, `1m 30s`, `0s`).
pub fn fmt_ns(ns: u64) -> String {
    humantime::format_duration(std::time::Duration::from_nanos(ns)).to_string()
}

/// Why an input file could not be read as text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading it failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// It is larger than [`MAX_INPUT_BYTES`].
    #[error("{}: larger than the limit of {} bytes", path.display(), MAX_INPUT_BYTES)]
    TooLarge {
        /// The file.
        path: std::path::PathBuf,
    },
    /// It is not UTF-8 (the message has the byte offset and line, see [`utf8`]).
    #[error("{}: {message}", path.display())]
    NotUtf8 {
        /// The file.
        path: std::path::PathBuf,
        /// Where.
        message: String,
    },
}

/// Reads a text file for parsing: at most `MAX_INPUT_BYTES`, and valid UTF-8, with messages
/// that name the file and, for bad UTF-8, the byte offset and line.
pub fn read_text(path: &Path) -> Result<String, ReadError> {
    use std::io::Read;
    let io = |source| ReadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(ReadError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    utf8(bytes).map_err(|message| ReadError::NotUtf8 {
        path: path.to_path_buf(),
        message,
    })
}

/// Bytes as UTF-8 text, or a message with the byte offset and line of the first bad byte.
pub fn utf8(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        format!("line {line}: invalid UTF-8 at byte offset {at}; save the file as UTF-8")
    })
}

/// The 1-based line of a field's value in TOML text, for a dotted path such as
/// `upgrade.gate.poll` or `cluster.servers[3].name` (the table's line when the field itself
/// is absent, i.e. defaulted; `None` when neither is in the text).
pub fn line_of(text: &str, field: &str) -> Option<usize> {
    let (root, _) = toml::de::DeTable::parse_recoverable(text);
    let mut span = None;
    let mut table = Some(root.get_ref());
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    for part in field.split('.') {
        let (key, index) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let Some(t) = table.or_else(|| value.and_then(|v| v.as_table())) else {
            break;
        };
        let Some((_, v)) = t.iter().find(|(k, _)| k.get_ref() == key) else {
            break;
        };
        span = Some(v.span());
        let mut here = v.get_ref();
        if let Some(i) = index {
            match here.as_array().and_then(|a| a.get(i)) {
                Some(item) => {
                    span = Some(item.span());
                    here = item.get_ref();
                }
                None => break,
            }
        }
        table = None;
        value = Some(here);
    }
    let start = span?.start.min(text.len());
    Some(
        1 + text.as_bytes()[..start]
            .iter()
            .filter(|&&b| b == b'\n')
            .count(),
    )
}

/// `name` with the line of `field` when the text has it: `plan.toml, line 12`.
pub fn at_line(name: &str, text: &str, field: &str) -> String {
    match line_of(text, field) {
        Some(line) => format!("{name}, line {line}"),
        None => name.to_string(),
    }
}

/// The path (`obs.servers[2].status`) of the JSON value at byte `at` of one line of JSON,
/// for messages about a journal or records line: serde_json names the column, not the field.
/// Empty at the top level; best effort on malformed text.
pub fn json_path_at(line: &str, at: usize) -> String {
    // One frame per open container: its key or index so far.
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut string: Option<String> = None;
    let mut escaped = false;
    let mut last_string = String::new();
    for (i, c) in line.char_indices() {
        if i >= at {
            break;
        }
        if let Some(s) = string.as_mut() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => last_string = string.take().unwrap_or_default(),
                (false, c) => s.push(c),
            }
            continue;
        }
        match (c, stack.last_mut()) {
            ('"', _) => string = Some(String::new()),
            ('{', _) => stack.push(Frame::Object(None)),
            ('[', _) => stack.push(Frame::Array(0)),
            ('}' | ']', _) => {
                stack.pop();
            }
            (':', Some(Frame::Object(key))) => *key = Some(std::mem::take(&mut last_string)),
            (',', Some(Frame::Object(key))) => *key = None,
            (',', Some(Frame::Array(n))) => *n += 1,
            _ => {}
        }
    }
    let mut path = String::new();
    for f in &stack {
        match f {
            Frame::Object(Some(k)) if path.is_empty() => path.push_str(k),
            Frame::Object(Some(k)) => path.push_str(&format!(".{k}")),
            Frame::Object(None) => {}
            Frame::Array(n) => path.push_str(&format!("[{n}]")),
        }
    }
    path
}

/// A serde_json error on one line of a JSON-lines file, with the field it is about:
/// `field obs.servers[2].status: unknown variant …`.
pub fn json_error(line: &str, e: &serde_json::Error) -> String {
    let message = e.to_string();
    let path = if e.column() > 0 {
        // serde_json's columns are 1-based and point at the last byte it read.
        json_path_at(line, e.column() - 1)
    } else {
        // A tagged enum (a journal record) is buffered first, and its errors lose their
        // position: find the value the message quotes (`unknown variant `x``, `invalid
        // type: string "x"`) in the line instead.
        let quoted = message
            .split('`')
            .nth(1)
            .or_else(|| message.split('"').nth(1))
            .filter(|q| !q.is_empty());
        match quoted {
            Some(q) if message.starts_with("missing field") => q.to_string(),
            Some(q) => line
                .find(&format!("\"{q}\""))
                .or_else(|| line.find(q))
                .map(|at| json_path_at(line, at + 1))
                .unwrap_or_default(),
            None => String::new(),
        }
    };
    if path.is_empty() {
        e.to_string()
    } else {
        format!("field {path}: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_ranges_never_wrap() {
        assert_eq!(seed_range(1, 4, "--seeds"), Ok(1..5));
        assert!(seed_range(u64::MAX, 1, "--seeds").is_err());
        assert!(seed_range(u64::MAX - 1, 1, "--seeds").is_ok());
        assert!(seed_range(1, 0, "--seeds").is_err());
        assert!(seed_range(1, i64::MAX as u64, "--seeds").is_err());
    }

    #[test]
    fn fields_are_found_on_their_line() {
        let t = "[cluster]\nservers = [\n { name = \"a\" },\n { name = \"b\" },\n]\n[upgrade.gate]\npoll = \"1y\"\n";
        assert_eq!(line_of(t, "upgrade.gate.poll"), Some(7));
        assert_eq!(line_of(t, "cluster.servers[1].name"), Some(4));
        assert_eq!(line_of(t, "cluster.servers"), Some(2));
        assert_eq!(line_of(t, "upgrade.gate.timeout"), Some(6));
        assert_eq!(line_of(t, "nothing.here"), None);
        assert_eq!(line_of("not = [toml", "x"), None);
    }

    #[test]
    fn bad_utf8_names_offset_and_line() {
        let e = utf8(b"a = 1\nb = \"\xff\"\n".to_vec()).unwrap_err();
        assert!(e.contains("line 2") && e.contains("byte offset 11"), "{e}");
    }

    #[test]
    fn json_errors_name_the_field() {
        let line = r#"{"record":"action_end","at_ms":1,"result":"maybe","x":[1,{"y":2}]}"#;
        let at = line.find("maybe").unwrap();
        assert_eq!(json_path_at(line, at), "result");
        assert_eq!(json_path_at(line, line.find("2}").unwrap()), "x[1].y");
        assert_eq!(json_path_at(line, 0), "");
        let e = serde_json::from_str::<crate::live::journal::Record>(line).unwrap_err();
        let m = json_error(line, &e);
        assert!(m.contains("field result"), "{m}");
        let line = r#"{"record":"interrupted"}"#;
        let e = serde_json::from_str::<crate::live::journal::Record>(line).unwrap_err();
        assert!(json_error(line, &e).contains("field at_ms"), "{e}");
        let line = r#"{"seed": [1, {"a": true}]}"#;
        let e =
            serde_json::from_str::<std::collections::BTreeMap<String, Vec<u64>>>(line).unwrap_err();
        assert!(json_error(line, &e).contains("field seed[1]"), "{e}");
    }

    #[test]
    fn durations_print_exactly() {
        assert_eq!(fmt_ns(1_000_000), "1ms");
        assert_eq!(fmt_ns(0), "0s");
        assert_eq!(fmt_ns(90 * SEC), "1m 30s");
    }
}
