//! `GET /ws`: the console WebSocket, served from a `ConsoleBackend` (a node, `node_backend`, or
//! a gateway). The messages are `api::console`'s.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::SinkExt;
use ledger::{Actor, BureauCode, Regions, Role};
use tokio::sync::mpsc;

use super::hub::{Attachment, EntryEvents, EventHub, LiveMessage, Subscription, WatchKey};
use crate::api::console::{ClientMessage, ServerMessage, Welcome};
use crate::api::ApiError;
use crate::presence::Presence;

/// A frame larger than this from a client is refused: clients only send hellos and pings.
const CLIENT_MESSAGE_BYTES_MAX: usize = 4 * 1024;
/// The hello must arrive this soon after the upgrade.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Heartbeat interval; a client silent for `CLIENT_SILENCE_MAX` is considered gone.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
const CLIENT_SILENCE_MAX: Duration = Duration::from_secs(20);
/// A send that cannot complete in this time means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Live connection counts, shared by all handlers of a node.
#[derive(Default)]
pub struct ConnectionCounts {
    total: AtomicUsize,
    by_user: std::sync::Mutex<BTreeMap<String, usize>>,
}

/// Releases a connection's slots when the connection ends, however it ends.
struct ConnectionSlot {
    counts: Arc<ConnectionCounts>,
    user: String,
}

impl ConnectionCounts {
    fn try_acquire(self: &Arc<Self>, user: &str, user_max: usize) -> Option<ConnectionSlot> {
        self.try_acquire_within(user, config::limits::CONSOLES_MAX, user_max)
    }

    fn try_acquire_within(self: &Arc<Self>, user: &str, node_max: usize, user_max: usize) -> Option<ConnectionSlot> {
        let mut by_user = self.by_user.lock().expect("the counts lock is never poisoned");
        let mine = by_user.entry(user.to_owned()).or_default();
        if *mine >= user_max || self.total.load(Ordering::Relaxed) >= node_max {
            if *mine == 0 {
                by_user.remove(user);
            }
            return None;
        }
        *mine += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(ConnectionSlot { counts: self.clone(), user: user.to_owned() })
    }

    pub fn total(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut by_user = self.counts.by_user.lock().expect("the counts lock is never poisoned");
        if let Some(count) = by_user.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                by_user.remove(&self.user);
            }
        }
        self.counts.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where console connections are served from: a node (its own ledger and hub) or a gateway
/// (`crate::gateway`: a hub fed from the group's Redis Stream, snapshots fetched from a node).
/// The protocol is the same.
pub trait ConsoleBackend: Send + Sync + 'static {
    /// The user of a token (a gateway asks a node of the group about a session).
    fn user_for_token(
        &self,
        token: &str,
    ) -> impl std::future::Future<Output = Result<crate::auth::User, ApiError>> + Send;
    /// Moves whenever a person's account changes (a node's accounts table; on a gateway, the
    /// group's mark of them): a console open with a session is checked again at once, so a
    /// disabled account's consoles close within moments rather than at the next heartbeat.
    fn accounts_changed(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }
    fn connections(&self) -> &Arc<ConnectionCounts>;
    fn hub(&self) -> &EventHub;
    fn push_latency(&self) -> &prometheus::Histogram;
    /// Who serves, as the welcome message says it (its `node_id` or `gateway`).
    fn served_by(&self, welcome: &mut Welcome);
    /// Where connected users are recorded as online, when Redis is configured.
    fn presence(&self) -> Option<&Arc<Presence>>;
    /// The region table scopes are checked against: the group's on a node, the compiled one on
    /// a gateway (which holds none).
    fn regions(&self) -> Arc<Regions>;
    /// The snapshot message for `watcher` and the log index it reflects; `token` is the
    /// console's own, for a backend that fetches the snapshot on its behalf.
    fn snapshot(
        &self,
        watcher: &Watcher,
        token: &str,
    ) -> impl std::future::Future<Output = Result<(u64, String), ApiError>> + Send;
}

/// Upgrades to a console connection served from `backend`.
pub fn upgrade_with<B: ConsoleBackend>(backend: B, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .max_message_size(CLIENT_MESSAGE_BYTES_MAX)
        .max_frame_size(CLIENT_MESSAGE_BYTES_MAX)
        .read_buffer_size(4 * 1024)
        // Frames accumulate until flushed (or 16 KiB): a backlog goes out in few writes.
        .write_buffer_size(16 * 1024)
        .on_upgrade(move |socket| async move {
            if let Err(reason) = serve(backend, socket).await {
                tracing::debug!(%reason, "console connection ended");
            }
        })
}

/// Who is connected and what they watch.
pub struct Watcher {
    pub actor: Actor,
    pub scope: BureauCode,
}

impl Watcher {
    pub fn key(&self) -> WatchKey {
        match self.actor.role {
            Role::Operator => match self.actor.person() {
                Some((person, _)) => WatchKey::Member(self.actor.bureau, person.0),
                None => WatchKey::AssignedTo(self.actor.bureau),
            },
            // Only tasks naming them: the joint inspections of their team.
            Role::Department => WatchKey::Named(self.actor.person().map_or(0, |(person, _)| person.0)),
            Role::Command | Role::Leadership | Role::System | Role::Peer | Role::Source => {
                WatchKey::Touching(self.scope)
            }
        }
    }
}

/// Messages written to a connection before it is flushed, when it has a backlog.
const FEED_BEFORE_FLUSH_MAX: usize = 64;

enum BatchEnd {
    Continue,
    /// The hub cut this connection off (it fell too far behind) or is shutting down.
    Closed,
}

/// Feeds `first` and every message already queued behind it (up to `FEED_BEFORE_FLUSH_MAX`),
/// then flushes. Not timed itself: the caller bounds the whole batch.
async fn forward_batch(
    socket: &mut WebSocket,
    subscription: &mut Subscription,
    last_index: &mut u64,
    first: Option<Arc<LiveMessage>>,
    push_latency: &prometheus::Histogram,
) -> Result<BatchEnd, String> {
    let mut next = first;
    let mut fed = 0usize;
    let mut published = Vec::new();
    let mut end = BatchEnd::Continue;
    loop {
        match next.take() {
            Some(message) => {
                if message.index > *last_index {
                    socket.feed(Message::Text(message.text.clone())).await.map_err(|e| format!("send failed: {e}"))?;
                    *last_index = message.index;
                    published.push(message.published);
                    fed += 1;
                }
            }
            None => {
                end = BatchEnd::Closed;
                break;
            }
        }
        if fed >= FEED_BEFORE_FLUSH_MAX {
            break;
        }
        match subscription.messages.try_recv() {
            Ok(message) => next = Some(message),
            Err(mpsc::error::TryRecvError::Empty) => break,
            Err(mpsc::error::TryRecvError::Disconnected) => next = None,
        }
    }
    if fed > 0 {
        socket.flush().await.map_err(|e| format!("send failed: {e}"))?;
        for at in published {
            push_latency.observe(at.elapsed().as_secs_f64());
        }
    }
    Ok(end)
}

/// A console's user recorded as online; dropping it records that the connection ended.
struct OnlineMark {
    presence: Arc<Presence>,
    bureau: BureauCode,
    user: String,
}

impl Drop for OnlineMark {
    fn drop(&mut self) {
        self.presence.leave(self.bureau, &self.user);
    }
}

/// Sends the messages of `replay` entries above `last_index` that concern `key`; returns how
/// many were sent.
async fn replay_after(
    socket: &mut WebSocket,
    key: WatchKey,
    replay: Vec<Arc<EntryEvents>>,
    last_index: &mut u64,
) -> Result<usize, String> {
    let mut replayed = 0usize;
    for events in replay {
        if events.index <= *last_index {
            continue;
        }
        if let Some(message) = key.message(&events) {
            send(socket, message).await?;
            replayed += 1;
        }
        *last_index = events.index;
    }
    Ok(replayed)
}

fn resync(reason: &str) -> String {
    ServerMessage::<()>::Resync { reason: reason.to_owned() }.to_text()
}

async fn send(socket: &mut WebSocket, text: String) -> Result<(), String> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(Utf8Bytes::from(text)))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("send failed: {error}")),
        Err(_) => Err("the client stopped reading".into()),
    }
}

async fn refuse(socket: &mut WebSocket, error: ApiError) -> Result<(), String> {
    let (code, message) = error.code_and_message();
    let refusal: ServerMessage<()> = ServerMessage::Error { code: code.to_owned(), message: message.to_owned() };
    let _ = send(socket, refusal.to_text()).await;
    let _ = socket.send(Message::Close(None)).await;
    Err(format!("refused: {code}"))
}

/// What a console's hello says.
pub(crate) struct Hello {
    token: String,
    scope: Option<String>,
    since: Option<u64>,
}

/// Decodes a console's first message; the token and scope are checked by the caller.
pub(crate) fn parse_hello(text: &str) -> Result<Hello, ApiError> {
    let message: ClientMessage =
        serde_json::from_str(text).map_err(|e| ApiError::Invalid { code: "invalid_json", message: e.to_string() })?;
    match message {
        ClientMessage::Hello { token, scope, since } => Ok(Hello { token, scope, since }),
        ClientMessage::Ping => Err(ApiError::invalid("the first message must be a hello")),
    }
}

/// What a console said in its hello, checked.
struct Greeting {
    watcher: Watcher,
    since: Option<u64>,
    token: String,
    consoles_max: usize,
}

/// Reads the hello and checks the token and scope.
async fn greet<B: ConsoleBackend>(backend: &B, socket: &mut WebSocket) -> Result<Greeting, ApiError> {
    let frame = tokio::time::timeout(HELLO_TIMEOUT, socket.recv())
        .await
        .map_err(|_| ApiError::invalid("no hello within 10 s"))?
        .ok_or_else(|| ApiError::invalid("closed before the hello"))?
        .map_err(|e| ApiError::invalid(format!("bad frame: {e}")))?;
    let Message::Text(text) = frame else { return Err(ApiError::invalid("the hello is a JSON text frame")) };
    let hello = parse_hello(&text)?;
    let user = backend.user_for_token(&hello.token).await?;
    // A hello costs a request of the user's budget, like the snapshot it brings.
    user.spend_request()?;
    let watcher = watcher_for(&backend.regions(), user.actor, hello.scope.as_deref())?;
    Ok(Greeting { watcher, since: hello.since, token: hello.token, consoles_max: user.consoles_max })
}

/// The watcher of `actor` on `scope` (default: its own bureau), if its role may watch it.
pub fn watcher_for(regions: &Regions, actor: Actor, scope: Option<&str>) -> Result<Watcher, ApiError> {
    let scope = match scope {
        Some(text) => crate::api::parse_bureau(regions, "scope", text)?,
        None => actor.bureau,
    };
    let allowed = match actor.role {
        Role::Operator | Role::Department => scope == actor.bureau,
        Role::Command | Role::Leadership | Role::System | Role::Peer | Role::Source => {
            regions.is_within(scope, actor.bureau)
        }
    };
    if !allowed {
        return Err(ApiError::Forbidden(format!(
            "a {} user of bureau {} cannot watch bureau {scope}",
            actor.role, actor.bureau
        )));
    }
    Ok(Watcher { actor, scope })
}

/// Whether the console's token still names its watcher. Only a refusal of the token ends it: a
/// gateway that cannot reach a node for the moment (an election, a restart) keeps its consoles.
async fn still_signed_in<B: ConsoleBackend>(backend: &B, token: &str, watcher: &Watcher) -> bool {
    match backend.user_for_token(token).await {
        Ok(user) => user.actor == watcher.actor,
        Err(ApiError::Unauthorized(_)) => false,
        Err(_) => true,
    }
}

async fn serve<B: ConsoleBackend>(backend: B, mut socket: WebSocket) -> Result<(), String> {
    let Greeting { watcher, since, token, consoles_max } = match greet(&backend, &mut socket).await {
        Ok(greeting) => greeting,
        Err(error) => return refuse(&mut socket, error).await,
    };
    let Some(_slot) = backend.connections().try_acquire(&watcher.actor.user, consoles_max) else {
        return refuse(
            &mut socket,
            ApiError::Unavailable { code: "too_many_connections", message: "console connection limit reached".into() },
        )
        .await;
    };
    let mut welcome = Welcome {
        user: watcher.actor.user.clone(),
        role: watcher.actor.role.as_str().to_owned(),
        bureau: watcher.actor.bureau.to_string(),
        scope: watcher.scope.to_string(),
        scope_name: backend.regions().name(watcher.scope).map(str::to_owned),
        node_id: None,
        gateway: None,
    };
    backend.served_by(&mut welcome);
    send(&mut socket, ServerMessage::<()>::Welcome(welcome).to_text()).await?;
    // Online while this connection lasts; the mark is taken back however the connection ends.
    let online = backend.presence().map(|presence| OnlineMark {
        presence: presence.clone(),
        bureau: watcher.actor.bureau,
        user: watcher.actor.user.clone(),
    });
    if let Some(mark) = &online {
        mark.presence.refresh(mark.bureau, &mark.user);
    }

    let key = watcher.key();
    let mut last_index;
    let hub = backend.hub();
    let mut subscription = match hub.attach(key, since) {
        Attachment::Resume { replay, subscription } => {
            last_index = since.unwrap_or(0);
            let replayed = replay_after(&mut socket, key, replay, &mut last_index).await?;
            let resumed = ServerMessage::<()>::Resumed { since, replayed, index: last_index };
            send(&mut socket, resumed.to_text()).await?;
            subscription
        }
        Attachment::Snapshot { .. } => {
            let (index, message) = match backend.snapshot(&watcher, &token).await {
                Ok(snapshot) => snapshot,
                Err(error) => return refuse(&mut socket, error).await,
            };
            // Then everything after the snapshot: what the hub already holds past it (a
            // gateway's hub may be ahead of the node the snapshot came from), then live.
            let Attachment::Resume { replay, subscription } = hub.attach(key, Some(index)) else {
                let message = resync("events after the snapshot are not held here yet");
                let _ = send(&mut socket, message).await;
                let _ = socket.send(Message::Close(None)).await;
                return Err("no history after the snapshot".into());
            };
            send(&mut socket, message).await?;
            last_index = index;
            replay_after(&mut socket, key, replay, &mut last_index).await?;
            subscription
        }
    };

    let mut heartbeat = tokio::time::interval(HEARTBEAT_INTERVAL);
    heartbeat.reset();
    let mut last_heard = tokio::time::Instant::now();
    // `last_index` at the previous heartbeat tick: when it moved, events went out in the
    // interval, and the heartbeat is skipped (events carry their index and prove the
    // connection as well; the skipped heartbeats were a twentieth of a busy gateway's writes).
    let mut index_at_tick = last_index;
    let mut accounts = backend.accounts_changed().filter(|_| token.starts_with(crate::sessions::SESSION_PREFIX));
    loop {
        let account_changed = async {
            match &mut accounts {
                Some(changes) => changes.changed().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Live messages first: most wake-ups are for them, and a ready first branch spares
            // polling the socket and the timer (each drained batch leaves the queue empty, so
            // the other branches are polled on the next turn).
            biased;
            message = subscription.messages.recv() => {
                // Forward this message and whatever else is already queued, then flush once:
                // a console that fell behind catches up in few writes instead of one per entry.
                // One timeout covers the whole batch: a client that stops reading blocks the
                // writes, and is dropped when the batch cannot finish in time.
                let batch =
                    forward_batch(&mut socket, &mut subscription, &mut last_index, message, backend.push_latency());
                match tokio::time::timeout(SEND_TIMEOUT, batch).await {
                    Ok(Ok(BatchEnd::Continue)) => {}
                    Ok(Ok(BatchEnd::Closed)) => {
                        if subscription.overflowed.load(std::sync::atomic::Ordering::Relaxed) {
                            let _ = send(&mut socket, resync("too far behind")).await;
                            let _ = socket.send(Message::Close(None)).await;
                            return Err("dropped a console that fell too far behind".into());
                        }
                        return Ok(());
                    }
                    Ok(Err(reason)) => return Err(reason),
                    Err(_) => return Err("the client stopped reading".into()),
                }
            },
            frame = socket.recv() => match frame {
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(),
                Some(Err(error)) => return Err(format!("receive failed: {error}")),
            },
            changed = account_changed => {
                if !changed {
                    accounts = None;
                } else if !still_signed_in(&backend, &token, &watcher).await {
                    return refuse(&mut socket, ApiError::Unauthorized("the session ended: sign in again".into())).await;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > CLIENT_SILENCE_MAX {
                    return Err("the client went silent".into());
                }
                // A token revoked by a reload of the users file (or given to someone else) ends
                // the console within a heartbeat: otherwise it would go on receiving events for
                // as long as it stays open.
                if !still_signed_in(&backend, &token, &watcher).await {
                    return refuse(&mut socket, ApiError::Unauthorized("the console's token was revoked".into())).await;
                }
                // With nothing pending, everything up to the hub's newest index that concerns this
                // console has been sent: that index is a safe point to resume from.
                let sent_events = last_index != index_at_tick;
                if let Some(settled) = hub.settled_index(&subscription) {
                    last_index = last_index.max(settled);
                }
                if !sent_events {
                    send(&mut socket, ServerMessage::<()>::Heartbeat { index: last_index }.to_text()).await?;
                }
                index_at_tick = last_index;
                if let Some(mark) = &online {
                    mark.presence.refresh(mark.bureau, &mark.user);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_beyond_the_node_or_user_limit_are_refused_and_slots_come_back() {
        let counts = Arc::new(ConnectionCounts::default());
        let a1 = counts.try_acquire_within("a", 3, 2).expect("first of a");
        let _a2 = counts.try_acquire_within("a", 3, 2).expect("second of a");
        assert!(counts.try_acquire_within("a", 3, 2).is_none(), "a is at its own limit");
        let b1 = counts.try_acquire_within("b", 3, 2).expect("b fits the node");
        assert!(counts.try_acquire_within("c", 3, 2).is_none(), "the node is full");
        assert_eq!(counts.total(), 3);
        drop(b1);
        let _c1 = counts.try_acquire_within("c", 3, 2).expect("a freed slot is reused");
        drop(a1);
        assert!(counts.try_acquire_within("a", 3, 2).is_some(), "a has a slot again");
    }
}
