//! `rehearse explore plan.toml [--faults 1|2] [--seeds N]`: every fault at every step, or a
//! sample of fault pairs; one shard of a sweep (`--shard i/n --out FILE`), resumable.

use crate::chaos::Fault;
use crate::chaos::explore::{
    Class, Totals, baseline, boundaries, by_first_step, for_each_run_in, schedules, shrink_finding,
};
use crate::chaos::pairs::for_each_pair;
use crate::chaos::sample::{Coverage, PairSpace, thousands};
use crate::chaos::shard::{
    Line, PairSpaceInfo, ShardFile, Sweep, UnitRecord, difference, in_shard, junit, parse_shard,
    read_shard, sum,
};
use crate::chaos::summary::{replay_line, summary};
use crate::chaos::sweep::{Collector, Out, write_line};
use crate::cli::{CliError, Verdict};
use crate::cmd::{VariantArg, load};
use crate::plan::Plan;
use crate::procedure::{ProcedureConfig, Variant};
use crate::progress::Progress;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Arguments of `rehearse explore`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan file.
    pub plan: PathBuf,
    /// Faults per run: 1 (every single fault) or 2 (ordered pairs: all distinct pairs when
    /// there are at most --max-runs of them, else a stratified sample of --max-runs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    pub faults: u8,
    /// Seeds per fault schedule.
    #[arg(long, default_value_t = 4)]
    pub seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Most fault schedules to try.
    #[arg(long, default_value_t = 200_000)]
    pub max_runs: usize,
    /// With --faults 2: run a sample of this many distinct pairs, stratified by the first
    /// fault's kind × role × step (every stratum gets one when N is at least their number).
    #[arg(long)]
    pub sample: Option<u64>,
    /// The sample's seed: the same seed, plan and options give the same sample everywhere.
    #[arg(long, default_value_t = 1)]
    pub sample_seed: u64,
    /// Run only shard i of n (`2/4`) of the sweep: a deterministic part of its (seed, step)
    /// units. Merge the shards' --out files with `rehearse merge`.
    #[arg(long)]
    pub shard: Option<String>,
    /// Stream the sweep's results to this file as JSON lines (a `sweep` header, one line per
    /// finished unit, a `done` line).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Go on with the sweep in --out: skip the units it has, run the rest.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Seconds between progress lines on stderr when it is not a terminal (0: a line per run).
    #[arg(long, default_value_t = 10)]
    pub progress_every: u64,
    /// Explore a deliberately broken procedure instead.
    #[arg(long, value_enum)]
    pub variant: Option<VariantArg>,
    /// Run only this fault schedule (repeat for two), e.g. `crash:other:7:30s`: the replay form.
    #[arg(long = "fault")]
    pub only: Vec<String>,
    /// Machine output: `{"schema_version": 1, "sweep": …, "totals": …, "how": …}`, the totals
    /// with every finding (for the JSON-lines stream of a shard, see --out).
    #[command(flatten)]
    pub out_json: crate::output::JsonArgs,
    /// Write JUnit XML (one test case per seed and first-fault step) to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Stop at the first unsafe run (time to first detection; the totals cover the runs done).
    #[arg(long)]
    pub fail_fast: bool,
    /// Shrink this many unsafe findings (the first ones) to minimal schedules: drop faults,
    /// shorten durations, move them to earlier steps, keeping the run unsafe. 0 turns it off.
    #[arg(long, default_value_t = 1)]
    pub shrink: usize,
}

/// Runs the command.
pub fn run(args: Args) -> Result<Verdict, CliError> {
    args.out_json.route_human_text();
    let s = setup(&args)?;
    let units_mine = (0..s.sweep.units).filter(|&u| in_shard(u, s.shard)).count() as u64;
    let header = Line::Sweep {
        schema_version: crate::output::SCHEMA_VERSION,
        sweep: s.sweep.clone(),
        shard: [s.shard.0 + 1, s.shard.1],
        units: units_mine,
    };
    let (earlier, out, was_done) = open_out(&args, &header)?;
    let ran = run_units(&args, &s, &earlier, out.as_ref(), was_done)?;
    let mut all: Vec<&UnitRecord> = earlier
        .iter()
        .chain(&ran.finished)
        .chain(&ran.partial)
        .collect();
    let (mut t, how) = sum(all.iter().copied());
    t.simulated = ran.simulated;
    t.stopped_early = ran.stopped_early;
    if let (Some(f), Some((runs, secs))) = (&mut t.first_unsafe, ran.first_unsafe) {
        (f.after_runs, f.after_s) = (runs, secs);
    }
    out!("{}", summary(&s.sweep, &t, &how).trim_end_matches('\n'));
    work_line(&ran);
    if s.shard.1 == 1 {
        shrink_findings(&args, &s.sweep, &s.plan, &s.cfg, &s.steps, &mut t);
    }
    args.out_json
        .emit(serde_json::json!({"sweep": s.sweep, "totals": t, "how": how}))?;
    if let Some(path) = &args.junit {
        all.sort_by_key(|u| (u.seed, u.step));
        crate::output::write_junit(path, &junit(&s.sweep, &all))?;
    }
    Ok(
        if t.unsafe_runs == 0 && t.lost_allocations == 0 && t.stalled_workload == 0 {
            Verdict::Ok
        } else {
            Verdict::Violated
        },
    )
}

/// The sweep the arguments describe, before anything runs.
struct Setup {
    seeds: Vec<u64>,
    /// `(k, n)`: this process runs the units `u` with `u % n == k`.
    shard: (u64, u64),
    plan: Plan,
    cfg: ProcedureConfig,
    /// Steps at which a fault can be injected (the baseline's action boundaries).
    steps: Vec<usize>,
    scheds: Vec<Vec<Fault>>,
    /// First-fault step → the schedules that start there.
    groups: Vec<(usize, Vec<usize>)>,
    sweep: Sweep,
}

/// Checks the arguments, reads the plan and lays out the schedules and the sweep header.
fn setup(args: &Args) -> Result<Setup, CliError> {
    let seed_range =
        crate::bounds::seed_range(args.seed, args.seeds, "--seeds").map_err(CliError::new)?;
    if args.sample.is_some() && args.faults != 2 {
        return Err(CliError::new(
            "--sample: takes --faults 2 (single faults are all run)",
        ));
    }
    let shard = args
        .shard
        .as_deref()
        .map(parse_shard)
        .transpose()
        .map_err(CliError::new)?
        .unwrap_or((0, 1));
    let plan = load(&args.plan)?;
    let text = std::fs::read_to_string(&args.plan)
        .map_err(|e| CliError::new(format!("{}: {e}", args.plan.display())))?;
    let variant: Variant = args.variant.map_or(Variant::Safe, Into::into);
    let cfg = variant.apply(ProcedureConfig::from_plan(&plan));
    let steps = boundaries(&baseline(&plan, &cfg, args.seed));
    let (scheds, pairs) = sweep_schedules(args, &steps)?;
    let groups = by_first_step(&scheds);
    let sweep = Sweep {
        version: env!("CARGO_PKG_VERSION").to_string(),
        plan: args.plan.display().to_string(),
        plan_sha256: crate::live::executor::plan_digest(&text),
        procedure: format!("{variant:?}"),
        variant: args.variant.map(variant_name),
        faults: args.faults,
        seed: args.seed,
        seeds: args.seeds,
        max_runs: args.max_runs,
        sample: args.sample,
        sample_seed: args.sample_seed,
        only: args.only.clone(),
        schedules: scheds.len() as u64,
        units: args.seeds * groups.len() as u64,
        pairs,
    };
    Ok(Setup {
        seeds: seed_range.collect(),
        shard,
        plan,
        cfg,
        steps,
        scheds,
        groups,
        sweep,
    })
}

/// What this process ran of the sweep.
struct Ran {
    simulated: u64,
    wall_s: f64,
    /// Runs done here.
    done: u64,
    /// Runs and seconds until the first unsafe run.
    first_unsafe: Option<(u64, f64)>,
    stopped_early: bool,
    /// Units finished here.
    finished: Vec<UnitRecord>,
    /// Units cut short by --fail-fast (they count in the totals printed, not in the file).
    partial: Vec<UnitRecord>,
}

/// Runs this shard's units not in `earlier`, writing each finished unit (and the `done` line)
/// to `out`.
fn run_units(
    args: &Args,
    s: &Setup,
    earlier: &[UnitRecord],
    out: Option<&Out>,
    was_done: bool,
) -> Result<Ran, CliError> {
    let (seeds, groups) = (&s.seeds, &s.groups);
    let done_units: BTreeSet<(u64, usize)> = earlier.iter().map(|u| (u.seed, u.step)).collect();
    let g_of: BTreeMap<usize, (usize, usize)> = groups
        .iter()
        .enumerate()
        .map(|(g, (step, m))| (*step, (g, m.len())))
        .collect();
    let todo = |seed_pos: usize, step: usize| {
        let u = (seed_pos * groups.len() + g_of[&step].0) as u64;
        in_shard(u, s.shard) && !done_units.contains(&(seeds[seed_pos], step))
    };
    let n_units = seeds.len() * groups.len();
    let runs_todo = runs_to_do(s, &todo);
    let coll = collector(args, s, g_of.clone(), out, runs_todo);
    let simulated = simulate(args, s, &coll, &todo);
    coll.progress.finish();
    let wall_s = coll.progress.started.elapsed().as_secs_f64();
    let finished = std::mem::take(&mut *coll.finished.lock().unwrap_or_else(|e| e.into_inner()));
    let partial: Vec<UnitRecord> = (0..n_units)
        .filter(|&u| coll.left[u].load(Ordering::Relaxed) > 0)
        .map(|u| coll.take(u, u / groups.len(), groups[u % groups.len()].0))
        .filter(|r| r.runs > 0)
        .collect();
    let stopped_early = coll.progress.done() < runs_todo;
    if let Some(o) = out
        && !stopped_early
        && !was_done
    {
        write_line(o, &Line::Done { simulated, wall_s }, &coll.failed);
    }
    let (done, first_unsafe) = (coll.progress.done(), coll.progress.first_unsafe());
    if let Some(e) = coll.failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
        let path = args.out.as_deref().unwrap_or(Path::new("-"));
        return Err(CliError::new(format!("--out {}: {e}", path.display())));
    }
    Ok(Ran {
        simulated,
        wall_s,
        done,
        first_unsafe,
        stopped_early,
        finished,
        partial,
    })
}

/// How many runs the units `todo` selects hold.
fn runs_to_do(s: &Setup, todo: &dyn Fn(usize, usize) -> bool) -> u64 {
    let (seeds, groups) = (&s.seeds, &s.groups);
    (0..seeds.len())
        .flat_map(|sp| {
            groups
                .iter()
                .map(move |(step, m)| (sp, *step, m.len() as u64))
        })
        .filter(|&(sp, step, _)| todo(sp, step))
        .map(|(_, _, n)| n)
        .sum()
}

/// A collector for every unit of the sweep, none of it run yet, with progress over `runs_todo`.
fn collector<'a>(
    args: &Args,
    s: &'a Setup,
    g_of: BTreeMap<usize, (usize, usize)>,
    out: Option<&'a Out>,
    runs_todo: u64,
) -> Collector<'a> {
    let (seeds, groups) = (&s.seeds, &s.groups);
    let n_units = seeds.len() * groups.len();
    Collector {
        schedules: &s.scheds,
        seeds,
        left: (0..n_units)
            .map(|u| AtomicUsize::new(groups[u % groups.len().max(1)].1.len()))
            .collect(),
        groups: g_of,
        totals: (0..n_units).map(|_| Mutex::default()).collect(),
        how: (0..n_units).map(|_| Default::default()).collect(),
        out,
        failed: Mutex::new(None),
        finished: Mutex::new(Vec::new()),
        fail_fast: args.fail_fast,
        progress: Progress::new(runs_todo, Duration::from_secs(args.progress_every)),
    }
}

/// Runs the schedules `todo` selects into the collector (pairs through the pair explorer);
/// returns how many runs were simulated.
fn simulate(
    args: &Args,
    s: &Setup,
    coll: &Collector<'_>,
    todo: &(dyn Fn(usize, usize) -> bool + Sync),
) -> u64 {
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let scheds = &s.scheds;
    let pair_sweep =
        !scheds.is_empty() && scheds.iter().all(|s| s.len() == 2 && s[0].step < s[1].step);
    if pair_sweep {
        for_each_pair(&s.plan, &s.cfg, scheds, &s.seeds, jobs, todo, &|p| {
            coll.record(p.schedule, p.seed_pos, p.result, Some(p.how))
        })
    } else {
        for_each_run_in(&s.plan, &s.cfg, scheds, &s.seeds, jobs, todo, &|r| {
            coll.record(r.schedule, r.seed_pos, r.result, None)
        })
    }
}

/// The kebab-case name of a `--variant` value.
fn variant_name(v: VariantArg) -> String {
    clap::ValueEnum::to_possible_value(&v).map_or_else(String::new, |p| p.get_name().to_string())
}

/// The sweep's schedules, and for pair sweeps what they were drawn from.
fn sweep_schedules(
    args: &Args,
    steps: &[usize],
) -> Result<(Vec<Vec<Fault>>, Option<PairSpaceInfo>), CliError> {
    if !args.only.is_empty() {
        let faults = args
            .only
            .iter()
            .map(|s| {
                s.parse::<Fault>()
                    .map_err(|e| CliError::new(format!("--fault: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        return Ok((vec![faults], None));
    }
    if args.faults < 2 {
        return Ok((schedules(steps, 1, args.max_runs), None));
    }
    let space = PairSpace::new(steps);
    let n = args.sample.unwrap_or(args.max_runs as u64);
    let picked = space.sample(n, args.sample_seed);
    let scheds: Vec<Vec<Fault>> = picked.iter().map(|&p| space.pair(p).to_vec()).collect();
    let coverage = Coverage::of(scheds.iter().map(|s| [s[0], s[1]])).describe();
    let info = PairSpaceInfo {
        raw: space.raw(),
        distinct: space.len(),
        taken: scheds.len() as u64,
        coverage,
    };
    Ok((scheds, Some(info)))
}

/// Reads what an earlier run of this shard wrote (with --resume) and opens --out for the
/// rest: the units already there, the file to append to, and whether the shard had finished.
fn open_out(args: &Args, header: &Line) -> Result<(Vec<UnitRecord>, Option<Out>, bool), CliError> {
    let Some(path) = &args.out else {
        return Ok((Vec::new(), None, false));
    };
    let err = |e: std::io::Error| CliError::new(format!("--out {}: {e}", path.display()));
    let earlier: Option<ShardFile> = if args.resume && path.exists() {
        Some(read_shard(path).map_err(CliError::new)?)
    } else {
        None
    };
    let Some(f) = earlier else {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = std::fs::File::create(path).map_err(err)?;
        let out: Out = Mutex::new(std::io::BufWriter::new(file));
        let failed = Mutex::new(None);
        write_line(&out, header, &failed);
        if let Some(e) = failed.into_inner().unwrap_or_else(|e| e.into_inner()) {
            return Err(CliError::new(format!("--out {}: {e}", path.display())));
        }
        return Ok((Vec::new(), Some(out), false));
    };
    if let Line::Sweep { sweep, shard, .. } = header {
        if let Some((field, got, want)) = difference(&f.sweep, sweep) {
            return Err(CliError::new(format!(
                "--resume {}: another sweep: {field} is {got} there, {want} here",
                path.display()
            )));
        }
        if f.shard != *shard {
            return Err(CliError::new(format!(
                "--resume {}: shard {}/{} there, {}/{} here",
                path.display(),
                f.shard[0],
                f.shard[1],
                shard[0],
                shard[1]
            )));
        }
    }
    // Cut a torn last line (the process was killed while writing it).
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    file.set_len(f.good_len).map_err(err)?;
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(err)?;
    let was_done = f.done.is_some();
    if was_done {
        eprintln!("--resume {}: the shard had finished", path.display());
    }
    Ok((
        f.units,
        Some(Mutex::new(std::io::BufWriter::new(file))),
        was_done,
    ))
}

/// The figures that depend on how the work was run, on stderr: runs simulated, wall time,
/// throughput and the time to first detection.
fn work_line(ran: &Ran) {
    let (done, simulated, wall_s) = (ran.done, ran.simulated, ran.wall_s);
    eprintln!(
        "  work: {} runs done here, {} simulated (the rest the same run as one of them), {:.2} s, {:.0} runs/s",
        thousands(done),
        thousands(simulated),
        wall_s,
        done as f64 / wall_s.max(1e-9)
    );
    if let Some((runs, secs)) = ran.first_unsafe {
        eprintln!("  first unsafe after {runs} runs, {secs:.2} s");
    }
}

/// Shrinks the first `--shrink` unsafe findings and prints each minimal schedule with its
/// replay line.
fn shrink_findings(
    args: &Args,
    sweep: &Sweep,
    plan: &Plan,
    cfg: &ProcedureConfig,
    steps: &[usize],
    t: &mut Totals,
) {
    let firsts: Vec<_> = t
        .findings
        .iter()
        .filter(|f| f.class == Class::Unsafe)
        .take(args.shrink)
        .cloned()
        .collect();
    for f in firsts {
        let s = shrink_finding(plan, cfg, &f, steps);
        let show =
            |faults: &[Fault]| -> Vec<String> { faults.iter().map(ToString::to_string).collect() };
        let minimal = show(&s.faults);
        out!(
            "  shrunk seed {} faults {} in {} runs{} to: {}",
            f.seed,
            show(&s.from).join(" "),
            s.runs,
            if s.bounded {
                " (run bound reached)"
            } else {
                ""
            },
            if minimal.is_empty() {
                "no fault at all".to_string()
            } else {
                minimal.join(" ")
            }
        );
        out!("    {}", s.problems.join("; "));
        out!("    replay: {}", replay_line(sweep, f.seed, &minimal));
        t.shrunk.push(s);
    }
}
