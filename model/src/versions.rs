//! The version catalog: what a server upgrade depends on, per product and release line.
//!
//! Facts come from `shared/reference/nomad.md` (Nomad's upgrade guides and the public issues in
//! `failure-modes.md`). The simulator reads the behavioural flags (pre-vote, entry schema,
//! snapshot format, known bugs); the plan linter reads the rules (jumps, downgrades, protocols,
//! client minimums, known-bad releases).
//!
//! Simplification: behaviour is recorded per *minor line* (e.g. all 1.9.x share pre-vote), and
//! patch-level facts (a known-bad release, a fix) are listed separately. A version whose minor
//! line is not in the catalog is rejected as impossible rather than guessed at.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which HashiCorp server product a cluster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// HashiCorp Nomad servers (HTTP port 4646, RPC 4647, serf 4648).
    Nomad,
    /// HashiCorp Consul servers (HTTP port 8500, RPC 8300); the real sibling we validate against.
    Consul,
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Product::Nomad => "nomad",
            Product::Consul => "consul",
        })
    }
}

/// Community or Enterprise build. Enterprise servers write Raft entries of their own (licenses,
/// license reporting) that Community servers, and older Enterprise servers, cannot decode
/// (hashicorp/nomad#9958, #26425).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Edition {
    /// The open-source build.
    #[default]
    Community,
    /// Nomad Enterprise (`+ent` builds).
    Enterprise,
}

/// A release version `major.minor.patch`. Build metadata (`+ent`) and the Consul build suffix
/// (`1.8.7:abcdef`) are accepted on input and dropped: they do not change upgrade behaviour here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// Major version.
    pub major: u16,
    /// Minor version.
    pub minor: u16,
    /// Patch version.
    pub patch: u16,
}

impl Version {
    /// Builds a version from its three parts.
    pub const fn new(major: u16, minor: u16, patch: u16) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }

    /// The release line `(major, minor)` this version belongs to.
    pub const fn line(&self) -> (u16, u16) {
        (self.major, self.minor)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a version string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version {input:?}: expected MAJOR.MINOR.PATCH, e.g. \"1.10.3\"")]
pub struct ParseVersionError {
    /// The text that was given.
    pub input: String,
}

impl FromStr for Version {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseVersionError {
            input: s.to_string(),
        };
        let core = s
            .trim()
            .trim_start_matches('v')
            .split(['+', ':', '-'])
            .next()
            .ok_or_else(err)?;
        let mut parts = core.split('.');
        let mut next = || -> Result<u16, ParseVersionError> {
            parts
                .next()
                .ok_or_else(err)?
                .parse::<u16>()
                .map_err(|_| err())
        };
        let v = Version::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(v)
    }
}

impl Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What one release line does that matters to a server upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineInfo {
    /// Product of this line.
    pub product: Product,
    /// `(major, minor)` of this line.
    pub line: (u16, u16),
    /// Raft protocol written by default by this line.
    pub raft_protocol_default: u8,
    /// Lowest raft protocol this line can run.
    pub raft_protocol_min: u8,
    /// Whether this line's hashicorp/raft does pre-vote (Nomad 1.9.0+, raft 1.7).
    pub pre_vote: bool,
    /// Whether `PUT /v1/operator/raft/transfer-leadership` exists (Nomad 1.7.0+).
    pub transfer_leadership_api: bool,
    /// Highest log-entry schema this line can apply. A leader writes entries of its own schema;
    /// a server with a lower schema panics when it applies one (hashicorp/nomad#14819, #3033).
    pub entry_schema: u32,
    /// Snapshot format this line writes. A server restores formats `<=` its own only
    /// (hashicorp/nomad#20072: a newer snapshot does not restore on an older version).
    pub snapshot_format: u32,
    /// Lowest client version servers of this line accept (Nomad 1.9 drops clients < 1.6).
    pub min_client: Option<Version>,
    /// Whether the keyring lives in Raft (1.9+) rather than on disk in `server/keystore/`.
    pub keyring_in_raft: bool,
    /// One-line notes shown in lints and reports.
    pub notes: &'static str,
}

/// A release with a known defect that matters to an upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KnownIssue {
    /// Product the release belongs to.
    pub product: Product,
    /// Only Enterprise builds have the defect.
    pub enterprise_only: bool,
    /// First affected version (inclusive).
    pub from: Version,
    /// Last affected version (inclusive).
    pub to: Version,
    /// Which defect, as a behaviour the simulator can reproduce.
    pub kind: KnownIssueKind,
    /// Public issue reference.
    pub reference: &'static str,
    /// What to use instead.
    pub fix_hint: &'static str,
}

/// Defects the simulator models for known-bad releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnownIssueKind {
    /// The leader writes its new entry schema even while older servers are in the cluster;
    /// they panic on apply (Nomad 1.4.0; 1.4.1 waits until every server is >= 1.4.0).
    WritesNewEntriesEarly,
    /// The binary cannot load an older on-disk snapshot and crash-loops on start (early 1.6.0).
    CannotLoadOlderSnapshot,
    /// Keyring replication bug (1.7.0–1.7.1): use >= 1.7.2.
    KeyringReplication,
    /// Restores an (almost) empty FSM from its local snapshot while Raft looks healthy (1.9.2).
    EmptyRestoreFromLocalSnapshot,
    /// An Enterprise leader writes an offline-license-reporting entry as soon as it leads,
    /// which earlier Enterprise releases cannot decode: they panic on apply (1.8.14+ent,
    /// 1.9.10+ent, 1.10.2+ent and their next patch; hashicorp/nomad#26425).
    WritesLicenseReportingEntry,
    /// With ACLs enabled, the leader's request to mark a node down whose heartbeat TTL
    /// expired is refused ("Permission denied"): a client whose host is gone stays `ready`
    /// (1.9.0; hashicorp/nomad#24231, fixed in 1.9.1 by PR #24241).
    HeartbeatMarkDownRefused,
}

const fn v(major: u16, minor: u16, patch: u16) -> Version {
    Version::new(major, minor, patch)
}

/// Nomad release lines 1.3 → 2.0 and Consul 1.8, in ascending order.
pub const LINES: &[LineInfo] = &[
    nomad_line(
        (1, 3),
        3,
        2,
        false,
        false,
        1,
        1,
        None,
        false,
        "raft v3 default; raft DB format changed: server downgrade unsupported",
    ),
    nomad_line(
        (1, 4),
        3,
        3,
        false,
        false,
        2,
        1,
        None,
        false,
        "raft v2 removed; leader writes keyring entries pre-1.4 servers cannot apply",
    ),
    nomad_line(
        (1, 5),
        3,
        3,
        false,
        false,
        2,
        1,
        None,
        false,
        "rejoin_after_leave=false enforced",
    ),
    nomad_line(
        (1, 6),
        3,
        3,
        false,
        false,
        3,
        2,
        None,
        false,
        "early 1.6.0 builds cannot load older on-disk snapshots",
    ),
    nomad_line(
        (1, 7),
        3,
        3,
        false,
        true,
        3,
        2,
        None,
        false,
        "transfer-leadership API; use >= 1.7.2 (keyring replication bug)",
    ),
    nomad_line(
        (1, 8),
        3,
        3,
        false,
        true,
        3,
        2,
        None,
        false,
        "raft 1.6.1 (no pre-vote); Enterprise LTS",
    ),
    nomad_line(
        (1, 9),
        3,
        3,
        true,
        true,
        4,
        3,
        Some(v(1, 6, 0)),
        true,
        "pre-vote; keyring in Raft; drops clients < 1.6; 1.9.2 pulled",
    ),
    nomad_line(
        (1, 10),
        3,
        3,
        true,
        true,
        4,
        3,
        Some(v(1, 6, 0)),
        true,
        "start_timeout 30s; agent exits on config-reload error",
    ),
    nomad_line(
        (1, 11),
        3,
        3,
        true,
        true,
        4,
        3,
        Some(v(1, 6, 0)),
        true,
        "last line before 2.0",
    ),
    nomad_line(
        (2, 0),
        3,
        3,
        true,
        true,
        5,
        4,
        Some(v(1, 6, 0)),
        true,
        "raft_logstore (boltdb/wal); WAL migration reversible only from a snapshot",
    ),
    LineInfo {
        product: Product::Consul,
        line: (1, 8),
        raft_protocol_default: 3,
        raft_protocol_min: 2,
        pre_vote: false,
        transfer_leadership_api: false,
        entry_schema: 1,
        snapshot_format: 1,
        min_client: None,
        keyring_in_raft: false,
        notes: "real sibling used for validation; raft_multiplier default 5; no transfer-leadership API",
    },
];

#[allow(clippy::too_many_arguments)] // a table row; named fields would triple the table's length
const fn nomad_line(
    line: (u16, u16),
    raft_protocol_default: u8,
    raft_protocol_min: u8,
    pre_vote: bool,
    transfer_leadership_api: bool,
    entry_schema: u32,
    snapshot_format: u32,
    min_client: Option<Version>,
    keyring_in_raft: bool,
    notes: &'static str,
) -> LineInfo {
    LineInfo {
        product: Product::Nomad,
        line,
        raft_protocol_default,
        raft_protocol_min,
        pre_vote,
        transfer_leadership_api,
        entry_schema,
        snapshot_format,
        min_client,
        keyring_in_raft,
        notes,
    }
}

/// Releases with known upgrade defects.
pub const KNOWN_ISSUES: &[KnownIssue] = &[
    KnownIssue {
        product: Product::Nomad,
        enterprise_only: false,
        from: v(1, 4, 0),
        to: v(1, 4, 0),
        kind: KnownIssueKind::WritesNewEntriesEarly,
        reference: "hashicorp/nomad#14819",
        fix_hint: "upgrade to 1.4.1 or later, which waits until every server runs >= 1.4.0",
    },
    KnownIssue {
        product: Product::Nomad,
        enterprise_only: false,
        from: v(1, 6, 0),
        to: v(1, 6, 0),
        kind: KnownIssueKind::CannotLoadOlderSnapshot,
        reference: "hashicorp/nomad#17764",
        fix_hint: "use 1.6.1 or later",
    },
    KnownIssue {
        product: Product::Nomad,
        enterprise_only: false,
        from: v(1, 7, 0),
        to: v(1, 7, 1),
        kind: KnownIssueKind::KeyringReplication,
        reference: "Nomad 1.7 upgrade notes",
        fix_hint: "use 1.7.2 or later",
    },
    KnownIssue {
        product: Product::Nomad,
        enterprise_only: false,
        from: v(1, 9, 2),
        to: v(1, 9, 2),
        kind: KnownIssueKind::EmptyRestoreFromLocalSnapshot,
        reference: "hashicorp/nomad#24411",
        fix_hint: "use 1.9.3 or later (release 1.9.2 was pulled)",
    },
    KnownIssue {
        product: Product::Nomad,
        enterprise_only: false,
        from: v(1, 9, 0),
        to: v(1, 9, 0),
        kind: KnownIssueKind::HeartbeatMarkDownRefused,
        reference: "hashicorp/nomad#24231",
        fix_hint: "use 1.9.1 or later: with ACLs enabled, 1.9.0 never marks a client with missed heartbeats down",
    },
    license_reporting(v(1, 8, 14), v(1, 8, 15), "use 1.8.16+ent or later"),
    license_reporting(v(1, 9, 10), v(1, 9, 11), "use 1.9.12+ent or later"),
    license_reporting(v(1, 10, 2), v(1, 10, 3), "use 1.10.4+ent or later"),
];

const fn license_reporting(from: Version, to: Version, fix_hint: &'static str) -> KnownIssue {
    KnownIssue {
        product: Product::Nomad,
        enterprise_only: true,
        from,
        to,
        kind: KnownIssueKind::WritesLicenseReportingEntry,
        reference: "hashicorp/nomad#26425",
        fix_hint,
    }
}

/// First release of each line that can decode the offline-license-reporting entry
/// (hashicorp/nomad#26425); every later line can too, earlier lines cannot.
const LICENSE_REPORTING_SINCE: [Version; 3] = [v(1, 8, 14), v(1, 9, 10), v(1, 10, 2)];

/// Whether an Enterprise server of this version can apply the offline-license-reporting entry.
pub fn reads_license_reporting(version: Version) -> bool {
    match LICENSE_REPORTING_SINCE
        .iter()
        .find(|s| s.line() == version.line())
    {
        Some(since) => version >= *since,
        None => version > LICENSE_REPORTING_SINCE[2],
    }
}

/// Why a version is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// The release line is not one rehearse knows.
    #[error("{product} {version} is not in the version catalog (known lines: {known})")]
    UnknownVersion {
        /// Product asked for.
        product: Product,
        /// Version asked for.
        version: Version,
        /// Known lines, for the message.
        known: String,
    },
}

/// Looks up the release line of a version.
pub fn line_info(product: Product, version: Version) -> Result<&'static LineInfo, CatalogError> {
    LINES
        .iter()
        .find(|l| l.product == product && l.line == version.line())
        .ok_or_else(|| CatalogError::UnknownVersion {
            product,
            version,
            known: known_lines(product),
        })
}

/// Known release lines of a product, as `1.3, 1.4, …`.
pub fn known_lines(product: Product) -> String {
    LINES
        .iter()
        .filter(|l| l.product == product)
        .map(|l| format!("{}.{}", l.line.0, l.line.1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Known defects affecting this exact version of the Community build.
pub fn known_issues(
    product: Product,
    version: Version,
) -> impl Iterator<Item = &'static KnownIssue> {
    known_issues_for(product, version, Edition::Community)
}

/// Known defects affecting this exact version of the given edition (Enterprise builds have
/// the Community defects too).
pub fn known_issues_for(
    product: Product,
    version: Version,
    edition: Edition,
) -> impl Iterator<Item = &'static KnownIssue> {
    KNOWN_ISSUES.iter().filter(move |k| {
        let edition_ok = !k.enterprise_only || edition == Edition::Enterprise;
        k.product == product && edition_ok && k.from <= version && version <= k.to
    })
}

/// Whether this exact version of the Community build has the given defect.
pub fn has_issue(product: Product, version: Version, kind: KnownIssueKind) -> bool {
    has_issue_for(product, version, Edition::Community, kind)
}

/// Whether this exact version of the given edition has the given defect.
pub fn has_issue_for(
    product: Product,
    version: Version,
    edition: Edition,
    kind: KnownIssueKind,
) -> bool {
    known_issues_for(product, version, edition).any(|k| k.kind == kind)
}

/// Whether reinstalling `from` over data that `to` has written is safe: `to` writes no log
/// entry or snapshot format newer than `from` reads. `false` when either line is unknown.
pub fn in_place_rollback_safe(product: Product, from: Version, to: Version) -> bool {
    match (line_info(product, from), line_info(product, to)) {
        (Ok(from), Ok(to)) => {
            to.entry_schema <= from.entry_schema && to.snapshot_format <= from.snapshot_format
        }
        _ => false,
    }
}

/// Number of minor-line steps from `from` to `to` along the catalog (1.11 → 2.0 counts as one).
/// `None` if either line is unknown. Negative for a downgrade.
pub fn minor_steps(product: Product, from: Version, to: Version) -> Option<i32> {
    let idx = |ver: Version| {
        LINES
            .iter()
            .filter(|l| l.product == product)
            .position(|l| l.line == ver.line())
    };
    Some(idx(to)? as i32 - idx(from)? as i32)
}

/// The default raft_multiplier of a product (Nomad 1, Consul 5).
pub fn default_raft_multiplier(product: Product) -> u32 {
    match product {
        Product::Nomad => 1,
        Product::Consul => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_with_suffixes() {
        assert_eq!("1.10.3".parse::<Version>().unwrap(), v(1, 10, 3));
        assert_eq!("1.8.7:12b16df3".parse::<Version>().unwrap(), v(1, 8, 7));
        assert_eq!("v1.9.0+ent".parse::<Version>().unwrap(), v(1, 9, 0));
        assert!("1.10".parse::<Version>().is_err());
        assert!("1.10.3.4".parse::<Version>().is_err());
        assert!("x.y.z".parse::<Version>().is_err());
    }

    #[test]
    fn minor_steps_count_lines_not_numbers() {
        let n = Product::Nomad;
        assert_eq!(minor_steps(n, v(1, 11, 0), v(2, 0, 0)), Some(1));
        assert_eq!(minor_steps(n, v(1, 8, 0), v(1, 10, 0)), Some(2));
        assert_eq!(minor_steps(n, v(1, 10, 0), v(1, 9, 0)), Some(-1));
        assert_eq!(minor_steps(n, v(1, 2, 0), v(1, 9, 0)), None);
    }

    #[test]
    fn known_issues_match_exact_releases() {
        let n = Product::Nomad;
        assert!(has_issue(
            n,
            v(1, 4, 0),
            KnownIssueKind::WritesNewEntriesEarly
        ));
        assert!(!has_issue(
            n,
            v(1, 4, 1),
            KnownIssueKind::WritesNewEntriesEarly
        ));
        assert!(has_issue(n, v(1, 7, 1), KnownIssueKind::KeyringReplication));
        assert!(line_info(n, v(3, 0, 0)).is_err());
        let lic = KnownIssueKind::WritesLicenseReportingEntry;
        assert!(!has_issue(n, v(1, 10, 3), lic), "Community is not affected");
        assert!(has_issue_for(n, v(1, 10, 3), Edition::Enterprise, lic));
        assert!(!has_issue_for(n, v(1, 10, 4), Edition::Enterprise, lic));
        assert!(reads_license_reporting(v(1, 8, 14)));
        assert!(!reads_license_reporting(v(1, 8, 13)));
        assert!(!reads_license_reporting(v(1, 7, 7)));
        assert!(reads_license_reporting(v(1, 11, 0)));
        assert!(line_info(Product::Consul, v(1, 8, 7)).is_ok());
    }
}
