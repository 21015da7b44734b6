//! The annual random-inspection plan (年度随机抽查工作计划) routes: a province's plan of a year
//! with its batches' progress, a city's or county's proposals, the province's batches, their
//! adjustments and withdrawals (each with its reason), publication, and the published plan on
//! the public side. Campaigns join a batch when they are planned (`programme::create_campaign`
//! with `batch`).
//!
//! Every change is `ProgrammeAction::AnnualPlan`, which a build before it cannot decode: it is
//! proposed only when every member reads `annual-plan-v1`.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ledger::campaign::annual_plan::PlanAction;
use ledger::campaign::plan_handdown::CityProgress;
use ledger::campaign::ProgrammeAction;
use ledger::{Action, BureauCode, Regions, Role};

use super::public::within_budget;
use super::request::parse_json;
use super::write::handle_write_of_feature;
use crate::api::annual_plan::{
    AnnualPlanJson, BatchProgressJson, BatchRequest, BureauProgressJson, FiledPlanJson, FiledPlansJson, FilingJson,
    HandedDownJson, HandedDownToJson, PublicAnnualPlanJson, RelayedProposalJson, WithdrawBatchRequest,
};
use crate::api::ApiError;
use crate::federation::plan_handdown::{RelayedAnswer, RelayedProposal, PROPOSALS_PATH};
use crate::programme::plan_progress::{self, BatchFigures};
use crate::reference::FEATURE_ANNUAL_PLAN;
use crate::server::Peer;
use crate::state::AppState;

const CHANGES: Option<(&str, &str)> = Some((FEATURE_ANNUAL_PLAN, "changes of the annual plan"));

fn change(action: PlanAction) -> Action {
    Action::Programme(Box::new(ProgrammeAction::AnnualPlan(Box::new(action))))
}

/// A province's plan is kept by the group that hosts the province (its own command centre's):
/// a change sent to another group (a city's, or another province's) is refused there, rather
/// than starting a second copy of the plan no one else reads.
fn kept_here(state: &AppState, actor: &ledger::Actor) -> Result<(), ApiError> {
    let regions = state.regions();
    let province = regions
        .province_of(actor.bureau)
        .ok_or_else(|| ApiError::Forbidden(format!("bureau {} lies in no province", actor.bureau)))?;
    if regions.is_within(province, state.group_bureau) {
        Ok(())
    } else {
        Err(ApiError::Conflict {
            code: "plan_elsewhere",
            message: format!(
                "the annual plan of {province} is kept by the group hosting {province}, not by group {}; send it there",
                state.group_bureau
            ),
        })
    }
}

fn parse_year(text: &str) -> Result<i32, ApiError> {
    text.parse::<i32>()
        .ok()
        .filter(|year| ledger::reference::Day::new(*year, 1, 1).is_some())
        .ok_or_else(|| ApiError::invalid_field("year", format!("{text:?} is not a year like 2027")))
}

fn parse_batch(text: &str) -> Result<u32, ApiError> {
    text.parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::invalid_field("batch", "batches are numbered 1, 2, …"))
}

/// A batch's figures as the plan's JSON shows them: in total, and per city.
fn progress_json(regions: &Regions, figures: &BatchFigures) -> (BatchProgressJson, Vec<BureauProgressJson>) {
    let json = |campaigns, city: &CityProgress| BatchProgressJson {
        campaigns,
        drawn: city.drawn,
        completed: city.completed,
        published: city.published,
    };
    let total = json(figures.campaigns, &figures.total());
    let by_bureau = figures
        .by_city
        .iter()
        .map(|(bureau, city)| BureauProgressJson {
            bureau: crate::api::bureau_json(*bureau),
            name: crate::api::region_name(regions, *bureau),
            progress: json(0, city),
        })
        .collect();
    (total, by_bureau)
}

/// `GET /api/v1/annual-plans/{year}`: the caller's province's plan of the year (an empty plan
/// before anything was proposed or set), each batch with its progress.
pub async fn plan(State(state): State<AppState>, Path(year): Path<String>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let year = parse_year(&year)?;
        let regions = state.regions();
        let province = regions
            .province_of(user.actor.bureau)
            .ok_or_else(|| ApiError::Forbidden(format!("bureau {} lies in no province", user.actor.bureau)))?;
        let replica = state.store.read();
        let ledger = &replica.ledger;
        let group = state.group_bureau;
        // A city group holds the copy the group keeping the plan handed down: its batches with
        // this group's campaigns and their progress (proposals and versions stay there).
        if let Some(copy) = ledger.plan_handdown().received(province, year) {
            let plan = copy.as_plan();
            let json = AnnualPlanJson::of(&regions, &plan, |batch| {
                progress_json(&regions, &plan_progress::own_progress(ledger, &regions, group, batch))
            });
            return Ok(AnnualPlanJson { handed_down: Some(HandedDownJson::of(&regions, copy)), ..json });
        }
        let empty;
        let plan = match ledger.annual_plans().plan(province, year) {
            Some(plan) => plan,
            None => {
                empty = ledger::campaign::annual_plan::AnnualPlan::new(province, year);
                &empty
            }
        };
        let json = AnnualPlanJson::of(&regions, plan, |batch| {
            progress_json(&regions, &plan_progress::whole_progress(ledger, &regions, group, (province, year), batch))
        });
        let filed = ledger.plan_filings().filing(province, year).map(|filing| FilingJson::of(&regions, filing));
        let handed_down_to = HandedDownToJson::all(&regions, ledger.plan_handdown(), province, year);
        Ok(AnnualPlanJson { filed, handed_down_to, ..json })
    })())
}

/// `GET /api/v1/annual-plans/{year}/filed`: the plans the group's child groups filed with it
/// (the national group's view of the provinces' plans), for the users whose scope covers the
/// group.
pub async fn filed(State(state): State<AppState>, Path(year): Path<String>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let year = parse_year(&year)?;
        super::of_the_whole_group(&state, user.actor.bureau, "the list of plans filed", "read")?;
        let regions = state.regions();
        let replica = state.store.read();
        let plans =
            replica.ledger.plan_filings().filed_in(year).map(|filed| FiledPlanJson::of(&regions, filed)).collect();
        Ok(FiledPlansJson { year, plans })
    })())
}

/// The group above that keeps this group's province's plan, when this group (a city's) does
/// not keep it: a proposal is relayed there.
fn plan_kept_above(state: &AppState) -> Option<BureauCode> {
    let regions = state.regions();
    let province = regions.province_of(state.group_bureau)?;
    if regions.is_within(province, state.group_bureau) {
        return None;
    }
    let parent = state.federation.parent()?;
    (state.federation.host_of(&regions, province) == Some(parent)).then_some(parent)
}

/// A proposal of a command centre of this city group, relayed to the group above that keeps
/// the province's plan, answered with what became of it there (a refusal as it would be here).
async fn relay_proposal(
    state: AppState,
    parent: BureauCode,
    year: String,
    (uri, headers): (Uri, HeaderMap),
    body: Body,
) -> Response {
    let relayed = async {
        let user = state.users.authenticate(&headers)?;
        if user.actor.role != Role::Command {
            return Err(ApiError::Forbidden(format!("a {} user does not keep the annual plan", user.actor.role)));
        }
        let year = parse_year(&year)?;
        let body = super::request::read_body(body).await?;
        let idempotency = super::write::idempotency_tag(&headers, &uri, &body)?;
        let request: BatchRequest = parse_json(&body)?;
        if request.from_proposal.is_some() {
            return Err(ApiError::invalid_field("from_proposal", "a proposal takes up no other"));
        }
        let spec = request.spec(&state.regions())?;
        let (bureau, by, note) = (user.actor.bureau, user.actor.user.clone(), request.reason);
        let relayed = RelayedProposal { year, bureau, by, spec, note, idempotency };
        let preferred = std::sync::Mutex::new(std::collections::BTreeMap::new());
        let answer = state.federation.call(parent, PROPOSALS_PATH, &relayed, &preferred).await.map_err(|error| {
            ApiError::OutcomeUnknown(format!(
                "the group above ({parent}) keeps the plan and did not answer ({error:?}); read the province's plan \
                 before proposing again"
            ))
        })?;
        match answer {
            RelayedAnswer::Proposed { version, proposal } => {
                Ok(RelayedProposalJson { relayed_to: crate::api::bureau_json(parent), version, proposal })
            }
            RelayedAnswer::Refused(rejection) => Err(ApiError::from(rejection)),
            RelayedAnswer::Retry { reason } => Err(ApiError::Unavailable {
                code: "group_above_unavailable",
                message: format!("the group above ({parent}) did not take the proposal now ({reason}); retry shortly"),
            }),
        }
    };
    match relayed.await {
        Ok(json) => (StatusCode::CREATED, axum::Json(json)).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `POST /api/v1/annual-plans/{year}/proposals`: a city or county proposes a batch (上报); in
/// a city's own group, relayed to the group keeping the province's plan.
pub async fn propose(
    State(state): State<AppState>,
    Path(year): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(parent) = plan_kept_above(&state) {
        return relay_proposal(state, parent, year, (uri, headers), body).await;
    }
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, CHANGES, move |state, actor, body, _| {
        kept_here(state, actor)?;
        let year = parse_year(&year)?;
        let request: BatchRequest = parse_json(body)?;
        if request.from_proposal.is_some() {
            return Err(ApiError::invalid_field("from_proposal", "a proposal takes up no other"));
        }
        let spec = request.spec(&state.regions())?;
        Ok(change(PlanAction::Propose { year, spec: Box::new(spec), note: request.reason }))
    })
    .await
}

/// `POST /api/v1/annual-plans/{year}/batches`: the province adds a batch (from a proposal or
/// its own); `…/batches/{batch}` adjusts one.
pub async fn add_batch(
    State(state): State<AppState>,
    Path(year): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    set_batch(state, year, None, uri, headers, body, StatusCode::CREATED).await
}

pub async fn adjust_batch(
    State(state): State<AppState>,
    Path((year, batch)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    set_batch(state, year, Some(batch), uri, headers, body, StatusCode::OK).await
}

async fn set_batch(
    state: AppState,
    year: String,
    batch: Option<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
    status: StatusCode,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, status, CHANGES, move |state, actor, body, _| {
        kept_here(state, actor)?;
        let year = parse_year(&year)?;
        let batch = batch.as_deref().map(parse_batch).transpose()?;
        let request: BatchRequest = parse_json(body)?;
        let spec = request.spec(&state.regions())?;
        let action = PlanAction::SetBatch {
            year,
            batch,
            spec: Box::new(spec),
            from_proposal: request.from_proposal,
            reason: request.reason,
        };
        Ok(change(action))
    })
    .await
}

/// `POST /api/v1/annual-plans/{year}/batches/{batch}/withdraw`, with the reason.
pub async fn withdraw_batch(
    State(state): State<AppState>,
    Path((year, batch)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::OK, CHANGES, move |state, actor, body, _| {
        kept_here(state, actor)?;
        let (year, batch) = (parse_year(&year)?, parse_batch(&batch)?);
        let request: WithdrawBatchRequest = parse_json(body)?;
        Ok(change(PlanAction::WithdrawBatch { year, batch, reason: request.reason }))
    })
    .await
}

/// `POST /api/v1/annual-plans/{year}/publish` (公示).
pub async fn publish(
    State(state): State<AppState>,
    Path(year): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write_of_feature(state, uri, headers, body, StatusCode::OK, CHANGES, move |state, actor, _, _| {
        kept_here(state, actor)?;
        Ok(change(PlanAction::Publish { year: parse_year(&year)? }))
    })
    .await
}

/// `GET /public/v1/annual-plans/{province}/{year}`: a published plan (404 before).
pub async fn public_plan(
    State(state): State<AppState>,
    Path((province, year)): Path<(String, String)>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    super::json_answer((|| {
        within_budget(&state, peer, &headers)?;
        let regions = state.regions();
        let province = crate::api::parse_bureau(&regions, "province", &province)?;
        let year = parse_year(&year)?;
        let replica = state.store.read();
        let plan = replica.ledger.annual_plans().plan(province, year);
        plan.and_then(|plan| PublicAnnualPlanJson::of(&regions, plan))
            .ok_or_else(|| ApiError::NotFound(format!("no published plan of {province} for {year}")))
    })())
}

/// Published plans listed on the public side at most (the newest years).
const PUBLIC_PLANS_MAX: usize = 20;

/// `GET /public/v1/annual-plans`: the published plans, newest year first.
pub async fn public_plans(State(state): State<AppState>, peer: Peer, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        within_budget(&state, peer, &headers)?;
        let regions = state.regions();
        let replica = state.store.read();
        let mut plans: Vec<PublicAnnualPlanJson> =
            replica.ledger.annual_plans().all().filter_map(|plan| PublicAnnualPlanJson::of(&regions, plan)).collect();
        plans.sort_by(|a, b| b.year.cmp(&a.year).then_with(|| a.province.cmp(&b.province)));
        plans.truncate(PUBLIC_PLANS_MAX);
        Ok(crate::api::annual_plan::PublicAnnualPlansJson { plans })
    })())
}
