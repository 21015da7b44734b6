//! Carrying a province's plan down to its city groups and their progress back up, between
//! groups (`ledger::campaign::plan_handdown`):
//!
//! - on the leader of the group keeping a plan, a loop sends each published version to every
//!   child group within the province (`/federation/v1/plans/handed-down`) and records the
//!   version each took;
//! - on the leader of a city group, the same loop counts what its campaigns in the copy's
//!   batches have come to, at most every `plan_progress_every`, and sends the count to the
//!   group above when it changed (`/federation/v1/plans/progress`);
//! - a city group relays its command centre's proposal to the plan (上报) to the group above
//!   at once (`/federation/v1/plans/proposals`), and answers with what became of it there;
//! - the routes take each as the sending group, checked as any peer's message.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::campaign::annual_plan::{BatchSpec, PlanStep};
use ledger::campaign::plan_filing::{batches_version, for_filing, PlanForFiling};
use ledger::campaign::plan_handdown::{BatchProgress, PlanHandDownAction, ProgressReport};
use ledger::campaign::{ProgrammeAction, ProgrammeRecord};
use ledger::{peer_actor, Action, Actor, BureauCode, Command, IdempotencyTag, Rejection, Role};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::peer_api::{admit_write, propose_as_peer, PeerOutcome};
use super::plan_filing::{FilePlansRequest, FilePlansResponse, FilingResult};
use crate::api::{time, ApiError};
use crate::reference::FEATURE_PLAN_HANDDOWN;
use crate::state::AppState;

pub const HANDED_DOWN_PATH: &str = "/federation/v1/plans/handed-down";
pub const PROGRESS_PATH: &str = "/federation/v1/plans/progress";
pub const PROPOSALS_PATH: &str = "/federation/v1/plans/proposals";
/// How often the leader looks for versions its child groups lack and counts its progress (and,
/// doubling, how long a direction waits after a failure, up to `BACKOFF_MAX`).
const LOOK_EVERY: Duration = Duration::from_secs(2);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The user named on a hand-down recorded here.
const HANDDOWN_USER: &str = "system:plan-handdown";

#[derive(Debug, Serialize, Deserialize)]
pub struct ProgressRequest {
    pub reports: Vec<ProgressReport>,
}

/// What became of one report, in request order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportResult {
    /// The group above holds this report, or a newer one.
    Taken,
    Refused {
        reason: String,
    },
    /// Not committed: try again.
    Retry {
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProgressResponse {
    pub results: Vec<ReportResult>,
}

/// A proposal a city group relays for its command centre's user.
#[derive(Debug, Serialize, Deserialize)]
pub struct RelayedProposal {
    pub year: i32,
    pub bureau: BureauCode,
    pub by: String,
    pub spec: BatchSpec,
    pub note: String,
    /// The user's Idempotency-Key and the fingerprint of their request: a request sent again
    /// answers the first proposal instead of making a second.
    #[serde(default)]
    pub idempotency: Option<IdempotencyTag>,
}

/// What became of a relayed proposal: the plan's version it made and the proposal's number,
/// the ledger's refusal (answered to the user as it would be here), or try again.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayedAnswer {
    Proposed { version: u32, proposal: u32 },
    Refused(Rejection),
    Retry { reason: String },
}

fn programme(action: PlanHandDownAction) -> Action {
    Action::Programme(Box::new(ProgrammeAction::PlanHandDown(action)))
}

/// `POST /federation/v1/plans/handed-down` on a city group: the group above hands down the
/// published plans it keeps.
pub async fn receive(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (peer, request) = match admit_write(&state, uri, headers, body, |r: &FilePlansRequest| r.plans.len()).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if state.federation.parent() != Some(peer) {
        let refusal = format!("group {peer} is not the group above group {}", state.federation.group);
        return ApiError::Forbidden(refusal).into_response();
    }
    if let Err(error) = crate::reference::members_read(&state, FEATURE_PLAN_HANDDOWN, "plans handed down").await {
        return error.into_response();
    }
    let stamp_ms = time::now_ms();
    let mut results = Vec::with_capacity(request.plans.len());
    for plan in request.plans {
        let version = plan.version;
        let action = programme(PlanHandDownAction::Receive(Box::new(plan)));
        results.push(FilingResult::of(version, propose_as_peer(&state, peer, stamp_ms, action).await));
    }
    Json(FilePlansResponse { results }).into_response()
}

/// `POST /federation/v1/plans/progress` on the group keeping a plan: a child group reports its
/// progress on the copy handed down to it.
pub async fn progress(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (peer, request) = match admit_write(&state, uri, headers, body, |r: &ProgressRequest| r.reports.len()).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if !state.federation.children(&state.regions()).contains(&peer) {
        let refusal = format!("group {peer} is not a group below group {}", state.federation.group);
        return ApiError::Forbidden(refusal).into_response();
    }
    if let Err(error) = crate::reference::members_read(&state, FEATURE_PLAN_HANDDOWN, "progress reports").await {
        return error.into_response();
    }
    let stamp_ms = time::now_ms();
    let mut results = Vec::with_capacity(request.reports.len());
    for report in request.reports {
        let action = programme(PlanHandDownAction::Report(Box::new(report)));
        results.push(match propose_as_peer(&state, peer, stamp_ms, action).await {
            PeerOutcome::Taken => ReportResult::Taken,
            PeerOutcome::Retry(reason) => ReportResult::Retry { reason },
            PeerOutcome::Refused(reason) => ReportResult::Refused { reason },
        });
    }
    Json(ProgressResponse { results }).into_response()
}

/// `POST /federation/v1/plans/proposals` on the group keeping a plan: a child group relays a
/// proposal of a command centre it hosts.
pub async fn proposals(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (peer, relayed) = match admit_write(&state, uri, headers, body, |_: &RelayedProposal| 1).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    let regions = state.regions();
    let federation = &state.federation;
    if !federation.children(&regions).contains(&peer) {
        let refusal = format!("group {peer} is not a group below group {}", federation.group);
        return ApiError::Forbidden(refusal).into_response();
    }
    // A group speaks for the bureaus it hosts, not for those of a group below it.
    if federation.host_of(&regions, relayed.bureau) != Some(peer) {
        let refusal = format!("bureau {} is not hosted by group {peer}", relayed.bureau);
        return Json(RelayedAnswer::Refused(Rejection::Forbidden(refusal))).into_response();
    }
    // The ledger keeps a plan for the proposer's province: one this group hosts.
    let province = regions.province_of(relayed.bureau);
    if province.is_none_or(|province| federation.host_of(&regions, province) != Some(federation.group)) {
        let refusal = format!("group {} keeps no plan of bureau {}'s province", federation.group, relayed.bureau);
        return Json(RelayedAnswer::Refused(Rejection::Forbidden(refusal))).into_response();
    }
    if let Err(error) = crate::reference::members_read(&state, FEATURE_PLAN_HANDDOWN, "relayed proposals").await {
        return error.into_response();
    }
    let RelayedProposal { year, bureau, by, spec, note, idempotency } = relayed;
    // The peer's records are shared by every user of its group: a key is theirs by its user.
    let idempotency = match idempotency {
        Some(tag) if !crate::api::headers::is_idempotency_key(&tag.key) => {
            let refusal = Rejection::Invalid { field: "idempotency".into(), reason: "not an Idempotency-Key".into() };
            return Json(RelayedAnswer::Refused(refusal)).into_response();
        }
        Some(tag) => Some(IdempotencyTag { key: format!("{bureau}/{by} {}", tag.key), fingerprint: tag.fingerprint }),
        None => None,
    };
    let action = PlanHandDownAction::Propose { year, bureau, by, spec: Box::new(spec), note };
    let command = Command { stamp_ms: time::now_ms(), actor: peer_actor(peer), idempotency, action: programme(action) };
    let answer = match state.batcher.propose(command).await {
        Ok(Ok(applied)) => match &applied.record {
            Some(ProgrammeRecord::AnnualPlan(changed)) => match changed.1.step {
                PlanStep::Proposed { proposal } => RelayedAnswer::Proposed { version: changed.1.number, proposal },
                _ => RelayedAnswer::Retry { reason: "a proposal answered with another change".into() },
            },
            _ => RelayedAnswer::Retry { reason: "a proposal answered without the plan".into() },
        },
        Ok(Err(Rejection::NotYet(reason))) => RelayedAnswer::Retry { reason },
        Ok(Err(rejection)) => RelayedAnswer::Refused(rejection),
        Err(error) => RelayedAnswer::Retry { reason: format!("{error:?}") },
    };
    Json(answer).into_response()
}

/// What the leader remembers between looks: the reports the group above took (by province and
/// year), when it last counted, the hand-downs a child refused (not sent again until the
/// plan's version changes), and each direction's backoff. A new leader starts empty.
#[derive(Default)]
struct Memory {
    sent: BTreeMap<(BureauCode, i32), Vec<BatchProgress>>,
    counted_at: Option<Instant>,
    refused: BTreeSet<(BureauCode, BureauCode, i32, u32)>,
    hand_down: Backoff,
    report: Backoff,
}

/// When a direction may try again: after `LOOK_EVERY`, doubled after each failure up to
/// `BACKOFF_MAX`.
#[derive(Default)]
struct Backoff {
    wait: Option<Duration>,
    next: Option<Instant>,
}

impl Backoff {
    fn due(&self) -> bool {
        self.next.is_none_or(|next| Instant::now() >= next)
    }

    fn after(&mut self, outcome: Result<(), ()>) {
        let wait = match outcome {
            Ok(()) => None,
            Err(()) => Some(self.wait.map_or(LOOK_EVERY * 2, |wait| (wait * 2).min(BACKOFF_MAX))),
        };
        self.next = wait.map(|wait| Instant::now() + wait);
        self.wait = wait;
    }
}

/// On the leader of any group: hands its published plans down to its child groups, and
/// reports its progress on the plans handed down to it, until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let preferred = Mutex::new(BTreeMap::new());
    let mut memory = Memory::default();
    loop {
        tokio::select! {
            () = tokio::time::sleep(LOOK_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
        if state.leading_term().is_none() {
            memory = Memory::default();
            continue;
        }
        if memory.hand_down.due() {
            let outcome = hand_down_once(&state, &mut memory.refused, &preferred).await;
            memory.hand_down.after(outcome);
        }
        if memory.report.due() {
            let outcome = report_once(&state, &mut memory, &preferred).await;
            memory.report.after(outcome);
        }
    }
}

/// Sends every child group the published versions it lacks of the plans kept here; `Err` when
/// one was not taken (logged).
async fn hand_down_once(
    state: &AppState,
    refused: &mut BTreeSet<(BureauCode, BureauCode, i32, u32)>,
    preferred: &Mutex<BTreeMap<BureauCode, usize>>,
) -> Result<(), ()> {
    let regions = state.regions();
    let children = state.federation.children(&regions);
    if children.is_empty() {
        return Ok(());
    }
    let mut due: BTreeMap<BureauCode, Vec<PlanForFiling>> = BTreeMap::new();
    {
        let replica = state.store.read();
        let ledger = &replica.ledger;
        for plan in ledger.annual_plans().all() {
            let Some(version) = batches_version(plan) else { continue };
            // The groups within the province (not one hosting the province itself) lacking
            // this version, and not refusing it.
            let lacking: Vec<BureauCode> = children
                .iter()
                .copied()
                .filter(|child| regions.is_within(*child, plan.province) && !regions.is_within(plan.province, *child))
                .filter(|child| {
                    let taken = ledger.plan_handdown().handed(plan.province, plan.year, *child);
                    taken.is_none_or(|taken| taken.version < version)
                        && !refused.contains(&(*child, plan.province, plan.year, version))
                })
                .collect();
            if lacking.is_empty() {
                continue;
            }
            let Some(mut copy) = for_filing(plan) else { continue };
            // The province's own campaigns are nothing to the city groups.
            copy.batches.iter_mut().for_each(|batch| batch.campaigns.clear());
            for child in lacking {
                due.entry(child).or_default().push(copy.clone());
            }
        }
    }
    if due.is_empty() {
        return Ok(());
    }
    if let Err(error) = crate::reference::members_read(state, FEATURE_PLAN_HANDDOWN, "plans handed down").await {
        tracing::info!(?error, "handing plans down waits for every member to read them");
        return Err(());
    }
    let mut outcome = Ok(());
    for (child, plans) in due {
        let request = FilePlansRequest { plans };
        let answer: FilePlansResponse = match state.federation.call(child, HANDED_DOWN_PATH, &request, preferred).await
        {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(?error, %child, "the city group did not take the annual plans");
                outcome = Err(());
                continue;
            }
        };
        for (plan, result) in request.plans.iter().zip(answer.results) {
            match result {
                FilingResult::Filed { version } if version == plan.version => {
                    record_handed_down(state, plan, child).await;
                }
                FilingResult::Filed { .. } | FilingResult::Retry { .. } => outcome = Err(()),
                FilingResult::Refused { reason } => {
                    // Sent again only once the plan's version changes (or another leader tries).
                    tracing::error!(province = %plan.province, year = plan.year, %child, %reason, "the city group refused the plan");
                    refused.insert((child, plan.province, plan.year, plan.version));
                }
            }
        }
    }
    outcome
}

async fn record_handed_down(state: &AppState, plan: &PlanForFiling, to_group: BureauCode) {
    let action = PlanHandDownAction::RecordHandedDown {
        province: plan.province,
        year: plan.year,
        to_group,
        version: plan.version,
    };
    let actor = Actor { user: HANDDOWN_USER.to_owned(), bureau: state.group_bureau, role: Role::System };
    let command = Command { stamp_ms: time::now_ms(), actor, idempotency: None, action: programme(action) };
    match state.batcher.propose(command).await {
        Ok(Ok(_)) => {
            tracing::info!(province = %plan.province, year = plan.year, version = plan.version, %to_group, "annual plan handed down")
        }
        Ok(Err(Rejection::NothingToRecord(_))) => {}
        outcome => tracing::warn!(?outcome, "recording a plan handed down did not commit"),
    }
}

/// Counts this group's progress on the copies the group above handed down, at most every
/// `plan_progress_every`, and sends the counts that changed; `Err` when one was not taken.
async fn report_once(
    state: &AppState,
    reporting: &mut Memory,
    preferred: &Mutex<BTreeMap<BureauCode, usize>>,
) -> Result<(), ()> {
    let Some(parent) = state.federation.parent() else { return Ok(()) };
    let every = Duration::from_millis(state.federation.tuning.plan_progress_every_ms);
    if reporting.counted_at.is_some_and(|at| at.elapsed() < every) {
        return Ok(());
    }
    reporting.counted_at = Some(Instant::now());
    let reports: Vec<ProgressReport> = {
        let regions = state.regions();
        let replica = state.store.read();
        let ledger = &replica.ledger;
        ledger
            .plan_handdown()
            .all_received()
            .filter(|copy| copy.from_group == parent)
            .map(|copy| crate::programme::plan_progress::report_of(ledger, &regions, state.group_bureau, copy))
            .filter(|report| {
                let sent = reporting.sent.get(&(report.province, report.year));
                // Nothing joined and nothing said yet, or the same as said: nothing to send.
                sent.map_or(!report.batches.is_empty(), |sent| *sent != report.batches)
            })
            .collect()
    };
    if reports.is_empty() {
        return Ok(());
    }
    let request = ProgressRequest { reports };
    let answer: ProgressResponse =
        state.federation.call(parent, PROGRESS_PATH, &request, preferred).await.map_err(|error| {
            tracing::warn!(?error, %parent, "the group above did not take the progress reports");
            reporting.counted_at = None;
        })?;
    let mut outcome = Ok(());
    for (report, result) in request.reports.into_iter().zip(answer.results) {
        match result {
            ReportResult::Taken => {
                reporting.sent.insert((report.province, report.year), report.batches);
            }
            ReportResult::Retry { .. } => outcome = Err(()),
            ReportResult::Refused { reason } => {
                tracing::error!(province = %report.province, year = report.year, %reason, "the group above refused the progress report");
                outcome = Err(());
            }
        }
    }
    if outcome.is_err() {
        reporting.counted_at = None;
    }
    outcome
}
