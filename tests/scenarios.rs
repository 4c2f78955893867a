//! Every scenario file under scenarios/ matches its declared verdict, and `rehearse chaos`
//! reports it for CI (exit codes, JUnit, JSON, replay).

use rehearse::chaos::scenario::{discover, load, run};
use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_scenario_matches_its_declared_verdict() {
    let files = discover(&[root().join("scenarios")]).unwrap();
    assert!(files.len() >= 15, "only {} scenario files", files.len());
    for f in files {
        let l = load(&f).unwrap_or_else(|e| panic!("{e}"));
        let r = run(&l, None);
        assert!(
            r.passed,
            "{}: expected {:?}, got {:?}",
            f.display(),
            r.expect,
            r.runs.iter().map(|x| (x.seed, x.class)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn chaos_writes_junit_and_json_and_replays() {
    let dir = std::env::temp_dir().join(format!("rehearse-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (junit, json) = (dir.join("out.xml"), dir.join("out.json"));
    let o = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .current_dir(root())
        .args([
            "chaos",
            "scenarios/smoke",
            "scenarios/incidents/nomad-5917-several-at-once.toml",
            "--junit",
        ])
        .arg(&junit)
        .arg("--json-out")
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap();
    assert_eq!((report.tests, report.failures), (3, 0));
    assert!(
        xml.contains("classname=\"rehearse.scenarios.nomad-5917-several-at-once\""),
        "{xml}"
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(doc["schema_version"], 1);
    let lines = doc["runs"].as_array().unwrap();
    let unsafe_run = lines
        .iter()
        .find(|r| r["class"] == "unsafe")
        .expect("an unsafe run");
    // The record carries its replay line; replaying gives the same trace.
    let replay = unsafe_run["replay"].as_str().unwrap();
    let args: Vec<&str> = replay.split_whitespace().skip(1).collect();
    let again = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .current_dir(root())
        .args(&args)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    let rec = &doc["runs"][0];
    assert!(rec["trace_hash"].is_string(), "{rec}");
    assert_eq!(rec["trace_hash"], unsafe_run["trace_hash"]);
}

#[test]
fn a_scenario_whose_verdict_does_not_hold_fails_the_run_and_bad_files_exit_2() {
    let dir = std::env::temp_dir().join(format!("rehearse-chaos-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let plan = root().join("plans/nomad-3-servers.toml");
    let wrong = dir.join("wrong.toml");
    std::fs::write(&wrong, format!("name = \"wrong\"\nplan = {:?}\nvariant = \"two-at-a-time\"\nseeds = 2\nexpect = \"completed\"\n", plan)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(["chaos"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("replay: rehearse chaos"));
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "name = \"x\"\nplan = \"nope.toml\"\nexpect = \"maybe\"\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rehearse"))
        .args(["chaos"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("expect"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn shards_merge_and_a_record_replays_with_the_same_trace() {
    let dir = std::env::temp_dir().join(format!("rehearse-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = env!("CARGO_BIN_EXE_rehearse");
    let mut runs = 0;
    for shard in ["1/2", "2/2"] {
        let n = &shard[..1];
        let o = Command::new(bin)
            .current_dir(root())
            // Each scenario's own seeds: its verdict is declared over them (an `unsafe` pair
            // may be unsafe on only some seeds, e.g. nomad#26425 leader-first, where it takes
            // the upgraded server winning an election while old servers run: about half).
            .args([
                "chaos",
                "scenarios/incidents",
                "--shard",
                shard,
                "--json-out",
            ])
            .arg(dir.join(format!("{n}.json")))
            .arg("--junit")
            .arg(dir.join(format!("{n}.xml")))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{n}.json"))).unwrap())
                .unwrap();
        runs += doc["runs"].as_array().unwrap().len();
    }
    let merged = Command::new(bin)
        .args(["merge", "--junit"])
        .arg(dir.join("all.xml"))
        .arg(dir.join("1.xml"))
        .arg(dir.join("2.xml"))
        .output()
        .unwrap();
    assert_eq!(merged.status.code(), Some(0));
    let xml = std::fs::read_to_string(dir.join("all.xml")).unwrap();
    let incidents = discover(&[root().join("scenarios/incidents")])
        .unwrap()
        .len();
    assert_eq!(xml.matches("<testcase ").count(), incidents);
    let m = Command::new(bin)
        .args(["merge", "--json-out"])
        .arg(dir.join("all.json"))
        .arg(dir.join("1.json"))
        .arg(dir.join("2.json"))
        .output()
        .unwrap();
    assert_eq!(m.status.code(), Some(0));
    let all: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("all.json")).unwrap()).unwrap();
    assert_eq!(all["schema_version"], 1);
    assert_eq!(all["runs"].as_array().unwrap().len(), runs);
    let r = Command::new(bin)
        .current_dir(root())
        .arg("replay")
        .arg(dir.join("all.json"))
        .arg("--trace")
        .arg(dir.join("trace.jsonl"))
        .output()
        .unwrap();
    assert_eq!(
        r.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(String::from_utf8_lossy(&r.stdout).contains("identical"));
    assert!(
        std::fs::read_to_string(dir.join("trace.jsonl"))
            .unwrap()
            .lines()
            .count()
            > 10
    );
}

/// `scenarios/schema.json` is generated from the types; regenerate with
/// `REHEARSE_UPDATE_SCHEMA=1 cargo test --test integration schema`.
#[test]
fn the_scenario_schema_is_current() {
    let path = root().join("scenarios/schema.json");
    let fresh = rehearse::chaos::scenario::schema_json();
    if std::env::var_os("REHEARSE_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "scenarios/schema.json is stale: regenerate it (see this test's doc)"
    );
    let v: serde_json::Value = serde_json::from_str(&on_disk).unwrap();
    assert!(v["properties"]["expect"].is_object());
    assert!(
        v["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "plan")
    );
}
