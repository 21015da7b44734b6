//! A TCP proxy on loopback that injects network faults into one link: pass, cut (every open
//! connection closed, new ones dropped as soon as accepted), blackhole one direction (bytes
//! read and thrown away, so the sender sees a silent peer), and added delay.
//!
//! Nodes are given the proxy's address instead of the real one, so the faults hit exactly the
//! links a test chooses. The proxy ends TCP on both sides, so a one-way blackhole is a true
//! one-way fault at the stream level. It runs inside the test process.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes copied per read.
const COPY_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Default)]
struct Faults {
    cut: AtomicBool,
    /// Client → upstream bytes are dropped.
    blackhole_requests: AtomicBool,
    /// Upstream → client bytes are dropped.
    blackhole_responses: AtomicBool,
    delay_ms: AtomicU64,
}

/// One proxied link. Dropping it stops accepting; open connections end with the test.
pub struct FaultProxy {
    pub addr: String,
    faults: Arc<Faults>,
    /// Bumped on every cut, so open connections close.
    cuts: watch::Sender<u64>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl FaultProxy {
    /// Listens on `listen` (a loopback address) and forwards to `upstream`.
    pub async fn start(listen: &str, upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind(listen).await.expect("binding the proxy");
        let faults = Arc::new(Faults::default());
        let (cuts, _) = watch::channel(0u64);
        let upstream = upstream.to_owned();
        let accept_faults = faults.clone();
        let accept_cuts = cuts.clone();
        let accept_task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                if accept_faults.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (faults, cut_signal, upstream) = (accept_faults.clone(), accept_cuts.subscribe(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else { return };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    relay(client, server, faults, cut_signal).await;
                });
            }
        });
        FaultProxy { addr: listen.to_owned(), faults, cuts, accept_task }
    }

    /// Cuts the link: open connections close, new ones are dropped.
    pub fn cut(&self) {
        self.faults.cut.store(true, Ordering::SeqCst);
        self.cuts.send_modify(|generation| *generation += 1);
    }

    /// Requests pass, answers vanish: the caller sees a silent peer after its request arrived.
    pub fn blackhole_responses(&self) {
        self.faults.blackhole_responses.store(true, Ordering::SeqCst);
    }

    /// Requests vanish before they reach the upstream.
    pub fn blackhole_requests(&self) {
        self.faults.blackhole_requests.store(true, Ordering::SeqCst);
    }

    pub fn delay(&self, delay: Duration) {
        self.faults.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Back to a healthy link. Connections that saw a blackhole are closed, as a real network
    /// fault would leave them broken mid-stream.
    pub fn heal(&self) {
        let was_blackholed = self.faults.blackhole_requests.swap(false, Ordering::SeqCst)
            | self.faults.blackhole_responses.swap(false, Ordering::SeqCst);
        if was_blackholed {
            self.cuts.send_modify(|generation| *generation += 1);
        }
        self.faults.cut.store(false, Ordering::SeqCst);
        self.faults.delay_ms.store(0, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, server: TcpStream, faults: Arc<Faults>, mut cut_signal: watch::Receiver<u64>) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let requests = pump(client_read, server_write, faults.clone(), Direction::Requests);
    let responses = pump(server_read, client_write, faults, Direction::Responses);
    tokio::select! {
        _ = requests => {}
        _ = responses => {}
        _ = cut_signal.changed() => {}
    }
}

#[derive(Clone, Copy)]
enum Direction {
    Requests,
    Responses,
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    faults: Arc<Faults>,
    direction: Direction,
) {
    let mut buffer = vec![0u8; COPY_BUFFER_BYTES];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let delay = faults.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let dropped = match direction {
            Direction::Requests => faults.blackhole_requests.load(Ordering::SeqCst),
            Direction::Responses => faults.blackhole_responses.load(Ordering::SeqCst),
        };
        if dropped {
            continue;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
