//! A write probe for Consul: a KV write every interval to whichever server answers, each
//! acknowledged key remembered, so that "no acknowledged write was lost" can be checked against
//! the real cluster afterwards and the write-unavailability measured.

use super::client::Client;
use rehearse_model::api::ApiError;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// KV prefix the probe writes under.
pub const PREFIX: &str = "rehearse-probe";

/// One write attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Unix ms when it was sent.
    pub at_ms: u64,
    /// Sequence number (the key).
    pub seq: u64,
    /// Acknowledged.
    pub ok: bool,
    /// Unix ms when the answer (or the failure) came back.
    pub done_ms: u64,
}

/// The probe's record, shared with the task that writes.
#[derive(Debug, Default)]
pub struct ProbeLog {
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Index into `attempts` up to which `take_accepted` has reported.
    reported: usize,
}

/// A running probe.
#[derive(Debug)]
pub struct Probe {
    log: Arc<Mutex<ProbeLog>>,
    task: tokio::task::JoinHandle<()>,
    run: String,
}

/// Most attempts one probe keeps (a bound: 50 ms for 4 hours).
const ATTEMPTS_MAX: usize = 300_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn lock(log: &Mutex<ProbeLog>) -> std::sync::MutexGuard<'_, ProbeLog> {
    // A panic while holding the lock cannot corrupt a Vec push; keep going.
    log.lock().unwrap_or_else(|p| p.into_inner())
}

impl Probe {
    /// Starts writing `rehearse-probe/<run>/<seq>` every `interval_ms`, trying the servers in
    /// turn, starting with the one that answered last.
    pub fn start(servers: Vec<Client>, interval_ms: u64, run: &str) -> Probe {
        let log = Arc::new(Mutex::new(ProbeLog::default()));
        let shared = log.clone();
        let run_id = run.to_string();
        let task = tokio::spawn(async move {
            let mut seq = 0u64;
            let mut first = 0usize;
            loop {
                let at_ms = now_ms();
                let mut ok = false;
                for k in 0..servers.len() {
                    let i = (first + k) % servers.len();
                    let path = format!("/v1/kv/{PREFIX}/{run_id}/{seq:08}");
                    let body = Some(format!("{at_ms}").into_bytes());
                    if let Ok(a) = servers[i].send(reqwest::Method::PUT, &path, body).await
                        && a.body == serde_json::Value::Bool(true)
                    {
                        ok = true;
                        first = i;
                        break;
                    }
                }
                {
                    let mut l = lock(&shared);
                    if l.attempts.len() < ATTEMPTS_MAX {
                        let done_ms = now_ms();
                        l.attempts.push(Attempt {
                            at_ms,
                            seq,
                            ok,
                            done_ms,
                        });
                    }
                }
                seq += 1;
                tokio::time::sleep(Duration::from_millis(interval_ms)).await;
            }
        });
        Probe {
            log,
            task,
            run: run.to_string(),
        }
    }

    /// Whether a write was acknowledged since the last call (`None`: nothing attempted).
    pub fn take_accepted(&self) -> Option<bool> {
        let mut l = lock(&self.log);
        let from = l.reported;
        let new = &l.attempts[from..];
        let any = !new.is_empty();
        let ok = new.iter().any(|a| a.ok);
        l.reported = l.attempts.len();
        any.then_some(ok)
    }

    /// Stops writing and returns every attempt.
    pub fn stop(self) -> (String, Vec<Attempt>) {
        self.task.abort();
        let l = lock(&self.log);
        (self.run.clone(), l.attempts.clone())
    }
}

impl Drop for Probe {
    /// A probe dropped without `stop` (its run was cancelled, e.g. an embedding program dropped
    /// the executor's future) stops writing too: the task must not outlive it.
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a probe saw: counts, the longest run of failures, and acknowledged writes missing now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeReport {
    /// Writes attempted.
    pub attempted: usize,
    /// Writes acknowledged.
    pub acknowledged: usize,
    /// Longest window without an acknowledgement (ms; see `unavailability`).
    pub longest_unavailable_ms: u64,
    /// Sum of all such windows (ms).
    pub unavailable_ms: u64,
    /// Acknowledged sequence numbers that are not in the KV store now.
    pub lost: Vec<u64>,
}

/// Reads the probe's keys back through `via` and summarises the attempts.
pub async fn verify(
    via: &[Client],
    run: &str,
    attempts: &[Attempt],
) -> Result<ProbeReport, ApiError> {
    let mut last_err = None;
    let mut keys = None;
    for c in via {
        match c.get(&format!("/v1/kv/{PREFIX}/{run}/?keys")).await {
            Ok(a) => {
                keys = Some(a.body);
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let keys = keys.ok_or_else(|| {
        last_err.unwrap_or(ApiError::Unreachable {
            addr: "cluster".into(),
            why: "no servers".into(),
        })
    })?;
    let present: std::collections::BTreeSet<u64> = keys
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|k| k.as_str()?.rsplit('/').next()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let lost = attempts
        .iter()
        .filter(|a| a.ok && !present.contains(&a.seq))
        .map(|a| a.seq)
        .collect();
    let (longest, total) = unavailability(attempts, GAP_MIN_MS);
    Ok(ProbeReport {
        attempted: attempts.len(),
        acknowledged: attempts.iter().filter(|a| a.ok).count(),
        longest_unavailable_ms: longest,
        unavailable_ms: total,
        lost,
    })
}

/// Gaps between acknowledgements shorter than this are the probe's own pace, not an outage.
pub const GAP_MIN_MS: u64 = 1000;

/// (longest, total) ms during which no write was acknowledged: the gaps between consecutive
/// acknowledgements (by the time the answer came back) longer than `gap_min_ms`, and a trailing
/// gap when the last writes failed. A write the server holds during an election and
/// acknowledges later counts as unavailable time too, not only writes that fail.
pub fn unavailability(attempts: &[Attempt], gap_min_ms: u64) -> (u64, u64) {
    let (mut longest, mut total) = (0, 0);
    let mut last_ack: Option<u64> = attempts.first().map(|a| a.at_ms);
    let mut count = |gap: u64| {
        if gap > gap_min_ms {
            longest = longest.max(gap);
            total += gap;
        }
    };
    for a in attempts.iter().filter(|a| a.ok) {
        if let Some(prev) = last_ack {
            count(a.done_ms.saturating_sub(prev));
        }
        last_ack = Some(a.done_ms);
    }
    if let (Some(prev), Some(last)) = (last_ack, attempts.last())
        && !last.ok
    {
        count(last.done_ms.saturating_sub(prev));
    }
    (longest, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailability_windows() {
        let a = |at_ms, ok, done_ms| Attempt {
            at_ms,
            seq: 0,
            ok,
            done_ms,
        };
        // A write held 3 s by an election, then a failure window of 2 s.
        let v = [
            a(0, true, 10),
            a(60, true, 3060),
            a(3100, false, 3200),
            a(3300, false, 5100),
            a(5200, true, 5210),
            a(5260, true, 5270),
        ];
        assert_eq!(unavailability(&v, 1000), (3050, 5200));
        assert_eq!(
            unavailability(&[a(0, false, 10), a(70, false, 2080)], 1000),
            (2080, 2080)
        );
        assert_eq!(unavailability(&[], 1000), (0, 0));
    }
}
