//! One server's HTTP API: timeouts, bounded retries with backoff, tokens kept secret, and the
//! mapping of transport and HTTP failures onto `ApiError` observations.
//!
//! "Connection refused", a timeout and "No cluster leader" are not errors of rehearse: they are
//! what the cluster looks like right now, and the procedure decides what they mean. A 403 while
//! the server knows no leader is "No cluster leader" too (a server cannot resolve a token
//! without one), not a bad token.
//!
//! The token never leaves for another address: redirects are not followed (one is answered as
//! an error naming where it pointed). Answers are read with a cap (`max_body_bytes`, and
//! `max_snapshot_bytes` for snapshot downloads), so a wrong or hostile server cannot make
//! rehearse hold gigabytes.

use rehearse_model::api::{ApiError, SharedStr};
use rehearse_model::versions::Product;
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// A token that never prints.
#[derive(Clone, Default)]
pub struct Secret(Option<String>);

impl Secret {
    /// Wraps a token; empty text means no token.
    pub fn new(token: Option<String>) -> Self {
        Secret(token.filter(|t| !t.is_empty()))
    }

    /// The token itself, for the request header only.
    fn expose(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "<redacted>"
        } else {
            "<none>"
        })
    }
}

/// TLS settings, as the `nomad`/`consul` CLIs read them from the environment.
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// PEM file of the CA that signed the servers' certificates.
    pub ca_cert: Option<std::path::PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    pub client_cert: Option<std::path::PathBuf>,
    /// Client key (PEM).
    pub client_key: Option<std::path::PathBuf>,
    /// Server name to verify instead of the host in the address (e.g. `server.global.nomad`).
    pub server_name: Option<String>,
    /// Turn verification off (the operator asked for it explicitly).
    pub skip_verify: bool,
}

/// How to reach a cluster: the product, the token, TLS and the timeouts.
#[derive(Debug, Clone)]
pub struct Connection {
    /// Nomad or Consul (header names and endpoint paths differ).
    pub product: Product,
    /// ACL token.
    pub token: Secret,
    /// TLS settings.
    pub tls: Tls,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Attempts for transient failures (reset connection, 502/503/504).
    pub attempts: u32,
    /// Nomad region (`?region=`), when set.
    pub region: Option<String>,
    /// Largest answer read into memory (a server's JSON answers are far smaller).
    pub max_body_bytes: u64,
    /// Largest snapshot download (snapshots are read into memory and verified there).
    pub max_snapshot_bytes: u64,
}

/// Default cap on a JSON answer: a 15-server cluster's largest answers are kilobytes, the
/// client list of a big Nomad cluster a few megabytes.
pub const MAX_BODY_BYTES: u64 = 64 << 20;

/// Default cap on a snapshot download (it is held in memory while its digest and archive are
/// checked, so the cap bounds rehearse's memory too).
pub const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;

/// The snapshot endpoints (Consul, Nomad): their answers get `max_snapshot_bytes`.
const SNAPSHOT_PATHS: [&str; 2] = ["/v1/snapshot", "/v1/operator/snapshot"];

impl Connection {
    /// Defaults: 4 s per request, 3 attempts.
    pub fn new(product: Product) -> Self {
        Connection {
            product,
            token: Secret::default(),
            tls: Tls::default(),
            timeout_ms: 4000,
            attempts: 3,
            region: None,
            max_body_bytes: MAX_BODY_BYTES,
            max_snapshot_bytes: MAX_SNAPSHOT_BYTES,
        }
    }

    /// Reads the token, TLS and region settings from the product's CLI environment
    /// (`NOMAD_TOKEN`, `NOMAD_CACERT`, … or `CONSUL_HTTP_TOKEN`, `CONSUL_CACERT`, …).
    pub fn from_env(product: Product) -> Self {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        let path = |n: &str| var(n).map(std::path::PathBuf::from);
        let truthy = |n: &str| var(n).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE"));
        let mut c = Connection::new(product);
        match product {
            Product::Nomad => {
                c.token = Secret::new(var("NOMAD_TOKEN"));
                c.tls = Tls {
                    ca_cert: path("NOMAD_CACERT"),
                    client_cert: path("NOMAD_CLIENT_CERT"),
                    client_key: path("NOMAD_CLIENT_KEY"),
                    server_name: var("NOMAD_TLS_SERVER_NAME"),
                    skip_verify: truthy("NOMAD_SKIP_VERIFY"),
                };
                c.region = var("NOMAD_REGION");
            }
            Product::Consul => {
                c.token = Secret::new(var("CONSUL_HTTP_TOKEN"));
                c.tls = Tls {
                    ca_cert: path("CONSUL_CACERT"),
                    client_cert: path("CONSUL_CLIENT_CERT"),
                    client_key: path("CONSUL_CLIENT_KEY"),
                    server_name: var("CONSUL_TLS_SERVER_NAME"),
                    // Consul's switch is inverted: CONSUL_HTTP_SSL_VERIFY=false turns it off.
                    skip_verify: var("CONSUL_HTTP_SSL_VERIFY")
                        .is_some_and(|v| matches!(v.as_str(), "0" | "false" | "FALSE")),
                };
            }
        }
        c
    }

    /// The address from the CLI environment (`NOMAD_ADDR` / `CONSUL_HTTP_ADDR`), or the default.
    pub fn env_addr(product: Product) -> String {
        let (var, default) = match product {
            Product::Nomad => ("NOMAD_ADDR", "http://127.0.0.1:4646"),
            Product::Consul => ("CONSUL_HTTP_ADDR", "http://127.0.0.1:8500"),
        };
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| default.to_string())
    }
}

/// Why a client could not be built (bad address or unreadable certificate): bad input, exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// An answer: status, body, and the leader headers.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Parsed JSON body (`Null` when empty or not JSON).
    pub body: Value,
    /// Raw body bytes (snapshots).
    pub bytes: Vec<u8>,
    /// `Digest` header, if any.
    pub digest: Option<String>,
    /// `X-Nomad-Index` / `X-Consul-Index` header, if any.
    pub index: Option<u64>,
}

/// A client for one server.
#[derive(Clone)]
pub struct Client {
    /// Base URL, e.g. `http://127.0.0.2:8500`.
    pub base: String,
    conn: Connection,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client({})", self.base)
    }
}

/// Installs the process-wide TLS crypto provider once (ring; reqwest is built without one).
fn install_crypto_provider() {
    // Err means another thread installed it first, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn read_pem(path: &std::path::Path, what: &str) -> Result<Vec<u8>, ClientError> {
    std::fs::read(path)
        .map_err(|e| ClientError(format!("cannot read {what} {}: {e}", path.display())))
}

impl Client {
    /// A client for the server at `addr` (`http://host:port`, `https://…`, or `host:port`).
    pub fn new(addr: &str, conn: &Connection) -> Result<Client, ClientError> {
        install_crypto_provider();
        let base = normalise_addr(addr)?;
        let mut b = reqwest::Client::builder()
            .timeout(Duration::from_millis(conn.timeout_ms))
            .connect_timeout(Duration::from_millis(conn.timeout_ms.min(2000)))
            .pool_max_idle_per_host(2)
            // Never follow a redirect: the token header would go along to wherever it points
            // (another host, or plain http). A redirect is answered as an error instead.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &conn.tls.ca_cert {
            let pem = read_pem(ca, "CA certificate")?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| ClientError(format!("CA certificate {}: {e}", ca.display())))?;
            b = b.add_root_certificate(cert);
        }
        if let (Some(c), Some(k)) = (&conn.tls.client_cert, &conn.tls.client_key) {
            let mut pem = read_pem(c, "client certificate")?;
            pem.extend(read_pem(k, "client key")?);
            let id = reqwest::Identity::from_pem(&pem)
                .map_err(|e| ClientError(format!("client certificate {}: {e}", c.display())))?;
            b = b.identity(id);
        }
        if conn.tls.skip_verify {
            tracing::warn!("TLS verification is OFF for {base} (asked for by the environment)");
            b = b.danger_accept_invalid_certs(true);
        }
        let mut base_url = base.clone();
        if let Some(name) = &conn.tls.server_name {
            // Verify the certificate against `name` while connecting to the address given.
            let (host_port, sock) = resolve_target(&base)?;
            b = b.resolve(name, sock);
            base_url = base.replacen(&host_port, &format!("{name}:{}", sock.port()), 1);
        }
        let http = b
            .build()
            .map_err(|e| ClientError(format!("HTTP client for {base}: {e}")))?;
        Ok(Client {
            base: base_url,
            conn: conn.clone(),
            http,
        })
    }

    /// The connection settings (token, TLS, timeouts) this client was built with.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The product this client speaks to.
    pub fn product(&self) -> Product {
        self.conn.product
    }

    fn url(&self, path: &str) -> String {
        let mut url = format!("{}{}", self.base, path);
        if let Some(r) = &self.conn.region {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("region=");
            url.push_str(r);
        }
        url
    }

    /// GET a JSON document.
    pub async fn get(&self, path: &str) -> Result<Answer, ApiError> {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// PUT (or POST) with an optional body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ApiError> {
        self.call(method, path, body).await
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ApiError> {
        let attempts = self.conn.attempts.max(1);
        let mut backoff_ms = 100;
        let mut last = None;
        for attempt in 1..=attempts {
            match self.once(method.clone(), path, body.clone()).await {
                Err(Transient(e)) if attempt < attempts => {
                    tracing::debug!("{} {path}: {e}; retrying in {backoff_ms} ms", self.base);
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms *= 2;
                }
                Err(Transient(e)) => return Err(e),
                Ok(a) => return a,
            }
        }
        Err(last.unwrap_or_else(|| self.unreachable("no attempt made")))
    }

    fn unreachable(&self, why: &str) -> ApiError {
        ApiError::Unreachable {
            addr: self.base.as_str().into(),
            why: why.to_string(),
        }
    }

    fn token_header(&self) -> &'static str {
        match self.conn.product {
            Product::Nomad => "X-Nomad-Token",
            Product::Consul => "X-Consul-Token",
        }
    }

    /// The cap on the answer to `path`: snapshots may be large, everything else is JSON.
    fn body_cap(&self, path: &str) -> u64 {
        let bare = path.split('?').next().unwrap_or(path);
        if SNAPSHOT_PATHS.contains(&bare) {
            self.conn.max_snapshot_bytes
        } else {
            self.conn.max_body_bytes
        }
    }

    async fn once(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Result<Answer, ApiError>, Transient> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = self.conn.token.expose() {
            req = req.header(self.token_header(), t);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return self.transport_error(&e),
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let digest = header("Digest");
        let location = header("Location");
        let index = ["X-Nomad-Index", "X-Consul-Index"]
            .iter()
            .find_map(|h| header(h))
            .and_then(|v| v.parse().ok());
        let cap = self.body_cap(path);
        let bytes = match read_capped(resp, cap).await {
            Ok(b) => b,
            Err(Capped::Transport(e)) => return self.transport_error(&e),
            Err(Capped::TooLarge) => {
                return Ok(Err(ApiError::Rejected {
                    addr: self.base.as_str().into(),
                    message: format!(
                        "the answer to {path} is larger than {} MiB: refused (is this a {} server?)",
                        cap >> 20,
                        self.conn.product
                    ),
                }));
            }
        };
        if (200..=299).contains(&status) || status == 429 {
            // 429 is autopilot's "unhealthy" with the same body: data, not an error.
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Ok(Ok(Answer {
                status,
                body,
                bytes,
                digest,
                index,
            }));
        }
        self.refusal(status, path, &bytes, location.as_deref())
            .await
    }

    /// What a non-2xx answer means.
    async fn refusal(
        &self,
        status: u16,
        path: &str,
        bytes: &[u8],
        location: Option<&str>,
    ) -> Result<Result<Answer, ApiError>, Transient> {
        let addr: SharedStr = self.base.as_str().into();
        let line = first_line(bytes);
        match status {
            300..=399 => Ok(Err(ApiError::Rejected {
                addr,
                message: format!(
                    "HTTP {status}: redirect to {} not followed (the token would go along); if that server is yours, use its address directly",
                    location.map(printable).unwrap_or_else(|| "nowhere".into())
                ),
            })),
            // A server without a leader cannot resolve a token, and Consul then answers 403
            // "ACL not found" for a good token: ask (without the token) whether there is a
            // leader before blaming the token. No leader is retried like any transient failure.
            401 | 403 if self.leaderless().await => Err(Transient(ApiError::NoLeader { addr })),
            // A leader now does not make the refusal final: a restarting server learns its
            // leader and the token at about the same moment (its log is replayed when the
            // leader's first heartbeat comes), so the 403 may predate the leader it reports
            // now. Asked again within the attempts; the last refusal is the answer.
            401 | 403 => Err(Transient(ApiError::Forbidden { addr })),
            502..=504 => Err(Transient(ApiError::Rejected {
                addr,
                message: format!("HTTP {status}: {line}"),
            })),
            _ if error_text(bytes).contains("No cluster leader") => {
                Ok(Err(ApiError::NoLeader { addr }))
            }
            404 | 405 => Ok(Err(ApiError::Unsupported {
                addr,
                what: format!("HTTP {status} for {path}"),
            })),
            _ => Ok(Err(ApiError::Rejected {
                addr,
                message: format!("HTTP {status}: {line}"),
            })),
        }
    }

    /// Whether the server says it knows no leader (`GET /v1/status/leader` answers `""`). The
    /// endpoint needs no token in either product, so none is sent. False when it cannot tell.
    async fn leaderless(&self) -> bool {
        let Ok(resp) = self.http.get(self.url("/v1/status/leader")).send().await else {
            return false;
        };
        if !resp.status().is_success() {
            return false;
        }
        let Ok(bytes) = read_capped(resp, 4096).await else {
            return false;
        };
        matches!(serde_json::from_slice(&bytes), Ok(Value::String(s)) if s.is_empty())
    }

    /// Refused connections and timeouts are observations at once; other transport failures
    /// (a reset connection, a body cut short) are retried.
    fn transport_error(&self, e: &reqwest::Error) -> Result<Result<Answer, ApiError>, Transient> {
        let why = describe(e);
        if e.is_timeout() {
            return Ok(Err(self.unreachable(&format!("timed out ({why})"))));
        }
        if e.is_connect() {
            return Ok(Err(self.unreachable(&format!("cannot connect ({why})"))));
        }
        Err(Transient(self.unreachable(&why)))
    }
}

struct Transient(ApiError);

enum Capped {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads a body chunk by chunk, refusing it once it exceeds `cap` bytes (a declared length
/// above the cap is refused before anything is read).
async fn read_capped(mut resp: reqwest::Response, cap: u64) -> Result<Vec<u8>, Capped> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > cap) {
        return Err(Capped::TooLarge);
    }
    // Preallocate what the server declares, within the cap, but never more than 1 MiB up front.
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(cap).min(1 << 20) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(Capped::Transport)? {
        if (out.len() + chunk.len()) as u64 > cap {
            return Err(Capped::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// An error body as text: its first 64 KiB, invalid UTF-8 replaced (error bodies are short;
/// the rest is never looked at).
fn error_text(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)])
}

/// The first line of an error body, at most 200 characters, printable (control characters,
/// such as a terminal escape, are replaced).
fn first_line(bytes: &[u8]) -> String {
    let text = error_text(bytes);
    let line = text.trim().lines().next().unwrap_or("");
    printable(line)
}

/// At most 200 characters of server-supplied text, control characters replaced.
fn printable(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

/// The error chain in one line (reqwest's top-level message alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.dedup();
    parts.join(": ")
}

/// `host:port` → `http://host:port`; checks the scheme and that a host is present.
pub fn normalise_addr(addr: &str) -> Result<String, ClientError> {
    let a = addr.trim();
    let a = a.strip_suffix('/').unwrap_or(a);
    let with_scheme = if a.contains("://") {
        a.to_string()
    } else {
        format!("http://{a}")
    };
    let rest = with_scheme
        .strip_prefix("http://")
        .or_else(|| with_scheme.strip_prefix("https://"))
        .ok_or_else(|| {
            ClientError(format!(
                "address {addr:?}: only http:// and https:// are supported"
            ))
        })?;
    if rest.is_empty() || rest.contains('/') || rest.starts_with(':') {
        return Err(ClientError(format!(
            "address {addr:?} is not of the form http(s)://host:port"
        )));
    }
    Ok(with_scheme)
}

fn resolve_target(base: &str) -> Result<(String, std::net::SocketAddr), ClientError> {
    use std::net::ToSocketAddrs;
    let host_port = base.split("://").nth(1).unwrap_or(base).to_string();
    let with_port = if host_port.contains(':') {
        host_port.clone()
    } else {
        format!("{host_port}:443")
    };
    let sock = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ClientError(format!("cannot resolve {host_port}")))?;
    Ok((host_port, sock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new(Some("s3cr3t".into()));
        assert_eq!(format!("{s:?}"), "<redacted>");
        let mut c = Connection::new(Product::Nomad);
        c.token = s;
        assert!(!format!("{c:?}").contains("s3cr3t"));
    }

    #[test]
    fn first_line_cuts_at_a_character_and_reads_any_bytes() {
        let two = format!("{}é tail\nsecond", "a".repeat(199));
        assert_eq!(first_line(two.as_bytes()), format!("{}é", "a".repeat(199)));
        let bad = [vec![b'x'; 199], vec![0xc3], vec![b'y'; 10]].concat();
        assert_eq!(first_line(&bad).chars().count(), 200);
        assert_eq!(first_line(b"  \x1b[31mred\r\n"), "\u{FFFD}[31mred");
        assert_eq!(first_line(b""), "");
    }

    #[test]
    fn addresses_are_normalised_or_refused() {
        assert_eq!(
            normalise_addr("127.0.0.2:8500").unwrap(),
            "http://127.0.0.2:8500"
        );
        assert_eq!(
            normalise_addr("https://n1:4646/").unwrap(),
            "https://n1:4646"
        );
        assert!(normalise_addr("ftp://x").is_err());
        assert!(normalise_addr("http://").is_err());
        assert!(normalise_addr("http://h:1/v1").is_err());
    }
}
