//! Risk reports: the numbers move the right way, bad input exits 2, the committed example
//! reports are current, and the HTML renders in a real headless Chromium.

use rehearse::plan::Plan;
use rehearse::report::assess::{assess, reduce};
use rehearse::report::model::RiskReport;
use rehearse::report::render::{Format, render, render_all};
use rehearse::report::risk::FailureRate;
use rehearse::report::{Options, build};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plan(servers: usize, extra: &str) -> Plan {
    let names: Vec<String> = (1..=servers)
        .map(|i| format!("{{ name = \"s{i}\" }}"))
        .collect();
    let text = format!(
        "[cluster]\nproduct = \"nomad\"\nversion = \"1.9.7\"\nservers = [{}]\n[upgrade]\ntarget = \"1.10.3\"\nallow_zero_tolerance = true\n{extra}\n",
        names.join(", ")
    );
    Plan::from_str_named(&text, "test").unwrap()
}

fn rate(text: &str) -> FailureRate {
    text.parse().unwrap()
}

#[test]
fn five_servers_are_less_exposed_than_three() {
    let r = rate("2/year");
    let three = assess(&plan(3, ""), 1..5, 2, &r).unwrap();
    let five = assess(&plan(5, ""), 1..5, 2, &r).unwrap();
    assert!(three.risk.exposure_ms > 10_000, "{:?}", three.risk);
    assert!(
        five.risk.exposure_ms < three.risk.exposure_ms,
        "5 servers {} ms vs 3 servers {} ms",
        five.risk.exposure_ms,
        three.risk.exposure_ms
    );
    assert!(five.risk.p_quorum_loss < three.risk.p_quorum_loss);
    assert_eq!(three.risk.tolerance_min, 0);
    assert_eq!(five.risk.tolerance_min, 1);
    // Every server step of the 3-server plan spends time at tolerance 0, none of the 5's.
    let server_steps = |a: &rehearse::report::assess::Assessment| {
        a.steps
            .iter()
            .filter(|s| s.name.contains(". upgrade"))
            .map(|s| s.exposure_ms)
            .collect::<Vec<_>>()
    };
    assert!(server_steps(&three).iter().all(|&e| e > 0));
    assert!(server_steps(&five).iter().all(|&e| e == 0));
}

#[test]
fn transferring_leadership_lowers_the_leader_steps_unavailability() {
    let r = rate("2/year");
    let without = assess(&plan(3, "transfer_leadership = false"), 1..9, 2, &r).unwrap();
    let with = assess(&plan(3, "transfer_leadership = true"), 1..9, 2, &r).unwrap();
    let leader_step = |a: &rehearse::report::assess::Assessment| {
        a.steps
            .iter()
            .find(|s| s.leader_step)
            .map(|s| (s.no_leader_ms, s.failed_writes))
            .expect("a leader step")
    };
    let (w, wo) = (leader_step(&with), leader_step(&without));
    assert!(wo.0 > 500, "an election takes time: {wo:?}");
    assert!(w.0 < wo.0, "with transfer {w:?}, without {wo:?}");
    assert!(
        with.numbers.leader_step_no_leader_ms < without.numbers.leader_step_no_leader_ms,
        "{:?} vs {:?}",
        with.numbers,
        without.numbers
    );
    // And the advice finds it, re-simulated, for the plan without it.
    let p = plan(3, "transfer_leadership = false");
    let (yes, _) = rehearse::report::advice::advise(&p, &without, 1..9, 2, &r).unwrap();
    let t = yes
        .iter()
        .find(|c| c.id == "transfer-leadership")
        .expect("transfer-leadership recommended");
    assert!(t.after.leader_step_no_leader_ms < t.before.leader_step_no_leader_ms);
}

#[test]
fn a_higher_failure_rate_raises_the_probability() {
    let runs = assess(&plan(3, ""), 1..3, 2, &rate("2/year")).unwrap().runs;
    let p = |r: &str| reduce(runs.clone(), &rate(r)).risk.p_quorum_loss;
    let (low, mid, high) = (p("0/year"), p("2/year"), p("20/year"));
    assert_eq!(low, 0.0);
    assert!(0.0 < mid && mid < high, "{mid} {high}");
    // First order: about ten times as likely at ten times the rate.
    assert!((high / mid - 10.0).abs() < 0.1, "{mid} {high}");
}

// ---- the command line ----

use crate::rehearse;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("rehearse-report-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn report_writes_the_formats_asked_for() {
    let out = temp_dir("ok");
    let o = rehearse(&[
        "report",
        "plans/nomad-3-servers.toml",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "md,json",
        "--seeds",
        "2",
        "--explore-seeds",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.join("report.md").exists() && !out.join("report.html").exists());
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(v["schema_version"], rehearse::report::model::SCHEMA_VERSION);
    assert_eq!(v["settings"]["seeds"], 2);
    // Risk above the operator's threshold: exit 1, the report still written.
    let o = rehearse(&[
        "report",
        "plans/nomad-3-servers.toml",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--seeds",
        "1",
        "--explore-seeds",
        "0",
        "--fail-above",
        "1e-9",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
}

#[test]
fn bad_report_input_is_a_clear_error_with_exit_2() {
    let out = temp_dir("bad");
    let o = out.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["--format", "html,pdf", "-o", o],
            "--format: unknown format \"pdf\"",
        ),
        (
            &["--server-failure-rate", "often", "-o", o],
            "--server-failure-rate: invalid failure rate",
        ),
        (
            &["--server-failure-rate", "2/fortnight", "-o", o],
            "e.g. 2/year",
        ),
        (&["--seeds", "0", "-o", o], "--seeds"),
    ];
    for (args, expected) in cases {
        let mut all = vec!["report", "plans/nomad-3-servers.toml"];
        all.extend_from_slice(args);
        let r = rehearse(&all);
        assert_eq!(r.status.code(), Some(2), "{args:?}: {}", text(&r));
        assert!(text(&r).contains(expected), "{args:?}: {}", text(&r));
        assert!(!text(&r).contains("panicked"), "{}", text(&r));
    }
    // A directory that cannot be created: its parent is a file.
    let file = out.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let blocked = file.join("report");
    for cmd in ["report", "check"] {
        let r = rehearse(&[
            cmd,
            "plans/nomad-3-servers.toml",
            "--seeds",
            "1",
            if cmd == "report" { "-o" } else { "--report" },
            blocked.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(2), "{cmd}: {}", text(&r));
        let t = text(&r);
        assert!(
            t.contains("output directory") && t.contains("a-file"),
            "{cmd}: {t}"
        );
    }
}

#[test]
fn check_report_writes_the_report_after_the_check() {
    let out = temp_dir("check");
    let r = rehearse(&[
        "check",
        "plans/consul-3-servers.toml",
        "--seeds",
        "2",
        "--report",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    for f in ["report.html", "report.md", "report.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
}

// ---- the example reports ----

/// The example plans with a committed report, and the command that regenerates each.
pub const EXAMPLES: [&str; 5] = [
    "nomad-3-servers",
    "nomad-5-servers",
    "nomad-5-servers-jobs",
    "consul-3-servers",
    "nomad-risky",
];

fn examples() -> &'static BTreeMap<&'static str, RiskReport> {
    static REPORTS: OnceLock<BTreeMap<&'static str, RiskReport>> = OnceLock::new();
    REPORTS.get_or_init(|| {
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        EXAMPLES
            .iter()
            .map(|name| {
                let file = format!("plans/{name}.toml");
                let plan = Plan::from_path(&root().join(&file)).unwrap();
                (*name, build(&plan, &file, &Options::new(jobs)).unwrap())
            })
            .collect()
    })
}

#[test]
fn the_example_reports_are_current() {
    let bless = std::env::var_os("REHEARSE_BLESS").is_some();
    let mut stale = Vec::new();
    for (name, report) in examples() {
        let dir = root().join("reports").join(name);
        for (file, text) in render_all(report, &Format::ALL).unwrap() {
            let path = dir.join(file);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &text).unwrap();
            } else if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                stale.push(format!(
                    "reports/{name}/{file}: regenerate with `cargo run --release -- report plans/{name}.toml -o reports/{name}`"
                ));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "stale example reports (or run REHEARSE_BLESS=1 cargo test the_example_reports_are_current):\n{}",
        stale.join("\n")
    );
}

/// The review-ready parts every example HTML report must have.
fn review_sections(name: &str, html: &str) {
    for needle in [
        "<section id=\"verdict\"",
        "<h2 id=\"assumptions\">Assumptions</h2>",
        "Calibrated against",
        "Consul 1.8.7",
        "writes per second",
        "<h2 id=\"runbook\">Runbook</h2>",
        "abort criteria",
        "halt if not met within",
        "Plan sha-256",
    ] {
        assert!(
            html.contains(needle),
            "reports/{name}/report.html lacks {needle:?}"
        );
    }
}

#[test]
fn the_example_reports_have_a_verdict_assumptions_and_a_runbook() {
    for name in EXAMPLES {
        let path = root().join("reports").join(name).join("report.html");
        let html = std::fs::read_to_string(&path).unwrap();
        review_sections(name, &html);
        let report = &examples()[name];
        let verdict = report.verdict.as_ref().unwrap();
        let sha = report.plan.sha256.as_deref().unwrap();
        let bytes = std::fs::read(root().join("plans").join(format!("{name}.toml"))).unwrap();
        assert_eq!(sha, rehearse::report::sha256_hex(&bytes), "{name}");
        assert!(
            html.contains(sha),
            "{name}: the plan's sha-256 is not shown"
        );
        assert!(!report.runbook.is_empty(), "{name}: no runbook");
        for step in &report.runbook {
            assert!(
                step.duration_ms_min <= step.duration_ms_median
                    && step.duration_ms_median <= step.duration_ms_max,
                "{name}: {step:?}"
            );
            assert!(
                !step.abort.is_empty(),
                "{name}: {} has no abort criteria",
                step.name
            );
        }
        // A plan with jobs shows the workload plane's figures and charts the backlog; the
        // others show none of it.
        let jobs = matches!(name, "nomad-5-servers" | "nomad-5-servers-jobs");
        assert_eq!(report.risk.jobs.is_some(), jobs, "{name}");
        assert_eq!(html.contains("Eval broker backlog"), jobs, "{name}");
        // With jobs, the worst seed's backlog is charted beside the typical seed's.
        if let (true, Some(w)) = (jobs, &report.worst_timeline) {
            let label = format!("Eval broker backlog (worst seed {})", w.seed);
            assert!(html.contains(&label), "{name}: no {label}");
        }
        // A plan defect decides the verdict and stays out of the failure-rate risk.
        let r = &report.risk;
        assert_eq!(r.risk_seeds + r.plan_defect_runs, r.seeds, "{name}");
        if name == "nomad-risky" {
            assert_eq!(verdict.decision, "no-go", "{name}: {verdict:?}");
            assert!(r.plan_defect_runs > 0, "{name}: {r:?}");
            assert!(
                verdict.reasons[0].starts_with("plan defect:"),
                "{verdict:?}"
            );
            assert!(html.contains(">NO-GO<") && html.contains("plan defect:"));
            assert!(
                r.p_quorum_loss < 0.01,
                "plan-defect seeds leaked into P: {r:?}"
            );
            assert!(
                report.worst_timeline.is_some(),
                "{name}: no worst-seed chart"
            );
        } else {
            assert_eq!(verdict.decision, "go", "{name}: {verdict:?}");
            assert!(html.contains(">GO<"), "{name}");
        }
    }
}

#[test]
fn the_lowest_failure_tolerance_of_check_is_the_reports() {
    // check and report read the same ground truth (report::measure::lowest_tolerance): on 5
    // servers autopilot's own reading dips to 0 once after the transfer, the cluster does not.
    let o = rehearse(&["check", "plans/nomad-5-servers.toml", "--seeds", "16"]);
    let out = text(&o);
    let line = out
        .lines()
        .find(|l| l.contains("lowest failure tolerance"))
        .unwrap_or_else(|| panic!("{out}"));
    let report = &examples()["nomad-5-servers"];
    assert_eq!(
        line.split_whitespace().last(),
        Some(report.risk.tolerance_min.to_string().as_str()),
        "{line}"
    );
    assert_eq!(report.risk.tolerance_min, 1);
}

#[test]
fn reports_are_deterministic_and_json_is_versioned() {
    let plan = plan(3, "");
    let opts = Options {
        seeds: 2,
        explore_seeds: 0,
        ..Options::new(2)
    };
    let a = build(&plan, "p.toml", &opts).unwrap();
    let b = build(&plan, "p.toml", &Options { jobs: 1, ..opts }).unwrap();
    for f in Format::ALL {
        assert_eq!(render(&a, f).unwrap(), render(&b, f).unwrap(), "{f:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&render(&a, Format::Json).unwrap()).unwrap();
    assert_eq!(
        json["schema_version"],
        rehearse::report::model::SCHEMA_VERSION
    );
    assert_eq!(json["rehearse_version"], env!("CARGO_PKG_VERSION"));
    let html = render(&a, Format::Html).unwrap();
    assert!(!html.contains("<script") && !html.contains("<link") && !html.contains(" src="));
}

/// A plan with jobs: the report shows the eval backlog peak, the time the jobs take to run
/// their counts again and the allocations lost, in every format, and charts the backlog; a
/// plan without jobs has none of it.
#[test]
fn a_plan_with_jobs_reports_the_workload_figures_and_charts_the_backlog() {
    let file = "plans/nomad-5-servers-jobs.toml";
    let p = Plan::from_path(&root().join(file)).unwrap();
    let opts = Options {
        seeds: 2,
        explore_seeds: 0,
        ..Options::new(2)
    };
    let r = build(&p, file, &opts).unwrap();
    let j = r.risk.jobs.as_ref().expect("workload figures");
    assert_eq!(j.runs, 2);
    assert!(j.backlog_peak_median > 0 && j.backlog_peak_worst >= j.backlog_peak_median);
    assert_eq!(j.not_recovered_runs, 0, "{j:?}");
    assert!(j.recover_ms_worst.is_some());
    assert_eq!(
        j.lost_allocs_worst, 0,
        "drained server-clients lose nothing: {j:?}"
    );
    let backlog = &r.timeline.backlog;
    assert!(backlog.len() > 2, "{backlog:?}");
    assert!(backlog.windows(2).all(|w| w[0].0 <= w[1].0));
    assert_eq!(backlog.last().map(|p| p.1), Some(0), "the broker drains");
    let md = render(&r, Format::Markdown).unwrap();
    for row in [
        "| eval backlog peak",
        "| jobs back at their counts",
        "| allocations lost",
    ] {
        assert!(md.contains(row), "{row} not in:\n{md}");
    }
    let html = render(&r, Format::Html).unwrap();
    assert!(html.contains("<h2 id=\"workload\">") && html.contains("Eval broker backlog"));
    let json: serde_json::Value = serde_json::from_str(&render(&r, Format::Json).unwrap()).unwrap();
    assert_eq!(
        json["risk"]["jobs"]["backlog_peak_worst"],
        j.backlog_peak_worst
    );
    assert!(
        json["timeline"]["backlog"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    // Without jobs, none of it.
    let plain = build(&plan(3, ""), "p.toml", &opts).unwrap();
    assert!(plain.risk.jobs.is_none() && plain.timeline.backlog.is_empty());
    let html = render(&plain, Format::Html).unwrap();
    assert!(!html.contains("id=\"workload\"") && !html.contains("eval backlog"));
    assert!(
        !render(&plain, Format::Markdown)
            .unwrap()
            .contains("eval backlog")
    );
    let json = render(&plain, Format::Json).unwrap();
    assert!(!json.contains("\"jobs\"") && !json.contains("\"backlog\""));
}

// ---- the HTML in a real browser ----

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "chromium is not installed: run .ci/install-chromium (it runs apt-get install chromium)"
            )
        })
}

/// Runs headless Chromium on a page; returns (stdout, stderr).
fn chromium_run(page: &Path, extra: &[&str], profile: &str) -> (String, String) {
    let profile_dir = root().join("target").join(format!("chromium-{profile}"));
    let mut args: Vec<String> = [
        "120",
        chromium().to_str().unwrap(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(format!("--user-data-dir={}", profile_dir.display()));
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(format!("file://{}", page.display()));
    let o = Command::new("timeout").args(&args).output().unwrap();
    assert!(o.status.success(), "chromium failed: {}", text(&o));
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn screenshot(page: &Path, png: &Path, profile: &str) {
    let _ = std::fs::remove_file(png);
    chromium_run(
        page,
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,2000",
        ],
        profile,
    );
    assert!(png.exists(), "no screenshot written to {}", png.display());
}

/// Distinct colours in a PNG and the share of pixels that are not the most common colour.
fn colours(png_path: &Path) -> (usize, f64) {
    let file = std::io::BufReader::new(std::fs::File::open(png_path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bpp = info.color_type.samples() * usize::from(info.bit_depth as u8).div_ceil(8);
    let mut counts: BTreeMap<&[u8], u64> = BTreeMap::new();
    for px in buf[..info.buffer_size()].chunks_exact(bpp) {
        *counts.entry(px).or_default() += 1;
    }
    let total: u64 = counts.values().sum();
    let top = counts.values().copied().max().unwrap_or(0);
    (counts.len(), 1.0 - top as f64 / total.max(1) as f64)
}

fn not_blank(png: &Path) -> Result<(), String> {
    let (distinct, ink) = colours(png);
    if distinct >= 16 && ink >= 0.02 {
        Ok(())
    } else {
        Err(format!(
            "{} looks blank: {distinct} colours, {:.2}% of pixels not background",
            png.display(),
            ink * 100.0
        ))
    }
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let report = &examples()["nomad-3-servers"];
    let dir = root().join("target").join("report-chromium");
    std::fs::create_dir_all(&dir).unwrap();
    let page = dir.join("report.html");
    std::fs::write(&page, render(report, Format::Html).unwrap()).unwrap();

    let (dom, log) = chromium_run(
        &page,
        &["--enable-logging=stderr", "--v=0", "--dump-dom"],
        "dom",
    );
    let console: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let svgs = dom.matches("<svg").count();
    assert!(
        svgs >= 4,
        "expected the 4 charts as svg elements, found {svgs}"
    );
    for needle in [
        "Failure tolerance over the upgrade",
        "Write availability",
        "Leader and server processes",
        "Explorer: outcomes of single faults",
        "<rect",
        "<polyline",
    ] {
        assert!(dom.contains(needle), "rendered DOM lacks {needle:?}");
    }

    let png = root().join("target").join("report-screenshot.png");
    screenshot(&page, &png, "shot");
    not_blank(&png).unwrap();

    // The blank check itself: an empty page must fail it.
    let blank = dir.join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank_png = dir.join("blank.png");
    screenshot(&blank, &blank_png, "blank");
    assert!(
        not_blank(&blank_png).is_err(),
        "an empty page passed the blank check"
    );
}

#[test]
fn the_example_reports_render_in_headless_chromium_with_their_verdict() {
    let dir = std::env::temp_dir().join(format!("rehearse-report-shots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in EXAMPLES {
        let page = root().join("reports").join(name).join("report.html");
        let (dom, _) = chromium_run(&page, &["--dump-dom"], &format!("dom-{name}"));
        review_sections(name, &dom);
        let decision = if name == "nomad-risky" { "NO-GO" } else { "GO" };
        assert!(
            dom.contains(&format!("<div class=\"decision\">{decision}</div>")),
            "{name}: the rendered banner does not say {decision}"
        );
        if name == "nomad-risky" {
            assert!(
                dom.contains("plan defect:"),
                "{name}: no plan-defect reason"
            );
        }
        let png = dir.join(format!("{name}.png"));
        screenshot(&page, &png, &format!("shot-{name}"));
        not_blank(&png).unwrap();
        let bytes = std::fs::metadata(&png).unwrap().len();
        assert!(bytes > 20_000, "{name}: screenshot is only {bytes} bytes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---- the report of a live run, from its journal ----

mod live_journal {
    use super::{rehearse, temp_dir, text};
    use rehearse::live::journal::Record;
    use rehearse::procedure::{
        Action, ActionResult, ClusterView, HaltReason, Observation, Summary,
    };
    use rehearse_model::api::{
        AgentSelf, ApiError, AutopilotHealth, RaftState, RaftStats, SerfStatus, ServerHealth,
    };
    use rehearse_model::versions::Version;
    use std::path::{Path, PathBuf};

    const T0: u64 = 1_700_000_000_000;
    const SERVERS: [&str; 3] = ["s1", "s2", "s3"];

    fn agent(name: &str, version: Version) -> AgentSelf {
        AgentSelf {
            name: name.into(),
            version,
            raft: RaftStats {
                state: if name == "s1" {
                    RaftState::Leader
                } else {
                    RaftState::Follower
                },
                term: 2,
                last_log_index: 10,
                last_log_term: 2,
                commit_index: 10,
                applied_index: 10,
                protocol_version: 3,
                num_peers: 2,
                last_contact_ms: None,
            },
        }
    }

    /// An observation at `t` s after the start; `down` is not running (and unhealthy).
    fn obs(t: u64, down: Option<&str>, write: bool) -> Record {
        let old = Version::new(1, 8, 7);
        let healthy: Vec<ServerHealth> = SERVERS
            .iter()
            .map(|s| ServerHealth {
                id: format!("id-{s}").into(),
                name: (*s).into(),
                address: format!("127.0.0.1:{}", 8300).into(),
                serf_status: if Some(*s) == down {
                    SerfStatus::Failed
                } else {
                    SerfStatus::Alive
                },
                version: old,
                leader: *s == "s1",
                last_contact_ms: Some(5),
                last_term: 2,
                last_index: 10,
                healthy: Some(*s) != down,
                voter: true,
                stable_since_ms: None,
            })
            .collect();
        let ft = healthy.iter().filter(|s| s.healthy).count() as i64 - 2;
        let view = ClusterView {
            leader: Some("s1".into()),
            members: Err(ApiError::Unsupported {
                addr: "test".into(),
                what: "not read".into(),
            }),
            raft: Err(ApiError::Unsupported {
                addr: "test".into(),
                what: "not read".into(),
            }),
            health: Ok(AutopilotHealth {
                healthy: ft >= 1,
                failure_tolerance: ft,
                leader: Some("id-s1".into()),
                voters: SERVERS.iter().map(|s| format!("id-{s}").into()).collect(),
                servers: healthy,
            }),
            agents: SERVERS
                .iter()
                .map(|s| {
                    let a = if Some(*s) == down {
                        Err(ApiError::Unreachable {
                            addr: (*s).into(),
                            why: "connection refused".into(),
                        })
                    } else {
                        Ok(agent(s, old))
                    };
                    ((*s).into(), a)
                })
                .collect(),
            scheduler: None,
            drained: Vec::new(),
            write_accepted: Some(write),
            nodes: rehearse::procedure::Readout::NotApplicable,
            allocs_running: rehearse::procedure::Readout::NotApplicable,
            workload: rehearse::procedure::Readout::NotApplicable,
        };
        Record::Observation {
            obs: Box::new(Observation {
                now_ms: T0 + t * 1000,
                result: ActionResult::None,
                view,
            }),
        }
    }

    fn action(t: u64, a: Action) -> [Record; 2] {
        [
            Record::ActionBegin {
                at_ms: T0 + t * 1000,
                action: a,
            },
            Record::ActionEnd {
                at_ms: T0 + t * 1000 + 500,
                result: ActionResult::Ok,
                installed: None,
            },
        ]
    }

    /// Writes a journal: tolerance 1, s2 stopped (0), replaced, started, healthy again (1).
    fn journal(dir: &Path) -> PathBuf {
        let mut records = vec![
            Record::Begin {
                attempt: 1,
                plan_sha256: "ab".repeat(32),
                rehearse: env!("CARGO_PKG_VERSION").into(),
                at_ms: T0,
                already_upgraded: Vec::new(),
                control: None,
            },
            obs(1, None, true),
            obs(3, None, true),
        ];
        records.extend(action(
            4,
            Action::Stop {
                server: "s2".into(),
            },
        ));
        records.push(obs(5, Some("s2"), true));
        records.extend(action(
            6,
            Action::ReplaceBinary {
                server: "s2".into(),
                version: Version::new(1, 8, 8),
            },
        ));
        records.push(obs(8, Some("s2"), false));
        records.extend(action(
            9,
            Action::Start {
                server: "s2".into(),
            },
        ));
        records.push(obs(10, Some("s2"), true));
        records.push(obs(14, None, true));
        records.push(obs(25, None, true));
        records.push(Record::Finish {
            at_ms: T0 + 26_000,
            action: Action::Done(Summary {
                order: vec!["s2".into()],
                leader_last: false,
                notes: vec!["synthetic journal".into()],
            }),
            notes: Vec::new(),
        });
        write(dir, &records)
    }

    fn begin(attempt: u32, t: u64, plan_sha256: &str, already: &[&str]) -> Record {
        Record::Begin {
            attempt,
            plan_sha256: plan_sha256.into(),
            rehearse: env!("CARGO_PKG_VERSION").into(),
            at_ms: T0 + t * 1000,
            already_upgraded: already.iter().map(|s| s.to_string()).collect(),
            control: None,
        }
    }

    fn finish(t: u64, action: Action) -> Record {
        Record::Finish {
            at_ms: T0 + t * 1000,
            action,
            notes: Vec::new(),
        }
    }

    fn done(order: &[&str]) -> Action {
        Action::Done(Summary {
            order: order.iter().map(|s| s.to_string()).collect(),
            leader_last: false,
            notes: Vec::new(),
        })
    }

    /// Attempt 1 of plan `sha`: it begins, observes, and upgrades s2 from t = 4 ms.
    fn first_attempt_upgrading_s2(sha: &str) -> Vec<Record> {
        let mut records = vec![begin(1, 0, sha, &[]), obs(1, None, true)];
        records.extend(upgrade(4, "s2"));
        records
    }

    /// The records of one server's upgrade from `t` s: stop, install, start, two
    /// observations with it down, one healthy.
    fn upgrade(t: u64, server: &str) -> Vec<Record> {
        let mut r = Vec::new();
        r.extend(action(
            t,
            Action::Stop {
                server: server.into(),
            },
        ));
        r.push(obs(t + 1, Some(server), true));
        r.extend(action(
            t + 2,
            Action::ReplaceBinary {
                server: server.into(),
                version: Version::new(1, 8, 8),
            },
        ));
        r.extend(action(
            t + 3,
            Action::Start {
                server: server.into(),
            },
        ));
        r.push(obs(t + 4, Some(server), true));
        r.push(obs(t + 8, None, true));
        r
    }

    fn write(dir: &Path, records: &[Record]) -> PathBuf {
        let text: String = records
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        let path = dir.join("journal.jsonl");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `rehearse report --journal JOURNAL [PLAN] -o OUT`.
    fn report_journal(journal: &Path, plan: &[&str], out: &Path) -> std::process::Output {
        let mut args = vec!["report", "--journal", journal.to_str().unwrap()];
        args.extend(plan);
        args.extend(["-o", out.to_str().unwrap()]);
        rehearse(&args)
    }

    /// The live report of `records` (and `plan`): (Markdown, HTML, JSON).
    fn live_report(
        name: &str,
        records: &[Record],
        plan: &[&str],
    ) -> (String, String, serde_json::Value) {
        let dir = temp_dir(name);
        let path = write(&dir, records);
        let out = dir.join("out");
        let o = report_journal(&path, plan, &out);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
        let v = serde_json::from_str(&read("report.json")).unwrap();
        let r = (read("report.md"), read("report.html"), v);
        std::fs::remove_dir_all(&dir).unwrap();
        r
    }

    fn strings(v: &serde_json::Value) -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_live_journal_renders_through_the_report_renderer() {
        let dir = temp_dir("live");
        let path = journal(&dir);
        let out = dir.join("out");
        let o = report_journal(&path, &[], &out);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(text(&o).contains("completed"), "{}", text(&o));

        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        // The same charts as a rehearsal (no heatmap: no explorer for a live run).
        assert_eq!(html.matches("<svg").count(), 3, "three SVG charts");
        for needle in [
            "Live run",
            "Failure tolerance over the upgrade (live run)",
            "Write availability",
            "Leader and server processes",
            "preflight",
            "1. upgrade s2",
            "stop s2",
            "install 1.8.8 on s2",
            "start s2",
            "explorer heatmap",
            "<section id=\"verdict\" class=\"verdict completed\">",
            "Outcome rule:",
            "Observed, not assumed",
            "Runbook as executed",
        ] {
            assert!(html.contains(needle), "HTML lacks {needle:?}");
        }
        assert!(!html.contains("Explorer: outcomes of single faults"));
        assert!(!html.contains("<script"));

        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(md.contains("**This is a live run**"), "{md}");
        assert!(md.contains("> **Outcome: COMPLETED**"), "{md}");
        assert!(md.contains("> - servers upgraded, in order: s2"), "{md}");
        assert!(md.contains("Plan sha-256 `abab"), "{md}");
        assert!(md.contains("### Observed, not assumed"), "{md}");
        assert!(md.contains("control not recorded in the journal"), "{md}");
        assert!(md.contains("write probe ran"), "{md}");
        assert!(
            md.contains("versions reported at the first observation: 1.8.7 (s1, s2, s3)"),
            "{md}"
        );
        assert!(md.contains("### Runbook as executed"), "{md}");
        assert!(
            md.contains("| 1. upgrade s2 | stop s2; install 1.8.8 on s2; start s2 | 4.0 s | 22.0 s | – | gate passed |"),
            "{md}"
        );
        assert!(md.contains(rehearse::report::live::NO_EXPECTED), "{md}");
        assert!(!md.contains("### Attempts"), "one attempt: {md}");
        assert!(md.contains("| 1. upgrade s2 | 0 / "), "{md}");
        assert!(md.contains("synthetic journal"), "{md}");

        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
        assert_eq!(v["schema_version"], rehearse::report::model::SCHEMA_VERSION);
        assert_eq!(v["live"]["outcome"], "done");
        assert_eq!(v["live"]["banner"]["decision"], "completed");
        assert_eq!(v["plan"]["sha256"], "ab".repeat(32));
        assert_eq!(v["live"]["parts"].as_array().unwrap().len(), 1);
        assert!(v["timeline"].get("marks").is_none());
        assert_eq!(v["live"]["runbook"][1]["gate"], "gate passed");
        assert!(v["live"]["runbook"][1].get("expected").is_none());
        assert_eq!(v["timeline"]["live"], true);
        assert_eq!(v["plan"]["product"], "consul");
        assert_eq!(v["risk"]["tolerance_min"], 0);
        // s2 down from its stop (4 s) until healthy again (14 s): 9 s at tolerance 0, all in
        // its step (observations at 5, 8, 10 s report 0; the one at 14 s reports 1).
        assert_eq!(v["risk"]["exposure_ms"], 9_000);
        let steps = v["steps"].as_array().unwrap();
        let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["preflight", "1. upgrade s2"]);
        assert_eq!(steps[1]["exposure_ms"], 9_000);
        assert_eq!(steps[1]["duration_ms"], 22_000);
        assert_eq!(steps[1]["no_leader_ms"], 0);
        assert_eq!(steps[1]["failed_writes"], 1.0);
        assert_eq!(v["explorer"]["runs"], 0);
        assert!(v["recommendations"].as_array().unwrap().is_empty());
    }

    #[test]
    fn a_malformed_journal_is_exit_2_naming_the_file_and_line() {
        let dir = temp_dir("live-bad");
        let path = journal(&dir);
        let text_in = std::fs::read_to_string(&path).unwrap();
        let mut lines: Vec<&str> = text_in.lines().collect();
        lines.insert(3, "{\"record\": \"observation\", \"obs\": tru");
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let o = report_journal(&path, &[], &dir.join("out"));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let t = text(&o);
        assert!(
            t.contains(path.to_str().unwrap()) && t.contains("line 4"),
            "{t}"
        );
        assert!(!t.contains("panicked"), "{t}");
        // A plan that is not the one the journal's run used is bad input (its sha-256 differs).
        let good = journal(&dir);
        let o = report_journal(&good, &["plans/nomad-3-servers.toml"], &dir.join("out"));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("is not the plan of journal") && t.contains(&"ab".repeat(32)),
            "{t}"
        );
        // A journal whose times span more than a year is corrupt: bad input, naming it.
        let mut records = vec![begin(1, 0, &"ab".repeat(32), &[]), obs(1, None, true)];
        records.push(Record::Interrupted { at_ms: u64::MAX });
        let bad = write(&dir, &records);
        let o = report_journal(&bad, &[], &dir.join("out"));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let t = text(&o);
        assert!(
            t.contains(bad.to_str().unwrap())
                && t.contains("record 3 is at 18446744073709551615 ms"),
            "{t}"
        );
        assert!(!t.contains("panicked"), "{t}");
        // A journal that does not exist is bad input too.
        let o = rehearse(&["report", "--journal", "/nonexistent/journal.jsonl"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains("/nonexistent/journal.jsonl"),
            "{}",
            text(&o)
        );
    }

    /// A gate that timed out: the banner says halted with the halt's reason and each unmet
    /// condition, and the step's check says the gate timed out.
    #[test]
    fn a_halted_run_reports_the_procedures_halt_reason() {
        let sha = "cd".repeat(32);
        let mut records = first_attempt_upgrading_s2(&sha);
        records.push(finish(
            40,
            Action::Halt(HaltReason::GateTimeout {
                server: "s2".into(),
                unmet: vec!["s2 not healthy in autopilot".into()],
            }),
        ));
        let (md, html, v) = live_report("halted", &records, &[]);
        let b = &v["live"]["banner"];
        assert_eq!(b["decision"], "halted");
        let reasons = strings(&b["reasons"]);
        assert_eq!(
            reasons[..3],
            [
                "halted: the gate for s2 timed out after its restart",
                "unmet: s2 not healthy in autopilot",
                "the procedure stopped safely (attempt 1)",
            ]
        );
        assert!(reasons[3].contains("attempt 2 starts"), "{reasons:?}");
        assert_eq!(v["live"]["outcome"], "halt");
        assert!(md.contains("> **Outcome: HALTED**"), "{md}");
        assert!(
            md.contains("> - unmet: s2 not healthy in autopilot"),
            "{md}"
        );
        assert!(
            md.contains("| gate timed out: s2 not healthy in autopilot |"),
            "{md}"
        );
        assert!(html.contains("class=\"verdict halted\""), "banner class");
        assert!(html.contains("<div class=\"decision\">HALTED</div>"));
        let rb = &v["live"]["runbook"];
        assert_eq!(rb.as_array().unwrap().len(), 2, "{rb}");
        assert_eq!(rb[0]["gate"], "preflight passed");
        assert_eq!(rb[1]["name"], "1. upgrade s2");
        assert_eq!(rb[1]["gate"], "gate timed out: s2 not healthy in autopilot");
    }

    /// Interrupted (Ctrl-C) and resumed: two parts, drawn apart in the timeline, the steps
    /// and the actions; the step cut by the interruption goes on in the resumed part.
    #[test]
    fn an_interrupted_and_resumed_run_is_drawn_as_two_parts() {
        let sha = "ef".repeat(32);
        let mut records = vec![begin(1, 0, &sha, &[]), obs(1, None, true)];
        records.extend(action(
            4,
            Action::Stop {
                server: "s2".into(),
            },
        ));
        records.push(obs(5, Some("s2"), true));
        records.push(Record::Interrupted { at_ms: T0 + 6_000 });
        let cut = records.clone();
        // The rerun resumes 54 s later: no begin record, the same attempt goes on.
        records.push(obs(60, Some("s2"), true));
        records.extend(action(
            61,
            Action::ReplaceBinary {
                server: "s2".into(),
                version: Version::new(1, 8, 8),
            },
        ));
        records.extend(action(
            62,
            Action::Start {
                server: "s2".into(),
            },
        ));
        records.push(obs(63, Some("s2"), true));
        records.push(obs(70, None, true));
        records.push(finish(71, done(&["s2"])));
        let (md, html, v) = live_report("resumed", &records, &[]);
        let live = &v["live"];
        assert_eq!(live["banner"]["decision"], "completed");
        let reasons = strings(&live["banner"]["reasons"]);
        assert!(
            reasons.iter().any(|r| r
                == "2 parts in this journal (each drawn on its own below); before this one: attempt 1: interrupted by the operator"),
            "{reasons:?}"
        );
        assert_eq!(live["attempts"], 1, "one attempt, resumed");
        let parts = live["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0]["label"], "attempt 1");
        assert_eq!(parts[0]["end_ms"], 6_000);
        assert_eq!(parts[1]["label"], "attempt 1, resumed");
        assert_eq!(parts[1]["resumed"], true);
        assert_eq!(parts[1]["start_ms"], 60_000);
        let names: Vec<&str> = v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "attempt 1: preflight",
                "attempt 1: 1. upgrade s2",
                "attempt 1, resumed: 1. upgrade s2",
            ]
        );
        // The step cut by the interruption ends there; the gap is no step's.
        let rb = live["runbook"].as_array().unwrap();
        assert_eq!(
            (rb[1]["start_ms"].as_u64(), rb[1]["duration_ms"].as_u64()),
            (Some(4_000), Some(2_000))
        );
        assert_eq!(rb[1]["gate"], "gate not decided: interrupted");
        assert_eq!(
            (rb[2]["start_ms"].as_u64(), rb[2]["part"].as_u64()),
            (Some(60_000), Some(1))
        );
        assert_eq!(rb[2]["gate"], "gate passed");
        assert_eq!(
            strings(&rb[2]["actions"]),
            ["install 1.8.8 on s2", "start s2"]
        );
        assert!(
            strings(&live["notes"]).contains(
                &"nothing was observed between the parts (54.0 s in all): the whole-run figures hold the last value observed across it, no step includes it".to_string()
            ),
            "{}",
            live["notes"]
        );
        let marks = v["timeline"]["marks"].as_array().unwrap();
        assert_eq!(marks.len(), 2);
        assert_eq!(marks[1][0], 60_000);
        assert_eq!(marks[1][1], "attempt 1, resumed");
        for section in [
            "### Attempts",
            "| attempt 1 | 0.0 s | 6.0 s | interrupted by the operator; resumed in the next part |",
            "| attempt 1, resumed | 60.0 s | 71.0 s | completed |",
            "| **attempt 1** | | | | | |",
            "| **attempt 1, resumed** | | | | | |",
            "| **attempt 1, resumed** | | | | | | |",
            "| **attempt 1, resumed** | | | |",
        ] {
            assert!(md.contains(section), "Markdown lacks {section:?}: {md}");
        }
        assert!(html.contains("<tr class=\"part\"><td colspan=\"9\">attempt 1, resumed</td></tr>"));
        // Each chart marks where each part begins (a line, named on the tolerance chart).
        assert!(
            html.contains(">\nattempt 1, resumed\n</text>"),
            "the chart marks the part"
        );
        assert_eq!(
            html.matches("stroke=\"#3C3C46\" stroke-width=\"2\"")
                .count(),
            6,
            "2 marks × 3 charts"
        );

        // The same journal cut at the interruption: interrupted, resumable.
        let (md, _, v) = live_report("interrupted", &cut, &[]);
        assert_eq!(v["live"]["banner"]["decision"], "interrupted");
        let reasons = strings(&v["live"]["banner"]["reasons"]);
        assert_eq!(
            reasons[0],
            "interrupted by the operator (Ctrl-C or SIGTERM) at 6.0 s, after \"stop s2\""
        );
        assert!(
            reasons[1].starts_with("resumable: rerun rehearse execute --apply --journal "),
            "{reasons:?}"
        );
        assert!(md.contains("> **Outcome: INTERRUPTED**"), "{md}");
    }

    /// The recorded journal of three parts (`tests/fixtures/fuzz/journal-attempts.jsonl`):
    /// attempt 1 halted at s2's gate, attempt 2 interrupted after stopping s2, then resumed
    /// to completion.
    #[test]
    fn a_recorded_journal_of_three_parts_reports_each() {
        let records = rehearse::live::journal::Journal::read(Path::new(
            "tests/fixtures/fuzz/journal-attempts.jsonl",
        ))
        .unwrap();
        let (md, html, v) = live_report("fixture-attempts", &records, &[]);
        let live = &v["live"];
        assert_eq!(live["attempts"], 2);
        assert_eq!(live["banner"]["decision"], "completed");
        let parts: Vec<(String, String)> = live["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["label"].as_str().unwrap().into(),
                    p["ended"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            parts,
            [
                (
                    "attempt 1".to_string(),
                    "halted: gate timed out for s2: s2 not healthy in autopilot".to_string()
                ),
                (
                    "attempt 2".to_string(),
                    "interrupted by the operator; resumed in the next part".to_string()
                ),
                ("attempt 2, resumed".to_string(), "completed".to_string()),
            ]
        );
        let gates: Vec<&str> = live["runbook"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["gate"].as_str().unwrap())
            .collect();
        assert_eq!(
            gates,
            [
                "preflight passed",
                "gate timed out: s2 not healthy in autopilot",
                "preflight passed",
                "gate not decided: interrupted",
                "gate passed",
            ]
        );
        assert_eq!(v["timeline"]["marks"].as_array().unwrap().len(), 3);
        assert_eq!(md.matches("| **attempt 2, resumed** |").count(), 3, "{md}");
        assert_eq!(html.matches("<tr class=\"part\">").count(), 9);
    }

    /// A journal cut mid-action (rehearse killed): interrupted, with the action in flight.
    #[test]
    fn a_journal_cut_mid_action_is_interrupted_with_the_action_in_flight() {
        let mut records = vec![begin(1, 0, &"01".repeat(32), &[]), obs(1, None, true)];
        records.push(Record::ActionBegin {
            at_ms: T0 + 4_000,
            action: Action::Stop {
                server: "s3".into(),
            },
        });
        let (_, _, v) = live_report("cut", &records, &[]);
        let b = &v["live"]["banner"];
        assert_eq!(b["decision"], "interrupted");
        let reasons = strings(&b["reasons"]);
        assert!(
            reasons[0].starts_with("the journal ends at 4.0 s without a finish record"),
            "{reasons:?}"
        );
        assert_eq!(
            reasons[1],
            "in flight when the journal ends: \"stop s3\" (a rerun finishes it without repeating it)"
        );
        assert_eq!(v["live"]["outcome"], "incomplete");
    }

    /// rehearse killed mid-action (no record), then a rerun that resumes: the resume record
    /// begins a second part of the same attempt, and the first says it was cut off. The
    /// control kind comes from the journal when no plan is given.
    #[test]
    fn a_killed_then_resumed_run_is_drawn_as_two_parts() {
        let sha = "5a".repeat(32);
        let mut first = begin(1, 0, &sha, &[]);
        if let Record::Begin { control, .. } = &mut first {
            *control = Some(rehearse::plan::ControlKind::Process);
        }
        let mut records = vec![first, obs(1, None, true)];
        records.push(Record::ActionBegin {
            at_ms: T0 + 4_000,
            action: Action::Stop {
                server: "s2".into(),
            },
        });
        records.push(Record::Resumed { at_ms: T0 + 30_000 });
        records.push(Record::ActionEnd {
            at_ms: T0 + 30_500,
            result: ActionResult::Ok,
            installed: None,
        });
        records.push(obs(31, Some("s2"), true));
        records.extend(action(
            32,
            Action::ReplaceBinary {
                server: "s2".into(),
                version: Version::new(1, 8, 8),
            },
        ));
        records.extend(action(
            33,
            Action::Start {
                server: "s2".into(),
            },
        ));
        records.push(obs(35, None, true));
        records.push(finish(36, done(&["s2"])));
        let (md, _, v) = live_report("killed", &records, &[]);
        let live = &v["live"];
        assert_eq!(live["banner"]["decision"], "completed");
        assert_eq!(live["attempts"], 1, "one attempt, resumed");
        let parts = live["parts"].as_array().unwrap();
        assert_eq!(parts.len(), 2, "{parts:?}");
        assert_eq!(parts[0]["label"], "attempt 1");
        assert_eq!(
            parts[0]["ended"],
            "cut off without a record (rehearse was killed or its machine stopped); resumed in \
             the next part"
        );
        assert_eq!(parts[1]["label"], "attempt 1, resumed");
        assert_eq!(parts[1]["start_ms"], 30_000);
        assert!(md.contains("control `process`"), "{md}");
        assert!(!md.contains("not recorded in the journal"), "{md}");
    }

    /// A halted attempt, then a second attempt that completes: each has its own preflight
    /// and steps, the second skipping the server the first upgraded.
    #[test]
    fn a_second_attempt_after_a_halt_is_a_part_of_its_own() {
        let sha = "23".repeat(32);
        let mut records = first_attempt_upgrading_s2(&sha);
        records.push(finish(
            13,
            Action::Halt(HaltReason::VerifyFailed {
                unmet: vec!["s1 runs 1.8.7".into()],
            }),
        ));
        records.push(begin(2, 100, &sha, &["s2"]));
        records.push(obs(101, None, true));
        records.extend(upgrade(104, "s3"));
        records.push(finish(113, done(&["s3"])));
        let (md, _, v) = live_report("attempts", &records, &[]);
        let live = &v["live"];
        assert_eq!(live["attempts"], 2);
        assert_eq!(live["banner"]["decision"], "completed");
        let reasons = strings(&live["banner"]["reasons"]);
        assert!(
            reasons.contains(&"upgraded by an earlier attempt and skipped: s2".to_string()),
            "{reasons:?}"
        );
        assert!(
            reasons.last().unwrap().ends_with(
                "before this one: attempt 1: halted: verification failed: s1 runs 1.8.7"
            ),
            "{reasons:?}"
        );
        let rb = live["runbook"].as_array().unwrap();
        let steps: Vec<(&str, &str)> = rb
            .iter()
            .map(|s| (s["name"].as_str().unwrap(), s["gate"].as_str().unwrap()))
            .collect();
        assert_eq!(
            steps,
            [
                ("attempt 1: preflight", "preflight passed"),
                (
                    "attempt 1: 1. upgrade s2",
                    "gate passed; the final verification then failed: s1 runs 1.8.7"
                ),
                ("attempt 2: preflight", "preflight passed"),
                ("attempt 2: 1. upgrade s3", "gate passed"),
            ],
            "{md}"
        );
        assert_eq!(rb[2]["start_ms"], 100_000);
        assert_eq!(
            rb[1]["duration_ms"], 9_000,
            "cut at the halt, not at the next attempt"
        );
        assert!(md.contains("started with s2 already upgraded"), "{md}");
    }

    /// Rolled back: the banner names the halt it followed and the rollback's work.
    #[test]
    fn a_rolled_back_run_says_what_was_put_back() {
        let mut records = vec![begin(1, 0, &"45".repeat(32), &[]), obs(1, None, true)];
        records.extend(upgrade(4, "s2"));
        records.extend(action(
            20,
            Action::Stop {
                server: "s2".into(),
            },
        ));
        records.push(Record::ActionBegin {
            at_ms: T0 + 21_000,
            action: Action::ReplaceBinary {
                server: "s2".into(),
                version: Version::new(1, 8, 7),
            },
        });
        records.push(Record::ActionEnd {
            at_ms: T0 + 21_500,
            result: ActionResult::Ok,
            installed: Some(("s2".into(), rehearse::live::control::Side::Current)),
        });
        records.extend(action(
            22,
            Action::Start {
                server: "s2".into(),
            },
        ));
        records.push(obs(23, None, true));
        records.extend(action(
            24,
            Action::RestoreSnapshot {
                snapshot: rehearse_model::api::SnapshotInfo {
                    index: 42,
                    term: 2,
                    format: 1,
                    written_by: Version::new(1, 8, 7),
                    digest: "x".into(),
                    size_bytes: 10,
                },
            },
        ));
        records.push(obs(26, None, true));
        let cause = HaltReason::GateTimeout {
            server: "s2".into(),
            unmet: vec!["s2 not caught up".into()],
        };
        records.push(finish(
            27,
            Action::Halt(HaltReason::RolledBack {
                cause: Box::new(cause),
            }),
        ));
        let (md, html, v) = live_report("rolled-back", &records, &[]);
        let b = &v["live"]["banner"];
        assert_eq!(b["decision"], "rolled back");
        assert_eq!(
            strings(&b["reasons"]),
            [
                "halted, then rolled back to the current version",
                "halted: the gate for s2 timed out after its restart",
                "unmet: s2 not caught up",
                "current version reinstalled on: s2",
                "the snapshot saved before the upgrade (index 42) was restored",
            ]
        );
        assert!(md.contains("> **Outcome: ROLLED BACK**"), "{md}");
        assert!(html.contains("class=\"verdict rolled-back\""));
        let rb = v["live"]["runbook"].as_array().unwrap();
        assert_eq!(rb[1]["gate"], "gate timed out: s2 not caught up");
        assert_eq!(rb[2]["name"], "finish");
        assert!(
            rb[2]["gate"]
                .as_str()
                .unwrap()
                .starts_with("rolled back after: gate timed out for s2")
        );
    }

    /// With the plan: its sha-256 is checked and shown, the control kind comes from it, and
    /// each step carries the rehearsal's duration range for its kind.
    #[test]
    fn with_the_plan_each_step_has_the_rehearsals_expected_duration() {
        let dir = temp_dir("live-plan");
        let plan_text = std::fs::read_to_string("plans/nomad-3-servers.toml").unwrap()
            + "\n[execute]\ncontrol = \"command\"\n[execute.command]\nstop = \"systemctl stop nomad\"\nstart = \"systemctl start nomad\"\nstatus = \"systemctl is-active nomad\"\n";
        let plan_path = dir.join("plan.toml");
        std::fs::write(&plan_path, &plan_text).unwrap();
        let sha = rehearse::report::sha256_hex(plan_text.as_bytes());
        let mut records = first_attempt_upgrading_s2(&sha);
        records.push(finish(13, done(&["s2"])));
        let (md, html, v) = live_report(
            "with-plan",
            &records,
            &[plan_path.to_str().unwrap(), "--seeds", "2"],
        );
        assert_eq!(v["plan"]["sha256"], sha);
        assert_eq!(v["live"]["observed"]["control"], "command");
        assert_eq!(v["live"]["observed"]["product"], "nomad");
        assert!(v["live"].get("expected_note").is_none());
        let rb = v["live"]["runbook"].as_array().unwrap();
        for s in rb {
            let e = &s["expected"];
            assert_eq!(e["seeds"], 2, "{s}");
            assert!(e["min_ms"].as_u64() <= e["median_ms"].as_u64(), "{s}");
            assert!(e["median_ms"].as_u64() <= e["max_ms"].as_u64(), "{s}");
        }
        assert_eq!(rb[0]["expected"]["step"], "preflight");
        assert!(
            rb[1]["expected"]["step"]
                .as_str()
                .unwrap()
                .starts_with("1. upgrade "),
            "{}",
            rb[1]
        );
        assert!(rb[1]["expected"]["max_ms"].as_u64().unwrap() > 0);
        assert!(md.contains(&format!("Plan sha-256 `{sha}`")), "{md}");
        assert!(md.contains("control `command`"), "{md}");
        assert!(html.contains("<li>control: <code>command</code></li>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
