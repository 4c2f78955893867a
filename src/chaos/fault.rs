//! Faults placed at a step boundary of the procedure, aimed at a server by role.
//!
//! A fault is written `kind:target:step:duration`, e.g. `crash:other:7:30s` or
//! `pause:upgrading:12:permanent`, so a failure can be replayed from one line.

use crate::rehearsal::{Hooks, StepCtx};
use rehearse_model::time::{MS, SEC};
use rehearse_sim::state::{BadBinary, StopMode};
use rehearse_sim::{ServerId, World};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// kill -9; restarted when the fault heals.
    Crash,
    /// Graceful stop without leave; restarted when it heals.
    Stop,
    /// SIGSTOP (a frozen process: gray failure); SIGCONT when it heals.
    Pause,
    /// Cut off from every other server, both ways.
    Isolate,
    /// Messages from the target to the leader are dropped (one-way partition).
    OneWay,
    /// 20% message loss on every link.
    Loss,
    /// One-way latency 50–300 ms on every link.
    Latency,
    /// 200 ms fsync delay on the target's log appends.
    SlowDisk,
    /// The target's next binary fails to start (bad build, missing library).
    BadBinary,
    /// The target's next binary crash-loops a few seconds after start.
    CrashLoop,
    /// The target loses its data dir (stopped, wiped, started again).
    WipeData,
    /// The target comes back with a new address (stopped, readdressed, started).
    NewAddress,
    /// The target's leader loop fails to establish leadership each time it wins an election
    /// (hashicorp/nomad#8470): it leads in Raft but serves nothing until it hands leadership
    /// over or the fault heals. Not in `ALL`: it changes nothing until the target wins an
    /// election, so the explorer's blind placement rarely exercises it; scenarios place it.
    FailsToLead,
    /// A client-only node's host goes away (target `client`: the first whose host runs): it
    /// stops heartbeating and should be marked down once the leader's timer for it fires.
    /// Healed (the host returns) only when it has a duration: a lost host stays lost. Not in
    /// `ALL`: the explorer aims at servers.
    ClientDown,
}

impl FaultKind {
    /// Every kind, in a fixed order.
    pub const ALL: [FaultKind; 12] = [
        FaultKind::Crash,
        FaultKind::Stop,
        FaultKind::Pause,
        FaultKind::Isolate,
        FaultKind::OneWay,
        FaultKind::Loss,
        FaultKind::Latency,
        FaultKind::SlowDisk,
        FaultKind::BadBinary,
        FaultKind::CrashLoop,
        FaultKind::WipeData,
        FaultKind::NewAddress,
    ];

    /// Whether the fault hits one server (so a target matters).
    pub fn targeted(self) -> bool {
        !matches!(self, FaultKind::Loss | FaultKind::Latency)
    }

    /// Whether the fault is latent: it only marks the installed binary, which changes nothing
    /// until the server next boots (the binary runs) or gets another binary (the mark goes).
    /// Until then the run is the fault-free one, event for event.
    pub fn latent(self) -> bool {
        matches!(self, FaultKind::BadBinary | FaultKind::CrashLoop)
    }

    /// The kind whose runs this kind's runs are, fault for fault. In the simulator a graceful
    /// stop without leave and a kill -9 have the same effect: the process is down (its Raft
    /// state is on disk either way: every append is synced), gossip detects it as failed, the
    /// API refuses connections, and healing starts it again. Real servers differ in what they
    /// flush and log on the way down, which nothing here reads.
    pub fn same_run_as(self) -> FaultKind {
        match self {
            FaultKind::Stop => FaultKind::Crash,
            k => k,
        }
    }

    /// Whether healing undoes anything. A bad binary, wiped data or a new address stay (the
    /// procedure must cope), so for these kinds a fault healed after any time is the same run
    /// as the permanent one.
    pub fn heals(self) -> bool {
        !matches!(
            self,
            FaultKind::BadBinary
                | FaultKind::CrashLoop
                | FaultKind::WipeData
                | FaultKind::NewAddress
        )
    }
}

/// Which server a fault hits, by its role at the moment the fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The current leader.
    Leader,
    /// The server being upgraded in this step.
    Upgrading,
    /// A follower not upgraded yet (and not in this step).
    Pending,
    /// A server already upgraded.
    Upgraded,
    /// Any server that is neither the leader nor in this step.
    Other,
    /// A client-only node (for `client-down`); not in `ALL`.
    Client,
}

impl Target {
    /// Every target, in a fixed order.
    pub const ALL: [Target; 5] = [
        Target::Leader,
        Target::Upgrading,
        Target::Pending,
        Target::Upgraded,
        Target::Other,
    ];
}

/// One fault: what, at whom, before which step, for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fault {
    /// What.
    pub kind: FaultKind,
    /// At whom.
    pub target: Target,
    /// Before the procedure's action with this index.
    pub step: usize,
    /// Healed after this many seconds; `None` = permanent (until the procedure ends).
    pub duration_s: Option<u64>,
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|j| j.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self
            .duration_s
            .map_or("permanent".into(), |s| format!("{s}s"));
        write!(
            f,
            "{}:{}:{}:{d}",
            name(&self.kind),
            name(&self.target),
            self.step
        )
    }
}

/// Why a fault spec (`kind:target:step:duration`) does not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// Not of the form `kind:target:step:duration` with known words.
    #[error("invalid fault {0:?}: expected kind:target:step:duration, e.g. crash:other:7:30s")]
    Invalid(String),
    /// A duration longer than [`crate::bounds::MAX_FAULT_SECS`].
    #[error(
        "fault {spec:?}: {secs}s is longer than the limit of {}s (use \"permanent\" for a fault that never heals)",
        crate::bounds::MAX_FAULT_SECS
    )]
    TooLong {
        /// The spec as written.
        spec: String,
        /// Its duration (s).
        secs: u64,
    },
}

impl FromStr for Fault {
    type Err = FaultError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || FaultError::Invalid(s.to_string());
        let parts: Vec<&str> = s.split(':').collect();
        let [kind, target, step, dur] = parts[..] else {
            return Err(bad());
        };
        let kind: FaultKind = serde_json::from_value(kind.into()).map_err(|_| bad())?;
        let target: Target = serde_json::from_value(target.into()).map_err(|_| bad())?;
        let step = step.parse().map_err(|_| bad())?;
        let duration_s = match dur {
            "permanent" => None,
            d => Some(humantime::parse_duration(d).map_err(|_| bad())?.as_secs()),
        };
        if let Some(secs) = duration_s.filter(|&s| s > crate::bounds::MAX_FAULT_SECS) {
            return Err(FaultError::TooLong {
                spec: s.to_string(),
                secs,
            });
        }
        Ok(Fault {
            kind,
            target,
            step,
            duration_s,
        })
    }
}

/// Applies faults at their steps and heals them when their time is up.
#[derive(Clone)]
pub struct FaultHooks {
    faults: Vec<Fault>,
    active: Vec<(Fault, Option<ServerId>, Option<u64>)>,
    fired: usize,
    /// Faults that found no server with their role at their step (nothing happened).
    pub missed: Vec<Fault>,
    /// Keep the final trace (for replay).
    pub keep_trace: bool,
    /// The final trace as JSON lines, when `keep_trace` is set.
    pub trace_jsonl: Vec<u8>,
}

impl FaultHooks {
    /// Hooks for these faults.
    pub fn new(faults: Vec<Fault>) -> Self {
        FaultHooks {
            faults,
            active: Vec::new(),
            fired: 0,
            missed: Vec::new(),
            keep_trace: false,
            trace_jsonl: Vec::new(),
        }
    }

    /// These hooks with one more fault to fire at its step (the explorer adds a pair's second
    /// fault to a run forked after the first one fired).
    pub fn with(&self, f: Fault) -> FaultHooks {
        let mut h = self.clone();
        h.faults.push(f);
        h
    }

    /// Whether any fault actually fired.
    pub fn fired(&self) -> bool {
        self.fired > 0
    }

    /// These hooks as they would be had every fault been given `secs` instead, all of them
    /// injected at `injected_ns` (the explorer forks a shorter fault off a longer one; a fault
    /// due by now heals at the next step boundary).
    pub fn lasting(&self, secs: u64, injected_ns: u64) -> FaultHooks {
        let mut h = self.clone();
        for f in &mut h.faults {
            f.duration_s = Some(secs);
        }
        for (f, _, heal_at) in &mut h.active {
            f.duration_s = Some(secs);
            *heal_at = Some(injected_ns + secs * SEC);
        }
        h
    }

    fn heal_due(&mut self, w: &mut World, all: bool) {
        let now = w.now().as_nanos();
        let (due, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.active)
                .into_iter()
                .partition(|(f, _, heal_at)| {
                    // A lost client host stays lost, even when the procedure ends.
                    let lasts = f.kind == FaultKind::ClientDown && f.duration_s.is_none();
                    (all && !lasts) || heal_at.is_some_and(|t| t <= now)
                });
        self.active = keep;
        for (f, target, _) in due {
            heal(w, f.kind, target);
        }
    }
}

/// Resolves a role to a server at this step (lowest id among candidates: deterministic), or
/// for `client-down` to a client-only node.
fn resolve(w: &World, kind: FaultKind, t: Target, ctx: &StepCtx<'_>) -> Option<usize> {
    resolve_in(w, kind, t, ctx.batch, ctx.upgraded)
}

/// Where a fault lands if it fires now, with `batch` being upgraded and `upgraded` done:
/// `Some(Some(id))` on a server (or client node), `Some(None)` on the whole network (loss,
/// latency), `None` when nothing has the role (the fault misses and the run is the
/// fault-free one).
pub fn landing(
    w: &World,
    f: &Fault,
    batch: &[String],
    upgraded: &[String],
) -> Option<Option<usize>> {
    if f.kind.targeted() {
        resolve_in(w, f.kind, f.target, batch, upgraded).map(Some)
    } else {
        Some(None)
    }
}

fn resolve_in(
    w: &World,
    kind: FaultKind,
    t: Target,
    batch: &[String],
    upgraded: &[String],
) -> Option<usize> {
    match (kind == FaultKind::ClientDown, t == Target::Client) {
        (true, true) => return w.first_running_client(),
        (false, false) => {}
        _ => return None,
    }
    let leader = w.leader();
    let in_batch = |id: ServerId| batch.iter().any(|b| b == w.server_name(id));
    let upgraded = |id: ServerId| upgraded.iter().any(|b| b == w.server_name(id));
    let mut ids = 0..w.server_count();
    match t {
        Target::Leader => leader,
        Target::Upgrading => ids.find(|&id| in_batch(id)),
        Target::Pending => ids.find(|&id| Some(id) != leader && !in_batch(id) && !upgraded(id)),
        Target::Upgraded => ids.find(|&id| upgraded(id) && !in_batch(id)),
        Target::Other => ids.find(|&id| Some(id) != leader && !in_batch(id)),
        Target::Client => None,
    }
}

fn inject(w: &mut World, kind: FaultKind, target: Option<ServerId>) {
    let Some(id) = target else {
        match kind {
            FaultKind::Loss => w.set_loss(0.2),
            FaultKind::Latency => w.set_latency(50 * MS, 300 * MS),
            _ => {}
        }
        return;
    };
    match kind {
        FaultKind::Crash => w.crash(id),
        FaultKind::Stop => w.stop(id, StopMode::Graceful),
        FaultKind::Pause => w.pause(id),
        FaultKind::Isolate => {
            let rest: Vec<ServerId> = (0..w.server_count()).filter(|&o| o != id).collect();
            w.partition(&[id], &rest);
        }
        FaultKind::OneWay => {
            if let Some(l) = w.leader().filter(|&l| l != id) {
                w.partition_oneway(id, l);
            }
        }
        FaultKind::SlowDisk => w.set_disk_delay(id, 200 * MS),
        FaultKind::BadBinary => w.set_bad_binary(id, BadBinary::FailsToStart),
        FaultKind::CrashLoop => w.set_bad_binary(id, BadBinary::CrashLoop),
        FaultKind::WipeData => {
            w.crash(id);
            w.wipe_data(id);
            w.start(id);
        }
        FaultKind::NewAddress => {
            w.stop(id, StopMode::Graceful);
            w.change_address(id);
            w.start(id);
        }
        FaultKind::FailsToLead => w.set_fails_to_lead(id, true),
        FaultKind::ClientDown => w.client_down(id),
        FaultKind::Loss | FaultKind::Latency => {}
    }
}

fn heal(w: &mut World, kind: FaultKind, target: Option<ServerId>) {
    if !kind.heals() {
        return;
    }
    let defaults = rehearse_sim::NetConfig::default();
    match (kind, target) {
        (FaultKind::Crash | FaultKind::Stop, Some(id)) => w.start(id),
        (FaultKind::Pause, Some(id)) => w.resume(id),
        (FaultKind::Isolate | FaultKind::OneWay, _) => w.heal(),
        (FaultKind::Loss, _) => w.set_loss(0.0),
        (FaultKind::Latency, _) => w.set_latency(defaults.latency_ns_min, defaults.latency_ns_max),
        (FaultKind::SlowDisk, Some(id)) => w.set_disk_delay(id, 0),
        (FaultKind::FailsToLead, Some(id)) => w.set_fails_to_lead(id, false),
        (FaultKind::ClientDown, Some(i)) => w.client_up(i),
        // Kinds that do not heal returned above; a healing kind without its target cannot
        // have been injected.
        _ => {}
    }
}

impl Hooks for FaultHooks {
    fn before(&mut self, w: &mut World, ctx: &StepCtx<'_>) {
        self.heal_due(w, false);
        let due: Vec<Fault> = self
            .faults
            .iter()
            .copied()
            .filter(|f| f.step == ctx.step)
            .collect();
        for f in due {
            let target = if f.kind.targeted() {
                match resolve(w, f.kind, f.target, ctx) {
                    Some(id) => Some(id),
                    None => {
                        self.missed.push(f);
                        continue;
                    }
                }
            } else {
                None
            };
            inject(w, f.kind, target);
            self.fired += 1;
            let heal_at = f.duration_s.map(|s| w.now().as_nanos() + s * SEC);
            self.active.push((f, target, heal_at));
        }
    }

    fn after(&mut self, w: &mut World, _ctx: &StepCtx<'_>) {
        self.heal_due(w, false);
    }

    fn finish(&mut self, w: &mut World) {
        self.heal_due(w, true);
    }

    fn done(&mut self, w: &World) {
        if self.keep_trace {
            // Writing into a Vec cannot fail.
            let _ = w.trace_log().write_jsonl(&mut self.trace_jsonl);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_their_one_line_form() {
        for s in [
            "crash:other:7:30s",
            "pause:upgrading:12:permanent",
            "loss:leader:0:10s",
        ] {
            let f: Fault = s.parse().unwrap();
            assert_eq!(f.to_string(), s);
        }
        assert!("crash:nobody:1:1s".parse::<Fault>().is_err());
        assert!("crash:leader:x:1s".parse::<Fault>().is_err());
        assert!("crash".parse::<Fault>().is_err());
    }
}
