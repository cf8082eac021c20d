//! `dax-probe serve`: the metrics of [`crate::output::metrics`] over HTTP, for
//! Prometheus to scrape at `/metrics`. One small HTTP/1.1 exchange per
//! connection (GET, then close) is all a scraper needs.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

use crate::{
    event::Event,
    output::metrics::{self, Metrics},
    stream::{Begin, Sink, Summary},
    trace::Reader,
};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9478";

/// What the server shows; the live source or a replay fills it.
pub type Shared = Arc<Mutex<Metrics>>;

/// Events the live sink collects before it takes the lock to apply them.
const BATCH: usize = 4096;

/// The live sink: events reach the served metrics in batches, one lock per
/// batch rather than per event, and at least with every lost-count update
/// (once a second, and at the end), so a scrape lags by a second at most.
pub struct LiveSink {
    shared: Shared,
    pending: Vec<Event>,
}

impl LiveSink {
    pub fn new(shared: Shared) -> LiveSink {
        LiveSink { shared, pending: Vec::with_capacity(BATCH) }
    }

    fn apply(&mut self) -> Result<()> {
        let mut served = lock(&self.shared);
        self.pending.drain(..).try_for_each(|event| served.push(&event))
    }
}

impl Sink for LiveSink {
    fn begin(&mut self, begin: &Begin) {
        lock(&self.shared).begin(begin);
    }

    fn push(&mut self, event: &Event) -> Result<()> {
        self.pending.push(*event);
        if self.pending.len() >= BATCH {
            self.apply()?;
        }
        Ok(())
    }

    fn lost(&mut self, total: u64) {
        // The batch only ever grows by pushes, which cannot fail here.
        let _ = self.apply();
        lock(&self.shared).lost(total);
    }

    fn finish(&mut self, summary: &Summary) -> Result<()> {
        self.apply()?;
        lock(&self.shared).finish(summary)
    }
}

/// A poisoned lock only means a scrape panicked; the counts are still whole.
pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Metrics> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Streams `trace` into the served metrics at `speed` times its recorded
/// pace (0: at once); returns its event count. It starts at the first
/// scrape: Prometheus only sees a counter rise between two of its samples,
/// so a replay that ran ahead of the scraper would show totals but no rates.
pub async fn replay(mut trace: Reader, speed: f64, shared: &Shared, first_scrape: &Notify) -> Result<u64> {
    lock(shared).begin(trace.begin());
    first_scrape.notified().await;
    let started = tokio::time::Instant::now();
    let mut next = trace.next_event()?;
    let first_ns = next.map_or(0, |event| event.time_ns);
    let due = |event: &Event| {
        let offset_ns = event.time_ns.saturating_sub(first_ns) as f64;
        started + Duration::from_secs_f64(if speed > 0.0 { offset_ns / speed / 1e9 } else { 0.0 })
    };
    while let Some(event) = next {
        tokio::time::sleep_until(due(&event)).await;
        // Everything due by now goes in under one lock.
        let now = tokio::time::Instant::now();
        let mut served = lock(shared);
        next = Some(event);
        while let Some(event) = next.filter(|event| due(event) <= now) {
            served.push(&event)?;
            next = trace.next_event()?;
        }
    }
    let summary = trace.summary()?;
    lock(shared).finish(&summary)?;
    Ok(summary.events)
}

/// Binds `addr`; the listener then serves with [`serve`].
pub async fn bind(addr: &str) -> Result<TcpListener> {
    let addr: SocketAddr = addr
        .parse()
        .with_context(|| format!("--listen {addr}: not an address: give IP:PORT, e.g. {DEFAULT_LISTEN}"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}: pick a free address with --listen IP:PORT"))
}

/// Connections answered at once; one more is told to come back (503).
pub const MAX_CONNECTIONS: usize = 32;

/// The most one exchange may take, from accept to close: a client that
/// sends nothing, or reads nothing, is dropped after it.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Answers requests for as long as it runs: a failed accept (out of file
/// descriptors, a connection reset before it was taken) or a bad request
/// ends that connection, never the server. `scraped` is notified after each
/// answer to `/metrics`.
pub async fn serve(listener: TcpListener, shared: Shared, scraped: Arc<Notify>) -> Result<()> {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                eprintln!("dax-probe: serve: cannot accept a connection: {error}");
                // Out of descriptors, say: give the open exchanges time to end.
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(async move {
                let busy =
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
                let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, stream.write_all(busy.as_bytes())).await;
            });
            continue;
        };
        let (shared, scraped) = (shared.clone(), scraped.clone());
        tokio::spawn(async move {
            // A scraper that hangs up early, or stalls, is its own business.
            if let Ok(Ok(true)) = tokio::time::timeout(EXCHANGE_TIMEOUT, answer(stream, &shared)).await {
                scraped.notify_one();
            }
            drop(slot);
        });
    }
}

/// Answers one request; true if it was a scrape of `/metrics`.
async fn answer(mut stream: TcpStream, shared: &Shared) -> std::io::Result<bool> {
    let mut request = Vec::new();
    let mut buffer = [0; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
        let n = stream.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..n]);
    }
    let request = String::from_utf8_lossy(&request);
    let mut words = request.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let route = (method, path.split('?').next().unwrap_or(""));
    let scrape = route == ("GET", "/metrics");
    let (status, content_type, body) = match route {
        ("GET", "/metrics") => ("200 OK", metrics::CONTENT_TYPE, lock(shared).encode()),
        ("GET", "/") => ("200 OK", "text/plain", "dax-probe: metrics are at /metrics\n".to_owned()),
        ("GET", _) => ("404 Not Found", "text/plain", "not found: metrics are at /metrics\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "only GET\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    Ok(scrape)
}
