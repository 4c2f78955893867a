//! The command line's own surface: the plan schema, shell completions, man pages, and the
//! commands that must work without servers.

use std::path::{Path, PathBuf};
use std::process::Output;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

use crate::rehearse;

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `plans/schema.json` is generated from the plan types; regenerate with
/// `REHEARSE_UPDATE_SCHEMA=1 cargo test --test integration plan_schema` (or
/// `rehearse schema plan > plans/schema.json`).
#[test]
fn the_plan_schema_is_current_and_printed_by_the_cli() {
    let path = root().join("plans/schema.json");
    let fresh = rehearse::plan::schema::schema_json();
    if std::env::var_os("REHEARSE_UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &fresh).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == fresh,
        "plans/schema.json is stale: regenerate it (see this test's doc)"
    );
    let o = rehearse(&["schema", "plan"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), fresh);
    let o = rehearse(&["schema", "scenario"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        std::fs::read_to_string(root().join("scenarios/schema.json")).unwrap()
    );
}

/// Follows `$ref` and `anyOf` to the object schemas a value may match.
fn objects<'a>(
    schema: &'a serde_json::Value,
    s: &'a serde_json::Value,
) -> Vec<&'a serde_json::Value> {
    if let Some(r) = s["$ref"].as_str() {
        let name = r.trim_start_matches("#/$defs/");
        return objects(schema, &schema["$defs"][name]);
    }
    if let Some(alts) = s["anyOf"].as_array().or(s["oneOf"].as_array()) {
        return alts.iter().flat_map(|a| objects(schema, a)).collect();
    }
    if s["properties"].is_object() || s["items"].is_object() {
        vec![s]
    } else {
        Vec::new()
    }
}

/// Every key of `value` is a property of the schema at `at` (recursively), and every leaf's
/// TOML type agrees with the schema's type.
fn covered(
    schema: &serde_json::Value,
    at: &serde_json::Value,
    value: &toml::Value,
    field: &str,
    file: &Path,
) {
    let objs = objects(schema, at);
    match value {
        toml::Value::Table(t) => {
            let obj = objs.iter().find(|o| o["properties"].is_object());
            let Some(obj) = obj else {
                // A free-form map (execute.*.vars): string values only.
                assert!(
                    at["additionalProperties"].is_object() || objs.is_empty(),
                    "{}: {field}",
                    file.display()
                );
                return;
            };
            for (k, v) in t {
                let sub = &obj["properties"][k];
                assert!(
                    !sub.is_null(),
                    "{}: {field}.{k} is not in plans/schema.json",
                    file.display()
                );
                covered(schema, sub, v, &format!("{field}.{k}"), file);
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let it = objs
                    .iter()
                    .find_map(|o| o["items"].as_object().map(|_| &o["items"]))
                    .unwrap_or(&at["items"]);
                covered(schema, it, v, &format!("{field}[{i}]"), file);
            }
        }
        toml::Value::String(_) => {
            let ty = &at["type"];
            let ok = ty == "string"
                || ty
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "string"))
                || at["$ref"].is_string()
                || at["anyOf"].is_array()
                || at["oneOf"].is_array();
            assert!(
                ok,
                "{}: {field} is a string but the schema says {at}",
                file.display()
            );
        }
        _ => {}
    }
}

#[test]
fn every_field_of_every_example_plan_is_in_the_schema() {
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("plans/schema.json")).unwrap())
            .unwrap();
    let mut files = Vec::new();
    for dir in ["plans", "plans/incidents"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "toml") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 8, "{files:?}");
    for f in files {
        let v: toml::Value = toml::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        covered(&schema, &schema, &v, "", &f);
    }
    // Fields the plan reference documents and editors must offer.
    let upgrade = &schema["$defs"]["Upgrade"]["properties"];
    for k in [
        "allow_zero_tolerance",
        "target_raft_protocol",
        "install_time",
        "gate",
        "drain",
    ] {
        assert!(upgrade[k].is_object(), "Upgrade.{k}");
    }
    assert_eq!(
        schema["$defs"]["Gate"]["properties"]["stable_for"]["type"],
        "string"
    );
    assert!(schema["$defs"]["Drain"]["properties"]["enabled"].is_object());
    assert!(schema["$defs"]["Execute"]["properties"]["probe"].is_object());
    assert!(schema["$defs"]["Cluster"]["properties"]["region"].is_object());
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef rehearse"),
        ("fish", "complete -c rehearse"),
    ] {
        let o = rehearse(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let s = stdout(&o);
        assert!(s.contains(marker), "{shell}: {s:.300}");
        for word in ["check", "execute", "apply", "seeds"] {
            assert!(s.contains(word), "{shell} completion lacks {word}");
        }
    }
    assert_eq!(rehearse(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn man_pages_are_generated_from_the_cli() {
    let o = rehearse(&["man"]);
    assert_eq!(o.status.code(), Some(0));
    let s = stdout(&o);
    assert!(
        s.starts_with(".ie") || s.contains(".TH rehearse"),
        "{s:.300}"
    );
    assert!(
        s.contains("execute") && s.contains("completions"),
        "{s:.300}"
    );
    let dir = std::env::temp_dir().join(format!("rehearse-man-{}", std::process::id()));
    let o = rehearse(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let page = std::fs::read_to_string(dir.join("rehearse-execute.1")).unwrap();
    assert!(page.contains("apply"), "{page:.300}");
    assert!(dir.join("rehearse.1").is_file());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Recorded real trials need no Consul binary: the simulator side runs alone.
#[test]
fn calibrate_with_recorded_trials_needs_no_consul_binary() {
    let o = rehearse(&[
        "calibrate",
        "--against",
        "consul",
        "--real",
        "tests/fixtures/calibration/consul-1.8.7.json",
        "--consul",
        "/nonexistent/consul",
        "--seeds",
        "2",
        "--scenarios",
        "follower-restart",
    ]);
    let text = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
    assert_ne!(o.status.code(), Some(2), "{text}");
    assert!(text.contains("follower-restart"), "{text}");
    let o = rehearse(&[
        "calibrate",
        "--against",
        "consul",
        "--consul",
        "/nonexistent/consul",
    ]);
    assert_eq!(o.status.code(), Some(2));
}
