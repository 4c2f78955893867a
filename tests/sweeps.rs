//! Sweeps that scale out: an explore sweep run whole and as shards merged gives the same
//! summary and findings; merge refuses a duplicate, a missing and a foreign shard; a killed
//! shard resumes; pairs the explorer does not simulate are the same run from scratch; the
//! Nomad job and the CI workflow are what the docs say.

use rehearse::chaos::explore::{RunResult, baseline, boundaries, classify, run_one};
use rehearse::chaos::pairs::{How, for_each_pair};
use rehearse::chaos::sample::PairSpace;
use rehearse::chaos::{Fault, FaultKind};
use rehearse::plan::Plan;
use rehearse::procedure::{ProcedureConfig, Variant};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

fn rehearse(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run rehearse")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A scratch directory with the plans in it, so paths in outputs are relative and alike.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rehearse-sweeps-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("plans")).unwrap();
    for p in ["nomad-3-servers.toml", "nomad-5-servers.toml"] {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans").join(p);
        std::fs::copy(src, d.join("plans").join(p)).unwrap();
    }
    d
}

/// A small pair sweep of a broken procedure, so there are unsafe findings to compare.
const SWEEP: &[&str] = &[
    "explore",
    "plans/nomad-3-servers.toml",
    "--faults",
    "2",
    "--sample",
    "300",
    "--seeds",
    "2",
    "--shrink",
    "0",
    "--jobs",
    "2",
    "--variant",
    "ignore-failure-tolerance",
];

fn sweep(dir: &Path, extra: &[&str]) -> Output {
    let args: Vec<&str> = SWEEP.iter().chain(extra).copied().collect();
    rehearse(&args, dir)
}

fn findings(json: &Path) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let t = if v.get("totals").is_some() {
        &v["totals"]
    } else {
        &v
    };
    t["findings"].clone()
}

#[test]
fn whole_and_four_shards_merged_give_identical_summaries() {
    let d = scratch("shards");
    let whole = sweep(&d, &["--out", "whole.jsonl", "--json-out", "whole.json"]);
    assert_eq!(whole.status.code(), Some(1), "{}", text(&whole.stderr));
    for i in 1..=4 {
        let s = format!("{i}/4");
        let o = sweep(&d, &["--shard", &s, "--out", &format!("s{i}.jsonl")]);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{}",
            text(&o.stderr)
        );
    }
    let m = rehearse(
        &[
            "merge",
            "s1.jsonl",
            "s2.jsonl",
            "s3.jsonl",
            "s4.jsonl",
            "--json-out",
            "m.json",
            "--junit",
            "m.xml",
        ],
        &d,
    );
    assert_eq!(m.status.code(), Some(1), "{}", text(&m.stderr));
    let (a, b) = (text(&whole.stdout), text(&m.stdout));
    assert!(a.contains("UNSAFE seed"), "no findings to compare:\n{a}");
    assert!(a.contains("sampled 300 of"), "{a}");
    assert_eq!(a, b, "the merged summary differs from the whole sweep's");
    let (fa, fb) = (findings(&d.join("whole.json")), findings(&d.join("m.json")));
    assert!(fa.as_array().is_some_and(|x| !x.is_empty()));
    assert_eq!(fa, fb, "finding lists differ");
    let junit = std::fs::read_to_string(d.join("m.xml")).unwrap();
    assert!(junit.contains("<failure "), "{junit}");
    // A whole sweep's own file merges to the same summary too.
    let m1 = rehearse(&["merge", "whole.jsonl"], &d);
    assert_eq!(text(&m1.stdout), a);
}

#[test]
fn merge_refuses_duplicate_missing_and_foreign_shards_naming_the_file() {
    let d = scratch("refuse");
    for i in 1..=3 {
        let s = format!("{i}/3");
        sweep(&d, &["--shard", &s, "--out", &format!("s{i}.jsonl")]);
    }
    let other = sweep(
        &d,
        &[
            "--shard",
            "3/3",
            "--out",
            "other.jsonl",
            "--sample-seed",
            "2",
        ],
    );
    assert!(matches!(other.status.code(), Some(0 | 1)));
    let cases: [(&[&str], &str); 4] = [
        (
            &["s1.jsonl", "s2.jsonl", "s2.jsonl", "s3.jsonl"],
            "s2.jsonl: shard 2/3 given twice",
        ),
        (&["s1.jsonl", "s3.jsonl"], "shard 2/3 missing"),
        (
            &["s1.jsonl", "s2.jsonl", "other.jsonl"],
            "other.jsonl: a shard of another sweep: sample_seed",
        ),
        (&["s1.jsonl", "s2.jsonl", "../nope.jsonl"], "nope.jsonl"),
    ];
    for (files, want) in cases {
        let args: Vec<&str> = std::iter::once("merge")
            .chain(files.iter().copied())
            .collect();
        let o = rehearse(&args, &d);
        assert_eq!(o.status.code(), Some(2), "{files:?}: {}", text(&o.stdout));
        assert!(
            text(&o.stderr).contains(want),
            "{files:?}: {}",
            text(&o.stderr)
        );
    }
}

#[test]
fn a_killed_shard_resumes_from_its_file() {
    let d = scratch("resume");
    let full = sweep(&d, &["--out", "full.jsonl"]);
    let want = text(&full.stdout);
    // As if killed midway: the header and some units, then half a line.
    let lines: Vec<String> = std::fs::read_to_string(d.join("full.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines.len() > 6);
    let mut cut = lines[..lines.len() / 2].join("\n");
    cut.push('\n');
    cut.push_str(&lines[lines.len() / 2][..20]);
    std::fs::write(d.join("cut.jsonl"), &cut).unwrap();
    let m = rehearse(&["merge", "cut.jsonl"], &d);
    assert_eq!(m.status.code(), Some(2));
    assert!(
        text(&m.stderr).contains("cut.jsonl: shard 1/1 is unfinished"),
        "{}",
        text(&m.stderr)
    );
    let r = sweep(&d, &["--out", "cut.jsonl", "--resume"]);
    assert_eq!(text(&r.stdout), want, "{}", text(&r.stderr));
    let m = rehearse(&["merge", "cut.jsonl"], &d);
    assert_eq!(text(&m.stdout), want);
    // Resuming with other options is refused.
    let wrong = sweep(
        &d,
        &["--out", "cut.jsonl", "--resume", "--sample-seed", "9"],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("another sweep"),
        "{}",
        text(&wrong.stderr)
    );
}

fn plan_file(name: &str) -> Plan {
    Plan::from_path(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("plans")
            .join(name),
    )
    .unwrap()
}

/// Runs `scheds` through the pair runner and checks every run it did not simulate (and a few it
/// did) against the same pair run from scratch; returns how many of each kind it checked.
fn check_pairs(plan: &Plan, variant: Variant, scheds: &[Vec<Fault>], seeds: &[u64]) -> [usize; 5] {
    let cfg = variant.apply(ProcedureConfig::from_plan(plan));
    let got: Mutex<Vec<(usize, usize, RunResult, How)>> = Mutex::default();
    for_each_pair(plan, &cfg, scheds, seeds, 2, &|_, _| true, &|p| {
        got.lock()
            .unwrap()
            .push((p.schedule, p.seed_pos, p.result.clone(), p.how));
        false
    });
    let got = got.into_inner().unwrap();
    assert_eq!(
        got.len(),
        scheds.len() * seeds.len(),
        "every run handed over once"
    );
    let mut checked = [0usize; 5];
    for (i, s, r, how) in got {
        let k = How::ALL.iter().position(|h| *h == how).unwrap();
        if checked[k] >= 40 {
            continue;
        }
        checked[k] += 1;
        let (o, fired) = run_one(plan, &cfg, &scheds[i], seeds[s]);
        let problems = match &o.verdict {
            rehearse::rehearsal::Verdict::Unsafe { problems } => problems.clone(),
            _ => Vec::new(),
        };
        assert_eq!(
            (classify(&o), problems, fired),
            (r.class, r.problems.clone(), r.fired),
            "{:?} pair {:?} on seed {} is not the run from scratch",
            how,
            scheds[i],
            seeds[s]
        );
    }
    checked
}

#[test]
fn pairs_not_simulated_are_the_same_run_from_scratch() {
    let plan = plan_file("nomad-5-servers.toml");
    let cfg = ProcedureConfig::from_plan(&plan);
    let steps = boundaries(&baseline(&plan, &cfg, 1));
    let space = PairSpace::new(&steps);
    // Crash-after-crash pairs (where a second crash may hit a server already down for good),
    // and a stratified sample for the rest (ended, missed, same landing).
    let crashes: Vec<Vec<Fault>> = (0..space.len())
        .step_by(7)
        .map(|p| space.pair(p))
        .filter(|[a, b]| {
            a.kind == FaultKind::Crash && b.kind == FaultKind::Crash && a.duration_s.is_none()
        })
        .map(|p| p.to_vec())
        .take(400)
        .collect();
    let sampled: Vec<Vec<Fault>> = space
        .sample(400, 3)
        .iter()
        .map(|&p| space.pair(p).to_vec())
        .collect();
    let mut seen = [0usize; 5];
    for (scheds, variant) in [
        (&crashes, Variant::Safe),
        (&sampled, Variant::IgnoreFailureTolerance),
    ] {
        let c = check_pairs(&plan, variant, scheds, &[1, 2]);
        for k in 0..5 {
            seen[k] += c[k];
        }
    }
    for (k, how) in How::ALL.iter().enumerate() {
        assert!(seen[k] > 0, "no {how:?} pair was checked: {seen:?}");
    }
}

#[test]
fn the_nomad_job_runs_its_command_lines_as_the_batch_job_would() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let job = std::fs::read_to_string(root.join("deploy/nomad/explore.nomad.hcl")).unwrap();
    // The job's own meta defaults, as `nomad job dispatch` without -meta passes them.
    let block = &job[job.find("\n  meta {").expect("a meta block")..];
    let block = &block[..block.find("\n  }").unwrap()];
    let meta: Vec<(String, String)> = block
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect();
    let get = |k: &str| {
        meta.iter()
            .find(|(m, _)| m == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    let (shard, shards) = (get("shard"), get("shards"));
    assert!(job.contains("parameterized"), "a parameterized batch job");
    assert!(job.contains("type        = \"batch\""));
    // Its args, with the meta interpolated, run here against the repository's plans.
    let args_at = job.find("args = [").expect("args");
    let args_end = job[args_at..].find(']').unwrap() + args_at;
    let args: Vec<String> = job[args_at + 8..args_end]
        .split(',')
        .map(|a| a.trim().trim_matches('"').to_string())
        .filter(|a| !a.is_empty())
        .map(|a| {
            meta.iter()
                .fold(a, |a, (k, v)| a.replace(&format!("${{NOMAD_META_{k}}}"), v))
        })
        .collect();
    assert!(
        !args.iter().any(|a| a.contains("${")),
        "uninterpolated: {args:?}"
    );
    assert_eq!(args[0], "explore", "{args:?}");
    let d = scratch("nomad");
    // The job reads plans from /plans and writes to /sweeps (a host volume): map both here.
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.replace("/plans/", "plans/").replace("/sweeps/", "out/"))
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = rehearse(&refs, &d);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
    let outs: Vec<_> = std::fs::read_dir(d.join("out").join(get("sweep")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(outs.len(), 1, "one shard file: {outs:?}");
    let first = std::fs::read_to_string(&outs[0]).unwrap();
    assert!(first.starts_with("{\"type\":\"sweep\""), "{first}");
    assert!(
        first.contains(&format!("\"shard\":[{shard},{shards}]")),
        "{first}"
    );
}

#[test]
fn the_workflow_has_a_shard_matrix_and_a_merge_job() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let y: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(root.join(".github/workflows/sweep.yml")).unwrap(),
    )
    .expect("the workflow parses as YAML");
    let jobs = &y["jobs"];
    let shards = jobs["shard"]["strategy"]["matrix"]["shard"]
        .as_sequence()
        .expect("a matrix over shards");
    assert!(shards.len() >= 2);
    let n = shards.len();
    let steps = format!("{:?}", jobs["shard"]["steps"]);
    assert!(
        steps.contains(&format!("/{n}")),
        "the shard step runs i/{n}: {steps}"
    );
    assert!(steps.contains("--shard"), "{steps}");
    let merge = &jobs["merge"];
    let needs = format!("{:?}", merge["needs"]);
    assert!(
        needs.contains("\"shard\""),
        "the merge job waits for the shards: {needs}"
    );
    let msteps = format!("{:?}", merge["steps"]);
    for want in [
        "rehearse merge",
        "--junit",
        "--json-out",
        "rehearse report",
        "upload-artifact",
    ] {
        assert!(msteps.contains(want), "merge job lacks {want}: {msteps}");
    }
}

#[test]
fn the_image_builds_and_explores_a_small_plan_in_a_container() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The binary this test binary was built with: the image costs no second compile.
    let build = Command::new("bash")
        .arg(root.join("deploy/image/build"))
        .args([env!("CARGO_BIN_EXE_rehearse"), "rehearse:ci-test"])
        .output()
        .expect("run deploy/image/build");
    assert!(build.status.success(), "{}", text(&build.stderr));
    let d = scratch("image");
    let vol = format!("{}:/sweeps", d.display());
    let o = Command::new("docker")
        .args(["run", "--rm", "-v", &vol, "rehearse:ci-test", "explore"])
        .args([
            "/plans/nomad-3-servers.toml",
            "--seeds",
            "1",
            "--shard",
            "2/2",
        ])
        .args(["--out", "/sweeps/shard-2.jsonl"])
        .output()
        .expect("docker run");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("explored /plans/nomad-3-servers.toml"),
        "{}",
        text(&o.stdout)
    );
    let f = std::fs::read_to_string(d.join("shard-2.jsonl")).unwrap();
    assert!(f.contains("\"type\":\"done\""), "{f}");
}
