//! A journal read record by record: the attempts (parts), the actions, the observations
//! folded into samples and steps, and what the cluster reported about itself.

use super::banner::PartEnd;
use super::fold::Fold;
use crate::live::control::Side;
use crate::live::journal::Record;
use crate::procedure::{Action, ActionResult, Observation};
use crate::report::model::{LiveAction, LiveAttempt, Observed, PlanSummary};
use std::collections::BTreeMap;

/// One attempt of the run, or its resumption after an interruption.
#[derive(Debug, Clone)]
pub(super) struct Part {
    /// The attempt number its begin record carries.
    pub attempt: u32,
    /// Which resumption of the attempt this is (0: the attempt's start).
    pub resumption: u32,
    /// Start and end (ms since the journal began).
    pub start_ms: u64,
    pub end_ms: u64,
    /// Servers an earlier attempt upgraded.
    pub already_upgraded: Vec<String>,
    /// How it ended.
    pub end: PartEnd,
    /// Servers the current version was installed on again (a rollback), in order.
    pub reinstalled: Vec<String>,
    /// The index of the snapshot restored, if one was.
    pub restored: Option<u64>,
}

impl Part {
    /// `attempt 1`, `attempt 1, resumed`, `attempt 1, resumed 2×`.
    pub fn label(&self) -> String {
        match self.resumption {
            0 => format!("attempt {}", self.attempt),
            1 => format!("attempt {}, resumed", self.attempt),
            n => format!("attempt {}, resumed {n}×", self.attempt),
        }
    }

    /// How it ended, in words; `resumed_next` when the next part resumes it.
    pub fn ended(&self, resumed_next: bool) -> String {
        match &self.end {
            PartEnd::Finished(Action::Done(_)) => "completed".into(),
            PartEnd::Finished(Action::Halt(h)) => format!("halted: {h}"),
            PartEnd::Finished(a) => format!("ended with \"{a}\""),
            PartEnd::Interrupted if resumed_next => {
                "interrupted by the operator; resumed in the next part".into()
            }
            PartEnd::Interrupted => "interrupted by the operator".into(),
            PartEnd::Open if resumed_next => "cut off without a record (rehearse was killed or \
                                               its machine stopped); resumed in the next part"
                .into(),
            PartEnd::Open => "the journal ends here without a finish record".into(),
        }
    }

    /// The part for the report; `resumed_next` when the next part resumes it.
    pub fn view(&self, resumed_next: bool) -> LiveAttempt {
        LiveAttempt {
            attempt: self.attempt,
            resumed: self.resumption > 0,
            label: self.label(),
            start_ms: self.start_ms,
            end_ms: self.end_ms,
            already_upgraded: self.already_upgraded.clone(),
            ended: self.ended(resumed_next),
        }
    }
}

/// Everything read from a journal, record by record.
pub(super) struct JournalRead {
    t0: u64,
    pub st: Fold,
    pub parts: Vec<Part>,
    /// The next record resumes the last part (an interruption record came before it, or it is
    /// a resume record).
    resume_next: bool,
    pub plan_sha256: String,
    /// The control kind the last attempt's begin record names.
    pub control: Option<crate::plan::ControlKind>,
    pub end_ms: u64,
    pub observations: u64,
    /// Observations whose autopilot health read failed.
    pub health_errors: u64,
    pub write_probe: bool,
    pub actions: Vec<LiveAction>,
    /// The action begun and not yet ended, by index into `actions`.
    pub in_flight: Option<usize>,
    /// The notes of the last finish record.
    pub finish_notes: Vec<String>,
    /// (current, target) versions as the run saw them.
    versions: (Option<String>, Option<String>),
    /// Versions the servers reported at the first and the last observation that read them.
    pub first_versions: Option<String>,
    pub last_versions: Option<String>,
    /// Whether the observations held a scheduler configuration (Nomad), once known.
    scheduler: Option<bool>,
}

impl JournalRead {
    pub fn new(t0: u64) -> JournalRead {
        JournalRead {
            t0,
            st: Fold::default(),
            parts: Vec::new(),
            resume_next: false,
            plan_sha256: String::new(),
            control: None,
            end_ms: 0,
            observations: 0,
            health_errors: 0,
            write_probe: false,
            actions: Vec::new(),
            in_flight: None,
            finish_notes: Vec::new(),
            versions: (None, None),
            first_versions: None,
            last_versions: None,
            scheduler: None,
        }
    }

    /// Ms since the journal began; the end of the run so far moves up to it.
    fn at(&mut self, ms: u64) -> u64 {
        let t = ms.saturating_sub(self.t0);
        self.end_ms = self.end_ms.max(t);
        t
    }

    pub fn read(&mut self, r: &Record) {
        let t = self.at(r.at_ms());
        if let Record::Begin {
            attempt,
            plan_sha256,
            already_upgraded,
            control,
            ..
        } = r
        {
            self.plan_sha256.clone_from(plan_sha256);
            self.control = *control;
            self.begin_part(t, *attempt, 0, already_upgraded.clone());
            return;
        }
        // A rerun that resumes begins a part, whether the last one was interrupted or cut off.
        self.resume_next |= matches!(r, Record::Resumed { .. });
        if self.resume_next || self.parts.is_empty() {
            let (attempt, resumption, done) = self.parts.last().map_or((1, 0, Vec::new()), |p| {
                (p.attempt, p.resumption + 1, p.already_upgraded.clone())
            });
            self.begin_part(t, attempt, resumption, done);
        }
        if let Some(p) = self.parts.last_mut() {
            p.end_ms = p.end_ms.max(t);
        }
        self.record(t, r);
    }

    /// A part begins at `t`: a new attempt (`resumption` 0) or the resumption of the last.
    fn begin_part(&mut self, t: u64, attempt: u32, resumption: u32, done: Vec<String>) {
        if let Some(prev) = self.parts.last() {
            self.st.new_part(t, prev.end_ms, resumption > 0);
        }
        self.resume_next = false;
        self.parts.push(Part {
            attempt,
            resumption,
            start_ms: t,
            end_ms: t,
            already_upgraded: done,
            end: PartEnd::Open,
            reinstalled: Vec::new(),
            restored: None,
        });
    }

    fn record(&mut self, t: u64, r: &Record) {
        match r {
            Record::Begin { .. } | Record::Resumed { .. } => {}
            Record::Observation { obs } => self.observation(t, obs),
            Record::ActionBegin { action, .. } => self.action_begin(t, action),
            Record::ActionEnd {
                result, installed, ..
            } => self.action_end(t, result, installed.as_ref()),
            Record::Interrupted { .. } => {
                self.resume_next = true;
                self.set_end(PartEnd::Interrupted);
            }
            Record::Finish { action, notes, .. } => {
                self.st.action(t, action);
                self.finish_notes.clone_from(notes);
                self.set_end(PartEnd::Finished(action.clone()));
            }
        }
    }

    fn set_end(&mut self, end: PartEnd) {
        if let Some(p) = self.parts.last_mut() {
            p.end = end;
        }
    }

    fn observation(&mut self, t: u64, obs: &Observation) {
        self.observations += 1;
        let v = &obs.view;
        self.write_probe |= v.write_accepted.is_some();
        if v.health.is_err() {
            self.health_errors += 1;
        }
        if !v.is_read() {
            // A step between a stop and a start reads nothing: no sample.
            return;
        }
        self.scheduler = self.scheduler.or(Some(v.scheduler.is_some()));
        let mut by_version: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, a) in &v.agents {
            if !self.st.servers.iter().any(|s| s == name) {
                self.st.servers.push(name.to_string());
            }
            if let Ok(a) = a {
                by_version
                    .entry(a.version.to_string())
                    .or_default()
                    .push(name.to_string());
            }
            if let (Ok(a), None) = (a, &self.versions.0) {
                self.versions.0 = Some(a.version.to_string());
            }
        }
        if !by_version.is_empty() {
            let words: Vec<String> = by_version
                .iter()
                .map(|(v, names)| format!("{v} ({})", names.join(", ")))
                .collect();
            self.first_versions.get_or_insert_with(|| words.join("; "));
            self.last_versions = Some(words.join("; "));
        }
        self.st.observe(t, v);
    }

    fn action_begin(&mut self, t: u64, action: &Action) {
        if let Action::ReplaceBinary { version, .. } = action {
            self.versions.1 = Some(version.to_string());
        }
        if matches!(action, Action::Observe { .. }) {
            return;
        }
        self.st.action(t, action);
        self.actions.push(LiveAction {
            at_ms: t,
            duration_ms: 0,
            action: action.to_string(),
            what: action.clone(),
            result: "in flight (no end recorded)".into(),
            part: self.parts.len().saturating_sub(1),
        });
        self.in_flight = Some(self.actions.len() - 1);
    }

    fn action_end(&mut self, t: u64, result: &ActionResult, installed: Option<&(String, Side)>) {
        let Some(a) = self.in_flight.take().and_then(|i| self.actions.get_mut(i)) else {
            return;
        };
        a.duration_ms = t.saturating_sub(a.at_ms);
        a.result = match result {
            ActionResult::Failed(e) => format!("failed: {e}"),
            ActionResult::Snapshot(_) => "snapshot saved".into(),
            ActionResult::Ok | ActionResult::None => "ok".into(),
        };
        let restored = match (&a.what, result) {
            (Action::RestoreSnapshot { snapshot }, ActionResult::Ok) => Some(snapshot.index),
            _ => None,
        };
        let Some(p) = self.parts.last_mut() else {
            return;
        };
        p.restored = p.restored.or(restored);
        // The current version installed again is a rollback (the executor records which
        // installation each ReplaceBinary gave).
        if let Some((server, Side::Current)) = installed {
            p.reinstalled.push(server.clone());
        }
    }

    /// What the figures are and what is known of the cluster (`control`: the plan's).
    pub fn observed(&self, product: &str, control: Option<String>) -> Observed {
        let n = self.observations;
        let health = if self.health_errors > 0 {
            format!(
                "; {} of them could not read it, and the last value read is held",
                self.health_errors
            )
        } else {
            String::new()
        };
        let writes = if self.write_probe {
            "writes: the write probe's answer at each observation, acknowledged or failed"
        } else {
            "writes: no write probe ran (probe = true in [execute] runs one), so no \
             write figures"
        };
        Observed {
            observed: vec![
                format!(
                    "failure tolerance and healthy voters: autopilot's health answer at each of \
                     the {n} observations{health}"
                ),
                "leader: the leader the servers named at each observation (no leader: none \
                 named one)"
                    .into(),
                "running servers: the servers whose agent answered (/v1/agent/self); peers: \
                 the members and the Raft configuration the servers reported, which the \
                 procedure's checks read"
                    .into(),
                writes.into(),
            ],
            not_observed: vec![
                "not ground truth: between two observations nothing is known, and an answer \
                 can lag (autopilot refreshes its health on its own interval), so the \
                 resolution is the gate's poll interval"
                    .into(),
                "not comparable one to one with a rehearsal, whose figures are the \
                 simulator's ground truth sampled after every action"
                    .into(),
            ],
            product: product.to_string(),
            versions: [
                ("first observation", self.first_versions.as_deref()),
                ("last observation", self.last_versions.as_deref()),
            ]
            .into_iter()
            .filter_map(|(when, v)| v.map(|v| format!("{when}: {v}")))
            .collect(),
            control,
            probe: self.write_probe,
        }
    }

    /// The product, as the observations show it (a scheduler configuration is Nomad's).
    pub fn product(&self) -> &'static str {
        match self.scheduler {
            Some(true) => "nomad",
            Some(false) => "consul",
            None => "unknown",
        }
    }

    /// The plan in a few fields, as far as the journal tells (no plan file given).
    pub fn plan_summary(&self, journal_file: &str, servers: Vec<String>) -> PlanSummary {
        PlanSummary {
            file: journal_file.to_string(),
            sha256: None,
            product: self.product().into(),
            from_version: self.versions.0.clone().unwrap_or_else(|| "?".into()),
            to_version: self.versions.1.clone().unwrap_or_else(|| "?".into()),
            servers,
            transfer_leadership: self
                .actions
                .iter()
                .any(|a| matches!(a.what, Action::TransferLeadership { .. })),
            order: "as run".into(),
            stable_for_ms: 0,
            install_time_ms: 0,
            cleanup_dead_servers: false,
            min_quorum: 0,
        }
    }
}
