//! The live entity register (`ledger::campaign::register`): the registration system's feed of
//! changes (`POST /api/v1/register/changes`, answered per change), the register's state and
//! journal for the bureaus, and the freeze a draw makes before its beacon is fixed.
//!
//! Every command here is proposed only when every member reads `register-feed-v1`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::campaign::register::{Freeze, JournalEntry, RegisterChange, CHANGES_PER_COMMAND_MAX};
use ledger::campaign::{ProgrammeAction, ProgrammeRecord};
use ledger::{Action, Actor, Command, Role};
use serde::Deserialize;

use super::programme::{commit, Committed};
use crate::api::register::{
    ChangeResultJson, JournalEntryJson, JournalJson, RegisterChangeJson, RegisterChangesRequest,
    RegisterChangesResponse, RegisterJson, RegisterVersionJson,
};
use crate::api::{time, ApiError};
use crate::kept_files::{replication, Shelf};
use crate::reference::{members_read, FEATURE_REGISTER_FEED, FEATURE_RISK_FILES};
use crate::state::AppState;
use crate::write_path::{propose_or_relay, relay_if_follower, OriginalRequest, WriteOutcome};

/// A batch of 1,000 changes of about 300 bytes each, with room for long names and addresses.
const CHANGES_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// The frozen file is written through a buffer of this size (its rows are a few hundred bytes).
const FREEZE_WRITE_BUFFER: usize = 1024 * 1024;
/// Journal entries one read answers at most.
const JOURNAL_PAGE_MAX: u64 = 1_000;
/// Journal entries read under one hold of the replica's lock while a freeze gathers them, so
/// applying entries is never held up for long.
const FREEZE_READ_CHUNK: u64 = 10_000;

pub async fn feed_changes(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    match feed(state, uri, headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn feed(state: AppState, uri: Uri, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let feed = state.users.authenticate_register_feed(&headers)?;
    if state.federation.host_of(&state.regions(), feed.bureau) != Some(state.federation.group) {
        return Err(ApiError::Forbidden(format!(
            "registration system {} reports for bureau {}, which group {} does not host",
            feed.name, feed.bureau, state.federation.group
        )));
    }
    let body = axum::body::to_bytes(body, CHANGES_BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::TooLarge(format!("a batch of changes is at most {CHANGES_BODY_BYTES_MAX} bytes")))?;
    let original = OriginalRequest { uri, headers, body };
    // The leader keeps the rate: every batch of the feed ends there, whichever node it hit.
    if let Some(response) = relay_if_follower(&state, &original).await {
        return Ok(response);
    }
    // Each change is decoded on its own only when some change is malformed: then that one is
    // refused and the others go on in their order.
    let decoded: Vec<(Option<String>, Result<RegisterChangeJson, ApiError>)> =
        match serde_json::from_slice::<WellFormedChanges>(&original.body) {
            Ok(request) => request.changes.into_iter().map(|change| (Some(change.id.clone()), Ok(change))).collect(),
            Err(_) => {
                let request: RegisterChangesRequest = serde_json::from_slice(&original.body)
                    .map_err(|e| ApiError::Invalid { code: "invalid_json", message: e.to_string() })?;
                request
                    .changes
                    .into_iter()
                    .map(|value| {
                        let id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
                        let change = serde_json::from_value::<RegisterChangeJson>(value)
                            .map_err(|e| ApiError::Invalid { code: "invalid_change", message: e.to_string() });
                        (id, change)
                    })
                    .collect()
            }
        };
    let count = decoded.len();
    if count == 0 || count > CHANGES_PER_COMMAND_MAX {
        return Err(ApiError::invalid_field("changes", format!("1 to {CHANGES_PER_COMMAND_MAX} per batch")));
    }
    // Once the group committed the register's commands every member reads them (a group does
    // not go back to an older build): asked only before, so a member that is down right after
    // a failover, and never answered the new leader, does not stop the feed.
    if !state.store.read().ledger.register_in_use() {
        members_read(&state, FEATURE_REGISTER_FEED, "changes of the entity register").await?;
    }
    // Classifications are kinds an older build cannot decode: once the risk files are kept
    // every member reads them (the leader turned them on only then).
    let classifies = decoded.iter().any(|(_, change)| change.as_ref().is_ok_and(RegisterChangeJson::classifies));
    if classifies && !state.store.read().ledger.risk_files().kept() {
        members_read(&state, FEATURE_RISK_FILES, "the credit-risk system's classifications").await?;
    }
    let allowed = feed.bucket.lock().expect("not poisoned").take(count, std::time::Instant::now());
    if let Err(wait) = allowed {
        return Err(ApiError::RateLimited {
            message: format!("registration system {} is over its rate; nothing of this batch was written", feed.name),
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        });
    }
    let regions = state.regions();
    let mut results: Vec<ChangeResultJson> = Vec::with_capacity(count);
    let mut changes: Vec<RegisterChange> = Vec::with_capacity(count);
    let mut positions = Vec::with_capacity(count);
    for (id, change) in decoded {
        let parsed = change.and_then(|json| json.parse(&regions)).and_then(|change| {
            // The group's register holds the entities of the group's scope only.
            match &change.entity {
                Some(entity) if !regions.is_within(entity.region, state.group_bureau) => {
                    Err(ApiError::Forbidden(format!(
                        "entity {} is registered in {}, outside group {}",
                        change.uscc.as_str(),
                        entity.region,
                        state.group_bureau
                    )))
                }
                _ => Ok(change),
            }
        });
        match parsed {
            Ok(change) => {
                positions.push(results.len());
                results.push(ChangeResultJson { id, outcome: String::new(), seq: None, error: None });
                changes.push(change);
            }
            Err(error) => results.push(refused(id, &error)),
        }
    }
    if !changes.is_empty() {
        let actor = Actor { user: feed.name.clone(), bureau: feed.bureau, role: Role::Source };
        let action = Action::Programme(Box::new(ProgrammeAction::RecordRegisterChanges(changes)));
        let command = Command { stamp_ms: time::now_ms(), actor, idempotency: None, action };
        let outcomes = match propose_or_relay(&state, &original, command).await? {
            WriteOutcome::Relayed(response) => return Ok(response),
            WriteOutcome::Local(Err(rejection)) => return Err(ApiError::from(rejection)),
            WriteOutcome::Local(Ok(applied)) => match applied.record {
                Some(ProgrammeRecord::RegisterChanges(outcomes)) => outcomes,
                _ => return Err(ApiError::Internal("a batch of changes answers per change".into())),
            },
        };
        for (position, outcome) in positions.into_iter().zip(outcomes) {
            let slot = &mut results[position];
            *slot = ChangeResultJson::of(slot.id.take(), outcome);
        }
    }
    let journal_length = state.store.read().ledger.entity_register().journal_len();
    Ok(Json(RegisterChangesResponse { results, journal_length }).into_response())
}

/// A batch whose every change is well formed, decoded in one pass.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WellFormedChanges {
    changes: Vec<RegisterChangeJson>,
}

fn refused(id: Option<String>, error: &ApiError) -> ChangeResultJson {
    ChangeResultJson { id, outcome: "refused".into(), seq: None, error: Some(error.detail()) }
}

fn command_user(state: &AppState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let user = state.users.authenticate(headers)?;
    if user.actor.role != Role::Command {
        return Err(ApiError::Forbidden(format!("a {} user does not read the entity register", user.actor.role)));
    }
    Ok(user.actor.clone())
}

/// `GET /api/v1/register`.
pub async fn register(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        command_user(&state, &headers)?;
        let replica = state.store.read();
        let ledger = &replica.ledger;
        let register = ledger.entity_register();
        let directories = ledger.programme().entity_directories();
        let versions = directories.iter().rev().map(|version| {
            let placed = register.version(version.number);
            RegisterVersionJson {
                number: version.number,
                sha256: version.sha256.clone(),
                entities: version.entities,
                through: placed.map(|p| p.through),
                frozen_from: placed.and_then(|p| p.base),
                at: time::format_ms(version.at_ms),
            }
        });
        Ok(RegisterJson {
            journal_length: register.journal_len(),
            pending_changes: directories.last().and_then(|current| register.pending_after(current)),
            versions: versions.collect(),
        })
    })())
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalQuery {
    /// Changes after this number (0: from the first).
    #[serde(default)]
    pub after: u64,
    /// At most this many (1 to 1,000; 1,000 by default).
    #[serde(default)]
    pub limit: Option<u64>,
}

/// `GET /api/v1/register/changes?after=N&limit=M`: the journal in order, a page at a time.
pub async fn journal(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    super::json_answer((|| {
        command_user(&state, &headers)?;
        let query: JournalQuery = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|e| ApiError::Invalid { code: "invalid_query", message: e.to_string() })?;
        let limit = query.limit.unwrap_or(JOURNAL_PAGE_MAX);
        if limit == 0 || limit > JOURNAL_PAGE_MAX {
            return Err(ApiError::invalid_field("limit", format!("1 to {JOURNAL_PAGE_MAX}")));
        }
        let replica = state.store.read();
        let ledger = &replica.ledger;
        let journal_length = ledger.entity_register().journal_len();
        let last = journal_length.min(query.after.saturating_add(limit));
        let first = query.after.saturating_add(1);
        let entries: Vec<JournalEntryJson> = if first > last {
            Vec::new()
        } else {
            ledger.register_entries(first, last).iter().map(|entry| JournalEntryJson::of(entry)).collect()
        };
        if entries.len() as u64 != last.saturating_sub(query.after) {
            return Err(ApiError::Internal("the journal has a gap".into()));
        }
        Ok(JournalJson { entries, journal_length, next_after: (last < journal_length).then_some(last) })
    })())
}

/// One freeze at a time on a node: a second draw waits, then finds the register frozen (or
/// the changes that arrived meanwhile, and freezes those).
static FREEZING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Freezes the register (on the leader) when the current directory version does not take in
/// every change recorded: the changes folded into the current file make the next version,
/// kept on a majority and committed. `Ok(None)` when there was nothing to freeze or it is
/// frozen now; `Ok(Some(response))` when leadership moved and the request was relayed whole.
pub(super) async fn freeze_pending(
    state: &AppState,
    original: &OriginalRequest,
    actor: &Actor,
) -> Result<Option<Response>, ApiError> {
    let _one_at_a_time = FREEZING.lock().await;
    let plan = {
        let replica = state.store.read();
        let ledger = &replica.ledger;
        let current = ledger.programme().entity_directory().cloned();
        let register = ledger.entity_register();
        let placed = current.as_ref().and_then(|current| register.version(current.number));
        match (current, placed) {
            (Some(current), Some(placed)) if placed.through < register.journal_len() => {
                Some((current, placed.through, register.journal_len()))
            }
            _ => None,
        }
    };
    let Some((current, from, through)) = plan else { return Ok(None) };
    let started = std::time::Instant::now();
    let base = replication::obtain_mapped(state, Shelf::Directories, &current.sha256).await?;
    let store = state.kept_files.shelf(Shelf::Directories).clone();
    let replicas = state.store.clone();
    // Reading a million changes and writing gigabytes: on the blocking pool, the journal read
    // a range at a time so applying entries is never held up for long.
    let summary = tokio::task::spawn_blocking(move || {
        let mut entries: Vec<std::sync::Arc<JournalEntry>> = Vec::with_capacity((through - from) as usize);
        let mut next = from + 1;
        while next <= through {
            let end = through.min(next + FREEZE_READ_CHUNK - 1);
            let chunk = replicas.read().ledger.register_entries(next, end);
            if chunk.len() as u64 != end - next + 1 || chunk.first().is_some_and(|entry| entry.seq != next) {
                return Err(std::io::Error::other("the journal has a gap"));
            }
            entries.extend(chunk);
            next = end + 1;
        }
        let mut staging = std::io::BufWriter::with_capacity(FREEZE_WRITE_BUFFER, store.staging()?);
        let summary = draw::register::freeze(&base, entries.iter().map(|entry| &entry.change), &mut staging)?;
        let staging = staging.into_inner().map_err(|e| e.into_error())?;
        staging.keep(Some(&summary.sha256))?;
        Ok(summary)
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?
    .map_err(|e| ApiError::Internal(format!("freezing the register: {e}")))?;
    let folded = started.elapsed();
    // Changes that left the file as it was (a revocation, then a deregistration): the current
    // version, kept already, takes them in.
    if summary.sha256 != current.sha256 {
        replication::spread_on_majority(state, Shelf::Directories, &summary.sha256, "directory_not_replicated").await?;
    }
    tracing::info!(
        base = current.number,
        through,
        changes = through - from,
        entities = summary.entities,
        bytes = summary.bytes,
        folded_ms = folded.as_millis() as u64,
        kept_on_members_ms = (started.elapsed() - folded).as_millis() as u64,
        "froze the entity register"
    );
    let freeze = Freeze {
        sha256: summary.sha256,
        entities: summary.entities,
        bytes: summary.bytes,
        base: current.number,
        through,
    };
    match commit(state, original, actor, ProgrammeAction::FreezeRegister(Box::new(freeze))).await {
        Ok(Committed::Relayed(response)) => Ok(Some(response)),
        Ok(Committed::Done) => Ok(None),
        Err(error) => Err(error),
    }
}
