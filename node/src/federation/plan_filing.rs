//! Filing annual plans with the level above, between groups (`ledger::campaign::plan_filing`):
//! on the leader of a group with a parent, a loop sends every published plan whose newest
//! version the parent has not taken (`/federation/v1/plans`), and records the version it took;
//! on the parent, the route files each plan a child group sends, as that group.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::campaign::plan_filing::{for_filing, PlanFilingAction, PlanForFiling};
use ledger::campaign::ProgrammeAction;
use ledger::{Action, Actor, BureauCode, Command, Rejection, Role};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::peer_api::{admit_write, propose_as_peer, PeerOutcome};
use crate::api::{time, ApiError};
use crate::reference::FEATURE_PLAN_FILING;
use crate::state::AppState;

pub const PLANS_PATH: &str = "/federation/v1/plans";
/// How often the leader looks for published plans its parent has not taken (and, doubling,
/// how long it waits after a failure, up to `FILE_BACKOFF_MAX`).
const FILE_EVERY: Duration = Duration::from_secs(2);
/// The longest wait after the parent could not be reached or refused: doubles up to this.
const FILE_BACKOFF_MAX: Duration = Duration::from_secs(300);
/// The user named on a filing recorded here.
const FILER_USER: &str = "system:plan-filing";

#[derive(Debug, Serialize, Deserialize)]
pub struct FilePlansRequest {
    pub plans: Vec<PlanForFiling>,
}

/// What became of one plan, in request order.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilingResult {
    /// The parent holds this version (now, or from before).
    Filed {
        version: u32,
    },
    Refused {
        reason: String,
    },
    /// Not committed: try again.
    Retry {
        reason: String,
    },
}

impl FilingResult {
    /// The answer for version `version` of a plan proposed as the peer.
    pub(super) fn of(version: u32, outcome: PeerOutcome) -> FilingResult {
        match outcome {
            PeerOutcome::Taken => FilingResult::Filed { version },
            PeerOutcome::Retry(reason) => FilingResult::Retry { reason },
            PeerOutcome::Refused(reason) => FilingResult::Refused { reason },
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FilePlansResponse {
    pub results: Vec<FilingResult>,
}

/// `POST /federation/v1/plans` on the parent: a child group files its published plans.
pub async fn file(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    let (peer, request) = match admit_write(&state, uri, headers, body, |r: &FilePlansRequest| r.plans.len()).await {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    // Only a group below this one files with it.
    let regions = state.regions();
    if peer == state.federation.group || !regions.is_within(peer, state.federation.group) {
        let refusal = format!("group {peer} is not below group {}", state.federation.group);
        return ApiError::Forbidden(refusal).into_response();
    }
    if let Err(error) = crate::reference::members_read(&state, FEATURE_PLAN_FILING, "filed plans").await {
        return error.into_response();
    }
    let stamp_ms = time::now_ms();
    let mut results = Vec::with_capacity(request.plans.len());
    for plan in request.plans {
        let version = plan.version;
        let action = programme(ProgrammeAction::PlanFiling(PlanFilingAction::File(Box::new(plan))));
        results.push(FilingResult::of(version, propose_as_peer(&state, peer, stamp_ms, action).await));
    }
    Json(FilePlansResponse { results }).into_response()
}

fn programme(action: ProgrammeAction) -> Action {
    Action::Programme(Box::new(action))
}

/// On the leader of a group with a parent: files each published plan's newest version with the
/// parent, and records the version the parent took, until `shutdown`.
pub async fn run(state: AppState, shutdown: CancellationToken) {
    let Some(parent) = state.federation.parent() else { return };
    let preferred = Mutex::new(BTreeMap::new());
    let mut wait = FILE_EVERY;
    loop {
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return,
        }
        // `FILE_EVERY`, doubled after each failure up to `FILE_BACKOFF_MAX`.
        wait = match file_once(&state, parent, &preferred).await {
            Ok(()) => FILE_EVERY,
            Err(()) => (wait * 2).min(FILE_BACKOFF_MAX),
        };
    }
}

/// One look, on the leader: sends the plans the parent has not taken; `Err` when the members,
/// the parent or its ledger did not take them (logged).
async fn file_once(
    state: &AppState,
    parent: BureauCode,
    preferred: &Mutex<BTreeMap<BureauCode, usize>>,
) -> Result<(), ()> {
    if state.leading_term().is_none() {
        return Ok(());
    }
    let unfiled: Vec<PlanForFiling> = {
        let replica = state.store.read();
        let ledger = &replica.ledger;
        let filed = |plan: &PlanForFiling| {
            ledger.plan_filings().filing(plan.province, plan.year).is_some_and(|f| f.version >= plan.version)
        };
        ledger.annual_plans().all().filter_map(for_filing).filter(|plan| !filed(plan)).collect()
    };
    if unfiled.is_empty() {
        return Ok(());
    }
    if let Err(error) = crate::reference::members_read(state, FEATURE_PLAN_FILING, "filed plans").await {
        tracing::info!(?error, "filing the annual plans waits for every member to read filings");
        return Err(());
    }
    let request = FilePlansRequest { plans: unfiled.clone() };
    let answer: FilePlansResponse =
        state.federation.call(parent, PLANS_PATH, &request, preferred).await.map_err(|error| {
            tracing::warn!(?error, %parent, "the parent group did not take the annual plans");
        })?;
    let mut outcome = Ok(());
    for (plan, result) in unfiled.iter().zip(answer.results) {
        match result {
            FilingResult::Filed { version } if version == plan.version => record_filed(state, plan, parent).await,
            FilingResult::Filed { .. } | FilingResult::Retry { .. } => outcome = Err(()),
            FilingResult::Refused { reason } => {
                tracing::error!(province = %plan.province, year = plan.year, %reason, "the parent group refused the plan");
                outcome = Err(());
            }
        }
    }
    outcome
}

async fn record_filed(state: &AppState, plan: &PlanForFiling, parent: BureauCode) {
    let action = PlanFilingAction::RecordFiled {
        province: plan.province,
        year: plan.year,
        with_group: parent,
        version: plan.version,
    };
    let actor = Actor { user: FILER_USER.to_owned(), bureau: state.group_bureau, role: Role::System };
    let command = Command {
        stamp_ms: time::now_ms(),
        actor,
        idempotency: None,
        action: programme(ProgrammeAction::PlanFiling(action)),
    };
    match state.batcher.propose(command).await {
        Ok(Ok(_)) => {
            tracing::info!(province = %plan.province, year = plan.year, version = plan.version, %parent, "annual plan filed with the parent group")
        }
        Ok(Err(Rejection::NothingToRecord(_))) => {}
        outcome => tracing::warn!(?outcome, "recording a filed plan did not commit"),
    }
}
