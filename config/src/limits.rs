//! Process limits: how much one node accepts. A node may lower them; none affects what the
//! ledger decides.

use std::time::Duration;

/// Largest request body. A task with every text field at its cap is about 20 KB of UTF-8
/// Chinese (3 bytes per character); 64 KiB leaves room for JSON overhead.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;
/// Requests per second the public routes (一公开) answer on one node, for every caller
/// together: they need no token, so one bucket bounds what the public can cost a node.
pub const PUBLIC_REQUESTS_PER_SECOND: u32 = 200;
/// Of those, what one client (address, or IPv6 /64) may use: a page view is two or three
/// requests, so a person searching never meets it, while one scraper cannot take the node's
/// whole budget.
pub const PUBLIC_REQUESTS_PER_CLIENT_PER_SECOND: u32 = 20;
/// Clients whose public budgets a node tracks at once; idle ones are forgotten to make room,
/// and a new client is refused while all of them are active.
pub const PUBLIC_CLIENTS_TRACKED_MAX: usize = 4_096;
/// Every API request must finish within this; a write that times out may still commit, which
/// is why writes carry idempotency keys.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// What a request that moves a whole entity directory (a province's is gigabytes: an import,
/// a member's copy, a download) or draws over one has instead of `REQUEST_TIMEOUT`.
pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The longest a transfer may go without a byte arriving before it is given up.
pub const TRANSFER_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Concurrent HTTP requests served by one node; further ones wait in the accept queue.
pub const CONCURRENT_REQUESTS_MAX: usize = 4_096;
/// Commands waiting for the group-commit batcher; a full queue answers 503 (overloaded).
pub const PROPOSAL_QUEUE_DEPTH: usize = 8_192;
/// Log entries a node may lag its leader's commit and still say it is ready: a load balancer
/// then sends reads to nodes at most about this far behind (an entry is a batch of commands;
/// at the measured write rates, well under a second).
pub const READY_LAG_ENTRIES_MAX: u64 = 1_000;
/// Raft entries proposed but not yet committed at once: the leader fsyncs batch k+1 while
/// batch k replicates.
pub const BATCHES_IN_FLIGHT_MAX: usize = 4;
/// How long a write waits for a leader to be known during an election before giving up.
pub const LEADER_WAIT: Duration = Duration::from_secs(5);
/// A write is relayed to the leader at most this many times (the leader may change on the way).
pub const RELAY_HOPS_MAX: u32 = 2;
/// Tasks in one page of a list.
pub const LIST_PAGE_MAX: usize = 500;
pub const LIST_PAGE_DEFAULT: usize = 50;
/// Members of one group: 3 is the design; 5 is allowed for a larger centre.
pub const GROUP_MEMBERS_MAX: usize = 7;
/// Async worker threads of one node.
pub const WORKER_THREADS_MAX: usize = 64;
/// Connect timeout for peer RPC and relaying on loopback.
pub const PEER_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

const _: () = assert!(LIST_PAGE_DEFAULT <= LIST_PAGE_MAX);

/// A client must send a request's whole header block within this, counted from when the server
/// starts waiting for it (so an idle keep-alive connection is closed after it too). Without it,
/// a slow-loris client holds a connection forever by sending a header byte now and then.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Our own HTTP clients (relaying, peer RPC, federation) drop pooled connections idle for this
/// long, well before the server closes them, so a request never races the server's close.
pub const CLIENT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// A TLS client must finish its handshake within this.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Open TCP connections one node serves (HTTP keep-alive and WebSocket); a connection beyond
/// it is closed at once.
pub const OPEN_CONNECTIONS_MAX: usize = 16_384;
/// On shutdown, connections get this long to finish the request they are serving.
pub const SHUTDOWN_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

const _: () = assert!(CLIENT_POOL_IDLE_TIMEOUT.as_millis() < HEADER_READ_TIMEOUT.as_millis());
/// Messages, status reports and status queries one linked group may send a node per second (one
/// second deep): far above a province's forwards (docs/benchmarks.md measures hundreds a
/// second), and a bound on what a hostile group can make this group commit.
pub const PEER_ITEMS_PER_SECOND: u32 = 5_000;

/// Console connections per node (or gateway), and per user unless the users file says otherwise
/// (`consoles_max`): a console costs about 10–14 KiB of memory (docs/benchmarks.md).
pub const CONSOLES_MAX: usize = 10_000;
pub const CONSOLES_PER_USER_MAX: usize = 256;
const _: () = assert!(CONSOLES_PER_USER_MAX <= CONSOLES_MAX);
