//! A live run's observations and actions folded into samples and steps (segments), attempt by
//! attempt: each attempt (and each resumption after an interruption) is a part of its own, so
//! its steps are cut where it ends and a new attempt starts again with its preflight.

use crate::procedure::{Action, ClusterView};
use crate::report::measure::{Sample, Segment, StepKind};
use rehearse_model::api::SharedStr;
use rehearse_sim::Metrics;

/// The journal folded into samples and segments.
#[derive(Default)]
pub(super) struct Fold {
    pub(super) servers: Vec<String>,
    samples: Vec<Sample>,
    reported: Vec<(u64, Option<i64>)>,
    segments: Vec<Segment>,
    /// The part (index into the attempts) of each segment.
    part_of: Vec<usize>,
    /// Whether each segment was cut at the end of its part (its end is set).
    closed: Vec<bool>,
    /// The part being read.
    part: usize,
    tolerance: i64,
    healthy: u32,
    acked: u64,
    failed: u64,
    no_leader_ms: u64,
    quorum_lost_ms: u64,
    leader_changes: u64,
    last_leader: Option<SharedStr>,
}

/// The fold's result.
pub(super) struct Folded {
    pub(super) samples: Vec<Sample>,
    pub(super) segments: Vec<Segment>,
    /// The part of each segment.
    pub(super) part_of: Vec<usize>,
    pub(super) metrics: Metrics,
    pub(super) reported: Vec<(u64, Option<i64>)>,
}

impl Fold {
    pub(super) fn observe(&mut self, t: u64, v: &ClusterView) {
        // The time since the previous sample counts with the previous state.
        if let Some(prev) = self.samples.last() {
            let dt = t.saturating_sub(prev.t_ms);
            if prev.leader.is_none() {
                self.no_leader_ms += dt;
            }
            if prev.tolerance < 0 {
                self.quorum_lost_ms += dt;
            }
        }
        match &v.health {
            Ok(h) => {
                self.tolerance = h.failure_tolerance;
                self.healthy = h.servers.iter().filter(|s| s.healthy && s.voter).count() as u32;
                self.reported.push((t, Some(h.failure_tolerance)));
            }
            Err(_) => self.reported.push((t, None)),
        }
        match v.write_accepted {
            Some(true) => self.acked += 1,
            Some(false) => self.failed += 1,
            None => {}
        }
        if self.samples.last().is_some() && v.leader != self.last_leader {
            self.leader_changes += 1;
        }
        self.last_leader = v.leader.clone();
        let s = Sample {
            t_ms: t,
            tolerance: self.tolerance,
            healthy_voters: self.healthy,
            leader: v.leader.as_deref().map(str::to_string),
            running: v
                .agents
                .iter()
                .filter(|(_, a)| a.is_ok())
                .map(|(n, _)| n.to_string())
                .collect(),
            acked: self.acked,
            failed: self.failed,
            no_leader_ns: self.no_leader_ms * 1_000_000,
            leader_changes: self.leader_changes,
            elections: 0,
        };
        if self.samples.last().is_some_and(|l| l.t_ms == t) {
            self.samples.pop();
        }
        self.samples.push(s);
        if self.segments.is_empty() {
            self.push(0, StepKind::Preflight, Vec::new(), false);
        }
    }

    /// Starts a new segment when an action moves to another server or to the finish.
    pub(super) fn action(&mut self, t: u64, a: &Action) {
        let next = match a {
            Action::Drain { server } | Action::Stop { server } => Some((server, false)),
            Action::TransferLeadership { from } => Some((from, true)),
            Action::ReplaceBinary { .. } | Action::Start { .. } => None,
            Action::SaveSnapshot | Action::Observe { .. } => None,
            Action::RestoreSnapshot { .. }
            | Action::UpgradeClients { .. }
            | Action::DrainClient { .. }
            | Action::StopClient { .. }
            | Action::InstallClient { .. }
            | Action::StartClient { .. }
            | Action::MarkEligible { .. }
            | Action::Done(_)
            | Action::Halt(_) => {
                if !matches!(self.segments.last(), Some(s) if s.kind == StepKind::Finish) {
                    self.open(t, StepKind::Finish, Vec::new(), false);
                }
                return;
            }
        };
        let Some((server, transfer)) = next else {
            return;
        };
        match self.segments.last_mut() {
            Some(s) if s.kind == StepKind::Finish => {}
            Some(s) if matches!(s.kind, StepKind::Server(_)) && s.servers == [server.clone()] => {
                s.leader_step |= transfer;
            }
            last => {
                let n = match last {
                    Some(Segment {
                        kind: StepKind::Server(i),
                        ..
                    }) => *i + 1,
                    _ => 0,
                };
                let leader = transfer || self.last_leader.as_deref() == Some(server.as_str());
                self.open(t, StepKind::Server(n), vec![server.clone()], leader);
            }
        }
    }

    /// A new part begins at `t`; the previous one ended at `end_ms`. A new attempt starts with
    /// its own preflight; a resumed attempt continues the step it was in.
    pub(super) fn new_part(&mut self, t: u64, end_ms: u64, resumed: bool) {
        let last = self.segments.len().checked_sub(1);
        if let Some(i) = last.filter(|&i| !self.closed[i]) {
            self.segments[i].end_ms = end_ms.max(self.segments[i].start_ms);
            self.closed[i] = true;
        }
        self.part += 1;
        match (resumed, last.map(|i| self.segments[i].clone())) {
            (true, Some(s)) => self.push(t, s.kind, s.servers, s.leader_step),
            (true, None) => {}
            (false, _) => self.push(t, StepKind::Preflight, Vec::new(), false),
        }
    }

    fn open(&mut self, t: u64, kind: StepKind, servers: Vec<String>, leader_step: bool) {
        if self.segments.is_empty() {
            self.push(0, StepKind::Preflight, Vec::new(), false);
        }
        self.push(t, kind, servers, leader_step);
    }

    fn push(&mut self, t: u64, kind: StepKind, servers: Vec<String>, leader_step: bool) {
        self.segments.push(Segment {
            kind,
            servers,
            start_ms: t,
            end_ms: t,
            leader_step,
        });
        self.part_of.push(self.part);
        self.closed.push(false);
    }

    /// Closes the segments (each open one ends where the next begins) and returns the
    /// timeline.
    pub(super) fn finish(mut self, duration_ms: u64) -> Folded {
        let starts: Vec<u64> = self.segments.iter().skip(1).map(|s| s.start_ms).collect();
        for ((s, end), closed) in self
            .segments
            .iter_mut()
            .zip(starts.into_iter().chain([duration_ms]))
            .zip(&self.closed)
        {
            if !closed {
                s.end_ms = end.max(s.start_ms);
            }
        }
        // A finish that took no time (its attempt ends with it) is not a step.
        let keep: Vec<bool> = self
            .segments
            .iter()
            .map(|s| !(s.kind == StepKind::Finish && s.end_ms == s.start_ms))
            .collect();
        let mut k = keep.iter();
        self.segments.retain(|_| *k.next().unwrap_or(&true));
        let mut k = keep.iter();
        self.part_of.retain(|_| *k.next().unwrap_or(&true));
        if let Some(prev) = self.samples.last() {
            let dt = duration_ms.saturating_sub(prev.t_ms);
            if prev.leader.is_none() {
                self.no_leader_ms += dt;
            }
            if prev.tolerance < 0 {
                self.quorum_lost_ms += dt;
            }
        }
        let metrics = Metrics {
            leader_changes: self.leader_changes,
            no_leader_ns: self.no_leader_ms * 1_000_000,
            quorum_lost_ns: self.quorum_lost_ms * 1_000_000,
            ..Metrics::default()
        };
        Folded {
            samples: self.samples,
            segments: self.segments,
            part_of: self.part_of,
            metrics,
            reported: self.reported,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client phase's actions (`[upgrade.clients]`) belong to the finish, after the last
    /// server step: they open no server step of their own.
    #[test]
    fn client_batch_actions_fold_into_the_finish() {
        let mut f = Fold::default();
        let v = "1.10.3".parse().unwrap();
        let client = || "c1".to_string();
        f.action(
            0,
            &Action::Stop {
                server: "s1".into(),
            },
        );
        for (t, a) in [
            (10, Action::DrainClient { client: client() }),
            (20, Action::StopClient { client: client() }),
            (
                30,
                Action::InstallClient {
                    client: client(),
                    version: v,
                },
            ),
            (40, Action::StartClient { client: client() }),
            (50, Action::MarkEligible { client: client() }),
        ] {
            f.action(t, &a);
        }
        let kinds: Vec<(StepKind, u64, u64)> = f
            .finish(60)
            .segments
            .iter()
            .map(|s| (s.kind, s.start_ms, s.end_ms))
            .collect();
        assert_eq!(
            kinds,
            [
                (StepKind::Preflight, 0, 0),
                (StepKind::Server(0), 0, 10),
                (StepKind::Finish, 10, 60)
            ]
        );
    }
}
