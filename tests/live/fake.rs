//! A small fake HTTP server for tests: canned answers per path, every request's method, path
//! and headers recorded. It serves HTTP/1.1 with `Connection: close` (one request per
//! connection), runs on its own thread and runtime (so synchronous tests that run the rehearse
//! binary can use it), and stops when dropped or after `LIFETIME` at the latest.
//!
//! ```ignore
//! let f = FakeServer::start("127.0.0.1", vec![("/v1/status/leader", Reply::json(200, "\"\""))]);
//! // … f.url() …, then f.requests()
//! ```

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a fake server lives at most (a test that forgets to drop it cannot hang the run).
const LIFETIME: Duration = Duration::from_secs(120);
/// Largest request head read (the tests' requests are small).
const HEAD_MAX_BYTES: usize = 64 * 1024;
/// An endless body stops after this many bytes even if the client keeps reading.
const ENDLESS_MAX_BYTES: u64 = 8 << 30;

/// The body of a canned answer.
#[derive(Clone, Debug)]
pub enum Body {
    /// These bytes, with a `Content-Length`.
    Bytes(Vec<u8>),
    /// Zeros until the client stops reading (no `Content-Length`; bounded by
    /// `ENDLESS_MAX_BYTES` and the server's lifetime).
    Endless,
}

/// A canned answer.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Body,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Bytes(body.as_bytes().to_vec()),
        }
    }

    /// An answer with raw bytes.
    pub fn bytes(status: u16, body: Vec<u8>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Body::Bytes(body),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Reply {
        Reply {
            status,
            headers: vec![("Location".into(), location.into())],
            body: Body::Bytes(Vec::new()),
        }
    }

    /// A 200 whose body never ends.
    pub fn endless() -> Reply {
        Reply {
            status: 200,
            headers: Vec::new(),
            body: Body::Endless,
        }
    }
}

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, `PUT`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// The value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Answers per path: the replies are served in order, the last one repeats. Paths are matched
/// without the query string; an unknown path gets Go's `404 page not found`.
type Routes = BTreeMap<String, Vec<Reply>>;

struct Shared {
    routes: Mutex<(Routes, BTreeMap<String, usize>)>,
    requests: Mutex<Vec<Request>>,
    stop: AtomicBool,
}

/// A running fake server.
pub struct FakeServer {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a server on `ip` (e.g. `127.0.0.1`, any free port) with these answers.
    pub fn start(ip: &str, routes: Vec<(&str, Reply)>) -> FakeServer {
        let mut table = Routes::new();
        for (p, r) in routes {
            table.entry(p.to_string()).or_default().push(r);
        }
        let shared = Arc::new(Shared {
            routes: Mutex::new((table, BTreeMap::new())),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let listener = std::net::TcpListener::bind((ip, 0)).expect("bind the fake server");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("local address");
        let s = shared.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("fake server runtime");
            rt.block_on(serve(listener, s));
        });
        FakeServer {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// `http://ip:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("lock").clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, shared: Arc<Shared>) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
    let started = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) && started.elapsed() < LIFETIME {
        // Poll the stop flag every 50 ms.
        let accepted = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await;
        if let Ok(Ok((sock, _))) = accepted {
            let s = shared.clone();
            tokio::spawn(async move {
                let _ = answer(sock, s).await;
            });
        }
    }
}

async fn read_head(sock: &mut tokio::net::TcpStream) -> std::io::Result<(Vec<u8>, usize)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok((buf, end + 4));
        }
        if buf.len() > HEAD_MAX_BYTES {
            return Err(std::io::Error::other("request head too large"));
        }
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("closed before the head ended"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn parse_head(head: &str) -> Request {
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Request {
        method,
        path,
        headers,
    }
}

fn pick(shared: &Shared, path: &str) -> Reply {
    let key = path.split('?').next().unwrap_or(path);
    let mut g = shared.routes.lock().expect("lock");
    let (routes, served) = &mut *g;
    let Some(list) = routes.get(key) else {
        return Reply::bytes(404, b"404 page not found\n".to_vec());
    };
    let n = served.entry(key.to_string()).or_insert(0);
    let r = list[(*n).min(list.len() - 1)].clone();
    *n += 1;
    r
}

async fn answer(mut sock: tokio::net::TcpStream, shared: Arc<Shared>) -> std::io::Result<()> {
    let (buf, head_len) = read_head(&mut sock).await?;
    let req = parse_head(&String::from_utf8_lossy(&buf[..head_len]));
    // Read (and drop) a request body so the client is not cut off while sending it.
    let body_len: usize = req
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut left = body_len.saturating_sub(buf.len() - head_len);
    let mut sink = [0u8; 4096];
    while left > 0 {
        let n = sock.read(&mut sink).await?;
        if n == 0 {
            break;
        }
        left = left.saturating_sub(n);
    }
    let reply = pick(&shared, &req.path);
    shared.requests.lock().expect("lock").push(req);
    let mut head = format!("HTTP/1.1 {} Fake\r\nConnection: close\r\n", reply.status);
    for (n, v) in &reply.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    match reply.body {
        Body::Bytes(b) => {
            head.push_str(&format!("Content-Length: {}\r\n\r\n", b.len()));
            sock.write_all(head.as_bytes()).await?;
            sock.write_all(&b).await?;
        }
        Body::Endless => {
            head.push_str("\r\n");
            sock.write_all(head.as_bytes()).await?;
            let block = vec![b'0'; 64 * 1024];
            let mut sent = 0u64;
            while sent < ENDLESS_MAX_BYTES && !shared.stop.load(Ordering::SeqCst) {
                sock.write_all(&block).await?;
                sent += block.len() as u64;
            }
        }
    }
    sock.shutdown().await
}
