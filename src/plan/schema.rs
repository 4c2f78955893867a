//! The JSON schema of plan files, generated from the plan types (kept in `plans/schema.json`).
//!
//! Editors use it for completion and checking of plan TOML files, e.g. Taplo (and the VS Code
//! extension Even Better TOML built on it) with a `#:schema ./schema.json` first line. Fields
//! the plan types hold in their own representation (durations as nanoseconds, versions,
//! products) are described here as the strings a plan file contains.

use schemars::{Schema, SchemaGenerator, json_schema};

/// The JSON schema of plan files, pretty-printed with a trailing newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(super::Plan);
    // A schema of plain derived types always serializes.
    serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
}

/// A duration such as `"10s"`, `"2m"` or `"250ms"` (parsed by humantime; no pattern, so an
/// editor never flags a form humantime accepts).
pub(super) fn duration(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "examples": ["10s", "2m", "250ms", "1h 30m"]
    })
}

/// A release version such as `"1.9.7"` (a leading `v` and a `+ent` suffix are accepted).
pub(super) fn version(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": r"^\s*v?\d+\.\d+\.\d+([+:-].*)?$",
        "examples": ["1.9.7", "1.10.3", "1.8.14+ent"]
    })
}

/// `nomad` or `consul`.
pub(super) fn product(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": ["nomad", "consul"] })
}

/// `community` or `enterprise`.
pub(super) fn edition(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "enum": ["community", "enterprise"] })
}
