//! Verifies a Raft snapshot as Consul and Nomad write it: a gzip'd tar holding `meta.json`
//! (index, term), `state.bin` and `SHA256SUMS` with the sha-256 of the other two. Consul 1.8
//! sends no `Digest` header, so the archive's own checksums are what proves the download whole.

use flate2::read::GzDecoder;
use sha2::Digest;
use std::collections::BTreeMap;
use std::io::Read;

/// What a verified snapshot says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveMeta {
    /// Raft index the snapshot covers.
    pub index: u64,
    /// Term of that index.
    pub term: u64,
}

/// Largest archive content rehearse unpacks to verify (a bound: 8 GiB).
const UNPACKED_MAX: u64 = 8 << 30;

/// Unpacks the archive, checks every file against `SHA256SUMS`, and reads `meta.json`.
pub fn verify_archive(bytes: &[u8]) -> Result<ArchiveMeta, String> {
    let mut tar = Vec::new();
    GzDecoder::new(bytes)
        .take(UNPACKED_MAX)
        .read_to_end(&mut tar)
        .map_err(|e| format!("snapshot is not a gzip archive: {e}"))?;
    let files = untar(&tar)?;
    let sums = files
        .get("SHA256SUMS")
        .ok_or("snapshot archive has no SHA256SUMS")?;
    let sums = String::from_utf8_lossy(sums);
    let mut checked = 0;
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (want, name) = line
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("bad SHA256SUMS line {line:?}"))?;
        let name = name.trim();
        let body = files
            .get(name)
            .ok_or_else(|| format!("SHA256SUMS names {name}, which the archive lacks"))?;
        let got: String = sha2::Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if got != want {
            return Err(format!(
                "snapshot file {name} is corrupt (sha-256 {got}, expected {want})"
            ));
        }
        checked += 1;
    }
    if checked == 0 {
        return Err("snapshot SHA256SUMS is empty".into());
    }
    let meta: serde_json::Value = serde_json::from_slice(
        files
            .get("meta.json")
            .ok_or("snapshot archive has no meta.json")?,
    )
    .map_err(|e| format!("snapshot meta.json: {e}"))?;
    let field = |k: &str| meta.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
    Ok(ArchiveMeta {
        index: field("Index"),
        term: field("Term"),
    })
}

/// The regular files of a ustar archive.
fn untar(tar: &[u8]) -> Result<BTreeMap<String, Vec<u8>>, String> {
    let mut files = BTreeMap::new();
    let mut at = 0;
    // Each entry takes at least one 512-byte block: this bounds the loop.
    while at + 512 <= tar.len() {
        let h = &tar[at..at + 512];
        if h.iter().all(|b| *b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(&h[..100])
            .trim_end_matches('\0')
            .to_string();
        let size_text = String::from_utf8_lossy(&h[124..136]);
        let size = u64::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)
            .map_err(|_| format!("snapshot archive: bad size for {name}"))?;
        let size = usize::try_from(size).map_err(|_| "snapshot archive: entry too large")?;
        let start = at + 512;
        let end = start
            .checked_add(size)
            .filter(|e| *e <= tar.len())
            .ok_or_else(|| format!("snapshot archive cut short in {name}"))?;
        if matches!(h[156], b'0' | 0) {
            files.insert(name, tar[start..end].to_vec());
        }
        at = start + size.div_ceil(512) * 512;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    fn entry(name: &str, body: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let size = format!("{:011o}\0", body.len());
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = b'0';
        let mut out = h;
        out.extend_from_slice(body);
        out.resize(out.len().div_ceil(512) * 512, 0);
        out
    }

    fn archive(state: &[u8], sum_of_state: &[u8]) -> Vec<u8> {
        let meta = br#"{"ID":"2-40-1","Index":40,"Term":2,"Version":1}"#;
        let hex = |b: &[u8]| -> String {
            sha2::Sha256::digest(b)
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect()
        };
        let sums = format!(
            "{}  meta.json\n{}  state.bin\n",
            hex(meta),
            hex(sum_of_state)
        );
        let mut tar = entry("meta.json", meta);
        tar.extend(entry("state.bin", state));
        tar.extend(entry("SHA256SUMS", sums.as_bytes()));
        tar.extend([0u8; 1024]);
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_whole_archive_verifies_and_a_corrupt_one_does_not() {
        let good = archive(b"state", b"state");
        assert_eq!(
            verify_archive(&good).unwrap(),
            ArchiveMeta { index: 40, term: 2 }
        );
        let bad = archive(b"state", b"other");
        assert!(verify_archive(&bad).unwrap_err().contains("corrupt"));
        assert!(verify_archive(b"not gzip").is_err());
        let cut = &good[..good.len() / 2];
        assert!(verify_archive(cut).is_err());
    }
}
