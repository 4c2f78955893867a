//! The structured trace of a run and its hash.
//!
//! Only meaningful events are recorded (roles, leaders, process and gossip transitions, faults,
//! configuration changes, snapshots, violations); heartbeats are not. The hash is FNV-1a over
//! each event's JSON form, chained, so equal seeds give equal hashes across platforms.

use crate::rng::fnv1a;
use crate::state::{Role, ServerId};
use rehearse_model::api::SerfStatus;
use rehearse_model::time::SimTime;
use serde::{Deserialize, Serialize};
use std::io::Write;

/// Most events a trace keeps; later events still feed the hash.
pub const TRACE_EVENTS_MAX: usize = 1_000_000;

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum TraceKind {
    /// A role change.
    Role {
        /// Server.
        server: ServerId,
        /// New role.
        role: Role,
        /// Its term.
        term: u64,
    },
    /// A leader stepped down for lack of quorum contact.
    LeaseLost {
        /// Server.
        server: ServerId,
        /// Term.
        term: u64,
    },
    /// A process transition (start, boot, stop, crash, pause, resume…).
    Process {
        /// Server.
        server: ServerId,
        /// What.
        what: String,
    },
    /// Gossip status change.
    Serf {
        /// Server.
        server: ServerId,
        /// New status.
        status: SerfStatus,
    },
    /// A configuration change appended by the leader.
    Config {
        /// Leader.
        leader: ServerId,
        /// Log index.
        index: u64,
        /// Voters.
        voters: Vec<ServerId>,
        /// Non-voters.
        nonvoters: Vec<ServerId>,
        /// Why.
        why: String,
    },
    /// A fault or operator action on the world.
    Fault {
        /// Description.
        what: String,
    },
    /// A server panicked applying an entry of an unknown schema.
    SkewPanic {
        /// Server.
        server: ServerId,
        /// Index.
        index: u64,
        /// Schema it needed.
        schema: u32,
    },
    /// A snapshot was taken.
    SnapshotTaken {
        /// Server.
        server: ServerId,
        /// Index.
        index: u64,
    },
    /// InstallSnapshot sent.
    InstallSnapshot {
        /// Leader.
        from: ServerId,
        /// Follower.
        to: ServerId,
        /// Snapshot index.
        index: u64,
    },
    /// A safety invariant was violated.
    Violation {
        /// Invariant name.
        invariant: String,
        /// Details.
        detail: String,
    },
}

/// One trace record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// When.
    pub at: SimTime,
    /// What.
    #[serde(flatten)]
    pub kind: TraceKind,
}

/// The trace of a run.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    events: Vec<TraceEvent>,
    hash: u64,
    dropped: u64,
}

impl Trace {
    /// Records an event and folds it into the hash.
    pub fn push(&mut self, at: SimTime, kind: TraceKind) {
        let ev = TraceEvent { at, kind };
        // Serializing plain enums of numbers and strings cannot fail.
        let bytes = serde_json::to_vec(&ev).unwrap_or_default();
        self.hash = fnv1a(self.hash, &bytes);
        if self.events.len() < TRACE_EVENTS_MAX {
            self.events.push(ev);
        } else {
            self.dropped += 1;
        }
    }

    /// Events recorded.
    pub fn events(&self) -> &[TraceEvent] {
        &self.events
    }

    /// The chained hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Writes the events as JSON lines.
    pub fn write_jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        for ev in &self.events {
            serde_json::to_writer(&mut *out, ev)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
