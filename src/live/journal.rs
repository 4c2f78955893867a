//! The run journal: JSON lines, one per observation and one before and one after each action,
//! flushed and synced as they are written. A rerun after rehearse itself crashed replays the
//! journal into a fresh (pure) procedure, which reaches exactly the state it had, then finishes
//! the action that was in flight without repeating it (actions are idempotent: a server that
//! is already stopped is not stopped again).
//!
//! Tokens never reach the journal: observations hold answers, never request headers.

use super::control::Side;
use crate::procedure::{Action, ActionResult, Observation};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One journal line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    /// A run (attempt) begins.
    Begin {
        /// Attempt number, from 1.
        attempt: u32,
        /// sha-256 of the plan file, hex.
        plan_sha256: String,
        /// rehearse's version.
        rehearse: String,
        /// Unix ms.
        at_ms: u64,
        /// Servers a previous attempt already upgraded.
        already_upgraded: Vec<String>,
        /// How the servers are controlled (`[execute] control`), so a report read from the
        /// journal alone can say it. Absent in journals from before it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        control: Option<crate::plan::ControlKind>,
    },
    /// A rerun resumes the unfinished attempt: after an interruption, or after rehearse was
    /// stopped without writing anything (killed, or its machine went down).
    Resumed {
        /// Unix ms.
        at_ms: u64,
    },
    /// The cluster as read.
    Observation {
        /// The observation given to the procedure.
        obs: Box<Observation>,
    },
    /// An action is about to be carried out.
    ActionBegin {
        /// Unix ms.
        at_ms: u64,
        /// The action.
        action: Action,
    },
    /// An action finished.
    ActionEnd {
        /// Unix ms.
        at_ms: u64,
        /// Its result.
        result: ActionResult,
        /// The installation a server now has (after ReplaceBinary).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        installed: Option<(String, Side)>,
    },
    /// The run stopped at the operator's request (Ctrl-C) after the action in flight.
    Interrupted {
        /// Unix ms.
        at_ms: u64,
    },
    /// The procedure ended (`Done` or `Halt`).
    Finish {
        /// Unix ms.
        at_ms: u64,
        /// The final action.
        action: Action,
        /// Notes.
        notes: Vec<String>,
    },
}

impl Record {
    /// The time the record carries (ms on the run's clock; an observation's `now_ms`).
    pub fn at_ms(&self) -> u64 {
        match self {
            Record::Begin { at_ms, .. }
            | Record::ActionBegin { at_ms, .. }
            | Record::ActionEnd { at_ms, .. }
            | Record::Interrupted { at_ms }
            | Record::Resumed { at_ms }
            | Record::Finish { at_ms, .. } => *at_ms,
            Record::Observation { obs } => obs.now_ms,
        }
    }
}

/// Why a journal could not be used: bad input, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("journal {path}: {message}")]
pub struct JournalError {
    /// File.
    pub path: String,
    /// What is wrong, and what to do.
    pub message: String,
}

/// An open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

impl Journal {
    /// Reads every record of the journal at `path` (none if it does not exist).
    pub fn read(path: &Path) -> Result<Vec<Record>, JournalError> {
        let err = |message: String| JournalError {
            path: path.display().to_string(),
            message,
        };
        let text = match std::fs::read(path) {
            Ok(bytes) => crate::bounds::utf8(bytes).map_err(err)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(err(e.to_string())),
        };
        let mut out = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str(line) {
                Ok(r) => out.push(r),
                // A crash can cut the last line short; anything else is corruption.
                Err(_) if i + 1 == lines.len() => {
                    tracing::warn!("journal {}: ignoring a torn last line", path.display());
                }
                Err(e) => {
                    let what = crate::bounds::json_error(line, &e);
                    return Err(err(format!("line {}: {what}", i + 1)));
                }
            }
        }
        Ok(out)
    }

    /// Opens the journal for appending (creating it and its directory).
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        let err = |e: std::io::Error| JournalError {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut text = std::fs::read(path).unwrap_or_default();
        // Drop a torn last line so the next record starts on a line of its own.
        if !text.is_empty() && !text.ends_with(b"\n") {
            let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            text.truncate(keep);
            std::fs::write(path, &text).map_err(err)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends a record and syncs it to disk before returning.
    pub fn write(&mut self, r: &Record) -> Result<(), JournalError> {
        let err = |m: String| JournalError {
            path: self.path.display().to_string(),
            message: m,
        };
        let mut line = serde_json::to_string(r).map_err(|e| err(e.to_string()))?;
        line.push('\n');
        self.file
            .write_all(line.as_bytes())
            .and_then(|_| self.file.sync_data())
            .map_err(|e| err(e.to_string()))
    }
}

/// What earlier records say: the installation of each server, and which servers were
/// upgraded and restarted.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Installed {
    /// Last installation per server.
    pub side: std::collections::BTreeMap<String, Side>,
    /// Servers started after the target was installed, in order.
    pub upgraded: Vec<String>,
}

impl Installed {
    /// Folds the records in.
    pub fn from_records(records: &[Record]) -> Installed {
        let mut out = Installed::default();
        let mut in_flight: Option<Action> = None;
        for r in records {
            match r {
                Record::ActionBegin { action, .. } => in_flight = Some(action.clone()),
                Record::ActionEnd {
                    result, installed, ..
                } => {
                    if let Some((s, side)) = installed {
                        out.side.insert(s.clone(), *side);
                        out.upgraded.retain(|u| u != s);
                    }
                    let started = match &in_flight {
                        Some(Action::Start { server }) if *result == ActionResult::Ok => {
                            Some(server.clone())
                        }
                        _ => None,
                    };
                    if let Some(s) = started {
                        let on_target = out.side.get(&s) == Some(&Side::Target);
                        if on_target && !out.upgraded.contains(&s) {
                            out.upgraded.push(s);
                        }
                    }
                    in_flight = None;
                }
                _ => {}
            }
        }
        out
    }
}
