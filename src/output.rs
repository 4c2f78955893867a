//! Machine output, one convention for every command:
//!
//! - `--json` prints the command's one JSON document on stdout; the human text then goes to
//!   stderr, so stdout parses as JSON. `--json-out FILE` writes the same document to a file and
//!   keeps the human text on stdout. Both may be given.
//! - Every document carries `"schema_version": 1` ([`SCHEMA_VERSION`]); records that a command
//!   produces one per run or per seed are an array inside the document, not separate lines.
//! - Every hash is a string of hex digits (16 for a 64-bit hash, [`hex`]).
//! - `--junit FILE` writes JUnit XML through `quick-junit`: classnames are
//!   `rehearse.<command>.<file stem>` with no other dots, and a failing case's body says what
//!   happened and the exact command line that replays it.

use crate::cli::CliError;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use serde::{Deserialize, Deserializer, Serializer};
use std::path::{Path, PathBuf};

/// The version of every JSON document the commands write (report.json has its own).
pub const SCHEMA_VERSION: u32 = 1;

/// `--json` and `--json-out FILE`, shared by every command with machine output.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct JsonArgs {
    /// Print the command's JSON document on stdout (human text goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Write the same JSON document to FILE (human text stays on stdout).
    #[arg(long, value_name = "FILE")]
    pub json_out: Option<PathBuf>,
}

impl JsonArgs {
    /// Sends the human text to stderr when the document goes to stdout. Call first.
    pub fn route_human_text(&self) {
        crate::cli::human_to_stderr(self.json);
    }

    /// Whether a document is wanted at all.
    pub fn wanted(&self) -> bool {
        self.json || self.json_out.is_some()
    }

    /// Writes `doc` (with `schema_version` added) to stdout and/or the `--json-out` file.
    pub fn emit(&self, doc: serde_json::Value) -> Result<(), CliError> {
        if !self.wanted() {
            return Ok(());
        }
        let doc = versioned(doc);
        let text = serde_json::to_string_pretty(&doc)
            .map_err(|e| CliError::new(format!("cannot render JSON: {e}")))?;
        if self.json {
            use std::io::Write;
            let mut o = std::io::stdout().lock();
            // A closed stdout (`| head`) is not an error.
            let _ = o
                .write_all(text.as_bytes())
                .and_then(|()| o.write_all(b"\n"));
        }
        if let Some(path) = &self.json_out {
            std::fs::write(path, text + "\n")
                .map_err(|e| CliError::new(format!("--json-out {}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// `doc` with `"schema_version": 1` (an object; anything else is wrapped as `"data"`).
pub fn versioned(doc: serde_json::Value) -> serde_json::Value {
    let mut map = match doc {
        serde_json::Value::Object(m) => m,
        other => {
            let mut m = serde_json::Map::new();
            m.insert("data".into(), other);
            m
        }
    };
    map.insert("schema_version".into(), SCHEMA_VERSION.into());
    serde_json::Value::Object(map)
}

/// A 64-bit hash as 16 hex digits.
pub fn hex(h: u64) -> String {
    format!("{h:016x}")
}

/// Serde for a `u64` hash: written as 16 hex digits; read from hex digits or (older files) an
/// integer.
pub mod hex_u64 {
    use super::*;

    /// Writes the hash as 16 hex digits.
    pub fn serialize<S: Serializer>(h: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(*h))
    }

    /// Reads hex digits or an integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Int(u64),
            Hex(String),
        }
        match Either::deserialize(d)? {
            Either::Int(n) => Ok(n),
            Either::Hex(s) => u64::from_str_radix(&s, 16)
                .map_err(|e| serde::de::Error::custom(format!("hash {s:?}: {e}"))),
        }
    }
}

/// A JUnit classname: `rehearse.<command>.<stem>`, the stem being the file name without its
/// extension and with every other dot made a dash (CI servers split classnames on dots).
pub fn classname(command: &str, file: &Path) -> String {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("rehearse.{command}.{}", stem.replace('.', "-"))
}

/// A test case: passed, or failed with `message` and a body saying what happened.
pub fn case(
    classname: &str,
    name: &str,
    failure: Option<(String, String)>,
    seconds: f64,
) -> TestCase {
    let status = match failure {
        None => TestCaseStatus::success(),
        Some((message, body)) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(message).set_description(body);
            s
        }
    };
    let mut c = TestCase::new(name, status);
    c.set_classname(classname);
    if seconds > 0.0 {
        c.set_time(std::time::Duration::from_secs_f64(seconds));
    }
    c
}

/// A one-suite report.
pub fn report(name: &str, suite: &str, cases: Vec<TestCase>) -> Report {
    let mut s = TestSuite::new(suite);
    s.add_test_cases(cases);
    let mut r = Report::new(name);
    r.add_test_suite(s);
    r
}

/// Writes a JUnit report to `path` (errors name `--junit` and the path).
pub fn write_junit(path: &Path, r: &Report) -> Result<(), CliError> {
    let err = |e: String| CliError::new(format!("--junit {}: {e}", path.display()));
    let xml = r.to_string().map_err(|e| err(e.to_string()))?;
    std::fs::write(path, xml).map_err(|e| err(e.to_string()))
}

/// Reads a JUnit file (for `merge`).
pub fn read_junit(path: &Path) -> Result<Report, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::new(format!("{}: {e}", path.display())))?;
    Report::deserialize_from_str(&text)
        .map_err(|e| CliError::new(format!("{}: not JUnit XML: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classnames_have_no_extension_dots() {
        assert_eq!(
            classname("scenarios", Path::new("scenarios/smoke/leader.paused.toml")),
            "rehearse.scenarios.leader-paused"
        );
    }

    #[test]
    fn hashes_round_trip_as_hex_and_old_integers_still_read() {
        #[derive(serde::Serialize, Deserialize)]
        struct H {
            #[serde(with = "hex_u64")]
            h: u64,
        }
        let v = serde_json::to_string(&H { h: u64::MAX - 1 }).unwrap();
        assert_eq!(v, r#"{"h":"fffffffffffffffe"}"#);
        assert_eq!(serde_json::from_str::<H>(&v).unwrap().h, u64::MAX - 1);
        let old = format!(r#"{{"h":{}}}"#, u64::MAX - 1);
        assert_eq!(serde_json::from_str::<H>(&old).unwrap().h, u64::MAX - 1);
    }

    #[test]
    fn a_failing_case_keeps_its_body() {
        let r = report(
            "rehearse check",
            "check",
            vec![case(
                "rehearse.check.p",
                "seed 3",
                Some(("unsafe".into(), "replay: rehearse check p".into())),
                0.0,
            )],
        );
        let xml = r.to_string().unwrap();
        let back = Report::deserialize_from_str(&xml).unwrap();
        assert_eq!(back.failures, 1);
        assert!(xml.contains("replay: rehearse check p"), "{xml}");
    }
}
