//! Turns Nomad's and Consul's JSON answers into the procedure's API types.
//!
//! Pure functions over `serde_json::Value`, so recorded fixtures cover them. Parsing is lenient
//! where the two products differ (Consul's member `Status` is a number, Nomad's a string;
//! Consul names the raft protocol `ProtocolVersion`, Nomad `RaftProtocol`) and strict where a
//! wrong guess would mislead the procedure (a missing version or index is an error).

use rehearse_model::api::{
    AgentSelf, AutopilotHealth, BrokerStats, JobState, JobType, Member, NodeInfo, NodeStatus,
    RaftConfiguration, RaftServer, RaftState, RaftStats, SchedulerConfig, SerfStatus, ServerHealth,
    SharedStr,
};
use rehearse_model::versions::{Product, Version};
use serde_json::Value;

/// Why an answer could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected answer: {0}")]
pub struct ParseError(pub String);

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, ParseError> {
    v.get(name)
        .ok_or_else(|| ParseError(format!("missing field {name:?}")))
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, ParseError> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| ParseError(format!("field {name:?} is not a string")))
}

fn opt_str<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or("")
}

fn bool_field(v: &Value, name: &str) -> bool {
    v.get(name).and_then(Value::as_bool).unwrap_or(false)
}

/// A number that may arrive as a JSON number or as a decimal string (agent stats are strings).
fn num(v: &Value, name: &str) -> Result<u64, ParseError> {
    match field(v, name)? {
        Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| ParseError(format!("field {name:?} is not a count"))),
        Value::String(s) => s
            .parse()
            .map_err(|_| ParseError(format!("field {name:?} = {s:?} is not a count"))),
        _ => Err(ParseError(format!("field {name:?} is not a number"))),
    }
}

fn version(text: &str, what: &str) -> Result<Version, ParseError> {
    text.parse()
        .map_err(|_| ParseError(format!("{what}: bad version {text:?}")))
}

/// `GET /v1/status/leader`: the leader's RPC address, `None` when this server knows none.
pub fn leader(v: &Value) -> Result<Option<String>, ParseError> {
    let s = v
        .as_str()
        .ok_or_else(|| ParseError("leader is not a string".into()))?;
    Ok((!s.is_empty()).then(|| s.to_string()))
}

/// A serf status: Nomad sends a word, Consul a number (1 alive, 2 leaving, 3 left, 4 failed).
fn serf_status(v: &Value) -> Result<SerfStatus, ParseError> {
    let word = match v {
        Value::Number(n) => match n.as_u64() {
            Some(1) => "alive",
            Some(2) => "leaving",
            Some(3) => "left",
            Some(4) => "failed",
            Some(0) => "none",
            _ => return Err(ParseError(format!("unknown member status {n}"))),
        },
        Value::String(s) => s.as_str(),
        _ => return Err(ParseError("member status missing".into())),
    };
    match word {
        "alive" => Ok(SerfStatus::Alive),
        "leaving" => Ok(SerfStatus::Leaving),
        "left" => Ok(SerfStatus::Left),
        // serf's StatusNone: no longer a member (e.g. removed by dead-server cleanup).
        "failed" | "none" => Ok(SerfStatus::Failed),
        other => Err(ParseError(format!("unknown member status {other:?}"))),
    }
}

/// `GET /v1/agent/members`: Nomad wraps the list in `{"Members": […]}`, Consul sends the list.
/// Only server members are kept (Consul lists clients too: their `role` tag is `node`).
pub fn members(v: &Value) -> Result<Vec<Member>, ParseError> {
    let list = match v {
        Value::Array(a) => a,
        _ => field(v, "Members")?
            .as_array()
            .ok_or_else(|| ParseError("Members is not a list".into()))?,
    };
    let mut out = Vec::new();
    for m in list {
        let tags = m.get("Tags").cloned().unwrap_or(Value::Null);
        if opt_str(&tags, "role") == "node" {
            continue;
        }
        let name: SharedStr = str_field(m, "Name")?.into();
        let build = opt_str(&tags, "build");
        out.push(Member {
            addr: format!(
                "{}:{}",
                opt_str(m, "Addr"),
                m.get("Port").unwrap_or(&Value::Null)
            )
            .into(),
            status: serf_status(field(m, "Status")?)?,
            build: version(build, &format!("member {name} build tag"))?,
            raft_vsn: opt_str(&tags, "raft_vsn").parse().unwrap_or(0),
            id: opt_str(&tags, "id").into(),
            nonvoter: matches!(opt_str(&tags, "nonvoter"), "1" | "true"),
            name,
        });
    }
    Ok(out)
}

/// `GET /v1/operator/raft/configuration`.
pub fn raft_configuration(v: &Value) -> Result<RaftConfiguration, ParseError> {
    let servers = field(v, "Servers")?
        .as_array()
        .ok_or_else(|| ParseError("Servers is not a list".into()))?;
    let mut out = Vec::with_capacity(servers.len());
    for s in servers {
        let proto = s.get("RaftProtocol").or_else(|| s.get("ProtocolVersion"));
        let proto = proto.and_then(Value::as_str).unwrap_or("0");
        out.push(RaftServer {
            id: str_field(s, "ID")?.into(),
            node: str_field(s, "Node")?.into(),
            address: str_field(s, "Address")?.into(),
            leader: bool_field(s, "Leader"),
            voter: bool_field(s, "Voter"),
            raft_protocol: proto.parse().unwrap_or(0),
        });
    }
    Ok(RaftConfiguration {
        index: v.get("Index").and_then(Value::as_u64).unwrap_or(0),
        servers: out,
    })
}

/// `GET /v1/operator/autopilot/health` (the body is the same for HTTP 200 and 429).
pub fn autopilot_health(v: &Value) -> Result<AutopilotHealth, ParseError> {
    // Consul answers `"Servers": null` while it has no leader to ask.
    let empty = Vec::new();
    let list = match field(v, "Servers")? {
        Value::Null => &empty,
        l => l
            .as_array()
            .ok_or_else(|| ParseError("Servers is not a list".into()))?,
    };
    let mut servers = Vec::with_capacity(list.len());
    for s in list {
        let name: SharedStr = str_field(s, "Name")?.into();
        servers.push(ServerHealth {
            id: str_field(s, "ID")?.into(),
            address: opt_str(s, "Address").into(),
            serf_status: serf_status(field(s, "SerfStatus")?)?,
            version: version(opt_str(s, "Version"), &format!("health of {name}"))?,
            leader: bool_field(s, "Leader"),
            last_contact_ms: go_duration_ms(opt_str(s, "LastContact")),
            last_term: num(s, "LastTerm")?,
            last_index: num(s, "LastIndex")?,
            healthy: bool_field(s, "Healthy"),
            voter: bool_field(s, "Voter"),
            stable_since_ms: rfc3339_ms(opt_str(s, "StableSince")),
            name,
        });
    }
    // Consul 1.8 has no top-level Leader/Voters: derive them from the server list.
    let leader = match v.get("Leader").and_then(Value::as_str) {
        Some(l) if !l.is_empty() => Some(l.into()),
        _ => servers.iter().find(|s| s.leader).map(|s| s.id.clone()),
    };
    let voters = servers
        .iter()
        .filter(|s| s.voter)
        .map(|s| s.id.clone())
        .collect();
    Ok(AutopilotHealth {
        healthy: bool_field(v, "Healthy"),
        failure_tolerance: field(v, "FailureTolerance")?
            .as_i64()
            .ok_or_else(|| ParseError("FailureTolerance is not a number".into()))?,
        leader,
        voters,
        servers,
    })
}

/// `GET /v1/agent/self`: Nomad nests `config.Version.Version` and lower-cases its sections,
/// Consul has `Config.Version` and `Config.NodeName`.
pub fn agent_self(product: Product, v: &Value) -> Result<AgentSelf, ParseError> {
    let (name, ver, stats) = match product {
        Product::Nomad => {
            let cfg = field(v, "config")?;
            let ver = str_field(field(cfg, "Version")?, "Version")?;
            let name = field(v, "member").map(|m| opt_str(m, "Name")).unwrap_or("");
            (name, ver, field(field(v, "stats")?, "raft")?)
        }
        Product::Consul => {
            let cfg = field(v, "Config")?;
            let stats = field(field(v, "Stats")?, "raft")?;
            (opt_str(cfg, "NodeName"), str_field(cfg, "Version")?, stats)
        }
    };
    let state = match opt_str(stats, "state") {
        "Leader" => RaftState::Leader,
        "Candidate" => RaftState::Candidate,
        "Shutdown" => RaftState::Shutdown,
        _ => RaftState::Follower,
    };
    let last_contact = opt_str(stats, "last_contact");
    Ok(AgentSelf {
        name: name.into(),
        version: version(ver, "agent version")?,
        raft: RaftStats {
            state,
            term: num(stats, "term")?,
            last_log_index: num(stats, "last_log_index")?,
            last_log_term: num(stats, "last_log_term")?,
            commit_index: num(stats, "commit_index")?,
            applied_index: num(stats, "applied_index")?,
            protocol_version: num(stats, "protocol_version").unwrap_or(0).min(255) as u8,
            num_peers: num(stats, "num_peers").unwrap_or(0),
            // A leader reports "0" and counts as in contact; "never" means no leader yet.
            last_contact_ms: if state == RaftState::Leader {
                Some(0)
            } else {
                go_duration_ms(last_contact)
            },
        },
    })
}

/// `GET /v1/operator/scheduler/configuration` (Nomad).
pub fn scheduler_config(v: &Value) -> Result<SchedulerConfig, ParseError> {
    let c = field(v, "SchedulerConfig")?;
    let pre = c.get("PreemptionConfig").cloned().unwrap_or(Value::Null);
    Ok(SchedulerConfig {
        scheduler_algorithm: opt_str(c, "SchedulerAlgorithm").to_string(),
        preemption_service: bool_field(&pre, "ServiceSchedulerEnabled"),
        pause_eval_broker: bool_field(c, "PauseEvalBroker"),
        reject_job_registration: bool_field(c, "RejectJobRegistration"),
        modify_index: num(c, "ModifyIndex").unwrap_or(0),
    })
}

/// `GET /v1/nodes`: every client node. `down` and `disconnected` (the servers lost its
/// heartbeats) count as down; `ready` and `initializing` as ready. A node without a name or a
/// version is an error: the client check compares versions, a guess would pass it.
pub fn nodes(v: &Value) -> Result<Vec<NodeInfo>, ParseError> {
    let list = v
        .as_array()
        .ok_or_else(|| ParseError("nodes: not a list".into()))?;
    list.iter()
        .map(|n| {
            let name = str_field(n, "Name")?;
            let status = match str_field(n, "Status")? {
                "down" | "disconnected" => NodeStatus::Down,
                _ => NodeStatus::Ready,
            };
            Ok(NodeInfo {
                name: name.into(),
                status,
                version: version(str_field(n, "Version")?, &format!("node {name}"))?,
                drain: bool_field(n, "Drain"),
                eligible: opt_str(n, "SchedulingEligibility") != "ineligible",
            })
        })
        .collect()
}

/// `GET /v1/node/:id/allocations`: how many allocations the client still runs
/// (`ClientStatus` `running`).
pub fn allocations_running(v: &Value) -> Result<usize, ParseError> {
    let list = v
        .as_array()
        .ok_or_else(|| ParseError("allocations: not a list".into()))?;
    Ok(list
        .iter()
        .filter(|a| opt_str(a, "ClientStatus") == "running")
        .count())
}

/// `GET /v1/nodes`: the names of the nodes under a drain: draining now (`Drain`), or left
/// ineligible by one (`SchedulingEligibility` `ineligible`), in the answer's order.
pub fn nodes_under_drain(v: &Value) -> Vec<String> {
    let Some(list) = v.as_array() else {
        return Vec::new();
    };
    list.iter()
        .filter(|n| bool_field(n, "Drain") || opt_str(n, "SchedulingEligibility") == "ineligible")
        .map(|n| opt_str(n, "Name").to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// `GET /v1/nodes`: the ID of the client node named `name` (or `name.*`).
pub fn node_id(v: &Value, name: &str) -> Option<String> {
    node(v, name).map(|n| opt_str(n, "ID").to_string())
}

fn node<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v.as_array()?
        .iter()
        .find(|n| opt_str(n, "Name") == name || opt_str(n, "Name").split('.').next() == Some(name))
}

/// `GET /v1/nodes`: whether the client node named `name` has finished draining (its drain is
/// no longer in progress and it is ineligible, or its last drain reports `complete`).
pub fn node_drained(v: &Value, name: &str) -> bool {
    let Some(n) = node(v, name) else {
        return false;
    };
    let last = n.get("LastDrain").map(|d| opt_str(d, "Status"));
    last == Some("complete")
        || (!bool_field(n, "Drain") && opt_str(n, "SchedulingEligibility") == "ineligible")
}

// ---- the workload plane: jobs and the eval broker (Nomad) ----
//
// Shapes after Nomad's API documentation: developer.hashicorp.com/nomad/api-docs/jobs (List
// Jobs, Read Job), /api-docs/nodes (List Nodes) and /api-docs/metrics (the JSON form of the
// agent's in-memory metrics).

/// One job of `GET /v1/jobs`, before its desired count is known (that needs `GET /v1/job/:id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStub {
    /// Job ID.
    pub id: String,
    /// Its namespace (`default` when the answer has none: Nomad before namespaces).
    pub namespace: String,
    /// Scheduler type (`sysbatch` counts as batch: it runs to completion).
    pub kind: JobType,
    /// One allocation per eligible client (`system`, `sysbatch`) rather than `Count`.
    pub per_node: bool,
    /// Stopped, or `Status` `dead` (a completed batch job, a stopped job): wants nothing.
    pub dead: bool,
    /// Per task group: (name, running, queued, complete), from `JobSummary.Summary`.
    pub groups: Vec<(String, u32, u32, u32)>,
}

fn count_field(v: &Value, name: &str, what: &str) -> Result<u32, ParseError> {
    field(v, name)
        .map_err(|_| ParseError(format!("{what}: missing field {name:?}")))?
        .as_u64()
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| ParseError(format!("{what}: field {name:?} is not a count")))
}

fn list<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, ParseError> {
    v.as_array()
        .ok_or_else(|| ParseError(format!("{what}: not a list")))
}

/// `GET /v1/jobs` (with `namespace=*`): every job's type, status and allocation summary.
pub fn job_stubs(v: &Value) -> Result<Vec<JobStub>, ParseError> {
    list(v, "jobs")?.iter().map(job_stub).collect()
}

fn job_stub(j: &Value) -> Result<JobStub, ParseError> {
    let id = str_field(j, "ID")?;
    let what = format!("job {id}");
    let named = |e: ParseError| ParseError(format!("{what}: {}", e.0));
    let (kind, per_node) = match str_field(j, "Type").map_err(named)? {
        "service" => (JobType::Service, false),
        "batch" => (JobType::Batch, false),
        "system" => (JobType::System, true),
        "sysbatch" => (JobType::Batch, true),
        other => return Err(ParseError(format!("{what}: unknown Type {other:?}"))),
    };
    let status = str_field(j, "Status").map_err(named)?;
    let summary = field(field(j, "JobSummary").map_err(named)?, "Summary").map_err(named)?;
    let summary = summary
        .as_object()
        .ok_or_else(|| ParseError(format!("{what}: JobSummary.Summary is not an object")))?;
    let mut groups = Vec::with_capacity(summary.len());
    for (g, c) in summary {
        let at = format!("{what} group {g}");
        groups.push((
            g.clone(),
            count_field(c, "Running", &at)?,
            count_field(c, "Queued", &at)?,
            count_field(c, "Complete", &at)?,
        ));
    }
    Ok(JobStub {
        id: id.to_string(),
        namespace: match opt_str(j, "Namespace") {
            "" => "default".to_string(),
            ns => ns.to_string(),
        },
        kind,
        per_node,
        dead: status == "dead" || bool_field(j, "Stop"),
        groups,
    })
}

/// `GET /v1/job/:id`: each task group's `Count`.
pub fn job_group_counts(v: &Value) -> Result<Vec<(String, u32)>, ParseError> {
    let id = opt_str(v, "ID");
    let what = format!("job {id}");
    let groups = field(v, "TaskGroups").map_err(|e| ParseError(format!("{what}: {}", e.0)))?;
    list(groups, &format!("{what} TaskGroups"))?
        .iter()
        .map(|g| {
            let name = str_field(g, "Name").map_err(|e| ParseError(format!("{what}: {}", e.0)))?;
            Ok((
                name.to_string(),
                count_field(g, "Count", &format!("{what} group {name}"))?,
            ))
        })
        .collect()
}

/// `GET /v1/nodes`: the nodes a system job places an allocation on: `ready` and `eligible`
/// (a draining node is ineligible).
pub fn eligible_ready_nodes(v: &Value) -> Result<u32, ParseError> {
    let mut n = 0;
    for node in list(v, "nodes")? {
        let name = opt_str(node, "Name");
        let named = |e: ParseError| ParseError(format!("node {name}: {}", e.0));
        let ready = str_field(node, "Status").map_err(named)? == "ready";
        let eligible = str_field(node, "SchedulingEligibility").map_err(named)? == "eligible";
        n += u32::from(ready && eligible);
    }
    Ok(n)
}

/// A job's state: its summary's running and queued allocations and what it wants. A dead job
/// wants none; a `system` job one per eligible ready node (`nodes`) in each group, whatever
/// its constraints (a job limited to some nodes shows short from the start: the preflight's
/// baseline); a batch job's completed allocations are done, not missing.
pub fn job_state(stub: &JobStub, counts: &[(String, u32)], nodes: u32) -> JobState {
    // Saturating: counts come from the answer, and a sum that wraps would hide a short job.
    let add = |a: u32, b: u32| a.saturating_add(b);
    let summed = |f: fn(&(String, u32, u32, u32)) -> u32| stub.groups.iter().map(f).fold(0, add);
    let complete = |g: &str| {
        let done = stub.groups.iter().find(|s| s.0 == g).map_or(0, |s| s.3);
        if stub.kind == JobType::Batch { done } else { 0 }
    };
    let desired = if stub.dead {
        0
    } else {
        counts
            .iter()
            .map(|(g, count)| {
                let want = if stub.per_node { nodes } else { *count };
                want.saturating_sub(complete(g))
            })
            .fold(0, add)
    };
    JobState {
        name: stub.id.as_str().into(),
        kind: stub.kind,
        desired,
        running: summed(|g| g.1),
        queued: summed(|g| g.2),
    }
}

/// The gauges `GET /v1/metrics` of the leader reports for its eval broker and blocked-evals
/// tracker (`nomad.nomad.broker.total_ready`, `.total_unacked`, `.total_blocked`,
/// `nomad.nomad.blocked_evals.total_blocked`). A gauge missing is an error naming it: a
/// follower, or a leader whose broker is not enabled yet, does not report them, and zero
/// would pass the check on nothing. `failed` is not a gauge Nomad reports: left 0.
pub fn broker_stats(v: &Value) -> Result<BrokerStats, ParseError> {
    let gauges = list(field(v, "Gauges")?, "metrics Gauges")?;
    let gauge = |name: &str| -> Result<u64, ParseError> {
        let g = gauges
            .iter()
            .find(|g| opt_str(g, "Name") == name)
            .ok_or_else(|| ParseError(format!("metrics: missing gauge {name:?}")))?;
        let value = field(g, "Value")?.as_f64();
        match value {
            Some(x) if (0.0..1e15).contains(&x) => Ok(x.round() as u64),
            _ => Err(ParseError(format!(
                "metrics: gauge {name:?} is not a count"
            ))),
        }
    };
    Ok(BrokerStats {
        ready: gauge("nomad.nomad.broker.total_ready")?,
        unacked: gauge("nomad.nomad.broker.total_unacked")?,
        blocked: gauge("nomad.nomad.broker.total_blocked")?,
        blocked_capacity: gauge("nomad.nomad.blocked_evals.total_blocked")?,
        failed: 0,
    })
}

/// A path segment or query value with everything but RFC 3986's unreserved characters
/// percent-encoded (job IDs and namespaces are free text).
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Go `time.Duration` string ("35.2ms", "1.5s", "2m0s", "0s", "0") in whole milliseconds;
/// `None` for "never", negative values (the API's `-1ns` for unknown) and unparsable text.
pub fn go_duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.is_empty() || t == "never" || t.starts_with('-') {
        return None;
    }
    if t == "0" {
        return Some(0);
    }
    let mut total_ns = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..split].parse().ok()?;
        rest = &rest[split..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total_ns += value * unit_ns;
        rest = &rest[unit_end..];
    }
    Some((total_ns / 1e6) as u64)
}

/// An RFC 3339 time ("2026-11-25T13:01:02.123456789Z", or with a `+01:00` offset) in Unix
/// milliseconds; `None` for Go's zero time (year 1) and anything unparsable.
pub fn rfc3339_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    if t.len() < 20 || !t.is_char_boundary(19) {
        return None;
    }
    let (date_time, zone) = t.split_at(19);
    let nums: Vec<i64> = date_time
        .split(['-', 'T', ':'])
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [y, mo, d, h, mi, s] = nums[..] else {
        return None;
    };
    // Each field in its calendar range (a leap second allowed): out-of-range numbers are not
    // a time, and unbounded ones overflowed the arithmetic below (found by AFL++).
    let in_range = (1970..=9999).contains(&y)
        && (1..=12).contains(&mo)
        && (1..=31).contains(&d)
        && (0..=23).contains(&h)
        && (0..=59).contains(&mi)
        && (0..=60).contains(&s);
    if !in_range {
        return None;
    }
    let (frac, offset) = match zone.find(['Z', '+', '-']) {
        Some(i) => zone.split_at(i),
        None => return None,
    };
    let frac_ms = match frac.strip_prefix('.') {
        Some(digits) => {
            let padded = format!("{digits:0<3}");
            padded.get(..3)?.parse::<i64>().ok()?
        }
        None if frac.is_empty() => 0,
        None => return None,
    };
    let offset_s = match offset {
        "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o.get(1..)?.split_once(':')?;
            let (oh, om) = (oh.parse::<i64>().ok()?, om.parse::<i64>().ok()?);
            if !(0..=23).contains(&oh) || !(0..=59).contains(&om) {
                return None;
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    u64::try_from(secs * 1000 + frac_ms).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_and_times() {
        assert_eq!(go_duration_ms("35.2ms"), Some(35));
        assert_eq!(go_duration_ms("1.5s"), Some(1500));
        assert_eq!(go_duration_ms("2m0s"), Some(120_000));
        assert_eq!(go_duration_ms("0s"), Some(0));
        assert_eq!(go_duration_ms("-1ns"), None);
        assert_eq!(go_duration_ms("never"), None);
        assert_eq!(rfc3339_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            rfc3339_ms("2026-11-25T13:01:02.123456789Z"),
            Some(1_795_611_662_123)
        );
        assert_eq!(
            rfc3339_ms("2026-11-25T14:01:02.5+01:00"),
            Some(1_795_611_662_500)
        );
        assert_eq!(rfc3339_ms("0001-01-01T00:00:00Z"), None);
        assert_eq!(rfc3339_ms("garbage"), None);
        // Out-of-range fields are not a time (they overflowed before; found by AFL++).
        assert_eq!(
            rfc3339_ms("2026-11-25T10:05:12Z90:0555555555555555555"),
            None
        );
        assert_eq!(rfc3339_ms("2026-11-25T99:99:99Z"), None);
        assert_eq!(rfc3339_ms("9223372036854775-11-25T10:05:12Z"), None);
        assert_eq!(rfc3339_ms("2026-11-25T10:05:12+99999999999999:00"), None);
        assert_eq!(rfc3339_ms("2026-11-25T10:05:12+01:99"), None);
    }

    #[test]
    fn consul_member_status_is_a_number_and_clients_are_dropped() {
        let v = json!([
            {"Name":"s1","Addr":"127.0.0.2","Port":8301,"Status":1,
             "Tags":{"build":"1.8.7:","raft_vsn":"3","id":"a","role":"consul"}},
            {"Name":"c1","Addr":"127.0.0.9","Port":8301,"Status":1,
             "Tags":{"build":"1.8.7:","role":"node"}},
            {"Name":"s2","Addr":"127.0.0.3","Port":8301,"Status":4,
             "Tags":{"build":"1.8.7:","raft_vsn":"3","id":"b","role":"consul"}}
        ]);
        let m = members(&v).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].status, SerfStatus::Alive);
        assert_eq!(m[1].status, SerfStatus::Failed);
        assert_eq!(m[0].build, Version::new(1, 8, 7));
        assert_eq!(m[0].addr, "127.0.0.2:8301");
    }

    /// `GET /v1/jobs?namespace=*`, written after the List Jobs sample response of
    /// developer.hashicorp.com/nomad/api-docs/jobs: a service job with one group short, a
    /// system job, a completed batch job and a sysbatch job half done.
    fn jobs_answer() -> Value {
        let summary = |running: u32, queued: u32, complete: u32| {
            json!({"Queued": queued, "Complete": complete, "Failed": 0, "Running": running,
                   "Starting": 0, "Lost": 0, "Unknown": 0})
        };
        json!([
            {"ID": "web", "ParentID": "", "Name": "web", "Namespace": "default",
             "Type": "service", "Priority": 50, "Status": "running", "StatusDescription": "",
             "Stop": false,
             "JobSummary": {"JobID": "web", "Namespace": "default",
                "Summary": {"api": summary(2, 1, 0), "cache": summary(1, 0, 0)},
                "Children": {"Pending": 0, "Running": 0, "Dead": 0}},
             "CreateIndex": 52, "ModifyIndex": 96, "JobModifyIndex": 52},
            {"ID": "logs", "Namespace": "ops", "Type": "system", "Status": "running",
             "JobSummary": {"JobID": "logs", "Summary": {"shipper": summary(2, 0, 0)}}},
            {"ID": "report", "Namespace": "default", "Type": "batch", "Status": "dead",
             "JobSummary": {"JobID": "report", "Summary": {"run": summary(0, 0, 4)}}},
            {"ID": "gc", "Type": "sysbatch", "Status": "running",
             "JobSummary": {"JobID": "gc", "Summary": {"sweep": summary(1, 0, 1)}}}
        ])
    }

    /// `GET /v1/job/:id` (Read Job), reduced to the fields read.
    fn job_answer(id: &str, groups: &[(&str, u32)]) -> Value {
        let groups: Vec<Value> = groups
            .iter()
            .map(|(n, c)| json!({"Name": n, "Count": c, "Tasks": []}))
            .collect();
        json!({"ID": id, "Type": "service", "Status": "running", "TaskGroups": groups})
    }

    /// `GET /v1/nodes` (List Nodes, developer.hashicorp.com/nomad/api-docs/nodes).
    fn nodes_answer() -> Value {
        let node = |name: &str, status: &str, eligibility: &str| {
            json!({"ID": format!("id-{name}"), "Datacenter": "dc1", "Name": name,
                   "NodeClass": "", "Version": "1.10.3", "Drain": false,
                   "SchedulingEligibility": eligibility, "Status": status})
        };
        json!([
            node("c1", "ready", "eligible"),
            node("c2", "ready", "eligible"),
            node("c3", "ready", "ineligible"),
            node("c4", "down", "eligible")
        ])
    }

    /// `GET /v1/metrics` of a leader, written after the sample response of
    /// developer.hashicorp.com/nomad/api-docs/metrics (gauges are floats with labels).
    fn metrics_answer() -> Value {
        let gauge = |name: &str, value: f64| json!({"Labels": {}, "Name": name, "Value": value});
        json!({
            "Timestamp": "2026-12-04 17:00:00 +0000 UTC",
            "Counters": [{"Count": 11, "Labels": {}, "Max": 1.0, "Mean": 1.0, "Min": 1.0,
                          "Name": "nomad.nomad.rpc.query", "Stddev": 0.0, "Sum": 11.0}],
            "Gauges": [
                gauge("nomad.nomad.broker.total_ready", 3.0),
                gauge("nomad.nomad.broker.total_unacked", 1.0),
                gauge("nomad.nomad.broker.total_blocked", 2.0),
                gauge("nomad.nomad.broker.service_ready", 3.0),
                gauge("nomad.nomad.blocked_evals.total_blocked", 5.0)
            ],
            "Samples": []
        })
    }

    #[test]
    fn jobs_are_read_with_what_they_want_and_what_runs() {
        let stubs = job_stubs(&jobs_answer()).unwrap();
        assert_eq!(stubs.len(), 4);
        assert_eq!(stubs[1].namespace, "ops");
        assert_eq!(
            stubs[3].namespace, "default",
            "no Namespace: the default one"
        );
        let nodes = eligible_ready_nodes(&nodes_answer()).unwrap();
        assert_eq!(nodes, 2, "ready and eligible only");
        let counts = [
            job_answer("web", &[("api", 3), ("cache", 1)]),
            job_answer("logs", &[("shipper", 1)]),
            job_answer("report", &[("run", 4)]),
            job_answer("gc", &[("sweep", 1)]),
        ];
        let states: Vec<JobState> = stubs
            .iter()
            .zip(&counts)
            .map(|(s, c)| job_state(s, &job_group_counts(c).unwrap(), nodes))
            .collect();
        let got: Vec<(&str, JobType, u32, u32, u32)> = states
            .iter()
            .map(|j| (&*j.name, j.kind, j.desired, j.running, j.queued))
            .collect();
        assert_eq!(
            got,
            vec![
                ("web", JobType::Service, 4, 3, 1),
                // One per eligible ready node, whatever its Count says.
                ("logs", JobType::System, 2, 2, 0),
                // Dead (completed): wants nothing.
                ("report", JobType::Batch, 0, 0, 0),
                // Per node, less what completed.
                ("gc", JobType::Batch, 1, 1, 0),
            ]
        );
        let w = rehearse_model::api::Workload {
            jobs: states,
            broker: BrokerStats::default(),
        };
        assert_eq!(w.short_jobs(), vec!["web 3 of 4 running".to_string()]);
    }

    #[test]
    fn the_broker_gauges_are_read_from_the_leaders_metrics() {
        let b = broker_stats(&metrics_answer()).unwrap();
        assert_eq!(
            (b.ready, b.unacked, b.blocked, b.blocked_capacity),
            (3, 1, 2, 5)
        );
        assert_eq!(b.backlog(), 11);
    }

    /// A field missing or of the wrong type is an error naming it, never a panic nor a zero.
    #[test]
    fn workload_answers_missing_a_field_name_it() {
        let jobs_without = |f: &dyn Fn(&mut Value)| {
            let mut v = jobs_answer();
            f(&mut v[0]);
            job_stubs(&v).unwrap_err().to_string()
        };
        let e = jobs_without(&|j| drop(j.as_object_mut().unwrap().remove("Type")));
        assert!(e.contains("job web") && e.contains("\"Type\""), "{e}");
        let e = jobs_without(&|j| j["Type"] = json!("nonsense"));
        assert!(e.contains("unknown Type \"nonsense\""), "{e}");
        let e = jobs_without(&|j| drop(j.as_object_mut().unwrap().remove("JobSummary")));
        assert!(e.contains("job web") && e.contains("\"JobSummary\""), "{e}");
        let e = jobs_without(&|j| {
            drop(
                j["JobSummary"]["Summary"]["api"]
                    .as_object_mut()
                    .unwrap()
                    .remove("Running"),
            )
        });
        assert!(
            e.contains("job web group api") && e.contains("\"Running\""),
            "{e}"
        );
        let e = jobs_without(&|j| j["JobSummary"]["Summary"]["api"]["Queued"] = json!(-1));
        assert!(e.contains("\"Queued\" is not a count"), "{e}");
        let e = jobs_without(&|j| drop(j.as_object_mut().unwrap().remove("ID")));
        assert!(e.contains("\"ID\""), "{e}");
        assert!(job_stubs(&json!({"jobs": []})).is_err());

        let e = job_group_counts(&json!({"ID": "web", "TaskGroups": [{"Name": "api"}]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("job web group api") && e.contains("\"Count\""),
            "{e}"
        );
        let e = job_group_counts(&json!({"ID": "web"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"TaskGroups\""), "{e}");

        let mut nodes = nodes_answer();
        nodes[2]
            .as_object_mut()
            .unwrap()
            .remove("SchedulingEligibility");
        let e = eligible_ready_nodes(&nodes).unwrap_err().to_string();
        assert!(
            e.contains("node c3") && e.contains("\"SchedulingEligibility\""),
            "{e}"
        );

        let mut m = metrics_answer();
        m["Gauges"].as_array_mut().unwrap().remove(3);
        m["Gauges"].as_array_mut().unwrap().remove(0);
        let e = broker_stats(&m).unwrap_err().to_string();
        assert!(e.contains("\"nomad.nomad.broker.total_ready\""), "{e}");
        let mut m = metrics_answer();
        m["Gauges"][1]["Value"] = json!("lots");
        let e = broker_stats(&m).unwrap_err().to_string();
        assert!(e.contains("nomad.nomad.broker.total_unacked"), "{e}");
        let e = broker_stats(&json!({"Counters": []}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"Gauges\""), "{e}");
    }

    /// The recorded shapes in `tests/fixtures/nomad/` (also the fuzz harness's seeds).
    #[test]
    fn the_recorded_jobs_job_and_metrics_answers_parse() {
        let read = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        let stubs = job_stubs(&read(include_str!("../../tests/fixtures/nomad/jobs.json"))).unwrap();
        let counts =
            job_group_counts(&read(include_str!("../../tests/fixtures/nomad/job.json"))).unwrap();
        assert_eq!(counts, vec![("api".to_string(), 3)]);
        let web = job_state(&stubs[0], &counts, 0);
        assert_eq!((web.desired, web.running, web.queued), (3, 2, 1));
        let done = job_state(&stubs[1], &[], 0);
        // Sums saturate rather than wrap (or panic) on absurd counts.
        let huge = [("a".to_string(), u32::MAX), ("b".to_string(), 7)];
        assert_eq!(job_state(&stubs[0], &huge, 0).desired, u32::MAX);
        assert_eq!(
            (done.kind, done.desired, done.running),
            (JobType::Batch, 0, 0)
        );
        let nodes = read(include_str!("../../tests/fixtures/nomad/nodes.json"));
        assert_eq!(eligible_ready_nodes(&nodes).unwrap(), 1);
        let metrics = read(include_str!("../../tests/fixtures/nomad/metrics.json"));
        let b = broker_stats(&metrics).unwrap();
        assert_eq!(
            (
                b.ready,
                b.unacked,
                b.blocked,
                b.blocked_capacity,
                b.backlog()
            ),
            (2, 1, 0, 1, 4)
        );
    }

    #[test]
    fn ids_are_percent_encoded_in_paths() {
        assert_eq!(url_encode("web-1.api_x~"), "web-1.api_x~");
        assert_eq!(url_encode("a/b c?*"), "a%2Fb%20c%3F%2A");
        assert_eq!(url_encode("é"), "%C3%A9");
    }

    #[test]
    fn leader_empty_is_none() {
        assert_eq!(leader(&json!("")).unwrap(), None);
        assert_eq!(
            leader(&json!("127.0.0.2:8300")).unwrap().as_deref(),
            Some("127.0.0.2:8300")
        );
        assert!(leader(&json!(3)).is_err());
    }
}
