//! A fault-injecting TCP proxy for validator-to-validator traffic. Every ordered pair of
//! validators (i dials j) gets its own proxy on 127.0.0.1, and node i's config names that proxy
//! as node j's p2p address, so cutting the proxies of a pair cuts every connection between the
//! two validators, in both directions, without touching anything else.

use std::{
    io::{Read, Write},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// Bytes copied per read.
const COPY_BUFFER_BYTES: usize = 64 * 1024;
/// How long the proxy tries to reach the target before dropping the incoming connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The shared state of one link.
#[derive(Default)]
struct LinkState {
    /// While set, connections are refused and none are open.
    cut: AtomicBool,
    /// Set when the proxy is dropped.
    closing: AtomicBool,
    /// Both ends of every open connection, so that a cut can close them, with a flag the
    /// pumps set when the connection has ended.
    open: Mutex<Vec<(Arc<AtomicBool>, TcpStream, TcpStream)>>,
    /// Connections accepted and forwarded.
    forwarded: AtomicU64,
    /// Connections refused because the link was cut.
    refused: AtomicU64,
}

/// One direction of one validator pair: listens on `listen`, forwards to `target`.
pub struct Proxy {
    listen: SocketAddr,
    state: Arc<LinkState>,
    acceptor: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Starts a proxy on a fresh 127.0.0.1 port that forwards to `target`. The port stays bound
    /// for the proxy's whole life, so taking it from the ephemeral range is safe.
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy binds");
        let listen = listener.local_addr().expect("proxy address");
        let state = Arc::new(LinkState::default());
        let accept_state = state.clone();
        let acceptor = std::thread::spawn(move || accept(listener, target, accept_state));
        Self {
            listen,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// Where the proxy listens.
    pub fn addr(&self) -> SocketAddr {
        self.listen
    }

    /// Cuts the link: closes every open connection and refuses new ones until [Proxy::heal].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        close_all(&self.state);
    }

    /// Lets connections through again.
    pub fn heal(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    /// (connections forwarded, connections refused while cut) so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.state.forwarded.load(Ordering::Relaxed),
            self.state.refused.load(Ordering::Relaxed),
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.closing.store(true, Ordering::SeqCst);
        close_all(&self.state);
        // Wake the acceptor so that it sees `closing`.
        let _ = TcpStream::connect_timeout(&self.listen, CONNECT_TIMEOUT);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn close_all(state: &LinkState) {
    for (_, a, b) in state.open.lock().expect("open").drain(..) {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
}

fn accept(listener: TcpListener, target: SocketAddr, state: Arc<LinkState>) {
    for incoming in listener.incoming() {
        if state.closing.load(Ordering::SeqCst) {
            return;
        }
        let Ok(incoming) = incoming else { continue };
        if state.cut.load(Ordering::SeqCst) {
            state.refused.fetch_add(1, Ordering::Relaxed);
            let _ = incoming.shutdown(Shutdown::Both);
            continue;
        }
        let Ok(outgoing) = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT) else {
            // The target is down (killed): the dialer sees the connection close, as it would.
            let _ = incoming.shutdown(Shutdown::Both);
            continue;
        };
        let _ = incoming.set_nodelay(true);
        let _ = outgoing.set_nodelay(true);
        let (Ok(in2), Ok(out2), Ok(in3), Ok(out3)) = (
            incoming.try_clone(),
            outgoing.try_clone(),
            incoming.try_clone(),
            outgoing.try_clone(),
        ) else {
            continue;
        };
        let ended = Arc::new(AtomicBool::new(false));
        {
            let mut open = state.open.lock().expect("open");
            // A cut may have happened since the check above: it must win.
            if state.cut.load(Ordering::SeqCst) {
                state.refused.fetch_add(1, Ordering::Relaxed);
                let _ = incoming.shutdown(Shutdown::Both);
                let _ = outgoing.shutdown(Shutdown::Both);
                continue;
            }
            // Forget connections that have ended, so the list stays small.
            open.retain(|(ended, _, _)| !ended.load(Ordering::SeqCst));
            open.push((ended.clone(), in3, out3));
        }
        state.forwarded.fetch_add(1, Ordering::Relaxed);
        let ended2 = ended.clone();
        std::thread::spawn(move || pump(incoming, outgoing, &ended));
        std::thread::spawn(move || pump(out2, in2, &ended2));
    }
}

/// Copies `from` to `to` until either side closes, then closes both and sets `ended`.
fn pump(mut from: TcpStream, mut to: TcpStream, ended: &AtomicBool) {
    let mut buf = vec![0u8; COPY_BUFFER_BYTES];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    ended.store(true, Ordering::SeqCst);
}

/// A proxy for every ordered pair of `n` validators.
pub struct Links {
    n: usize,
    /// `proxies[i * n + j]`: node i's way to node j (`None` on the diagonal).
    proxies: Vec<Option<Proxy>>,
}

impl Links {
    /// Proxies towards the validators' real p2p addresses `targets`.
    pub fn start(targets: &[SocketAddr]) -> Self {
        let n = targets.len();
        let proxies = (0..n * n)
            .map(|k| (k / n != k % n).then(|| Proxy::start(targets[k % n])))
            .collect();
        Self { n, proxies }
    }

    /// The address node `from` dials to reach node `to`.
    pub fn addr(&self, from: usize, to: usize) -> SocketAddr {
        self.proxy(from, to).addr()
    }

    fn proxy(&self, from: usize, to: usize) -> &Proxy {
        self.proxies[from * self.n + to]
            .as_ref()
            .expect("no proxy from a node to itself")
    }

    /// Cuts every connection between `a` and `b`, both ways.
    pub fn cut(&self, a: usize, b: usize) {
        self.proxy(a, b).cut();
        self.proxy(b, a).cut();
    }

    /// Cuts every link between the two sides.
    pub fn partition(&self, side_a: &[usize], side_b: &[usize]) {
        for &a in side_a {
            for &b in side_b {
                self.cut(a, b);
            }
        }
    }

    /// Heals every link.
    pub fn heal_all(&self) {
        for p in self.proxies.iter().flatten() {
            p.heal();
        }
    }

    /// (connections forwarded, connections refused while cut), summed over every link.
    pub fn counts(&self) -> (u64, u64) {
        self.proxies
            .iter()
            .flatten()
            .map(Proxy::counts)
            .fold((0, 0), |(f, r), (a, b)| (f + a, r + b))
    }
}
