//! Turns Nomad's and Consul's JSON answers into the procedure's API types.
//!
//! Pure functions over `serde_json::Value`, so recorded fixtures cover them. Parsing is lenient
//! where the two products differ (Consul's member `Status` is a number, Nomad's a string;
//! Consul names the raft protocol `ProtocolVersion`, Nomad `RaftProtocol`) and strict where a
//! wrong guess would mislead the procedure (a missing version or index is an error).

use rehearse_model::api::{
    AgentSelf, AutopilotHealth, Member, NodeInfo, NodeStatus, RaftConfiguration, RaftServer,
    RaftState, RaftStats, SchedulerConfig, SerfStatus, ServerHealth, SharedStr,
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
