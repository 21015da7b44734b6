//! The "double random" routes for the bureaus: the entity directory (`POST` a CSV file, list
//! its versions, fetch a version's file), the inspector directory (enrol, retire, conflicts of
//! interest), the inspection-item list, and campaigns (plan, list, show, the committed proof,
//! and `draw`: the beacon by a second person, then the draw computed here and committed).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use config::calendar::Span;
use std::sync::Arc;

use ledger::campaign::departments::department_of_tag;
use ledger::campaign::{
    CampaignSpec, DrawHeader, ProgrammeAction, ProgrammeRecord, RiskClass, RiskRatios, DRAW_RATIO_FLOOR_BP,
};
use ledger::{Action, Actor, Command, Regions, Role, Severity, TaskId, TaskKind, Uscc};
use serde::Deserialize;

use super::request::parse_json;
use super::write::{handle_write, handle_write_of_feature};
use crate::api::inspection::{
    basis_points, parse_risk_class, CampaignJson, CampaignRequest, CampaignsJson, ConflictJson, ConflictRequest,
    DirectoryVersionJson, DirectoryVersionsJson, DrawFacts, DrawRequest, EnrolledInspectorsJson, InspectorJson,
    InspectorRequest, InspectorsJson, RetireRequest,
};
use crate::api::item_list::ItemListVersionJson;
use crate::api::{self, time, ApiError};
use crate::kept_files::{replication, transfer, Shelf};
use crate::programme::{
    draw_parts, roster, DIRECTORY_BYTES_MAX, DRAW_ATTEMPTS_MAX, DRAW_IN_PARTS_WAIT_MAX, PUBLICATION_SPAN,
};
use crate::state::AppState;
use crate::write_path::{propose_or_relay, relay_if_follower, relay_stream_if_follower, OriginalRequest, WriteOutcome};

fn programme(action: ProgrammeAction) -> Action {
    Action::Programme(Box::new(action))
}

/// What a programme command answers: the record it made, as JSON.
pub fn record_json(state: &AppState, record: &ProgrammeRecord) -> serde_json::Value {
    let regions = &state.regions();
    let value = match record {
        ProgrammeRecord::EntityDirectory(version) => serde_json::to_value(DirectoryVersionJson::of(version)),
        ProgrammeRecord::Inspector(inspector) => serde_json::to_value(InspectorJson::of(regions, inspector)),
        ProgrammeRecord::Conflict(conflict) => serde_json::to_value(ConflictJson::of(conflict)),
        ProgrammeRecord::Campaign(campaign) => {
            let facts = DrawFacts::of(&state.store.read().ledger, campaign);
            serde_json::to_value(CampaignJson::of(regions, campaign, facts))
        }
        ProgrammeRecord::Inspectors(inspectors) => serde_json::to_value(EnrolledInspectorsJson {
            inspectors: inspectors.iter().map(|inspector| InspectorJson::of(regions, inspector)).collect(),
        }),
        ProgrammeRecord::ItemList(version) => serde_json::to_value(ItemListVersionJson::of(version)),
        ProgrammeRecord::RegisterChanges(outcomes) => serde_json::to_value(
            outcomes
                .iter()
                .map(|outcome| crate::api::register::ChangeResultJson::of(None, outcome.clone()))
                .collect::<Vec<_>>(),
        ),
        ProgrammeRecord::InspectionCap(cap) => {
            let replica = state.store.read();
            let files = replica.ledger.risk_files();
            serde_json::to_value(crate::api::risk::InspectionCapJson::of_cap(files.kept(), files.count(), cap.as_ref()))
        }
        // Just registered: no inspectors, no items yet.
        ProgrammeRecord::Department(department) => {
            serde_json::to_value(crate::api::departments::DepartmentJson::of(department, 0, Vec::new()))
        }
        ProgrammeRecord::PlanFiled(filed) => {
            serde_json::to_value(crate::api::annual_plan::FiledPlanJson::of(regions, filed))
        }
        ProgrammeRecord::AnnualPlan(changed) => {
            use crate::api::annual_plan::{AnnualPlanJson, PlanChangeJson, PlanVersionJson};
            let (plan, version) = &**changed;
            let plan = AnnualPlanJson::of(regions, plan, |_| Default::default());
            serde_json::to_value(PlanChangeJson { version: PlanVersionJson::of(version), plan })
        }
    };
    value.expect("programme answers always serialize")
}

fn command_user(state: &AppState, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let user = state.users.authenticate(headers)?;
    if user.actor.role != Role::Command {
        return Err(ApiError::Forbidden(format!("a {} user does not manage inspections", user.actor.role)));
    }
    Ok(user.actor.clone())
}

// --- The entity directory (名录库). ---

/// `POST /api/v1/directories/entities`: a whole directory as CSV, received into a file as it
/// arrives (a province's is gigabytes; a follower streams it on to the leader). Checked row by
/// row (nothing is kept if one row is bad), kept on a majority of the group's nodes, then its
/// version committed.
pub async fn import_directory(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    match import(state, uri, headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn import(state: AppState, uri: Uri, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let actor = command_user(&state, &headers)?;
    // The group's register of entities covers the group's whole scope, and every campaign of
    // every bureau in it draws from the newest version (and a file of gigabytes is kept on
    // each member).
    super::of_the_whole_group(&state, actor.bureau, "the entity directory", "replace")?;
    let body = match relay_stream_if_follower(&state, &uri, &headers, body).await {
        Ok(response) => return Ok(response),
        Err(body) => body,
    };
    // Only the confirmed leader keeps and replicates a file: a follower that could not reach
    // the leader must not put files on every member that no committed version names.
    state.raft.ensure_linearizable().await.map_err(|error| ApiError::Unavailable {
        code: "no_leader",
        message: format!("this node cannot confirm it leads the group ({error}); retry shortly"),
    })?;
    // The file is the registration system's export from before its upload began: it holds the
    // changes recorded by then, and those recorded while it arrives are folded in later.
    let through = state.store.read().ledger.entity_register().journal_len();
    let summary = keep_directory(&state, body).await?;
    // Rows with the credit-risk class: a build before classes would draw from the file as if
    // it had none (and freeze it wrong), so every member must read them first.
    if summary.columns == draw::directory::Columns::WithRiskClass {
        let feature = crate::reference::FEATURE_RISK_FILES;
        crate::reference::members_read(&state, feature, "directories with credit-risk classes").await?;
    }
    let (sha256, entities, bytes) = (summary.sha256, summary.entities, summary.bytes);
    // Once every member reads the register's commands, a whole import is the live register's
    // base; before, the command every build takes.
    let action = if register_fed(&state).await {
        ProgrammeAction::ImportRegister { sha256, entities, bytes, through }
    } else {
        ProgrammeAction::RecordEntityDirectory { sha256, entities, bytes }
    };
    let command = Command { stamp_ms: time::now_ms(), actor, idempotency: None, action: programme(action) };
    // Proposed here only: the body is spent, so a leader elected meanwhile cannot be handed it.
    match state.batcher.propose_together(vec![command]).await {
        Ok(mut results) => {
            let result = results.pop().expect("one result per command");
            Ok(super::write::result_response(&state, StatusCode::CREATED, result))
        }
        Err(crate::batcher::ProposeError::NotLeader) => Err(ApiError::Unavailable {
            code: "no_leader",
            message: "leadership moved while the file was imported; it is kept on the members, send it again".into(),
        }),
        Err(error) => Err(error.into()),
    }
}

/// Whether every member reads the live register's commands (`register-feed-v1`).
async fn register_fed(state: &AppState) -> bool {
    let feature = crate::reference::FEATURE_REGISTER_FEED;
    crate::reference::members_read(state, feature, "the entity register").await.is_ok()
}

/// The ledger's rules of `fix_beacon`, read off this replica before the register is frozen for
/// it: the campaign exists, the user's centre organises it or is above it, its beacon is not
/// fixed, and the user is not who planned it.
fn may_fix_beacon(state: &AppState, actor: &Actor, id: u64) -> Result<(), ApiError> {
    let replica = state.store.read();
    let campaign = replica
        .ledger
        .programme()
        .campaign(id)
        .ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
    if !replica.ledger.regions().is_within(campaign.spec.bureau, actor.bureau) {
        return Err(ApiError::Forbidden(format!("bureau {} cannot draw campaign {id}", actor.bureau)));
    }
    if campaign.beacon.is_some() {
        return Err(ApiError::Conflict {
            code: ledger::ConflictCode::BeaconFixed.as_str(),
            message: format!("campaign {id}'s beacon is fixed already; it is fixed once"),
        });
    }
    if campaign.created_by == actor.user {
        return Err(ApiError::Forbidden(
            "the beacon is fixed by a second person, not by who planned the campaign".into(),
        ));
    }
    Ok(())
}

/// Receives a directory file into a file of its own, checks it in place, keeps it under its
/// hash and on a majority of the members.
async fn keep_directory(state: &AppState, body: Body) -> Result<draw::directory::DirectorySummary, ApiError> {
    let store = state.kept_files.shelf(Shelf::Directories).clone();
    let staging = transfer::receive(&store, body, DIRECTORY_BYTES_MAX as u64, "directory file").await?;
    let regions = state.regions();
    let checked = tokio::task::spawn_blocking(move || {
        let map = staging.map().map_err(|e| ApiError::Internal(format!("reading the directory file: {e}")))?;
        // Hashed as it arrived: the check reads the rows only.
        let summary = draw::directory::check_hashed(&regions, &map, Some(staging.sha256())).map_err(|error| {
            let first: Vec<String> = error.errors.iter().take(5).map(ToString::to_string).collect();
            ApiError::Invalid {
                code: "invalid_directory",
                message: format!("{} bad rows, nothing stored; {}", error.bad_rows, first.join("; ")),
            }
        })?;
        drop(map);
        staging
            .keep(Some(&summary.sha256))
            .map_err(|e| ApiError::Internal(format!("keeping the directory file: {e}")))?;
        Ok::<_, ApiError>(summary)
    });
    let summary = checked.await.map_err(|e| ApiError::Internal(e.to_string()))??;
    replication::spread_on_majority(state, Shelf::Directories, &summary.sha256, "directory_not_replicated").await?;
    Ok(summary)
}

pub async fn directory_versions(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        state.users.authenticate(&headers)?;
        let replica = state.store.read();
        let versions = replica.ledger.programme().entity_directories().iter().rev().map(DirectoryVersionJson::of);
        Ok(DirectoryVersionsJson { versions: versions.collect() })
    })())
}

/// `GET /api/v1/directories/entities/{sha256}`: a committed version's file, to verify draws.
pub async fn directory_file(State(state): State<AppState>, Path(sha256): Path<String>, headers: HeaderMap) -> Response {
    if let Err(error) = command_user(&state, &headers) {
        return error.into_response();
    }
    let committed = state.store.read().ledger.programme().entity_directories().iter().any(|v| v.sha256 == sha256);
    if !committed {
        return ApiError::NotFound(format!("no committed entity directory has the SHA-256 {sha256}")).into_response();
    }
    replication::answer_with(&state, Shelf::Directories, &sha256, "text/csv; charset=utf-8").await
}

// --- Inspectors (执法检查人员名录库). ---

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InspectorsQuery {
    /// Inspectors of this bureau's subtree; the caller's bureau by default.
    #[serde(default)]
    #[schemars(schema_with = "crate::api::schema::optional_unit_code")]
    pub bureau: Option<String>,
}

pub async fn inspectors(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let query: InspectorsQuery = serde_urlencoded::from_str(uri.query().unwrap_or(""))
            .map_err(|e| ApiError::Invalid { code: "invalid_query", message: e.to_string() })?;
        let bureau = match &query.bureau {
            Some(text) => api::parse_bureau(&state.regions(), "bureau", text)?,
            None => user.actor.bureau,
        };
        if user.actor.role == Role::Operator || !state.regions().is_within(bureau, user.actor.bureau) {
            return Err(ApiError::Forbidden(format!(
                "bureau {} cannot list inspectors of {bureau}",
                user.actor.bureau
            )));
        }
        let replica = state.store.read();
        let regions = replica.ledger.regions();
        let inspectors = replica.ledger.programme().inspectors().filter(|i| regions.is_within(i.bureau, bureau));
        Ok(InspectorsJson {
            directory_sha256: replica.ledger.programme().inspector_directory_sha256(),
            inspectors: inspectors.map(|inspector| InspectorJson::of(&regions, inspector)).collect(),
        })
    })())
}

pub async fn enrol(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write(state, uri, headers, body, StatusCode::CREATED, |state, _, body, _| {
        let request: InspectorRequest = parse_json(body)?;
        let inspector = ledger::campaign::Inspector {
            id: request.id,
            name: request.name,
            bureau: api::parse_bureau(&state.regions(), "bureau", &request.bureau)?,
            station: request.station,
            expertise: request.expertise,
            qualified: request.qualified,
            active: true,
            enrolled_at_ms: 0,
            retired_at_ms: None,
        };
        ledger::campaign::check_inspector(&state.regions(), &inspector)?;
        Ok(programme(ProgrammeAction::EnrollInspector(Box::new(inspector))))
    })
    .await
}

/// A bureau's roster file (`crate::programme::roster`): every inspector in it enrolled in one
/// command, or none.
pub async fn enrol_roster(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    handle_write(state, uri, headers, body, StatusCode::CREATED, |state, _, body, _| {
        let inspectors = roster::parse(&state.regions(), body)
            .map_err(|error| ApiError::Invalid { code: "invalid_roster", message: error.to_string() })?;
        Ok(programme(ProgrammeAction::EnrollInspectors(inspectors)))
    })
    .await
}

pub async fn retire(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write(state, uri, headers, body, StatusCode::OK, |_, _, body, _| {
        let request: RetireRequest = parse_json(body)?;
        ledger::validate::note(&request.note, true)?;
        Ok(programme(ProgrammeAction::RetireInspector { id, note: request.note }))
    })
    .await
}

pub async fn declare_conflict(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle_write(state, uri, headers, body, StatusCode::CREATED, |_, _, body, _| {
        let request: ConflictRequest = parse_json(body)?;
        let uscc = Uscc::parse(&request.uscc)
            .map_err(|e| ApiError::Invalid { code: "invalid_uscc", message: format!("uscc: {e}") })?;
        ledger::validate::note(&request.reason, true)?;
        Ok(programme(ProgrammeAction::DeclareConflict { inspector: id, uscc, reason: request.reason }))
    })
    .await
}

// --- Campaigns (抽查计划). ---

pub async fn create_campaign(State(state): State<AppState>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    // A campaign drawing some class under 3% is a command of its own
    // (`ProgrammeAction::CreateCampaignOnTotal`), proposed only when every member reads it; any
    // other is the command every build takes. The body is read first to tell which.
    let body = match super::request::read_body(body).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let thin = parse_json::<CampaignRequest>(&body).is_ok_and(|request| {
        let ratios = [request.ratios_percent.high, request.ratios_percent.normal, request.ratios_percent.low];
        ratios.iter().any(|percent| basis_points("ratios_percent", *percent).is_ok_and(|bp| bp < DRAW_RATIO_FLOOR_BP))
    });
    let in_batch = parse_json::<CampaignRequest>(&body).is_ok_and(|request| request.batch.is_some());
    let feature = if in_batch {
        Some((crate::reference::FEATURE_ANNUAL_PLAN, "campaigns of an annual plan's batch"))
    } else {
        thin.then_some((crate::reference::FEATURE_DRAW_FLOOR_ON_TOTAL, "campaigns drawing a class under 3%"))
    };
    let body = Body::from(body);
    handle_write_of_feature(state, uri, headers, body, StatusCode::CREATED, feature, move |state, actor, body, _| {
        let request: CampaignRequest = parse_json(body)?;
        let batch = request.batch.clone();
        let spec = campaign_spec(state, actor, request)?;
        ledger::campaign::check_spec(&state.regions(), &spec)?;
        // A joint campaign stays within this group: its departments, their inspectors and their
        // parts are here, and an inspection handed to another group would be worked without them.
        let joint = spec.items.iter().any(|item| department_of_tag(&item.expertise).is_some());
        if joint && !state.federation.hosts_whole(&state.regions(), spec.scope_region) {
            return Err(ApiError::Conflict {
                code: "joint_campaign_across_groups",
                message: format!(
                    "a joint campaign with other departments draws only within group {}; region {} holds another group's",
                    state.federation.group, spec.scope_region
                ),
            });
        }
        if let Some(batch) = batch {
            // Members that read annual plans read the floor on the total too (a later feature).
            let floor_on_total = ledger::campaign::draws_a_class_thinly(&spec);
            let action = ProgrammeAction::CreateCampaignInBatch {
                spec: Box::new(spec),
                floor_on_total,
                year: batch.year,
                batch: batch.number,
            };
            return Ok(programme(action));
        }
        // `thin` looked at every class, the spec only at those drawn from: a spec drawing a
        // class thinly was always gated.
        let action = if ledger::campaign::draws_a_class_thinly(&spec) {
            if !thin {
                return Err(ApiError::Internal("a campaign drawing a class thinly was not gated".into()));
            }
            ProgrammeAction::CreateCampaignOnTotal(Box::new(spec))
        } else {
            ProgrammeAction::CreateCampaign(Box::new(spec))
        };
        Ok(programme(action))
    })
    .await
}

fn campaign_spec(state: &AppState, actor: &Actor, request: CampaignRequest) -> Result<CampaignSpec, ApiError> {
    // Refused before anything about the directory is said (the ledger checks again).
    if actor.role != Role::Command {
        return Err(ApiError::Forbidden(format!("a {} user does not plan campaigns", actor.role)));
    }
    let bureau = match &request.bureau {
        Some(text) => api::parse_bureau(&state.regions(), "bureau", text)?,
        None => actor.bureau,
    };
    let risk_classes =
        request.scope.risk_classes.iter().map(|c| parse_risk_class(c)).collect::<Result<Vec<RiskClass>, _>>()?;
    let regions = state.regions();
    let (entity_directory, items) = {
        let replica = state.store.read();
        let list = state.programme.list_in_force(&replica.ledger);
        let items = state.programme.items(list, &regions, bureau, &request.items)?;
        (replica.ledger.programme().entity_directory().map(|version| version.sha256.clone()), items)
    };
    let entity_directory = entity_directory.ok_or_else(|| ApiError::Conflict {
        code: "no_directory",
        message: "no entity directory is imported yet (POST /api/v1/directories/entities)".into(),
    })?;
    Ok(CampaignSpec {
        name: request.name,
        bureau,
        items,
        scope_region: api::parse_bureau(&state.regions(), "scope.region", &request.scope.region)?,
        targeted: request.targeted,
        industries: request.scope.industries,
        risk_classes,
        ratios: RiskRatios {
            high_bp: basis_points("ratios_percent.high", request.ratios_percent.high)?,
            normal_bp: basis_points("ratios_percent.normal", request.ratios_percent.normal)?,
            low_bp: basis_points("ratios_percent.low", request.ratios_percent.low)?,
        },
        inspector_mode: request.inspector_mode.parse()?,
        inspectors_per_inspection: request.inspectors_per_inspection,
        scoring: state.programme.scoring(),
        entity_directory,
        complete_deadline_ms: match &request.complete_by {
            Some(text) => Some(time::parse_ms(text).ok_or_else(|| ApiError::Invalid {
                code: "invalid_time",
                message: "complete_by is an RFC 3339 time".into(),
            })?),
            None => None,
        },
    })
}

/// A campaign is visible to the bureaus above its organiser and to those within its scope.
fn may_see(regions: &Regions, actor: &Actor, spec: &CampaignSpec) -> bool {
    regions.is_within(spec.bureau, actor.bureau) || regions.is_within(actor.bureau, spec.scope_region)
}

pub async fn campaigns(State(state): State<AppState>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let replica = state.store.read();
        let regions = replica.ledger.regions();
        let visible = replica.ledger.programme().campaigns().filter(|c| may_see(&regions, &user.actor, &c.spec));
        let ledger = &replica.ledger;
        Ok(CampaignsJson {
            campaigns: visible.map(|c| CampaignJson::of(&regions, c, DrawFacts::counted(ledger, c))).collect(),
        })
    })())
}

fn parse_campaign_id(text: &str) -> Result<u64, ApiError> {
    text.parse()
        .map_err(|_| ApiError::Invalid { code: "invalid_id", message: format!("`{text}` is not a campaign id") })
}

pub async fn campaign(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    super::json_answer((|| {
        let user = state.users.authenticate(&headers)?;
        let id = parse_campaign_id(&id)?;
        let replica = state.store.read();
        let regions = replica.ledger.regions();
        let campaign = replica.ledger.programme().campaign(id).filter(|c| may_see(&regions, &user.actor, &c.spec));
        let campaign = campaign.ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
        Ok(CampaignJson::of(&regions, campaign, DrawFacts::of(&replica.ledger, campaign)))
    })())
}

/// `GET /api/v1/campaigns/{id}/proof`: the committed record as the ledger holds it (parameters,
/// beacon, inputs, result; for a draw in parts the summary and `draw_parts`, each part's
/// digest; for a draw under a yearly cap the cap as `year_cap`), the file `xietong draw
/// verify` checks. Internal: it names risk
/// classes and inspectors, so only the organiser's command centre and those above it read it.
pub async fn proof(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let result = (|| {
        let actor = command_user(&state, &headers)?;
        let id = parse_campaign_id(&id)?;
        let replica = state.store.read();
        let campaign = replica
            .ledger
            .programme()
            .campaign(id)
            .filter(|c| replica.ledger.regions().is_within(c.spec.bureau, actor.bureau));
        let campaign = campaign.ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
        let mut proof = serde_json::to_value(campaign.as_ref()).map_err(|e| ApiError::Internal(e.to_string()))?;
        // A draw committed in parts: its record keeps the summary, the ledger each part's
        // digest, which `xietong draw verify` compares with the draw computed again.
        if let Some(drawn) = replica.ledger.drawn_in_parts(id) {
            proof["draw_parts"] = serde_json::to_value(&drawn.parts).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        // A draw under a yearly cap: the cap the beacon froze, an input of the draw kept beside
        // the others (`DrawInputs::year_cap`).
        if let Some(cap) = replica.ledger.risk_files().year_cap(id) {
            proof["year_cap"] = serde_json::to_value(cap).map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        Ok(proof)
    })();
    super::json_answer(result)
}

/// `POST /api/v1/campaigns/{id}/draw`: fixes the beacon if the body brings one (a second
/// person, once), then computes the draw from the ledger's inputs and the directory file and
/// commits it with its inspection tasks.
pub async fn draw(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let outcome = async {
        let actor = command_user(&state, &headers)?;
        let id = parse_campaign_id(&id)?;
        // The route has the transfer timeout for the draw; its small body has the API's.
        let read = axum::body::to_bytes(body, config::limits::REQUEST_BODY_BYTES_MAX);
        let bytes = tokio::time::timeout(config::limits::REQUEST_TIMEOUT, read)
            .await
            .map_err(|_| ApiError::Timeout("the request body did not arrive in time".into()))?
            .map_err(|_| ApiError::TooLarge("the request body is too large".into()))?;
        let request: DrawRequest =
            if bytes.iter().all(u8::is_ascii_whitespace) { DrawRequest::default() } else { parse_json(&bytes)? };
        let original = OriginalRequest { uri, headers, body: bytes };
        if let Some(response) = relay_if_follower(&state, &original).await {
            return Ok(response);
        }
        if let Some(value) = request.beacon {
            ledger::validate::text("beacon", &value, ledger::campaign::BEACON_CHARS_MAX, true, false)?;
            // With a live register, the changes recorded since the current directory version
            // are frozen into the next one, and the beacon fixes the draw on it: the population
            // is the register as it stood just before the beacon was known.
            let fix = if state.store.read().ledger.drawing_on_register() {
                // Freezing costs a fold and a file of the register's size on every member: only
                // for a beacon the ledger would take from this person (it checks again).
                may_fix_beacon(&state, &actor, id)?;
                if let Some(response) = super::register::freeze_pending(&state, &original, &actor).await? {
                    return Ok(response);
                }
                ProgrammeAction::FixBeaconOnRegister { campaign: id, value }
            } else {
                ProgrammeAction::FixBeacon { campaign: id, value }
            };
            if let Committed::Relayed(response) = commit(&state, &original, &actor, fix).await? {
                return Ok(response);
            }
        }
        // The organiser from the campaign (its inputs, with the histories, are read to draw).
        let organiser = state.store.read().ledger.programme().campaign(id).map(|campaign| campaign.spec.bureau);
        let organiser = organiser.ok_or_else(|| ApiError::NotFound(format!("campaign {id} does not exist")))?;
        if !state.regions().is_within(organiser, actor.bureau) {
            return Err(ApiError::Forbidden(format!("bureau {} cannot draw campaign {id}", actor.bureau)));
        }
        crate::reference::members_read(&state, crate::reference::FEATURE_DRAW_IN_PARTS, "draws in parts").await?;
        // One driver of a campaign's parts on this node: a draw begun here and taken up by the
        // leader's loop at once would propose each part twice.
        let Some(driving) = state.programme.draw_drivers.take(id) else {
            return drawn_answer(&state, id).await;
        };
        if state.store.read().ledger.drawing_in_parts(id).is_some() {
            // Begun before (a retry, or a leader that died): its parts go on from where they are.
            return parts_then_answer(&state, &driving, id, &actor, None).await;
        }
        for attempt in 1..=DRAW_ATTEMPTS_MAX {
            let inputs = state.store.read().ledger.draw_inputs(id).map_err(ApiError::from)?;
            let planned_deadline_ms = inputs.spec.complete_deadline_ms;
            let drawn = draw_parts::draw_from(&state, inputs).await?;
            let stamp_ms = time::now_ms();
            let (ack_deadline_ms, policy_deadline_ms) = crate::deadline_policy::deadlines_for_ms(
                &state.deadlines,
                &state.calendar(),
                TaskKind::Inspection,
                Severity::Normal,
                stamp_ms,
            )
            .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })?;
            let complete_deadline_ms = planned_deadline_ms.unwrap_or(policy_deadline_ms);
            let header = DrawHeader::of(id, &drawn, ack_deadline_ms, complete_deadline_ms);
            match commit(&state, &original, &actor, ProgrammeAction::BeginDrawInParts(Box::new(header))).await {
                Ok(Committed::Done) => {
                    return parts_then_answer(&state, &driving, id, &actor, Some(Arc::new(drawn))).await;
                }
                Ok(Committed::Relayed(response)) => return Ok(response),
                // The inspectors or the history changed while the draw was computed.
                Err(ApiError::Conflict { code, .. }) if code == ledger::ConflictCode::DrawOutdated.as_str() => {
                    tracing::info!(campaign = id, attempt, "the ledger changed during the draw; drawing again");
                }
                Err(error) => return Err(error),
            }
        }
        Err(ApiError::Unavailable {
            code: "draw_contended",
            message: format!("the inspectors changed during {DRAW_ATTEMPTS_MAX} draws; retry"),
        })
    };
    match outcome.await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

/// Proposes the parts of campaign `id`'s draw begun, then answers the drawn campaign (201). If
/// leadership moves meanwhile, the new leader takes the parts up, and the answer waits for them.
async fn parts_then_answer(
    state: &AppState,
    driving: &draw_parts::Driving,
    id: u64,
    actor: &Actor,
    drawn: Option<Arc<ledger::campaign::DrawResult>>,
) -> Result<Response, ApiError> {
    match draw_parts::record_parts(state, driving, id, actor, drawn).await {
        Ok(()) | Err(draw_parts::PartsStopped::NotLeader) => drawn_answer(state, id).await,
        Err(draw_parts::PartsStopped::Refused(error)) => Err(error),
    }
}

/// The campaign once this replica holds it drawn (201), waiting up to `DRAW_IN_PARTS_WAIT_MAX`
/// for parts another task or leader proposes.
async fn drawn_answer(state: &AppState, id: u64) -> Result<Response, ApiError> {
    let mut metrics = state.raft.metrics();
    let deadline = tokio::time::Instant::now() + DRAW_IN_PARTS_WAIT_MAX;
    loop {
        {
            let replica = state.store.read();
            let campaign = replica.ledger.programme().campaign(id).filter(|c| c.draw.is_some());
            if let Some(campaign) = campaign {
                let facts = DrawFacts::of(&replica.ledger, campaign);
                let json = CampaignJson::of(&replica.ledger.regions(), campaign, facts);
                let location = [(axum::http::header::LOCATION, format!("/api/v1/campaigns/{id}"))];
                return Ok((StatusCode::CREATED, location, Json(json)).into_response());
            }
        }
        match tokio::time::timeout_at(deadline, metrics.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                return Err(ApiError::Unavailable {
                    code: "draw_under_way",
                    message: format!("campaign {id}'s draw is being committed in parts; see its state"),
                })
            }
        }
    }
}

pub(super) enum Committed {
    /// Committed here.
    Done,
    /// Leadership moved: the new leader was handed the whole request and this is its answer.
    Relayed(Response),
}

/// Proposes one programme command on this node (the leader).
pub(super) async fn commit(
    state: &AppState,
    original: &OriginalRequest,
    actor: &Actor,
    action: ProgrammeAction,
) -> Result<Committed, ApiError> {
    let command =
        Command { stamp_ms: time::now_ms(), actor: actor.clone(), idempotency: None, action: programme(action) };
    match propose_or_relay(state, original, command).await? {
        WriteOutcome::Local(Ok(_)) => Ok(Committed::Done),
        WriteOutcome::Local(Err(rejection)) => Err(ApiError::from(rejection)),
        WriteOutcome::Relayed(response) => Ok(Committed::Relayed(response)),
    }
}

/// Publishing a drawn inspection's result (一公开), or withdrawing it with the reason.
/// `withdraw_note`: the reason of a withdrawal, or `None` to publish.
pub(super) fn publication_action(task: TaskId, withdraw_note: Option<String>) -> Action {
    let step = match withdraw_note {
        Some(note) => ProgrammeAction::WithdrawResult { task, note },
        None => ProgrammeAction::PublishResult { task },
    };
    Action::Programme(Box::new(step))
}

/// The publication deadline of a result entered at `stamp_ms`.
pub(crate) fn publication_deadline_ms(state: &AppState, stamp_ms: u64) -> Result<u64, ApiError> {
    let span = Span::parse(PUBLICATION_SPAN).expect("a valid span");
    crate::deadline_policy::span_after_ms(&state.calendar(), span, stamp_ms)
        .map_err(|e| ApiError::Invalid { code: "deadline_outside_calendar", message: e.to_string() })
}
