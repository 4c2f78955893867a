//! A write probe for Consul: a KV write every interval to whichever server answers, each
//! acknowledged key remembered, so that "no acknowledged write was lost" can be checked against
//! the real cluster afterwards and the write-unavailability measured.

use super::client::Client;
use rehearse_sim::api::ApiError;
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
                    if let Ok(a) = servers[i].send(reqwest::Method::PUT, &path, body).await {
                        if a.body == serde_json::Value::Bool(true) {
                            ok = true;
                            first = i;
                            break;
                        }
                    }
                }
                {
                    let mut l = lock(&shared);
                    if l.attempts.len() < ATTEMPTS_MAX {
                        l.attempts.push(Attempt { at_ms, seq, ok });
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
        (self.run, l.attempts.clone())
    }
}

/// What a probe saw: counts, the longest run of failures, and acknowledged writes missing now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProbeReport {
    /// Writes attempted.
    pub attempted: usize,
    /// Writes acknowledged.
    pub acknowledged: usize,
    /// Longest window without an acknowledged write (ms, from the first failure to the next
    /// success).
    pub longest_unavailable_ms: u64,
    /// Sum of all such windows (ms).
    pub unavailable_ms: u64,
    /// Acknowledged sequence numbers that are not in the KV store now.
    pub lost: Vec<u64>,
}

/// Reads the probe's keys back through `via` and summarises the attempts.
pub async fn verify(via: &[Client], run: &str, attempts: &[Attempt]) -> Result<ProbeReport, ApiError> {
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
    let (longest, total) = unavailability(attempts);
    Ok(ProbeReport {
        attempted: attempts.len(),
        acknowledged: attempts.iter().filter(|a| a.ok).count(),
        longest_unavailable_ms: longest,
        unavailable_ms: total,
        lost,
    })
}

/// (longest, total) ms of windows from a failed write to the next acknowledged one.
pub fn unavailability(attempts: &[Attempt]) -> (u64, u64) {
    let (mut longest, mut total) = (0, 0);
    let mut since: Option<u64> = None;
    for a in attempts {
        match (a.ok, since) {
            (false, None) => since = Some(a.at_ms),
            (true, Some(s)) => {
                let w = a.at_ms.saturating_sub(s);
                longest = longest.max(w);
                total += w;
                since = None;
            }
            _ => {}
        }
    }
    if let (Some(s), Some(last)) = (since, attempts.last()) {
        let w = last.at_ms.saturating_sub(s);
        longest = longest.max(w);
        total += w;
    }
    (longest, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailability_windows() {
        let a = |at_ms, ok| Attempt { at_ms, seq: 0, ok };
        let v = [a(0, true), a(50, false), a(100, false), a(150, true), a(200, false), a(260, true)];
        assert_eq!(unavailability(&v), (100, 160));
        assert_eq!(unavailability(&[a(0, false), a(70, false)]), (70, 70));
        assert_eq!(unavailability(&[]), (0, 0));
    }
}
